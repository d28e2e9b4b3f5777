"""A stage's clock starts when its notice goes out: an unfilled role or a mail server that is down stalls
the escalation visibly (``status``, the search attributes' flags) with the stage's deadline withdrawn, the
officer and the protocol's QA role are told, and the notice goes out (its time counted from then) once the
directory is synced (``escalate directory sync``) or the mail server is back.

End to end on the time-skipping test server, with the database record store and directory (SQLite), and a
real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.db_records import DbRecordStore
from activities.directory import load_directory_file, sync_directory
from activities.mail import SmtpNotifier
from activities.settings import Settings, SmtpSettings
from activities.working_days import plan_schedule
from schemas.escalation import Actor, EscalationView, EventKind, Flag, RaiseConcern
from schemas.schedule import ScheduleRequest
from starter.directory_sync import sync_directory as sync_command
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import make_raise
from tests.smtp_server import Capture, start_capture
from tests.workflow_harness import Run, replay, with_unique_id
from worker import build_worker
from workflows.escalation import WORKFLOW_TYPE

OFFICER = Actor(id="glo-iro-a", role="iro")
UNFILLED = "stall-unfilled-role-then-directory-sync"
MAIL_DOWN = "stall-mail-server-down-then-back"
"""The names their histories are recorded under (``RECORD_HISTORIES=1``)."""
MANAGER_A = "  - {role: team_manager, team: team-a, person: glo-team-manager-a}\n"


@pytest.fixture
def directories(tmp_path: Path) -> Path:
    """A copy of the sample directories the test may edit (then sync)."""
    folder = tmp_path / "directories"
    shutil.copytree(DIRECTORIES, folder)
    return folder


@pytest.fixture
def engine(tmp_path: Path, directories: Path) -> Iterator[Engine]:
    with migrated_engine(f"sqlite:///{tmp_path / 'records.db'}", directories=directories) as engine:
        yield engine


def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        tls="none",
        mail_from="escalations@glos.example.org",
        reply_local="escalations",
        reply_domain="replies.example.org",
    )


def set_team_manager_a(directories: Path, engine: Engine, *, present: bool) -> None:
    """Edit the Gloucestershire file: team-a's team manager assigned or not (synced only if asked)."""
    path = directories / "gloucestershire.yaml"
    text = path.read_text(encoding="utf-8")
    assert MANAGER_A in text or present
    text = text.replace(MANAGER_A, "")
    if present:
        text += MANAGER_A
    path.write_text(text, encoding="utf-8")


def raise_for_team_a() -> RaiseConcern:
    return with_unique_id(make_raise("gloucestershire", officer=OFFICER)).model_copy(
        update={"team": "team-a"}
    )


@asynccontextmanager
async def escalation(
    env: WorkflowEnvironment,
    engine: Engine,
    directories: Path,
    port: int,
    raise_: RaiseConcern,
    tmp: Path,
    record_as: str,
) -> AsyncIterator[Run]:
    """A worker with the real record store, directory and mail (and the directory sync), and the escalation
    started on it; its history replays on the current code at the end."""
    queue = f"test-stall-{raise_.escalation_id[-10:]}"
    worker = build_worker(
        env.client,
        queue,
        records=DbRecordStore(engine),
        notifier=SmtpNotifier(engine, smtp_settings(port)),
        engine=engine,
        settings=Settings(directory_dir=directories),
    )
    async with worker:
        handle = await env.client.start_workflow(
            WORKFLOW_TYPE, raise_, id=raise_.escalation_id, task_queue=queue, result_type=Any
        )
        run = Run(env, handle, tmp)
        run.queue = queue  # type: ignore[attr-defined]
        try:
            yield run
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test ended with the escalation still open")
        history = await handle.fetch_history()
    await replay(history, record_as=record_as)


def email(person_id: str) -> str:
    person = load_directory_file(DIRECTORIES / "gloucestershire.yaml").person(person_id)
    assert person is not None
    return person.email


async def delivered(capture: Capture, address: str, timeout: float = 10.0) -> None:
    """Wait until a message to ``address`` has arrived."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(address in d.rcpt_tos for d in capture.deliveries):
        assert loop.time() < deadline, f"no mail to {address} within {timeout}s"
        await asyncio.sleep(0.05)


def holder(role: str) -> str:
    directory = load_directory_file(DIRECTORIES / "gloucestershire.yaml")
    return next(a.person for a in directory.assignments if a.role == role)


def latest(view: EscalationView, kind: EventKind) -> Any:
    return next(e for e in reversed(view.timeline) if e.kind is kind)


def due_date_from(received_at: Any, days: int = 5) -> Any:
    return plan_schedule(ScheduleRequest(received_at=received_at, working_days=days)).due_date


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unfilled_role_stalls_visibly_and_a_directory_sync_starts_the_clock_then(
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    engine: Engine,
    directories: Path,
    smtp_server: tuple[Capture, int],
) -> None:
    capture, port = smtp_server
    async with escalation(
        time_skipping_env, engine, directories, port, raise_for_team_a(), tmp_path, UNFILLED
    ) as run:
        informal = await run.view()
        assert informal.stage == "informal"
        await delivered(capture, email(holder("social_worker")))
        assert (await run.view()).stalled is None
        # Team-a's team manager leaves: the directory is synced without them.
        set_team_manager_a(directories, engine, present=False)
        sync_directory(engine, "gloucestershire", load_directory_file(directories / "gloucestershire.yaml"))
        await run.skip_past_deadline()

        stalled = await run.eventually(lambda v: v.stalled is not None)
        assert stalled.stage == "formal-1"
        assert stalled.stalled == "stalled: nobody holds team_manager for team-a"
        assert Flag.STALLED in stalled.flags
        assert stalled.deadline is None and stalled.working_days_left is None  # its time has not begun
        assert stalled.total_deadline is None  # nor the formal process's, which it would have begun
        told = latest(stalled, EventKind.STALLED)
        assert "nobody holds team_manager for team-a" in told.text and "has not begun" in told.text
        # The officer and the QA role (breach_notify: the Head of the Independent Reviewing Service) are told.
        told_to = {
            r for d in capture.deliveries if "stalled" in str(d.message["Subject"]) for r in d.rcpt_tos
        }
        assert told_to == {email("glo-iro-a"), email(holder("head_of_independent_reviewing_service"))}

        # Days pass: nothing escalates, as no deadline runs (held notices are tried again meanwhile).
        await run.skip_to(await run.now() + timedelta(days=3))
        waiting = await run.view()
        assert waiting.stage == "formal-1" and waiting.stalled is not None and waiting.deadline is None
        assert not [e for e in waiting.timeline if e.kind is EventKind.DEADLINE_PASSED and e.seq > told.seq]
        mails_before = len(capture.deliveries)

        # The directory file gains the person; `escalate directory sync` stores it and tells the escalation.
        set_team_manager_a(directories, engine, present=True)
        synced_at = await run.now()
        result = await sync_command(time_skipping_env.client, ["gloucestershire"], run.queue)  # type: ignore[attr-defined]
        assert result.synced["gloucestershire"] > 0 and run.handle.id in result.stalled

        moving = await run.eventually(lambda v: v.stalled is None)
        assert Flag.STALLED not in moving.flags
        sent = latest(moving, EventKind.SENT_TO_STAGE)
        assert sent.stage == "formal-1" and sent.at >= synced_at and "runs from now" in sent.text
        assert moving.deadline_date == due_date_from(sent.at)  # five working days from delivery
        assert moving.total_deadline_date == due_date_from(sent.at, 20)
        assert latest(moving, EventKind.NOTICES_DELIVERED).seq > sent.seq
        to_manager = [
            d for d in capture.deliveries[mails_before:] if email("glo-team-manager-a") in d.rcpt_tos
        ]
        subjects = [str(d.message["Subject"]) for d in to_manager]
        # The held notices of the informal stage (copied to the manager) go out as they were, and the
        # stage is sent afresh with the deadline counted from now.
        assert len(subjects) == 3, subjects
        assert sum("escalated to you" in s for s in subjects) == 1, subjects
        assert any(f"{moving.deadline_date:%-d %B %Y}" in s for s in subjects), subjects


@pytest.mark.asyncio(loop_scope="session")
async def test_a_mail_server_down_for_a_while_starts_the_stages_clock_when_it_is_back(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, engine: Engine, directories: Path
) -> None:
    capture = Capture()
    server = start_capture(capture)
    port = server.port
    async with escalation(
        time_skipping_env, engine, directories, port, raise_for_team_a(), tmp_path, MAIL_DOWN
    ) as run:
        await delivered(capture, email(holder("social_worker")))
        informal = await run.view()
        # Past the informal stage's reminder, then the mail server goes down.
        assert informal.deadline is not None
        await run.skip_to(informal.deadline - timedelta(hours=1))
        await run.eventually(lambda v: any(e.kind is EventKind.REMINDER for e in v.timeline))
        await delivered(capture, email("glo-team-manager-a"))
        server.stop()
        await run.skip_past_deadline()

        stalled = await run.eventually(lambda v: v.stalled is not None, timeout=30)
        assert stalled.stage == "formal-1" and stalled.deadline is None
        assert stalled.stalled == "stalled: the mail server cannot take mail"
        # Down for hours: tried again and again meanwhile, the stage's time has still not begun.
        await run.skip_to(await run.now() + timedelta(hours=5))
        waiting = await run.view()
        assert waiting.stalled is not None and waiting.deadline is None and waiting.stage == "formal-1"

        back = Controller(capture, hostname="127.0.0.1", port=port)
        back.start()
        try:
            back_at = await run.now()
            await run.skip_to(back_at + timedelta(hours=1, minutes=1))  # the next try comes within the hour
            moving = await run.eventually(lambda v: v.stalled is None)
            sent = latest(moving, EventKind.SENT_TO_STAGE)
            assert sent.stage == "formal-1" and sent.at >= back_at
            assert moving.deadline_date == due_date_from(sent.at)
            assert moving.total_deadline_date == due_date_from(sent.at, 20)
            # The stall's own notices (to the officer and the QA role) went out once it was back.
            await delivered(capture, email("glo-iro-a"))
            told = [d for d in capture.deliveries if "stalled" in str(d.message["Subject"])]
            assert {r for d in told for r in d.rcpt_tos} == {
                email("glo-iro-a"),
                email(holder("head_of_independent_reviewing_service")),
            }
        finally:
            back.stop()
