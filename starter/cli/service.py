"""Talking to Temporal: connecting, reading an escalation's queries, sending its updates."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.client import WorkflowUpdateFailedError as UpdateFailed
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from schemas.escalation import (
    Action,
    ActionResult,
    Actor,
    EscalationView,
)
from schemas.wording import with_article
from starter.cli.common import EXIT_UNAVAILABLE, CliError, build, refused, words
from starter.codec import PayloadKeyError
from starter.connection import connect, temporal_address, temporal_namespace
from workflows.escalation import BUSY, REFUSED, TASK_QUEUE

R = TypeVar("R")


async def connect_client(args: argparse.Namespace) -> Client:
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


def unknown(args: argparse.Namespace, escalation_id: str) -> CliError:
    namespace = temporal_namespace(args.namespace)
    return CliError(f"unknown escalation {escalation_id!r}: no such escalation in namespace {namespace!r}")


def no_worker(args: argparse.Namespace, doing: str) -> CliError:
    return CliError(
        f"no worker answered within {args.wait:g} s while {doing}: is a worker running "
        f"(`escalate worker`) on task queue {TASK_QUEUE!r}?",
        EXIT_UNAVAILABLE,
    )


async def run_query(
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
            raise unknown(args, handle.id) from None
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE):
            raise no_worker(args, f"reading {handle.id}") from None
        raise CliError(f"cannot read {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    except WorkflowQueryFailedError as exc:
        raise CliError(f"cannot read {handle.id}: {exc}") from None


async def read_state(args: argparse.Namespace, handle: WorkflowHandle[Any, Any]) -> EscalationView:
    """The escalation's state query."""
    return await run_query(args, handle, "state", result_type=EscalationView)


async def ensure_open(args: argparse.Namespace, handle: WorkflowHandle[Any, Any]) -> None:
    """Unknown id: bad input (2). An escalation that has ended: refused (1), as the rules would say."""
    try:
        described = await handle.describe(rpc_timeout=timedelta(seconds=args.wait))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise unknown(args, handle.id) from None
        raise CliError(f"cannot look up {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    if described.workflow_type != "EscalationWorkflow":
        raise CliError(
            f"{handle.id!r} is {with_article(described.workflow_type)} workflow, not an escalation"
        )
    status = described.status
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return
    if status == WorkflowExecutionStatus.COMPLETED:
        view = await read_state(args, handle)
        raise refused(f"the escalation is {words(view.status)}; nothing more can be done")
    raise refused(f"the escalation's workflow is {status.name.lower()}; nothing more can be done")


BUSY_BACKOFF_S = (0.2, 2.0)
"""First pause before sending a busy-refused update again, and the longest (the pause doubles)."""


def _stuck(args: argparse.Namespace, kind: str, busy: int) -> CliError:
    """Exit 3: the update got no answer within ``--wait``."""
    if busy:
        return CliError(
            f"the escalation was still busy with its last change after {args.wait:g} s ({kind} was "
            f"refused as busy {busy} time{'s' if busy != 1 else ''}): try again shortly, or give a "
            "longer --wait",
            EXIT_UNAVAILABLE,
        )
    return CliError(
        f"the escalation did not answer {kind} in {args.wait:g} s; it may be busy or no worker is running "
        f"(`escalate worker`, task queue {TASK_QUEUE!r}): try again, or give a longer --wait "
        "(it may still be applied once a worker runs)",
        EXIT_UNAVAILABLE,
    )


async def act(args: argparse.Namespace, action: Action) -> int:
    """Send ``action`` as the update of the same name; print its outcome on one line.

    An update refused as busy is sent again after a short pause (0.2 s, doubling to 2 s) until ``--wait``
    runs out; every other refusal is final. One round trip when all is well: the escalation is looked up
    (``ensure_open``) only when the update finds no running workflow, to say why.
    """
    kind: str = action.kind
    client = await connect_client(args)
    handle = client.get_workflow_handle(args.id)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + args.wait
    pause, longest = BUSY_BACKOFF_S
    busy = 0
    while True:
        left = give_up - loop.time()
        if left <= 0:
            raise _stuck(args, kind, busy)
        try:
            result = await asyncio.wait_for(
                handle.execute_update(kind, action, result_type=ActionResult), timeout=left
            )
            break
        except UpdateFailed as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == BUSY:
                busy += 1
                await asyncio.sleep(min(pause, max(give_up - loop.time(), 0)))
                pause = min(pause * 2, longest)
                continue
            if isinstance(cause, ApplicationError) and cause.type == REFUSED:
                raise refused(cause.message) from None
            raise CliError(f"the escalation could not {kind.replace('_', ' ')}: {cause or exc}", 1) from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # wait_for's cancellation reaches the client as WorkflowUpdateRPCTimeoutOrCancelledError.
            raise _stuck(args, kind, busy) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # no such workflow, or it has ended: say which
                await ensure_open(args, handle)
                raise unknown(args, handle.id) from None
            raise CliError(f"cannot send {kind} to {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    print(f"{handle.id}: {result.outcome} ({words(result.status)}, stage {result.stage})")
    return 0


WHO_ACTS = "say who acts: --as-id and --as-role (or set ESCALATE_AS_ID and ESCALATE_AS_ROLE)"
WHO_RAISES = "say who raises: --officer-id and --officer-role (or ESCALATE_AS_ID/ESCALATE_AS_ROLE)"


def actor_of(args: argparse.Namespace, raising: bool = False) -> Actor:
    """The acting person from ``--as-id``/``--as-role`` (``--officer-*`` when raising) or the environment."""
    actor_id = args.as_id or os.environ.get("ESCALATE_AS_ID")
    role = args.as_role or os.environ.get("ESCALATE_AS_ROLE")
    if not actor_id or not role:
        raise CliError(WHO_RAISES if raising else WHO_ACTS)
    who = "--officer" if raising else "--as"
    return build(Actor, {"id": f"{who}-id", "role": f"{who}-role"}, id=actor_id, role=role)
