"""The weekly digest of outstanding alerts: read, group and mail (``send_weekly_digest``).

1. **Read**: one query of the record store's ``escalations`` table for every open escalation of the
   authorities asked (never one read per workflow).
2. **Group** (``plan``, pure but for the directory look-up it is given): for each authority whose protocol
   has a ``digest`` section, each role holding an open alert (its ``held_by``, the stage's recipients; not
   the raising officer, not external roles) is resolved in the directory for the alert's team, once per
   (team, role); each person gets their alerts. Each holder of a ``digest.everything_to`` role gets all of
   the authority's. A person in both gets one mail, with everything.
3. **Mail**: one message per person, rendered from ``templates/mail/weekly_digest.*.j2`` and sent over the
   same SMTP connection code as notices. Exactly once per week: the Message-ID is derived from (authority,
   ISO week, person) and the ``sent_mail`` log is checked before and written right after each message, so
   a retried activity, a second run of the schedule or ``escalate digest send`` in the same week sends
   nothing twice.

Errors as the escalation activities sort them (``escalation_activities._sorted_errors``): the mail server
or database down is retried; bad data fails at once. A role nobody holds is reported in the result, never
a reason to hold back the others' mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity

from activities.db.mail_models import SentMail
from activities.db.record_models import EscalationRecord
from activities.directory import Person, RoleUnfilled, resolve_roles
from activities.escalation_activities import _sorted_errors
from activities.mail import (
    TEMPLATES_DIR,
    InvalidNotification,
    SmtpNotifier,
    message_id_for,
    template_environment,
)
from activities.mail_bytes import MESSAGE_POLICY
from activities.settings import SmtpSettings
from protocols import ProtocolError, available_protocols, load_protocol
from schemas.digest import DigestMail, DigestRequest, DigestResult, iso_week
from schemas.escalation import Status
from schemas.protocol import RAISING_OFFICER, Protocol

LONDON = ZoneInfo("Europe/London")
KIND = "weekly_digest"


@dataclass(frozen=True)
class Alert:
    """One open escalation as the digest lists it (no personal data: the child is a reference)."""

    escalation_id: str
    authority: str
    track: str
    team: str | None
    category: str
    stage_name: str
    status: str
    held_by: tuple[str, ...]
    deadline_date: date | None
    flags: tuple[str, ...]
    child_ref: str


@dataclass
class Planned:
    """One person's digest."""

    authority: str
    person: Person
    roles: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    everything: bool = False


Resolve = Callable[[str, str | None, str], Person | None]
"""(authority, team, role) -> who holds it, or None."""


def outstanding(engine: Engine, authorities: list[str]) -> list[Alert]:
    """Every open escalation of ``authorities``, soonest deadline first: one query."""
    closed = [s.value for s in Status if s.is_closed]
    r = EscalationRecord
    query = (
        select(
            r.escalation_id,
            r.authority,
            r.track,
            r.team,
            r.category,
            r.stage_name,
            r.status,
            r.held_by,
            r.deadline_date,
            r.flags,
            r.child_ref,
        )
        .where(r.authority.in_(authorities), r.status.not_in(closed))
        .order_by(r.deadline_date.is_(None), r.deadline_date, r.escalation_id)
    )
    with Session(engine) as session:
        rows = session.execute(query).all()
    return [
        Alert(
            escalation_id=row.escalation_id,
            authority=row.authority,
            track=row.track,
            team=row.team,
            category=row.category,
            stage_name=row.stage_name,
            status=row.status,
            held_by=tuple(row.held_by or ()),
            deadline_date=row.deadline_date,
            flags=tuple(row.flags or ()),
            child_ref=row.child_ref,
        )
        for row in rows
    ]


def plan(
    alerts: list[Alert], protocols: dict[str, Protocol], resolve: Resolve
) -> tuple[list[Planned], list[str]]:
    """Who gets which alerts, and the (authority, role, team) nobody holds; see the module docstring."""
    planned: dict[tuple[str, str], Planned] = {}
    unfilled: list[str] = []
    found: dict[tuple[str, str | None, str], Person | None] = {}

    def holder(authority: str, team: str | None, role: str) -> Person | None:
        key = (authority, team, role)
        if key not in found:
            found[key] = resolve(authority, team, role)
            if found[key] is None:
                unfilled.append(f"{authority}: {role} for {team or 'the whole authority'}")
        return found[key]

    def add(authority: str, person: Person, role: str) -> Planned:
        mail = planned.setdefault((authority, person.id), Planned(authority=authority, person=person))
        if role not in mail.roles:
            mail.roles.append(role)
        return mail

    for authority, protocol in protocols.items():
        digest = protocol.digest
        if digest is None:
            continue
        tracks = {t.key for t in protocol.tracks}
        mine = [a for a in alerts if a.authority == authority and a.track in tracks]
        for role in digest.everything_to:
            person = holder(authority, None, role)
            if person is not None:
                mail = add(authority, person, role)
                mail.everything, mail.alerts = True, list(mine)
        if not digest.holders:
            continue
        for alert in mine:
            for role in alert.held_by:
                if role == RAISING_OFFICER or role in protocol.external_roles or role not in protocol.roles:
                    continue
                person = holder(authority, alert.team, role)
                if person is None:
                    continue
                mail = add(authority, person, role)
                if not mail.everything and alert not in mail.alerts:
                    mail.alerts.append(alert)
    return [p for p in planned.values() if p.alerts], unfilled


class DigestActivities:
    """The digest, bound to the record store's engine and the SMTP settings."""

    def __init__(
        self,
        engine: Engine,
        smtp: SmtpSettings,
        protocols: Callable[[str], Protocol] = load_protocol,
        authorities: Callable[[], list[str]] = available_protocols,
    ) -> None:
        self.engine = engine
        self.smtp = smtp
        self.protocols = protocols
        self.authorities = authorities
        self.env = template_environment(TEMPLATES_DIR)
        self.mailer = SmtpNotifier(engine, smtp, protocols=protocols)

    @activity.defn(name="send_weekly_digest")
    def send_weekly_digest(self, request: DigestRequest) -> DigestResult:
        """Send (or, in a dry run, plan) the week's digests; see the module docstring."""
        with _sorted_errors():
            today = datetime.now(UTC).astimezone(LONDON).date()
            week = request.week or iso_week(today)
            protocols = self._protocols(request, today)
            alerts = outstanding(self.engine, sorted(protocols))
            with Session(self.engine) as session:
                planned, unfilled = plan(alerts, protocols, self._resolver(session, protocols))
            mails = [self._send(mail, protocols[mail.authority], week, request.dry_run) for mail in planned]
            return DigestResult(week=week, mails=mails, unfilled=unfilled)

    def _protocols(self, request: DigestRequest, today: date) -> dict[str, Protocol]:
        keys = [request.authority] if request.authority else self.authorities()
        found: dict[str, Protocol] = {}
        for key in keys:
            try:
                protocol = self.protocols(key)
            except ProtocolError:
                if request.authority:
                    raise
                continue  # another authority's broken file never holds back the others' digests
            digest = protocol.digest
            if digest is None:
                if request.authority:
                    raise ValueError(
                        f"the {protocol.authority} protocol has no weekly digest (its 'digest' section)"
                    )
                continue
            if request.on_its_weekday and digest.weekday != today.isoweekday():
                continue
            found[key] = protocol
        return found

    def _resolver(self, session: Session, protocols: dict[str, Protocol]) -> Resolve:
        def resolve(authority: str, team: str | None, role: str) -> Person | None:
            try:
                return resolve_roles(session, authority, team, [role], protocol=protocols[authority])[role]
            except RoleUnfilled:
                return None

        return resolve

    def _send(self, mail: Planned, protocol: Protocol, week: str, dry_run: bool) -> DigestMail:
        shown = DigestMail(
            authority=mail.authority,
            person_id=mail.person.id,
            roles=list(mail.roles),
            alerts=len(mail.alerts),
            everything=mail.everything,
            sent=False,
        )
        if dry_run:
            return shown
        key = f"digest/{mail.authority}/{week}/{mail.person.id}"
        message_id = message_id_for(key, mail.person.id, self.smtp.reply_domain)
        with Session(self.engine) as session:
            if session.scalar(select(SentMail.id).where(SentMail.message_id == message_id)) is not None:
                return shown  # sent earlier this week
        subject, message = self._message(mail, protocol, week, message_id)
        self.mailer.deliver_one(message, mail.person)
        row = {
            "message_id": message_id,
            "idempotency_key": key[:160],
            "escalation_id": f"digest-{mail.authority}-{week}"[:128],
            "run_id": "",
            "person_id": mail.person.id,
            "address": mail.person.email,
            "kind": KIND,
            "subject": subject[:500],
            "sent_at": datetime.now(UTC),
        }
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(insert(SentMail), [row])
        except IntegrityError:  # a concurrent attempt logged it first: already recorded
            pass
        return shown.model_copy(update={"sent": True})

    def _message(self, mail: Planned, protocol: Protocol, week: str, message_id: str) -> tuple[str, bytes]:
        context: dict[str, Any] = {
            "authority_name": protocol.authority,
            "week": week,
            "recipient": mail.person.name,
            "roles": [protocol.role_name(r) for r in mail.roles],
            "everything": mail.everything,
            "alerts": [
                {
                    "id": a.escalation_id,
                    "category": a.category,
                    "stage": a.stage_name,
                    "status": a.status.replace("_", " "),
                    "deadline": a.deadline_date,
                    "overdue": "overdue" in a.flags,
                    "collective": "collective" in a.flags,
                    "waiting_for": [protocol.role_name(r) for r in a.held_by],
                    "team": a.team,
                }
                for a in mail.alerts
            ],
        }
        try:
            text_template = self.env.get_template(f"{KIND}.txt.j2")
            subject = " ".join(
                "".join(text_template.blocks["subject"](text_template.new_context(context))).split()
            )
            text = text_template.render(context)
            html = self.env.get_template(f"{KIND}.html.j2").render(context)
        except jinja2.TemplateError as exc:
            raise InvalidNotification(
                f"cannot render the weekly digest: {type(exc).__name__}: {exc}"
            ) from exc
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["Subject"] = subject
        message["From"] = self.smtp.mail_from
        message["To"] = Address(display_name=mail.person.name, addr_spec=mail.person.email)
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Auto-Submitted"] = "auto-generated"
        message["X-Escalation-Digest"] = f"{mail.authority} {week}"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return subject, message.as_bytes()

    def all(self) -> list[Callable[..., Any]]:
        return [self.send_weekly_digest]
