"""Commands that read escalations: ``status``, ``history``, ``actions``, ``list``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from temporalio.service import RPCError

from protocols import available_protocols
from schemas.escalation import (
    EscalationView,
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
from workflows.escalation import TASK_QUEUE


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
    if officer:
        lines.append(f"raised by:  {officer.id} ({name(officer.role)})")
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
    lines.append("last events:")
    lines.extend("  " + event_line(e) for e in view.timeline[-LAST_EVENTS:])
    return lines


def _list_line(view: EscalationView) -> str:
    due = (
        f"due {view.deadline_date.isoformat()} ({view.working_days_left} wd left)"
        if view.deadline_date
        else "no deadline running"
    )
    flags = f"  [{', '.join(f.value for f in view.flags)}]" if view.flags else ""
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
    for entry in view.timeline:
        print(event_line(entry))
    return 0


_COMMAND_FOR = {"refer_to_cafcass": "refer-cafcass", "add_note": "note", "record_views": "views"}
"""The command for an action whose name differs from its update's."""


async def cmd_actions(args: argparse.Namespace) -> int:
    actor = actor_of(args)
    client = await connect_client(args)
    handle = client.get_workflow_handle(args.id)
    allowed = await run_query(args, handle, "available_actions", actor, result_type=list[str])
    commands = [_COMMAND_FOR.get(kind, kind.replace("_", "-")) for kind in allowed]
    print(f"{actor.id} ({actor.role}) may: {', '.join(commands) or 'nothing now'}")
    return 0


def _is_overdue(view: EscalationView, now: datetime) -> bool:
    return Flag.OVERDUE in view.flags or (view.deadline is not None and view.deadline < now)


async def cmd_list(args: argparse.Namespace) -> int:
    if args.authority and args.authority not in available_protocols():
        raise CliError(f"unknown authority {args.authority!r}; known: {', '.join(available_protocols())}")
    if args.status and args.status not in {s.value for s in Status}:
        raise CliError(f"unknown status {args.status!r}; one of: {', '.join(s.value for s in Status)}")
    client = await connect_client(args)
    query = f"WorkflowType = 'EscalationWorkflow' AND TaskQueue = '{TASK_QUEUE}'"
    if args.open or (args.status and not Status(args.status).is_closed):
        query += " AND ExecutionStatus = 'Running'"  # an escalation's workflow ends when it closes
    ids: list[str] = []
    try:
        async for execution in client.list_workflows(query, rpc_timeout=timedelta(seconds=args.wait)):
            if execution.id not in ids and (
                not args.authority or execution.id.startswith(args.authority + "-")
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
    now = datetime.now(UTC)
    shown = [
        v
        for v in views
        if (not args.authority or v.authority == args.authority)
        and (not args.stage or v.stage == args.stage)
        and (not args.status or v.status.value == args.status)
        and (not args.open or not v.status.is_closed)
        and (not args.overdue or _is_overdue(v, now))
    ]
    for view in sorted(shown, key=lambda v: v.escalation_id):
        print(_list_line(view))
    if not shown:
        print("no escalations match")
    return 0
