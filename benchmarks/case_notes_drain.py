"""How fast the case-note outbox drains: ``.venv/bin/python benchmarks/case_notes_drain.py [--notes N]``.

Fills the outbox (``case_notes``) of a migrated record store with N pending notes, then drains it with the
worker's loop (``activities.case_notes.Drain``: batches, a small thread pool) into ``FileCaseNoteAdapter``
files in a temporary folder, and prints notes per second. SQLite (a temporary file) by default;
``--postgres`` starts a throwaway PostgreSQL cluster (Debian's binaries, as the tests do) and
``--database URL`` uses an existing database. ``--deliverers 2`` runs two drains at once (PostgreSQL only:
SQLite has no row locks). Every note is checked to be delivered exactly once. A figure, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, func, insert, select

from activities.case_notes import Drain, FileCaseNoteAdapter
from activities.db.record_models import CaseNote
from tests.databases import migrated_engine
from tests.postgres_cluster import throwaway_postgres


def fill(engine: Engine, count: int) -> None:
    """``count`` pending notes, as ``DbRecordStore`` writes them (one escalation, seq 1..count)."""
    now = datetime.now(UTC)
    rows = [
        {
            "escalation_id": "bench-C1-0001",
            "run_id": "run-bench",
            "seq": seq,
            "authority": "wigan",
            "child_ref": "C1",
            "note_type": "IRO informal alert",
            "body": f"Note {seq}: the concern was sent to the team manager.\n" * 4,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
        }
        for seq in range(1, count + 1)
    ]
    with engine.begin() as connection:
        connection.execute(insert(CaseNote), rows)


def drain(engine: Engine, adapter: FileCaseNoteAdapter, batch: int, threads: int) -> int:
    worker = Drain(engine, adapter, batch=batch, threads=threads)
    total = 0
    try:
        while True:
            delivered, wait = worker.run_once()
            total += delivered
            if wait > 0:  # the batch was not full: the outbox is empty
                return total
    finally:
        worker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=2000, help="notes to deliver (default 2000)")
    parser.add_argument("--batch", type=int, default=100, help="notes per batch (default 100)")
    parser.add_argument("--threads", type=int, default=4, help="notes in flight per drain (default 4)")
    parser.add_argument("--deliverers", type=int, default=1, help="drains running at once (default 1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    where.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.notes < 1 or args.batch < 1 or args.threads < 1 or args.deliverers < 1:
        parser.error("--notes, --batch, --threads and --deliverers must be at least 1")

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.postgres:
            url = stack.enter_context(throwaway_postgres())
        if url.startswith("sqlite") and args.deliverers > 1:
            parser.error("--deliverers above 1 needs PostgreSQL: SQLite has no row locks")
        engine = stack.enter_context(migrated_engine(url))
        fill(engine, args.notes)
        adapter = FileCaseNoteAdapter(Path(tmp) / "case-notes")
        counts: list[int] = []
        t0 = time.perf_counter()
        runs = [
            threading.Thread(target=lambda: counts.append(drain(engine, adapter, args.batch, args.threads)))
            for _ in range(args.deliverers)
        ]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        elapsed = time.perf_counter() - t0
        with engine.connect() as connection:
            handed = connection.scalar(select(func.sum(CaseNote.attempts)))
            left = connection.scalar(select(func.count()).where(CaseNote.status != "delivered"))
        files = len(list(adapter.folder.glob("*.json")))
    print(f"{engine.dialect.name}: {sum(counts)} notes by {args.deliverers} deliverer(s) in {elapsed:.2f} s")
    print(f"notes/s: {sum(counts) / elapsed:.0f}")
    if sum(counts) != args.notes or handed != args.notes or left or files != args.notes:
        print(f"not exactly once: delivered {counts}, handed over {handed}, left {left}, files {files}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
