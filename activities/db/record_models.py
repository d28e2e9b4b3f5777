"""The record store's tables: the append-only event log, each escalation's current state, the child's-record
outbox of case notes, and refused signals.

Every table is created by the hand-written migrations ``migrations/versions/0001_records.py`` and changed by
``0003_runs_and_guards.py`` and ``0004_concern.py``; keep them in step (``tests/test_db_records.py``
compares them).

Runs: an escalation id can be used again once Temporal's retention has removed the first escalation's
history, so every row names its escalation by (escalation_id, run_id), ``run_id`` being the escalation's
first run id. Rows written before revision 0003 may hold ``run_id`` '' (case notes, refusals).

Times are stored timezone-aware: ``timestamptz`` on PostgreSQL, UTC text on SQLite (``UtcDateTime`` puts the
zone back on reading).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from activities.db.base import Base


def _now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, always given back in UTC; a naive datetime is refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give a timezone-aware instant")
        value = value.astimezone(UTC)
        # SQLite has no zone type: keep UTC wall time as text so that equal instants compare equal.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON documents: jsonb on PostgreSQL (indexable, compact), JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")
# 64-bit ids on PostgreSQL; SQLite's rowid alias must be declared INTEGER to autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class EscalationEvent(Base):
    """One event of an escalation's life. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "escalation_events"
    __table_args__ = (
        # The idempotency key: the escalation (its id and first run) and the workflow's event sequence.
        UniqueConstraint(
            "escalation_id", "run_id", "seq", name="uq_escalation_events_escalation_id_run_id_seq"
        ),
        Index("ix_escalation_events_authority_at", "authority", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    escalation_id: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    authority: Mapped[str] = mapped_column(String(64))
    child_ref: Mapped[str] = mapped_column(String(64))
    track: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, server_default=func.now())


class EscalationRecord(Base):
    """An escalation's current state, kept in step with its events in the same transaction.

    One row per escalation: (escalation_id, run_id). Only its status columns change; it is never deleted.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_authority_status", "authority", "status"),
        Index("ix_escalations_child_ref", "child_ref"),
        Index("ix_escalations_part_of", "part_of"),
    )

    escalation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    authority: Mapped[str] = mapped_column(String(64))
    track: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(200))
    service_area: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(64))
    stage_name: Mapped[str] = mapped_column(String(200))
    stage_number: Mapped[int] = mapped_column(Integer)
    formal: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deadline_date: Mapped[date | None] = mapped_column(Date)
    total_deadline_date: Mapped[date | None] = mapped_column(Date)
    held_by: Mapped[list[str]] = mapped_column(Json, default=list)
    raised_by_id: Mapped[str] = mapped_column(String(64))
    raised_by_role: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    child_ref: Mapped[str] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(200))
    flags: Mapped[list[str]] = mapped_column(Json, default=list)
    last_seq: Mapped[int] = mapped_column(Integer)
    # The concern as raised (revision 0004; NULL for escalations recorded before it).
    concern_summary: Mapped[str | None] = mapped_column(Text)
    impact_on_child: Mapped[str | None] = mapped_column(Text)
    requested_action: Mapped[str | None] = mapped_column(Text)
    child_views: Mapped[str | None] = mapped_column(Text)
    parents_views: Mapped[str | None] = mapped_column(Text)
    # The collective alert this escalation belongs to (revision 0008; NULL: none).
    part_of: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, server_default=func.now())


class CaseNote(Base):
    """The child's-record outbox: one note per recorded event that belongs on the child's file.

    Never deleted, and its content never changes (database guard): only the delivery columns (``status``,
    ``attempts``, ``external_ref``, ``delivered_at``, ``last_error``) are updated.
    """

    __tablename__ = "case_notes"
    __table_args__ = (
        UniqueConstraint("escalation_id", "run_id", "seq", name="uq_case_notes_escalation_id_run_id_seq"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_case_notes_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    escalation_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    seq: Mapped[int] = mapped_column(Integer)
    authority: Mapped[str] = mapped_column(String(64))
    child_ref: Mapped[str] = mapped_column(String(64))
    note_type: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    external_ref: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, server_default=func.now())


class SignalRefusal(Base):
    """A refused signal and why, so the sender can be told."""

    __tablename__ = "signal_refusals"
    __table_args__ = (
        UniqueConstraint(
            "escalation_id", "run_id", "at", "action", name="uq_signal_refusals_escalation_id_run_id_at"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    escalation_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    authority: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, server_default=func.now())
