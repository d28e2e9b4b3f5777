"""Raising is refused when the directory cannot resolve the first stage's recipients for the team.

Otherwise the first notice would retry for ever while the stage's deadline runs and nobody is told. The
check reads the authority's directory file (no server, no database), as the front doors do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.escalation import Actor, Bypass, Concern
from starter.cli import EXIT_BAD_INPUT
from starter.escalations import NotInDirectory, authority_directory, prepare
from tests.cli_runner import ESCALATE, Cli

OFFICER = Actor(id="glo-iro-a", role="iro")
FIELDS: dict[str, Any] = {
    "authority": "gloucestershire",
    "track": "iro-cp",
    "category": "Key decision-making",
    "sequence": 1,
    "child_ref": "C4F2A9",
    "officer": OFFICER,
    "concern": Concern(summary="S.", impact_on_child="I.", requested_action="R."),
}


def test_no_team_when_the_first_stage_goes_to_a_team_role_is_refused() -> None:
    with pytest.raises(NotInDirectory) as refused:
        prepare(team=None, **FIELDS)
    reason = refused.value.reason
    assert "\n" not in reason
    assert "no team given" in reason and "Social Worker" in reason and "Informal resolution" in reason
    assert "team-a, team-b" in reason


def test_a_team_the_directory_does_not_know_is_refused_naming_the_known_teams() -> None:
    with pytest.raises(NotInDirectory) as refused:
        prepare(team="team-z", **FIELDS)
    assert "team 'team-z'" in refused.value.reason and "team-a, team-b" in refused.value.reason


def test_a_team_without_the_first_stages_role_is_refused(tmp_path: Path) -> None:
    """team-c exists in the directory (it has an IRO) but nobody there, nor authority-wide, is its social
    worker: the informal stage could not be sent."""
    source = Path(__file__).resolve().parents[1] / "protocols" / "directories" / "gloucestershire.yaml"
    text = source.read_text(encoding="utf-8") + "  - {role: iro, team: team-c, person: glo-iro-a}\n"
    (tmp_path / "gloucestershire.yaml").write_text(text, encoding="utf-8")
    directory = authority_directory("gloucestershire", tmp_path)
    with pytest.raises(NotInDirectory) as refused:
        prepare(team="team-c", directory=directory, **FIELDS)
    reason = refused.value.reason
    assert "team 'team-c'" in reason and "Social Worker" in reason
    assert "the teams that have them: team-a, team-b" in reason
    # Raised at Formal Level 3 instead, whose Director of Safeguarding is authority-wide: accepted.
    start: dict[str, Any] = {
        "start_at_stage": "formal-3",
        "start_bypass": Bypass(actor=OFFICER, to_stage="formal-3", reason="Urgent."),
    }
    assert prepare(team="team-c", directory=directory, **start, **FIELDS).team == "team-c"


def test_a_team_that_resolves_every_recipient_is_accepted() -> None:
    assert prepare(team="team-b", **FIELDS).team == "team-b"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_command_refuses_with_exit_2_and_one_line(tmp_path: Path) -> None:
    assert ESCALATE.exists()
    cli = Cli("127.0.0.1:1", tmp_path)  # nothing listens there: refused before connecting
    args = [
        "raise",
        "--child-status",  # required where the protocol declares statuses (v2)
        "looked_after",
        "--authority",
        "gloucestershire",
        "--category",
        "4",
        "--child-ref",
        "C4F2A9",
        "--officer-id",
        "glo-iro-a",
        "--officer-role",
        "iro",
        "--summary",
        "S.",
        "--impact",
        "I.",
        "--request",
        "R.",
    ]
    reason = await cli.fails(EXIT_BAD_INPUT, *args)
    assert len(reason.strip().splitlines()) == 1
    assert "no team given" in reason and "team-a, team-b" in reason
    reason = await cli.fails(EXIT_BAD_INPUT, *args, "--team", "team-z")
    assert "team 'team-z'" in reason and "team-a, team-b" in reason
