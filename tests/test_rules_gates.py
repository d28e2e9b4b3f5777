"""Protocol fields the rules must honour: a gate on a track's first stage, the consultation given at raise,
stages used only in exceptional circumstances, and a judge other than the raising officer. Pure rules, in
microseconds; each behaviour also keeps its old form for escalations started before it (``honour=False``,
the shell's ``HONOURED`` patch)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from protocols import load_protocol
from schemas.escalation import (
    Accept,
    Actor,
    Bypass,
    Close,
    Escalate,
    EventKind,
    Flag,
    RecordConsultation,
    Respond,
    Status,
    Withdraw,
)
from schemas.protocol import RAISING_OFFICER, Protocol
from tests.driver import Driver, make_raise
from workflows import rules

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday 2 March 2026, 10:00 GMT


def variant(authority: str, change: Any) -> Protocol:
    """The authority's protocol with ``change(data)`` applied to its plain data (every track's stages)."""
    data = load_protocol(authority).model_dump(mode="json")
    change(data)
    return Protocol.model_validate(data)


def first_stage_gated(kind: str = "consultation") -> Protocol:
    def change(data: dict[str, Any]) -> None:
        for track in data["tracks"]:
            track["stages"][0]["entry_gate"] = {"kind": kind, "with_roles": ["iro_team_manager"]}

    return variant("wigan", change)


def consulted(
    stage: str, *, on: date | None = date(2026, 2, 27), agreed: bool | None = None
) -> RecordConsultation:
    return RecordConsultation(
        actor=Actor(id="officer-1", role="iro"),
        stage=stage,
        with_role="iro_team_manager",
        agreed=agreed,
        summary="Talked it through with the IRO team manager, who supports raising it formally.",
        held_on=on,
    )


# --- a. a gate on a track's first stage --------------------------------------------------------------------


def test_a_gate_on_the_first_stage_refuses_a_raise_without_its_consultation() -> None:
    raise_ = make_raise("wigan", "iro", protocol=first_stage_gated())
    with pytest.raises(
        rules.Refused, match=r"Stage 1 .* needs a recorded consultation with IRO Team Manager"
    ):
        rules.start(raise_, MONDAY)


def test_a_gate_on_the_first_stage_opens_with_the_consultation_given_at_raise() -> None:
    raise_ = make_raise("wigan", "iro", protocol=first_stage_gated(), consultations=[consulted("stage-1")])
    d = Driver(raise_, MONDAY)
    assert d.state.status is Status.AWAITING_RESPONSE and d.state.stage_index == 0
    assert d.kinds() == [EventKind.RAISED, EventKind.CONSULTATION_RECORDED, EventKind.SENT_TO_STAGE]


def test_an_agreement_gate_on_the_first_stage_needs_the_agreement() -> None:
    protocol = first_stage_gated("agreement")
    refused = make_raise(
        "wigan", "iro", protocol=protocol, consultations=[consulted("stage-1", agreed=False)]
    )
    with pytest.raises(rules.Refused, match=r"needs a recorded agreement .* agreed"):
        rules.start(refused, MONDAY)
    agreed = make_raise("wigan", "iro", protocol=protocol, consultations=[consulted("stage-1", agreed=True)])
    assert Driver(agreed, MONDAY).state.stage_index == 0


def test_escalations_started_before_the_fix_still_start_past_a_first_stage_gate() -> None:
    raise_ = make_raise("wigan", "iro", protocol=first_stage_gated())
    assert rules.start(raise_, MONDAY, honour=False).state.stage_index == 0


# --- b. the consultation given at raise: who, when, recorded, bounded -------------------------------------


def test_the_consultation_given_at_raise_is_recorded_with_who_and_when() -> None:
    raise_ = make_raise("wigan", "iro", protocol=first_stage_gated(), consultations=[consulted("stage-1")])
    d = Driver(raise_, MONDAY)
    [kept] = d.state.consultations
    assert (kept.with_role, kept.held_on, kept.by.id) == ("iro_team_manager", date(2026, 2, 27), "officer-1")
    entry = next(e for e in d.state.timeline if e.kind is EventKind.CONSULTATION_RECORDED)
    assert "Friday 27 February 2026" in entry.text and "IRO Team Manager" in entry.text
    assert entry.data["held_on"] == "2026-02-27" and entry.data["with_role"] == "iro_team_manager"
    assert d.records()[1].entry == entry  # recorded, not only kept in the state


def test_raise_at_a_gated_stage_takes_the_consultation() -> None:
    """Wigan's stage 2 needs the IRO team manager's agreement: a raise there says it was given."""
    bypass = Bypass(
        actor=Actor(id="officer-1", role="iro"),
        to_stage="stage-2",
        reason="Delay at stage 1.",
        discussed_with="siu_service_lead",
    )
    without = make_raise("wigan", "iro", start_at_stage="stage-2", start_bypass=bypass)
    with pytest.raises(rules.Refused, match=r"Stage 2 .* needs a recorded agreement with IRO Team Manager"):
        rules.start(without, MONDAY)
    given = without.model_copy(update={"consultations": [consulted("stage-2", agreed=True)]})
    d = Driver(given, MONDAY)
    assert d.state.stage_index == 1 and d.state.consultations[0].held_on == date(2026, 2, 27)


@pytest.mark.parametrize(
    ("on", "message"),
    [
        (date(2026, 3, 3), "in the future"),
        (date(2025, 2, 27), "more than a year"),
    ],
)
def test_a_consultation_at_raise_must_have_happened_within_the_last_year(on: date, message: str) -> None:
    raise_ = make_raise(
        "wigan", "iro", protocol=first_stage_gated(), consultations=[consulted("stage-1", on=on)]
    )
    with pytest.raises(rules.Refused, match=rf"held_on: .*{message}"):
        rules.start(raise_, MONDAY)


def test_a_consultation_recorded_later_may_say_when_it_was_held() -> None:
    d = Driver(make_raise("wigan", "iro"), MONDAY)
    d.act(consulted("stage-2", agreed=True, on=date(2026, 3, 2)))
    assert d.state.consultations[-1].held_on == date(2026, 3, 2)
    with pytest.raises(rules.Refused, match=r"held_on: .*in the future"):
        d.act(consulted("stage-2", agreed=True, on=date(2026, 3, 4)))


# --- c. exceptional stages wait for the officer's decision --------------------------------------------------


def wigan_at_stage_4(*, honour: bool = True) -> Driver:
    d = Driver(make_raise("wigan", "iro"), MONDAY, honour=honour)
    d.act(consulted("stage-2", agreed=True, on=date(2026, 3, 2)))
    for _ in range(3):
        d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    assert d.state.stage_index == 3 and d.state.status is Status.AWAITING_RESPONSE
    return d


def test_a_timer_does_not_escalate_into_an_exceptional_stage_it_holds_for_the_officer() -> None:
    d = wigan_at_stage_4()
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    s = d.state
    assert (s.status, s.stage_index, s.hold_target) == (Status.ESCALATION_DUE, 3, 4)
    assert Flag.EXCEPTIONAL_DECISION_DUE in s.flags
    [told] = d.notices(EventKind.EXCEPTIONAL_DUE)
    assert told.to == [RAISING_OFFICER]
    assert "only in exceptional circumstances" in s.timeline[-1].text
    # It waits for the officer: nothing but the total limit can wake it, however long it waits.
    d.advance(timedelta(days=60))
    assert d.state.status is Status.ESCALATION_DUE and d.state.stage_index == 3
    assert d.kinds().count(EventKind.SENT_TO_STAGE) == 4


def test_the_officer_escalates_into_an_exceptional_stage_by_saying_the_circumstances_are() -> None:
    d = wigan_at_stage_4()
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    officer = d.state.officer
    assert "escalate" in rules.available_actions(d.state, officer)
    with pytest.raises(rules.Refused, match=r"exceptional circumstances.*exceptional"):
        d.act(Escalate(actor=officer, reason="Still no plan."))
    d.act(Escalate(actor=officer, reason="The child's placement ends next week.", exceptional=True))
    s = d.state
    assert (s.status, s.stage_index, s.hold_target) == (Status.AWAITING_RESPONSE, 4, None)
    assert Flag.EXCEPTIONAL_DECISION_DUE not in s.flags
    escalated = next(e for e in reversed(s.timeline) if e.kind is EventKind.ESCALATED)
    assert "exceptional" in escalated.text and escalated.data["exceptional"] is True
    assert "placement ends next week" in escalated.text


def test_escalating_by_hand_into_an_exceptional_stage_needs_the_officer_to_say_so() -> None:
    d = wigan_at_stage_4()
    officer = d.state.officer
    with pytest.raises(rules.Refused, match=r"Stage 5 .* only in exceptional circumstances"):
        d.act(Escalate(actor=officer, reason="No view yet."))
    d.act(Escalate(actor=officer, reason="Exceptional: risk of harm.", exceptional=True))
    assert d.state.stage_index == 4


def test_exceptional_is_refused_where_the_next_stage_is_not_exceptional() -> None:
    d = Driver(make_raise("wigan", "iro"), MONDAY)
    with pytest.raises(rules.Refused, match="not one kept for exceptional circumstances"):
        d.act(Escalate(actor=d.state.officer, reason="Urgent.", exceptional=True))


def test_only_the_officer_decides_that_the_circumstances_are_exceptional() -> None:
    def change(data: dict[str, Any]) -> None:
        for track in data["tracks"]:
            if track["key"] in ("iro", "cp"):
                track["stages"][3]["judged_by"] = "iro_team_manager"

    d = Driver(make_raise("wigan", "iro", protocol=variant("wigan", change)), MONDAY)
    d.act(consulted("stage-2", agreed=True, on=date(2026, 3, 2)))
    for _ in range(4):
        d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    assert Flag.EXCEPTIONAL_DECISION_DUE in d.state.flags
    judge = Actor(id="tm-1", role="iro_team_manager")
    with pytest.raises(rules.Refused, match="only the raising officer may decide"):
        d.act(Escalate(actor=judge, reason="Exceptional.", exceptional=True))
    d.act(Escalate(actor=d.state.officer, reason="Exceptional.", exceptional=True))
    assert d.state.stage_index == 4


def test_the_officer_may_end_an_escalation_held_for_an_exceptional_decision() -> None:
    d = wigan_at_stage_4()
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    d.act(
        Close(
            actor=d.state.officer, reason="Not exceptional: the children's services director is not needed."
        )
    )
    assert d.state.status is Status.CLOSED


def test_the_officer_may_withdraw_or_accept_while_held() -> None:
    d = wigan_at_stage_4()
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    d.act(Withdraw(actor=d.state.officer, reason="Resolved outside the protocol."))
    assert d.state.status is Status.WITHDRAWN


def test_escalations_started_before_the_fix_still_climb_into_an_exceptional_stage() -> None:
    d = wigan_at_stage_4(honour=False)
    d.advance_to(d.state.stage_schedule.due_at)  # type: ignore[union-attr]
    assert d.state.stage_index == 4 and d.state.status is Status.AWAITING_RESPONSE
    d2 = wigan_at_stage_4(honour=False)
    d2.act(Escalate(actor=d2.state.officer, reason="No view yet."))
    assert d2.state.stage_index == 4


def test_an_exceptional_cp_level_waits_too() -> None:
    """Waltham Forest (FWi) CP level 6: 'in exceptional circumstances concerns will be escalated to DD'."""
    d = Driver(make_raise("waltham-forest-fwi", "cp"), MONDAY)
    stages = d.state.protocol.track("cp").stages
    last = len(stages) - 1
    assert stages[last].exceptional
    while d.state.status is Status.AWAITING_RESPONSE:
        if d.state.stage_schedule is None:  # the informal levels set no time: the officer moves it on
            d.act(Escalate(actor=d.state.officer, reason="Not resolved informally."))
        else:
            d.advance_to(d.state.stage_schedule.due_at)
    assert d.state.status is Status.ESCALATION_DUE and d.state.hold_target == last


# --- d. a judge other than the raising officer -----------------------------------------------------------


def judged_by_team_manager() -> Protocol:
    def change(data: dict[str, Any]) -> None:
        for track in data["tracks"]:
            track["stages"][0]["judged_by"] = "iro_team_manager"

    return variant("wigan", change)


def test_the_officer_is_told_of_the_answer_and_the_resolution_when_another_judges() -> None:
    d = Driver(make_raise("wigan", "iro", protocol=judged_by_team_manager()), MONDAY)
    d.act(Respond(actor=d.recipient(), answer="The plan is updated."))
    [answer] = d.notices(EventKind.RESPONSE)
    assert answer.to == ["iro_team_manager"] and RAISING_OFFICER in answer.cc
    d.act(Accept(actor=Actor(id="tm-1", role="iro_team_manager"), note="Satisfied."))
    [resolved] = d.notices(EventKind.RESOLVED)
    assert RAISING_OFFICER in resolved.to + resolved.cc


def test_the_officer_is_told_when_another_judge_agrees_an_action_plan() -> None:
    d = Driver(make_raise("wigan", "iro", protocol=judged_by_team_manager()), MONDAY)
    d.act(
        Respond(
            actor=d.recipient(),
            answer="A plan.",
            action_plan="Visit weekly.",
            action_plan_due=date(2026, 4, 1),
        )
    )
    d.act(Accept(actor=Actor(id="tm-1", role="iro_team_manager")))
    [agreed] = d.notices(EventKind.MONITORING_STARTED)
    assert RAISING_OFFICER in agreed.to + agreed.cc


def test_the_officer_is_not_told_twice_of_what_they_judge_themselves() -> None:
    d = Driver(make_raise("wigan", "iro"), MONDAY)
    d.act(Respond(actor=d.recipient(), answer="The plan is updated."))
    [answer] = d.notices(EventKind.RESPONSE)
    assert answer.to == [RAISING_OFFICER] and RAISING_OFFICER not in answer.cc
    d.act(Accept(actor=d.state.officer))
    [resolved] = d.notices(EventKind.RESOLVED)
    assert RAISING_OFFICER not in resolved.to + resolved.cc


def test_escalations_started_before_the_fix_tell_only_the_judge() -> None:
    d = Driver(make_raise("wigan", "iro", protocol=judged_by_team_manager()), MONDAY, honour=False)
    d.act(Respond(actor=d.recipient(), answer="The plan is updated."))
    assert RAISING_OFFICER not in d.notices(EventKind.RESPONSE)[0].cc
