"""Inputs, actions, state and views of the protocol's other processes (see ``schemas.processes``).

``DeemedAgreementWorkflow`` takes ``SendDecisions``; ``PracticeConcernWorkflow`` takes
``RaisePracticeConcern``. Both answer the ``state`` query with a ``ProcessView`` and their updates with a
``ProcessResult``. Their ids hold no personal data: the authority, an opaque child reference (decisions
only) and digits derived from the request id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from schemas.bounds import BoundedDate, OptionalText, Ref, TeamRef, Text
from schemas.escalation import Actor, Flag, Refusal, Status, TimelineEntry
from schemas.protocol import Protocol
from schemas.schedule import Schedule

DEEMED_AGREEMENT = "review-decisions"
"""The process's name: its track in the records and in the search attributes."""
PRACTICE_CONCERN = "practice-concern"

DECISIONS_ID = r"^[a-z0-9-]+-[A-Za-z0-9]+-decisions-\d{10}$"
PRACTICE_ID = r"^[a-z0-9-]+-practice-\d{10}$"
NO_CHILD = "NONE"
"""The child reference recorded for a practice concern that is about no particular child's review."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _State(_Model):
    """What both processes keep: the protocol snapshot, the timeline, refusals and problems."""

    process_id: str
    protocol: Protocol
    team: str | None = None
    status: Status
    stage: str
    outcome: str = Field(default="", description="How it ended, in a word ('deemed_agreed', ...).")
    schedule: Schedule | None = None
    reminded: bool = False
    flags: list[Flag] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    refusals: list[Refusal] = Field(default_factory=list)
    refusals_total: int = 0
    problems: list[str] = Field(default_factory=list)


# --- review decisions deemed agreed --------------------------------------------------------------------


class DecisionsState(_State):
    child_ref: str
    officer: Actor
    review_date: date
    decisions: str
    sent_at: datetime
    answered_by: Actor | None = None
    disagreement: str | None = None
    resolution_id: str | None = Field(
        default=None, description="The escalation a disagreement opened (informal resolution)."
    )


class SendDecisions(_Model):
    """Input of ``DeemedAgreementWorkflow``: a review's decisions, sent to the team manager."""

    process_id: str = Field(pattern=DECISIONS_ID)
    protocol: Protocol
    child_ref: Ref
    team: TeamRef | None = None
    officer: Actor
    review_date: BoundedDate
    decisions: Text
    history_events_before_continuing: int = Field(default=10_000, ge=200)
    carried: DecisionsState | None = None


class AgreeDecisions(_Model):
    kind: Literal["agree"] = "agree"
    actor: Actor
    note: OptionalText = ""


class DisagreeDecisions(_Model):
    kind: Literal["disagree"] = "disagree"
    actor: Actor
    reason: Text


class WithdrawProcess(_Model):
    kind: Literal["withdraw"] = "withdraw"
    actor: Actor
    reason: Text


DecisionsAction = Annotated[AgreeDecisions | DisagreeDecisions | WithdrawProcess, Field(discriminator="kind")]


# --- concerns about an officer's own practice ----------------------------------------------------------


class PracticeState(_State):
    raised_by: Actor
    about: Actor
    child_ref: str | None = None
    summary: str
    raised_at: datetime
    feedback: str | None = None
    feedback_by: Actor | None = None


class RaisePracticeConcern(_Model):
    """Input of ``PracticeConcernWorkflow``: a concern about an officer's practice, for the QA manager."""

    process_id: str = Field(pattern=PRACTICE_ID)
    protocol: Protocol
    raised_by: Actor
    about: Actor = Field(description="The officer whose practice it is about (staff reference and role).")
    team: TeamRef | None = None
    child_ref: Ref | None = Field(
        default=None, description="The child whose review or conference it concerns."
    )
    summary: Text
    history_events_before_continuing: int = Field(default=10_000, ge=200)
    carried: PracticeState | None = None


class GiveFeedback(_Model):
    """The investigator (or, once escalated, the senior manager) feeds back."""

    kind: Literal["give_feedback"] = "give_feedback"
    actor: Actor
    feedback: Text


class AcceptFeedback(_Model):
    """The person who raised it is satisfied with the feedback: resolved."""

    kind: Literal["accept_feedback"] = "accept_feedback"
    actor: Actor
    note: OptionalText = ""


class EscalatePractice(_Model):
    """The person who raised it is not satisfied: it goes to the senior manager."""

    kind: Literal["escalate"] = "escalate"
    actor: Actor
    reason: Text


PracticeAction = Annotated[
    GiveFeedback | AcceptFeedback | EscalatePractice | WithdrawProcess, Field(discriminator="kind")
]

DECISIONS_ACTIONS: tuple[str, ...] = tuple(
    m.model_fields["kind"].default for m in get_args(get_args(DecisionsAction)[0])
)
PRACTICE_ACTIONS: tuple[str, ...] = tuple(
    m.model_fields["kind"].default for m in get_args(get_args(PracticeAction)[0])
)


# --- what both answer ------------------------------------------------------------------------------------


class ProcessView(_Model):
    """Where a process stands, for ``status`` and ``history``."""

    process_id: str
    process: str
    authority: str
    child_ref: str | None
    status: Status
    stage: str
    stage_name: str
    outcome: str
    held_by: list[str]
    copied: list[str]
    deadline: datetime | None
    deadline_date: date | None
    working_days_left: int | None
    details: dict[str, str] = Field(default_factory=dict, description="What it is about, label -> text.")
    linked: str | None = Field(default=None, description="An escalation it opened.")
    flags: list[Flag] = Field(default_factory=list)
    timeline: list[TimelineEntry]
    refusals: list[Refusal] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    busy: bool = False


class ProcessResult(_Model):
    """What an accepted update returns."""

    outcome: str
    status: Status
    stage: str


class ProcessOutcome(_Model):
    """The workflow's result when the process ends."""

    process_id: str
    status: Status
    outcome: str
    events: int
    linked: str | None = None


SendDecisions.model_rebuild()
RaisePracticeConcern.model_rebuild()
