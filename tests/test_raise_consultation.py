"""``escalate raise`` at a stage that needs a consultation (or agreement) first: the options that say it was
held (who, when, what was said), and the refusals that name them. Refusals come before any connection;
the options are parsed by the command's own parser and prepared as the command does."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from protocols import load_protocol
from schemas.escalation import Actor, Bypass, Concern
from starter.cli import EXIT_BAD_INPUT, EXIT_REFUSED
from starter.cli.acting import _consultations_at_raise
from starter.cli.common import CliError, london_today
from starter.cli.parser import build_parser
from starter.escalations import prepare
from tests.cli_runner import Cli

OFFICER = Actor(id="wig-iro-a", role="iro")
RAISE = [
    "raise",
    "--child-status",  # required where the protocol declares statuses (v2)
    "looked_after",
    "--authority",
    "wigan",
    "--track",
    "iro",
    "--category",
    "1",
    "--child-ref",
    "C4F2A9",
    "--team",
    "team-a",
    "--officer-id",
    OFFICER.id,
    "--officer-role",
    OFFICER.role,
    "--summary",
    "S.",
    "--impact",
    "I.",
    "--request",
    "R.",
    "--start-at-stage",
    "stage-2",
    "--bypass-reason",
    "No answer at stage 1 and the placement ends soon.",
    "--discussed-with",
    "siu_service_lead",
]


def consulted(on: date, *, agreed: bool = True) -> list[str]:
    flags = ["--consultation-agreed"] if agreed else []
    return [
        "--consulted-with",
        "iro_team_manager",
        "--consulted-on",
        on.isoformat(),
        "--consultation",
        "Agreed to escalate to the Service Lead.",
        *flags,
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_raise_at_a_gated_stage_without_the_consultation_is_refused_naming_the_options(
    tmp_path: Path,
) -> None:
    cli = Cli("127.0.0.1:1", tmp_path)  # nothing listens there: refused before connecting
    reason = await cli.fails(EXIT_BAD_INPUT, *RAISE)  # options missing: bad input, nothing sent
    assert len(reason.strip().splitlines()) == 1
    assert "Stage 2" in reason and "agreement with IRO Team Manager" in reason
    for option in ("--consulted-with", "--consulted-on", "--consultation", "--consultation-agreed"):
        assert option in reason
    yesterday = london_today() - timedelta(days=1)
    reason = await cli.fails(EXIT_REFUSED, *RAISE, *consulted(yesterday, agreed=False))
    assert "--consultation-agreed" in reason
    tomorrow = london_today() + timedelta(days=1)
    reason = await cli.fails(EXIT_BAD_INPUT, *RAISE, *consulted(tomorrow))
    assert "--consulted-on" in reason and "in the future" in reason


def test_the_options_give_the_consultation_to_the_escalation() -> None:
    held = london_today() - timedelta(days=3)
    args = build_parser().parse_args([*RAISE, *consulted(held)])
    protocol = load_protocol("wigan")
    [consultation] = _consultations_at_raise(args, protocol, protocol.track("iro"), OFFICER)
    assert (consultation.stage, consultation.with_role, consultation.agreed) == (
        "stage-2",
        "iro_team_manager",
        True,
    )
    assert consultation.held_on == held and consultation.actor == OFFICER
    raise_ = prepare(
        authority="wigan",
        track="iro",
        category=protocol.track("iro").categories[0],
        child_ref="C4F2A9",
        sequence=1,
        officer=OFFICER,
        concern=Concern(summary="S.", impact_on_child="I.", requested_action="R."),
        team="team-a",
        start_at_stage="stage-2",
        start_bypass=Bypass(
            actor=OFFICER, to_stage="stage-2", reason="Delay.", discussed_with="siu_service_lead"
        ),
        consultations=[consultation],
    )
    assert raise_.consultations == [consultation]


def test_a_consultation_where_none_is_needed_or_half_given_is_refused() -> None:
    parser = build_parser()
    protocol = load_protocol("wigan")
    track = protocol.track("iro")
    at_first = [a for a in RAISE if a not in RAISE[RAISE.index("--start-at-stage") :]]
    args = parser.parse_args([*at_first, *consulted(london_today())])
    with pytest.raises(CliError, match="needs no consultation"):
        _consultations_at_raise(args, protocol, track, OFFICER)
    args = parser.parse_args([*RAISE, "--consulted-with", "iro_team_manager"])
    with pytest.raises(CliError, match="--consulted-on, --consultation too"):
        _consultations_at_raise(args, protocol, track, OFFICER)
    assert _consultations_at_raise(parser.parse_args(at_first), protocol, track, OFFICER) == []
