"""The ``escalate`` command as people run it: installed console script, subprocesses, a real dev server.

Each call is a separate process, as it would be from a shell: output and exit status are what a person
sees. A worker runs in this process on the ``escalations`` task queue (file record store and outbox, so
the test needs no database or mail server).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import signal
import smtplib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.working_days import LONDON, WorkingDayCalendar
from starter.cli import EXIT_BAD_INPUT, EXIT_REFUSED
from starter.mail_catcher import start_catcher
from tests.cli_runner import ESCALATE, TIMEOUT_S, Cli
from tests.temporal_servers import free_port
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    if not ESCALATE.exists():
        pytest.fail(f"{ESCALATE} is missing: install the project (pip install -e .) so the command exists")
    worker = file_worker(dev_server_env, TASK_QUEUE, tmp_path)
    async with worker:
        yield Cli(dev_server_env.client.service_client.config.target_host, tmp_path)


def _today() -> date:
    return datetime.now(UTC).astimezone(LONDON).date()


async def _history_length(env: WorkflowEnvironment, escalation_id: str) -> int:
    handle = env.client.get_workflow_handle(escalation_id)
    return len([e async for e in handle.fetch_history_events()])


async def _listed(cli: Cli, escalation_id: str, *filters: str) -> str:
    """``escalate list`` output once it shows ``escalation_id`` (visibility is eventually consistent)."""
    give_up = asyncio.get_running_loop().time() + TIMEOUT_S
    while True:
        out = await cli.ok("list", *filters)
        if escalation_id in out or asyncio.get_running_loop().time() > give_up:
            return out
        await asyncio.sleep(0.2)


def _raise_args(authority: str, track: str, category: str, child: str, officer: str, role: str) -> list[str]:
    return [
        "raise",
        "--child-status",  # required where the protocol declares statuses (v2)
        "looked_after",
        "--authority",
        authority,
        "--track",
        track,
        "--category",
        category,
        "--child-ref",
        child,
        "--team",
        "team-a",
        "--officer-id",
        officer,
        "--officer-role",
        role,
        "--summary",
        "The plan's actions have not started.",
        "--impact",
        "The child waits for contact with siblings.",
        "--request",
        "Start the actions and confirm dates.",
    ]


async def test_a_whole_escalation_through_the_command(cli: Cli, dev_server_env: WorkflowEnvironment) -> None:
    child = unique_ref()
    iro = {"ESCALATE_AS_ID": "glo-iro-a", "ESCALATE_AS_ROLE": "iro"}
    cli.env = dict(iro)  # who reads (status, history, list): the officer who raised it
    out = await cli.ok(
        *_raise_args("gloucestershire", "iro-cp", "4", child, "glo-iro-a", "iro"), "--sequence", "1"
    )
    escalation_id = f"gloucestershire-{child}-0001"
    assert out.startswith(f"raised {escalation_id}: awaiting response at Informal resolution, held by Social")
    assert "; due " in out
    view = await cli.state(escalation_id)
    assert (view["stage"], view["status"], view["category"]) == (
        "informal",
        "awaiting_response",
        "Key decision-making",
    )
    due = date.fromisoformat(view["deadline_date"])
    assert due == WorkingDayCalendar([]).add_working_days(_today(), 5)

    human = await cli.ok("status", escalation_id)
    assert "stage:      1/5 Informal resolution (informal)" in human
    assert f"deadline:   {due:%A %-d %B %Y}" in human

    actions = await cli.ok(
        "actions", escalation_id, "--as-id", "glo-social-worker-a", "--as-role", "social_worker"
    )
    assert "respond" in actions and "note" in actions and "escalate" not in actions.split("may:")[1]

    # Someone who is not the stage's recipient is refused, and nothing is written.
    events_before = await _history_length(dev_server_env, escalation_id)
    reason = await cli.fails(
        EXIT_REFUSED,
        "respond",
        escalation_id,
        "--as-id",
        "glo-team-manager-a",
        "--as-role",
        "team_manager",
        "--answer",
        "Not mine to answer.",
    )
    assert reason.startswith("refused: ") and "team_manager" in reason.replace("Team Manager", "team_manager")
    assert await _history_length(dev_server_env, escalation_id) == events_before

    out = await cli.ok(
        "respond",
        escalation_id,
        "--as-id",
        "glo-social-worker-a",
        "--as-role",
        "social_worker",
        "--answer",
        "Contact starts next month.",
    )
    assert out.startswith(f"{escalation_id}: ") and "awaiting decision" in out

    out = await cli.ok("escalate", escalation_id, "--reason", "Next month is too late.", **iro)
    assert "stage formal-1" in out
    view = await cli.state(escalation_id)
    assert view["stage"] == "formal-1" and view["total_deadline_date"] is not None

    # The team manager asks for more time; a date in the past is refused before anything is sent.
    tm = ["--as-id", "glo-team-manager-a", "--as-role", "team_manager"]
    events_before = await _history_length(dev_server_env, escalation_id)
    reason = await cli.fails(
        EXIT_BAD_INPUT, "request-extension", escalation_id, *tm, "--until", "2020-01-06", "--reason", "Leave."
    )
    assert "is in the past" in reason and "6 January 2020" in reason
    assert await _history_length(dev_server_env, escalation_id) == events_before

    until = WorkingDayCalendar([]).add_working_days(date.fromisoformat(view["deadline_date"]), 2)
    await cli.ok(
        "request-extension",
        escalation_id,
        *tm,
        "--until",
        until.isoformat(),
        "--reason",
        "Panel meets Tuesday.",
    )
    view = await cli.state(escalation_id)
    assert view["pending_extension"]["until"] == until.isoformat()
    assert "extension:  glo-team-manager-a asks for more time" in await cli.ok("status", escalation_id)
    await cli.ok("decide-extension", escalation_id, "--approve", **iro)
    view = await cli.state(escalation_id)
    assert view["deadline_date"] == until.isoformat() and view["pending_extension"] is None

    await cli.ok("note", escalation_id, *tm, "--text", "Panel booked.")
    await cli.ok("views", escalation_id, "--whose", "child", "--views", "Wants to see her brother.", **iro)
    out = await cli.ok(
        "bypass",
        escalation_id,
        "--to-stage",
        "formal-3",
        "--reason",
        "Contact stopped today.",
        "--emergency",
        **iro,
    )
    assert "stage formal-3" in out
    await cli.ok(
        "respond",
        escalation_id,
        "--as-id",
        "glo-director-of-safeguarding",
        "--as-role",
        "director_of_safeguarding",
        "--answer",
        "Contact restored from Monday.",
    )
    out = await cli.ok("accept", escalation_id, "--note", "Contact restored.", **iro)
    assert "resolved" in out

    history = await cli.ok("history", escalation_id)
    assert history.startswith("concern:    The plan's actions have not started.\nimpact:     The child")
    kinds = [line.split()[3] for line in history.splitlines() if line[:3].strip().isdigit()]
    for kind in (
        "raised",
        "response",
        "escalated",
        "extension_requested",
        "extension_decided",
        "bypassed",
        "resolved",
    ):
        assert kind in kinds, history
    # Ended: a further action is refused with the reason, not a traceback.
    reason = await cli.fails(EXIT_REFUSED, "note", escalation_id, "--text", "Late.", **iro)
    assert "resolved" in reason

    # The list reads visibility, which shows a change a moment after it is made: wait for it.
    listed = await _listed(cli, escalation_id, "--authority", "gloucestershire", "--status", "resolved")
    assert f"{escalation_id}  resolved  " in listed
    assert escalation_id not in await cli.ok("list", "--authority", "gloucestershire", "--open")


async def test_gates_meetings_and_cafcass_through_the_command(cli: Cli) -> None:
    child = unique_ref()
    iro = {"ESCALATE_AS_ID": "wig-iro-a", "ESCALATE_AS_ROLE": "iro"}
    cli.env = dict(iro)
    await cli.ok(*_raise_args("wigan", "iro", "1", child, "wig-iro-a", "iro"), "--sequence", "1")
    escalation_id = f"wigan-{child}-0001"
    await cli.ok("escalate", escalation_id, "--reason", "No answer addresses the drift.", **iro)
    view = await cli.state(escalation_id)
    assert (view["stage"], view["status"]) == ("stage-1", "escalation_due")  # stage 2 needs agreement

    await cli.ok(
        "record-consultation",
        escalation_id,
        "--stage",
        "stage-2",
        "--with-role",
        "iro_team_manager",
        "--agreed",
        "--summary",
        "IRO team manager agrees.",
        **iro,
    )
    view = await cli.state(escalation_id)
    assert (view["stage"], view["status"]) == ("stage-2", "awaiting_response")

    await cli.ok(
        "bypass",
        escalation_id,
        "--to-stage",
        "stage-4",
        "--reason",
        "Permanence hearing is close.",
        "--discussed-with",
        "siu_service_lead",
        **iro,
    )
    await cli.ok(
        "record-meeting",
        escalation_id,
        "--held-on",
        _today().isoformat(),
        "--attendee",
        "wig-iro-a",
        "--attendee",
        "wig-deputy-director-csc",
        "--outcome",
        "No agreement.",
        **iro,
    )
    reason = await cli.fails(
        EXIT_BAD_INPUT,
        "record-meeting",
        escalation_id,
        "--held-on",
        (_today() + timedelta(days=30)).isoformat(),
        "--attendee",
        "x",
        "--outcome",
        "y",
        **iro,
    )
    assert "is in the future: give the day it happened" in reason
    reason = await cli.fails(EXIT_REFUSED, "refer-cafcass", escalation_id, "--reason", "Drifting.", **iro)
    assert "consult" in reason
    out = await cli.ok(
        "refer-cafcass",
        escalation_id,
        "--reason",
        "Plan still drifting.",
        "--consulted",
        "iro_team_manager",
        "siu_service_lead",
        "strategic_lead_safeguarding",
        **iro,
    )
    assert "referred to cafcass" in out


async def test_a_retried_raise_returns_the_same_escalation_and_withdraw(cli: Cli) -> None:
    child = unique_ref()
    cli.env = {"ESCALATE_AS_ID": "dud-iro-a"}
    args = _raise_args("dudley", "iro-cp", "1", child, "dud-iro-a", "iro")
    first = await cli.ok(*args, "--request-id", f"form-{child}")
    escalation_id = first.split()[1].rstrip(":")
    assert re.fullmatch(rf"dudley-{child}-\d{{10}}", escalation_id), escalation_id
    # The same request again (a retry after a time-out): the same escalation, nothing new started.
    again = await cli.ok(*args, "--request-id", f"form-{child}")
    assert again.startswith(f"already raised {escalation_id}: awaiting response")
    # Without a request id each raise is a new request: a second escalation for the child.
    second = (await cli.ok(*args)).split()[1].rstrip(":")
    assert second != escalation_id and second.startswith(f"dudley-{child}-")
    # The same request id with other content is refused, naming what differs.
    changed = [*args[:-2], "--request", "Something else.", "--request-id", f"form-{child}"]
    reason = await cli.fails(EXIT_BAD_INPUT, *changed)
    assert escalation_id in reason and "concern" in reason and "new request id" in reason
    # A chosen sequence names the escalation; used again for the same concern it returns it too.
    assert (await cli.ok(*args, "--sequence", "1")).startswith(f"raised dudley-{child}-0001")
    assert (await cli.ok(*args, "--sequence", "1")).startswith(f"already raised dudley-{child}-0001")
    reason = await cli.fails(EXIT_BAD_INPUT, *args, "--sequence", "1", "--request-id", "x1")
    assert "not allowed with argument" in reason
    out = await cli.ok(
        "withdraw",
        second,
        "--reason",
        "Raised twice.",
        ESCALATE_AS_ID="dud-iro-a",
        ESCALATE_AS_ROLE="iro",
    )
    assert "withdrawn" in out
    assert (await cli.state(escalation_id))["status"] == "awaiting_response"


async def test_bad_input_gets_one_line_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    child = unique_ref()
    cli.env = {"ESCALATE_AS_ID": "wig-iro-a"}
    reason = await cli.fails(EXIT_BAD_INPUT, *_raise_args("atlantis", "iro", "1", child, "x", "iro"))
    assert "unknown authority 'atlantis'" in reason
    reason = await cli.fails(EXIT_BAD_INPUT, "status", f"wigan-{child}-0001")
    assert f"unknown escalation 'wigan-{child}-0001'" in reason
    reason = await cli.fails(
        EXIT_BAD_INPUT,
        "respond",
        f"wigan-{child}-0001",
        "--as-id",
        "wig-team-manager-a",
        "--as-role",
        "team_manager",
        "--answer",
        "x",
    )
    assert "unknown escalation" in reason
    reason = await cli.fails(EXIT_BAD_INPUT, "calendar", "add-working-days", "18/12/2026", "5")
    assert "write YYYY-MM-DD" in reason
    reason = await cli.fails(
        EXIT_BAD_INPUT, "respond", f"wigan-{child}-0001", "--answer", "x", ESCALATE_AS_ID=""
    )
    assert "say who acts: --as-id" in reason

    broken = tmp_path / "broken.yaml"
    broken.write_text("key: broken\nauthority: Nowhere\ntracks: []\n")
    reason = await cli.fails(EXIT_BAD_INPUT, "protocol", "check", str(broken))
    assert str(broken) in reason
    good = Path(__file__).resolve().parents[1] / "protocols" / "wigan.yaml"
    assert (await cli.ok("protocol", "check", str(good))).startswith("ok: Wigan")

    assert "no escalations match" in await cli.ok("list", "--authority", "wigan", "--stage", f"no-{child}")
    # Nothing above started anything for this child.
    assert f"wigan-{child}" not in await cli.ok("list", "--authority", "wigan")


async def test_calendar_and_protocols_need_no_server(tmp_path: Path) -> None:
    cli = Cli("127.0.0.1:1", tmp_path)  # nothing listens there
    out = await cli.ok("calendar", "add-working-days", "2026-12-18", "5")
    assert out.startswith(
        "2026-12-29: Tuesday 29 December 2026 is 5 working days after Friday 18 December 2026"
    )
    assert "skipped 2026-12-28 Mon: Boxing Day (observed)" in out
    listed = await cli.ok("protocol", "list")
    assert {line.split()[0] for line in listed.splitlines()} >= {
        "dudley",
        "gloucestershire",
        "waltham-forest",
        "waltham-forest-fwi",
        "wigan",
    }
    shown = await cli.ok("protocol", "show", "waltham-forest")
    assert "track cp:" in shown and "track iro:" in shown
    reason = await cli.fails(3, "status", "wigan-X-0001", "--wait", "5", ESCALATE_AS_ID="wig-iro-a")
    assert reason.startswith("cannot reach Temporal at 127.0.0.1:1")


async def test_the_worker_command_runs_a_smoke_escalation(cli: Cli) -> None:
    out = await cli.ok("worker", "--smoke")
    assert out.startswith("smoke: ") and "withdrawn" in out


async def test_the_worker_command_takes_its_settings_from_flags(cli: Cli, tmp_path: Path) -> None:
    database = tmp_path / "flagged.db"
    proc = await asyncio.create_subprocess_exec(
        str(ESCALATE),
        "worker",
        "--address",
        cli.address,
        "--task-queue",
        f"cli-{uuid.uuid4().hex[:8]}",
        "--database-url",
        f"sqlite:///{database}",
        "--smtp-port",
        "2525",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT_S)  # the ready line: a condition
        assert f"records in sqlite:///{database}" in first.decode()
        assert database.exists(), "the record store named by the flag was migrated"
        proc.send_signal(signal.SIGINT)  # at once: the worker handles signals before it says it is ready
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    finally:
        if proc.returncode is None:  # a failed assertion must not leave a worker running
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "worker stopped" in out.decode()


class _InterruptAtReadyLine(io.StringIO):
    """Stands in for stdout: when the worker's ready line is written, Ctrl-C arrives at that very moment."""

    def __init__(self) -> None:
        super().__init__()
        self.default_handler = signal.getsignal(signal.SIGINT)
        self.interrupted = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if "worker polling" in text and not self.interrupted:
            if signal.getsignal(signal.SIGINT) == self.default_handler:
                raise AssertionError(
                    "the worker said it was ready before handling SIGINT: Ctrl-C would kill it"
                )
            self.interrupted = True
            signal.raise_signal(signal.SIGINT)
        return written


async def test_a_ctrl_c_just_as_the_worker_is_ready_stops_it_cleanly(
    dev_server_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker code of ``escalate worker``, in this process, so the signal lands exactly at the line."""
    import worker

    database_url = f"sqlite:///{tmp_path / 'records.db'}"
    monkeypatch.setenv("ESCALATION_DATABASE_URL", database_url)  # restored after the test
    monkeypatch.setenv("ESCALATION_DATA_DIR", str(tmp_path))
    address = dev_server_env.client.service_client.config.target_host
    out = _InterruptAtReadyLine()
    with contextlib.redirect_stdout(out):
        code = await asyncio.wait_for(
            worker.main(["--address", address, "--task-queue", f"ready-{uuid.uuid4().hex[:8]}"]), TIMEOUT_S
        )
    assert code == 0 and out.interrupted
    assert out.getvalue().splitlines()[-1] == "worker stopped"
    assert signal.getsignal(signal.SIGINT) == out.default_handler, "the worker left its handler installed"


async def test_mail_lists_and_shows_what_the_catcher_caught(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    port = free_port()
    catcher = start_catcher(folder, "127.0.0.1", port)
    try:
        for n in (1, 2):
            message = EmailMessage()
            message["From"] = "escalations@localhost"
            message["To"] = "gale.dummy@example.org"
            message["Subject"] = f"[wigan-T1-0001] Stage {n}: concern raised with you — answer by Monday"
            message.set_content(f"Body {n}.")
            await asyncio.to_thread(_send, port, message)
    finally:
        catcher.stop()
    cli = Cli("127.0.0.1:1", tmp_path)  # reading caught mail needs no server
    listing = (await cli.ok("mail", "--folder", str(folder))).splitlines()
    assert [line.split()[0] for line in listing] == ["1", "2"]
    assert (
        "gale.dummy@example.org" in listing[0] and "Stage 1: concern raised with you — answer" in listing[0]
    )
    assert (await cli.ok("mail", "--folder", str(folder), "--last", "1")).split()[0] == "2"
    shown = await cli.ok("mail", "2", "--folder", str(folder))
    assert "Subject: [wigan-T1-0001] Stage 2" in shown and "Body 2." in shown
    reason = await cli.fails(EXIT_BAD_INPUT, "mail", "3", "--folder", str(folder))
    assert "no message 3" in reason and "there are 2" in reason


def _send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(message)
