"""Noting good practice: what every front door calls (``escalate good-practice note``, the web form).

As for the protocol's other processes (``starter.processes``): the request is checked against the
protocol's ``good_practice`` section and the directory before anything reaches Temporal, and noting is
idempotent on a request id (the workflow id is derived from it: a retry finds the note the first attempt
started; the same id with another note is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.directory import Directory
from protocols import load_protocol
from schemas.good_practice import GOOD_PRACTICE, GoodPracticeNote, GoodPracticeRequest, GoodPracticeResult
from starter.escalations import DifferentRequest, authority_directory
from starter.processes import _digits, _holds, _reachable
from workflows.escalation import TASK_QUEUE
from workflows.good_practice import WORKFLOW_TYPE
from workflows.rules import good_practice as rules


def note_id(authority: str, request_id: str) -> str:
    """``<authority>-good-practice-<10 digits>``: no child, no person, no personal data."""
    return f"{authority}-{GOOD_PRACTICE}-{_digits(authority, GOOD_PRACTICE, request_id)}"


def prepare_note(
    request: GoodPracticeRequest, request_id: str, directory: Directory | None = None
) -> GoodPracticeNote:
    """The workflow input; ``rules.Refused`` if the protocol does not allow it, ``BadInput`` (its
    ``NotInDirectory``) if the directory cannot say who writes, who is noted or who is copied. Without a
    team, the noted person's team is taken from the directory when they hold their role for one team."""
    protocol = load_protocol(request.authority)
    directory = directory or authority_directory(request.authority)
    if request.team is None:  # their managers are their team's: the directory knows it when it is one
        teams = {
            a.team
            for a in directory.assignments
            if a.person == request.about.id and a.role == request.about.role and a.team is not None
        }
        if len(teams) == 1:
            request = request.model_copy(update={"team": teams.pop()})
    note = rules.note_for(protocol, request, note_id(request.authority, request_id))
    _holds(protocol, directory, request.by, "--as-id")
    _holds(protocol, directory, request.about, "--about-id")
    _reachable(protocol, directory, request.team, note.cc, f"the {note.label.lower()} cannot be copied")
    return note


@dataclass(frozen=True)
class Noted:
    handle: WorkflowHandle[object, GoodPracticeResult]
    existing: bool


async def note_once(client: Client, note: GoodPracticeNote, task_queue: str = TASK_QUEUE) -> Noted:
    """Start the note's workflow, or find the one an earlier attempt of the same request started."""
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            note,
            id=note.note_id,
            task_queue=task_queue,
            result_type=GoodPracticeResult,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        existing = client.get_workflow_handle(note.note_id, result_type=GoodPracticeResult)
        async for event in existing.fetch_history_events():
            payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
            (value,) = await client.data_converter.decode(payloads)
            if GoodPracticeNote.model_validate(value) != note:
                raise DifferentRequest(
                    f"{note.note_id} was already noted by this request with other content: something new "
                    "needs a new request id"
                ) from None
            break
        return Noted(handle=existing, existing=True)
    return Noted(handle=handle, existing=False)
