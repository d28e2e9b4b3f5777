"""Short timescales and duties, as protocol data: the authority's working hours, the raising officer's own
deadline at a stage, and steps (such as telling the child and family) that must be recorded at a stage.

A duty's time is in working days or in working hours (exactly one), counted from the moment the stage is
entered. Working hours are the protocol's ``working_hours`` on working days (weekdays that are not bank
holidays or closure days), London time.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_WORKING_HOURS = 80
"""The longest time in working hours a stage or duty may have (two working weeks of 8 hours)."""

People = Literal["child", "parents", "carers", "family", "advocate"]
"""People who are not staff and may have to be told something at a stage."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingHours(_Strict):
    """The authority's working hours on each working day, London time (British Summer Time included)."""

    start: time = Field(default=time(9, 0), description="When the working day starts ('09:00').")
    end: time = Field(default=time(17, 0), description="When the working day ends ('17:00').")
    reminder_lead_hours: int = Field(
        default=1,
        ge=0,
        le=8,
        description="Working hours before an hours deadline that a reminder goes; never more than half the "
        "time allowed. 0: no reminder.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError(
                f"working_hours.end ({self.end:%H:%M}) must be after working_hours.start ({self.start:%H:%M})"
            )
        if self.start.second or self.end.second or self.start.microsecond or self.end.microsecond:
            raise ValueError("working_hours.start and end are whole minutes ('09:00', '17:30')")
        return self


class _Timed(_Strict):
    """A time given in working days or in working hours (exactly one)."""

    within_working_days: int | None = Field(default=None, ge=0, le=60)
    within_working_hours: int | None = Field(default=None, ge=1, le=MAX_WORKING_HOURS)

    @model_validator(mode="after")
    def _one_time(self) -> _Timed:
        if (self.within_working_days is None) == (self.within_working_hours is None):
            raise ValueError("give exactly one of within_working_days and within_working_hours")
        return self

    @property
    def time_words(self) -> str:
        if self.within_working_hours is not None:
            n = self.within_working_hours
            return f"{n} working hour{'' if n == 1 else 's'}"
        n = self.within_working_days or 0
        return f"{n} working day{'' if n == 1 else 's'}"


class OfficerDeadline(_Timed):
    """The raising officer's own time to act once a stage is entered (e.g. send the formal form).

    It is met by the officer's ``record_step`` action naming ``key``; a missed one is flagged
    (``officer_deadline_missed``) and told to the officer and to ``missed_notify``."""

    key: str = Field(default="officer-task", pattern=r"^[a-z0-9][a-z0-9-]*$")
    task: str = Field(min_length=1, max_length=300, description="What the officer must do, in a sentence.")
    missed_notify: list[str] = Field(
        default_factory=list, description="Roles told (besides the officer) when the deadline is missed."
    )
    note: str = ""


class RequiredStep(_Timed):
    """A step that must be recorded at a stage before the stage can be resolved (``accept``), such as the
    child and family told of the escalation and of their right to an advocate and to complain."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    what: str = Field(min_length=1, max_length=300, description="What must be done, in a sentence.")
    tell: list[People] = Field(
        default_factory=list, description="People who are not staff who must be told (child, parents...)."
    )
    done_by: list[str] = Field(
        default_factory=lambda: ["raising_officer"], min_length=1, description="Roles who may record it."
    )
    missed_notify: list[str] = Field(
        default_factory=list, description="Roles told (besides the officer) when it is overdue."
    )
    note: str = ""


def duty_problems(
    where: str,
    deadline: OfficerDeadline | None,
    steps: list[RequiredStep],
    known_roles: set[str],
) -> list[str]:
    """What is wrong with a stage's duties (unknown roles, repeated keys), each naming its field."""
    problems: list[str] = []
    keys: list[str] = []
    if deadline is not None:
        keys.append(deadline.key)
        for role in deadline.missed_notify:
            if role not in known_roles:
                problems.append(
                    f"{where}.officer_deadline.missed_notify: unknown role {role!r} "
                    "(declare it under 'roles')"
                )
    for step in steps:
        keys.append(step.key)
        for field, roles in (("done_by", step.done_by), ("missed_notify", step.missed_notify)):
            for role in roles:
                if role not in known_roles:
                    problems.append(
                        f"{where}.required_steps.{step.key}.{field}: unknown role {role!r} "
                        "(declare it under 'roles')"
                    )
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        problems.append(
            f"{where}: officer_deadline and required_steps keys must be unique; repeated: "
            f"{', '.join(repeated)}"
        )
    return problems
