"""EscalationWorkflow on a real Temporal dev server (``temporal server start-dev``), in real time.

What only the real server shows: a refused update leaves the history exactly as it was (the speculative
workflow task is discarded), a refused signal is in history but changes nothing but ``refusals``, and an
activity retried after a crash between its write and its completion still records everything once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.recording import FileRecordStore, OutboxNotifier
from protocols import load_protocol
from schemas.effects import NotificationInput, RecordEventInput
from schemas.escalation import (
    Actor,
    EscalationView,
    EventKind,
    RaiseConcern,
    ReferToCafcass,
    Respond,
    Status,
    Withdraw,
)
from tests.driver import make_raise
from tests.workflow_harness import running, with_unique_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHAIR = Actor(id="chair-1", role="cp_chair")
VIEW_FIELDS_THAT_MOVE = {"refusals", "working_days_left", "total_working_days_left", "busy"}
_WORKFLOW_TASK_OPEN = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
}


def cp_raise() -> RaiseConcern:
    """A Wigan child-protection escalation raised by a CP chair (who may not refer to CAFCASS)."""
    return with_unique_id(make_raise("wigan", "cp", officer=CHAIR))


async def settled_events(handle: WorkflowHandle[Any, Any], timeout: float = 5.0) -> list[HistoryEvent]:
    """The history once no workflow task or activity is outstanding and nothing more arrives for a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    previous: list[HistoryEvent] | None = None
    while True:
        events = list((await handle.fetch_history()).events)
        pending = (await handle.describe()).raw_description
        done = (
            events[-1].event_type not in _WORKFLOW_TASK_OPEN
            and not pending.pending_activities
            and not pending.HasField("pending_workflow_task")
        )
        if done and previous is not None and len(previous) == len(events):
            return events
        if loop.time() > deadline:
            raise AssertionError(f"history still moving after {timeout}s: {names(events)[-5:]}")
        previous = events if done else None
        await asyncio.sleep(0.2)


def names(events: list[HistoryEvent]) -> list[str]:
    return [EventType.Name(e.event_type) for e in events]


def activity_types(events: list[HistoryEvent]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def steady(view: EscalationView) -> dict[str, Any]:
    return view.model_dump(exclude=VIEW_FIELDS_THAT_MOVE)


# --- a. a refused update writes nothing to history ------------------------------------------------------


async def test_refused_update_leaves_history_exactly_unchanged(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = cp_raise()
    async with running(dev_server_env, raise_, tmp_path) as run:
        view = await run.view()
        assert view.status is Status.AWAITING_RESPONSE and view.stage == "stage-1"
        assert view.held_by == ["team_manager"]
        before = await settled_events(run.handle)

        message = await run.refused("refer_to_cafcass", ReferToCafcass(actor=CHAIR, reason="x"))
        assert "may not refer to CAFCASS" in message
        outsider = Actor(id="dcs-1", role="director_of_childrens_services")
        message = await run.refused("respond", Respond(actor=outsider, answer="Not my stage."))
        assert "only the stage's recipients" in message and "Team Manager" in message

        after = list((await run.handle.fetch_history()).events)
        assert len(after) == len(before)
        assert after[-1] == before[-1]
        assert after == before
        assert steady(await run.view()) == steady(view)

        # An accepted update does add to history: the update itself, and what it recorded.
        result = await run.update("withdraw", Withdraw(actor=CHAIR, reason="Resolved by phone."))
        assert result.status is Status.WITHDRAWN
        outcome = await run.result()
        assert outcome.status is Status.WITHDRAWN
        final = list((await run.handle.fetch_history()).events)
    assert len(final) > len(before)
    assert final[: len(before)] == before
    added = names(final[len(before) :])
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED" in added
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED" in added
    assert added[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert "carry_out_effects_reporting" in activity_types(final[len(before) :])
    assert run.records.events(raise_.escalation_id)[-1].entry.kind is EventKind.WITHDRAWN


# --- b. a refused signal is in history, but changes only the refusals -----------------------------------


async def test_refused_signal_is_recorded_but_changes_only_refusals(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = cp_raise()
    async with running(dev_server_env, raise_, tmp_path) as run:
        view = await run.view()
        before = await settled_events(run.handle)
        records_before = run.records.events(raise_.escalation_id)
        mails_before = run.outbox.sent(raise_.escalation_id)
        assert records_before and [r.entry for r in records_before] == view.timeline
        assert view.refusals == []

        await run.signal("refer_to_cafcass", ReferToCafcass(actor=CHAIR, reason="Urgent."))
        after_view = await run.eventually(lambda v: len(v.refusals) == 1)
        after = await settled_events(run.handle)

        assert steady(after_view) == steady(view)
        refusal = after_view.refusals[0]
        assert refusal.action == "refer_to_cafcass" and refusal.actor == CHAIR
        assert "may not refer to CAFCASS" in refusal.reason

        assert after[: len(before)] == before
        added = after[len(before) :]
        signaled = [e for e in added if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert len(signaled) == 1
        assert signaled[0].workflow_execution_signaled_event_attributes.signal_name == "refer_to_cafcass"
        assert activity_types(added) == ["carry_out_effects_reporting"]  # the refusal's record, nothing else

        assert run.records.events(raise_.escalation_id) == records_before
        assert run.outbox.sent(raise_.escalation_id) == mails_before
        stored = run.records.refusals("wigan")
        mine = [r for r in stored if r.escalation_id == raise_.escalation_id]
        assert len(mine) == 1
        assert mine[0].refusal == refusal

        await run.update("withdraw", Withdraw(actor=CHAIR, reason="Done."))
        assert (await run.result()).status is Status.WITHDRAWN


# --- c. exactly-once recording when an activity is retried ----------------------------------------------


class CrashAfterWrite(RuntimeError):
    """The worker 'crashed' after the write, before the activity reported its completion."""


class CrashingRecordStore(FileRecordStore):
    """The real file store, failing once after writing the event with seq ``crash_seq``."""

    def __init__(self, root: Path, crash_seq: int) -> None:
        super().__init__(root)
        self.crash_seq = crash_seq
        self.results: dict[int, list[bool]] = {}

    def append_event(self, event: RecordEventInput) -> bool:
        written = super().append_event(event)
        seq = event.entry.seq
        self.results.setdefault(seq, []).append(written)
        if seq == self.crash_seq and len(self.results[seq]) == 1:
            raise CrashAfterWrite(f"crashed after writing event {seq}")
        return written


class CrashingOutbox(OutboxNotifier):
    """The real outbox, failing once after delivering the notification about seq ``crash_seq``."""

    def __init__(self, root: Path, crash_seq: int) -> None:
        super().__init__(root)
        self.crash_seq = crash_seq
        self.results: dict[str, list[bool]] = {}

    def send(self, notification: NotificationInput) -> bool:
        delivered = super().send(notification)
        key = notification.idempotency_key
        self.results.setdefault(key, []).append(delivered)
        if notification.entry.seq == self.crash_seq and len(self.results[key]) == 1:
            raise CrashAfterWrite(f"crashed after sending {key}")
        return delivered


async def test_retried_activities_record_and_notify_exactly_once(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = cp_raise()
    first_stage = load_protocol("wigan").track("cp").stages[0]
    # Seq 1 (raised) is recorded, seq 2 (sent to stage 1) is recorded and notified: crash after each.
    store = CrashingRecordStore(tmp_path, crash_seq=1)
    outbox = CrashingOutbox(tmp_path, crash_seq=2)
    eid = raise_.escalation_id
    async with running(dev_server_env, raise_, tmp_path, records=store, notifier=outbox) as run:
        view = await run.eventually(lambda v: v.stage == first_stage.key and v.deadline is not None)
        await run.update("withdraw", Withdraw(actor=CHAIR, reason="Resolved by phone."))
        outcome = await run.result()
        view = await run.view()
        events = list((await run.handle.fetch_history()).events)
    assert outcome.status is Status.WITHDRAWN

    # Each fault really happened, and every retry found the writes already done: a transition's records
    # and notices are one activity, so a retry passes over the items done before the crash.
    assert len(store.results[1]) >= 2 and len(outbox.results[f"{eid}/2"]) >= 2
    assert all(r[0] is True and not any(r[1:]) for r in store.results.values())
    assert all(r[0] is True and not any(r[1:]) for r in outbox.results.values())
    # History keeps an activity's last attempt: the start's batch ran three times, the last failure the send.
    started = [
        e.activity_task_started_event_attributes
        for e in events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert any(a.attempt == 3 and f"crashed after sending {eid}/2" in a.last_failure.message for a in started)

    # The record: each seq exactly once, in order, the same as the workflow's own timeline.
    recorded = store.events(eid)
    seqs = [r.entry.seq for r in recorded]
    assert seqs == list(range(1, outcome.events + 1))
    assert [r.entry for r in recorded] == view.timeline
    assert recorded[0].entry.kind is EventKind.RAISED and recorded[-1].entry.kind is EventKind.WITHDRAWN
    lines = (tmp_path / "events" / f"{eid}.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(view.timeline)

    # The outbox: one notification per idempotency key.
    mails = outbox.sent(eid)
    keys = [m.idempotency_key for m in mails]
    assert len(keys) == len(set(keys)) == len(outbox.results)
    assert f"{eid}/2" in keys
    assert len(list((tmp_path / "outbox").glob("*.json"))) == len(keys)
    assert not list((tmp_path / "outbox").glob("*.tmp"))
    assert all(m.entry == view.timeline[m.entry.seq - 1] for m in mails)
    assert mails[-1].kind is EventKind.WITHDRAWN
