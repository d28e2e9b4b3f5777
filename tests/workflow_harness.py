"""Run EscalationWorkflow on the time-skipping test server, with a worker writing to a temp folder.

Every run's history is replayed against the current code when the test ends; with
``RECORD_HISTORIES=1`` it is also saved under ``tests/histories/`` for the replay test to keep forever.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.recording import FileRecordStore, Notifier, OutboxNotifier, RecordStore
from schemas.escalation import (
    ActionResult,
    Actor,
    EscalationOutcome,
    EscalationView,
    RaiseConcern,
    escalation_id_for,
)
from starter.codec import ENCODING
from starter.connection import CODEC, DATA_CONVERTER
from worker import WORKFLOWS, build_worker, workflow_runner
from workflows.escalation import REFUSED, WORKFLOW_TYPE, EscalationWorkflow

HISTORIES = Path(__file__).parent / "histories"


class Run:
    """One running escalation and the files its worker writes."""

    def __init__(self, env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], root: Path) -> None:
        self.env = env
        self.handle = handle
        self.records = FileRecordStore(root)
        self.outbox = OutboxNotifier(root)

    async def view(self) -> EscalationView:
        """The state once the workflow has finished carrying out its last change."""
        return await self.eventually(lambda v: True)

    async def eventually(
        self, predicate: Callable[[EscalationView], bool], timeout: float = 10.0
    ) -> EscalationView:
        """Query until ``predicate`` holds (signals and activities land asynchronously)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                view = await self.handle.query(EscalationWorkflow.state)
            except WorkflowQueryFailedError:
                view = None  # still starting
            if view is not None and not view.busy and predicate(view):
                return view
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; last view: {view}")
            await asyncio.sleep(0.05)

    async def update(self, name: str, action: Any) -> ActionResult:
        return cast(ActionResult, await self.handle.execute_update(name, action, result_type=ActionResult))

    async def refused(self, name: str, action: Any) -> str:
        """The reason the workflow gives for refusing the update ``name``: it must be refused."""
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await self.update(name, action)
        cause = info.value.cause
        assert isinstance(cause, ApplicationError), f"expected ApplicationError, got {cause!r}"
        assert cause.type == REFUSED
        return cause.message

    async def signal(self, name: str, action: Any) -> None:
        await self.handle.signal(name, action)

    async def actions_for(self, actor: Actor) -> list[str]:
        return cast(list[str], await self.handle.query("available_actions", actor, result_type=list[str]))

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def skip_to(self, when: datetime) -> None:
        await skip_clock_to(self.env, when)

    async def skip_past_deadline(self) -> None:
        view = await self.view()
        assert view.deadline is not None, f"{view.stage} has no deadline"
        await self.skip_to(view.deadline + timedelta(seconds=1))

    async def history_length(self) -> int:
        return len((await self.handle.fetch_history()).events)

    async def recorded_changes(self) -> list[str]:
        """History event types other than workflow-task bookkeeping: what the escalation recorded.

        The time-skipping test server writes a workflow task's three events even for a rejected update
        (the real server discards that speculative task); everything else must be unchanged.
        """
        events = (await self.handle.fetch_history()).events
        names = [EventType.Name(e.event_type) for e in events]
        return [n for n in names if not n.startswith("EVENT_TYPE_WORKFLOW_TASK_")]

    async def result(self) -> EscalationOutcome:
        return cast(EscalationOutcome, await self.handle.result())


_SKIP_INTERRUPTED = ("Timeout expired", "h2 protocol error")
"""What the test server's skip call fails with when the machine is too busy for it, not when it is wrong."""


async def skip_clock_to(env: WorkflowEnvironment, when: datetime) -> None:
    """Skip the time-skipping test server's clock to ``when``. Under heavy load the server's skip can
    outlast its call's timeout, or the call's connection drops (an HTTP/2 error), while workflows and
    activities catch up; the skip is then asked again for what is left (the clock never goes back), so
    the result does not depend on the machine's speed."""
    for _ in range(20):
        gap = when - await env.get_current_time()
        if gap <= timedelta(0):
            return
        try:
            await env.sleep(gap)
            return
        except RPCError as exc:
            if not any(sign in str(exc) for sign in _SKIP_INTERRUPTED):
                raise
    raise AssertionError(f"the test server never reached {when}")


def file_worker(env: WorkflowEnvironment, queue: str, root: Path) -> Worker:
    """An escalation worker on ``queue`` recording to files and an outbox under ``root`` (no DB, no SMTP)."""
    return build_worker(env.client, queue, records=FileRecordStore(root), notifier=OutboxNotifier(root))


@asynccontextmanager
async def running(
    env: WorkflowEnvironment,
    raise_: RaiseConcern,
    root: Path,
    *,
    record_as: str | None = None,
    records: RecordStore | None = None,
    notifier: Notifier | None = None,
) -> AsyncIterator[Run]:
    """Start a worker and the escalation; on exit, replay (and optionally save) its history.

    ``records`` and ``notifier`` default to the file versions under ``root``; a test may pass its own.
    """
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = build_worker(
        env.client, queue, records=records or FileRecordStore(root), notifier=notifier or OutboxNotifier(root)
    )
    async with worker:
        handle = await env.client.start_workflow(
            WORKFLOW_TYPE, raise_, id=raise_.escalation_id, task_queue=queue, result_type=EscalationOutcome
        )
        try:
            yield Run(env, handle, root)
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test ended with the escalation still open")
        history = await handle.fetch_history()
    await replay(history, record_as=record_as)


def replayer() -> Replayer:
    """A replayer for every workflow type as the worker runs them today."""
    return Replayer(
        workflows=list(WORKFLOWS), data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )


async def replay(history: WorkflowHistory, *, record_as: str | None = None) -> None:
    """Replay ``history`` on the current code; with ``RECORD_HISTORIES=1``, also save it as ``record_as``."""
    await replayer().replay_workflow(history)
    if record_as and os.environ.get("RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{record_as}.json").write_text(decrypted_json(history), encoding="utf-8")


def decrypted_json(history: WorkflowHistory) -> str:
    """The history as JSON with every encrypted payload decrypted, so that any later session (with its own
    keys) can replay it: recorded histories hold only the tests' fictional data."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            encoding = node.get("metadata", {}).get("encoding")
            if encoding == base64.b64encode(ENCODING).decode() and "data" in node:
                payload = json_format.ParseDict(node, Payload())
                return json_format.MessageToDict(CODEC.keyring.decrypt(payload))
            return {key: plain(value) for key, value in node.items()}
        if isinstance(node, list):
            return [plain(item) for item in node]
        return node

    return json.dumps(plain(json.loads(history.to_json())), indent=2)


def unique_ref() -> str:
    return f"T{uuid.uuid4().int % 10**10:010d}"


def with_unique_id(raise_: RaiseConcern) -> RaiseConcern:
    ref = unique_ref()
    return raise_.model_copy(
        update={"child_ref": ref, "escalation_id": escalation_id_for(raise_.protocol.key, ref, 1)}
    )


def history_name(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def local_activities(events: Any) -> list[dict[str, Any]]:
    """What each local activity's marker in ``events`` says of it (``activity_type``, ``attempt``, ...).

    Core keeps it in the marker's ``data`` detail as plain JSON: ids, type and timing, no payload."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
