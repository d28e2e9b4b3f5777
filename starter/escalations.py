"""Raising escalations: what every front door (web, e-mail, command line) calls to start one.

The concern is checked against the protocol's rules before anything reaches Temporal, so a bad request
is refused with the rules' own reason and nothing is started.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from protocols import load_protocol
from schemas.escalation import (
    Actor,
    Bypass,
    Concern,
    EscalationOutcome,
    RaiseConcern,
    RecordConsultation,
    Status,
    escalation_id_for,
)
from workflows import rules
from workflows import search_attributes as indexed
from workflows.escalation import TASK_QUEUE, WORKFLOW_TYPE


def prepare(
    *,
    authority: str,
    track: str,
    category: str,
    child_ref: str,
    sequence: int,
    officer: Actor,
    concern: Concern,
    service_area: str | None = None,
    team: str | None = None,
    start_at_stage: str | None = None,
    start_bypass: Bypass | None = None,
    consultations: list[RecordConsultation] | None = None,
) -> RaiseConcern:
    """Build the workflow input with a snapshot of the authority's protocol; raise ``rules.Refused``."""
    raise_ = RaiseConcern(
        escalation_id=escalation_id_for(authority, child_ref, sequence),
        protocol=load_protocol(authority),
        track=track,
        category=category,
        service_area=service_area,
        child_ref=child_ref,
        team=team,
        officer=officer,
        concern=concern,
        start_at_stage=start_at_stage,
        start_bypass=start_bypass,
        consultations=consultations or [],
    )
    try:
        raise_.protocol.child_ref.check(child_ref)
    except ValueError as exc:
        raise rules.Refused(str(exc)) from None
    rules.start(raise_, datetime.now(UTC))  # the same check the workflow makes; nothing is kept
    return raise_


async def raise_concern(
    client: Client, raise_: RaiseConcern, task_queue: str = TASK_QUEUE
) -> WorkflowHandle[Any, EscalationOutcome]:
    """Start the escalation's workflow; its id is the escalation id (no personal data).

    Where the namespace has the escalation search attributes registered, the workflow starts with them
    and keeps them current; elsewhere it runs without them.
    """
    attributes = None
    if await search_attributes_registered(client):
        protocol = raise_.protocol
        track = protocol.track(raise_.track)
        first = raise_.start_at_stage or track.stages[0].key
        attributes = indexed.initial(protocol.key, track.key, first, Status.AWAITING_RESPONSE)
    return await client.start_workflow(
        WORKFLOW_TYPE,
        raise_,
        id=raise_.escalation_id,
        task_queue=task_queue,
        search_attributes=attributes,
        result_type=EscalationOutcome,
    )


async def search_attributes_registered(client: Client) -> bool:
    """Whether every escalation search attribute is registered in the client's namespace."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError:  # not allowed, or not offered (the time-skipping test server): run without
        return False
    return all(k.name in listed.custom_attributes for k in indexed.ALL)
