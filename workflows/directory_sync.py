"""DirectorySyncWorkflow: reload the directory on the worker, then tell stalled escalations to try again.

Started by ``escalate directory sync``. A workflow rather than a direct database write because the command
line holds no database credentials and the files are the worker's; and because telling the stalled
escalations is then durable: each ``redeliver`` signal is in this workflow's history.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.directory_sync import SyncRequest, SyncResult
    from workflows.escalation import REDELIVER

DIRECTORY_SYNC_WORKFLOW = "DirectorySyncWorkflow"


@workflow.defn(name=DIRECTORY_SYNC_WORKFLOW)
class DirectorySyncWorkflow:
    @workflow.run
    async def run(self, request: SyncRequest) -> SyncResult:
        result = await workflow.execute_activity(
            "sync_directory_files",
            request,
            result_type=SyncResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=5,
                non_retryable_error_types=["InvalidInput"],
            ),
        )
        told: list[str] = []
        for escalation_id in result.stalled:
            try:
                await workflow.get_external_workflow_handle(escalation_id).signal(REDELIVER)
                told.append(escalation_id)
            except Exception as exc:  # it closed meanwhile: nothing to redeliver
                workflow.logger.info("escalation %s not told to redeliver: %s", escalation_id, exc)
        return SyncResult(synced=result.synced, stalled=told)
