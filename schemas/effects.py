"""What the escalation rules ask the workflow to carry out, and the activity inputs that carry them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.escalation import Actor, EventKind, Refusal, Status, TimelineEntry
from schemas.schedule import ScheduleRequest

SchedulePurpose = Literal["stage", "reschedule", "total", "hold"]


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
    end of an action plan being monitored.
    """

    type: Literal["schedule"] = "schedule"
    purpose: SchedulePurpose
    request: ScheduleRequest
    announce: Announcement | None = None


class RecordRefusal(_Model):
    """A signal was refused: keep the reason so the sender can be told."""

    type: Literal["refusal"] = "refusal"
    refusal: Refusal


Effect = Annotated[Record | Notify | PlanSchedule | RecordRefusal, Field(discriminator="type")]


# --- Activity inputs ------------------------------------------------------------------------------------


class RecordEventInput(_Model):
    escalation_id: str
    authority: str
    child_ref: str
    track: str
    status: Status
    stage: str
    entry: TimelineEntry


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


class RefusalInput(_Model):
    escalation_id: str
    authority: str
    refusal: Refusal
