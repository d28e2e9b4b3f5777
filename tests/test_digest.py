"""The weekly digest of outstanding alerts (seed 001 Appendix 6; seed 003 1.5): who gets which alerts (the
pure grouping), the mails for real (one query of the record store, a real SMTP server, once per week), its
Temporal Schedule made idempotently, and ``escalate digest send``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.db_records import DbRecordStore
from activities.digest import Alert, DigestActivities, plan
from activities.directory import Person, load_directory_file
from activities.settings import SmtpSettings
from protocols import load_protocol
from schemas.digest import DigestRequest, DigestResult, iso_week
from schemas.effects import EscalationSnapshot, RecordEventInput
from schemas.escalation import Actor, EventKind, Status, TimelineEntry
from starter.digest import ensure_digest_schedule
from tests.cli_runner import Cli
from tests.databases import DIRECTORIES, migrated_engine
from tests.smtp_server import Capture
from worker import workflow_runner
from workflows.digest import SCHEDULE_ID, WORKFLOW_TYPE, WeeklyDigestWorkflow
from workflows.escalation import TASK_QUEUE

WF = load_protocol("waltham-forest")
GLO = load_protocol("gloucestershire")
PEOPLE = load_directory_file(DIRECTORIES / "waltham-forest.yaml")


def alert(n: int, held_by: tuple[str, ...], team: str | None = "team-a", **changes: object) -> Alert:
    fields: dict[str, object] = {
        "escalation_id": f"waltham-forest-C{n:04d}-0000000001",
        "authority": "waltham-forest",
        "track": "iro",
        "team": team,
        "category": "Other",
        "stage_name": "Stage 2 - Formal management alert to the Team Manager",
        "status": "awaiting_response",
        "held_by": held_by,
        "deadline_date": date(2026, 3, n),
        "flags": (),
        "child_ref": f"C{n:04d}",
    }
    return Alert(**{**fields, **changes})  # type: ignore[arg-type]


def directory_resolve(authority: str, team: str | None, role: str) -> Person | None:
    held = [a for a in PEOPLE.assignments if a.role == role and a.team in (team, None)]
    return PEOPLE.person(held[0].person) if held else None


# --- who gets what (pure) --------------------------------------------------------------------------------


def test_each_holder_gets_theirs_and_the_qa_manager_everything_once() -> None:
    alerts = [
        alert(1, ("team_manager",)),
        alert(2, ("team_manager",), team="team-b"),
        alert(3, ("head_of_service",)),
        alert(4, ("raising_officer",)),  # waiting for the officer's decision: no manager to tell
        alert(5, ("team_manager",), track="practice-concern"),  # not an alert of the ladder
        alert(6, ("team_manager",), authority="gloucestershire"),
    ]
    planned, unfilled = plan(alerts, {"waltham-forest": WF, "gloucestershire": GLO}, directory_resolve)
    got = {(p.person.id, p.everything): [a.child_ref for a in p.alerts] for p in planned}
    assert got == {
        ("wf-qa-practice-manager", True): ["C0001", "C0002", "C0003", "C0004"],
        ("wf-team-manager-a", False): ["C0001"],
        ("wf-team-manager-b", False): ["C0002"],
        ("wf-head-of-service", False): ["C0003"],
    }
    assert unfilled == []


def test_a_role_nobody_holds_is_reported_and_the_others_still_told() -> None:
    def nobody_in_team_b(authority: str, team: str | None, role: str) -> Person | None:
        return None if team == "team-b" else directory_resolve(authority, team, role)

    planned, unfilled = plan(
        [alert(1, ("team_manager",)), alert(2, ("team_manager",), team="team-b")],
        {"waltham-forest": WF},
        nobody_in_team_b,
    )
    assert unfilled == ["waltham-forest: team_manager for team-b"]
    assert {p.person.id for p in planned} == {"wf-team-manager-a", "wf-qa-practice-manager"}
    assert iso_week(date(2026, 11, 26)) == "2026-W48" and iso_week(date(2027, 1, 1)) == "2026-W53"


# --- the mails, for real ---------------------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url, directories=DIRECTORIES) as engine:
        yield engine


def _record(store: DbRecordStore, ref: str, team: str, held_by: list[str], status: Status) -> str:
    escalation_id = f"waltham-forest-{ref}-{uuid.uuid4().int % 10**10:010d}"
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    store.append_event(
        RecordEventInput(
            escalation_id=escalation_id,
            run_id="run",
            authority="waltham-forest",
            child_ref=ref,
            track="iro",
            status=status,
            stage="stage-2",
            entry=TimelineEntry(seq=1, at=at, kind=EventKind.RAISED, actor=Actor(id="wf-iro-a", role="iro")),
            snapshot=EscalationSnapshot(
                category="Other",
                team=team,
                raised_by=Actor(id="wf-iro-a", role="iro"),
                raised_at=at,
                stage_name="Stage 2 - Formal management alert to the Team Manager",
                stage_number=2,
                formal=True,
                held_by=held_by,
                deadline_date=date(2026, 3, 9),
            ),
        )
    )
    return escalation_id


def _smtp(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        tls="none",
        mail_from="escalations@example.org",
        reply_local="escalations",
        reply_domain="replies.example.org",
    )


def _worker(client: Client, queue: str, engine: Engine, smtp: SmtpSettings) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[WeeklyDigestWorkflow],
        activities=DigestActivities(engine, smtp).all(),
        activity_executor=ThreadPoolExecutor(max_workers=2),
        workflow_runner=workflow_runner(),  # as the product's worker runs it (zoneinfo passed through)
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_the_digest_mails_each_manager_once_a_week(
    time_skipping_env: WorkflowEnvironment, engine: Engine, smtp_server: tuple[Capture, int]
) -> None:
    capture, port = smtp_server
    store = DbRecordStore(engine)
    mine = _record(store, "C0001", "team-a", ["team_manager"], Status.AWAITING_RESPONSE)
    theirs = _record(store, "C0002", "team-b", ["team_manager"], Status.AWAITING_RESPONSE)
    _record(store, "C0003", "team-a", ["team_manager"], Status.RESOLVED)  # closed: not outstanding
    queue = f"test-{uuid.uuid4().hex[:8]}"
    client = time_skipping_env.client

    async def run(request: DigestRequest) -> DigestResult:
        result: DigestResult = await client.execute_workflow(
            WORKFLOW_TYPE,
            request,
            id=f"digest-{uuid.uuid4().hex}",
            task_queue=queue,
            result_type=DigestResult,
        )
        return result

    before = len(capture.deliveries)
    async with _worker(client, queue, engine, _smtp(port)):
        dry = await run(DigestRequest(authority="waltham-forest", week="2026-W10", dry_run=True))
        assert len(capture.deliveries) == before and not any(m.sent for m in dry.mails)
        first = await run(DigestRequest(authority="waltham-forest", week="2026-W10"))
        again = await run(DigestRequest(authority="waltham-forest", week="2026-W10"))
        next_week = await run(DigestRequest(authority="waltham-forest", week="2026-W11"))
    counts = {(m.person_id, m.alerts, m.everything) for m in first.mails}
    assert counts == {
        ("wf-team-manager-a", 1, False),
        ("wf-team-manager-b", 1, False),
        ("wf-qa-practice-manager", 2, True),
    }
    assert all(m.sent for m in first.mails) and not any(m.sent for m in again.mails)
    assert all(m.sent for m in next_week.mails)
    mails = capture.deliveries[before:]
    assert len(mails) == 6  # three this week (once, though run twice), three the next
    by_address = {d.rcpt_tos[0]: d.message for d in mails[:3]}
    manager = PEOPLE.person("wf-team-manager-a")
    assert manager is not None
    text = by_address[manager.email].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (
        mine in text
        and theirs not in text
        and "Outstanding alerts, week 2026-W10: 1" in str(by_address[manager.email]["Subject"])
    )
    qa = PEOPLE.person("wf-qa-practice-manager")
    assert qa is not None
    everything = by_address[qa.email].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert mine in everything and theirs in everything and "Every alert of London Borough" in everything


# --- the schedule and the command --------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_the_schedule_is_made_once(dev_server_env: WorkflowEnvironment) -> None:
    client = dev_server_env.client
    await ensure_digest_schedule(client)  # made now, or by an earlier test of the session
    assert await ensure_digest_schedule(client) is False  # a second worker or `escalate up`: left alone
    description = await client.get_schedule_handle(SCHEDULE_ID).describe()
    spec = description.schedule.spec
    assert spec.time_zone_name == "Europe/London" and [r.start for r in spec.calendars[0].hour] == [7]


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with migrated_engine(url, directories=DIRECTORIES) as engine:
        store = DbRecordStore(engine)
        _record(store, "C0001", "team-a", ["team_manager"], Status.AWAITING_RESPONSE)
        smtp = _smtp(1)  # a dry run sends nothing: no server needed
        async with _worker(dev_server_env.client, TASK_QUEUE, engine, smtp):
            yield Cli(dev_server_env.client.service_client.config.target_host, tmp_path)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_command_says_who_would_get_what(cli: Cli) -> None:
    out = await cli.ok("digest", "send", "--authority", "waltham-forest", "--dry-run")
    assert "digest(s) would go out (dry run: nothing sent)" in out
    assert "would send: waltham-forest wf-team-manager-a (team_manager): their alerts, 1" in out
    assert "would send: waltham-forest wf-qa-practice-manager (qa_practice_manager): every open alert" in out
    assert "has no weekly digest" in await cli.fails(2, "digest", "send", "--authority", "gloucestershire")
    assert "ISO week" in await cli.fails(2, "digest", "send", "--week", "48")
