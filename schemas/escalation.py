"""Inputs, actions and state of one escalation.

Every update and signal of ``EscalationWorkflow`` takes one of the ``*Action`` models below; the workflow's
input is ``RaiseConcern``; the ``state`` query returns ``EscalationView``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.bounds import (
    LIST_MAX,
    BoundedDate,
    Key,
    OptionalText,
    Ref,
    RoleKey,
    ShortText,
    TeamRef,
    Text,
    at_most,
    bound,
)
from schemas.duties import People
from schemas.protocol import Protocol
from schemas.schedule import Schedule


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Actor(_Model):
    """Who does something: an opaque staff reference and the role they act in."""

    id: Ref
    role: RoleKey


class Status(StrEnum):
    AWAITING_RESPONSE = "awaiting_response"
    AWAITING_DECISION = "awaiting_decision"
    ESCALATION_DUE = "escalation_due"
    MONITORING = "monitoring"
    EXHAUSTED = "exhausted"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"
    REFERRED_TO_CAFCASS = "referred_to_cafcass"
    CLOSED = "closed"

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED


_CLOSED = {Status.RESOLVED, Status.WITHDRAWN, Status.REFERRED_TO_CAFCASS, Status.CLOSED}


class Flag(StrEnum):
    BREACHED = "breached"
    """The total formal limit has passed without resolution."""
    BEYOND_TOTAL_LIMIT = "beyond_total_limit"
    """The officer explicitly let an extension pass the total limit."""
    OVERDUE = "overdue"
    """A stage's deadline passed without an answer."""
    EMERGENCY_BYPASS = "emergency_bypass"
    ACTION_PLAN_DUE = "action_plan_due"
    NEEDS_ATTENTION = "needs_attention"
    """A record or notice failed for good; see ``problems``."""
    EXCEPTIONAL_DECISION_DUE = "exceptional_decision_due"
    """The next stage is used only in exceptional circumstances: the escalation waits for the officer to
    decide whether they are (``escalate`` with ``exceptional``) instead of climbing on its own."""
    STALLED = "stalled"
    """A notice could not go out (a role nobody holds, the mail server down): see ``stall``."""
    CAFCASS_REFERRED = "cafcass_referred"
    """Referred to CAFCASS under a protocol whose local process runs on beside the referral (v2)."""
    OFFICER_DEADLINE_MISSED = "officer_deadline_missed"
    """The raising officer's own deadline at a stage passed without the task recorded (see ``duties``)."""
    STEP_OVERDUE = "step_overdue"
    """A step the stage requires (such as telling the child and family) was not recorded in time."""
    COLLECTIVE = "collective"
    """A collective alert: one theme across several children or carers (never on a child's file)."""


class EventKind(StrEnum):
    RAISED = "raised"
    SENT_TO_STAGE = "sent_to_stage"
    TOLD_IN_ADVANCE = "told_in_advance"
    REMINDER = "reminder"
    DEADLINE_PASSED = "deadline_passed"
    RESPONSE = "response"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_DECIDED = "extension_decided"
    TIMESCALE_SET = "timescale_set"
    ESCALATED = "escalated"
    ESCALATION_DUE = "escalation_due"
    ESCALATION_DUE_REMINDER = "escalation_due_reminder"
    EXCEPTIONAL_DUE = "exceptional_due"
    """The next stage is an exceptional one: held for the officer's decision (see ``Flag``)."""
    BYPASSED = "bypassed"
    CONSULTATION_RECORDED = "consultation_recorded"
    MEETING_RECORDED = "meeting_recorded"
    CAFCASS_REFERRAL = "cafcass_referral"
    ACCEPTED = "accepted"
    MONITORING_STARTED = "monitoring_started"
    ACTION_PLAN_DUE = "action_plan_due"
    RESOLVED = "resolved"
    EXHAUSTED = "exhausted"
    BREACHED = "breached"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"
    NOTE = "note"
    VIEWS = "views"
    # the protocol's other processes (workflows.deemed_agreement, workflows.practice_concern)
    DECISIONS_SENT = "decisions_sent"
    DECISIONS_AGREED = "decisions_agreed"
    DECISIONS_DEEMED_AGREED = "decisions_deemed_agreed"
    DECISIONS_DISAGREED = "decisions_disagreed"
    PRACTICE_CONCERN_RAISED = "practice_concern_raised"
    PRACTICE_FEEDBACK = "practice_feedback"
    PRACTICE_ESCALATED = "practice_escalated"
    PRACTICE_RESOLVED = "practice_resolved"
    STALLED = "stalled"
    NOTICES_DELIVERED = "notices_delivered"
    # duties at a stage: the officer's own deadline and required steps (workflows.rules._duties)
    DUTY_SET = "duty_set"
    DUTY_REMINDER = "duty_reminder"
    DUTY_OVERDUE = "duty_overdue"
    STEP_RECORDED = "step_recorded"
    # cover, delegation and joint judging (workflows.rules._cover, _joint)
    COVERED = "covered"
    """A recipient's holder is absent: the notice went to the cover role's holder, who may act for them."""
    OFFICER_REPLACED = "officer_replaced"
    """A covering officer acts for the raising officer from now on."""
    JUDGE_SATISFIED = "judge_satisfied"
    """One of a stage's joint judges accepted the answer; the others are still to."""
    # recognition (workflows.good_practice): a note of its own, not an event of an escalation
    GOOD_PRACTICE_NOTED = "good_practice_noted"


# --- Actions (update and signal payloads) -------------------------------------------------------------


class Respond(_Model):
    """The stage's recipient answers, optionally with an action plan due by a date."""

    kind: Literal["respond"] = "respond"
    actor: Actor
    answer: Text
    action_plan: Text | None = None
    action_plan_due: BoundedDate | None = None
    on_behalf_of: Key | None = Field(
        default=None,
        description="The raising officer records the answer of a recipient outside the directory (an "
        "external role of the stage, who answered by e-mail): that role's key.",
    )


class RequestExtension(_Model):
    kind: Literal["request_extension"] = "request_extension"
    actor: Actor
    until: BoundedDate
    reason: Text


class DecideExtension(_Model):
    kind: Literal["decide_extension"] = "decide_extension"
    actor: Actor
    approve: bool
    reason: OptionalText = ""
    exceed_total_limit: bool = Field(
        default=False, description="Explicitly let the new date pass the total formal limit."
    )


class SetTimescale(_Model):
    """The officer sets this stage's time: in working days from receipt, or to a date."""

    kind: Literal["set_timescale"] = "set_timescale"
    actor: Actor
    working_days: int | None = Field(default=None, ge=0, le=60)
    until: BoundedDate | None = None
    reason: Text


class Accept(_Model):
    """The answer resolves the concern, or an action plan is agreed and will be monitored.

    During monitoring, accepting again confirms the plan was carried out.
    """

    kind: Literal["accept"] = "accept"
    actor: Actor
    note: OptionalText = ""
    action_plan: Text | None = None
    action_plan_due: BoundedDate | None = None


class Escalate(_Model):
    kind: Literal["escalate"] = "escalate"
    actor: Actor
    reason: Text
    exceptional: bool = Field(
        default=False,
        description="The officer's decision that the circumstances are exceptional: needed (and allowed) "
        "only to escalate into a stage the protocol keeps for exceptional circumstances; say why in the "
        "reason.",
    )


class Bypass(_Model):
    kind: Literal["bypass"] = "bypass"
    actor: Actor
    to_stage: Key
    reason: Text
    emergency: bool = False
    discussed_with: Key | None = Field(default=None, description="Role the officer discussed it with first.")


class ReferToCafcass(_Model):
    kind: Literal["refer_to_cafcass"] = "refer_to_cafcass"
    actor: Actor
    reason: Text
    consulted: Annotated[list[Key], bound(at_most(LIST_MAX, "roles"))] = Field(
        default_factory=list, description="Roles consulted before referring."
    )


class RecordConsultation(_Model):
    """A discussion (or agreement) needed before entering a gated stage."""

    kind: Literal["record_consultation"] = "record_consultation"
    actor: Actor
    stage: Key
    with_role: Key = Field(description="The role of the person consulted.")
    agreed: bool | None = None
    summary: Text
    held_on: BoundedDate | None = Field(
        default=None,
        description="The day the discussion was held (today or within the last year); given at raise, when "
        "it happened before the escalation existed. Without it, the day it is recorded.",
    )


class RecordMeeting(_Model):
    kind: Literal["record_meeting"] = "record_meeting"
    actor: Actor
    held_on: BoundedDate
    attendees: Annotated[list[ShortText], bound(at_most(LIST_MAX, "attendees"))] = Field(min_length=1)
    outcome: Text


class ReplaceOfficer(_Model):
    """A covering officer takes over from the raising officer (leave, sickness, moving on), with a reason.

    Sent by the officer, or by a role the protocol's ``officer_cover_by`` names (their manager, QA)."""

    kind: Literal["replace_officer"] = "replace_officer"
    actor: Actor
    new_officer: Actor = Field(description="The covering officer: their staff reference and officer role.")
    reason: Text


class Withdraw(_Model):
    kind: Literal["withdraw"] = "withdraw"
    actor: Actor
    reason: Text


class Close(_Model):
    """End an exhausted escalation without resolution."""

    kind: Literal["close"] = "close"
    actor: Actor
    reason: Text


class AddNote(_Model):
    kind: Literal["add_note"] = "add_note"
    actor: Actor
    text: Text


class RecordViews(_Model):
    """The child's, a parent's or a carer's views, as told to the actor."""

    kind: Literal["record_views"] = "record_views"
    actor: Actor
    whose: Literal["child", "parent", "carer"]
    views: Text


HowTold = Literal["in_person", "phone", "video_call", "letter", "email", "text_message", "other"]
"""How a step was carried out (how the people were told)."""


class RecordStep(_Model):
    """Record a duty of a stage as done: the officer's own task (``officer_deadline``) or a required step
    (``required_steps``), with who was told, when and how."""

    kind: Literal["record_step"] = "record_step"
    actor: Actor
    step: Key = Field(description="The duty's key in the protocol ('child-told', 'officer-task').")
    done_at: datetime | None = Field(
        default=None, description="When it was done (not in the future, within the last year); default now."
    )
    told: Annotated[list[People], bound(at_most(LIST_MAX, "people"))] = Field(
        default_factory=list, description="Who was told: child, parents, carers, family, advocate."
    )
    how: HowTold | None = Field(default=None, description="How it was done (needed when people are told).")
    note: OptionalText = ""


Action = Annotated[
    Respond
    | RequestExtension
    | DecideExtension
    | SetTimescale
    | Accept
    | Escalate
    | Bypass
    | ReferToCafcass
    | RecordConsultation
    | RecordMeeting
    | ReplaceOfficer
    | Withdraw
    | Close
    | AddNote
    | RecordViews
    | RecordStep,
    Field(discriminator="kind"),
]

ACTION_KINDS: tuple[str, ...] = tuple(
    model.model_fields["kind"].default for model in get_args(get_args(Action)[0])
)
"""Every action's ``kind``, in the order of ``Action``."""


# --- Workflow input --------------------------------------------------------------------------------------


class Concern(_Model):
    summary: Text = Field(description="What the concern is.")
    impact_on_child: Text
    requested_action: Text = Field(description="What is asked of the recipient.")
    child_views: Text | None = Field(default=None, description="The child's views, when recorded at raise.")
    parents_views: Text | None = Field(
        default=None, description="The parents' (or carers') views, when recorded at raise."
    )


_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def valid_email(address: str) -> bool:
    """A plain ``local@domain.tld`` address (no display name, no quoting, no IP literals)."""
    return len(address) <= 254 and bool(_EMAIL.match(address))


def _is_email(address: str) -> None:
    if not valid_email(address):
        raise ValueError(
            f"{address[:80]!r} is not an e-mail address: write it as name@example.org (at most 254 "
            "characters, no display name)"
        )


EmailAddress = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), bound(_is_email)]


class ExternalContact(_Model):
    """Who holds one of the protocol's ``external_roles`` for this concern (a partner agency's manager)."""

    role: Key = Field(description="The external role's key.")
    name: ShortText = Field(description="Their name, as the mail addresses them.")
    email: EmailAddress
    organisation: ShortText | None = Field(default=None, description="Their agency, shown in the record.")


COLLECTIVE_REF = "COLLECTIVE"
"""The child reference of a collective alert: about several children, so on no child's file."""
COLLECTIVE_SUBJECTS_MAX = 50
"""The most children or carers one collective alert may name (the protocol may allow fewer)."""
ESCALATION_ID = r"^[a-z0-9-]+-[A-Za-z0-9]+-\d{4,}$"


class Collective(_Model):
    """A collective alert (seed 001 section 4): a theme across several children, young people or foster
    carers, led by the raising officer, at a level chosen after consulting the QA practice manager."""

    theme: ShortText = Field(description="The theme the children or carers share.")
    subjects: Annotated[list[Ref], bound(at_most(COLLECTIVE_SUBJECTS_MAX, "children or carers"))] = Field(
        min_length=2, description="The children's (or foster carers') opaque references."
    )
    consulted_with: Key = Field(description="The role consulted on the level (the QA practice manager).")
    consulted_on: BoundedDate = Field(description="The day they were consulted.")
    consultation: Text = Field(description="What was concluded: the level, and who leads.")


class RaiseConcern(_Model):
    """Input of ``EscalationWorkflow``: the concern and a snapshot of the protocol it runs under.

    The protocol travels in the input so that editing a protocol file never changes a running escalation.
    """

    escalation_id: str = Field(pattern=r"^[a-z0-9-]+-[A-Za-z0-9]+-\d{4,}$")
    protocol: Protocol
    track: Key
    category: ShortText
    service_area: Key | None = None
    child_ref: Ref
    team: TeamRef | None = None
    officer: Actor
    concern: Concern
    start_at_stage: str | None = Field(default=None, description="Bypass at start: begin at this stage.")
    start_bypass: Bypass | None = Field(default=None, description="Why and how the start bypasses stages.")
    consultations: Annotated[list[RecordConsultation], bound(at_most(LIST_MAX, "consultations"))] = Field(
        default_factory=list
    )
    # protocol language v2
    child_status: Key | None = Field(
        default=None, description="The child's status (one of the protocol's child_statuses)."
    )
    severity: Key | None = Field(default=None, description="The concern's severity (one of the protocol's).")
    external_contacts: Annotated[list[ExternalContact], bound(at_most(LIST_MAX, "contacts"))] = Field(
        default_factory=list,
        description="The holders of the protocol's external roles that the track's stages address.",
    )
    collective: Collective | None = Field(
        default=None, description="A collective alert: about several children, on none of their files."
    )
    part_of: str | None = Field(
        default=None,
        pattern=ESCALATION_ID,
        description="The collective alert this escalation for one child belongs to, if any.",
    )
    history_events_before_continuing: int = Field(
        default=10_000, ge=200, description="Continue as new once the history holds this many events."
    )
    carried: EscalationState | None = Field(
        default=None,
        description="Set only when the escalation continues as new: the state it carries on from.",
    )


def escalation_id_for(authority: str, child_ref: str, sequence: int) -> str:
    """A readable workflow id that holds no personal data: authority, opaque child ref, sequence."""
    return f"{authority}-{child_ref}-{sequence:04d}"


# --- State ----------------------------------------------------------------------------------------------


class TimelineEntry(_Model):
    seq: int
    at: datetime
    kind: EventKind
    actor: Actor | None = None
    stage: str | None = None
    text: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class PendingNotice(_Model):
    """A notice that could not go out yet: the timeline entry it tells of and whom it tells."""

    seq: int
    kind: EventKind
    to: list[str]
    cc: list[str] = Field(default_factory=list)


class Stall(_Model):
    """Notices waiting to go out, and why; while the stage's own notice waits, its clock does not run."""

    reason: str = Field(description="Why, in role and team keys: 'nobody holds team_manager for team-a'.")
    since: datetime
    notices: list[PendingNotice] = Field(default_factory=list)
    clock_held: bool = Field(
        default=False, description="The stage's notice to its recipients is waiting: its time has not begun."
    )
    attempts: int = 1
    retry_at: datetime = Field(description="When delivery is tried again (sooner on a redeliver signal).")

    @property
    def shown(self) -> str:
        return f"stalled: {self.reason}"


class Refusal(_Model):
    at: datetime
    action: str
    actor: Actor
    reason: str


class PendingExtension(_Model):
    requested_by: Actor
    until: date
    reason: str
    requested_at: datetime


class Answer(_Model):
    by: Actor
    at: datetime
    text: str
    action_plan: str | None = None
    action_plan_due: date | None = None


class Consultation(_Model):
    stage: str
    with_role: str
    agreed: bool | None
    summary: str
    by: Actor
    at: datetime
    held_on: date | None = Field(default=None, description="When it was held, if given (else ``at``).")


class StepRecord(_Model):
    """How a duty was recorded as done."""

    by: Actor
    at: datetime = Field(description="When it was recorded.")
    done_at: datetime = Field(description="When it was done, as the recorder said.")
    told: list[str] = Field(default_factory=list)
    how: str | None = None
    note: str = ""


class Duty(_Model):
    """A duty of a stage the escalation has entered: the officer's own deadline or a required step."""

    stage: str
    key: str
    kind: Literal["officer_deadline", "required_step"]
    what: str
    schedule: Schedule | None = Field(default=None, description="Its deadline, once placed.")
    reminded: bool = False
    overdue: bool = False
    done: StepRecord | None = None

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.key}"


class Cover(_Model):
    """At ``stage``, ``role``'s holder was absent: ``cover_role``'s holder was told and acts for them."""

    stage: str
    role: str
    cover_role: str
    until: date | None = None


class JudgeVerdict(_Model):
    """One joint judge accepted the answer at ``stage`` (see ``Stage.joint_judges``)."""

    stage: str
    role: str
    by: Actor
    at: datetime


class EscalationState(_Model):
    escalation_id: str
    protocol: Protocol
    track: str
    category: str
    service_area: str | None
    child_ref: str
    team: str | None
    officer: Actor
    concern: Concern
    raised_at: datetime
    status: Status
    stage_index: int
    stage_entered_at: datetime
    stage_schedule: Schedule | None = None
    stage_protocol_due: date | None = Field(
        default=None, description="The stage's due date under the protocol's own timescale."
    )
    stage_reminded: bool = False
    formal_started_at: datetime | None = None
    total_schedule: Schedule | None = None
    hold_schedule: Schedule | None = Field(
        default=None, description="Next reminder while escalation is due, or the action plan's due date."
    )
    hold_target: int | None = Field(default=None, description="Stage awaiting its gate while escalation due.")
    hold_via: EventKind | None = Field(
        default=None, description="Escalated or bypassed, once the gate opens."
    )
    pending_extension: PendingExtension | None = None
    answer: Answer | None = None
    action_plan: str | None = None
    action_plan_due: date | None = None
    consultations: list[Consultation] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    refusals: list[Refusal] = Field(default_factory=list, description="The newest refused signals.")
    refusals_total: int = 0
    problems: list[str] = Field(
        default_factory=list, description="Records or notices that failed for good: for the engineers."
    )
    stall: Stall | None = Field(default=None, description="Notices waiting to go out (see ``Stall``).")
    # protocol language v2
    child_status: str | None = Field(default=None, description="The child's status, as given at raise.")
    severity: str | None = Field(default=None, description="The concern's severity, as given at raise.")
    duties: list[Duty] = Field(
        default_factory=list, description="Officer's deadlines and required steps of the stages entered."
    )
    external_contacts: list[ExternalContact] = Field(
        default_factory=list, description="Holders of external roles, given at raise."
    )
    covers: list[Cover] = Field(default_factory=list, description="Absent recipients and who covered them.")
    verdicts: list[JudgeVerdict] = Field(default_factory=list, description="Joint judges who accepted.")
    officers_before: list[Actor] = Field(
        default_factory=list, description="Officers who held the escalation before the current one."
    )
    collective: Collective | None = Field(default=None, description="Set for a collective alert.")
    part_of: str | None = Field(default=None, description="The collective alert it belongs to, if any.")


# --- Query results --------------------------------------------------------------------------------------


class EscalationView(_Model):
    """What a supervisor sees: the whole current state, ready to display."""

    escalation_id: str
    authority: str
    track: str
    category: str
    child_ref: str
    status: Status
    stage: str
    stage_name: str
    stage_number: int
    stage_count: int
    formal: bool
    held_by: list[str]
    copied: list[str]
    deadline: datetime | None
    deadline_date: date | None
    working_days_left: int | None
    total_deadline: datetime | None
    total_deadline_date: date | None = None
    total_working_days_left: int | None
    pending_extension: PendingExtension | None
    flags: list[Flag]
    timeline: list[TimelineEntry]
    refusals: list[Refusal]
    problems: list[str] = Field(default_factory=list)
    busy: bool = Field(default=False, description="Still carrying out the last change (recording, sending).")
    stalled: str | None = Field(
        default=None, description="'stalled: <why>' while a notice cannot go out, else None."
    )
    concern: Concern | None = Field(
        default=None, description="The concern as raised: summary, impact on the child, what is asked, views."
    )
    # protocol language v2
    child_status: str | None = Field(default=None, description="The child's status, as given at raise.")
    severity: str | None = Field(default=None, description="The concern's severity, as given at raise.")
    duties: list[Duty] = Field(
        default_factory=list, description="The officer's deadlines and required steps, done or not."
    )
    collective: Collective | None = Field(default=None, description="Set for a collective alert.")
    part_of: str | None = Field(default=None, description="The collective alert it belongs to, if any.")


class ActionResult(_Model):
    """What an accepted update returns to its sender."""

    outcome: str
    status: Status
    stage: str


class EscalationOutcome(_Model):
    """The workflow's result when the escalation closes."""

    escalation_id: str
    status: Status
    stage: str
    flags: list[Flag]
    events: int


RaiseConcern.model_rebuild()
