"""Reading many escalations at once: the read models behind ``escalate list``.

Two sources, the same rows and order (by deadline, soonest first, then id):

- **the record store's ``escalations`` table** (``list_from_records``): one row per escalation, written by
  the worker in the same transaction as the escalation's events; filters and sorting in SQL, one query.
  Used when the command has the database URL (``--database-url``, ``ESCALATION_DATABASE_URL``, or the
  embedded stack's default SQLite file; see ``starter.cli.reading.list_source``). It is fast at any size
  (10,000 rows in about 0.1 s of query); it shows an escalation once a worker has recorded it (a moment
  after it is raised) and needs read access to the database.
- **Temporal's visibility store** (``list_escalations``), through the escalation search attributes
  (``workflows.search_attributes``): needs no database credentials and no worker (no ``state`` query, no
  replay). It is eventually consistent (a change shows a moment after it is made), and an escalation
  started where the attributes were not registered has none: when the namespace has them registered,
  such escalations are not listed and the listing says how many were left out; when it has none, the
  caller falls back to reading each escalation's state (slow, one query each). Its cost is the server's:
  visibility pages hold at most 1,000 executions, and the dev server's SQLite visibility answers about
  0.3 s a page, so 10,000 take 3 s or more whatever the client does.

``status`` asks the workflow itself and is always current. The visibility list is sorted here after it
returns: Temporal's SQL visibility stores (the dev server's SQLite, PostgreSQL) refuse ``ORDER BY``
("operation is not supported"); only Elasticsearch sorts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from activities.working_days import WorkingDayCalendar, end_of_day, london_date
from protocols import ProtocolError, load_protocol
from schemas.escalation import Flag, Status
from schemas.protocol import Protocol
from workflows import search_attributes as indexed
from workflows.escalation import TASK_QUEUE, WORKFLOW_TYPE

if TYPE_CHECKING:
    from sqlalchemy import Executable

DEFAULT_DATABASE_URL = "sqlite:///.data/escalations.db"
"""The embedded stack's record store (as ``activities.db.base``, not imported here: SQLAlchemy costs every
command a fifth of a second to import)."""

BASE_QUERY = f"WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = '{TASK_QUEUE}'"
"""Every escalation's workflow, whatever its attributes."""


class ListFilter(BaseModel):
    """What ``escalate list`` asks for; every field is ANDed into the visibility query."""

    model_config = ConfigDict(extra="forbid")

    authority: str | None = None
    stage: str | None = None
    status: Status | None = None
    overdue: bool = False
    open_only: bool = False


class EscalationRow(BaseModel):
    """One escalation as a list shows it, built from its search attributes alone."""

    model_config = ConfigDict(extra="forbid")

    escalation_id: str
    authority: str
    track: str
    stage: str
    status: Status
    stage_number: int | None = Field(description="None when the current protocol no longer has the stage.")
    stage_count: int | None
    deadline: datetime | None
    deadline_date: date | None
    working_days_left: int | None
    flags: list[str]


class Listing(BaseModel):
    """A sorted list, and how many escalations it could not include (started without attributes)."""

    rows: list[EscalationRow]
    unindexed: int


def _quoted(value: str) -> str:
    """A visibility query string literal (values are keys already checked, but never trust that)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _instant(value: datetime) -> str:
    return _quoted(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def visibility_query(wanted: ListFilter, now: datetime) -> str:
    """The visibility query for ``wanted``: only escalations that carry their attributes."""
    parts = [BASE_QUERY, f"{indexed.STATUS.name} IS NOT NULL"]
    if wanted.authority:
        parts.append(f"{indexed.AUTHORITY.name} = {_quoted(wanted.authority)}")
    if wanted.stage:
        parts.append(f"{indexed.STAGE.name} = {_quoted(wanted.stage)}")
    if wanted.status:
        parts.append(f"{indexed.STATUS.name} = {_quoted(wanted.status.value)}")
    if wanted.open_only:
        still_open = ", ".join(_quoted(s.value) for s in Status if not s.is_closed)
        parts.append(f"{indexed.STATUS.name} IN ({still_open})")
    if wanted.overdue:
        flagged = f"{indexed.FLAGS.name} = {_quoted(Flag.OVERDUE.value)}"
        parts.append(f"({flagged} OR {indexed.DEADLINE.name} < {_instant(now)})")
    return " AND ".join(parts)


UNINDEXED_QUERY = f"{BASE_QUERY} AND {indexed.STATUS.name} IS NULL"
"""Escalations started without the attributes (before they were registered): a list cannot show them."""


@cache
def _protocol(authority: str) -> Protocol | None:
    try:
        return load_protocol(authority)
    except ProtocolError:  # an authority whose protocol file is gone: the row shows what visibility holds
        return None


def _stage_place(authority: str, track: str, stage: str) -> tuple[int | None, int | None]:
    protocol = _protocol(authority)
    if protocol is None:
        return None, None
    try:
        stages = protocol.track(track).stages
    except KeyError:
        return None, None
    keys = [s.key for s in stages]
    return (keys.index(stage) + 1 if stage in keys else None), len(stages)


@lru_cache(maxsize=4096)  # one listing asks the same few deadlines many times, at one ``now``
def working_days_left(authority: str, track: str, stage: str, due_at: datetime, now: datetime) -> int:
    """Working days still to run at ``now`` before ``due_at`` (the current day counts while it lasts).

    As the workflow counts (``Schedule.working_days_left``): the stage's day of receipt does not count.
    Visibility keeps only the deadline, so that day is found back from the stage's working-day allowance;
    a deadline moved by an extension has no allowance to count back from, and then every working day
    still to run counts.
    """
    protocol = _protocol(authority)
    calendar = WorkingDayCalendar(protocol.closure_days if protocol else ())
    due_date = london_date(due_at - timedelta(microseconds=1))
    today = london_date(now)
    running = calendar.working_days_between(today - timedelta(days=1), due_date)
    days = [d for d in running if end_of_day(d) > now]
    allowance = None
    if protocol is not None:
        try:
            allowance = next(
                (s.response_working_days for s in protocol.track(track).stages if s.key == stage), None
            )
        except KeyError:
            allowance = None
    if allowance is not None:
        counts_from = calendar.subtract_working_days(due_date, allowance)
        if counts_from == calendar.next_working_day(today):  # sent today (or this weekend): day 0
            days = [d for d in days if d > counts_from]
    return len(days)


def _value(fields: Mapping[str, Payload], name: str) -> Any:
    """One search attribute's value (visibility stores them as plain JSON payloads, never encrypted)."""
    payload = fields.get(name)
    return json.loads(payload.data.decode()) if payload is not None and payload.data else None


def row_of(escalation_id: str, fields: Mapping[str, Payload], now: datetime) -> EscalationRow | None:
    """The row of one listed execution, or None when it lacks the attributes a row needs."""
    authority = _value(fields, indexed.AUTHORITY.name)
    track = _value(fields, indexed.TRACK.name)
    stage = _value(fields, indexed.STAGE.name)
    status = _value(fields, indexed.STATUS.name)
    if not all(isinstance(v, str) and v for v in (authority, track, stage)) or status not in _STATUSES:
        return None
    raw_deadline = _value(fields, indexed.DEADLINE.name)
    deadline = datetime.fromisoformat(raw_deadline) if isinstance(raw_deadline, str) else None
    flags = _value(fields, indexed.FLAGS.name)
    return _row(escalation_id, authority, track, stage, status, deadline, flags, now)


def _row(
    escalation_id: str,
    authority: str,
    track: str,
    stage: str,
    status: str,
    deadline: datetime | None,
    flags: object,
    now: datetime,
) -> EscalationRow:
    """A row from checked values (``model_construct``: 10,000 validations would cost a tenth of a second)."""
    number, count = _stage_place(authority, track, stage)
    return EscalationRow.model_construct(
        escalation_id=escalation_id,
        authority=authority,
        track=track,
        stage=stage,
        status=Status(status),
        stage_number=number,
        stage_count=count,
        deadline=deadline,
        deadline_date=_due_date(deadline) if deadline else None,
        working_days_left=working_days_left(authority, track, stage, deadline, now) if deadline else None,
        flags=[str(f) for f in flags] if isinstance(flags, list) else [],
    )


@lru_cache(maxsize=4096)
def _due_date(deadline: datetime) -> date:
    return london_date(deadline - timedelta(microseconds=1))


_STATUSES = frozenset(s.value for s in Status)


def sort_key(row: EscalationRow) -> tuple[int, datetime, str]:
    """Running deadlines first, soonest first; then the rest; each by id."""
    far = datetime.max.replace(tzinfo=UTC)
    return (0 if row.deadline else 1, row.deadline or far, row.escalation_id)


async def _pages(
    client: Client, query: str, rpc_timeout: timedelta
) -> AsyncIterator[tuple[str, Mapping[str, Payload]]]:
    """(workflow id, search attributes) of every match, straight from the list call's pages.

    The raw call rather than ``Client.list_workflows``: that decodes every execution's attributes twice
    (typed and untyped), which is most of a long list's cost.
    """
    token = b""
    while True:
        page = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=client.namespace, query=query, page_size=1000, next_page_token=token
            ),
            retry=True,
            timeout=rpc_timeout,
        )
        for info in page.executions:
            yield info.execution.workflow_id, info.search_attributes.indexed_fields
        token = page.next_page_token
        if not token:
            return


async def list_escalations(
    client: Client, wanted: ListFilter, now: datetime, rpc_timeout: timedelta = timedelta(seconds=30)
) -> Listing:
    """The escalations ``wanted`` asks for, sorted by ``sort_key``: visibility calls only, no worker.

    Raises ``temporalio.service.RPCError`` when visibility cannot answer.
    """
    rows: dict[str, EscalationRow] = {}
    async for escalation_id, fields in _pages(client, visibility_query(wanted, now), rpc_timeout):
        row = row_of(escalation_id, fields, now)
        if row is not None and row.escalation_id not in rows:  # the newest run of an id comes first
            rows[row.escalation_id] = row
    unindexed = (await client.count_workflows(UNINDEXED_QUERY, rpc_timeout=rpc_timeout)).count
    return Listing(rows=sorted(rows.values(), key=sort_key), unindexed=unindexed)


def records_statement(wanted: ListFilter, now: datetime, *, facts: bool = False) -> Executable:
    """The record store's query for ``wanted``: filters, the newest run of each id, and the list's order;
    with ``facts``, also each escalation's team, service area and raising officer (``RowFacts``)."""
    from sqlalchemy import String, and_, exists, or_, select
    from sqlalchemy.orm import aliased

    from activities.db.record_models import EscalationRecord as Record

    newer = aliased(Record)
    columns: list[Any] = [
        Record.escalation_id,
        Record.authority,
        Record.track,
        Record.stage,
        Record.status,
        Record.deadline,
        Record.flags,
    ]
    if facts:
        columns += [Record.team, Record.service_area, Record.raised_by_id, Record.raised_by_role]
    statement = select(*columns).where(
        ~exists().where(
            and_(newer.escalation_id == Record.escalation_id, newer.updated_at > Record.updated_at)
        )
    )
    if wanted.authority:
        statement = statement.where(Record.authority == wanted.authority)
    if wanted.stage:
        statement = statement.where(Record.stage == wanted.stage)
    if wanted.status:
        statement = statement.where(Record.status == wanted.status.value)
    if wanted.open_only:
        statement = statement.where(Record.status.in_([s.value for s in Status if not s.is_closed]))
    if wanted.overdue:
        flagged = Record.flags.cast(String).contains(f'"{Flag.OVERDUE.value}"')
        statement = statement.where(or_(flagged, Record.deadline < now))
    return statement.order_by(Record.deadline.is_(None), Record.deadline, Record.escalation_id)


def check_record_store(url: str) -> None:
    """``RecordStoreUnavailable`` when ``url`` is an SQLite file that does not exist (a list never creates
    an empty store to read it)."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).is_file():
        raise RecordStoreUnavailable(f"no record store at {parsed.render_as_string(hide_password=True)}")


def _execute(url: str, statements: Sequence[Executable]) -> list[list[Any]]:
    """Every statement's rows, on one connection; ``RecordStoreUnavailable`` naming the store otherwise."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.exc import SQLAlchemyError

    check_record_store(url)
    parsed = make_url(url)
    engine = create_engine(parsed)
    try:
        with engine.connect() as connection:
            return [list(connection.execute(statement).all()) for statement in statements]
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        shown = parsed.render_as_string(hide_password=True)
        raise RecordStoreUnavailable(f"cannot read the record store {shown}: {reason}") from None
    finally:
        engine.dispose()


def list_from_records(url: str, wanted: ListFilter, now: datetime) -> Listing:
    """The escalations ``wanted`` asks for from the record store's ``escalations`` table, sorted in SQL.

    Raises ``RecordStoreUnavailable`` (naming the store) when it cannot be read.
    """
    [result] = _execute(url, [records_statement(wanted, now)])
    rows: dict[str, EscalationRow] = {}
    for escalation_id, authority, track, stage, status, deadline, flags in result:
        if escalation_id not in rows and status in _STATUSES:
            rows[escalation_id] = _row(escalation_id, authority, track, stage, status, deadline, flags, now)
    return Listing(rows=list(rows.values()), unindexed=0)


class RowFacts(BaseModel):
    """What the record store says of an escalation beyond its row: enough to decide who may see it."""

    model_config = ConfigDict(frozen=True)

    team: str | None
    service_area: str | None
    raised_by_id: str
    raised_by_role: str


class Involvement(BaseModel):
    """A person's past part in an escalation, from its events: whether they acted in it, the stages it
    entered, and the covering officer it was last handed to."""

    acted: bool = False
    entered: set[str] = Field(default_factory=set)
    covering_officer: str | None = None


def records_with_facts(url: str, wanted: ListFilter, now: datetime) -> list[tuple[EscalationRow, RowFacts]]:
    """``list_from_records``'s rows, each with its ``RowFacts`` (one query)."""
    [result] = _execute(url, [records_statement(wanted, now, facts=True)])
    found: dict[str, tuple[EscalationRow, RowFacts]] = {}
    for escalation_id, authority, track, stage, status, deadline, flags, *more in result:
        if escalation_id in found or status not in _STATUSES:
            continue
        row = _row(escalation_id, authority, track, stage, status, deadline, flags, now)
        team, service_area, raised_by_id, raised_by_role = more
        found[escalation_id] = (
            row,
            RowFacts(
                team=team, service_area=service_area, raised_by_id=raised_by_id, raised_by_role=raised_by_role
            ),
        )
    return list(found.values())


INVOLVEMENT_KINDS = ("raised", "sent_to_stage", "officer_replaced")
CHUNK = 500
"""Escalation ids per ``IN`` list (SQLite allows 32,766 parameters; PostgreSQL far more)."""


def involvement(url: str, escalation_ids: Sequence[str], person_id: str) -> dict[str, Involvement]:
    """Each escalation's ``Involvement`` of ``person_id``, from the event log (one query per 500 ids)."""
    from sqlalchemy import or_, select

    from activities.db.record_models import EscalationEvent as Event

    ids = list(dict.fromkeys(escalation_ids))
    statements = [
        select(Event.escalation_id, Event.kind, Event.stage, Event.actor_id, Event.data)
        .where(Event.escalation_id.in_(ids[i : i + CHUNK]))
        .where(or_(Event.actor_id == person_id, Event.kind.in_(INVOLVEMENT_KINDS)))
        .order_by(Event.escalation_id, Event.at, Event.seq)
        for i in range(0, len(ids), CHUNK)
    ]
    found: dict[str, Involvement] = {i: Involvement() for i in ids}
    for result in _execute(url, statements) if statements else []:
        for escalation_id, kind, stage, actor_id, data in result:
            seen = found[escalation_id]
            seen.acted = seen.acted or actor_id == person_id
            if kind in ("raised", "sent_to_stage"):
                seen.entered.add(stage)
            elif kind == "officer_replaced" and isinstance(data, dict):
                new = data.get("to")
                seen.covering_officer = str(new.get("id")) if isinstance(new, dict) else None
    return found


class RecordStoreUnavailable(Exception):
    """The record store cannot be read for a list (missing, unreachable, or not migrated)."""


__all__ = [
    "BASE_QUERY",
    "DEFAULT_DATABASE_URL",
    "UNINDEXED_QUERY",
    "EscalationRow",
    "Involvement",
    "ListFilter",
    "Listing",
    "RecordStoreUnavailable",
    "RowFacts",
    "check_record_store",
    "involvement",
    "list_escalations",
    "list_from_records",
    "records_statement",
    "records_with_facts",
    "row_of",
    "sort_key",
    "visibility_query",
    "working_days_left",
]
