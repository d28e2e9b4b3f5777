"""Bounded input types: every field a person can fill has a length, a character set and, for dates, a range.

So nothing a person or a mail client sends can grow an escalation's history or state without bound. Each
bound added since escalations first ran is skipped when decoding with the ``LEGACY`` context, so histories
recorded before replay exactly as they ran.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, StringConstraints, ValidationInfo

TEXT_MAX = 20_000
"""Longest free text (an answer, an outcome, a note): about eight pages."""
SHORT_TEXT_MAX = 200
"""Longest short text (a category, a meeting attendee)."""
LIST_MAX = 30
"""Most items in a list a person gives (meeting attendees, roles consulted)."""
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2999, 12, 31)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

LEGACY = "legacy"
"""Validation context key: set (True) to decode payloads recorded before these bounds existed.

Histories recorded earlier hold updates and signals that were accepted under looser models; replaying them
must decode them exactly as then. New input is always checked in full (the default).
"""

_T = TypeVar("_T")


def bound(check: Callable[[_T], None]) -> AfterValidator:
    """A check that applies to new input, and is skipped when decoding a legacy payload."""

    def validate(value: _T, info: ValidationInfo) -> _T:
        if not (info.context or {}).get(LEGACY):
            check(value)
        return value

    return AfterValidator(validate)


def _no_control_characters(text: str) -> None:
    found = _CONTROL.search(text)
    if found:
        raise ValueError(
            f"contains the control character U+{ord(found.group()):04X} at position {found.start() + 1}: "
            "remove it (tabs and line breaks are fine)"
        )


def at_most(limit: int, what: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if len(value) > limit:
            raise ValueError(f"has {len(value):,} {what}; at most {limit:,} are allowed")

    return check


def _is_key(text: str) -> None:
    if not _KEY.match(text):
        raise ValueError(
            "must be a key from the protocol: lower-case letters, digits, '_' and '-', at most 64 characters"
        )


def _within_supported_years(day: date) -> None:
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE.year} and {LATEST_DATE.year}")


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TEXT_MAX),
    bound(_no_control_characters),
]
"""Free text that must be given: 1 to 20,000 characters, no control characters but tabs and line breaks."""
OptionalText = Annotated[str, bound(at_most(TEXT_MAX, "characters")), bound(_no_control_characters)]
"""Free text that may be empty."""


def _given(text: str) -> None:
    if not text.strip():
        raise ValueError("must not be empty")


ShortText = Annotated[
    str, bound(_given), bound(at_most(SHORT_TEXT_MAX, "characters")), bound(_no_control_characters)
]
"""A short text that must be given: at most 200 characters, no control characters."""
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""An opaque reference: letters, digits, '.', '_' and '-'; never a name."""
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _is_ref(text: str) -> None:
    if not _REF.match(text):
        raise ValueError(
            "must be an opaque reference: letters, digits, '.', '_' and '-', at most 64 characters, "
            "starting with a letter or digit"
        )


TeamRef = Annotated[str, bound(_is_ref)]
"""A team's reference in the directory (an opaque reference, like ``team-a``)."""
Key = Annotated[str, bound(_is_key)]
RoleKey = Annotated[str, StringConstraints(min_length=1, max_length=64), bound(_is_key)]
"""A role's key, as an actor gives it (it was always 1 to 64 characters)."""
"""A key from the protocol (a role, stage, track or service area): lower case, digits, '_' and '-'."""
BoundedDate = Annotated[date, bound(_within_supported_years)]
"""A calendar date between 2000 and 2999 (a guard against overflow); the boundary narrows it to a year
from today."""
