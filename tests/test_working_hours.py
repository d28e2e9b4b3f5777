"""Times in working hours (pure): the calendar in hours across a weekend, a bank holiday, a closure day and
both clock changes; and the rules' short timescales, officer's deadlines and required steps on the driver."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from activities.working_days import LONDON, plan_schedule
from schemas.duties import OfficerDeadline, RequiredStep
from schemas.escalation import Accept, Actor, EventKind, Flag, RecordStep, Respond, Status
from schemas.protocol import RAISING_OFFICER
from schemas.schedule import ScheduleRequest
from tests.driver import Driver, make_raise
from workflows import rules

NINE_TO_FIVE: dict[str, Any] = {"day_starts": time(9), "day_ends": time(17)}


def london(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


def hours(received: datetime, n: int, **kw: Any) -> tuple[datetime, datetime | None]:
    request = {"received_at": received, "working_hours": n, **NINE_TO_FIVE, **kw}
    sched = plan_schedule(ScheduleRequest.model_validate(request))
    assert sched.working_hours == n
    return sched.due_at.astimezone(LONDON), sched.remind_at.astimezone(LONDON) if sched.remind_at else None


# --- the calendar ---------------------------------------------------------------------------------------


def test_hours_within_a_day_end_at_the_instant_not_at_midnight() -> None:
    due, remind = hours(london(2026, 3, 3, 10, 20), 4)  # a Tuesday
    assert due == london(2026, 3, 3, 14, 20)
    assert remind == london(2026, 3, 3, 13, 20)  # one working hour before


def test_hours_across_a_weekend() -> None:
    due, _ = hours(london(2026, 3, 6, 15), 4)  # Friday 15:00: 2 hours Friday, 2 on Monday
    assert due == london(2026, 3, 9, 11)


def test_hours_across_a_bank_holiday() -> None:
    due, _ = hours(london(2026, 5, 1, 16), 2)  # Friday 1 May; Monday 4 May is the Early May bank holiday
    assert due == london(2026, 5, 5, 10)


def test_hours_across_a_closure_day() -> None:
    due, _ = hours(london(2026, 3, 3, 16), 2, closure_days=[date(2026, 3, 4)])
    assert due == london(2026, 3, 5, 10)


def test_hours_across_the_spring_and_autumn_clock_changes() -> None:
    spring, _ = hours(london(2026, 3, 27, 15), 3)  # Friday before BST begins (Sunday 29 March)
    assert spring == london(2026, 3, 30, 10) and spring.utcoffset() == timedelta(hours=1)
    assert spring.astimezone(UTC).hour == 9
    autumn, _ = hours(london(2026, 10, 23, 15), 3)  # Friday before BST ends (Sunday 25 October)
    assert autumn == london(2026, 10, 26, 10) and autumn.astimezone(UTC).hour == 10


def test_received_outside_hours_starts_at_the_next_working_day() -> None:
    assert hours(london(2026, 3, 3, 18), 1)[0] == london(2026, 3, 4, 10)
    assert hours(london(2026, 3, 7, 11), 1)[0] == london(2026, 3, 9, 10)  # Saturday
    assert hours(london(2026, 3, 3, 7), 8)[0] == london(2026, 3, 3, 17)  # a whole day ends at 17:00


def test_a_short_time_is_reminded_at_half_time_and_a_lead_of_0_never() -> None:
    assert hours(london(2026, 3, 3, 10), 1)[1] == london(2026, 3, 3, 10, 30)
    assert hours(london(2026, 3, 3, 10), 4, reminder_lead_working_hours=0)[1] is None


def test_an_hours_request_with_days_is_refused_and_days_results_do_not_change() -> None:
    with pytest.raises(ValueError, match="working_hours alone"):
        plan_schedule(ScheduleRequest(received_at=london(2026, 3, 3, 10), working_hours=2, working_days=1))
    days = plan_schedule(ScheduleRequest(received_at=london(2026, 3, 3, 10), working_days=5))
    assert days.working_hours is None and days.due_date == date(2026, 3, 10)


# --- the rules ------------------------------------------------------------------------------------------


def at(when: datetime, authority: str, track: str, **kw: object) -> Driver:
    return Driver(make_raise(authority, track, **kw), when.astimezone(UTC))  # type: ignore[arg-type]


def test_an_hours_stage_climbs_at_the_hour_it_ends() -> None:
    d = at(london(2026, 3, 6, 15), "waltham-forest", "risk-of-harm")  # Friday 15:00
    sched = d.state.stage_schedule
    assert sched is not None and sched.due_at.astimezone(LONDON) == london(2026, 3, 6, 17)
    sent = [e for e in d.state.timeline if e.kind is EventKind.SENT_TO_STAGE][-1]
    assert "Answer due by 17:00 on Friday 6 March 2026 (2 working hours)" in sent.text
    d.advance_to(london(2026, 3, 6, 17).astimezone(UTC))
    assert d.state.stage_index == 1 and Flag.OVERDUE not in d.state.flags
    nxt = d.state.stage_schedule
    # It begins at 17:00 on Friday, the instant the last one ended: its 4 hours are Monday's first four.
    assert nxt is not None and nxt.due_at.astimezone(LONDON) == london(2026, 3, 9, 13)
    assert [e.kind for e in d.state.timeline].count(EventKind.REMINDER) == 1


def with_duties(**stage_changes: object) -> object:
    from protocols import load_protocol

    p = load_protocol("wigan")
    track = p.tracks[0]
    first = track.stages[0].model_copy(update=stage_changes)
    tracks = [track.model_copy(update={"stages": [first, *track.stages[1:]]}), *p.tracks[1:]]
    return p.model_copy(update={"tracks": tracks})


def test_the_officers_deadline_is_reminded_missed_flagged_and_told_then_met_late() -> None:
    deadline = OfficerDeadline(
        key="form-sent", task="Send the formal form", within_working_days=3, missed_notify=["team_manager"]
    )
    p = with_duties(officer_deadline=deadline)
    d = at(london(2026, 3, 2, 10), "wigan", "iro", protocol=p)  # Monday
    [duty] = d.state.duties
    assert duty.schedule is not None and duty.schedule.due_date == date(2026, 3, 5)
    assert d.notices(EventKind.DUTY_SET)[0].to == [RAISING_OFFICER]
    d.advance_to(london(2026, 3, 5, 12).astimezone(UTC))
    assert d.notices(EventKind.DUTY_REMINDER)[0].to == [RAISING_OFFICER]
    d.advance_to(london(2026, 3, 6, 0, 1).astimezone(UTC))
    assert Flag.OFFICER_DEADLINE_MISSED in d.state.flags
    missed = d.notices(EventKind.DUTY_OVERDUE)[0]
    assert missed.to == [RAISING_OFFICER, "team_manager"]
    assert "form-sent" in rules.view(d.state, d.now).duties[0].key
    with pytest.raises(rules.Refused, match="only the raising officer"):
        d.act(RecordStep(actor=Actor(id="tm-1", role="team_manager"), step="form-sent"))
    d.act(RecordStep(actor=d.state.officer, step="form-sent", note="Sent on MiCare."))
    assert Flag.OFFICER_DEADLINE_MISSED not in d.state.flags
    assert d.state.duties[0].done is not None
    assert d.state.timeline[-1].data["late"] is True


def test_a_required_step_blocks_resolution_until_recorded_with_who_and_how() -> None:
    step = RequiredStep(
        key="child-told",
        what="The child told of the escalation and of their right to an advocate and to complain",
        tell=["child", "parents"],
        done_by=[RAISING_OFFICER, "team_manager"],
        within_working_hours=4,
    )
    d = at(london(2026, 3, 2, 10), "wigan", "iro", protocol=with_duties(required_steps=[step]))
    d.advance(timedelta(hours=1))
    d.act(Respond(actor=d.recipient(), answer="Done: the plan is updated."))
    assert "accept" not in rules.available_actions(d.state, d.state.officer)
    with pytest.raises(rules.Refused, match="record_step, step child-told"):
        d.act(Accept(actor=d.state.officer))
    d.advance_to(london(2026, 3, 2, 14).astimezone(UTC))
    assert Flag.STEP_OVERDUE in d.state.flags
    manager = Actor(id="tm-1", role="team_manager")
    with pytest.raises(rules.Refused, match="missing: parents"):
        d.act(RecordStep(actor=manager, step="child-told", told=["child"], how="phone"))
    with pytest.raises(rules.Refused, match="how:"):
        d.act(RecordStep(actor=manager, step="child-told", told=["child", "parents"]))
    with pytest.raises(rules.Refused, match="future"):
        d.act(
            RecordStep(
                actor=manager,
                step="child-told",
                told=["child", "parents"],
                how="phone",
                done_at=d.now + timedelta(hours=1),
            )
        )
    d.act(RecordStep(actor=manager, step="child-told", told=["child", "parents"], how="in_person"))
    assert Flag.STEP_OVERDUE not in d.state.flags
    assert d.state.timeline[-1].kind is EventKind.STEP_RECORDED
    assert d.notices(EventKind.STEP_RECORDED)[0].to == [RAISING_OFFICER]
    d.act(Accept(actor=d.state.officer))
    assert d.state.status is Status.RESOLVED and rules.next_wakeup(d.state) is None


def test_a_stage_with_both_times_is_refused_naming_the_fields() -> None:
    from schemas.protocol import Stage

    with pytest.raises(ValueError, match="response_working_days or response_working_hours, not both"):
        Stage(key="a", name="A", formal=True, to=["x"], response_working_days=5, response_working_hours=4)
    with pytest.raises(ValueError, match="exactly one of within_working_days and within_working_hours"):
        OfficerDeadline(task="Send the form")
