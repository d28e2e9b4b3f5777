"""The stall rules, pure (microseconds): a stage whose notice cannot go out has no deadline running, shows
``stalled: <why>`` in its view and search attributes, tells the officer and the QA roles once, and its
clock starts when the notice goes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.effects import Notify, PlanSchedule, Undelivered
from schemas.escalation import EventKind, Flag
from schemas.protocol import RAISING_OFFICER
from tests.driver import Driver, make_raise
from workflows import rules
from workflows import search_attributes as indexed

MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)
WHY = "nobody holds social_worker for team-a"


def stage_notice(d: Driver) -> Notify:
    return d.notices(EventKind.SENT_TO_STAGE)[-1]


def stalled_driver() -> Driver:
    d = Driver(make_raise("gloucestershire").model_copy(update={"team": "team-a"}), MONDAY)
    notice = stage_notice(d)
    failed = Undelivered(seq=notice.entry_seq, to=notice.to, reason=WHY, role_unfilled=True)
    d.effects.clear()
    d._absorb(rules.on_delivery(d.state, [notice], [failed], d.now))
    return d


def test_a_stage_whose_notice_cannot_go_out_stalls_with_no_deadline_running() -> None:
    d = stalled_driver()
    view = d.view
    assert view.stalled == f"stalled: {WHY}" and Flag.STALLED in view.flags
    assert view.deadline is None and view.working_days_left is None
    assert d.state.stall is not None and d.state.stall.clock_held
    assert rules.next_wakeup(d.state) == d.state.stall.retry_at == MONDAY + timedelta(minutes=1)
    flags = indexed.current(d.state)[indexed.FLAGS.name]
    assert flags == ["stalled", f"stalled: {WHY}"]
    told = d.notices(EventKind.STALLED)
    assert [n.to for n in told] == [[RAISING_OFFICER], ["head_of_independent_reviewing_service"]]
    # The stall's own notices failing too adds no event (no loop).
    failed = [Undelivered(seq=n.entry_seq, to=n.to, reason="the mail server cannot take mail") for n in told]
    before = len(d.state.timeline)
    d._absorb(rules.on_delivery(d.state, told, failed, d.now))
    assert len(d.state.timeline) == before and d.state.stall is not None
    assert len(d.state.stall.notices) == 3 and d.state.stall.attempts == 2


def test_redelivery_sends_the_stage_afresh_with_its_time_from_then() -> None:
    d = stalled_driver()
    d.now = later = MONDAY + timedelta(days=3)  # Thursday
    d.effects.clear()
    d._absorb(rules.redeliver(d.state, later))
    plans = [e for e in d.effects if isinstance(e, PlanSchedule)]
    assert [p.purpose for p in plans] == ["stage"] and plans[0].request.received_at == later
    sent = d.state.timeline[-1]
    assert sent.kind is EventKind.SENT_TO_STAGE and sent.at == later and "runs from now" in sent.text
    assert d.view.deadline_date is not None and d.view.deadline_date.isoformat() == "2026-03-12"
    notices = [e for e in d.effects if isinstance(e, Notify)]
    d.effects.clear()
    d._absorb(rules.on_delivery(d.state, notices, [], later))
    assert d.state.stall is None and Flag.STALLED not in d.state.flags
    assert d.state.timeline[-1].kind is EventKind.NOTICES_DELIVERED
