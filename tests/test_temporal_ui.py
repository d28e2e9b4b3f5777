"""What an engineer reads of an escalation in the Temporal UI, through the same API the UI uses.

On a real dev server: the summary and details fixed at start, the current details the workflow keeps up to
date, and a summary on every activity and timer in the history. None of them names the child, the officer or
the concern.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.recording import FileRecordStore, OutboxNotifier
from protocols import load_protocol
from schemas.escalation import Actor, Concern, Respond
from starter.escalations import prepare, raise_concern
from tests.workflow_harness import unique_ref
from worker import build_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")

IRO = Actor(id="wig-iro-a", role="iro")
TEAM_MANAGER = Actor(id="wig-team-manager-a", role="team_manager")
CONCERN = Concern(
    summary="Zebra-striped drift in the plan.",
    impact_on_child="Quokka waits for contact.",
    requested_action="Narwhal review by Friday.",
)
PRIVATE = ("Zebra", "Quokka", "Narwhal", IRO.id, TEAM_MANAGER.id)
"""Words only the concern and the people hold: no summary may contain them (nor the child's reference)."""

SUMMARISED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
}


async def _text(handle: WorkflowHandle[Any, Any], payload: Payload) -> str:
    [value] = await handle._client.data_converter.decode([payload], [str])
    assert isinstance(value, str)
    return value


def _summarised(event: Any) -> str:
    """The kind of an event the UI shows with a summary ("" for others): a local activity is a marker."""
    if event.event_type in SUMMARISED:
        return str(EventType.Name(event.event_type).removeprefix("EVENT_TYPE_"))
    marker = (
        event.marker_recorded_event_attributes if event.HasField("marker_recorded_event_attributes") else None
    )
    return "LOCAL_ACTIVITY" if marker is not None and marker.marker_name == "core_local_activity" else ""


async def _summaries(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """(kind, summary) for every activity (local or not) and timer started, in order."""
    found: list[tuple[str, str]] = []
    async for event in handle.fetch_history_events():
        name = _summarised(event)
        if name:
            summary = (
                await _text(handle, event.user_metadata.summary) if event.HasField("user_metadata") else ""
            )
            found.append((name, summary))
    return found


async def _details(handle: WorkflowHandle[Any, Any]) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)


async def _until_details(handle: WorkflowHandle[Any, Any], start: str, timeout: float = 60.0) -> str:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    details = await _details(handle)
    while not details.startswith(start):
        if loop.time() > give_up:
            raise AssertionError(f"current details never began {start!r}: {details!r}")
        await asyncio.sleep(0.1)
        details = await _details(handle)
    return details


async def test_the_ui_shows_a_summary_current_details_and_what_each_activity_and_timer_is_for(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_server_env.client
    protocol = load_protocol("wigan")
    track = protocol.track("iro")
    child = unique_ref()
    raise_ = prepare(
        authority="wigan",
        track="iro",
        category=track.categories[0],
        child_ref=child,
        sequence=1,
        officer=IRO,
        concern=CONCERN,
        team="team-a",
    )
    queue = f"ui-{uuid.uuid4().hex[:8]}"
    worker = build_worker(client, queue, records=FileRecordStore(tmp_path), notifier=OutboxNotifier(tmp_path))
    async with worker:
        handle = await raise_concern(client, raise_, task_queue=queue)
        first = track.stages[0]
        waiting = await _until_details(handle, f"Awaiting {protocol.role_name(first.to[0])} (stage 1 of ")
        await handle.execute_update("respond", Respond(actor=TEAM_MANAGER, answer="Plan agreed."))
        answered = await _until_details(handle, "Answer received")
        summaries = await _summaries(handle)
        described = await handle.describe()
        await handle.terminate("test over")

    summary = await described.static_summary()
    details = await described.static_details()
    assert summary == (
        f"{protocol.authority} · {track.name} · {track.categories[0]} · "
        f"starts at stage 1 of {len(track.stages)}, {first.name}"
    )
    assert details is not None and f"- **Ladder:** {' → '.join(s.name for s in track.stages)}" in details

    assert "until the end of " in waiting and "working days left on " in waiting, waiting
    assert ("- Total limit: the end of " in waiting) is first.formal, "a formal stage runs the total limit"
    assert answered.startswith(
        "Answer received: the officer decides whether it resolves the concern (stage 1 of "
    ), answered

    kinds = [kind for kind, _ in summaries]
    assert {"TIMER_STARTED", "LOCAL_ACTIVITY", "ACTIVITY_TASK_SCHEDULED"} <= set(kinds), summaries
    assert all(text for _, text in summaries), f"an activity or timer without a summary: {summaries}"
    texts = [text for _, text in summaries]
    assert texts[0].startswith("place deadlines: ") and "stage deadline" in texts[0], texts
    manager = protocol.role_name(first.to[0])
    assert any(t.startswith("record raised") and f"notify {manager}: sent to stage" in t for t in texts), (
        texts
    )
    timers = [text for kind, text in summaries if kind == "TIMER_STARTED"]
    assert timers[0].startswith(
        (f"deadline: {manager}, the end of ", f"remind {manager}: answer due by the end of ")
    ), timers
    assert any(t.startswith("record response") for t in texts), texts

    everything = [summary, details, waiting, answered, *texts]
    for text in everything:
        for private in (*PRIVATE, child):
            assert private not in text, f"{private!r} in {text!r}"
