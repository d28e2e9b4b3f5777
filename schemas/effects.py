"""What the escalation rules ask the workflow to carry out, and the activity inputs that carry them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.escalation import Actor, Concern, EventKind, ExternalContact, Refusal, Status, TimelineEntry
from schemas.schedule import ScheduleRequest

SchedulePurpose = Literal["stage", "reschedule", "total", "hold", "duty"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Record(_Model):
    """Write one timeline entry to the escalation's record."""

    type: Literal["record"] = "record"
    entry: TimelineEntry


class Notify(_Model):
    """Tell roles (and the raising officer, as ``raising_officer``) about a timeline entry."""

    type: Literal["notify"] = "notify"
    entry_seq: int
    kind: EventKind
    to: list[str]
    cc: list[str] = Field(default_factory=list)


class Announcement(_Model):
    """A timeline entry to write once a schedule is known, so that it can state the deadline."""

    kind: EventKind
    text: str
    actor: Actor | None = None
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)


class PlanSchedule(_Model):
    """Place a deadline on the working-day calendar; the result is fed back to the rules.

    ``stage``: a newly entered stage's deadline; ``reschedule``: the running stage's deadline moves;
    ``total``: the whole formal process's limit; ``hold``: a reminder while escalation is due, or the
    end of an action plan being monitored; ``duty``: an officer's deadline or a required step (``duty`` is
    its ``Duty.ref``).
    """

    type: Literal["schedule"] = "schedule"
    purpose: SchedulePurpose
    request: ScheduleRequest
    announce: Announcement | None = None
    duty: str | None = None


class RecordRefusal(_Model):
    """A signal was refused: keep the reason so the sender can be told."""

    type: Literal["refusal"] = "refusal"
    refusal: Refusal


Effect = Annotated[Record | Notify | PlanSchedule | RecordRefusal, Field(discriminator="type")]


# --- Activity inputs ------------------------------------------------------------------------------------


class EscalationSnapshot(_Model):
    """The escalation's current state as the record store's state table keeps it."""

    category: str
    service_area: str | None = None
    team: str | None = None
    raised_by: Actor
    raised_at: datetime
    stage_name: str
    stage_number: int
    formal: bool
    held_by: list[str] = Field(default_factory=list, description="Roles who hold it now.")
    deadline: datetime | None = None
    deadline_date: date | None = None
    total_deadline_date: date | None = None
    flags: list[str] = Field(default_factory=list)
    stage_label: str | None = Field(
        default=None, description="The stage's own short name ('Formal Level 4')."
    )
    case_note_type: str | None = Field(
        default=None,
        description="The type of the stage's case notes for this officer; None in histories from before it "
        "was passed (the record store then takes it from the protocol file).",
    )
    concern: Concern | None = Field(
        default=None, description="The concern as raised (None in histories from before it was passed)."
    )
    part_of: str | None = Field(
        default=None, description="The collective alert the escalation belongs to, if it names one."
    )


class RecordEventInput(_Model):
    """One event of an escalation's life; written once, keyed on (escalation_id, run_id, entry.seq)."""

    escalation_id: str
    run_id: str = ""
    authority: str
    child_ref: str
    track: str
    status: Status
    stage: str
    entry: TimelineEntry
    snapshot: EscalationSnapshot | None = None


class NotificationInput(_Model):
    """Everything a notification needs, so that it can be rendered without reading the workflow."""

    escalation_id: str
    authority: str
    child_ref: str
    team: str | None
    service_area: str | None
    kind: EventKind
    entry: TimelineEntry
    officer: Actor
    to_roles: list[str]
    cc_roles: list[str]
    stage: str
    stage_name: str
    status: Status
    deadline: datetime | None
    deadline_date: date | None
    working_days: int | None
    concern_summary: str
    idempotency_key: str
    run_id: str = ""
    """The escalation's first run id (empty in histories recorded before it was added)."""
    stage_label: str | None = None
    """The stage's own short name ('Formal Level 4'); None in histories recorded before it was added."""
    concern: Concern | None = None
    """The whole concern: summary, impact on the child, what is asked, views (None in older histories)."""
    external: list[ExternalContact] = Field(default_factory=list)
    """Holders of the notice's roles that are outside the directory (given at raise)."""


class RefusalInput(_Model):
    escalation_id: str
    authority: str
    refusal: Refusal
    run_id: str = ""
    """The escalation's first run id (empty in histories recorded before it was added)."""


class EffectItem(_Model):
    """One record, notice or refusal of a transition's batch: exactly one field is set."""

    record: RecordEventInput | None = None
    notify: NotificationInput | None = None
    refusal: RefusalInput | None = None


class EffectBatch(_Model):
    """Everything one transition records and sends, carried out in order by one activity.

    Each item is idempotent on its own key, so a batch retried after a crash part-way writes and sends
    nothing twice.
    """

    items: list[EffectItem]
    report_undelivered_from_attempt: int | None = Field(
        default=None,
        description="For ``carry_out_effects_reporting``: from this attempt of the activity on, a mail "
        "server that is down is reported in ``BatchOutcome`` (a role nobody holds at once) instead of "
        "failing the batch for Temporal to retry.",
    )


class Undelivered(_Model):
    """A notice that could not go out, and why (role and team keys only: no personal data)."""

    seq: int = Field(description="The timeline entry the notice tells of.")
    reason: str = Field(description="Short, in keys: 'nobody holds team_manager for team-a'.")
    detail: str = Field(default="", description="The whole error, with how to fix it.")
    to: list[str] = Field(default_factory=list, description="The notice's ``to`` roles (of its entry's).")
    role_unfilled: bool = Field(default=False, description="Nobody holds a role (else: mail unavailable).")


class Covered(_Model):
    """A notice to ``role`` went to ``cover_role``'s holder: ``role``'s holder is marked absent."""

    seq: int = Field(description="The timeline entry the notice tells of.")
    role: str
    cover_role: str
    until: date | None = Field(
        default=None, description="The last day of the absence, if the directory says."
    )


class BatchOutcome(_Model):
    """What a batch reporting undelivered notices did: how many items were new, and what could not go out."""

    done: int = 0
    undelivered: list[Undelivered] = Field(default_factory=list)
    covered: list[Covered] = Field(
        default_factory=list, description="Notices that went to a cover role's holder (absent recipients)."
    )


class DeliveryCheck(_Model):
    """Can notices to these roles go out now? (Directory and mail server checked; nothing is sent.)"""

    authority: str
    team: str | None
    officer_id: str
    roles: list[str]
