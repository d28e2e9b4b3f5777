"""What every ``escalate`` command shares: exit codes, one-line errors, option types, formatting.

The parser's part (exit codes, errors, option types) is ``starter.cli.options``, which imports only the
standard library; it is re-exported here for the commands."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, StringConstraints, ValidationError

from protocols import ProtocolError, load_protocol
from schemas import bounds
from schemas.bounds import Ref
from schemas.escalation import Status
from schemas.protocol import Protocol
from starter.cli.options import (
    CALENDAR_DAYS,
    CATEGORY_MAX,
    DEFAULT_WAIT_S,
    ESCALATION_ID,
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    ID_MAX,
    KEY_MAX,
    LONDON,
    PROG,
    SEQUENCES,
    WAIT_S,
    YEARS,
    CliError,
    CliParser,
    any_date,
    bounded_text,
    category_text,
    coming_date,
    count,
    escalation_id,
    free_text,
    key,
    london_today,
    one_line,
    past_date,
    refused,
    shown,
    wait_seconds,
    whole_number,
)

__all__ = [
    "CALENDAR_DAYS",
    "CATEGORY_MAX",
    "DEFAULT_WAIT_S",
    "ESCALATION_ID",
    "EXIT_BAD_INPUT",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "ID_MAX",
    "KEY_MAX",
    "LAST_EVENTS",
    "OPTION_FOR",
    "PROG",
    "REF_PATTERN",
    "SEQUENCES",
    "TEXT_MAX",
    "WAIT_S",
    "YEARS",
    "CliError",
    "CliParser",
    "any_date",
    "at_most",
    "bounded_text",
    "build",
    "category_text",
    "coming_date",
    "count",
    "describe_validation",
    "escalation_id",
    "event_line",
    "free_text",
    "key",
    "london_time",
    "london_today",
    "long_day",
    "name_options",
    "one_line",
    "past_date",
    "refused",
    "role_names",
    "rule_refusal",
    "shown",
    "wait_seconds",
    "whole_number",
    "words",
]

LAST_EVENTS = 5

M = TypeVar("M", bound=BaseModel)

TEXT_MAX = bounds.TEXT_MAX
"""Free text (answers, reasons, notes): the same limit as the actions' ``Text`` fields."""
REF_PATTERN = next(m.pattern for m in get_args(Ref)[1:] if isinstance(m, StringConstraints))
"""Keys and references (roles, stages, teams, staff and child references): the schema's ``Ref`` limit."""


def at_most(items: Sequence[str], limit: int, option: str, what: str) -> list[str]:
    """A repeated option's values, refused (bad input) past ``limit``."""
    if len(items) > limit:
        raise CliError(f"{option}: {len(items)} {what} given; at most {limit}")
    return list(items)


OPTION_FOR = {
    "actor.id": "--as-id",
    "actor.role": "--as-role",
    "officer.id": "--officer-id",
    "officer.role": "--officer-role",
    "concern.summary": "--summary",
    "concern.impact_on_child": "--impact",
    "concern.requested_action": "--request",
    "impact_on_child": "--impact",
    "requested_action": "--request",
    "escalation_id": "--authority/--child-ref",
    "attendees": "--attendee",
}
"""Where an option's name is not the model field's, with dashes for underscores."""


FIELD_WORD = re.compile(r"\b([a-z]+(?:_[a-z]+)+)\b")
GIVE_OPTION = re.compile(r"\bgive --[a-z]")


def _option_fields() -> frozenset[str]:
    """Every field a command fills from an option (the actions' and the raise's), with an underscore:
    the words of a rule's reason that are field names, never English."""
    from app.inputs import ACTION_MODELS
    from schemas.escalation import RaiseConcern

    names = {n for m in ACTION_MODELS.values() for n in m.model_fields}
    names |= set(RaiseConcern.model_fields) | {"bypass_reason", "impact_on_child", "requested_action"}
    return frozenset(n for n in names if "_" in n) - {"escalation_id"}


def name_options(reason: str, options: Mapping[str, str] | None = None) -> str:
    """A rule's reason with each field name it mentions (``discussed_with``) as its command-line option
    (``--discussed-with``); ``options`` where a command's option is named otherwise."""
    names = {**OPTION_FOR, **(options or {})}
    fields = _option_fields()

    def option(found: re.Match[str]) -> str:
        word = found.group(1)
        if word not in fields:
            return word
        return names.get(word) or "--" + word.replace("_", "-")

    return FIELD_WORD.sub(option, reason.replace("(agreed: true or false)", "(--agreed or --not-agreed)"))


def rule_refusal(reason: str, options: Mapping[str, str] | None = None) -> CliError:
    """A rule's refusal naming options; one that asks for an option not given is bad input (exit 2)."""
    text = name_options(reason, options)
    return CliError(text) if GIVE_OPTION.search(text) else refused(text)


def _problem(err: Mapping[str, Any]) -> str:
    """What is wrong with one value and how to put it right, in words for the person at the keyboard."""
    ctx = err.get("ctx") or {}
    value = err.get("input")
    kind = err["type"]
    if kind == "string_too_short":
        return "is empty: write some text"
    if kind == "string_too_long":
        return f"is too long: at most {ctx.get('max_length', '?'):,} characters; shorten it"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") != REF_PATTERN:
        return f"{shown(str(value))} does not have the expected form"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown(str(value))} is not a reference: letters, digits, '.', '_' and '-' only, at most "
            f"{KEY_MAX} characters (an opaque reference, never a name)"
        )
    if kind in ("less_than_equal", "less_than"):
        return f"{value} is too large: at most {ctx.get('le', ctx.get('lt'))}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{value} is too small: at least {ctx.get('ge', ctx.get('gt'))}"
    return str(err["msg"]).removeprefix("Value error, ")


def describe_validation(exc: ValidationError, options: Mapping[str, str] | None = None) -> str:
    """Each error as ``--option: problem``, naming the command-line option, never the model's field."""
    names = {**OPTION_FOR, **(options or {})}
    errors = exc.errors()
    if len(errors) > 1:  # the id is made from other options: their own errors say what to fix
        errors = [e for e in errors if e["loc"] != ("escalation_id",)] or errors
    parts = []
    for err in errors:
        fields = [str(p) for p in err["loc"] if isinstance(p, str)]  # no list positions
        where = ".".join(fields)
        option = names.get(where) or (names.get(fields[-1]) if fields else None)
        if option is None and fields:
            option = "--" + fields[-1].replace("_", "-")
        parts.append(f"{option}: {_problem(err)}" if option else _problem(err))
    return "; ".join(parts)


def build(cls: type[M], options: Mapping[str, str] | None = None, **fields: Any) -> M:
    """Build an action locally, so malformed input is refused before anything is sent.

    ``options`` names the command-line option of a field where it is not ``--`` + the field's name.
    """
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise CliError(describe_validation(exc, options)) from None


# --- formatting ------------------------------------------------------------------------------------------


def words(status: Status) -> str:
    return status.value.replace("_", " ")


def long_day(day: date) -> str:
    return f"{day:%A %-d %B %Y}"


def role_names(authority: str) -> Callable[[str], str]:
    try:
        protocol: Protocol | None = load_protocol(authority)
    except ProtocolError:
        protocol = None
    return protocol.role_name if protocol else (lambda role: role)


def london_time(instant: datetime) -> str:
    return f"{instant.astimezone(LONDON):%Y-%m-%d %H:%M}"


def event_line(entry: Any) -> str:
    who = f"{entry.actor.id} ({entry.actor.role})" if entry.actor else "-"
    return (
        f"{entry.seq:>3}  {london_time(entry.at)}  {entry.kind.value:<23} {entry.stage or '-':<10} {who}: "
        f"{one_line(entry.text)}"
    )
