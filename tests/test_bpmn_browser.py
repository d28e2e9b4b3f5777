"""BPMN diagrams in Debian's chromium: every exported diagram imports into bpmn-js (from npm) with no import
warnings; each authority's diagram page draws its ladders; an escalation's page marks where it is and the
stages it passed through. Every document loaded is checked by axe-core, as in tests/test_browser.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from app.identity import People
from app.service import Application
from protocols import available_protocols, load_protocol
from protocols.bpmn import export_bpmn
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.browser import SCREENSHOTS, TIMEOUT_MS, Checked, launch, new_context, screenshots_wanted, serve
from tests.workflow_harness import file_worker, skip_clock_to, unique_ref
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
  // in the document, so that the drawing has a size (a detached container's is nil)
  const box = document.body.appendChild(document.createElement("div"));
  box.style.cssText = "position: absolute; left: 0; top: 0; width: 1600px; height: 900px";
  const viewer = new window.BpmnJS({container: box});
  await viewer.importXML(xml);
  const {svg} = await viewer.saveSVG();
  viewer.destroy();
  box.remove();
  return svg;
}"""


class Site:
    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url

    async def signed_in(self, who: str, lists: bool = True) -> Checked:
        """``who``'s page, signed in. ``lists``: the server can list escalations (the time-skipping test
        server cannot: its 'Waiting for me' says so, and the test goes on from 'Sign out')."""
        context = await new_context(self.browser, self.base_url)
        page = Checked(await context.new_page(), who)
        await page.page.goto("/")
        await page.page.get_by_label(who, exact=True).check()
        await page.page.get_by_role("button", name="Sign in").click()
        if not lists:
            await expect(page.page.get_by_role("button", name="Sign out")).to_be_visible()
            return page
        await expect(page.page.get_by_role("heading", name="Waiting for me")).to_be_visible()
        await page.check("waiting for me")
        return page


@asynccontextmanager
async def _site(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Site]:
    async with file_worker(env, TASK_QUEUE, tmp_path), async_playwright() as playwright:
        browser = await launch(playwright)
        application = await Application.start(
            client=env.client,
            people=People.load(),
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
        )
        web = create_app(application, WebSettings(session_secret=SECRET, secure_cookies=False))
        async with serve(web) as base_url:
            try:
                yield Site(browser, base_url)
            finally:
                await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Site]:
    async with _site(dev_server_env, tmp_path) as made:
        yield made


@pytest_asyncio.fixture(loop_scope="session")
async def skipping_site(time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Site]:
    """The site on the time-skipping test server, whose clock a test moves past a deadline."""
    async with _site(time_skipping_env, tmp_path) as made:
        yield made


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


async def _csrf(p: Page) -> dict[str, str]:
    me = await (await p.request.get("/api/me")).json()
    return {"X-CSRF-Token": me["csrf_token"]}


async def _raise(p: Page, headers: dict[str, str], track: str, category: str, **more: str) -> str:
    """Raise a concern through the API as the signed-in officer; its escalation's id."""
    made = await p.request.post(
        "/api/escalations",
        headers=headers,
        data={
            "request_id": unique_ref(),
            "track": track,
            "category": category,
            "child_ref": unique_ref(),
            "child_status": "looked_after",
            "team": "team-a",
            "summary": "The plan has drifted.",
            "impact_on_child": "No school place.",
            "requested_action": "Agree a date.",
            **more,
        },
    )
    assert made.status == 201, await made.text()
    return str((await made.json())["escalation_id"])


async def test_an_escalation_page_marks_where_it_is_and_the_path_it_took(site: Site) -> None:
    officer = await site.signed_in(OFFICER)
    p = officer.page
    protocol = load_protocol("gloucestershire")
    track = protocol.track("iro-cp")
    headers = await _csrf(p)
    escalation_id = await _raise(p, headers, track.key, track.categories[0])
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


async def test_an_escalation_page_marks_a_bypassed_stage_and_one_whose_time_ran_out(
    skipping_site: Site, time_skipping_env: WorkflowEnvironment
) -> None:
    """Raised at Formal Level 1, bypassing the informal stage (dashed); the test server's clock passes Formal
    Level 1's deadline, so the escalation moves on to Formal Level 2 and Formal Level 1 is outlined red."""
    officer = await skipping_site.signed_in(OFFICER, lists=False)
    p = officer.page
    track = load_protocol("gloucestershire").track("iro-cp")
    informal, first, second = track.stages[:3]
    headers = await _csrf(p)
    escalation_id = await _raise(
        p,
        headers,
        track.key,
        track.categories[0],
        start_at_stage=first.key,
        bypass_reason="The informal stage was tried by telephone without result.",
    )

    async def view() -> dict[str, object]:
        got = await p.request.get(f"/api/escalations/{escalation_id}")
        assert got.ok, await got.text()
        return dict((await got.json())["escalation"])

    give_up = asyncio.get_running_loop().time() + TIMEOUT_MS / 1000
    seen = await view()
    while seen["stage"] != second.key:  # skip the clock past the deadline until the escalation moves on
        assert seen["stage"] == first.key, seen["stage"]
        # the deadline is set once the stage's notice has gone out
        due = datetime.fromisoformat(str(seen["deadline"])) if seen["deadline"] else None
        gap = due + timedelta(seconds=1) - await time_skipping_env.get_current_time() if due else None
        if due is not None and gap is not None and gap > timedelta(0):
            await skip_clock_to(time_skipping_env, due + timedelta(seconds=1))
        else:
            await asyncio.sleep(0.2)
        assert asyncio.get_running_loop().time() < give_up, "the deadline passed but the stage did not move"
        seen = await view()
    await p.goto(f"/escalations/{escalation_id}")
    canvas = p.locator(".app-diagram__canvas")
    await expect(canvas).to_have_attribute("data-state", "shown")
    shape = {s.key: canvas.locator(f'[data-element-id="{track.key}_{s.key}"]') for s in track.stages}
    await expect(shape[informal.key]).to_have_class(re.compile(r"\bapp-bpmn--bypassed\b"))
    await expect(shape[first.key]).to_have_class(re.compile(r"\bapp-bpmn--timed-out\b"))
    await expect(shape[first.key]).to_have_class(re.compile(r"\bapp-bpmn--passed\b"))
    await expect(shape[second.key]).to_have_class(re.compile(r"\bapp-bpmn--current\b"))
    for stage in (informal, second):
        await expect(shape[stage.key]).not_to_have_class(re.compile(r"\bapp-bpmn--timed-out\b"))
    await expect(shape[track.stages[3].key]).not_to_have_class(re.compile(r"app-bpmn--"))
    # drawn as marked: the bypassed stage's outline dashed, the timed-out one's red
    dashed = (
        await shape[informal.key]
        .locator(".djs-visual > :nth-child(1)")
        .evaluate("el => getComputedStyle(el).strokeDasharray")
    )
    red = (
        await shape[first.key]
        .locator(".djs-visual > :nth-child(1)")
        .evaluate("el => getComputedStyle(el).stroke")
    )
    assert dashed not in {"", "none"} and red == "rgb(212, 53, 28)", (dashed, red)
    await officer.check("escalation with a bypassed and a timed-out stage")
    if screenshots_wanted():
        await canvas.screenshot(path=str(SCREENSHOTS / "bpmn-escalation-bypass-timeout.png"))
