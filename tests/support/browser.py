"""A real Chromium for the tests: Debian's ``chromium`` driven by Playwright (../shared/systems.md,
"Browser: Chromium"), headless. ``playwright install`` cannot download a browser here, so the
fixture launches the system one by its path.

:func:`require_browser` skips a test when Playwright or Chromium is missing, except in CI
(``CI=true``), where it fails: CI installs both (``.ci/run`` and the ``test`` extra).

The fixtures use Playwright's *async* API on the tests' session event loop. Its sync API marks
its own loop as the thread's running loop between calls for as long as it is started, so a
session-wide sync browser would break every asyncio test that runs after it.

Use: ``browser`` (session) is the launched browser; ``page`` (per test) is a fresh page in a
fresh context (no storage shared between tests), whose console errors, uncaught page errors and
Content-Security-Policy violations from its creation on are in ``page_log`` (per test, same page).
Tests are ``async def`` and marked ``pytest.mark.browser``::

    pytestmark = pytest.mark.browser

    async def test_it(page, page_log, server):
        await page.goto(base_url(server))
        assert await page.evaluate("1 + 1") == 2
        assert page_log.errors == []
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

# The flags of systems.md's screenshot line: no sandbox (root), no GPU, and nothing that phones
# out (the machine has no network but the package registries).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # any single wait of a test; only guards against a hang


def chromium_path() -> str | None:
    """Debian's chromium (``$CHROMIUM`` overrides), or None when it is not installed."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    """The path of Chromium if it and Playwright are here; else skip (fail in CI) with the reason."""
    reason = ""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed (pip install -e '.[test]')"
    path = chromium_path()
    if path is None:
        missing = "Chromium is not installed (apt-get install chromium; see .ci/run)"
        reason = f"{reason}; {missing}" if reason else missing
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (in CI, with CI=true, this fails)")
    assert path is not None
    return path


def base_url(server: Any) -> str:
    """The page's address on a test server (a ``ServerThread``)."""
    return f"http://{server.host}:{server.port}"


@dataclass
class PageLog:
    """What went wrong in a page: console errors (Chromium reports CSP violations there too),
    uncaught exceptions, and the ``securitypolicyviolation`` events the page saw."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return ([f"console: {text}" for text in self.console_errors]
                + [f"pageerror: {text}" for text in self.page_errors]
                + [f"csp: {text}" for text in self.csp_violations])


# Runs in every document before its own scripts (injected by the browser, so the page's CSP does
# not apply): reports each CSP violation back through the exposed binding.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`
    + ` (${event.sourceFile || ''}:${event.lineNumber || 0})`);
});
"""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium, launched once per session (Playwright's async API)."""
    path = require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def page_log() -> PageLog:
    """The errors of this test's ``page`` (empty until the page reports some)."""
    return PageLog()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Any, page_log: PageLog) -> AsyncIterator[Any]:
    """A fresh page in a fresh browser context, recording its errors in ``page_log``."""
    context = await browser.new_context()
    try:
        context.set_default_timeout(TIMEOUT_MS)
        await context.expose_binding("__reportCspViolation",
                                     lambda _source, text: page_log.csp_violations.append(text))
        await context.add_init_script(_CSP_LISTENER)
        new_page = await context.new_page()
        new_page.on("console", lambda message: page_log.console_errors.append(
            f"{message.text} ({message.location.get('url') or '?'})") if message.type == "error" else None)
        new_page.on("pageerror", lambda error: page_log.page_errors.append(str(error)))
        yield new_page
    finally:
        await context.close()
