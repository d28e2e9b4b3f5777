"""Nothing sent can break an escalation: malformed and hostile updates and signals, far dates, a deadline the
calendar refuses, a record that fails for good, and a history that grows long (time-skipping server)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.escalation_activities import EscalationActivities
from activities.recording import FileRecordStore, OutboxNotifier
from schemas.effects import NotificationInput, RecordEventInput
from schemas.escalation import Accept, AddNote, EscalationOutcome, EventKind, Flag, Respond, Status
from schemas.schedule import Schedule, ScheduleRequest, ScheduleRequests, Schedules
from tests.driver import make_raise
from tests.workflow_harness import Run, replay, running, with_unique_id
from workflows import rules
from workflows.escalation import REFUSED, WORKFLOW_TYPE

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _wft_failures(events: Any) -> list[Any]:
    failed = (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
    return [e for e in events if e.event_type in failed]


async def _refusal_reason(run: Run, name: str, payload: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await run.handle.execute_update(name, payload)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == REFUSED, repr(cause)
    return cause.message


async def test_malformed_and_hostile_signals_are_refused_and_recorded(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire"))
    officer = raise_.officer.model_dump()
    hostile: list[tuple[str, Any, str]] = [
        ("respond", None, "not null"),
        ("add_note", [1, 2], "not a list"),
        ("add_note", {"actor": officer, "text": "a\x00b"}, "control character U+0000"),
        ("add_note", {"actor": officer, "text": "x" * 25_000}, "at most 20000"),
        ("accept", {"actor": officer, "note": "n" * 30_000}, "at most 20,000 are allowed"),
        ("request_extension", {"actor": officer, "until": "9999-12-31", "reason": "r"}, "between 2000"),
        (
            "record_meeting",
            {"actor": officer, "held_on": "2026-01-01", "attendees": ["a"] * 99, "outcome": "o"},
            "at most 30",
        ),
        ("no_such_action", {"actor": officer}, "unknown action"),
    ]
    async with running(time_skipping_env, raise_, tmp_path, record_as="bounded-hostile-signals") as run:
        await run.view()
        for name, payload, _ in hostile:
            await run.signal(name, payload)
        view = await run.eventually(lambda v: len(v.refusals) == len(hostile))
        assert view.status is Status.AWAITING_RESPONSE and len(view.timeline) == 2  # raised, sent
        for (name, _, expected), refusal in zip(hostile, view.refusals, strict=True):
            assert refusal.action == name and expected in refusal.reason, (name, refusal.reason)
        assert [r.actor.id for r in view.refusals][2] == raise_.officer.id
        # Every refusal was recorded for the sender, and the escalation still works.
        assert len(run.records.refusals("gloucestershire")) == len(hostile)
        await run.update("add_note", AddNote(actor=raise_.officer, text="Still here."))
        assert not _wft_failures((await run.handle.fetch_history()).events)


async def test_a_bad_update_is_refused_naming_the_field_and_changes_nothing(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire"))
    officer = raise_.officer.model_dump()
    async with running(time_skipping_env, raise_, tmp_path) as run:
        view = await run.view()
        before = await run.recorded_changes()
        assert "not null" in await _refusal_reason(run, "respond", None)
        reason = await _refusal_reason(run, "add_note", {"actor": officer, "text": "ok", "answer": "x"})
        assert reason == "add_note: answer: is not a field of this action: remove it"
        reason = await _refusal_reason(run, "add_note", {"actor": officer, "text": "a\x00b"})
        assert reason.startswith("add_note: text: contains the control character U+0000")
        today = rules.london_today(await run.now())
        far = (today + timedelta(days=400)).isoformat()
        recipient = {"id": "manager-1", "role": view.held_by[0]}
        reason = await _refusal_reason(
            run,
            "respond",
            {"actor": recipient, "answer": "Plan.", "action_plan": "P", "action_plan_due": far},
        )
        assert "action_plan_due:" in reason and "more than a year ahead" in reason
        reason = await _refusal_reason(run, "respond", {"actor": {"id": "x"}, "answer": "a"})
        assert reason == "respond: actor.role: is required"
        assert await run.recorded_changes() == before
        assert (await run.view()).timeline == view.timeline


class _FailingNotes(FileRecordStore):
    """Records everything but notes, which fail as data the store can never write."""

    def append_event(self, event: RecordEventInput) -> bool:
        if event.entry.kind is EventKind.NOTE:
            raise ValueError("notes cannot be written here")
        return super().append_event(event)


async def test_a_record_that_fails_for_good_is_a_problem_not_a_failed_escalation(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire"))
    async with running(time_skipping_env, raise_, tmp_path, records=_FailingNotes(tmp_path)) as run:
        await run.update("add_note", AddNote(actor=raise_.officer, text="This note will not be written."))
        view = await run.view()
        assert Flag.NEEDS_ATTENTION in view.flags
        assert view.problems and "notes cannot be written here" in view.problems[0]
        assert (await run.handle.describe()).status == WorkflowExecutionStatus.RUNNING
        respond = Respond(actor={"id": "manager-1", "role": view.held_by[0]}, answer="Done.")  # type: ignore[arg-type]
        await run.update("respond", respond)
        assert (await run.view()).status is Status.AWAITING_DECISION


@activity.defn(name="plan_schedule")
def _refusing_plan_schedule(request: ScheduleRequest) -> Schedule:
    """The calendar, except that it refuses fixed dates (as it refused a due date 'today' on a weekend)."""
    from activities.working_days import plan_schedule

    if request.until is not None:
        raise ApplicationError("this calendar places no fixed dates", type="InvalidInput", non_retryable=True)
    return plan_schedule(request)


@activity.defn(name="plan_schedules")
def _refusing_plan_schedules(requests: ScheduleRequests) -> Schedules:
    """The same, for a transition's deadlines placed at once."""
    return Schedules(schedules=[_refusing_plan_schedule(request) for request in requests.requests])


async def test_an_action_whose_deadline_cannot_be_placed_is_not_adopted(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire"))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    records = FileRecordStore(tmp_path)
    acts = EscalationActivities(records=records, notifier=OutboxNotifier(tmp_path))
    from worker import workflow_runner
    from workflows.escalation import EscalationWorkflow

    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=[EscalationWorkflow],
        workflow_runner=workflow_runner(),
        activities=[
            _refusing_plan_schedule,
            _refusing_plan_schedules,
            acts.record_event,
            acts.record_refusal,
            acts.send_notification,
            acts.carry_out_effects,
            acts.carry_out_effects_reporting,
            acts.check_delivery,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=4),
    ):
        handle = await time_skipping_env.client.start_workflow(
            WORKFLOW_TYPE, raise_, id=raise_.escalation_id, task_queue=queue, result_type=EscalationOutcome
        )
        run = Run(time_skipping_env, handle, tmp_path)
        view = await run.view()
        recorded = len(records.events(raise_.escalation_id))
        today = rules.london_today(await run.now())
        accept = Accept(
            actor=raise_.officer, action_plan="Visits weekly.", action_plan_due=today + timedelta(days=7)
        )
        reason = await run.refused("accept", accept)
        assert "deadline cannot be placed: this calendar places no fixed dates" in reason
        after = await run.view()
        assert after.status is Status.AWAITING_RESPONSE and after.timeline == view.timeline
        assert len(records.events(raise_.escalation_id)) == recorded
        await handle.terminate("test over")


async def test_a_due_date_today_on_a_weekend_is_placed() -> None:
    """Accepting an action plan due 'today' on a Saturday used to fail the calendar after the state moved."""
    from datetime import UTC, date, datetime

    from activities.working_days import plan_schedule

    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    schedule = plan_schedule(ScheduleRequest(received_at=saturday, until=date(2026, 11, 28)))
    assert schedule.due_date == date(2026, 11, 28) and schedule.working_days_left(saturday) == 0
    with pytest.raises(ValueError, match="before the day the time counts from"):
        plan_schedule(ScheduleRequest(received_at=saturday, until=date(2026, 11, 27)))
    with pytest.raises(ValueError, match="more than 800 days"):
        plan_schedule(ScheduleRequest(received_at=saturday, until=date(2999, 12, 31)))


async def test_a_long_history_continues_as_new_carrying_the_state(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire")).model_copy(
        update={"history_events_before_continuing": 200}
    )
    async with running(time_skipping_env, raise_, tmp_path) as run:
        first_run = (await run.handle.describe()).run_id
        for n in range(30):
            await run.update("add_note", AddNote(actor=raise_.officer, text=f"Note {n}."))
        fresh = time_skipping_env.client.get_workflow_handle(
            raise_.escalation_id, result_type=EscalationOutcome
        )
        later = Run(time_skipping_env, fresh, tmp_path)
        view = await later.view()
        assert (await fresh.describe()).run_id != first_run
        assert [e.text for e in view.timeline if e.kind is EventKind.NOTE] == [
            f"Note {n}." for n in range(30)
        ]
        seqs = [e.entry.seq for e in run.records.events(raise_.escalation_id)]
        assert seqs == sorted(set(seqs)) == list(range(1, len(view.timeline) + 1))
        await later.update("accept", Accept(actor=raise_.officer))
        assert (await later.result()).status is Status.RESOLVED
        old = time_skipping_env.client.get_workflow_handle(raise_.escalation_id, run_id=first_run)
        await replay(await old.fetch_history())


class _SlowNotifier(OutboxNotifier):
    """Delivers, but the first notice takes a while (a slow mail server)."""

    def __init__(self, root: Path, release: threading.Event) -> None:
        super().__init__(root)
        self.release = release

    def send(self, notification: NotificationInput) -> bool:
        self.release.wait(60)
        return super().send(notification)


async def test_a_long_activity_heartbeats_so_a_dead_worker_is_noticed_in_seconds(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Activities heartbeat from a side thread; the workflow gives them a 10 s heartbeat timeout."""
    raise_ = with_unique_id(make_raise("gloucestershire"))
    release = threading.Event()
    try:
        async with running(
            dev_server_env, raise_, tmp_path, notifier=_SlowNotifier(tmp_path, release)
        ) as run:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                pending = (await run.handle.describe()).raw_description.pending_activities
                beats = [p for p in pending if p.HasField("last_heartbeat_time")]
                if beats:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"no heartbeat: {pending}"
                await asyncio.sleep(0.2)
            assert beats[0].activity_type.name == "carry_out_effects_reporting"  # held in its notice
            history = await run.handle.fetch_history()
            scheduled = [
                e.activity_task_scheduled_event_attributes
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            ]
            assert all(a.heartbeat_timeout.ToSeconds() == 10 for a in scheduled)
            release.set()
            await run.eventually(lambda v: len(v.timeline) >= 2, timeout=30)
    finally:
        release.set()
