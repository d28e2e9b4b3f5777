"""The whole concern reaches everyone who is shown it: its summary, its impact on the child, what is asked,
and the child's and parents' views when given at raise, in the mail, `escalate status` (and `--json`),
`history`, the record store's state row and the case notes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.db_records import DbRecordStore
from activities.directory import Person
from activities.mail import Recipient, render
from activities.recording import FileRecordStore, OutboxNotifier
from protocols import load_protocol
from schemas.effects import Notify, Record
from schemas.escalation import Concern, EventKind
from tests.cli_runner import ESCALATE, Cli
from tests.databases import migrated_engine
from tests.driver import Driver, make_raise
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE, _notification, _record_input

FRIDAY = datetime(2026, 3, 6, 10, tzinfo=UTC)
CONCERN = Concern(
    summary="The care plan has not been updated since the review.",
    impact_on_child="Placement stability is at risk for the child.",
    requested_action="Update the care plan and share it with the IRO.",
    child_views="I want to stay with my foster carers.",
    parents_views="We were not told about the review.",
)
PARTS = [
    CONCERN.summary,
    CONCERN.impact_on_child,
    CONCERN.requested_action,
    CONCERN.child_views,
    CONCERN.parents_views,
]


def _driver() -> Driver:
    raise_ = make_raise("gloucestershire", "iro-cp")
    return Driver(raise_.model_copy(update={"concern": CONCERN}), FRIDAY)


def _shows_all(text: str, where: str) -> None:
    for part in PARTS:
        assert part is not None
        assert part in text, f"{where} lacks {part!r}:\n{text}"


def test_every_notice_shows_the_whole_concern_in_text_and_html() -> None:
    driver = _driver()
    driver.run_out_the_clock(timedelta(days=60))
    protocol = load_protocol("gloucestershire")
    notices = [e for e in driver.effects if isinstance(e, Notify)]
    assert {n.kind for n in notices} >= {EventKind.SENT_TO_STAGE, EventKind.ESCALATED}
    for notice in notices:
        n = _notification(driver.state, notice, "")
        person = Person(id="p-1", name="Pat Example", email="p1@example.org")
        mail = render(
            n,
            Recipient(person=person, role=n.to_roles[0], acts_as=n.to_roles[0], position="to"),
            protocol=protocol,
            to_people=[(person, n.to_roles[0])],
            cc_people=[],
            reply_address="escalations+abc@replies.example.org",
        )
        _shows_all(mail.text, f"{notice.kind} text")
        _shows_all(mail.html.replace("&#39;", "'"), f"{notice.kind} html")
        assert "Impact on the child" in mail.text and "What is asked" in mail.text


def test_a_notice_from_an_older_history_shows_the_summary_it_has() -> None:
    driver = _driver()
    notice = next(e for e in driver.effects if isinstance(e, Notify))
    n = _notification(driver.state, notice, "").model_copy(update={"concern": None})
    person = Person(id="p-1", name="Pat Example", email="p1@example.org")
    mail = render(
        n,
        Recipient(person=person, role=n.to_roles[0], acts_as=n.to_roles[0], position="to"),
        protocol=load_protocol("gloucestershire"),
        to_people=[(person, n.to_roles[0])],
        cc_people=[],
        reply_address="escalations+abc@replies.example.org",
    )
    assert CONCERN.summary in mail.text and "Impact on the child" not in mail.text


@contextmanager
def _store(tmp_path: Path) -> Iterator[DbRecordStore]:
    with migrated_engine(f"sqlite:///{tmp_path / 'records.db'}") as engine:
        yield DbRecordStore(engine)


def test_the_record_store_keeps_the_concern_and_the_case_notes_show_it(tmp_path: Path) -> None:
    driver = _driver()
    driver.advance(timedelta(days=10))  # past the informal stage's deadline: escalated to Formal Level 1
    records = [_record_input(driver.state, e, "run-1") for e in driver.effects if isinstance(e, Record)]
    with _store(tmp_path) as store:
        for record in records:
            assert store.append_event(record)
        state = store.state(driver.state.escalation_id)
        notes = store.case_notes()
    assert state is not None
    assert (
        state.concern_summary,
        state.impact_on_child,
        state.requested_action,
        state.child_views,
        state.parents_views,
    ) == tuple(PARTS)
    raised = next(n for n in notes if n.seq == 1)
    _shows_all(raised.body, "the raised case note")
    sent = [n for n in notes if "Sent to" in n.body]
    assert len(sent) >= 2, [n.body for n in notes]
    for note in sent:
        _shows_all(note.body, f"case note {note.seq} ({note.note_type})")


# --- through the command, on a dev server ------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    if not ESCALATE.exists():
        pytest.fail(f"{ESCALATE} is missing: install the project (pip install -e .) so the command exists")
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield Cli(dev_server_env.client.service_client.config.target_host, tmp_path)


@pytest.mark.asyncio(loop_scope="session")
async def test_raise_with_views_then_status_json_and_history_show_the_whole_concern(
    cli: Cli, tmp_path: Path
) -> None:
    child = unique_ref()
    assert CONCERN.child_views and CONCERN.parents_views
    out = await cli.ok(
        "raise",
        "--child-status",  # required where the protocol declares statuses (v2)
        "looked_after",
        "--authority",
        "gloucestershire",
        "--category",
        "4",
        "--child-ref",
        child,
        "--team",
        "team-a",
        "--officer-id",
        "glo-iro-a",
        "--officer-role",
        "iro",
        "--summary",
        CONCERN.summary,
        "--impact",
        CONCERN.impact_on_child,
        "--request",
        CONCERN.requested_action,
        "--child-views",
        CONCERN.child_views,
        "--parents-views",
        CONCERN.parents_views,
    )
    match = re.match(rf"raised (gloucestershire-{child}-\d+):", out)
    assert match, out
    escalation_id = match.group(1)
    cli.env = {"ESCALATE_AS_ID": "glo-iro-a"}  # the officer who raised it reads it
    status = await cli.ok("status", escalation_id)
    _shows_all(status, "escalate status")
    as_json = json.loads(await cli.ok("status", escalation_id, "--json"))
    assert as_json["concern"] == CONCERN.model_dump()
    history = await cli.ok("history", escalation_id)
    _shows_all(history, "escalate history")
    # What the worker was given to record and to send carries the whole concern too.
    records = FileRecordStore(tmp_path).events(escalation_id)
    assert records and all(r.snapshot and r.snapshot.concern == CONCERN for r in records)
    sent = OutboxNotifier(tmp_path).sent(escalation_id)
    assert sent and all(n.concern == CONCERN for n in sent)


async def test_views_on_the_command_line_are_bounded_like_other_text(tmp_path: Path) -> None:
    cli = Cli("127.0.0.1:1", tmp_path)  # refused before anything is sent
    reason = await cli.fails(
        2,
        "raise",
        "--child-status",  # required where the protocol declares statuses (v2)
        "looked_after",
        "--authority",
        "gloucestershire",
        "--category",
        "4",
        "--child-ref",
        "C4F2A9",
        "--officer-id",
        "glo-iro-a",
        "--officer-role",
        "iro",
        "--summary",
        "s",
        "--impact",
        "i",
        "--request",
        "r",
        "--child-views",
        "x" * 20_001,
    )
    assert "--child-views" in reason and "at most 20,000" in reason, reason
