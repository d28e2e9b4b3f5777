"""Every seed protocol end to end on the time-skipping test server, with real timers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from protocols import load_protocol
from schemas.escalation import (
    Accept,
    Actor,
    Bypass,
    Close,
    DecideExtension,
    Escalate,
    EventKind,
    Flag,
    RecordConsultation,
    RecordMeeting,
    ReferToCafcass,
    RequestExtension,
    Respond,
    SetTimescale,
    Status,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER
from tests.driver import all_tracks, make_raise, officer_for
from tests.workflow_harness import history_name, running, with_unique_id
from workflows import rules

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRACKS = all_tracks()


def recipient(view_held_by: list[str]) -> Actor:
    return Actor(id="manager-1", role=view_held_by[0])


@pytest.mark.parametrize(("authority", "track"), TRACKS)
async def test_resolved_informally(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, authority: str, track: str
) -> None:
    raise_ = with_unique_id(make_raise(authority, track))
    async with running(
        time_skipping_env, raise_, tmp_path, record_as=history_name("resolved", authority, track)
    ) as run:
        view = await run.view()
        assert view.status is Status.AWAITING_RESPONSE and view.stage_number == 1
        await run.update("respond", Respond(actor=recipient(view.held_by), answer="Plan updated today."))
        result = await run.update("accept", Accept(actor=raise_.officer, note="Thank you."))
        assert result.status is Status.RESOLVED
        outcome = await run.result()
    assert outcome.status is Status.RESOLVED
    events = [e.entry.kind for e in run.records.events(raise_.escalation_id)]
    assert events[0] is EventKind.RAISED and events[-1] is EventKind.RESOLVED
    assert len(events) == outcome.events
    mails = run.outbox.sent(raise_.escalation_id)
    assert [m.kind for m in mails if m.kind is EventKind.SENT_TO_STAGE]
    assert mails[-1].kind is EventKind.RESOLVED


@pytest.mark.parametrize(("authority", "track"), TRACKS)
async def test_no_answer_climbs_to_the_top_on_real_timers(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, authority: str, track: str
) -> None:
    protocol = load_protocol(authority)
    stages = protocol.track(track).stages
    raise_ = with_unique_id(make_raise(authority, track))
    officer = raise_.officer
    async with running(
        time_skipping_env, raise_, tmp_path, record_as=history_name("climb", authority, track)
    ) as run:
        for index, stage in enumerate(stages):
            view = await run.view()
            assert view.stage == stage.key, f"expected {stage.key}, at {view.stage} ({view.status})"
            nxt = stages[index + 1] if index + 1 < len(stages) else None
            if nxt and nxt.entry_gate:
                await run.update(
                    "record_consultation",
                    RecordConsultation(
                        actor=officer,
                        stage=nxt.key,
                        with_role=nxt.entry_gate.with_roles[0],
                        agreed=True,
                        summary="Discussed; go ahead.",
                    ),
                )
            if stage.response_working_days is None:
                await run.update("escalate", Escalate(actor=officer, reason="No plan offered."))
            else:
                await run.skip_past_deadline()
        view = await run.view()
        assert view.status is Status.EXHAUSTED
        # No working day is lost between stages: breached once the formal stages' days reach the limit.
        formal_days = sum(s.response_working_days or 0 for s in stages if s.formal)
        breached = formal_days >= protocol.total_formal_working_days
        assert (Flag.BREACHED in view.flags) == breached
        await run.update("close", Close(actor=officer, reason="No resolution at the top."))
        outcome = await run.result()
    assert outcome.status is Status.CLOSED
    kinds = [e.kind for e in view.timeline]
    assert kinds.count(EventKind.SENT_TO_STAGE) == len(stages)
    assert kinds.count(EventKind.REMINDER) == sum(1 for s in stages if s.response_working_days)
    breach = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.BREACHED]
    assert len(breach) == int(breached) and all(b.to_roles == protocol.breach_notify for b in breach)


async def test_extension_approved_declined_and_past_the_total_limit(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire"))
    formal = next(s for s in raise_.protocol.tracks[0].stages if s.formal)
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="extensions") as run:
        await run.update("escalate", Escalate(actor=officer, reason="Informal route did not work."))
        view = await run.view()
        assert view.stage == formal.key and view.deadline_date is not None
        manager = recipient(view.held_by)
        first_deadline = view.deadline_date
        # Declined: the deadline stands.
        await run.update(
            "request_extension",
            RequestExtension(
                actor=manager, until=first_deadline + timedelta(days=2), reason="Panel Thursday."
            ),
        )
        await run.update(
            "decide_extension", DecideExtension(actor=officer, approve=False, reason="Too long.")
        )
        assert (await run.view()).deadline_date == first_deadline
        # Approved: the deadline moves.
        await run.update(
            "request_extension",
            RequestExtension(actor=manager, until=first_deadline + timedelta(days=1), reason="Panel."),
        )
        await run.update("decide_extension", DecideExtension(actor=officer, approve=True))
        view = await run.view()
        assert view.deadline_date == first_deadline + timedelta(days=1)
        # Past the total limit: refused unless the officer says so explicitly.
        assert view.total_deadline_date is not None
        beyond = view.total_deadline_date + timedelta(days=7)
        await run.update(
            "request_extension", RequestExtension(actor=manager, until=beyond, reason="Court date.")
        )
        before = await run.recorded_changes()
        message = await run.refused("decide_extension", DecideExtension(actor=officer, approve=True))
        assert "exceed_total_limit" in message
        assert await run.recorded_changes() == before  # a refused update writes nothing to history
        await run.update(
            "decide_extension",
            DecideExtension(actor=officer, approve=True, exceed_total_limit=True, reason="Court timetable."),
        )
        view = await run.view()
        assert view.deadline_date == beyond and Flag.BEYOND_TOTAL_LIMIT in view.flags
        await run.update("withdraw", Withdraw(actor=officer, reason="Court will decide."))
        assert (await run.result()).status is Status.WITHDRAWN
    decided = [
        e.entry
        for e in run.records.events(raise_.escalation_id)
        if e.entry.kind is EventKind.EXTENSION_DECIDED
    ]
    assert [d.data["approved"] for d in decided] == [False, True, True]


async def test_bypass_at_start_and_mid_way(time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    protocol = load_protocol("gloucestershire")
    stages = protocol.tracks[0].stages
    officer = officer_for(protocol.tracks[0])
    raise_ = with_unique_id(
        make_raise(
            "gloucestershire",
            start_at_stage=stages[1].key,
            start_bypass=Bypass(actor=officer, to_stage=stages[1].key, reason="Informal route tried before."),
        )
    )
    async with running(time_skipping_env, raise_, tmp_path, record_as="bypass") as run:
        view = await run.view()
        assert view.stage == stages[1].key
        await run.update("bypass", Bypass(actor=officer, to_stage=stages[3].key, reason="Serious risk."))
        view = await run.view()
        assert view.stage == stages[3].key and view.status is Status.AWAITING_RESPONSE
        await run.update("withdraw", Withdraw(actor=officer, reason="Addressed."))
        await run.result()
    kinds = [e.kind for e in view.timeline]
    assert kinds.count(EventKind.BYPASSED) == 2


async def test_cafcass_by_an_iro_accepted_and_by_a_cp_chair_refused(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    protocol = load_protocol("wigan")
    iro_track, cp_track = protocol.track("iro"), protocol.track("cp")
    iro = Actor(id="iro-1", role=iro_track.officer_roles[0])
    chair = Actor(id="chair-1", role=cp_track.officer_roles[0])
    raise_iro = with_unique_id(make_raise("wigan", "iro", officer=iro))
    async with running(time_skipping_env, raise_iro, tmp_path / "iro", record_as="cafcass-iro") as run:
        await run.update(
            "refer_to_cafcass",
            ReferToCafcass(
                actor=iro, reason="Human rights breach.", consulted=list(protocol.cafcass.consult)
            ),
        )
        assert (await run.result()).status is Status.REFERRED_TO_CAFCASS
    raise_cp = with_unique_id(make_raise("wigan", "cp", officer=chair))
    async with running(time_skipping_env, raise_cp, tmp_path / "cp", record_as="cafcass-cp-refused") as run:
        await run.view()
        before = await run.recorded_changes()
        message = await run.refused("refer_to_cafcass", ReferToCafcass(actor=chair, reason="x"))
        assert "may not refer to CAFCASS" in message
        assert await run.recorded_changes() == before
        # The same action as a signal (e-mail) is recorded by Temporal, changes nothing, and says why.
        await run.signal("refer_to_cafcass", ReferToCafcass(actor=chair, reason="x"))
        view = await run.eventually(lambda v: bool(v.refusals))
        assert view.status is Status.AWAITING_RESPONSE
        assert view.refusals and "may not refer to CAFCASS" in view.refusals[-1].reason
        assert not [e for e in view.timeline if e.kind is EventKind.CAFCASS_REFERRAL]
        await run.update("withdraw", Withdraw(actor=chair, reason="Done."))
        await run.result()
    refusals = run.records.refusals("wigan")
    assert len(refusals) == 1 and refusals[0].refusal.action == "refer_to_cafcass"


async def test_consultation_gate_and_meeting_managed_stages(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    protocol = load_protocol("waltham-forest")
    stages = protocol.tracks[0].stages
    gated = [i for i, s in enumerate(stages) if s.entry_gate]
    target = gated[-1] if stages[gated[-1]].meeting else next(i for i in gated if stages[i].meeting)
    start = target - 1
    officer = officer_for(protocol.tracks[0])
    early = [
        RecordConsultation(
            actor=officer, stage=s.key, with_role=s.entry_gate.with_roles[0], summary="Discussed."
        )
        for s in stages[: start + 1]
        if s.entry_gate
    ]
    raise_ = with_unique_id(
        make_raise(
            "waltham-forest",
            start_at_stage=stages[start].key,
            start_bypass=Bypass(actor=officer, to_stage=stages[start].key, reason="Urgent.", emergency=True),
            consultations=early,
        )
    )
    async with running(time_skipping_env, raise_, tmp_path, record_as="gate-and-meeting") as run:
        await run.skip_past_deadline()
        view = await run.view()
        assert view.status is Status.ESCALATION_DUE and view.stage == stages[start].key
        for _ in range(10):  # the next working-day morning, whatever the calendar holds
            await run.skip_to((await run.now()) + timedelta(days=1))
            view = await run.view()
            if any(e.kind is EventKind.ESCALATION_DUE_REMINDER for e in view.timeline):
                break
        else:
            pytest.fail("the officer was not reminded while the escalation was due")
        assert view.status is Status.ESCALATION_DUE
        gate = stages[target].entry_gate
        assert gate is not None
        await run.update(
            "record_consultation",
            RecordConsultation(
                actor=officer, stage=stages[target].key, with_role=gate.with_roles[0], summary="AD QA agreed."
            ),
        )
        view = await run.view()
        assert view.stage == stages[target].key and view.status is Status.AWAITING_RESPONSE
        message = await run.refused("respond", Respond(actor=recipient(view.held_by), answer="x"))
        assert "record the meeting" in message
        today = rules.london_today(await run.now())
        await run.update(
            "record_meeting",
            RecordMeeting(
                actor=officer, held_on=today, attendees=["Corporate Director", "IRO"], outcome="Agreed."
            ),
        )
        await run.update("accept", Accept(actor=officer))
        assert (await run.result()).status is Status.RESOLVED


async def test_shortened_timescale_escalates_sooner(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("waltham-forest"))
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="shortened") as run:
        before = (await run.view()).deadline_date
        await run.update("set_timescale", SetTimescale(actor=officer, working_days=1, reason="Risk of harm."))
        view = await run.view()
        assert view.deadline_date is not None and before is not None and view.deadline_date < before
        await run.skip_past_deadline()
        view = await run.view()
        assert view.stage_number == 2
        await run.update("withdraw", Withdraw(actor=officer, reason="x"))
        await run.result()


async def test_withdrawal_and_refused_signals_change_nothing(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("dudley"))
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="withdrawn") as run:
        view = await run.view()
        before = view.model_dump(exclude={"refusals", "working_days_left", "total_working_days_left"})
        await run.signal("withdraw", Withdraw(actor=recipient(view.held_by), reason="Not mine to withdraw."))
        await run.signal(
            "respond", Respond(actor=Actor(id="x", role="director_of_childrens_services"), answer="x")
        )
        view = await run.eventually(lambda v: len(v.refusals) == 2)
        assert view.model_dump(exclude={"refusals", "working_days_left", "total_working_days_left"}) == before
        assert await run.actions_for(officer) and "withdraw" in await run.actions_for(officer)
        await run.signal("withdraw", Withdraw(actor=officer, reason="Resolved by phone."))
        outcome = await run.result()
    assert outcome.status is Status.WITHDRAWN
    mails = run.outbox.sent(raise_.escalation_id)
    assert mails[-1].kind is EventKind.WITHDRAWN and mails[-1].to_roles
    assert all(m.to_roles != [RAISING_OFFICER] or m.kind is not EventKind.WITHDRAWN for m in mails)
