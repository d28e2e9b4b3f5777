"""What every ``escalate`` command shares: exit codes, one-line errors, option types, formatting."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from activities.working_days import LONDON
from protocols import ProtocolError, load_protocol
from schemas.escalation import (
    Status,
)
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


def any_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


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


def count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is negative: give 0 or more")
    return n


OPTION_FOR = {
    "actor.id": "--as-id",
    "actor.role": "--as-role",
    "officer.id": "--officer-id",
    "officer.role": "--officer-role",
    "concern.summary": "--summary",
    "concern.impact_on_child": "--impact",
    "concern.requested_action": "--request",
    "escalation_id": "--authority/--child-ref",
    "attendees": "--attendee",
    "text": "--text",
}


def describe_validation(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err["loc"])
        option = OPTION_FOR.get(loc, "--" + loc.rsplit(".", 1)[-1].replace("_", "-"))
        parts.append(f"{option}: {err['msg']}")
    return "; ".join(parts)


def build(cls: type[M], **fields: Any) -> M:
    """Build an action locally, so malformed input is refused before anything is sent."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise CliError(describe_validation(exc)) from None


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
