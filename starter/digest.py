"""The weekly digest from outside the worker: its Temporal Schedule (made idempotently when a worker or
``escalate up`` starts) and ``escalate digest send``."""

from __future__ import annotations

import uuid

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from schemas.digest import DigestRequest, DigestResult
from workflows.digest import SCHEDULE_ID, WORKFLOW_TYPE
from workflows.escalation import TASK_QUEUE

SEND_HOUR = 7
"""07:00 London time, before the working day."""


def digest_schedule(task_queue: str = TASK_QUEUE) -> Schedule:
    """Every day at 07:00 London time: each authority's digest goes on its ``digest.weekday``."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_TYPE, DigestRequest(on_its_weekday=True), id=SCHEDULE_ID, task_queue=task_queue
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(SEND_HOUR)])], time_zone_name="Europe/London"
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_digest_schedule(client: Client, task_queue: str = TASK_QUEUE) -> bool:
    """Create the schedule unless it exists; True when created now."""
    try:
        await client.create_schedule(SCHEDULE_ID, digest_schedule(task_queue))
    except ScheduleAlreadyRunningError:
        return False
    return True


async def send_digest(client: Client, request: DigestRequest, task_queue: str = TASK_QUEUE) -> DigestResult:
    """Run the digest now (``escalate digest send``) and wait for its result."""
    result: DigestResult = await client.execute_workflow(
        WORKFLOW_TYPE,
        request,
        id=f"digest-send-{uuid.uuid4().hex}",
        task_queue=task_queue,
        result_type=DigestResult,
    )
    return result
