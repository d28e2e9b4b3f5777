"""E-mail replies become responses, requests for more time, notes or refusals, and none is lost.

Real components: a dev server, a real worker recording to SQLite and sending over SMTP (aiosmtpd), the
sample directories; the replies are .eml files made for these tests (``tests/inbound_mail/``) addressed
with the tokens and Message-IDs of the mail the worker really sent, fed through a Maildir (in this process
and as ``escalate mail ingest`` killed mid-batch) and through standard input (``escalate mail ingest
--stdin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from string import Template
from typing import Any

import pytest
import pytest_asyncio
from imap_tools import AND, MailBoxUnencrypted
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session
from temporalio.testing import WorkflowEnvironment

from activities.db.inbound_models import InboundMail
from activities.db.mail_models import ReplyToken
from activities.mail import hash_token
from activities.settings import Settings, SmtpSettings
from app.audit import AuditLog
from app.identity import People
from app.service import Application, Caller
from schemas.escalation import EventKind
from starter.mail_ingest.ingest import EX_TEMPFAIL, Maildir
from starter.mail_ingest.reading import decide, find_date, parse
from starter.mail_ingest.replies import ReplyProcessor
from tests.databases import migrated_engine
from tests.smtp_server import Capture
from tests.temporal_servers import free_port, require_or_skip
from tests.workflow_harness import unique_ref
from worker import build_worker, prepare_database

MAILS = Path(__file__).parent / "inbound_mail"
ESCALATE = Path(sys.executable).with_name("escalate")
PEOPLE = People.load()
OFFICER = PEOPLE.require("wigan/wig-iro-a")
MANAGER = PEOPLE.require("wigan/wig-team-manager-a")
STRANGER = "someone.else@elsewhere.example"

pytestmark_async = pytest.mark.asyncio(loop_scope="session")


# --- pure: reading -----------------------------------------------------------------------------------------


def eml(name: str, **values: str) -> bytes:
    fields = {
        "name": MANAGER.name,
        "from": MANAGER.email,
        "to": "escalations@localhost",
        "subject": "[wigan-T1-0001] Stage 1: a concern needs your answer",
        "date": "Wed, 25 Nov 2026 10:30:00 +0000",
        "message_id": f"<{uuid.uuid4().hex}@mail.wigan.example>",
        "in_reply_to": f"<{uuid.uuid4().hex}@localhost>",
        "answer": "We have agreed a placement date and the plan is updated.",
    }
    return Template((MAILS / f"{name}.eml").read_text()).substitute({**fields, **values}).encode()


@pytest.mark.parametrize(
    "name", ["outlook_desktop", "outlook_mobile", "gmail_quoted", "gmail_unquoted", "apple_mail", "html_only"]
)
def test_each_client_s_quoting_and_signature_are_stripped(name: str) -> None:
    answer = "The placement is agreed from 14 December; the plan is updated today."
    mail = parse(eml(name, answer=answer))
    assert answer in mail.text, mail.text
    for kept_out in ("Please answer", "regards", "Sent from", "Get Outlook", "wrote:", "From:", MANAGER.name):
        assert kept_out.lower() not in mail.text.lower(), (kept_out, mail.text)
    assert mail.text.replace("Hello,", "").strip() == answer
    assert mail.auto_reply is None and not mail.bounce
    assert mail.attachments == (["action-plan.pdf"] if name == "apple_mail" else [])


def test_automatic_replies_bounces_and_authentication_are_recognised() -> None:
    assert parse(eml("out_of_office")).auto_reply
    assert parse(eml("dsn_bounce")).bounce
    assert parse(eml("outlook_desktop")).auth == {"dkim": "pass", "spf": "pass", "dmarc": "pass"}


def test_intent_answers_more_time_in_words_and_unclear_replies() -> None:
    today = date(2026, 11, 25)
    assert decide("The plan is agreed and the review is booked.", today).kind == "respond"
    extension = decide("Could we have more time, please? We can answer by Friday 4 December.", today)
    assert (extension.kind, extension.until) == ("request_extension", date(2026, 12, 4))
    assert find_date("an extension until 4th of Jan", today) == date(2027, 1, 4)
    assert find_date("until 2026-12-09", today) == date(2026, 12, 9)
    assert find_date("until 09/12/2026", today) == date(2026, 12, 9)
    assert decide("We need more time.", today).kind == "note"  # no date
    assert decide("more time until Thursday 4 December", today).kind == "note"  # not a Thursday
    assert decide("Thanks, will look into it.", today).kind == "note"
    assert decide("", today).kind == "empty"


def test_the_inbound_record_refuses_update_and_delete(db_url: str) -> None:
    with migrated_engine(db_url) as engine:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO inbound_mail (message_id, received_at, source, outcome) "
                    "VALUES ('<m@x>', CURRENT_TIMESTAMP, 'stdin', 'refused')"
                )
            )
        for sql in ("UPDATE inbound_mail SET outcome = 'respond'", "DELETE FROM inbound_mail"):
            with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                conn.execute(text(sql))
        assert [r.outcome for r in rows(engine).values()] == ["refused"]


# --- through the real worker -------------------------------------------------------------------------------


@dataclass
class Service:
    app: Application
    engine: Engine
    capture: Capture
    settings: Settings
    address: str
    url: str

    def processor(self, source: str = "maildir") -> ReplyProcessor:
        return ReplyProcessor(self.engine, self.app, PEOPLE, self.settings.smtp, source=source)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TEMPORAL_ADDRESS": self.address,
            "ESCALATION_DATABASE_URL": self.url,
            "ESCALATION_SMTP_HOST": "127.0.0.1",
            "ESCALATION_SMTP_PORT": str(self.settings.smtp.port),
            "ESCALATION_DATA_DIR": str(self.settings.data_dir),
        }


@dataclass
class Sent:
    escalation_id: str
    token: str
    message_id: str
    subject: str

    @property
    def reply_to(self) -> str:
        return f"escalations+{self.token}@localhost"


@pytest_asyncio.fixture(loop_scope="session")
async def service(
    dev_server_env: WorkflowEnvironment, tmp_path: Path, smtp_server: tuple[Capture, int]
) -> AsyncIterator[Service]:
    capture, port = smtp_server
    url = f"sqlite:///{tmp_path / 'records.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path, smtp=SmtpSettings(host="127.0.0.1", port=port))
    engine = await asyncio.to_thread(prepare_database, settings)
    queue = f"mail-{uuid.uuid4().hex[:8]}"
    client = dev_server_env.client
    async with build_worker(client, queue, engine=engine, settings=settings):
        app = Application(client=client, people=PEOPLE, audit=AuditLog(engine), task_queue=queue)
        address = client.service_client.config.target_host
        yield Service(app, engine, capture, settings, address, url)
    engine.dispose()


async def until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    give_up = asyncio.get_running_loop().time() + timeout
    while not (found := check()):
        if asyncio.get_running_loop().time() > give_up:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)
    return found


async def raised(svc: Service) -> Sent:
    """Raise a concern on Wigan's IRO track for team A; the stage's mail to its team manager."""
    fields = {
        "track": "iro",
        "child_status": "looked_after",
        "category": "Quality of practice",
        "child_ref": unique_ref(),
        "team": "team-a",
        "summary": "The plan has drifted.",
        "impact_on_child": "Waiting for a placement.",
        "requested_action": "Agree a date.",
        "request_id": str(uuid.uuid4()),
    }
    escalation_id = await svc.app.raise_concern(Caller(person=OFFICER, via="test"), fields)

    def mail() -> Any:
        for d in list(svc.capture.deliveries):
            m = d.message
            if (
                d.rcpt_tos == [MANAGER.email]
                and m["X-Escalation-Id"] == escalation_id
                and m["X-Escalation-Event"] == "sent_to_stage"
            ):
                return m
        return None

    message = await until(mail, f"the stage mail of {escalation_id}")
    token = str(message["Reply-To"]).split("+", 1)[1].split("@", 1)[0]
    return Sent(escalation_id, token, str(message["Message-ID"]), str(message["Subject"]))


def reply(name: str, sent: Sent, **values: str) -> bytes:
    return eml(name, to=sent.reply_to, in_reply_to=sent.message_id, subject=sent.subject, **values)


def expired_token(engine: Engine, sent: Sent) -> Sent:
    """A token issued for the same escalation, stage and person as ``sent``'s, that expired yesterday."""
    token = f"expired{uuid.uuid4().hex[:17]}"
    with Session(engine) as session, session.begin():
        issued = session.scalars(
            select(ReplyToken).where(ReplyToken.token_hash == hash_token(sent.token))
        ).one()
        yesterday = datetime.now(UTC) - timedelta(days=1)
        session.add(
            ReplyToken(
                token_hash=hash_token(token),
                idempotency_key=f"{issued.idempotency_key}-old",
                escalation_id=issued.escalation_id,
                run_id=issued.run_id,
                stage=issued.stage,
                person_id=issued.person_id,
                role=issued.role,
                purpose="reply",
                created_at=yesterday - timedelta(days=60),
                expires_at=yesterday,
            )
        )
    return Sent(sent.escalation_id, token, f"<{uuid.uuid4().hex}@localhost>", sent.subject)


def rows(engine: Engine) -> dict[str, InboundMail]:
    with Session(engine) as session:
        return {r.message_id: r for r in session.scalars(select(InboundMail))}


async def timeline(svc: Service, escalation_id: str, kind: EventKind) -> list[str]:
    reading = await svc.app.read(Caller(person=OFFICER, via="test"), escalation_id)
    return [e.text for e in reading.view.timeline if e.kind == kind]


def confirmations(svc: Service, escalation_id: str) -> list[Any]:
    return [
        d
        for d in svc.capture.deliveries
        if d.message["X-Escalation-Id"] == escalation_id and d.message["Auto-Submitted"] == "auto-replied"
    ]


@pytestmark_async
async def test_replies_through_the_maildir_and_stdin(service: Service, tmp_path: Path) -> None:
    svc = service
    sent = [await raised(svc) for _ in range(9)]
    later = date.today() + timedelta(days=9)
    in_words = f"{later:%A} {later.day} {later:%B}"
    answers = {
        0: ("outlook_desktop", "The placement is agreed and starts on Monday."),
        1: ("outlook_mobile", "Sorry for the delay: the review is booked for next week."),
        2: ("gmail_quoted", "The social worker has been allocated and will visit this week."),
        3: ("gmail_unquoted", "We accept the concern and have asked for a new assessment."),
        4: ("apple_mail", "Action plan attached; the first step is done already."),
        5: ("html_only", "The contact arrangements are restored from Saturday."),
        6: ("outlook_mobile", f"Could we have more time, please? We can answer by {in_words}."),
        7: ("gmail_unquoted", "Thanks, will look into it."),
    }
    messages: list[tuple[str, bytes]] = [
        (f"{i:02d}-{name}", reply(name, sent[i], answer=text)) for i, (name, text) in answers.items()
    ]
    first = messages[0][1]
    forged = Sent(sent[8].escalation_id, "x" * 24, f"<{uuid.uuid4().hex}@localhost>", sent[8].subject)
    messages += [
        ("20-duplicate", first),  # the same message delivered twice
        ("21-second-reply", reply("gmail_quoted", sent[0], answer="One more thing: the date moved.")),
        ("22-out-of-office", reply("out_of_office", sent[8])),
        ("23-bounce", reply("dsn_bounce", sent[8])),
        ("24-forged", reply("outlook_desktop", forged)),
        ("25-wrong-sender", reply("outlook_mobile", sent[8], **{"from": STRANGER})),
        ("26-empty", reply("gmail_quoted", sent[8], answer="")),
        ("27-expired", reply("gmail_quoted", expired_token(svc.engine, sent[8]))),
    ]
    maildir = Maildir(tmp_path / "inbox")
    for name, content in messages:
        maildir.deliver(content, f"{name}.eml")
    assert await maildir.run_once(svc.processor()) == 0
    assert maildir.waiting() == [] and len(list((maildir.root / "cur").iterdir())) == len(messages)

    recorded = rows(svc.engine)
    by_name = {name: recorded.get(parse(content).message_id) for name, content in messages}
    assert len(recorded) == len(messages) - 1  # the duplicate is the same message: one row, acted once
    outcomes = {name: row.outcome for name, row in by_name.items() if row is not None}
    assert outcomes == {
        "00-outlook_desktop": "respond",
        "01-outlook_mobile": "respond",
        "02-gmail_quoted": "respond",
        "03-gmail_unquoted": "respond",
        "04-apple_mail": "respond",
        "05-html_only": "respond",
        "06-outlook_mobile": "request_extension",
        "07-gmail_unquoted": "note",
        "20-duplicate": "respond",
        "21-second-reply": "refused",
        "22-out-of-office": "refused",
        "23-bounce": "refused",
        "24-forged": "refused",
        "25-wrong-sender": "refused",
        "26-empty": "refused",
        "27-expired": "refused",
    }, outcomes
    reasons = {name: row.reason for name, row in by_name.items() if row is not None}
    assert "already been answered" in reasons["21-second-reply"]
    assert "automatic reply" in reasons["22-out-of-office"]
    assert "bounce" in reasons["23-bounce"]
    assert "unknown reply token" in reasons["24-forged"]
    assert STRANGER in reasons["25-wrong-sender"]
    assert "no text of its own" in reasons["26-empty"]
    assert "expired" in reasons["27-expired"]
    told = {name: row.told_sender for name, row in by_name.items() if row is not None}
    for name in ("22-out-of-office", "23-bounce", "24-forged"):
        assert not told[name], name
    for name in (
        "00-outlook_desktop",
        "06-outlook_mobile",
        "07-gmail_unquoted",
        "21-second-reply",
        "26-empty",
    ):
        assert told[name], name
    assert by_name["04-apple_mail"] is not None and by_name["04-apple_mail"].attachments == "action-plan.pdf"
    assert by_name["26-empty"] is not None and by_name["26-empty"].reply_text == ""
    # Every message in the audit log too (the duplicate once), refusals as refused.
    audited = [e for e in svc.app.audit.entries() if e.event == "mail_reply"]
    assert len(audited) == len(recorded)
    assert sum(e.outcome == "refused" for e in audited) == 7
    assert {e.person_id for e in audited if e.escalation_id == sent[0].escalation_id} == {MANAGER.id}
    # Nothing was sent to an address that is not the token's person's.
    assert all(STRANGER not in d.rcpt_tos for d in svc.capture.deliveries)

    # What the escalations say: each answer once, word for word, by the team manager.
    for i in range(6):
        responses = await timeline(svc, sent[i].escalation_id, EventKind.RESPONSE)
        assert [r.replace("Hello,", "").strip() for r in responses] == [answers[i][1]], (i, responses)
    reading = await svc.app.read(Caller(person=OFFICER, via="test"), sent[6].escalation_id)
    assert reading.view.pending_extension is not None and reading.view.pending_extension.until == later
    notes = await timeline(svc, sent[7].escalation_id, EventKind.NOTE)
    assert len(notes) == 1 and "Thanks, will look into it." in notes[0]
    assert await timeline(svc, sent[8].escalation_id, EventKind.RESPONSE) == []
    # The escalation's page shows each reply and what became of it: the answer, then the refused second.
    first_reading = await svc.app.read(Caller(person=OFFICER, via="test"), sent[0].escalation_id)
    assert first_reading.replies is not None
    assert [(r.outcome, r.from_address) for r in first_reading.replies] == [
        ("respond", MANAGER.email),
        ("refused", MANAGER.email),
    ]
    assert first_reading.replies[0].outcome_words == "Recorded as the answer"
    assert "already been answered" in first_reading.replies[1].reason
    assert "One more thing: the date moved." in first_reading.replies[1].reply_text, "nothing is lost"
    forged_reading = await svc.app.read(Caller(person=OFFICER, via="test"), sent[8].escalation_id)
    assert forged_reading.replies is not None
    assert "refused" in {r.outcome for r in forged_reading.replies}
    assert all("unknown reply token" not in r.reason for r in forged_reading.replies), "no forgery shown"
    confirmed = confirmations(svc, sent[0].escalation_id)
    assert [d.rcpt_tos for d in confirmed] == [[MANAGER.email], [MANAGER.email]]  # the answer; the refusal
    assert any("recorded as your answer" in str(d.message["Subject"]) for d in confirmed)

    # Standard input: an answer, the same message again, and a forged token.
    stdin_answer = reply("outlook_desktop", sent[8], answer="The placement panel meets on Thursday.")
    for content, expected in ((stdin_answer, 0), (stdin_answer, 0), (reply("gmail_quoted", forged), 0)):
        done = await asyncio.to_thread(
            subprocess.run,
            [str(ESCALATE), "mail", "ingest", "--stdin"],
            input=content,
            capture_output=True,
            env=svc.env(),
            timeout=120,
        )
        assert done.returncode == expected, done
    after = rows(svc.engine)
    assert after[parse(stdin_answer).message_id].outcome == "respond"
    assert after[parse(stdin_answer).message_id].source == "stdin"
    assert len(after) == len(recorded) + 2
    [answered] = await timeline(svc, sent[8].escalation_id, EventKind.RESPONSE)
    assert answered.replace("Hello,", "").strip() == "The placement panel meets on Thursday."


@pytestmark_async
async def test_stdin_keeps_a_message_for_retry_when_temporal_is_down(service: Service) -> None:
    sent = await raised(service)
    content = reply("gmail_quoted", sent, answer="An answer while the service is down.")
    env = {**service.env(), "TEMPORAL_ADDRESS": f"127.0.0.1:{_closed_port()}"}
    done = await asyncio.to_thread(
        subprocess.run,
        [str(ESCALATE), "mail", "ingest", "--stdin"],
        input=content,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == EX_TEMPFAIL, done
    assert parse(content).message_id not in rows(service.engine)


def _closed_port() -> int:
    return free_port()


class HoldThirdConfirmation:
    """Wraps the SMTP capture's DATA: the third reply confirmation of ``escalations`` is held (the
    ingester waits in the middle of sending it, after acting and before recording) until ``release``, then
    refused with 451, as if the connection had died."""

    def __init__(self, capture: Capture, escalations: set[str]) -> None:
        self.capture, self.escalations = capture, escalations
        self.passed = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self.original = capture.handle_DATA

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        ours = message["X-Escalation-Id"] in self.escalations and message["Auto-Submitted"] == "auto-replied"
        if ours and not self.release.is_set():
            if self.passed == 2:
                self.holding.set()
                await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
                return "451 4.3.0 the connection was lost"
            self.passed += 1
        return await self.original(server, session, envelope)


@pytestmark_async
async def test_an_ingester_killed_mid_batch_processes_every_message_exactly_once(
    service: Service, tmp_path: Path
) -> None:
    svc = service
    sent = [await raised(svc) for _ in range(6)]
    hold = HoldThirdConfirmation(svc.capture, {s.escalation_id for s in sent})
    svc.capture.handle_DATA = hold.handle_DATA  # type: ignore[method-assign]
    maildir = Maildir(tmp_path / "crash-inbox")
    contents = [
        reply("outlook_desktop", s, answer=f"Answer number {i}: the plan is agreed.")
        for i, s in enumerate(sent)
    ]
    for i, content in enumerate(contents):
        maildir.deliver(content, f"{i:02d}.eml")
    ids = [parse(c).message_id for c in contents]

    def count() -> int:
        with Session(svc.engine) as session:
            return session.scalar(select(func.count()).where(InboundMail.message_id.in_(ids))) or 0

    first = subprocess.Popen(
        [str(ESCALATE), "mail", "ingest", "--maildir", str(maildir.root), "--every", "0.2"],
        env=svc.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await until(hold.holding.is_set, "the ingester sending its third confirmation", timeout=120)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
        hold.release.set()
    # Killed mid-batch: two recorded, the third acted on but neither confirmed nor recorded, three waiting.
    assert count() == 2 and len(maildir.waiting()) == 4
    third = await timeline(svc, sent[2].escalation_id, EventKind.RESPONSE)
    assert len(third) == 1
    for _ in range(3):
        done = await asyncio.to_thread(
            subprocess.run,
            [str(ESCALATE), "mail", "ingest", "--maildir", str(maildir.root), "--once"],
            env=svc.env(),
            capture_output=True,
            timeout=180,
        )
        if done.returncode == 0:
            break
    assert done.returncode == 0, done
    assert maildir.waiting() == [] and count() == len(contents)
    recorded = rows(svc.engine)
    assert [recorded[m].outcome for m in ids] == ["respond"] * len(ids), [recorded[m].reason for m in ids]
    for i, s in enumerate(sent):
        responses = await timeline(svc, s.escalation_id, EventKind.RESPONSE)
        assert [r.replace("Hello,", "").strip() for r in responses] == [
            f"Answer number {i}: the plan is agreed."
        ]
        assert len(confirmations(svc, s.escalation_id)) == 1


@contextlib.contextmanager
def imap_server() -> Iterator[int]:
    """pymap, a real IMAP server (in-memory backend), on a free port, with a user ``inbox``."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("pymap")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "dict",
            "--demo-data",
            "--demo-user",
            "inbox",
            "--demo-password",
            IMAP_PASSWORD,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                MailBoxUnencrypted("127.0.0.1", port).login("inbox", IMAP_PASSWORD).logout()
                break
            except OSError:
                if server.poll() is not None:
                    require_or_skip(f"the pymap IMAP server exited with {server.returncode}")
                time.sleep(0.1)
        else:
            require_or_skip("the pymap IMAP server did not accept connections")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


IMAP_PASSWORD = "imap-test-password"


@pytestmark_async
async def test_replies_through_an_imap_mailbox(service: Service) -> None:
    svc = service
    sent = [await raised(svc) for _ in range(2)]
    answer = reply("gmail_quoted", sent[0], answer="The review is brought forward to Monday.")
    later = date.today() + timedelta(days=8)
    extension = reply("apple_mail", sent[1], answer=f"We need an extension until {later:%-d %B}, please.")
    ours = [answer, answer, extension, reply("out_of_office", sent[1]), reply("dsn_bounce", sent[1])]
    with imap_server() as port:
        with MailBoxUnencrypted("127.0.0.1", port).login("inbox", IMAP_PASSWORD) as box:
            for content in ours:
                box.append(content, "INBOX")
            waiting = len(list(box.uids(AND(seen=False))))
        command = [str(ESCALATE), "mail", "ingest", "--imap", f"127.0.0.1:{port}", "--imap-user", "inbox"]
        done = await asyncio.to_thread(
            subprocess.run,
            [*command, "--imap-tls", "none", "--once"],
            env={**svc.env(), "ESCALATION_IMAP_PASSWORD": IMAP_PASSWORD},
            capture_output=True,
            timeout=180,
        )
        assert done.returncode == 0, done
        with MailBoxUnencrypted("127.0.0.1", port).login("inbox", IMAP_PASSWORD) as box:
            assert list(box.uids(AND(seen=False))) == []  # each one read, and kept (flagged seen)
            assert len(list(box.uids(AND(all=True)))) >= waiting
    recorded = rows(svc.engine)
    outcomes = [recorded[parse(c).message_id].outcome for c in ours]
    assert outcomes == ["respond", "respond", "request_extension", "refused", "refused"]
    assert {recorded[parse(c).message_id].source for c in ours} == {"imap"}
    [answered] = await timeline(svc, sent[0].escalation_id, EventKind.RESPONSE)
    assert answered == "The review is brought forward to Monday."
    reading = await svc.app.read(Caller(person=OFFICER, via="test"), sent[1].escalation_id)
    assert reading.view.pending_extension is not None and reading.view.pending_extension.until == later


@pytestmark_async
async def test_a_polling_ingester_shows_it_is_alive_and_stops_cleanly(
    service: Service, tmp_path: Path
) -> None:
    """What compose's health check reads: the file touched after every poll."""
    alive = tmp_path / "mail-ingest.alive"
    maildir = Maildir(tmp_path / "quiet-inbox")  # created empty
    command = [str(ESCALATE), "mail", "ingest", "--maildir", str(maildir.root), "--every", "0.2"]
    poller = subprocess.Popen(
        [*command, "--alive-file", str(alive)],
        env=service.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        await until(alive.exists, "the alive file", timeout=120)
        first = alive.stat().st_mtime_ns
        await until(lambda: alive.stat().st_mtime_ns > first, "the alive file touched again", timeout=120)
    finally:
        poller.send_signal(signal.SIGTERM)
        out, _ = poller.communicate(timeout=60)
    assert poller.returncode == 0, out
