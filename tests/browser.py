"""Browser tests of the web console: Playwright (async API) driving Debian's Chromium.

Playwright's own browser download is not used (``playwright install`` is never run): the browser is
Debian's ``chromium`` package, which ``make test`` installs through ``tools/ensure-system-packages``.
One headless browser per session (``chromium_browser``, under a second to start); each test gets a
fresh context and page (``browser_page`` at desktop size, ``phone_page`` at phone size), so cookies
and storage never leak between tests. ``screenshot`` saves full-page PNGs under
``test-results/console/`` for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

REPOSITORY = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPOSITORY / "test-results" / "console"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)  # an iPhone 12 to 15's CSS pixels

# Debian's /usr/bin/chromium is a shell script that execs this binary after adding the flags of
# /etc/chromium.d (GPU rasterization, extension settings, a /dev/shm check that prints a shell error
# when /dev/shm is mounted twice, as in some containers). Playwright can launch the script too (the
# exec keeps its pipe), but the binary itself gets exactly Playwright's flags and no shell in between.
DEBIAN_CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")


def chromium_executable() -> str:
    """The Chromium binary to launch; fails the test with what to install when there is none."""
    command = shutil.which("chromium")
    if command is None:
        pytest.fail(
            "the console's browser tests need Chromium: `make test` installs Debian's chromium package "
            "(tools/ensure-system-packages; or sudo apt-get install chromium)"
        )
    # Elsewhere (another distribution, a chromium on PATH) the command is the browser itself.
    return str(DEBIAN_CHROMIUM_BINARY) if DEBIAN_CHROMIUM_BINARY.is_file() else command


@pytest.fixture(scope="session")
async def chromium_browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    executable = chromium_executable()
    async with async_playwright() as playwright:
        # No extra args: Playwright already passes --no-sandbox unless chromium_sandbox=True (the
        # sandbox refuses to start as root, as in CI and containers) and --disable-dev-shm-usage.
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, chromium_sandbox=False)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def open_page(browser: Browser, viewport: ViewportSize, *, phone: bool = False) -> AsyncIterator[Page]:
    """A page in a new context of its own, closed (with the context) afterwards.

    ``phone`` makes the context a touch-screen phone's: ``<meta name="viewport">`` is honoured and
    pages without one are laid out 980 px wide and shrunk, as on a real phone.
    """
    context = await browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture
async def browser_page(chromium_browser: Browser) -> AsyncIterator[Page]:
    """A fresh desktop-sized page (1280x800)."""
    async with open_page(chromium_browser, DESKTOP) as page:
        yield page


@pytest.fixture
async def phone_page(chromium_browser: Browser) -> AsyncIterator[Page]:
    """A fresh phone-sized page (390x844, touch, mobile viewport)."""
    async with open_page(chromium_browser, PHONE, phone=True) as page:
        yield page


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as ``test-results/console/<name>.png`` and return its path."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"a screenshot name is a plain file name without .png, not {name!r}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
