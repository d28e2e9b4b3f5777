"""The protocol's recognition and oversight sections, as data: good practice notes, collective alerts and
the weekly digest of outstanding alerts. Each is an optional section of a protocol file; a protocol without
it does not offer that feature (the front doors refuse, naming the section).

* ``good_practice`` (seed 000 sections 3 and 6; seed 001 section 2): an officer notes a practitioner's good
  practice; the note goes to the practitioner, copying their managers (to the most senior level where the
  protocol says so), and is recorded on the child's file as ``case_notes.good_practice``. Staff may also
  note an officer's good practice (``about_officers``): to the officer and their manager, never on a
  child's file.
* ``collective_alerts`` (seed 001 section 4): a theme across several children or foster carers, raised by a
  lead officer at a level chosen after consulting one of ``consult``; run through the same ladder, never
  written to the children's files.
* ``digest`` (seed 001 Appendix 6; seed 003 1.5): each week, the holders of outstanding alerts are told of
  theirs, and ``everything_to`` of all the authority's.

Imported by ``schemas.protocol`` (which checks the roles named here); nothing here imports it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

LABEL_MAX = 80
SUBJECTS_MAX = 50
"""The most children or carers one collective alert may name."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OfficerGoodPractice(_Strict):
    """Notes from staff about an independent officer's good practice (seed 000 section 6)."""

    officer_roles: list[str] = Field(min_length=1, description="The officers a note may be about.")
    noted_by: list[str] = Field(
        default_factory=list, description="Roles who may write one; empty: any role of the protocol."
    )
    cc: list[str] = Field(default_factory=list, description="Copied in: the officer's manager.")


class GoodPracticeNotes(_Strict):
    """Good practice notes: an officer's compliment to a practitioner, recorded on the child's file."""

    noted_by: list[str] = Field(min_length=1, description="Officer roles who write good practice notes.")
    about: list[str] = Field(min_length=1, description="The practitioners' roles a note may be about.")
    cc: list[str] = Field(
        default_factory=list, description="Copied in: the practitioner's line managers, up to the top."
    )
    on_file: bool = Field(
        default=True, description="Recorded on the child's file, typed as case_notes.good_practice."
    )
    label: str = Field(default="Good practice note", min_length=1, max_length=LABEL_MAX)
    about_officers: OfficerGoodPractice | None = Field(
        default=None, description="Notes from staff about an officer's good practice; null: none."
    )


class CollectiveAlerts(_Strict):
    """Collective alerts: one theme across several children or carers, run up the ladder, on no file."""

    raised_by: list[str] = Field(min_length=1, description="The officer roles who may lead one.")
    consult: list[str] = Field(
        min_length=1, description="Roles consulted first on the level it is raised at (any one)."
    )
    max_subjects: int = Field(
        default=SUBJECTS_MAX, ge=2, le=SUBJECTS_MAX, description="The most children or carers one names."
    )


class WeeklyDigest(_Strict):
    """A weekly mail of outstanding alerts: to each holder of theirs, and all to ``everything_to``."""

    everything_to: list[str] = Field(
        default_factory=list, description="Roles told of every outstanding alert (the QA managers)."
    )
    holders: bool = Field(default=True, description="Each role holding outstanding alerts is told of them.")
    weekday: int = Field(default=1, ge=1, le=7, description="ISO weekday it is sent on (1: Monday).")


def section_problems(
    good: GoodPracticeNotes | None,
    collective: CollectiveAlerts | None,
    digest: WeeklyDigest | None,
    known_roles: set[str],
    officer_roles: set[str],
) -> list[str]:
    """What the sections name that the protocol does not declare (roles), or name wrongly."""
    problems: list[str] = []

    def check(where: str, names: list[str]) -> None:
        problems.extend(
            f"{where}: unknown role {n!r} (declare it under 'roles')" for n in names if n not in known_roles
        )

    if good is not None:
        check("good_practice.noted_by", good.noted_by)
        check("good_practice.about", good.about)
        check("good_practice.cc", good.cc)
        if good.about_officers is not None:
            check("good_practice.about_officers.officer_roles", good.about_officers.officer_roles)
            check("good_practice.about_officers.noted_by", good.about_officers.noted_by)
            check("good_practice.about_officers.cc", good.about_officers.cc)
    if collective is not None:
        check("collective_alerts.raised_by", collective.raised_by)
        check("collective_alerts.consult", collective.consult)
        problems.extend(
            f"collective_alerts.raised_by: {r!r} raises on no track (list it in a track's officer_roles)"
            for r in collective.raised_by
            if r in known_roles and r not in officer_roles
        )
    if digest is not None:
        check("digest.everything_to", digest.everything_to)
        if not digest.holders and not digest.everything_to:
            problems.append("digest: it goes to nobody: keep holders true or name everything_to")
    return problems
