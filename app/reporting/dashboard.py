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
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine

from activities.working_days import london_date
from app.identity import Person
from app.reporting import queries
from app.reporting.days import stage_name, stages_of, working_days
from app.reporting.figures import authority_label
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
        from app.reporting.figures import _track_label

        return _track_label(authority, value)
    return value


def _groups(rows: Iterable[tuple[object, ...]]) -> tuple[dict[str, list[Group]], Counter[str]]:
    totals: Counter[str] = Counter()
    folded: dict[str, dict[str, list[object]]] = {
        d: {} for d in ("authority", "team", "track", "stage", "status", "category")
    }
    for authority, team, track, stage, status, category, count, overdue, breached, stalled in rows:
        values = {
            "authority": authority,
            "team": team,
            "track": track,
            "stage": stage,
            "status": status,
            "category": category,
        }
        totals.update(
            {"total": int(count), "overdue": int(overdue), "breached": int(breached), "stalled": int(stalled)}  # type: ignore[call-overload]
        )
        for dimension, value in values.items():
            label = _label(dimension, str(authority), str(track), value)  # type: ignore[arg-type]
            key = "" if value is None else str(value)
            slot = folded[dimension].setdefault(label, [key, 0, 0, 0, 0])
            for i, n in enumerate((count, overdue, breached, stalled), start=1):
                slot[i] = int(slot[i]) + int(n)  # type: ignore[call-overload]
    groups = {
        d: sorted(
            (
                Group(key=str(v[0]), label=label, count=int(v[1]), overdue=int(v[2]), breached=int(v[3]), stalled=int(v[4]))  # type: ignore[call-overload]
                for label, v in found.items()
            ),
            key=lambda g: (-g.breached, -g.overdue, -g.count, g.label),
        )
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
        choices = queries.choices(conn, scope)
    today = london_date(now)
    names = {p.id: p.name for p in people}
    rows = [_row(r, now, today) for r in page_rows]
    managers = _managers(held, people)
    at_risk = sorted(
        (a for a in (_risk(c, today) for c in candidates) if a is not None),
        key=lambda a: (a.days_to_limit - a.stage_days_left, a.days_to_limit, a.escalation_id),
    )
    stage_spots, team_spots = _hotspots(spots)
    del names
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


def _row(r: tuple[object, ...], now: datetime, today: object) -> Row:
    (escalation_id, authority, team, track, stage, stage_label, status, category, deadline, _total, flags,
     held_by, _raised) = r
    assert isinstance(authority, str) and isinstance(track, str)
    shown = [str(f) for f in (flags or []) if f in FLAGS]  # type: ignore[attr-defined]
    if isinstance(deadline, datetime) and deadline < now and "overdue" not in shown:
        shown.append("overdue")
    left = None
    if isinstance(deadline, datetime):
        left = working_days(authority).between(today, london_date(deadline - timedelta(microseconds=1)))  # type: ignore[arg-type]
    return Row(
        escalation_id=str(escalation_id),
        team=str(team or "No team"),
        track=_label("track", authority, track, track),
        stage=str(stage_label or stage),
        status=_label("status", authority, track, str(status)),
        category=str(category),
        deadline=deadline if isinstance(deadline, datetime) else None,
        working_days_left=left,
        flags=shown,
        held_by=", ".join(str(h).replace("_", " ") for h in (held_by or [])),  # type: ignore[attr-defined]
    )


def _managers(held: list[tuple[object, ...]], people: list[Person]) -> list[Manager]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for authority, team, roles_json, count in held:
        roles = json.loads(str(roles_json)) if roles_json else []
        for role in roles:
            found = holders(people, str(authority), str(role), team if isinstance(team, str) else None)
            role_label = str(role).replace("_", " ")
            if not found:
                counts[(f"Nobody holds {role_label}", role_label, str(team or "No team"))] += int(count)  # type: ignore[call-overload]
            for person in found:
                counts[(person.name, role_label, str(team or "No team"))] += int(count)  # type: ignore[call-overload]
    return [
        Manager(name=n, role=r, team=t, count=c)
        for (n, r, t), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _risk(c: tuple[object, ...], today: object) -> AtRisk | None:
    escalation_id, authority, team, track, stage, stage_label, deadline, total_due = c
    assert isinstance(authority, str) and isinstance(track, str) and isinstance(stage, str)
    days = working_days(authority)
    to_limit = days.between(today, total_due)  # type: ignore[arg-type]
    stage_left = (
        days.between(today, london_date(deadline - timedelta(microseconds=1)))  # type: ignore[arg-type]
        if isinstance(deadline, datetime)
        else 0
    )
    ladder = stages_of(authority, track)
    keys = [k for k, _, _ in ladder]
    index = keys.index(stage) if stage in keys else None
    following = ladder[index + 1] if index is not None and index + 1 < len(ladder) else None
    next_days = following[2] if following else None
    if stage_left > to_limit:
        why = "passes the total limit even if answered by this stage's deadline"
    elif next_days is not None and stage_left + next_days > to_limit:
        why = f"passes the total limit if escalated to {following[1] if following else 'the next stage'}"
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


def _hotspots(spots: list[tuple[object, ...]]) -> tuple[list[Hotspot], list[Hotspot]]:
    stages: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    teams: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for authority, track, stage, team, kind, count in spots:
        a, t, s = str(authority), str(track), str(stage)
        label = f"{_label('track', a, t, t)}: {stage_name(a, t, s)}"
        index = 0 if kind == "deadline_passed" else 1
        stages[label][index] += int(count)  # type: ignore[call-overload]
        teams[str(team or "No team")][index] += int(count)  # type: ignore[call-overload]

    def top(found: dict[str, list[int]]) -> list[Hotspot]:
        spots_ = [Hotspot(label=k, passed=v[0], entered=v[1]) for k, v in found.items() if v[0]]
        return sorted(spots_, key=lambda h: (-h.passed, h.label))[:HOTSPOTS_SHOWN]

    return top(stages), top(teams)


def _choice_labels(choices: dict[str, list[str]], scope: Scope) -> dict[str, list[tuple[str, str]]]:
    authority = scope.authorities[0] if scope.authorities and len(scope.authorities) == 1 else ""
    labelled: dict[str, list[tuple[str, str]]] = {}
    for name, values in choices.items():
        if name == "stage":
            labelled[name] = sorted({(v, _stage_choice(authority, v)) for v in values}, key=lambda kv: kv[1])
        elif name in ("status", "track"):
            labelled[name] = [(v, _label(name, authority, v, v)) for v in values]
        else:
            labelled[name] = [(v, v) for v in values]
    labelled["flag"] = [(f, f.capitalize()) for f in FLAGS]
    return labelled


def _stage_choice(authority: str, stage: str) -> str:
    protocol_stages = []
    from app.reporting.days import protocol_of

    protocol = protocol_of(authority) if authority else None
    for track in protocol.tracks if protocol else []:
        protocol_stages.extend((s.key, s.name) for s in track.stages)
    return next((name for key, name in protocol_stages if key == stage), stage)
