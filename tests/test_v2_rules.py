"""Protocol language v2, in the pure rules (microseconds a step): per-track rules, the child's status,
entry points, a CAFCASS referral alongside the local process, and schema versions 1 and 2."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from protocols import load_protocol
from schemas.effects import PlanSchedule
from schemas.escalation import (
    Actor,
    Bypass,
    Escalate,
    EventKind,
    Flag,
    RaiseConcern,
    ReferToCafcass,
    RequestExtension,
    Status,
)
from schemas.protocol import Protocol
from starter.cli.protocol_v2 import upgraded_text
from tests.driver import Driver, make_raise
from workflows import rules

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
CPC = Actor(id="officer-1", role="cp_coordinator")
IRO = Actor(id="officer-1", role="iro")


def fwi_raise(track: str = "cp", **changes: Any) -> RaiseConcern:
    officer = CPC if track == "cp" else IRO
    return make_raise("waltham-forest-fwi", track, officer=officer).model_copy(update=changes)


def changed(protocol: Protocol, track: str | None = None, **fields: Any) -> Protocol:
    """``protocol`` with ``fields`` set at the top level, or on ``track``; validated as a file would be."""
    data = protocol.model_dump(mode="json")
    if track is None:
        data.update(fields)
    else:
        for t in data["tracks"]:
            if t["key"] == track:
                t.update(fields)
    return Protocol.model_validate(data)


def totals(d: Driver) -> list[int | None]:
    return [e.request.working_days for e in d.effects if isinstance(e, PlanSchedule) and e.purpose == "total"]


# --- per-track rules ------------------------------------------------------------------------------------


def test_the_cp_track_counts_its_own_total_and_the_iro_track_the_protocols() -> None:
    # Seed 003: CP levels 3-6 take 10 + 5 + 5 + 3 working days; IRO alerts 20 in all (2.1).
    cp = Driver(fwi_raise("cp", severity=None), NOW)
    cp.act(rules_escalate(cp))
    cp.act(rules_escalate(cp))
    assert cp.state.stage_index == 2 and totals(cp) == [23]
    assert rules.total_days(cp.state) == 23
    iro = Driver(fwi_raise("iro"), NOW)
    iro.act(rules_escalate(iro))
    assert totals(iro) == [20] and rules.total_days(iro.state) == 20


def rules_escalate(d: Driver) -> Escalate:
    return Escalate(actor=d.state.officer, reason="No progress.")


def test_a_tracks_reminder_lead_overrides_the_protocols() -> None:
    p = changed(load_protocol("gloucestershire"), "iro-cp", reminder_lead_working_days=0)
    d = Driver(make_raise("gloucestershire", protocol=p), NOW)
    stage = [e for e in d.effects if isinstance(e, PlanSchedule) and e.purpose == "stage"]
    assert stage[0].request.reminder_lead_working_days == 0
    plain = Driver(make_raise("gloucestershire"), NOW)
    first = next(e for e in plain.effects if isinstance(e, PlanSchedule) and e.purpose == "stage")
    assert first.request.reminder_lead_working_days == 1


def test_a_tracks_bypass_rule_overrides_the_protocols() -> None:
    base = load_protocol("gloucestershire")  # protocol-wide: no prior discussion needed
    p = changed(
        base, "iro-cp", bypass={"prior_discussion_with": ["head_of_service"], "emergency_exempt": False}
    )
    d = Driver(make_raise("gloucestershire", protocol=p), NOW)
    officer = d.state.officer
    with pytest.raises(rules.Refused, match="prior discussion with Head of Service"):
        d.act(Bypass(actor=officer, to_stage="formal-2", reason="Urgent.", emergency=True))
    d.act(Bypass(actor=officer, to_stage="formal-2", reason="Urgent.", discussed_with="head_of_service"))
    assert d.state.stage_index == 2
    closed = changed(base, "iro-cp", bypass={"allowed": False})
    d = Driver(make_raise("gloucestershire", protocol=closed), NOW)
    assert "bypass" not in rules.available_actions(d.state, d.state.officer)


def test_a_tracks_cafcass_and_extension_rules_override_the_protocols() -> None:
    p = changed(
        load_protocol("gloucestershire"),
        "iro-cp",
        cafcass={"officer_roles": []},
        extensions={"approved_by": "team_manager"},
    )
    d = Driver(make_raise("gloucestershire", protocol=p), NOW)
    with pytest.raises(rules.Refused, match="may not refer to CAFCASS"):
        d.act(ReferToCafcass(actor=d.state.officer, reason="Breach."))
    assert d.state.stage_schedule is not None
    until = _later(d.state.stage_schedule.due_date)
    d.act(RequestExtension(actor=d.recipient(), until=until, reason="More time."))
    assert d.notices(EventKind.EXTENSION_REQUESTED)[0].to == ["team_manager"]
    assert "decide_extension" not in rules.available_actions(d.state, d.state.officer)
    assert "decide_extension" in rules.available_actions(d.state, Actor(id="tm", role="team_manager"))


def _later(day: date) -> date:
    return day + timedelta(days=7)


# --- the child's status ---------------------------------------------------------------------------------


def test_a_status_the_protocol_does_not_declare_is_refused() -> None:
    with pytest.raises(rules.Refused, match=r"unknown child status 'adopted'.*looked_after"):
        Driver(fwi_raise("iro", child_status="adopted"), NOW)
    with pytest.raises(rules.Refused, match="unknown severity 'huge'"):
        Driver(fwi_raise("cp", severity="huge"), NOW)


def test_tracks_and_categories_are_limited_by_status() -> None:
    with pytest.raises(rules.Refused, match="track is for a child who is Subject to a child protection"):
        Driver(fwi_raise("cp", child_status="looked_after"), NOW)
    assert Driver(fwi_raise("cp", child_status="child_protection_plan"), NOW).state.child_status == (
        "child_protection_plan"
    )
    wf = load_protocol("waltham-forest")
    category = "Implementation of the care plan / short break care plan, including reviewing process"
    raise_ = make_raise("waltham-forest", "iro").model_copy(
        update={"category": category, "child_status": "fostering_household_review"}
    )
    with pytest.raises(rules.Refused, match=r"category .* is for a child who is Receiving short breaks"):
        Driver(raise_, NOW)
    assert wf.track("iro").category_statuses[category]
    Driver(raise_.model_copy(update={"child_status": "short_breaks"}), NOW)


def test_cafcass_is_limited_by_status_and_a_status_not_given_limits_nothing() -> None:
    p = load_protocol("gloucestershire")
    raise_ = make_raise("gloucestershire", officer=IRO)
    cpp = Driver(raise_.model_copy(update={"child_status": "child_protection_plan"}), NOW)
    with pytest.raises(rules.Refused, match=r"concerns a child who is Looked after .*this child is Subject"):
        cpp.act(ReferToCafcass(actor=IRO, reason="Breach.", consulted=list(p.cafcass.consult)))
    assert "refer_to_cafcass" not in rules.available_actions(cpp.state, IRO)
    lac = Driver(raise_.model_copy(update={"child_status": "looked_after"}), NOW)
    lac.act(ReferToCafcass(actor=IRO, reason="Breach.", consulted=list(p.cafcass.consult)))
    assert lac.state.status is Status.REFERRED_TO_CAFCASS
    unknown = Driver(raise_, NOW)  # raised by a front door that asks no status
    unknown.act(ReferToCafcass(actor=IRO, reason="Breach.", consulted=list(p.cafcass.consult)))
    assert unknown.state.status is Status.REFERRED_TO_CAFCASS
    raised = lac.state.timeline[0]
    assert raised.data["child_status"] == "looked_after" and rules.view(lac.state, NOW).child_status


# --- entry points ---------------------------------------------------------------------------------------


def test_a_subsequent_low_level_concern_starts_at_level_2_without_a_bypass() -> None:
    d = Driver(fwi_raise("cp", severity="subsequent_low_level"), NOW)
    assert d.state.stage_index == 1 and EventKind.BYPASSED not in d.kinds()
    assert d.state.timeline[0].data["entry_point"] == "level-2"
    other = Driver(fwi_raise("cp"), NOW)
    assert other.state.stage_index == 0


def test_starting_above_the_first_entry_point_is_a_bypass_with_a_reason() -> None:
    with pytest.raises(rules.Refused, match="bypass"):
        Driver(fwi_raise("cp", start_at_stage="level-2"), NOW)
    bypass = Bypass(actor=CPC, to_stage="level-2", reason="Risk.", emergency=True)
    d = Driver(fwi_raise("cp", start_at_stage="level-2", start_bypass=bypass), NOW)
    assert d.state.stage_index == 1 and EventKind.BYPASSED in d.kinds()
    # A low-level concern may still start at level 1 (an entry point for any concern) if the officer says so.
    low = Driver(fwi_raise("cp", severity="subsequent_low_level", start_at_stage="level-1"), NOW)
    assert low.state.stage_index == 0


def test_start_index_answers_in_microseconds_without_a_raise() -> None:
    track = load_protocol("waltham-forest-fwi").track("cp")
    assert rules.start_index(track, track.categories[0], "subsequent_low_level", None)[0] == 1
    assert rules.start_index(track, track.categories[0], None, "level-3") == (2, None)


# --- CAFCASS alongside ----------------------------------------------------------------------------------


def test_a_referral_alongside_leaves_the_local_process_running() -> None:
    d = Driver(fwi_raise("iro", child_status="looked_after"), NOW)
    outcome = d.act(ReferToCafcass(actor=IRO, reason="Human rights breached."))
    assert "continues alongside" in outcome
    assert d.state.status is Status.AWAITING_RESPONSE and Flag.CAFCASS_REFERRED in d.state.flags
    with pytest.raises(rules.Refused, match="already been referred"):
        d.act(ReferToCafcass(actor=IRO, reason="Again."))
    d.act(rules_escalate(d))
    assert d.state.stage_index == 1 and d.state.status is Status.AWAITING_RESPONSE


# --- schema versions ------------------------------------------------------------------------------------


def test_a_version_1_file_using_version_2_fields_is_refused_naming_them_and_the_upgrade() -> None:
    data = load_protocol("waltham-forest-fwi").model_dump(mode="json")
    data["schema_version"] = 1
    with pytest.raises(ValidationError) as info:
        Protocol.model_validate(data)
    message = str(info.value)
    assert "child_statuses" in message and "tracks.cp.total_formal_working_days" in message
    assert "escalate protocol upgrade FILE" in message


def test_version_2_references_are_checked() -> None:
    base = load_protocol("waltham-forest-fwi")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"entry_points": [{"stage": "level-9"}]}, "entry_points[0].stage: no stage 'level-9'"),
        ({"entry_points": [{"stage": "level-2", "severities": ["low"]}]}, "entry point with no categories"),
        ({"child_statuses": ["adopted"]}, "unknown child status 'adopted'"),
        ({"category_statuses": {"Nope": ["looked_after"]}}, "'Nope' is not one of the track's categories"),
        ({"extensions": {"approved_by": "mayor"}}, "extensions.approved_by: unknown role 'mayor'"),
    ]
    for fields, expected in bad:
        with pytest.raises(ValidationError, match=expected.replace("[", r"\[").replace("]", r"\]")):
            changed(base, "cp", **fields)


def test_a_version_1_file_still_loads_and_upgrades_to_the_same_protocol() -> None:
    v1 = "# a comment kept\nschema_version: 1   # old\nkey: x\n"
    assert upgraded_text(v1) == "# a comment kept\nschema_version: 2\nkey: x\n"
    assert upgraded_text("# c\nkey: x\n") == "# c\nschema_version: 2\nkey: x\n"
    data = load_protocol("gloucestershire").model_dump(mode="json")
    data.update(schema_version=1, child_statuses={})
    data["cafcass"]["child_statuses"] = []
    p1 = Protocol.model_validate(data)
    assert p1.schema_version == 1 and not p1.child_statuses
