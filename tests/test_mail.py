"""Notifying for real: the directory, the mail templates and ``SmtpNotifier`` against a real SMTP server.

The SMTP server is aiosmtpd on 127.0.0.1 (a free port), capturing each envelope and its parsed message. The
database is migrated with ``activities.db.migrate`` (revisions 0001_records and 0002_mail), on SQLite in
``tmp_path`` and on the session's PostgreSQL server (skipped locally when PostgreSQL is missing).
"""

from __future__ import annotations

import ast
import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import workflows.rules
from activities import mail
from activities.db import migrate
from activities.db.base import Base, make_engine
from activities.db.mail_models import DirectoryPerson, ReplyToken, SentMail
from activities.directory import (
    Directory,
    DirectoryError,
    Person,
    RoleUnfilled,
    directory_files,
    load_directory_file,
    resolve,
    resolve_roles,
    sync_directories,
    sync_directory,
)
from activities.mail import (
    MESSAGE_POLICY,
    TEMPLATES_DIR,
    InvalidNotification,
    ProtocolUnavailable,
    Recipient,
    SmtpNotifier,
    find_reply_token,
    hash_token,
    long_date,
    message_id_for,
    render,
    template_names,
)
from activities.settings import SmtpSettings
from protocols import ProtocolError, available_protocols, load_protocol
from schemas.effects import NotificationInput, Notify
from schemas.escalation import Actor, EventKind, Status, TimelineEntry
from schemas.protocol import RAISING_OFFICER
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import Driver, make_raise
from tests.smtp_server import Capture, start_capture
from tests.temporal_servers import free_port
from workflows.escalation import _notification

MAIL_TABLES = {"directory_people", "directory_assignments", "sent_mail", "reply_tokens"}
LONDON = ZoneInfo("Europe/London")
FRIDAY = datetime(2026, 12, 18, 10, 0, tzinfo=LONDON)
"""Sent Friday 18 December 2026 with 5 working days: due at the end of Tuesday 29 December 2026."""
OFFICER = Actor(id="wig-iro-a", role="iro")


# --- the database ---------------------------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """On SQLite and on PostgreSQL (``db_url``), migrated, with the sample directories."""
    with migrated_engine(db_url, directories=DIRECTORIES) as engine:
        yield engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only, for tests about rendering and the directory file rather than the database."""
    with migrated_engine(f"sqlite:///{tmp_path / 'mail.db'}", directories=DIRECTORIES) as engine:
        yield engine


def notifier(engine: Engine, port: int, **kwargs: Any) -> SmtpNotifier:
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=port,
        tls="none",
        user=kwargs.pop("user", None),
        password=kwargs.pop("password", None),
        mail_from="escalations@wigan.example.org",
        reply_local="escalations",
        reply_domain="replies.example.org",
        reply_token_days=kwargs.pop("reply_token_days", 60),
    )
    return SmtpNotifier(engine, smtp, form_url="https://escalations.example.org/form", **kwargs)


# --- notifications as the workflow builds them ----------------------------------------------------------


def stage_sent(team: str = "team-a", text_extra: str = "") -> NotificationInput:
    """Wigan's first stage, raised on Friday 18 December 2026, as the workflow would notify it."""
    raise_ = make_raise("wigan", "iro", officer=OFFICER, child_ref="C123").model_copy(update={"team": team})
    driver = Driver(raise_, FRIDAY)
    [notice] = driver.notices(EventKind.SENT_TO_STAGE)
    n = _notification(driver.state, notice, "")
    entry = n.entry.model_copy(update={"text": n.entry.text + text_extra})
    # Copy the officer and an authority-wide role in, to see cc resolution (stage 1 has no cc of its own).
    return n.model_copy(update={"entry": entry, "cc_roles": [RAISING_OFFICER, "iro_team_manager"]})


def directory_person(engine: Engine, person_id: str, authority: str = "wigan") -> DirectoryPerson:
    with Session(engine) as session:
        row = session.get(DirectoryPerson, (authority, person_id))
        assert row is not None
        return row


def sent_rows(engine: Engine) -> list[SentMail]:
    with Session(engine) as session:
        return list(session.scalars(select(SentMail).order_by(SentMail.id)))


def token_of(message: EmailMessage) -> tuple[str, str]:
    [(_, reply)] = getaddresses([str(message["Reply-To"])])
    local, _domain = reply.split("@")
    assert local.startswith("escalations+")
    return local, local.removeprefix("escalations+")


# --- who gets it ------------------------------------------------------------------------------------------


def test_a_stage_sent_notification_reaches_the_right_people_for_the_team(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent("team-a")
    assert n.to_roles == ["team_manager"]

    assert notifier(engine, port).send(n) is True

    manager = directory_person(engine, "wig-team-manager-a")
    officer = directory_person(engine, "wig-iro-a")
    iro_manager = directory_person(engine, "wig-iro-team-manager")  # authority-wide
    expected = {manager.email, officer.email, iro_manager.email}
    assert sorted(a for d in capture.deliveries for a in d.rcpt_tos) == sorted(expected)
    assert all(len(d.rcpt_tos) == 1 for d in capture.deliveries), "one envelope recipient per message"
    for d in capture.deliveries:
        assert [a for _, a in getaddresses([str(d.message["To"])])] == [manager.email]
        assert sorted(a for _, a in getaddresses([str(d.message["Cc"])])) == sorted(
            [officer.email, iro_manager.email]
        )
        assert d.mail_from == "escalations@wigan.example.org"

    capture.deliveries.clear()
    assert notifier(engine, port).send(stage_sent("team-b")) is True
    team_b = directory_person(engine, "wig-team-manager-b")
    to_addresses = {a for d in capture.deliveries for _, a in getaddresses([str(d.message["To"])])}
    assert to_addresses == {team_b.email}
    assert team_b.email in {a for d in capture.deliveries for a in d.rcpt_tos}


def test_subject_and_body_state_the_deadline_in_words_and_working_days(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent(text_extra=" <script>alert('x')</script>")
    assert n.deadline_date == date(2026, 12, 29) and n.working_days == 5
    notifier(engine, port).send(n)
    manager = directory_person(engine, "wig-team-manager-a")
    [mine] = [d for d in capture.deliveries if d.rcpt_tos == [manager.email]]
    message = mine.message

    subject = str(message["Subject"])
    assert subject.startswith("[wigan-C123-0001] Stage 1:")
    assert "answer by Tuesday 29 December 2026" in subject
    assert "  " not in subject, f"the subject survives header folding as written: {subject!r}"

    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    html = html_part.get_content()
    assert "Tuesday 29 December 2026" in text and "5 working days" in text
    assert n.concern_summary in text
    assert "How to answer: reply to this e-mail" in text and "https://escalations.example.org/form" in text
    assert "<script>alert('x')</script>" in text, "plain text is not HTML-escaped"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Tuesday 29 December 2026" in html and "5 working days" in html
    assert "C123" in text and "Dear " + manager.name in text


@pytest.mark.parametrize("pad", range(0, 40, 3))
def test_a_long_subject_with_a_dash_arrives_exactly_as_written(pad: int) -> None:
    subject = (
        "x" * pad + "[dudley-SAMPLE04-0001] Informal resolution: concern raised with you — answer by Monday"
    )
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = subject
    assert message_from_bytes(message.as_bytes(), policy=default_policy)["Subject"] == subject


def test_each_recipient_gets_their_own_reply_token_tied_to_escalation_stage_and_person(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent()
    notifier(engine, port).send(n)
    tokens = set()
    with Session(engine) as session:
        for d in capture.deliveries:
            local, token = token_of(d.message)
            assert len(local) < 64
            assert str(d.message["Reply-To"]).endswith("@replies.example.org")
            row = session.scalars(select(ReplyToken).where(ReplyToken.token_hash == hash_token(token))).one()
            person = session.scalars(
                select(DirectoryPerson).where(
                    DirectoryPerson.authority == "wigan", DirectoryPerson.email == d.rcpt_tos[0]
                )
            ).one()
            assert (row.escalation_id, row.stage, row.person_id) == (
                n.escalation_id,
                n.stage,
                person.person_id,
            )
            assert row.purpose == "reply" and row.used_at is None
            assert row.idempotency_key == n.idempotency_key
            expected_role = {"wig-iro-a": "iro", "wig-team-manager-a": "team_manager"}.get(
                person.person_id, "iro_team_manager"
            )
            assert row.role == expected_role, "the role the person acts in when replying"
            assert row.created_at.tzinfo is not None
            assert row.expires_at == row.created_at + timedelta(days=60)
            found = find_reply_token(engine, token)
            assert found is not None
            assert (found.escalation_id, found.stage, found.person_id, found.role) == (
                n.escalation_id,
                n.stage,
                person.person_id,
                expected_role,
            )
            tokens.add(token)
            assert d.message["Message-ID"] == message_id_for(
                n.idempotency_key, person.person_id, "replies.example.org"
            )
    assert len(tokens) == 3


def test_sending_the_same_notification_twice_delivers_once(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent()
    assert notifier(engine, port).send(n) is True
    assert notifier(engine, port).send(n) is False
    assert len(capture.deliveries) == 3
    assert len(sent_rows(engine)) == 3
    assert len({r.message_id for r in sent_rows(engine)}) == 3
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ReplyToken)) == 3


def test_a_send_interrupted_part_way_delivers_only_the_rest_on_retry_and_every_token_sent_works(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent()
    officer = directory_person(engine, "wig-iro-a")
    capture.refuse.add(officer.email)  # the second message (the first cc) is refused for now

    with pytest.raises(Exception, match="451") as failure:
        notifier(engine, port).send(n)
    assert not isinstance(failure.value, InvalidNotification), "a temporary refusal stays retryable"
    assert len(capture.deliveries) == 1

    capture.refuse.clear()
    assert notifier(engine, port).send(n) is True
    assert len(capture.deliveries) == 3
    assert sorted(a for d in capture.deliveries for a in d.rcpt_tos) == sorted(
        {r.address for r in sent_rows(engine)}
    )
    # Only a token's hash is stored, so the retry could not reuse one: every token that went out works.
    for d in capture.deliveries:
        found = find_reply_token(engine, token_of(d.message)[1])
        assert found is not None and found.escalation_id == n.escalation_id
        assert directory_person(engine, found.person_id).email == d.rcpt_tos[0]
    assert notifier(engine, port).send(n) is False
    assert len(capture.deliveries) == 3


def test_a_message_logged_by_a_concurrent_attempt_while_it_was_sent_is_logged_once_and_not_an_error(
    engine: Engine,
) -> None:
    """Another attempt logs a message between this one's check and its log row: the row stays single."""
    n = stage_sent()
    manager = directory_person(engine, "wig-team-manager-a")
    message_id = message_id_for(n.idempotency_key, manager.person_id, "replies.example.org", n.run_id)

    class LoggedMeanwhile(Capture):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            reply = await super().handle_DATA(server, session, envelope)
            if envelope.rcpt_tos == [manager.email]:
                with Session(engine) as db, db.begin():
                    db.add(
                        SentMail(
                            message_id=message_id,
                            idempotency_key=n.idempotency_key,
                            escalation_id=n.escalation_id,
                            run_id=n.run_id,
                            person_id=manager.person_id,
                            address=manager.email,
                            kind=n.kind.value,
                            subject="logged by the other attempt",
                            sent_at=datetime.now(UTC),
                        )
                    )
            return reply

    capture = LoggedMeanwhile()
    controller = start_capture(capture)
    try:
        assert notifier(engine, controller.port).send(n) is True
    finally:
        controller.stop()
    assert len(capture.deliveries) == 3
    rows = sent_rows(engine)
    assert len(rows) == 3 and len({r.message_id for r in rows}) == 3
    assert [r.subject for r in rows if r.message_id == message_id] == ["logged by the other attempt"]


def test_a_message_logged_by_a_concurrent_attempt_before_its_turn_is_not_sent_again(engine: Engine) -> None:
    """Another attempt logs the next message while this one sends the first: this one skips it."""
    n = stage_sent()
    manager, officer = directory_person(engine, "wig-team-manager-a"), directory_person(engine, "wig-iro-a")
    message_id = message_id_for(n.idempotency_key, officer.person_id, "replies.example.org", n.run_id)

    class NextLoggedMeanwhile(Capture):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            reply = await super().handle_DATA(server, session, envelope)
            if envelope.rcpt_tos == [manager.email]:
                with Session(engine) as db, db.begin():
                    db.add(
                        SentMail(
                            message_id=message_id,
                            idempotency_key=n.idempotency_key,
                            escalation_id=n.escalation_id,
                            run_id=n.run_id,
                            person_id=officer.person_id,
                            address=officer.email,
                            kind=n.kind.value,
                            subject="logged by the other attempt",
                            sent_at=datetime.now(UTC),
                        )
                    )
            return reply

    capture = NextLoggedMeanwhile()
    controller = start_capture(capture)
    try:
        assert notifier(engine, controller.port).send(n) is True
    finally:
        controller.stop()
    assert officer.email not in [a for d in capture.deliveries for a in d.rcpt_tos]
    assert len(capture.deliveries) == 2
    rows = sent_rows(engine)
    assert len(rows) == 3 and len({r.message_id for r in rows}) == 3
    assert [r.subject for r in rows if r.message_id == message_id] == ["logged by the other attempt"]


def test_the_raw_reply_token_never_reaches_the_database_and_an_expired_one_is_not_found(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent()
    notifier(engine, port, reply_token_days=2).send(n)
    tokens = [token_of(d.message)[1] for d in capture.deliveries]
    assert len(tokens) == 3
    with engine.connect() as conn:
        stored = [
            repr(tuple(row)) for table in Base.metadata.sorted_tables for row in conn.execute(table.select())
        ]
    assert stored and not [t for t in tokens if any(t in row for row in stored)]
    assert all(any(hash_token(t) in row for row in stored) for t in tokens)

    with Session(engine) as session:
        row = session.scalars(select(ReplyToken).where(ReplyToken.token_hash == hash_token(tokens[0]))).one()
    assert row.expires_at == row.created_at + timedelta(days=2)
    assert find_reply_token(engine, tokens[0], now=row.expires_at - timedelta(seconds=1)) is not None
    assert find_reply_token(engine, tokens[0], now=row.expires_at) is None
    assert find_reply_token(engine, tokens[0], now=row.created_at + timedelta(days=3)) is None
    assert find_reply_token(engine, tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B")) is None
    assert find_reply_token(engine, "") is None


def test_the_reply_token_lifetime_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_REPLY_TOKEN_DAYS", "90")
    assert SmtpSettings().reply_token_days == 90
    monkeypatch.setenv("ESCALATION_REPLY_TOKEN_DAYS", "")
    assert SmtpSettings().reply_token_days == 60, "empty means unset"
    for bad in ("0", "sixty"):
        monkeypatch.setenv("ESCALATION_REPLY_TOKEN_DAYS", bad)
        with pytest.raises(ValueError, match="ESCALATION_REPLY_TOKEN_DAYS"):
            SmtpSettings()


def test_an_escalation_id_used_again_gets_its_own_messages_and_a_retry_sends_nothing_twice(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    """After Temporal's retention an id can name a new escalation: its notices are not the old one's."""
    capture, port = smtp_server
    first = stage_sent().model_copy(update={"run_id": "run-a"})
    second = stage_sent().model_copy(update={"run_id": "run-b"})
    assert first.idempotency_key == second.idempotency_key
    assert notifier(engine, port).send(first) is True
    assert notifier(engine, port).send(second) is True
    assert notifier(engine, port).send(second) is False
    assert notifier(engine, port).send(first) is False
    assert len(capture.deliveries) == 6
    ids = [str(d.message["Message-ID"]) for d in capture.deliveries]
    assert len(set(ids)) == 6
    assert ids[3:] == [
        message_id_for(second.idempotency_key, pid, "replies.example.org", "run-b")
        for pid in (r.person_id for r in sent_rows(engine)[3:])
    ]
    assert sorted((r.run_id, r.person_id) for r in sent_rows(engine)) == sorted(
        (run, r.person_id) for run in ("run-a", "run-b") for r in sent_rows(engine)[:3]
    )
    runs = {find_reply_token(engine, token_of(d.message)[1]).run_id for d in capture.deliveries}  # type: ignore[union-attr]
    assert runs == {"run-a", "run-b"}
    # From a history recorded before run ids were passed: the Message-ID is derived as it always was.
    assert message_id_for("k/1", "p", "d", "") == message_id_for("k/1", "p", "d")
    assert message_id_for("k/1", "p", "d", "run-a") != message_id_for("k/1", "p", "d")


def test_nul_characters_in_a_notice_are_replaced_and_it_is_sent(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent(text_extra=" and\x00more")
    n = n.model_copy(update={"concern_summary": "Summary\x00here"})
    assert notifier(engine, port).send(n) is True
    assert len(capture.deliveries) == 3
    for d in capture.deliveries:
        assert "\x00" not in d.message.as_string()
        assert "and\ufffdmore" in d.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert notifier(engine, port).send(n) is False


def test_a_protocol_that_does_not_load_is_retryable_and_an_overlong_value_is_refused_before_sending(
    sqlite_engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server

    def broken(authority: str) -> Any:
        raise ProtocolError(f"protocols/{authority}.yaml: field 'roles': Field required")

    with pytest.raises(ProtocolUnavailable, match="retried") as unavailable:
        notifier(sqlite_engine, port, protocols=broken).send(stage_sent())
    assert not isinstance(unavailable.value, ValueError), "ValueErrors are reported as non-retryable"

    long_id = stage_sent().model_copy(update={"escalation_id": "wigan-" + "C" * 130})
    with pytest.raises(InvalidNotification, match="escalation_id is 136 characters long"):
        notifier(sqlite_engine, port).send(long_id)
    assert capture.deliveries == []
    assert sent_rows(sqlite_engine) == []
    with Session(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(ReplyToken)) == 0


def test_an_unfilled_role_raises_role_unfilled_naming_role_and_team_and_sends_nothing(
    engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    n = stage_sent().model_copy(update={"team": "team-c"})  # no team-c team manager, none authority-wide
    with pytest.raises(RoleUnfilled) as raised:
        notifier(engine, port).send(n)
    message = str(raised.value)
    for part in ("Team Manager", "'team_manager'", "'team-c'", "'wigan'", "fill it in", "wigan.yaml"):
        assert part in message
    assert raised.value.role == "team_manager" and raised.value.team == "team-c"
    assert capture.deliveries == []
    assert sent_rows(engine) == []


def test_the_officer_resolves_by_person_id_and_an_unknown_officer_is_unfilled(sqlite_engine: Engine) -> None:
    assert (
        resolve(sqlite_engine, "wigan", "team-b", RAISING_OFFICER, officer_id="wig-iro-a").id == "wig-iro-a"
    )
    with pytest.raises(RoleUnfilled, match=r"raising officer.*'nobody'.*'wigan'.*team-b"):
        resolve(sqlite_engine, "wigan", "team-b", RAISING_OFFICER, officer_id="nobody")


def test_a_team_role_falls_back_to_the_authority_wide_holder(sqlite_engine: Engine) -> None:
    assert resolve(sqlite_engine, "wigan", "team-a", "head_of_service").id == "wig-head-of-service"
    assert resolve(sqlite_engine, "wigan", None, "head_of_service").id == "wig-head-of-service"
    assert resolve(sqlite_engine, "wigan", "team-b", "team_manager").id == "wig-team-manager-b"
    with pytest.raises(RoleUnfilled, match=r"Team Manager \('team_manager'\).*authority-wide"):
        resolve(sqlite_engine, "wigan", None, "team_manager")
    # A team's own holder wins over an authority-wide one.
    directory = load_directory_file(DIRECTORIES / "wigan.yaml")
    extra = directory.assignments[0].model_copy(update={"role": "team_manager", "team": None})
    sync_directory(
        sqlite_engine, "wigan", directory.model_copy(update={"assignments": [*directory.assignments, extra]})
    )
    assert resolve(sqlite_engine, "wigan", "team-a", "team_manager").id == "wig-team-manager-a"
    assert resolve(sqlite_engine, "wigan", "team-z", "team_manager").id == extra.person


def test_resolving_every_role_at_once_finds_whom_resolving_each_finds(sqlite_engine: Engine) -> None:
    """``resolve_roles`` (one query per notification) against ``resolve`` role by role, with a team
    holder and an authority-wide one for the same role, unknown teams and roles nobody holds."""
    directory = load_directory_file(DIRECTORIES / "wigan.yaml")
    extra = directory.assignments[0].model_copy(update={"role": "team_manager", "team": None})
    sync_directory(
        sqlite_engine, "wigan", directory.model_copy(update={"assignments": [*directory.assignments, extra]})
    )
    checked = unfilled = 0
    for authority in ("wigan", "gloucestershire", "dudley"):
        protocol = load_protocol(authority)
        roles = [*protocol.roles, RAISING_OFFICER]
        for team in ("team-a", "team-b", "team-z", None):
            for officer_id in (f"{authority[:3]}-iro-a", "wig-iro-a", "nobody"):
                for role in roles:
                    with Session(sqlite_engine) as session:
                        try:
                            expected = resolve(session, authority, team, role, officer_id=officer_id)
                        except RoleUnfilled as exc:
                            with pytest.raises(RoleUnfilled) as raised:
                                resolve_roles(session, authority, team, [role], officer_id=officer_id)
                            assert str(raised.value) == str(exc)
                            unfilled += 1
                            continue
                        found = resolve_roles(session, authority, team, [role], officer_id=officer_id)
                        assert found == {role: expected}
                        checked += 1
                held = [
                    r for r in roles if _holds(sqlite_engine, authority, team, r, officer_id)
                ]  # all at once: the same people as one by one
                with Session(sqlite_engine) as session:
                    together = resolve_roles(session, authority, team, held, officer_id=officer_id)
                    assert together == {
                        r: resolve(session, authority, team, r, officer_id=officer_id) for r in held
                    }
    assert checked > 100 and unfilled > 10
    with Session(sqlite_engine) as session, pytest.raises(RoleUnfilled, match="role first_missing"):
        resolve_roles(session, "wigan", None, ["head_of_service", "first_missing", "second_missing"])


def _holds(engine: Engine, authority: str, team: str | None, role: str, officer_id: str) -> bool:
    try:
        resolve(engine, authority, team, role, officer_id=officer_id)
    except RoleUnfilled:
        return False
    return True


def test_without_tls_no_tls_context_is_made_and_with_tls_one_serves_the_whole_process(
    sqlite_engine: Engine, smtp_server: tuple[Capture, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    monkeypatch.setattr(mail, "_tls", None)
    capture, port = smtp_server
    assert notifier(sqlite_engine, port).send(stage_sent()) is True
    assert len(capture.deliveries) == 3
    assert made == [], "ESCALATION_SMTP_TLS=none makes no TLS context"

    contexts = {id(mail.tls_context()) for _ in range(3)}
    assert len(contexts) == 1 and len(made) == 1, "one context, made once, shared by every connection"
    assert made[0].verify_mode == ssl.CERT_REQUIRED and made[0].check_hostname


def test_smtp_errors_propagate_and_nothing_is_logged(sqlite_engine: Engine) -> None:
    closed_port = free_port()
    with pytest.raises(OSError):
        notifier(sqlite_engine, closed_port).send(stage_sent())
    assert sent_rows(sqlite_engine) == []


def test_an_invalid_address_is_a_non_retryable_invalid_notification(
    sqlite_engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    with Session(sqlite_engine) as session, session.begin():
        row = session.get(DirectoryPerson, ("wigan", "wig-iro-team-manager"))
        assert row is not None
        row.email = "not an address"
    with pytest.raises(InvalidNotification, match="wig-iro-team-manager"):
        notifier(sqlite_engine, port).send(stage_sent())
    assert capture.deliveries == []


def test_a_template_error_is_a_non_retryable_invalid_notification(
    sqlite_engine: Engine, smtp_server: tuple[Capture, int], tmp_path: Path
) -> None:
    capture, port = smtp_server
    broken = tmp_path / "templates"
    broken.mkdir()
    for path in TEMPLATES_DIR.iterdir():
        (broken / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "sent_to_stage.txt.j2").write_text(
        '{% extends "_layout.txt.j2" %}{% block subject %}{{ no_such_variable }}{% endblock %}',
        encoding="utf-8",
    )
    with pytest.raises(InvalidNotification, match="no_such_variable"):
        notifier(sqlite_engine, port, templates=broken).send(stage_sent())
    assert capture.deliveries == []
    assert issubclass(InvalidNotification, ValueError)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_is_used_when_credentials_are_set(sqlite_engine: Engine) -> None:
    seen: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret")

    handler = Capture()
    controller = start_capture(
        handler, authenticator=authenticator, auth_required=True, auth_require_tls=False
    )
    try:
        sent = notifier(sqlite_engine, controller.port, user="mailer", password="s3cret").send(stage_sent())
    finally:
        controller.stop()
    assert sent is True
    assert seen and seen[0] == ("mailer", "s3cret")
    assert len(handler.deliveries) == 3


def test_a_reply_local_part_that_would_reach_64_characters_is_refused(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="under 64"):
        SmtpNotifier(sqlite_engine, SmtpSettings(reply_local="x" * 40))


# --- the directory files --------------------------------------------------------------------------------


def test_every_sample_directory_loads_and_fills_every_protocol_role_for_two_teams(
    sqlite_engine: Engine,
) -> None:
    files = {p.stem for p in directory_files(DIRECTORIES)}
    assert (
        files
        == set(available_protocols())
        >= {
            "gloucestershire",
            "waltham-forest",
            "waltham-forest-fwi",
            "dudley",
            "wigan",
        }
    )
    for authority in sorted(files):
        protocol = load_protocol(authority)
        directory = load_directory_file(DIRECTORIES / f"{authority}.yaml")
        assert all(p.email.endswith("@example.org") for p in directory.people)
        officers = {r for t in protocol.tracks for r in t.officer_roles}
        for team in ("team-a", "team-b"):
            for role in protocol.roles:
                if role in protocol.external_roles:  # held outside the directory, named at raise
                    continue
                person = resolve(sqlite_engine, authority, team, role)
                assert person.email.endswith("@example.org")
            for role in officers:  # each team has its own officers, who resolve as the raising officer
                officer = resolve(sqlite_engine, authority, team, role)
                assert (
                    resolve(sqlite_engine, authority, team, RAISING_OFFICER, officer_id=officer.id) == officer
                )


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


_PEOPLE = """
people:
  - {id: p1, name: Alex Example, email: alex@example.org}
"""


def test_a_directory_file_with_an_unknown_role_is_refused_clearly(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "wigan.yaml", _PEOPLE + "assignments:\n  - {role: team_manger, team: team-a, person: p1}\n"
    )
    with pytest.raises(DirectoryError) as refused:
        load_directory_file(path)
    message = str(refused.value)
    assert message.startswith(str(path))
    assert "unknown role 'team_manger'" in message
    assert "did you mean 'team_manager'?" in message
    assert "use one of its role keys" in message and "team_manager" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _PEOPLE + "assignments:\n  - {role: team_manager, team: team-a, person: p2}\n",
            "person 'p2' is not listed under 'people'",
        ),
        (
            _PEOPLE + "assignments:\n  - {role: raising_officer, team: null, person: p1}\n",
            "'raising_officer' is not assigned",
        ),
        (
            _PEOPLE
            + "assignments:\n  - {role: team_manager, team: team-a, person: p1}\n"
            + "  - {role: team_manager, team: team-a, person: p1}\n",
            "already assigned at assignments[0]",
        ),
        (
            "people:\n  - {id: p1, name: Alex Example, email: alex-at-example.org}\nassignments: []\n",
            "not an e-mail address",
        ),
        (
            "people:\n  - {id: p1, name: Alex Example, email: a@example.org}\n"
            "  - {id: p1, name: Blake Example, email: b@example.org}\n",
            "repeated: p1",
        ),
        (
            _PEOPLE + "assignments:\n  - {role: team_manager, person: p1}\n",
            "assignments.0 (team_manager).team",
        ),
        ("authority: dudley\n" + _PEOPLE, "make them match (authority: wigan)"),
        (_PEOPLE + "staff: []\n", "'staff' is not a directory field"),
        ("people: [\n", "not valid YAML"),
    ],
)
def test_a_bad_directory_file_is_refused_with_the_fix(tmp_path: Path, body: str, expected: str) -> None:
    path = _write(tmp_path, "wigan.yaml", body)
    with pytest.raises(DirectoryError, match=None) as refused:
        load_directory_file(path)
    assert str(path) in str(refused.value)
    assert expected in str(refused.value)


def test_syncing_replaces_an_authoritys_directory_and_leaves_the_others(sqlite_engine: Engine) -> None:
    small = Directory(
        people=[Person(id="p1", name="Alex Example", email="alex@example.org")],
        assignments=[],
    )
    sync_directory(sqlite_engine, "wigan", small)
    with Session(sqlite_engine) as session:
        assert session.scalars(
            select(DirectoryPerson.person_id).where(DirectoryPerson.authority == "wigan")
        ).all() == ["p1"]
        others = session.scalar(select(func.count()).where(DirectoryPerson.authority == "dudley"))
        assert others is not None and others > 0
    with pytest.raises(RoleUnfilled):
        resolve(sqlite_engine, "wigan", "team-a", "team_manager")


# --- templates ------------------------------------------------------------------------------------------

NOTIFIED_KINDS = {
    EventKind.DECISIONS_SENT,
    EventKind.DECISIONS_AGREED,
    EventKind.DECISIONS_DEEMED_AGREED,
    EventKind.DECISIONS_DISAGREED,
    EventKind.PRACTICE_CONCERN_RAISED,
    EventKind.PRACTICE_FEEDBACK,
    EventKind.PRACTICE_ESCALATED,
    EventKind.PRACTICE_RESOLVED,
    EventKind.DUTY_SET,
    EventKind.DUTY_REMINDER,
    EventKind.DUTY_OVERDUE,
    EventKind.STEP_RECORDED,
    EventKind.SENT_TO_STAGE,
    EventKind.TOLD_IN_ADVANCE,
    EventKind.REMINDER,
    EventKind.RESPONSE,
    EventKind.EXTENSION_REQUESTED,
    EventKind.EXTENSION_DECIDED,
    EventKind.TIMESCALE_SET,
    EventKind.ESCALATED,
    EventKind.ESCALATION_DUE,
    EventKind.ESCALATION_DUE_REMINDER,
    EventKind.EXCEPTIONAL_DUE,
    EventKind.BYPASSED,
    EventKind.CAFCASS_REFERRAL,
    EventKind.MEETING_RECORDED,
    EventKind.MONITORING_STARTED,
    EventKind.ACTION_PLAN_DUE,
    EventKind.RESOLVED,
    EventKind.EXHAUSTED,
    EventKind.BREACHED,
    EventKind.WITHDRAWN,
    EventKind.CLOSED,
    EventKind.NOTE,
    EventKind.STALLED,
    EventKind.NOTICES_DELIVERED,
    EventKind.COVERED,
    EventKind.OFFICER_REPLACED,
    EventKind.JUDGE_SATISFIED,
}
"""Every kind the rules notify (``to=`` in ``workflows/rules/``), plus those moved into by ``_move``."""
OWN_TEMPLATES = NOTIFIED_KINDS | {EventKind.RAISED}


def _kinds_notified_in_rules() -> set[EventKind]:
    """``EventKind.X`` literals in calls in ``workflows/rules/`` that pass ``to=``."""
    package = Path(workflows.rules.__file__).parent
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in sorted(package.glob("*.py"))]
    found: set[EventKind] = set()
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call) and any(k.arg == "to" for k in node.keywords):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if (
                    isinstance(arg, ast.Attribute)
                    and isinstance(arg.value, ast.Name)
                    and arg.value.id == "EventKind"
                ):
                    found.add(EventKind[arg.attr])
    return found


def test_every_notified_kind_has_its_own_text_and_html_template() -> None:
    from_rules = _kinds_notified_in_rules()
    assert from_rules, "the scan found no notified kinds: have the rules changed shape?"
    assert from_rules <= NOTIFIED_KINDS, f"new notified kinds need templates: {from_rules - NOTIFIED_KINDS}"
    for kind in OWN_TEMPLATES:
        for name in template_names(kind.value):
            assert (TEMPLATES_DIR / name).is_file(), f"missing template {name}"
    for name in template_names("_generic"):
        assert (TEMPLATES_DIR / name).is_file()


_SAMPLE_DATA: dict[EventKind, dict[str, Any]] = {
    EventKind.SENT_TO_STAGE: {"due_date": "2026-12-29", "working_days": 5},
    EventKind.TIMESCALE_SET: {"due_date": "2026-12-23", "working_days": 3},
    EventKind.RESPONSE: {"action_plan": "Review <b>the plan</b>", "action_plan_due": "2027-01-15"},
    EventKind.EXTENSION_REQUESTED: {"until": "2027-01-08"},
    EventKind.EXTENSION_DECIDED: {"approved": True, "until": "2027-01-08", "beyond_total_limit": False},
    EventKind.ESCALATED: {"from": "stage-1", "to": "stage-2", "emergency": False},
    EventKind.BYPASSED: {"from": "stage-1", "to": "stage-3", "emergency": True},
    EventKind.ESCALATION_DUE: {"target": "stage-2", "gate": "agreement"},
    EventKind.EXCEPTIONAL_DUE: {"target": "stage-5"},
    EventKind.CAFCASS_REFERRAL: {"consulted": ["iro_team_manager", "siu_service_lead"]},
    EventKind.MEETING_RECORDED: {"held_on": "2026-12-21", "attendees": ["deputy_director_csc"]},
    EventKind.MONITORING_STARTED: {"action_plan_due": "2027-01-15"},
}
_CLOSED = {
    EventKind.RESOLVED: Status.RESOLVED,
    EventKind.WITHDRAWN: Status.WITHDRAWN,
    EventKind.CLOSED: Status.CLOSED,
    EventKind.CAFCASS_REFERRAL: Status.REFERRED_TO_CAFCASS,
    EventKind.EXHAUSTED: Status.EXHAUSTED,
    EventKind.MONITORING_STARTED: Status.MONITORING,
}


def sample(kind: EventKind) -> NotificationInput:
    at = datetime(2026, 12, 18, 10, tzinfo=UTC)
    return NotificationInput(
        escalation_id="wigan-C123-0001",
        authority="wigan",
        child_ref="C123",
        team="team-a",
        service_area=None,
        kind=kind,
        entry=TimelineEntry(
            seq=4,
            at=at,
            kind=kind,
            actor=OFFICER,
            stage="stage-2",
            text=f"Sample {kind.value} text with <script>alert(1)</script> & more.",
            data=_SAMPLE_DATA.get(kind, {}),
        ),
        officer=OFFICER,
        to_roles=["service_lead"],
        cc_roles=[RAISING_OFFICER],
        stage="stage-2",
        stage_name="Stage 2 - Locality Service Lead",
        status=_CLOSED.get(kind, Status.AWAITING_RESPONSE),
        deadline=datetime(2026, 12, 29, 23, 59, 59, tzinfo=UTC),
        deadline_date=date(2026, 12, 29),
        working_days=5,
        concern_summary="The care plan has not been updated since the review.",
        idempotency_key="wigan-C123-0001/4",
    )


LEAD = Person(id="wig-service-lead-a", name="Lane Fictional", email="lane.fictional.wig@example.org")
IRO = Person(id="wig-iro-a", name="Alex Example", email="alex.example.wig@example.org")


def _render_all(n: NotificationInput) -> list[tuple[str, str, str]]:
    protocol = load_protocol(n.authority)
    out = []
    for recipient in (
        Recipient(person=LEAD, role="service_lead", acts_as="service_lead", position="to"),
        Recipient(person=IRO, role=RAISING_OFFICER, acts_as="iro", position="cc"),
    ):
        mail = render(
            n,
            recipient,
            protocol=protocol,
            to_people=[(LEAD, "service_lead")],
            cc_people=[(IRO, RAISING_OFFICER)],
            reply_address="escalations+abc@replies.example.org",
        )
        out.append((mail.subject, mail.text, mail.html))
    return out


@pytest.mark.parametrize("kind", sorted(EventKind, key=str))
def test_every_kind_renders_with_sample_input(kind: EventKind) -> None:
    for subject, text, html in _render_all(sample(kind)):
        assert subject.startswith("[wigan-C123-0001] Stage 2:"), subject
        assert "\n" not in subject and "None" not in subject
        if kind is not EventKind.RAISED:  # a raised notice shows the concern, which is the entry's text
            assert "<script>alert(1)</script>" in text
            assert "&lt;script&gt;" in html
        assert "<script>" not in html
        assert "C123" in text and "Dear " in text
        assert "None" not in text, text


def test_subjects_say_what_is_asked_and_by_when() -> None:
    [(to_subject, to_text, _), (cc_subject, _, _)] = _render_all(sample(EventKind.SENT_TO_STAGE))
    assert (
        to_subject
        == "[wigan-C123-0001] Stage 2: concern escalated to you — answer by Tuesday 29 December 2026"
    )
    assert "copy for information" in cc_subject
    assert "Look into the concern and answer it" in to_text
    assert "answer by the end of Tuesday 29 December 2026 (5 working days left)" in to_text
    [(subject, _, _), _] = _render_all(sample(EventKind.EXTENSION_DECIDED))
    assert subject.endswith("more time approved — answer by Friday 8 January 2027")
    [(subject, _, _), _] = _render_all(sample(EventKind.BREACHED))
    assert "20-working-day limit" in subject
    [_, (subject, text, _)] = _render_all(sample(EventKind.EXHAUSTED))
    assert subject.endswith("refer to CAFCASS or close") and "refer to CAFCASS" in text


def test_long_dates_read_in_words() -> None:
    assert long_date(date(2026, 12, 29)) == "Tuesday 29 December 2026"
    assert long_date("2027-01-08") == "Friday 8 January 2027"
    assert long_date(None) == ""


@pytest.mark.parametrize(
    "authority", ["gloucestershire", "waltham-forest", "waltham-forest-fwi", "dudley", "wigan"]
)
def test_every_notice_of_a_full_climb_renders(authority: str) -> None:
    """Real notifications (as the workflow builds them) from a climb to the top, for every protocol."""
    protocol = load_protocol(authority)
    for track in protocol.tracks:
        driver = Driver(make_raise(authority, track.key), FRIDAY)
        driver.run_out_the_clock(timedelta(days=200))
        notices = [e for e in driver.effects if isinstance(e, Notify)]
        assert notices
        for notice in notices:
            n = _notification(driver.state, notice, "")
            people = [
                (Person(id=f"p-{r}", name=f"Person {r}", email=f"{r}@example.org"), r) for r in n.to_roles
            ]
            cc = [(Person(id=f"c-{r}", name=f"Person {r}", email=f"{r}@example.org"), r) for r in n.cc_roles]
            person, role = people[0]
            mail = render(
                n,
                Recipient(person=person, role=role, acts_as=role, position="to"),
                protocol=protocol,
                to_people=people,
                cc_people=cc,
                reply_address="escalations+abc@replies.example.org",
            )
            assert mail.subject.startswith(f"[{n.escalation_id}] ")
            assert "None" not in mail.subject and "None" not in mail.text


# --- the migration --------------------------------------------------------------------------------------


def _tables(engine: Engine) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(engine).get_table_names())


def test_the_mail_migration_is_0002_after_the_records_and_goes_down_and_up(db_url: str) -> None:
    migrate.upgrade(db_url, "0001_records")
    engine = make_engine(db_url)
    try:
        assert not _tables(engine) & MAIL_TABLES
        migrate.upgrade(db_url, "0002_mail")
        assert migrate.current(db_url) == "0002_mail"
        assert _tables(engine) >= MAIL_TABLES
        migrate.downgrade(db_url, "0001_records")
        assert not _tables(engine) & MAIL_TABLES
        migrate.upgrade(db_url)
        assert _tables(engine) >= MAIL_TABLES
    finally:
        engine.dispose()


def test_the_hand_written_mail_migration_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diffs if any(name in repr(d) for name in MAIL_TABLES)]
    assert ours == []


def test_the_models_create_the_same_tables_without_migrations(tmp_path: Path) -> None:
    """``Base.metadata.create_all`` works too (what tests of other modules may use)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        Base.metadata.create_all(engine)
        assert _tables(engine) >= MAIL_TABLES
        sync_directories(engine, DIRECTORIES)
        assert resolve(engine, "dudley", "team-a", "team_manager").email.endswith("@example.org")
    finally:
        engine.dispose()
