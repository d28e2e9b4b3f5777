"""Working days counted fast: for reports over hundreds of thousands of escalations, one subtraction each.

``WorkingDays(authority).between(a, b)`` is the number of working days ``d`` with ``a < d <= b``, as the
workflow counts a stage's time (the day of receipt does not count), from the authority's calendar (bank
holidays and its closure days); a cumulative count per day is built once per authority and year span.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

from activities.working_days import LONDON, WorkingDayCalendar
from protocols import ProtocolError, load_protocol
from schemas.protocol import Protocol

_ORIGIN = date(1999, 12, 31)


@cache
def protocol_of(authority: str) -> Protocol | None:
    """The authority's protocol, or None when its file no longer loads (its rows still count)."""
    try:
        return load_protocol(authority)
    except ProtocolError:
        return None


@cache
def _summer_time(year: int) -> tuple[datetime, datetime]:
    """The UTC instants British Summer Time starts and ends in ``year``, found from the zone database."""
    edges: list[datetime] = []
    hour = datetime(year, 1, 1, tzinfo=UTC)
    offset = hour.astimezone(LONDON).utcoffset()
    while hour.year == year and len(edges) < 2:
        hour += timedelta(hours=1)
        now = hour.astimezone(LONDON).utcoffset()
        if now != offset:
            edges.append(hour)
            offset = now
    if len(edges) != 2:
        raise AssertionError(f"no summer time found in {year}")
    return edges[0], edges[1]


def london_day(instant: datetime) -> date:
    """``london_date`` for many instants: the London day of an aware instant from the year's summer time
    edges (an addition, not a zone lookup each time)."""
    utc = instant.astimezone(UTC) if instant.tzinfo is not UTC else instant
    starts, ends = _summer_time(utc.year)
    return (utc + timedelta(hours=1)).date() if starts <= utc < ends else utc.date()


class WorkingDays:
    """The authority's working days as a running count from 1 January 2000."""

    def __init__(self, authority: str) -> None:
        protocol = protocol_of(authority)
        self.calendar = WorkingDayCalendar(protocol.closure_days if protocol else ())
        self._running: list[int] = [0]

    def _upto(self, day: date) -> int:
        index = (day - _ORIGIN).days
        if index < 0:
            raise ValueError(f"{day} is before the year 2000: no report counts so far back")
        while len(self._running) <= index:
            d = _ORIGIN + timedelta(days=len(self._running))
            self._running.append(self._running[-1] + (1 if self.calendar.is_working_day(d) else 0))
        return self._running[index]

    def between(self, after: date, through: date) -> int:
        """Working days after ``after`` up to and including ``through`` (0 when ``through <= after``)."""
        if through <= after:
            return 0
        return self._upto(through) - self._upto(after)

    def taken(self, start: datetime, end: datetime) -> int:
        """Working days from the instant ``start`` to the instant ``end`` (London dates; the first day
        does not count)."""
        return self.between(london_day(start), london_day(end))


@cache
def working_days(authority: str) -> WorkingDays:
    return WorkingDays(authority)


def stages_of(authority: str, track: str) -> list[tuple[str, str, int | None]]:
    """The track's stages in order as (key, name, response working days); empty when unknown."""
    protocol = protocol_of(authority)
    if protocol is None:
        return []
    try:
        stages = protocol.track(track).stages
    except KeyError:
        return []
    return [(s.key, s.name, s.response_working_days) for s in stages]


def stage_name(authority: str, track: str, stage: str) -> str:
    for key, name, _ in stages_of(authority, track):
        if key == stage:
            return name
    return stage


def stage_position(authority: str, track: str, stage: str) -> int | None:
    """The stage's place in its track, from 1; None when the protocol no longer has it."""
    for number, (key, _, _) in enumerate(stages_of(authority, track), start=1):
        if key == stage:
            return number
    return None
