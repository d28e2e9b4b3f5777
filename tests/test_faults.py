"""Escalations keep every event and mail through faults on real components (``tests/faults``).

The end-to-end test drives six escalations (five authorities, both Wigan tracks) through ten actions each
while the worker is killed (SIGKILL) three times, the Temporal server is stopped with SIGTERM once and
SIGKILL once and started again on its database file, and PostgreSQL and the SMTP server are each stopped a
while. Then: no event lost or recorded twice, every mail delivered once (copies allowed only where the
documented crash window explains them), nothing stuck, every history replays. The longer soak is
``benchmarks/fault_soak.py``.

The tests of the mail check itself show exactly which copies it allows.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from schemas.escalation import EscalationView, EventKind, TimelineEntry
from tests.faults.checks import Fault, Findings, _check_events, _check_mail
from tests.faults.components import ComponentUnavailable, TimedDelivery
from tests.faults.scenario import Config, run_scenario
from tests.temporal_servers import require_or_skip

PLAN = [
    "worker_kill",
    "temporal_term",
    "postgres_stop",
    "worker_kill",
    "smtp_stop",
    "temporal_kill",
    "worker_kill",
]
SEED = 20261125


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_escalations_lose_nothing_and_repeat_nothing_through_faults(tmp_path: Path) -> None:
    config = Config(escalations=6, actions=10, seed=SEED, plan=PLAN, folder=tmp_path)
    try:
        report = await run_scenario(config)
    except ComponentUnavailable as exc:
        require_or_skip(str(exc))
    print(report.summary())
    assert report.faults == Counter(PLAN), report.summary()
    assert report.workers_started == 1 + PLAN.count("worker_kill"), report.summary()
    # The drive really happened: every escalation took its actions and was closed.
    assert report.applied >= config.escalations * (config.actions // 2), report.summary()
    assert report.findings.events > report.applied, report.summary()
    assert report.findings.mails_delivered > 0, report.summary()
    assert not report.violations(), report.summary()


# --- the mail check: which copies the crash window explains -------------------------------------------


def _found(
    deliveries: list[tuple[str, float]], logged: dict[str, list[float]], faults: list[Fault]
) -> Findings:
    found = Findings()
    _check_mail(found, [TimedDelivery(m, at, "e") for m, at in deliveries], logged, faults)
    return found


@pytest.mark.parametrize("kind", ["worker_kill", "postgres_stop", "smtp_stop"])
def test_a_copy_after_a_fault_in_the_crash_window_is_explained(kind: str) -> None:
    found = _found(
        [("<a>", 10.0), ("<a>", 20.0), ("<b>", 11.0)],
        {"<a>": [20.5], "<b>": [11.1]},
        [Fault(kind, 12.0, 15.0)],
    )
    assert found.duplicates_explained == [f"<a> delivered 2 times, after {kind}"]
    assert not found.violations()


def test_a_copy_without_a_fault_between_the_deliveries_is_a_violation() -> None:
    found = _found([("<a>", 10.0), ("<a>", 20.0)], {"<a>": [20.5]}, [Fault("worker_kill", 21.0, 21.0)])
    assert len(found.duplicates_unexplained) == 1 and not found.duplicates_explained


def test_a_temporal_restart_does_not_explain_a_copy() -> None:
    found = _found([("<a>", 10.0), ("<a>", 20.0)], {"<a>": [20.5]}, [Fault("temporal_kill", 12.0, 15.0)])
    assert len(found.duplicates_unexplained) == 1


def test_a_copy_sent_after_the_first_was_logged_is_a_violation() -> None:
    found = _found([("<a>", 10.0), ("<a>", 20.0)], {"<a>": [10.1]}, [Fault("worker_kill", 12.0, 12.0)])
    assert "logged before its last delivery" in found.duplicates_unexplained[0]


def test_mail_logged_but_not_delivered_or_delivered_but_not_logged_is_a_violation() -> None:
    found = _found([("<a>", 10.0)], {"<b>": [10.0]}, [])
    assert found.lost_mails == ["<b>"] and found.unlogged_mails == ["<a>"]


def test_mail_delivered_but_not_logged_as_a_fault_cut_it_off_is_explained() -> None:
    """The SMTP server took it as the connection broke (or the worker died) before its row committed, and
    the escalation ended before the held notice was tried again: once, unlogged, at the fault."""
    cut = _found([("<a>", 10.0)], {}, [Fault("smtp_stop", 11.0, 14.0)])
    assert not cut.unlogged_mails and cut.unlogged_explained == ["<a> delivered, never logged, at smtp_stop"]
    far = _found([("<a>", 10.0)], {}, [Fault("smtp_stop", 30.0, 34.0), Fault("temporal_kill", 9.0, 12.0)])
    assert far.unlogged_mails == ["<a>"] and not far.unlogged_explained, "no window fault near it"


# --- the event check ----------------------------------------------------------------------------------


def _view(seqs: list[int]) -> EscalationView:
    at = datetime(2026, 11, 25, tzinfo=UTC)
    timeline = [TimelineEntry(seq=s, at=at, kind=EventKind.NOTE) for s in seqs]
    # Only the fields the check reads.
    return cast(EscalationView, SimpleNamespace(escalation_id="wigan-F1-0001", timeline=timeline))


def test_events_lost_twice_or_extra_are_each_found() -> None:
    found = Findings()
    _check_events(found, _view([1, 2, 3]), [1, 3, 3, 4])
    assert found.lost_events == ["wigan-F1-0001 seq 2"]
    assert found.duplicate_events == ["wigan-F1-0001 seq 3 x2"]
    assert found.extra_events == ["wigan-F1-0001 seq 4"]
    clean = Findings()
    _check_events(clean, _view([1, 2]), [2, 1])
    assert not clean.violations()
