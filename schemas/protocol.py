"""An authority's escalation protocol, as data.

A protocol is plain enough to map to BPMN both ways: each track is a lane of sequential stages
(user tasks with a boundary timer of ``response_working_days``); gates are preceding tasks; bypass and
CAFCASS referral are event sub-processes. Roles are names, never people: the directory resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.duties import MAX_WORKING_HOURS, OfficerDeadline, RequiredStep, WorkingHours, duty_problems
from schemas.practice_notes import CollectiveAlerts, GoodPracticeNotes, WeeklyDigest, section_problems
from schemas.processes import DeemedAgreement, PracticeConcerns, process_problems
from schemas.wording import with_article

RAISING_OFFICER = "raising_officer"
"""Pseudo-role: the officer who raised the escalation (the default judge and extension approver)."""

Slug = str
OFFICER_PLACEHOLDER = "{officer}"
"""Stands for the raising officer's case-note label in a stage's ``case_note_type``."""
CASE_NOTE_TYPE_MAX = 120
"""The longest case note type the record store keeps."""
LABEL_MAX = 80
"""The longest stage label (it starts mail subjects)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateKind(StrEnum):
    CONSULTATION = "consultation"
    """A discussion must be recorded first; its outcome does not block."""
    AGREEMENT = "agreement"
    """The named role must agree first; a refusal keeps the escalation where it is."""


class EntryGate(_Strict):
    """What must be recorded before an escalation may enter a stage."""

    kind: GateKind
    with_roles: list[Slug] = Field(min_length=1, description="Any one of these roles satisfies the gate.")
    note: str = ""


class Route(_Strict):
    """Addressees that replace the stage's defaults when the concern is about a service area."""

    service_area: Slug
    to: list[Slug] = Field(min_length=1)
    cc: list[Slug] = Field(default_factory=list)


def _default_note_type(stage: dict[str, object], officer_length: int) -> str:
    """'{officer} informal alert', or '{officer} formal alert - <label>' cut to fit for an officer label of
    ``officer_length`` characters."""
    if stage.get("formal") is not True:
        return f"{OFFICER_PLACEHOLDER} informal alert"
    label = str(stage.get("label") or stage.get("name") or "").strip()[:LABEL_MAX]
    label = label.replace("{", "(").replace("}", ")")
    room = CASE_NOTE_TYPE_MAX - officer_length - len(" formal alert - ")
    return f"{OFFICER_PLACEHOLDER} formal alert - {label[: max(room, 0)].rstrip()}"


class Stage(_Strict):
    key: Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    formal: bool
    to: list[Slug] = Field(min_length=1, description="Roles who receive the concern and must answer.")
    cc: list[Slug] = Field(default_factory=list, description="Roles copied in.")
    told_in_advance: list[Slug] = Field(default_factory=list, description="Roles told before it is sent.")
    escalated_by: list[Slug] = Field(
        default_factory=lambda: [RAISING_OFFICER], description="Who escalates into this stage."
    )
    judged_by: Slug = Field(default=RAISING_OFFICER, description="Who decides if an answer resolves it.")
    response_working_days: int | None = Field(
        default=5, ge=1, le=60, description="Working days to answer; null where the protocol sets none."
    )
    # --- short timescales and duties (schemas.duties) ---
    response_working_hours: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WORKING_HOURS,
        description="Working hours to answer, within the protocol's working_hours ('within 4 hours', "
        "'immediately'); replaces response_working_days, which then defaults to null.",
    )
    officer_deadline: OfficerDeadline | None = Field(
        default=None, description="The raising officer's own time to act once the stage is entered."
    )
    required_steps: list[RequiredStep] = Field(
        default_factory=list, description="Steps to record at this stage before it can be resolved."
    )
    # ---
    entry_gate: EntryGate | None = None
    meeting: bool = Field(default=False, description="Managed through a meeting that must be recorded.")
    exceptional: bool = Field(default=False, description="Used only in exceptional circumstances.")
    routes: list[Route] = Field(default_factory=list)
    note: str = ""
    label: str = Field(
        default="",
        max_length=LABEL_MAX,
        description="The authority's own short name for the stage ('Formal Level 4', 'Stage 2'), used in "
        "mail and case notes; defaults to the name.",
    )
    # --- v2c: joint judging and ownership of the escalation ---
    joint_judges: list[Slug] = Field(
        default_factory=list,
        description="Roles who judge an answer together: all must accept before the stage resolves, and any "
        "one of them may escalate. Empty: judged_by alone judges.",
    )
    escalated_by_exclusive: bool = Field(
        default=False,
        description="Only the roles in escalated_by may escalate into this stage: the stage's judge (the "
        "raising officer by default) does not keep the right unless listed there.",
    )
    case_note_type: str = Field(
        default="",
        max_length=CASE_NOTE_TYPE_MAX,
        description="The type of the case notes this stage puts on the child's file ('{officer} "
        "concern/escalation form - Formal Level 4'); '{officer}' stands for the raising officer's label "
        "(case_notes.officer_labels). Defaults to '{officer} informal alert' for an informal stage and "
        "'{officer} formal alert - <label>' for a formal one.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        """Fill ``label`` and ``case_note_type`` from the name and formality, so every reader sees them."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("response_working_hours") is not None:
            if data.get("response_working_days") is not None:
                raise ValueError(
                    "give response_working_days or response_working_hours, not both (stage "
                    f"{data.get('key')!r})"
                )
            data["response_working_days"] = None
        if not data.get("label") and isinstance(data.get("name"), str):
            data["label"] = data["name"].strip()[:LABEL_MAX]
        if not data.get("case_note_type") and isinstance(data.get("label"), str):
            data["case_note_type"] = _default_note_type(data, 0)
        return data

    @field_validator("case_note_type")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        rest = value.replace(OFFICER_PLACEHOLDER, "")
        if "{" in rest or "}" in rest:
            raise ValueError(
                f"only {OFFICER_PLACEHOLDER} (the raising officer's label) may stand in braces; got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_judging_rule(self) -> Stage:
        if self.joint_judges and self.judged_by not in (RAISING_OFFICER, *self.joint_judges):
            raise ValueError(
                f"judged_by {self.judged_by!r} is not among joint_judges: list every judge under "
                "joint_judges and leave judged_by out"
            )
        if len(set(self.joint_judges)) != len(self.joint_judges) or len(self.joint_judges) == 1:
            raise ValueError("joint_judges lists two or more different roles (one judge alone is judged_by)")
        return self

    def judges(self) -> list[str]:
        """The roles who judge an answer: all of ``joint_judges``, or ``judged_by`` alone."""
        return list(self.joint_judges) or [self.judged_by]

    def note_type(self, officer_label: str) -> str:
        """The case note type for a raising officer whose notes start with ``officer_label`` ('IRO')."""
        return self.case_note_type.replace(OFFICER_PLACEHOLDER, officer_label).strip()

    def addressees(self, service_area: str | None) -> tuple[list[str], list[str]]:
        """(to, cc) roles for a concern about ``service_area``."""
        for route in self.routes:
            if route.service_area == service_area:
                return list(route.to), list(route.cc)
        return list(self.to), list(self.cc)


class Track(_Strict):
    """One ladder of stages, used by the officers in ``officer_roles``."""

    key: Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    officer_roles: list[Slug] = Field(min_length=1)
    categories: list[str] = Field(min_length=1)
    stages: list[Stage] = Field(min_length=1)
    # --- protocol language v2: per-track rules, the child's status, entry points (schema_version 2) ---
    total_formal_working_days: int | None = Field(
        default=None, ge=1, description="This track's total limit; null: the protocol's."
    )
    reminder_lead_working_days: int | None = Field(
        default=None, ge=0, description="This track's reminder lead; null: the protocol's."
    )
    bypass: BypassRule | None = Field(
        default=None, description="This track's bypass rule; null: the protocol's."
    )
    cafcass: CafcassRule | None = Field(
        default=None, description="This track's CAFCASS rule; null: the protocol's."
    )
    extensions: ExtensionRule | None = Field(
        default=None, description="This track's extension rule; null: the protocol's."
    )
    child_statuses: list[Slug] = Field(
        default_factory=list, description="The children's statuses this track is for; empty: any."
    )
    category_statuses: dict[str, list[Slug]] = Field(
        default_factory=dict, description="Category -> the children's statuses it is for; unlisted: any."
    )
    entry_points: list[EntryPoint] = Field(
        default_factory=list, description="Stages a concern may start at; empty: the first stage only."
    )

    @model_validator(mode="after")
    def _unique_stage_keys(self) -> Track:
        keys = [s.key for s in self.stages]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"stage keys must be unique within a track; repeated: {', '.join(dupes)}")
        return self

    def stage_index(self, key: str) -> int:
        for i, stage in enumerate(self.stages):
            if stage.key == key:
                return i
        raise KeyError(f"track {self.key!r} has no stage {key!r}; stages: {[s.key for s in self.stages]}")


class EntryPoint(_Strict):
    """A stage a concern may start at without a bypass, for the concerns it names (v2)."""

    stage: Slug
    categories: list[str] = Field(default_factory=list, description="Only for these categories; empty: any.")
    severities: list[Slug] = Field(default_factory=list, description="Only for these severities; empty: any.")
    note: str = ""

    @property
    def conditional(self) -> bool:
        return bool(self.categories or self.severities)

    def met_by(self, category: str, severity: str | None) -> bool:
        """Whether a concern of ``category`` and ``severity`` may start here."""
        return (not self.categories or category in self.categories) and (
            not self.severities or severity in self.severities
        )


class BypassRule(_Strict):
    allowed: bool = True
    prior_discussion_with: list[Slug] = Field(
        default_factory=list, description="A prior discussion with one of these roles is required."
    )
    emergency_exempt: bool = Field(default=True, description="No prior discussion needed in an emergency.")
    condition: str = ""


class CafcassRule(_Strict):
    officer_roles: list[Slug] = Field(description="Officer roles who may refer (IROs, never CP chairs).")
    consult: list[Slug] = Field(default_factory=list, description="Roles to consult before referring.")
    inform: list[Slug] = Field(default_factory=list, description="Roles to tell of a referral.")
    note: str = ""
    # protocol language v2
    child_statuses: list[Slug] = Field(
        default_factory=list, description="The children's statuses a referral may concern; empty: any."
    )
    alongside: bool = Field(
        default=False, description="The local process runs on beside a referral instead of ending."
    )


class ExtensionRule(_Strict):
    approved_by: Slug = RAISING_OFFICER
    note: str = ""


Track.model_rebuild()  # its v2 fields name the rule classes defined after it


class CaseNoteNaming(_Strict):
    """How the authority's case system names the notes an escalation puts on the child's file."""

    officer_labels: dict[Slug, str] = Field(
        default_factory=dict,
        description="Raising officer's role -> the label its notes start with ('IRO informal alert'); a role "
        "without one uses its display name.",
    )
    good_practice: str = Field(
        default="CPC/IRO good practice highlight", description="The type of a good practice note."
    )


class TimescaleRule(_Strict):
    officer_may_shorten: bool = True
    informal_may_agree_longer: bool = Field(
        default=False, description="The informal stage may run to a timescale agreed with the officer."
    )


DEFAULT_CHILD_REF_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,31}$"


class ChildRefFormat(_Strict):
    """How the authority's case system numbers a child: the only child reference an escalation holds.

    It travels in workflow ids and records, so it must be an opaque case number, never a name: the default
    allows capital letters, digits and '-' (3 to 32 characters), which refuses ``JaydenSmith2016``.
    """

    pattern: str = Field(default=DEFAULT_CHILD_REF_PATTERN, description="A regular expression, anchored.")
    example: str = Field(default="C4F2A9", description="A made-up reference of that form, for messages.")

    @model_validator(mode="after")
    def _example_fits(self) -> ChildRefFormat:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"child_ref.pattern is not a regular expression: {exc}") from None
        if not compiled.fullmatch(self.example):
            raise ValueError(f"child_ref.example {self.example!r} does not match child_ref.pattern")
        return self

    def check(self, ref: str) -> None:
        """Raise ValueError unless ``ref`` is a reference of this form."""
        if not re.fullmatch(self.pattern, ref):
            raise ValueError(
                f"child reference {ref!r} is not a case number of the form this authority uses (like "
                f"{self.example}); give the child's case number from the case system, never a name"
            )


class Protocol(_Strict):
    """One authority's protocol. Loaded from ``protocols/<key>.yaml``."""

    schema_version: Literal[1, 2] = 1
    key: Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    authority: str
    title: str
    source: str = Field(description="Where the protocol comes from (seed file, document title).")
    notes: list[str] = Field(default_factory=list, description="Where this file interprets a silent seed.")
    roles: dict[Slug, str] = Field(min_length=1, description="Role key -> display name.")
    service_areas: dict[Slug, str] = Field(default_factory=dict)
    total_formal_working_days: int = Field(default=20, ge=1)
    reminder_lead_working_days: int = Field(default=1, ge=0)
    breach_notify: list[Slug] = Field(min_length=1, description="Told when the total limit passes.")
    bypass: BypassRule = BypassRule()
    cafcass: CafcassRule
    extensions: ExtensionRule = ExtensionRule()
    timescales: TimescaleRule = TimescaleRule()
    case_notes: CaseNoteNaming = CaseNoteNaming()
    closure_days: list[date] = Field(default_factory=list)
    working_hours: WorkingHours = Field(
        default_factory=WorkingHours,
        description="The authority's working hours on a working day, for times in working hours.",
    )
    child_ref: ChildRefFormat = ChildRefFormat()
    tracks: list[Track] = Field(min_length=1)
    # --- v2c: cover, delegation and recipients outside the directory ---
    cover: dict[Slug, Slug] = Field(
        default_factory=dict,
        description="Recipient role -> the role that covers it while its holder is marked absent in the "
        "directory: notices go to the cover role's holder, who may act for the role at that stage.",
    )
    officer_cover_by: list[Slug] = Field(
        default_factory=list,
        description="Roles (the officer's manager, the QA role) who may hand an escalation to a covering "
        "officer, besides the raising officer themself.",
    )
    external_roles: list[Slug] = Field(
        default_factory=list,
        description="Roles held outside the council's directory (a partner agency's manager): the officer "
        "gives the holder's name and e-mail address at raise.",
    )
    deemed_agreement: DeemedAgreement | None = Field(
        default=None, description="Review decisions deemed agreed without a disagreement in time."
    )
    practice_concerns: PracticeConcerns | None = Field(
        default=None, description="Concerns about an officer's own practice."
    )
    good_practice: GoodPracticeNotes | None = Field(
        default=None, description="Good practice notes (compliments); null: the protocol has none."
    )
    collective_alerts: CollectiveAlerts | None = Field(
        default=None, description="Collective alerts: one theme across several children; null: none."
    )
    digest: WeeklyDigest | None = Field(
        default=None, description="A weekly mail of outstanding alerts; null: none is sent."
    )
    # --- protocol language v2 (schema_version 2) ---
    child_statuses: dict[Slug, str] = Field(
        default_factory=dict, description="The child's statuses a concern may have: key -> display name."
    )
    severities: dict[Slug, str] = Field(
        default_factory=dict, description="The severities a concern may be raised with: key -> display name."
    )

    @field_validator("roles")
    @classmethod
    def _role_keys(cls, roles: dict[str, str]) -> dict[str, str]:
        bad = [k for k in roles if not k.replace("_", "").isalnum() or k != k.lower()]
        if bad:
            raise ValueError(f"role keys must be lower_snake_case; fix: {', '.join(bad)}")
        if RAISING_OFFICER in roles:
            raise ValueError(f"{RAISING_OFFICER!r} is built in; do not declare it under roles")
        return roles

    @model_validator(mode="after")
    def _references_resolve(self) -> Protocol:
        known = set(self.roles) | {RAISING_OFFICER}
        problems: list[str] = []

        def check(where: str, names: list[str]) -> None:
            for name in names:
                if name not in known:
                    problems.append(f"{where}: unknown role {name!r} (declare it under 'roles')")

        check("breach_notify", self.breach_notify)
        check("bypass.prior_discussion_with", self.bypass.prior_discussion_with)
        check("cafcass.officer_roles", self.cafcass.officer_roles)
        check("cafcass.consult", self.cafcass.consult)
        check("cafcass.inform", self.cafcass.inform)
        check("extensions.approved_by", [self.extensions.approved_by])
        check("case_notes.officer_labels", list(self.case_notes.officer_labels))
        problems += _v2c_problems(self, check)
        track_keys = [t.key for t in self.tracks]
        if len(set(track_keys)) != len(track_keys):
            problems.append(f"tracks: keys must be unique, got {track_keys}")
        for t in self.tracks:
            check(f"tracks.{t.key}.officer_roles", t.officer_roles)
            for s in t.stages:
                where = f"tracks.{t.key}.stages.{s.key}"
                check(f"{where}.to", s.to)
                check(f"{where}.cc", s.cc)
                check(f"{where}.told_in_advance", s.told_in_advance)
                check(f"{where}.escalated_by", s.escalated_by)
                check(f"{where}.judged_by", [s.judged_by])
                check(f"{where}.joint_judges", s.joint_judges)
                if s.entry_gate:
                    check(f"{where}.entry_gate.with_roles", s.entry_gate.with_roles)
                problems += duty_problems(where, s.officer_deadline, s.required_steps, known)
                for r in s.routes:
                    check(f"{where}.routes.{r.service_area}", r.to + r.cc)
                    if r.service_area not in self.service_areas:
                        problems.append(
                            f"{where}.routes: unknown service area {r.service_area!r} "
                            "(declare it under 'service_areas')"
                        )
        problems += v2_problems(self, known)
        tracks = {t.key: (list(t.officer_roles), list(t.categories)) for t in self.tracks}
        problems += process_problems(self.deemed_agreement, self.practice_concerns, known, tracks)
        officers = {r for t in self.tracks for r in t.officer_roles}
        problems += section_problems(
            self.good_practice, self.collective_alerts, self.digest, set(self.roles), officers
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="before")
    @classmethod
    def _stage_note_types(cls, data: object) -> object:
        """Give each stage its case note type, and check that every type fits the record store.

        A stage without one gets the default (see ``Stage.case_note_type``), cut to fit for the track's
        officer with the longest label, so a protocol recorded before stages had types always loads. One that
        is given, with its officer's label in place of ``{officer}``, must fit: a file is told which is too
        long. Works on a copy: YAML anchors share one stage between tracks."""
        if not isinstance(data, dict) or not isinstance(data.get("tracks"), list):
            return data
        naming = data.get("case_notes")
        found = naming.get("officer_labels") if isinstance(naming, dict) else None
        if isinstance(naming, CaseNoteNaming):
            found = naming.officer_labels
        labels: dict[str, object] = found if isinstance(found, dict) else {}
        given_roles = data.get("roles")
        roles: dict[str, object] = given_roles if isinstance(given_roles, dict) else {}
        problems: list[str] = []
        tracks = []
        for track in data["tracks"]:
            if not isinstance(track, dict) or not isinstance(track.get("stages"), list):
                tracks.append(track)
                continue
            officers = [r for r in track.get("officer_roles") or [] if isinstance(r, str)]
            names = {r: str(labels.get(r) or roles.get(r) or r) for r in officers}
            longest = max((len(n) for n in names.values()), default=0)
            stages = []
            for stage in track["stages"]:
                if isinstance(stage, dict):
                    stage = dict(stage)
                    given = stage.get("case_note_type")
                    if not given and isinstance(stage.get("name"), str):
                        stage["case_note_type"] = _default_note_type(stage, longest)
                    elif isinstance(given, str):
                        for role, name in names.items():
                            kind = given.replace(OFFICER_PLACEHOLDER, name)
                            if len(kind) > CASE_NOTE_TYPE_MAX:
                                where = f"tracks.{track.get('key')}.stages.{stage.get('key')}"
                                problems.append(
                                    f"{where}.case_note_type: {kind!r} is {len(kind)} characters for the "
                                    f"notes of {with_article(role)}, more than the {CASE_NOTE_TYPE_MAX} a "
                                    "case note type may have: shorten it"
                                )
                stages.append(stage)
            tracks.append({**track, "stages": stages})
        if problems:
            raise ValueError("; ".join(problems))
        return {**data, "tracks": tracks}

    def track(self, key: str) -> Track:
        for t in self.tracks:
            if t.key == key:
                return t
        raise KeyError(f"protocol {self.key!r} has no track {key!r}; tracks: {[t.key for t in self.tracks]}")

    def role_name(self, role: str) -> str:
        return "the raising officer" if role == RAISING_OFFICER else self.roles.get(role, role)

    def case_note_label(self, officer_role: str) -> str:
        """The label that starts the raising officer's case notes ('IRO', 'Child Protection')."""
        return self.case_notes.officer_labels.get(officer_role) or self.role_name(officer_role)

    def stage_note_type(self, stage: Stage, officer_role: str) -> str:
        """The type of the case notes ``stage`` puts on the file of a concern raised by ``officer_role``."""
        return stage.note_type(self.case_note_label(officer_role))[:CASE_NOTE_TYPE_MAX].rstrip()

    def role_names(self, roles: list[str]) -> str:
        """The display names of ``roles``, comma-separated."""
        return ", ".join(self.role_name(r) for r in roles)


# --- protocol language v2: checks of the per-track rules, statuses and entry points ------------------------

V2_ONLY = "needs schema_version: 2 (run `escalate protocol upgrade FILE` to rewrite the file as version 2)"


def v2_problems(p: Protocol, known: set[str]) -> list[str]:
    """What is wrong with the v2 fields of ``p``: unknown roles, statuses, severities, stages, categories;
    and v2 fields used in a file that says ``schema_version: 1``."""
    problems: list[str] = []
    statuses, severities = set(p.child_statuses), set(p.severities)

    def roles(where: str, names: list[str]) -> None:
        problems.extend(
            f"{where}: unknown role {n!r} (declare it under 'roles')" for n in names if n not in known
        )

    def status(where: str, names: list[str]) -> None:
        problems.extend(
            f"{where}: unknown child status {n!r} (declare it under 'child_statuses')"
            for n in names
            if n not in statuses
        )

    used: list[str] = []
    if p.child_statuses:
        used.append("child_statuses")
    if p.severities:
        used.append("severities")
    if p.cafcass.child_statuses or p.cafcass.alongside:
        used.append("cafcass.child_statuses / cafcass.alongside")
    status("cafcass.child_statuses", p.cafcass.child_statuses)
    for t in p.tracks:
        where = f"tracks.{t.key}"
        if t.bypass:
            roles(f"{where}.bypass.prior_discussion_with", t.bypass.prior_discussion_with)
        if t.cafcass:
            roles(f"{where}.cafcass.officer_roles", t.cafcass.officer_roles)
            roles(f"{where}.cafcass.consult", t.cafcass.consult)
            roles(f"{where}.cafcass.inform", t.cafcass.inform)
            status(f"{where}.cafcass.child_statuses", t.cafcass.child_statuses)
        if t.extensions:
            roles(f"{where}.extensions.approved_by", [t.extensions.approved_by])
        status(f"{where}.child_statuses", t.child_statuses)
        for category, names in t.category_statuses.items():
            if category not in t.categories:
                problems.append(
                    f"{where}.category_statuses: {category!r} is not one of the track's categories"
                )
            status(f"{where}.category_statuses.{category}", names)
        stage_keys = [s.key for s in t.stages]
        for i, entry in enumerate(t.entry_points):
            at = f"{where}.entry_points[{i}]"
            if entry.stage not in stage_keys:
                problems.append(
                    f"{at}.stage: no stage {entry.stage!r} in the track; stages: {', '.join(stage_keys)}"
                )
            problems.extend(
                f"{at}.categories: {c!r} is not one of the track's categories"
                for c in entry.categories
                if c not in t.categories
            )
            problems.extend(
                f"{at}.severities: unknown severity {v!r} (declare it under 'severities')"
                for v in entry.severities
                if v not in severities
            )
        if t.entry_points and all(e.conditional for e in t.entry_points):
            problems.append(
                f"{where}.entry_points: give at least one entry point with no categories or severities, so "
                "that every concern has a stage to start at"
            )
        overrides = [
            name
            for name in (
                "total_formal_working_days",
                "reminder_lead_working_days",
                "bypass",
                "cafcass",
                "extensions",
                "child_statuses",
                "category_statuses",
                "entry_points",
            )
            if getattr(t, name) not in (None, [], {})
        ]
        used.extend(f"{where}.{name}" for name in overrides)
    if p.schema_version == 1 and used:
        problems.append(f"{', '.join(used)}: {V2_ONLY}")
    return problems


def _v2c_problems(p: Protocol, check: Callable[[str, list[str]], None]) -> list[str]:
    """Cover, officer cover and external roles: known roles, used sensibly."""
    problems: list[str] = []
    check("cover", [*p.cover, *p.cover.values()])
    check("officer_cover_by", p.officer_cover_by)
    check("external_roles", p.external_roles)
    for role, covering in p.cover.items():
        if role == covering or RAISING_OFFICER in (role, covering):
            problems.append(
                f"cover: {role!r} -> {covering!r}: a role is covered by another staff role (not itself, "
                f"nor {RAISING_OFFICER!r}: a covering officer is handed the escalation instead)"
            )
        if role in p.external_roles or covering in p.external_roles:
            problems.append(f"cover: {role!r} -> {covering!r}: external roles are not in the directory")
    if RAISING_OFFICER in p.external_roles:
        problems.append(f"external_roles: {RAISING_OFFICER!r} is staff, never external")
    for t in p.tracks:
        for s in t.stages:
            where = f"tracks.{t.key}.stages.{s.key}"
            judging = [r for r in s.judges() if r in p.external_roles]
            owning = [r for r in s.escalated_by if r in p.external_roles]
            if judging or owning:
                problems.append(
                    f"{where}: external role {(judging or owning)[0]!r} cannot judge or escalate: "
                    "only staff act in the escalation; the officer records an external answer"
                )
    return problems
