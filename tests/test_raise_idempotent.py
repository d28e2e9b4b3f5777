"""Raising is idempotent: a retry with the same request id returns the same escalation, never a second one.

The workflow id is derived from the authority, the child's reference and the request id (a hash: the
request id itself never appears in it); a retry with the same request id but other content is refused,
naming what differs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from schemas.escalation import Actor, Concern, RaiseConcern
from starter.cli.common import ESCALATION_ID
from starter.escalations import BadInput, DifferentRequest, prepare, raise_concern, raise_once
from tests.workflow_harness import file_worker, unique_ref

FIELDS: dict[str, Any] = {
    "authority": "wigan",
    "track": "iro",
    "category": "Quality of practice",
    "officer": Actor(id="wig-iro-a", role="iro"),
    "team": "team-a",
    "concern": Concern(summary="No visits.", impact_on_child="Not seen.", requested_action="Visit."),
}


def _prepare(child_ref: str, request_id: str, **overrides: Any) -> RaiseConcern:
    return prepare(**{**FIELDS, "child_ref": child_ref, "request_id": request_id, **overrides})


def test_the_id_is_derived_from_the_request_id_without_showing_it() -> None:
    first = _prepare("C4F2A9", "web-7f3a9c01-4b2e")
    assert first.escalation_id == _prepare("C4F2A9", "web-7f3a9c01-4b2e").escalation_id
    assert first.escalation_id != _prepare("C4F2A9", "web-7f3a9c01-4b2f").escalation_id
    assert re.fullmatch(r"wigan-C4F2A9-\d{10}", first.escalation_id)
    assert ESCALATION_ID.match(first.escalation_id)
    assert "7f3a9c01" not in first.escalation_id
    # A sequence still names the escalation as before; a raise gives one or the other.
    assert prepare(**FIELDS, child_ref="C4F2A9", sequence=3).escalation_id == "wigan-C4F2A9-0003"
    with pytest.raises(ValueError, match="exactly one of sequence and request_id"):
        prepare(**FIELDS, child_ref="C4F2A9", sequence=3, request_id="r1")


def test_a_request_id_must_be_an_opaque_key() -> None:
    with pytest.raises(BadInput, match="request id"):
        _prepare("C4F2A9", "Jayden Smith's form")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_retry_returns_the_same_escalation(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    child = unique_ref()
    request_id = f"req-{child}"
    raise_ = _prepare(child, request_id)
    queue = f"idem-{child}"
    async with file_worker(time_skipping_env, queue, tmp_path):
        first = await raise_once(time_skipping_env.client, raise_, queue)
        assert not first.existing
        # The retry after a time-out: the start went through, the caller never heard. Same request id.
        again = await raise_once(time_skipping_env.client, _prepare(child, request_id), queue)
        assert again.existing and again.handle.id == first.handle.id
        assert (await again.handle.describe()).run_id == (await first.handle.describe()).run_id
        handle = await raise_concern(time_skipping_env.client, _prepare(child, request_id), queue)
        assert handle.id == first.handle.id
        # Same request id, other content: refused, naming what differs and how to fix it.
        other = _prepare(
            child, request_id, concern=Concern(summary="Other.", impact_on_child="I.", requested_action="R.")
        )
        with pytest.raises(DifferentRequest) as refused:
            await raise_once(time_skipping_env.client, other, queue)
        reason = refused.value.reason
        assert first.handle.id in reason and "concern" in reason and "new request id" in reason
        await first.handle.terminate("test over")
