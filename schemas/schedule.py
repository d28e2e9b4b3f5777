"""A stage's clock: computed once by an activity, recorded in history, never re-derived."""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import BaseModel, Field


class ScheduleRequest(BaseModel):
    """What the clock activity needs to place a deadline on the working-day calendar.

    Exactly one of ``working_days``, ``until`` or ``working_hours`` is given.
    """

    received_at: datetime = Field(description="When the stage was sent (timezone-aware, any zone).")
    working_days: int | None = Field(default=None, ge=0, le=600, description="Count of working days allowed.")
    until: date | None = Field(default=None, description="A fixed last day (an agreed or extended date).")
    closure_days: list[date] = Field(default_factory=list, description="Authority closure days.")
    reminder_lead_working_days: int = Field(default=1, ge=0)
    reminder_hour: int = Field(default=9, ge=0, le=23, description="Local hour of reminders.")
    receipt_day_counts: bool = Field(
        default=False,
        description=(
            "The working day of received_at (or the next one, if it is not a working day) is the first of "
            "the working days, not day 0: for time that begins when an earlier deadline passes, at the "
            "London midnight that starts that day."
        ),
    )

    # --- working hours (activities.working_hours); absent in requests recorded before they existed ---
    working_hours: int | None = Field(
        default=None, ge=1, le=600, description="Count of working hours allowed (instead of working days)."
    )
    day_starts: time | None = Field(default=None, description="London time the working day starts.")
    day_ends: time | None = Field(default=None, description="London time the working day ends.")
    reminder_lead_working_hours: int = Field(
        default=1, ge=0, description="For working hours: remind this many working hours before the end."
    )


class ScheduleRequests(BaseModel):
    """Several deadlines to place at once (one transition's), in order."""

    requests: list[ScheduleRequest]


class Schedule(BaseModel):
    """The deadline of a stage (or of the whole formal process), in UTC instants and London dates."""

    received_at: datetime
    counts_from: date = Field(description="The London working day treated as the day of receipt.")
    due_date: date = Field(description="The London date at whose end the time runs out.")
    due_at: datetime = Field(description="UTC instant of the end of due_date in Europe/London.")
    remind_at: datetime | None = Field(
        default=None, description="UTC instant of the reminder, or None when it would fall before receipt."
    )
    working_day_ends: list[datetime] = Field(
        default_factory=list,
        description="UTC end instant of each working day after counts_from up to due_date.",
    )

    working_hours: int | None = Field(
        default=None,
        description="The working hours allowed, when the time is in hours (due_at is then "
        "the instant the last of them ends, not a midnight).",
    )

    def working_days_left(self, now: datetime) -> int:
        """Working days still to run at ``now`` (the current day counts while it lasts)."""
        return sum(1 for end in self.working_day_ends if end > now)


class Schedules(BaseModel):
    """The deadlines placed for ``ScheduleRequests``, in the same order."""

    schedules: list[Schedule]
