"""Cover and delegation, joint judging, exclusive escalation and external recipients: the pure rules.

Each test runs the rules in-process (microseconds a step) on Wigan's protocol file, which uses every one of
these fields (``cover``, ``officer_cover_by``, ``external_roles``, ``joint_judges``,
``escalated_by_exclusive``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from protocols import load_protocol
from schemas.effects import Covered
from schemas.escalation import (
    Accept,
    Actor,
    Escalate,
    EventKind,
    ExternalContact,
    RecordConsultation,
    ReplaceOfficer,
    Respond,
    Status,
)
from schemas.protocol import Protocol
from tests.driver import Driver, make_raise
from workflows import rules

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
IRO = Actor(id="wig-iro-a", role="iro")
IRO_TM = Actor(id="wig-iro-team-manager", role="iro_team_manager")
SERVICE_LEAD = Actor(id="wig-service-lead-a", role="service_lead")
TEAM_MANAGER = Actor(id="wig-team-manager-a", role="team_manager")
STRATEGIC = Actor(id="wig-strategic-lead-safeguarding", role="strategic_lead_safeguarding")


def wigan(track: str = "iro") -> Driver:
    return Driver(make_raise("wigan", track, officer=IRO), MONDAY)


# --- cover for an absent recipient -------------------------------------------------------------------


def sent_seq(d: Driver) -> int:
    return next(e.seq for e in reversed(d.state.timeline) if e.kind is EventKind.SENT_TO_STAGE)


def test_a_reported_cover_is_recorded_once_and_lets_the_cover_act() -> None:
    d = wigan()
    with pytest.raises(rules.Refused, match=r"only the stage.s recipients"):
        rules.check(d.state, Respond(actor=SERVICE_LEAD, answer="Covering."), d.now)
    covered = Covered(
        seq=sent_seq(d), role="team_manager", cover_role="service_lead", until=date(2026, 3, 13)
    )
    decision = rules.on_delivery(d.state, [], [], d.now, covered=[covered])
    d.state = decision.state
    entry = d.state.timeline[-1]
    assert entry.kind is EventKind.COVERED and "until Friday 13 March 2026" in entry.text
    assert entry.data == {"role": "team_manager", "cover_role": "service_lead", "until": "2026-03-13"}
    assert [n.to for n in decision.effects if hasattr(n, "to")] == [["raising_officer"]]  # officer told
    # Reported again (a reminder to the same absent holder): not recorded twice.
    again = rules.on_delivery(d.state, [], [], d.now, covered=[covered])
    assert again.effects == [] and again.state.covers == d.state.covers
    assert "respond" in rules.available_actions(d.state, SERVICE_LEAD)
    d.act(Respond(actor=SERVICE_LEAD, answer="Covering for the team manager: plan agreed."))
    assert d.state.status is Status.AWAITING_DECISION
    # The absent team manager's own role may still answer (they may come back early).
    assert "respond" in rules.available_actions(d.state, TEAM_MANAGER)


def test_a_cover_the_protocol_does_not_name_is_ignored_and_covers_end_with_the_stage() -> None:
    d = wigan()
    d.act(
        RecordConsultation(
            actor=IRO, stage="stage-2", with_role="iro_team_manager", agreed=True, summary="Agreed."
        )
    )
    wrong = Covered(seq=sent_seq(d), role="team_manager", cover_role="head_of_service")
    assert rules.on_delivery(d.state, [], [], d.now, covered=[wrong]).effects == []
    right = Covered(seq=sent_seq(d), role="team_manager", cover_role="service_lead")
    d.state = rules.on_delivery(d.state, [], [], d.now, covered=[right]).state
    d.act(Escalate(actor=IRO_TM, reason="No plan by the deadline: agreed to go on."))
    assert rules.current_stage(d.state).key == "stage-2"
    stage_2 = rules.current_stage(d.state)
    assert stage_2.to == ["service_lead"]
    # The team manager's cover was for stage 1: at stage 2 a team manager role is nobody's cover.
    assert [c.stage for c in d.state.covers] == ["stage-1"]
    cover_at_2 = Covered(seq=sent_seq(d), role="service_lead", cover_role="head_of_service")
    d.state = rules.on_delivery(d.state, [], [], d.now, covered=[cover_at_2]).state
    hos = Actor(id="wig-head-of-service", role="head_of_service")
    assert "respond" in rules.available_actions(d.state, hos)


# --- a covering officer --------------------------------------------------------------------------------


def test_a_covering_officer_takes_over_and_the_old_one_no_longer_acts() -> None:
    d = wigan()
    stranger = Actor(id="wig-team-manager-a", role="team_manager")
    with pytest.raises(rules.Refused, match=r"only the raising officer .* or IRO Team Manager"):
        rules.check(
            d.state,
            ReplaceOfficer(actor=stranger, new_officer=Actor(id="wig-iro-b", role="iro"), reason="Leave."),
            d.now,
        )
    with pytest.raises(rules.Refused, match="new_officer: a Child Protection Conference Chair cannot hold"):
        d.act(ReplaceOfficer(actor=IRO_TM, new_officer=Actor(id="x1", role="cp_chair"), reason="Leave."))
    with pytest.raises(rules.Refused, match="already holds this escalation"):
        d.act(ReplaceOfficer(actor=IRO_TM, new_officer=IRO, reason="Leave."))
    cover = Actor(id="wig-iro-b", role="iro")
    d.act(ReplaceOfficer(actor=IRO_TM, new_officer=cover, reason="Alex is on leave until April."))
    entry = d.state.timeline[-1]
    assert entry.kind is EventKind.OFFICER_REPLACED and "Reason: Alex is on leave until April." in entry.text
    assert entry.data["from"] == IRO.model_dump() and entry.data["to"] == cover.model_dump()
    assert d.state.officer == cover and d.state.officers_before == [IRO]
    assert d.notices(EventKind.OFFICER_REPLACED)[-1].to == ["raising_officer"]  # the covering officer
    d.act(Respond(actor=TEAM_MANAGER, answer="Plan updated."))
    assert "accept" not in rules.available_actions(d.state, IRO)
    assert "accept" in rules.available_actions(d.state, cover)
    d.act(Accept(actor=cover))
    assert d.state.status is Status.RESOLVED


# --- joint judging and exclusive escalation -------------------------------------------------------------


def partner_stage_2() -> Driver:
    d = wigan("partner-agencies")
    d.act(
        Respond(actor=IRO, answer="They will not change their plan.", on_behalf_of="partner_agency_manager")
    )
    with pytest.raises(rules.Refused, match="only IRO Team Manager may escalate to Partner Stage 2"):
        d.act(Escalate(actor=IRO, reason="Not resolved."))
    d.act(Escalate(actor=IRO_TM, reason="Agreed with the IRO: not resolved."))
    assert rules.current_stage(d.state).key == "partner-2"
    return d


def test_the_escalation_into_an_exclusive_stage_belongs_to_its_roles_alone() -> None:
    d = wigan("partner-agencies")
    assert "escalate" not in rules.available_actions(d.state, IRO)
    assert "escalate" in rules.available_actions(d.state, IRO_TM)
    # A stage without the field keeps today's rule: the officer (the judge) escalates too.
    iro = wigan("iro")
    assert "escalate" in rules.available_actions(iro.state, IRO)


def test_joint_judges_must_all_accept_and_any_may_escalate() -> None:
    d = partner_stage_2()
    d.act(Respond(actor=STRATEGIC, answer="The agencies will meet on Friday."))
    assert d.notices(EventKind.RESPONSE)[-1].to == ["raising_officer", "iro_team_manager"]
    stranger = Actor(id="wig-head-of-service", role="head_of_service")
    assert "accept" not in rules.available_actions(d.state, stranger)
    d.act(Accept(actor=IRO, note="Content."))
    assert d.state.status is Status.AWAITING_DECISION
    entry = d.state.timeline[-1]
    assert entry.kind is EventKind.JUDGE_SATISFIED and entry.data == {
        "role": "raising_officer",
        "waiting": ["iro_team_manager"],
    }
    with pytest.raises(rules.Refused, match="already accepted; waiting for IRO Team Manager"):
        d.act(Accept(actor=IRO))
    # A new answer asks both again.
    d.act(Respond(actor=STRATEGIC, answer="Meeting moved to Monday."))
    d.act(Accept(actor=IRO_TM))
    assert (
        d.state.status is Status.AWAITING_DECISION and d.state.timeline[-1].kind is EventKind.JUDGE_SATISFIED
    )
    d.act(Accept(actor=IRO))
    assert d.state.status is Status.RESOLVED and d.state.verdicts == []


def test_one_joint_judge_not_satisfied_escalates() -> None:
    d = partner_stage_2()
    d.act(Respond(actor=STRATEGIC, answer="No change."))
    d.act(Accept(actor=IRO))
    assert "escalate" in rules.available_actions(d.state, IRO_TM)
    d.act(Escalate(actor=IRO_TM, reason="Not satisfied."))
    assert d.state.status is Status.EXHAUSTED


def test_joint_judges_are_validated() -> None:
    data = load_protocol("wigan").model_dump()
    data["tracks"][2]["stages"][1]["joint_judges"] = ["iro_team_manager"]
    with pytest.raises(ValidationError, match="two or more different roles"):
        Protocol.model_validate(data)
    data["tracks"][2]["stages"][1]["joint_judges"] = ["raising_officer", "partner_agency_manager"]
    with pytest.raises(ValidationError, match="external role 'partner_agency_manager' cannot judge"):
        Protocol.model_validate(data)
    data = load_protocol("wigan").model_dump()
    data["cover"] = {"team_manager": "team_manager"}
    with pytest.raises(ValidationError, match="covered by another staff role"):
        Protocol.model_validate(data)


# --- external recipients -------------------------------------------------------------------------------


def test_an_external_recipient_is_given_at_raise_and_its_answer_recorded_by_the_officer() -> None:
    raise_ = make_raise("wigan", "partner-agencies", officer=IRO)
    with pytest.raises(rules.Refused, match=r"outside the Wigan .* give their name and e-mail address"):
        rules.start(raise_.model_copy(update={"external_contacts": []}), MONDAY)
    unknown = ExternalContact(role="team_manager", name="A", email="a@example.org")
    with pytest.raises(rules.Refused, match=r"'team_manager' is not one of the .* external roles"):
        rules.start(raise_.model_copy(update={"external_contacts": [unknown]}), MONDAY)
    with pytest.raises(ValidationError, match="not an e-mail address"):
        ExternalContact(role="partner_agency_manager", name="A", email="a@b@c")
    with pytest.raises(ValidationError):
        ExternalContact(role="partner_agency_manager", name="A", email="a" * 250 + "@x.org")
    d = Driver(raise_, MONDAY)
    assert d.state.external_contacts == raise_.external_contacts
    assert d.notices(EventKind.SENT_TO_STAGE)[-1].to == ["partner_agency_manager"]
    with pytest.raises(rules.Refused, match="give on_behalf_of: partner_agency_manager"):
        d.act(Respond(actor=IRO, answer="They agree."))
    with pytest.raises(rules.Refused, match=r"only the stage.s recipients"):
        d.act(Respond(actor=IRO_TM, answer="They agree.", on_behalf_of="partner_agency_manager"))
    d.act(Respond(actor=IRO, answer="They agree to share the plan.", on_behalf_of="partner_agency_manager"))
    entry = d.state.timeline[-1]
    assert entry.text.startswith("Answer from Robin Partner (Partner agency's manager (outside the council))")
    assert entry.data["on_behalf_of"] == "partner_agency_manager"
    d.act(Accept(actor=IRO))
    assert d.state.status is Status.RESOLVED


def test_no_new_field_changes_a_protocol_that_does_not_use_it() -> None:
    """Gloucestershire uses none of them: the officer judges, escalates and is the only one who may."""
    d = Driver(make_raise("gloucestershire", officer=Actor(id="glo-iro-a", role="iro")), MONDAY)
    assert d.state.external_contacts == [] and d.state.covers == []
    officer = d.state.officer
    assert {"accept", "escalate", "replace_officer"} <= set(rules.available_actions(d.state, officer))
    qa = Actor(id="glo-qa", role=d.state.protocol.breach_notify[0])
    assert "replace_officer" not in rules.available_actions(d.state, qa)
