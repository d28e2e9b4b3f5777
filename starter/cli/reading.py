"""Commands that read escalations: ``status``, ``history``, ``actions``, ``list``.

``status``, ``history`` and ``actions`` ask the escalation itself (one query, always current); ``list``
reads a read model (``starter.read_model``: the record store's ``escalations`` table when it has the
database, else Temporal's visibility) and needs no worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from protocols import available_protocols
from schemas.escalation import (
    EscalationView,
    EventKind,
    Flag,
    Status,
)
from starter.cli.common import (
    EXIT_UNAVAILABLE,
    LAST_EVENTS,
    CliError,
    event_line,
    long_day,
    one_line,
    role_names,
    words,
)
from starter.cli.service import actor_of, connect_client, read_state, run_query
from starter.escalations import search_attributes_registered
from starter.read_model import (
    BASE_QUERY,
    DEFAULT_DATABASE_URL,
    EscalationRow,
    ListFilter,
    Listing,
    RecordStoreUnavailable,
    list_escalations,
    list_from_records,
)


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


def _list_line(view: EscalationView) -> str:
    due = (
        f"due {view.deadline_date.isoformat()} ({view.working_days_left} wd left)"
        if view.deadline_date
        else "no deadline running"
    )
    shown = [f.value for f in view.flags] + ([view.stalled] if view.stalled else [])
    flags = f"  [{', '.join(shown)}]" if shown else ""
    return (
        f"{view.escalation_id}  {view.status.value}  {view.stage_number}/{view.stage_count} {view.stage}  "
        f"{due}{flags}"
    )


async def cmd_status(args: argparse.Namespace) -> int:
    client = await connect_client(args)
    view = await read_state(args, client.get_workflow_handle(args.id))
    if args.json:
        print(view.model_dump_json(indent=2))
    else:
        print("\n".join(_status_text(view)))
    return 0


async def cmd_history(args: argparse.Namespace) -> int:
    client = await connect_client(args)
    view = await read_state(args, client.get_workflow_handle(args.id))
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
    actor = actor_of(args)
    client = await connect_client(args)
    handle = client.get_workflow_handle(args.id)
    allowed = await run_query(args, handle, "available_actions", actor, result_type=list[str])
    commands = [_COMMAND_FOR.get(kind, kind.replace("_", "-")) for kind in allowed]
    print(f"{actor.id} ({actor.role}) may: {', '.join(commands) or 'nothing now'}")
    return 0


def list_line(row: EscalationRow) -> str:
    """One escalation on one line, from the read model (the same line as ever)."""
    due = (
        f"due {row.deadline_date.isoformat()} ({row.working_days_left} wd left)"
        if row.deadline_date
        else "no deadline running"
    )
    flags = f"  [{', '.join(row.flags)}]" if row.flags else ""
    place = f"{row.stage_number or '?'}/{row.stage_count or '?'}"
    return f"{row.escalation_id}  {row.status.value}  {place} {row.stage}  {due}{flags}"


NO_ATTRIBUTES = (
    "note: this namespace has no escalation search attributes registered, so each escalation's state is "
    "read in turn (slow, and needs a worker): register them (docs/deploy.md) for a fast list"
)


def _unindexed_note(count: int) -> str:
    some = "1 escalation" if count == 1 else f"{count} escalations"
    return (
        f"note: {some} started before the search attributes were registered "
        f"{'is' if count == 1 else 'are'} not listed; `escalate status ID` reads one"
    )


LIST_SOURCES = ("auto", "records", "visibility")


def list_source(args: argparse.Namespace) -> str | None:
    """The record store URL ``list`` reads, or None for Temporal's visibility.

    ``--source records`` needs a URL (``--database-url``, ``ESCALATION_DATABASE_URL``, or the embedded
    stack's default SQLite file). ``auto`` reads the record store when a URL is given, or when no Temporal
    address is given either and the embedded stack's default store is in the working directory (where
    ``escalate up`` keeps it): one SQL query, sorted in the database, fast at any size. Otherwise it reads
    visibility, which needs no database credentials (see ``starter.read_model``).
    """
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


def _list_filter(args: argparse.Namespace) -> ListFilter:
    if args.authority and args.authority not in available_protocols():
        raise CliError(f"unknown authority {args.authority!r}; known: {', '.join(available_protocols())}")
    if args.status and args.status not in {s.value for s in Status}:
        raise CliError(f"unknown status {args.status!r}; one of: {', '.join(s.value for s in Status)}")
    return ListFilter(
        authority=args.authority,
        stage=args.stage,
        status=Status(args.status) if args.status else None,
        overdue=args.overdue,
        open_only=args.open,
    )


def _print_listing(listing: Listing) -> None:
    print("\n".join(list_line(row) for row in listing.rows) if listing.rows else "no escalations match")
    if listing.unindexed:
        print(_unindexed_note(listing.unindexed), file=sys.stderr)


async def cmd_list(args: argparse.Namespace) -> int:
    wanted = _list_filter(args)
    url = list_source(args)
    if url is not None:
        try:
            _print_listing(list_from_records(url, wanted, datetime.now(UTC)))
            return 0
        except RecordStoreUnavailable as exc:
            raise CliError(f"{exc}; `--source visibility` lists from Temporal instead") from None
    client = await connect_client(args)
    now = datetime.now(UTC)
    try:
        listing = await list_escalations(client, wanted, now, rpc_timeout=timedelta(seconds=args.wait))
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT and not await search_attributes_registered(client):
            print(NO_ATTRIBUTES, file=sys.stderr)
            return await _list_by_scan(args, client, wanted, now)
        raise CliError(f"cannot list escalations: {exc.message}", EXIT_UNAVAILABLE) from None
    _print_listing(listing)
    return 0


def _is_overdue(view: EscalationView, now: datetime) -> bool:
    return Flag.OVERDUE in view.flags or (view.deadline is not None and view.deadline < now)


async def _list_by_scan(args: argparse.Namespace, client: Client, wanted: ListFilter, now: datetime) -> int:
    """The fallback without attributes: one ``state`` query per escalation (needs a worker)."""
    query = BASE_QUERY
    if wanted.open_only or (wanted.status and not wanted.status.is_closed):
        query += " AND ExecutionStatus = 'Running'"  # an escalation's workflow ends when it closes
    ids: list[str] = []
    try:
        async for execution in client.list_workflows(query, rpc_timeout=timedelta(seconds=args.wait)):
            if execution.id not in ids and (
                not wanted.authority or execution.id.startswith(wanted.authority + "-")
            ):
                ids.append(execution.id)
    except RPCError as exc:
        raise CliError(f"cannot list escalations: {exc.message}", EXIT_UNAVAILABLE) from None
    limit = asyncio.Semaphore(16)

    async def read(escalation_id: str) -> EscalationView | None:
        async with limit:
            try:
                return await read_state(args, client.get_workflow_handle(escalation_id))
            except CliError as exc:
                print(f"{escalation_id}: state unavailable: {exc.message}", file=sys.stderr)
                return None

    views = [v for v in await asyncio.gather(*(read(i) for i in ids)) if v is not None]
    shown = [
        v
        for v in views
        if (not wanted.authority or v.authority == wanted.authority)
        and (not wanted.stage or v.stage == wanted.stage)
        and (not wanted.status or v.status == wanted.status)
        and (not wanted.open_only or not v.status.is_closed)
        and (not wanted.overdue or _is_overdue(v, now))
    ]
    for view in sorted(shown, key=lambda v: (v.deadline is None, v.deadline or now, v.escalation_id)):
        print(_list_line(view))
    if not shown:
        print("no escalations match")
    return 0
