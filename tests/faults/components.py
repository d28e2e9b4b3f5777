"""The real components a fault scenario runs on, each started by the harness and able to fail on demand.

* ``TemporalServer``: ``temporal server start-dev`` on a database file and a fixed (free) port, stopped with
  SIGTERM or SIGKILL and started again on the same file and port.
* ``WorkerProcess``: ``python worker.py`` as a separate process, ready once it prints its polling line;
  killed with SIGKILL and replaced by a new one.
* ``PostgresServer``: a throwaway cluster (``tests.postgres_server``), stopped with ``pg_ctl stop -m fast``
  and started again on the same port.
* ``MailCatcher``: an aiosmtpd server that timestamps every message it accepts, stopped and started again
  on the same port.

A component that cannot start raises ``ComponentUnavailable``; the test turns that into a skip, or a
failure under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiosmtpd.controller import Controller
from temporalio.client import Client

from activities.settings import PROJECT_ROOT
from starter.connection import DATA_CONVERTER
from starter.temporal_binaries import temporal_cli_path
from tests.postgres_server import DATABASE, _admin, _Cluster, find_postgres_bin
from tests.smtp_server import Capture
from tests.temporal_servers import free_port
from workflows import search_attributes

__all__ = [
    "ComponentUnavailable",
    "MailCatcher",
    "PostgresServer",
    "TemporalServer",
    "TimedDelivery",
    "WorkerProcess",
]

START_TIMEOUT_S = 120.0
"""Generous: on a loaded two-core machine a dev server or a worker can take long to start."""
STOP_TIMEOUT_S = 30.0
READY_LINE = "worker polling task queue"


class ComponentUnavailable(RuntimeError):
    """A component is missing or could not start: the scenario cannot run here."""


def _die_with_parent() -> None:
    """In a child process (Linux): get SIGKILL when the harness dies, so nothing is left running."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out: IO[bytes] = log.open("ab")
    try:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        out.close()


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while (code := proc.poll()) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return code


class TemporalServer:
    """``temporal server start-dev --db-filename FILE`` on 127.0.0.1:``port``, restartable on both."""

    def __init__(self, folder: Path) -> None:
        try:
            self.cli = temporal_cli_path()
        except RuntimeError as exc:
            raise ComponentUnavailable(str(exc)) from exc
        self.db_file = folder / "temporal.db"
        self.log = folder / "temporal.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start it (on the same file and port as before) and wait until it answers a health check."""
        cmd = [
            str(self.cli),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--dynamic-config-value",
            "frontend.enableServerVersionCheck=false",
            "--log-level",
            "error",
            *search_attributes.registration_flags(),
        ]
        self.proc = _spawn(cmd, self.log)
        deadline = time.monotonic() + START_TIMEOUT_S
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ComponentUnavailable(
                    f"the Temporal dev server exited with {self.proc.returncode} while starting:\n"
                    f"{_tail(self.log)}"
                )
            try:
                client = await Client.connect(self.address, data_converter=DATA_CONVERTER)
                await client.service_client.check_health()
                return
            except Exception as exc:
                last = exc
            await asyncio.sleep(0.2)
        raise ComponentUnavailable(f"the Temporal dev server did not answer in time ({last!r})")

    async def stop(self, sig: signal.Signals) -> None:
        """Send ``sig`` (SIGTERM or SIGKILL) and wait until the process has gone."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        if await _wait_exit(proc, STOP_TIMEOUT_S) is None:
            proc.kill()
            await _wait_exit(proc, STOP_TIMEOUT_S)

    async def close(self) -> None:
        await self.stop(signal.SIGTERM)


class WorkerProcess:
    """``python worker.py`` against the server, the record store and the mail server: one at a time."""

    def __init__(self, folder: Path, *, address: str, database_url: str, smtp_port: int) -> None:
        self.folder = folder
        self.args = [
            "--address",
            address,
            "--database-url",
            database_url,
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(smtp_port),
            "--data-dir",
            str(folder / "worker-data"),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0
        self.log = folder / "worker-0.log"

    async def start(self) -> None:
        """Start a new worker process and wait for its ready line (never a guessed sleep)."""
        self.started += 1
        self.log = self.folder / f"worker-{self.started}.log"
        env = dict(os.environ)  # carries ESCALATION_PAYLOAD_KEYS: the worker must read the same payloads
        if not env.get("ESCALATION_PAYLOAD_KEYS"):
            raise ComponentUnavailable("ESCALATION_PAYLOAD_KEYS is not set: the worker could not decrypt")
        self.proc = _spawn([sys.executable, "-u", "worker.py", *self.args], self.log, env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if READY_LINE in _tail(self.log, 100_000):
                return
            if self.proc.poll() is not None:
                raise ComponentUnavailable(
                    f"the worker exited with {self.proc.returncode} while starting:\n{_tail(self.log)}"
                )
            await asyncio.sleep(0.05)
        raise ComponentUnavailable(f"the worker printed no ready line in time:\n{_tail(self.log)}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def kill(self) -> None:
        """SIGKILL: no cleanup, whatever it was doing is cut off."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            await _wait_exit(self.proc, STOP_TIMEOUT_S)

    async def stop(self) -> int | None:
        """SIGTERM and wait: a clean stop exits 0."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.terminate()
        code = await _wait_exit(self.proc, STOP_TIMEOUT_S)
        if code is None:
            self.proc.kill()
            await _wait_exit(self.proc, STOP_TIMEOUT_S)
        return code


class PostgresServer(_Cluster):
    """A throwaway PostgreSQL cluster (as ``tests.postgres_server`` makes it) that can be stopped a while."""

    def __init__(self) -> None:
        bindir = find_postgres_bin()
        if bindir is None:
            raise ComponentUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's 'postgresql' package"
            )
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ComponentUnavailable("running as root and there is no 'postgres' user") from None
        super().__init__(bindir)

    def open(self) -> str:
        """Initialise and start the cluster, create the database; its URL."""
        try:
            self.init()
            for attempt in range(3):  # the free port may be taken between choosing and binding it
                self.port = free_port()
                try:
                    self.start()
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
            _admin(self.url(), f'CREATE DATABASE "{DATABASE}"')
        except Exception as exc:
            raise ComponentUnavailable(f"PostgreSQL could not start: {exc}\n{self.log_tail()}") from exc
        return self.url()

    def stop_fast(self) -> None:
        """``pg_ctl stop -m fast``: disconnects every client and shuts down cleanly."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", timeout=STOP_TIMEOUT_S * 2)


@dataclass(frozen=True)
class TimedDelivery:
    """A message the catcher accepted: its Message-ID and when (``time.time()``) it was accepted."""

    message_id: str
    at: float
    escalation_id: str


class _TimedCapture(Capture):
    def __init__(self) -> None:
        super().__init__()
        self.timed: list[TimedDelivery] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        with self._lock:
            message = self.deliveries[-1].message
            self.timed.append(
                TimedDelivery(str(message["Message-ID"]), time.time(), str(message["X-Escalation-Id"] or ""))
            )
        return reply


class MailCatcher:
    """An SMTP server on 127.0.0.1:``port`` keeping every message; stopped and started on the same port."""

    def __init__(self) -> None:
        self.capture = _TimedCapture()
        self.port = free_port()
        self._controller: Controller | None = None
        self._guard = threading.Lock()

    def start(self) -> None:
        with self._guard:
            try:
                self._controller = Controller(self.capture, hostname="127.0.0.1", port=self.port)
                self._controller.start()
            except Exception as exc:
                raise ComponentUnavailable(f"the aiosmtpd SMTP server could not start: {exc!r}") from exc

    def stop(self) -> None:
        with self._guard:
            if self._controller is not None:
                self._controller.stop()
                self._controller = None

    @property
    def deliveries(self) -> list[TimedDelivery]:
        with self.capture._lock:
            return list(self.capture.timed)
