"""The alert log councils keep by hand, from the record store: one line per escalation raised in a period,
as CSV or a spreadsheet (XLSX).

Columns: child reference, escalation, officer (their name from the directory, else their staff id), date
raised, category, track, team, stage reached, each stage's dates (the day it was sent to the stage and the
day the stage answered, for as many stages as the longest track listed has), outcome, date closed and
working days taken (to the day closed, or to today while it is open). Two queries: the state rows, then
the dated events of all of them at once.

Text cells that a spreadsheet would take for a formula (starting ``=``, ``+``, ``-``, ``@``) are written
with a leading apostrophe in the CSV, and as plain strings in the XLSX.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from pydantic import BaseModel
from sqlalchemy import Engine, and_, select

from activities.db.record_models import EscalationEvent as Event
from activities.db.record_models import EscalationRecord as Record
from app.identity import Person
from app.reporting.days import london_day, stage_position, stages_of, working_days
from app.reporting.periods import Period
from app.reporting.queries import CLOSED, Filters, Scope

DATED_KINDS = ("sent_to_stage", "response", "resolved", "withdrawn", "closed", "cafcass_referral")
OUTCOMES = {
    "resolved": "Resolved",
    "withdrawn": "Withdrawn",
    "referred_to_cafcass": "Referred to CAFCASS",
    "closed": "Closed",
    "exhausted": "Open: every stage exhausted",
    "awaiting_response": "Open: awaiting a response",
    "awaiting_decision": "Open: awaiting the officer's decision",
    "escalation_due": "Open: escalation due",
    "monitoring": "Open: monitoring an action plan",
}


class AlertLog(BaseModel):
    headers: list[str]
    rows: list[list[str | int | date | None]]


def alert_log(
    engine: Engine,
    scope: Scope,
    period: Period,
    people: list[Person],
    today: date,
    filters: Filters | None = None,
) -> AlertLog:
    """Every escalation in ``scope`` raised in ``period`` (and matching ``filters``), oldest first."""
    filters = filters or Filters()
    wanted = [Record.raised_at >= period.start, Record.raised_at < period.end]
    if scope.authorities is not None:
        wanted.append(Record.authority.in_(scope.authorities))
    if scope.teams is not None:
        wanted.append(Record.team.in_(sorted(scope.teams)))
    for name in ("team", "track", "stage", "status", "category"):
        value = getattr(filters, name)
        if value:
            wanted.append(getattr(Record, name) == value)
    if filters.flag:
        from app.reporting.queries import has_flag

        wanted.append(has_flag(filters.flag))
    records = select(
        Record.escalation_id,
        Record.run_id,
        Record.authority,
        Record.child_ref,
        Record.raised_by_id,
        Record.raised_at,
        Record.category,
        Record.track,
        Record.team,
        Record.stage_name,
        Record.status,
    ).where(*wanted)
    dated = (
        select(Event.escalation_id, Event.run_id, Event.kind, Event.stage, Event.status, Event.at)
        .join(Record, and_(Record.escalation_id == Event.escalation_id, Record.run_id == Event.run_id))
        .where(*wanted, Event.kind.in_(DATED_KINDS))
        .order_by(Event.escalation_id, Event.run_id, Event.seq)
    )
    with engine.connect() as conn:
        found = conn.execute(records.order_by(Record.raised_at, Record.escalation_id)).all()
        events = conn.execute(dated).all()
    by_run: dict[tuple[str, str], list[tuple[str, str, str, datetime]]] = defaultdict(list)
    for escalation_id, run_id, kind, stage, status, at in events:
        by_run[(escalation_id, run_id)].append((kind, stage, status, at))
    width = max([len(stages_of(r.authority, r.track)) for r in found] + [1])
    names = {(p.authority, p.id): p.name for p in people}
    headers = [
        "Child reference",
        "Escalation",
        "Officer",
        "Date raised",
        "Category",
        "Track",
        "Team",
        "Stage reached",
    ]
    for n in range(1, width + 1):
        headers += [f"Stage {n} sent", f"Stage {n} answered"]
    headers += ["Outcome", "Date closed", "Working days taken"]
    rows: list[list[str | int | date | None]] = []
    for r in found:
        sent: dict[int, date] = {}
        answered: dict[int, date] = {}
        closed_at: datetime | None = None
        for kind, stage, status, at in by_run[(r.escalation_id, r.run_id)]:
            place = stage_position(r.authority, r.track, stage)
            if place is not None and kind == "sent_to_stage":
                sent.setdefault(place, london_day(at))
            elif place is not None and kind == "response":
                answered.setdefault(place, london_day(at))
            if status in CLOSED and closed_at is None and kind != "sent_to_stage":
                closed_at = at
        end = london_day(closed_at) if closed_at else today
        row: list[str | int | date | None] = [
            r.child_ref,
            r.escalation_id,
            names.get((r.authority, r.raised_by_id), r.raised_by_id),
            london_day(r.raised_at),
            r.category,
            _track(r.authority, r.track),
            r.team or "",
            r.stage_name,
        ]
        for n in range(1, width + 1):
            row += [sent.get(n), answered.get(n)]
        row += [
            OUTCOMES.get(r.status, r.status),
            london_day(closed_at) if closed_at else None,
            working_days(r.authority).between(london_day(r.raised_at), end),
        ]
        rows.append(row)
    return AlertLog(headers=headers, rows=rows)


def _track(authority: str, track: str) -> str:
    from app.reporting.figures import track_label

    return track_label(authority, track)


def _safe(value: str | int | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def alert_log_csv(log: AlertLog) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(log.headers)
    for row in log.rows:
        writer.writerow([_safe(v) for v in row])
    return out.getvalue()


def alert_log_xlsx(log: AlertLog) -> bytes:
    """The log as a workbook of one sheet, dates as dates, the header row frozen."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Alert log")
    sheet.freeze_panes = "A2"
    sheet.append(log.headers)
    for row in log.rows:
        cells: list[object] = []
        for value in row:
            if isinstance(value, date):
                cell = WriteOnlyCell(sheet, value=datetime.combine(value, datetime.min.time()))
                cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
