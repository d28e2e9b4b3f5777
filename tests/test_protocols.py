"""The authorities' protocol files: they load, they say what the seed protocols say, and broken files fail
with a message naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from protocols import PROTOCOLS_DIR, ProtocolError, available_protocols, load_protocol, load_protocol_file
from schemas.protocol import RAISING_OFFICER, GateKind, Protocol

BUILT_IN = ["dudley", "gloucestershire", "waltham-forest", "waltham-forest-fwi", "wigan"]
SEEDS = {
    "gloucestershire": "000_21a9430c06a5e29a",
    "waltham-forest": "001_3a2bf87236ea7e91",
    "dudley": "002_10dcdd3c6c3a3665",
    "waltham-forest-fwi": "003_bc9560d284c33bd1",
    "wigan": "004_050b11c306d45310",
}
CP_ROLES = {"cp_chair", "cp_coordinator"}
"""Child protection chair / co-ordinator roles: they may never refer to CAFCASS."""


@pytest.fixture(autouse=True)
def _no_extra_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCALATION_PROTOCOLS_DIR", raising=False)


def stage_keys(protocol: Protocol, track: str) -> list[str]:
    return [s.key for s in protocol.track(track).stages]


# --- every file loads -----------------------------------------------------------------------------------


def test_every_file_in_the_folder_is_listed() -> None:
    on_disk = sorted(p.stem for p in PROTOCOLS_DIR.glob("*.yaml"))
    assert on_disk == available_protocols()
    assert set(BUILT_IN) <= set(on_disk)


@pytest.mark.parametrize("path", sorted(PROTOCOLS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_file_loads(path: Path) -> None:
    protocol = load_protocol_file(path)
    assert protocol.key == path.stem
    assert load_protocol(path.stem) == protocol


@pytest.mark.parametrize("key", BUILT_IN)
def test_common_rules(key: str) -> None:
    p = load_protocol(key)
    assert SEEDS[key] in p.source, "source cites the seed file"
    assert p.total_formal_working_days == 20
    assert p.extensions.approved_by == RAISING_OFFICER
    assert p.closure_days == []
    assert p.breach_notify and all(r in p.roles for r in p.breach_notify)
    assert p.cafcass.officer_roles, "someone may refer to CAFCASS"
    for track in p.tracks:
        assert track.categories
        assert len(set(track.categories)) == len(track.categories), "categories are not repeated"
        for stage in track.stages:
            assert stage.note, f"{track.key}.{stage.key} cites the seed in its note"


@pytest.mark.parametrize("key", BUILT_IN)
def test_cafcass_is_never_for_cp_chairs(key: str) -> None:
    p = load_protocol(key)
    assert not CP_ROLES & set(p.cafcass.officer_roles)
    assert set(p.cafcass.officer_roles) <= {"iro", "short_breaks_iro"}


# --- Gloucestershire (seed 000) ---------------------------------------------------------------------------


def test_gloucestershire() -> None:
    p = load_protocol("gloucestershire")
    assert [t.key for t in p.tracks] == ["iro-cp"]
    track = p.tracks[0]
    assert track.officer_roles == ["iro", "cp_chair"]
    assert stage_keys(p, "iro-cp") == ["informal", "formal-1", "formal-2", "formal-3", "formal-4"]
    informal, f1, f2, f3, f4 = track.stages
    assert not informal.formal and informal.to == ["social_worker"] and informal.cc == ["team_manager"]
    assert all(s.formal for s in (f1, f2, f3, f4))
    assert (f1.to, f1.cc) == (["team_manager"], ["service_manager"])
    assert set(f2.to) == {"head_of_service", "service_manager"} and f2.cc == ["director_of_safeguarding"]
    assert f3.to == ["director_of_safeguarding"]
    assert f4.to == ["director_of_childrens_services"]
    assert all(s.response_working_days == 5 for s in track.stages)
    assert all(s.entry_gate is None for s in track.stages)
    assert p.timescales.informal_may_agree_longer
    assert p.bypass.allowed and p.bypass.prior_discussion_with == []
    assert p.cafcass.officer_roles == ["iro"]
    assert set(p.cafcass.inform) == {
        "head_of_independent_reviewing_service",
        "head_of_service",
        "director_of_safeguarding",
        "director_of_childrens_services",
    }
    assert len(track.categories) == 6
    assert track.categories[0] == "Children's safety & wellbeing"


# --- Waltham Forest, Strengthening Practice (seed 001) ----------------------------------------------------


@pytest.mark.parametrize("track_key", ["iro", "cp"])
def test_waltham_forest_six_stages(track_key: str) -> None:
    p = load_protocol("waltham-forest")
    track = p.track(track_key)
    assert [s.key for s in track.stages] == [f"stage-{n}" for n in range(1, 7)]
    s1, s2, s3, s4, s5, s6 = track.stages
    assert not s1.formal and all(s.formal for s in (s2, s3, s4, s5, s6))
    assert s1.to == ["social_worker", "social_worker_supervisor"]
    assert s2.to == ["team_manager"] and set(s2.told_in_advance) == {"social_worker", "advanced_practitioner"}
    assert s3.to == ["head_of_service"] and set(s3.told_in_advance) == {"social_worker", "team_manager"}
    assert s3.entry_gate is not None
    assert s3.entry_gate.kind == GateKind.CONSULTATION and s3.entry_gate.with_roles == ["iro_line_manager"]
    assert s4.to == ["assistant_director"]
    assert s5.to == ["corporate_director_childrens_social_care"]
    assert s6.to == ["strategic_director_people"]
    for stage in (s4, s5, s6):
        assert stage.entry_gate is not None
        assert stage.entry_gate.kind == GateKind.CONSULTATION
        assert stage.entry_gate.with_roles == ["ad_quality_assurance"]
        assert "qa_practice_manager" in stage.cc
        assert "ad_quality_assurance" in stage.told_in_advance
    for stage in (s1, s2, s3):
        assert "qa_practice_manager" not in stage.cc
    assert [s.meeting for s in track.stages] == [False, False, False, False, True, True]
    assert all(s.response_working_days == 5 for s in track.stages)


def test_waltham_forest_rules() -> None:
    p = load_protocol("waltham-forest")
    assert p.track("iro").officer_roles == ["iro", "fostering_iro", "short_breaks_iro"]
    assert p.track("cp").officer_roles == ["cp_coordinator"]
    assert p.timescales.officer_may_shorten
    assert p.bypass.prior_discussion_with == ["iro_line_manager"] and p.bypass.emergency_exempt
    assert "fostering_iro" not in p.cafcass.officer_roles
    assert {"iro_line_manager", "ad_quality_assurance"} <= set(p.cafcass.consult)
    assert p.breach_notify == ["qa_practice_manager"]
    assert set(p.service_areas) == {
        "child_protection",
        "short_breaks",
        "fostering",
        "looked_after",
        "send_ehcp",
    }


def test_waltham_forest_routing() -> None:
    iro = load_protocol("waltham-forest").track("iro")
    s1, s2 = iro.stages[0], iro.stages[1]
    # EHCP concerns: SEN officer, then the SEN officers' team manager.
    assert s1.addressees("send_ehcp")[0] == ["sen_officer"]
    assert s2.addressees("send_ehcp") == (["sen_team_manager"], [])
    # Fostering concerns: supervising social worker, then their team manager.
    assert s1.addressees("fostering")[0] == ["supervising_social_worker"]
    assert s2.addressees("fostering")[0] == ["fostering_team_manager"]
    # Other areas, and no area, use the stage's own addressees.
    assert s2.addressees("looked_after") == (["team_manager"], [])
    assert s2.addressees(None) == (["team_manager"], [])
    assert s1.addressees(None)[0] == ["social_worker", "social_worker_supervisor"]
    # Routing stops at stage 2: the Head of Service is the same for every area.
    assert iro.stages[2].addressees("send_ehcp") == (["head_of_service"], [])


def test_waltham_forest_categories() -> None:
    p = load_protocol("waltham-forest")
    cp, iro = p.track("cp").categories, p.track("iro").categories
    assert cp[0] == "Safeguarding and protection of children and young people in the household"
    assert "Implementation of Child Protection Plan, including reviewing process" in cp
    assert "Provision of services / resources" not in cp
    assert "Provision of services / resources" in iro and "Other" in iro
    assert len(iro) == len(set(iro))


# --- Waltham Forest, earlier FWi procedure (seed 003) -----------------------------------------------------


def test_fwi_iro_track() -> None:
    p = load_protocol("waltham-forest-fwi")
    iro = p.track("iro")
    assert iro.officer_roles == ["iro"]
    assert [s.key for s in iro.stages] == [
        "informal",
        "team-manager",
        "head-of-service",
        "divisional-director",
        "deputy-chief-executive",
    ]
    informal, tm, hos, dd, dce = iro.stages
    assert not informal.formal
    assert tm.to == ["team_manager"] and set(tm.cc) == {"qa_dhos", "service_line_manager"}
    assert tm.response_working_days == 5
    assert hos.cc == ["qa_head_of_service"] and hos.response_working_days == 5
    assert dd.response_working_days == 3
    assert dd.entry_gate is not None and dd.entry_gate.kind == GateKind.CONSULTATION
    assert set(dd.entry_gate.with_roles) == {"qa_dhos", "qa_head_of_service"}
    assert dce.to == ["deputy_chief_executive"] and dce.response_working_days == 5
    assert "assumed" in dce.note
    assert len(iro.categories) == 8


def test_fwi_cp_track() -> None:
    p = load_protocol("waltham-forest-fwi")
    cp = p.track("cp")
    assert cp.officer_roles == ["cp_coordinator"]
    assert [s.key for s in cp.stages] == [f"level-{n}" for n in range(1, 7)]
    days = {s.key: s.response_working_days for s in cp.stages}
    assert days == {"level-1": None, "level-2": None, "level-3": 10, "level-4": 5, "level-5": 5, "level-6": 3}
    assert [s.formal for s in cp.stages] == [False, False, True, True, True, True]
    assert [s.exceptional for s in cp.stages] == [False] * 5 + [True]
    assert cp.stages[0].to == ["team_manager"] and cp.stages[3].to == ["deputy_head_of_service"]
    assert cp.stages[4].to == ["head_of_service"] and cp.stages[5].to == ["divisional_director"]
    assert all("qa_dhos" in s.cc for s in cp.stages)
    assert ["qa_head_of_service" in s.cc for s in cp.stages] == [False] * 4 + [True, True]
    assert len(cp.categories) == 5 and "Decision making" in cp.categories


def test_fwi_rules() -> None:
    p = load_protocol("waltham-forest-fwi")
    assert p.cafcass.officer_roles == ["iro"]
    assert p.bypass.prior_discussion_with == ["iro_line_manager"] and p.bypass.emergency_exempt
    assert p.breach_notify == ["qa_dhos"]


# --- Dudley (seed 002) ------------------------------------------------------------------------------------


def test_dudley() -> None:
    p = load_protocol("dudley")
    assert [t.key for t in p.tracks] == ["iro-cp"]
    track = p.tracks[0]
    assert track.officer_roles == ["iro", "cp_chair"]
    assert [s.to for s in track.stages] == [
        ["social_worker"],
        ["team_manager"],
        ["service_manager"],
        ["head_of_service"],
        ["director_of_childrens_services"],
    ]
    assert track.stages[0].cc == ["team_manager"] and not track.stages[0].formal
    assert all(s.formal and s.response_working_days == 5 for s in track.stages[1:])
    assert p.cafcass.officer_roles == ["iro"]
    assert "proportionate and necessary" in p.cafcass.note
    assert any("IRO Handbook default" in n for n in p.notes)
    assert any("CCM" in n for n in p.notes)
    assert track.categories[:3] == ["Participation", "Planning", "Permanence"]


# --- Wigan (seed 004) -------------------------------------------------------------------------------------


@pytest.mark.parametrize("track_key", ["iro", "cp"])
def test_wigan_stages(track_key: str) -> None:
    p = load_protocol("wigan")
    track = p.track(track_key)
    assert [s.key for s in track.stages] == [f"stage-{n}" for n in range(1, 6)]
    s1, s2, s3, s4, s5 = track.stages
    assert all(s.formal for s in track.stages)
    assert s1.to == ["team_manager"] and s1.response_working_days == 5
    assert s2.to == ["service_lead"]
    assert s2.entry_gate is not None
    assert s2.entry_gate.kind == GateKind.AGREEMENT and s2.entry_gate.with_roles == ["iro_team_manager"]
    assert s2.escalated_by == ["iro_team_manager"]
    assert set(s3.to) == {"head_of_service", "safeguarding_lead"}
    assert s4.to == ["deputy_director_csc"] and "strategic_lead_safeguarding" in s4.cc
    assert [s.response_working_days for s in (s2, s3, s4)] == [5, 5, 5]
    assert s5.to == ["director_of_childrens_services"]
    assert s5.exceptional and s5.response_working_days is None


def test_wigan_rules() -> None:
    p = load_protocol("wigan")
    assert p.track("iro").officer_roles == ["iro", "corporate_iro"]
    assert p.track("cp").officer_roles == ["cp_chair"]
    assert p.cafcass.officer_roles == ["iro"]
    assert "strategic_lead_safeguarding" in p.cafcass.consult
    assert p.bypass.prior_discussion_with == ["siu_service_lead"]
    assert p.bypass.emergency_exempt is False
    assert "delay" in p.bypass.condition
    assert p.track("iro").categories == p.track("cp").categories
    assert "Quality of practice" in p.track("iro").categories


# --- loader errors ----------------------------------------------------------------------------------------


def _raw(key: str = "gloucestershire") -> dict[str, Any]:
    raw = yaml.safe_load((PROTOCOLS_DIR / f"{key}.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _write(tmp_path: Path, raw: dict[str, Any], name: str = "gloucestershire.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    message = str(info.value)
    assert str(path) in message, "the message names the file"
    return message


def test_unchanged_copy_loads(tmp_path: Path) -> None:
    assert load_protocol_file(_write(tmp_path, _raw())) == load_protocol("gloucestershire")


def test_error_misspelt_field(tmp_path: Path) -> None:
    raw = _raw()
    raw["tracks"][0]["stages"][1]["respons_working_days"] = raw["tracks"][0]["stages"][1].pop(
        "response_working_days"
    )
    message = _error(_write(tmp_path, raw))
    assert "tracks.iro-cp.stages.formal-1.respons_working_days" in message
    assert "not a protocol field" in message and "check its spelling" in message


def test_error_misspelt_top_level_field(tmp_path: Path) -> None:
    raw = _raw()
    raw["breach_notfy"] = raw.pop("breach_notify")
    message = _error(_write(tmp_path, raw))
    assert "'breach_notfy' is not a protocol field: remove it or check its spelling" in message
    assert "'breach_notify' is missing: add it" in message


def test_error_unknown_role_in_stage_to(tmp_path: Path) -> None:
    raw = _raw()
    raw["tracks"][0]["stages"][2]["to"] = ["head_of_servise"]
    message = _error(_write(tmp_path, raw))
    assert "tracks.iro-cp.stages.formal-2.to" in message
    assert "unknown role 'head_of_servise'" in message
    assert "declare it under 'roles'" in message


def test_error_unknown_role_in_case_note_labels(tmp_path: Path) -> None:
    raw = _raw()
    raw["case_notes"]["officer_labels"]["irp"] = "IRO"
    message = _error(_write(tmp_path, raw))
    assert "case_notes.officer_labels: unknown role 'irp'" in message


def test_every_officer_role_has_a_case_note_label() -> None:
    for key in available_protocols():
        p = load_protocol(key)
        for track in p.tracks:
            missing = [r for r in track.officer_roles if r not in p.case_notes.officer_labels]
            assert not missing, f"{key} track {track.key}: no case_notes.officer_labels for {missing}"


def test_error_zero_response_days(tmp_path: Path) -> None:
    raw = _raw()
    raw["tracks"][0]["stages"][3]["response_working_days"] = 0
    message = _error(_write(tmp_path, raw))
    assert "tracks.iro-cp.stages.formal-3.response_working_days" in message
    assert "greater than or equal to 1" in message
    assert "write null" in message


def test_error_missing_tracks(tmp_path: Path) -> None:
    raw = _raw()
    del raw["tracks"]
    message = _error(_write(tmp_path, raw))
    assert "field 'tracks' is missing: add it" in message


def test_error_invalid_yaml(tmp_path: Path) -> None:
    text = (PROTOCOLS_DIR / "gloucestershire.yaml").read_text(encoding="utf-8")
    broken = text.replace("breach_notify: [head_of_independent_reviewing_service]", "breach_notify: [oops", 1)
    assert broken != text
    path = tmp_path / "gloucestershire.yaml"
    path.write_text(broken, encoding="utf-8")
    message = _error(path)
    line = broken.splitlines().index("breach_notify: [oops") + 1
    assert "not valid YAML" in message
    assert f"at line {line}" in message or f"at line {line + 1}" in message


def test_error_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "gloucestershire.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert "expected a mapping" in _error(path)


def test_error_key_does_not_match_file_name(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, _raw(), name="glos.yaml"))
    assert "field 'key' is 'gloucestershire'" in message
    assert "glos.yaml" in message
    assert "make them match (key: glos)" in message


def test_error_unknown_authority() -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol("atlantis")
    message = str(info.value)
    assert "unknown authority 'atlantis'" in message and "atlantis.yaml" in message
    assert "wigan" in message, "the message lists the known authorities"


# --- a new authority needs only a file ------------------------------------------------------------------

NEW_AUTHORITY = """\
schema_version: 1
key: testshire
authority: Testshire County Council
title: Test escalation protocol
source: written for the loader test
roles:
  iro: Independent Reviewing Officer
  social_worker: Social worker
  team_manager: Team manager
  iro_manager: IRO service manager
breach_notify: [iro_manager]
cafcass:
  officer_roles: [iro]
tracks:
  - key: iro
    name: IROs
    officer_roles: [iro]
    categories: [Planning]
    stages:
      - key: informal
        name: Informal
        formal: false
        to: [social_worker]
        cc: [team_manager]
      - key: team-manager
        name: Team manager
        formal: true
        to: [team_manager]
"""


def test_new_authority_from_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "testshire.yaml").write_text(NEW_AUTHORITY, encoding="utf-8")
    assert "testshire" not in available_protocols()
    monkeypatch.setenv("ESCALATION_PROTOCOLS_DIR", str(tmp_path))
    assert "testshire" in available_protocols()
    assert set(BUILT_IN) <= set(available_protocols()), "the built-in files are still found"
    p = load_protocol("testshire")
    assert p.authority == "Testshire County Council"
    assert p.track("iro").stages[1].response_working_days == 5  # schema default
    assert p.total_formal_working_days == 20
    assert load_protocol("wigan").key == "wigan"
