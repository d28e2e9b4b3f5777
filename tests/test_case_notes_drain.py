"""Draining the case-note outbox: batches, several notes in flight, two deliverers at once on PostgreSQL, and
the worker's loop; every note handed over exactly once. Figures are in ``benchmarks/case_notes_drain.py``."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from activities.case_notes import CaseNoteMessage, Drain, FileCaseNoteAdapter, deliver_pending
from activities.db.record_models import CaseNote
from tests.databases import migrated_engine
from tests.postgres_server import fresh_database
from worker import deliver_case_notes


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url) as engine:
        yield engine


class CountingAdapter:
    """The file adapter, counting how often each note is handed over (from any thread)."""

    def __init__(self, folder: Path, failing: frozenset[int] = frozenset()) -> None:
        self.inner = FileCaseNoteAdapter(folder)
        self.failing = set(failing)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def deliver(self, note: CaseNoteMessage) -> str:
        with self._lock:
            self.calls[note.idempotency_key] += 1
        if note.seq in self.failing:
            raise ConnectionError("case system unavailable (HTTP 503)")
        return self.inner.deliver(note)


def add_notes(engine: Engine, seqs: range, escalation_id: str = "wigan-C1-0001") -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "escalation_id": escalation_id,
            "run_id": "run-1",
            "seq": seq,
            "authority": "wigan",
            "child_ref": "C1",
            "note_type": "IRO informal alert",
            "body": f"Note {seq}.\n",
            "status": "pending",
            "attempts": 0,
            "created_at": now,
        }
        for seq in seqs
    ]
    with engine.begin() as connection:
        connection.execute(insert(CaseNote), rows)


def notes(engine: Engine) -> list[CaseNote]:
    with engine.connect() as connection:
        return list(connection.execute(select(CaseNote).order_by(CaseNote.seq)))  # type: ignore[arg-type]


def drain_all(drain: Drain) -> int:
    """Run batches until one comes back not full (the outbox is then empty of what it may take)."""
    total = 0
    while True:
        delivered, wait = drain.run_once()
        total += delivered
        if wait > 0:
            return total


def assert_each_delivered_once(engine: Engine, adapter: CountingAdapter, count: int) -> None:
    rows = notes(engine)
    assert len(rows) == count
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {("delivered", 1, None)}
    assert all(r.external_ref and r.delivered_at is not None for r in rows)
    assert len(adapter.calls) == count and set(adapter.calls.values()) == {1}, "each handed over once"
    assert len(list(adapter.inner.folder.glob("*.json"))) == count


def test_five_hundred_notes_drain_in_batches_on_a_pool_each_delivered_once(
    engine: Engine, tmp_path: Path
) -> None:
    add_notes(engine, range(1, 501))
    adapter = CountingAdapter(tmp_path / "notes")
    drain = Drain(engine, adapter, batch=64, threads=4)
    try:
        first, wait = drain.run_once()
        assert (first, wait) == (64, 0.0), "a full batch: go on at once"
        assert first + drain_all(drain) == 500
        assert drain.run_once() == (0, drain.idle), "empty: wait the idle interval"
    finally:
        drain.close()
    assert_each_delivered_once(engine, adapter, 500)


def test_two_deliverers_at_once_on_postgresql_never_hand_over_the_same_note(
    postgres_url: str, tmp_path: Path
) -> None:
    with fresh_database(postgres_url) as url, migrated_engine(url) as engine:
        add_notes(engine, range(1, 501))
        adapter = CountingAdapter(tmp_path / "notes")
        drains = [Drain(engine, adapter, batch=25, threads=3) for _ in range(2)]
        start = threading.Barrier(2)
        counts: list[int] = []
        errors: list[BaseException] = []

        def run(drain: Drain) -> None:
            try:
                start.wait()
                counts.append(drain_all(drain))
            except BaseException as exc:
                errors.append(exc)
            finally:
                drain.close()

        threads = [threading.Thread(target=run, args=(d,)) for d in drains]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        # One drain may stop at a short batch while the other still holds rows: finish what is left.
        rest = deliver_pending(engine, adapter, limit=500)
        assert sum(counts) + rest == 500
        assert_each_delivered_once(engine, adapter, 500)


def test_failed_notes_wait_for_the_retry_interval_while_new_ones_go_at_once(
    engine: Engine, tmp_path: Path
) -> None:
    add_notes(engine, range(1, 4))
    adapter = CountingAdapter(tmp_path / "notes", failing=frozenset({2}))
    drain = Drain(engine, adapter, batch=10, threads=2, retry_every=3600)
    try:
        assert drain.run_once()[0] == 2
        add_notes(engine, range(4, 6))
        assert drain.run_once()[0] == 2, "the new notes, not the failed one"
        assert adapter.calls["wigan-C1-0001-run-1-2"] == 1
        adapter.failing.clear()
        drain._next_retry = 0.0  # the retry interval has passed
        assert drain.run_once()[0] == 1
    finally:
        drain.close()
    rows = notes(engine)
    assert [(r.seq, r.status, r.attempts) for r in rows] == [
        (1, "delivered", 1),
        (2, "delivered", 2),
        (3, "delivered", 1),
        (4, "delivered", 1),
        (5, "delivered", 1),
    ]


def test_a_bad_batch_size_or_thread_count_is_refused_naming_it(engine: Engine, tmp_path: Path) -> None:
    adapter = FileCaseNoteAdapter(tmp_path)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        Drain(engine, adapter, batch=0)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        Drain(engine, adapter, threads=0)
    with pytest.raises(ValueError, match="batch size must be at least 1"):
        deliver_pending(engine, adapter, limit=0)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_worker_loop_delivers_notes_as_they_arrive_until_stopped(tmp_path: Path) -> None:
    with migrated_engine(f"sqlite:///{tmp_path / 'records.db'}") as engine:
        folder = tmp_path / "case-notes"
        stop = asyncio.Event()
        loop = asyncio.create_task(deliver_case_notes(engine, folder, stop, idle=0.05, batch=16))

        async def delivered(count: int) -> None:
            while len(list(folder.glob("*.json"))) < count:
                assert not loop.done(), loop
                await asyncio.sleep(0.02)

        add_notes(engine, range(1, 41))
        await asyncio.wait_for(delivered(40), 60)
        add_notes(engine, range(41, 46))  # arriving while it idles
        await asyncio.wait_for(delivered(45), 60)
        stop.set()
        await asyncio.wait_for(loop, 60)
        assert {(r.status, r.attempts) for r in notes(engine)} == {("delivered", 1)}
