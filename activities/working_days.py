"""The working-day calendar of an English local authority, and the placing of deadlines on it.

Pure and deterministic: no I/O, no clock. A working day is a Europe/London date that is not a Saturday or
Sunday, not an England-and-Wales bank holiday (from the ``holidays`` package, substitute days such as
"Boxing Day (observed)" included) and not one of the authority's closure days.

A deadline of N working days is the *end* of the Nth working day after receipt. The day of receipt (day 0,
``counts_from``) is the London date of the received instant, moved on to the next working day if it is not
one. Time that begins when an earlier deadline passes (``receipt_day_counts``: a stage entered because the
last one ran out, at the London midnight ending its last day) has that instant's working day as its first
day, so a ladder of stages that time out one after another loses no day between them.

Every instant returned is timezone-aware UTC; London wall-clock times are converted through zoneinfo, so
British Summer Time is handled by the tz database rather than by fixed offsets.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from schemas.schedule import Schedule, ScheduleRequest

__all__ = [
    "LONDON",
    "WorkingDayCalendar",
    "end_of_day",
    "local_time",
    "london_date",
    "long_date",
    "plan_schedule",
]

LONDON: ZoneInfo = ZoneInfo("Europe/London")

_ONE_DAY = timedelta(days=1)
_WEEKEND = {5: "Saturday", 6: "Sunday"}
_CLOSURE = "authority closure day"


@functools.cache
def _bank_holidays_of(year: int) -> dict[date, str]:
    """England-and-Wales bank holidays of ``year`` (substitute days included), by date. Read only."""
    table = holidays.country_holidays("GB", subdiv="ENG", years=year, language="en_GB")
    return {day: "; ".join(table.get_list(day)) for day in table}


class WorkingDayCalendar:
    """Working days in England: weekdays that are neither bank holidays nor authority closure days.

    Bank holidays are looked up lazily, one calendar year at a time, and cached for the process, so
    construction is cheap.
    """

    def __init__(self, closure_days: Iterable[date] = ()) -> None:
        self._closure_days: frozenset[date] = frozenset(closure_days)

    def bank_holiday(self, day: date) -> str | None:
        """The name of the bank holiday on ``day`` (e.g. "Boxing Day (observed)"), or None."""
        return _bank_holidays_of(day.year).get(day)

    def why_not_working(self, day: date) -> str | None:
        """Why ``day`` is not a working day, or None if it is one.

        A bank holiday's name comes first (so Saturday 25 December 2027 is "Christmas Day"), then the
        weekday ("Saturday", "Sunday"), then "authority closure day".
        """
        name = self.bank_holiday(day)
        if name is not None:
            return name
        weekend = _WEEKEND.get(day.weekday())
        if weekend is not None:
            return weekend
        if day in self._closure_days:
            return _CLOSURE
        return None

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        if day.weekday() in _WEEKEND or day in self._closure_days:
            return False
        return self.bank_holiday(day) is None

    def next_working_day(self, day: date) -> date:
        """The first working day on or after ``day``."""
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def previous_working_day(self, day: date) -> date:
        """The last working day on or before ``day``."""
        while not self.is_working_day(day):
            day -= _ONE_DAY
        return day

    def add_working_days(self, start: date, n: int) -> date:
        """The Nth working day after ``start``, which is day 0.

        A ``start`` that is not a working day is first moved on to the next working day, so
        ``add_working_days(start, 0)`` is ``next_working_day(start)``.
        """
        if n < 0:
            raise ValueError(f"the number of working days must not be negative (got {n})")
        day = self.next_working_day(start)
        for _ in range(n):
            day = self.next_working_day(day + _ONE_DAY)
        return day

    def subtract_working_days(self, start: date, n: int) -> date:
        """The Nth working day before ``start``, which is day 0.

        A ``start`` that is not a working day is first moved back to the previous working day.
        """
        if n < 0:
            raise ValueError(f"the number of working days must not be negative (got {n})")
        day = self.previous_working_day(start)
        for _ in range(n):
            day = self.previous_working_day(day - _ONE_DAY)
        return day

    def working_days_between(self, after: date, through: date) -> list[date]:
        """The working days ``d`` with ``after < d <= through``, in order (empty if ``through <= after``)."""
        days: list[date] = []
        day = after + _ONE_DAY
        while day <= through:
            if self.is_working_day(day):
                days.append(day)
            day += _ONE_DAY
        return days


def _require_aware(instant: datetime, what: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {instant.isoformat()})")


def london_date(instant: datetime) -> date:
    """The Europe/London calendar date of a timezone-aware instant."""
    _require_aware(instant, "the instant")
    return instant.astimezone(LONDON).date()


def local_time(day: date, hour: int) -> datetime:
    """The UTC instant at which London wall clocks show ``hour``:00 on ``day``.

    A wall-clock time skipped or repeated by a clock change (01:00-02:00 on the last Sunday of March or
    October, never a working day) resolves as zoneinfo does with ``fold=0``: the pre-transition offset.
    """
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be between 0 and 23 (got {hour})")
    return datetime.combine(day, time(hour), tzinfo=LONDON).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """The UTC instant at which London ``day`` ends: local midnight at the start of the next day."""
    return local_time(day + _ONE_DAY, 0)


def long_date(value: date | datetime | str | None) -> str:
    """``Tuesday 29 December 2026`` (a datetime is taken as it is; ISO strings are accepted)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return f"{value:%A} {value.day} {value:%B %Y}"


MAX_SPAN_DAYS = 800
"""The longest deadline the calendar places: past it a request is refused, not computed (a date near the
year 9999 overflows, and one centuries ahead makes a schedule of megabytes). The boundary allows dates up
to a year ahead; the formal process's total limit is 20 working days."""


def plan_schedule(request: ScheduleRequest) -> Schedule:
    """Place a stage's deadline on the working-day calendar.

    - ``counts_from``: the London date of ``received_at``, moved on to the next working day if need be;
      with ``receipt_day_counts``, the working day before that one (which is then the first day counted).
    - ``due_date``: ``working_days`` working days after ``counts_from`` (``counts_from`` itself for 0),
      or the fixed ``until`` date, which must not be before ``counts_from``.
    - ``due_at``: the end of ``due_date`` (London midnight), in UTC.
    - ``working_day_ends``: the end of every working day after ``counts_from`` up to ``due_date``.
    - ``remind_at``: ``reminder_hour`` London time on the working day ``reminder_lead_working_days - 1``
      working days before the last working day on or before ``due_date``; None when the lead is 0 or
      the instant is not after ``received_at``.

    An ``until`` on or after the day of receipt but before ``counts_from`` (due "today", on a weekend)
    runs out at the end of that day.

    Raises ValueError for a naive ``received_at``, for anything but exactly one of ``working_days`` and
    ``until``, for an ``until`` before the day of receipt, for ``receipt_day_counts`` with 0 working days
    (the time would end before it began), and for a deadline more than ``MAX_SPAN_DAYS`` after
    ``counts_from``.

    A request in ``working_hours`` is placed by ``activities.working_hours`` (which builds on this module).
    """
    if request.working_hours is not None:
        from activities.working_hours import plan_hours_schedule

        return plan_hours_schedule(request)
    _require_aware(request.received_at, "received_at")
    if (request.working_days is None) == (request.until is None):
        raise ValueError("exactly one of working_days and until must be given")
    if request.receipt_day_counts and request.working_days == 0:
        raise ValueError("time whose first day is the day of receipt needs at least 1 working day")

    calendar = WorkingDayCalendar(request.closure_days)
    received_at = request.received_at.astimezone(UTC)
    received_on = london_date(received_at)
    counts_from = calendar.next_working_day(received_on)
    if request.receipt_day_counts:
        counts_from = calendar.previous_working_day(counts_from - _ONE_DAY)

    if request.until is not None:
        if request.until < received_on:
            raise ValueError(
                f"until ({request.until.isoformat()}) is before the day the time counts from "
                f"({counts_from.isoformat()}, for receipt on {received_on.isoformat()} London time)"
            )
        # A date on or after receipt but before the next working day (due "today", a Saturday): the
        # time runs out at the end of that day, with no working day in between.
        counts_from = min(counts_from, request.until)
        due_date = request.until
    else:
        assert request.working_days is not None
        due_date = calendar.add_working_days(counts_from, request.working_days)

    if (due_date - counts_from).days > MAX_SPAN_DAYS:
        raise ValueError(
            f"the deadline {due_date.isoformat()} is more than {MAX_SPAN_DAYS} days after the time counts "
            f"from ({counts_from.isoformat()}): give a nearer date or fewer working days"
        )
    remind_at: datetime | None = None
    lead = request.reminder_lead_working_days
    if lead > 0:
        remind_day = calendar.subtract_working_days(due_date, lead - 1)
        candidate = local_time(remind_day, request.reminder_hour)
        if candidate > received_at:
            remind_at = candidate

    return Schedule(
        received_at=received_at,
        counts_from=counts_from,
        due_date=due_date,
        due_at=end_of_day(due_date),
        remind_at=remind_at,
        working_day_ends=[end_of_day(day) for day in calendar.working_days_between(counts_from, due_date)],
    )
