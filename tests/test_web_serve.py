"""``python -m starter.web`` (the Compose ``web`` service's command) as a real process against a dev
server: it prints its URL once serving, answers its health check and pages, and stops with exit 0 on
SIGTERM; a wrong setting exits 2 naming the variable."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.temporal_servers import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCALATE_")}
    env.update(
        {
            "ESCALATION_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
            "ESCALATION_DATA_DIR": str(tmp_path / "data"),
            "ESCALATE_SESSION_SECRET": "s" * 48,
            **extra,
        }
    )
    return env


async def test_serves_until_sigterm_then_exits_zero(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    address = dev_server_env.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.web",
        "--port",
        str(port),
        cwd=ROOT,
        env=_env(tmp_path, TEMPORAL_ADDRESS=address),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().strip() == f"web app at http://127.0.0.1:{port}", line
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).text == "ok\n"
            sign_in = await client.get("/sign-in")
            assert sign_in.status_code == 200 and "Development sign-in" in sign_in.text
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert "web app stopped" in out.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_wrong_setting_exits_2_naming_it(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.web",
        cwd=ROOT,
        env=_env(tmp_path, ESCALATE_ENV="production", ESCALATE_SESSION_SECRET="short"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "ESCALATE_SESSION_SECRET is too short" in err.decode()
