"""``escalate up`` as a person runs it: the whole service, sample data, state kept across a restart, and
its payloads encrypted, with a development key when none is configured."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from schemas.escalation import EscalationView, Status
from starter.codec import KEY_ID_METADATA, Keyring
from starter.connection import connect
from tests.temporal_servers import free_port
from workflows.escalation import EscalationWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {
    "gloucestershire-SAMPLE01-0001",
    "waltham-forest-SAMPLE02-0001",
    "wigan-SAMPLE03-0001",
    "dudley-SAMPLE04-0001",
}


class Ports:
    """Free ports for one test's ``escalate up``, so a developer's own ``make run`` can keep going."""

    def __init__(self) -> None:
        self.temporal, self.ui, self.smtp, self.codec, self.web = (free_port() for _ in range(5))

    def args(self) -> list[str]:
        return [
            f"--port={self.temporal}",
            f"--ui-port={self.ui}",
            f"--smtp-port={self.smtp}",
            f"--codec-port={self.codec}",
            f"--web-port={self.web}",
        ]


class Service:
    """``escalate up`` (the installed command) in its own folder, read line by line."""

    def __init__(
        self, cwd: Path, ports: Ports, *args: str, env_changes: dict[str, str | None] | None = None
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("ESCALATION_DATABASE_URL", None)
        for name, value in (env_changes or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("escalate")), "up", *ports.args(), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    async def wait_for(self, text: str, count: int = 1, timeout: float = 90) -> None:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        async def read() -> None:
            while sum(text in line for line in self.lines) < count:
                line = await asyncio.to_thread(stdout.readline)
                if not line:
                    raise AssertionError(f"service ended before {text!r}:\n{''.join(self.lines)}")
                self.lines.append(line)

        await asyncio.wait_for(read(), timeout)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(self.proc.wait, 60)
        assert self.proc.stdout is not None
        self.lines.extend(self.proc.stdout.readlines())
        return code


async def _states(ports: Ports) -> dict[str, EscalationView]:
    client = await connect(f"127.0.0.1:{ports.temporal}")
    return {wid: await client.get_workflow_handle(wid).query(EscalationWorkflow.state) for wid in SAMPLES}


async def _listed(ports: Ports, query: str) -> set[str]:
    client = await connect(f"127.0.0.1:{ports.temporal}")
    return {e.id async for e in client.list_workflows(query) if e.id in SAMPLES}


async def test_up_loads_samples_and_keeps_them_across_a_restart(tmp_path: Path) -> None:
    ports = Ports()
    service = Service(tmp_path, ports, "--with-sample-data")
    try:
        await service.wait_for("sample ", count=len(SAMPLES))
        before = await _states(ports)
        assert f"web app at http://127.0.0.1:{ports.web}" in "".join(service.lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.web}/sign-in", timeout=30) as page:
            sign_in = page.read().decode()
        assert "Development sign-in" in sign_in and "wig-team-manager-a" in sign_in
    finally:
        assert await service.stop() == 0, "".join(service.lines)
    assert before["gloucestershire-SAMPLE01-0001"].status is Status.AWAITING_RESPONSE
    assert before["waltham-forest-SAMPLE02-0001"].stage_number == 3
    assert before["wigan-SAMPLE03-0001"].status is Status.AWAITING_DECISION
    assert before["dudley-SAMPLE04-0001"].pending_extension is not None
    assert (tmp_path / ".data" / "temporal.db").exists()
    assert list((tmp_path / ".data" / "mail").glob("*.eml")), "notifications reach the mail catcher"

    again = Service(tmp_path, ports, "--with-sample-data")
    try:
        await again.wait_for("already loaded", count=len(SAMPLES))
        after = await _states(ports)
        found = await _listed(
            ports, "EscalationAuthority = 'wigan' AND EscalationStatus = 'awaiting_decision'"
        )
    finally:
        assert await again.stop() == 0, "".join(again.lines)
    for wid in SAMPLES:
        keep = ("status", "stage", "deadline", "total_deadline", "pending_extension")
        assert after[wid].model_dump(include=set(keep)) == before[wid].model_dump(include=set(keep)), wid
    assert found == {"wigan-SAMPLE03-0001"}, "search attributes registered and kept current"


async def test_up_refuses_clearly_when_a_port_is_taken(tmp_path: Path) -> None:
    ports = Ports()
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", ports.ui))
        held.listen()
        service = Service(tmp_path, ports)
        code = await asyncio.to_thread(service.proc.wait, 60)
        assert service.proc.stdout is not None
        out = service.proc.stdout.read()
    assert code == 1
    assert f"port {ports.ui}" in out and "already in use" in out


async def test_up_without_a_key_makes_a_development_key_and_gives_the_ui_its_codec_server(
    tmp_path: Path,
) -> None:
    token = "up-test-token"
    ports = Ports()
    service = Service(
        tmp_path, ports, env_changes={"ESCALATION_PAYLOAD_KEYS": None, "ESCALATION_CODEC_TOKEN": token}
    )
    key_file = tmp_path / ".data" / "payload-keys"
    try:
        await service.wait_for("worker running")
        settings = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{ports.ui}/api/v1/settings")
        keyring = Keyring.parse(key_file.read_text(encoding="utf-8"))
        plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"a concern"')
        sealed = keyring.encrypt(plain)
        body = json_format.MessageToJson(Payloads(payloads=[sealed])).encode()
        answer = await asyncio.to_thread(_post, f"http://127.0.0.1:{ports.codec}/{token}/decode", body)
    finally:
        assert await service.stop() == 0, "".join(service.lines)
    output = "".join(service.lines)
    assert "created a development key in .data/payload-keys" in output
    assert f"codec server at http://127.0.0.1:{ports.codec}" in output
    assert token not in output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings["Codec"]["Endpoint"] == f"http://127.0.0.1:{ports.codec}/{token}"
    assert sealed.metadata[KEY_ID_METADATA] == keyring.active.encode()
    assert json_format.Parse(answer, Payloads()).payloads[0] == plain


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return cast(dict[str, Any], json.loads(response.read()))


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST", headers={"X-Namespace": "default"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return cast(bytes, response.read())


async def test_a_reply_to_a_caught_mail_becomes_the_response(tmp_path: Path) -> None:
    """The README's walk-through: a stage mail is caught, its recipient replies, the ingester inside
    ``escalate up`` makes the reply the escalation's response."""
    from starter.mail_catcher import caught, read_caught
    from starter.mail_ingest.local import reply_to_caught

    ports = Ports()
    escalation_id = "gloucestershire-SAMPLE01-0001"
    service = Service(tmp_path, ports, "--with-sample-data")
    try:
        await service.wait_for("sample ", count=len(SAMPLES))
        folder = tmp_path / ".data" / "mail"
        files = caught(folder)
        numbers = [
            n
            for n, path in enumerate(files, start=1)
            if (m := read_caught(path))["X-Escalation-Id"] == escalation_id
            and m["X-Escalation-Event"] == "sent_to_stage"
            and "+" in str(m.get("Reply-To") or "")
            and str(m["X-Envelope-To"]) in str(m["To"])  # the stage's recipient's copy, not the one copied in
        ]
        assert numbers, f"no stage mail of {escalation_id} caught among {len(files)}"
        answer = "The review is booked for Tuesday and the plan is updated."
        await asyncio.to_thread(reply_to_caught, numbers[-1], answer, folder, port=ports.smtp)
        client = await connect(f"127.0.0.1:{ports.temporal}")
        handle = client.get_workflow_handle(escalation_id)
        give_up = asyncio.get_running_loop().time() + 90
        while True:
            view = await handle.query(EscalationWorkflow.state)
            if view.status is Status.AWAITING_DECISION or asyncio.get_running_loop().time() > give_up:
                break
            await asyncio.sleep(0.2)
    finally:
        assert await service.stop() == 0, "".join(service.lines)
    assert view.status is Status.AWAITING_DECISION, view.status
    assert any(answer in e.text for e in view.timeline), "the reply's own text is the response"
