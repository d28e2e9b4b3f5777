"""Talking to Temporal: connecting, reading an escalation's queries, sending its updates."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.client import WorkflowUpdateFailedError as UpdateFailed
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from schemas.escalation import (
    Action,
    ActionResult,
    Actor,
    EscalationView,
)
from starter.cli.common import EXIT_UNAVAILABLE, CliError, build, refused, words
from starter.codec import PayloadKeyError
from starter.connection import connect, temporal_address, temporal_namespace
from workflows.escalation import REFUSED, TASK_QUEUE

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
        raise CliError(f"{handle.id!r} is a {described.workflow_type} workflow, not an escalation")
    status = described.status
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return
    if status == WorkflowExecutionStatus.COMPLETED:
        view = await read_state(args, handle)
        raise refused(f"the escalation is {words(view.status)}; nothing more can be done")
    raise refused(f"the escalation's workflow is {status.name.lower()}; nothing more can be done")


async def act(args: argparse.Namespace, action: Action) -> int:
    """Send ``action`` as the update of the same name; print its outcome on one line."""
    kind: str = action.kind
    client = await connect_client(args)
    handle = client.get_workflow_handle(args.id)
    await ensure_open(args, handle)
    try:
        result = await asyncio.wait_for(
            handle.execute_update(kind, action, result_type=ActionResult), timeout=args.wait
        )
    except UpdateFailed as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == REFUSED:
            raise refused(cause.message) from None
        raise CliError(f"the escalation could not {kind.replace('_', ' ')}: {cause or exc}", 1) from None
    except TimeoutError:
        raise no_worker(args, f"sending {kind} (it may still be applied once one runs)") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # ended between the look-up and the update
            await ensure_open(args, handle)
            raise unknown(args, handle.id) from None
        raise CliError(f"cannot send {kind} to {handle.id}: {exc.message}", EXIT_UNAVAILABLE) from None
    print(f"{handle.id}: {result.outcome} ({words(result.status)}, stage {result.stage})")
    return 0


WHO_ACTS = "say who acts: --as-id and --as-role (or set ESCALATE_AS_ID and ESCALATE_AS_ROLE)"
WHO_RAISES = "say who raises: --officer-id and --officer-role (or ESCALATE_AS_ID/ESCALATE_AS_ROLE)"


def actor_of(args: argparse.Namespace, missing: str = WHO_ACTS) -> Actor:
    actor_id = args.as_id or os.environ.get("ESCALATE_AS_ID")
    role = args.as_role or os.environ.get("ESCALATE_AS_ROLE")
    if not actor_id or not role:
        raise CliError(missing)
    return build(Actor, id=actor_id, role=role)
