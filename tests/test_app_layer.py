"""The application layer (``app/``): identity from the directory, authorisation per escalation, bounded
input, actions through the rules, lists, and the append-only audit log. Real components: a dev server, a
real worker, the sample directories and a real database (SQLite and PostgreSQL for the audit guard)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from temporalio.testing import WorkflowEnvironment

from app.audit import AuditLog, Outcome
from app.errors import BadInput, NotFound, NotSignedIn, Refused
from app.identity import People
from app.service import Application, Caller
from tests.databases import migrated_engine
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE

PEOPLE = People.load()
OFFICER = PEOPLE.require("wigan/wig-iro-a")
MANAGER = PEOPLE.require("wigan/wig-team-manager-a")
OTHER_MANAGER = PEOPLE.require("wigan/wig-team-manager-b")
SERVICE_LEAD = PEOPLE.require("wigan/wig-service-lead-a")
SOCIAL_WORKER = PEOPLE.require("wigan/wig-social-worker-a")
GLO_IRO = PEOPLE.require("gloucestershire/glo-iro-a")
CATEGORY = "Quality of practice"


# --- identity (no identity provider: the mapping of its claims) ----------------------------------------


def test_roles_come_from_the_directory_per_team_and_authority_wide() -> None:
    assert MANAGER.roles_for("team-a") == ["team_manager"]
    assert MANAGER.roles_for("team-b") == []
    head = PEOPLE.require("wigan/wig-head-of-service")
    assert head.roles_for("team-a") == head.roles_for("team-b") == ["head_of_service"]


def test_claims_map_to_a_directory_person_by_email_then_oid() -> None:
    assert PEOPLE.person_for_claims({"email": MANAGER.email.upper()}) == MANAGER
    assert PEOPLE.person_for_claims({"preferred_username": OFFICER.email, "oid": "x"}) == OFFICER
    assert PEOPLE.person_for_claims({"upn": GLO_IRO.email}) == GLO_IRO
    assert PEOPLE.person_for_claims({"oid": "wig-iro-b"}).id == "wig-iro-b"
    with pytest.raises(NotSignedIn, match="not in any authority's staff directory"):
        PEOPLE.person_for_claims({"email": "someone@elsewhere.example", "oid": "nobody"})
    with pytest.raises(NotSignedIn):
        PEOPLE.person_for_claims({})


def test_an_address_in_two_directories_is_ambiguous(tmp_path: Path) -> None:
    for authority in ("wigan", "dudley"):
        (tmp_path / f"{authority}.yaml").write_text(
            f"authority: {authority}\npeople:\n  - {{id: p1, name: Pat, email: pat@example.org}}\n"
            "assignments: []\n"
        )
    with pytest.raises(NotSignedIn, match="more than one directory"):
        People.load(tmp_path).person_for_claims({"email": "pat@example.org"})


# --- the audit log is append-only ------------------------------------------------------------------------


def test_the_audit_log_refuses_update_and_delete(db_url: str) -> None:
    with migrated_engine(db_url) as engine:
        log = AuditLog(engine)
        log.record("sign_in", Outcome.OK, via="web", person=OFFICER, reason="development", client="1.2.3.4")
        [entry] = log.entries(person_id=OFFICER.id)
        assert (entry.event, entry.outcome, entry.authority, entry.via) == ("sign_in", "ok", "wigan", "web")
        for sql in ("UPDATE audit_log SET outcome = 'refused'", "DELETE FROM audit_log"):
            with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                conn.execute(text(sql))
        assert len(log.entries()) == 1


# --- through Temporal ------------------------------------------------------------------------------------

pytestmark_async = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def application(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Application]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield await Application.start(
            client=dev_server_env.client, people=PEOPLE, database_url=f"sqlite:///{tmp_path / 'app.db'}"
        )


def caller(person: object) -> Caller:
    return Caller(person=person, via="test")  # type: ignore[arg-type]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    give_up = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > give_up:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


def concern(**changes: str) -> dict[str, str]:
    fields = {
        "track": "iro",
        "category": CATEGORY,
        "child_ref": unique_ref(),
        "child_status": "looked_after",
        "team": "team-a",
        "summary": "The plan has drifted.",
        "impact_on_child": "Waiting for a placement.",
        "requested_action": "Agree a date.",
        "request_id": str(uuid.uuid4()),
    }
    return {**fields, **changes}


@pytestmark_async
async def test_raise_see_act_and_refuse_through_the_application(application: Application) -> None:
    app = application
    fields = concern()
    escalation_id = await app.raise_concern(caller(OFFICER), fields)
    assert await app.raise_concern(caller(OFFICER), fields) == escalation_id  # a retry: the same one

    reading = await app.read(caller(MANAGER), escalation_id)
    assert reading.relation == "holds" and "respond" in reading.allowed
    assert reading.allowed["respond"].role == "team_manager"
    assert "withdraw" not in reading.allowed

    # No business in it: the same NotFound as an escalation that does not exist.
    for outsider in (OTHER_MANAGER, SOCIAL_WORKER, GLO_IRO):
        with pytest.raises(NotFound) as hidden:
            await app.read(caller(outsider), escalation_id)
        with pytest.raises(NotFound) as missing:
            await app.read(caller(outsider), "wigan-T0000000000-0001")
        assert str(hidden.value).replace(escalation_id, "ID") == str(missing.value).replace(
            "wigan-T0000000000-0001", "ID"
        )
        with pytest.raises(NotFound):
            await app.act(caller(outsider), escalation_id, "respond", {"answer": "x"})
    assert (await app.read(caller(SERVICE_LEAD), escalation_id)).relation == "supervises"

    # Waiting for the manager, and not for the officer.
    async def waiting(person: object) -> bool:
        listing = await app.waiting_for(caller(person))
        return any(i.row.escalation_id == escalation_id for i in listing.items)

    await until(lambda: waiting(MANAGER), "the escalation waits for the team manager")
    assert not await waiting(OFFICER)
    mine = await app.escalations(caller(OFFICER))
    assert any(i.row.escalation_id == escalation_id and i.relation == "raised" for i in mine.items)
    theirs = await app.escalations(caller(OTHER_MANAGER))
    assert all(i.row.escalation_id != escalation_id for i in theirs.items)

    # Wrong role: refused with the rules' own reason; bad input names the field.
    with pytest.raises(Refused, match="Only the raising officer"):
        await app.act(caller(MANAGER), escalation_id, "withdraw", {"reason": "not mine"})
    with pytest.raises(Refused, match="Only the stage's recipients"):
        await app.act(caller(OFFICER), escalation_id, "respond", {"answer": "I answer myself"})
    with pytest.raises(BadInput) as bad:
        await app.act(caller(MANAGER), escalation_id, "respond", {"answer": "  "})
    assert bad.value.fields == {"answer": "Enter answer"}
    with pytest.raises(BadInput) as long:
        await app.act(caller(MANAGER), escalation_id, "respond", {"answer": "x" * 20_001})
    assert "20,000 characters or fewer" in long.value.fields["answer"]

    result = await app.act(caller(MANAGER), escalation_id, "respond", {"answer": "A date is agreed."})
    assert result.status == "awaiting_decision"
    await until(lambda: waiting(OFFICER), "the answer waits for the officer's decision")

    events = [(e.person_id, e.event, e.outcome) for e in app.audit.entries(escalation_id=escalation_id)]
    assert ("wig-iro-a", "raise", "ok") in events
    assert ("wig-team-manager-a", "withdraw", "refused") in events
    assert ("wig-team-manager-b", "read", "not_found") in events
    assert ("wig-team-manager-a", "respond", "ok") in events
    assert ("wig-team-manager-a", "respond", "bad_input") in events


@pytestmark_async
async def test_raising_needs_an_officer_role_for_the_team(application: Application) -> None:
    with pytest.raises(Refused, match="does not give you a role that raises"):
        await application.raise_concern(caller(MANAGER), concern())
    with pytest.raises(Refused, match="does not give you a role that raises"):
        await application.raise_concern(caller(OFFICER), concern(team="team-b"))
    with pytest.raises(BadInput) as bad:
        await application.raise_concern(caller(OFFICER), concern(summary="", child_ref=""))
    assert set(bad.value.fields) == {"summary", "child_ref"}
