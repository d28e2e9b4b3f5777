"""The rules of the protocol's other processes, driven in-process with the real working-day calendar.

Review decisions deemed agreed (seed 002 Appendix 4, seed 003 3.3) and concerns about an officer's own
practice (seed 001 section 6, seed 003 1.6): every path, who may act, what is recorded and who is told.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from activities.working_days import plan_schedule
from protocols import load_protocol
from schemas.effects import Notify, PlanSchedule, Record
from schemas.escalation import Actor, EventKind, Flag, Status
from schemas.process_models import (
    AcceptFeedback,
    AgreeDecisions,
    DisagreeDecisions,
    EscalatePractice,
    GiveFeedback,
    ProcessView,
    RaisePracticeConcern,
    SendDecisions,
    WithdrawProcess,
)
from schemas.protocol import RAISING_OFFICER, Protocol
from workflows import rules as escalation_rules
from workflows.rules import Refused
from workflows.rules import deemed_agreement as decisions
from workflows.rules import practice_concern as practice
from workflows.rules._process_core import ProcessDecision, next_wakeup, on_scheduled

MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)  # Monday 2 March 2026, no bank holiday near
IRO = Actor(id="dud-iro-a", role="iro")
TM = Actor(id="dud-team-manager-a", role="team_manager")


class Run:
    """One process driven as the shell drives it: deadlines placed by the real calendar, timers in order."""

    def __init__(self, module: Any, inp: Any, now: datetime) -> None:
        self.module = module
        self.now = now
        self.records: list[Record] = []
        self.notices: list[Notify] = []
        self.opened: list[Any] = []
        self.absorb(module.start(inp, now))

    def absorb(self, decision: ProcessDecision[Any]) -> None:
        self.state = decision.state
        pending = list(decision.effects)
        while pending:
            effect = pending.pop(0)
            if isinstance(effect, PlanSchedule):
                then = on_scheduled(self.state, effect, plan_schedule(effect.request), self.now)
                self.state = then.state
                pending[:0] = then.effects
            elif isinstance(effect, Record):
                self.records.append(effect)
            elif isinstance(effect, Notify):
                self.notices.append(effect)
        if decision.opens is not None:
            self.opened.append(decision.opens)

    def act(self, action: Any) -> str:
        decision = self.module.handle(self.state, action, self.now)
        self.absorb(decision)
        return str(decision.outcome)

    def advance_to(self, when: datetime) -> None:
        while (wake := next_wakeup(self.state)) is not None and wake <= when:
            self.now = max(self.now, wake)
            self.absorb(self.module.on_timer(self.state, self.now))
        self.now = max(self.now, when)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.state.timeline]

    def view(self) -> ProcessView:
        view: ProcessView = self.module.view(self.state, self.now)
        return view


def send(protocol: Protocol | None = None, **changes: Any) -> SendDecisions:
    fields: dict[str, Any] = {
        "process_id": "dudley-C4F2A9-decisions-0000000001",
        "protocol": protocol or load_protocol("dudley"),
        "child_ref": "C4F2A9",
        "team": "team-a",
        "officer": IRO,
        "review_date": date(2026, 2, 27),
        "decisions": "1. Contact with grandmother weekly. 2. PEP updated by 20 March.",
    }
    return SendDecisions(**{**fields, **changes})


# --- review decisions deemed agreed ----------------------------------------------------------------------


def test_silence_for_five_working_days_means_the_decisions_stand() -> None:
    run = Run(decisions, send(), MONDAY)
    sent = run.state.timeline[0]
    assert sent.kind is EventKind.DECISIONS_SENT
    assert "by the end of Monday 9 March 2026 (5 working days)" in sent.text
    assert run.notices[0].to == ["team_manager"] and RAISING_OFFICER in run.notices[0].cc
    assert run.view().deadline_date == date(2026, 3, 9) and run.view().held_by == ["team_manager"]

    run.advance_to(datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert run.state.status is Status.AWAITING_RESPONSE
    assert run.kinds()[-1] is EventKind.REMINDER  # a working day before, to the team manager
    run.advance_to(datetime(2026, 3, 10, 0, 30, tzinfo=UTC))
    assert run.state.status is Status.RESOLVED and run.state.outcome == "deemed_agreed"
    stood = run.state.timeline[-1]
    assert stood.kind is EventKind.DECISIONS_DEEMED_AGREED and "deemed agreed" in stood.text
    told = run.notices[-1]
    assert told.entry_seq == stood.seq and told.to == [RAISING_OFFICER, "team_manager"]
    assert next_wakeup(run.state) is None
    assert decisions.available_actions(run.state, TM, run.now) == []


def test_the_time_to_disagree_counts_working_days_over_easter() -> None:
    thursday = datetime(2026, 4, 2, 15, tzinfo=UTC)  # Good Friday 3 April, Easter Monday 6 April
    run = Run(decisions, send(review_date=date(2026, 4, 1)), thursday)
    assert run.view().deadline_date == date(2026, 4, 13)


def test_a_disagreement_in_time_opens_informal_resolution() -> None:
    run = Run(decisions, send(), MONDAY)
    run.now = datetime(2026, 3, 5, 11, tzinfo=UTC)
    outcome = run.act(DisagreeDecisions(actor=TM, reason="Weekly contact is not safe yet."))
    assert run.state.status is Status.CLOSED and run.state.outcome == "disagreed"
    [opened] = run.opened
    assert outcome.endswith(opened.escalation_id) and run.state.resolution_id == opened.escalation_id
    assert opened.track == "iro-cp" and opened.category == "Child Looked After Review"
    assert opened.officer == IRO and opened.team == "team-a" and opened.child_ref == "C4F2A9"
    assert "Weekly contact is not safe yet." in opened.concern.summary
    assert escalation_rules.start(opened, run.now).state.stage_index == 0  # the informal stage
    assert opened.escalation_id == decisions.resolution_id(run.state)  # the same every time
    said = run.state.timeline[-1]
    assert said.kind is EventKind.DECISIONS_DISAGREED and said.data == {"resolution_id": opened.escalation_id}
    assert run.notices[-1].to == [RAISING_OFFICER]


def test_a_disagreement_after_the_deadline_is_refused_and_changes_nothing() -> None:
    run = Run(decisions, send(), MONDAY)
    late = datetime(2026, 3, 10, 0, 0, 1, tzinfo=UTC)  # the timer has not fired yet
    before = run.state
    with pytest.raises(Refused, match="the time to disagree ended on Monday 9 March 2026"):
        decisions.handle(run.state, DisagreeDecisions(actor=TM, reason="Too late"), late)
    assert run.state == before
    run.now = late
    assert run.act(AgreeDecisions(actor=TM)) == "the decisions are agreed"  # agreeing is still fine


@pytest.mark.parametrize(
    ("actor", "action", "reason"),
    [
        (IRO, AgreeDecisions(actor=IRO), "only Team Manager may agree"),
        (
            Actor(id="x", role="social_worker"),
            DisagreeDecisions(actor=Actor(id="x", role="social_worker"), reason="no"),
            "only Team Manager may disagree",
        ),
        (TM, WithdrawProcess(actor=TM, reason="no"), "only the officer who sent the decisions"),
    ],
)
def test_only_the_right_people_act(actor: Actor, action: Any, reason: str) -> None:
    run = Run(decisions, send(), MONDAY)
    with pytest.raises(Refused, match=reason):
        decisions.handle(run.state, action, MONDAY)
    assert action.kind not in decisions.available_actions(run.state, actor, MONDAY)


def test_agreeing_and_withdrawing_end_it() -> None:
    run = Run(decisions, send(), MONDAY)
    run.act(AgreeDecisions(actor=TM, note="Agreed at supervision."))
    assert (run.state.status, run.state.outcome) == (Status.RESOLVED, "agreed")
    assert "Agreed at supervision." in run.state.timeline[-1].text
    with pytest.raises(Refused, match="resolved process cannot disagree"):
        decisions.handle(run.state, DisagreeDecisions(actor=TM, reason="x"), MONDAY)
    run = Run(decisions, send(), MONDAY)
    run.act(WithdrawProcess(actor=IRO, reason="Sent to the wrong team"))
    assert run.state.status is Status.WITHDRAWN and next_wakeup(run.state) is None


def test_sending_is_refused_where_the_protocol_has_no_such_process_or_for_the_wrong_officer() -> None:
    glos = load_protocol("gloucestershire")
    with pytest.raises(Refused, match="has no deemed_agreement section"):
        decisions.start(send(glos, process_id="gloucestershire-C4F2A9-decisions-0000000001"), MONDAY)
    with pytest.raises(Refused, match="sent by Independent Reviewing Officer"):
        decisions.start(send(officer=Actor(id="c", role="cp_chair")), MONDAY)
    with pytest.raises(Refused, match="is in the future"):
        decisions.start(send(review_date=date(2026, 3, 3)), MONDAY)


def test_the_record_carries_the_protocols_case_note_type_and_no_personal_data_in_ids() -> None:
    run = Run(decisions, send(), MONDAY)
    item = decisions.effect_item(run.state, run.records[0], "run-1")
    assert item.record is not None and item.record.snapshot is not None
    assert item.record.snapshot.case_note_type == "IRO review decisions"
    assert item.record.track == "review-decisions" and item.record.escalation_id == run.state.process_id
    notice = decisions.effect_item(run.state, run.notices[0], "run-1").notify
    assert notice is not None and "Contact with grandmother weekly" in notice.concern_summary
    assert notice.deadline_date == date(2026, 3, 9)


# --- concerns about an officer's own practice -------------------------------------------------------------

WF_IRO = Actor(id="wf-iro-a", role="iro")
WF_TM = Actor(id="wf-team-manager-a", role="team_manager")
QA = Actor(id="wf-iro-line-manager", role="iro_line_manager")
AD = Actor(id="wf-ad-quality-assurance", role="ad_quality_assurance")


def concern(**changes: Any) -> RaisePracticeConcern:
    fields: dict[str, Any] = {
        "process_id": "waltham-forest-practice-0000000001",
        "protocol": load_protocol("waltham-forest"),
        "raised_by": WF_TM,
        "about": WF_IRO,
        "team": "team-a",
        "summary": "The review was chaired without the parents being invited.",
    }
    return RaisePracticeConcern(**{**fields, **changes})


def test_no_feedback_in_fifteen_working_days_escalates_to_the_ad_for_quality_assurance() -> None:
    run = Run(practice, concern(), MONDAY)
    assert run.kinds() == [EventKind.PRACTICE_CONCERN_RAISED]
    assert run.view().deadline_date == date(2026, 3, 23)  # 15 working days from Monday 2 March
    assert run.notices[0].to == ["iro_line_manager"]
    run.advance_to(datetime(2026, 3, 24, 1, tzinfo=UTC))
    assert run.kinds()[-3:] == [EventKind.REMINDER, EventKind.DEADLINE_PASSED, EventKind.PRACTICE_ESCALATED]
    assert run.state.stage == practice.ESCALATED and run.state.status is Status.AWAITING_RESPONSE
    assert Flag.OVERDUE in run.state.flags
    escalated = run.notices[-1]
    assert escalated.to == ["ad_quality_assurance"] and RAISING_OFFICER in escalated.cc
    assert run.view().held_by == ["ad_quality_assurance"] and run.view().deadline is None  # no set time
    assert practice.available_actions(run.state, QA) == []
    run.act(GiveFeedback(actor=AD, feedback="Investigated; practice guidance reissued."))
    assert (run.state.status, run.state.outcome) == (Status.RESOLVED, "concluded")


def test_feedback_accepted_resolves_it_and_feedback_not_accepted_escalates() -> None:
    run = Run(practice, concern(), MONDAY)
    run.act(GiveFeedback(actor=QA, feedback="The invitation was sent late; addressed in supervision."))
    assert run.state.status is Status.AWAITING_DECISION and next_wakeup(run.state) is None
    assert practice.available_actions(run.state, WF_TM) == ["accept_feedback", "escalate", "withdraw"]
    run.act(AcceptFeedback(actor=WF_TM))
    assert (run.state.status, run.state.outcome) == (Status.RESOLVED, "resolved")

    run = Run(practice, concern(), MONDAY)
    run.act(GiveFeedback(actor=QA, feedback="No concern found."))
    run.act(EscalatePractice(actor=WF_TM, reason="The parents were never invited."))
    assert run.state.stage == practice.ESCALATED
    assert "not resolved: The parents were never invited." in run.state.timeline[-1].text


def test_a_protocol_that_sets_the_escalations_time_gives_it_a_deadline_from_the_missed_one() -> None:
    base = load_protocol("waltham-forest")
    assert base.practice_concerns is not None
    rule = base.practice_concerns.model_copy(update={"escalation_working_days": 5})
    protocol = base.model_copy(update={"practice_concerns": rule})
    run = Run(practice, concern(protocol=protocol), MONDAY)
    run.advance_to(datetime(2026, 3, 24, 1, tzinfo=UTC))
    # begins at the deadline's midnight: Tuesday 24 March is its first working day
    assert run.view().deadline_date == date(2026, 3, 30)
    assert "An answer is due by the end of Monday 30 March 2026" in run.state.timeline[-1].text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"about": Actor(id="x", role="team_manager")}, "is about Independent Reviewing Officer"),
        ({"raised_by": WF_IRO}, "your own practice"),
    ],
)
def test_raising_is_refused_about_the_wrong_people(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        practice.start(concern(**changes), MONDAY)


def test_only_the_investigator_feeds_back_and_only_the_raiser_decides() -> None:
    run = Run(practice, concern(), MONDAY)
    with pytest.raises(Refused, match="only Line manager of the IRO / CP Co-ordinator may feed back"):
        practice.handle(run.state, GiveFeedback(actor=AD, feedback="x"), MONDAY)
    with pytest.raises(Refused, match="still being investigated"):
        practice.handle(run.state, AcceptFeedback(actor=WF_TM), MONDAY)
    run.act(GiveFeedback(actor=QA, feedback="x"))
    with pytest.raises(Refused, match="only the person who raised the concern"):
        practice.handle(run.state, EscalatePractice(actor=QA, reason="x"), MONDAY)


def test_a_practice_concern_never_goes_on_a_childs_file() -> None:
    run = Run(practice, concern(child_ref="C4F2A9"), MONDAY)
    run.act(GiveFeedback(actor=QA, feedback="x"))
    for record in run.records:
        item = practice.effect_item(run.state, record, "run-1").record
        assert item is not None and item.entry.data.get("case_note") is False


def test_the_raising_roles_and_officers_are_the_protocols() -> None:
    fwi = load_protocol("waltham-forest-fwi")
    inp = concern(
        protocol=fwi,
        process_id="waltham-forest-fwi-practice-0000000001",
        raised_by=Actor(id="x", role="divisional_director"),
    )
    with pytest.raises(Refused, match="raised by Social worker, Team manager"):
        practice.start(inp, MONDAY)


# --- the protocol sections ------------------------------------------------------------------------------


def test_a_section_naming_what_the_protocol_lacks_is_refused_naming_it() -> None:
    data = load_protocol("dudley").model_dump(mode="json")
    data["deemed_agreement"] = {**data["deemed_agreement"], "sent_to": ["nobody"], "resolution_category": "x"}
    with pytest.raises(ValidationError) as info:
        Protocol.model_validate(data)
    text = str(info.value)
    assert "deemed_agreement.sent_to: unknown role 'nobody'" in text
    assert "deemed_agreement.resolution_category: 'x' is not a category of track 'iro-cp'" in text


def test_a_protocol_snapshot_recorded_before_the_sections_still_loads() -> None:
    data = load_protocol("dudley").model_dump(mode="json")
    del data["deemed_agreement"], data["practice_concerns"]
    assert Protocol.model_validate(data).deemed_agreement is None


@pytest.mark.parametrize("key", ["dudley", "waltham-forest", "waltham-forest-fwi", "wigan"])
def test_protocol_show_tells_each_process_with_its_role_keys(key: str) -> None:
    from starter.cli.tools import protocol_lines

    p = load_protocol(key)
    text = "\n".join(protocol_lines(p))
    if p.deemed_agreement is None:
        assert "review decisions deemed agreed: not run under this protocol" in text
    else:
        roles = [*p.deemed_agreement.sent_to, *p.deemed_agreement.officer_roles]
        assert all(f"[{r}]" in text for r in roles)
        assert f"opens track {p.deemed_agreement.resolution_track}" in text
    if p.practice_concerns is None:
        assert "concerns about an officer's practice: not run under this protocol" in text
    else:
        c = p.practice_concerns
        assert all(f"[{r}]" in text for r in [*c.about_roles, *c.investigated_by, *c.escalates_to])
        assert f"within {c.working_days} working days" in text
