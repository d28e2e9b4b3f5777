"""The protocol's other processes end to end on the time-skipping server, with real timers and the worker's
own activities (file record store and outbox): review decisions deemed agreed by silence, a disagreement in
time opening informal resolution as a linked escalation, and a practice concern climbing to the AD for
Quality Assurance after 15 working days. Histories are recorded (``RECORD_HISTORIES=1``) as
``deemed-agreement-by-silence``, ``deemed-agreement-disagreed`` (with the escalation it opened,
``deemed-agreement-disagreed-resolution``) and ``practice-concern-to-ad``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.recording import FileRecordStore, OutboxNotifier
from protocols import load_protocol
from schemas.escalation import Actor, EscalationView, EventKind, Status
from schemas.process_models import (
    AcceptFeedback,
    DisagreeDecisions,
    GiveFeedback,
    ProcessOutcome,
    ProcessResult,
    ProcessView,
    RaisePracticeConcern,
    SendDecisions,
)
from schemas.protocol import RAISING_OFFICER
from tests.workflow_harness import replay, skip_clock_to, unique_ref
from worker import build_worker
from workflows.deemed_agreement import WORKFLOW_TYPE as DECISIONS
from workflows.practice_concern import WORKFLOW_TYPE as PRACTICE

pytestmark = pytest.mark.asyncio(loop_scope="session")

IRO = Actor(id="dud-iro-a", role="iro")
TM = Actor(id="dud-team-manager-a", role="team_manager")


class Proc:
    """One running process and what its worker recorded and sent."""

    def __init__(self, env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], root: Path) -> None:
        self.env = env
        self.handle = handle
        self.records = FileRecordStore(root)
        self.outbox = OutboxNotifier(root)

    async def eventually(
        self, predicate: Callable[[ProcessView], bool], timeout: float = 20.0
    ) -> ProcessView:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view: ProcessView = await self.handle.query("state", result_type=ProcessView)
            if not view.busy and predicate(view):
                return view
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; last view: {view}")
            await asyncio.sleep(0.05)

    async def update(self, name: str, action: Any) -> ProcessResult:
        result: ProcessResult = await self.handle.execute_update(name, action, result_type=ProcessResult)
        return result

    async def skip_to(self, when: datetime) -> None:
        await skip_clock_to(self.env, when)

    def kinds(self) -> list[EventKind]:
        return [e.entry.kind for e in self.records.events(self.handle.id)]


@asynccontextmanager
async def running(
    env: WorkflowEnvironment, workflow: str, inp: Any, process_id: str, root: Path, record_as: str
) -> AsyncIterator[Proc]:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = build_worker(env.client, queue, records=FileRecordStore(root), notifier=OutboxNotifier(root))
    async with worker:
        handle = await env.client.start_workflow(
            workflow, inp, id=process_id, task_queue=queue, result_type=ProcessOutcome
        )
        try:
            yield Proc(env, handle, root)
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test ended with the process still open")
        history = await handle.fetch_history()
    await replay(history, record_as=record_as)


def decisions(ref: str) -> SendDecisions:
    return SendDecisions(
        process_id=f"dudley-{ref}-decisions-{uuid.uuid4().int % 10**10:010d}",
        protocol=load_protocol("dudley"),
        child_ref=ref,
        team="team-a",
        officer=IRO,
        review_date=date(2000, 1, 3),  # a review held before the test server's clock
        decisions="1. Weekly contact with grandmother. 2. PEP updated within 20 working days.",
    )


async def test_decisions_stand_when_the_team_manager_is_silent_for_five_working_days(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    inp = decisions(unique_ref())
    async with running(
        time_skipping_env, DECISIONS, inp, inp.process_id, tmp_path, "deemed-agreement-by-silence"
    ) as run:
        sent = await run.eventually(lambda v: v.deadline is not None)
        assert sent.status is Status.AWAITING_RESPONSE and sent.held_by == ["team_manager"]
        assert sent.working_days_left == 5
        assert sent.deadline is not None
        await run.skip_to(sent.deadline - timedelta(hours=1))
        before = await run.eventually(lambda v: True)
        assert before.status is Status.AWAITING_RESPONSE, "the decisions stood before the time was up"
        await run.skip_to(sent.deadline + timedelta(seconds=1))
        stood = await run.eventually(lambda v: v.status is not Status.AWAITING_RESPONSE)
        assert (stood.status, stood.outcome) == (Status.RESOLVED, "deemed_agreed")
        outcome = await run.handle.result()
        assert (outcome.status, outcome.outcome) == (Status.RESOLVED, "deemed_agreed")
        assert run.kinds() == [
            EventKind.DECISIONS_SENT,
            EventKind.REMINDER,
            EventKind.DECISIONS_DEEMED_AGREED,
        ]
        recorded = run.records.events(inp.process_id)
        assert recorded[-1].status is Status.RESOLVED and recorded[0].snapshot is not None
        assert recorded[0].snapshot.case_note_type == "IRO review decisions"
        told = [n for n in run.outbox.sent(inp.process_id) if n.kind is EventKind.DECISIONS_DEEMED_AGREED]
        assert len(told) == 1 and told[0].to_roles == [RAISING_OFFICER, "team_manager"]
        assert "Weekly contact with grandmother" in told[0].concern_summary


async def test_a_disagreement_in_time_opens_informal_resolution_as_a_linked_escalation(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    inp = decisions(unique_ref())
    async with running(
        time_skipping_env, DECISIONS, inp, inp.process_id, tmp_path, "deemed-agreement-disagreed"
    ) as run:
        sent = await run.eventually(lambda v: v.deadline is not None)
        assert sent.deadline is not None
        await run.skip_to(sent.deadline - timedelta(days=2))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await run.update("disagree", DisagreeDecisions(actor=IRO, reason="x"))
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.message.startswith("only Team Manager may disagree")
        result = await run.update("disagree", DisagreeDecisions(actor=TM, reason="Contact is not safe yet."))
        assert result.status is Status.CLOSED
        outcome: ProcessOutcome = await run.handle.result()
        assert outcome.outcome == "disagreed" and outcome.linked is not None
        assert outcome.linked in result.outcome
        child = time_skipping_env.client.get_workflow_handle(outcome.linked)
        described = await child.describe()
        assert described.workflow_type == "EscalationWorkflow"
        assert described.status == WorkflowExecutionStatus.RUNNING, "it runs on after the decisions closed"
        assert (
            described.raw_description.workflow_execution_info.parent_execution.workflow_id == inp.process_id
        )
        view = await _settled(child)
        assert view.stage == "informal" and view.status is Status.AWAITING_RESPONSE
        assert view.concern is not None and "Contact is not safe yet." in view.concern.summary
        assert view.timeline[0].actor == IRO and view.category == "Child Looked After Review"
        assert run.kinds()[-1] is EventKind.DECISIONS_DISAGREED
        assert FileRecordStore(tmp_path).events(outcome.linked)[0].entry.kind is EventKind.RAISED
        await child.terminate("test over")
        await replay(await child.fetch_history(), record_as="deemed-agreement-disagreed-resolution")


async def _settled(handle: WorkflowHandle[Any, Any]) -> EscalationView:
    for _ in range(400):
        view: EscalationView = await handle.query("state", result_type=EscalationView)
        if not view.busy and len(view.timeline) >= 2:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError("the escalation never sent its first stage")


async def test_a_practice_concern_climbs_to_the_ad_for_quality_assurance_after_15_working_days(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raiser = Actor(id="wf-team-manager-a", role="team_manager")
    qa = Actor(id="wf-iro-line-manager", role="iro_line_manager")
    ad = Actor(id="wf-ad-quality-assurance", role="ad_quality_assurance")
    inp = RaisePracticeConcern(
        process_id=f"waltham-forest-practice-{uuid.uuid4().int % 10**10:010d}",
        protocol=load_protocol("waltham-forest"),
        raised_by=raiser,
        about=Actor(id="wf-iro-a", role="iro"),
        team="team-a",
        summary="The review was chaired without the parents being invited.",
    )
    async with running(
        time_skipping_env, PRACTICE, inp, inp.process_id, tmp_path, "practice-concern-to-ad"
    ) as run:
        raised = await run.eventually(lambda v: v.deadline is not None)
        assert raised.held_by == ["iro_line_manager"] and raised.working_days_left == 15
        assert raised.deadline is not None
        await run.skip_to(raised.deadline + timedelta(seconds=1))
        climbed = await run.eventually(lambda v: v.stage == "escalated")
        assert climbed.held_by == ["ad_quality_assurance"] and climbed.status is Status.AWAITING_RESPONSE
        assert climbed.stage_name == "Concern about IRO/CP Co-ordinator performance: AD for Quality Assurance"
        assert run.kinds()[-2:] == [EventKind.DEADLINE_PASSED, EventKind.PRACTICE_ESCALATED]
        told = [n for n in run.outbox.sent(inp.process_id) if n.kind is EventKind.PRACTICE_ESCALATED]
        assert told[0].to_roles == ["ad_quality_assurance"] and RAISING_OFFICER in told[0].cc_roles
        with pytest.raises(WorkflowUpdateFailedError):  # the QA manager's time is over
            await run.update("give_feedback", GiveFeedback(actor=qa, feedback="late"))
        with pytest.raises(WorkflowUpdateFailedError):
            await run.update("accept_feedback", AcceptFeedback(actor=raiser))
        await run.update("give_feedback", GiveFeedback(actor=ad, feedback="Chairing guidance reissued."))
        outcome: ProcessOutcome = await run.handle.result()
        assert (outcome.status, outcome.outcome) == (Status.RESOLVED, "concluded")
        assert all(e.entry.data.get("case_note") is False for e in run.records.events(inp.process_id))
