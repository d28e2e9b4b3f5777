"""Defect 8 end to end on the time-skipping server: a gate on the first stage opened by the consultation given
at raise (and a raise without it refused by the workflow), a stage kept for exceptional circumstances held
for the officer's decision on real timers, and the officer told of what another judge decides. Each run's
history is recorded under its own name (``honoured-*``) and replays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.working_days import london_date
from schemas.escalation import (
    Accept,
    Actor,
    Escalate,
    EventKind,
    Flag,
    RecordConsultation,
    Respond,
    Status,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER
from tests.driver import make_raise
from tests.test_rules_gates import first_stage_gated, judged_by_team_manager
from tests.workflow_harness import running, with_unique_id
from workflows.escalation import REFUSED

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_first_stage_gate_opens_with_the_consultation_given_at_raise(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    today = london_date(await time_skipping_env.get_current_time())
    consultation = RecordConsultation(
        actor=Actor(id="officer-1", role="iro"),
        stage="stage-1",
        with_role="iro_team_manager",
        summary="Discussed with the IRO team manager before raising.",
        held_on=today,
    )
    protocol = first_stage_gated()
    raise_ = with_unique_id(make_raise("wigan", "iro", protocol=protocol, consultations=[consultation]))
    async with running(time_skipping_env, raise_, tmp_path, record_as="honoured-first-stage-gate") as run:
        view = await run.eventually(lambda v: v.deadline_date is not None)
        assert view.status is Status.AWAITING_RESPONSE and view.stage == "stage-1"
        [recorded] = [e for e in view.timeline if e.kind is EventKind.CONSULTATION_RECORDED]
        assert (
            recorded.data["held_on"] == today.isoformat() and recorded.data["with_role"] == "iro_team_manager"
        )
        await run.update("withdraw", Withdraw(actor=raise_.officer, reason="Resolved by discussion."))
        assert (await run.result()).status is Status.WITHDRAWN
    stored = [e.entry.kind for e in run.records.events(raise_.escalation_id)]
    assert EventKind.CONSULTATION_RECORDED in stored

    without = with_unique_id(make_raise("wigan", "iro", protocol=protocol))
    async with running(time_skipping_env, without, tmp_path / "refused") as run:
        with pytest.raises(WorkflowFailureError) as failed:
            await run.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == REFUSED
    assert "needs a recorded consultation with IRO Team Manager" in cause.message


async def test_an_exceptional_stage_waits_for_the_officer_on_real_timers(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("wigan", "iro"))
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="honoured-exceptional-wigan") as run:
        await run.update(
            "record_consultation",
            RecordConsultation(
                actor=officer, stage="stage-2", with_role="iro_team_manager", agreed=True, summary="Agreed."
            ),
        )
        for stage in ("stage-1", "stage-2", "stage-3", "stage-4"):
            view = await run.eventually(lambda v: v.deadline is not None)
            assert view.stage == stage
            await run.skip_past_deadline()
        held = await run.eventually(lambda v: v.status is Status.ESCALATION_DUE)
        assert held.stage == "stage-4" and Flag.EXCEPTIONAL_DECISION_DUE in held.flags
        # It waits, however long: only the officer moves it on.
        await run.skip_to(await run.now() + timedelta(days=30))
        assert (await run.view()).status is Status.ESCALATION_DUE
        told = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.EXCEPTIONAL_DUE]
        assert len(told) == 1 and told[0].to_roles == [RAISING_OFFICER]
        reason = await run.refused("escalate", Escalate(actor=officer, reason="Still nothing."))
        assert "only in exceptional circumstances" in reason
        await run.update(
            "escalate", Escalate(actor=officer, reason="The placement ends on Friday.", exceptional=True)
        )
        view = await run.view()
        assert (view.stage, view.status) == ("stage-5", Status.AWAITING_RESPONSE)
        assert Flag.EXCEPTIONAL_DECISION_DUE not in view.flags
        escalated = [e for e in view.timeline if e.kind is EventKind.ESCALATED][-1]
        assert escalated.data["exceptional"] is True
        await run.update("withdraw", Withdraw(actor=officer, reason="Resolved by the director."))
        assert (await run.result()).status is Status.WITHDRAWN


async def test_the_officer_is_told_what_another_judge_decides(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("wigan", "iro", protocol=judged_by_team_manager()))
    async with running(time_skipping_env, raise_, tmp_path, record_as="honoured-judged-by-another") as run:
        view = await run.view()
        await run.update("respond", Respond(actor=Actor(id="tm-1", role=view.held_by[0]), answer="Updated."))
        judge = Actor(id="iro-tm-1", role="iro_team_manager")
        result = await run.update("accept", Accept(actor=judge, note="The plan meets the concern."))
        assert result.status is Status.RESOLVED
        await run.result()
    mails = {m.kind: m for m in run.outbox.sent(raise_.escalation_id)}
    assert mails[EventKind.RESPONSE].to_roles == ["iro_team_manager"]
    assert RAISING_OFFICER in mails[EventKind.RESPONSE].cc_roles
    assert RAISING_OFFICER in mails[EventKind.RESOLVED].cc_roles
