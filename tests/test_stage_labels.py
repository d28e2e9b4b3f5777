"""Stages named in the authority's own words: each stage's ``label`` and ``case_note_type`` (defaulting from
its name and formality) reach the case notes and the mail, never the engine's ordinal ("stage 5" for
Gloucestershire's Formal Level 4)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.db_records import DbRecordStore
from activities.directory import Person
from activities.mail import Recipient, render
from protocols import PROTOCOLS_DIR, ProtocolError, load_protocol, load_protocol_file
from schemas.effects import Notify, Record, RecordEventInput
from schemas.escalation import EventKind
from schemas.protocol import Protocol, Stage
from tests.databases import migrated_engine
from tests.driver import Driver, make_raise
from workflows import rules
from workflows.escalation import _notification, _record_input

FRIDAY = datetime(2026, 3, 6, 10, tzinfo=UTC)

LABELS = {
    ("gloucestershire", "iro-cp"): [
        "Informal resolution",
        "Formal Level 1",
        "Formal Level 2",
        "Formal Level 3",
        "Formal Level 4",
    ],
    ("waltham-forest", "cp"): [f"Stage {i}" for i in range(1, 7)],
    ("waltham-forest", "iro"): [f"Stage {i}" for i in range(1, 7)],
    ("waltham-forest-fwi", "iro"): [
        "First stage",
        "Second stage",
        "Third stage",
        "Fourth stage",
        "Fifth stage",
    ],
    ("waltham-forest-fwi", "cp"): [f"Level {i}" for i in range(1, 7)],
    ("dudley", "iro-cp"): [
        "Informal resolution",
        "Formal: Team Manager",
        "Formal: Service Manager",
        "Formal: Head of Service",
        "Formal: Director",
    ],
    ("wigan", "iro"): [f"Stage {i}" for i in range(1, 6)],
    ("wigan", "cp"): [f"Stage {i}" for i in range(1, 6)],
}


@pytest.mark.parametrize(("authority", "track"), sorted(LABELS))
def test_every_stage_carries_the_authoritys_own_label(authority: str, track: str) -> None:
    stages = load_protocol(authority).track(track).stages
    assert [s.label for s in stages] == LABELS[(authority, track)]


@pytest.mark.parametrize(
    ("authority", "track", "stage", "role", "expected"),
    [
        ("gloucestershire", "iro-cp", "informal", "iro", "IRO informal resolution"),
        ("gloucestershire", "iro-cp", "formal-4", "iro", "IRO concern/escalation form - Formal Level 4"),
        (
            "gloucestershire",
            "iro-cp",
            "formal-1",
            "cp_chair",
            "Child Protection concern/escalation form - Formal Level 1",
        ),
        ("waltham-forest", "iro", "stage-1", "iro", "IRO informal alert"),
        (
            "waltham-forest",
            "cp",
            "stage-2",
            "cp_coordinator",
            "Child Protection formal management alert - Stage 2",
        ),
        ("waltham-forest", "iro", "stage-4", "fostering_iro", "IRO formal alert - Stage 4"),
        ("waltham-forest-fwi", "iro", "team-manager", "iro", "IRO Alert Form - Second stage"),
        (
            "waltham-forest-fwi",
            "cp",
            "level-3",
            "cp_coordinator",
            "Child Protection formal concern form - Level 3",
        ),
        ("dudley", "iro-cp", "director", "iro", "IRO formal dispute resolution - Director"),
        ("wigan", "cp", "stage-1", "cp_chair", "Child Protection Dispute Resolution - Stage 1"),
        ("wigan", "iro", "stage-5", "corporate_iro", "IRO Dispute Resolution - Stage 5"),
    ],
)
def test_case_note_types_use_the_seeds_wording(
    authority: str, track: str, stage: str, role: str, expected: str
) -> None:
    p = load_protocol(authority)
    t = p.track(track)
    assert p.stage_note_type(t.stages[t.stage_index(stage)], role) == expected


def test_a_stage_without_label_or_type_defaults_from_its_name_and_formality() -> None:
    formal = Stage.model_validate({"key": "s2", "name": "Level Two - Manager", "formal": True, "to": ["x"]})
    informal = Stage.model_validate({"key": "s1", "name": "Chat", "formal": False, "to": ["x"]})
    assert formal.label == "Level Two - Manager"
    assert formal.note_type("IRO") == "IRO formal alert - Level Two - Manager"
    assert informal.label == "Chat" and informal.note_type("CP") == "CP informal alert"
    # Given explicitly, they are kept; and the validated protocol shows them (as --json does).
    named = Stage.model_validate(
        {"key": "s", "name": "N", "formal": True, "to": ["x"], "label": "L", "case_note_type": "T {officer}"}
    )
    assert (named.label, named.note_type("IRO")) == ("L", "T IRO")
    assert named.model_dump()["label"] == "L"
    # A protocol written before these fields replays with the same values from its snapshot.
    assert Stage.model_validate(named.model_dump()) == named


def _raw() -> dict[str, Any]:
    raw = yaml.safe_load((PROTOCOLS_DIR / "gloucestershire.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _error(tmp_path: Path, raw: dict[str, Any]) -> str:
    path = tmp_path / "gloucestershire.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    return str(info.value)


def test_a_case_note_type_with_an_unknown_placeholder_or_too_long_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    raw["tracks"][0]["stages"][1]["case_note_type"] = "{officer} alert {stage}"
    message = _error(tmp_path, raw)
    assert "tracks.iro-cp.stages.formal-1.case_note_type" in message or "case_note_type" in message
    assert "{officer}" in message
    raw = _raw()
    raw["case_notes"]["officer_labels"]["iro"] = "I" * 60
    raw["tracks"][0]["stages"][1]["case_note_type"] = "{officer} " + "x" * 70
    message = _error(tmp_path, raw)
    assert "tracks.iro-cp.stages.formal-1.case_note_type" in message and "shorten it" in message


def test_default_types_of_long_stage_names_are_cut_to_fit_so_older_protocols_still_load() -> None:
    """A protocol recorded in a history before stages had types has long names and no labels."""
    raw = _raw()
    raw["case_notes"]["officer_labels"] = {}
    for stage in raw["tracks"][0]["stages"]:
        stage.pop("label"), stage.pop("case_note_type")
        stage["name"] = stage["name"] + " with a very long explanation of who answers" * 3
    p = Protocol.model_validate(raw)
    for stage in p.tracks[0].stages:
        for role in p.tracks[0].officer_roles:
            assert len(p.stage_note_type(stage, role)) <= 120


def _climb(authority: str, track: str) -> Driver:
    driver = Driver(make_raise(authority, track), FRIDAY)
    driver.run_out_the_clock(timedelta(days=200))
    return driver


class RecordingDriver(Driver):
    """A climb by the rules that also builds each record as the workflow shell does, at its own moment."""

    def __init__(self, authority: str, track: str) -> None:
        self.inputs: list[RecordEventInput] = []
        super().__init__(make_raise(authority, track), FRIDAY)

    def _absorb(self, decision: rules.Decision) -> None:
        for effect in decision.effects:
            if isinstance(effect, Record):
                self.inputs.append(_record_input(decision.state, effect, "run-1"))
        super()._absorb(decision)


@contextmanager
def _store(tmp_path: Path) -> Iterator[DbRecordStore]:
    with migrated_engine(f"sqlite:///{tmp_path / 'records.db'}") as engine:
        yield DbRecordStore(engine)


def test_case_notes_of_a_climb_name_each_stage_by_its_label_not_its_ordinal(tmp_path: Path) -> None:
    """Every record of a Gloucestershire climb, as the workflow builds it, into the real record store."""
    driver = RecordingDriver("gloucestershire", "iro-cp")
    driver.run_out_the_clock(timedelta(days=200))
    with _store(tmp_path) as store:
        for record in driver.inputs:
            assert store.append_event(record)
        kinds = {n.note_type for n in store.case_notes()}
    assert {
        "IRO informal resolution",
        "IRO concern/escalation form - Formal Level 1",
        "IRO concern/escalation form - Formal Level 4",
    } <= kinds, kinds
    assert not [k for k in kinds if "stage" in k.lower()], kinds


def test_mail_of_a_climb_names_each_stage_by_its_label_never_the_ordinal() -> None:
    driver = _climb("gloucestershire", "iro-cp")
    protocol = load_protocol("gloucestershire")
    top = [e for e in driver.effects if isinstance(e, Notify) and e.kind is EventKind.EXHAUSTED]
    assert top, "the climb reached the top"
    n = _notification(driver.state, top[0], "")
    assert n.stage == "formal-4" and n.stage_label == "Formal Level 4"
    person = Person(id="p-1", name="Pat Example", email="p1@example.org")
    mail = render(
        n,
        Recipient(person=person, role="iro", acts_as="iro", position="to"),
        protocol=protocol,
        to_people=[(person, "iro")],
        cc_people=[],
        reply_address="escalations+abc@replies.example.org",
    )
    assert mail.subject.startswith(f"[{n.escalation_id}] Formal Level 4:")
    for text in (mail.text, mail.html):
        assert "Formal Level 4" in text
        assert "5 of 5" not in text and "stage 5" not in text.lower()


def test_an_older_record_without_the_type_takes_it_from_the_protocol_file(tmp_path: Path) -> None:
    """Records from histories made before labels existed carry no type: the stage's own one is used."""
    driver = RecordingDriver("gloucestershire", "iro-cp")
    first = driver.inputs[0]
    assert first.snapshot is not None
    old_snapshot = first.snapshot.model_copy(update={"case_note_type": None, "stage_label": None})
    with _store(tmp_path) as store:
        assert store.append_event(first.model_copy(update={"snapshot": old_snapshot, "stage": "formal-4"}))
        [note] = store.case_notes()
    assert note.note_type == "IRO concern/escalation form - Formal Level 4"
