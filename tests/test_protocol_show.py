"""`escalate protocol show` shows every field (and `--json` the whole validated protocol), `protocol list`
counts stages in good English, and refusals say "an" before a vowel sound."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from protocols import PROTOCOLS_DIR, available_protocols, load_protocol
from schemas.escalation import Actor
from schemas.protocol import RAISING_OFFICER, Protocol
from schemas.wording import with_article
from starter.cli.tools import protocol_lines
from tests.cli_runner import Cli
from tests.driver import make_raise
from workflows import rules

NOW = datetime(2026, 3, 6, 10, tzinfo=UTC)


def _referenced_roles(p: Protocol) -> set[str]:
    found = set(p.breach_notify) | set(p.bypass.prior_discussion_with) | {p.extensions.approved_by}
    found |= set(p.cafcass.officer_roles) | set(p.cafcass.consult) | set(p.cafcass.inform)
    for t in p.tracks:
        found |= set(t.officer_roles)
        for s in t.stages:
            found |= set(s.to) | set(s.cc) | set(s.told_in_advance) | set(s.escalated_by) | {s.judged_by}
            if s.entry_gate:
                found |= set(s.entry_gate.with_roles)
    return found


@pytest.mark.parametrize("key", available_protocols())
def test_the_human_view_shows_every_field_with_the_role_keys(key: str) -> None:
    p = load_protocol(key)
    text = "\n".join(protocol_lines(p))
    for role in set(p.roles) | _referenced_roles(p) | {RAISING_OFFICER}:
        assert f"[{role}]" in text, f"role key {role} missing"
    for needle in (
        "no discussion needed in an emergency: ",
        "consult first: ",
        "inform: ",
        "reminder lead: ",
        "child reference: ",
        "good practice notes: ",
        "the informal stage may run to a longer agreed time: ",
    ):
        assert needle in text, needle
    if p.bypass.condition:
        assert p.bypass.condition.split()[0] in text
    if p.cafcass.note:
        assert " ".join(p.cafcass.note.split()) in text
    for t in p.tracks:
        for s in t.stages:
            block = text.split(f". {s.key}: {s.name}", 1)[1].split("\n  ", 1)[0]
            assert f"label: {s.label}; case note type: {s.case_note_type}" in text
            assert f"judged by: {p.role_name(s.judged_by)} [{s.judged_by}]" in text
            assert "escalated by: " + ", ".join(f"{p.role_name(r)} [{r}]" for r in s.escalated_by) in text
            assert "told in advance: " in text
            assert f"exceptional: {'yes' if s.exceptional else 'no'}" in text
            assert block is not None


def test_exceptional_stages_and_an_escalation_by_another_role_are_visible() -> None:
    wigan = "\n".join(protocol_lines(load_protocol("wigan")))
    assert "escalated by: IRO Team Manager [iro_team_manager]" in wigan
    assert "exceptional: yes" in wigan
    assert "entry gate: agreement with IRO Team Manager [iro_team_manager]" in wigan


async def test_show_json_is_the_whole_validated_protocol_and_list_counts_stages(
    tmp_path: Path,
) -> None:
    cli = Cli("127.0.0.1:1", tmp_path)  # needs no server
    shown = json.loads(await cli.ok("protocol", "show", "gloucestershire", "--json"))
    assert Protocol.model_validate(shown) == load_protocol("gloucestershire")
    assert shown["tracks"][0]["stages"][4]["label"] == "Formal Level 4"
    raw = yaml.safe_load((PROTOCOLS_DIR / "gloucestershire.yaml").read_text(encoding="utf-8"))
    raw["key"] = "one-stage"
    raw["tracks"][0]["stages"] = raw["tracks"][0]["stages"][1:2]
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "one-stage.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    listed = await cli.ok("protocol", "list", ESCALATION_PROTOCOLS_DIR=str(extra))
    line = next(x for x in listed.splitlines() if x.startswith("one-stage "))
    assert line.endswith("tracks: iro-cp (1 stage)"), line
    assert "gloucestershire  Gloucestershire County Council  tracks: iro-cp (5 stages)" in listed


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("Independent Reviewing Officer", "an Independent Reviewing Officer"),
        ("agreement", "an agreement"),
        ("consultation", "a consultation"),
        ("IRO", "an IRO"),
        ("CP Chair", "a CP Chair"),
        ("SEN officer", "an SEN officer"),
        ("union official", "a union official"),
        ("hour", "an hour"),
        ("Team Manager", "a Team Manager"),
    ],
)
def test_the_article_fits_the_sound(phrase: str, expected: str) -> None:
    assert with_article(phrase) == expected


def test_refusals_say_an_before_a_vowel_sound() -> None:
    p = load_protocol("waltham-forest")
    raise_ = make_raise("waltham-forest", "cp", officer=Actor(id="iro-1", role="iro"))
    with pytest.raises(rules.Refused) as info:
        rules.start(raise_, NOW)
    assert info.value.reason.startswith(f"an {p.role_name('iro')} cannot raise"), info.value.reason
