"""The standard lifecycle's history is lean: a transition places its deadlines in one local activity (one
marker event) and records and sends in one activity task; a new escalation records one patch marker; and a
note does not restart the deadline timer (time-skipping server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from schemas.escalation import Accept, Actor, AddNote, Escalate, Respond, Status
from tests.driver import make_raise
from tests.workflow_harness import local_activities, running, with_unique_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_standard_lifecycle_is_lean(time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    raise_ = with_unique_id(make_raise("gloucestershire"))
    officer = raise_.officer
    async with running(time_skipping_env, raise_, tmp_path, record_as="local-clock-lifecycle") as run:
        view = await run.view()
        # The deadline placed in a local activity is announced at the workflow task's time, not at the
        # later moment the activity resolved (which a replay could see differently).
        raised, sent = view.timeline[0], view.timeline[1]
        assert sent.seq == 2 and sent.data.get("due_date"), sent
        assert sent.at == raised.at, (raised.at, sent.at)
        assert [r.entry for r in run.records.events(raise_.escalation_id)][:2] == [raised, sent]
        await run.update(
            "respond", Respond(actor=Actor(id="sw-1", role=view.held_by[0]), answer="Seen today.")
        )
        await run.update("escalate", Escalate(actor=officer, reason="It does not address the plan."))
        view = await run.view()
        await run.update(
            "respond", Respond(actor=Actor(id="tm-1", role=view.held_by[0]), answer="Plan updated.")
        )
        before_note = await run.history_length()
        timers_before = await _count(run, EventType.EVENT_TYPE_TIMER_STARTED)
        await run.update("add_note", AddNote(actor=officer, text="Spoke to the team manager."))
        await run.view()
        assert await _count(run, EventType.EVENT_TYPE_TIMER_STARTED) == timers_before, (
            "a note keeps the timer"
        )
        note_events = await run.history_length() - before_note
        await run.update("accept", Accept(actor=officer))
        assert (await run.result()).status is Status.RESOLVED
        events = (await run.handle.fetch_history()).events
    activities = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    names = {e.activity_task_scheduled_event_attributes.activity_type.name for e in activities}
    assert names == {"carry_out_effects_reporting"}, names
    # One batch of records and notices per transition (raise, respond, escalate, respond, note, accept).
    assert len(activities) == 6, sorted(names)
    # Deadlines are placed in a local activity where a transition sets them (raise, escalate).
    local = [a["activity_type"] for a in local_activities(events)]
    assert local == ["plan_schedules", "plan_schedules"], local
    markers = [
        e.marker_recorded_event_attributes for e in events if e.HasField("marker_recorded_event_attributes")
    ]
    patches = [m for m in markers if m.marker_name == "core_patch"]
    assert len(patches) == 1, "one patch marker stands for every earlier patch"
    # A note: its update (accepted, completed), one activity and two workflow tasks; no timer restarted.
    assert note_events <= 11, f"a note took {note_events} history events"


async def _count(run: object, kind: int) -> int:
    events = (await run.handle.fetch_history()).events  # type: ignore[attr-defined]
    return sum(1 for e in events if e.event_type == kind)
