"""Browser testing with Debian's chromium driven by Playwright (nothing downloaded), and axe-core from npm.

* ``launch(playwright)``: chromium at ``/usr/bin/chromium`` (``ESCALATE_TEST_CHROMIUM`` moves it) with the
  flags that work as root in a container; Playwright gives every launch a fresh temporary profile
  (its own ``--user-data-dir``). A chromium that is missing or cannot start skips the test locally and
  fails it in CI (``require_or_skip``).
* ``Checked``: a page whose every loaded document must be checked by axe-core (``check``) for WCAG 2.2 A
  and AA; axe is added to every document before the page's own scripts run (an init script, which the
  page's content security policy does not apply to), so the policy stays on as in production.
  With ``SCREENSHOTS=1`` a check can also save a screenshot into ``docs/screenshots/``.
* ``serve(app)``: the ASGI app on uvicorn on a free port of 127.0.0.1, in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright

from activities.settings import PROJECT_ROOT
from tests.temporal_servers import free_port, require_or_skip

CHROMIUM = os.environ.get("ESCALATE_TEST_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root in a container there is no user namespace for chromium's sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
TIMEOUT_MS = 30_000
"""The longest any one expectation or action waits (a busy 2-core machine); conditions, not sleeps."""


def screenshots_wanted() -> bool:
    return os.environ.get("SCREENSHOTS", "").strip().lower() in {"1", "true", "yes"}


async def launch(playwright: Playwright) -> Browser:
    if not Path(CHROMIUM).is_file():
        require_or_skip(f"chromium is not installed at {CHROMIUM} (Debian package 'chromium')")
    if not AXE.is_file():
        require_or_skip(f"axe-core is not installed ({AXE}): run `make assets`")
    try:
        return await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as exc:
        require_or_skip(f"chromium ({CHROMIUM}) could not start: {exc}")


async def new_context(browser: Browser, base_url: str) -> BrowserContext:
    """A fresh context (its own cookies: one person), with axe-core in every document."""
    context = await browser.new_context(
        base_url=base_url,
        viewport={"width": 1024, "height": 800},
        locale="en-GB",
        timezone_id="Europe/London",
    )
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(path=str(AXE))
    return context


AXE_RUN = """async (tags) => {
  const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]};
  const results = await axe.run(document, options);
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({
      target: n.target.join(" "), html: n.html.slice(0, 300), summary: n.failureSummary
    }))
  }));
}"""


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html']}\n      {node['summary']}")
    return "\n".join(lines)


class Checked:
    """A page whose every loaded document must pass axe (``check``); ``unchecked()`` says how many did not."""

    def __init__(self, page: Page, who: str) -> None:
        self.page = page
        self.who = who
        self.loads = 0
        self.checked = 0
        self.states: list[str] = []
        page.on("load", self._loaded)

    def _loaded(self, _: Page) -> None:
        self.loads += 1

    async def check(self, state: str, screenshot: str = "", *, full_page: bool = True) -> None:
        """Run axe-core on the document now shown and fail on any WCAG 2.2 A or AA violation."""
        await self.page.wait_for_load_state("load")
        violations = await self.page.evaluate(AXE_RUN, WCAG_22_A_AA)
        assert not violations, f"{self.who}, {state} ({self.page.url}):\n{describe(violations)}"
        self.checked = self.loads
        self.states.append(state)
        if screenshot and screenshots_wanted():
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"), full_page=full_page)

    def unchecked(self) -> int:
        return self.loads - self.checked


class _Server:
    def __init__(self, app: object, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the test process keeps its own handlers
                yield

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
        self.server = Server(config)


@contextlib.asynccontextmanager
async def serve(app: object) -> AsyncIterator[str]:
    """Serve ``app`` on a free port until the block ends; its base URL."""
    port = free_port()
    server = _Server(app, port).server
    task = asyncio.create_task(server.serve(), name="web-under-test")

    async def until_started() -> None:
        while not server.started and not task.done():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(until_started(), 30)
    if task.done():
        task.result()  # raises what stopped it
        raise RuntimeError("the web server stopped while starting")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
