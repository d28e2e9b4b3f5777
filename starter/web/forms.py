"""What each form asks, in words: field labels, hints and widgets, and how typed text becomes fields.

Error messages name fields by these labels (``label``), never by the models' field names.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    "kind": "Action",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


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
    forms = [
        ActionForm(
            "respond", "Respond to the concern", "Send response", [Field("answer", "Your answer"), *plan]
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
            [Field("reason", "Why the response does not address the concern")],
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
        else:
            fields[f.name] = value
    return fields
