"""``escalate list`` reads a read model: visibility (filters in the query, sorted by deadline, no worker,
no state query), or the record store's ``escalations`` table when it has the database (the same rows).

Each test starts its own dev server so that only its escalations are there to list: one with the
escalation search attributes registered, one without (the fallback).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput
from temporalio.testing import WorkflowEnvironment

from activities.db.base import DEFAULT_DATABASE_URL as RECORDS_DEFAULT
from activities.db_records import DbRecordStore
from activities.recording import OutboxNotifier
from activities.working_days import LONDON, plan_schedule
from protocols import load_protocol
from schemas.escalation import Actor, Concern, EscalationView, RaiseConcern, Respond, Status, Withdraw
from schemas.schedule import ScheduleRequest
from starter.connection import DATA_CONVERTER
from starter.escalations import prepare, raise_concern
from starter.read_model import (
    DEFAULT_DATABASE_URL,
    ListFilter,
    Listing,
    RecordStoreUnavailable,
    list_escalations,
    list_from_records,
    visibility_query,
    working_days_left,
)
from starter.temporal_binaries import temporal_cli_path
from tests.cli_runner import ESCALATE, Cli
from tests.databases import migrated_engine
from tests.temporal_servers import require_or_skip
from tests.workflow_harness import file_worker, unique_ref
from worker import build_worker
from workflows import search_attributes as indexed
from workflows.escalation import TASK_QUEUE, WORKFLOW_TYPE

pytestmark = pytest.mark.asyncio(loop_scope="session")

IRO = Actor(id="wig-iro-a", role="iro")
TEAM_MANAGER = Actor(id="wig-team-manager-a", role="team_manager")
CONCERN = Concern(summary="Drift.", impact_on_child="Waiting.", requested_action="Act.")


async def _dev_server(registered: bool) -> WorkflowEnvironment:
    try:
        exe = temporal_cli_path()
    except RuntimeError as exc:
        require_or_skip(str(exc))
    try:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(exe),
            ip="127.0.0.1",
            ui=False,
            search_attributes=indexed.ALL if registered else (),
            dev_server_log_level="error",
            data_converter=DATA_CONVERTER,
        )
    except Exception as exc:
        require_or_skip(f"Temporal dev server ({exe}) could not start: {exc!r}")


@pytest_asyncio.fixture(loop_scope="session")
async def indexed_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await _dev_server(registered=True)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def bare_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await _dev_server(registered=False)
    try:
        yield env
    finally:
        await env.shutdown()


class _CountQueries(Interceptor):
    """Counts the workflow queries a client sends."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Outbound(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                counter.queries.append(input.query)
                return await super().query_workflow(input)

        return Outbound(next)


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Visibility is eventually consistent: wait for the condition, not for a guess of time."""
    give_up = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > give_up:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


def _raise(authority: str, track: str, officer: Actor, team: str | None = None) -> RaiseConcern:
    category = load_protocol(authority).track(track).categories[0]
    return prepare(
        authority=authority,
        track=track,
        category=category,
        child_ref=unique_ref(),
        sequence=1,
        officer=officer,
        concern=CONCERN,
        team=team,
    )


def _cli(env: WorkflowEnvironment, cwd: Path) -> Cli:
    if not ESCALATE.exists():
        pytest.fail(f"{ESCALATE} is missing: install the project (pip install -e .) so the command exists")
    return Cli(env.client.service_client.config.target_host, cwd)


async def test_the_query_carries_every_filter() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    query = visibility_query(
        ListFilter(authority="wigan", stage="stage-2", status=Status.AWAITING_RESPONSE, overdue=True), now
    )
    assert "EscalationAuthority = 'wigan'" in query
    assert "EscalationStage = 'stage-2'" in query
    assert "EscalationStatus = 'awaiting_response'" in query
    assert "(EscalationFlags = 'overdue' OR EscalationDeadline < '2026-12-01T12:00:00.000000Z')" in query
    assert "'resolved'" not in visibility_query(ListFilter(open_only=True), now)
    assert visibility_query(ListFilter(stage="it's"), now).count("it\\'s") == 1, "quotes are escaped"


async def test_working_days_left_from_the_deadline_alone_match_the_workflows_count() -> None:
    """Stages sent on every day of six weeks over Christmas, read every 7 hours until due."""
    compared = 0
    for offset in range(42):
        sent = datetime.combine(date(2026, 12, 1) + timedelta(days=offset), time(10), tzinfo=LONDON)
        schedule = plan_schedule(ScheduleRequest(received_at=sent.astimezone(UTC), working_days=5))
        now = schedule.received_at
        while now < schedule.due_at:
            left = working_days_left("wigan", "iro", "stage-1", schedule.due_at, now)
            assert left == schedule.working_days_left(now), (sent, now)
            compared += 1
            now += timedelta(hours=7)
    assert compared > 1000


async def test_list_filters_and_sorts_in_visibility_with_no_worker(
    indexed_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = indexed_server.client
    wigan = [_raise("wigan", "iro", IRO, "team-a") for _ in range(3)]
    glos = _raise("gloucestershire", "iro-cp", Actor(id="glo-iro-a", role="iro"), "team-a")
    async with file_worker(indexed_server, TASK_QUEUE, tmp_path):
        handles = [await raise_concern(client, r) for r in [*wigan, glos]]
        answered, withdrawn = handles[0], handles[1]
        await answered.execute_update("respond", Respond(actor=TEAM_MANAGER, answer="Plan agreed."))
        await withdrawn.execute_update("withdraw", Withdraw(actor=IRO, reason="Settled."))
        # One started the old way, without attributes: a list cannot show it, and says so.
        unindexed = _raise("wigan", "iro", IRO, "team-a")
        await client.start_workflow(
            WORKFLOW_TYPE, unindexed, id=unindexed.escalation_id, task_queue=TASK_QUEUE
        )

        async def settled() -> bool:
            listing = await list_escalations(client, ListFilter(), datetime.now(UTC))
            statuses = {r.escalation_id: r.status for r in listing.rows}
            return (
                statuses.get(answered.id) == Status.AWAITING_DECISION
                and statuses.get(withdrawn.id) == Status.WITHDRAWN
                and len(statuses) == 4
                and listing.unindexed == 1
            )

        await _until(settled, "the visibility store shows every change")
        view = await handles[2].query("state", result_type=EscalationView)
        assert view.deadline_date is not None
        due = f"due {view.deadline_date.isoformat()} ({view.working_days_left} wd left)"

    # The worker has stopped: a list that asked any escalation's state would get no answer.
    counter = _CountQueries()
    counted = await Client.connect(
        client.service_client.config.target_host, data_converter=DATA_CONVERTER, interceptors=[counter]
    )
    overdue_later = await list_escalations(
        counted, ListFilter(overdue=True), datetime.now(UTC) + timedelta(days=60)
    )
    assert {r.escalation_id for r in overdue_later.rows} == {wigan[2].escalation_id, glos.escalation_id}
    assert not (await list_escalations(counted, ListFilter(overdue=True), datetime.now(UTC))).rows
    assert counter.queries == [], "listing makes no workflow query"

    # The command lists what its person may see (their own authority's), as a table, soonest deadline first.
    cli = _cli(indexed_server, tmp_path)
    cli.env = {"ESCALATE_AS_ID": IRO.id, "ESCALATION_DATABASE_URL": ""}  # visibility, not records
    result = await cli.run("list", "--wait", "5")
    assert result.code == 0, result
    assert "1 escalation started before the search attributes were registered" in result.err
    header, *lines = result.out.splitlines()
    assert header.split() == ["ESCALATION", "STATUS", "STAGE", "DUE", "LEFT", "FLAGS"]
    ids = [line.split()[0] for line in lines]
    assert ids == [wigan[2].escalation_id, *sorted([answered.id, withdrawn.id])], (
        "deadlines first, then the rest"
    )
    assert glos.escalation_id not in result.out, "another authority's escalation is not shown"
    starts = {header.index(column) for column in ("STATUS", "STAGE", "DUE", "LEFT", "FLAGS")}
    for line in lines:
        assert all(line[i - 2 : i] == "  " and line[i] != " " for i in starts), f"aligned: {line!r}"
    by_id = dict(zip(ids, lines, strict=True))
    assert by_id[wigan[2].escalation_id].split()[1:6] == [
        "awaiting_response",
        "1/5",
        "stage-1",
        view.deadline_date.isoformat(),
        str(view.working_days_left),
    ], "the same deadline and count as the workflow's"
    assert by_id[answered.id].split()[1:5] == ["awaiting_decision", "1/5", "stage-1", "-"]
    assert by_id[withdrawn.id].split()[1] == "withdrawn"
    del due

    open_wigan = await cli.run("list", "--authority", "wigan", "--open", "--wait", "5")
    assert [line.split()[0] for line in open_wigan.out.splitlines()[1:]] == [
        wigan[2].escalation_id,
        answered.id,
    ]
    decided = await cli.run("list", "--status", "awaiting_decision", "--stage", "stage-1", "--wait", "5")
    assert decided.code == 0 and [line.split()[0] for line in decided.out.splitlines()[1:]] == [answered.id]
    none = await cli.run("list", "--overdue", "--wait", "5")
    assert none.code == 0 and none.out.strip() == "no escalations match", none
    theirs = await cli.run("list", "--wait", "5", ESCALATE_AS_ID="glo-iro-a")
    assert [line.split()[0] for line in theirs.out.splitlines()[1:]] == [glos.escalation_id], theirs
    elsewhere = await cli.run("list", "--authority", "gloucestershire", "--wait", "5")
    assert elsewhere.code == 2 and "sees only wigan's escalations" in elsewhere.err, elsewhere


async def test_without_registered_attributes_the_list_reads_each_state_and_says_so(
    bare_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = bare_server.client
    raise_ = _raise("wigan", "iro", IRO, "team-a")
    async with file_worker(bare_server, TASK_QUEUE, tmp_path):
        handle = await raise_concern(client, raise_)
        described = await handle.describe()
        assert described.typed_search_attributes.get(indexed.STATUS) is None

        async def listed() -> bool:
            return any(
                [e.id == handle.id async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")]
            )

        await _until(listed, "the escalation is in visibility")
        result = await _cli(bare_server, tmp_path).run("list", ESCALATE_AS_ID=IRO.id)
    assert result.code == 0, result
    assert "no escalation search attributes registered" in result.err
    assert result.out.splitlines()[1].split()[:4] == [handle.id, "awaiting_response", "1/5", "stage-1"], (
        result
    )


def _lines(listing: Listing) -> list[tuple[object, ...]]:
    return [
        (r.escalation_id, r.status, r.stage, r.stage_number, r.stage_count, r.deadline, r.working_days_left)
        for r in listing.rows
    ]


async def test_the_record_store_lists_the_same_rows_as_visibility_filtered_and_sorted_in_sql(
    indexed_server: WorkflowEnvironment, tmp_path: Path, db_url: str
) -> None:
    client = indexed_server.client
    wigan = [_raise("wigan", "iro", IRO, "team-a") for _ in range(3)]
    glos = _raise("gloucestershire", "iro-cp", Actor(id="glo-iro-a", role="iro"), "team-a")
    ids = {r.escalation_id for r in [*wigan, glos]}
    with migrated_engine(db_url) as engine:
        worker = build_worker(
            client, TASK_QUEUE, records=DbRecordStore(engine), notifier=OutboxNotifier(tmp_path)
        )
        async with worker:
            handles = [await raise_concern(client, r) for r in [*wigan, glos]]
            await handles[0].execute_update("respond", Respond(actor=TEAM_MANAGER, answer="Plan agreed."))
            await handles[1].execute_update("withdraw", Withdraw(actor=IRO, reason="Settled."))
            now = datetime.now(UTC)

            seen: dict[str, list[tuple[object, ...]]] = {}

            async def both_settled() -> bool:
                listed = await list_escalations(client, ListFilter(), now)
                mine = Listing(rows=[r for r in listed.rows if r.escalation_id in ids], unindexed=0)
                recorded = await asyncio.to_thread(list_from_records, db_url, ListFilter(), now)
                seen.update(visibility=_lines(mine), records=_lines(recorded))
                statuses = {r.escalation_id: r.status for r in recorded.rows}
                return (
                    statuses.get(handles[0].id) == Status.AWAITING_DECISION
                    and statuses.get(handles[1].id) == Status.WITHDRAWN
                    and len(statuses) == 4
                    and seen["visibility"] == seen["records"]
                )

            try:
                await _until(both_settled, "visibility and the record store agree on every change")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; last seen: {seen}") from None

    later = datetime.now(UTC) + timedelta(days=60)
    for wanted, expected in (
        (ListFilter(overdue=True), sorted([wigan[2].escalation_id, glos.escalation_id])),
        (ListFilter(authority="wigan", open_only=True), [wigan[2].escalation_id, handles[0].id]),
        (ListFilter(status=Status.AWAITING_DECISION, stage="stage-1"), [handles[0].id]),
        (ListFilter(stage="no-such-stage"), []),
    ):
        rows = list_from_records(db_url, wanted, later).rows
        assert [r.escalation_id for r in rows] == expected, wanted
    assert not list_from_records(db_url, ListFilter(overdue=True), datetime.now(UTC)).rows

    cli = _cli(indexed_server, tmp_path)
    cli.env = {"ESCALATE_AS_ID": IRO.id}
    from_records = await cli.ok("list", "--database-url", db_url)
    from_visibility = await cli.ok(
        "list", "--source", "visibility", "--wait", "5", ESCALATION_DATABASE_URL=""
    )
    assert from_records == from_visibility, "the same lines whichever read model answers"
    assert from_records == await cli.ok("list", ESCALATION_DATABASE_URL=db_url), "auto: the URL in the env"


async def test_the_list_reads_the_record_store_when_it_has_the_database_and_says_when_it_cannot(
    tmp_path: Path,
) -> None:
    assert DEFAULT_DATABASE_URL == RECORDS_DEFAULT, "the list looks where the worker writes"
    cli = Cli("127.0.0.1:1", tmp_path)  # nothing answers there: a list from the records needs no Temporal
    cli.env = {"ESCALATE_AS_ID": IRO.id}
    missing = await cli.run("list", "--database-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 2 and "no record store at" in missing.err, missing
    assert not (tmp_path / "none.db").exists(), "listing never creates a store"
    nothing = await _run_escalate(tmp_path, "list", "--source", "records", "--as-id", IRO.id)
    assert nothing.code == 2 and "--database-url or ESCALATION_DATABASE_URL" in nothing.err, nothing
    with pytest.raises(RecordStoreUnavailable, match="cannot read the record store"):
        empty = tmp_path / "empty.db"
        empty.write_bytes(b"")
        list_from_records(f"sqlite:///{empty}", ListFilter(), datetime.now(UTC))

    # The embedded stack: its default store in the working directory, no Temporal address given.
    with migrated_engine(f"sqlite:///{tmp_path / RECORDS_DEFAULT.removeprefix('sqlite:///')}"):
        pass
    embedded = await _run_escalate(tmp_path, "list", "--as-id", IRO.id)
    assert embedded.code == 0 and embedded.out.strip() == "no escalations match", embedded
    elsewhere = await cli.run("list", "--wait", "1", ESCALATION_DATABASE_URL="")  # an address: visibility
    assert elsewhere.code == 3 and "cannot reach Temporal" in elsewhere.err, elsewhere


async def _run_escalate(cwd: Path, *args: str) -> Any:
    """``escalate`` with no Temporal address and no database URL in its environment."""
    import os

    from tests.cli_runner import Result

    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ESCALATE_", "TEMPORAL_")) and k != "ESCALATION_DATABASE_URL"
    }
    proc = await asyncio.create_subprocess_exec(
        str(ESCALATE), *args, "--wait", "1", cwd=cwd, env=clean, stdout=-1, stderr=-1
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
