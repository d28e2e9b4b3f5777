"""Command-line value types shared by the benchmark scripts: numbers within a range, named in the message."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``)."""
    return _number_in(int, low, high, "a whole number")


def seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from ``low`` to ``high``."""
    return _number_in(float, low, high, "a number of seconds")


def minutes(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of minutes from ``low`` to ``high``."""
    return _number_in(float, low, high, "a number of minutes")


N = TypeVar("N", int, float)


def _number_in(kind: Callable[[str], N], low: N, high: N | None, what: str) -> Callable[[str], N]:
    span = f"from {low} to {high}" if high is not None else f"of {low} or more"

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {what} {span}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r}: give {what} {span}")
        return value

    return parse
