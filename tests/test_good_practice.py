"""Good practice notes (seed 000 sections 3 and 6; seed 001 section 2): what the protocol allows, how a note
is recorded (an ``escalation_events`` row of kind ``good_practice_noted``, its case note, no escalation),
and a note taken end to end through its workflow to a real SMTP server, exactly once."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, func, select
from temporalio.testing import WorkflowEnvironment

from activities.db.record_models import CaseNote, EscalationEvent, EscalationRecord
from activities.db_records import DbRecordStore
from activities.directory import load_directory_file
from activities.mail import SmtpNotifier
from activities.recording import OutboxNotifier
from activities.settings import SmtpSettings
from app.service import Application
from protocols import load_protocol
from schemas.escalation import Actor
from schemas.good_practice import GoodPracticeRequest, GoodPracticeResult
from starter.escalations import DifferentRequest, NotInDirectory
from starter.good_practice import note_id, note_once, prepare_note
from tests.cli_runner import Cli
from tests.databases import DIRECTORIES, migrated_engine
from tests.smtp_server import Capture
from tests.test_web import browser, csrf_of, sign_in, web
from tests.workflow_harness import file_worker, replay
from worker import build_worker
from workflows.escalation import TASK_QUEUE
from workflows.rules import Refused
from workflows.rules import good_practice as rules

__all__ = ["web"]

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOTE = "gloucestershire-good-practice-0000000009"
GLO_IRO = Actor(id="glo-iro-a", role="iro")
GLO_SW = Actor(id="glo-social-worker-a", role="social_worker")
WF_IRO = Actor(id="wf-iro-a", role="iro")
WF_SW = Actor(id="wf-social-worker-a", role="social_worker")


def request(authority: str = "gloucestershire", **changes: object) -> GoodPracticeRequest:
    fields: dict[str, object] = {
        "authority": authority,
        "by": GLO_IRO,
        "about": GLO_SW,
        "team": "team-a",
        "child_ref": "C4F2A9",
        "what": "Direct work with the child made her wishes clear at the review.",
        "impact": "She chose her contact arrangements and they have held.",
    }
    return GoodPracticeRequest.model_validate({**fields, **changes})


# --- the rules (pure) ----------------------------------------------------------------------------------


def test_a_note_about_a_practitioner_goes_to_them_copying_their_team_manager_and_on_the_file() -> None:
    note = rules.note_for(
        load_protocol("gloucestershire"), request(), "gloucestershire-good-practice-0000000001"
    )
    assert (note.cc, note.about_officer, note.case_note_type) == (
        ["team_manager"],
        False,
        "CPC/IRO good practice highlight",
    )
    batch = rules.batch(note, AT, "run-1")
    record, notice = batch.items[0].record, batch.items[1].notify
    assert record is not None and notice is not None
    assert (record.entry.kind.value, record.entry.data["about_role"], record.track) == (
        "good_practice_noted",
        "social_worker",
        "good-practice",
    )
    assert (notice.officer, notice.to_roles, notice.cc_roles) == (
        GLO_SW,
        ["raising_officer"],
        ["team_manager"],
    )
    assert notice.idempotency_key == "gloucestershire-good-practice-0000000001/1"


def test_waltham_forest_copies_line_managers_up_to_the_most_senior_level() -> None:
    note = rules.note_for(
        load_protocol("waltham-forest"), request("waltham-forest", by=WF_IRO, about=WF_SW), NOTE
    )
    assert note.cc[-1] == "strategic_director_people" and "team_manager" in note.cc
    assert note.label == "Good practice highlight"


def test_staff_note_an_officers_good_practice_to_the_officer_and_their_manager_never_on_a_file() -> None:
    note = rules.note_for(
        load_protocol("gloucestershire"), request(by=GLO_SW, about=GLO_IRO, child_ref=None), NOTE
    )
    assert (note.about_officer, note.cc, note.case_note_type) == (
        True,
        ["head_of_independent_reviewing_service"],
        None,
    )
    entry = rules.entry(note, AT)
    assert entry.data["case_note"] is False and entry.data["about_role"] == "iro"


@pytest.mark.parametrize(
    ("authority", "changes", "reason"),
    [
        ("dudley", {}, "has no good practice notes"),
        ("gloucestershire", {"by": Actor(id="glo-team-manager-a", role="team_manager")}, "written by"),
        (
            "gloucestershire",
            {"about": Actor(id="glo-team-manager-a", role="team_manager")},
            "is about one of",
        ),
        ("gloucestershire", {"child_ref": None}, "give the child's case number"),
        ("gloucestershire", {"child_ref": "jayden-smith"}, "never a name"),
        ("gloucestershire", {"category": "Excellent"}, "not one of the protocol's categories"),
        ("gloucestershire", {"by": GLO_IRO, "about": Actor(id="glo-iro-a", role="iro")}, "not your own"),
    ],
)
def test_what_the_protocol_does_not_allow_is_refused_with_its_reason(
    authority: str, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(Refused, match=reason):
        rules.note_for(load_protocol(authority), request(authority, **changes), NOTE)


def test_the_directory_must_know_who_is_noted() -> None:
    directory = load_directory_file(DIRECTORIES / "gloucestershire.yaml")
    with pytest.raises(NotInDirectory, match="--about-id 'glo-nobody'"):
        prepare_note(request(about=Actor(id="glo-nobody", role="social_worker")), "r1", directory)
    assert (
        note_id("gloucestershire", "r1")
        == note_id("gloucestershire", "r1")
        != note_id("gloucestershire", "r2")
    )
    # Without a team, the practitioner's own (their managers are copied): the directory knows it.
    assert prepare_note(request(team=None), "r3", directory).request.team == "team-a"


# --- the record store ------------------------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url, directories=DIRECTORIES) as engine:
        yield engine


def _count(engine: Engine, model: type, **where: object) -> int:
    query = select(func.count()).select_from(model).filter_by(**where)
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def test_a_note_is_an_event_with_its_case_note_and_no_escalation(engine: Engine) -> None:
    store = DbRecordStore(engine)
    protocol = load_protocol("gloucestershire")
    practitioner = rules.note_for(protocol, request(), "gloucestershire-good-practice-0000000001")
    officer = rules.note_for(
        protocol, request(by=GLO_SW, about=GLO_IRO), "gloucestershire-good-practice-0000000002"
    )
    for note in (practitioner, officer):
        record = rules.batch(note, AT, "run-1").items[0].record
        assert record is not None
        assert store.append_event(record)
        assert not store.append_event(record)  # retried: written once
    assert _count(engine, EscalationEvent, kind="good_practice_noted") == 2
    assert _count(engine, EscalationRecord) == 0
    notes = store.case_notes()
    assert [(n.escalation_id, n.note_type, n.child_ref) for n in notes] == [
        ("gloucestershire-good-practice-0000000001", "CPC/IRO good practice highlight", "C4F2A9")
    ]
    body = notes[0].body
    assert body.startswith("CPC/IRO good practice highlight\n")
    assert "Direct work with the child" in body and "She chose her contact arrangements" in body
    assert "glo-social-worker-a (social worker)" in body
    assert _count(engine, CaseNote) == 1


# --- end to end ------------------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_a_note_is_recorded_and_mailed_once_through_its_workflow(
    time_skipping_env: WorkflowEnvironment, engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=port,
        tls="none",
        mail_from="escalations@example.org",
        reply_local="escalations",
        reply_domain="replies.example.org",
    )
    queue = f"test-{uuid.uuid4().hex[:8]}"
    directory = load_directory_file(DIRECTORIES / "gloucestershire.yaml")
    request_id = uuid.uuid4().hex
    note = prepare_note(request(), request_id, directory)
    before = len(capture.deliveries)
    worker = build_worker(
        time_skipping_env.client, queue, records=DbRecordStore(engine), notifier=SmtpNotifier(engine, smtp)
    )
    async with worker:
        first = await note_once(time_skipping_env.client, note, queue)
        result = await first.handle.result()
        again = await note_once(time_skipping_env.client, note, queue)
        with pytest.raises(DifferentRequest, match="other content"):
            other = prepare_note(request(what="Something else entirely."), request_id, directory)
            await note_once(time_skipping_env.client, other, queue)
    await replay(await first.handle.fetch_history(), record_as="good-practice-note")
    assert isinstance(result, GoodPracticeResult) and result.note_id == note.note_id
    assert (first.existing, again.existing) == (False, True)
    mails = capture.deliveries[before:]
    assert sorted(r for d in mails for r in d.rcpt_tos) == sorted(
        [_email(directory, "glo-social-worker-a"), _email(directory, "glo-team-manager-a")]
    )
    message = mails[0].message
    assert "good practice" in str(message["Subject"]).lower() and note.note_id in str(message["Subject"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Good practice of yours noted by the Independent Reviewing Officer.")
    assert "Direct work with the child" in text and "CPC/IRO good practice highlight" in text
    events = DbRecordStore(engine).events(note.note_id)
    assert [(e.kind, e.child_ref, e.data["about_role"]) for e in events] == [
        ("good_practice_noted", "C4F2A9", "social_worker")
    ]


def _email(directory: object, person_id: str) -> str:
    person = directory.person(person_id)  # type: ignore[attr-defined]
    assert person is not None
    return str(person.email)


# --- the command line -------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield Cli(dev_server_env.client.service_client.config.target_host, tmp_path)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_command_notes_good_practice_once_and_says_what_is_wrong(cli: Cli, tmp_path: Path) -> None:
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    note = (
        "good-practice", "note", "--authority", "gloucestershire", "--as-id", "glo-iro-a", "--as-role", "iro",
        "--about-id", "glo-social-worker-a", "--about-role", "social_worker", "--team", "team-a",
        "--child-ref", "C4F2A9", "--what", "Careful life story work.", "--request-id", request_id,
    )  # fmt: skip
    out = await cli.ok(*note)
    assert re.match(
        r"noted gloucestershire-good-practice-\d{10}: sent to glo-social-worker-a, copying team_manager; on "
        r"the child's file as 'CPC/IRO good practice highlight'",
        out,
    ), out
    assert (await cli.ok(*note)).startswith("already noted ")
    sent = OutboxNotifier(tmp_path).sent()
    assert [(n.kind.value, n.to_roles, n.cc_roles) for n in sent if n.escalation_id in out] == [
        ("good_practice_noted", ["raising_officer"], ["team_manager"])
    ]
    officer_note = (
        "good-practice", "note", "--authority", "gloucestershire", "--as-id", "glo-social-worker-a",
        "--as-role", "social_worker", "--about-id", "glo-iro-a", "--about-role", "iro",
        "--what", "Thank you.",
    )  # fmt: skip
    assert "copying head_of_independent_reviewing_service (--request-id" in await cli.ok(*officer_note)
    assert "has no good practice notes" in await cli.fails(
        1, "good-practice", "note", "--authority", "dudley", "--as-id", "dud-iro-a", "--as-role", "iro",
        "--about-id", "dud-social-worker-a", "--about-role", "social_worker", "--what", "x",
    )  # fmt: skip
    assert "--child-ref" in await cli.fails(
        2, *note[:-2], "--child-ref", "no such ref!", "--request-id", "r2"
    )


# --- the web form ------------------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_the_web_form_notes_good_practice_and_says_what_is_wrong(web: Application) -> None:
    async with browser(web) as iro, browser(web) as manager:
        csrf = await sign_in(iro, "gloucestershire/glo-iro-a")
        form = (await iro.get("/good-practice")).text
        assert "Note good practice" in form and "Whose good practice" in form
        assert "(Social Worker)" in form and "How it made a difference to the child and family" in form
        request_id = uuid.uuid4().hex
        typed = {
            "csrf_token": csrf,
            "request_id": request_id,
            "about_id": "glo-social-worker-a",
            "team": "team-a",
            "child_ref": "C4F2A9",
            "what": "Kept <b>every</b> promise to the child.",
        }
        missing = await iro.post("/good-practice", data={**typed, "what": ""})
        assert missing.status_code == 400 and "Enter the good practice" in missing.text
        no_child = await iro.post("/good-practice", data={**typed, "child_ref": ""})
        assert no_child.status_code == 400 and "give the child&#39;s case number" in no_child.text
        assert "Kept &lt;b&gt;every&lt;/b&gt; promise" in no_child.text
        sent = await iro.post("/good-practice", data=typed)
        assert sent.status_code == 303, sent.text[-2000:]
        shown = (await iro.get("/good-practice")).text
        found = re.search(r"recorded as (gloucestershire-good-practice-\d{10}) and sent", shown)
        assert found and "CPC/IRO good practice highlight" in shown
        again = await iro.post("/good-practice", data=typed)  # the same form sent twice: one note
        assert again.status_code == 303
        assert found.group(1) in (await iro.get("/good-practice")).text

        token = (await iro.get("/api/me")).json()["csrf_token"]
        body = {k: v for k, v in typed.items() if k != "csrf_token"} | {"request_id": uuid.uuid4().hex}
        assert (await iro.post("/api/good-practice", json=body)).status_code == 403  # no CSRF token
        bad = await iro.post("/api/good-practice", json={**body, "what": ""}, headers={"X-CSRF-Token": token})
        assert bad.status_code == 422 and "what" in bad.json()["fields"]
        made = await iro.post("/api/good-practice", json=body, headers={"X-CSRF-Token": token})
        assert made.status_code == 201 and made.json()["case_note_type"] == "CPC/IRO good practice highlight"
        assert re.fullmatch(r"gloucestershire-good-practice-\d{10}", made.json()["note_id"])

        await sign_in(manager, "gloucestershire/glo-team-manager-a")
        page = (await manager.get("/good-practice")).text  # staff note an officer's practice (6)
        assert "(Independent Reviewing Officer)" in page and "(Social Worker)" not in page
        thanks = {
            "csrf_token": csrf_of(page),
            "request_id": uuid.uuid4().hex,
            "about_id": "glo-iro-a",
            "what": "A review that the family said was the first they understood.",
        }
        sent = await manager.post("/good-practice", data=thanks)  # no team, no child: never on a file
        assert sent.status_code == 303, sent.text[-2000:]
        shown = (await manager.get("/good-practice")).text
        assert "was recorded as gloucestershire-good-practice-" in shown and "It goes on the" not in shown
    async with browser(web) as elsewhere:
        await sign_in(elsewhere, "dudley/dud-iro-a")
        assert "has no good practice notes that you write" in (await elsewhere.get("/good-practice")).text
