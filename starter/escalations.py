"""Raising escalations: what every front door (web, e-mail, command line) calls to start one.

The concern is checked against the protocol's rules before anything reaches Temporal, so a bad request
is refused with the rules' own reason and nothing is started.

Raising is idempotent. Each raise carries a request id that its front door generates once per request
(a form's hidden field, the command line's ``--request-id``) and sends again when it retries; the
workflow id is derived from it (``escalation_id_for_request``), so a retry after a time-out finds the
escalation the first attempt started instead of starting a second one (``raise_once``). A retry with the
same request id but other content is refused (``DifferentRequest``), naming what differs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.directory import Directory, DirectoryError, load_directory_file
from activities.settings import Settings
from protocols import load_protocol
from schemas.bounds import LEGACY
from schemas.escalation import (
    Actor,
    Bypass,
    Collective,
    Concern,
    EscalationOutcome,
    ExternalContact,
    RaiseConcern,
    RecordConsultation,
    Status,
    escalation_id_for,
)
from schemas.protocol import RAISING_OFFICER
from workflows import rules, summaries
from workflows import search_attributes as indexed
from workflows.escalation import TASK_QUEUE, WORKFLOW_TYPE


class BadInput(rules.Refused):
    """The request itself is wrong (the front door says what to fix), not refused by the protocol's rules."""


class NotInDirectory(BadInput):
    """The directory does not know the officer or team, or cannot say who receives the first stage."""


class DifferentRequest(BadInput):
    """The request id (or sequence) already raised an escalation, about something else."""


REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
"""A request id: an opaque key of at most 64 characters (a UUID is fine), never a name or a sentence."""


def escalation_id_for_request(authority: str, child_ref: str, request_id: str) -> str:
    """``<authority>-<child ref>-<10 digits>``: the digits are a hash of the authority and the request id,
    so the same request always names the same escalation and the request id itself never shows. Ten
    digits, where a ``--sequence`` gives four, so the two never name the same escalation."""
    digest = hashlib.sha256(f"{authority}\n{request_id}".encode()).hexdigest()
    return f"{authority}-{child_ref}-{int(digest[:16], 16) % 10**10:010d}"


def prepare(
    *,
    authority: str,
    track: str,
    category: str,
    child_ref: str,
    officer: Actor,
    concern: Concern,
    service_area: str | None = None,
    team: str | None = None,
    start_at_stage: str | None = None,
    start_bypass: Bypass | None = None,
    consultations: list[RecordConsultation] | None = None,
    child_status: str | None = None,
    severity: str | None = None,
    external_contacts: list[ExternalContact] | None = None,
    directory: Directory | None = None,
    sequence: int | None = None,
    request_id: str | None = None,
    collective: Collective | None = None,
    part_of: str | None = None,
) -> RaiseConcern:
    """Build the workflow input with a snapshot of the authority's protocol; raise ``rules.Refused``.

    The officer, the team and the first stage's recipients are checked against the authority's
    ``directory`` (by default its file in the directory folder, ``ESCALATION_DIRECTORY_DIR``): an
    escalation nobody can be told about never starts (``NotInDirectory``).

    The escalation id comes from exactly one of ``request_id`` (idempotent raising, see the module) and
    ``sequence`` (``<authority>-<child ref>-<sequence, 4 digits>``, chosen by the caller).
    """
    if (sequence is None) == (request_id is None):
        raise ValueError("give exactly one of sequence and request_id")
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise BadInput(
            f"the request id {request_id[:80]!r} is not an opaque key: use 1-64 letters, digits and . _ : - "
            "(a UUID is fine), never a name or a sentence"
        )
    escalation_id = (
        escalation_id_for(authority, child_ref, sequence)
        if sequence is not None
        else escalation_id_for_request(authority, child_ref, request_id or "")
    )
    raise_ = RaiseConcern(
        escalation_id=escalation_id,
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
        child_status=child_status,
        severity=severity,
        external_contacts=external_contacts or [],
        collective=collective,
        part_of=part_of,
    )
    try:
        if collective is None:  # a collective alert's reference is COLLECTIVE, whatever the case numbers
            raise_.protocol.child_ref.check(child_ref)
    except ValueError as exc:
        raise rules.Refused(str(exc)) from None
    rules.start(raise_, datetime.now(UTC))  # the same check the workflow makes; nothing is kept
    check_people(raise_, directory or authority_directory(authority))
    return raise_


def authority_directory(authority: str, folder: Path | None = None) -> Directory:
    """The authority's directory file (``<folder>/<authority>.yaml``); ``rules.Refused`` if it has none."""
    path = (folder or Settings().directory_dir) / f"{authority}.yaml"
    if not path.is_file():
        raise NotInDirectory(
            f"{authority} has no directory ({path}): add who holds each role before raising escalations"
        )
    try:
        return load_directory_file(path)
    except DirectoryError as exc:
        raise NotInDirectory(str(exc)) from None


def check_people(raise_: RaiseConcern, directory: Directory) -> None:
    """The raising officer holds their role in the directory, the team is one the directory knows, and
    someone holds each role the first stage is sent to (to, cc, told in advance) for that team or
    authority-wide, as the notice will look them up."""
    officer = raise_.officer
    name = raise_.protocol.authority
    if directory.person(officer.id) is None:
        raise NotInDirectory(
            f"officer {officer.id!r} is not in {name}'s directory: check the id, or have them added"
        )
    held = {a.team for a in directory.assignments if a.person == officer.id and a.role == officer.role}
    if not held:
        role = raise_.protocol.role_name(officer.role)
        raise NotInDirectory(f"officer {officer.id!r} does not hold the role of {role} in {name}'s directory")
    teams = {a.team for a in directory.assignments if a.team is not None}
    if raise_.team is not None and raise_.team not in teams:
        known = ", ".join(sorted(teams)) or "none"
        raise NotInDirectory(f"team {raise_.team!r} is not in {name}'s directory; its teams: {known}")
    _check_first_recipients(raise_, directory, teams)


def _check_first_recipients(raise_: RaiseConcern, directory: Directory, teams: set[str]) -> None:
    protocol = raise_.protocol
    track = protocol.track(raise_.track)
    index, _ = rules.start_index(track, raise_.category, raise_.severity, raise_.start_at_stage)
    stage = track.stages[index]
    to, cc = stage.addressees(raise_.service_area)
    outside = set(protocol.external_roles)  # given at raise by address, not looked up
    roles = [
        r for r in dict.fromkeys([*to, *cc, *stage.told_in_advance]) if r not in (RAISING_OFFICER, *outside)
    ]
    held = {(a.role, a.team) for a in directory.assignments}

    def resolves(role: str, team: str | None) -> bool:
        return (role, team) in held or (role, None) in held

    missing = [r for r in roles if not resolves(r, raise_.team)]
    if not missing:
        return
    fitting = sorted(t for t in teams if all(resolves(r, t) for r in roles))
    team = "with no team given" if raise_.team is None else f"for team {raise_.team!r}"
    if fitting:
        fix = f"{'give one of ' if raise_.team is None else ''}the teams that have them: {', '.join(fitting)}"
    else:
        known = ", ".join(sorted(teams)) or "none"
        fix = f"no team has them all (its teams: {known}): add them to the directory"
    raise NotInDirectory(
        f"{stage.name} cannot be sent {team}: nobody in {protocol.authority}'s directory holds "
        f"{protocol.role_names(missing)} for it or authority-wide; {fix}"
    )


@dataclass(frozen=True)
class Raised:
    handle: WorkflowHandle[Any, EscalationOutcome]
    existing: bool
    """True when an earlier attempt of the same request had started it (a retry)."""


_SAME_REQUEST = (
    "track",
    "category",
    "service_area",
    "child_ref",
    "team",
    "officer",
    "concern",
    "start_at_stage",
    "start_bypass",
    "consultations",
)
"""What a retry must repeat exactly (the protocol snapshot may have been reloaded in between)."""


async def raise_concern(
    client: Client, raise_: RaiseConcern, task_queue: str = TASK_QUEUE
) -> WorkflowHandle[Any, EscalationOutcome]:
    """``raise_once``'s handle: the escalation started now, or by an earlier attempt of the same request."""
    return (await raise_once(client, raise_, task_queue)).handle


async def raise_once(client: Client, raise_: RaiseConcern, task_queue: str = TASK_QUEUE) -> Raised:
    """Start the escalation's workflow, or find the one an earlier attempt of the same request started.

    Its id is the escalation id (no personal data), never reused, even once that escalation has closed.
    ``DifferentRequest`` when that id already raised an escalation about something else. Where the
    namespace has the escalation search attributes registered, the workflow starts with them and keeps
    them current; elsewhere it runs without them.
    """
    attributes = None
    if await search_attributes_registered(client):
        protocol = raise_.protocol
        track = protocol.track(raise_.track)
        first = raise_.start_at_stage or track.stages[0].key
        attributes = indexed.initial(protocol.key, track.key, first, Status.AWAITING_RESPONSE)
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            raise_,
            id=raise_.escalation_id,
            task_queue=task_queue,
            search_attributes=attributes,
            result_type=EscalationOutcome,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summaries.static_summary(raise_),
            static_details=summaries.static_details(raise_),
        )
    except WorkflowAlreadyStartedError:
        existing = client.get_workflow_handle(raise_.escalation_id, result_type=EscalationOutcome)
        differs = _differences(await _raised_with(client, existing), raise_)
        if differs:
            raise DifferentRequest(
                f"escalation {raise_.escalation_id} was already raised by this request with another "
                f"{', '.join(differs)}: a new concern needs a new request id (or sequence)"
            ) from None
        return Raised(handle=existing, existing=True)
    return Raised(handle=handle, existing=False)


async def _raised_with(client: Client, handle: WorkflowHandle[Any, Any]) -> RaiseConcern:
    """The input the escalation was started with (its latest run's, which carries the same request)."""
    async for event in handle.fetch_history_events():
        payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
        (value,) = await client.data_converter.decode(payloads)
        return RaiseConcern.model_validate(value, context={LEGACY: True})
    raise LookupError(f"escalation {handle.id} has no history")


def _differences(before: RaiseConcern, now: RaiseConcern) -> list[str]:
    fields = [f for f in _SAME_REQUEST if getattr(before, f) != getattr(now, f)]
    if before.protocol.key != now.protocol.key:
        fields.insert(0, "authority")
    return [f.replace("_", " ") for f in fields]


async def search_attributes_registered(client: Client) -> bool:
    """Whether every escalation search attribute is registered in the client's namespace."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError:  # not allowed, or not offered (the time-skipping test server): run without
        return False
    return all(k.name in listed.custom_attributes for k in indexed.ALL)
