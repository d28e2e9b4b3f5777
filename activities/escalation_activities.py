"""The activities of EscalationWorkflow: the only places that touch the clock's data, records and mail.

Errors are sorted for Temporal's retries: a database or mail server that is down, or a role nobody holds
yet, is retried until it recovers (the escalation waits; nobody is skipped), except in
``carry_out_effects_reporting``, which reports undeliverable notices for the escalation to stall visibly;
data that can never be written or sent (a ``ValueError``, including a date past the calendar's end) and
errors in this code (a ``TypeError``, ``KeyError``, ``AttributeError`` or ``ArithmeticError``) fail at once
with a non-retryable ``InvalidInput`` error that names the problem. Anything else (``OSError``, a database
driver's operational error, an SMTP error) is retried.

Every activity run as an activity task heartbeats every few seconds from a side thread while it works, so
that the workflow's heartbeat timeout notices a worker that died within seconds instead of waiting out the
start-to-close timeout. Local activities (placing deadlines, since ``LOCAL_CLOCK``) need none: a worker
that dies takes the workflow task waiting for them with it, and that task's timeout notices.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.directory import RoleUnfilled
from activities.mail import MailUnavailable
from activities.recording import Notifier, RecordStore
from activities.working_days import plan_schedule as _plan_schedule
from schemas.effects import (
    BatchOutcome,
    DeliveryCheck,
    EffectBatch,
    NotificationInput,
    RecordEventInput,
    RefusalInput,
    Undelivered,
)
from schemas.schedule import Schedule, ScheduleRequest, ScheduleRequests, Schedules

MAIL_DOWN = "the mail server cannot take mail"
INVALID_INPUT = "InvalidInput"
ROLE_UNFILLED = "RoleUnfilled"


HEARTBEAT_EVERY_S = 2.0

_NEVER_RETRIED = (ValueError, TypeError, KeyError, AttributeError, ArithmeticError)
"""Bad data or a bug: the same input fails the same way every time."""


@contextmanager
def _sorted_errors() -> Iterator[None]:
    """Heartbeat while the work runs; sort what it raises into retryable or not."""
    with _heartbeating():
        try:
            yield
        except RoleUnfilled as exc:
            raise ApplicationError(str(exc), type=ROLE_UNFILLED, non_retryable=False) from exc
        except _NEVER_RETRIED as exc:  # InvalidRecord, InvalidNotification, bad schedule requests, bugs
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
            raise ApplicationError(message, type=INVALID_INPUT, non_retryable=True) from exc


@contextmanager
def _heartbeating() -> Iterator[None]:
    """Heartbeat from a side thread until the block ends (outside an activity, or in a local one: nothing)."""
    if not activity.in_activity() or activity.info().is_local:
        yield
        return
    done = threading.Event()
    context = contextvars.copy_context()

    def beat() -> None:
        while not done.wait(HEARTBEAT_EVERY_S):
            try:
                context.run(activity.heartbeat)
            except Exception:  # the activity is finishing or cancelled: nothing more to say
                return

    thread = threading.Thread(target=beat, name="activity-heartbeat", daemon=True)
    # Shielded: the SDK cancels a threaded activity by raising an exception in its thread
    # (PyThreadState_SetAsyncExc by thread id). On CPython 3.11 a thread being started carries its
    # starter's id until it runs, so that exception also lands in the new thread, which then dies before
    # it says it has started, and ``start`` waits for it for ever (tests/test_activity_errors.py shows it).
    try:
        with activity.shield_thread_cancel_exception():
            thread.start()
        yield
    finally:
        done.set()
        if thread.ident is not None:
            thread.join()


@activity.defn(name="plan_schedule")
def plan_schedule(request: ScheduleRequest) -> Schedule:
    """Place a deadline on the working-day calendar (bank holidays as known today, closure days).

    Run as an activity so that the result is recorded in history: upgrading the holiday data or this code
    never moves the deadline of a running escalation.
    """
    with _sorted_errors():
        return _plan_schedule(request)


@activity.defn(name="plan_schedules")
def plan_schedules(requests: ScheduleRequests) -> Schedules:
    """Place a transition's deadlines at once (see ``plan_schedule``)."""
    with _sorted_errors():
        return Schedules(schedules=[_plan_schedule(request) for request in requests.requests])


class EscalationActivities:
    """Recording and notifying, bound to a record store and a notifier."""

    def __init__(self, records: RecordStore, notifier: Notifier) -> None:
        self.records = records
        self.notifier = notifier

    @activity.defn(name="record_event")
    def record_event(self, event: RecordEventInput) -> bool:
        with _sorted_errors():
            return self.records.append_event(event)

    @activity.defn(name="record_refusal")
    def record_refusal(self, refusal: RefusalInput) -> bool:
        with _sorted_errors():
            return self.records.append_refusal(refusal)

    @activity.defn(name="send_notification")
    def send_notification(self, notification: NotificationInput) -> bool:
        with _sorted_errors():
            return self.notifier.send(notification)

    @activity.defn(name="carry_out_effects")
    def carry_out_effects(self, batch: EffectBatch) -> int:
        """Record and send a transition's effects in order; return how many were new (not done before)."""
        done = 0
        with _sorted_errors():
            for item in batch.items:
                if item.record is not None:
                    done += self.records.append_event(item.record)
                elif item.notify is not None:
                    done += self.notifier.send(item.notify)
                elif item.refusal is not None:
                    done += self.records.append_refusal(item.refusal)
        return done

    @activity.defn(name="carry_out_effects_reporting")
    def carry_out_effects_reporting(self, batch: EffectBatch) -> BatchOutcome:
        """``carry_out_effects``, reporting the notices that cannot go out instead of failing on them.

        A notice to a role nobody holds is reported at once; one the mail server cannot take is reported
        from attempt ``batch.report_undelivered_from_attempt`` on (before it, the batch fails and Temporal
        retries a short outage), and the batch's later notices are then reported without being tried.
        Records are never skipped; every item stays idempotent on its own key.
        """
        from_attempt = batch.report_undelivered_from_attempt or 1
        outcome = BatchOutcome()
        give_up = not activity.in_activity() or activity.info().attempt >= from_attempt
        mail_down: str | None = None  # once the server is down, the batch's later notices are not tried
        with _sorted_errors():
            for item in batch.items:
                if item.record is not None:
                    outcome.done += self.records.append_event(item.record)
                elif item.refusal is not None:
                    outcome.done += self.records.append_refusal(item.refusal)
                elif item.notify is not None:
                    seq, to = item.notify.entry.seq, list(item.notify.to_roles)
                    if mail_down is not None:
                        outcome.undelivered.append(
                            Undelivered(seq=seq, to=to, reason=MAIL_DOWN, detail=mail_down)
                        )
                        continue
                    try:  # also says which notices went to a cover for an absent holder
                        delivery = self.notifier.send_reporting(item.notify)
                        outcome.done += delivery.sent
                        outcome.covered += delivery.covered
                    except RoleUnfilled as unfilled:
                        outcome.undelivered.append(
                            Undelivered(
                                seq=seq,
                                to=to,
                                reason=unfilled_reason(unfilled),
                                detail=str(unfilled),
                                role_unfilled=True,
                            )
                        )
                    except MailUnavailable as down:
                        if not give_up:
                            raise
                        mail_down = str(down)
                        outcome.undelivered.append(
                            Undelivered(seq=seq, to=to, reason=MAIL_DOWN, detail=mail_down)
                        )
        return outcome

    @activity.defn(name="check_delivery")
    def check_delivery(self, check: DeliveryCheck) -> BatchOutcome:
        """Whether notices to ``check.roles`` can go out now, sending nothing: an empty outcome if so,
        else why not (one ``Undelivered``).

        Run before held notices are sent again, so that a retry that would fail again changes nothing
        in the escalation's record.
        """
        checker = getattr(self.notifier, "check", None)
        if checker is None:  # a notifier that needs neither directory nor mail server
            return BatchOutcome()
        with _sorted_errors():
            try:
                checker(check.authority, check.team, check.officer_id, check.roles)
            except RoleUnfilled as unfilled:
                why = Undelivered(seq=0, reason=unfilled_reason(unfilled), detail=str(unfilled))
                return BatchOutcome(undelivered=[why.model_copy(update={"role_unfilled": True})])
            except MailUnavailable as down:
                return BatchOutcome(undelivered=[Undelivered(seq=0, reason=MAIL_DOWN, detail=str(down))])
        return BatchOutcome()

    def all(self) -> list[Callable[..., Any]]:
        return [
            plan_schedule,
            plan_schedules,
            self.record_event,
            self.record_refusal,
            self.send_notification,
            self.carry_out_effects,
            self.carry_out_effects_reporting,
            self.check_delivery,
        ]


def _mail_down(seq: int, to: list[str], detail: str) -> Undelivered:
    return Undelivered(seq=seq, to=to, reason=MAIL_DOWN, detail=detail)


def unfilled_reason(unfilled: RoleUnfilled) -> str:
    """``nobody holds <role> for <team>`` (keys only: no personal data), as an escalation shows it."""
    if unfilled.person_id is not None:
        return f"the raising officer is not in the {unfilled.authority} directory"
    return f"nobody holds {unfilled.role} for {unfilled.team or unfilled.authority}"
