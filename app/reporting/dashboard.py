"""The supervisors' dashboard: outstanding escalations at a glance, from the read model ``escalate list``
uses (the ``escalations`` state rows, newest run of each id), in a handful of grouped queries whatever the
number of escalations (``app.reporting.queries``).

* counts of outstanding escalations by authority, team, track, stage, status and category, each with how
  many are overdue (a stage deadline passed), breached (the total limit passed) and stalled;
* one page of them, breached first, then overdue, then stalled, then by deadline;
* counts per manager: the people the directory gives the roles holding each escalation now;
* the early warning: escalations likely to breach, whose working days left before the total limit are
  fewer than the current stage's days left plus the next stage's allowance (one more climb would pass
  it), or fewer than the current stage's days left (it passes the limit even if answered on time);
* where deadlines pass most often: stage deadlines passed against stages entered over the last 12
  months, by stage and by team.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from activities.working_days import london_date
from app.identity import Person
from app.reporting import queries
from app.reporting.days import protocol_of, stage_name, stages_of, working_days
from app.reporting.figures import authority_label, track_label
from app.reporting.queries import Filters, Scope

PAGE_SIZE = 50
AT_RISK_SHOWN = 25
HOTSPOTS_SHOWN = 8
HOTSPOT_DAYS = 365
FLAGS = ("overdue", "breached", "stalled")


class Group(BaseModel):
    key: str
    label: str
    count: int
    overdue: int
    breached: int
    stalled: int


class Row(BaseModel):
    escalation_id: str
    team: str
    track: str
    stage: str
    status: str
    category: str
    deadline: datetime | None
    due: date | None
    """The London day the deadline falls due (it runs to that day's end)."""
    working_days_left: int | None
    flags: list[str]
    held_by: str


class Manager(BaseModel):
    name: str
    role: str
    team: str
    count: int


class AtRisk(BaseModel):
    escalation_id: str
    team: str
    stage: str
    days_to_limit: int
    stage_days_left: int
    next_stage_days: int | None
    why: str


class Hotspot(BaseModel):
    label: str
    passed: int
    entered: int

    @property
    def rate(self) -> str:
        return f"{100 * self.passed / self.entered:.0f}%" if self.entered else "-"


class Dashboard(BaseModel):
    total: int
    overdue: int
    breached: int
    stalled: int
    groups: dict[str, list[Group]]
    rows: list[Row]
    page: int
    pages: int
    managers: list[Manager]
    at_risk: list[AtRisk]
    at_risk_total: int
    stage_hotspots: list[Hotspot]
    team_hotspots: list[Hotspot]
    choices: dict[str, list[tuple[str, str]]]


def _label(dimension: str, authority: str, track: str, value: str | None) -> str:
    if value is None or value == "":
        return "No team" if dimension == "team" else "-"
    if dimension == "authority":
        return authority_label(value)
    if dimension == "stage":
        return stage_name(authority, track, value)
    if dimension == "status":
        return value.replace("_", " ").capitalize()
    if dimension == "track":
        return track_label(authority, value)
    return value


def _groups(rows: Iterable[Any]) -> tuple[dict[str, list[Group]], Counter[str]]:
    totals: Counter[str] = Counter()
    dimensions = ("authority", "team", "track", "stage", "status", "category")
    folded: dict[str, dict[str, Group]] = {d: {} for d in dimensions}
    for authority, team, track, stage, status, category, count, overdue, breached, stalled in rows:
        figures = (int(count), int(overdue or 0), int(breached or 0), int(stalled or 0))
        totals.update(dict(zip(("total", "overdue", "breached", "stalled"), figures, strict=True)))
        values = (authority, team, track, stage, status, category)
        for dimension, value in zip(dimensions, values, strict=True):
            label = _label(dimension, str(authority), str(track), value)
            group = folded[dimension].setdefault(
                label,
                Group(
                    key="" if value is None else str(value),
                    label=label,
                    count=0,
                    overdue=0,
                    breached=0,
                    stalled=0,
                ),
            )
            group.count += figures[0]
            group.overdue += figures[1]
            group.breached += figures[2]
            group.stalled += figures[3]
    groups = {
        d: sorted(found.values(), key=lambda g: (-g.breached, -g.overdue, -g.count, g.label))
        for d, found in folded.items()
    }
    return groups, totals


def holders(people: Iterable[Person], authority: str, role: str, team: str | None) -> list[Person]:
    """Who the directory gives ``role`` for ``team`` (those holding it for the team, else authority-wide)."""
    mine = [p for p in people if p.authority == authority]
    for_team = [p for p in mine if any(h.role == role and h.team == team for h in p.holdings)]
    if for_team and team is not None:
        return for_team
    return [p for p in mine if any(h.role == role and h.team is None for h in p.holdings)]


def dashboard(
    engine: Engine,
    scope: Scope,
    filters: Filters,
    now: datetime,
    people: list[Person],
    page: int = 1,
) -> Dashboard:
    """The dashboard of ``scope`` under ``filters`` at ``now``."""
    since = now - timedelta(days=HOTSPOT_DAYS)
    with engine.connect() as conn:
        grouped = queries.open_groups(conn, scope, filters, now)
        groups, totals = _groups(grouped)
        pages = max(1, -(-totals["total"] // PAGE_SIZE))
        page = min(max(page, 1), pages)
        page_rows = queries.open_page(conn, scope, filters, now, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        held = queries.holder_groups(conn, scope, filters)
        candidates = queries.at_risk_candidates(conn, scope, filters)
        spots = queries.deadline_spots(conn, scope, since, now)
        unfiltered = grouped if filters == Filters() else queries.open_groups(conn, scope, Filters(), now)
    choices = _choices(unfiltered)
    today = london_date(now)
    rows = [_row(r, now, today) for r in page_rows]
    managers = _managers(held, people)
    at_risk = sorted(
        (a for a in (_risk(c, today) for c in candidates) if a is not None),
        key=lambda a: (a.days_to_limit - a.stage_days_left, a.days_to_limit, a.escalation_id),
    )
    stage_spots, team_spots = _hotspots(spots)
    return Dashboard(
        total=totals["total"],
        overdue=totals["overdue"],
        breached=totals["breached"],
        stalled=totals["stalled"],
        groups=groups,
        rows=rows,
        page=page,
        pages=pages,
        managers=managers,
        at_risk=at_risk[:AT_RISK_SHOWN],
        at_risk_total=len(at_risk),
        stage_hotspots=stage_spots,
        team_hotspots=team_spots,
        choices=_choice_labels(choices, scope),
    )


def _choices(grouped: Iterable[Any]) -> dict[str, list[str]]:
    """The values each filter can take among outstanding escalations (from the unfiltered groups)."""
    found: dict[str, set[str]] = {name: set() for name in ("team", "track", "stage", "status", "category")}
    for _authority, team, track, stage, status, category, *_ in grouped:
        for name, value in (
            ("team", team),
            ("track", track),
            ("stage", stage),
            ("status", status),
            ("category", category),
        ):
            if value:
                found[name].add(str(value))
    return {name: sorted(values) for name, values in found.items()}


def role_name(authority: str, role: str) -> str:
    """The role's name in the authority's protocol (its key in words if the protocol lacks it)."""
    protocol = protocol_of(authority)
    return protocol.roles.get(role, role.replace("_", " ")) if protocol else role.replace("_", " ")


@lru_cache(maxsize=8192)
def due_date(deadline: datetime) -> date:
    """The London day a deadline falls due (it is the end of that day); cached: deadlines repeat."""
    return london_date(deadline - timedelta(microseconds=1))


def _row(r: Any, now: datetime, today: date) -> Row:
    (
        escalation_id,
        authority,
        team,
        track,
        stage,
        stage_label,
        status,
        category,
        deadline,
        _total,
        flags,
        held_by,
        _raised,
    ) = r
    shown = [str(f) for f in (flags or []) if f in FLAGS]
    if deadline is not None and deadline < now and "overdue" not in shown:
        shown.append("overdue")
    left = None
    if deadline is not None and deadline >= now:
        left = working_days(authority).between(today, due_date(deadline))
    return Row(
        escalation_id=str(escalation_id),
        team=str(team or "No team"),
        track=_label("track", authority, track, track),
        stage=str(stage_label or stage),
        status=_label("status", authority, track, str(status)),
        category=str(category),
        deadline=deadline,
        due=due_date(deadline) if deadline is not None else None,
        working_days_left=left,
        flags=shown,
        held_by=", ".join(role_name(authority, str(h)) for h in (held_by or [])),
    )


def _managers(held: list[Any], people: list[Person]) -> list[Manager]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for authority, team, roles_json, count in held:
        roles = json.loads(str(roles_json)) if roles_json else []
        for role in roles:
            found = holders(people, str(authority), str(role), team)
            role_label = role_name(str(authority), str(role))
            team_label = str(team or "No team")
            if not found:
                counts[(f"Nobody holds {role_label}", role_label, team_label)] += int(count)
            for person in found:
                counts[(person.name, role_label, team_label)] += int(count)
    return [
        Manager(name=n, role=r, team=t, count=c)
        for (n, r, t), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _risk(c: Any, today: date) -> AtRisk | None:
    escalation_id, authority, team, track, stage, stage_label, deadline, total_due = c
    days = working_days(authority)
    to_limit = days.between(today, total_due)
    stage_left = days.between(today, due_date(deadline)) if deadline is not None else 0
    ladder = stages_of(authority, track)
    keys = [k for k, _, _ in ladder]
    index = keys.index(stage) if stage in keys else None
    following = ladder[index + 1] if index is not None and index + 1 < len(ladder) else None
    next_days = following[2] if following else None
    if stage_left > to_limit:
        why = "passes the total limit even if answered by this stage's deadline"
    elif following is not None and next_days is not None and stage_left + next_days > to_limit:
        why = f"passes the total limit if escalated to {following[1]}"
    else:
        return None
    return AtRisk(
        escalation_id=str(escalation_id),
        team=str(team or "No team"),
        stage=str(stage_label or stage),
        days_to_limit=to_limit,
        stage_days_left=stage_left,
        next_stage_days=next_days,
        why=why,
    )


def _hotspots(spots: list[Any]) -> tuple[list[Hotspot], list[Hotspot]]:
    stages: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    teams: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for authority, track, stage, team, kind, count in spots:
        label = f"{_label('track', authority, track, track)}: {stage_name(authority, track, stage)}"
        index = 0 if kind == "deadline_passed" else 1
        stages[label][index] += int(count)
        teams[str(team or "No team")][index] += int(count)

    def top(found: dict[str, list[int]]) -> list[Hotspot]:
        spots_ = [Hotspot(label=k, passed=v[0], entered=v[1]) for k, v in found.items() if v[0]]
        return sorted(spots_, key=lambda h: (-h.passed, h.label))[:HOTSPOTS_SHOWN]

    return top(stages), top(teams)


def _choice_labels(choices: dict[str, list[str]], scope: Scope) -> dict[str, list[tuple[str, str]]]:
    authority = scope.authorities[0] if scope.authorities and len(scope.authorities) == 1 else ""
    names = _stage_names(authority)
    labelled: dict[str, list[tuple[str, str]]] = {}
    for name, values in choices.items():
        if name == "stage":
            labelled[name] = sorted({(v, names.get(v, v)) for v in values}, key=lambda kv: kv[1])
        elif name in ("status", "track"):
            labelled[name] = [(v, _label(name, authority, v, v)) for v in values]
        else:
            labelled[name] = [(v, v) for v in values]
    labelled["flag"] = [(f, f.capitalize()) for f in FLAGS]
    return labelled


def _stage_names(authority: str) -> dict[str, str]:
    protocol = protocol_of(authority) if authority else None
    return {s.key: s.name for t in (protocol.tracks if protocol else []) for s in t.stages}
