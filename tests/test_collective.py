"""Collective alerts (seed 001 section 4): a theme across several children or carers, led by an officer,
raised at the level chosen after consulting the QA practice manager, run up the same ladder, flagged
``collective`` in the record store and never written to a child's file; escalations for single children
name the collective alert they belong to (``escalations.part_of``)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, select
from temporalio.testing import WorkflowEnvironment

from activities.db.record_models import EscalationRecord
from activities.db_records import DbRecordStore
from activities.recording import OutboxNotifier
from app.service import Application
from protocols import load_protocol
from schemas.escalation import (
    COLLECTIVE_REF,
    Actor,
    Collective,
    EventKind,
    Flag,
    RaiseConcern,
    ReferToCafcass,
    Status,
)
from tests.cli_runner import Cli
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import make_raise
from tests.test_web import PEOPLE, browser, sign_in
from tests.workflow_harness import file_worker, running, unique_ref
from worker import build_worker
from workflows import rules
from workflows.escalation import TASK_QUEUE

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
IRO = Actor(id="wf-iro-a", role="iro")
QA_TALK = Collective(
    theme="Late care plans after placement moves",
    subjects=["C0101", "C0102", "C0103"],
    consulted_with="qa_practice_manager",
    consulted_on=date(2026, 2, 27),
    consultation="Agreed: raise with the Head of Service, Sam leads.",
)


def collective(**changes: object) -> RaiseConcern:
    base = make_raise("waltham-forest", "iro", officer=IRO, child_ref=COLLECTIVE_REF)
    fields: dict[str, object] = {
        "collective": QA_TALK,
        "start_at_stage": "stage-2",
        "child_status": "looked_after",
    }
    return base.model_copy(update={**fields, **changes})


# --- the rules (pure) ----------------------------------------------------------------------------------


def test_a_collective_alert_starts_at_the_chosen_level_without_a_bypass_and_is_flagged() -> None:
    decision = rules.start(collective(), NOW)
    s = decision.state
    assert rules.current_stage(s).key == "stage-2" and s.status is Status.AWAITING_RESPONSE
    assert Flag.COLLECTIVE in s.flags and s.collective == QA_TALK
    kinds = [e.kind for e in s.timeline]
    assert EventKind.BYPASSED not in kinds
    raised = s.timeline[0]
    assert raised.data["collective"] is True and raised.data["subjects"] == ["C0101", "C0102", "C0103"]
    assert raised.data["consulted_with"] == "qa_practice_manager"
    view = rules.view(s, NOW)
    assert view.collective == QA_TALK and Flag.COLLECTIVE in view.flags
    assert "refer_to_cafcass" not in rules.available_actions(s, IRO)
    with pytest.raises(rules.Refused, match="refer a child's own escalation"):
        rules.check(s, ReferToCafcass(actor=IRO, reason="Drift for all of them."), NOW)


def test_an_escalation_for_one_child_names_its_collective_alert() -> None:
    one = make_raise("waltham-forest", "iro", officer=IRO, child_ref="C0101").model_copy(
        update={"part_of": "waltham-forest-COLLECTIVE-0000000001", "child_status": "looked_after"}
    )
    s = rules.start(one, NOW).state
    assert s.part_of == "waltham-forest-COLLECTIVE-0000000001" and Flag.COLLECTIVE not in s.flags
    assert s.timeline[0].data["part_of"] == "waltham-forest-COLLECTIVE-0000000001"
    with pytest.raises(rules.Refused, match="not a collective alert of London Borough of Waltham Forest"):
        rules.start(one.model_copy(update={"part_of": "wigan-COLLECTIVE-0000000001"}), NOW)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"officer": Actor(id="wf-team-manager-a", role="team_manager")}, "cannot raise on"),
        ({"child_ref": "C0101"}, "its child reference is COLLECTIVE"),
        ({"collective": QA_TALK.model_copy(update={"consulted_with": "team_manager"})}, "after consulting"),
        ({"collective": QA_TALK.model_copy(update={"subjects": ["C1", "C2", "C1"]})}, "repeated: C1"),
        ({"collective": QA_TALK.model_copy(update={"consulted_on": date(2026, 3, 9)})}, "in the future"),
        ({"part_of": "waltham-forest-COLLECTIVE-0000000001"}, "belongs to no other collective alert"),
    ],
)
def test_what_the_protocol_does_not_allow_is_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(rules.Refused, match=reason):
        rules.start(collective(**changes), NOW)


def test_an_authority_without_collective_alerts_refuses_one() -> None:
    glo = make_raise("gloucestershire", child_ref=COLLECTIVE_REF).model_copy(update={"collective": QA_TALK})
    with pytest.raises(rules.Refused, match="has no collective alerts"):
        rules.start(glo, NOW)
    with pytest.raises(rules.Refused, match="COLLECTIVE is the reference of collective alerts"):
        rules.start(make_raise("gloucestershire", child_ref=COLLECTIVE_REF), NOW)


def test_the_protocol_bounds_how_many_children_one_alert_names() -> None:
    p = load_protocol("waltham-forest")
    assert p.collective_alerts is not None
    few = p.model_copy(
        update={"collective_alerts": p.collective_alerts.model_copy(update={"max_subjects": 2})}
    )
    with pytest.raises(rules.Refused, match="at most 2 children or carers"):
        rules.start(collective(protocol=few), NOW)


# --- recorded for real: flagged, linked, on no file ------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url, directories=DIRECTORIES) as engine:
        yield engine


@pytest.mark.asyncio(loop_scope="session")
async def test_a_collective_alert_is_recorded_flagged_on_no_file_and_its_children_link_to_it(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, engine: Engine
) -> None:
    records = DbRecordStore(engine)
    notifier = OutboxNotifier(tmp_path)
    alert = collective(
        escalation_id=f"waltham-forest-COLLECTIVE-{uuid.uuid4().int % 10**10:010d}", team="team-a"
    )
    async with running(
        time_skipping_env, alert, tmp_path, records=records, notifier=notifier, record_as="collective-alert"
    ) as run:
        await run.eventually(lambda v: v.deadline_date is not None and not v.busy)
        await run.skip_past_deadline()
        moved = await run.eventually(lambda v: v.stage == "stage-3" or v.status is Status.ESCALATION_DUE)
    one = make_raise("waltham-forest", "iro", officer=IRO, child_ref=unique_ref()).model_copy(
        update={"part_of": alert.escalation_id, "child_status": "looked_after", "team": "team-a"}
    )
    async with running(time_skipping_env, one, tmp_path, records=records, notifier=notifier) as run:
        await run.eventually(lambda v: v.deadline_date is not None and not v.busy)
    state = records.state(alert.escalation_id)
    assert state is not None and Flag.COLLECTIVE.value in state.flags and state.child_ref == COLLECTIVE_REF
    assert len(records.events(alert.escalation_id)) >= 3 and moved.timeline
    assert records.case_notes(escalation_id=alert.escalation_id) == []
    assert records.case_notes(escalation_id=one.escalation_id)  # the child's own escalation is on file
    with engine.connect() as connection:
        linked = connection.scalars(
            select(EscalationRecord.escalation_id).where(EscalationRecord.part_of == alert.escalation_id)
        ).all()
    assert linked == [one.escalation_id]
    sent = [n for n in notifier.sent(alert.escalation_id) if n.kind is EventKind.SENT_TO_STAGE]
    assert sent and sent[0].to_roles == ["team_manager"]


# --- the command line -------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def cli(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Cli]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield Cli(dev_server_env.client.service_client.config.target_host, tmp_path)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_command_raises_a_collective_alert_and_links_a_childs_escalation(cli: Cli) -> None:
    cli.env = {"ESCALATE_AS_ID": "wf-iro-a"}  # who reads (the lead officer)
    raise_ = (
        "collective", "raise", "--authority", "waltham-forest", "--track", "iro", "--category", "1",
        "--team", "team-a", "--officer-id", "wf-iro-a", "--officer-role", "iro",
        "--child-status", "looked_after", "--theme", "Late care plans",
        "--subject", "C0101", "--subject", "C0102",
        "--qa-consulted-with", "qa_practice_manager", "--qa-consulted-on", date.today().isoformat(),
        "--qa-consultation", "Agreed: the team manager, Sam leads.", "--summary", "Care plans are late.",
        "--impact", "Drift for several children.", "--request", "A plan for each by the end of the month.",
        "--start-at-stage", "stage-2", "--request-id", f"req-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    out = await cli.ok(*raise_)
    match = re.match(r"raised (waltham-forest-COLLECTIVE-\d{10}): awaiting response at Stage 2", out)
    assert match, out
    alert = match.group(1)
    status = await cli.ok("status", alert, "--json")
    assert '"collective"' in status and "Late care plans" in status
    one = (
        "raise", "--authority", "waltham-forest", "--track", "iro", "--category", "1", "--team", "team-a",
        "--officer-id", "wf-iro-a", "--officer-role", "iro", "--child-status", "looked_after",
        "--child-ref", "C0101", "--summary", "s", "--impact", "i", "--request", "r", "--part-of", alert,
    )  # fmt: skip
    child = await cli.ok(*one)
    child_id = child.split()[1].rstrip(":")
    assert f'"part_of": "{alert}"' in await cli.ok("status", child_id, "--json")
    assert "after consulting QA Practice Manager" in await cli.fails(
        1, *[a if a != "qa_practice_manager" else "team_manager" for a in raise_[:-1]], "other-req"
    )
    at = raise_.index("C0102")
    assert "--subject" in await cli.fails(2, *raise_[:at], "no such ref!", *raise_[at + 1 :])


# --- the web pages -----------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def recorded_web(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Application]:
    """The application on the record store its worker writes to (the collective alert's page reads it)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with migrated_engine(url, directories=DIRECTORIES) as engine:
        queue = f"test-{uuid.uuid4().hex[:8]}"
        worker = build_worker(
            dev_server_env.client, queue, records=DbRecordStore(engine), notifier=OutboxNotifier(tmp_path)
        )
        async with worker:
            app = await Application.start(client=dev_server_env.client, people=PEOPLE, database_url=url)
            app.task_queue = queue
            yield app


@pytest.mark.asyncio(loop_scope="session")
async def test_the_web_raises_a_collective_alert_whose_page_lists_its_childrens_escalations(
    recorded_web: Application,
) -> None:
    async with browser(recorded_web) as iro:
        csrf = await sign_in(iro, "waltham-forest/wf-iro-a")
        form = (await iro.get("/collective")).text
        assert "Raise a collective alert" in form and "Who you consulted on the level to raise it at" in form
        assert "Child&#39;s case number" not in form
        typed = {
            "csrf_token": csrf,
            "request_id": str(uuid.uuid4()),
            "track": "iro",
            "category": load_protocol("waltham-forest").track("iro").categories[0],
            "child_status": "looked_after",
            "team": "team-a",
            "start_at_stage": "stage-2",
            "theme": "Late <b>care plans</b>",
            "subjects": "C0101\nC0102\n",
            "qa_consulted_with": "qa_practice_manager",
            "qa_consulted_on": date.today().isoformat(),
            "qa_consultation": "Agreed: the team manager.",
            "summary": "Care plans are late after moves.",
            "impact_on_child": "Drift for several children.",
            "requested_action": "A plan for each child.",
        }
        token = (await iro.get("/api/me")).json()["csrf_token"]
        body = {k: v for k, v in typed.items() if k != "csrf_token"}
        api = await iro.post(
            "/api/collective",
            json={**body, "request_id": str(uuid.uuid4()), "subjects": ["C0201", "C0202"]},
            headers={"X-CSRF-Token": token},
        )
        assert api.status_code == 201 and api.json()["escalation_id"].startswith("waltham-forest-COLLECTIVE-")
        missing = await iro.post("/collective", data={**typed, "theme": "", "summary": ""})
        assert missing.status_code == 400
        assert "Enter the theme the children or carers share" in missing.text
        assert "Enter summary of the concern" in missing.text
        one = await iro.post("/collective", data={**typed, "subjects": "C0101"})
        assert one.status_code == 400 and "The children&#39;s or carers&#39; references" in one.text
        raised = await iro.post("/collective", data=typed)
        assert raised.status_code == 303, raised.text[-2000:]
        alert = raised.headers["location"].removeprefix("/escalations/")
        assert re.fullmatch(r"waltham-forest-COLLECTIVE-\d{10}", alert)
        page = (await iro.get(raised.headers["location"])).text
        assert "Late &lt;b&gt;care plans&lt;/b&gt;" in page and "C0101, C0102" in page
        assert "Escalations for single children" in page and "None yet" in page

        child = {
            **{k: typed[k] for k in ("csrf_token", "track", "category", "child_status", "team")},
            "request_id": str(uuid.uuid4()),
            "child_ref": "C0101",
            "summary": "Her plan is late.",
            "impact_on_child": "Drift.",
            "requested_action": "A plan.",
            "part_of": alert,
            "step": "confirm",
        }
        wrong = await iro.post("/raise", data={**child, "part_of": "wigan-COLLECTIVE-0000000001"})
        assert wrong.status_code == 400 and "must be a collective alert&#39;s id" in wrong.text
        linked = await iro.post("/raise", data=child)
        assert linked.status_code == 303, linked.text[-2000:]
        child_id = linked.headers["location"].removeprefix("/escalations/")
        assert alert in (await iro.get(linked.headers["location"])).text
        give_up = asyncio.get_running_loop().time() + 30
        while child_id not in (page := (await iro.get(f"/escalations/{alert}")).text):
            assert asyncio.get_running_loop().time() < give_up, page[-2000:]
            await asyncio.sleep(0.2)
