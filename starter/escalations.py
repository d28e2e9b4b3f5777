"""Raising escalations: what every front door (web, e-mail, command line) calls to start one.

The concern is checked against the protocol's rules before anything reaches Temporal, so a bad request
is refused with the rules' own reason and nothing is started.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from activities.directory import Directory, DirectoryError, load_directory_file
from activities.settings import Settings
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
from schemas.protocol import RAISING_OFFICER
from workflows import rules
from workflows import search_attributes as indexed
from workflows.escalation import TASK_QUEUE, WORKFLOW_TYPE


class NotInDirectory(rules.Refused):
    """The directory does not know the officer or team, or cannot say who receives the first stage: bad
    input (the front door says what to fix), not a refusal of the protocol's rules."""


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
    directory: Directory | None = None,
) -> RaiseConcern:
    """Build the workflow input with a snapshot of the authority's protocol; raise ``rules.Refused``.

    The officer, the team and the first stage's recipients are checked against the authority's
    ``directory`` (by default its file in the directory folder, ``ESCALATION_DIRECTORY_DIR``): an
    escalation nobody can be told about never starts (``NotInDirectory``).
    """
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
    stage = track.stages[track.stage_index(raise_.start_at_stage) if raise_.start_at_stage else 0]
    to, cc = stage.addressees(raise_.service_area)
    roles = [r for r in dict.fromkeys([*to, *cc, *stage.told_in_advance]) if r != RAISING_OFFICER]
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
