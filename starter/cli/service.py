"""Talking to Temporal: connecting, reading an escalation's queries, sending its updates."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from app.errors import AppError
from schemas.escalation import (
    Action,
    Actor,
    EscalationView,
)
from starter.cli.common import EXIT_UNAVAILABLE, CliError, build, words
from starter.codec import PayloadKeyError
from starter.connection import connect, temporal_address, temporal_namespace
from workflows.names import TASK_QUEUE

R = TypeVar("R")


async def connect_client(args: argparse.Namespace, *, lazy: bool = False) -> Client:
    try:
        return await asyncio.wait_for(connect(args.address, args.namespace, lazy=lazy), timeout=args.wait)
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


async def act(args: argparse.Namespace, action: Action) -> int:
    """Take ``action`` through the application layer, as the person (or service account) ``--as-id``
    names, in ``--as-role`` when given; print its outcome on one line.

    The action was built here first only to refuse malformed input before connecting; the application
    layer checks who may see the escalation and the workflow's rules decide the rest (an update refused
    as busy is sent again until ``--wait`` runs out).
    """
    from starter.cli.identity import acting, cli_error, open_core, option_label

    who = acting(args)
    kind: str = action.kind
    fields = action.model_dump(exclude={"kind", "actor"})
    app = await open_core(args)
    try:
        result = await app.act(who.caller, args.id, kind, fields, option_label, role=who.role)
    except AppError as exc:
        raise cli_error(exc) from None
    print(f"{args.id}: {result.outcome} ({words(result.status)}, stage {result.stage})")
    return 0


def actor_of(args: argparse.Namespace, raising: bool = False) -> Actor:
    """The acting person as an actor, checked against the directory (``starter.cli.identity``): the role
    ``--as-role`` chose, else the first the directory gives them (the application layer picks the role
    that may act)."""
    from starter.cli.identity import acting

    who = acting(args, raising=raising)
    person = who.caller.person
    role = who.role or next((h.role for h in person.holdings), None)
    if role is None:
        option = "--officer-role" if raising else "--as-role"
        raise CliError(f"{option}: the directory gives {person.id} no role")
    return build(Actor, {"id": "--as-id", "role": "--as-role"}, id=person.id, role=role)
