"""What each form asks, in words: field labels, hints and widgets, and how typed text becomes fields.

Error messages name fields by these labels (``label``), never by the models' field names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.access import Facts
from schemas.escalation import EscalationView


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    widget: str = "textarea"  # textarea, text, date, number, yesno, checkbox, select, checkboxes, radios
    hint: str = ""
    optional: bool = False
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ActionForm:
    kind: str
    title: str
    button: str
    fields: list[Field] = field(default_factory=list)
    irreversible: bool = False
    warning: str = ""


DATE_HINT = "For example, 2027-03-31"

LABELS: dict[str, str] = {
    "answer": "Your answer",
    "action_plan": "Action plan",
    "action_plan_due": "Date the action plan is due",
    "until": "New date",
    "reason": "Reason",
    "approve": "Do you approve the request for more time?",
    "exceed_total_limit": "Let the new date pass the total time limit",
    "working_days": "Working days",
    "note": "Note",
    "to_stage": "Stage to go to",
    "emergency": "This is an emergency",
    "discussed_with": "Who you discussed it with first",
    "consulted": "Who you consulted",
    "stage": "Stage that needs the consultation",
    "with_role": "Who was consulted",
    "agreed": "Did they agree?",
    "summary": "Summary of the concern",
    "held_on": "Date of the meeting",
    "attendees": "Who attended",
    "outcome": "Outcome of the meeting",
    "text": "Note",
    "whose": "Whose views",
    "views": "Their views",
    "track": "Kind of concern",
    "category": "Category",
    "child_ref": "Child's case number",
    "team": "Team",
    "impact_on_child": "Impact on the child",
    "requested_action": "What you are asking for",
    "child_views": "The child's views",
    "parents_views": "The parents' or carers' views",
    "start_at_stage": "Stage to start at",
    "bypass_reason": "Why you are starting at a later stage",
    "request_id": "Request reference",
    "form": "Your request",
    "child_status": "The child's status",
    "severity": "Severity of the concern",
    "consulted_with": "Who you consulted before the stage the concern starts at",
    "consulted_on": "Date of the consultation",
    "consultation": "What was discussed and concluded",
    "consultation_agreed": "They agreed to the escalation",
    "part_of": "The collective alert it belongs to",
    "timescale_working_days": "A shorter time to answer, in working days",
    "timescale_reason": "Why the answer is needed sooner",
    "external_contacts": "Contacts outside the council",
    "on_behalf_of": "Whose answer you are recording",
    "exceptional": "The circumstances are exceptional",
    "new_officer_id": "Covering officer's staff reference",
    "new_officer_role": "Covering officer's role",
    "new_officer": "Covering officer's staff reference",
    "id": "Covering officer's staff reference",
    "role": "Covering officer's role",
    "step": "Step",
    "done_at": "Date it was done",
    "told": "Who was told",
    "how": "How it was done",
    "kind": "Action",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def form_label(form: ActionForm) -> Callable[[str], str]:
    """Labels as this form shows them (a field's own label first, then the shared ones)."""
    own = {f.name: f.label for f in form.fields}
    return lambda name: own.get(ERROR_FIELDS.get(form.kind, {}).get(name, name)) or label(name)


def action_forms(view: EscalationView, facts: Facts) -> dict[str, ActionForm]:
    """Every action's form for this escalation (choices from its protocol snapshot)."""
    protocol = facts.protocol
    stages = facts.stages()
    later = [(s.key, s.name) for s in stages[view.stage_number :]]
    gated = [(s.key, s.name) for s in stages[view.stage_number :] if s.entry_gate]
    gate_roles = sorted({r for s in stages if s.entry_gate for r in s.entry_gate.with_roles})
    role = protocol.role_name
    roles = tuple((r, role(r)) for r in protocol.roles)
    reason = Field("reason", "Reason")
    plan = [
        Field("action_plan", "Action plan", optional=True, hint="Only if you agree an action plan"),
        Field("action_plan_due", "Date the action plan is due", "date", DATE_HINT, optional=True),
    ]
    current = stages[view.stage_number - 1] if 0 < view.stage_number <= len(stages) else None
    outside = [r for r in protocol.external_roles if current and r in (*current.to, *current.cc)]
    behalf = (
        [
            Field(
                "on_behalf_of",
                LABELS["on_behalf_of"],
                "select",
                "Only when you record the answer of someone outside the council, who answered by e-mail",
                optional=True,
                choices=tuple((r, role(r)) for r in outside),
            )
        ]
        if outside
        else []
    )
    following = stages[view.stage_number] if view.stage_number < len(stages) else None
    exceptional = (
        [
            Field(
                "exceptional",
                LABELS["exceptional"],
                "checkbox",
                f"{following.name} is only for exceptional circumstances: say why in the reason",
            )
        ]
        if following is not None and following.exceptional
        else []
    )
    open_duties = [d for d in view.duties if d.done is None and d.stage == view.stage]
    officer_roles = protocol.track(facts.track).officer_roles
    forms = [
        ActionForm(
            "respond",
            "Respond to the concern",
            "Send response",
            [Field("answer", "Your answer"), *plan, *behalf],
        ),
        ActionForm(
            "request_extension",
            "Ask for more time",
            "Ask for more time",
            [Field("until", "New date", "date", DATE_HINT), reason],
        ),
        ActionForm(
            "decide_extension",
            "Decide the request for more time",
            "Send decision",
            [
                Field("approve", "Do you approve the request for more time?", "yesno"),
                Field("reason", "Reason", optional=True, hint="Needed if you decline"),
                Field("exceed_total_limit", "Let the new date pass the total time limit", "checkbox"),
            ],
        ),
        ActionForm(
            "set_timescale",
            "Set this stage's timescale",
            "Set timescale",
            [
                Field("working_days", "Working days", "number", "Give working days or a date", optional=True),
                Field("until", "New date", "date", DATE_HINT, optional=True),
                reason,
            ],
        ),
        ActionForm(
            "accept",
            "Accept the response",
            "Accept",
            [Field("note", "Note", optional=True), *plan],
            irreversible=True,
            warning="Accepting resolves the concern, or starts monitoring an agreed action plan.",
        ),
        ActionForm(
            "escalate",
            "Escalate to the next stage",
            "Escalate",
            [Field("reason", "Why the response does not address the concern"), *exceptional],
        ),
        ActionForm(
            "bypass",
            "Bypass to a later stage",
            "Bypass",
            [
                Field("to_stage", "Stage to go to", "select", choices=tuple(later)),
                reason,
                Field("emergency", "This is an emergency", "checkbox"),
                Field(
                    "discussed_with",
                    "Who you discussed it with first",
                    "select",
                    optional=True,
                    choices=roles,
                ),
            ],
        ),
        ActionForm(
            "refer_to_cafcass",
            "Refer to CAFCASS",
            "Refer to CAFCASS",
            [
                reason,
                Field(
                    "consulted",
                    "Who you consulted",
                    "checkboxes",
                    optional=True,
                    choices=tuple((r, role(r)) for r in protocol.cafcass.consult),
                ),
            ],
            irreversible=True,
            warning="A referral to CAFCASS ends the local process for this escalation.",
        ),
        ActionForm(
            "record_consultation",
            "Record a consultation",
            "Record consultation",
            [
                Field("stage", "Stage that needs the consultation", "select", choices=tuple(gated)),
                Field(
                    "with_role",
                    "Who was consulted",
                    "select",
                    choices=tuple((r, role(r)) for r in gate_roles),
                ),
                Field(
                    "agreed",
                    "Did they agree?",
                    "radios",
                    optional=True,
                    choices=(("true", "Yes"), ("false", "No"), ("", "Agreement was not asked")),
                ),
                Field("summary", "Summary of the discussion"),
                Field("held_on", "Date of the consultation", "date", DATE_HINT, optional=True),
            ],
        ),
        ActionForm(
            "record_meeting",
            "Record a meeting",
            "Record meeting",
            [
                Field("held_on", "Date of the meeting", "date", DATE_HINT),
                Field("attendees", "Who attended", hint="One person or role on each line"),
                Field("outcome", "Outcome of the meeting"),
            ],
        ),
        ActionForm(
            "withdraw",
            "Withdraw the escalation",
            "Withdraw",
            [reason],
            irreversible=True,
            warning="Withdrawing ends the escalation. It cannot be reopened.",
        ),
        ActionForm(
            "close",
            "Close the escalation",
            "Close",
            [reason],
            irreversible=True,
            warning="Closing ends the escalation without resolution. It cannot be reopened.",
        ),
        ActionForm("add_note", "Add a note", "Add note", [Field("text", "Note")]),
        ActionForm(
            "record_step",
            "Record a step as done",
            "Record step",
            [
                Field(
                    "step",
                    "Step",
                    "select",
                    choices=tuple((d.key, d.what) for d in open_duties)
                    or tuple((d.key, d.what) for d in view.duties),
                ),
                Field(
                    "done_at",
                    "Date it was done",
                    "date",
                    "Leave empty for today. " + DATE_HINT,
                    optional=True,
                ),
                Field("told", "Who was told", "checkboxes", optional=True, choices=TOLD),
                Field(
                    "how",
                    "How it was done",
                    "radios",
                    "Needed when people were told",
                    optional=True,
                    choices=HOW,
                ),
                Field("note", "Note", optional=True),
            ],
        ),
        ActionForm(
            "replace_officer",
            "Hand the escalation to a covering officer",
            "Hand over",
            [
                Field(
                    "new_officer_id",
                    "Covering officer's staff reference",
                    "text",
                    "As in the staff directory",
                ),
                Field(
                    "new_officer_role",
                    "Covering officer's role",
                    "select",
                    choices=tuple((r, role(r)) for r in officer_roles),
                ),
                reason,
            ],
        ),
        ActionForm(
            "record_views",
            "Record views",
            "Record views",
            [
                Field(
                    "whose",
                    "Whose views",
                    "radios",
                    choices=(("child", "The child's"), ("parent", "A parent's"), ("carer", "A carer's")),
                ),
                Field("views", "Their views"),
            ],
        ),
    ]
    return {f.kind: f for f in forms}


TOLD = (
    ("child", "The child"),
    ("parents", "Parents"),
    ("carers", "Carers"),
    ("family", "Family"),
    ("advocate", "Advocate"),
)
HOW = (
    ("in_person", "In person"),
    ("phone", "By phone"),
    ("video_call", "By video call"),
    ("letter", "By letter"),
    ("email", "By e-mail"),
    ("text_message", "By text message"),
    ("other", "Another way"),
)

IRREVERSIBLE = frozenset({"accept", "withdraw", "close", "refer_to_cafcass"})


def action_fields(form: ActionForm, typed: Mapping[str, Any]) -> dict[str, Any]:
    """The action's fields from what was typed: checkboxes to booleans, lines to lists."""
    fields: dict[str, Any] = {}
    for f in form.fields:
        value = typed.get(f.name, "")
        if f.widget == "checkbox":
            fields[f.name] = value == "yes"
        elif f.widget == "checkboxes":
            fields[f.name] = list(value) if isinstance(value, list | tuple) else ([value] if value else [])
        elif f.name == "attendees":
            fields[f.name] = [line.strip() for line in str(value).splitlines() if line.strip()]
        elif f.widget in ("yesno", "radios") and value in ("true", "false"):
            fields[f.name] = value == "true"
        elif f.name == "done_at" and value:
            fields[f.name] = f"{value}T00:00:00+00:00" if DAY.match(str(value)) else value
        else:
            fields[f.name] = value
    if form.kind == "replace_officer":
        new = {"id": fields.pop("new_officer_id", ""), "role": fields.pop("new_officer_role", "")}
        fields["new_officer"] = new if new["id"] else None
    return fields


DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ERROR_FIELDS = {
    "replace_officer": {"id": "new_officer_id", "role": "new_officer_role", "new_officer": "new_officer_id"}
}
"""An action's error keys (a nested model's field names) -> the form's field names."""


def form_errors(kind: str, errors: Mapping[str, str]) -> dict[str, str]:
    names = ERROR_FIELDS.get(kind, {})
    return {names.get(k, k): v for k, v in errors.items()}
