"""End to end on the time-skipping server: a stage timed in working hours (Waltham Forest's risk-of-harm
track), the raising officer's own deadline (Waltham Forest FWi, CP level 1) missed then met, and a required
step (the child told of the alert and of their right to an advocate and to complain) that holds the stage's
resolution until it is recorded. Histories are recorded as ``duties-*`` and replay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.working_days import LONDON, plan_schedule
from schemas.escalation import Accept, Actor, Escalate, EventKind, Flag, RecordStep, Respond, Status, Withdraw
from schemas.protocol import RAISING_OFFICER
from schemas.schedule import ScheduleRequest
from tests.driver import make_raise
from tests.workflow_harness import running, with_unique_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_hours_stage_runs_out_at_the_end_of_its_working_hours(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("waltham-forest", "risk-of-harm"))
    wh = raise_.protocol.working_hours
    async with running(time_skipping_env, raise_, tmp_path, record_as="duties-hours-risk-of-harm") as run:
        first = await run.eventually(lambda v: v.deadline is not None)
        assert first.deadline is not None
        raised_at = first.timeline[0].at
        expected = plan_schedule(
            ScheduleRequest(received_at=raised_at, working_hours=2, day_starts=wh.start, day_ends=wh.end)
        )
        assert first.deadline == expected.due_at
        local = first.deadline.astimezone(LONDON).time()
        assert wh.start < local <= wh.end  # the instant the 2nd working hour ends, never a midnight
        sent = [e for e in first.timeline if e.kind is EventKind.SENT_TO_STAGE][-1]
        assert "(2 working hours)" in sent.text
        await run.skip_past_deadline()
        second = await run.eventually(lambda v: v.stage == "head-of-service" and v.deadline is not None)
        assert second.deadline is not None
        after = plan_schedule(
            ScheduleRequest(received_at=first.deadline, working_hours=4, day_starts=wh.start, day_ends=wh.end)
        )
        assert second.deadline == after.due_at  # counted from the instant the first one ran out
        reminders = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.REMINDER]
        assert reminders and reminders[0].to_roles == ["team_manager"]
        await run.update("withdraw", Withdraw(actor=raise_.officer, reason="The child is safe tonight."))
        assert (await run.result()).status is Status.WITHDRAWN


async def test_the_officers_deadline_is_missed_flagged_told_and_then_met(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("waltham-forest-fwi", "cp"))
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="duties-officer-deadline") as run:
        view = await run.eventually(lambda v: bool(v.duties) and v.duties[0].schedule is not None)
        [duty] = view.duties
        assert (duty.key, duty.kind) == ("template-uploaded", "officer_deadline")
        assert duty.schedule is not None
        await run.skip_to(duty.schedule.due_at + timedelta(seconds=1))
        missed = await run.eventually(lambda v: Flag.OFFICER_DEADLINE_MISSED in v.flags)
        assert missed.duties[0].overdue
        told = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.DUTY_OVERDUE]
        assert len(told) == 1 and told[0].to_roles == [RAISING_OFFICER, "qa_dhos"]
        reminded = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.DUTY_REMINDER]
        assert len(reminded) == 1 and reminded[0].to_roles == [RAISING_OFFICER]
        manager = Actor(id="tm-1", role="team_manager")
        assert "only" in await run.refused("record_step", RecordStep(actor=manager, step="template-uploaded"))
        await run.update(
            "record_step", RecordStep(actor=officer, step="template-uploaded", note="Uploaded onto FWi.")
        )
        done = await run.view()
        assert Flag.OFFICER_DEADLINE_MISSED not in done.flags and done.duties[0].done is not None
        await run.update("withdraw", Withdraw(actor=officer, reason="Resolved at the conference."))
        assert (await run.result()).status is Status.WITHDRAWN
    stored = [e.entry.kind for e in run.records.events(raise_.escalation_id)]
    assert EventKind.DUTY_OVERDUE in stored and EventKind.STEP_RECORDED in stored


async def test_a_required_step_holds_resolution_until_the_child_is_told(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("waltham-forest-fwi", "iro"))
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="duties-required-step") as run:
        await run.update("escalate", Escalate(actor=officer, reason="Informal resolution did not work."))
        view = await run.eventually(lambda v: v.stage == "team-manager" and bool(v.duties))
        assert view.duties[0].key == "child-told"
        set_ = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.DUTY_SET]
        assert set_ and set_[0].to_roles == [RAISING_OFFICER, "social_worker"]
        await run.update("respond", Respond(actor=Actor(id="tm-1", role="team_manager"), answer="Updated."))
        reason = await run.refused("accept", Accept(actor=officer))
        assert "record_step, step child-told" in reason
        assert "missing: child" in await run.refused(
            "record_step", RecordStep(actor=officer, step="child-told", how="in_person")
        )
        worker = Actor(id="sw-1", role="social_worker")
        await run.update(
            "record_step",
            RecordStep(actor=worker, step="child-told", told=["child"], how="in_person", note="At school."),
        )
        result = await run.update("accept", Accept(actor=officer))
        assert result.status is Status.RESOLVED
        await run.result()
    mails = {m.kind: m for m in run.outbox.sent(raise_.escalation_id)}
    assert mails[EventKind.STEP_RECORDED].to_roles == [RAISING_OFFICER]
