"""Run the escalation worker: ``python worker.py [--address HOST:PORT] [--namespace NS] [--data-dir DIR]``.

``build_worker(client)`` builds the same worker in-process for tests and tools. ``--smoke`` runs one short
escalation (raise, then withdraw) against the server and exits: a quick check that the worker, the
server and a clean exit all work.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.case_notes import Drain, FileCaseNoteAdapter
from activities.db import migrate
from activities.db.base import make_engine
from activities.db_records import DbRecordStore
from activities.digest import DigestActivities
from activities.directory import sync_directories
from activities.directory_sync import DirectorySyncActivities
from activities.escalation_activities import EscalationActivities
from activities.mail import SmtpNotifier
from activities.recording import FileRecordStore, Notifier, OutboxNotifier, RecordStore
from activities.settings import Settings
from protocols import load_protocol
from schemas.escalation import Actor, Concern, EscalationOutcome, RaiseConcern, Withdraw, escalation_id_for
from starter.clean_exit import run_then_exit
from starter.codec import PayloadKeyError
from starter.connection import DATA_CONVERTER, DEFAULT_ADDRESS, DEFAULT_NAMESPACE, connect, temporal_address
from starter.context_free_runner import ContextFreeRunner
from starter.digest import ensure_digest_schedule
from starter.worker_options import CACHED_WORKFLOWS, add_arguments, apply_settings
from workflows.activation_order import ActivationOrderRunner
from workflows.deemed_agreement import DeemedAgreementWorkflow
from workflows.digest import WeeklyDigestWorkflow
from workflows.directory_sync import DirectorySyncWorkflow
from workflows.escalation import TASK_QUEUE, WORKFLOW_TYPE, EscalationWorkflow
from workflows.good_practice import GoodPracticeWorkflow
from workflows.practice_concern import PracticeConcernWorkflow

WORKFLOWS = (EscalationWorkflow, DeemedAgreementWorkflow, PracticeConcernWorkflow, GoodPracticeWorkflow)
"""Every workflow type the worker runs: escalations and the protocol's other processes."""


def prepare_database(settings: Settings) -> Engine:
    """Migrate the record store to head and load every authority's directory into it."""
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    sync_directories(engine, settings.directory_dir)
    return engine


async def ensure_schedules(client: Client, task_queue: str) -> None:
    """The weekly digest's schedule, made once (a server that refuses schedules is told of, not fatal)."""
    try:
        await ensure_digest_schedule(client, task_queue)
    except RPCError as exc:
        print(
            f"worker: the weekly digest's schedule cannot be made: {exc.message}", file=sys.stderr, flush=True
        )


EXIT_UNAVAILABLE = 3
"""As ``escalate``: the Temporal server cannot be reached."""
ACTIVITY_THREADS = 16
"""Activities run at once, each on its own thread (they wait on the database and on SMTP). The worker takes
no more activity tasks than it has threads: a task held waiting for a thread runs out its heartbeat timeout
(10 s) unheard and is retried, which is what made a deadline wave's last escalations land late."""

LOCAL_ACTIVITY_THREADS = 8
"""Local activities run at once (escalations placing deadlines: a calculation, no I/O), on threads of their
own beside the activities' so that a backlog of one never holds up the other."""

STICKY_QUEUE_TIMEOUT = timedelta(seconds=60)
"""How long a workflow task waits on this worker's own (sticky) queue before the server gives it to any
worker. At a deadline wave thousands of tasks queue at once; at the SDK's 10 s the late ones timed out there,
went to the back of the shared queue and were replayed from their history, adding work to the backlog."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop a running worker cleanly (exit 0)."""

PURE_MODULES = ("schemas", "workflows.rules", "workflows.boundary", "zoneinfo")
"""Deterministic project modules shared with the sandbox instead of re-imported for every workflow run."""


def cache_workflow_bytecode() -> None:
    """Write the workflow modules' bytecode where it is missing or stale.

    The sandbox imports a workflow's module afresh for every workflow it runs (each start, and each return
    to the cache). Without a ``.pyc`` beside the source (an editable install under
    ``PYTHONDONTWRITEBYTECODE``, as on the development machines), each of those imports compiled the
    source again, some 8 ms of CPU per standard lifecycle. A folder that cannot be written is left as it is.
    """
    compileall.compile_dir(Path(workflows.__file__).parent, quiet=2)


def workflow_runner(converter: DataConverter = DATA_CONVERTER) -> WorkflowRunner:
    """The sandbox the worker (and the replay tests) run EscalationWorkflow in, for payloads ``converter``
    encodes.

    Wrapped so that histories recorded before ``workflows.escalation.BOUNDED`` replay (see
    ``workflows.activation_order``), and so that the sandbox is not asked, payload by payload, for a
    serialization context the data converter does not take (``starter.context_free_runner``).
    """
    cache_workflow_bytecode()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES)
    sandbox = SandboxedWorkflowRunner(restrictions=restrictions)
    return ActivationOrderRunner(ContextFreeRunner.wrap(sandbox, converter))


def build_worker(
    client: Client,
    task_queue: str = TASK_QUEUE,
    *,
    records: RecordStore | None = None,
    notifier: Notifier | None = None,
    engine: Engine | None = None,
    settings: Settings | None = None,
    max_cached_workflows: int = CACHED_WORKFLOWS,
) -> Worker:
    """The escalation worker for ``client``.

    Records go to the database record store and notifications over SMTP, both from ``settings`` (the
    environment), unless a test or tool passes its own ``records``/``notifier``.
    """
    settings = settings or Settings()
    if records is None or notifier is None:
        engine = engine or prepare_database(settings)
    records = records or DbRecordStore(engine)  # type: ignore[arg-type]
    notifier = notifier or SmtpNotifier(engine, settings.smtp)  # type: ignore[arg-type]
    activities = EscalationActivities(records=records, notifier=notifier)
    workflows: list[type] = list(WORKFLOWS)
    functions = activities.all()
    if engine is not None:  # the directory lives in the database: it can be synced while running
        workflows.append(DirectorySyncWorkflow)
        functions += DirectorySyncActivities(engine, settings.directory_dir).all()
        workflows.append(WeeklyDigestWorkflow)  # reads the record store's escalations table
        functions += DigestActivities(engine, settings.smtp).all()
    return sized_worker(client, task_queue, functions, max_cached_workflows, workflows=workflows)


def sized_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    max_cached_workflows: int = CACHED_WORKFLOWS,
    *,
    workflows: Sequence[type] = WORKFLOWS,
) -> Worker:
    """A worker running ``workflows`` and ``activities`` with the product's sizing (shared with the
    deadline-wave benchmark's worker, so that its figures are the product's)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        workflow_runner=workflow_runner(client.data_converter),
        activities=activities,
        activity_executor=ThreadPoolExecutor(max_workers=ACTIVITY_THREADS + LOCAL_ACTIVITY_THREADS),
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_local_activities=LOCAL_ACTIVITY_THREADS,
        max_cached_workflows=max_cached_workflows,
        sticky_queue_schedule_to_start_timeout=STICKY_QUEUE_TIMEOUT,
    )


async def deliver_case_notes(
    engine: Engine,
    folder: Path,
    stop: asyncio.Event,
    every: float = 15.0,
    *,
    idle: float = 1.0,
    batch: int = 100,
    threads: int = 4,
) -> None:
    """Drain the case-note outbox to the case-system adapter (here: files in ``folder``) until ``stop``.

    Batch after batch while full ones come back, ``threads`` notes in flight at once; ``idle`` seconds
    between polls once it is empty; notes that failed are retried every ``every`` seconds.
    """
    drain = Drain(
        engine, FileCaseNoteAdapter(folder), batch=batch, threads=threads, idle=idle, retry_every=every
    )
    try:
        while not stop.is_set():
            try:
                _, wait = await asyncio.to_thread(drain.run_once)
            except Exception as exc:  # a database outage must not stop the worker; the notes wait
                print(f"case notes: delivery failed, will retry: {exc}", file=sys.stderr, flush=True)
                wait = every
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
    finally:
        drain.close()


async def smoke(client: Client) -> None:
    """Raise a concern and withdraw it: proves worker, server and client agree end to end."""
    protocol = load_protocol("gloucestershire")
    track = protocol.tracks[0]
    officer = Actor(id="smoke-officer", role=track.officer_roles[0])
    ref = uuid.uuid4().hex[:12].upper()
    raise_ = RaiseConcern(
        escalation_id=escalation_id_for(protocol.key, ref, 1),
        protocol=protocol,
        track=track.key,
        category=track.categories[0],
        child_ref=ref,
        officer=officer,
        concern=Concern(summary="Smoke test", impact_on_child="None", requested_action="None"),
    )
    queue = f"smoke-{ref}"
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        async with build_worker(
            client, queue, records=FileRecordStore(files), notifier=OutboxNotifier(files)
        ):
            handle = await client.start_workflow(
                WORKFLOW_TYPE,
                raise_,
                id=raise_.escalation_id,
                task_queue=queue,
                result_type=EscalationOutcome,
            )
            await handle.execute_update("withdraw", Withdraw(actor=officer, reason="smoke test"))
            outcome = await handle.result()
    print(f"smoke: {outcome.escalation_id} {outcome.status.value} after {outcome.events} events")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--address", help=f"Temporal frontend (default TEMPORAL_ADDRESS or {DEFAULT_ADDRESS})"
    )
    parser.add_argument(
        "--namespace", help=f"Temporal namespace (default TEMPORAL_NAMESPACE or {DEFAULT_NAMESPACE})"
    )
    add_arguments(parser)
    return await serve(parser.parse_args(argv))


async def serve(args: argparse.Namespace) -> int:
    """Run the worker (or the smoke run) with parsed options; 0 once it has stopped cleanly."""
    apply_settings(args)
    try:
        client = await connect(args.address, args.namespace)
    except PayloadKeyError as exc:
        print(f"worker: {exc}", file=sys.stderr, flush=True)
        return 2
    except RuntimeError as exc:  # temporalio's connection failure: one line, exit 3 like `escalate`
        reason = "nothing answers there" if "Connection refused" in str(exc) else str(exc).splitlines()[0]
        print(
            f"worker: cannot reach Temporal at {temporal_address(args.address)}: {reason}; is the server "
            "running (`escalate up`), and are --address and --namespace right?",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    if args.smoke:
        await smoke(client)
        return 0
    settings = Settings()
    engine = prepare_database(settings)
    worker = build_worker(
        client,
        args.task_queue,
        engine=engine,
        settings=settings,
        max_cached_workflows=args.cached_workflows,
    )
    await ensure_schedules(client, args.task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first, then the ready line: whoever waits for the line may stop the worker at once.
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        running = asyncio.create_task(worker.run())
        notes = asyncio.create_task(deliver_case_notes(engine, settings.data_dir / "case-notes", stop))
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"worker polling task queue {args.task_queue!r}; records in {shown}", flush=True)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        if not running.done():
            await worker.shutdown()
        await running
        await notes
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)  # as before (asyncio.run's own Ctrl-C handling, say)
    print("worker stopped", flush=True)
    return 0


if __name__ == "__main__":
    run_then_exit(main)
