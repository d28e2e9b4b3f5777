"""Starting the protocol's other processes: what every front door calls to send review decisions or raise a
concern about an officer's practice.

As with raising an escalation (``starter.escalations``): the request is checked against the protocol's
rules and the directory before anything reaches Temporal, and starting is idempotent on a request id (the
workflow id is derived from it; a retry returns the process the first attempt started, the same id with
other content is refused naming what differs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.directory import Directory
from protocols import load_protocol
from schemas.bounds import LEGACY
from schemas.escalation import Actor, Status
from schemas.process_models import (
    DEEMED_AGREEMENT,
    PRACTICE_CONCERN,
    DisagreeDecisions,
    ProcessOutcome,
    RaisePracticeConcern,
    SendDecisions,
)
from schemas.protocol import RAISING_OFFICER, Protocol
from starter.escalations import (
    REQUEST_ID,
    BadInput,
    DifferentRequest,
    NotInDirectory,
    authority_directory,
    check_people,
    search_attributes_registered,
)
from workflows import search_attributes as indexed
from workflows.deemed_agreement import WORKFLOW_TYPE as DECISIONS_WORKFLOW
from workflows.escalation import TASK_QUEUE
from workflows.practice_concern import WORKFLOW_TYPE as PRACTICE_WORKFLOW
from workflows.rules import deemed_agreement, practice_concern


def _digits(authority: str, process: str, request_id: str) -> str:
    if not REQUEST_ID.match(request_id):
        raise BadInput(
            f"the request id {request_id[:80]!r} is not an opaque key: use 1-64 letters, digits and . _ : - "
            "(a UUID is fine), never a name or a sentence"
        )
    digest = hashlib.sha256(f"{authority}\n{process}\n{request_id}".encode()).hexdigest()
    return f"{int(digest[:16], 16) % 10**10:010d}"


def decisions_id(authority: str, child_ref: str, request_id: str) -> str:
    """``<authority>-<child ref>-decisions-<10 digits of a hash of the request id>``."""
    return f"{authority}-{child_ref}-decisions-{_digits(authority, DEEMED_AGREEMENT, request_id)}"


def practice_id(authority: str, request_id: str) -> str:
    """``<authority>-practice-<10 digits>``: no child, no officer, no personal data."""
    return f"{authority}-practice-{_digits(authority, PRACTICE_CONCERN, request_id)}"


def prepare_decisions(
    *,
    authority: str,
    child_ref: str,
    team: str | None,
    officer: Actor,
    review_date: date,
    decisions: str,
    request_id: str,
    directory: Directory | None = None,
) -> SendDecisions:
    """The workflow input, checked by the rules and against the directory; ``rules.Refused`` if not."""
    protocol = load_protocol(authority)
    send = SendDecisions(
        process_id=decisions_id(authority, child_ref, request_id),
        protocol=protocol,
        child_ref=child_ref,
        team=team,
        officer=officer,
        review_date=review_date,
        decisions=decisions,
    )
    try:
        protocol.child_ref.check(child_ref)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    now = datetime.now(UTC)
    started = deemed_agreement.start(send, now)  # the workflow's own checks; nothing is kept
    directory = directory or authority_directory(authority)
    rule = deemed_agreement.rule_of(send)
    _holds(protocol, directory, officer, "officer")
    _reachable(protocol, directory, team, [*rule.sent_to, *rule.cc], f"{rule.label} cannot be sent")
    # A disagreement opens informal resolution: the people it goes to must be there too.
    check_people(
        deemed_agreement.resolution(started.state, _sample_disagreement(rule.sent_to[0]), now), directory
    )
    return send


def _sample_disagreement(role: str) -> DisagreeDecisions:
    return DisagreeDecisions(actor=Actor(id="check", role=role), reason="(checked at sending)")


def prepare_practice_concern(
    *,
    authority: str,
    raised_by: Actor,
    about: Actor,
    team: str | None,
    child_ref: str | None,
    summary: str,
    request_id: str,
    directory: Directory | None = None,
) -> RaisePracticeConcern:
    protocol = load_protocol(authority)
    raise_ = RaisePracticeConcern(
        process_id=practice_id(authority, request_id),
        protocol=protocol,
        raised_by=raised_by,
        about=about,
        team=team,
        child_ref=child_ref,
        summary=summary,
    )
    if child_ref is not None:
        try:
            protocol.child_ref.check(child_ref)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    practice_concern.start(raise_, datetime.now(UTC))
    directory = directory or authority_directory(authority)
    rule = practice_concern.rule_of(raise_)
    _holds(protocol, directory, raised_by, "--as-id")
    _holds(protocol, directory, about, "--about-id")
    _reachable(
        protocol, directory, team, [*rule.investigated_by, *rule.cc], f"the {rule.label} cannot be referred"
    )
    return raise_


def _holds(protocol: Protocol, directory: Directory, person: Actor, what: str) -> None:
    name = protocol.authority
    if directory.person(person.id) is None:
        raise NotInDirectory(
            f"{what} {person.id!r} is not in {name}'s directory: check the id, or have them added"
        )
    if not any(a.person == person.id and a.role == person.role for a in directory.assignments):
        role = protocol.role_name(person.role)
        raise NotInDirectory(f"{what} {person.id!r} does not hold the role of {role} in {name}'s directory")


def _reachable(
    protocol: Protocol, directory: Directory, team: str | None, roles: list[str], doing: str
) -> None:
    teams = {a.team for a in directory.assignments if a.team is not None}
    if team is not None and team not in teams:
        raise NotInDirectory(
            f"team {team!r} is not in {protocol.authority}'s directory; its teams: {', '.join(sorted(teams))}"
        )
    held = {(a.role, a.team) for a in directory.assignments}
    missing = [r for r in roles if r != RAISING_OFFICER and (r, team) not in held and (r, None) not in held]
    if missing:
        where = f"for team {team!r}" if team else "with no team given"
        raise NotInDirectory(
            f"{doing} {where}: nobody in {protocol.authority}'s directory holds "
            f"{protocol.role_names(missing)} "
            "for it or authority-wide; give --team, or add them to the directory"
        )


@dataclass(frozen=True)
class Started:
    handle: WorkflowHandle[Any, ProcessOutcome]
    existing: bool


async def start_once(
    client: Client, inp: SendDecisions | RaisePracticeConcern, task_queue: str = TASK_QUEUE
) -> Started:
    """Start the process's workflow, or find the one an earlier attempt of the same request started."""
    decisions = isinstance(inp, SendDecisions)
    workflow = DECISIONS_WORKFLOW if decisions else PRACTICE_WORKFLOW
    attributes = None
    if await search_attributes_registered(client):
        process = DEEMED_AGREEMENT if decisions else PRACTICE_CONCERN
        stage = deemed_agreement.STAGE if decisions else practice_concern.INVESTIGATION
        attributes = indexed.initial(inp.protocol.key, process, stage, Status.AWAITING_RESPONSE)
    try:
        handle = await client.start_workflow(
            workflow,
            inp,
            id=inp.process_id,
            task_queue=task_queue,
            search_attributes=attributes,
            result_type=ProcessOutcome,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        existing = client.get_workflow_handle(inp.process_id, result_type=ProcessOutcome)
        before = await _started_with(client, existing, type(inp))
        same = ("protocol", "process_id", "carried", "history_events_before_continuing")
        differs = [
            name.replace("_", " ")
            for name in type(inp).model_fields
            if name not in same and getattr(before, name) != getattr(inp, name)
        ]
        if differs:
            raise DifferentRequest(
                f"{inp.process_id} was already started by this request with another {', '.join(differs)}: "
                "something new needs a new request id"
            ) from None
        return Started(handle=existing, existing=True)
    return Started(handle=handle, existing=False)


async def _started_with(client: Client, handle: WorkflowHandle[Any, Any], model: type[Any]) -> Any:
    async for event in handle.fetch_history_events():
        payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
        (value,) = await client.data_converter.decode(payloads)
        return model.model_validate(value, context={LEGACY: True})
    raise LookupError(f"{handle.id} has no history")
