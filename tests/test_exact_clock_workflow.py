"""The exact clock end to end on the time-skipping server: Gloucestershire's 4 x 5 formal working days end
with the 20-working-day total limit when nobody answers, on real timers (history recorded as
``exact-clock-climb-gloucestershire``), and an escalation recorded before the fix replays as it ran."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.working_days import WorkingDayCalendar, london_date
from protocols import load_protocol
from schemas.escalation import Close, EventKind, Flag, Status
from tests.driver import make_raise
from tests.workflow_harness import running, with_unique_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_unanswered_ladder_ends_with_the_total_limit_on_real_timers(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    protocol = load_protocol("gloucestershire")
    stages = protocol.tracks[0].stages
    calendar = WorkingDayCalendar(protocol.closure_days)
    raise_ = with_unique_id(make_raise("gloucestershire"))
    async with running(
        time_skipping_env, raise_, tmp_path, record_as="exact-clock-climb-gloucestershire"
    ) as run:
        previous_due: date | None = None
        for stage in stages:
            view = await run.view()
            assert view.stage == stage.key and view.status is Status.AWAITING_RESPONSE
            assert view.deadline_date is not None and view.deadline is not None
            assert Flag.BREACHED not in view.flags, f"breached at {stage.key} before its deadline passed"
            if previous_due is not None:  # the stage's first working day is the one after the last deadline
                assert stage.response_working_days is not None
                assert view.deadline_date == calendar.add_working_days(
                    previous_due, stage.response_working_days
                )
            previous_due = view.deadline_date
            last_deadline = view.deadline
            await run.skip_past_deadline()
        view = await run.view()
        assert view.status is Status.EXHAUSTED and Flag.BREACHED in view.flags
        assert view.total_deadline_date == previous_due, "the last formal stage ends with the total limit"
        breached = next(e for e in view.timeline if e.kind is EventKind.BREACHED)
        assert breached.at >= last_deadline
        await run.update("close", Close(actor=raise_.officer, reason="No resolution at the top."))
        assert (await run.result()).status is Status.CLOSED
    raised_on = london_date(view.timeline[0].at)
    formal_from = calendar.add_working_days(raised_on, 5)
    assert view.total_deadline_date == calendar.add_working_days(formal_from, 20)
    assert view.total_deadline_date - raised_on >= timedelta(days=35)  # 25 working days: five weeks or more
