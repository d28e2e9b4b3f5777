"""The boundary every action crosses before the rules see it: decode, bound, and say what is wrong.

Pure (no I/O, no clock: ``now`` is given), so the workflow's validators and signal handlers and every front
door run exactly the same checks. A payload that cannot be read, a field out of bounds or a date too far
away is refused with a sentence that names the field and says how to fix it; nothing reaches the rules.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, cast, get_args

from pydantic import TypeAdapter, ValidationError

from schemas.bounds import LEGACY
from schemas.escalation import (
    ACTION_KINDS,
    Accept,
    Action,
    EscalationState,
    EventKind,
    RecordMeeting,
    RequestExtension,
    Respond,
    SetTimescale,
)
from workflows.rules import london_today

FURTHEST_AHEAD = timedelta(days=366)
"""How far ahead a date may be set (an extension, an action plan, a timescale): a year."""
FURTHEST_BACK = timedelta(days=366)
"""How far back a meeting may be recorded."""
NOTES_MAX = 300
"""Most notes and recorded views one escalation keeps; past it, start a new escalation."""
TIMELINE_TEXT_MAX = 1_200_000
"""Most characters of text one escalation's timeline may hold, so its state stays well under Temporal's
2 MB limit on a payload (the ``state`` query returns the whole timeline)."""

_MODELS: dict[str, TypeAdapter[Any]] = {
    model.model_fields["kind"].default: TypeAdapter(model) for model in get_args(get_args(Action)[0])
}


class OutOfBounds(ValueError):
    """An action cannot be accepted as sent; the message names the field and the fix."""


def decode_action(kind: str, data: bytes | Any, *, legacy: bool = False) -> Action:
    """The action ``kind`` from JSON text (bytes) or a decoded JSON value; ``OutOfBounds`` if it is wrong.

    ``legacy``: decode as the models did before the bounds existed (replaying old histories only), from
    the JSON text exactly as the SDK's converter did then.
    """
    model = _MODELS.get(kind)
    if model is None:
        raise OutOfBounds(f"unknown action {kind!r}; known actions: {', '.join(ACTION_KINDS)}")
    context = {LEGACY: legacy}
    try:
        if isinstance(data, bytes):
            if not legacy:
                _require_object(kind, data)
            return cast(Action, model.validate_json(data, context=context))
        _require_object(kind, data)
        return cast(Action, model.validate_python(data, context=context))
    except ValidationError as exc:
        raise OutOfBounds(describe(exc, kind)) from None


def _require_object(kind: str, data: bytes | Any) -> None:
    if isinstance(data, bytes):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OutOfBounds(f"{kind}: the payload is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise OutOfBounds(
            f"the {kind} action must be a JSON object with its fields (actor, ...), not {_json_type(data)}"
        )


def describe(exc: ValidationError, kind: str = "") -> str:
    """A validation error as one sentence per problem, each naming its field in dotted form."""
    problems = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"] if part != kind]
        field = ".".join(location) or "the payload"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a field of this action: remove it"
        problems.append(f"{field}: {message}")
    prefix = f"{kind}: " if kind else ""
    return prefix + "; ".join(problems)


def check_action(state: EscalationState, action: Action, now: datetime) -> None:
    """Checks relative to now and to the escalation's size; raise ``OutOfBounds``."""
    today = london_today(now)
    latest = today + FURTHEST_AHEAD
    ahead: list[tuple[str, date | None]] = []
    if isinstance(action, Respond | Accept):
        ahead.append(("action_plan_due", action.action_plan_due))
    if isinstance(action, RequestExtension | SetTimescale):
        ahead.append(("until", action.until))
    for field, day in ahead:
        if day is not None and day > latest:
            raise OutOfBounds(
                f"{field}: {day:%-d %B %Y} is more than a year ahead; give a date no later than "
                f"{latest:%-d %B %Y}"
            )
    if isinstance(action, RecordMeeting) and action.held_on < today - FURTHEST_BACK:
        raise OutOfBounds(f"held_on: {action.held_on:%-d %B %Y} is more than a year ago")
    if action.kind in ("add_note", "record_views"):
        notes = sum(1 for e in state.timeline if e.kind in (EventKind.NOTE, EventKind.VIEWS))
        if notes >= NOTES_MAX:
            raise OutOfBounds(
                f"this escalation already holds {NOTES_MAX} notes and views, the most it keeps: "
                "record further notes on the child's file"
            )
    if action.kind in ("add_note", "record_views") and timeline_text(state) >= TIMELINE_TEXT_MAX:
        raise OutOfBounds("this escalation's record is full: record further notes on the child's file")


def timeline_text(state: EscalationState) -> int:
    """Characters of text held in the timeline."""
    return sum(len(e.text) for e in state.timeline)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list"}.get(
        type(value), type(value).__name__
    )
