"""Run the installed ``escalate`` command as a person would: its own process, output and exit status."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

ESCALATE = Path(sys.executable).with_name("escalate")
TIMEOUT_S = 60


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


class Cli:
    """Runs ``escalate`` against one Temporal server."""

    def __init__(self, address: str, cwd: Path, **env: str) -> None:
        self.address = address
        self.cwd = cwd
        self.env = env
        """Set for every call (who acts, e.g. ``ESCALATE_AS_ID``); a call's own ``env`` wins."""

    async def run(self, *args: str, **env: str) -> Result:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ESCALATE_", "TEMPORAL_"))}
        proc = await asyncio.create_subprocess_exec(
            str(ESCALATE),
            *args,
            cwd=self.cwd,
            env={**clean, "TEMPORAL_ADDRESS": self.address, **self.env, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
        finally:
            if proc.returncode is None:  # timed out: leave no process behind
                proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str, **env: str) -> str:
        result = await self.run(*args, **env)
        assert result.code == 0 and not result.err.strip(), f"escalate {' '.join(args)}: {result}"
        return result.out

    async def fails(self, code: int, *args: str, **env: str) -> str:
        """The one-line reason of a call that must fail with ``code`` and print nothing on stdout."""
        result = await self.run(*args, **env)
        assert result.code == code, f"escalate {' '.join(args)}: {result}"
        assert result.out == "", f"a failure prints only its reason: {result}"
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, f"a failure is one line, not a traceback: {result}"
        return lines[0]

    async def state(self, escalation_id: str, **env: str) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(await self.ok("status", escalation_id, "--json", **env))
        return view


def wigan_raise_args(child: str) -> list[str]:
    """``escalate raise`` of a concern about ``child`` by Wigan's IRO ``wig-iro-a`` for team-a."""
    return [
        "raise", "--child-status", "looked_after", "--authority", "wigan", "--track", "iro",
        "--category", "1", "--child-ref", child, "--team", "team-a",
        "--officer-id", "wig-iro-a", "--officer-role", "iro",
        "--summary", "The plan's actions have not started.", "--impact", "The child waits.",
        "--request", "Start them.", "--sequence", "1",
    ]  # fmt: skip


@asynccontextmanager
async def cli_beside_worker(env: WorkflowEnvironment, tmp_path: Path, accounts: str) -> AsyncIterator[Cli]:
    """The command against ``env``, with a worker recording into a SQLite database in ``tmp_path`` that is
    also the command's audit log (as deployed), and ``accounts`` as its declared service accounts."""
    from activities.db_records import DbRecordStore
    from activities.recording import OutboxNotifier
    from tests.databases import migrated_engine
    from worker import build_worker
    from workflows.names import TASK_QUEUE

    if not ESCALATE.exists():
        pytest.fail(f"{ESCALATE} is missing: install the project (pip install -e .) so the command exists")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with migrated_engine(url) as engine:
        records, notifier = DbRecordStore(engine), OutboxNotifier(tmp_path)
        async with build_worker(env.client, TASK_QUEUE, records=records, notifier=notifier):
            yield Cli(
                env.client.service_client.config.target_host,
                tmp_path,
                ESCALATION_DATABASE_URL=url,
                ESCALATION_SERVICE_ACCOUNTS=accounts,
            )
