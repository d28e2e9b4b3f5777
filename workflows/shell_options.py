"""What every workflow shell here shares: how its activities are retried and timed, when it continues as
new, the error types of a refused or busy action, and how an activity's failure is told."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

REFUSED = "Refused"
"""ApplicationError type of a refused action; its message is the reason."""
BUSY = "Busy"
"""ApplicationError type of an update refused because the workflow is mid-change: send it again."""
BUSY_BACKOFF_S = (0.2, 2.0)
"""For a sender: the first pause before sending a busy-refused update again, and the longest (the pause
doubles)."""

ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["InvalidInput"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=60)
PLAN_TIMEOUT = timedelta(seconds=10)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
"""The activities heartbeat every few seconds: a worker that dies is noticed in seconds, not a minute."""
HISTORY_SIZE_LIMIT = 8 * 1024 * 1024
"""Continue as new before the history passes this many bytes (Temporal's hard limit is 50 MB)."""


ACTIVITY_FAILED = (ActivityError, ApplicationError, TemporalTimeout)
"""What an activity that failed for good raises in the workflow: an activity task's failure comes wrapped in
an ``ActivityError``; a local activity's is its own ``ApplicationError`` (or ``TimeoutError``)."""


def failure_reason(failed: ActivityError | ApplicationError | TemporalTimeout) -> str:
    """What made an activity fail for good, in words (its ApplicationError's message when it has one)."""
    if not isinstance(failed, ActivityError):
        return str(failed.message)
    cause = failed.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or failed)
