"""``escalate directory sync``: reload the directory on the worker and tell stalled escalations to retry."""

from __future__ import annotations

import uuid

from temporalio.client import Client

from activities.directory_sync import SyncRequest, SyncResult
from workflows.directory_sync import DIRECTORY_SYNC_WORKFLOW
from workflows.escalation import TASK_QUEUE


async def sync_directory(
    client: Client, authorities: list[str] | None = None, task_queue: str = TASK_QUEUE
) -> SyncResult:
    """Run ``DirectorySyncWorkflow`` to its end: the directory files stored, stalled escalations told.

    Raises ``temporalio.client.WorkflowFailureError`` when a file is missing or invalid (its cause's
    message names the file and the fix); nothing is stored then.
    """
    result: SyncResult = await client.execute_workflow(
        DIRECTORY_SYNC_WORKFLOW,
        SyncRequest(authorities=authorities or []),
        id=f"directory-sync-{uuid.uuid4().hex}",
        task_queue=task_queue,
        result_type=SyncResult,
    )
    return result
