"""Inbound mail: every reply the ingester read, with what became of it (``starter.mail_ingest``).

``inbound_mail`` holds one row per message, unique on its Message-ID (or, without one, a digest of its
bytes), written once when its outcome is decided: ``respond``, ``request_extension``, ``note`` (acted on
through the application layer as the reply token's person) or ``refused`` (not acted on; ``reason`` says
why). The reply's own text (quoted text and signature removed) and its attachments' names are kept, so a
refused reply loses nothing; the attachments' content is not. Append-only (database guard, revision
``0007_inbound_mail``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from activities.db.base import Base
from activities.db.record_models import BigId, UtcDateTime

KEY = 64
REASON_MAX = 500


class InboundMail(Base):
    __tablename__ = "inbound_mail"
    __table_args__ = (Index("ix_inbound_mail_escalation_id", "escalation_id", "stage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(String(16), doc="maildir, stdin or imap")
    from_address: Mapped[str] = mapped_column(String(320), default="", server_default="")
    subject: Mapped[str] = mapped_column(String(500), default="", server_default="")
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    escalation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(KEY), nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(KEY), nullable=True)
    outcome: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(REASON_MAX), default="", server_default="")
    reply_text: Mapped[str] = mapped_column(Text(), default="", server_default="")
    attachments: Mapped[str] = mapped_column(Text(), default="", server_default="", doc="names, one a line")
    told_sender: Mapped[bool] = mapped_column(Boolean(), default=False, server_default="0")
