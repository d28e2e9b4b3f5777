"""``escalate decisions ...`` and ``escalate practice-concern ...`` as a person runs them, on a dev server
with a worker: sending, disagreeing (the informal resolution it opens is an escalation that `escalate
status` reads), raising, feeding back and escalating a practice concern, status and history; bad input
exits 2 with one line naming the option, and a refusal by the rules exits 1."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.cli_runner import Cli
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE

pytestmark = pytest.mark.asyncio(loop_scope="session")

IRO = ("--as-id", "dud-iro-a", "--as-role", "iro")
TM = ("--as-id", "dud-team-manager-a", "--as-role", "team_manager")
WF_TM = ("--as-id", "wf-team-manager-a", "--as-role", "team_manager")
QA = ("--as-id", "wf-iro-line-manager", "--as-role", "iro_line_manager")
AD = ("--as-id", "wf-ad-quality-assurance", "--as-role", "ad_quality_assurance")


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield Cli(dev_server_env.client.service_client.config.target_host, tmp_path)


def _started_id(out: str) -> str:
    match = re.search(r"started (\S+):", out)
    assert match, out
    return match.group(1)


async def test_decisions_sent_then_disagreed_open_an_escalation_the_command_reads(cli: Cli) -> None:
    child = unique_ref()
    request = f"req-{uuid.uuid4().hex[:8]}"
    send = (
        "decisions", "send", "--authority", "dudley", "--child-ref", child, "--team", "team-a", *IRO,
        "--review-date", "2026-01-05", "--decisions", "1. Weekly contact.", "--request-id", request,
    )  # fmt: skip
    out = await cli.ok(*send)
    assert out.startswith("started ") and "with Team Manager; due by the end of" in out
    process = _started_id(out)
    assert re.fullmatch(rf"dudley-{child}-decisions-\d{{10}}", process)
    again = await cli.ok(*send)  # a retry of the same request returns the same process
    assert again.startswith(f"already started {process}:")

    status = await cli.ok("decisions", "status", process)
    assert "status:     awaiting response" in status and "decisions:  1. Weekly contact." in status
    assert "decisions_sent" in status
    assert "only Team Manager may disagree" in await cli.fails(
        1, "decisions", "disagree", process, *IRO, "--reason", "x"
    )
    done = await cli.ok("decisions", "disagree", process, *TM, "--reason", "Contact is not safe yet.")
    linked = re.search(r"opened as (\S+) \(closed", done)
    assert linked, done
    escalation = linked.group(1)
    shown = await cli.ok("status", escalation, *IRO)  # the IRO who sent the decisions raised it
    assert "Contact is not safe yet." in shown and "stage:      1/5 Informal resolution" in shown
    history = await cli.ok("decisions", "history", process)
    assert "decisions_disagreed" in history and escalation in history
    assert "nothing more can be done" in await cli.fails(1, "decisions", "agree", process, *TM)


async def test_a_practice_concern_through_the_command(cli: Cli) -> None:
    out = await cli.ok(
        "practice-concern", "raise", "--authority", "waltham-forest", *WF_TM, "--about-id", "wf-iro-a",
        "--about-role", "iro", "--team", "team-a", "--summary", "Parents were not invited to the review.",
    )  # fmt: skip
    concern = _started_id(out)
    assert "with Line manager of the IRO / CP Co-ordinator; due by the end of" in out
    await cli.ok("practice-concern", "respond", concern, *QA, "--feedback", "Invitation sent late.")
    await cli.ok("practice-concern", "escalate", concern, *WF_TM, "--reason", "They were never sent.")
    status = await cli.ok("practice-concern", "status", concern)
    assert "held by:    Assistant Director for Quality Assurance" in status
    assert "stage:      Concern about IRO/CP Co-ordinator performance: AD for Quality Assurance" in status
    await cli.ok("practice-concern", "respond", concern, *AD, "--feedback", "Guidance reissued.")
    history = await cli.ok("practice-concern", "history", concern)
    assert all(k in history for k in ("practice_concern_raised", "practice_feedback", "practice_escalated"))
    assert history.count("practice_feedback") == 2
    assert '"outcome": "concluded"' in await cli.ok("practice-concern", "status", concern, "--json")


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("decisions", "status", "dudley-C1-0001"), 2, "is not a review decisions id"),
        (("practice-concern", "status", "waltham-forest-practice-0000000001"), 2, "unknown escalation"),
        (
            ("decisions", "send", "--authority", "gloucestershire", "--child-ref", "C4F2A9",
             "--as-id", "glo-iro-a", "--as-role", "iro", "--review-date", "2026-01-05", "--decisions", "x"),
            1,
            "has no deemed_agreement section",
        ),
        (
            ("decisions", "send", "--authority", "dudley", "--child-ref", "C4F2A9", "--team", "team-z", *IRO,
             "--review-date", "2026-01-05", "--decisions", "x"),
            2,
            "team 'team-z' is not in Dudley Metropolitan Borough Council's directory",
        ),
        (
            ("practice-concern", "raise", "--authority", "waltham-forest", *WF_TM, "--about-id", "wf-iro-a",
             "--about-role", "team_manager", "--summary", "x"),
            1,
            "a practice concern is about",
        ),
        (
            ("practice-concern", "raise", "--authority", "waltham-forest", *WF_TM,
             "--about-id", "nobody-here", "--about-role", "iro", "--summary", "x"),
            2,
            "--about-id 'nobody-here' is not in",
        ),
        (("decisions", "send", "--authority", "dudley"), 2, "the following arguments are required"),
    ],
)  # fmt: skip
async def test_bad_input_and_refusals_say_what_to_fix(
    cli: Cli, args: tuple[str, ...], code: int, says: str
) -> None:
    line = await cli.fails(code, *args)
    assert says in line and "\n" not in line.strip(), line
