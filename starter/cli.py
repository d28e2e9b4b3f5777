"""``escalate``: the command line for everyone who takes part in an escalation.

Every action a person can take maps to one of ``EscalationWorkflow``'s updates, and ``status``/``history``/
``list`` read its ``state`` query::

    escalate raise --authority gloucestershire --track iro-cp --category "Key decision-making" \\
        --child-ref C4F2A9 --team team-a --officer-id glo-iro-a --officer-role iro \\
        --summary ... --impact ... --request ...
    escalate respond gloucestershire-C4F2A9-0001 --as-id glo-social-worker-a --as-role social_worker \\
        --answer ...
    escalate status gloucestershire-C4F2A9-0001 [--json]

Acting commands take the actor as ``--as-id``/``--as-role`` (defaults ``ESCALATE_AS_ID`` and
``ESCALATE_AS_ROLE``); ``--address``/``--namespace`` (defaults ``TEMPORAL_ADDRESS``/``TEMPORAL_NAMESPACE``)
name the server. Dates are YYYY-MM-DD; a malformed date or a past date is refused before anything is sent.

Exit status: 0 done (one line says the outcome); 1 refused by the escalation's rules (``refused: <reason>``
on stderr); 2 bad input (unknown authority or escalation, malformed file or date, ...), nothing changed;
3 the service is unreachable or no worker answered in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.client import WorkflowUpdateFailedError as UpdateFailed
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.working_days import LONDON, WorkingDayCalendar
from protocols import ProtocolError, available_protocols, load_protocol, load_protocol_file
from schemas.escalation import (
    Accept,
    Action,
    ActionResult,
    Actor,
    AddNote,
    Bypass,
    Close,
    Concern,
    DecideExtension,
    Escalate,
    EscalationView,
    Flag,
    RecordConsultation,
    RecordMeeting,
    RecordViews,
    ReferToCafcass,
    RequestExtension,
    Respond,
    SetTimescale,
    Status,
    Withdraw,
    escalation_id_for,
)
from schemas.protocol import Protocol, Track
from starter import worker_options
from starter.clean_exit import run_then_exit
from starter.codec import PayloadKeyError
from starter.connection import connect, temporal_address, temporal_namespace
from starter.escalations import prepare, raise_concern
from starter.mail_catcher import MAIL_DIR, caught, plain_text, read_caught, summary_line
from workflows import rules
from workflows.escalation import REFUSED, TASK_QUEUE

PROG = "escalate"
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
DEFAULT_WAIT_S = 30.0
LAST_EVENTS = 5

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class CliError(Exception):
    """An expected failure: one line on stderr and an exit code, never a traceback."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = _one_line(message)
        self.code = code

    def line(self) -> str:
        return self.message if self.code != EXIT_REFUSED else f"refused: {self.message}"


def _refused(reason: str) -> CliError:
    return CliError(reason, EXIT_REFUSED)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- parsing ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Bad command-line input is one line and exit status 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)")


def london_today() -> date:
    return datetime.now(UTC).astimezone(LONDON).date()


def any_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def coming_date(text: str) -> date:
    """A date that is today or later (London)."""
    day = any_date(text)
    if day < london_today():
        raise argparse.ArgumentTypeError(f"{day:%-d %B %Y} is in the past: give today or a later date")
    return day


def past_date(text: str) -> date:
    """A date that is today or earlier (London): something that has already happened."""
    day = any_date(text)
    if day > london_today():
        raise argparse.ArgumentTypeError(f"{day:%-d %B %Y} is in the future: give the day it happened")
    return day


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is negative: give 0 or more")
    return n


_OPTION_FOR = {
    "actor.id": "--as-id",
    "actor.role": "--as-role",
    "officer.id": "--officer-id",
    "officer.role": "--officer-role",
    "concern.summary": "--summary",
    "concern.impact_on_child": "--impact",
    "concern.requested_action": "--request",
    "escalation_id": "--authority/--child-ref",
    "attendees": "--attendee",
    "text": "--text",
}


def _describe_validation(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err["loc"])
        option = _OPTION_FOR.get(loc, "--" + loc.rsplit(".", 1)[-1].replace("_", "-"))
        parts.append(f"{option}: {err['msg']}")
    return "; ".join(parts)


def _model(cls: type[M], **fields: Any) -> M:
    """Build an action locally, so malformed input is refused before anything is sent."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise CliError(_describe_validation(exc)) from None


# --- connecting, reading and acting ----------------------------------------------------------------------


async def _client(args: argparse.Namespace) -> Client:
    try:
        return await asyncio.wait_for(connect(args.address, args.namespace), timeout=args.wait)
    except PayloadKeyError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Connection refused" in reason or isinstance(exc, TimeoutError):
            reason = "nothing answers there; is the service running (`escalate up`, or `make run`)?"
        address = temporal_address(args.address)
        raise CliError(f"cannot reach Temporal at {address}: {reason}", EXIT_UNAVAILABLE) from None


def _unknown(args: argparse.Namespace, escalation_id: str) -> CliError:
    namespace = temporal_namespace(args.namespace)
    return CliError(f"unknown escalation {escalation_id!r}: no such escalation in namespace {namespace!r}")


def _no_worker(args: argparse.Namespace, doing: str) -> CliError:
    return CliError(
        f"no worker answered within {args.wait:g} s while {doing}: is a worker running "
        f"(`escalate worker`) on task queue {TASK_QUEUE!r}?",
        EXIT_UNAVAILABLE,
    )


async def _query(
    args: argparse.Namespace,
    handle: WorkflowHandle[Any, Any],
    query: str,
    *query_args: Any,
    result_type: type[R],
) -> R:
    """One of the escalation's queries, with every expected failure turned into a one-line reason."""
    try:
        result: R = await handle.query(
            query, args=query_args, result_type=result_type, rpc_timeout=timedelta(seconds=args.wait)
        )
        return result
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise _unknown(args, handle.id) from None
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE):
            raise _no_worker(args, f"reading {handle.id}") from None
        raise CliError(f"cannot read {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    except WorkflowQueryFailedError as exc:
        raise CliError(f"cannot read {handle.id}: {exc}") from None


async def _state(args: argparse.Namespace, handle: WorkflowHandle[Any, Any]) -> EscalationView:
    """The escalation's state query."""
    return await _query(args, handle, "state", result_type=EscalationView)


async def _ensure_open(args: argparse.Namespace, handle: WorkflowHandle[Any, Any]) -> None:
    """Unknown id: bad input (2). An escalation that has ended: refused (1), as the rules would say."""
    try:
        described = await handle.describe(rpc_timeout=timedelta(seconds=args.wait))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise _unknown(args, handle.id) from None
        raise CliError(f"cannot look up {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    if described.workflow_type != "EscalationWorkflow":
        raise CliError(f"{handle.id!r} is a {described.workflow_type} workflow, not an escalation")
    status = described.status
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return
    if status == WorkflowExecutionStatus.COMPLETED:
        view = await _state(args, handle)
        raise _refused(f"the escalation is {_words(view.status)}; nothing more can be done")
    raise _refused(f"the escalation's workflow is {status.name.lower()}; nothing more can be done")


async def _act(args: argparse.Namespace, action: Action) -> int:
    """Send ``action`` as the update of the same name; print its outcome on one line."""
    kind: str = action.kind
    client = await _client(args)
    handle = client.get_workflow_handle(args.id)
    await _ensure_open(args, handle)
    try:
        result = await asyncio.wait_for(
            handle.execute_update(kind, action, result_type=ActionResult), timeout=args.wait
        )
    except UpdateFailed as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == REFUSED:
            raise _refused(cause.message) from None
        raise CliError(f"the escalation could not {kind.replace('_', ' ')}: {cause or exc}", 1) from None
    except TimeoutError:
        raise _no_worker(args, f"sending {kind} (it may still be applied once one runs)") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # ended between the look-up and the update
            await _ensure_open(args, handle)
            raise _unknown(args, handle.id) from None
        raise CliError(f"cannot send {kind} to {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    print(f"{handle.id}: {result.outcome} ({_words(result.status)}, stage {result.stage})")
    return 0


_WHO_ACTS = "say who acts: --as-id and --as-role (or set ESCALATE_AS_ID and ESCALATE_AS_ROLE)"
_WHO_RAISES = "say who raises: --officer-id and --officer-role (or ESCALATE_AS_ID/ESCALATE_AS_ROLE)"


def _actor(args: argparse.Namespace, missing: str = _WHO_ACTS) -> Actor:
    actor_id = args.as_id or os.environ.get("ESCALATE_AS_ID")
    role = args.as_role or os.environ.get("ESCALATE_AS_ROLE")
    if not actor_id or not role:
        raise CliError(missing)
    return _model(Actor, id=actor_id, role=role)


# --- formatting ------------------------------------------------------------------------------------------


def _words(status: Status) -> str:
    return status.value.replace("_", " ")


def _day(day: date) -> str:
    return f"{day:%A %-d %B %Y}"


def _role_names(authority: str) -> Callable[[str], str]:
    try:
        protocol: Protocol | None = load_protocol(authority)
    except ProtocolError:
        protocol = None
    return protocol.role_name if protocol else (lambda role: role)


def _london(instant: datetime) -> str:
    return f"{instant.astimezone(LONDON):%Y-%m-%d %H:%M}"


def _event_line(entry: Any) -> str:
    who = f"{entry.actor.id} ({entry.actor.role})" if entry.actor else "-"
    return (
        f"{entry.seq:>3}  {_london(entry.at)}  {entry.kind.value:<23} {entry.stage or '-':<10} {who}: "
        f"{_one_line(entry.text)}"
    )


def _status_text(view: EscalationView) -> list[str]:
    name = _role_names(view.authority)
    officer = view.timeline[0].actor if view.timeline else None
    lines = [
        f"{view.escalation_id}: {view.authority}, track {view.track}, child {view.child_ref}",
        f"category:   {view.category}",
        f"status:     {_words(view.status)}" + ("  (still recording the last change)" if view.busy else ""),
        f"stage:      {view.stage_number}/{view.stage_count} {view.stage_name}"
        + (" (formal)" if view.formal else " (informal)"),
        f"held by:    {', '.join(name(r) for r in view.held_by)}"
        + (f"; copied: {', '.join(name(r) for r in view.copied)}" if view.copied else ""),
    ]
    if officer:
        lines.append(f"raised by:  {officer.id} ({name(officer.role)})")
    if view.deadline_date:
        lines.append(f"deadline:   {_day(view.deadline_date)} ({view.working_days_left} working days left)")
    else:
        lines.append("deadline:   none running")
    if view.total_deadline_date:
        lines.append(
            f"total limit: {_day(view.total_deadline_date)} "
            f"({view.total_working_days_left} working days left)"
        )
    else:
        lines.append("total limit: not started (the formal process has not begun)")
    pending = view.pending_extension
    if pending:
        lines.append(
            f"extension:  {pending.requested_by.id} asks for more time until {_day(pending.until)}: "
            f"{_one_line(pending.reason)}"
        )
    else:
        lines.append("extension:  none pending")
    lines.append(f"flags:      {', '.join(f.value for f in view.flags) or 'none'}")
    lines.append("last events:")
    lines.extend("  " + _event_line(e) for e in view.timeline[-LAST_EVENTS:])
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


# --- commands: reading -----------------------------------------------------------------------------------


async def cmd_status(args: argparse.Namespace) -> int:
    client = await _client(args)
    view = await _state(args, client.get_workflow_handle(args.id))
    if args.json:
        print(view.model_dump_json(indent=2))
    else:
        print("\n".join(_status_text(view)))
    return 0


async def cmd_history(args: argparse.Namespace) -> int:
    client = await _client(args)
    view = await _state(args, client.get_workflow_handle(args.id))
    for entry in view.timeline:
        print(_event_line(entry))
    return 0


_COMMAND_FOR = {"refer_to_cafcass": "refer-cafcass", "add_note": "note", "record_views": "views"}
"""The command for an action whose name differs from its update's."""


async def cmd_actions(args: argparse.Namespace) -> int:
    actor = _actor(args)
    client = await _client(args)
    handle = client.get_workflow_handle(args.id)
    allowed = await _query(args, handle, "available_actions", actor, result_type=list[str])
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
    client = await _client(args)
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
                return await _state(args, client.get_workflow_handle(escalation_id))
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


# --- commands: raising and acting ------------------------------------------------------------------------


def _track_for(protocol: Protocol, key: str | None, officer_role: str) -> Track:
    if key:
        try:
            return protocol.track(key)
        except KeyError:
            known = ", ".join(t.key for t in protocol.tracks)
            raise CliError(f"{protocol.key} has no track {key!r}; its tracks: {known}") from None
    fitting = [t for t in protocol.tracks if officer_role in t.officer_roles]
    if len(fitting) != 1:
        known = ", ".join(f"{t.key} ({'/'.join(t.officer_roles)})" for t in protocol.tracks)
        raise CliError(f"give --track: {protocol.key}'s tracks are {known}")
    return fitting[0]


def _category(track: Track, given: str) -> str:
    """The category's text, or its number (1-based) in the track's list as ``protocol show`` prints it."""
    if given.isdigit():
        n = int(given)
        if not 1 <= n <= len(track.categories):
            raise CliError(f"--category {n}: the {track.key} track has categories 1-{len(track.categories)}")
        return track.categories[n - 1]
    return given


async def _free_sequence(args: argparse.Namespace, client: Client, authority: str, child_ref: str) -> int:
    """The first sequence number for this child whose escalation id is unused (even by an ended one)."""
    for sequence in range(1, 10_000):
        try:
            await client.get_workflow_handle(escalation_id_for(authority, child_ref, sequence)).describe(
                rpc_timeout=timedelta(seconds=args.wait)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return sequence
            raise CliError(f"cannot look up escalations: {exc.message}", EXIT_UNAVAILABLE) from None
    raise CliError(f"child {child_ref} has 9999 escalations in {authority}: give --sequence")


async def _settled(args: argparse.Namespace, handle: WorkflowHandle[Any, Any], timed: bool) -> EscalationView:
    """The state once the first stage is sent (its deadline placed), or whatever there is after a while."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + min(args.wait, 15.0)
    while True:
        view = await _state(args, handle)
        ready = not view.busy and (view.deadline_date is not None or not timed)
        if ready or view.status is not Status.AWAITING_RESPONSE or loop.time() > give_up:
            return view
        await asyncio.sleep(0.1)


async def cmd_raise(args: argparse.Namespace) -> int:
    officer = _actor(args, _WHO_RAISES)
    try:
        protocol = load_protocol(args.authority)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    track = _track_for(protocol, args.track, officer.role)
    if args.start_at_stage and not args.bypass_reason:
        raise CliError("--start-at-stage is a bypass at the start: give --bypass-reason too")
    if args.team is not None and args.team.strip() == "":
        raise CliError("--team: give the team's key, or leave it out")
    concern = _model(
        Concern, summary=args.summary, impact_on_child=args.impact, requested_action=args.request
    )
    start_bypass = None
    if args.start_at_stage:
        start_bypass = _model(
            Bypass,
            actor=officer,
            to_stage=args.start_at_stage,
            reason=args.bypass_reason,
            emergency=args.emergency,
            discussed_with=args.discussed_with,
        )
    try:
        raise_ = prepare(
            authority=args.authority,
            track=track.key,
            category=_category(track, args.category),
            child_ref=args.child_ref,
            sequence=args.sequence or 1,
            officer=officer,
            concern=concern,
            service_area=args.service_area,
            team=args.team,
            start_at_stage=args.start_at_stage,
            start_bypass=start_bypass,
        )
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        raise CliError(_describe_validation(exc)) from None
    except rules.Refused as exc:
        raise _refused(exc.reason) from None
    client = await _client(args)
    if args.sequence is None:
        sequence = await _free_sequence(args, client, protocol.key, raise_.child_ref)
        raise_ = raise_.model_copy(
            update={"escalation_id": escalation_id_for(protocol.key, raise_.child_ref, sequence)}
        )
    else:
        try:
            described = await client.get_workflow_handle(raise_.escalation_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise CliError(
                    f"cannot look up {raise_.escalation_id}: {exc.message}", EXIT_UNAVAILABLE
                ) from None
        else:
            state = described.status.name.lower() if described.status else "unknown"
            raise CliError(
                f"escalation {raise_.escalation_id} already exists ({state}): choose another --sequence, "
                "or leave it out for the next free one"
            )
    try:
        handle = await raise_concern(client, raise_)
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            raise CliError(
                f"escalation {raise_.escalation_id} already exists: choose another --sequence"
            ) from None
        raise CliError(f"cannot start {raise_.escalation_id}: {exc.message}", EXIT_UNAVAILABLE) from None
    except Exception as exc:  # WorkflowAlreadyStartedError and the like
        raise CliError(f"cannot start {raise_.escalation_id}: {exc}") from None
    stage = track.stages[(raise_.start_at_stage and track.stage_index(raise_.start_at_stage)) or 0]
    view = await _settled(args, handle, timed=stage.response_working_days is not None)
    name = protocol.role_name
    due = f"; due {_day(view.deadline_date)}" if view.deadline_date else ""
    print(
        f"raised {view.escalation_id}: {_words(view.status)} at {view.stage_name}, "
        f"held by {', '.join(name(r) for r in view.held_by)}{due}"
    )
    return 0


async def cmd_respond(args: argparse.Namespace) -> int:
    if args.action_plan_due and not args.action_plan:
        raise CliError("--action-plan-due needs --action-plan")
    return await _act(
        args,
        _model(
            Respond,
            actor=_actor(args),
            answer=args.answer,
            action_plan=args.action_plan,
            action_plan_due=args.action_plan_due,
        ),
    )


async def cmd_request_extension(args: argparse.Namespace) -> int:
    action = _model(RequestExtension, actor=_actor(args), until=args.until, reason=args.reason)
    return await _act(args, action)


async def cmd_decide_extension(args: argparse.Namespace) -> int:
    if args.decline and not (args.reason or "").strip():
        raise CliError("--decline needs --reason: say why")
    action = _model(
        DecideExtension,
        actor=_actor(args),
        approve=args.approve,
        reason=args.reason or "",
        exceed_total_limit=args.exceed_total_limit,
    )
    return await _act(args, action)


async def cmd_set_timescale(args: argparse.Namespace) -> int:
    action = _model(
        SetTimescale, actor=_actor(args), working_days=args.working_days, until=args.until, reason=args.reason
    )
    return await _act(args, action)


async def cmd_accept(args: argparse.Namespace) -> int:
    if args.action_plan_due and not args.action_plan:
        raise CliError("--action-plan-due needs --action-plan")
    action = _model(
        Accept,
        actor=_actor(args),
        note=args.note or "",
        action_plan=args.action_plan,
        action_plan_due=args.action_plan_due,
    )
    return await _act(args, action)


async def cmd_escalate(args: argparse.Namespace) -> int:
    return await _act(args, _model(Escalate, actor=_actor(args), reason=args.reason))


async def cmd_bypass(args: argparse.Namespace) -> int:
    action = _model(
        Bypass,
        actor=_actor(args),
        to_stage=args.to_stage,
        reason=args.reason,
        emergency=args.emergency,
        discussed_with=args.discussed_with,
    )
    return await _act(args, action)


async def cmd_refer_cafcass(args: argparse.Namespace) -> int:
    action = _model(ReferToCafcass, actor=_actor(args), reason=args.reason, consulted=args.consulted or [])
    return await _act(args, action)


async def cmd_record_consultation(args: argparse.Namespace) -> int:
    action = _model(
        RecordConsultation,
        actor=_actor(args),
        stage=args.stage,
        with_role=args.with_role,
        agreed=args.agreed,
        summary=args.summary,
    )
    return await _act(args, action)


async def cmd_record_meeting(args: argparse.Namespace) -> int:
    action = _model(
        RecordMeeting, actor=_actor(args), held_on=args.held_on, attendees=args.attendee, outcome=args.outcome
    )
    return await _act(args, action)


async def cmd_withdraw(args: argparse.Namespace) -> int:
    return await _act(args, _model(Withdraw, actor=_actor(args), reason=args.reason))


async def cmd_close(args: argparse.Namespace) -> int:
    return await _act(args, _model(Close, actor=_actor(args), reason=args.reason))


async def cmd_note(args: argparse.Namespace) -> int:
    return await _act(args, _model(AddNote, actor=_actor(args), text=args.text))


async def cmd_views(args: argparse.Namespace) -> int:
    return await _act(args, _model(RecordViews, actor=_actor(args), whose=args.whose, views=args.views))


# --- commands: protocols, calendar, worker ---------------------------------------------------------------


async def cmd_protocol_list(args: argparse.Namespace) -> int:
    for key in available_protocols():
        try:
            p = load_protocol(key)
        except ProtocolError as exc:
            print(f"{key}  INVALID: {_one_line(str(exc))}")
            continue
        tracks = ", ".join(f"{t.key} ({len(t.stages)} stages)" for t in p.tracks)
        print(f"{key}  {p.authority}  tracks: {tracks}")
    return 0


async def cmd_protocol_show(args: argparse.Namespace) -> int:
    try:
        p = load_protocol(args.key)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    name = p.role_name
    out = [
        f"{p.key}: {p.authority}",
        f"title: {p.title}",
        f"total formal limit: {p.total_formal_working_days} working days; breach told to: "
        f"{', '.join(name(r) for r in p.breach_notify)}",
        f"bypass: {'allowed' if p.bypass.allowed else 'not allowed'}"
        + (
            f", after a discussion with {', '.join(map(name, p.bypass.prior_discussion_with))}"
            if p.bypass.prior_discussion_with
            else ""
        ),
        f"CAFCASS referral by: {', '.join(map(name, p.cafcass.officer_roles)) or 'nobody'}",
        f"extensions approved by: {name(p.extensions.approved_by)}",
        f"closure days: {', '.join(d.isoformat() for d in p.closure_days) or 'none'}",
        f"service areas: {', '.join(p.service_areas) or 'none'}",
    ]
    for t in p.tracks:
        out.append(f"track {t.key}: {t.name} (raised by {', '.join(map(name, t.officer_roles))})")
        for i, s in enumerate(t.stages, 1):
            days = f"{s.response_working_days} working days" if s.response_working_days else "no set time"
            extras = [x for x in ("formal" if s.formal else "informal", "meeting" if s.meeting else "") if x]
            if s.entry_gate:
                extras.append(
                    f"{s.entry_gate.kind.value} with {', '.join(map(name, s.entry_gate.with_roles))}"
                )
            cc = f"; cc {', '.join(map(name, s.cc))}" if s.cc else ""
            out.append(
                f"  {i}. {s.key}: {s.name} -> {', '.join(map(name, s.to))}{cc}; {days}; {', '.join(extras)}"
            )
        out.append("  categories:")
        out.extend(f"    {i}. {c}" for i, c in enumerate(t.categories, 1))
    print("\n".join(out))
    return 0


async def cmd_protocol_check(args: argparse.Namespace) -> int:
    try:
        p = load_protocol_file(args.file)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    n = len(p.tracks)
    print(f"ok: {p.authority}, {n} track{'s' if n != 1 else ''}")
    return 0


async def cmd_calendar_add(args: argparse.Namespace) -> int:
    closure: list[date] = []
    if args.authority:
        try:
            closure = list(load_protocol(args.authority).closure_days)
        except ProtocolError as exc:
            raise CliError(str(exc)) from None
    calendar = WorkingDayCalendar(closure)
    start: date = args.date
    due = calendar.add_working_days(start, args.n)
    counts_from = calendar.next_working_day(start)
    where = f" ({args.authority})" if args.authority else " (England; no authority closure days)"
    print(f"{due.isoformat()}: {_day(due)} is {args.n} working days after {_day(start)}{where}")
    if counts_from != start:
        print(
            f"  {start.isoformat()} is not a working day ({calendar.why_not_working(start)}): counted from "
            f"{counts_from.isoformat()}"
        )
    day = start + timedelta(days=1)
    while day <= due:
        why = calendar.why_not_working(day)
        if why and day > counts_from:
            print(f"  skipped {day.isoformat()} {day:%a}: {why}")
        day += timedelta(days=1)
    return 0


async def cmd_worker(args: argparse.Namespace) -> int:
    import worker  # only here: the worker's imports are heavy (see starter.worker_options)

    return await worker.serve(args)


async def cmd_mail(args: argparse.Namespace) -> int:
    """What ``escalate up``'s mail catcher caught: a listing, or one message's plain text."""
    folder = args.folder
    files = caught(folder)
    if args.number is not None:
        if not 1 <= args.number <= len(files):
            raise CliError(
                f"no message {args.number} in {folder}: there are {len(files)} (escalate mail lists them)"
            )
        print(plain_text(read_caught(files[args.number - 1])))
        return 0
    if not files:
        print(f"no mail caught in {folder}")
        return 0
    numbered = list(enumerate(files, 1))
    for number, path in numbered[-args.last :] if args.last else numbered:
        print(summary_line(number, read_caught(path)))
    return 0


async def cmd_up(args: argparse.Namespace) -> int:
    """Reached only with options before ``up``: ``main`` hands ``escalate up ...`` to ``starter.local``."""
    raise CliError("`up` takes no connection options: run `escalate up [--with-sample-data]`")


# --- the parser ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Raise, follow and act on escalations.")
    conn = _Parser(add_help=False)
    conn.add_argument("--address", default=argparse.SUPPRESS, help="Temporal frontend (TEMPORAL_ADDRESS)")
    conn.add_argument(
        "--namespace", default=argparse.SUPPRESS, help="Temporal namespace (TEMPORAL_NAMESPACE)"
    )
    conn.add_argument("--wait", type=float, default=argparse.SUPPRESS, help="seconds to wait for an answer")
    parser.add_argument("--address", default=None, help="Temporal frontend (default TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", default=None, help="Temporal namespace (default TEMPORAL_NAMESPACE)")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, help="seconds to wait for an answer")
    actor = _Parser(add_help=False)
    actor.add_argument("--as-id", help="your staff reference (default ESCALATE_AS_ID)")
    actor.add_argument("--as-role", help="the role you act in (default ESCALATE_AS_ROLE)")
    ident = _Parser(add_help=False)
    ident.add_argument("id", help="escalation id, e.g. wigan-C4F2A9-0003")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def command(
        name: str,
        run: Callable[[argparse.Namespace], Awaitable[int]],
        helptext: str,
        *parents: _Parser,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext, parents=list(parents))
        p.set_defaults(run=run)
        return p

    p = command("raise", cmd_raise, "raise a concern: start an escalation", conn)
    p.add_argument("--authority", required=True, help="protocol key, e.g. gloucestershire")
    p.add_argument("--track", help="track key (default: the one track the officer's role raises on)")
    p.add_argument("--category", required=True, help="the category's text, or its number (protocol show)")
    p.add_argument("--child-ref", required=True, help="the child's opaque reference (never a name)")
    p.add_argument("--sequence", type=int, help="escalation number for this child (default: next free)")
    p.add_argument("--team")
    p.add_argument("--service-area")
    p.add_argument("--officer-id", "--as-id", dest="as_id", help="raising officer (default ESCALATE_AS_ID)")
    p.add_argument(
        "--officer-role", "--as-role", dest="as_role", help="their role (default ESCALATE_AS_ROLE)"
    )
    p.add_argument("--summary", required=True, help="what the concern is")
    p.add_argument("--impact", required=True, help="its impact on the child")
    p.add_argument("--request", required=True, help="what is asked of the recipient")
    p.add_argument("--start-at-stage", help="bypass at the start: begin at this stage")
    p.add_argument("--bypass-reason")
    p.add_argument("--emergency", action="store_true")
    p.add_argument("--discussed-with", help="role the bypass was discussed with first")

    p = command("respond", cmd_respond, "answer the concern (the stage's recipient)", ident, actor, conn)
    p.add_argument("--answer", required=True)
    p.add_argument("--action-plan")
    p.add_argument("--action-plan-due", type=coming_date, metavar="DATE")

    p = command("request-extension", cmd_request_extension, "ask for more time", ident, actor, conn)
    p.add_argument("--until", type=coming_date, required=True, metavar="DATE")
    p.add_argument("--reason", required=True)

    p = command("decide-extension", cmd_decide_extension, "approve or decline more time", ident, actor, conn)
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", dest="approve", action="store_true")
    choice.add_argument("--decline", action="store_true")
    p.add_argument("--reason")
    p.add_argument("--exceed-total-limit", action="store_true", help="let the date pass the total limit")

    p = command("set-timescale", cmd_set_timescale, "set this stage's time", ident, actor, conn)
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--working-days", type=_count)
    when.add_argument("--until", type=coming_date, metavar="DATE")
    p.add_argument("--reason", required=True)

    p = command("accept", cmd_accept, "the answer resolves it (or agree an action plan)", ident, actor, conn)
    p.add_argument("--note")
    p.add_argument("--action-plan")
    p.add_argument("--action-plan-due", type=coming_date, metavar="DATE")

    p = command("escalate", cmd_escalate, "the answer does not address the concern", ident, actor, conn)
    p.add_argument("--reason", required=True)

    p = command("bypass", cmd_bypass, "jump to a later stage", ident, actor, conn)
    p.add_argument("--to-stage", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--emergency", action="store_true")
    p.add_argument("--discussed-with", metavar="ROLE")

    p = command("refer-cafcass", cmd_refer_cafcass, "refer to CAFCASS", ident, actor, conn)
    p.add_argument("--reason", required=True)
    p.add_argument("--consulted", nargs="+", metavar="ROLE", default=[])

    p = command("record-consultation", cmd_record_consultation, "record a consultation", ident, actor, conn)
    p.add_argument("--stage", required=True, help="the gated stage it opens")
    p.add_argument("--with-role", required=True)
    agreed = p.add_mutually_exclusive_group()
    agreed.add_argument("--agreed", dest="agreed", action="store_const", const=True, default=None)
    agreed.add_argument("--not-agreed", dest="agreed", action="store_const", const=False)
    p.add_argument("--summary", required=True)

    p = command("record-meeting", cmd_record_meeting, "record a stage's meeting", ident, actor, conn)
    p.add_argument("--held-on", type=past_date, required=True, metavar="DATE")
    p.add_argument("--attendee", action="append", required=True, help="repeat for each attendee")
    p.add_argument("--outcome", required=True)

    p = command("withdraw", cmd_withdraw, "withdraw the escalation", ident, actor, conn)
    p.add_argument("--reason", required=True)
    p = command("close", cmd_close, "close an exhausted escalation", ident, actor, conn)
    p.add_argument("--reason", required=True)
    p = command("note", cmd_note, "add a note", ident, actor, conn)
    p.add_argument("--text", required=True)
    p = command("views", cmd_views, "record the child's, a parent's or a carer's views", ident, actor, conn)
    p.add_argument("--whose", choices=["child", "parent", "carer"], required=True)
    p.add_argument("--views", required=True)

    p = command("status", cmd_status, "where an escalation stands", ident, conn)
    p.add_argument("--json", action="store_true", help="the whole state as JSON")
    command("history", cmd_history, "the timeline, one line per event", ident, conn)
    command("actions", cmd_actions, "what you may do now", ident, actor, conn)
    p = command("list", cmd_list, "list escalations", conn)
    p.add_argument("--authority")
    p.add_argument("--stage", help="stage key")
    p.add_argument("--status", help="e.g. awaiting_response")
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--open", action="store_true", help="only escalations that have not ended")

    p = command("protocol", cmd_protocol_list, "authorities' protocols")
    psub = p.add_subparsers(
        dest="protocol_command", metavar="list|show|check", required=True, parser_class=_Parser
    )
    psub.add_parser("list", help="every protocol").set_defaults(run=cmd_protocol_list)
    q = psub.add_parser("show", help="one protocol's roles, tracks, stages and categories")
    q.add_argument("key")
    q.set_defaults(run=cmd_protocol_show)
    q = psub.add_parser("check", help="validate a protocol file")
    q.add_argument("file")
    q.set_defaults(run=cmd_protocol_check)

    p = command("calendar", cmd_calendar_add, "the working-day calendar")
    csub = p.add_subparsers(
        dest="calendar_command", metavar="add-working-days", required=True, parser_class=_Parser
    )
    q = csub.add_parser("add-working-days", help="the date N working days after DATE")
    q.add_argument("date", type=any_date)
    q.add_argument("n", type=_count, metavar="N")
    q.add_argument("--authority", help="count the authority's closure days too")
    q.set_defaults(run=cmd_calendar_add)

    p = command("worker", cmd_worker, "run a worker until Ctrl-C (as python worker.py)", conn)
    worker_options.add_arguments(p)
    p = command("mail", cmd_mail, "read the mail escalate up caught: a list, or message N")
    p.add_argument("number", nargs="?", type=int, metavar="N", help="show message N's plain text")
    p.add_argument("--last", type=_count, default=20, help="list only the last N (0 for all; default 20)")
    p.add_argument("--folder", type=Path, default=MAIL_DIR, help=f"where caught mail is (default {MAIL_DIR})")
    command("up", cmd_up, "run the whole service locally (escalate up --help)")
    return parser


# --- entry points ----------------------------------------------------------------------------------------


async def _main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(list(argv))
        result: int = await args.run(args)
        return result
    except CliError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.code


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``escalate`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["up"]:  # the local service has its own options and its own clean exit
        from starter.local import cli as up

        up(args[1:])
    run_then_exit(lambda: _main(args))


if __name__ == "__main__":
    main()
