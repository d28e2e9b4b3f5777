"""Payload encryption: the codec, its keys, the codec server, and what a real server keeps on disk."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities.recording import FileRecordStore, OutboxNotifier
from schemas.escalation import Actor, AddNote, Concern, EscalationOutcome, Withdraw
from starter.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    Keyring,
    PayloadKeyError,
    ensure_dev_key,
    keyring_from_environment,
    new_key,
)
from starter.codec_server import DEFAULT_ORIGINS, CodecServer, start_codec_server
from starter.connection import DATA_CONVERTER
from starter.escalations import prepare
from starter.temporal_binaries import temporal_cli_path
from tests.temporal_servers import free_port, require_or_skip
from tests.workflow_harness import unique_ref
from worker import build_worker
from workflows.escalation import WORKFLOW_TYPE

ROOT = Path(__file__).resolve().parents[1]
K1, K2 = new_key(), new_key()
OLD = Keyring.parse(f"k1:{K1}")
ROTATED = Keyring.parse(f"k2:{K2},k1:{K1}")
ONLY_NEW = Keyring.parse(f"k2:{K2}")
CONCERN = Concern(
    summary="Amelia-Quist's placement broke down on Tuesday",
    impact_on_child="She has moved school twice this term.",
    requested_action="Convene a placement stability meeting.",
)


def converter(keyring: Keyring) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keyring))


async def encrypted(keyring: Keyring, value: Any) -> Payload:
    return (await converter(keyring).encode([value]))[0]


# --- the codec -----------------------------------------------------------------------------------------


async def test_round_trip_hides_the_value_and_names_the_key() -> None:
    payload = await encrypted(OLD, CONCERN)
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"k1"
    assert set(payload.metadata) == {"encoding", KEY_ID_METADATA}, "the type name is encrypted too"
    assert b"Amelia" not in payload.SerializeToString()
    [back] = await converter(OLD).decode([payload], [Concern])
    assert back == CONCERN


async def test_the_same_value_encrypts_differently_each_time() -> None:
    assert (await encrypted(OLD, CONCERN)).data != (await encrypted(OLD, CONCERN)).data


async def test_rotation_old_payloads_still_decode_and_new_ones_use_the_new_key() -> None:
    old = await encrypted(OLD, CONCERN)
    [back] = await converter(ROTATED).decode([old], [Concern])
    assert back == CONCERN
    new = await encrypted(ROTATED, CONCERN)
    assert new.metadata[KEY_ID_METADATA] == b"k2"
    [back] = await converter(ONLY_NEW).decode([new], [Concern])
    assert back == CONCERN


async def test_an_unknown_key_id_is_refused_naming_it() -> None:
    old = await encrypted(OLD, CONCERN)
    with pytest.raises(PayloadKeyError) as refused:
        await EncryptionCodec(ONLY_NEW).decode([old])
    message = str(refused.value)
    assert "'k1'" in message and "ESCALATION_PAYLOAD_KEYS" in message and "k2" in message
    assert "\n" not in message
    assert repr(ONLY_NEW.keys["k2"]) not in repr(ONLY_NEW), "key material is never printed"


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
async def test_altered_ciphertext_is_refused(where: str) -> None:
    payload = await encrypted(OLD, CONCERN)
    data = bytearray(payload.data)
    data[{"nonce": 0, "ciphertext": 20, "tag": -1}[where]] ^= 0x01
    payload.data = bytes(data)
    with pytest.raises(PayloadKeyError, match="altered"):
        await EncryptionCodec(OLD).decode([payload])


async def test_a_relabelled_key_id_is_refused() -> None:
    """The key id is authenticated: moving a payload under another key's id fails, even with that key."""
    same_key_twice = Keyring.parse(f"k1:{K1},k9:{K1}")
    payload = await encrypted(same_key_twice, CONCERN)
    payload.metadata[KEY_ID_METADATA] = b"k9"
    with pytest.raises(PayloadKeyError, match="altered"):
        await EncryptionCodec(same_key_twice).decode([payload])


async def test_unencoded_payloads_pass_through_untouched_without_any_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ESCALATION_PAYLOAD_KEYS")
    monkeypatch.setenv("ESCALATION_DATA_DIR", str(tmp_path))
    plain = (await pydantic_data_converter.encode([CONCERN]))[0]
    codec = EncryptionCodec()  # keys read at first use: there are none
    [same] = await codec.decode([plain])
    assert same.SerializeToString() == plain.SerializeToString()
    with pytest.raises(PayloadKeyError, match="ESCALATION_PAYLOAD_KEYS"):
        await codec.encode([plain])


async def test_the_projects_converter_encrypts_with_the_sessions_key() -> None:
    payload = (await DATA_CONVERTER.encode([CONCERN]))[0]
    assert payload.metadata[KEY_ID_METADATA] == b"test-session"
    memo = await DATA_CONVERTER._encode_memo({"note": "Amelia-Quist"})
    assert b"Amelia" not in memo.SerializeToString()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "holds no key"),
        (f"{K1}", "not key-id:base64-key"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "is 5 bytes"),
        (f"k1:{K1},k1:{K2}", "appears twice"),
        (f"bad id:{K1}", "letters, digits"),
    ],
    ids=["empty", "no-id", "not-base64", "short", "repeated-id", "bad-id"],  # the keys are random per run
)
def test_malformed_keys_are_refused_clearly_without_showing_key_material(text: str, expected: str) -> None:
    with pytest.raises(PayloadKeyError, match=expected) as refused:
        Keyring.parse(text)
    assert "ESCALATION_PAYLOAD_KEYS" in str(refused.value)
    assert K1 not in str(refused.value) and K2 not in str(refused.value)


def test_the_development_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCALATION_PAYLOAD_KEYS")
    monkeypatch.setenv("ESCALATION_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(PayloadKeyError, match="ESCALATION_PAYLOAD_KEYS"):
        keyring_from_environment()
    path, created = ensure_dev_key()
    assert created and path == tmp_path / "data" / "payload-keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = keyring_from_environment()
    assert ring.active.startswith("dev-") and ring.source == str(path)
    assert ensure_dev_key() == (path, False)
    assert keyring_from_environment() == ring, "the same key on every start"
    path.chmod(0o644)
    with pytest.raises(PayloadKeyError, match="chmod 600"):
        keyring_from_environment()
    monkeypatch.setenv("ESCALATION_PAYLOAD_KEYS", f"prod:{K1}")
    assert ensure_dev_key() == (None, False)
    assert keyring_from_environment().active == "prod", "the environment wins over the file"


@pytest.mark.parametrize(
    "command", [["worker.py", "--address", "127.0.0.1:9"], ["-m", "starter.cli", "status", "x-C1-0001"]]
)
def test_worker_and_cli_refuse_without_a_key(command: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ESCALATION_PAYLOAD_KEYS", "ESCALATION_DATA_DIR")}
    env["PYTHONPATH"] = str(ROOT)
    env["ESCALATE_AS_ID"] = "wig-iro-a"  # the command acts as a directory person
    if command[0] == "worker.py":
        command = [str(ROOT / "worker.py"), *command[1:]]
    done = subprocess.run(
        [sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ESCALATION_PAYLOAD_KEYS" in lines[0], done.stderr


# --- the codec server ----------------------------------------------------------------------------------

TOKEN = "codec-test-token"
UI = DEFAULT_ORIGINS[0]
"""The local UI's origin, which the codec server allows by default (a browser origin: no port is bound)."""


@pytest.fixture
def codec_server() -> Iterator[CodecServer]:
    server = start_codec_server("127.0.0.1", 0, token=TOKEN, keyring=ROTATED, namespace="default")
    try:
        yield server
    finally:
        server.stop()


def call(
    url: str, body: bytes | None = None, /, method: str = "POST", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def as_json(*payloads: Payload) -> bytes:
    return json_format.MessageToJson(Payloads(payloads=payloads)).encode()


async def test_codec_server_refuses_without_the_token(codec_server: CodecServer) -> None:
    body = as_json(await encrypted(OLD, CONCERN))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, _, answer = call(f"{codec_server.url}/decode", body, **headers)
        assert status == 401, headers
        assert b"Amelia" not in answer
    assert call(f"{codec_server.url}/wrong/decode", body)[0] == 401


async def test_codec_server_decodes_with_the_token(codec_server: CodecServer) -> None:
    old, new = await encrypted(OLD, CONCERN), await encrypted(ROTATED, CONCERN)
    plain = (await pydantic_data_converter.encode(["not encrypted"]))[0]
    for url, headers in (
        (f"{codec_server.url}/decode", {"Authorization": f"Bearer {TOKEN}"}),
        (f"{codec_server.url}/{TOKEN}/decode", {}),  # the form the Temporal UI is given
    ):
        status, answer_headers, answer = call(
            url, as_json(old, new, plain), **headers, Origin=UI, **{"X-Namespace": "default"}
        )
        assert status == 200, answer
        assert answer_headers["Access-Control-Allow-Origin"] == UI
        assert answer_headers["Cache-Control"] == "no-store"
        decoded = json_format.Parse(answer, Payloads()).payloads
        values = pydantic_data_converter.payload_converter.from_payloads(decoded, [Concern, Concern, str])
        assert values == [CONCERN, CONCERN, "not encrypted"]


async def test_codec_server_encodes_with_the_active_key(codec_server: CodecServer) -> None:
    plain = (await pydantic_data_converter.encode([CONCERN]))[0]
    status, _, answer = call(f"{codec_server.url}/encode", as_json(plain), Authorization=f"Bearer {TOKEN}")
    assert status == 200, answer
    [sealed] = json_format.Parse(answer, Payloads()).payloads
    assert sealed.metadata[KEY_ID_METADATA] == b"k2"
    assert ONLY_NEW.decrypt(sealed) == plain


def test_codec_server_answers_the_cors_preflight_without_a_token(codec_server: CodecServer) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    for origin in DEFAULT_ORIGINS:
        status, headers, _ = call(f"{codec_server.url}/decode", method="OPTIONS", Origin=origin, **preflight)
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in headers["Access-Control-Allow-Methods"]
        allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "x-namespace", "authorization"} <= allowed
    status, headers, _ = call(
        f"{codec_server.url}/decode", method="OPTIONS", Origin="https://evil.example", **preflight
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"payloads": [{"data": "%%%"}]}', b'{"payload": []}', b"\xff\xfe"]
)
def test_codec_server_refuses_bad_json_with_400(codec_server: CodecServer, body: bytes) -> None:
    status, _, answer = call(f"{codec_server.url}/decode", body, Authorization=f"Bearer {TOKEN}")
    assert status == 400
    assert "payloads" in json.loads(answer)["error"]


async def test_codec_server_refuses_what_it_cannot_decrypt_or_serve(codec_server: CodecServer) -> None:
    other = await encrypted(Keyring.parse(f"elsewhere:{new_key()}"), CONCERN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, answer = call(f"{codec_server.url}/decode", as_json(other), **auth)
    assert status == 422 and "'elsewhere'" in json.loads(answer)["error"]
    status, _, _ = call(f"{codec_server.url}/decode", as_json(other), **auth, **{"X-Namespace": "another"})
    assert status == 403
    assert call(f"{codec_server.url}/other", b"{}", **auth)[0] == 404


def test_codec_server_runs_as_a_module(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ESCALATION_PAYLOAD_KEYS": f"k2:{K2},k1:{K1}"}
    command = [sys.executable, "-m", "starter.codec_server", "--host", "127.0.0.1", "--port", str(port)]
    missing = subprocess.run(
        command, cwd=tmp_path, env={**env, "ESCALATION_CODEC_TOKEN": ""}, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "ESCALATION_CODEC_TOKEN" in missing.stderr
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**env, "ESCALATION_CODEC_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in ready, ready
        status, _, answer = call(
            f"http://127.0.0.1:{port}/decode", b'{"payloads": []}', Authorization=f"Bearer {TOKEN}"
        )
        assert (status, json.loads(answer)) == (200, {"payloads": []})
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert TOKEN not in stderr, "the request log never shows the token"


# --- what the server keeps on disk ----------------------------------------------------------------------


async def _server_files_after_a_run(folder: Path, data_converter: DataConverter, marker: str) -> bytes:
    """Run one escalation (raise with a memo, a note by update, withdraw) on a dev server that keeps its
    state in ``folder/temporal.db``; return every byte of that database's files."""
    try:
        exe = temporal_cli_path()
    except RuntimeError as exc:
        require_or_skip(str(exc))
    folder.mkdir()
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(exe),
            ip="127.0.0.1",
            port=free_port(),
            ui=False,
            dev_server_database_filename=str(folder / "temporal.db"),
            dev_server_log_level="error",
            dev_server_startup_timeout=timedelta(seconds=60),
            data_converter=data_converter,
        )
    except Exception as exc:
        require_or_skip(f"Temporal dev server ({exe}) could not start: {exc!r}")
    try:
        officer = Actor(id="glo-iro-a", role="iro")
        raise_ = prepare(
            authority="gloucestershire",
            track="iro-cp",
            category="Key decision-making",
            child_ref=unique_ref(),
            sequence=1,
            officer=officer,
            team="team-a",
            concern=CONCERN.model_copy(update={"summary": f"{marker} has no up-to-date care plan"}),
        )
        queue = f"codec-{uuid.uuid4().hex[:8]}"
        files = folder / "records"
        async with build_worker(
            env.client, queue, records=FileRecordStore(files), notifier=OutboxNotifier(files)
        ):
            handle = await env.client.start_workflow(
                WORKFLOW_TYPE,
                raise_,
                id=raise_.escalation_id,
                task_queue=queue,
                memo={"concern": f"memo about {marker}"},
                result_type=EscalationOutcome,
            )
            await handle.execute_update(
                "add_note", AddNote(actor=officer, text=f"{marker} spoke to me today")
            )
            await handle.execute_update("withdraw", Withdraw(actor=officer, reason=f"{marker} moved away"))
            outcome: EscalationOutcome = await handle.result()
        assert outcome.escalation_id == raise_.escalation_id
        described = await handle.describe()
        memo = await described.memo()
        assert memo == {"concern": f"memo about {marker}"}
    finally:
        await env.shutdown()
    return b"".join(p.read_bytes() for p in sorted(folder.glob("temporal.db*")))


@pytest.mark.slow
async def test_a_real_server_keeps_no_concern_text_in_clear(tmp_path: Path) -> None:
    marker = f"Zanzibar{uuid.uuid4().hex[:12]}"
    stored = await _server_files_after_a_run(tmp_path / "encrypted", DATA_CONVERTER, marker)
    assert marker.encode() not in stored
    assert b"placement broke down" not in stored and b"moved school" not in stored
    assert b"glo-iro-a" not in stored, "the actor is inside encrypted payloads too"

    # The control: the same run without the codec leaves the text readable in the same files.
    control = f"Zanzibar{uuid.uuid4().hex[:12]}"
    plain = await _server_files_after_a_run(tmp_path / "plain", pydantic_data_converter, control)
    assert plain.count(control.encode()) >= 4, "input, memo, note update and withdrawal, in clear"
