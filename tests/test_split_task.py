"""An update that reaches a warm worker in the same workflow task as an activity result, split in two
activations (what a Temporal server restart caused in the saved histories), is refused as Busy, not
accepted, so the history it leaves replays (see ``workflows.activation_order``)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from activities.escalation_activities import EscalationActivities, plan_schedules
from activities.recording import FileRecordStore, OutboxNotifier
from schemas.effects import NotificationInput
from schemas.escalation import ActionResult, AddNote, EscalationOutcome
from tests.driver import make_raise
from tests.workflow_harness import replay, with_unique_id
from worker import workflow_runner
from workflows.activation_order import activate_split
from workflows.escalation import BUSY, WORKFLOW_TYPE, EscalationWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


class _SplittingRunner(WorkflowRunner):
    """Runs an activation holding an update and an activity result as two, result first: a warm worker
    given the whole history after a server restart did this."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner
        self.splits = 0

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Splitting(self.inner.create_instance(det), self)

    def set_worker_level_failure_exception_types(self, types: Any) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _Splitting(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance, runner: _SplittingRunner) -> None:
        self.inner = inner
        self.runner = runner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        kinds = {job.WhichOneof("variant") for job in act.jobs}
        if act.is_replaying or not {"do_update", "resolve_activity"} <= kinds:
            return self.inner.activate(act)
        self.runner.splits += 1
        return activate_split(self.inner, act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self.inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self.inner.get_info()


class _HeldNotifier(OutboxNotifier):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, notification: NotificationInput) -> bool:
        self.entered.set()
        self.release.wait(60)
        return super().send(notification)


_LOCAL_CLOCK_ONLY: dict[str, Any] = {
    "activities": [plan_schedules],
    "activity_executor": ThreadPoolExecutor(max_workers=2),
    "no_remote_activities": True,
}
"""A workflow worker runs the escalation's local activities (its reads) itself, and no activity tasks."""


async def _until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def _until_task_pending(handle: Any) -> None:
    """Wait until the server has a workflow task waiting for a worker (here: the admitted update's)."""
    deadline = asyncio.get_running_loop().time() + 60
    while not (await handle.describe()).raw_description.HasField("pending_workflow_task"):
        assert asyncio.get_running_loop().time() < deadline, "the update never reached the server"
        await asyncio.sleep(0.05)


async def test_an_update_split_from_an_activity_result_is_refused_as_busy(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """No worker polls while the notice's result and an update reach the server; the next worker gets both
    in one task, and the runner here hands them over in two activations, the result first."""
    client = dev_server_env.client
    queue = f"split-{uuid.uuid4().hex[:8]}"
    notifier = _HeldNotifier(tmp_path)
    acts = EscalationActivities(records=FileRecordStore(tmp_path), notifier=notifier)
    raise_ = with_unique_id(make_raise("gloucestershire"))
    activities = Worker(
        client,
        task_queue=queue,
        activities=acts.all(),
        activity_executor=ThreadPoolExecutor(max_workers=4),
    )
    try:
        async with activities:
            async with Worker(
                client,
                task_queue=queue,
                workflows=[EscalationWorkflow],
                workflow_runner=workflow_runner(),
                **_LOCAL_CLOCK_ONLY,
            ):
                handle = await client.start_workflow(
                    WORKFLOW_TYPE,
                    raise_,
                    id=raise_.escalation_id,
                    task_queue=queue,
                    result_type=EscalationOutcome,
                )
                await _until(notifier.entered.is_set, "the first notice to be on its way")
            # The workflow worker is gone: the update and the notice's result wait for the next one.
            note = AddNote(actor=raise_.officer, text="Sent while the notice completes.")
            sent = asyncio.create_task(handle.execute_update("add_note", note, result_type=ActionResult))
            await _until_task_pending(handle)
            notifier.release.set()
            await _until_completed(handle)
            runner = _SplittingRunner(workflow_runner())
            async with Worker(
                client,
                task_queue=queue,
                workflows=[EscalationWorkflow],
                workflow_runner=runner,
                **_LOCAL_CLOCK_ONLY,
            ):
                with pytest.raises(WorkflowUpdateFailedError) as refused:
                    await sent
                assert runner.splits == 1
                cause = refused.value.cause
                assert isinstance(cause, ApplicationError) and cause.type == BUSY, repr(cause)
                await handle.execute_update("add_note", note)  # sent again, as the CLI does
                await handle.terminate("test over")
        await replay(await handle.fetch_history())
    finally:
        notifier.release.set()


async def _until_completed(handle: Any) -> None:
    """Wait until the server has recorded the held notice's result."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        events = (await handle.fetch_history()).events
        if any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in events[-3:]):
            return
        assert asyncio.get_running_loop().time() < deadline, "the notice's result never reached the server"
        await asyncio.sleep(0.05)
