"""The audit log: every sign-in and every action a person takes through a front door, append-only.

``audit_log`` holds who (authority and person id, and the role they acted in), what (``event``: a sign-in,
an action's kind, a read of an escalation), on which escalation, through which front door (``via``: web,
api, cli), with which outcome (``ok``, ``refused``, ``not_found``, ``bad_input``, ``unavailable``) and a
short reason. It never holds the text of a concern or an answer: those live in the escalation itself.

A database guard refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL): revision ``0005_audit``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from activities.db.base import Base
from activities.db.record_models import BigId, UtcDateTime

KEY = 64
REASON_MAX = 500
"""A refusal's reason, cut to this length: enough for the rules' sentences, never a pasted document."""


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_person", "authority", "person_id", "at"),
        Index("ix_audit_log_escalation_id", "escalation_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.now())
    authority: Mapped[str | None] = mapped_column(String(KEY))
    person_id: Mapped[str | None] = mapped_column(String(KEY))
    role: Mapped[str | None] = mapped_column(String(KEY))
    event: Mapped[str] = mapped_column(String(KEY))
    escalation_id: Mapped[str | None] = mapped_column(String(128))
    via: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(REASON_MAX), default="", server_default="")
    client: Mapped[str | None] = mapped_column(
        String(64), doc="The client's address as the front door saw it (sign-in rate limits, forensics)."
    )
