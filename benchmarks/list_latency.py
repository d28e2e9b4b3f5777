"""How long ``escalate list`` takes with many escalations: starts N on a dev server and times the list.

    .venv/bin/python benchmarks/list_latency.py --escalations 2000

Starts its own Temporal dev server (in memory, the escalation search attributes registered) and a worker
(file record store and outbox under a temporary folder), raises ``--escalations`` Wigan escalations, waits
until visibility shows each one's running deadline, stops the worker (a list needs none), then times
``escalate list --source visibility`` as a person runs it (its own process, interpreter start included)
and the read model's call alone (the record store's read model is timed by ``benchmarks/scale.py``). With
``--scan`` it also times the old way, one ``state`` query per escalation, with the worker running again.
Prints the figures; exits 0, or 2 if the dev server cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.recording import FileRecordStore, OutboxNotifier
from benchmarks.options import whole_number
from schemas.escalation import Actor, Concern
from starter.clean_exit import run_then_exit
from starter.codec import new_key
from starter.connection import DATA_CONVERTER
from starter.escalations import prepare, raise_concern
from starter.read_model import BASE_QUERY, ListFilter, list_escalations
from starter.temporal_binaries import temporal_cli_path
from worker import build_worker
from workflows import search_attributes as indexed
from workflows.escalation import TASK_QUEUE

ESCALATE = Path(sys.executable).with_name("escalate")
OFFICER = Actor(id="wig-iro-a", role="iro")
CONCERN = Concern(summary="Drift.", impact_on_child="Waiting.", requested_action="Act.")


async def _raise_all(client: Client, count: int, run: str) -> None:
    limit = asyncio.Semaphore(50)

    async def one(n: int) -> None:
        raise_ = prepare(
            authority="wigan",
            track="iro",
            category="Quality of practice",
            child_ref=f"B{run}{n:06d}",
            sequence=1,
            officer=OFFICER,
            concern=CONCERN,
            team="team-a",
        )
        async with limit:
            await raise_concern(client, raise_)

    await asyncio.gather(*(one(n) for n in range(count)))


async def _wait_indexed(client: Client, count: int) -> None:
    """Until visibility shows every escalation with its running deadline (the worker has taken each)."""
    query = f"{BASE_QUERY} AND {indexed.DEADLINE.name} IS NOT NULL"
    while (await client.count_workflows(query)).count < count:
        await asyncio.sleep(0.5)


def _time_command(address: str, *args: str) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCALATE_", "TEMPORAL_"))}
    started = time.perf_counter()
    done = subprocess.run(
        [str(ESCALATE), *args],
        env={**env, "TEMPORAL_ADDRESS": address, "ESCALATE_AS_ID": OFFICER.id},  # who lists: the officer
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"escalate {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return took, len(done.stdout.splitlines())


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--escalations", type=whole_number(1, 100_000), default=2000, help="how many to start (default 2000)"
    )
    parser.add_argument("--scan", action="store_true", help="also time the old one-query-per-escalation list")
    args = parser.parse_args(argv)
    os.environ.setdefault("ESCALATION_PAYLOAD_KEYS", f"list-bench:{new_key()}")
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_cli_path()),
            ip="127.0.0.1",
            ui=False,
            search_attributes=indexed.ALL,
            dev_server_log_level="error",
            data_converter=DATA_CONVERTER,
        )
    except Exception as exc:
        print(f"the Temporal dev server could not start: {exc!r}", file=sys.stderr)
        return 2
    try:
        client = env.client
        address = client.service_client.config.target_host
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            worker = build_worker(
                client, TASK_QUEUE, records=FileRecordStore(root), notifier=OutboxNotifier(root)
            )
            started = time.perf_counter()
            async with worker:
                await _raise_all(client, args.escalations, datetime.now(UTC).strftime("%H%M%S"))
                await _wait_indexed(client, args.escalations)
            took = time.perf_counter() - started
            print(f"{args.escalations} escalations raised and indexed in {took:.1f} s")

            visibility = ("--source", "visibility", "--wait", "60")
            empty, _ = _time_command(address, "list", "--stage", "no-such-stage", *visibility)
            took, lines = _time_command(address, "list", *visibility)
            print(
                f"escalate list (no worker running): {took:.2f} s for {lines} lines, process start included"
            )
            print(f"  the same command listing nothing (process start and connect): {empty:.2f} s")
            in_process = []
            for _ in range(3):
                started = time.perf_counter()
                now = datetime.now(UTC)
                listing = await list_escalations(client, ListFilter(), now, timedelta(seconds=60))
                in_process.append(time.perf_counter() - started)
            best = min(in_process)
            print(f"  the read model alone: {best:.2f} s for {len(listing.rows)} escalations (best of 3)")
            if args.scan:
                async with build_worker(
                    client, TASK_QUEUE, records=FileRecordStore(root), notifier=OutboxNotifier(root)
                ):
                    started = time.perf_counter()
                    views = await _scan(client)
                    took = time.perf_counter() - started
                    print(f"old list (one state query each, worker running): {took:.2f} s for {views}")
    finally:
        await env.shutdown()
    return 0


async def _scan(client: Client) -> int:
    ids = [e.id async for e in client.list_workflows(BASE_QUERY)]
    limit = asyncio.Semaphore(16)

    async def read(escalation_id: str) -> None:
        async with limit:
            await client.get_workflow_handle(escalation_id).query("state")

    await asyncio.gather(*(read(i) for i in ids))
    return len(ids)


if __name__ == "__main__":
    run_then_exit(main)
