"""The protocol's other processes, as data: review decisions deemed agreed, and concerns about an officer's
own practice. Each is an optional section of a protocol file; a protocol without it does not run it.

* ``deemed_agreement`` (seed 002 Appendix 4, seed 003 3.3): the officer sends a review's decisions to the
  team manager, who has ``working_days`` to disagree; silence means they stand and are implemented. A
  disagreement in time opens informal resolution: an escalation on ``resolution_track``.
* ``practice_concerns`` (seed 001 section 6, seed 003 1.6): a concern about an officer's practice goes to
  the QA manager, who investigates and feeds back within ``working_days``; unresolved (no feedback in time,
  or feedback the person who raised it does not accept), it goes to ``escalates_to``.

Imported by ``schemas.protocol`` (which checks the roles and tracks named here); nothing here imports it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

OFFICER_PLACEHOLDER = "{officer}"
LABEL_MAX = 80
CASE_NOTE_TYPE_MAX = 120


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeemedAgreement(_Strict):
    """Review decisions sent to a manager who may disagree within a time, or they stand."""

    officer_roles: list[str] = Field(min_length=1, description="Who sends a review's decisions (IROs).")
    sent_to: list[str] = Field(
        min_length=1, description="Roles who receive the decisions and may agree or disagree (any one)."
    )
    cc: list[str] = Field(default_factory=list, description="Roles copied in on every notice.")
    working_days: int = Field(default=5, ge=1, le=60, description="Working days to disagree, from receipt.")
    resolution_track: str = Field(description="The track a disagreement's informal resolution runs on.")
    resolution_category: str = Field(description="Its category: one of that track's categories.")
    label: str = Field(default="Review decisions", min_length=1, max_length=LABEL_MAX)
    case_note_type: str = Field(
        default="{officer} review decisions",
        min_length=1,
        max_length=CASE_NOTE_TYPE_MAX,
        description="The type of the case notes the process puts on the child's file.",
    )
    note: str = ""

    @field_validator("case_note_type")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        return _placeholder_only(value)


class PracticeConcerns(_Strict):
    """Concerns about an officer's own practice: investigated, then escalated if unresolved."""

    about_roles: list[str] = Field(
        min_length=1, description="Officers whose practice a concern may be about."
    )
    raised_by: list[str] = Field(
        default_factory=list, description="Roles who may raise one; empty: any role of the protocol."
    )
    investigated_by: list[str] = Field(
        min_length=1, description="Roles who investigate and feed back (any one)."
    )
    working_days: int = Field(default=15, ge=1, le=60, description="Working days to feed back, from receipt.")
    escalates_to: list[str] = Field(
        min_length=1, description="Roles an unresolved concern goes to (any one)."
    )
    escalation_working_days: int | None = Field(
        default=None, ge=1, le=60, description="Working days they have to answer; null: no set time."
    )
    cc: list[str] = Field(default_factory=list, description="Roles copied in on every notice.")
    label: str = Field(default="Practice concern", min_length=1, max_length=LABEL_MAX)
    escalation_label: str = Field(default="Escalated", min_length=1, max_length=LABEL_MAX)
    note: str = ""


def _placeholder_only(value: str) -> str:
    rest = value.replace(OFFICER_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ValueError(
            f"only {OFFICER_PLACEHOLDER} (the officer's label) may stand in braces; got {value!r}"
        )
    return value


def process_problems(
    deemed: DeemedAgreement | None,
    practice: PracticeConcerns | None,
    known_roles: set[str],
    tracks: dict[str, tuple[list[str], list[str]]],
) -> list[str]:
    """What the sections name that the protocol does not declare: roles, the track and its category.

    ``tracks``: track key -> (officer roles, categories)."""
    problems: list[str] = []

    def check(where: str, names: list[str]) -> None:
        for name in names:
            if name not in known_roles:
                problems.append(f"{where}: unknown role {name!r} (declare it under 'roles')")

    if deemed is not None:
        check("deemed_agreement.officer_roles", deemed.officer_roles)
        check("deemed_agreement.sent_to", deemed.sent_to)
        check("deemed_agreement.cc", deemed.cc)
        track = tracks.get(deemed.resolution_track)
        if track is None:
            problems.append(
                f"deemed_agreement.resolution_track: no track {deemed.resolution_track!r}; tracks: "
                f"{', '.join(tracks)}"
            )
        else:
            officers, categories = track
            missing = [r for r in deemed.officer_roles if r not in officers]
            if missing:
                problems.append(
                    f"deemed_agreement.resolution_track: track {deemed.resolution_track!r} is not raised by "
                    f"{', '.join(missing)} (its officer_roles); choose a track they raise on"
                )
            if deemed.resolution_category not in categories:
                problems.append(
                    f"deemed_agreement.resolution_category: {deemed.resolution_category!r} is not a category "
                    f"of track {deemed.resolution_track!r}; copy one of its categories exactly"
                )
    if practice is not None:
        check("practice_concerns.about_roles", practice.about_roles)
        check("practice_concerns.raised_by", practice.raised_by)
        check("practice_concerns.investigated_by", practice.investigated_by)
        check("practice_concerns.escalates_to", practice.escalates_to)
        check("practice_concerns.cc", practice.cc)
    return problems
