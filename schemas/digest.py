"""The weekly digest of outstanding alerts (seed 001 Appendix 6; seed 003 1.5): its request and result.

Each authority whose protocol has a ``digest`` section sends, once a week, one mail to each person who
holds outstanding alerts (the operational managers a stage is with) listing theirs, and one to each
holder of the ``everything_to`` roles listing all of the authority's. Nothing here holds personal data
beyond staff references; the children are their opaque references.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from schemas.bounds import Key

ISO_WEEK = r"^\d{4}-W\d{2}$"
LONDON = ZoneInfo("Europe/London")


def iso_week(day: date) -> str:
    """``2026-W48``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_of(now: datetime) -> str:
    """The ISO week ``now`` falls in, in London (made here, outside the workflow sandbox, like the rules'
    clock)."""
    return iso_week(now.astimezone(LONDON).date())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DigestRequest(_Model):
    authority: Key | None = Field(default=None, description="Only this authority; None: every one.")
    week: str | None = Field(
        default=None, pattern=ISO_WEEK, description="The ISO week ('2026-W48'); None: the current one."
    )
    dry_run: bool = Field(default=False, description="Say who would get what; send nothing.")
    on_its_weekday: bool = Field(
        default=False,
        description="Only authorities whose digest.weekday is today (the schedule runs daily); a command "
        "sends whatever the day.",
    )


class DigestMail(_Model):
    """One recipient's digest: who, in which roles, how many alerts; whether it went now."""

    authority: str
    person_id: str
    roles: list[str]
    alerts: int
    everything: bool = Field(description="Every outstanding alert of the authority (a QA role).")
    sent: bool = Field(description="Sent now (False: sent earlier this week, or a dry run).")


class DigestResult(_Model):
    week: str
    mails: list[DigestMail] = Field(default_factory=list)
    unfilled: list[str] = Field(
        default_factory=list, description="'<authority>: <role> for <team>' that nobody holds: not told."
    )
