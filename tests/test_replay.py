"""Recorded histories replay against the current code: a change that would break running escalations fails.

The histories in ``tests/histories/`` were recorded from the end-to-end tests
(``RECORD_HISTORIES=1 pytest tests/test_escalation_workflow.py``). Keep old files when the workflow changes:
they stand for escalations already running in production. Add new ones; never regenerate old ones to make
this test pass — use ``workflow.patched`` in the workflow instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from starter.connection import DATA_CONVERTER
from tests.workflow_harness import HISTORIES, replayer

RECORDED = sorted(HISTORIES.glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


def test_histories_are_committed() -> None:
    assert len(RECORDED) >= 20, "record histories with RECORD_HISTORIES=1 and commit them"


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays_on_current_code(path: Path) -> None:
    result = await replayer().replay_workflow(_history(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@workflow.defn(name="EscalationWorkflow", sandboxed=False)
class _ChangedEscalationWorkflow:
    """A workflow of the same name that no longer records the concern first: an incompatible change."""

    @workflow.run
    async def run(self, raise_: object) -> None:
        await workflow.sleep(1)


@pytest.mark.asyncio(loop_scope="session")
async def test_replay_catches_an_incompatible_change() -> None:
    replayer = Replayer(workflows=[_ChangedEscalationWorkflow], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(
        _history(HISTORIES / "withdrawn.json"), raise_on_replay_failure=False
    )
    assert isinstance(result.replay_failure, NondeterminismError)
