"""Writing the audit log (``audit_log``, append-only in the database): one row per sign-in and action.

An audit row is written before the front door answers; a database that cannot take it fails the request
(a refused sign-in or action is recorded too). Reasons are cut to the column's length and cleaned of NUL
characters; no concern text is ever passed here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from activities.db.audit_models import REASON_MAX, AuditEntry
from activities.db.checks import clean_text
from app.identity import Person


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    BAD_INPUT = "bad_input"
    UNAVAILABLE = "unavailable"


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        event: str,
        outcome: Outcome,
        *,
        via: str,
        person: Person | None = None,
        role: str | None = None,
        escalation_id: str | None = None,
        reason: str = "",
        client: str | None = None,
    ) -> None:
        entry = AuditEntry(
            at=datetime.now(UTC),
            authority=person.authority if person else None,
            person_id=person.id if person else None,
            role=role,
            event=event[:64],
            escalation_id=escalation_id[:128] if escalation_id else None,
            via=via[:16],
            outcome=outcome.value,
            reason=clean_text(" ".join(reason.split()))[:REASON_MAX],
            client=client[:64] if client else None,
        )
        with Session(self.engine) as session, session.begin():
            session.add(entry)

    def entries(self, *, escalation_id: str | None = None, person_id: str | None = None) -> list[AuditEntry]:
        """The log, oldest first, optionally for one escalation or person (for tests and reviews)."""
        query = select(AuditEntry).order_by(AuditEntry.id)
        if escalation_id is not None:
            query = query.where(AuditEntry.escalation_id == escalation_id)
        if person_id is not None:
            query = query.where(AuditEntry.person_id == person_id)
        with Session(self.engine) as session:
            return list(session.scalars(query))
