"""What the ``escalate`` parser needs and nothing more: exit codes, one-line errors, the option types and
lazily imported command functions.

Only the standard library is imported here, so building the whole parser (``escalate --help``, and every
command before it runs) costs no pydantic, SQLAlchemy, temporalio or workflow import. What an option type
needs from those (a schema's limit or pattern) is imported when the option is given, and a command's module
when the command runs (``handler``).
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

PROG = "escalate"
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
DEFAULT_WAIT_S = 30.0

Run = Callable[[argparse.Namespace], Awaitable[int]]


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


class CliParser(argparse.ArgumentParser):
    """Bad command-line input is one line and exit status 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)")


class Handler:
    """A command's function named ``"module:function"``, imported only when the command runs.

    Set as the parser's ``run`` default: ``await args.run(args)`` imports the module and awaits the function.
    """

    def __init__(self, target: str) -> None:
        self.module, _, self.function = target.partition(":")
        if not self.function:
            raise ValueError(f"{target!r}: name a command function as 'module:function'")

    def resolve(self) -> Run:
        run: Run = getattr(importlib.import_module(self.module), self.function)
        return run

    async def __call__(self, args: argparse.Namespace) -> int:
        return await self.resolve()(args)

    def __repr__(self) -> str:
        return f"Handler('{self.module}:{self.function}')"


def handler(target: str) -> Handler:
    """The command function ``target`` (``"starter.cli.reading:cmd_status"``), imported when it runs."""
    return Handler(target)


async def needs_command(args: argparse.Namespace) -> int:  # argparse requires a subcommand first
    raise CliError("give a command (see --help)")


# --- option types -----------------------------------------------------------------------------------------


LONDON = ZoneInfo("Europe/London")
"""Dates and times are London's (as the working-day calendar's), without importing the calendar."""


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
KEY_MAX = 64
CATEGORY_MAX = 300
"""A category's text (protocols' categories are sentences of under 150 characters)."""
ID_MAX = 160
ESCALATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*-\d{4,}$")
LIST_SOURCES = ("auto", "records", "visibility")
"""Where ``escalate list`` reads (``starter.cli.reading.list_source``)."""


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


def bounded_text(limit: int | Callable[[], int], what: str) -> Callable[[str], str]:
    """An option type: text of at most ``limit`` characters once trimmed; the message says what fits.
    ``limit`` may be a function, asked when the option is given (a schema's limit, imported then)."""

    def parse(text: str) -> str:
        length = len(text.strip())
        most = limit if isinstance(limit, int) else limit()
        if length > most:
            raise argparse.ArgumentTypeError(
                f"{length:,} characters is too long: at most {most:,} ({what}); shorten it"
            )
        return text

    return parse


def _text_max() -> int:
    """Free text (answers, reasons, notes): the same limit as the actions' ``Text`` fields."""
    from schemas.bounds import TEXT_MAX

    return TEXT_MAX


free_text = bounded_text(_text_max, "put long documents in the child's record and refer to them")
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


def pattern_id(pattern: Callable[[], str], example: str, what: str) -> Callable[[str], str]:
    """An option type: an id matching ``pattern()`` (a schema's pattern, imported when it is given)."""

    def parse(text: str) -> str:
        if len(text) > ID_MAX or not re.match(pattern(), text):
            raise argparse.ArgumentTypeError(
                f"{shown(text)} is not {what} id: it looks like {example} (printed when it was started)"
            )
        return text

    return parse
