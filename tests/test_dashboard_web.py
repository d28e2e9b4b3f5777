"""The dashboard, the alert log download and the report page in the web app, on a year of escalations
written through the record store's write path into the application's own database: what a supervisor
sees is counted again here from the state rows and the event log; team managers see their teams only;
everyone else is refused (and audited); bad input names the field."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openpyxl
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.testing import WorkflowEnvironment

from activities.db.record_models import EscalationEvent, EscalationRecord
from activities.db_records import DbRecordStore
from activities.working_days import london_date
from app.audit import AuditLog
from app.identity import People
from app.service import Application
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.report_data import year_of_escalations
from tests.test_web import csrf_of

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "test-session-secret-" + "d" * 40
OPEN = {"awaiting_response", "awaiting_decision", "escalation_due", "monitoring", "exhausted"}
HEAD_OF_SERVICE = "wigan/wig-head-of-service"
SERVICE_LEAD_A = "wigan/wig-service-lead-a"
IRO = "wigan/wig-iro-a"
DUDLEY_QA = "dudley/dud-iro-service-manager"


@pytest_asyncio.fixture(loop_scope="session")
async def web(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Application]:
    store = DbRecordStore.open(f"sqlite:///{tmp_path / 'app.db'}")
    year_of_escalations(store, per_authority=60, notes_per_authority=3, ending=datetime.now(UTC))
    yield Application(client=dev_server_env.client, people=People.load(), audit=AuditLog(store.engine))
    store.engine.dispose()


def browser(application: Application) -> httpx.AsyncClient:
    app = create_app(application, WebSettings(session_secret=SECRET))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    page = await client.get("/sign-in")
    done = await client.post("/sign-in/development", data={"person": key, "csrf_token": csrf_of(page.text)})
    assert done.status_code == 303, done.text
    return (await client.get("/waiting")).text


def _rows(application: Application) -> list[EscalationRecord]:
    with Session(application.audit.engine) as session:
        return list(session.scalars(select(EscalationRecord)))


def _number(page: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}">(\d+)<', page)
    assert found, f"#{element_id} not on the page"
    return int(found.group(1))


def _supervisor_key() -> str:
    people = People.load().all()
    from app.reporting.access import supervision
    from protocols import load_protocol

    dudley = load_protocol("dudley")
    for p in people:
        if p.authority == "dudley":
            seen = supervision(p, dudley)
            if seen is not None and seen.teams is None:
                return p.key
    raise AssertionError("Dudley's directory has no authority-wide supervisor")


async def test_a_supervisor_sees_every_outstanding_escalation_counted_right(web: Application) -> None:
    rows = [r for r in _rows(web) if r.authority == "wigan" and r.status in OPEN]
    assert len(rows) >= 5, "the data set leaves escalations open"
    now = datetime.now(UTC)
    overdue = [r for r in rows if "overdue" in r.flags or (r.deadline is not None and r.deadline < now)]
    breached = [r for r in rows if "breached" in r.flags]
    stalled = [r for r in rows if "stalled" in r.flags]
    async with browser(web) as client:
        waiting = await sign_in(client, HEAD_OF_SERVICE)
        assert 'href="/dashboard"' in waiting and 'href="/reports"' in waiting
        page = (await client.get("/dashboard")).text
    assert _number(page, "count-outstanding") == len(rows)
    assert _number(page, "count-overdue") == len(overdue)
    assert _number(page, "count-breached") == len(breached)
    assert _number(page, "count-stalled") == len(stalled)
    listed = re.findall(
        r'<a class="govuk-link" href="/escalations/([^"]+)">',
        page.split('id="outstanding"')[1].split("</table>")[0],
    )
    assert set(listed) <= {r.escalation_id for r in rows}
    assert len(listed) == min(50, len(rows))
    first_clean = next(
        (i for i, e in enumerate(listed) if e not in {r.escalation_id for r in breached + overdue}),
        len(listed),
    )
    assert all(e in {r.escalation_id for r in breached + overdue} for e in listed[:first_clean])
    assert {r.escalation_id for r in breached + overdue} & set(listed[first_clean:]) == set(), "flagged first"
    by_team = {t: sum(1 for r in rows if r.team == t) for t in {r.team for r in rows}}
    table = page.split('id="by-team"')[1].split("</table>")[0]
    for team, count in by_team.items():
        assert re.search(rf">{re.escape(str(team))}</th>\s*<td[^>]*>{count}</td>", table), (team, count)
    entries = web.audit.entries(person_id="wig-head-of-service")
    assert any(e.event == "dashboard" and e.outcome == "ok" for e in entries)


async def test_filters_narrow_the_counts(web: Application) -> None:
    rows = [r for r in _rows(web) if r.authority == "wigan" and r.status in OPEN]
    status = max({r.status for r in rows}, key=lambda s: sum(1 for r in rows if r.status == s))
    async with browser(web) as client:
        await sign_in(client, HEAD_OF_SERVICE)
        page = (await client.get("/dashboard", params={"status": status})).text
        assert _number(page, "count-outstanding") == sum(1 for r in rows if r.status == status)
        assert f'value="{status}" selected' in page
        nothing = (await client.get("/dashboard", params={"team": "no-such-team"})).text
        assert _number(nothing, "count-outstanding") == 0 and "No outstanding escalations match." in nothing


async def test_a_team_manager_sees_their_teams_only_and_officers_are_refused(web: Application) -> None:
    rows = [r for r in _rows(web) if r.authority == "wigan" and r.status in OPEN]
    team_b = {r.escalation_id for r in rows if r.team == "team-b"}
    async with browser(web) as lead, browser(web) as officer:
        await sign_in(lead, SERVICE_LEAD_A)
        page = (await lead.get("/dashboard")).text
        assert _number(page, "count-outstanding") == sum(1 for r in rows if r.team == "team-a")
        assert not any(f'/escalations/{e}"' in page for e in team_b)
        log = (
            await lead.get("/dashboard/alert-log.csv", params={"period": str(datetime.now(UTC).year)})
        ).text
        assert "team-b" not in log

        waiting = await sign_in(officer, IRO)
        assert 'href="/dashboard"' not in waiting
        refused = await officer.get("/dashboard")
        assert refused.status_code == 403 and "supervisors and quality assurance managers" in refused.text
        assert (await officer.get("/reports")).status_code == 403
        assert (await officer.get("/dashboard/alert-log.csv")).status_code == 403
    entries = web.audit.entries(person_id="wig-iro-a")
    assert {e.event for e in entries if e.outcome == "refused"} >= {"dashboard", "report", "alert_log"}


async def test_another_authority_sees_none_of_wigans(web: Application) -> None:
    wigan = {r.escalation_id for r in _rows(web) if r.authority == "wigan"}
    async with browser(web) as client:
        await sign_in(client, _supervisor_key())
        page = (await client.get("/dashboard")).text
        assert not any(f'/escalations/{e}"' in page for e in wigan)
        log = (await client.get("/dashboard/alert-log.csv", params={"period": "2026"})).text
        assert "rpt-wigan-" not in log


async def test_the_alert_log_downloads_as_csv_and_xlsx(web: Application) -> None:
    year = datetime.now(UTC).year
    raised = {
        r.escalation_id: r
        for r in _rows(web)
        if r.authority == "wigan" and london_date(r.raised_at).year == year
    }
    async with browser(web) as client:
        await sign_in(client, HEAD_OF_SERVICE)
        got = await client.get("/dashboard/alert-log.csv", params={"period": str(year)})
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert f'filename="alert-log-wigan-{year}.csv"' in got.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(got.text)))
        sheet = await client.get("/dashboard/alert-log.xlsx", params={"period": str(year)})
        bad = await client.get("/dashboard/alert-log.csv", params={"period": "last year"})
    assert {line["Escalation"] for line in lines} == set(raised)
    for line in lines:
        record = raised[line["Escalation"]]
        assert line["Child reference"] == record.child_ref
        assert line["Date raised"] == london_date(record.raised_at).isoformat()
        assert line["Category"] == record.category
        assert line["Stage reached"] == record.stage_name
    book = openpyxl.load_workbook(io.BytesIO(sheet.content))
    values = list(book.worksheets[0].iter_rows(values_only=True))
    assert list(values[0]) == list(lines[0].keys()) if lines else True
    assert len(values) - 1 == len(lines)
    assert bad.status_code == 400 and "Enter the period as a month" in bad.text


async def test_the_report_page_and_its_downloads(web: Application) -> None:
    with Session(web.audit.engine) as session:
        events = list(session.scalars(select(EscalationEvent).where(EscalationEvent.authority == "wigan")))
    raised_2026 = sum(1 for e in events if e.kind == "raised" and london_date(e.at).year == 2026)
    async with browser(web) as client:
        await sign_in(client, HEAD_OF_SERVICE)
        page = await client.get("/reports", params={"period": "2026"})
        csv_file = await client.get("/reports", params={"period": "2026", "format": "csv"})
        pdf = await client.get("/reports", params={"period": "2026", "format": "pdf"})
        bad = await client.get("/reports", params={"period": "2026-Q5"})
    assert page.status_code == 200
    assert re.search(r'data-figure="Alerts raised">(\d+)<', page.text).group(1) == str(raised_2026)  # type: ignore[union-attr]
    assert page.text.count('<svg class="app-chart" role="img"') >= 5
    assert "<title id=" in page.text and "<desc id=" in page.text
    assert f"summary,raised,{raised_2026}" in csv_file.text
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    assert bad.status_code == 400 and "Enter the period as a month" in bad.text
    assert 'value="2026-Q5"' in bad.text, "what was typed is kept"
