"""The benchmarks run from a fresh checkout: each at a tiny size, end to end (no timing is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(*args: str, timeout: float) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ESCALATION_PAYLOAD_KEYS"}  # the script makes its own
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_lifecycle_benchmark_runs() -> None:
    out = _run(
        "benchmarks/lifecycle.py",
        "--server",
        "memory",
        "--concurrency",
        "2",
        "--lifecycles",
        "2",
        "--histories",
        "2",
        timeout=600,
    )
    row = next(line for line in out.splitlines() if line.startswith("memory"))
    assert "product" in row and "bare" in row and "ratio" in row
    # The counts come from real histories: a standard lifecycle is longer than the bare one.
    assert "events" in row and "mails caught" in out


def test_scale_benchmark_runs() -> None:
    out = _run(
        "benchmarks/scale.py",
        "--escalations",
        "3",
        "--wave",
        "2",
        "--drain-timeout",
        "60",
        "--wave-lead",
        "8",
        timeout=900,
    )
    assert "started 3 escalations" in out
    assert "`escalate list` from the record store (3 rows, median of 3)" in out
    assert "`escalate list` from the visibility (3 rows, median of 3)" in out
    assert "wave: all escalated automatically" in out
    assert "wave: in 2 of its histories, timeouts: " in out
