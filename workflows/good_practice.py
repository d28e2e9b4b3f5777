"""GoodPracticeWorkflow: record a good practice note and send it, once.

A short workflow rather than a write from the front door: the command line holds no database or mail
credentials (the worker does), a mail server that is down is retried durably until the note goes out, and
the workflow id, derived from the request id, makes a second attempt of the same request find the first.
One activity (``carry_out_effects``, as escalations use) writes the event and its case note and sends the
mail, each idempotent on its own key; ``workflows.rules.good_practice`` decided everything before it
started.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.shell_options import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, HEARTBEAT_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from schemas.good_practice import GoodPracticeNote, GoodPracticeResult
    from workflows.rules import good_practice as rules

WORKFLOW_TYPE = "GoodPracticeWorkflow"


@workflow.defn(name=WORKFLOW_TYPE)
class GoodPracticeWorkflow:
    @workflow.run
    async def run(self, note: GoodPracticeNote) -> GoodPracticeResult:
        run_id = workflow.info().first_execution_run_id or workflow.info().run_id
        done = await workflow.execute_activity(
            "carry_out_effects",
            rules.batch(note, workflow.now(), run_id),
            result_type=int,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary="record and send the good practice note",
        )
        return GoodPracticeResult(note_id=note.note_id, recorded=done)
