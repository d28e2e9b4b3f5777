"""A period's report: the figures councils report on their escalations (``report_for``).

Every figure is counted from the record store in a few set-based queries (``app.reporting.queries``):

* **raised** in the period (its ``raised`` event), by category, track, team and child's status (as given
  at raise); **collective alerts** are the raised escalations flagged ``collective``;
* **resolved** (its ``resolved`` event in the period), by the stage it was resolved at; **escalated**,
  **bypassed**, **extended** (extensions approved), **referred to CAFCASS**, **withdrawn**, **breaches**
  (the total limit passed), **stage deadlines passed** and **compliments** (good practice notes): events
  of that kind in the period;
* **time to resolution** of those resolved in the period: working days from the day raised to the day
  resolved (the day raised does not count), median and 90th percentile (nearest rank: the smallest value
  at least 90% of the values are at or below);
* **within the stage timescales**: resolved with no stage deadline passed before; **within the total
  limit**: resolved with no breach before;
* **outstanding at the end**: raised before the period ended and not closed by then, with their age in
  working days at the period's last day;
* **trends**: raised, resolved, breaches and outstanding at the end of each of the previous periods.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import Engine

from activities.working_days import london_date
from app.reporting import queries
from app.reporting.days import london_day, protocol_of, stage_name, stage_position, working_days
from app.reporting.periods import Period
from app.reporting.queries import Scope

TREND_PERIODS = 4
"""How many earlier periods the trend compares with."""
AGE_BANDS = ((0, 5), (6, 20), (21, 40), (41, 65), (66, None))
"""Outstanding escalations' age bands in working days (the last open-ended)."""


class Count(BaseModel):
    label: str
    count: int


class TrendPoint(BaseModel):
    period: str
    raised: int
    resolved: int
    breaches: int
    outstanding_at_end: int


class Report(BaseModel):
    """A period's figures for one authority, some teams of one, or every authority."""

    title: str
    period: str
    period_key: str
    first_day: date
    last_day: date
    authorities: list[str]
    raised: int
    collective_alerts: int
    raised_by_category: list[Count]
    raised_by_track: list[Count]
    raised_by_team: list[Count]
    raised_by_child_status: list[Count]
    resolved: int
    resolved_by_stage: list[Count]
    escalated: int
    bypassed: int
    extended: int
    extensions_declined: int
    referred_to_cafcass: int
    withdrawn: int
    exhausted: int
    breaches: int
    stage_deadlines_passed: int
    compliments: int
    median_working_days: float | None
    p90_working_days: int | None
    resolved_within_stage_timescales: int
    resolved_within_total_limit: int
    outstanding_at_end: int
    outstanding_by_age: list[Count]
    outstanding_median_age: float | None
    outstanding_oldest_age: int | None
    trend: list[TrendPoint]

    def share(self, part: int) -> str:
        """``part`` as a percentage of those resolved (``-`` when none were)."""
        return f"{100 * part / self.resolved:.0f}%" if self.resolved else "-"


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of the values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def authority_label(authority: str) -> str:
    protocol = protocol_of(authority)
    return protocol.authority if protocol else authority


def track_label(authority: str, track: str) -> str:
    protocol = protocol_of(authority)
    try:
        name = protocol.track(track).name if protocol else track
    except KeyError:
        name = track
    return name


def _status_label(authority: str, status: str | None) -> str:
    if not status:
        return "Not given"
    protocol = protocol_of(authority)
    return protocol.child_statuses.get(status, status) if protocol else status


def _counts(counter: Counter[str]) -> list[Count]:
    return [Count(label=k, count=v) for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _age_band(age: int) -> str:
    for low, high in AGE_BANDS:
        if high is None:
            return f"{low} or more working days"
        if low <= age <= high:
            return f"{low} to {high} working days"
    raise AssertionError(age)


def report_for(engine: Engine, scope: Scope, period: Period, *, title: str | None = None) -> Report:
    """The period's figures for ``scope``, and the trend over the ``TREND_PERIODS`` before it."""
    start, end = period.start, period.end
    several = scope.authorities is None or len(scope.authorities) > 1
    with engine.connect() as conn:
        raised_rows = queries.raised_in(conn, scope, start, end)
        event_rows = queries.events_in(conn, scope, start, end)
        resolutions = queries.resolutions_in(conn, scope, start, end)
        outstanding = queries.outstanding_at(conn, scope, end)
        trend = _trend(conn, scope, [*period.previous(TREND_PERIODS), period])

    def prefix(authority: str) -> str:
        return f"{authority_label(authority)}: " if several else ""

    by = {name: Counter[str]() for name in ("category", "track", "team", "status")}
    raised = collective = 0
    authorities: set[str] = set()
    for authority, track, category, team, status, is_collective, count in raised_rows:
        authorities.add(authority)
        raised += count
        collective += count if is_collective else 0
        by["category"][category] += count
        by["track"][prefix(authority) + track_label(authority, track)] += count
        by["team"][prefix(authority) + (team or "No team")] += count
        by["status"][_status_label(authority, status)] += count

    kinds: Counter[str] = Counter()
    at_stage: Counter[tuple[str, str, str]] = Counter()
    declined = 0
    for authority, track, stage, kind, approved, _team, count in event_rows:
        authorities.add(authority)
        if kind == "extension_decided":
            if approved:
                kinds["extended"] += count
            else:
                declined += count
            continue
        kinds[kind] += count
        if kind == "resolved":
            at_stage[(authority, track, stage)] += count
    resolved_by_stage = [
        Count(
            label=f"{prefix(a)}{track_label(a, t)}: {stage_name(a, t, s)}",
            count=n,
        )
        for (a, t, s), n in sorted(
            at_stage.items(), key=lambda kv: (kv[0][0], kv[0][1], stage_position(*kv[0]) or 99, kv[0][2])
        )
    ]

    taken = [working_days(a).taken(raised_at, resolved_at) for a, raised_at, resolved_at, _, _ in resolutions]
    within_stage = sum(1 for *_, overdue, _breach in resolutions if not overdue)
    within_total = sum(1 for *_, breach in resolutions if not breach)

    last_day = period.last
    ages = [working_days(a).between(london_day(raised_at), last_day) for a, raised_at in outstanding]
    bands: Counter[str] = Counter(_age_band(age) for age in ages)
    band_order = [_age_band(low) for low, _ in AGE_BANDS]
    names = sorted(authorities if scope.authorities is None else scope.authorities)
    return Report(
        title=title or _title(scope),
        period=period.label,
        period_key=period.key,
        first_day=period.first,
        last_day=period.last,
        authorities=[authority_label(a) for a in names],
        raised=raised,
        collective_alerts=collective,
        raised_by_category=_counts(by["category"]),
        raised_by_track=_counts(by["track"]),
        raised_by_team=_counts(by["team"]),
        raised_by_child_status=_counts(by["status"]),
        resolved=len(resolutions),
        resolved_by_stage=resolved_by_stage,
        escalated=kinds["escalated"],
        bypassed=kinds["bypassed"],
        extended=kinds["extended"],
        extensions_declined=declined,
        referred_to_cafcass=kinds["cafcass_referral"],
        withdrawn=kinds["withdrawn"],
        exhausted=kinds["exhausted"],
        breaches=kinds["breached"],
        stage_deadlines_passed=kinds["deadline_passed"],
        compliments=kinds[queries.GOOD_PRACTICE_KIND],
        median_working_days=float(statistics.median(taken)) if taken else None,
        p90_working_days=percentile(taken, 0.9),
        resolved_within_stage_timescales=within_stage,
        resolved_within_total_limit=within_total,
        outstanding_at_end=len(outstanding),
        outstanding_by_age=[Count(label=b, count=bands[b]) for b in band_order],
        outstanding_median_age=float(statistics.median(ages)) if ages else None,
        outstanding_oldest_age=max(ages) if ages else None,
        trend=trend,
    )


def _trend(conn: queries.Connection, scope: Scope, periods: list[Period]) -> list[TrendPoint]:
    counts = queries.headline_counts(conn, scope, [(p.start, p.end) for p in periods])
    still = queries.outstanding_counts(conn, scope, [p.end for p in periods])
    return [
        TrendPoint(
            period=p.label,
            raised=c.get("raised", 0),
            resolved=c.get("resolved", 0),
            breaches=c.get("breached", 0),
            outstanding_at_end=n,
        )
        for p, c, n in zip(periods, counts, still, strict=True)
    ]


def _title(scope: Scope) -> str:
    if scope.authorities is None:
        where = "All authorities"
    else:
        where = ", ".join(authority_label(a) for a in scope.authorities)
    if scope.teams is not None:
        where += " (" + ", ".join(sorted(scope.teams)) + ")"
    return f"Escalations report: {where}"


def now_period_default(now: datetime) -> str:
    """The quarter ``now`` falls in (London time), as a period key."""
    day = london_date(now)
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
