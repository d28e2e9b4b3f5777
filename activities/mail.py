"""Notifying for real: e-mail over SMTP to the people the directory says hold the notified roles.

``SmtpNotifier`` implements ``activities.recording.Notifier``. For one notification it

1. resolves every ``to`` and ``cc`` role for the escalation's authority and team (``raising_officer``: the
   officer, by person id). A role nobody holds raises ``RoleUnfilled`` before anything is sent;
2. renders one message per distinct recipient from ``activities/templates/mail/`` (plain text and HTML).
   The To and Cc headers show the full lists, the envelope goes to that one recipient, and each message has
   its own Reply-To ``<reply_local>+<token>@<reply_domain>``: an opaque, random, single-purpose token tied
   to the escalation, the stage and the recipient. Only its SHA-256 is stored (``reply_tokens``), with an
   expiry (``ESCALATION_REPLY_TOKEN_DAYS``); ``find_reply_token`` finds what a token was issued for. A
   retried send makes new tokens for the messages it sends: a stored hash cannot give the token back;
3. sends each message that the ``sent_mail`` log does not already hold, and logs it straight after the SMTP
   server accepted it.

Exactly once, and its limit: each message has a stable Message-ID derived from (idempotency key, run id,
recipient), and the log is checked before and written after each message, so a retried send never delivers
a logged message again. The run id (the escalation's first run id) keeps the Message-IDs of an escalation id
used again after Temporal's retention apart from the first one's; from histories recorded before it was
added it is empty, and the Message-ID is derived as it was then.

The one remaining window is a crash (or lost database connection) after the SMTP server has
accepted a message and before its log row is committed: that message is sent again on retry, with the same
Message-ID, which lets mail servers and clients that deduplicate on Message-ID drop the copy. The window is
kept to one message: each log row is committed on its own, straight after its message was accepted (batching
the log rows into one commit per notification would widen the window to every recipient, so it is not
done).

Cost: one notification uses one database connection and one SMTP connection for all its recipients. Its
reads (directory, log) are one short transaction, its reply tokens one more (committed before the first
message goes out, so every token sent can be looked up, with the check that a concurrent attempt has not
logged the first message), then each message one (its log row, with the same check for the next message).
Messages are written as bytes by ``activities.mail_bytes`` (the headers every recipient shares folded once
per notification), templates are compiled once per process, and the TLS context (``tls_context``) is made
once per process, only when TLS is on.

Errors: SMTP, connection and database errors propagate (retryable); ``RoleUnfilled`` propagates (retryable:
the notice waits until the directory is filled in); so does ``ProtocolUnavailable`` (the authority's protocol
file cannot be loaded on this worker: retried until it is fixed). A template that cannot be rendered, an
address that is not an e-mail address (or that the server refuses permanently), or a value too long to log
raises ``InvalidNotification`` (not retryable), before anything is sent. NUL characters in the notification's
text are replaced with U+FFFD (SMTP and PostgreSQL refuse them).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address, BaseHeader
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.db.checks import check_row, without_nul
from activities.db.mail_models import ReplyToken, SentMail
from activities.directory import Person, Resolver, RoleUnfilled, resolve, resolve_roles, valid_email
from activities.mail_bytes import MESSAGE_POLICY, MessageWriter, plain_message, shared_header
from activities.recording import Delivery
from activities.settings import SmtpSettings
from activities.working_days import long_date
from protocols import ProtocolError, load_protocol
from schemas.effects import Covered, NotificationInput
from schemas.escalation import Concern, EventKind, ExternalContact, Status
from schemas.protocol import RAISING_OFFICER, Protocol

__all__ = [
    "MESSAGE_POLICY",
    "TEMPLATES_DIR",
    "InvalidNotification",
    "MailUnavailable",
    "ProtocolUnavailable",
    "RenderedMail",
    "ReplyTokenInfo",
    "RoleUnfilled",
    "SmtpNotifier",
    "find_reply_token",
    "hash_token",
    "long_date",
    "message_id_for",
    "render",
    "tls_context",
]

LONDON = ZoneInfo("Europe/London")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates" / "mail"
GENERIC_TEMPLATE = "_generic"
TOKEN_BYTES = 18
"""``secrets.token_urlsafe(18)``: 24 characters, 144 bits."""
TOKEN_CHARS = TOKEN_BYTES // 3 * 4
"""Its length: base64, 4 characters for every 3 bytes (a multiple of 3 bytes: no padding)."""

ANSWER_KINDS = frozenset(
    {EventKind.SENT_TO_STAGE, EventKind.REMINDER, EventKind.TIMESCALE_SET, EventKind.EXTENSION_DECIDED}
)
"""Kinds that ask the stage's ``to`` recipients for an answer by the deadline."""


_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class InvalidNotification(ValueError):
    """The notification cannot be sent as it is (template error, invalid address): retrying will not help."""


class MailUnavailable(ConnectionError):
    """The mail server cannot be reached or will not take mail now (connection, TLS, login, a temporary
    refusal): retryable; a batch that reports undelivered notices reports it instead once it lasts."""


class ProtocolUnavailable(RuntimeError):
    """The authority's protocol file cannot be loaded here (missing or broken on this worker): retryable,
    the notice waits until the file is fixed."""


# --- rendering ------------------------------------------------------------------------------------------


def working_days_words(days: int | None) -> str:
    if days is None:
        return ""
    if days <= 0:
        return "the same working day"
    return f"{days} working day{'' if days == 1 else 's'}"


def short_stage_name(name: str) -> str:
    """``Stage 2 - Locality Service Lead``: ``Stage 2``; a name without a dash is kept whole."""
    for dash in (" - ", " – ", " — "):
        if dash in name:
            return name.split(dash, 1)[0].strip()
    return name


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html", ".html.j2"))


def template_environment(folder: Path = TEMPLATES_DIR) -> jinja2.Environment:
    """HTML templates (``*.html.j2``) are autoescaped; plain-text ones (``*.txt.j2``) are not."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # compiled once per process: no file check on every render
    )
    env.filters["long_date"] = long_date
    env.filters["working_days"] = working_days_words
    env.filters["short_stage"] = short_stage_name
    return env


@functools.lru_cache(maxsize=8)
def _cached_environment(folder: Path) -> jinja2.Environment:
    return template_environment(folder)


def template_names(kind: str) -> tuple[str, str]:
    return f"{kind}.txt.j2", f"{kind}.html.j2"


@dataclass(frozen=True)
class Recipient:
    person: Person
    role: str
    """The role key it was addressed to (``raising_officer`` for the officer)."""
    acts_as: str
    """The role the person acts in when replying (the officer's own role for ``raising_officer``)."""
    position: Literal["to", "cc"]


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _StageInfo:
    number: int | None
    count: int | None
    names: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    total_limit: int | None = None
    """The track's own total limit (protocol language v2), when it sets one."""


def _stage_info(protocol: Protocol, n: NotificationInput) -> _StageInfo:
    tracks = [t for t in protocol.tracks if n.officer.role in t.officer_roles] or list(protocol.tracks)
    for track in tracks:
        keys = [s.key for s in track.stages]
        if n.stage in keys:
            names = {s.key: s.name for s in track.stages}
            return _StageInfo(
                keys.index(n.stage) + 1,
                len(keys),
                names,
                {s.key: s.label for s in track.stages},
                track.total_formal_working_days,
            )
    return _StageInfo(None, None, {})


def _summary_only(summary: str) -> dict[str, str | None]:
    """The concern of a notice from a history made before the whole concern was passed."""
    parts: dict[str, str | None] = dict.fromkeys(Concern.model_fields)
    return {**parts, "summary": summary}


def _display(person: Person, role_name: str) -> str:
    return f"{person.name} ({role_name})"


def render(
    n: NotificationInput,
    recipient: Recipient,
    *,
    protocol: Protocol,
    to_people: list[tuple[Person, str]],
    cc_people: list[tuple[Person, str]],
    reply_address: str,
    form_url: str | None = None,
    env: jinja2.Environment | None = None,
) -> RenderedMail:
    """Subject, plain text and HTML of ``n`` for ``recipient``; raises ``InvalidNotification`` on a
    template error. ``to_people``/``cc_people``: (person, role key) for the header lists."""
    env = env or _cached_environment(TEMPLATES_DIR)
    stages = _stage_info(protocol, n)
    role_name = protocol.role_name
    actor = n.entry.actor
    is_officer = recipient.role == RAISING_OFFICER or recipient.person.id == n.officer.id
    context: dict[str, Any] = {
        "n": n,
        "kind": n.kind.value,
        "data": n.entry.data,
        "authority_name": protocol.authority,
        "role_name": role_name,
        "recipient": {
            "name": recipient.person.name,
            "role": recipient.role,
            "role_name": role_name(recipient.role),
            "position": recipient.position,
            "is_officer": is_officer,
        },
        "officer_role": role_name(n.officer.role),
        "actor_role": role_name(actor.role) if actor else None,
        "actor_is_officer": actor is not None and actor.id == n.officer.id,
        "to_list": [_display(p, role_name(r)) for p, r in to_people],
        "cc_list": [_display(p, role_name(r)) for p, r in cc_people],
        "to_roles": [role_name(r) for r in n.to_roles],
        "cc_roles": [role_name(r) for r in n.cc_roles],
        "stage_short": n.stage_label or stages.labels.get(n.stage) or short_stage_name(n.stage_name),
        "stage_number": stages.number,
        "stage_count": stages.count,
        "first_stage": stages.number == 1,
        "last_stage": stages.number is not None and stages.number == stages.count,
        "stage_names": stages.names,
        "stage_labels": stages.labels,
        "concern": n.concern.model_dump() if n.concern else _summary_only(n.concern_summary),
        "deadline_words": long_date(n.deadline_date),
        "working_days_words": working_days_words(n.working_days),
        "is_open": not n.status.is_closed,
        "awaiting_response": n.status is Status.AWAITING_RESPONSE,
        "asked_to_answer": (
            recipient.position == "to"
            and n.kind in ANSWER_KINDS
            and n.status is Status.AWAITING_RESPONSE
            and not is_officer
        ),
        "reply_address": reply_address,
        "form_url": form_url,
        "total_limit": stages.total_limit or protocol.total_formal_working_days,
    }
    context["subject_prefix"] = f"[{n.escalation_id}] {context['stage_short']}:"
    text_name, html_name = template_names(n.kind.value)
    try:
        text_template = env.select_template([text_name, f"{GENERIC_TEMPLATE}.txt.j2"])
        html_template = env.select_template([html_name, f"{GENERIC_TEMPLATE}.html.j2"])
        if "subject" not in text_template.blocks:
            raise InvalidNotification(f"template {text_template.name} has no 'subject' block")
        subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
        text = text_template.render(context)
        html = html_template.render(context)
    except jinja2.TemplateError as exc:
        raise InvalidNotification(
            f"cannot render the {n.kind.value!r} notification {n.idempotency_key}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    subject = " ".join(subject.split())
    if not subject:
        raise InvalidNotification(f"the {n.kind.value!r} template rendered an empty subject")
    return RenderedMail(subject=subject[:500], text=_tidy_text(text), html=html)


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


# --- identities -----------------------------------------------------------------------------------------


def message_id_for(idempotency_key: str, person_id: str, domain: str, run_id: str = "") -> str:
    """A stable Message-ID for one notification to one recipient: the same on every retry.

    With the escalation's ``run_id`` it differs from the Message-IDs of an earlier escalation with the same
    id; without (histories recorded before run ids were passed) it is derived as it always was.
    """
    parts = [idempotency_key, run_id, person_id] if run_id else [idempotency_key, person_id]
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def hash_token(token: str) -> str:
    """What ``reply_tokens`` keeps of a token: its SHA-256, hex. Tokens are 144 random bits, so a plain
    hash cannot be reversed by guessing; the database never holds a token that could be used."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ReplyTokenInfo:
    """What a reply token was issued for (``find_reply_token``)."""

    escalation_id: str
    run_id: str
    stage: str
    person_id: str
    role: str
    purpose: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def find_reply_token(engine: Engine, token: str, *, now: datetime | None = None) -> ReplyTokenInfo | None:
    """The escalation, stage and person a reply token (as found in a Reply-To address) was issued for, or
    None when there is no such token or it has expired. ``used_at`` says whether a reply already used it."""
    if not token or len(token) > 200:
        return None
    now = now or datetime.now(UTC)
    query = select(ReplyToken).where(ReplyToken.token_hash == hash_token(token), ReplyToken.expires_at > now)
    with Session(engine) as session:
        row = session.scalars(query).first()
        if row is None:
            return None
        return ReplyTokenInfo(
            escalation_id=row.escalation_id,
            run_id=row.run_id,
            stage=row.stage,
            person_id=row.person_id,
            role=row.role,
            purpose=row.purpose,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )


def _address(person: Person) -> Address:
    if not valid_email(person.email):
        raise InvalidNotification(
            f"the directory's address for {person.id!r} ({person.email!r}) is not an e-mail address: "
            "fix it in the directory file and sync it"
        )
    try:
        return _checked_address(person.name, person.email)
    except (ValueError, IndexError) as exc:
        raise InvalidNotification(f"the address of {person.id!r} cannot be used: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def _checked_address(name: str, email: str) -> Address:
    """Parsed once per person and address (an ``Address`` cannot be changed)."""
    return Address(display_name=name, addr_spec=email)


def _pairs(addresses: list[Address]) -> tuple[tuple[str, str], ...]:
    return tuple((a.display_name, a.addr_spec) for a in addresses)


# --- TLS ------------------------------------------------------------------------------------------------

_tls_lock = threading.Lock()
_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The process's one client TLS context (system CAs, hostname checked), made on first use.

    Making one loads every system CA certificate (tens of milliseconds of CPU), so it is made once and
    shared by every connection (an ``SSLContext`` may be used from several threads); with
    ``ESCALATION_SMTP_TLS=none`` it is never made.
    """
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = ssl.create_default_context()
        return _tls


# --- the notifier ---------------------------------------------------------------------------------------

ProtocolLoader = Callable[[str], Protocol]


class SmtpNotifier:
    """``Notifier`` over SMTP, addressed through the directory; see the module's docstring."""

    def __init__(
        self,
        engine: Engine,
        smtp: SmtpSettings,
        resolver: Resolver = resolve,
        protocols: ProtocolLoader = load_protocol,
        *,
        form_url: str | None = None,
        timeout: float = 20.0,
        templates: Path = TEMPLATES_DIR,
    ) -> None:
        local = f"{smtp.reply_local}+{'x' * TOKEN_CHARS}"
        if len(local) >= 64:
            raise ValueError(
                f"ESCALATION_REPLY_LOCAL {smtp.reply_local!r} is too long: '<local>+<token>' must stay under "
                f"64 characters, so use at most {63 - 1 - TOKEN_CHARS} characters"
            )
        if not (_LOCAL_PART.match(smtp.reply_local) and _DOMAIN.match(smtp.reply_domain)):
            raise ValueError(
                f"ESCALATION_REPLY_LOCAL/_DOMAIN ({smtp.reply_local!r}, {smtp.reply_domain!r}) "
                "do not make an e-mail address"
            )
        self.engine = engine
        self.smtp = smtp
        self.resolver = resolver
        self.protocols = protocols
        self.form_url = form_url
        self.timeout = timeout
        self.env = _cached_environment(templates)

    # -- Notifier --

    def send(self, notification: NotificationInput) -> bool:
        """Deliver each recipient's message unless the log has it; True when anything was sent now."""
        return self.send_reporting(notification).sent

    def send_reporting(self, notification: NotificationInput) -> Delivery:
        """``send``, also saying which roles' notices went to their cover (holder marked absent)."""
        n = without_nul(notification)
        try:
            protocol = self.protocols(n.authority)
        except ProtocolError as exc:
            raise ProtocolUnavailable(
                f"cannot notify {n.kind.value!r} for escalation {n.escalation_id!r}: the {n.authority!r} "
                f"protocol does not load on this worker ({exc}); the notice is retried until it does"
            ) from exc
        with self.engine.connect() as connection, Session(bind=connection) as session:
            recipients, to_people, cc_people, covered = self._recipients(session, n, protocol)
            to_addresses = [_address(p) for p, _ in to_people]
            cc_addresses = [_address(p) for p, _ in cc_people]
            ids = {
                r.person.id: message_id_for(n.idempotency_key, r.person.id, self.smtp.reply_domain, n.run_id)
                for r in recipients
            }
            done = set(
                session.scalars(select(SentMail.message_id).where(SentMail.message_id.in_(ids.values())))
            )
            session.commit()  # the reads end here: nothing waits on them while rendering
            pending = [r for r in recipients if ids[r.person.id] not in done]
            if not pending:
                return Delivery(False, covered)
            # Everything that could fail for good is done before the first message goes out.
            writer = MessageWriter(self._shared_headers(n, to_addresses, cc_addresses))
            messages: list[tuple[Person, SentMail, bytes]] = []
            tokens: list[ReplyToken] = []
            for r in pending:
                token = secrets.token_urlsafe(TOKEN_BYTES)
                tokens.append(self._token_row(n, r, token))
                reply = f"{self.smtp.reply_local}+{token}@{self.smtp.reply_domain}"
                mail = render(
                    n,
                    r,
                    protocol=protocol,
                    to_people=to_people,
                    cc_people=cc_people,
                    reply_address=reply,
                    form_url=self.form_url,
                    env=self.env,
                )
                message = self._message(n, mail, ids[r.person.id], reply, writer)
                log = self._log_row(n, r, mail, ids[r.person.id])
                check_row(log, _name(n), InvalidNotification)
                messages.append((r.person, log, message))
            # One transaction for every token, committed before any message carrying one goes out; it
            # also checks that a concurrent attempt has not logged the first message meanwhile.
            session.execute(insert(ReplyToken), [_values(t) for t in tokens])
            logged = self._logged(session, messages[0][1].message_id)
            sent = 0
            with self._reachable() as smtp:
                for i, (person, log, message) in enumerate(messages):
                    following = messages[i + 1][1].message_id if i + 1 < len(messages) else None
                    if logged:  # a concurrent attempt got there first
                        logged = following is not None and self._logged(session, following)
                        continue
                    self._deliver(smtp, message, person)
                    sent += 1
                    logged = self._log(session, log, following)
        return Delivery(sent > 0, covered)

    # -- steps --

    def _recipients(
        self, session: Session, n: NotificationInput, protocol: Protocol
    ) -> tuple[list[Recipient], list[tuple[Person, str]], list[tuple[Person, str]], list[Covered]]:
        """One recipient per person (``to`` before ``cc``), the header lists, deduplicated by person, and
        the roles whose holders are absent and whose cover was addressed instead."""

        external = {x.role: _external_person(x) for x in n.external}
        roles = [r for r in [*n.to_roles, *n.cc_roles] if r not in external]
        found = self._resolve(session, n, roles, protocol)
        found.update(external)
        acting = {role: role for role in found}
        covered = self._cover_absent(session, n, protocol, found, acting) if protocol.cover else []
        to_people = _unique([(found[role], acting[role]) for role in n.to_roles])
        to_ids = {p.id for p, _ in to_people}
        cc_people = [
            (p, r)
            for p, r in _unique([(found[role], acting[role]) for role in n.cc_roles])
            if p.id not in to_ids
        ]

        def recipient(person: Person, role: str, position: Literal["to", "cc"]) -> Recipient:
            acts_as = n.officer.role if role == RAISING_OFFICER else role
            return Recipient(person=person, role=role, acts_as=acts_as, position=position)

        recipients = [recipient(p, r, "to") for p, r in to_people]
        recipients += [recipient(p, r, "cc") for p, r in cc_people]
        return recipients, to_people, cc_people, covered

    def _resolve(
        self, session: Session, n: NotificationInput, roles: list[str], protocol: Protocol
    ) -> dict[str, Person]:
        if self.resolver is resolve:  # the database directory: every role in one query
            return resolve_roles(
                session, n.authority, n.team, roles, officer_id=n.officer.id, protocol=protocol
            )
        return {
            role: self.resolver(
                session, n.authority, n.team, role, officer_id=n.officer.id, protocol=protocol
            )
            for role in roles
        }

    def _cover_absent(
        self,
        session: Session,
        n: NotificationInput,
        protocol: Protocol,
        found: dict[str, Person],
        acting: dict[str, str],
    ) -> list[Covered]:
        """Put the cover role's holder in place of each holder marked absent on the day of the event told
        of (London), where the protocol names a cover for the role; one level only (an absent cover is still
        sent to)."""
        today = n.entry.at.astimezone(LONDON).date()
        absent = [
            role
            for role, person in found.items()
            if role in protocol.cover and role not in protocol.external_roles and person.absent_on(today)
        ]
        if not absent:
            return []
        covers = self._resolve(session, n, [protocol.cover[r] for r in absent], protocol)
        covered = []
        for role in absent:
            cover_role = protocol.cover[role]
            until = found[role].absent_until
            found[role], acting[role] = covers[cover_role], cover_role
            covered.append(Covered(seq=n.entry.seq, role=role, cover_role=cover_role, until=until))
        return covered

    def _token_row(self, n: NotificationInput, r: Recipient, token: str) -> ReplyToken:
        """The stored form of the recipient's reply token for this message (its hash), checked."""
        now = datetime.now(UTC)
        row = ReplyToken(
            token_hash=hash_token(token),
            idempotency_key=n.idempotency_key,
            escalation_id=n.escalation_id,
            run_id=n.run_id,
            stage=n.stage,
            person_id=r.person.id,
            role=r.acts_as,
            purpose="reply",
            created_at=now,
            expires_at=now + timedelta(days=self.smtp.reply_token_days),
        )
        check_row(row, _name(n), InvalidNotification)
        return row

    def _shared_headers(
        self, n: NotificationInput, to_addresses: list[Address], cc_addresses: list[Address]
    ) -> list[tuple[BaseHeader, bytes]]:
        """The headers every recipient's message has alike, parsed and folded once (``shared_header``)."""
        thread = f"<{n.escalation_id}@{self.smtp.reply_domain}>"
        try:
            headers = [shared_header("From", self.smtp.mail_from), shared_header("To", _pairs(to_addresses))]
            if cc_addresses:
                headers.append(shared_header("Cc", _pairs(cc_addresses)))
            headers += [
                shared_header("References", thread),
                shared_header("In-Reply-To", thread),
                shared_header("Date", format_datetime(datetime.now(UTC))),
                shared_header("Auto-Submitted", "auto-generated"),
                shared_header("X-Escalation-Id", n.escalation_id),
                shared_header("X-Escalation-Event", n.kind.value),
            ]
        except (ValueError, IndexError) as exc:
            raise InvalidNotification(f"cannot address the {n.kind.value!r} notification: {exc}") from exc
        return headers

    def _message(
        self, n: NotificationInput, mail: RenderedMail, message_id: str, reply: str, writer: MessageWriter
    ) -> bytes:
        """The message's bytes as the SMTP server gets them (see ``activities.mail_bytes``)."""
        parts = {"subject": mail.subject, "reply": reply, "message_id": message_id}
        try:
            message = writer.message(**parts, text=mail.text, html=mail.html)
            if message is None:  # a body the email package encodes: built by it
                built = plain_message(**parts, shared=writer.shared, text=mail.text, html=mail.html)
                message = built.as_bytes()
        except (ValueError, IndexError) as exc:
            raise InvalidNotification(f"cannot address the {n.kind.value!r} notification: {exc}") from exc
        return message

    def check(self, authority: str, team: str | None, officer_id: str, roles: list[str]) -> None:
        """Raise ``RoleUnfilled`` if nobody holds one of ``roles``, or ``MailUnavailable`` if the mail
        server cannot be reached now; send nothing."""
        protocol = self.protocols(authority)
        roles = [r for r in roles if r not in protocol.external_roles]  # addressed as given at raise
        with self.engine.connect() as connection, Session(bind=connection) as session:
            resolve_roles(session, authority, team, roles, officer_id=officer_id, protocol=protocol)
        with self._reachable() as smtp:
            try:
                code, reply = smtp.noop()
            except (OSError, smtplib.SMTPException) as exc:
                raise self._unavailable(exc) from exc
            if code != 250:
                raise MailUnavailable(self._where() + f" answered NOOP with {code} {reply!r}")

    def _where(self) -> str:
        return f"the mail server {self.smtp.host}:{self.smtp.port}"

    def _unavailable(self, exc: BaseException) -> MailUnavailable:
        return MailUnavailable(f"{self._where()} cannot take mail now: {type(exc).__name__}: {exc}")

    def _reachable(self) -> smtplib.SMTP:
        """``_connect``, its failures raised as ``MailUnavailable``."""
        try:
            return self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unavailable(exc) from exc

    def _connect(self) -> smtplib.SMTP:
        s = self.smtp
        conn: smtplib.SMTP
        if s.tls == "ssl":
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=tls_context())
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        try:
            if s.tls == "starttls":
                conn.starttls(context=tls_context())
            if s.user:
                conn.login(s.user, s.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def deliver_one(self, message: bytes, person: Person) -> None:
        """Send one finished message to ``person`` on a connection of its own (a mail that is not a
        notice, such as the weekly digest; its caller logs it). ``MailUnavailable`` when the server
        cannot take it now."""
        with self._reachable() as smtp:
            self._deliver(smtp, message, person)

    def _deliver(self, smtp: smtplib.SMTP, message: bytes, person: Person) -> None:
        try:
            smtp.sendmail(_envelope_from(self.smtp.mail_from), [person.email], message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise InvalidNotification(
                    f"the mail server permanently refused {person.id!r} ({person.email}): {exc.recipients}; "
                    "fix the address in the directory"
                ) from exc
            raise self._unavailable(exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unavailable(exc) from exc

    @staticmethod
    def _logged(session: Session, message_id: str) -> bool:
        """Whether ``message_id`` is logged; commits, so no transaction stays open while it is sent."""
        found = session.scalars(select(SentMail.id).where(SentMail.message_id == message_id)).first()
        session.commit()
        return found is not None

    @classmethod
    def _log(cls, session: Session, row: SentMail, following: str | None) -> bool:
        """Commit the (already checked) log row of a message the SMTP server has just accepted, in one
        transaction with the check whether the ``following`` message is logged (by a concurrent attempt);
        return that check's answer."""
        try:
            session.execute(insert(SentMail), [_values(row, sent_at=datetime.now(UTC))])
        except IntegrityError:  # logged concurrently by another attempt: already recorded
            session.rollback()
        if following is None:
            session.commit()
            return False
        return cls._logged(session, following)

    @staticmethod
    def _log_row(n: NotificationInput, r: Recipient, mail: RenderedMail, message_id: str) -> SentMail:
        return SentMail(
            message_id=message_id,
            idempotency_key=n.idempotency_key,
            escalation_id=n.escalation_id,
            run_id=n.run_id,
            person_id=r.person.id,
            address=r.person.email,
            kind=n.kind.value,
            subject=mail.subject,
            sent_at=datetime.now(UTC),
        )


def _external_person(contact: ExternalContact) -> Person:
    """A recipient outside the directory, as given at raise (the address was checked then)."""
    return Person.model_construct(id=f"external-{contact.role}"[:64], name=contact.name, email=contact.email)


def _values(row: ReplyToken | SentMail, **changed: Any) -> dict[str, Any]:
    """A checked row's column values (with ``changed`` ones), for a plain INSERT (the database numbers
    the id)."""
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "id"}
    return values | changed


def _name(n: NotificationInput) -> str:
    return f"the {n.kind.value!r} notification {n.idempotency_key} of escalation {n.escalation_id!r}"


def _unique(people: list[tuple[Person, str]]) -> list[tuple[Person, str]]:
    seen: set[str] = set()
    out: list[tuple[Person, str]] = []
    for person, role in people:
        if person.id not in seen:
            seen.add(person.id)
            out.append((person, role))
    return out


@functools.lru_cache(maxsize=16)
def _envelope_from(mail_from: str) -> str:
    """The bare address of ``ESCALATION_MAIL_FROM`` (which may carry a display name)."""
    return parseaddr(mail_from)[1] or mail_from
