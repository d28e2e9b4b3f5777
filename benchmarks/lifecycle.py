"""The product's standard lifecycle against a bare Temporal workflow of the same shape, on one dev server.

    .venv/bin/python benchmarks/lifecycle.py [--server memory|file|both] [--concurrency 20,50] \
        [--lifecycles N]

Standard lifecycle: a concern raised at gloucestershire (IRO, iro-cp track), the social worker responds,
the officer escalates, the team manager responds, the officer accepts; the worker is ``python worker.py``
with the real record store on SQLite and real SMTP to an aiosmtpd catcher this script starts. Bare:
``benchmarks/bare.py`` (3 updates, 7 no-op activities, the same data converter and sandbox). Both run
interleaved (A B A B batches of ``--lifecycles / --batches``) against one dev server per kind, at each
concurrency. Each worker is a separate process, so its CPU time (``/proc/<pid>/stat``) is its own and
not the driver's. Counts per lifecycle come from fetched histories. A throwaway payload key is made for
the run when ``ESCALATION_PAYLOAD_KEYS`` is unset.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from temporalio.client import Client, WorkflowHandle

from benchmarks import bare
from benchmarks.options import whole_number
from benchmarks.stack import (
    CountingCatcher,
    DevServer,
    HistoryCounts,
    ServerKind,
    cpu_seconds,
    ensure_payload_key,
    history_counts,
    spawn_until_ready,
    stop_process,
    until_not_busy,
)
from schemas.escalation import (
    Accept,
    ActionResult,
    Concern,
    Escalate,
    RaiseConcern,
    Respond,
)
from starter.clean_exit import run_then_exit
from starter.escalations import prepare, raise_concern
from starter.sample_data import TEAM, person

AUTHORITY = "gloucestershire"
TRACK = "iro-cp"
BARE_QUEUE = "bench-bare"
WARM_UP = 2
"""Lifecycles of each kind run (untimed) before measuring: imports, sandbox and connections warm."""


@dataclass
class Tally:
    """One kind's measurements at one concurrency, summed over its batches."""

    lifecycles: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    handles: list[WorkflowHandle[Any, Any]] = field(default_factory=list)
    counts: HistoryCounts | None = None

    @property
    def rate(self) -> float:
        return self.lifecycles / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.lifecycles if self.lifecycles else 0.0


class Product:
    """Runs the standard lifecycle through the client, as the `escalate` command would."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.officer = person(AUTHORITY, "iro")
        self.social_worker = person(AUTHORITY, "social_worker")
        self.team_manager = person(AUTHORITY, "team_manager")
        self.prefix = "B" + uuid.uuid4().hex[:8].upper()
        self.made = 0

    def inputs(self, n: int) -> list[RaiseConcern]:
        """``n`` checked inputs, made before the clock starts (the driver's work is not the worker's)."""
        out = []
        for _ in range(n):
            self.made += 1
            out.append(
                prepare(
                    authority=AUTHORITY,
                    track=TRACK,
                    category="Key decision-making",
                    child_ref=f"{self.prefix}{self.made:06d}",
                    sequence=1,
                    officer=self.officer,
                    team=TEAM,
                    concern=Concern(
                        summary="Benchmark: the care plan's review is overdue.",
                        impact_on_child="Decisions for the child wait on the review.",
                        requested_action="Hold the review and confirm the date in writing.",
                    ),
                )
            )
        return out

    async def _update(self, handle: WorkflowHandle[Any, Any], name: str, action: Any) -> None:
        await until_not_busy(lambda: handle.execute_update(name, action, result_type=ActionResult))

    async def run(self, raise_: RaiseConcern) -> WorkflowHandle[Any, Any]:
        handle = await raise_concern(self.client, raise_)
        await self._update(handle, "respond", Respond(actor=self.social_worker, answer="Review booked."))
        await self._update(handle, "escalate", Escalate(actor=self.officer, reason="No date was given."))
        answer = "The review is on the 3rd; minutes to follow."
        await self._update(handle, "respond", Respond(actor=self.team_manager, answer=answer))
        await self._update(handle, "accept", Accept(actor=self.officer, note="Resolved."))
        await handle.result()
        return handle


class Bare:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.prefix = "bare-" + uuid.uuid4().hex[:8]
        self.made = 0

    def inputs(self, n: int) -> list[str]:
        self.made += n
        return [f"{self.prefix}-{i}" for i in range(self.made - n, self.made)]

    async def run(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        handle = await self.client.start_workflow(
            bare.WORKFLOW_NAME, workflow_id, id=workflow_id, task_queue=BARE_QUEUE, result_type=int
        )
        for step in range(bare.UPDATES):
            await handle.execute_update("act", f"step {step}", result_type=int)
        await handle.result()
        return handle


async def batch(kind: Product | Bare, n: int, concurrency: int, pid: int) -> Tally:
    """``n`` lifecycles, at most ``concurrency`` at a time: wall time and the worker's CPU time."""
    inputs: list[Any] = kind.inputs(n)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> WorkflowHandle[Any, Any]:
        async with gate:
            return await kind.run(item)

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    handles = await asyncio.gather(*(one(i) for i in inputs))
    return Tally(n, time.perf_counter() - t0, cpu_seconds(pid) - cpu0, list(handles))


async def measure_server(server_kind: ServerKind, args: argparse.Namespace, folder: Path) -> list[str]:
    """Everything on one dev server: the rows of the report."""
    catcher = CountingCatcher()
    catcher.start()
    server = DevServer(server_kind, folder)
    procs = []
    rows = []
    try:
        client = await server.start()
        py = sys.executable
        product_cmd = [py, "-u", "worker.py", "--address", server.address, "--smtp-host", "127.0.0.1"]
        product_cmd += ["--smtp-port", str(catcher.port), "--data-dir", str(folder / f"data-{server_kind}")]
        product_cmd += ["--database-url", f"sqlite:///{folder / f'records-{server_kind}.db'}"]
        product_proc = await spawn_until_ready(product_cmd, folder / "worker.log", bare.READY_LINE)
        procs.append(product_proc)
        bare_cmd = [
            py,
            "-u",
            "-m",
            "benchmarks.bare",
            "--address",
            server.address,
            "--task-queue",
            BARE_QUEUE,
        ]
        bare_proc = await spawn_until_ready(bare_cmd, folder / "bare.log", bare.READY_LINE)
        procs.append(bare_proc)
        product, bare_kind = Product(client), Bare(client)
        await batch(product, WARM_UP, WARM_UP, product_proc.pid)
        await batch(bare_kind, WARM_UP, WARM_UP, bare_proc.pid)
        size = max(1, args.lifecycles // args.batches)
        for concurrency in args.concurrency:
            tallies = {"product": Tally(), "bare": Tally()}
            for _ in range(args.batches):
                for name, kind, pid in (
                    ("product", product, product_proc.pid),
                    ("bare", bare_kind, bare_proc.pid),
                ):
                    got = await batch(kind, size, concurrency, pid)
                    t = tallies[name]
                    t.lifecycles += got.lifecycles
                    t.seconds += got.seconds
                    t.cpu += got.cpu
                    t.handles += got.handles
            for t in tallies.values():
                t.counts = await history_counts(t.handles[: args.histories])
            p, b = tallies["product"], tallies["bare"]
            rows.append(report_row(server_kind, concurrency, p, b))
            print(rows[-1], flush=True)
        mails = catcher.messages
        total = product.made
        print(f"  ({server_kind}: {mails} mails caught for {total} product lifecycles)", flush=True)
    finally:
        for proc in procs:
            stop_process(proc)
        server.stop()
        catcher.stop()
    return rows


def report_row(server_kind: str, concurrency: int, p: Tally, b: Tally) -> str:
    assert p.counts is not None and b.counts is not None
    ratio = p.rate / b.rate if b.rate else float("nan")
    return (
        f"{server_kind:6} c={concurrency:<3} n={p.lifecycles:<5} "
        f"product {p.rate:6.2f}/s  bare {b.rate:6.2f}/s  ratio {ratio:4.2f}  "
        f"cpu ms {p.cpu_ms:5.0f} vs {b.cpu_ms:4.0f}  "
        f"events {p.counts.mean('events'):5.1f} vs {b.counts.mean('events'):4.1f}  "
        f"activities {p.counts.mean('activities'):4.1f} vs {b.counts.mean('activities'):3.1f}  "
        f"wf tasks {p.counts.mean('workflow_tasks'):4.1f} vs {b.counts.mean('workflow_tasks'):3.1f}"
    )


def _concurrencies(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 1 <= v <= 1000 for v in values):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give whole numbers 1 to 1000, comma-separated (e.g. 20,50)"
        )
    return values


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["memory", "file", "both"], default="both")
    parser.add_argument("--concurrency", type=_concurrencies, default=[20, 50], help="default 20,50")
    parser.add_argument(
        "--lifecycles", type=whole_number(1), default=200, help="per kind and concurrency (default 200)"
    )
    parser.add_argument(
        "--batches", type=whole_number(1), default=2, help="A B batches per concurrency (default 2)"
    )
    parser.add_argument(
        "--histories",
        type=whole_number(1),
        default=20,
        help="histories fetched per kind for the counts (default 20)",
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    ensure_payload_key()
    kinds: list[ServerKind] = ["memory", "file"] if args.server == "both" else [args.server]
    print(f"lifecycles per kind and concurrency: {args.lifecycles} in {args.batches} A/B batches", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        for server_kind in kinds:
            folder = Path(tmp) / server_kind
            folder.mkdir()
            await measure_server(server_kind, args, folder)
    return 0


if __name__ == "__main__":
    run_then_exit(main)
