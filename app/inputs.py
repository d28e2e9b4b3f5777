"""Bounding what a person sends with the existing pydantic models, and saying what is wrong in words.

``build_action`` makes an action (``schemas.escalation``) from a front door's fields; ``RaiseRequest`` is
the raise form's flat shape, turned into ``starter.escalations.prepare``'s arguments. Each problem is a
sentence about one field, made with the front door's name for it (``label``): the web says "Enter your
answer", the API "Enter answer".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import BadInput
from schemas.bounds import BoundedDate, ShortText, Text
from schemas.escalation import Action, Actor, ExternalContact, RecordConsultation
from schemas.protocol import Protocol, Stage

ACTION_MODELS: dict[str, type[BaseModel]] = {
    model.model_fields["kind"].default: model for model in get_args(get_args(Action)[0])
}
"""Each action's model by its kind (the update's name)."""

Label = Callable[[str], str]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def sentence(error: Mapping[str, Any], label: str) -> str:
    """One validation error about a field called ``label``, as a sentence that says how to fix it."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("missing", "string_too_short") or (
        kind == "value_error" and "must not be empty" in str(error.get("msg"))
    ):
        return f"Enter {_lower_first(label)}"
    if kind == "string_too_long":
        return f"{label} must be {ctx.get('max_length', 0):,} characters or fewer"
    if kind.startswith("date_") or kind == "date_from_datetime_parsing":
        return f"{label} must be a real date, like 2027-03-31"
    if kind in ("bool_parsing", "bool_type", "literal_error", "enum"):
        return f"Select {_lower_first(label)}"
    if kind == "string_pattern_mismatch":
        return (
            f"{label} must be a reference of letters and digits (and . _ -), as the staff directory gives it"
        )
    if kind in ("int_parsing", "int_type"):
        return f"{label} must be a whole number"
    if kind in ("less_than_equal", "less_than"):
        return f"{label} must be {ctx.get('le', ctx.get('lt'))} or less"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{label} must be {ctx.get('ge', ctx.get('gt'))} or more"
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if message.startswith("has ") and "at most" in message:  # the bounds' own length check
        return f"{label} is too long: it {message}"
    return f"{label} {message}" if message[:1].islower() else f"{label}: {message}"


def problems(exc: ValidationError, label: Label, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Field name -> sentence, the first problem of each field (the actor's fields are never the person's)."""
    found: dict[str, str] = {}
    for error in exc.errors():
        names = [str(p) for p in error["loc"] if isinstance(p, str)]
        field = names[-1] if names else "form"
        if names[:1] == ["actor"] or field in ignore or field in found:
            continue
        found[field] = sentence(error, label(field))
    return found


def build_action(kind: str, actor: Actor, fields: Mapping[str, Any], label: Label) -> Any:
    """The action ``kind`` by ``actor`` from ``fields`` (empty strings count as not given);
    ``BadInput`` naming each wrong field."""
    model = ACTION_MODELS.get(kind)
    if model is None:
        raise BadInput({"kind": f"There is no action called {kind[:40]!r}"})
    given = {k: v for k, v in fields.items() if k in model.model_fields and v not in ("", None)}
    given.pop("kind", None)
    unknown = sorted(k for k in fields if k not in model.model_fields and k not in ("kind", "actor"))
    if unknown:
        raise BadInput({k: f"{label(k)} is not part of this action" for k in unknown})
    try:
        return model(**given, actor=actor)
    except ValidationError as exc:
        raise BadInput(problems(exc, label)) from None


class RaiseRequest(BaseModel):
    """The raise form: which authority and track, the child, the team and the whole concern."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    track: str = Field(min_length=1, max_length=64)
    category: ShortText
    child_ref: str = Field(min_length=1, max_length=64)
    team: str | None = Field(default=None, max_length=64)
    summary: Text
    impact_on_child: Text
    requested_action: Text
    child_views: Text | None = None
    parents_views: Text | None = None
    start_at_stage: str | None = Field(default=None, max_length=64)
    bypass_reason: Text | None = None
    emergency: bool = False
    discussed_with: str | None = Field(default=None, max_length=64)
    request_id: str = Field(min_length=1, max_length=64)
    # protocol language v2: the child's status and severity, a consultation held before a gated start
    # stage, the holders of external roles, and a shorter timescale for the first stage
    child_status: str | None = Field(default=None, max_length=64)
    severity: str | None = Field(default=None, max_length=64)
    consulted_with: str | None = Field(default=None, max_length=64)
    consulted_on: BoundedDate | None = None
    consultation: Text | None = None
    consultation_agreed: bool = False
    external_contacts: list[ExternalContact] = Field(default_factory=list, max_length=20)
    timescale_working_days: int | None = Field(default=None, ge=0, le=60)
    timescale_reason: Text | None = None
    part_of: str | None = Field(
        default=None, max_length=128, description="The collective alert it is part of."
    )


def raise_request(fields: Mapping[str, Any], label: Label) -> RaiseRequest:
    given = {k: v for k, v in fields.items() if v not in ("", None)}
    unknown = sorted(k for k in given if k not in RaiseRequest.model_fields)
    if unknown:
        raise BadInput({k: f"{label(k)} is not part of raising a concern" for k in unknown})
    try:
        return RaiseRequest(**given)
    except ValidationError as exc:
        raise BadInput(problems(exc, label)) from None


def statuses_known(form: RaiseRequest, protocol: Protocol, label: Label) -> None:
    """The child's status is given where the protocol declares statuses, and each is one it declares."""
    for name, given, declared, required in (
        ("child_status", form.child_status, protocol.child_statuses, True),
        ("severity", form.severity, protocol.severities, False),
    ):
        if given is None and required and declared:
            raise BadInput({name: f"Select {label(name)[:1].lower()}{label(name)[1:]}"})
        if given is not None and given not in declared:
            known = ", ".join(declared.values()) or "none: leave it out"
            raise BadInput({name: f"{label(name)} must be one of: {known}"})


def consultation_at_raise(
    form: RaiseRequest, stage: Stage, officer: Actor, label: Label
) -> list[RecordConsultation]:
    """The consultation (or agreement) the start stage needs first, from the form; none otherwise."""
    gate = stage.entry_gate
    given = {
        "consulted_with": form.consulted_with,
        "consulted_on": form.consulted_on,
        "consultation": form.consultation,
    }
    if gate is None:
        return []
    if not any(given.values()):
        what = "agreement" if gate.kind.value == "agreement" else "consultation"
        raise BadInput(
            {
                "consulted_with": f"{stage.name} needs {'an' if what[0] == 'a' else 'a'} {what} first: "
                f"select {label('consulted_with')[:1].lower()}{label('consulted_with')[1:]}"
            }
        )
    missing = {k: f"Enter {label(k)[:1].lower()}{label(k)[1:]}" for k, v in given.items() if not v}
    if missing:
        raise BadInput(missing)
    try:
        return [
            RecordConsultation(
                actor=officer,
                stage=stage.key,
                with_role=form.consulted_with or "",
                agreed=True if form.consultation_agreed else None,
                summary=form.consultation or "",
                held_on=form.consulted_on,
            )
        ]
    except ValidationError as exc:
        raise BadInput(problems(exc, label)) from None
