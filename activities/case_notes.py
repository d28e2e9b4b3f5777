"""Delivering case notes to the child's record in the authority's case-management system.

``DbRecordStore`` writes one row per note into ``case_notes`` (the outbox), in the same transaction as the
event it records. ``deliver_pending(engine, adapter)`` later hands pending (and earlier failed) notes to a
``CaseSystemAdapter`` and marks each ``delivered`` (with the system's reference) or ``failed`` (attempts,
last error); a failed note is tried again on the next run. Those delivery columns are all that ever changes:
the database refuses to delete a note or change its content. Run it from a scheduled job or a loop in the
worker process; it never blocks the escalation's workflow.

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
* **Map ``note.note_type``** to the system's own forms. The seeds say where notes go: Waltham Forest records
  an informal alert as a case note on MOSAIC and a formal alert as a MOSAIC episode (steps tasked back to
  the IRO); Wigan uses an "IRO Informal" or "Child Protection Informal" case note and the Dispute
  Resolution workflow in MiCare for formal stages; Dudley uses "the appropriate case note" on CCM; the
  FWi protocol uploads the alert form onto FWi. For MOSAIC, LCS, Eclipse or MiCare that usually means:
  look the child up by ``note.child_ref`` (the opaque reference the authority issued, e.g. its person id),
  then create a case note (informal types, good practice notes) or start or add to the escalation
  workflow/episode (``formal alert stage N``), with ``note.body`` as the text and ``note.created_at`` as
  the date.
* Keep credentials in the environment (see ``activities/settings.py``), never in files of this project.

Test a new adapter against ``deliver_pending`` with the record store on SQLite, as
``tests/test_db_records.py`` does for ``FileCaseNoteAdapter``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass
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
    engine: Engine, adapter: CaseSystemAdapter, limit: int = 100, *, max_attempts: int | None = None
) -> int:
    """Hand up to ``limit`` pending or failed notes to ``adapter``; return how many were delivered now.

    Each note is handled in its own transaction, with its row locked (PostgreSQL: ``FOR UPDATE SKIP
    LOCKED``, so two deliverers never send the same note at once). Notes never tried come first. With
    ``max_attempts``, a note that failed that many times is left ``failed`` for someone to look at.
    Database errors propagate; an adapter's error marks the note failed and the run goes on.
    """
    sessions = session_factory(engine)
    waiting: ColumnElement[bool] = CaseNote.status.in_(("pending", "failed"))
    if max_attempts is not None:
        waiting = and_(waiting, CaseNote.attempts < max_attempts)
    with sessions() as session:
        ids = list(
            session.scalars(
                select(CaseNote.id).where(waiting).order_by(CaseNote.attempts, CaseNote.id).limit(limit)
            )
        )
    delivered = 0
    for note_id in ids:
        with sessions.begin() as session:
            note = session.scalars(
                select(CaseNote).where(CaseNote.id == note_id, waiting).with_for_update(skip_locked=True)
            ).first()
            if note is None:
                continue  # delivered meanwhile, or being delivered by another run
            message = CaseNoteMessage.from_row(note)
            note.attempts += 1
            try:
                reference = adapter.deliver(message)
            except Exception as exc:
                note.status = "failed"
                note.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
                continue
            note.status = "delivered"
            note.external_ref = str(reference)[:200]
            note.delivered_at = datetime.now(UTC)
            note.last_error = None
            delivered += 1
    return delivered
