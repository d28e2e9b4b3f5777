"""The escalation rules, driven in-process: every behaviour of the state machine, in microseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from protocols import available_protocols, load_protocol
from schemas.effects import PlanSchedule
from schemas.escalation import (
    Accept,
    Actor,
    AddNote,
    Bypass,
    Close,
    DecideExtension,
    Escalate,
    EventKind,
    Flag,
    RecordConsultation,
    RecordMeeting,
    RecordViews,
    ReferToCafcass,
    RequestExtension,
    Respond,
    SetTimescale,
    Status,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER
from tests.driver import Driver, all_tracks, make_raise, officer_for
from workflows import rules
from workflows.rules._duties import is_timed

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday 2 March 2026, 10:00 GMT
OFFICER_ID = "officer-1"


def stranger(role: str = "social_worker") -> Actor:
    return Actor(id="someone-else", role=role)


def driver(authority: str, track: str | None = None, **kwargs: object) -> Driver:
    return Driver(make_raise(authority, track, **kwargs), MONDAY)  # type: ignore[arg-type]


# --- starting ---------------------------------------------------------------------------------------


def test_start_sends_to_the_first_stage_with_a_working_day_deadline() -> None:
    d = driver("gloucestershire")
    v = d.view
    assert v.status is Status.AWAITING_RESPONSE
    assert v.stage_number == 1
    assert v.deadline_date == date(2026, 3, 9)  # five working days after Monday 2 March
    assert v.working_days_left == 5
    assert d.kinds() == [EventKind.RAISED, EventKind.SENT_TO_STAGE]
    sent = d.notices(EventKind.SENT_TO_STAGE)[0]
    assert sent.to == load_protocol("gloucestershire").tracks[0].stages[0].to
    assert "Monday 9 March 2026" in d.state.timeline[-1].text


def test_start_refuses_an_officer_role_not_on_the_track() -> None:
    p = load_protocol("wigan")
    with pytest.raises(rules.Refused, match="cannot raise"):
        Driver(make_raise("wigan", "cp", officer=Actor(id="x", role=p.track("iro").officer_roles[0])), MONDAY)


def test_start_refuses_an_unknown_category_and_lists_the_choices() -> None:
    r = make_raise("dudley").model_copy(update={"category": "Nope"})
    with pytest.raises(rules.Refused, match="choose one of"):
        Driver(r, MONDAY)


# --- resolved informally -------------------------------------------------------------------------------


@pytest.mark.parametrize(("authority", "track"), all_tracks())
def test_resolved_at_the_first_stage(authority: str, track: str) -> None:
    d = driver(authority, track)
    d.advance(timedelta(minutes=30))  # within the shortest stage time (2 working hours)
    d.act(Respond(actor=d.recipient(), answer="Done: the plan is updated."))
    assert d.state.status is Status.AWAITING_DECISION
    d.act(Accept(actor=d.state.officer))
    assert d.state.status is Status.RESOLVED
    assert d.kinds()[-1] is EventKind.RESOLVED
    assert rules.next_wakeup(d.state) is None


# --- no answer anywhere: the clock climbs the whole ladder --------------------------------------------


@pytest.mark.parametrize(("authority", "track"), all_tracks())
def test_no_answer_at_any_stage_climbs_to_the_top(authority: str, track: str) -> None:
    p = load_protocol(authority)
    stages = p.track(track).stages
    d = driver(authority, track)
    for index, stage in enumerate(stages):
        assert d.state.stage_index == index
        # Record gates ahead of time, as an officer preparing the next step would.
        if index + 1 < len(stages) and stages[index + 1].entry_gate:
            gate = stages[index + 1].entry_gate
            assert gate is not None
            d.act(
                RecordConsultation(
                    actor=d.state.officer,
                    stage=stages[index + 1].key,
                    with_role=gate.with_roles[0],
                    agreed=True,
                    summary="Discussed; agreed to go ahead.",
                )
            )
        exceptional = index + 1 < len(stages) and stages[index + 1].exceptional
        if not is_timed(stage):
            d.act(Escalate(actor=d.state.officer, reason="No plan was offered.", exceptional=exceptional))
        else:
            d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
        if exceptional and is_timed(stage):
            # A stage kept for exceptional circumstances waits for the officer to say they are.
            assert d.state.status is Status.ESCALATION_DUE and Flag.EXCEPTIONAL_DECISION_DUE in d.state.flags
            d.act(Escalate(actor=d.state.officer, reason="The child is at risk of harm.", exceptional=True))
    assert d.state.status is Status.EXHAUSTED
    assert d.state.stage_index == len(stages) - 1
    assert d.kinds().count(EventKind.SENT_TO_STAGE) == len(stages)
    timed = [s for s in stages if is_timed(s)]
    assert d.kinds().count(EventKind.DEADLINE_PASSED) == len(timed)
    # Every timed stage got a reminder one working day before its deadline.
    assert d.kinds().count(EventKind.REMINDER) == len(timed)
    # Stage after stage without a day lost between them: breached (QA told) exactly when the formal
    # stages' working days reach the total limit (Waltham Forest FWi's IRO ladder takes 18 of its 20).
    formal_days = sum(s.response_working_days or 0 for s in stages if s.formal)
    breached = formal_days >= p.total_formal_working_days
    assert (Flag.BREACHED in d.state.flags) == breached
    if breached:
        breach = d.notices(EventKind.BREACHED)[0]
        assert breach.to == p.breach_notify
    # Exhausted stays open until the officer closes it; the total limit runs on until it passes.
    total = d.state.total_schedule
    assert total is not None
    assert rules.next_wakeup(d.state) == (None if breached else total.due_at)
    d.act(Close(actor=d.state.officer, reason="Escalated to the top; no resolution."))
    assert d.state.status is Status.CLOSED


def test_reminder_falls_on_the_morning_of_the_last_working_day() -> None:
    d = driver("gloucestershire")
    d.advance_to(datetime(2026, 3, 9, 8, 59, tzinfo=UTC))
    assert EventKind.REMINDER not in d.kinds()
    d.advance_to(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    assert d.kinds()[-1] is EventKind.REMINDER
    assert d.notices(EventKind.REMINDER)[0].to == d.state.protocol.tracks[0].stages[0].to
    assert d.view.working_days_left == 1


# --- extensions ---------------------------------------------------------------------------------------


def _at_first_formal_stage(authority: str) -> Driver:
    p = load_protocol(authority)
    first_formal = next(s for s in p.tracks[0].stages if s.formal)
    d = driver(authority)
    if d.state.stage_index != p.tracks[0].stage_index(first_formal.key):
        d.act(Escalate(actor=d.state.officer, reason="Not addressed."))
    assert rules.current_stage(d.state).key == first_formal.key
    return d


def test_extension_approved_moves_the_deadline() -> None:
    d = _at_first_formal_stage("gloucestershire")
    old = d.state.stage_schedule.due_date  # type: ignore[union-attr]
    d.act(RequestExtension(actor=d.recipient(), until=date(2026, 3, 12), reason="Awaiting panel."))
    assert d.view.pending_extension is not None
    assert d.notices(EventKind.EXTENSION_REQUESTED)[0].to == [RAISING_OFFICER]
    d.act(DecideExtension(actor=d.state.officer, approve=True))
    assert old == date(2026, 3, 9)
    assert d.view.deadline_date == date(2026, 3, 12)
    assert d.view.pending_extension is None
    d.advance_to(datetime(2026, 3, 10, 0, 30, tzinfo=UTC))
    assert d.state.stage_index == 1  # the old deadline passed without escalating


def test_extension_declined_keeps_the_deadline_and_needs_a_reason() -> None:
    d = _at_first_formal_stage("gloucestershire")
    d.act(RequestExtension(actor=d.recipient(), until=date(2026, 3, 12), reason="Awaiting panel."))
    with pytest.raises(rules.Refused, match="say why"):
        d.act(DecideExtension(actor=d.state.officer, approve=False))
    d.act(DecideExtension(actor=d.state.officer, approve=False, reason="The child cannot wait."))
    assert d.view.deadline_date == date(2026, 3, 9)
    d.advance_to(datetime(2026, 3, 10, 0, 30, tzinfo=UTC))
    assert d.state.stage_index == 2


def test_extension_past_the_total_limit_needs_the_officer_to_say_so() -> None:
    d = _at_first_formal_stage("gloucestershire")
    total = d.state.total_schedule
    assert total is not None and total.due_date == date(2026, 3, 30)  # 20 working days after 2 March
    d.act(RequestExtension(actor=d.recipient(), until=date(2026, 4, 2), reason="Court date."))
    with pytest.raises(rules.Refused, match="exceed_total_limit"):
        d.act(DecideExtension(actor=d.state.officer, approve=True))
    with pytest.raises(rules.Refused, match="needs a reason"):
        d.act(DecideExtension(actor=d.state.officer, approve=True, exceed_total_limit=True))
    d.act(DecideExtension(actor=d.state.officer, approve=True, exceed_total_limit=True, reason="Court."))
    assert Flag.BEYOND_TOTAL_LIMIT in d.state.flags
    assert d.view.deadline_date == date(2026, 4, 2)
    assert "explicitly allowed" in d.state.timeline[-1].text
    d.advance_to(datetime(2026, 3, 31, 1, 0, tzinfo=UTC))
    assert Flag.BREACHED in d.state.flags
    assert d.state.stage_index == 1


def test_extension_request_rules() -> None:
    d = _at_first_formal_stage("gloucestershire")
    with pytest.raises(rules.Refused, match="only the stage's recipients"):
        d.act(RequestExtension(actor=stranger(), until=date(2026, 3, 12), reason="x"))
    with pytest.raises(rules.Refused, match="after the current deadline"):
        d.act(RequestExtension(actor=d.recipient(), until=date(2026, 3, 6), reason="x"))
    with pytest.raises(rules.Refused, match="in the past"):
        d.act(RequestExtension(actor=d.recipient(), until=date(2026, 2, 27), reason="x"))
    with pytest.raises(rules.Refused, match="no request for more time"):
        d.act(DecideExtension(actor=d.state.officer, approve=True))
    d.act(RequestExtension(actor=d.recipient(), until=date(2026, 3, 12), reason="x"))
    with pytest.raises(rules.Refused, match="only the raising officer"):
        d.act(DecideExtension(actor=d.recipient(), approve=True))
    with pytest.raises(rules.Refused, match="already waiting"):
        d.act(RequestExtension(actor=d.recipient(), until=date(2026, 3, 13), reason="x"))


# --- bypass -------------------------------------------------------------------------------------------


def test_bypass_at_start_begins_at_the_chosen_stage() -> None:
    p = load_protocol("gloucestershire")
    target = p.tracks[0].stages[2]
    d = driver(
        "gloucestershire",
        start_at_stage=target.key,
        start_bypass=Bypass(actor=officer_for(p.tracks[0]), to_stage=target.key, reason="Serious drift."),
    )
    assert d.state.stage_index == 2
    assert d.kinds() == [EventKind.RAISED, EventKind.BYPASSED, EventKind.SENT_TO_STAGE]
    assert d.state.total_schedule is not None  # a formal stage: the 20-day clock runs


def test_bypass_mid_way_needs_a_prior_discussion_except_in_an_emergency() -> None:
    p = load_protocol("waltham-forest")
    stages = p.tracks[0].stages
    d = driver("waltham-forest")
    rule = p.bypass
    assert rule.prior_discussion_with and rule.emergency_exempt
    with pytest.raises(rules.Refused, match="prior discussion"):
        d.act(Bypass(actor=d.state.officer, to_stage=stages[2].key, reason="Drift."))
    # The target stage's own gate still applies: the bypass waits for it, then goes ahead.
    target = 2
    gate = stages[target].entry_gate
    d.act(Bypass(actor=d.state.officer, to_stage=stages[target].key, reason="Drift.", emergency=True))
    if gate:
        assert d.state.status is Status.ESCALATION_DUE and d.state.stage_index == 0
        d.act(
            RecordConsultation(
                actor=d.state.officer, stage=stages[target].key, with_role=gate.with_roles[0], summary="ok"
            )
        )
    assert d.state.stage_index == target
    assert d.state.status is Status.AWAITING_RESPONSE
    assert EventKind.BYPASSED in d.kinds()
    assert Flag.EMERGENCY_BYPASS in d.state.flags


def test_bypass_refuses_an_earlier_stage_and_non_officers() -> None:
    d = _at_first_formal_stage("gloucestershire")
    first = d.state.protocol.tracks[0].stages[0].key
    with pytest.raises(rules.Refused, match="not later"):
        d.act(Bypass(actor=d.state.officer, to_stage=first, reason="x"))
    with pytest.raises(rules.Refused, match="only the raising officer"):
        d.act(Bypass(actor=d.recipient(), to_stage=first, reason="x"))


# --- CAFCASS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("authority", available_protocols())
def test_cafcass_referral_by_an_iro_curtails_the_ladder(authority: str) -> None:
    p = load_protocol(authority)
    track = next(t for t in p.tracks if set(t.officer_roles) & set(p.cafcass.officer_roles))
    officer = Actor(id=OFFICER_ID, role=next(r for r in track.officer_roles if r in p.cafcass.officer_roles))
    d = driver(authority, track.key, officer=officer)
    if p.cafcass.consult:
        with pytest.raises(rules.Refused, match="consult"):
            d.act(ReferToCafcass(actor=officer, reason="Human rights breached."))
    d.act(ReferToCafcass(actor=officer, reason="Human rights breached.", consulted=list(p.cafcass.consult)))
    if p.cafcass.alongside:  # v2: the local process runs on beside the referral (tests/test_v2_rules.py)
        assert d.state.status is Status.AWAITING_RESPONSE and Flag.CAFCASS_REFERRED in d.state.flags
    else:
        assert d.state.status is Status.REFERRED_TO_CAFCASS
    notice = d.notices(EventKind.CAFCASS_REFERRAL)[0]
    if p.cafcass.inform:
        assert notice.to == p.cafcass.inform


@pytest.mark.parametrize("authority", available_protocols())
def test_cafcass_referral_by_a_cp_chair_is_refused(authority: str) -> None:
    p = load_protocol(authority)
    chairs = [(t, r) for t in p.tracks for r in t.officer_roles if r not in p.cafcass.officer_roles]
    assert chairs, f"{authority}: some officer role (a CP chair) must be unable to refer to CAFCASS"
    track, role = chairs[0]
    officer = Actor(id=OFFICER_ID, role=role)
    d = driver(authority, track.key, officer=officer)
    with pytest.raises(rules.Refused, match="may not refer to CAFCASS"):
        d.act(ReferToCafcass(actor=officer, reason="x", consulted=list(p.cafcass.consult)))
    assert "refer_to_cafcass" not in rules.available_actions(d.state, officer)


# --- gates: consultation and agreement ---------------------------------------------------------------


def test_consultation_gated_stage_holds_as_escalation_due_until_recorded() -> None:
    p = load_protocol("waltham-forest")
    stages = p.tracks[0].stages
    gated = next(i for i, s in enumerate(stages) if s.entry_gate and i > 1)
    before = stages[gated - 1]
    gate = stages[gated].entry_gate
    assert gate is not None
    officer = officer_for(p.tracks[0])
    d = driver(
        "waltham-forest",
        start_at_stage=before.key,
        start_bypass=Bypass(actor=officer, to_stage=before.key, reason="Urgent.", emergency=True),
        consultations=[
            RecordConsultation(actor=officer, stage=s.key, with_role=s.entry_gate.with_roles[0], summary="ok")
            for s in stages[: gated - 1]
            if s.entry_gate
        ],
    )
    assert d.state.stage_index == gated - 1
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    assert d.state.status is Status.ESCALATION_DUE
    assert d.state.stage_index == gated - 1
    held = d.notices(EventKind.ESCALATION_DUE)[0]
    assert held.to == [RAISING_OFFICER] and held.cc == gate.with_roles
    # The officer is reminded each working day until it is recorded.
    d.advance(timedelta(days=4))
    assert d.kinds().count(EventKind.ESCALATION_DUE_REMINDER) >= 2
    with pytest.raises(rules.Refused, match="already due"):
        d.act(Escalate(actor=officer, reason="x"))
    d.act(
        RecordConsultation(
            actor=officer, stage=stages[gated].key, with_role=gate.with_roles[0], summary="Agreed next steps."
        )
    )
    assert d.state.stage_index == gated
    assert d.state.status is Status.AWAITING_RESPONSE
    assert d.kinds()[-1] is EventKind.SENT_TO_STAGE


def test_agreement_gate_refused_keeps_the_concern_where_it_is() -> None:
    p = load_protocol("wigan")
    stages = p.tracks[0].stages
    gate = stages[1].entry_gate
    assert gate is not None and gate.kind.value == "agreement"
    d = driver("wigan")
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    assert d.state.status is Status.ESCALATION_DUE
    manager = Actor(id="irotm-1", role=gate.with_roles[0])
    with pytest.raises(rules.Refused, match="say whether"):
        d.act(
            RecordConsultation(actor=manager, stage=stages[1].key, with_role=gate.with_roles[0], summary="x")
        )
    d.act(
        RecordConsultation(
            actor=manager, stage=stages[1].key, with_role=gate.with_roles[0], agreed=False, summary="Not yet."
        )
    )
    assert d.state.status is Status.AWAITING_DECISION
    assert d.state.stage_index == 0
    d.act(Escalate(actor=d.state.officer, reason="Still no plan."))
    assert d.state.status is Status.ESCALATION_DUE
    d.act(
        RecordConsultation(
            actor=manager, stage=stages[1].key, with_role=gate.with_roles[0], agreed=True, summary="Agreed."
        )
    )
    assert d.state.stage_index == 1


# --- meeting-managed stage ----------------------------------------------------------------------------


def test_meeting_managed_stage_is_answered_by_recording_the_meeting() -> None:
    p = load_protocol("waltham-forest")
    stages = p.tracks[0].stages
    meeting = next(i for i, s in enumerate(stages) if s.meeting)
    officer = officer_for(p.tracks[0])
    d = driver(
        "waltham-forest",
        start_at_stage=stages[meeting].key,
        start_bypass=Bypass(actor=officer, to_stage=stages[meeting].key, reason="Urgent.", emergency=True),
        consultations=[
            RecordConsultation(actor=officer, stage=s.key, with_role=s.entry_gate.with_roles[0], summary="ok")
            for s in stages
            if s.entry_gate
        ],
    )
    assert "meeting" in d.state.timeline[-1].text
    with pytest.raises(rules.Refused, match="record the meeting"):
        d.act(Respond(actor=d.recipient(), answer="We will sort it."))
    with pytest.raises(rules.Refused, match="in the future"):
        d.act(RecordMeeting(actor=officer, held_on=date(2026, 3, 4), attendees=["a"], outcome="x"))
    d.advance(timedelta(days=2))
    d.act(
        RecordMeeting(
            actor=officer, held_on=date(2026, 3, 4), attendees=["AD", "IRO"], outcome="Plan agreed."
        )
    )
    assert d.state.status is Status.AWAITING_DECISION
    d.act(Accept(actor=officer, action_plan="Move placement", action_plan_due=date(2026, 3, 20)))
    assert d.state.status is Status.MONITORING


# --- timescales ---------------------------------------------------------------------------------------


def test_officer_shortens_a_stage() -> None:
    d = _at_first_formal_stage("waltham-forest")
    d.act(SetTimescale(actor=d.state.officer, working_days=2, reason="Risk of harm."))
    assert d.view.deadline_date == date(2026, 3, 4)
    assert d.kinds()[-1] is EventKind.TIMESCALE_SET
    assert "Wednesday 4 March 2026" in d.state.timeline[-1].text


def test_longer_timescale_refused_at_a_formal_stage_and_allowed_where_agreed_informally() -> None:
    d = _at_first_formal_stage("gloucestershire")
    with pytest.raises(rules.Refused, match="longer than the protocol"):
        d.act(SetTimescale(actor=d.state.officer, working_days=8, reason="x"))
    g = driver("gloucestershire")
    assert not rules.current_stage(g.state).formal
    g.act(SetTimescale(actor=g.state.officer, until=date(2026, 3, 20), reason="Agreed with the team."))
    assert g.view.deadline_date == date(2026, 3, 20)


def test_set_timescale_needs_exactly_one_measure() -> None:
    d = driver("gloucestershire")
    with pytest.raises(rules.Refused, match="either working_days or until"):
        d.act(SetTimescale(actor=d.state.officer, reason="x"))


# --- monitoring an action plan --------------------------------------------------------------------------


def test_action_plan_is_monitored_until_its_date_then_confirmed() -> None:
    d = _at_first_formal_stage("dudley")
    d.act(
        Respond(
            actor=d.recipient(),
            answer="Agreed.",
            action_plan="Visit weekly",
            action_plan_due=date(2026, 3, 16),
        )
    )
    d.act(Accept(actor=d.state.officer))
    assert d.state.status is Status.MONITORING
    d.advance_to(datetime(2026, 3, 17, 0, 0, 1, tzinfo=UTC))
    assert Flag.ACTION_PLAN_DUE in d.state.flags
    assert d.notices(EventKind.ACTION_PLAN_DUE)[0].to == [RAISING_OFFICER]
    d.advance(timedelta(days=60))
    assert Flag.BREACHED not in d.state.flags  # an agreed plan stops the 20-day clock
    d.act(Accept(actor=d.state.officer, note="Visits happening."))
    assert d.state.status is Status.RESOLVED


def test_action_plan_not_done_can_be_escalated() -> None:
    d = _at_first_formal_stage("dudley")
    d.act(Accept(actor=d.state.officer, action_plan="Update plan", action_plan_due=date(2026, 3, 6)))
    d.act(Escalate(actor=d.state.officer, reason="Plan not done."))
    assert d.state.status is Status.AWAITING_RESPONSE
    assert d.kinds()[-2] is EventKind.ESCALATED


# --- who may do what ------------------------------------------------------------------------------------


def test_only_the_stage_recipient_may_respond() -> None:
    d = driver("gloucestershire")
    with pytest.raises(rules.Refused, match="only the stage's recipients"):
        d.act(Respond(actor=Actor(id="hos", role="head_of_service"), answer="x"))


def test_service_area_routes_the_stage_to_the_sen_team_manager() -> None:
    p = load_protocol("waltham-forest")
    stage = p.track("iro").stages[1]
    to, _ = stage.addressees("send_ehcp")
    assert to != stage.to
    d = driver("waltham-forest", "iro")
    d.act(Escalate(actor=d.state.officer, reason="x"))
    d2 = driver("waltham-forest", "iro", service_area="send_ehcp")
    d2.act(Escalate(actor=d2.state.officer, reason="x"))
    assert d2.view.held_by == to
    with pytest.raises(rules.Refused, match="only the stage's recipients"):
        d2.act(Respond(actor=Actor(id="tm", role=stage.to[0]), answer="x"))
    d2.act(Respond(actor=Actor(id="sen-tm", role=to[0]), answer="EHCP updated."))
    assert d.view.held_by == stage.to


def test_available_actions_by_role() -> None:
    d = _at_first_formal_stage("gloucestershire")
    officer = set(rules.available_actions(d.state, d.state.officer))
    manager = set(rules.available_actions(d.state, d.recipient()))
    assert {"accept", "escalate", "bypass", "withdraw", "set_timescale", "add_note"} <= officer
    assert "respond" not in officer and "close" not in officer and "decide_extension" not in officer
    assert manager == {"respond", "request_extension", "add_note", "record_views"}
    d.act(RequestExtension(actor=d.recipient(), until=date(2026, 3, 11), reason="x"))
    assert "decide_extension" in rules.available_actions(d.state, d.state.officer)
    assert rules.available_actions(d.state, Actor(id="x", role="not_a_role")) == []


def test_notes_and_views_are_recorded_but_closed_escalations_refuse_everything() -> None:
    d = driver("gloucestershire")
    d.act(AddNote(actor=d.recipient(), text="Spoke to the family."))
    d.act(RecordViews(actor=d.state.officer, whose="child", views="Wants to stay at school."))
    assert d.kinds()[-2:] == [EventKind.NOTE, EventKind.VIEWS]
    d.act(Withdraw(actor=d.state.officer, reason="Resolved in conversation."))
    assert d.state.status is Status.WITHDRAWN
    with pytest.raises(rules.Refused, match="withdrawn"):
        d.act(AddNote(actor=d.state.officer, text="x"))


def test_a_refused_action_leaves_the_state_untouched() -> None:
    d = driver("gloucestershire")
    before = d.state.model_dump()
    old = d.state
    d.act(AddNote(actor=d.state.officer, text="An accepted action builds a new state."))
    assert old.model_dump() == before and d.state is not old
    d = driver("gloucestershire")
    before = d.state.model_dump()
    with pytest.raises(rules.Refused):
        d.act(Withdraw(actor=stranger(), reason="x"))
    assert d.state.model_dump() == before
    decision = rules.refuse(d.state, "withdraw", stranger(), "not yours", d.now)
    assert decision.state.timeline == d.state.timeline
    assert decision.state.status is d.state.status
    assert decision.state.refusals[-1].reason == "not yours"


def test_every_schedule_request_carries_the_authoritys_closure_days() -> None:
    p = load_protocol("gloucestershire").model_copy(update={"closure_days": [date(2026, 3, 4)]})
    d = Driver(make_raise("gloucestershire", protocol=p), MONDAY)
    requests = [e.request for e in d.effects if isinstance(e, PlanSchedule)]
    assert requests and all(r.closure_days == [date(2026, 3, 4)] for r in requests)
    assert d.view.deadline_date == date(2026, 3, 10)
