"""The web app in a real browser: Debian's chromium driven by Playwright against the app served by uvicorn,
a dev server and a real worker, with axe-core checking every document the browser loads, in every state
(errors included), for WCAG 2.2 A and AA.

The story (Gloucestershire): an IRO signs in and raises a concern at Formal Level 1 through the form and
check your answers; the team manager sees it waiting and answers with an action plan; the IRO escalates;
the head of service asks for more time; the IRO approves. A manager of another team gets "not found"; a
wrong-role action is not offered, and is refused when forced by a crafted form. ``SCREENSHOTS=1`` saves
the main pages into ``docs/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from app.identity import People
from app.service import Application
from protocols import available_protocols
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.browser import TIMEOUT_MS, Checked, launch, new_context, serve
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "browser-test-session-secret-" + "z" * 40
OFFICER = "Alex Example (glo-iro-a)"
MANAGER = "Gale Dummy (glo-team-manager-a)"
HEAD = "Kit Placeholder (glo-head-of-service)"
OUTSIDER = "Harper Notreal (glo-team-manager-b)"

expect.set_options(timeout=TIMEOUT_MS)


class Site:
    def __init__(self, browser: Browser, base_url: str, application: Application) -> None:
        self.browser = browser
        self.base_url = base_url
        self.application = application
        self.pages: list[Checked] = []
        self._contexts: list[BrowserContext] = []

    async def person(self, who: str) -> Checked:
        """A new browser context (its own cookies) signed in as ``who`` through the development sign-in."""
        context = await new_context(self.browser, self.base_url)
        self._contexts.append(context)
        page = Checked(await context.new_page(), who)
        self.pages.append(page)
        await page.page.goto("/")
        await expect(page.page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.check("sign-in page", screenshot="sign-in", full_page=False)
        await page.page.get_by_label(who, exact=True).check()
        await page.page.get_by_role("button", name="Sign in").click()
        await expect(page.page.get_by_role("heading", name="Waiting for me")).to_be_visible()
        await page.check("waiting for me, just signed in")
        return page

    def all_checked(self) -> None:
        """Every document any page of the test loaded was checked by axe."""
        unchecked = {p.who: p.unchecked() for p in self.pages if p.unchecked()}
        assert not unchecked, f"documents loaded but never checked by axe: {unchecked}"

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Site]:
    # The default task queue: lists read visibility for escalations on it (starter/read_model.py).
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path), async_playwright() as playwright:
        browser = await launch(playwright)
        application = await Application.start(
            client=dev_server_env.client,
            people=People.load(),
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
        )
        web = create_app(application, WebSettings(session_secret=SECRET, secure_cookies=False))
        async with serve(web) as base_url:
            site = Site(browser, base_url, application)
            try:
                yield site
            finally:
                await site.close()
                await browser.close()


async def waiting_listed(page: Checked, escalation_id: str) -> None:
    """Until the JSON API lists the escalation as waiting for this person (visibility is eventually
    consistent), then open "Waiting for me" from the navigation."""
    import asyncio

    give_up = asyncio.get_running_loop().time() + TIMEOUT_MS / 1000
    while True:
        listed = await page.page.request.get("/api/escalations?waiting=true")
        assert listed.ok, await listed.text()
        if any(e["escalation_id"] == escalation_id for e in (await listed.json())["escalations"]):
            break
        assert asyncio.get_running_loop().time() < give_up, f"{escalation_id} never waited for {page.who}"
        await asyncio.sleep(0.2)
    await page.page.get_by_role("link", name="Waiting for me").click()
    await expect(page.page.get_by_role("link", name=escalation_id)).to_be_visible()


def flash(page: Page) -> Locator:
    return page.locator(".govuk-notification-banner--success")


async def test_a_concern_from_raising_to_an_approved_extension(site: Site) -> None:
    # --- the IRO raises a concern, starting at Formal Level 1 --------------------------------------------
    officer = await site.person(OFFICER)
    o = officer.page
    await o.get_by_role("link", name="Raise a concern").click()
    await expect(o.get_by_role("heading", name="Raise a concern")).to_be_visible()
    await officer.check("raise form", screenshot="raise-a-concern")
    child_ref = unique_ref()
    await o.get_by_label("IRO and CP Chair dispute resolution").check()
    await o.get_by_label("Category").select_option("Key decision-making")
    await o.get_by_label("Child's case number").fill(child_ref)
    await o.get_by_label("Looked after (a child in care)").check()
    await o.get_by_label("Team").select_option("team-a")
    await o.get_by_label("Summary of the concern").fill("The care plan has drifted <script>alert(1)</script>")
    await o.get_by_label("Impact on the child").fill("No school place for two months.")
    await o.get_by_label("What you are asking for").fill("Agree a school place by the next review.")
    await o.get_by_label("The child's views (optional)").fill("Wants to go back to school.")
    await o.get_by_label("Stage to start at (optional)").select_option(label="Formal Level 1 - Team Manager")
    await o.get_by_role("button", name="Continue").click()
    # A later stage needs a reason: the error summary names the field, and what was typed is kept.
    summary = o.locator(".govuk-error-summary")
    await expect(summary).to_contain_text("Enter why you are starting at a later stage")
    await expect(o.get_by_label("Child's case number")).to_have_value(child_ref)
    await expect(o.get_by_label("Summary of the concern")).to_have_value(
        "The care plan has drifted <script>alert(1)</script>"
    )
    await expect(o).to_have_title(re.compile("^Error: "))
    await officer.check("raise form with an error", screenshot="raise-a-concern-error")
    await summary.get_by_role("link", name="Enter why you are starting at a later stage").click()
    await expect(o.get_by_label("Why you are starting at a later stage (optional)")).to_be_focused()
    await o.get_by_label("Why you are starting at a later stage (optional)").fill(
        "The social worker is on long leave; the team manager must decide."
    )
    await o.get_by_role("button", name="Continue").click()
    await expect(
        o.get_by_role("heading", name="Check your answers before raising the concern")
    ).to_be_visible()
    await expect(o.locator(".govuk-summary-list")).to_contain_text("<script>alert(1)</script>")
    await officer.check("check your answers", screenshot="check-your-answers")
    await o.get_by_role("button", name="Raise the concern").click()
    await expect(flash(o)).to_contain_text("The concern was raised as escalation")
    escalation_id = o.url.rsplit("/", 1)[1]
    assert re.fullmatch(rf"gloucestershire-{child_ref}-\d+", escalation_id), escalation_id
    await expect(o.locator(".govuk-summary-list")).to_contain_text("Formal Level 1 - Team Manager")
    await expect(o.locator("#action-withdraw")).to_be_visible()  # the officer may withdraw ...
    await expect(o.locator("#action-respond")).to_have_count(0)  # ... but not answer
    await officer.check("escalation just raised (officer)")

    # --- the team manager sees it waiting and answers with an action plan -------------------------------
    manager = await site.person(MANAGER)
    m = manager.page
    await waiting_listed(manager, escalation_id)
    row = m.get_by_role("row").filter(has=m.get_by_role("link", name=escalation_id))
    await expect(row).to_contain_text("Awaiting response")
    await expect(row).to_contain_text("working days left")
    await manager.check("waiting for me, one waiting", screenshot="waiting-for-me")
    await m.get_by_role("link", name=escalation_id).click()
    await expect(m.get_by_role("heading", name=f"Escalation {escalation_id}")).to_be_visible()
    await expect(m.locator("#action-respond")).to_be_visible()
    await expect(m.locator("#action-withdraw")).to_have_count(0)  # not offered to the manager
    await manager.check("escalation waiting for an answer (manager)", screenshot="escalation")

    # A wrong-role action forced by a crafted form (the session's own CSRF token): refused with the
    # rule's reason, and nothing changes.
    async with m.expect_response(lambda r: r.request.method == "POST") as crafted:
        await m.evaluate(
            """(id) => {
              const form = document.createElement("form");
              form.method = "post";
              form.action = `/escalations/${id}/withdraw`;
              const fields = {csrf_token: document.querySelector("input[name=csrf_token]").value,
                              reason: "Not needed", confirmed: "yes"};
              for (const [name, value] of Object.entries(fields)) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = name; input.value = value;
                form.append(input);
              }
              document.body.append(form);
              form.submit();
            }""",
            escalation_id,
        )
    assert (await crafted.value).status == 400
    await expect(m.locator(".govuk-error-summary")).to_contain_text("Only the raising officer")
    await expect(m.locator(".govuk-error-summary a")).to_have_attribute("href", "#actions")
    await expect(m.locator(".app-status")).to_have_text("Awaiting response")
    await manager.check("a forced withdrawal refused (manager)")

    # An answer left empty and a date that does not exist: both named by their labels.
    respond = m.locator("#action-respond")
    await respond.get_by_label("Action plan (optional)").fill("Education team to find a place <b>now</b>.")
    await respond.get_by_label("Date the action plan is due (optional)").fill("2027-02-31")
    await respond.get_by_role("button", name="Send response").click()
    await expect(m.locator(".govuk-error-summary")).to_contain_text("Enter your answer")
    await expect(m.locator(".govuk-error-summary")).to_contain_text("Date the action plan is due")
    await expect(respond.get_by_label("Action plan (optional)")).to_have_value(
        "Education team to find a place <b>now</b>."
    )
    await manager.check("answer with errors (manager)", screenshot="escalation-error")
    due = (date.today() + timedelta(days=28)).isoformat()
    await respond.get_by_label("Your answer").fill("We agree: a school place will be found.")
    await respond.get_by_label("Date the action plan is due (optional)").fill(due)
    await respond.get_by_role("button", name="Send response").click()
    await expect(flash(m)).to_contain_text("Respond to the concern: done")
    await expect(m.locator(".app-status")).to_have_text("Awaiting decision")
    await expect(m.locator(".app-timeline")).to_contain_text("Education team to find a place <b>now</b>.")
    await manager.check("answered (manager)")

    # --- the IRO is not satisfied and escalates -----------------------------------------------------------
    await o.reload()
    await expect(o.locator("#action-escalate")).to_be_visible()
    await officer.check("answer received (officer)")
    escalate = o.locator("#action-escalate")
    await escalate.get_by_label("Why the response does not address the concern").fill(
        "A place 'to be found' is not a date."
    )
    await escalate.get_by_role("button", name="Escalate").click()
    await expect(flash(o)).to_contain_text("Escalate to the next stage: done")
    await expect(o.locator(".govuk-summary-list")).to_contain_text(
        "Formal Level 2 - Head of Service and Service Manager"
    )
    await officer.check("escalated (officer)")

    # --- the head of service asks for more time -----------------------------------------------------------
    head = await site.person(HEAD)
    h = head.page
    await waiting_listed(head, escalation_id)
    await head.check("waiting for me (head of service)")
    await h.get_by_role("link", name=escalation_id).click()
    ask = h.locator("#action-request_extension")
    await expect(ask).to_be_visible()
    await head.check("escalation at Formal Level 2 (head of service)")
    state = await (await h.request.get(f"/api/escalations/{escalation_id}")).json()
    until = (date.fromisoformat(state["escalation"]["deadline_date"]) + timedelta(days=7)).isoformat()
    await ask.get_by_label("New date").fill(until)
    await ask.get_by_label("Reason").fill("The Director of Safeguarding must be consulted.")
    await ask.get_by_role("button", name="Ask for more time").click()
    await expect(flash(h)).to_contain_text("Ask for more time: done")
    await expect(h.locator(".govuk-summary-list")).to_contain_text("Request for more time")
    await head.check("more time asked for (head of service)")

    # --- the IRO approves -----------------------------------------------------------------------------------
    await o.reload()
    decide = o.locator("#action-decide_extension")
    await expect(decide).to_be_visible()
    await officer.check("a request for more time to decide (officer)")
    await decide.get_by_label("Yes").check()
    await decide.get_by_role("button", name="Send decision").click()
    await expect(flash(o)).to_contain_text("Decide the request for more time: done")
    await expect(o.locator(".govuk-summary-list")).not_to_contain_text("Request for more time")
    approved = await (await o.request.get(f"/api/escalations/{escalation_id}")).json()
    assert approved["escalation"]["deadline_date"] == until, approved["escalation"]
    await officer.check("more time approved (officer)")

    # --- a manager of another team has no business in it -------------------------------------------------
    outsider = await site.person(OUTSIDER)
    x = outsider.page
    hidden = await x.goto(f"/escalations/{escalation_id}")
    assert hidden is not None and hidden.status == 404
    await expect(x.get_by_role("heading", name="Page not found")).to_be_visible()
    hidden_text = (await x.locator("main").inner_text()).replace(escalation_id, "ID")
    await outsider.check("an escalation of another team (not found)", screenshot="not-found")
    missing = await x.goto("/escalations/gloucestershire-T0000000000-0001")
    assert missing is not None and missing.status == 404
    assert (await x.locator("main").inner_text()).replace("gloucestershire-T0000000000-0001", "ID") == (
        hidden_text
    )
    await outsider.check("an escalation that does not exist (not found)")
    await x.get_by_role("link", name="My escalations").click()
    await expect(x.get_by_role("heading", name="My escalations")).to_be_visible()
    await expect(x.get_by_role("link", name=escalation_id)).to_have_count(0)
    await outsider.check("my escalations (outsider)")

    # Every sign-in and action is in the audit log, and the forced withdrawal as refused.
    audited = {(e.person_id, e.event, e.outcome) for e in site.application.audit.entries()}
    assert {
        ("glo-iro-a", "raise", "ok"),
        ("glo-team-manager-a", "respond", "ok"),
        ("glo-team-manager-a", "withdraw", "refused"),
        ("glo-iro-a", "escalate", "ok"),
        ("glo-head-of-service", "request_extension", "ok"),
        ("glo-iro-a", "decide_extension", "ok"),
        ("glo-team-manager-b", "read", "not_found"),
    } <= audited
    site.all_checked()


async def test_every_authority_protocol_page(site: Site) -> None:
    officer = await site.person(OFFICER)
    p = officer.page
    await p.get_by_role("link", name="Protocol").click()
    await expect(p.get_by_role("heading", name="Escalation protocol")).to_be_visible()
    await expect(p.get_by_role("link", name="Protocol")).to_have_attribute("aria-current", "true")
    stages = p.locator(".app-ladder__stage")
    await expect(stages).to_have_count(5)
    level2 = stages.nth(2)
    await expect(level2).to_contain_text("Step 3 of 5 Formal Level 2 - Head of Service and Service Manager")
    await expect(level2).to_contain_text("Head of Service (operational), Service Manager")
    await expect(level2).to_contain_text("Director of Safeguarding and Care")
    await expect(level2).to_contain_text("5 working days")
    rules = p.locator(".govuk-summary-list").last
    await expect(rules).to_contain_text("20 working days")
    await expect(rules).to_contain_text("Referred by Independent Reviewing Officer")
    await officer.check("protocol (Gloucestershire)", screenshot="protocol")
    for key in available_protocols():
        response = await p.goto(f"/protocols/{key}")
        assert response is not None and response.status == 200, key
        await expect(p.locator(".app-ladder__stage").first).to_be_visible()
        await officer.check(f"protocol ({key})")
    wigan = p.locator("#track-iro")
    await p.goto("/protocols/wigan")
    await expect(wigan).to_contain_text("Agreement of IRO Team Manager")
    await expect(wigan).to_contain_text("Only in exceptional circumstances")
    await expect(wigan).to_contain_text("No time is set")
    await officer.check("protocol (Wigan) again")
    missing = await p.goto("/protocols/nowhere")
    assert missing is not None and missing.status == 404
    await officer.check("protocol that does not exist")
    site.all_checked()


async def test_error_pages_in_the_browser(site: Site) -> None:
    visitor = Checked(await (await new_context(site.browser, site.base_url)).new_page(), "visitor")
    site.pages.append(visitor)
    v = visitor.page
    await v.goto("/sign-in")
    await visitor.check("sign-in page, not signed in")
    await v.get_by_role("button", name="Sign in").click()  # nobody chosen
    await expect(v.locator(".govuk-error-summary")).to_contain_text("Select who you are")
    await visitor.check("sign-in with nobody chosen", screenshot="sign-in-error", full_page=False)
    await v.get_by_role("link", name="Select who you are").click()
    await expect(v.locator("input[name=person]").first).to_be_focused()
    # A form whose CSRF token is no longer the session's (signed out in another tab, say).
    await v.context.clear_cookies()
    await v.get_by_role("button", name="Sign in").click()
    await expect(v.get_by_role("heading", name="Your form could not be sent")).to_be_visible()
    await visitor.check("a form that had expired")
    response = await v.goto("/no-such-page")
    assert response is not None and response.status == 404
    await visitor.check("no such page")
    site.all_checked()


async def test_the_accessibility_check_finds_violations(site: Site) -> None:
    """The check can fail: a document with an unlabelled field and an image without alternative text."""
    context = await new_context(site.browser, site.base_url)
    await context.route(
        "**/broken",
        lambda route: route.fulfill(
            content_type="text/html",
            body='<!doctype html><html lang="en"><head><title>Broken</title></head><body><main>'
            '<img src="/static/none.png"><input type="text"></main></body></html>',
        ),
    )
    page = Checked(await context.new_page(), "anyone")
    await page.page.goto("/broken")
    with pytest.raises(AssertionError) as found:
        await page.check("a broken document")
    assert "image-alt" in str(found.value) and "label" in str(found.value)
    assert page.unchecked() == 1
    await context.close()


async def test_the_new_forms_in_the_browser(site: Site) -> None:
    """Wigan's partner-agencies track through the raise form (the child's status, the partner's manager
    outside the directory, a shorter timescale); errors name the form's fields and keep what was typed;
    the escalation's page offers recording the partner's answer on their behalf. Waltham Forest (FWi):
    the duties table and the record-a-step form. axe checks each state, errors included."""
    officer = await site.person("Alex Example (wig-iro-a)")
    o = officer.page
    await o.get_by_role("link", name="Raise a concern").click()
    await officer.check("raise form with the v2 fields (Wigan)")
    child_ref = unique_ref()
    await o.get_by_label("Disputes with partner agencies (by e-mail)").check()
    await o.get_by_label("Category").select_option("Quality of practice")
    await o.get_by_label("Child's case number").fill(child_ref)
    await o.get_by_label("Team").select_option("team-a")
    await o.get_by_label("Summary of the concern").fill("The partner's plan has drifted.")
    await o.get_by_label("Impact on the child").fill("No health assessment.")
    await o.get_by_label("What you are asking for").fill("Book the assessment.")
    await o.get_by_label("Partner agency's manager (outside the council): e-mail address (optional)").fill(
        "not an address"
    )
    await o.get_by_label("A shorter time to answer, in working days (optional)").fill("3")
    await o.get_by_role("button", name="Continue").click()
    summary = o.locator(".govuk-error-summary")
    await expect(summary).to_contain_text("Select the child's status")
    await expect(summary).to_contain_text("Partner agency's manager (outside the council): e-mail address")
    await expect(o.get_by_label("Child's case number")).to_have_value(child_ref)
    await expect(o.get_by_label("A shorter time to answer, in working days (optional)")).to_have_value("3")
    await officer.check("raise form with v2 errors (Wigan)")
    await o.get_by_label("Looked after", exact=True).check()
    await o.get_by_label("Partner agency's manager (outside the council): name (optional)").fill(
        "Robin Partner"
    )
    await o.get_by_label("Partner agency's manager (outside the council): e-mail address (optional)").fill(
        "robin.partner@partner.example.org"
    )
    await o.get_by_label("Why the answer is needed sooner (optional)").fill("The assessment is overdue.")
    await o.get_by_role("button", name="Continue").click()
    await expect(
        o.get_by_role("heading", name="Check your answers before raising the concern")
    ).to_be_visible()
    answers = o.locator(".govuk-summary-list")
    await expect(answers).to_contain_text("Looked after")
    await expect(answers).to_contain_text("robin.partner@partner.example.org")
    await officer.check("check your answers with the v2 fields")
    await o.get_by_role("button", name="Raise the concern").click()
    await expect(flash(o)).to_contain_text("The concern was raised as escalation")
    await expect(o.locator(".govuk-summary-list")).to_contain_text("Looked after")
    await officer.check("a partner-agency escalation (officer)")
    respond = o.locator("#action-respond")
    await expect(respond.get_by_label("Whose answer you are recording (optional)")).to_be_visible()
    await respond.get_by_role("button", name="Send response").click()
    await expect(o.locator(".govuk-error-summary")).to_contain_text("Enter your answer")
    await officer.check("recording the partner's answer with an error (officer)")
    await o.locator("#action-respond").get_by_label("Your answer").fill("They will book it this week.")
    await (
        o.locator("#action-respond")
        .get_by_label("Whose answer you are recording (optional)")
        .select_option("partner_agency_manager")
    )
    await o.locator("#action-respond").get_by_role("button", name="Send response").click()
    await expect(flash(o)).to_contain_text("Respond to the concern: done")
    await officer.check("the partner's answer recorded (officer)")

    fwi = await site.person("Alex Example (wff-iro-a)")
    f = fwi.page
    me = await (await f.request.get("/api/me")).json()
    made = await f.request.post(
        "/api/escalations",
        headers={"X-CSRF-Token": me["csrf_token"]},
        data={
            "request_id": unique_ref(),
            "track": "iro",
            "category": "Significant drift in permanence planning",
            "child_ref": unique_ref(),
            "child_status": "looked_after",
            "team": "team-a",
            "summary": "No permanence plan.",
            "impact_on_child": "Drift.",
            "requested_action": "A plan.",
            "start_at_stage": "team-manager",
            "bypass_reason": "Urgent.",
            "emergency": True,
        },
    )
    assert made.status == 201, await made.text()
    escalation_id = (await made.json())["escalation_id"]
    await f.goto(f"/escalations/{escalation_id}")
    await expect(f.get_by_role("heading", name="Duties")).to_be_visible()
    await fwi.check("an escalation with a required step (officer)")
    step = f.locator("#action-record_step")
    await step.get_by_label("The child").check()
    await step.get_by_role("button", name="Record step").click()
    await expect(f.locator(".govuk-error-summary")).to_contain_text("Enter step")
    await fwi.check("recording a step with an error (officer)")
    step = f.locator("#action-record_step")
    await expect(step.get_by_label("The child")).to_be_checked()  # kept
    await step.get_by_label("Step").select_option("child-told")
    await step.get_by_label("In person").check()
    await step.get_by_role("button", name="Record step").click()
    await expect(flash(f)).to_contain_text("Record a step as done: done")
    await expect(f.locator(".govuk-table").first).to_contain_text("Done ")
    await fwi.check("a step recorded (officer)")
    site.all_checked()
