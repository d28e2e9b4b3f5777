"""Protocol language v2 end to end on the time-skipping server, on real timers: seed 003's CP track runs to
its own 23-working-day total; CAFCASS refused for a child on a CP plan; a subsequent low-level CP concern
starts at level 2 by its severity; a CAFCASS referral runs alongside the local process. Histories recorded
as ``v2-*`` (``RECORD_HISTORIES=1``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.working_days import WorkingDayCalendar, london_date
from protocols import load_protocol
from schemas.escalation import Actor, Escalate, EventKind, Flag, ReferToCafcass, Status, Withdraw
from tests.driver import make_raise
from tests.workflow_harness import running, with_unique_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

CPC = Actor(id="officer-1", role="cp_coordinator")
IRO = Actor(id="officer-1", role="iro")


async def test_the_cp_track_runs_to_its_own_23_working_day_total(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    protocol = load_protocol("waltham-forest-fwi")
    calendar = WorkingDayCalendar(protocol.closure_days)
    raise_ = make_raise("waltham-forest-fwi", "cp", officer=CPC).model_copy(
        update={"child_status": "child_protection_plan"}
    )
    async with running(
        time_skipping_env, with_unique_id(raise_), tmp_path, record_as="v2-cp-track-total"
    ) as run:
        await run.update("escalate", Escalate(actor=CPC, reason="Level 1 did not resolve it."))
        await run.update("escalate", Escalate(actor=CPC, reason="Level 2 did not resolve it."))
        view = await run.eventually(lambda v: v.total_deadline_date is not None)
        assert view.stage == "level-3" and view.child_status == "child_protection_plan"
        formal_from = london_date(view.timeline[-1].at)
        assert view.total_deadline_date == calendar.add_working_days(formal_from, 23)
        assert view.total_working_days_left == 23
        for stage in ("level-3", "level-4", "level-5"):
            view = await run.view()
            assert view.stage == stage and Flag.BREACHED not in view.flags
            await run.skip_past_deadline()
        view = await run.eventually(lambda v: v.status is Status.ESCALATION_DUE)  # level 6 is exceptional
        assert Flag.BREACHED not in view.flags, "20 working days passed, but the CP track has 23"
        await run.update(
            "escalate", Escalate(actor=CPC, reason="Exceptional: risk persists.", exceptional=True)
        )
        view = await run.eventually(lambda v: v.stage == "level-6")
        # Level 6 begins when the officer decides the circumstances are exceptional, after level 5's
        # deadline passed, so its 3 working days end on or just after the 23rd.
        assert view.deadline_date is not None and view.total_deadline_date is not None
        assert view.deadline_date >= view.total_deadline_date
        await run.skip_past_deadline()
        view = await run.eventually(lambda v: v.status is Status.EXHAUSTED)
        assert Flag.BREACHED in view.flags
        breached = next(e for e in view.timeline if e.kind is EventKind.BREACHED)
        assert "23-working-day limit" in breached.text
        await run.update("withdraw", Withdraw(actor=CPC, reason="Test over."))


async def test_cafcass_is_refused_for_a_child_on_a_cp_plan(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    protocol = load_protocol("gloucestershire")
    raise_ = make_raise("gloucestershire", officer=IRO).model_copy(
        update={"child_status": "child_protection_plan"}
    )
    async with running(
        time_skipping_env, with_unique_id(raise_), tmp_path, record_as="v2-cafcass-status-refused"
    ) as run:
        message = await run.refused(
            "refer_to_cafcass",
            ReferToCafcass(actor=IRO, reason="Breach.", consulted=list(protocol.cafcass.consult)),
        )
        assert "concerns a child who is Looked after" in message
        assert "refer_to_cafcass" not in await run.actions_for(IRO)
        await run.update("withdraw", Withdraw(actor=IRO, reason="Test over."))
        assert (await run.result()).status is Status.WITHDRAWN


async def test_a_subsequent_low_level_cp_concern_starts_at_level_2(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = make_raise("waltham-forest-fwi", "cp", officer=CPC).model_copy(
        update={"child_status": "child_protection_plan", "severity": "subsequent_low_level"}
    )
    async with running(
        time_skipping_env, with_unique_id(raise_), tmp_path, record_as="v2-entry-point-severity"
    ) as run:
        view = await run.view()
        assert view.stage == "level-2" and view.severity == "subsequent_low_level"
        assert EventKind.BYPASSED not in [e.kind for e in view.timeline]
        assert view.timeline[0].data["entry_point"] == "level-2"
        await run.update("escalate", Escalate(actor=CPC, reason="Still low-level drift."))
        view = await run.eventually(lambda v: v.stage == "level-3" and v.deadline is not None)
        await run.update("withdraw", Withdraw(actor=CPC, reason="Test over."))


async def test_a_cafcass_referral_runs_alongside_the_local_process(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = make_raise("waltham-forest-fwi", "iro", officer=IRO).model_copy(
        update={"child_status": "looked_after"}
    )
    async with running(
        time_skipping_env, with_unique_id(raise_), tmp_path, record_as="v2-cafcass-alongside"
    ) as run:
        result = await run.update(
            "refer_to_cafcass", ReferToCafcass(actor=IRO, reason="Human rights breached.")
        )
        assert result.status is Status.AWAITING_RESPONSE and "alongside" in result.outcome
        view = await run.view()
        assert Flag.CAFCASS_REFERRED in view.flags
        assert "already been referred" in await run.refused(
            "refer_to_cafcass", ReferToCafcass(actor=IRO, reason="x")
        )
        await run.update("escalate", Escalate(actor=IRO, reason="Informal resolution failed."))
        view = await run.eventually(lambda v: v.stage == "team-manager" and v.deadline is not None)
        await run.skip_past_deadline()
        view = await run.eventually(lambda v: v.stage == "head-of-service")
        assert view.status is Status.AWAITING_RESPONSE and Flag.CAFCASS_REFERRED in view.flags
        await run.update("withdraw", Withdraw(actor=IRO, reason="Test over."))
        assert (await run.result()).status is Status.WITHDRAWN
