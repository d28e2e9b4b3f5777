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
from workflows.activation_order import tasks_to_split

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


# --- histories saved when the product was tried from outside (see workflows.activation_order) -----------

EVIDENCE = sorted((HISTORIES / "evidence").glob("*.json"))
SPLIT_TASKS = {"gloucestershire-S3041-0001": 29, "wigan-S2014-0001": 33}
"""Histories in which a warm worker ran an activity result before an update of the same workflow task."""


def test_the_evidence_histories_are_kept() -> None:
    assert {p.stem for p in EVIDENCE} >= set(SPLIT_TASKS) | {"gloucestershire-FZ001-0001"}


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", EVIDENCE, ids=[p.stem for p in EVIDENCE])
async def test_an_evidence_history_replays(path: Path) -> None:
    """Fuzzed signals replay as they ran; a split task replays once the runner has learned it.

    The first replay of a split task fails exactly as a worker's would (the SDK regroups the update with
    the activity result); the worker's next attempt, like Temporal's retry of the workflow task, runs it
    split and replays the whole history.
    """
    history = _history(path)
    run_id = history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    first = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    if path.stem not in SPLIT_TASKS:
        assert first.replay_failure is None, f"{path.name}: {first.replay_failure}"
        assert not tasks_to_split(run_id)
        return
    if first.replay_failure is not None:  # not yet learned in this process
        assert "Update machine does not handle this event" in str(first.replay_failure)
    assert tasks_to_split(run_id) == {SPLIT_TASKS[path.stem]}
    again = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert again.replay_failure is None, f"{path.name}: {again.replay_failure}"
