"""Delivering case notes to the child's record in the authority's case-management system.

``DbRecordStore`` writes one row per note into ``case_notes`` (the outbox), in the same transaction as the
event it records. ``deliver_pending(engine, adapter)`` later hands pending (and earlier failed) notes to a
``CaseSystemAdapter`` and marks each ``delivered`` (with the system's reference) or ``failed`` (attempts,
last error); a failed note is tried again later. Those delivery columns are all that ever changes:
the database refuses to delete a note or change its content. ``Drain`` runs it continuously (the worker's
loop): batch after batch, a few notes in flight at once, a short poll when the outbox is empty, failed notes
retried on a slower interval. It never blocks the escalation's workflow.

Writing an adapter for a real case system
-----------------------------------------

An adapter is any object with ``deliver(note: CaseNoteMessage) -> str``:

* **Return** the case system's own reference for the note (its id, a URL): it is kept in
  ``case_notes.external_ref`` for audit and support.
* **Raise** on any failure (HTTP error, timeout, validation refused). The message is kept in
  ``last_error`` and the note is tried again later, so make the message useful and free of personal data
  (never include ``note.body``).
* **Be idempotent**: a note can be handed over twice (a crash after the case system accepted it but before
  the outbox row was marked). Send ``note.idempotency_key`` (``<escalation id>-<run id>-<seq>``; notes
  written before run ids were recorded: ``<escalation id>-<seq>``) as the external or
  correlation id if the system has one, or look for a note with that key before creating one, and return
  the existing reference.
* **Allow calls from several threads**: ``Drain`` hands over a few notes of a batch at once (give it
  ``threads=1`` for an adapter that cannot). A crash before a batch's commit hands its notes over again.
* **Map ``note.note_type``** to the system's own forms. The seeds say where notes go: Waltham Forest records
  an informal alert as a case note on MOSAIC and a formal alert as a MOSAIC episode (steps tasked back to
  the IRO); Wigan uses an "IRO Informal" or "Child Protection Informal" case note and the Dispute
  Resolution workflow in MiCare for formal stages; Dudley uses "the appropriate case note" on CCM; the
  FWi protocol uploads the alert form onto FWi. For MOSAIC, LCS, Eclipse or MiCare that usually means:
  look the child up by ``note.child_ref`` (the opaque reference the authority issued, e.g. its person id),
  then create a case note (informal types, good practice notes) or start or add to the escalation
  workflow/episode (formal stages' types, such as ``IRO formal alert - Stage 4``), with ``note.body`` as
  the text and ``note.created_at`` as the date. The types are the protocol's own (each stage's
  ``case_note_type``), so an adapter can map them one to one.
* Keep credentials in the environment (see ``activities/settings.py``), never in files of this project.

Test a new adapter against ``deliver_pending`` with the record store on SQLite, as
``tests/test_db_records.py`` does for ``FileCaseNoteAdapter``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import time
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import ColumnElement, Engine, and_, select

from activities.db.base import session_factory
from activities.db.record_models import CaseNote

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class CaseNoteMessage:
    """One case note to put on a child's record, detached from the database."""

    id: int
    escalation_id: str
    run_id: str
    seq: int
    authority: str
    child_ref: str
    note_type: str
    body: str
    created_at: datetime
    attempts: int

    @property
    def idempotency_key(self) -> str:
        """Unique per note for ever: the escalation (id and first run) and the event's sequence number.

        An escalation id can be used again after Temporal's retention; its run id tells the two apart.
        Notes recorded without a run id keep the key they were first handed over with."""
        if self.run_id:
            return f"{self.escalation_id}-{self.run_id}-{self.seq}"
        return f"{self.escalation_id}-{self.seq}"

    @classmethod
    def from_row(cls, row: CaseNote) -> CaseNoteMessage:
        return cls(
            id=row.id,
            escalation_id=row.escalation_id,
            run_id=row.run_id,
            seq=row.seq,
            authority=row.authority,
            child_ref=row.child_ref,
            note_type=row.note_type,
            body=row.body,
            created_at=row.created_at,
            attempts=row.attempts,
        )


class CaseSystemAdapter(Protocol):
    def deliver(self, note: CaseNoteMessage) -> str:
        """Put the note on the child's record (once); return the case system's reference; raise on failure."""
        ...


class FileCaseNoteAdapter:
    """Case notes as JSON files, ``<folder>/<idempotency key>.json``: for local running, tests and
    authorities whose case system imports notes from a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path_for(self, note: CaseNoteMessage) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", note.idempotency_key)
        return self.folder / f"{safe}.json"

    def deliver(self, note: CaseNoteMessage) -> str:
        path = self.path_for(note)
        reference = f"file:{path.name}"
        if path.exists():
            return reference  # delivered before (a retry after a crash): same note, same reference
        self.folder.mkdir(parents=True, exist_ok=True)
        document = {
            "idempotency_key": note.idempotency_key,
            "escalation_id": note.escalation_id,
            "run_id": note.run_id,
            "seq": note.seq,
            "authority": note.authority,
            "child_ref": note.child_ref,
            "note_type": note.note_type,
            "created_at": note.created_at.isoformat(),
            "body": note.body,
        }
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # a concurrent delivery got there first
                os.link(tmp, path)  # atomic: the note appears whole or not at all
        finally:
            tmp.unlink(missing_ok=True)
        return reference

    def delivered(self) -> list[dict[str, object]]:
        """Every note file written so far (for tests and local inspection)."""
        if not self.folder.exists():
            return []
        return [json.loads(p.read_text("utf-8")) for p in sorted(self.folder.glob("*.json"))]


def deliver_pending(
    engine: Engine,
    adapter: CaseSystemAdapter,
    limit: int = 100,
    *,
    max_attempts: int | None = None,
    retry_failed: bool = True,
    pool: Executor | None = None,
) -> int:
    """Hand one batch of up to ``limit`` waiting notes to ``adapter``; return how many were delivered now.

    Waiting means pending, or failed before when ``retry_failed``; notes never tried come first. With
    ``max_attempts``, a note that failed that many times is left ``failed`` for someone to look at.

    The batch is one transaction: its rows are locked as they are read (PostgreSQL: ``FOR UPDATE SKIP
    LOCKED``, so two deliverers never hand over the same note and each takes the next free batch), handed
    over (in parallel on ``pool`` when given), and all marked ``delivered`` or ``failed`` in one commit.
    A crash before that commit hands the batch over again later, which the adapter's idempotency absorbs.
    SQLite has no row locks: run one deliverer per SQLite database. Database errors propagate; an adapter's
    error marks its note failed and the batch goes on.
    """
    return _deliver_batch(engine, adapter, limit, max_attempts, retry_failed, pool)[0]


def _deliver_batch(
    engine: Engine,
    adapter: CaseSystemAdapter,
    limit: int,
    max_attempts: int | None,
    retry_failed: bool,
    pool: Executor | None,
) -> tuple[int, int]:
    """``deliver_pending``'s batch: (how many were delivered, how many were handed over)."""
    if limit < 1:
        raise ValueError(f"case notes: the batch size must be at least 1, not {limit}")
    statuses = ("pending", "failed") if retry_failed else ("pending",)
    waiting: ColumnElement[bool] = CaseNote.status.in_(statuses)
    if max_attempts is not None:
        waiting = and_(waiting, CaseNote.attempts < max_attempts)
    claim = (
        select(CaseNote)
        .where(waiting)
        .order_by(CaseNote.attempts, CaseNote.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with session_factory(engine).begin() as session:
        notes = list(session.scalars(claim))
        if not notes:
            return 0, 0
        messages = [CaseNoteMessage.from_row(note) for note in notes]
        if pool is None or len(messages) == 1:
            outcomes = [_hand_over(adapter, m) for m in messages]
        else:
            outcomes = list(pool.map(functools.partial(_hand_over, adapter), messages))
        now = datetime.now(UTC)
        delivered = 0
        for note, (reference, error) in zip(notes, outcomes, strict=True):
            note.attempts += 1
            if error is not None:
                note.status = "failed"
                note.last_error = error
                continue
            note.status = "delivered"
            note.external_ref = reference
            note.delivered_at = now
            note.last_error = None
            delivered += 1
    return delivered, len(notes)


def _hand_over(adapter: CaseSystemAdapter, message: CaseNoteMessage) -> tuple[str | None, str | None]:
    """(the case system's reference, None), or (None, the error to keep) when the adapter raised."""
    try:
        return str(adapter.deliver(message))[:200], None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


@dataclass
class Drain:
    """Deliver the outbox continuously: ``run_once`` hands over one batch and says how long to wait.

    A full batch means more are waiting: go on at once. Otherwise wait ``idle`` seconds (new notes are
    picked up within that). Failed notes are retried only every ``retry_every`` seconds, so a case system
    that is down is not hammered; new notes are always tried at once. ``threads`` notes are in flight at a
    time (the adapter must allow calls from several threads, as ``FileCaseNoteAdapter`` does).
    """

    engine: Engine
    adapter: CaseSystemAdapter
    batch: int = 100
    threads: int = 4
    idle: float = 1.0
    retry_every: float = 15.0
    max_attempts: int | None = None
    _next_retry: float = field(default=0.0, init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        for name in ("batch", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"case notes: {name} must be at least 1, not {getattr(self, name)}")
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="case-notes")

    def run_once(self) -> tuple[int, float]:
        """Hand over one batch: (how many were delivered, seconds to wait before the next)."""
        now = time.monotonic()
        retry = now >= self._next_retry
        if retry:
            self._next_retry = now + self.retry_every
        delivered, tried = _deliver_batch(
            self.engine, self.adapter, self.batch, self.max_attempts, retry, self._pool
        )
        return delivered, 0.0 if tried >= self.batch else self.idle

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
