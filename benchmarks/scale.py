"""Many open escalations on the embedded stack: what they cost and how the product copes.

    .venv/bin/python benchmarks/scale.py [--escalations 10000] [--wave 2000]

Starts a file-backed dev server (``--server memory``: in memory), an aiosmtpd catcher and
``python worker.py`` (SQLite record store), then:

1. starts ``--escalations`` escalations (gloucestershire, informal stage) ``--concurrency`` at a time:
   start rate, and the time until the worker has recorded every one;
2. worker and server resident memory (``/proc/<pid>/statm``) and the database files' sizes;
3. the case-note outbox: how fast it drains (at most ``--drain-timeout`` seconds, then the rate so far);
4. ``escalate status ID`` and ``escalate list`` as subprocesses, beside ``escalate --help`` (the parser
   alone, no server call) and ``python -c pass`` (the interpreter start);
   the list twice: from the record store (the database URL in its environment, as on the embedded stack)
   and from Temporal's visibility (``--source visibility``);
5. a deadline wave: ``--wave`` escalations whose informal deadlines are the same instant, the start of a
   minute on the real clock. A real protocol cannot do that (deadlines are the end of a working day), so
   these run on ``benchmarks/wave_worker.py``: the real worker whose working-day clock places a stage
   received before the chosen instant due at that instant. The deadline timer, the automatic escalation,
   its records and mail are the product's own. Lateness = ``escalation_events`` row ``deadline_passed``:
   ``at`` (the workflow's clock when the timer fired) and ``recorded_at`` (when the row was written),
   each minus the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client

from benchmarks.options import seconds, whole_number
from benchmarks.stack import (
    CountingCatcher,
    DevServer,
    ensure_payload_key,
    rss_bytes,
    spawn_until_ready,
    stop_process,
)
from benchmarks.wave_worker import READY_LINE
from schemas.escalation import Concern, RaiseConcern, escalation_id_for
from starter.clean_exit import run_then_exit
from starter.escalations import prepare, raise_concern
from starter.sample_data import TEAM, person

AUTHORITY = "gloucestershire"
WAVE_QUEUE = "bench-wave"


def template() -> RaiseConcern:
    return prepare(
        authority=AUTHORITY,
        track="iro-cp",
        category="Key decision-making",
        child_ref="BENCH0",
        sequence=1,
        officer=person(AUTHORITY, "iro"),
        team=TEAM,
        concern=Concern(
            summary="Benchmark: the care plan's review is overdue.",
            impact_on_child="Decisions for the child wait on the review.",
            requested_action="Hold the review and confirm the date in writing.",
        ),
    )


def copies(base: RaiseConcern, prefix: str, n: int) -> list[RaiseConcern]:
    """``n`` escalations like ``base`` with their own (opaque) child references: checked once, not n times."""
    out = []
    for i in range(n):
        ref = f"{prefix}{i:06d}"
        out.append(
            base.model_copy(update={"child_ref": ref, "escalation_id": escalation_id_for(AUTHORITY, ref, 1)})
        )
    return out


async def start_all(client: Client, items: list[RaiseConcern], concurrency: int, queue: str | None) -> float:
    """Start every escalation, ``concurrency`` at a time; seconds taken."""
    gate = asyncio.Semaphore(concurrency)

    async def one(raise_: RaiseConcern) -> None:
        async with gate:
            if queue:
                await raise_concern(client, raise_, queue)
            else:
                await raise_concern(client, raise_)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(r) for r in items))
    return time.perf_counter() - t0


def scalar(db: Path, sql: str, *params: object) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute(sql, params).fetchone()[0] or 0)


async def wait_for(check: Callable[[], bool], timeout: float, every: float = 1.0) -> float | None:
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout:
            return None
        await asyncio.sleep(every)
    return time.perf_counter() - t0


def timed_runs(cmd: list[str], runs: int, env: dict[str, str], timeout: float) -> tuple[float | None, str]:
    """Median seconds of ``runs`` runs of ``cmd`` (None if one failed or timed out) and its last output."""
    times = []
    out = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s"
        times.append(time.perf_counter() - t0)
        out = done.stdout + done.stderr
        if done.returncode != 0:
            return None, out
    return statistics.median(times), out


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


async def run(args: argparse.Namespace, folder: Path) -> None:
    catcher = CountingCatcher()
    catcher.start()
    server = DevServer(args.server, folder)
    records = folder / "records.db"
    db_url = f"sqlite:///{records}"
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    try:
        client = await server.start()
        common = ["--address", server.address, "--database-url", db_url, "--smtp-host", "127.0.0.1"]
        common += ["--smtp-port", str(catcher.port), "--data-dir", str(folder / "data")]
        worker = await spawn_until_ready([py, "-u", "worker.py", *common], folder / "worker.log", READY_LINE)
        procs.append(worker)
        base = template()
        prefix = "S" + uuid.uuid4().hex[:6].upper()
        n = args.escalations

        # 1. starts
        seconds = await start_all(client, copies(base, prefix, n), args.concurrency, None)
        print(
            f"started {n} escalations in {seconds:.1f} s: {n / seconds:.1f}/s, {args.concurrency} at a time"
        )
        recorded = await wait_for(
            lambda: (
                scalar(records, "SELECT count(*) FROM escalations WHERE escalation_id LIKE ?", f"%{prefix}%")
                >= n
            ),
            args.settle_timeout,
        )
        took = seconds + recorded if recorded is not None else None
        print(
            f"worker recorded all {n} after {took:.1f} s: {n / took:.1f}/s end to end"
            if took
            else f"worker had not recorded all {n} within {args.settle_timeout:.0f} s"
        )

        # 2. memory and files
        print(f"worker RSS {mib(rss_bytes(worker.pid))}, dev server RSS {mib(rss_bytes(server.pid))}")
        print(f"files: Temporal {mib(file_size(server.db_file))}, records {mib(file_size(records))}")

        # 3. case notes
        def pending() -> int:
            return scalar(records, "SELECT count(*) FROM case_notes WHERE status != 'delivered'")

        before = scalar(records, "SELECT count(*) FROM case_notes WHERE status = 'delivered'")
        total = scalar(records, "SELECT count(*) FROM case_notes")
        drained = await wait_for(lambda: pending() == 0, args.drain_timeout)
        now_delivered = scalar(records, "SELECT count(*) FROM case_notes WHERE status = 'delivered'")
        window = drained if drained is not None else args.drain_timeout
        rate = (now_delivered - before) / window if window else float("nan")
        if drained is not None:
            print(f"case notes: {total}, outbox empty {drained:.0f} s after the starts were recorded")
        else:
            left = pending()
            eta = left / rate if rate else math.inf
            print(f"case notes: {total}, {left} still pending after {window:.0f} s (about {eta:.0f} s more)")
        print(f"case notes delivered at {rate:.1f}/s over that window ({now_delivered - before} notes)")

        # 4. the escalate command
        # The command acts as a directory person: the officer who raised them all sees them all.
        env = dict(os.environ, TEMPORAL_ADDRESS=server.address, ESCALATE_AS_ID=person(AUTHORITY, "iro").id)
        escalate = str(Path(py).parent / "escalate")
        baseline, _ = timed_runs([escalate, "--help"], 5, env, 60)
        bare_python, _ = timed_runs([py, "-c", "pass"], 5, env, 60)
        one = escalation_id_for(AUTHORITY, f"{prefix}{n // 2:06d}", 1)
        status, out = timed_runs([escalate, "status", one], 5, env, 120)
        records_env = dict(env, ESCALATION_DATABASE_URL=db_url)  # as on the embedded stack
        listing, lout = timed_runs([escalate, "list"], 3, records_env, args.list_timeout)
        visible, vout = timed_runs([escalate, "list", "--source", "visibility"], 3, env, args.list_timeout)
        assert baseline is not None and bare_python is not None
        print(f"interpreter start: `escalate --help` {baseline:.2f} s (`python -c pass` {bare_python:.2f} s)")
        if status is None:
            print(f"`escalate status` failed: {out.strip()[-300:]}")
        else:
            beyond = f"{status - baseline:.2f} s beyond --help, {status - bare_python:.2f} s beyond python"
            print(f"`escalate status`: {status:.2f} s: {beyond}")
        for source, listed, output in (("record store", listing, lout), ("visibility", visible, vout)):
            if listed is None:
                print(
                    f"`escalate list` of {n} from the {source}: failed or too slow: {output.strip()[-300:]}"
                )
            else:
                rows = sum(1 for line in output.splitlines() if prefix in line)
                print(
                    f"`escalate list` from the {source} ({rows} rows, median of 3): {listed:.2f} s: "
                    f"{listed - baseline:.2f} s beyond --help"
                )

        # 5. the deadline wave
        if args.wave:
            await wave(
                args, client, base, common, folder, records, procs, recorded_rate=n / took if took else 5.0
            )
        print(f"worker RSS at the end {mib(rss_bytes(worker.pid))}, mails caught {catcher.messages}")
    finally:
        for proc in procs:
            stop_process(proc)
        server.stop()
        catcher.stop()


async def wave(
    args: argparse.Namespace,
    client: Client,
    base: RaiseConcern,
    common: list[str],
    folder: Path,
    records: Path,
    procs: list[subprocess.Popen[bytes]],
    recorded_rate: float,
) -> None:
    """``args.wave`` escalations due at one instant: how late each one's automatic escalation lands."""
    count = args.wave
    lead = count / max(recorded_rate, 1.0) * 2 + args.wave_lead  # to start and record them all, with room
    ready_by = datetime.now(UTC) + timedelta(seconds=args.wave_in or lead)
    wave_at = (ready_by + timedelta(minutes=1)).replace(second=0, microsecond=0)  # the next minute's start
    if args.wave_lead < 30:  # a quick run: no need to wait for a minute's start
        wave_at = ready_by
    cmd = [sys.executable, "-u", "-m", "benchmarks.wave_worker", *common, "--task-queue", WAVE_QUEUE]
    cmd += ["--wave-at", wave_at.isoformat()]
    if args.wave_cache is not None:
        cmd += ["--cached-workflows", str(args.wave_cache)]
    procs.append(await spawn_until_ready(cmd, folder / "wave-worker.log", READY_LINE))
    prefix = "W" + uuid.uuid4().hex[:6].upper()
    seconds = await start_all(client, copies(base, prefix, count), args.concurrency, WAVE_QUEUE)
    like = f"%{prefix}%"
    ready = await wait_for(
        lambda: scalar(records, "SELECT count(*) FROM escalations WHERE escalation_id LIKE ?", like) >= count,
        max(0.0, (wave_at - datetime.now(UTC)).total_seconds()) + args.settle_timeout,
    )
    early = datetime.now(UTC) <= wave_at
    print(
        f"wave: {count} escalations due at {wave_at:%H:%M:%S} UTC, started in {seconds:.1f} s, "
        f"{'all recorded before' if early and ready is not None else 'NOT all recorded before'} the deadline"
    )
    sql = "SELECT count(*) FROM escalation_events WHERE kind = 'deadline_passed' AND escalation_id LIKE ?"
    done = await wait_for(
        lambda: scalar(records, sql, like) >= count,
        max(0.0, (wave_at - datetime.now(UTC)).total_seconds()) + args.wave_timeout,
    )
    with sqlite3.connect(f"file:{records}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            sql.replace("count(*)", "at, recorded_at"),
            (like,),
        ).fetchall()
    fired = sorted((_instant(at) - wave_at).total_seconds() for at, _ in rows)
    landed = sorted((_instant(rec) - wave_at).total_seconds() for _, rec in rows)
    if not rows:
        print(f"wave: no automatic escalation recorded within {args.wave_timeout:.0f} s of the deadline")
        return
    state = "all" if done is not None else f"only {len(rows)} of {count}"
    print(f"wave: {state} escalated automatically; lateness after the deadline (s):")
    for name, values in (("timer fired (workflow clock)", fired), ("recorded (row written)", landed)):
        print(
            f"  {name:29} median {_pct(values, 50):5.1f} p95 {_pct(values, 95):5.1f} max {values[-1]:5.1f}  "
            f"more than 5 s late: {sum(v > 5 for v in values)}"
        )
    sampled, timeouts = await timeouts_in(client, f"TaskQueue = '{WAVE_QUEUE}'", args.history_sample)
    print(f"wave: in {sampled} of its histories, timeouts: {dict(timeouts) or 'none'}")
    print(f"wave worker RSS {mib(rss_bytes(procs[-1].pid))}")


async def timeouts_in(client: Client, query: str, sample: int) -> tuple[int, Counter[str]]:
    """Workflow-task and activity timeouts (by kind) in the histories of up to ``sample`` matches."""
    found: Counter[str] = Counter()
    seen = 0
    async for execution in client.list_workflows(query, limit=sample):
        seen += 1
        for event in (await client.get_workflow_handle(execution.id).fetch_history()).events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                kind = event.workflow_task_timed_out_event_attributes.timeout_type
                found[f"workflow task {TimeoutType.Name(kind).removeprefix('TIMEOUT_TYPE_').lower()}"] += 1
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                kind = (
                    event.activity_task_timed_out_event_attributes.failure.timeout_failure_info.timeout_type
                )
                found[f"activity {TimeoutType.Name(kind).removeprefix('TIMEOUT_TYPE_').lower()}"] += 1
    return seen, found


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(str(text))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _pct(values: list[float], p: int) -> float:
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


_COUNT = whole_number(0)
_SECONDS = seconds(1, 86400)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escalations", type=_COUNT, default=10_000, help="open escalations (default 10000)")
    parser.add_argument(
        "--server",
        choices=["file", "memory"],
        default="file",
        help="the dev server's store: a SQLite file as on the embedded stack (default), or memory (its "
        "SQLite file has failed here past a few thousand escalations)",
    )
    parser.add_argument(
        "--wave", type=_COUNT, default=2000, help="escalations in the deadline wave (default 2000)"
    )
    parser.add_argument("--concurrency", type=_COUNT, default=50, help="starts in flight (default 50)")
    parser.add_argument("--settle-timeout", type=_SECONDS, default=3600, help="wait for the worker (s)")
    parser.add_argument("--drain-timeout", type=_SECONDS, default=120, help="case-note drain watched (s)")
    parser.add_argument("--list-timeout", type=_SECONDS, default=900, help="`escalate list` allowed (s)")
    parser.add_argument("--wave-timeout", type=_SECONDS, default=600, help="after the wave's deadline (s)")
    parser.add_argument(
        "--wave-in",
        type=_SECONDS,
        default=None,
        help="place the wave's deadline this many seconds after its first start (default: from the rate "
        "of the start phase, which a small --escalations does not show)",
    )
    parser.add_argument(
        "--wave-cache",
        type=_COUNT,
        default=None,
        help="the wave worker's --cached-workflows (default: the worker's)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases (in TMPDIR)")
    parser.add_argument(
        "--history-sample", type=_COUNT, default=100, help="wave histories read for timeouts (default 100)"
    )
    parser.add_argument(
        "--wave-lead",
        type=_SECONDS,
        default=30,
        help="margin (s) before the wave's deadline beyond the time to start it; under 30, the deadline is "
        "not rounded to a minute's start (quick runs)",
    )
    args = parser.parse_args(argv)
    if args.escalations < 1 or args.concurrency < 1:
        parser.error("--escalations and --concurrency: give 1 or more")
    ensure_payload_key()
    if args.keep:  # the logs and databases stay, to look into a failed run
        folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        print(f"files kept in {folder}", flush=True)
        await run(args, folder)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        await run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    run_then_exit(main)
