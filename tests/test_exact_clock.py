"""The exact clock: a ladder whose stages time out one after another loses no working day between them.

A stage entered because the previous stage's deadline passed (at the London midnight ending a working day)
has that instant's working day as its first day. So on a protocol whose formal stages add up to the total
limit (Gloucestershire: 4 x 5 = 20), a concern nobody answers reaches the end of its last formal stage
exactly when the total limit ends, and is never flagged breached before that stage's deadline has passed.
Driven by the pure rules with the real working-day calendar, across Christmas, Easter and closure days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.working_days import WorkingDayCalendar, end_of_day, london_date, plan_schedule
from protocols import available_protocols, load_protocol
from schemas.effects import PlanSchedule
from schemas.escalation import Bypass, EventKind, Flag, Status
from schemas.protocol import Protocol, Track
from schemas.schedule import ScheduleRequest
from tests.driver import Driver, make_raise
from workflows import rules


def _exact_tracks() -> list[tuple[str, str]]:
    """Tracks whose formal stages are all timed, ungated, and add up to the protocol's total limit."""
    found = []
    for key in available_protocols():
        protocol = load_protocol(key)
        for track in protocol.tracks:
            formal = [s for s in track.stages if s.formal]
            if not formal or any(s.response_working_days is None or s.entry_gate for s in formal):
                continue
            if sum(s.response_working_days or 0 for s in formal) == protocol.total_formal_working_days:
                found.append((key, track.key))
    return found


EXACT_TRACKS = _exact_tracks()

CLOSURE_DAYS = [date(2026, 12, 24), date(2026, 12, 31), date(2027, 3, 25), date(2027, 4, 1)]
"""Closure days some authorities keep (Christmas Eve, New Year's Eve, the Thursday before Easter...),
inside the windows the tests raise in."""

WINDOWS = [
    (datetime(2026, 11, 16, tzinfo=UTC), datetime(2027, 1, 8, tzinfo=UTC)),  # up to and over Christmas
    (datetime(2027, 2, 15, tzinfo=UTC), datetime(2027, 4, 2, tzinfo=UTC)),  # up to and over Easter 2027
]


def test_the_invariant_has_protocols_to_check() -> None:
    assert ("gloucestershire", "iro-cp") in EXACT_TRACKS
    assert ("dudley", "iro-cp") in EXACT_TRACKS


def _instants() -> st.SearchStrategy[datetime]:
    return st.sampled_from(WINDOWS).flatmap(
        lambda w: st.integers(0, int((w[1] - w[0]).total_seconds()) // 60).map(
            lambda minutes: w[0] + timedelta(minutes=minutes)
        )
    )


def _protocol(authority: str, closures: bool) -> Protocol:
    protocol = load_protocol(authority)
    return protocol.model_copy(update={"closure_days": CLOSURE_DAYS}) if closures else protocol


def _unanswered(
    authority: str, track: Track, protocol: Protocol, raised: datetime, at_formal: bool
) -> Driver:
    first_formal = next(s for s in track.stages if s.formal)
    start = first_formal.key if at_formal and first_formal is not track.stages[0] else None
    raise_ = make_raise(
        authority,
        track.key,
        protocol=protocol,
        start_at_stage=start,
        start_bypass=None
        if start is None
        else Bypass(actor=make_raise(authority).officer, to_stage=start, reason="Urgent."),
    )
    d = Driver(raise_, raised)
    d.run_out_the_clock(limit=timedelta(days=200))
    return d


def check_exact_ladder(d: Driver, track: Track, calendar: WorkingDayCalendar) -> None:
    """The invariant, with the stages' schedules as the escalation placed them."""
    s = d.state
    assert s.status is Status.EXHAUSTED, f"the ladder did not reach its top: {s.status.value}"
    total = s.total_schedule
    last = s.stage_schedule
    assert total is not None and last is not None
    assert rules.current_stage(s).key == track.stages[-1].key
    assert last.due_at == total.due_at, (
        f"the last formal stage ends on {last.due_date} but the total limit on {total.due_date} "
        f"(raised {s.raised_at.isoformat()})"
    )
    breaches = [e for e in s.timeline if e.kind is EventKind.BREACHED]
    assert Flag.BREACHED in s.flags and len(breaches) == 1
    assert breaches[0].at >= last.due_at, "flagged breached before the last stage's deadline passed"
    # Every stage entered on a timed-out deadline starts on that instant's working day: no day between.
    passed = [e for e in s.timeline if e.kind is EventKind.DEADLINE_PASSED]
    sent = [e for e in s.timeline if e.kind is EventKind.SENT_TO_STAGE]
    assert len(sent) == len(passed), "every stage sent ran out without an answer"
    for deadline, entry in zip(passed, sent[1:], strict=False):
        days = entry.data["working_days"]
        due = date.fromisoformat(entry.data["due_date"])
        ended = london_date(deadline.at - timedelta(microseconds=1))  # the day whose end was the deadline
        assert due == calendar.add_working_days(ended, days), (
            f"{entry.stage}: {days} working days after {ended} end on "
            f"{calendar.add_working_days(ended, days)}, not {due}"
        )


@pytest.mark.parametrize(("authority", "track_key"), EXACT_TRACKS)
@pytest.mark.parametrize("closures", [False, True], ids=["bank-holidays", "closure-days"])
@pytest.mark.parametrize("at_formal", [False, True], ids=["from-informal", "raised-formal"])
@settings(derandomize=True, max_examples=60, deadline=None)
@given(raised=_instants())
def test_an_unanswered_concern_ends_its_last_stage_with_the_total_limit(
    authority: str, track_key: str, closures: bool, at_formal: bool, raised: datetime
) -> None:
    protocol = _protocol(authority, closures)
    track = protocol.track(track_key)
    d = _unanswered(authority, track, protocol, raised, at_formal)
    check_exact_ladder(d, track, WorkingDayCalendar(protocol.closure_days))


def test_gloucestershire_over_christmas_2026_to_the_day() -> None:
    """Raised on Monday 7 December 2026: informal to 14 December, then Formal 1-4 of 5 working days each
    over Christmas (25, 28 December and 1 January are bank holidays) end with the total limit."""
    protocol = load_protocol("gloucestershire")
    track = protocol.tracks[0]
    d = _unanswered("gloucestershire", track, protocol, datetime(2026, 12, 7, 10, tzinfo=UTC), False)
    due = [
        date.fromisoformat(e.data["due_date"]) for e in d.state.timeline if e.kind is EventKind.SENT_TO_STAGE
    ]
    assert due == [
        date(2026, 12, 14),  # informal: Tue 8 .. Mon 14
        date(2026, 12, 21),  # formal 1: Tue 15 .. Mon 21
        date(2026, 12, 30),  # formal 2: Tue 22, Wed 23, Thu 24, Tue 29, Wed 30 (25 and 28 are bank holidays)
        date(2027, 1, 7),  # formal 3: Thu 31, Mon 4, Tue 5, Wed 6, Thu 7 (1 January is a bank holiday)
        date(2027, 1, 14),  # formal 4: Fri 8 .. Thu 14
    ]
    assert d.state.total_schedule is not None and d.state.total_schedule.due_date == date(2027, 1, 14)


def test_the_calendar_counts_the_day_a_stage_begins_at_midnight() -> None:
    calendar = WorkingDayCalendar()
    friday = date(2027, 3, 19)
    # The deadline at the end of Friday 19 March 2027 (midnight starting Saturday): Monday is day 1.
    schedule = plan_schedule(
        ScheduleRequest(received_at=end_of_day(friday), working_days=5, receipt_day_counts=True)
    )
    assert schedule.counts_from == friday
    # Easter 2027: Good Friday 26 March and Easter Monday 29 March are bank holidays.
    assert schedule.due_date == date(2027, 3, 30) == calendar.add_working_days(friday, 5)
    assert schedule.working_days_left(schedule.received_at) == 5
    # Ordinary receipt at the same instant counts Monday as day 0.
    ordinary = plan_schedule(ScheduleRequest(received_at=end_of_day(friday), working_days=5))
    assert ordinary.due_date == date(2027, 3, 31)
    with pytest.raises(ValueError, match="at least 1 working day"):
        plan_schedule(
            ScheduleRequest(received_at=end_of_day(friday), working_days=0, receipt_day_counts=True)
        )


def test_the_shell_can_keep_the_old_clock_for_escalations_started_before_it() -> None:
    """``on_timer(..., exact_clock=False)`` is how escalations started before the fix go on (replay)."""
    protocol = load_protocol("gloucestershire")
    d = Driver(make_raise("gloucestershire", protocol=protocol), datetime(2026, 12, 7, 10, tzinfo=UTC))
    assert d.state.stage_schedule is not None
    wake = d.state.stage_schedule.due_at  # the end of Monday 14 December 2026
    d.advance_to(wake - timedelta(microseconds=1))  # the reminder fires; the deadline has not passed
    old = rules.on_timer(d.state, wake, exact_clock=False)
    new = rules.on_timer(d.state, wake, exact_clock=True)
    old_request = next(e.request for e in old.effects if isinstance(e, PlanSchedule) and e.purpose == "stage")
    new_request = next(e.request for e in new.effects if isinstance(e, PlanSchedule) and e.purpose == "stage")
    assert plan_schedule(old_request).due_date == date(2026, 12, 22)
    assert plan_schedule(new_request).due_date == date(2026, 12, 21)
