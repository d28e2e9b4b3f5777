"""WeeklyDigestWorkflow: the week's digests of outstanding alerts, in one activity.

Started every day at 07:00 London time by the ``weekly-digest`` Temporal Schedule (each authority's digest
goes on its protocol's ``digest.weekday``) and by ``escalate digest send``. The week is fixed here, from
the workflow's clock, so that a retried activity sends the same week's digests (each at most once).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.shell_options import ACTIVITY_RETRY, HEARTBEAT_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from schemas.digest import DigestRequest, DigestResult, week_of

WORKFLOW_TYPE = "WeeklyDigestWorkflow"
SCHEDULE_ID = "weekly-digest"
DIGEST_TIMEOUT = timedelta(minutes=10)
"""Room for an authority's whole digest (one query, one message per manager)."""


@workflow.defn(name=WORKFLOW_TYPE)
class WeeklyDigestWorkflow:
    @workflow.run
    async def run(self, request: DigestRequest) -> DigestResult:
        if request.week is None:
            request = request.model_copy(update={"week": week_of(workflow.now())})
        result: DigestResult = await workflow.execute_activity(
            "send_weekly_digest",
            request,
            result_type=DigestResult,
            start_to_close_timeout=DIGEST_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary="the week's digests of outstanding alerts",
        )
        return result
