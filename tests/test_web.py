"""The web app against the real application layer, a dev server and a real worker (HTTP through httpx on
the ASGI app; browser tests with chromium and axe-core come later): sign-in, raise with check your
answers, waiting for me, answering, not found for outsiders, wrong-role actions neither offered nor taken,
CSRF, escaping, and errors that keep what was typed and name the field's label."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.db_records import DbRecordStore
from activities.recording import OutboxNotifier
from app.identity import People
from app.service import Application
from starter.web.app import SESSION_COOKIE, create_app
from starter.web.settings import WebSettings
from tests.databases import migrated_engine
from tests.workflow_harness import file_worker, unique_ref
from worker import build_worker
from workflows.escalation import TASK_QUEUE

pytestmark = pytest.mark.asyncio(loop_scope="session")

PEOPLE = People.load()
SECRET = "test-session-secret-" + "x" * 40
CATEGORY = "Quality of practice"


@pytest_asyncio.fixture(loop_scope="session")
async def web(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Application]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path):
        yield await Application.start(
            client=dev_server_env.client, people=PEOPLE, database_url=f"sqlite:///{tmp_path / 'app.db'}"
        )


def browser(application: Application, **settings: object) -> httpx.AsyncClient:
    app = create_app(application, WebSettings(session_secret=SECRET, **settings))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in through the development sign-in; the CSRF token of the new session."""
    page = await client.get("/sign-in")
    assert "Development sign-in" in page.text
    done = await client.post("/sign-in/development", data={"person": key, "csrf_token": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/waiting"
    return csrf_of((await client.get("/raise")).text)


def raise_form(csrf: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "request_id": str(uuid.uuid4()),
        "track": "iro",
        "category": CATEGORY,
        "child_ref": unique_ref(),
        "child_status": "looked_after",
        "team": "team-a",
        "summary": "The plan has drifted <script>alert('x')</script>.",
        "impact_on_child": "Waiting for a placement & <b>school</b>.",
        "requested_action": "Agree a date.",
    }
    return {**form, **changes}


async def until_listed(client: httpx.AsyncClient, path: str, escalation_id: str, also: str = "") -> str:
    """The page once it lists the escalation (visibility is eventually consistent), ``also`` in its row."""
    give_up = asyncio.get_running_loop().time() + 30
    while True:
        page = await client.get(path)
        row = re.search(rf"{re.escape(escalation_id)}</a>.*?</tr>", page.text, re.S)
        if row and also in row.group(0):
            return page.text
        if asyncio.get_running_loop().time() > give_up:
            raise AssertionError(f"{escalation_id} not on {path}: {page.text[-2000:]}")
        await asyncio.sleep(0.2)


async def test_officer_raises_and_manager_answers_through_the_pages(web: Application) -> None:
    async with browser(web) as officer, browser(web) as manager, browser(web) as outsider:
        csrf = await sign_in(officer, "wigan/wig-iro-a")
        form = raise_form(csrf)
        check = await officer.post("/raise", data=form)
        assert check.status_code == 200 and "Check your answers" in check.text
        assert "&lt;script&gt;alert(" in check.text and "<script>alert(" not in check.text
        raised = await officer.post("/raise", data={**form, "step": "confirm"})
        assert raised.status_code == 303
        escalation_id = raised.headers["location"].removeprefix("/escalations/")
        shown = await officer.get(raised.headers["location"])
        assert f"raised as escalation {escalation_id}" in shown.text
        assert "&lt;b&gt;school&lt;/b&gt;" in shown.text and "<b>school</b>" not in shown.text
        assert 'action="/escalations/' + escalation_id + '/withdraw"' in shown.text  # the officer may
        assert f"/escalations/{escalation_id}/respond" not in shown.text  # ... but not respond

        m_csrf = await sign_in(manager, "wigan/wig-team-manager-a")
        waiting = await until_listed(manager, "/waiting", escalation_id, also="working days left")
        assert "Awaiting response" in waiting
        page = await manager.get(f"/escalations/{escalation_id}")
        assert f'action="/escalations/{escalation_id}/respond"' in page.text
        assert f"/escalations/{escalation_id}/withdraw" not in page.text  # not offered to the manager
        # ... and refused when forced by a crafted POST, with the rule's own reason.
        forced = await manager.post(
            f"/escalations/{escalation_id}/withdraw",
            data={"csrf_token": m_csrf, "reason": "not mine", "confirmed": "yes"},
        )
        assert forced.status_code == 400 and "Only the raising officer" in forced.text
        # Bad input keeps what was typed and names the field by its label.
        typed = "A plan <i>is</i> agreed"
        bad = await manager.post(
            f"/escalations/{escalation_id}/respond",
            data={"csrf_token": m_csrf, "answer": " ", "action_plan": typed, "action_plan_due": "31/02/2027"},
        )
        assert bad.status_code == 400 and "There is a problem" in bad.text
        assert (
            "Enter your answer" in bad.text and "Date the action plan is due must be a real date" in bad.text
        )
        assert html.escape(typed, quote=False) in bad.text  # kept, and escaped
        shown_text = re.sub(r'(name|id|for|href|aria-describedby)="[^"]*"', "", bad.text)
        assert "action_plan_due" not in shown_text and "answer:" not in shown_text.lower()
        answered = await manager.post(
            f"/escalations/{escalation_id}/respond",
            data={"csrf_token": m_csrf, "answer": "A date is agreed <script>x()</script>."},
        )
        assert answered.status_code == 303
        after = await manager.get(f"/escalations/{escalation_id}")
        assert "Respond to the concern: done" in after.text, after.text[:3000]
        assert "awaiting decision" in after.text.lower() and "&lt;script&gt;x()" in after.text

        # No business in it: the same 404 as an escalation that does not exist.
        await sign_in(outsider, "wigan/wig-team-manager-b")
        hidden = await outsider.get(f"/escalations/{escalation_id}")
        missing = await outsider.get("/escalations/wigan-T0000000000-0001")
        assert hidden.status_code == missing.status_code == 404

        def same(text: str, escalation: str) -> str:
            return re.sub(r'nonce="[^"]+"', "", text.replace(escalation, "ID"))

        assert same(hidden.text, escalation_id) == same(missing.text, "wigan-T0000000000-0001")
        assert escalation_id not in (await outsider.get("/escalations")).text

        # Irreversible actions ask for confirmation first.
        o_csrf = csrf_of((await officer.get(f"/escalations/{escalation_id}")).text)
        confirm = await officer.post(
            f"/escalations/{escalation_id}/accept", data={"csrf_token": o_csrf, "note": "Good"}
        )
        assert confirm.status_code == 200 and "Are you sure?" in confirm.text
        assert "awaiting decision" in (await officer.get(f"/escalations/{escalation_id}")).text.lower()
        done = await officer.post(
            f"/escalations/{escalation_id}/accept",
            data={"csrf_token": o_csrf, "note": "Good", "confirmed": "yes"},
        )
        assert done.status_code == 303

    audited = {(e.person_id, e.event, e.outcome) for e in web.audit.entries()}
    assert {
        ("wig-iro-a", "sign_in", "ok"),
        ("wig-iro-a", "raise", "ok"),
        ("wig-team-manager-a", "respond", "ok"),
    } <= audited
    assert ("wig-team-manager-a", "withdraw", "refused") in audited
    assert ("wig-team-manager-b", "read", "not_found") in audited


async def test_csrf_missing_or_wrong_is_refused(web: Application) -> None:
    async with browser(web) as client:
        page = await client.get("/sign-in")
        refused = await client.post("/sign-in/development", data={"person": "wigan/wig-iro-a"})
        assert refused.status_code == 403 and "could not be sent" in refused.text
        csrf = await sign_in(client, "wigan/wig-iro-a")
        for data in ({}, {"csrf_token": csrf_of(page.text)}):  # missing, and the one from before sign-in
            form = raise_form("x")
            form.pop("csrf_token")
            assert (await client.post("/raise", data={**form, **data})).status_code == 403
        assert (await client.post("/api/escalations", json=raise_form(csrf))).status_code == 403


async def test_cookies_headers_and_production(web: Application) -> None:
    async with browser(web) as client:
        page = await client.get("/sign-in")
        cookie = page.headers["set-cookie"]
        assert SESSION_COOKIE in cookie and "httponly" in cookie.lower() and "secure" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce and f'nonce="{nonce.group(1)}"' in page.text
        assert "GDS Transport" not in (await client.get("/assets/govuk-frontend.css")).text
        assert (await client.get("/assets/fonts/bold-b542beb274-v2.woff2")).status_code == 404
    async with browser(web, production=True) as client:
        page = await client.get("/sign-in")
        assert "Development sign-in" not in page.text and "wig-iro-a" not in page.text
        refused = await client.post(
            "/sign-in/development",
            data={
                "person": "wigan/wig-iro-a",
                "csrf_token": csrf_of('name="csrf_token" value="' + "y" * 40 + '"'),
            },
        )
        assert refused.status_code in (403, 404)


async def test_sign_in_is_rate_limited(web: Application) -> None:
    async with browser(web, sign_in_per_minute=3) as client:
        csrf = csrf_of((await client.get("/sign-in")).text)
        codes = [
            (
                await client.post("/sign-in/development", data={"person": "nobody", "csrf_token": csrf})
            ).status_code
            for _ in range(4)
        ]
        assert codes == [400, 400, 400, 429]


async def test_the_api_has_the_same_authorisation(web: Application) -> None:
    async with browser(web) as officer, browser(web) as manager, browser(web) as outsider:
        await sign_in(officer, "wigan/wig-iro-a")
        me = (await officer.get("/api/me")).json()
        assert me["id"] == "wig-iro-a" and {"role": "iro", "team": "team-a"} in me["roles"]
        headers = {"X-CSRF-Token": me["csrf_token"]}
        fields = {k: v for k, v in raise_form("").items() if k != "csrf_token"}
        bad = await officer.post(
            "/api/escalations", json={**fields, "summary": "x" * 20_001}, headers=headers
        )
        assert bad.status_code == 422 and "20,000 characters or fewer" in bad.json()["fields"]["summary"]
        made = await officer.post("/api/escalations", json=fields, headers=headers)
        assert made.status_code == 201
        escalation_id = made.json()["escalation_id"]

        await sign_in(manager, "wigan/wig-team-manager-a")
        m_headers = {"X-CSRF-Token": (await manager.get("/api/me")).json()["csrf_token"]}
        read = (await manager.get(f"/api/escalations/{escalation_id}")).json()
        assert "respond" in read["actions"] and "withdraw" not in read["actions"]
        refused = await manager.post(
            f"/api/escalations/{escalation_id}/actions/withdraw", json={"reason": "x"}, headers=m_headers
        )
        assert refused.status_code == 403 and refused.json()["message"].startswith("Only the raising officer")
        past = await manager.post(
            f"/api/escalations/{escalation_id}/actions/request_extension",
            json={"until": "2001-01-01", "reason": "more time"},
            headers=m_headers,
        )
        assert past.status_code == 403 and "past" in past.json()["message"]
        answered = await manager.post(
            f"/api/escalations/{escalation_id}/actions/respond", json={"answer": "Done."}, headers=m_headers
        )
        assert answered.status_code == 200 and answered.json()["status"] == "awaiting_decision"

        await sign_in(outsider, "wigan/wig-social-worker-a")
        assert (await outsider.get(f"/api/escalations/{escalation_id}")).status_code == 404
        assert (await outsider.get("/api/escalations/wigan-T0000000000-0001")).status_code == 404
        assert (
            await httpx.AsyncClient(transport=officer._transport, base_url="https://testserver").get(
                "/api/me"
            )
        ).status_code == 401
        spec = (await officer.get("/api/openapi.json")).json()
        assert "/api/escalations/{escalation_id}/actions/{kind}" in spec["paths"]


async def test_protocol_pages_and_unknown_addresses(web: Application) -> None:
    async with browser(web) as client:
        assert (await client.get("/protocol")).headers["location"] == "/sign-in"
        assert (await client.get("/api/protocols/wigan")).status_code == 401
        await sign_in(client, "wigan/wig-iro-a")
        assert (await client.get("/protocol")).headers["location"] == "/protocols/wigan"
        page = await client.get("/protocols/gloucestershire")
        assert page.status_code == 200 and "Formal Level 4 - Director of Children&#39;s Services" in page.text
        assert (await client.get("/protocols/nowhere")).status_code == 404
        assert (await client.get("/protocols/..%2Fwigan")).status_code == 404
        protocol = (await client.get("/api/protocols/dudley")).json()
        assert protocol["key"] == "dudley" and protocol["tracks"]
        missing = await client.get("/api/protocols/nowhere")
        assert missing.status_code == 404 and missing.json()["message"] == "There is no such protocol."
        unknown = await client.get("/no-such-page")
        assert unknown.status_code == 404 and "<title>Page not found" in unknown.text
        assert (await client.get("/api/no-such")).json()["message"] == "There is no such page."


async def test_the_lists_read_the_record_store_the_worker_writes(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """As `escalate up` and the deployed web app run: the worker records into the layer's own database, and
    the lists read it (no visibility call: this task queue is not the one visibility's lists look at)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    queue = f"web-{uuid.uuid4().hex[:8]}"
    with migrated_engine(url) as engine:
        records, notifier = DbRecordStore(engine), OutboxNotifier(tmp_path)
        async with build_worker(dev_server_env.client, queue, records=records, notifier=notifier):
            app = await Application.start(
                client=dev_server_env.client,
                people=PEOPLE,
                database_url=url,
                task_queue=queue,
                lists_from_records=True,
            )
            async with browser(app) as officer, browser(app) as manager, browser(app) as outsider:
                csrf = await sign_in(officer, "wigan/wig-iro-a")
                raised = await officer.post("/raise", data={**raise_form(csrf), "step": "confirm"})
                assert raised.status_code == 303, raised.text[:2000]
                escalation_id = raised.headers["location"].removeprefix("/escalations/")
                await sign_in(manager, "wigan/wig-team-manager-a")
                waiting = await until_listed(manager, "/waiting", escalation_id, also="working days left")
                assert "Asked to respond" in waiting
                await until_listed(officer, "/escalations", escalation_id, also="Awaiting response")
                await sign_in(outsider, "wigan/wig-team-manager-b")
                assert escalation_id not in (await outsider.get("/escalations")).text
                assert escalation_id not in (await outsider.get("/waiting")).text
