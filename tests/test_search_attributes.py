"""Search attributes: set at start where registered, kept current as the escalation moves, never personal."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from schemas.escalation import Actor, Concern, Escalate, RaiseConcern
from starter.escalations import prepare, raise_concern, search_attributes_registered
from tests.workflow_harness import file_worker, replay, unique_ref
from workflows import search_attributes as indexed
from workflows.escalation import WORKFLOW_TYPE

IRO = Actor(id="wig-iro-a", role="iro")
CONCERN = Concern(summary="Drift.", impact_on_child="Waiting.", requested_action="Act.")


def test_updates_carry_only_what_changed() -> None:
    deadline = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
    before = {"EscalationStage": "stage-1", "EscalationStatus": "awaiting_response"}
    after = {
        "EscalationStage": "stage-1",
        "EscalationStatus": "awaiting_response",
        "EscalationDeadline": deadline,
        "EscalationFlags": [],
    }
    changed = indexed.updates(before, after)
    assert [(u.key.name, u.value) for u in changed] == [("EscalationDeadline", deadline)]
    assert indexed.updates(after, after) == []
    later = {**after, "EscalationDeadline": None, "EscalationFlags": ["overdue"]}
    assert [(u.key.name, u.value) for u in indexed.updates(after, later)] == [
        ("EscalationDeadline", None),
        ("EscalationFlags", ["overdue"]),
    ]


def test_registration_flags_name_every_attribute_with_its_type() -> None:
    flags = indexed.registration_flags()
    assert flags[1::2] == [
        "EscalationAuthority=Keyword",
        "EscalationTrack=Keyword",
        "EscalationStage=Keyword",
        "EscalationStatus=Keyword",
        "EscalationDeadline=Datetime",
        "EscalationFlags=KeywordList",
    ]
    assert set(flags[::2]) == {"--search-attribute"}


def _wigan_raise(child: str) -> RaiseConcern:
    return prepare(
        authority="wigan",
        track="iro",
        category="Quality of practice",
        child_ref=child,
        sequence=1,
        officer=IRO,
        concern=CONCERN,
        team="team-a",
    )


async def _found(client: Client, query: str, workflow_id: str, timeout: float = 20.0) -> None:
    """Visibility is eventually consistent: poll until ``query`` lists ``workflow_id``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if any([e.id == workflow_id async for e in client.list_workflows(query)]):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id} not listed by {query!r} within {timeout}s")
        await asyncio.sleep(0.2)


@pytest.mark.asyncio(loop_scope="session")
async def test_escalations_are_findable_by_stage_and_status(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_server_env.client
    assert await search_attributes_registered(client), "the test dev server registers them"
    queue = f"sa-{uuid.uuid4().hex[:8]}"
    child = unique_ref()
    raise_ = _wigan_raise(child)
    worker = file_worker(dev_server_env, queue, tmp_path)
    async with worker:
        handle = await raise_concern(client, raise_, task_queue=queue)
        wid = handle.id
        base = "EscalationAuthority = 'wigan' AND EscalationTrack = 'iro'"
        await _found(
            client,
            f"{base} AND EscalationStage = 'stage-1' AND EscalationDeadline > '2000-01-01T00:00:00Z'",
            wid,
        )
        await handle.execute_update("escalate", Escalate(actor=IRO, reason="No answer."))
        # Stage 2 needs the IRO team manager's agreement first: the escalation waits as "escalation due".
        await _found(client, f"{base} AND EscalationStatus = 'escalation_due'", wid)
        described = await handle.describe()
        values = described.typed_search_attributes
        assert values.get(indexed.DEADLINE) is None, "no deadline runs while the escalation waits"
        assert child not in str([(p.key.name, p.value) for p in values]), "no child reference in attributes"
        await handle.terminate("test over")

    history = await handle.fetch_history()
    upserts = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    assert upserts, "the workflow keeps its attributes current"
    await replay(history, record_as="search-attributes")


@pytest.mark.asyncio(loop_scope="session")
async def test_without_attributes_at_start_the_workflow_upserts_none(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_server_env.client
    queue = f"sa-{uuid.uuid4().hex[:8]}"
    raise_ = _wigan_raise(unique_ref())
    worker = file_worker(dev_server_env, queue, tmp_path)
    async with worker:
        handle = await client.start_workflow(WORKFLOW_TYPE, raise_, id=raise_.escalation_id, task_queue=queue)
        await handle.execute_update("escalate", Escalate(actor=IRO, reason="No answer."))
        await handle.terminate("test over")
    upserted = {
        key
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        for key in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    }
    # Temporal's own TemporalChangeVersion (the workflow's patch markers) may be there; none of ours.
    assert not upserted & {a.name for a in indexed.ALL}, upserted
