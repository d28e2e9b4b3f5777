"""A whole escalation recorded and notified for real: the database record store (SQLite and PostgreSQL),
the directory, case notes and mail to a real SMTP server, with an activity retried mid-way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from activities.db_records import DbRecordStore
from activities.mail import SmtpNotifier
from activities.recording import Delivery
from activities.settings import SmtpSettings
from schemas.effects import NotificationInput
from schemas.escalation import Accept, Actor, EventKind, Respond, Status
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import make_raise
from tests.smtp_server import Capture
from tests.workflow_harness import running, with_unique_id

OFFICER = Actor(id="glo-iro-a", role="iro")
TEAM_MANAGER = Actor(id="glo-team-manager-a", role="team_manager")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """On SQLite and on PostgreSQL (``db_url``), migrated, with the sample directories."""
    with migrated_engine(db_url, directories=DIRECTORIES) as engine:
        yield engine


class FlakyAfterSending(SmtpNotifier):
    """The real notifier, with the connection dropping once right after the mail of ``kind`` went out."""

    def __init__(self, *args: object, kind: EventKind, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.kind = kind
        self.failed = False

    def send_reporting(self, notification: NotificationInput) -> Delivery:
        delivery = super().send_reporting(notification)
        if notification.kind is self.kind and not self.failed:
            self.failed = True
            raise ConnectionError("connection reset after the message was accepted")
        return delivery


@pytest.mark.asyncio(loop_scope="session")
async def test_a_full_escalation_is_recorded_noted_and_mailed_exactly_once(
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    engine: Engine,
    smtp_server: tuple[Capture, int],
) -> None:
    capture, port = smtp_server
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=port,
        tls="none",
        mail_from="escalations@glos.example.org",
        reply_local="escalations",
        reply_domain="replies.example.org",
    )
    records = DbRecordStore(engine)
    notifier = FlakyAfterSending(engine, smtp, kind=EventKind.SENT_TO_STAGE)
    raise_ = with_unique_id(make_raise("gloucestershire", officer=OFFICER)).model_copy(
        update={"team": "team-a"}
    )
    async with running(time_skipping_env, raise_, tmp_path, records=records, notifier=notifier) as run:
        informal = await run.view()
        assert informal.stage == "informal" and informal.deadline_date is not None
        await run.skip_past_deadline()
        formal = await run.view()
        assert formal.stage == "formal-1" and formal.deadline_date is not None
        await run.update("respond", Respond(actor=TEAM_MANAGER, answer="The plan is updated and shared."))
        await run.update("accept", Accept(actor=OFFICER, note="Resolved at formal level 1."))
        outcome = await run.result()
        timeline = (await run.view()).timeline
    assert outcome.status is Status.RESOLVED
    assert notifier.failed  # the retry really happened

    # The event log: every timeline entry exactly once, in order.
    events = records.events(raise_.escalation_id)
    assert [(e.seq, e.kind) for e in events] == [(t.seq, t.kind.value) for t in timeline]

    # The state row, in step with the log.
    state = records.state(raise_.escalation_id)
    assert state is not None
    assert (state.status, state.stage, state.team, state.raised_by_id) == (
        "resolved",
        "formal-1",
        "team-a",
        "glo-iro-a",
    )
    assert state.last_seq == timeline[-1].seq
    concern = raise_.concern
    assert (state.concern_summary, state.impact_on_child, state.requested_action) == (
        concern.summary,
        concern.impact_on_child,
        concern.requested_action,
    )

    # Case notes for the child's record: one per recorded event that belongs there, none for reminders.
    notes = records.case_notes(escalation_id=raise_.escalation_id)
    noted = {n.seq for n in notes}
    reminders = {t.seq for t in timeline if t.kind is EventKind.REMINDER}
    assert reminders and not (reminders & noted)
    types = {n.note_type for n in notes}
    assert {"IRO informal resolution", "IRO concern/escalation form - Formal Level 1"} <= types
    assert len(notes) == len({n.seq for n in notes})

    # Mail: each message delivered once, to the right people, with the deadline in the subject.
    ids = Counter(d.message["Message-ID"] for d in capture.deliveries)
    assert ids and max(ids.values()) == 1
    sent_to_stage = [d for d in capture.deliveries if "answer by" in str(d.message["Subject"])]
    by_rcpt = {tuple(d.rcpt_tos): d.message for d in sent_to_stage}
    informal_mail = by_rcpt[("emery.madeup.glo@example.org",)]
    assert f"{informal.deadline_date:%A %-d %B %Y}" in str(informal_mail["Subject"])
    assert "gale.dummy.glo@example.org" in str(informal_mail["Cc"])
    formal_mail = by_rcpt[("gale.dummy.glo@example.org",)]
    assert f"{formal.deadline_date:%A %-d %B %Y}" in str(formal_mail["Subject"])
    assert raise_.escalation_id in str(formal_mail["Subject"])
    assert str(formal_mail["Cc"])  # the service manager is copied in
    reminders_mailed = [d for d in capture.deliveries if "eminder" in str(d.message["Subject"])]
    assert reminders_mailed
    assert formal.deadline_date - informal.deadline_date >= timedelta(days=1)


@pytest.mark.asyncio(loop_scope="session")
async def test_an_escalation_id_used_again_after_the_first_closed_keeps_both_records(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, engine: Engine
) -> None:
    """Temporal lets a closed escalation's id start a new escalation (and after its retention nothing of
    the first is left there): the record store keeps both, apart, by their run ids."""
    records = DbRecordStore(engine)
    raise_ = with_unique_id(make_raise("gloucestershire", officer=OFFICER)).model_copy(
        update={"team": "team-a"}
    )
    runs = []
    for answer in ("First answer.", "Second answer."):
        async with running(time_skipping_env, raise_, tmp_path / answer[:5], records=records) as run:
            recipient = Actor(id="glo-social-worker-a", role=(await run.view()).held_by[0])
            await run.update("respond", Respond(actor=recipient, answer=answer))
            await run.update("accept", Accept(actor=OFFICER, note="Resolved."))
            outcome = await run.result()
            runs.append(((await run.view()).timeline, run.handle.result_run_id))
        assert outcome.status is Status.RESOLVED
    (first, first_run), (second, second_run) = runs
    assert first_run and second_run and first_run != second_run

    for timeline, run_id in runs:
        events = records.events(raise_.escalation_id, run_id)
        assert [(e.seq, e.kind, e.text) for e in events] == [(t.seq, t.kind.value, t.text) for t in timeline]
        state = records.state(raise_.escalation_id, run_id)
        assert state is not None and (state.status, state.last_seq) == ("resolved", timeline[-1].seq)
        assert records.case_notes(escalation_id=raise_.escalation_id, run_id=run_id)
    assert len(records.events(raise_.escalation_id)) == len(first) + len(second)
    responses = [e.text for e in records.events(raise_.escalation_id) if e.kind == EventKind.RESPONSE.value]
    assert responses == ["First answer.", "Second answer."]
