"""Fuzzing a running escalation on a real dev server with generated updates and signals.

Every payload comes from an actor the protocol does not know, so each must be refused, by the boundary or
by the rules; whatever its shape (wrong types, nulls, missing and extra fields, huge, unicode and NUL text,
far dates), none may fail a workflow task or the workflow, every refused signal is recorded with a reason,
and the escalation still answers ``state`` unchanged. ``FUZZ_MESSAGES`` sets the size (2,000 in the suite; the
issue's soak is ``FUZZ_MESSAGES=10000 .venv/bin/python -m pytest tests/test_fuzz.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from schemas.escalation import ACTION_KINDS, EscalationView
from tests.driver import make_raise
from tests.workflow_harness import Run, running, with_unique_id
from workflows.escalation import BUSY, REFUSED

pytestmark = pytest.mark.asyncio(loop_scope="session")

MESSAGES = int(os.environ.get("FUZZ_MESSAGES", "2000"))
STRANGER = {"id": "fuzz-stranger", "role": "fuzzer"}
TEXTS: list[Any] = [
    "",
    " ",
    "ok",
    "a\x00b",
    "\u202e\u0000",
    "é" * 50,
    "x" * 25_000,
    "😀" * 10,
    7,
    None,
    [],
    {},
]
DATES: list[Any] = ["2026-13-40", "9999-12-31", "0001-01-01", "2400-01-01", "yesterday", 20261201, None]
FIELDS = [
    "answer",
    "reason",
    "text",
    "until",
    "note",
    "action_plan_due",
    "held_on",
    "attendees",
    "consulted",
    "to_stage",
    "stage",
    "with_role",
    "approve",
    "working_days",
    "views",
    "whose",
    "outcome",
    "summary",
]


def _payload(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([None, [], "respond", 12, True])
    body: dict[str, Any] = {"actor": dict(STRANGER)}
    for field in rng.sample(FIELDS, rng.randint(0, 5)):
        pool = DATES if field in ("until", "action_plan_due", "held_on") else TEXTS
        body[field] = rng.choice(pool)
    if rng.random() < 0.1:
        body["actor"] = rng.choice([None, "x", {"id": "\x00", "role": "iro"}, {"id": "a" * 100, "role": "r"}])
    if rng.random() < 0.1:
        body["kind"] = rng.choice(ACTION_KINDS)
    return body


ESCALATIONS = 6
BATCH = 16
"""At most 8 updates in flight per escalation: Temporal refuses more than 10 at once."""


async def _send(run: Run, rng: random.Random, count: int) -> int:
    """Send ``count`` generated messages, half signals and half updates, ``BATCH`` at a time; the signals."""
    signals = 0
    sent = 0
    while sent < count:
        batch = []
        for _ in range(min(BATCH, count - sent)):
            name = rng.choice([*ACTION_KINDS, "no_such_action"])
            payload = _payload(rng)
            if sent % 2:
                batch.append(run.handle.signal(name, payload))
                signals += 1
            else:
                batch.append(_refused_update(run, name, payload))
            sent += 1
        await asyncio.gather(*batch)
    return signals


async def _refused_update(run: Run, name: str, payload: Any) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await run.handle.execute_update(name, payload)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type in (REFUSED, BUSY), (name, payload, cause)


def _all_recorded(run: Run, authority: str, signals: int) -> Callable[[EscalationView], bool]:
    return lambda _: len(run.records.refusals(authority)) >= signals


async def test_generated_updates_and_signals_cannot_break_an_escalation(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    rng = random.Random(20261125)
    authorities = ["gloucestershire", "wigan", "dudley", "waltham-forest", "waltham-forest-fwi"]
    async with contextlib.AsyncExitStack() as stack:
        runs = []
        for n in range(ESCALATIONS):
            raise_ = with_unique_id(make_raise(authorities[n % len(authorities)]))
            runs.append(await stack.enter_async_context(running(dev_server_env, raise_, tmp_path / str(n))))
        before = [await run.view() for run in runs]
        share = MESSAGES // ESCALATIONS
        seeds = [rng.randrange(2**32) for _ in runs]
        signals = await asyncio.gather(
            *(_send(run, random.Random(seed), share) for run, seed in zip(runs, seeds, strict=True))
        )
        for run, view, sent in zip(runs, before, signals, strict=True):
            authority = view.authority
            after = await run.eventually(_all_recorded(run, authority, sent), 300)
            recorded = run.records.refusals(authority)
            assert len(recorded) == sent, (view.escalation_id, len(recorded), sent)
            assert all(r.refusal.reason for r in recorded)
            assert after.timeline == view.timeline and after.status is view.status
            assert (await run.handle.describe()).status == WorkflowExecutionStatus.RUNNING
            failures = [
                e
                async for e in run.handle.fetch_history_events()
                if e.event_type
                in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
            ]
            assert not failures, failures[0]
