"""Bearer tokens for service accounts on the JSON API: a token from the environment (or a secret file)
maps to a declared service account, which acts with the application layer's authorisation, only as far as
it is declared for, with no CSRF token (no cookie), and every use audited. Real dev server and worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from app.errors import NotSignedIn
from app.identity import People
from app.service import Application, Caller
from app.service_accounts import ServiceAccountError, account_for_token, declared_accounts
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE

pytestmark = pytest.mark.asyncio(loop_scope="session")

PEOPLE = People.load()
SECRET = "test-session-secret-" + "x" * 40
TOKEN = "t0ken-for-the-nightly-script-" + "a" * 20
OTHER_TOKEN = "t0ken-for-the-nightly-script-" + "b" * 20
ACCOUNTS = """
service_accounts:
  - name: svc-wigan-tm
    authority: wigan
    roles: [{role: team_manager, team: team-a}]
    may: [list, read, add_note]
  - name: svc-no-token
    authority: wigan
    may: [list]
"""


@pytest.fixture(autouse=True)
def _declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_SERVICE_ACCOUNTS", ACCOUNTS)
    monkeypatch.setenv("ESCALATION_API_TOKENS", f"svc-wigan-tm={TOKEN}")


@pytest_asyncio.fixture(loop_scope="session")
async def web(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Application]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield await Application.start(
            client=dev_server_env.client, people=PEOPLE, database_url=f"sqlite:///{tmp_path / 'app.db'}"
        )


def api(application: Application, token: str | None = TOKEN) -> httpx.AsyncClient:
    app = create_app(application, WebSettings(session_secret=SECRET))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver", headers=headers
    )


async def _raised(web: Application) -> str:
    officer = PEOPLE.require("wigan/wig-iro-a")
    fields = {
        "request_id": str(uuid.uuid4()),
        "track": "iro",
        "category": "Quality of practice",
        "child_ref": unique_ref(),
        "child_status": "looked_after",
        "team": "team-a",
        "summary": "The plan has drifted.",
        "impact_on_child": "Waiting for a placement.",
        "requested_action": "Agree a date.",
    }
    return await web.raise_concern(Caller(person=officer, via="test"), fields)


async def test_a_service_account_acts_with_its_token_as_far_as_it_is_declared(web: Application) -> None:
    escalation_id = await _raised(web)
    async with api(web) as client:
        me = (await client.get("/api/me")).json()
        assert (me["id"], me["authority"], me["csrf_token"]) == ("svc-wigan-tm", "wigan", None)
        give_up = asyncio.get_running_loop().time() + 30
        while True:  # visibility shows a new escalation a moment later
            listed = (await client.get("/api/escalations")).json()["escalations"]
            if any(e["escalation_id"] == escalation_id for e in listed):
                break
            assert asyncio.get_running_loop().time() < give_up, listed
            await asyncio.sleep(0.2)
        read = await client.get(f"/api/escalations/{escalation_id}")
        assert read.status_code == 200 and "add_note" in read.json()["actions"]
        noted = await client.post(
            f"/api/escalations/{escalation_id}/actions/add_note", json={"text": "Chased by the script."}
        )
        assert noted.status_code == 200, noted.text  # no CSRF token: a bearer token carries no cookie
        refused = await client.post(
            f"/api/escalations/{escalation_id}/actions/respond", json={"answer": "Plan agreed."}
        )
        assert refused.status_code == 403
        assert refused.json()["message"] == "Service account svc-wigan-tm is not declared for respond."
        raised = await client.post("/api/escalations", json={"track": "iro"})
        assert raised.status_code == 403 and "not declared for raise" in raised.json()["message"]

    rows = web.audit.entries(escalation_id=escalation_id)
    seen = {(r.person_id, r.via, r.event, r.outcome) for r in rows}
    assert ("svc-wigan-tm", "api:service", "read", "ok") in seen
    assert ("svc-wigan-tm", "api:service", "add_note", "ok") in seen
    assert ("svc-wigan-tm", "api:service", "respond", "refused") in seen
    sign_ins = [r for r in web.audit.entries(person_id="svc-wigan-tm") if r.event == "sign_in"]
    assert sign_ins and all(r.via == "api:service" and r.reason == "bearer token" for r in sign_ins)


@pytest.mark.parametrize(
    "token",
    [OTHER_TOKEN, TOKEN[:-1], TOKEN + "x", "", "svc-wigan-tm"],
    ids=["other", "short", "long", "empty", "name"],
)
async def test_a_wrong_token_is_401_and_audited(web: Application, token: str) -> None:
    before = len(web.audit.entries())
    async with api(web, token=None) as client:
        answer = await client.get("/api/escalations", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["message"] == "The bearer token is not one this service knows."
    [entry] = web.audit.entries()[before:]
    assert (entry.event, entry.outcome, entry.via, entry.person_id) == (
        "sign_in",
        "refused",
        "api:service",
        None,
    )
    assert TOKEN not in entry.reason and (not token or token not in entry.reason), "no token is written down"


async def test_tokens_map_only_to_declared_accounts(tmp_path: Path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text(f"# one a line\nsvc-no-token={OTHER_TOKEN}\n")
    env = {"ESCALATION_SERVICE_ACCOUNTS": ACCOUNTS, "ESCALATION_API_TOKENS_FILE": str(secret)}
    assert account_for_token(OTHER_TOKEN, env).name == "svc-no-token"
    with pytest.raises(NotSignedIn):
        account_for_token(TOKEN, env)
    undeclared = {**env, "ESCALATION_API_TOKENS": f"svc-ghost={TOKEN}"}
    with pytest.raises(NotSignedIn, match="not declared"):
        account_for_token(TOKEN, undeclared)
    with pytest.raises(ServiceAccountError, match="at least 32 characters"):
        account_for_token("x", {**env, "ESCALATION_API_TOKENS": "svc-wigan-tm=short"})
    with pytest.raises(ServiceAccountError, match="unknown operation 'delete'"):
        declared_accounts({"ESCALATION_SERVICE_ACCOUNTS": ACCOUNTS.replace("add_note", "delete")})
