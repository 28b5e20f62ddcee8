"""Fixtures for the dashboard tests: a served dashboard in a subprocess, and headless Chromium.

The server is the real entry point (``python -m apps.serve``, through
``apps.loadtest.ServedDashboard``) on a free localhost port, started once per
test session and shared by the browser test modules. It also answers the
public name ``dashboard.test`` (``--public-host``), and drops a session whose
browser has not connected within 5 s (``--unused-session-lifetime``), so a
test can make a browser connect late and get a session built from its
websocket. The fixture waits until ``/liveness`` answers (Panel's own UI
tests do the same before driving Playwright) and collects the server's output
so that a test can assert it logged no traceback.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.loadtest import CHROMIUM_ARGS, ServedDashboard, free_port
from tests.browser import launch_chromium

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
PUBLIC_HOST = "dashboard.test"
UNUSED_SESSION_LIFETIME_S = 5
SERVER_ARGS = ["--public-host", PUBLIC_HOST, "--unused-session-lifetime", str(UNUSED_SESSION_LIFETIME_S)]

__all__ = ["CHROMIUM_ARGS", "PUBLIC_HOST", "UNUSED_SESSION_LIFETIME_S"]


@pytest.fixture(scope="session")
def dashboard_server():
    server = ServedDashboard(free_port(), SERVER_ARGS)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the browser tests drive the system Chromium (never a downloaded one)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    browser = launch_chromium(CHROMIUM_ARGS)   # on the process's one Playwright driver (tests/browser.py)
    try:
        yield browser
    finally:
        browser.close()
