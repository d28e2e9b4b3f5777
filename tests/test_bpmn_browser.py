"""BPMN diagrams in Debian's chromium: every exported diagram imports into bpmn-js (from npm) with no import
warnings; each authority's diagram page draws its ladders; an escalation's page marks where it is and the
stages it passed through. Every document loaded is checked by axe-core, as in tests/test_browser.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from app.identity import People
from app.service import Application
from protocols import available_protocols, load_protocol
from protocols.bpmn import export_bpmn
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.browser import SCREENSHOTS, TIMEOUT_MS, Checked, launch, new_context, screenshots_wanted, serve
from tests.workflow_harness import file_worker, unique_ref
from workflows.escalation import TASK_QUEUE

SECRET = "bpmn-browser-test-session-secret-" + "q" * 40
OFFICER = "Alex Example (glo-iro-a)"

expect.set_options(timeout=TIMEOUT_MS)

IMPORT = """async (xml) => {
  const viewer = new window.BpmnJS({container: document.createElement("div")});
  try {
    const result = await viewer.importXML(xml);
    return result.warnings.map(w => w.message);
  } catch (err) {
    return ["failed: " + err.message];
  } finally {
    viewer.destroy();
  }
}"""


SVG = """async (xml) => {
  const viewer = new window.BpmnJS({container: document.createElement("div")});
  await viewer.importXML(xml);
  const {svg} = await viewer.saveSVG();
  viewer.destroy();
  return svg;
}"""


class Site:
    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url

    async def signed_in(self, who: str) -> Checked:
        context = await new_context(self.browser, self.base_url)
        page = Checked(await context.new_page(), who)
        await page.page.goto("/")
        await page.page.get_by_label(who, exact=True).check()
        await page.page.get_by_role("button", name="Sign in").click()
        await expect(page.page.get_by_role("heading", name="Waiting for me")).to_be_visible()
        await page.check("waiting for me")
        return page


@pytest_asyncio.fixture(loop_scope="session")
async def site(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Site]:
    async with file_worker(dev_server_env, TASK_QUEUE, tmp_path), async_playwright() as playwright:
        browser = await launch(playwright)
        application = await Application.start(
            client=dev_server_env.client,
            people=People.load(),
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
        )
        web = create_app(application, WebSettings(session_secret=SECRET, secure_cookies=False))
        async with serve(web) as base_url:
            try:
                yield Site(browser, base_url)
            finally:
                await browser.close()


async def test_every_exported_diagram_imports_into_bpmn_js_without_warnings(site: Site) -> None:
    officer = await site.signed_in(OFFICER)
    p = officer.page
    await p.goto("/protocols/gloucestershire/diagram")
    await expect(p.locator(".app-diagram__canvas").first).to_have_attribute("data-state", "shown")
    await officer.check("diagrams (Gloucestershire)")
    found = {}
    for key in available_protocols():
        protocol = load_protocol(key)
        for track in [None, *(t.key for t in protocol.tracks)]:
            found[(key, track)] = await p.evaluate(IMPORT, export_bpmn(protocol, track))
    assert {k: v for k, v in found.items() if v} == {}
    assert len(found) == sum(len(load_protocol(k).tracks) + 1 for k in available_protocols())
    if screenshots_wanted():  # the picture in docs/bpmn.md: an exported diagram as bpmn-js draws it
        svg = await p.evaluate(SVG, export_bpmn(load_protocol("wigan"), "iro"))
        (SCREENSHOTS / "bpmn-wigan-iro.svg").write_text(svg, encoding="utf-8")


async def test_each_authority_diagram_page_draws_every_ladder(site: Site) -> None:
    officer = await site.signed_in(OFFICER)
    p = officer.page
    await p.goto("/protocols/gloucestershire")
    await p.get_by_role("link", name="See the ladders as BPMN diagrams").click()
    for key in available_protocols():
        await p.goto(f"/protocols/{key}/diagram")
        canvases = p.locator(".app-diagram__canvas")
        await expect(canvases).to_have_count(len(load_protocol(key).tracks))
        for n in range(await canvases.count()):
            await expect(canvases.nth(n)).to_have_attribute("data-state", "shown")
            await expect(canvases.nth(n)).to_have_attribute("data-warnings", "0")
        # a stage of the first track is drawn as a task with its name
        first = load_protocol(key).tracks[0]
        shape = canvases.first.locator(f'[data-element-id="{first.key}_{first.stages[0].key}"]')
        await expect(shape).to_be_visible()
        await officer.check(f"diagrams ({key})")
    xml = await p.request.get("/protocols/wigan/diagram.bpmn?track=cp")
    assert xml.ok and (await xml.text()) == export_bpmn(load_protocol("wigan"), "cp")
    assert (await p.request.get("/protocols/wigan/diagram.bpmn?track=nope")).status == 404


async def test_an_escalation_page_marks_where_it_is_and_the_path_it_took(site: Site) -> None:
    officer = await site.signed_in(OFFICER)
    p = officer.page
    protocol = load_protocol("gloucestershire")
    track = protocol.track("iro-cp")
    me = await (await p.request.get("/api/me")).json()
    headers = {"X-CSRF-Token": me["csrf_token"]}
    made = await p.request.post(
        "/api/escalations",
        headers=headers,
        data={
            "request_id": unique_ref(),
            "track": track.key,
            "category": track.categories[0],
            "child_ref": unique_ref(),
            "child_status": "looked_after",
            "team": "team-a",
            "summary": "The plan has drifted.",
            "impact_on_child": "No school place.",
            "requested_action": "Agree a date.",
        },
    )
    assert made.status == 201, await made.text()
    escalation_id = (await made.json())["escalation_id"]
    give_up = asyncio.get_running_loop().time() + TIMEOUT_MS / 1000
    while True:  # the first stage's notice goes out, then the officer may escalate
        done = await p.request.post(
            f"/api/escalations/{escalation_id}/actions/escalate",
            headers=headers,
            data={"reason": "No answer that helps the child."},
        )
        if done.ok:
            break
        assert asyncio.get_running_loop().time() < give_up, await done.text()
        await asyncio.sleep(0.2)
    await p.goto(f"/escalations/{escalation_id}")
    canvas = p.locator(".app-diagram__canvas")
    await expect(canvas).to_have_attribute("data-state", "shown")
    first, second = track.stages[0], track.stages[1]
    current = canvas.locator(f'[data-element-id="{track.key}_{second.key}"]')
    passed = canvas.locator(f'[data-element-id="{track.key}_{first.key}"]')
    await expect(current).to_have_class(re.compile(r"\bapp-bpmn--current\b"))
    await expect(passed).to_have_class(re.compile(r"\bapp-bpmn--passed\b"))
    later = canvas.locator(f'[data-element-id="{track.key}_{track.stages[2].key}"]')
    await expect(later).not_to_have_class(re.compile(r"app-bpmn--"))
    await officer.check("escalation with its diagram")
    if screenshots_wanted():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await canvas.screenshot(path=str(SCREENSHOTS / "escalation-diagram.png"))
