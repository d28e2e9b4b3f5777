"""Reporting periods: a month (``2026-07``), a quarter (``2026-Q3``) or a year (``2026``), in London time.

A period runs from the London midnight that starts its first day to the one that ends its last day, so an
event at 23:30 on 30 September (BST) belongs to September, whatever UTC says. Quarters are calendar
quarters (Q1 January to March).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from activities.working_days import local_time

_PATTERN = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<quarter>[Qq][1-4])|(?P<month>0[1-9]|1[0-2])))?$")


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class BadPeriod(ValueError):
    """The period is not one of the forms a report takes."""


class Period(BaseModel):
    """A calendar month, quarter or year; ``first`` and ``last`` are its first and last days."""

    model_config = ConfigDict(frozen=True)

    kind: PeriodKind
    first: date
    last: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026``, ``2026-Q3`` or ``2026-07``; ``BadPeriod`` names the forms otherwise."""
        found = _PATTERN.match(text.strip())
        if not found:
            raise BadPeriod(
                f"period {text!r} is not a month, quarter or year: give it as 2026-07, 2026-Q3 or 2026"
            )
        year = int(found["year"])
        if year < 2000 or year > 2100:
            raise BadPeriod(f"period {text!r}: the year must be between 2000 and 2100")
        if found["quarter"]:
            q = int(found["quarter"][1])
            return cls.of(PeriodKind.QUARTER, date(year, 3 * q - 2, 1))
        if found["month"]:
            return cls.of(PeriodKind.MONTH, date(year, int(found["month"]), 1))
        return cls.of(PeriodKind.YEAR, date(year, 1, 1))

    @classmethod
    def of(cls, kind: PeriodKind, first: date) -> Period:
        months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind]
        index = first.year * 12 + first.month - 1 + months
        after = date(index // 12, index % 12 + 1, 1)
        return cls(kind=kind, first=first, last=after - timedelta(days=1))

    @property
    def label(self) -> str:
        """``July 2026``, ``2026 Q3`` (July to September), ``2026``."""
        if self.kind is PeriodKind.MONTH:
            return f"{self.first:%B %Y}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.first.year} Q{(self.first.month - 1) // 3 + 1}"
        return str(self.first.year)

    @property
    def key(self) -> str:
        """The form ``parse`` takes back: ``2026-07``, ``2026-Q3``, ``2026``."""
        if self.kind is PeriodKind.MONTH:
            return f"{self.first:%Y-%m}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        return str(self.first.year)

    @property
    def start(self) -> datetime:
        """The UTC instant the period starts (London midnight)."""
        return local_time(self.first, 0)

    @property
    def end(self) -> datetime:
        """The UTC instant the period ends (exclusive: London midnight after its last day)."""
        return local_time(self.last + timedelta(days=1), 0)

    def previous(self, count: int) -> list[Period]:
        """The ``count`` periods of the same kind before this one, oldest first."""
        found: list[Period] = []
        first = self.first
        for _ in range(count):
            last = first - timedelta(days=1)
            months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[self.kind]
            index = last.year * 12 + last.month - 1 - (months - 1)
            first = date(index // 12, index % 12 + 1, 1)
            found.append(Period.of(self.kind, first))
        return list(reversed(found))
