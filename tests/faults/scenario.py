"""A fault scenario: real components, escalations driven through many actions, faults injected as they go.

``run_scenario(config)`` starts PostgreSQL, an SMTP catcher, a Temporal dev server on a database file and
the worker as a separate process, drives ``config.escalations`` escalations (more batches while
``config.minutes`` last) and injects faults between actions, each after a seeded number of actions:

* ``worker_kill``: SIGKILL the worker at a seeded random moment, then start a new one;
* ``temporal_term`` / ``temporal_kill``: stop the server with SIGTERM / SIGKILL, start it again on the same
  database file and port;
* ``postgres_stop``: ``pg_ctl stop -m fast``, keep it down until an activity has failed against it (or a
  while), start it again;
* ``smtp_stop``: stop the SMTP server the same way, start it again on the same port.

Once the drive is over and every fault cleared, ``tests.faults.checks`` waits for everything to settle
and checks it. A worker that exits unless killed is a violation too (it is replaced so the run goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from starter.connection import DATA_CONVERTER
from tests.faults.checks import Fault, Findings, check_all
from tests.faults.components import MailCatcher, PostgresServer, TemporalServer, WorkerProcess
from tests.faults.driver import Driven, DriverStuck, EscalationDriver, Progress

__all__ = ["KINDS", "Config", "Report", "run_scenario"]

KINDS = ("worker_kill", "temporal_term", "temporal_kill", "postgres_stop", "smtp_stop")
NOTICE_S = 15.0
"""After its seeded length, an outage lasts until an activity failed against it, but no longer than this."""


@dataclass
class Config:
    escalations: int = 4
    actions: int = 10
    seed: int = 20261201
    plan: list[str] | None = None
    """The faults, in order (CI); ``None``: random kinds until the drive is over (soak)."""
    minutes: float = 0.0
    """Keep starting batches of escalations until this much time has passed (at least one batch)."""
    gap: tuple[int, int] = (2, 5)
    """Actions between one fault and the next (seeded, inclusive)."""
    outage_s: tuple[float, float] = (1.5, 4.0)
    """How long PostgreSQL or SMTP stays down at least (seeded, uniform)."""
    drive_timeout_s: float = 600.0
    settle_timeout_s: float = 300.0
    folder: Path | None = None
    say: Callable[[str], None] | None = None
    """Told of each fault as it is cleared (the soak prints them)."""


@dataclass
class Report:
    findings: Findings
    faults: Counter[str] = field(default_factory=Counter)
    applied: int = 0
    refused: int = 0
    busy_retries: int = 0
    transient_retries: int = 0
    workers_started: int = 0
    worker_exits: list[str] = field(default_factory=list)
    drive_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def violations(self) -> list[str]:
        return [
            *self.findings.violations(),
            *(f"worker exited unasked: {w}" for w in self.worker_exits),
            *(f"drive: {e}" for e in self.drive_errors),
        ]

    def summary(self) -> str:
        f = self.findings
        faults = ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items())) or "none"
        lines = [
            f"faults injected: {sum(self.faults.values())} ({faults}); "
            f"workers started: {self.workers_started}",
            f"escalations: {f.escalations}; actions applied {self.applied}, refused {self.refused}; "
            f"retried: {self.busy_retries} busy, {self.transient_retries} while a component was down",
            f"events: {f.events}; lost {len(f.lost_events)}, duplicated {len(f.duplicate_events)}, "
            f"extra {len(f.extra_events)}; workflow task timeouts {f.task_timeouts}",
            f"mails: {f.mails_delivered} delivered, {f.message_ids} Message-IDs; duplicates explained by the "
            f"crash window {len(f.duplicates_explained)}, unexplained {len(f.duplicates_unexplained)}; "
            f"lost {len(f.lost_mails)}, unlogged {len(f.unlogged_mails)} (explained by the crash window "
            f"{len(f.unlogged_explained)})",
            f"stuck: {len(f.stuck)}; replay failures: {len(f.replay_failures)}; took {self.seconds:.0f}s",
        ]
        lines += [f"  explained duplicate: {d}" for d in f.duplicates_explained]
        lines += [f"  explained unlogged: {d}" for d in f.unlogged_explained]
        lines += [f"  VIOLATION {v}" for v in self.violations()]
        return "\n".join(lines)


class _Scenario:
    def __init__(self, config: Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.rng = random.Random(f"faults/{config.seed}")
        self.progress = Progress()
        self.faults: list[Fault] = []
        self.report = Report(findings=Findings())
        self.worker_lock = asyncio.Lock()
        self.drive_over = asyncio.Event()
        self.pg = PostgresServer()
        self.catcher = MailCatcher()
        self.server = TemporalServer(folder)
        self.worker: WorkerProcess | None = None
        self.client: Client | None = None
        self.driven: list[Driven] = []
        self.active: list[EscalationDriver] = []

    async def run(self) -> Report:
        begun = time.monotonic()
        engine: Engine | None = None
        try:
            url = await asyncio.to_thread(self.pg.open)
            engine = create_engine(url, pool_pre_ping=True)
            self.catcher.start()
            await self.server.start()
            self.client = await Client.connect(
                self.server.address, data_converter=DATA_CONVERTER, runtime=_quiet_runtime()
            )
            self.worker = WorkerProcess(
                self.folder, address=self.server.address, database_url=url, smtp_port=self.catcher.port
            )
            await self.worker.start()
            watch = asyncio.create_task(self._watch_worker())
            injecting = asyncio.create_task(self._inject_faults())
            await self._drive(begun)
            self.drive_over.set()
            await injecting
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            self.report.findings = await check_all(
                self.client,
                engine,
                self.driven,
                self.catcher.deliveries,
                self.faults,
                deadline=time.monotonic() + self.config.settle_timeout_s,
            )
            self.report.workers_started = self.worker.started
            code = await self.worker.stop()
            if code != 0:
                self.report.worker_exits.append(f"the last worker exited with {code} on SIGTERM")
        finally:
            self.report.seconds = time.monotonic() - begun
            p = self.progress
            self.report.applied, self.report.refused = p.applied, p.refused
            self.report.busy_retries, self.report.transient_retries = p.busy, p.transient
            if self.worker is not None:
                await self.worker.kill()
            await self.server.close()
            self.catcher.stop()
            if engine is not None:
                engine.dispose()
            await asyncio.to_thread(self.pg.stop)
            shutil.rmtree(self.pg.root, ignore_errors=True)
        return self.report

    # -- the drive ----------------------------------------------------------------------------------------

    async def _drive(self, begun: float) -> None:
        assert self.client is not None
        stop_at = begun + self.config.minutes * 60
        deadline = time.monotonic() + self.config.drive_timeout_s + self.config.minutes * 60
        number = 0
        while True:
            drivers = [
                EscalationDriver(
                    self.client,
                    number + n,
                    seed=self.config.seed,
                    actions=self.config.actions,
                    progress=self.progress,
                    deadline=deadline,
                )
                for n in range(self.config.escalations)
            ]
            number += len(drivers)
            self.active = drivers
            results = await asyncio.gather(*(d.run() for d in drivers), return_exceptions=True)
            for driver, result in zip(drivers, results, strict=True):
                self.driven.append(driver.driven)
                if isinstance(result, DriverStuck):
                    self.report.drive_errors.append(str(result))
                elif isinstance(result, BaseException):
                    self.report.drive_errors.append(f"{driver.driven.escalation_id}: {result!r}")
            self.active = []
            if time.monotonic() >= stop_at:
                return

    # -- faults -------------------------------------------------------------------------------------------

    async def _inject_faults(self) -> None:
        plan = list(self.config.plan) if self.config.plan is not None else None
        while plan is None or plan:
            kind = plan.pop(0) if plan is not None else self.rng.choice(KINDS)
            gap = self.rng.randint(*self.config.gap)
            waiting = asyncio.create_task(self._actions_pass(self._actions() + gap))
            over = asyncio.create_task(self.drive_over.wait())
            await asyncio.wait({waiting, over}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            over.cancel()
            if plan is None and self.drive_over.is_set():
                return
            began = time.monotonic()
            await self._inject(kind)
            self.report.faults[kind] += 1
            if self.config.say is not None:
                self.config.say(
                    f"fault {sum(self.report.faults.values())}: {kind} after {self._actions()} actions, "
                    f"cleared in {time.monotonic() - began:.1f}s"
                )

    def _actions(self) -> int:
        return self.progress.applied + self.progress.refused

    async def _actions_pass(self, target: int) -> None:
        await self.progress.wait_for(lambda: self._actions() >= target)

    async def _inject(self, kind: str) -> None:
        assert self.worker is not None
        if kind == "worker_kill":
            await asyncio.sleep(self.rng.uniform(0.0, 1.5))  # a random moment of whatever is under way
            async with self.worker_lock:
                at = time.time()
                await self.worker.kill()
                await self.worker.start()
                # Until the new worker is ready: the catcher may accept a message the dead worker had
                # sent whole just before the kill a moment after it (no other worker runs meanwhile).
                self.faults.append(Fault(kind, at, time.time()))
        elif kind in ("temporal_term", "temporal_kill"):
            start = time.time()
            await self.server.stop(signal.SIGTERM if kind == "temporal_term" else signal.SIGKILL)
            await self.server.start()
            self.faults.append(Fault(kind, start, time.time()))
        elif kind == "postgres_stop":
            start = time.time()
            await asyncio.to_thread(self.pg.stop_fast)
            await self._outage({"record_event", "send_notification", "record_refusal"})
            await asyncio.to_thread(self.pg.start)
            self.faults.append(Fault(kind, start, time.time()))
        elif kind == "smtp_stop":
            start = time.time()
            await asyncio.to_thread(self.catcher.stop)
            await self._outage({"send_notification"})
            await asyncio.to_thread(self.catcher.start)
            self.faults.append(Fault(kind, start, time.time()))
        else:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")

    async def _outage(self, activities: set[str]) -> None:
        """Keep a component down for a seeded while, then until an activity failed against it (bounded)."""
        assert self.client is not None
        await asyncio.sleep(self.rng.uniform(*self.config.outage_s))
        began = time.monotonic()
        while time.monotonic() - began < NOTICE_S:
            for d in self.driven_now():
                with contextlib.suppress(Exception):
                    described = (await self.client.get_workflow_handle(d).describe()).raw_description
                    if any(
                        p.activity_type.name in activities and p.attempt >= 2
                        for p in described.pending_activities
                    ):
                        return
            await asyncio.sleep(0.25)

    def driven_now(self) -> list[str]:
        """The escalations driven so far and those being driven."""
        return [d.escalation_id for d in self.driven] + [d.driven.escalation_id for d in self.active]

    async def _watch_worker(self) -> None:
        """A worker that exits unless killed is a finding; replace it so the run goes on."""
        assert self.worker is not None
        while True:
            await asyncio.sleep(0.5)
            async with self.worker_lock:
                if not self.worker.alive():
                    code = self.worker.proc.returncode if self.worker.proc else None
                    self.report.worker_exits.append(f"exit code {code}; log {self.worker.log}")
                    await self.worker.start()


def _quiet_runtime() -> Runtime:
    """The drive's client logs errors only: its retries while the server is down are expected."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


async def run_scenario(config: Config) -> Report:
    """Run ``config`` in its folder (or a temporary one, removed afterwards)."""
    if config.folder is not None:
        config.folder.mkdir(parents=True, exist_ok=True)
        return await _Scenario(config, config.folder).run()
    with tempfile.TemporaryDirectory(prefix="escalation-faults-") as tmp:
        return await _Scenario(config, Path(tmp)).run()
