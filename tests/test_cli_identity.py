"""Who ``escalate`` acts as: a directory person whose roles the directory confirms, or a declared service
account; every command audited like the web's. Real dev server, real worker, a real SQLite audit log."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.db.base import make_engine
from app.audit import AuditLog
from starter.cli import EXIT_BAD_INPUT, EXIT_REFUSED
from starter.cli.common import name_options
from tests.cli_runner import ESCALATE, Cli, cli_beside_worker, wigan_raise_args
from tests.workflow_harness import unique_ref

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOWHERE = "127.0.0.1:1"  # nothing listens there: who acts is checked before any connection
ACCOUNTS = """
service_accounts:
  - name: svc-wigan-tm
    authority: wigan
    roles: [{role: team_manager, team: team-a}]
    may: [list, read, add_note]
"""


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    async with cli_beside_worker(dev_server_env, tmp_path, ACCOUNTS) as running:
        yield running


def _audit(tmp_path: Path) -> AuditLog:
    return AuditLog(make_engine(f"sqlite:///{tmp_path / 'audit.db'}"))


async def test_a_person_not_in_the_directory_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    cli = Cli(NOWHERE, tmp_path)
    reason = await cli.fails(EXIT_BAD_INPUT, "note", "wigan-C1-0001", "--as-id", "nobody", "--text", "x")
    assert reason.startswith("--as-id: 'nobody' is not in any authority's staff directory"), reason
    reason = await cli.fails(EXIT_BAD_INPUT, "list", ESCALATE_AS_ID="nobody")
    assert reason.startswith("--as-id: 'nobody' is not in"), reason
    reason = await cli.fails(EXIT_BAD_INPUT, "status", "wigan-C1-0001")
    assert reason.startswith("say who acts: --as-id"), reason


async def test_a_role_the_directory_does_not_give_is_refused(tmp_path: Path) -> None:
    cli = Cli(NOWHERE, tmp_path)
    reason = await cli.fails(
        EXIT_BAD_INPUT,
        "respond",
        "wigan-C1-0001",
        "--as-id",
        "wig-iro-a",
        "--as-role",
        "team_manager",
        "--answer",
        "x",
    )
    assert (
        reason == "--as-role: wig-iro-a does not hold the role 'team_manager' in the directory; theirs: iro"
    )
    raising = await cli.fails(EXIT_BAD_INPUT, *wigan_raise_args("C1")[:-2], "--officer-role", "director")
    assert raising.startswith("--officer-role: wig-iro-a does not hold the role 'director'"), raising


async def test_a_service_account_must_be_declared(tmp_path: Path) -> None:
    cli = Cli(NOWHERE, tmp_path, ESCALATION_SERVICE_ACCOUNTS=ACCOUNTS)
    reason = await cli.fails(EXIT_BAD_INPUT, "list", ESCALATE_SERVICE_ACCOUNT="svc-other")
    assert "there is no service account 'svc-other' (declared: svc-wigan-tm)" in reason
    reason = await cli.fails(
        EXIT_BAD_INPUT, "list", ESCALATE_SERVICE_ACCOUNT="svc-wigan-tm", ESCALATE_AS_ID="wig-iro-a"
    )
    assert "leave out --as-id" in reason


async def test_people_and_service_accounts_act_and_are_audited(cli: Cli, tmp_path: Path) -> None:
    child = unique_ref()
    escalation_id = f"wigan-{child}-0001"
    out = await cli.ok(*wigan_raise_args(child))
    assert out.startswith(f"raised {escalation_id}: awaiting response")
    iro = {"ESCALATE_AS_ID": "wig-iro-a"}
    await cli.ok("status", escalation_id, **iro)
    # Someone of the same authority with no business in it: the same words as for no escalation at all.
    stranger = await cli.fails(EXIT_BAD_INPUT, "status", escalation_id, ESCALATE_AS_ID="wig-iro-b")
    assert (
        stranger
        == f"unknown escalation {escalation_id!r}: There is no escalation {escalation_id} that you can see."
    )

    bot = {"ESCALATE_SERVICE_ACCOUNT": "svc-wigan-tm"}
    noted = await cli.ok("note", escalation_id, "--text", "Chased by the nightly script.", **bot)
    assert noted.startswith(f"{escalation_id}: ")
    assert escalation_id in await cli.ok("list", **bot)
    refused = await cli.fails(EXIT_REFUSED, "respond", escalation_id, "--answer", "Plan agreed.", **bot)
    assert refused == "refused: Service account svc-wigan-tm is not declared for respond"

    rows = _audit(tmp_path).entries(escalation_id=escalation_id)
    seen = [(r.person_id, r.via, r.event, r.outcome, r.role) for r in rows]
    assert ("wig-iro-a", "cli", "raise", "ok", "iro") in seen
    assert ("wig-iro-a", "cli", "read", "ok", None) in seen
    assert ("wig-iro-b", "cli", "read", "not_found", None) in seen
    assert ("svc-wigan-tm", "cli:service", "add_note", "ok", "team_manager") in seen
    assert ("svc-wigan-tm", "cli:service", "respond", "refused", None) in seen
    assert all(r.client for r in rows), "the operating-system user is recorded"


async def test_a_refusal_names_the_option_and_a_missing_one_is_bad_input(cli: Cli) -> None:
    child = unique_ref()
    escalation_id = f"wigan-{child}-0001"
    await cli.ok(*wigan_raise_args(child))
    iro = {"ESCALATE_AS_ID": "wig-iro-a", "ESCALATE_AS_ROLE": "iro"}
    reason = await cli.fails(
        EXIT_BAD_INPUT, "bypass", escalation_id, "--to-stage", "stage-4", "--reason", "Hearing close.", **iro
    )
    assert "--discussed-with" in reason and "discussed_with" not in reason, reason


async def test_rule_reasons_name_options_not_fields() -> None:
    assert name_options("a bypass needs a prior discussion: give discussed_with") == (
        "a bypass needs a prior discussion: give --discussed-with"
    )
    assert name_options("approved with exceed_total_limit and a reason; team_manager may") == (
        "approved with --exceed-total-limit and a reason; team_manager may"
    ), "role keys are not fields"
    assert name_options("who (with_role), when (held_on)", {"with_role": "--consulted-with"}) == (
        "who (--consulted-with), when (--held-on)"
    )


async def test_a_list_cut_short_by_its_reader_exits_quietly(cli: Cli) -> None:
    await cli.ok(*wigan_raise_args(unique_ref()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCALATE_", "TEMPORAL_"))}
    env.update(cli.env, TEMPORAL_ADDRESS=cli.address, ESCALATE_AS_ID="wig-iro-a")
    done = subprocess.run(
        f"'{ESCALATE}' list | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        cwd=cli.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), done
    assert done.stdout.split() == ["ESCALATION", "STATUS", "STAGE", "DUE", "LEFT", "FLAGS"]
    # The reader gone before the first line (the same as `head` exiting early on a long list): still 0.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        cut = subprocess.run(
            [str(ESCALATE), "list"],
            cwd=cli.cwd,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (cut.returncode, cut.stderr) == (0, b""), cut
