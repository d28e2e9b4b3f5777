"""The dashboard and the report page in a real browser (Debian's chromium through Playwright), with axe-core
checking every document for WCAG 2.2 A and AA, under the pages' strict content security policy: a
supervisor opens the dashboard from the navigation, filters it, opens the reports, asks for a period that
does not exist (the error names the field) and then for a year, whose charts are drawn. ``SCREENSHOTS=1``
saves the dashboard and the report into ``docs/screenshots/``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from activities.db_records import DbRecordStore
from app.audit import AuditLog
from app.identity import People
from app.service import Application
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.browser import Checked, launch, new_context, serve
from tests.report_data import year_of_escalations

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "reports-browser-secret-" + "r" * 40
HEAD = "Noel Testwell (wig-head-of-service)"


@pytest_asyncio.fixture(loop_scope="session")
async def site(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[str]:
    store = DbRecordStore.open(f"sqlite:///{tmp_path / 'app.db'}")
    year_of_escalations(store, per_authority=80, notes_per_authority=4, ending=datetime.now(UTC))
    application = Application(
        client=dev_server_env.client, people=People.load(), audit=AuditLog(store.engine)
    )
    web = create_app(application, WebSettings(session_secret=SECRET, secure_cookies=False))
    async with serve(web) as base_url:
        yield base_url
    store.engine.dispose()


async def test_the_dashboard_and_a_report_in_the_browser(site: str) -> None:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await new_context(browser, site)
            page = Checked(await context.new_page(), HEAD)
            p = page.page
            await p.goto("/")
            await page.check("sign-in page")
            await p.get_by_label(HEAD, exact=True).check()
            await p.get_by_role("button", name="Sign in").click()
            await expect(p.get_by_role("heading", name="Waiting for me")).to_be_visible()
            await page.check("waiting for me")

            await p.get_by_role("link", name="Dashboard").click()
            await expect(p.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
            await expect(p.locator("#outstanding")).to_be_visible()
            await page.check("the dashboard", screenshot="dashboard")
            total = int(await p.locator("#count-outstanding").inner_text())
            assert total > 0

            await p.get_by_label("Status").select_option("awaiting_decision")
            await p.get_by_role("button", name="Filter").click()
            await expect(p.get_by_label("Status")).to_have_value("awaiting_decision")
            await page.check("the dashboard, filtered")
            assert int(await p.locator("#count-outstanding").inner_text()) < total

            await p.get_by_role("link", name="Reports").click()
            await expect(p.get_by_role("heading", level=1)).to_contain_text("Escalations report: Wigan")
            await expect(p.get_by_role("textbox", name="Period")).to_have_value(re.compile(r"^\d{4}-Q[1-4]$"))
            await page.check("the reports page: this quarter")
            await p.get_by_role("textbox", name="Period").fill("2026-Q9")
            await p.get_by_role("button", name="Show the report").click()
            await expect(p.locator(".govuk-error-summary")).to_contain_text("Enter the period as a month")
            await page.check("the reports page with an error")
            await p.get_by_role("textbox", name="Period").fill(str(datetime.now(UTC).year))
            await p.get_by_role("button", name="Show the report").click()
            await expect(p.get_by_role("heading", name="Summary")).to_be_visible()
            charts = p.get_by_role("img", name="Alerts raised by category")
            await expect(charts).to_be_visible()
            assert (await charts.bounding_box() or {"height": 0})["height"] > 50, "the chart is drawn"
            await page.check("a year's report", screenshot="report")
            assert page.unchecked() == 0
        finally:
            await browser.close()
