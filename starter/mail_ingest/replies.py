"""Acting on one inbound reply: match it to the reply token it answers, check it, act through the
application layer as the token's person, record the outcome once and tell the person what was done.

Matching: a token from a plus-addressed recipient (``<reply_local>+<token>@<reply_domain>`` in To, Cc,
Delivered-To, X-Original-To or the envelope), else from In-Reply-To/References: a Message-ID the product
sent (``sent_mail``) names the notification and the person, whose token for it is then used. The token must
exist, be unexpired, not yet have carried an answer for its stage, and be for the escalation's current
stage; the From address must be the directory address of the person it was issued to, and where the
receiving server added Authentication-Results, DMARC (or, without DMARC, DKIM or SPF) must not have failed.

Idempotent on the Message-ID: an ``inbound_mail`` row is written once, after the action and the
confirmation; a message already recorded is not acted on again. The action carries an update id made from
the Message-ID, so a crash after acting and before recording acts once when the message is read again (the
server returns the first result), and the confirmation has a stable Message-ID checked against
``sent_mail``, so it is sent once (the crash window of ``activities.mail`` apart).

``Retry`` is raised when the message cannot be processed now (Temporal, the database or the mail server
unavailable): the caller keeps the message and tries again later.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from activities.db.inbound_models import REASON_MAX, InboundMail
from activities.db.mail_models import ReplyToken, SentMail
from activities.mail import MESSAGE_POLICY, MailUnavailable, SmtpNotifier, hash_token
from activities.settings import SmtpSettings
from app.audit import Outcome as AuditOutcome
from app.errors import AppError, NotFound, Unavailable
from app.identity import People, Person
from app.service import Application, Caller
from starter.mail_ingest.reading import ParsedMail, decide, parse, tokens_in

__all__ = ["Outcome", "ReplyProcessor", "Retry"]

LONDON = ZoneInfo("Europe/London")
OutcomeKind = Literal["respond", "request_extension", "note", "refused", "duplicate"]


class Retry(Exception):
    """The message cannot be processed now; keep it and try again."""


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str
    message_id: str
    escalation_id: str | None = None
    told: bool = False


@dataclass
class _Match:
    token: ReplyToken | None
    outcome: Outcome | None = None
    tell: bool = False


def web_url() -> str:
    """Where the web app is, for the link in confirmations (``ESCALATE_WEB_URL``)."""
    return (os.environ.get("ESCALATE_WEB_URL") or "http://127.0.0.1:8235").rstrip("/")


class ReplyProcessor:
    def __init__(
        self, engine: Engine, app: Application, people: People, smtp: SmtpSettings, *, source: str
    ) -> None:
        self.engine = engine
        self.app = app
        self.people = people
        self.smtp = smtp
        self.source = source
        self.notifier = SmtpNotifier(engine, smtp)

    # --- the steps ----------------------------------------------------------------------------------------

    async def process(self, raw: bytes, *, today: date | None = None) -> Outcome:
        """Process one message; ``Retry`` when it must be kept and tried again."""
        mail = parse(raw)
        try:
            if self._recorded(mail.message_id):
                return Outcome("duplicate", "already processed", mail.message_id)
            match = self._match(mail)
        except (OperationalError, SQLAlchemyError) as exc:
            raise Retry(f"the record store cannot be read: {type(exc).__name__}") from exc
        token = match.token
        person = await self._person(token) if token is not None else None
        if match.outcome is not None:
            # Told only when the sender is the token's person: a stranger learns nothing from us.
            tell = match.tell and person is not None and self._sender_refusal(mail, person) is None
            return self._finish(mail, token, match.outcome, tell=tell, person=person)
        assert token is not None
        if person is None:
            reason = "the reply token's person is not in the staff directory (a partner agency's contact)"
            return self._finish(mail, token, self._refused(mail, token, reason + ": the officer records it"))
        refusal = self._sender_refusal(mail, person)
        if refusal:
            return self._finish(mail, token, self._refused(mail, token, refusal), tell=True, person=person)
        caller = Caller(person=person, via="mail")
        try:
            reading = await self.app.read(caller, token.escalation_id)
        except NotFound:
            return self._finish(
                mail, token, self._refused(mail, token, "the escalation is not open to you"), True, person
            )
        except Unavailable as exc:
            raise Retry(exc.message) from exc
        if reading.view.stage != token.stage:
            reason = f"the escalation has moved on from the stage this e-mail was sent for ({token.stage})"
            return self._finish(mail, token, self._refused(mail, token, reason), tell=True, person=person)
        if self._answered(token):
            reason = "this stage has already been answered by e-mail"
            return self._finish(mail, token, self._refused(mail, token, reason), tell=True, person=person)
        intent = decide(mail.text, today or datetime.now(LONDON).date())
        if intent.kind == "empty":
            return self._finish(mail, token, self._refused(mail, token, intent.why), tell=True, person=person)
        update_id = "mail-" + hashlib.sha256(mail.message_id.encode()).hexdigest()[:40]
        fields: dict[str, object]
        if intent.kind == "respond":
            kind, fields = "respond", {"answer": mail.text}
        elif intent.kind == "request_extension":
            kind, fields = "request_extension", {"until": intent.until, "reason": mail.text}
        else:
            kind, fields = (
                "add_note",
                {"text": f"Reply by e-mail (not taken as an answer: {intent.why}):\n\n{mail.text}"[:20_000]},
            )
        try:
            await self.app.act(caller, token.escalation_id, kind, fields, update_id=update_id)
        except Unavailable as exc:
            raise Retry(exc.message) from exc
        except AppError as exc:
            return self._finish(
                mail, token, self._refused(mail, token, exc.message), tell=True, person=person
            )
        name = "note" if kind == "add_note" else kind
        outcome = Outcome(name, intent.why, mail.message_id, token.escalation_id)  # type: ignore[arg-type]
        return self._finish(mail, token, outcome, tell=True, person=person)

    async def _person(self, token: ReplyToken) -> Person | None:
        """The directory person the token was issued to (None: not in the directory, or no escalation)."""
        try:
            facts = await self.app.facts(token.escalation_id)
        except Unavailable as exc:
            raise Retry(exc.message) from exc
        if facts is None:
            return None
        return self.people.get(f"{facts.protocol.key}/{token.person_id}")

    def _recorded(self, message_id: str) -> bool:
        with Session(self.engine) as session:
            found = session.scalars(
                select(InboundMail.id).where(InboundMail.message_id == message_id)
            ).first()
        return found is not None

    def _answered(self, token: ReplyToken) -> bool:
        """Whether a reply already answered this stage for this person (the record, append-only)."""
        with Session(self.engine) as session:
            found = session.scalars(
                select(InboundMail.id).where(
                    InboundMail.escalation_id == token.escalation_id,
                    InboundMail.stage == token.stage,
                    InboundMail.person_id == token.person_id,
                    InboundMail.outcome == "respond",
                )
            ).first()
        return found is not None

    def _refused(self, mail: ParsedMail, token: ReplyToken | None, reason: str) -> Outcome:
        return Outcome("refused", reason, mail.message_id, token.escalation_id if token else None)

    def _match(self, mail: ParsedMail) -> _Match:
        """The reply token the message answers, or the outcome of one that is refused before any look at
        the escalation (a bounce, no or an unknown token, an automatic reply, an expired token)."""
        if mail.bounce:
            return _Match(None, self._refused(mail, None, "a delivery failure report (bounce)"))
        tokens = tokens_in(mail.addresses, self.smtp.reply_local, self.smtp.reply_domain)
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            sent = list(session.scalars(select(SentMail).where(SentMail.message_id.in_(mail.references))))
            token: ReplyToken | None = None
            if tokens:
                token = session.scalars(
                    select(ReplyToken).where(ReplyToken.token_hash.in_([hash_token(t) for t in tokens]))
                ).first()
                if token is None:
                    return _Match(
                        None, self._refused(mail, None, "an unknown reply token (forged or mistyped)")
                    )
            elif sent:
                first = sent[0]
                token = session.scalars(
                    select(ReplyToken)
                    .where(
                        ReplyToken.idempotency_key == first.idempotency_key,
                        ReplyToken.person_id == first.person_id,
                    )
                    .order_by(ReplyToken.created_at.desc())
                ).first()
            if token is None:
                return _Match(
                    None, self._refused(mail, None, "no reply token and no message of ours it answers")
                )
            session.expunge(token)
        if any(s.escalation_id != token.escalation_id for s in sent):
            reason = "the reply token and the message it answers belong to different escalations"
            return _Match(token, self._refused(mail, token, reason))
        if mail.auto_reply:
            return _Match(token, self._refused(mail, token, mail.auto_reply))
        expires = token.expires_at if token.expires_at.tzinfo else token.expires_at.replace(tzinfo=UTC)
        if expires <= now:
            return _Match(token, self._refused(mail, token, "the reply token has expired"), tell=True)
        return _Match(token)

    @staticmethod
    def _sender_refusal(mail: ParsedMail, person: Person) -> str | None:
        if mail.from_address != person.email.strip().lower():
            return (
                f"it came from {mail.from_address or 'no address'}, not the address this e-mail was sent to"
            )
        auth = mail.auth
        if auth.get("dmarc") == "fail":
            return "the receiving mail server found that it failed DMARC (it may not be from the sender)"
        if (
            "dmarc" not in auth
            and "fail" in (auth.get("dkim"), auth.get("spf"))
            and auth.get("dkim") != "pass"
        ):
            return (
                "the receiving mail server found that it failed DKIM or SPF (it may not be from the sender)"
            )
        return None

    # --- recording and telling -------------------------------------------------------------------------

    def _finish(
        self,
        mail: ParsedMail,
        token: ReplyToken | None,
        outcome: Outcome,
        tell: bool = False,
        person: Person | None = None,
    ) -> Outcome:
        """Tell the person (to their directory address, never to an unchecked From), then record the outcome
        once (and in the audit log, event ``mail_reply``); a reply that answered marks its token used."""
        told = False
        if tell and person is not None and token is not None:
            told = self._confirm(mail, token, person, outcome)
        row = {
            "message_id": mail.message_id,
            "received_at": datetime.now(UTC),
            "source": self.source,
            "from_address": mail.from_address[:320],
            "subject": mail.subject[:500],
            "token_hash": token.token_hash if token else None,
            "escalation_id": token.escalation_id if token else None,
            "stage": token.stage if token else None,
            "person_id": token.person_id if token else None,
            "outcome": outcome.kind,
            "reason": outcome.reason[:REASON_MAX],
            "reply_text": mail.text,
            "attachments": "\n".join(mail.attachments),
            "told_sender": told,
        }
        try:
            with Session(self.engine) as session:  # recorded once below: nothing to do if it is already
                if session.scalars(
                    select(InboundMail.id).where(InboundMail.message_id == mail.message_id)
                ).first():
                    return Outcome("duplicate", "already processed", mail.message_id, outcome.escalation_id)
            self.app.audit.record(
                "mail_reply",
                AuditOutcome.REFUSED if outcome.kind == "refused" else AuditOutcome.OK,
                via="mail",
                person=person,
                escalation_id=outcome.escalation_id,
                reason=f"{outcome.kind}: {outcome.reason}"[:REASON_MAX],
            )
            with Session(self.engine) as session, session.begin():
                session.execute(insert(InboundMail), [row])
                if outcome.kind == "respond" and token is not None:
                    session.execute(
                        update(ReplyToken)
                        .where(ReplyToken.token_hash == token.token_hash, ReplyToken.used_at.is_(None))
                        .values(used_at=datetime.now(UTC))
                    )
        except IntegrityError:  # recorded meanwhile by a concurrent ingester: that one stands
            return Outcome("duplicate", "already processed", mail.message_id, outcome.escalation_id)
        except SQLAlchemyError as exc:
            raise Retry(f"the record store cannot be written: {type(exc).__name__}") from exc
        return Outcome(outcome.kind, outcome.reason, outcome.message_id, outcome.escalation_id, told)

    def _confirm(self, mail: ParsedMail, token: ReplyToken, person: Person, outcome: Outcome) -> bool:
        """Send the person what became of their reply, once (stable Message-ID, logged in ``sent_mail``)."""
        digest = hashlib.sha256(("confirm\x00" + mail.message_id).encode()).hexdigest()[:40]
        message_id = f"<{digest}@{self.smtp.reply_domain}>"
        with Session(self.engine) as session:
            if session.scalars(select(SentMail.id).where(SentMail.message_id == message_id)).first():
                return True
        subject = f"[{token.escalation_id}] Your e-mail reply: " + {
            "respond": "recorded as your answer",
            "request_extension": "sent as a request for more time",
            "note": "kept as a note, not as an answer",
        }.get(outcome.kind, "not acted on")
        link = f"{web_url()}/escalations/{token.escalation_id}"
        what = {
            "respond": "It was recorded as your answer for this stage.",
            "request_extension": "It was sent as a request for more time; you will hear when it is decided.",
            "note": "It was kept on the escalation as a note, but not taken as your answer because "
            f"{outcome.reason}. Please answer using the form at the link below.",
        }.get(outcome.kind, f"It was not acted on: {outcome.reason}. Please use the form at the link below.")
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["Subject"] = subject
        message["From"] = self.smtp.mail_from
        message["To"] = person.email
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(datetime.now(UTC))
        message["In-Reply-To"] = mail.message_id
        message["References"] = mail.message_id
        message["Auto-Submitted"] = "auto-replied"
        message["X-Escalation-Id"] = token.escalation_id
        message.set_content(
            f"Dear {person.name},\n\nWe received your e-mail reply about escalation {token.escalation_id} "
            f'("{mail.subject}").\n\n{what}\n\nThe escalation: {link}\n'
        )
        try:
            with self.notifier._reachable() as smtp:
                smtp.send_message(message, to_addrs=[person.email])
        except (MailUnavailable, OSError) as exc:
            raise Retry(f"the mail server cannot take the confirmation now: {exc}") from exc
        except Exception as exc:  # a refused address: the outcome stands, the person is not told
            print(f"mail ingest: could not confirm to {person.id}: {exc}", flush=True)
            return False
        log = SentMail(
            message_id=message_id,
            idempotency_key=f"reply-confirmation-{digest}",
            escalation_id=token.escalation_id,
            run_id=token.run_id,
            person_id=person.id,
            address=person.email,
            kind="reply_confirmation",
            subject=subject[:500],
            sent_at=datetime.now(UTC),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(log)
        except IntegrityError:
            pass
        return True
