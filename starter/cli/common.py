"""What every ``escalate`` command shares: exit codes, one-line errors, option types, formatting."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NoReturn, TypeVar, get_args

from pydantic import BaseModel, StringConstraints, ValidationError

from activities.working_days import LONDON
from protocols import ProtocolError, load_protocol
from schemas import bounds
from schemas.bounds import Ref
from schemas.escalation import Status
from schemas.protocol import Protocol

PROG = "escalate"
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
DEFAULT_WAIT_S = 30.0
LAST_EVENTS = 5

M = TypeVar("M", bound=BaseModel)


class CliError(Exception):
    """An expected failure: one line on stderr and an exit code, never a traceback."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = one_line(message)
        self.code = code

    def line(self) -> str:
        return self.message if self.code != EXIT_REFUSED else f"refused: {self.message}"


def refused(reason: str) -> CliError:
    return CliError(reason, EXIT_REFUSED)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- parsing ---------------------------------------------------------------------------------------------


class CliParser(argparse.ArgumentParser):
    """Bad command-line input is one line and exit status 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)")


def london_today() -> date:
    return datetime.now(UTC).astimezone(LONDON).date()


WAIT_S = (1.0, 300.0)
"""``--wait``: at least a second (less never reaches a server), at most five minutes."""
YEARS = (2000, 2100)
"""Dates the working-day calendar is asked about: far outside these, a date is a typing mistake."""
SEQUENCES = (1, 9999)
"""An escalation's number for its child: four digits in its id."""
CALENDAR_DAYS = (0, 260)
"""``calendar add-working-days``: at most a year of working days."""


TEXT_MAX = bounds.TEXT_MAX
"""Free text (answers, reasons, notes): the same limit as the actions' ``Text`` fields."""
KEY_MAX = 64
REF_PATTERN = next(m.pattern for m in get_args(Ref)[1:] if isinstance(m, StringConstraints))
"""Keys and references (roles, stages, teams, staff and child references): the schema's ``Ref`` limit."""
CATEGORY_MAX = 300
"""A category's text (protocols' categories are sentences of under 150 characters)."""
ID_MAX = 160
ESCALATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*-\d{4,}$")


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut short so that a pasted document never floods the terminal."""
    text = one_line(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def any_date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a date: write YYYY-MM-DD") from None
    first, last = YEARS
    if not first <= day.year <= last:
        raise argparse.ArgumentTypeError(
            f"{day.isoformat()} is not in the years {first}-{last}: check the year"
        )
    return day


def coming_date(text: str) -> date:
    """A date that is today or later (London)."""
    day = any_date(text)
    if day < london_today():
        raise argparse.ArgumentTypeError(f"{day:%-d %B %Y} is in the past: give today or a later date")
    return day


def past_date(text: str) -> date:
    """A date that is today or earlier (London): something that has already happened."""
    day = any_date(text)
    if day > london_today():
        raise argparse.ArgumentTypeError(f"{day:%-d %B %Y} is in the future: give the day it happened")
    return day


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An option type: a whole number from ``low`` to ``high`` (no upper bound when ``None``)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None
        if n < low or (high is not None and n > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{n} is out of range: give a whole number {span}")
        return n

    return parse


count = whole_number(0)


def wait_seconds(text: str) -> float:
    """``--wait``: a finite number of seconds in ``WAIT_S``."""
    low, high = WAIT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{shown(text)}: give a number of seconds from {low:g} to {high:g}")
    return seconds


def bounded_text(limit: int, what: str) -> Callable[[str], str]:
    """An option type: text of at most ``limit`` characters once trimmed; the message says what fits."""

    def parse(text: str) -> str:
        length = len(text.strip())
        if length > limit:
            raise argparse.ArgumentTypeError(
                f"{length:,} characters is too long: at most {limit:,} ({what}); shorten it"
            )
        return text

    return parse


free_text = bounded_text(TEXT_MAX, "put long documents in the child's record and refer to them")
key = bounded_text(KEY_MAX, "a key or reference, never a name or a sentence")
category_text = bounded_text(CATEGORY_MAX, "or give its number from `escalate protocol show`")


def escalation_id(text: str) -> str:
    """An escalation id as ``escalation_id_for`` makes them: ``<authority>-<child ref>-<NNNN>``."""
    if len(text) > ID_MAX or not ESCALATION_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not an escalation id: write <authority>-<child ref>-<number>, "
            "e.g. wigan-C4F2A9-0003 (escalate list shows them)"
        )
    return text


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
