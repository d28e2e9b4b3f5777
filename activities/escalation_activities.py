"""The activities of EscalationWorkflow: the only places that touch the clock's data, records and mail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.recording import Notifier, RecordStore
from activities.working_days import plan_schedule as _plan_schedule
from schemas.effects import NotificationInput, RecordEventInput, RefusalInput
from schemas.schedule import Schedule, ScheduleRequest


@activity.defn(name="plan_schedule")
def plan_schedule(request: ScheduleRequest) -> Schedule:
    """Place a deadline on the working-day calendar (bank holidays as known today, closure days).

    Run as an activity so that the result is recorded in history: upgrading the holiday data or this code
    never moves the deadline of a running escalation.
    """
    try:
        return _plan_schedule(request)
    except ValueError as exc:
        raise ApplicationError(str(exc), type="InvalidInput", non_retryable=True) from None


class EscalationActivities:
    """Recording and notifying, bound to a record store and a notifier."""

    def __init__(self, records: RecordStore, notifier: Notifier) -> None:
        self.records = records
        self.notifier = notifier

    @activity.defn(name="record_event")
    def record_event(self, event: RecordEventInput) -> bool:
        return self.records.append_event(event)

    @activity.defn(name="record_refusal")
    def record_refusal(self, refusal: RefusalInput) -> bool:
        return self.records.append_refusal(refusal)

    @activity.defn(name="send_notification")
    def send_notification(self, notification: NotificationInput) -> bool:
        return self.notifier.send(notification)

    def all(self) -> list[Callable[..., Any]]:
        return [plan_schedule, self.record_event, self.record_refusal, self.send_notification]
