"""The boundary every action crosses: decoding, field bounds and dates relative to today (pure, fast)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from schemas.bounds import TEXT_MAX
from schemas.escalation import (
    Actor,
    AddNote,
    Concern,
    EventKind,
    RaiseConcern,
    Respond,
    TimelineEntry,
)
from tests.driver import Driver, make_raise
from workflows import boundary, rules

OFFICER = {"id": "glo-iro-a", "role": "iro"}
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _bytes(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, "not null"),
        ([1, 2], "not a list"),
        ("respond", "not text"),
        ({}, "actor: is required"),
        ({"actor": "glo-iro-a", "answer": "x"}, "actor: Input should be"),
        ({"actor": OFFICER}, "answer: is required"),
        ({"actor": OFFICER, "answer": "ok", "extra": 1}, "extra: is not a field of this action"),
        ({"actor": OFFICER, "answer": "a\x00b"}, "answer: contains the control character U+0000"),
        ({"actor": OFFICER, "answer": "x" * (TEXT_MAX + 1)}, "answer: String should have at most 20000"),
        (
            {"actor": {"id": "../../etc/passwd", "role": "iro"}, "answer": "x"},
            "actor.id: String should match",
        ),
        ({"actor": {"id": "a", "role": "Super User"}, "answer": "x"}, "actor.role: must be a key"),
        (
            {"actor": OFFICER, "answer": "x", "action_plan_due": "9999-12-31"},
            "action_plan_due: must be between",
        ),
    ],
)
def test_a_bad_payload_is_refused_naming_the_field(payload: object, expected: str) -> None:
    for data in (payload, _bytes(payload)):
        with pytest.raises(boundary.OutOfBounds) as refused:
            boundary.decode_action("respond", data)
        assert expected in str(refused.value), str(refused.value)


def test_unreadable_json_and_unknown_actions_are_refused() -> None:
    with pytest.raises(boundary.OutOfBounds, match="not readable JSON"):
        boundary.decode_action("respond", b"{not json")
    with pytest.raises(boundary.OutOfBounds, match="unknown action 'delete_everything'"):
        boundary.decode_action("delete_everything", {"actor": OFFICER})


def test_the_action_name_decides_the_model() -> None:
    with pytest.raises(boundary.OutOfBounds, match="kind: Input should be 'respond'"):
        boundary.decode_action("respond", {"kind": "withdraw", "actor": OFFICER, "reason": "x"})
    action = boundary.decode_action("add_note", _bytes({"actor": OFFICER, "text": "  A note.  "}))
    assert isinstance(action, AddNote) and action.text == "A note."


def test_legacy_decoding_accepts_what_was_accepted_before_the_bounds() -> None:
    """Replaying old histories must decode their payloads exactly as the looser models did."""
    old = _bytes(
        {"actor": {"id": "a", "role": "Super User"}, "answer": "a\x00b", "action_plan_due": "9999-12-31"}
    )
    action = boundary.decode_action("respond", old, legacy=True)
    assert isinstance(action, Respond) and action.answer == "a\x00b"
    # What the old models refused is still refused (a role over 64 characters).
    with pytest.raises(boundary.OutOfBounds):
        boundary.decode_action(
            "respond", _bytes({"actor": {"id": "a", "role": "r" * 65}, "answer": "x"}), legacy=True
        )


def test_dates_more_than_a_year_ahead_are_refused_with_the_latest_allowed() -> None:
    d = Driver(make_raise("gloucestershire"), MONDAY)
    today = rules.london_today(d.now)
    ok = Respond(
        actor=Actor(**OFFICER), answer="x", action_plan="Plan.", action_plan_due=today + timedelta(days=300)
    )
    boundary.check_action(d.state, ok, d.now)
    far = ok.model_copy(update={"action_plan_due": today + timedelta(days=400)})
    with pytest.raises(
        boundary.OutOfBounds, match=r"action_plan_due: .* more than a year ahead; give a date"
    ):
        boundary.check_action(d.state, far, d.now)


def test_a_full_record_refuses_more_notes_but_not_answers() -> None:
    d = Driver(make_raise("gloucestershire"), MONDAY)
    notes = [
        TimelineEntry(seq=i, at=d.now, kind=EventKind.NOTE, text="n")
        for i in range(1, boundary.NOTES_MAX + 1)
    ]
    full = d.state.model_copy(update={"timeline": [*d.state.timeline, *notes]})
    with pytest.raises(boundary.OutOfBounds, match="already holds 300 notes"):
        boundary.check_action(full, AddNote(actor=Actor(**OFFICER), text="One more."), d.now)
    boundary.check_action(full, Respond(actor=Actor(**OFFICER), answer="An answer still goes."), d.now)


def test_start_inputs_are_bounded_too() -> None:
    good = make_raise("gloucestershire")
    with pytest.raises(ValueError, match="team"):
        RaiseConcern.model_validate({**good.model_dump(), "team": "t" * 300})
    with pytest.raises(ValueError, match="category"):
        RaiseConcern.model_validate({**good.model_dump(), "category": "c\x00"})
    assert RaiseConcern.model_validate(good.model_dump()) == good


def test_meeting_dates_are_bounded_in_the_past() -> None:
    d = Driver(make_raise("gloucestershire"), MONDAY)
    action = boundary.decode_action(
        "record_meeting", {"actor": OFFICER, "held_on": "2001-01-01", "attendees": ["A"], "outcome": "Met."}
    )
    with pytest.raises(boundary.OutOfBounds, match="held_on: 1 January 2001 is more than a year ago"):
        boundary.check_action(d.state, action, d.now)
    assert date(2001, 1, 1) < rules.london_today(d.now)


def test_a_child_reference_must_be_a_case_number_never_a_name() -> None:
    from schemas.protocol import ChildRefFormat
    from starter.escalations import prepare

    fields: dict[str, Any] = {
        "authority": "wigan",
        "track": "iro",
        "category": "Quality of practice",
        "sequence": 1,
        "officer": Actor(id="wig-iro-a", role="iro"),
        "team": "team-a",
        "concern": Concern(summary="S.", impact_on_child="I.", requested_action="R."),
    }
    with pytest.raises(rules.Refused, match=r"'JaydenSmith2016' is not a case number .* never a name"):
        prepare(child_ref="JaydenSmith2016", **fields)
    assert prepare(child_ref="C4F2A9", **fields).escalation_id == "wigan-C4F2A9-0001"
    # An authority may set its case system's own format in its protocol file.
    digits = ChildRefFormat(pattern=r"\d{6,8}", example="1234567")
    digits.check("7654321")
    with pytest.raises(ValueError, match="like 1234567"):
        digits.check("C4F2A9")
    with pytest.raises(ValueError, match="does not match"):
        ChildRefFormat(pattern=r"\d{6,8}", example="C4F2A9")


@pytest.mark.parametrize(
    ("officer", "team", "expected"),
    [
        (
            Actor(id="wig-nobody", role="iro"),
            None,
            "officer 'wig-nobody' is not in Wigan Metropolitan Borough Council's directory: check the id",
        ),
        (
            Actor(id="wig-cp-chair-a", role="iro"),
            None,
            "does not hold the role of Independent Reviewing Officer",
        ),
        (Actor(id="wig-iro-a", role="iro"), "t" * 40, "its teams: team-a, team-b"),
    ],
)
def test_the_officer_and_team_must_be_in_the_directory(
    officer: Actor, team: str | None, expected: str
) -> None:
    from starter.escalations import prepare

    fields: dict[str, Any] = {
        "authority": "wigan",
        "track": "iro",
        "category": "Quality of practice",
        "sequence": 1,
        "child_ref": "C4F2A9",
        "concern": Concern(summary="S.", impact_on_child="I.", requested_action="R."),
    }
    with pytest.raises(rules.Refused) as refused:
        prepare(officer=officer, team=team, **fields)
    assert expected in refused.value.reason
    assert prepare(officer=Actor(id="wig-iro-a", role="iro"), team="team-a", **fields).team == "team-a"
