"""The e-mail replies an escalation received, as its page shows them (``inbound_mail``, written by the
ingester in ``starter.mail_ingest``): when, from whom, what became of each and why, and its text.

Forged tokens and bounces name no escalation the sender may claim, so they are never shown here; they stay
in the table (and the audit) for the engineers.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from activities.db.inbound_models import InboundMail

SHOWN = 50
"""The newest replies shown on a page (an escalation rarely has more than a handful)."""

OUTCOME_WORDS = {
    "respond": "Recorded as the answer",
    "request_extension": "Recorded as a request for more time",
    "note": "Recorded as a note",
    "refused": "Not acted on",
}


class InboundReply(BaseModel):
    received_at: datetime
    from_address: str
    subject: str
    stage: str | None
    outcome: str
    outcome_words: str
    reason: str
    reply_text: str
    attachments: list[str]
    told_sender: bool


def replies_for(engine: Engine, escalation_id: str) -> list[InboundReply] | None:
    """The replies matched to ``escalation_id``, oldest first; None when the store cannot be read now."""
    statement = (
        select(InboundMail)
        .where(InboundMail.escalation_id == escalation_id)
        .order_by(InboundMail.received_at.desc(), InboundMail.id.desc())
        .limit(SHOWN)
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(statement).all()
    except SQLAlchemyError:
        return None
    replies = [
        InboundReply(
            received_at=row.received_at,
            from_address=row.from_address,
            subject=row.subject,
            stage=row.stage,
            outcome=row.outcome,
            outcome_words=OUTCOME_WORDS.get(row.outcome, row.outcome),
            reason=row.reason,
            reply_text=row.reply_text,
            attachments=[name for name in row.attachments.splitlines() if name],
            told_sender=row.told_sender,
        )
        for row in rows
    ]
    return list(reversed(replies))
