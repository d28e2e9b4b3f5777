"""The Temporal UI's summaries and details, as pure functions of the state (microseconds, every track)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.effects import EffectItem
from schemas.escalation import Concern
from tests.driver import Driver, all_tracks, make_raise
from workflows import rules, summaries

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONCERN = Concern(summary="Zebra drift.", impact_on_child="Quokka waits.", requested_action="Narwhal review.")
PRIVATE = ("Zebra", "Quokka", "Narwhal", "officer-1", "manager-1", "C0001")


@pytest.mark.parametrize(("authority", "track"), all_tracks())
def test_every_timer_says_what_it_is_for_and_nothing_names_the_child_or_the_concern(
    authority: str, track: str
) -> None:
    raise_ = make_raise(authority, track).model_copy(update={"concern": CONCERN})
    d = Driver(raise_, MONDAY)
    seen: list[str] = [summaries.static_summary(raise_), summaries.static_details(raise_)]
    while not d.state.status.is_closed and d.now < MONDAY + timedelta(days=200):
        wake = rules.next_wakeup(d.state)
        details = summaries.current_details(d.state, d.now)
        seen.append(details)
        if wake is None:
            break
        timer = summaries.timer_summary(d.state, wake)
        assert timer != "next deadline", f"an unlabelled wakeup at {wake} in {d.state.status}"
        seen.append(timer)
        d.advance_to(wake)
    items = [EffectItem(record=None)]  # an empty batch still says what it is
    assert summaries.batch_summary(d.state.protocol, items) == "records and notices"
    for text in seen:
        assert text and len(text) <= 2_000
        for private in PRIVATE:
            assert private not in text, f"{private!r} in {text!r}"


def test_the_details_say_who_holds_it_until_when_and_what_is_left() -> None:
    d = Driver(make_raise("wigan", "iro"), MONDAY)
    details = summaries.current_details(d.state, d.now)
    left = rules.view(d.state, d.now).working_days_left
    assert details.startswith("Awaiting Team Manager (stage 1 of "), details
    assert f"; {left} working days left on Mon 2 Mar 2026" in details.splitlines()[0], details
    stage = summaries.static_summary(make_raise("wigan", "iro", start_at_stage="stage-2"))
    assert "starts at stage 2 of " in stage, stage


def test_a_category_outside_the_protocol_is_not_repeated() -> None:
    raise_ = make_raise("wigan", "iro").model_copy(update={"category": "Jane Doe's case"})
    assert "Jane" not in summaries.static_summary(raise_)
    assert "an unknown category" in summaries.static_details(raise_)
