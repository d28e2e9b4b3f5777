"""What the benchmarks share: a dev server they start themselves, a counting mail catcher, a throwaway
payload key, process CPU and memory from ``/proc``, updates resent while refused as ``Busy``, and
counts taken from fetched histories.

The worker itself is started as ``tests.faults.components.WorkerProcess`` (``python worker.py``), so its
CPU time and memory are its own and not mixed with the driver's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from starter.codec import new_key
from starter.connection import DATA_CONVERTER
from starter.temporal_binaries import temporal_cli_path
from tests.temporal_servers import free_port
from workflows import search_attributes
from workflows.escalation import BUSY

__all__ = [
    "CountingCatcher",
    "DevServer",
    "HistoryCounts",
    "ServerKind",
    "cpu_seconds",
    "ensure_payload_key",
    "history_counts",
    "rss_bytes",
    "spawn_until_ready",
    "stop_process",
    "until_not_busy",
]

ServerKind = Literal["memory", "file"]
T = TypeVar("T")
START_TIMEOUT_S = 120.0
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def ensure_payload_key() -> None:
    """A throwaway payload key for this run (inherited by the worker processes), unless one is set."""
    if not os.environ.get("ESCALATION_PAYLOAD_KEYS"):
        os.environ["ESCALATION_PAYLOAD_KEYS"] = f"bench:{new_key()}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` now, from ``/proc/<pid>/statm``."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


class DevServer:
    """``temporal server start-dev`` on a free port: in memory, or on ``folder/temporal.db``."""

    def __init__(self, kind: ServerKind, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.port = free_port()
        self.db_file = folder / f"temporal-{kind}.db"
        self.log = folder / f"temporal-{kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> Client:
        """Start it and return a client (the project's encrypting data converter) once it answers."""
        cmd = [str(temporal_cli_path()), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        if self.kind == "file":
            cmd += ["--db-filename", str(self.db_file)]
        cmd += ["--headless", "--log-level", "error", "--dynamic-config-value"]
        cmd += ["frontend.enableServerVersionCheck=false", *search_attributes.registration_flags()]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dev server exited with {self.proc.returncode}; see {self.log}")
            try:
                client = await Client.connect(self.address, data_converter=DATA_CONVERTER)
                await client.service_client.check_health()
                return client
            except Exception:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _Counter:
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 Message accepted for delivery"


class CountingCatcher:
    """A real SMTP server (aiosmtpd) on a free port that accepts and counts messages, keeping none."""

    def __init__(self) -> None:
        self.port = free_port()
        self._handler = _Counter()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> int:
        return self._handler.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


async def until_not_busy(call: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
    """``call()``, sent again (after 20 ms, doubling to 0.5 s) while the workflow refuses it as ``Busy``."""
    pause = 0.02
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if (
                not (isinstance(cause, ApplicationError) and cause.type == BUSY)
                or time.monotonic() > deadline
            ):
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


class HistoryCounts:
    """Mean history events, activities scheduled and workflow tasks started per closed workflow."""

    def __init__(self) -> None:
        self.workflows = 0
        self.totals: Counter[str] = Counter()

    def add(self, event_types: list[int]) -> None:
        self.workflows += 1
        self.totals["events"] += len(event_types)
        self.totals["activities"] += event_types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        self.totals["workflow_tasks"] += event_types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)

    def mean(self, what: str) -> float:
        return self.totals[what] / self.workflows if self.workflows else float("nan")


async def history_counts(handles: list[WorkflowHandle[Any, Any]]) -> HistoryCounts:
    """Counts over the histories of ``handles`` (fetched one after another)."""
    counts = HistoryCounts()
    for handle in handles:
        history = await handle.fetch_history()
        counts.add([e.event_type for e in history.events])
    return counts


async def spawn_until_ready(cmd: list[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    """Start ``cmd`` (from the project root, output to ``log``) and wait until ``ready`` is in its output."""
    root = Path(__file__).resolve().parents[1]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    deadline = time.monotonic() + START_TIMEOUT_S
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{cmd[1:3]} did not start: {log.read_text(errors='replace')[-2000:]}")
        await asyncio.sleep(0.05)
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not gone within 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
