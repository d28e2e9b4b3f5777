"""Tables of the staff directory and of mail: who holds which role, what was sent, and reply tokens.

* ``directory_people`` and ``directory_assignments``: each authority's directory file
  (``protocols/directories/<authority>.yaml``), replaced whole by ``activities.directory.sync_directory``.
* ``sent_mail``: one row per message delivered (per recipient), keyed on its stable Message-ID, so a retried
  notification never sends the same message twice. Append-only (database guard).
* ``reply_tokens``: an opaque single-purpose token per message and recipient, in the Reply-To address; a
  reply to it is tied to the escalation, the stage and the person it was sent to. Only the token's SHA-256
  is stored, with an expiry (``activities.mail.find_reply_token`` looks a token up).

``run_id`` is the escalation's first run id ('' for rows written before revision 0003, and for
notifications from histories recorded before it was added).

Migrations: ``activities/db/migrations/versions/0002_mail.py``, ``0003_runs_and_guards.py`` and
``0006_absence.py`` (absence marks of the directory's people; keep them
in step).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from activities.db.base import Base
from activities.db.record_models import BigId, UtcDateTime

KEY = 64
"""Authority keys, role keys, team names, person ids, stage keys. Times: timezone-aware (UTC)."""


class DirectoryPerson(Base):
    __tablename__ = "directory_people"

    authority: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    absent_from: Mapped[date | None] = mapped_column(Date(), nullable=True)
    absent_until: Mapped[date | None] = mapped_column(Date(), nullable=True)


class DirectoryAssignment(Base):
    """``person_id`` holds ``role`` for ``team``, or authority-wide when ``team`` is null."""

    __tablename__ = "directory_assignments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["authority", "person_id"],
            ["directory_people.authority", "directory_people.person_id"],
            ondelete="CASCADE",
        ),
        Index("ix_directory_assignments_lookup", "authority", "role", "team"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    authority: Mapped[str] = mapped_column(String(KEY))
    role: Mapped[str] = mapped_column(String(KEY))
    team: Mapped[str | None] = mapped_column(String(KEY), nullable=True)
    person_id: Mapped[str] = mapped_column(String(KEY))


class SentMail(Base):
    """The sent-log: one message to one recipient, written right after the SMTP server accepted it."""

    __tablename__ = "sent_mail"
    __table_args__ = (Index("ix_sent_mail_idempotency_key", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(160))
    escalation_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(KEY), default="", server_default="")
    person_id: Mapped[str] = mapped_column(String(KEY))
    address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(KEY))
    subject: Mapped[str] = mapped_column(String(500))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ReplyToken(Base):
    """A token in one message's Reply-To, for one recipient; ``used_at`` once a reply consumed it.

    Only ``token_hash`` (SHA-256 of the token, hex) is kept: the database never holds a usable token. Each
    attempt that sends a message makes a new token, so a message sent twice (a retry after a crash before
    it was logged) has two tokens, both valid until ``expires_at``. ``role`` is the role the person acts in
    when they reply (for the raising officer, the officer's own role).
    """

    __tablename__ = "reply_tokens"
    __table_args__ = (
        Index("ix_reply_tokens_escalation_id", "escalation_id"),
        CheckConstraint("purpose IN ('reply')", name="purpose"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(160))
    escalation_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(KEY), default="", server_default="")
    stage: Mapped[str] = mapped_column(String(KEY))
    person_id: Mapped[str] = mapped_column(String(KEY))
    role: Mapped[str] = mapped_column(String(KEY))
    purpose: Mapped[str] = mapped_column(String(16), default="reply")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
