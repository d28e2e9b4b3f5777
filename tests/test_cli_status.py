"""``escalate status`` and ``history`` read the escalation alone (``ApplicationCore.view``): the same check of
who may see it and the same audit as every read, a service account only where it is declared for reading,
and a workflow of another kind is no escalation. Real dev server, real worker, a real SQLite audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.db.base import make_engine
from app.audit import AuditLog
from starter.cli import EXIT_BAD_INPUT, EXIT_REFUSED
from tests.cli_runner import Cli, cli_beside_worker, wigan_raise_args
from tests.workflow_harness import unique_ref

pytestmark = pytest.mark.asyncio(loop_scope="session")

ACCOUNTS = """
service_accounts:
  - name: svc-wigan-notes
    authority: wigan
    roles: [{role: team_manager, team: team-a}]
    may: [add_note]
"""
IRO = {"ESCALATE_AS_ID": "wig-iro-a"}


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    async with cli_beside_worker(dev_server_env, tmp_path, ACCOUNTS) as running:
        yield running


def _unknown(escalation_id: str) -> str:
    return f"unknown escalation {escalation_id!r}: There is no escalation {escalation_id} that you can see."


def _reads(tmp_path: Path, escalation_id: str) -> list[tuple[str | None, str, str]]:
    rows = AuditLog(make_engine(f"sqlite:///{tmp_path / 'audit.db'}")).entries(escalation_id=escalation_id)
    return [(r.person_id, r.via, r.outcome) for r in rows if r.event == "read"]


async def test_status_and_history_show_it_to_whom_may_see_it_and_audit_each_read(
    cli: Cli, tmp_path: Path
) -> None:
    child = unique_ref()
    escalation_id = f"wigan-{child}-0001"
    await cli.ok(*wigan_raise_args(child))
    before = len(_reads(tmp_path, escalation_id))  # what raising read, to answer with the stage
    view = await cli.state(escalation_id, **IRO)
    assert view["escalation_id"] == escalation_id and view["status"] == "awaiting_response"
    status = await cli.ok("status", escalation_id, **IRO)
    assert status.startswith(f"{escalation_id}: wigan, track iro") and "last events:" in status
    history = await cli.ok("history", escalation_id, **IRO)
    assert "concern:    The plan's actions have not started." in history and " raised " in history

    unknown = _unknown(escalation_id)
    for command in ("status", "history"):  # no business in it: the words for no escalation at all
        assert await cli.fails(EXIT_BAD_INPUT, command, escalation_id, ESCALATE_AS_ID="wig-iro-b") == unknown
    bot = {"ESCALATE_SERVICE_ACCOUNT": "svc-wigan-notes"}
    refused = await cli.fails(EXIT_REFUSED, "status", escalation_id, **bot)
    assert refused == "refused: Service account svc-wigan-notes is not declared for read"

    reads = _reads(tmp_path, escalation_id)[before:]
    assert reads.count(("wig-iro-a", "cli", "ok")) == 3
    assert reads.count(("wig-iro-b", "cli", "not_found")) == 2
    assert ("svc-wigan-notes", "cli:service", "refused") in reads


async def test_a_workflow_of_another_kind_is_no_escalation(
    cli: Cli, dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Its state is never shown: started where no worker polls, it is not found (its start says so)."""
    other_id = f"wigan-{unique_ref()}-0001"
    handle = await dev_server_env.client.start_workflow(
        "NotAnEscalation", id=other_id, task_queue=f"nobody-polls-{unique_ref()}"
    )
    try:
        reason = await cli.fails(EXIT_BAD_INPUT, "status", other_id, "--json", **IRO)
        assert reason == _unknown(other_id)
        assert _reads(tmp_path, other_id) == [("wig-iro-a", "cli", "not_found")]
    finally:
        await handle.terminate()
