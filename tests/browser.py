"""Shared Playwright helpers: Debian's Chromium, never a downloaded browser,
and a record of every request so tests can assert that none leaves the site."""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("POSTLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def require_chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
        return True
    return parsed.hostname in LOCAL_HOSTS


_PLAYWRIGHT = None


def playwright():
    """The one Playwright driver of this test process, started on first use and stopped at the end of
    the session (``stop_playwright``, called from tests/conftest.py).

    Playwright's sync API runs an asyncio loop in the main thread for as long as a driver is open, and
    refuses to start a second driver inside it ("Sync API inside the asyncio loop"). A session-wide
    browser (tests/apps) and a per-test one (book, figures) landing on the same xdist worker therefore
    must share one driver; each test still launches and closes its own browser.
    """
    global _PLAYWRIGHT
    if _PLAYWRIGHT is None:
        from playwright.sync_api import sync_playwright
        _PLAYWRIGHT = sync_playwright().start()
    return _PLAYWRIGHT


def stop_playwright() -> None:
    global _PLAYWRIGHT
    if _PLAYWRIGHT is not None:
        _PLAYWRIGHT.stop()
        _PLAYWRIGHT = None


def launch_chromium(args=CHROMIUM_ARGS):
    require_chromium()
    return playwright().chromium.launch(executable_path=CHROMIUM, headless=True, args=list(args))


@contextlib.contextmanager
def browser_page():
    """Yield (page, record) where record has 'outside' requests, 'console' errors and 'page' errors.

    Requests to anything but localhost are aborted *and* recorded, so a page that
    would reach a CDN fails the test instead of silently working online.
    """
    record = {"outside": [], "console": [], "page": []}
    browser = launch_chromium()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r):
            if is_local(r.request.url):
                r.continue_()
            else:
                record["outside"].append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: record["console"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: record["page"].append(str(e)))
        yield page, record
    finally:
        browser.close()
