"""The working-day calendar and the placing of deadlines (pure; every expected value written by hand)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from activities.working_days import (
    WorkingDayCalendar,
    end_of_day,
    local_time,
    london_date,
    plan_schedule,
)
from schemas.schedule import Schedule, ScheduleRequest


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def plan(received_at: datetime, **kwargs: object) -> Schedule:
    return plan_schedule(ScheduleRequest.model_validate({"received_at": received_at, **kwargs}))


def assert_utc(instant: datetime | None) -> None:
    assert instant is not None
    assert instant.tzinfo is UTC


# --- the calendar -------------------------------------------------------------------------------------


@pytest.fixture
def calendar() -> WorkingDayCalendar:
    return WorkingDayCalendar()


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        # Christmas 2026: Fri 25, Sat 26 (Boxing Day), substitute Mon 28.
        (date(2026, 12, 24), None),
        (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 12, 26), "Boxing Day"),
        (date(2026, 12, 27), "Sunday"),
        (date(2026, 12, 28), "Boxing Day (observed)"),
        (date(2026, 12, 29), None),
        # Christmas 2027: Sat 25 and Sun 26, substitutes Mon 27 and Tue 28.
        (date(2027, 12, 24), None),
        (date(2027, 12, 25), "Christmas Day"),
        (date(2027, 12, 26), "Boxing Day"),
        (date(2027, 12, 27), "Christmas Day (observed)"),
        (date(2027, 12, 28), "Boxing Day (observed)"),
        (date(2027, 12, 29), None),
        # Easter 2026 and 2027.
        (date(2026, 4, 2), None),
        (date(2026, 4, 3), "Good Friday"),
        (date(2026, 4, 6), "Easter Monday"),
        (date(2026, 4, 7), None),
        (date(2027, 3, 25), None),
        (date(2027, 3, 26), "Good Friday"),
        (date(2027, 3, 29), "Easter Monday"),
        (date(2027, 3, 30), None),
        # New Year 2027 (Friday) and 2028 (Saturday, substitute Monday 3 January).
        (date(2026, 12, 31), None),
        (date(2027, 1, 1), "New Year's Day"),
        (date(2027, 1, 4), None),
        (date(2027, 12, 31), None),
        (date(2028, 1, 1), "New Year's Day"),
        (date(2028, 1, 2), "Sunday"),
        (date(2028, 1, 3), "New Year's Day (observed)"),
        (date(2028, 1, 4), None),
        # Other bank holidays of 2026, and an ordinary week.
        (date(2026, 5, 4), "May Day"),
        (date(2026, 5, 25), "Spring Bank Holiday"),
        (date(2026, 8, 31), "Late Summer Bank Holiday"),
        (date(2026, 11, 6), None),
        (date(2026, 11, 7), "Saturday"),
        (date(2026, 11, 8), "Sunday"),
        (date(2026, 11, 9), None),
    ],
)
def test_why_not_working(calendar: WorkingDayCalendar, day: date, reason: str | None) -> None:
    assert calendar.why_not_working(day) == reason
    assert calendar.is_working_day(day) is (reason is None)


def test_closure_days() -> None:
    calendar = WorkingDayCalendar([date(2026, 11, 4), date(2026, 12, 29)])
    assert not calendar.is_working_day(date(2026, 11, 4))
    assert calendar.why_not_working(date(2026, 11, 4)) == "authority closure day"
    assert calendar.why_not_working(date(2026, 11, 3)) is None
    assert calendar.next_working_day(date(2026, 12, 25)) == date(2026, 12, 30)
    # Without closure days the same calendar questions have other answers.
    assert WorkingDayCalendar().is_working_day(date(2026, 11, 4))
    assert WorkingDayCalendar().next_working_day(date(2026, 12, 25)) == date(2026, 12, 29)


def test_next_working_day(calendar: WorkingDayCalendar) -> None:
    assert calendar.next_working_day(date(2026, 11, 9)) == date(2026, 11, 9)
    assert calendar.next_working_day(date(2026, 11, 7)) == date(2026, 11, 9)
    assert calendar.next_working_day(date(2027, 12, 24)) == date(2027, 12, 24)
    assert calendar.next_working_day(date(2027, 12, 25)) == date(2027, 12, 29)
    assert calendar.next_working_day(date(2028, 1, 1)) == date(2028, 1, 4)
    assert calendar.next_working_day(date(2026, 4, 3)) == date(2026, 4, 7)


def test_add_working_days(calendar: WorkingDayCalendar) -> None:
    assert calendar.add_working_days(date(2026, 12, 18), 5) == date(2026, 12, 29)
    assert calendar.add_working_days(date(2026, 12, 18), 0) == date(2026, 12, 18)
    assert calendar.add_working_days(date(2026, 11, 7), 0) == date(2026, 11, 9)  # Saturday start
    assert calendar.add_working_days(date(2026, 11, 7), 1) == date(2026, 11, 10)
    assert calendar.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)  # across the year end
    assert calendar.add_working_days(date(2027, 12, 23), 2) == date(2027, 12, 29)
    assert calendar.add_working_days(date(2026, 4, 2), 1) == date(2026, 4, 7)  # over Easter
    assert calendar.add_working_days(date(2026, 11, 2), 20) == date(2026, 11, 30)
    with pytest.raises(ValueError, match="negative"):
        calendar.add_working_days(date(2026, 11, 2), -1)


def test_working_days_between(calendar: WorkingDayCalendar) -> None:
    assert calendar.working_days_between(date(2026, 12, 18), date(2026, 12, 29)) == [
        date(2026, 12, 21),
        date(2026, 12, 22),
        date(2026, 12, 23),
        date(2026, 12, 24),
        date(2026, 12, 29),
    ]
    assert calendar.working_days_between(date(2026, 12, 18), date(2026, 12, 18)) == []
    assert calendar.working_days_between(date(2026, 12, 24), date(2026, 12, 28)) == []
    assert calendar.working_days_between(date(2026, 12, 29), date(2026, 12, 18)) == []


# --- London dates and instants --------------------------------------------------------------------------


def test_london_date() -> None:
    assert london_date(utc(2026, 7, 9, 22, 59)) == date(2026, 7, 9)
    assert london_date(utc(2026, 7, 9, 23, 30)) == date(2026, 7, 10)  # BST: 00:30 on the 10th
    assert london_date(utc(2026, 1, 9, 23, 30)) == date(2026, 1, 9)  # GMT
    new_york_summer = timezone(timedelta(hours=-4))
    assert london_date(datetime(2026, 7, 9, 20, 0, tzinfo=new_york_summer)) == date(2026, 7, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        london_date(datetime(2026, 7, 9, 12, 0))


def test_end_of_day_and_local_time() -> None:
    assert end_of_day(date(2026, 7, 8)) == utc(2026, 7, 8, 23)
    assert end_of_day(date(2026, 1, 8)) == utc(2026, 1, 9)
    # October 2026: clocks go back at 02:00 BST on Sunday 25th, so that day lasts 25 hours.
    assert end_of_day(date(2026, 10, 24)) == utc(2026, 10, 24, 23)
    assert end_of_day(date(2026, 10, 25)) == utc(2026, 10, 26)
    # March 2026: clocks go forward at 01:00 GMT on Sunday 29th, so that day lasts 23 hours.
    assert end_of_day(date(2026, 3, 28)) == utc(2026, 3, 29)
    assert end_of_day(date(2026, 3, 29)) == utc(2026, 3, 29, 23)
    assert local_time(date(2026, 7, 8), 9) == utc(2026, 7, 8, 8)
    assert local_time(date(2026, 1, 8), 9) == utc(2026, 1, 8, 9)
    assert local_time(date(2026, 10, 26), 9) == utc(2026, 10, 26, 9)
    assert_utc(end_of_day(date(2026, 7, 8)))
    assert_utc(local_time(date(2026, 7, 8), 9))


# --- plan_schedule ----------------------------------------------------------------------------------------


def test_the_issue_example_friday_18_december_2026() -> None:
    schedule = plan(utc(2026, 12, 18, 10), working_days=5)
    assert schedule.counts_from == date(2026, 12, 18)
    assert schedule.due_date == date(2026, 12, 29)
    assert schedule.due_at == utc(2026, 12, 30)
    assert schedule.working_day_ends == [
        utc(2026, 12, 22),
        utc(2026, 12, 23),
        utc(2026, 12, 24),
        utc(2026, 12, 25),
        utc(2026, 12, 30),
    ]
    assert schedule.remind_at == utc(2026, 12, 29, 9)
    for instant in [schedule.received_at, schedule.due_at, schedule.remind_at, *schedule.working_day_ends]:
        assert_utc(instant)


def test_working_days_left() -> None:
    schedule = plan(utc(2026, 12, 18, 10), working_days=5)
    assert schedule.working_days_left(utc(2026, 12, 18, 10)) == 5
    assert schedule.working_days_left(utc(2026, 12, 21, 23, 59, 59)) == 5  # Monday still running
    assert schedule.working_days_left(utc(2026, 12, 22)) == 4
    assert schedule.working_days_left(utc(2026, 12, 24, 12)) == 2
    assert schedule.working_days_left(utc(2026, 12, 26, 12)) == 1  # over Christmas
    assert schedule.working_days_left(utc(2026, 12, 29, 23, 59, 59)) == 1  # the due day, just before due_at
    assert schedule.working_days_left(utc(2026, 12, 30)) == 0  # at due_at
    assert schedule.working_days_left(utc(2027, 1, 5)) == 0


def test_working_days_left_in_summer_time() -> None:
    schedule = plan(utc(2026, 7, 6, 9), working_days=2)  # Monday 10:00 BST
    assert schedule.due_date == date(2026, 7, 8)
    assert schedule.working_day_ends == [utc(2026, 7, 7, 23), utc(2026, 7, 8, 23)]
    assert schedule.working_days_left(utc(2026, 7, 7, 22, 59)) == 2
    assert schedule.working_days_left(utc(2026, 7, 7, 23)) == 1  # already Wednesday in London
    assert schedule.working_days_left(utc(2026, 7, 8, 22, 59)) == 1
    assert schedule.working_days_left(utc(2026, 7, 8, 23)) == 0


def test_closure_day_shifts_the_deadline() -> None:
    received = utc(2026, 11, 2, 10)  # Monday
    assert plan(received, working_days=5).due_date == date(2026, 11, 9)
    closed = plan(received, working_days=5, closure_days=[date(2026, 11, 4)])
    assert closed.due_date == date(2026, 11, 10)
    assert closed.due_at == utc(2026, 11, 11)
    assert utc(2026, 11, 5) not in closed.working_day_ends  # the end of the closure day is not counted
    assert len(closed.working_day_ends) == 5


def test_closure_day_on_the_day_of_receipt() -> None:
    schedule = plan(utc(2026, 11, 2, 10), working_days=1, closure_days=[date(2026, 11, 2)])
    assert schedule.counts_from == date(2026, 11, 3)
    assert schedule.due_date == date(2026, 11, 4)


def test_receipt_on_a_saturday() -> None:
    schedule = plan(utc(2026, 11, 7, 10), working_days=3)
    assert schedule.counts_from == date(2026, 11, 9)
    assert schedule.due_date == date(2026, 11, 12)
    assert schedule.due_at == utc(2026, 11, 13)
    assert schedule.working_days_left(schedule.received_at) == 3


def test_receipt_on_a_bank_holiday() -> None:
    schedule = plan(utc(2026, 8, 31, 8), working_days=2)  # Late Summer Bank Holiday, 09:00 BST
    assert schedule.counts_from == date(2026, 9, 1)
    assert schedule.due_date == date(2026, 9, 3)
    assert schedule.due_at == utc(2026, 9, 3, 23)


def test_receipt_late_evening_utc_in_summer_is_the_next_london_day() -> None:
    before_midnight = plan(utc(2026, 7, 9, 22, 30), working_days=1)  # Thursday 23:30 BST
    assert before_midnight.counts_from == date(2026, 7, 9)
    assert before_midnight.due_date == date(2026, 7, 10)
    after_midnight = plan(utc(2026, 7, 9, 23, 30), working_days=1)  # Friday 00:30 BST
    assert after_midnight.counts_from == date(2026, 7, 10)
    assert after_midnight.due_date == date(2026, 7, 13)
    assert after_midnight.due_at == utc(2026, 7, 13, 23)


def test_received_at_is_returned_in_utc() -> None:
    schedule = plan(datetime(2026, 7, 9, 20, 0, tzinfo=timezone(timedelta(hours=-4))), working_days=1)
    assert schedule.received_at == utc(2026, 7, 10)
    assert_utc(schedule.received_at)
    assert schedule.counts_from == date(2026, 7, 10)


def test_naive_received_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(datetime(2026, 7, 9, 12, 0), working_days=1)


def test_zero_working_days() -> None:
    schedule = plan(utc(2026, 11, 11, 8), working_days=0)  # Wednesday
    assert schedule.counts_from == date(2026, 11, 11)
    assert schedule.due_date == date(2026, 11, 11)
    assert schedule.due_at == utc(2026, 11, 12)
    assert schedule.working_day_ends == []
    assert schedule.working_days_left(schedule.received_at) == 0
    assert schedule.remind_at == utc(2026, 11, 11, 9)
    on_saturday = plan(utc(2026, 11, 14, 8), working_days=0)
    assert on_saturday.due_date == date(2026, 11, 16)
    assert on_saturday.due_at == utc(2026, 11, 17)


def test_until_a_fixed_date() -> None:
    schedule = plan(utc(2026, 11, 2, 10), until=date(2026, 11, 20))
    assert schedule.counts_from == date(2026, 11, 2)
    assert schedule.due_date == date(2026, 11, 20)
    assert schedule.due_at == utc(2026, 11, 21)
    assert len(schedule.working_day_ends) == 14
    assert schedule.working_day_ends[0] == utc(2026, 11, 4)
    assert schedule.working_day_ends[-1] == utc(2026, 11, 21)
    assert schedule.remind_at == utc(2026, 11, 20, 9)


def test_until_a_non_working_day() -> None:
    schedule = plan(utc(2026, 11, 2, 10), until=date(2026, 11, 22))  # a Sunday
    assert schedule.due_date == date(2026, 11, 22)
    assert schedule.due_at == utc(2026, 11, 23)
    assert len(schedule.working_day_ends) == 14
    assert schedule.remind_at == utc(2026, 11, 20, 9)  # Friday, the last working day before


def test_until_the_day_time_counts_from() -> None:
    schedule = plan(utc(2026, 11, 7, 10), until=date(2026, 11, 9))  # received Saturday, until Monday
    assert schedule.due_date == date(2026, 11, 9)
    assert schedule.working_day_ends == []


@pytest.mark.parametrize(
    ("received_at", "until"),
    [
        (utc(2026, 11, 2, 10), date(2026, 10, 30)),
        (utc(2026, 11, 7, 10), date(2026, 11, 6)),  # before a Saturday receipt
    ],
)
def test_until_before_the_day_of_receipt_is_refused(received_at: datetime, until: date) -> None:
    with pytest.raises(ValueError, match="is before the day the time counts from"):
        plan(received_at, until=until)


def test_until_the_day_of_receipt_on_a_weekend_runs_out_that_day() -> None:
    """Due "today" on a Saturday: no working day in between, the time ends at midnight (issue 9)."""
    schedule = plan(utc(2026, 11, 7, 10), until=date(2026, 11, 7))
    assert schedule.due_date == schedule.counts_from == date(2026, 11, 7)
    assert schedule.working_day_ends == []


@pytest.mark.parametrize("kwargs", [{}, {"working_days": 3, "until": date(2026, 11, 20)}])
def test_exactly_one_of_working_days_and_until(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        plan(utc(2026, 11, 2, 10), **kwargs)


# --- reminders -------------------------------------------------------------------------------------------


def test_reminder_on_the_morning_of_the_due_day() -> None:
    assert plan(utc(2026, 11, 2, 10), working_days=5).remind_at == utc(2026, 11, 9, 9)  # GMT
    assert plan(utc(2026, 7, 6, 9), working_days=2).remind_at == utc(2026, 7, 8, 8)  # BST
    assert plan(utc(2026, 11, 2, 10), working_days=5, reminder_hour=14).remind_at == utc(2026, 11, 9, 14)


def test_reminder_lead_of_two_working_days() -> None:
    assert plan(utc(2026, 7, 6, 9), working_days=2, reminder_lead_working_days=2).remind_at == utc(
        2026, 7, 7, 8
    )


def test_reminder_when_the_due_day_is_preceded_by_holidays() -> None:
    # Due Tuesday 29 December 2026; the working day before it is Thursday 24 December.
    assert plan(utc(2026, 12, 18, 10), working_days=5, reminder_lead_working_days=2).remind_at == utc(
        2026, 12, 24, 9
    )
    # Due on Boxing Day (observed), not a working day: remind on Thursday 24 December.
    assert plan(utc(2026, 12, 18, 10), until=date(2026, 12, 28)).remind_at == utc(2026, 12, 24, 9)
    # Due Tuesday 7 April 2026, after Easter: a lead of 2 reminds on Thursday 2 April.
    schedule = plan(utc(2026, 3, 30, 9), working_days=4, reminder_lead_working_days=2)
    assert schedule.due_date == date(2026, 4, 7)
    assert schedule.remind_at == utc(2026, 4, 2, 8)


def test_no_reminder_with_zero_lead() -> None:
    assert plan(utc(2026, 11, 2, 10), working_days=5, reminder_lead_working_days=0).remind_at is None


def test_no_reminder_before_receipt() -> None:
    received = utc(2026, 11, 9, 10)  # Monday 10:00 GMT, after the 09:00 reminder hour
    assert plan(received, working_days=0).remind_at is None
    assert plan(received, working_days=1, reminder_lead_working_days=2).remind_at is None
    assert plan(received, working_days=1).remind_at == utc(2026, 11, 10, 9)
    assert plan(utc(2026, 11, 9, 9), working_days=0).remind_at is None  # exactly at receipt
    assert plan(utc(2026, 11, 9, 8, 59), working_days=0).remind_at == utc(2026, 11, 9, 9)
    # Received on a Saturday, a lead reaching back before Monday would remind on the Friday before.
    assert plan(utc(2026, 11, 7, 10), working_days=0, reminder_lead_working_days=2).remind_at is None


# --- clock changes ----------------------------------------------------------------------------------------


def test_deadline_spanning_the_end_of_summer_time_2026() -> None:
    schedule = plan(utc(2026, 10, 22, 10), working_days=3)  # Thursday 11:00 BST; clocks go back Sun 25th
    assert schedule.due_date == date(2026, 10, 27)
    assert schedule.due_at == utc(2026, 10, 28)  # 00:00 GMT
    assert schedule.working_day_ends == [utc(2026, 10, 23, 23), utc(2026, 10, 27), utc(2026, 10, 28)]
    assert schedule.remind_at == utc(2026, 10, 27, 9)


def test_deadline_in_summer_time_ends_at_2300_utc() -> None:
    schedule = plan(utc(2026, 6, 15, 9), working_days=3)  # Monday
    assert schedule.due_date == date(2026, 6, 18)
    assert schedule.due_at == utc(2026, 6, 18, 23)
    assert_utc(schedule.due_at)


def test_deadline_spanning_the_start_of_summer_time_2026() -> None:
    schedule = plan(utc(2026, 3, 27, 10), working_days=1)  # Friday GMT; clocks go forward Sun 29th
    assert schedule.due_date == date(2026, 3, 30)
    assert schedule.due_at == utc(2026, 3, 30, 23)
    assert schedule.remind_at == utc(2026, 3, 30, 8)
