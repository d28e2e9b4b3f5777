"""``escalate decisions ...`` and ``escalate practice-concern ...``: the protocol's other processes.

    escalate decisions send --authority dudley --child-ref C4F2A9 --team team-a --as-id dud-iro-a \\
        --as-role iro --review-date 2026-03-02 --decisions "..." [--request-id ID]
    escalate decisions agree|disagree|withdraw ID ...;  escalate decisions status ID [--json] | history ID
    escalate practice-concern raise --authority waltham-forest --about-id wf-iro-a --about-role iro \\
        --summary "..." [--team T] [--child-ref C] [--request-id ID]
    escalate practice-concern respond|accept|escalate|withdraw ID ...;  status ID [--json] | history ID

Exit status as every ``escalate`` command: 0 done, 1 refused by the process's rules, 2 bad input (nothing
changed), 3 the service or a worker unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from protocols import ProtocolError
from schemas.escalation import Actor
from schemas.process_models import (
    AcceptFeedback,
    AgreeDecisions,
    DisagreeDecisions,
    EscalatePractice,
    GiveFeedback,
    ProcessResult,
    ProcessView,
    WithdrawProcess,
)
from schemas.protocol import Protocol
from starter.cli.common import (
    EXIT_UNAVAILABLE,
    CliError,
    build,
    describe_validation,
    event_line,
    long_day,
    one_line,
    refused,
    role_names,
    words,
)
from starter.cli.service import actor_of, connect_client, no_worker, run_query, unknown
from starter.escalations import BadInput
from starter.processes import prepare_decisions, prepare_practice_concern, start_once
from workflows.rules import Refused
from workflows.shell_options import BUSY, BUSY_BACKOFF_S, REFUSED

Run = Callable[[argparse.Namespace], Awaitable[int]]


# --- starting ------------------------------------------------------------------------------------------


async def _start(args: argparse.Namespace, prepare: Callable[[str], Any]) -> int:
    request_id = args.request_id or str(uuid.uuid4())
    try:
        inp = prepare(request_id)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        raise CliError(
            describe_validation(exc, {"review_date": "--review-date", "about.id": "--about-id"})
        ) from None
    except BadInput as exc:  # not in the directory, a bad request id or child reference
        raise CliError(exc.reason) from None
    except Refused as exc:
        raise refused(exc.reason) from None
    client = await connect_client(args)
    try:
        started = await start_once(client, inp)
    except BadInput as exc:
        raise CliError(exc.reason) from None
    except RPCError as exc:
        raise CliError(
            f"cannot start {inp.process_id}: {exc.message}; retry with --request-id {request_id}",
            EXIT_UNAVAILABLE,
        ) from None
    view = await _settled(args, started.handle)
    due = f"; due by the end of {long_day(view.deadline_date)}" if view.deadline_date else ""
    name = role_names(view.authority)
    print(
        f"{'already started' if started.existing else 'started'} {view.process_id}: {words(view.status)}, "
        f"with {', '.join(name(r) for r in view.held_by) or 'nobody'}{due} (--request-id {request_id})"
    )
    return 0


async def _settled(args: argparse.Namespace, handle: Any) -> ProcessView:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + min(args.wait, 15.0)
    while True:
        view = await _read(args, handle)
        if (not view.busy and view.timeline) or loop.time() > give_up:
            return view
        await asyncio.sleep(0.1)


async def cmd_decisions_send(args: argparse.Namespace) -> int:
    officer = actor_of(args)
    if args.team is not None and not args.team.strip():
        raise CliError("--team: give the team's key, or leave it out")
    return await _start(
        args,
        lambda request_id: prepare_decisions(
            authority=args.authority,
            child_ref=args.child_ref,
            team=args.team,
            officer=officer,
            review_date=args.review_date,
            decisions=args.decisions,
            request_id=request_id,
        ),
    )


async def cmd_practice_raise(args: argparse.Namespace) -> int:
    raiser = actor_of(args)
    about = build(Actor, {"id": "--about-id", "role": "--about-role"}, id=args.about_id, role=args.about_role)
    return await _start(
        args,
        lambda request_id: prepare_practice_concern(
            authority=args.authority,
            raised_by=raiser,
            about=about,
            team=args.team,
            child_ref=args.child_ref,
            summary=args.summary,
            request_id=request_id,
        ),
    )


# --- acting ----------------------------------------------------------------------------------------------


async def _act(args: argparse.Namespace, action: Any) -> int:
    """Send ``action`` as the update of its kind; busy refusals are sent again until ``--wait`` runs out."""
    kind: str = action.kind
    client = await connect_client(args)
    handle = client.get_workflow_handle(args.id)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + args.wait
    pause, longest = BUSY_BACKOFF_S
    while True:
        left = give_up - loop.time()
        if left <= 0:
            raise no_worker(args, f"sending {kind} to {args.id}")
        try:
            result = await asyncio.wait_for(
                handle.execute_update(kind, action, result_type=ProcessResult), left
            )
            break
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == BUSY:
                await asyncio.sleep(min(pause, max(give_up - loop.time(), 0)))
                pause = min(pause * 2, longest)
                continue
            if isinstance(cause, ApplicationError) and cause.type == REFUSED:
                raise refused(cause.message) from None
            raise CliError(f"{args.id} could not {kind.replace('_', ' ')}: {cause or exc}", 1) from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise no_worker(args, f"sending {kind} to {args.id}") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                await _ensure_known(args, handle)
                raise refused(f"{args.id} has ended; nothing more can be done") from None
            raise CliError(f"cannot send {kind} to {args.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    print(f"{args.id}: {result.outcome} ({words(result.status)}, stage {result.stage})")
    return 0


async def _ensure_known(args: argparse.Namespace, handle: Any) -> None:
    try:
        await handle.describe(rpc_timeout=timedelta(seconds=args.wait))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise unknown(args, handle.id) from None
        raise CliError(f"cannot look up {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None


async def cmd_decisions_agree(args: argparse.Namespace) -> int:
    return await _act(args, build(AgreeDecisions, actor=actor_of(args), note=args.note or ""))


async def cmd_decisions_disagree(args: argparse.Namespace) -> int:
    return await _act(args, build(DisagreeDecisions, actor=actor_of(args), reason=args.reason))


async def cmd_withdraw(args: argparse.Namespace) -> int:
    return await _act(args, build(WithdrawProcess, actor=actor_of(args), reason=args.reason))


async def cmd_practice_respond(args: argparse.Namespace) -> int:
    return await _act(args, build(GiveFeedback, actor=actor_of(args), feedback=args.feedback))


async def cmd_practice_accept(args: argparse.Namespace) -> int:
    return await _act(args, build(AcceptFeedback, actor=actor_of(args), note=args.note or ""))


async def cmd_practice_escalate(args: argparse.Namespace) -> int:
    return await _act(args, build(EscalatePractice, actor=actor_of(args), reason=args.reason))


# --- reading ---------------------------------------------------------------------------------------------


async def _read(args: argparse.Namespace, handle: Any) -> ProcessView:
    return await run_query(args, handle, "state", result_type=ProcessView)


def status_lines(view: ProcessView) -> list[str]:
    name = role_names(view.authority)
    lines = [
        f"{view.process_id}: {view.authority}, {view.process}"
        + (f", child {view.child_ref}" if view.child_ref else ""),
        f"status:     {words(view.status)}"
        + (f" ({view.outcome.replace('_', ' ')})" if view.outcome else "")
        + ("  (still recording the last change)" if view.busy else ""),
        f"stage:      {view.stage_name}",
        f"held by:    {', '.join(name(r) for r in view.held_by) or 'nobody'}"
        + (f"; copied: {', '.join(name(r) for r in view.copied)}" if view.copied else ""),
    ]
    if view.deadline_date:
        lines.append(
            f"deadline:   {long_day(view.deadline_date)} ({view.working_days_left} working days left)"
        )
    else:
        lines.append("deadline:   none running")
    if view.linked:
        lines.append(f"opened:     escalation {view.linked} (escalate status {view.linked})")
    lines.extend(f"{label + ':':<11} {one_line(text)}" for label, text in view.details.items())
    lines.append(f"flags:      {', '.join(f.value for f in view.flags) or 'none'}")
    return lines


async def cmd_status(args: argparse.Namespace) -> int:
    client = await connect_client(args)
    view = await _read(args, client.get_workflow_handle(args.id))
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    print("\n".join(status_lines(view)))
    print("last events:")
    for entry in view.timeline[-5:]:
        print("  " + event_line(entry))
    return 0


async def cmd_history(args: argparse.Namespace) -> int:
    client = await connect_client(args)
    view = await _read(args, client.get_workflow_handle(args.id))
    for label, text in view.details.items():
        print(f"{label}: {one_line(text)}")
    for entry in view.timeline:
        print(event_line(entry))
    return 0


# --- protocol show -----------------------------------------------------------------------------------------


def protocol_process_lines(p: Protocol) -> list[str]:
    """The ``deemed_agreement`` and ``practice_concerns`` blocks for ``escalate protocol show``."""

    def who(roles: list[str]) -> str:
        return ", ".join(f"{p.role_name(r)} [{r}]" for r in roles) or "nobody"

    out: list[str] = []
    d = p.deemed_agreement
    if d is None:
        out.append("review decisions deemed agreed: not run under this protocol")
    else:
        out += [
            f"review decisions deemed agreed ({d.label}; case note type: {d.case_note_type}):",
            f"  sent by: {who(d.officer_roles)}; to: {who(d.sent_to)}; cc: {who(d.cc)}",
            f"  time to disagree: {d.working_days} working day{'' if d.working_days == 1 else 's'}; a "
            f"disagreement opens track {d.resolution_track}, category: {d.resolution_category}",
        ]
        if d.note:
            out.append(f"  note: {one_line(d.note)}")
    c = p.practice_concerns
    if c is None:
        out.append("concerns about an officer's practice: not run under this protocol")
    else:
        after = f"{c.escalation_working_days} working days" if c.escalation_working_days else "no set time"
        out += [
            f"concerns about an officer's practice ({c.label}; escalated: {c.escalation_label}):",
            f"  about: {who(c.about_roles)}; raised by: {who(c.raised_by) if c.raised_by else 'any role'}",
            f"  investigated by: {who(c.investigated_by)} within {c.working_days} working days; then "
            f"{who(c.escalates_to)} ({after}); cc: {who(c.cc)}",
        ]
        if c.note:
            out.append(f"  note: {one_line(c.note)}")
    return out
