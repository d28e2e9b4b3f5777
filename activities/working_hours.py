"""Deadlines in working hours (``activities.working_days.plan_schedule`` sends requests in hours here).

Pure and deterministic, like ``activities.working_days``. Working hours are the authority's hours (say
09:00-17:00) on working days (weekdays that are neither bank holidays nor closure days), in London time:
each day's window is converted to UTC through zoneinfo, so British Summer Time needs no special case.

A deadline of N working hours ends at the instant the Nth working hour ends: received at 15:00 on a Friday
with 4 hours allowed (09:00-17:00), two run on Friday and two on Monday, so it ends at 11:00 on Monday (or
on Tuesday, if Monday is a bank holiday). Received outside working hours, the time starts when the next
working day starts. Counting is in minutes, so a time received at 10:20 ends at 14:20.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from activities.working_days import (
    LONDON,
    MAX_SPAN_DAYS,
    WorkingDayCalendar,
    london_date,
)
from schemas.schedule import Schedule, ScheduleRequest

__all__ = ["add_working_minutes", "plan_hours_schedule", "window"]

_ONE_DAY = timedelta(days=1)
DEFAULT_DAY = (time(9, 0), time(17, 0))


def window(day: date, starts: time, ends: time) -> tuple[datetime, datetime]:
    """The UTC instants at which London working hours start and end on ``day``."""
    return (
        datetime.combine(day, starts, tzinfo=LONDON).astimezone(UTC),
        datetime.combine(day, ends, tzinfo=LONDON).astimezone(UTC),
    )


def add_working_minutes(
    calendar: WorkingDayCalendar, start: datetime, minutes: int, starts: time, ends: time
) -> tuple[datetime, datetime]:
    """(when counting begins, when ``minutes`` working minutes after ``start`` have run).

    Counting begins at ``start`` if it falls in working hours on a working day, else when the next working
    day's hours start. ``minutes`` 0 gives that beginning twice."""
    cursor = start.astimezone(UTC)
    day = london_date(cursor)
    began: datetime | None = None
    while True:
        if (day - london_date(start)).days > MAX_SPAN_DAYS:
            raise ValueError(f"the deadline is more than {MAX_SPAN_DAYS} days away: give fewer working hours")
        if calendar.is_working_day(day):
            opens, closes = window(day, starts, ends)
            cursor = max(cursor, opens)
            if cursor < closes:
                began = began or cursor
                room = int((closes - cursor).total_seconds() // 60)
                if minutes <= room:
                    return began, cursor + timedelta(minutes=minutes)
                minutes -= room
        day += _ONE_DAY
        cursor = datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)


def plan_hours_schedule(request: ScheduleRequest) -> Schedule:
    """Place a deadline of ``request.working_hours`` working hours.

    - ``due_at``: the instant the last working hour ends; ``due_date``: its London date.
    - ``counts_from``: the London date on which counting begins (``received_at``, or the next working
      day's start if received outside working hours).
    - ``remind_at``: when ``reminder_lead_working_hours`` working hours remain (never more than half the
      time allowed, so a 1-hour time is reminded at half time); None with a lead of 0.
    - ``working_day_ends``: the end of the working hours of each working day after ``counts_from`` up to
      ``due_date``, so ``working_days_left`` counts the days still to come as for a days deadline.
    """
    if request.working_hours is None:
        raise ValueError("working_hours must be given for a deadline in working hours")
    if request.working_days is not None or request.until is not None:
        raise ValueError("give working_hours alone, not with working_days or until")
    if request.received_at.tzinfo is None or request.received_at.utcoffset() is None:
        raise ValueError(f"received_at must be timezone-aware (got naive {request.received_at.isoformat()})")
    starts = request.day_starts or DEFAULT_DAY[0]
    ends = request.day_ends or DEFAULT_DAY[1]
    if ends <= starts:
        raise ValueError(f"the working day must end ({ends:%H:%M}) after it starts ({starts:%H:%M})")
    calendar = WorkingDayCalendar(request.closure_days)
    total = request.working_hours * 60
    began, due_at = add_working_minutes(calendar, request.received_at, total, starts, ends)
    remind_at: datetime | None = None
    lead = min(request.reminder_lead_working_hours * 60, total // 2)
    if lead > 0:
        _, remind_at = add_working_minutes(calendar, request.received_at, total - lead, starts, ends)
    counts_from = london_date(began)
    due_date = london_date(due_at)
    return Schedule(
        received_at=request.received_at.astimezone(UTC),
        counts_from=counts_from,
        due_date=due_date,
        due_at=due_at,
        remind_at=remind_at,
        working_day_ends=[
            window(day, starts, ends)[1] for day in calendar.working_days_between(counts_from, due_date)
        ],
        working_hours=request.working_hours,
    )
