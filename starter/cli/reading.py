"""Commands that read escalations: ``status``, ``history``, ``actions``, ``list``.

``status``, ``history`` and ``actions`` ask the escalation itself, always current: its start input and its
``state`` query together (one round trip), and for ``actions`` its ``available_actions`` for each role the
person holds. ``list`` reads a read model (``starter.read_model``: the record store's ``escalations`` table
when it has the database, else Temporal's visibility) and needs no worker.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.core import Reading
from app.errors import AppError
from schemas.escalation import (
    EscalationView,
    EventKind,
    Status,
)
from starter.cli.common import (
    LAST_EVENTS,
    CliError,
    event_line,
    long_day,
    one_line,
    role_names,
    words,
)
from starter.cli.identity import acting, cli_error, open_app, open_core
from starter.cli.options import LIST_SOURCES

if TYPE_CHECKING:  # ``list``'s read model is imported when it runs: ``status`` has no need of it
    from starter.read_model import EscalationRow

__all__ = ["LIST_SOURCES", "cmd_actions", "cmd_history", "cmd_list", "cmd_status", "list_rows", "list_source"]


def _status_text(view: EscalationView) -> list[str]:
    name = role_names(view.authority)
    officer = view.timeline[0].actor if view.timeline else None
    lines = [
        f"{view.escalation_id}: {view.authority}, track {view.track}, child {view.child_ref}",
        f"category:   {view.category}",
        f"status:     {words(view.status)}" + ("  (still recording the last change)" if view.busy else ""),
        f"stage:      {view.stage_number}/{view.stage_count} {view.stage_name}"
        + (" (formal)" if view.formal else " (informal)"),
        f"held by:    {', '.join(name(r) for r in view.held_by)}"
        + (f"; copied: {', '.join(name(r) for r in view.copied)}" if view.copied else ""),
    ]
    if view.child_status or view.severity:  # protocol language v2
        lines.insert(
            2,
            f"child:      {view.child_status or 'status not recorded'}; severity: {view.severity or 'none'}",
        )
    if officer:
        lines.append(f"raised by:  {officer.id} ({name(officer.role)})")
    lines.extend(concern_lines(view))
    if view.deadline_date:
        lines.append(
            f"deadline:   {long_day(view.deadline_date)} ({view.working_days_left} working days left)"
        )
    else:
        lines.append("deadline:   none running")
    if view.total_deadline_date:
        lines.append(
            f"total limit: {long_day(view.total_deadline_date)} "
            f"({view.total_working_days_left} working days left)"
        )
    else:
        lines.append("total limit: not started (the formal process has not begun)")
    pending = view.pending_extension
    if pending:
        lines.append(
            f"extension:  {pending.requested_by.id} asks for more time until {long_day(pending.until)}: "
            f"{one_line(pending.reason)}"
        )
    else:
        lines.append("extension:  none pending")
    lines.append(f"flags:      {', '.join(f.value for f in view.flags) or 'none'}")
    if view.stalled:
        lines.append(view.stalled)
    lines.append("last events:")
    lines.extend("  " + event_line(e) for e in view.timeline[-LAST_EVENTS:])
    return lines


def concern_lines(view: EscalationView) -> list[str]:
    """The concern as raised: summary, impact on the child, what is asked, and views when recorded.

    Escalations started before the whole concern was shown have only the summary (the raise event's text).
    """
    c = view.concern
    if c is None:
        raised = next((e for e in view.timeline if e.kind is EventKind.RAISED), None)
        return [f"concern:    {one_line(raised.text)}"] if raised else []
    lines = [
        f"concern:    {one_line(c.summary)}",
        f"impact:     {one_line(c.impact_on_child)}",
        f"asked:      {one_line(c.requested_action)}",
    ]
    if c.child_views:
        lines.append(f"child's views:   {one_line(c.child_views)}")
    if c.parents_views:
        lines.append(f"parents' views:  {one_line(c.parents_views)}")
    return lines


async def _reading(args: argparse.Namespace) -> Reading:
    """The escalation as this person may see it and what they may do now (the application layer decides,
    and audits the read)."""
    who = acting(args)
    app = await open_core(args)
    try:
        return await app.read(who.caller, args.id)
    except AppError as exc:
        raise cli_error(exc) from None


async def _view(args: argparse.Namespace) -> EscalationView:
    """The escalation alone, as ``_reading`` decides who may see it and audits the read: its start and its
    state asked together, and nothing more from Temporal."""
    who = acting(args)
    app = await open_core(args)
    try:
        return await app.view(who.caller, args.id)
    except AppError as exc:
        raise cli_error(exc) from None


async def cmd_status(args: argparse.Namespace) -> int:
    view = await _view(args)
    if args.json:
        print(view.model_dump_json(indent=2))
    else:
        print("\n".join(_status_text(view)))
    return 0


async def cmd_history(args: argparse.Namespace) -> int:
    view = await _view(args)
    print("\n".join(concern_lines(view)))
    for entry in view.timeline:
        print(event_line(entry))
    return 0


_COMMAND_FOR = {
    "refer_to_cafcass": "refer-cafcass",
    "add_note": "note",
    "record_views": "views",
    "record_step": "step",
}
"""The command for an action whose name differs from its update's."""


async def cmd_actions(args: argparse.Namespace) -> int:
    reading = await _reading(args)
    who = acting(args)
    allowed = [k for k, actor in reading.allowed.items() if who.role in (None, actor.role)]
    commands = [_COMMAND_FOR.get(kind, kind.replace("_", "-")) for kind in allowed]
    roles = who.role or "/".join(dict.fromkeys(a.role for a in reading.allowed.values())) or "no role here"
    print(f"{who.caller.person.id} ({roles}) may: {', '.join(commands) or 'nothing now'}")
    return 0


COLUMNS = ("ESCALATION", "STATUS", "STAGE", "DUE", "LEFT", "FLAGS")


def list_rows(rows: list[EscalationRow]) -> list[str]:
    """A header and one aligned line per escalation, soonest deadline first (none running last)."""
    ordered = sorted(
        rows, key=lambda r: (r.deadline_date is None, r.deadline_date or date.max, r.escalation_id)
    )
    cells = [list(COLUMNS)] + [
        [
            row.escalation_id,
            row.status.value,
            f"{row.stage_number or '?'}/{row.stage_count or '?'} {row.stage}",
            row.deadline_date.isoformat() if row.deadline_date else "-",
            f"{row.working_days_left} wd" if row.working_days_left is not None else "-",
            ", ".join(row.flags) or "-",
        ]
        for row in ordered
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1]
        for line in cells
    ]


NO_ATTRIBUTES = (
    "note: this namespace has no escalation search attributes registered, so each escalation's state was "
    "read in turn (slow, and needs a worker): register them (docs/deploy.md) for a fast list"
)


def _unindexed_note(count: int) -> str:
    some = "1 escalation" if count == 1 else f"{count} escalations"
    return (
        f"note: {some} started before the search attributes were registered "
        f"{'is' if count == 1 else 'are'} not listed; `escalate status ID` reads one"
    )


def _unreadable_note(count: int) -> str:
    some = "1 escalation" if count == 1 else f"{count} escalations"
    return (
        f"note: {some} could not be read just now (no worker answered), so whether you may see "
        f"{'it' if count == 1 else 'them'} is not known and {'it is' if count == 1 else 'they are'} not "
        "listed: try again shortly"
    )


def list_source(args: argparse.Namespace) -> str | None:
    """The record store URL ``list`` reads, or None for Temporal's visibility.

    ``--source records`` needs a URL (``--database-url``, ``ESCALATION_DATABASE_URL``, or the embedded
    stack's default SQLite file). ``auto`` reads the record store when a URL is given, or when no Temporal
    address is given either and the embedded stack's default store is in the working directory (where
    ``escalate up`` keeps it): two SQL queries, filtered and sorted in the database, fast at any size.
    Otherwise it reads visibility, which needs no database credentials (see ``starter.read_model``).
    """
    from starter.read_model import DEFAULT_DATABASE_URL

    given = getattr(args, "database_url", None) or os.environ.get("ESCALATION_DATABASE_URL") or None
    source = getattr(args, "source", "auto")
    if source == "visibility":
        return None
    embedded = Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///"))
    if given:
        return given
    if source == "records":
        if embedded.is_file():
            return DEFAULT_DATABASE_URL
        raise CliError(
            "--source records: give the record store with --database-url or ESCALATION_DATABASE_URL "
            f"(no embedded store at {embedded})"
        )
    local = not (getattr(args, "address", None) or os.environ.get("TEMPORAL_ADDRESS"))
    return DEFAULT_DATABASE_URL if local and embedded.is_file() else None


async def cmd_list(args: argparse.Namespace) -> int:
    from starter.read_model import ListFilter, RecordStoreUnavailable, check_record_store

    who = acting(args)
    person = who.caller.person
    if args.authority and args.authority != person.authority:
        raise CliError(f"--authority: {person.id} sees only {person.authority}'s escalations")
    if args.status and args.status not in {s.value for s in Status}:
        raise CliError(
            f"--status: unknown status {args.status!r}; one of: {', '.join(s.value for s in Status)}"
        )
    wanted = ListFilter(
        authority=person.authority,
        stage=args.stage,
        status=Status(args.status) if args.status else None,
        overdue=args.overdue,
        open_only=args.open,
    )
    url = list_source(args)
    if url is not None:
        try:
            check_record_store(url)
        except RecordStoreUnavailable as exc:
            raise CliError(f"{exc}; `--source visibility` lists from Temporal instead") from None
    app = await open_app(args, lazy=url is not None)  # the records need no Temporal
    try:
        listing = await app.escalations(who.caller, wanted=wanted, with_waiting=False, records_url=url)
    except AppError as exc:
        raise cli_error(exc) from None
    now = datetime.now(UTC)
    rows = [
        item.row
        for item in listing.items
        if (not args.stage or item.row.stage == args.stage)
        and (not args.status or item.row.status.value == args.status)
        and (not args.overdue or _overdue(item.row, now))
    ]
    if rows:
        print("\n".join(list_rows(rows)))
    elif not listing.unreadable:
        print("no escalations match")
    if listing.scanned:
        print(NO_ATTRIBUTES, file=sys.stderr)
    if listing.unindexed:
        print(_unindexed_note(listing.unindexed), file=sys.stderr)
    if listing.unreadable:
        print(_unreadable_note(listing.unreadable), file=sys.stderr)
    return 0


def _overdue(row: EscalationRow, now: datetime) -> bool:
    return "overdue" in row.flags or (row.deadline is not None and row.deadline < now)
