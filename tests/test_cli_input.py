"""``escalate`` with input it must refuse, and escalations that cannot answer at once.

Every refusal is one line naming the option and how to put it right, with the documented exit status (2 bad
input, 3 unavailable), never a traceback. A busy escalation is asked again until ``--wait`` runs out.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from protocols import load_protocol
from schemas.escalation import ActionResult, Actor, AddNote, Concern, EscalationView, RaiseConcern, Status
from starter.cli import BUSY, EXIT_BAD_INPUT, EXIT_UNAVAILABLE
from starter.escalations import prepare
from tests.cli_runner import ESCALATE, Cli
from tests.workflow_harness import unique_ref

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOWHERE = "127.0.0.1:1"  # nothing listens there: bad input must be refused before any connection
ACTOR = ["--as-id", "wig-iro-a", "--as-role", "iro"]
LONG = "x" * 20_001
RAISE = [
    "raise",
    "--child-status",  # required where the protocol declares statuses (v2)
    "looked_after",
    "--authority",
    "wigan",
    "--category",
    "1",
    "--child-ref",
    "C4F2A9",
    "--officer-id",
    "wig-iro-a",
    "--officer-role",
    "iro",
    "--summary",
    "No visits.",
    "--impact",
    "Not seen.",
    "--request",
    "Visit.",
]


def _raise_with(option: str, value: str) -> list[str]:
    args = list(RAISE)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    return args


BAD_INPUT = [
    pytest.param(["status", "wigan-C1-0001", "--wait", "inf"], ["--wait", "from 1 to 300"], id="wait-inf"),
    pytest.param(["status", "wigan-C1-0001", "--wait", "nan"], ["--wait", "from 1 to 300"], id="wait-nan"),
    pytest.param(
        ["status", "wigan-C1-0001", "--wait", "-5"], ["--wait", "from 1 to 300"], id="wait-negative"
    ),
    pytest.param(["status", "wigan-C1-0001", "--wait", "1e9"], ["--wait", "from 1 to 300"], id="wait-huge"),
    pytest.param(["--wait", "0", "list"], ["--wait", "from 1 to 300"], id="wait-zero"),
    pytest.param(
        ["calendar", "add-working-days", "9999-12-31", "5"], ["9999-12-31", "years 2000-2100"], id="date-far"
    ),
    pytest.param(
        ["calendar", "add-working-days", "2026-01-01", "100000000"], ["N", "from 0 to 260"], id="days-huge"
    ),
    pytest.param(
        ["protocol", "check", "/dev/zero"], ["/dev/zero", "not a regular file"], id="protocol-device"
    ),
    pytest.param(_raise_with("--sequence", "0"), ["--sequence", "from 1 to 9999"], id="sequence-zero"),
    pytest.param(_raise_with("--sequence", "10000"), ["--sequence", "from 1 to 9999"], id="sequence-huge"),
    pytest.param(_raise_with("--impact", "   "), ["--impact: is empty"], id="impact-empty"),
    pytest.param(_raise_with("--request", " "), ["--request: is empty"], id="request-empty"),
    pytest.param(
        _raise_with("--child-ref", "Jane Smith"), ["--child-ref: 'Jane Smith'", "never a name"], id="ref"
    ),
    pytest.param(_raise_with("--team", "t" * 65), ["--team", "at most 64"], id="team-long"),
    pytest.param(
        _raise_with("--summary", LONG), ["--summary", "20,001", "at most 20,000"], id="summary-long"
    ),
    pytest.param(_raise_with("--category", "c" * 301), ["--category", "at most 300"], id="category-long"),
    pytest.param(
        ["respond", "wigan-C1-0001", *ACTOR, "--answer", LONG], ["--answer", "at most 20,000"], id="answer"
    ),
    pytest.param(
        ["decide-extension", "wigan-C1-0001", *ACTOR, "--decline", "--reason", LONG],
        ["--reason"],
        id="reason",
    ),
    pytest.param(
        ["accept", "wigan-C1-0001", *ACTOR, "--note", LONG], ["--note", "at most 20,000"], id="note-long"
    ),
    pytest.param(["note", "wigan-C1-0001", *ACTOR, "--text", " "], ["--text: is empty"], id="text-empty"),
    pytest.param(
        ["note", "wigan-C1-0001", "--as-id", "a b", "--as-role", "iro", "--text", "x"],
        ["--as-id:"],
        id="as-id",
    ),
    pytest.param(
        ["set-timescale", "wigan-C1-0001", *ACTOR, "--working-days", "61", "--reason", "r"],
        ["--working-days: 61 is too large: at most 60"],
        id="working-days",
    ),
    pytest.param(
        ["request-extension", "wigan-C1-0001", *ACTOR, "--until", "2999-01-01", "--reason", "r"],
        ["--until", "years 2000-2100"],
        id="until-far",
    ),
    pytest.param(
        ["record-meeting", "wigan-C1-0001", *ACTOR, "--held-on", "2026-01-05", "--outcome", "o"]
        + [arg for n in range(51) for arg in ("--attendee", f"staff-{n}")],
        ["--attendee: 51 attendees given; at most 50"],
        id="attendees",
    ),
    pytest.param(
        ["refer-cafcass", "wigan-C1-0001", *ACTOR, "--reason", "r", "--consulted"]
        + [f"r{n}" for n in range(21)],
        ["--consulted: 21 roles given; at most 20"],
        id="consulted",
    ),
    pytest.param(["worker", "--smtp-port", "70000"], ["--smtp-port", "from 1 to 65535"], id="smtp-port"),
    pytest.param(["worker", "--task-queue", ""], ["--task-queue", "1 to 200 characters"], id="task-queue"),
    pytest.param(
        ["worker", "--cached-workflows", "lots"], ["--cached-workflows", "from 0 to 100,000"], id="cache"
    ),
    pytest.param(["status", "Jane Smith"], ["is not an escalation id", "wigan-C4F2A9-0003"], id="id"),
    pytest.param(["status", "w-" + "x" * 200 + "-0001"], ["is not an escalation id"], id="id-long"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUT)
async def test_bad_input_is_one_line_naming_the_option(
    tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    reason = await Cli(NOWHERE, tmp_path).fails(EXIT_BAD_INPUT, *args)
    for part in expected:
        assert part in reason, reason
    assert len(reason) < 400, "a message quotes at most a little of what was given"


async def test_protocol_check_refuses_a_huge_file_before_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(2 * 1024 * 1024)  # sparse: nothing is written, yet it is 2 MiB long
    reason = await Cli(NOWHERE, tmp_path).fails(EXIT_BAD_INPUT, "protocol", "check", str(big))
    assert "2,097,152 bytes is too large" in reason and "at most 1,048,576" in reason


async def test_output_to_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line is written
    try:
        proc = subprocess.run(
            [str(ESCALATE), "protocol", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == b"", proc.stderr.decode()
    assert proc.returncode == 0  # the reader has what it wanted (`escalate list | head -1`): done


async def test_a_worker_with_no_server_says_so_in_one_line(tmp_path: Path) -> None:
    reason = await Cli(NOWHERE, tmp_path).fails(EXIT_UNAVAILABLE, "worker", "--database-url", "sqlite://")
    assert reason.startswith(f"worker: cannot reach Temporal at {NOWHERE}: nothing answers there")


# --- escalations that cannot answer at once ----------------------------------------------------------


@workflow.defn(name="EscalationWorkflow")
class BusyAtFirst:
    """Stands in for an escalation (started with a real raise, so the application layer knows whose it is)
    that is busy with its last change for its first ``busy_times`` updates (a signal sent at start)."""

    @workflow.init
    def __init__(self, raise_: RaiseConcern) -> None:
        self.raise_ = raise_
        self.busy_times = 0
        self.calls = 0

    @workflow.run
    async def run(self, raise_: RaiseConcern) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def set_busy(self, busy_times: int) -> None:
        self.busy_times = busy_times

    @workflow.update
    async def add_note(self, action: AddNote) -> ActionResult:
        return ActionResult(outcome=f"note added: {action.text}", status=Status.AWAITING_RESPONSE, stage="s1")

    @add_note.validator
    def _busy_at_first(self, action: AddNote) -> None:
        # Test-only state in a validator: a refused update leaves no history, so replay is unaffected.
        self.calls += 1
        if self.calls <= self.busy_times:
            raise ApplicationError("still carrying out the last change", type=BUSY, non_retryable=True)

    @workflow.query
    def validations(self) -> int:
        return self.calls

    @workflow.query
    def available_actions(self, actor: Actor) -> list[str]:
        return ["add_note"]

    @workflow.query
    def state(self) -> EscalationView:
        r = self.raise_
        return EscalationView(
            escalation_id=r.escalation_id,
            authority=r.protocol.key,
            track=r.track,
            category=r.category,
            child_ref=r.child_ref,
            status=Status.AWAITING_RESPONSE,
            stage="s1",
            stage_name="Stage one",
            stage_number=1,
            stage_count=1,
            formal=False,
            held_by=[],
            copied=[],
            deadline=None,
            deadline_date=None,
            working_days_left=None,
            total_deadline=None,
            total_working_days_left=None,
            pending_extension=None,
            flags=[],
            timeline=[],
            refusals=[],
        )


@pytest_asyncio.fixture(loop_scope="session")
async def busy_queue(dev_server_env: WorkflowEnvironment) -> AsyncIterator[str]:
    queue = f"busy-{uuid.uuid4().hex[:8]}"
    async with Worker(
        dev_server_env.client,
        task_queue=queue,
        workflows=[BusyAtFirst],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield queue


async def _start(env: WorkflowEnvironment, queue: str, busy_times: int) -> str:
    """A stand-in escalation raised by wig-iro-a (who the commands act as), busy ``busy_times`` times."""
    track = next(t for t in load_protocol("wigan").tracks if "iro" in t.officer_roles)
    raise_ = prepare(
        authority="wigan",
        track=track.key,
        category=track.categories[0],
        child_ref=unique_ref(),
        child_status="looked_after",
        officer=Actor(id="wig-iro-a", role="iro"),
        concern=Concern(summary="No visits.", impact_on_child="Not seen.", requested_action="Visit."),
        team="team-a",
        sequence=1,
    )
    await env.client.start_workflow(
        "EscalationWorkflow",
        raise_,
        id=raise_.escalation_id,
        task_queue=queue,
        start_signal="set_busy",
        start_signal_args=[busy_times],
    )
    return raise_.escalation_id


async def test_an_update_refused_as_busy_is_sent_again_until_accepted(
    dev_server_env: WorkflowEnvironment, busy_queue: str, tmp_path: Path
) -> None:
    escalation_id = await _start(dev_server_env, busy_queue, busy_times=3)
    cli = Cli(dev_server_env.client.service_client.config.target_host, tmp_path)
    try:
        out = await cli.ok("note", escalation_id, *ACTOR, "--text", "Seen today.", "--wait", "60")
        assert out == f"{escalation_id}: note added: Seen today. (awaiting response, stage s1)\n"
        handle = dev_server_env.client.get_workflow_handle(escalation_id)
        assert await handle.query("validations", result_type=int) == 4  # three busy refusals, then accepted
    finally:
        await dev_server_env.client.get_workflow_handle(escalation_id).terminate("test over")


async def test_an_escalation_busy_for_longer_than_wait_is_unavailable(
    dev_server_env: WorkflowEnvironment, busy_queue: str, tmp_path: Path
) -> None:
    escalation_id = await _start(dev_server_env, busy_queue, busy_times=1_000_000)
    cli = Cli(dev_server_env.client.service_client.config.target_host, tmp_path)
    try:
        reason = await cli.fails(
            EXIT_UNAVAILABLE, "note", escalation_id, *ACTOR, "--text", "x", "--wait", "5"
        )
        assert "still busy with its last change" in reason
        # 5 s leaves room for several attempts (0.2 s, then 0.4 s, ... apart) even on a loaded machine.
        handle = dev_server_env.client.get_workflow_handle(escalation_id)
        assert await handle.query("validations", result_type=int) >= 2, "it was asked again before giving up"
    finally:
        await dev_server_env.client.get_workflow_handle(escalation_id).terminate("test over")


async def test_a_stuck_escalation_is_unavailable_not_a_traceback(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """No worker polls its task queue: the update is never taken up."""
    escalation_id = await _start(dev_server_env, f"nobody-{uuid.uuid4().hex[:8]}", busy_times=0)
    cli = Cli(dev_server_env.client.service_client.config.target_host, tmp_path)
    try:
        reason = await cli.fails(
            EXIT_UNAVAILABLE, "note", escalation_id, *ACTOR, "--text", "x", "--wait", "2"
        )
        assert "did not answer" in reason and "no worker" in reason
    finally:
        await dev_server_env.client.get_workflow_handle(escalation_id).terminate("test over")
