"""The SQL behind the dashboard and the reports: set-based reads of the record store, never one query per
escalation, on PostgreSQL or SQLite alike.

Two tables (``activities.db.record_models``): ``escalations``, one current-state row per escalation, the
read model ``escalate list`` reads; and ``escalation_events``, the append-only log. Period figures come
from the log (what happened between two instants, on the ``(authority, at)`` index); current figures from
the state rows. The dashboard shows each escalation id once, its newest run, as ``escalate list`` does;
a period report counts every run (an id used again after retention is another escalation).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from activities.db.record_models import EscalationEvent as Event
from activities.db.record_models import EscalationRecord as Record
from schemas.escalation import Flag, Status

CLOSED = tuple(s.value for s in Status if s.is_closed)
OPEN = tuple(s.value for s in Status if not s.is_closed)
GOOD_PRACTICE_KIND = "good_practice_noted"
"""A good practice note (compliment): an event of its own, its id in ``escalation_id``."""
COLLECTIVE_FLAG = Flag.COLLECTIVE.value
"""On an escalation's flags: a collective alert (about several children)."""

COUNTED_KINDS = (
    "resolved",
    "escalated",
    "bypassed",
    "extension_decided",
    "cafcass_referral",
    "breached",
    "deadline_passed",
    "withdrawn",
    "exhausted",
    GOOD_PRACTICE_KIND,
)


class Scope(BaseModel):
    """Whose escalations: some authorities (None: all), and within them some teams (None: every team)."""

    model_config = ConfigDict(frozen=True)

    authorities: tuple[str, ...] | None = None
    teams: frozenset[str] | None = None


def has_flag(flag: str) -> ColumnElement[bool]:
    """The state row's flags (a JSON list) hold ``flag``: a text match on the list, as ``escalate list``."""
    return cast(ColumnElement[bool], Record.flags.cast(String).contains(f'"{flag}"'))


_S = TypeVar("_S", bound=Select)


def _scoped_records(statement: _S, scope: Scope) -> _S:
    if scope.authorities is not None:
        statement = statement.where(Record.authority.in_(scope.authorities))
    if scope.teams is not None:
        statement = statement.where(Record.team.in_(sorted(scope.teams)))
    return statement


def _scoped_events(statement: _S, scope: Scope) -> _S:
    if scope.authorities is not None:
        statement = statement.where(Event.authority.in_(scope.authorities))
    return statement


def _same_run(event: Any = Event) -> ColumnElement[bool]:
    return and_(Record.escalation_id == event.escalation_id, Record.run_id == event.run_id)


def newest_run() -> ColumnElement[bool]:
    """Only the newest run of each escalation id (as ``starter.read_model.records_statement``)."""
    newer = aliased(Record)
    return ~exists().where(
        and_(newer.escalation_id == Record.escalation_id, newer.updated_at > Record.updated_at)
    )


# --- period figures (the event log) ------------------------------------------------------------------------


def raised_in(conn: Connection, scope: Scope, start: datetime, end: datetime) -> list[Any]:
    """Escalations raised in [start, end): (authority, track, category, team, child status, collective,
    count), one row per combination."""
    status = Event.data["child_status"].as_string()
    collective = has_flag(COLLECTIVE_FLAG)
    statement = (
        select(
            Event.authority,
            Event.track,
            Record.category,
            Record.team,
            status,
            collective,
            func.count(),
        )
        .join(Record, _same_run())
        .where(Event.kind == "raised", Event.at >= start, Event.at < end)
        .group_by(Event.authority, Event.track, Record.category, Record.team, status, collective)
    )
    return list(conn.execute(_scoped_records(_scoped_events(statement, scope), scope)).all())


def events_in(conn: Connection, scope: Scope, start: datetime, end: datetime) -> list[Any]:
    """Counted events in [start, end): (authority, track, stage, kind, approved, team, count).

    ``approved`` is the extension decision's (None for other kinds). A good practice note need not have a
    state row: it counts for its authority, and for a team scope only through a state row of that team.
    """
    approved = Event.data["approved"].as_boolean()
    approved_or_none = case((Event.kind == "extension_decided", approved), else_=literal(None, Boolean))
    statement = (
        select(
            Event.authority,
            Event.track,
            Event.stage,
            Event.kind,
            approved_or_none,
            Record.team,
            func.count(),
        )
        .outerjoin(Record, _same_run())
        .where(Event.kind.in_(COUNTED_KINDS), Event.at >= start, Event.at < end)
        .group_by(Event.authority, Event.track, Event.stage, Event.kind, approved_or_none, Record.team)
    )
    statement = _scoped_events(statement, scope)
    if scope.teams is not None:
        statement = statement.where(Record.team.in_(sorted(scope.teams)))
    return list(conn.execute(statement).all())


def resolutions_in(conn: Connection, scope: Scope, start: datetime, end: datetime) -> list[Any]:
    """Escalations resolved in [start, end): (authority, raised_at, resolved_at, a stage deadline passed
    before, breached before), one row each.

    Each run's first stage deadline passed and first breach come from one grouped pass over those events
    (a hash join), not a lookup per resolution."""
    first = select(
        Event.escalation_id,
        Event.run_id,
        func.min(case((Event.kind == "deadline_passed", Event.seq))).label("overdue_seq"),
        func.min(case((Event.kind == "breached", Event.seq))).label("breach_seq"),
    ).where(Event.kind.in_(("deadline_passed", "breached")))
    firsts = _scoped_events(first, scope).group_by(Event.escalation_id, Event.run_id).subquery()
    overdue = and_(firsts.c.overdue_seq.is_not(None), firsts.c.overdue_seq < Event.seq)
    breach = and_(firsts.c.breach_seq.is_not(None), firsts.c.breach_seq < Event.seq)
    statement = (
        select(Event.authority, Record.raised_at, Event.at, overdue, breach)
        .join(Record, _same_run())
        .outerjoin(
            firsts, and_(firsts.c.escalation_id == Event.escalation_id, firsts.c.run_id == Event.run_id)
        )
        .where(Event.kind == "resolved", Event.at >= start, Event.at < end)
    )
    return [
        (authority, raised_at, at, bool(was_overdue), bool(was_breached))
        for authority, raised_at, at, was_overdue, was_breached in conn.execute(
            _scoped_records(_scoped_events(statement, scope), scope)
        ).all()
    ]


def outstanding_at(conn: Connection, scope: Scope, end: datetime) -> list[Any]:
    """Escalations raised before ``end`` and not closed by then: (authority, raised_at), one row each."""
    closing = aliased(Event)
    closed = exists().where(
        closing.escalation_id == Record.escalation_id,
        closing.run_id == Record.run_id,
        closing.status.in_(CLOSED),
        closing.at < end,
    )
    statement = select(Record.authority, Record.raised_at).where(Record.raised_at < end, ~closed)
    return list(conn.execute(_scoped_records(statement, scope)).all())


def headline_counts(
    conn: Connection, scope: Scope, bounds: Sequence[tuple[datetime, datetime]]
) -> list[dict[str, int]]:
    """Raised, resolved and breached events in each [start, end) of ``bounds`` (consecutive periods, for
    trends), in one scan: for each period, kind -> count."""
    bucket = case(*((Event.at < end, index) for index, (_, end) in enumerate(bounds)), else_=len(bounds))
    statement = (
        select(Event.kind, bucket, func.count())
        .outerjoin(Record, _same_run())
        .where(
            Event.kind.in_(("raised", "resolved", "breached")),
            Event.at >= bounds[0][0],
            Event.at < bounds[-1][1],
        )
        .group_by(Event.kind, bucket)
    )
    statement = _scoped_events(statement, scope)
    if scope.teams is not None:
        statement = statement.where(Record.team.in_(sorted(scope.teams)))
    found: list[dict[str, int]] = [{} for _ in bounds]
    for kind, index, count in conn.execute(statement).all():
        if 0 <= int(index) < len(bounds):
            found[int(index)][str(kind)] = int(count)
    return found


def outstanding_counts(conn: Connection, scope: Scope, ends: Sequence[datetime]) -> list[int]:
    """How many escalations were raised before and not closed by each of ``ends``, in one scan."""
    closing = select(Event.escalation_id, Event.run_id, func.min(Event.at).label("closed_at")).where(
        Event.status.in_(CLOSED)
    )
    closing = _scoped_events(closing, scope).group_by(Event.escalation_id, Event.run_id)
    closed = closing.subquery()
    sums = [
        func.coalesce(
            func.sum(
                case(
                    (
                        and_(
                            Record.raised_at < end,
                            or_(closed.c.closed_at.is_(None), closed.c.closed_at >= end),
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        for end in ends
    ]
    statement = (
        select(*sums)
        .select_from(Record)
        .outerjoin(
            closed, and_(closed.c.escalation_id == Record.escalation_id, closed.c.run_id == Record.run_id)
        )
        .where(Record.raised_at < max(ends))
    )
    row = conn.execute(_scoped_records(statement, scope)).one()
    return [int(v) for v in row]


# --- current figures (the state rows) -----------------------------------------------------------------------


class Filters(BaseModel):
    """The dashboard's filters; each ANDed in SQL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: str | None = None
    track: str | None = None
    stage: str | None = None
    status: str | None = None
    category: str | None = None
    flag: str | None = None


def _open_rows(scope: Scope, filters: Filters, columns: Sequence[Any]) -> Select[Any]:
    statement = select(*columns).where(Record.status.in_(OPEN), newest_run())
    statement = _scoped_records(statement, scope)
    for name in ("team", "track", "stage", "status", "category"):
        value = getattr(filters, name)
        if value:
            statement = statement.where(getattr(Record, name) == value)
    if filters.flag:
        statement = statement.where(has_flag(filters.flag))
    return statement


def flag_count(flag: str) -> ColumnElement[int]:
    return func.sum(case((has_flag(flag), 1), else_=0))


def open_groups(conn: Connection, scope: Scope, filters: Filters, now: datetime) -> list[Any]:
    """Outstanding escalations grouped: (authority, team, track, stage, status, category, count, overdue,
    breached, stalled)."""
    overdue = func.sum(case((or_(has_flag("overdue"), Record.deadline < now), 1), else_=0))
    keys = (Record.authority, Record.team, Record.track, Record.stage, Record.status, Record.category)
    statement = _open_rows(
        scope, filters, [*keys, func.count(), overdue, flag_count("breached"), flag_count("stalled")]
    ).group_by(*keys)
    return list(conn.execute(statement).all())


def holder_groups(conn: Connection, scope: Scope, filters: Filters) -> list[Any]:
    """Outstanding escalations by who holds them: (authority, team, held_by JSON list, count)."""
    held = Record.held_by.cast(String)
    statement = _open_rows(scope, filters, [Record.authority, Record.team, held, func.count()]).group_by(
        Record.authority, Record.team, held
    )
    return list(conn.execute(statement).all())


def open_page(
    conn: Connection, scope: Scope, filters: Filters, now: datetime, limit: int, offset: int
) -> list[Any]:
    """One page of outstanding escalations, breached first, then overdue, then stalled, then by deadline."""
    rank = case(
        (has_flag("breached"), 0),
        (or_(has_flag("overdue"), Record.deadline < now), 1),
        (has_flag("stalled"), 2),
        else_=3,
    )
    statement = _open_rows(
        scope,
        filters,
        [
            Record.escalation_id,
            Record.authority,
            Record.team,
            Record.track,
            Record.stage,
            Record.stage_name,
            Record.status,
            Record.category,
            Record.deadline,
            Record.total_deadline_date,
            Record.flags,
            Record.held_by,
            Record.raised_at,
        ],
    ).order_by(rank, Record.deadline.is_(None), Record.deadline, Record.escalation_id)
    return list(conn.execute(statement.limit(limit).offset(offset)).all())


def at_risk_candidates(conn: Connection, scope: Scope, filters: Filters) -> list[Any]:
    """Outstanding, not yet breached escalations with a total limit: (escalation_id, authority, team, track,
    stage, stage_name, deadline, total_deadline_date)."""
    statement = _open_rows(
        scope,
        filters,
        [
            Record.escalation_id,
            Record.authority,
            Record.team,
            Record.track,
            Record.stage,
            Record.stage_name,
            Record.deadline,
            Record.total_deadline_date,
        ],
    ).where(Record.total_deadline_date.is_not(None), ~has_flag("breached"))
    return list(conn.execute(statement).all())


def deadline_spots(conn: Connection, scope: Scope, start: datetime, end: datetime) -> list[Any]:
    """Stage deadlines passed and stages entered in [start, end), by (authority, track, stage, team, kind)."""
    statement = (
        select(Event.authority, Event.track, Event.stage, Record.team, Event.kind, func.count())
        .join(Record, _same_run())
        .where(
            Event.kind.in_(("deadline_passed", "sent_to_stage")),
            Event.at >= start,
            Event.at < end,
        )
        .group_by(Event.authority, Event.track, Event.stage, Record.team, Event.kind)
    )
    return list(conn.execute(_scoped_records(_scoped_events(statement, scope), scope)).all())
