"""Raising escalations from a front door: checked before Temporal sees them, then started for real."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from protocols import ProtocolError, load_protocol
from schemas.escalation import Actor, Concern, RaiseConcern, Status
from starter.escalations import prepare
from tests.workflow_harness import file_worker
from workflows import rules
from workflows.escalation import TASK_QUEUE

ROOT = Path(__file__).resolve().parents[1]
CONCERN = Concern(summary="No visits.", impact_on_child="Not seen.", requested_action="Visit this week.")


def _prepare(**overrides: object) -> RaiseConcern:
    fields: dict[str, object] = {
        "authority": "wigan",
        "track": "iro",
        "category": "Quality of practice",
        "child_ref": "C123",
        "sequence": 7,
        "officer": Actor(id="wig-iro-a", role="iro"),
        "team": "team-a",
        "concern": CONCERN,
    }
    fields.update(overrides)
    return prepare(**fields)  # type: ignore[arg-type]


def test_prepare_snapshots_the_protocol_and_names_the_escalation_without_personal_data() -> None:
    categories = load_protocol("wigan").track("iro").categories
    raise_ = _prepare(category=categories[0])
    assert raise_.escalation_id == "wigan-C123-0007"
    assert raise_.protocol.key == "wigan"
    with pytest.raises(rules.Refused, match="choose one of"):
        _prepare(category="Not a category")
    with pytest.raises(rules.Refused, match="cannot raise"):
        _prepare(category=categories[0], officer=Actor(id="x", role="cp_chair"))
    with pytest.raises(ProtocolError, match="unknown authority 'atlantis'"):
        _prepare(authority="atlantis")


@pytest.mark.asyncio(loop_scope="session")
async def test_demo_raises_a_concern_on_a_running_service(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = dev_server_env.client.service_client.config.target_host
    worker = file_worker(dev_server_env, TASK_QUEUE, tmp_path)
    async with worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starter.demo",
            "--address",
            address,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("raised gloucestershire-D") and Status.AWAITING_RESPONSE.value in text
    escalation_id = text.split()[1].rstrip(":")
    handle = dev_server_env.client.get_workflow_handle(escalation_id)
    await handle.terminate("test over")
