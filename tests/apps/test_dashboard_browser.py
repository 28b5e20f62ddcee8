"""The served dashboard in headless Chromium: offline, error-free, every page drawn and reactive.

For every page that ``apps.dashboard.discover_pages`` finds: open the
dashboard, wait for its websocket, click the page in the sidebar, wait for a
plotly figure with drawn traces, move the page's first slider with the
keyboard (Panel sliders are noUiSlider handles) and check that a figure
changed. Every request is routed through a handler that records and aborts
anything not addressed to localhost, and the test fails on any such request,
any console error, any page error, or a traceback in the server's log.

Hostile and unlucky conditions, on the same server:

* a foreign ``Host`` (DNS rebinding) gets 403, the websocket upgrade with a
  forged ``Origin`` equal to that Host included; the ``--public-host`` name is served;
* a browser whose websocket arrives after its session was dropped as unused
  (what 20 readers at once on two cores caused) gets a session built from the
  websocket, and it still loads nothing from a CDN;
* readers who leave while an update is on its way leave no error in the log;
* plotly is never asked to relayout a figure it has not drawn (the
  ``_guiEditing`` page error), and no-op relayouts are skipped.
"""
from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import pytest

from apps.dashboard import TITLE, discover_pages
from apps.loadtest import server_problems

from .conftest import PUBLIC_HOST, UNUSED_SESSION_LIFETIME_S

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
WEBSOCKET_OPEN = "Websocket connection 0 is now open"  # Bokeh's client logs this when the session starts

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("dashboard")]

# Every plotly figure on the page as JSON (plotly's graph div keeps its traces in ``.data``);
# typed arrays are turned into plain lists so that two snapshots compare by value.
SNAPSHOT_JS = """els => els.map(el => JSON.stringify((el.data || []).map(t => {
    const out = {};
    for (const k of ['type', 'name', 'x', 'y', 'z', 'visible']) {
        const v = t[k];
        out[k] = (v && v.length !== undefined && typeof v !== 'string') ? Array.from(v, r =>
            (r && r.length !== undefined && typeof r !== 'string') ? Array.from(r) : r) : v;
    }
    return out;
})))"""


def _wait(page, predicate, timeout_s: float, what: str, interval_ms: int = 200):
    """Poll ``predicate`` until truthy. Sleeps with ``page.wait_for_timeout``: Playwright's sync API
    delivers events (console, requests) only while one of its calls runs, never during ``time.sleep``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(interval_ms)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Session:
    """One browser tab on the dashboard, with every request, console error and page error recorded."""

    def __init__(self, browser, server, delay: tuple[str, float] | None = None):
        self.server = server
        self._delay = delay  # (a URL fragment, seconds): hold that request back, e.g. to connect late
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        # Generous: the test suite shares two cores with the server, Chromium and other workers.
        self.context.set_default_timeout(60_000)
        self.context.set_default_navigation_timeout(90_000)
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.console: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.websockets: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda err: self.page_errors.append(str(err)))
        self.page.on("websocket", lambda ws: self.websockets.append(ws.url))
        self.scope = self.page.locator("body")
        self.navigated_to: str | None = None  # the last page reached by a sidebar click that changed page
        self.reset_records()

    def reset_records(self) -> None:
        """Start a new check in the same tab: what was recorded so far belongs to the previous one."""
        self.outside.clear()
        self.console_errors.clear()
        self.page_errors.clear()
        self.log_start = len(self.server.lines)

    def go_to(self, spec) -> None:
        """Click the page in the sidebar and scope later lookups to that page's own content."""
        button = self.page.get_by_role("button", name=spec.title, exact=True).first
        already_there = self.page.locator(f".page-{spec.slug}").count() > 0
        button.click()
        self.navigated_to = None if already_there else spec.slug
        self.scope = self.page.locator(f".page-{spec.slug}")
        self.scope.wait_for(state="attached")

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        if urlparse(url).hostname in LOCAL_HOSTS:
            if self._delay and self._delay[0] in url:
                time.sleep(self._delay[1])
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _on_console(self, msg):
        self.console.append(msg.text)
        if msg.type == "error":
            self.console_errors.append(f"{msg.text} @ {msg.location}")

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="domcontentloaded")
        _wait(self.page, lambda: any(WEBSOCKET_OPEN in line for line in self.console), 60,
              "the Bokeh websocket to open")
        self.page.wait_for_function("document.readyState === 'complete'")

    def snapshot(self) -> list[str]:
        plots = self.scope.locator(".js-plotly-plot")
        if plots.count() == 0:
            return []
        return plots.evaluate_all(SNAPSHOT_JS)

    def wait_for_stable_figure(self, timeout_s: float = 60) -> list[str]:
        """A snapshot with at least one drawn trace that did not change for a second."""
        deadline = time.monotonic() + timeout_s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            snap = self.snapshot()
            drawn = any(json.loads(s) for s in snap) and self.scope.locator(".js-plotly-plot .trace").count() > 0
            if snap != last:
                last, since = snap, time.monotonic()
            elif drawn and time.monotonic() - since >= 1.0:
                return snap
            self.page.wait_for_timeout(200)
        raise AssertionError(f"no stable plotly figure with drawn traces within {timeout_s} s; last: {last!r:.300}")

    def server_log(self) -> str:
        return "".join(self.server.lines[self.log_start:])

    def assert_clean(self) -> None:
        assert not self.outside, f"requests left localhost: {self.outside}"
        assert self.websockets and all(urlparse(u).hostname in LOCAL_HOSTS for u in self.websockets), self.websockets
        assert not self.page_errors, f"page errors: {self.page_errors}"
        assert not self.console_errors, f"console errors: {self.console_errors}"
        log = self.server_log()
        assert not server_problems(log), f"the server logged an error:\n{log}"

    def close(self) -> None:
        self.context.close()


def check_shell(session: Session, url: str, pages) -> None:
    session.open(url)
    assert session.page.title() == TITLE
    for spec in pages:
        button = session.page.get_by_role("button", name=spec.title, exact=True).first
        button.wait_for(state="visible")  # raises when the sidebar lacks the page
    assert any(urlparse(u).hostname in LOCAL_HOSTS for u in session.requests)
    session.assert_clean()


def check_revisit(session: Session, spec, other_page) -> None:
    """Leaving a page and coming back shows it again, drawn (the dashboard re-renders the layout it kept)."""
    session.reset_records()
    session.go_to(spec)
    session.wait_for_stable_figure()
    session.go_to(other_page)
    session.go_to(spec)
    session.wait_for_stable_figure()
    session.assert_clean()


def check_deep_link(session: Session, url: str, spec) -> None:
    """``?page=<slug>`` opens that page directly, and choosing a page in the sidebar writes it to the URL."""
    if session.navigated_to == spec.slug:
        # The last page check reached this page through the sidebar: the URL now names it.
        _wait(session.page, lambda: f"page={spec.slug}" in session.page.url, 30, "the URL to name the page")
    session.reset_records()
    session.console.clear()  # wait for the new document's websocket, not the previous one's
    session.open(f"{url}?page={spec.slug}")
    session.page.locator(f".page-{spec.slug}").wait_for(state="attached")
    session.assert_clean()


def check_page(session: Session, spec) -> None:
    """Navigate to ``spec``'s page, see a drawn figure, move the first slider, see the figure change."""
    session.reset_records()
    session.go_to(spec)
    assert session.scope.locator(".page-error").count() == 0, "the page shows an error card"
    before = session.wait_for_stable_figure()

    handle = session.scope.locator(".noUi-handle").first
    handle.wait_for(state="visible")
    value_before = handle.get_attribute("aria-valuenow")
    handle.focus()
    session.page.keyboard.press("ArrowRight")
    if handle.get_attribute("aria-valuenow") == value_before:  # the slider was at its maximum
        session.page.keyboard.press("ArrowLeft")
        session.page.keyboard.press("ArrowLeft")
    assert handle.get_attribute("aria-valuenow") != value_before, "the first slider did not move"

    _wait(session.page, lambda: session.snapshot() != before, 60, "the figure to change after the slider moved")
    session.wait_for_stable_figure()
    session.assert_clean()


def check_plotly_guards(session: Session) -> None:
    """Relayouts of a figure that is not drawn are skipped (no ``_guiEditing`` error), and so are no-ops."""
    session.reset_records()
    result = session.page.evaluate("""async () => {
        const gd = document.createElement('div');           // never plotted, like a purged view's div
        try { await Plotly.relayout(gd, {width: 300, height: 200}); } catch (e) { return String(e); }
        return window.__btDashboard;
    }""")
    assert isinstance(result, dict), f"relayout of an undrawn figure raised: {result}"
    assert result["undrawn"] >= 1 and result["skipped"] >= 1, result  # loading the page skipped no-op relayouts
    session.assert_clean()


def check_late_websocket(browser, server, url: str) -> None:
    """A browser that connects after its session was dropped gets a new one, drawn and still offline."""
    late = Session(browser, server, delay=("panel.min.js", 2 * UNUSED_SESSION_LIFETIME_S + 1))
    try:
        late.open(url)
        late.wait_for_stable_figure()
        late.assert_clean()
    finally:
        late.close()


def check_readers_leaving_mid_update(browser, server, url: str, spec) -> None:
    """Readers who close the tab while new figures are on their way leave no error in the server log."""
    start = len(server.lines)
    for presses in (3, 6):
        leaving = Session(browser, server)
        try:
            leaving.open(f"{url}?page={spec.slug}")
            leaving.wait_for_stable_figure()
            handle = leaving.page.locator(".noUi-handle").first
            handle.focus()
            for _ in range(presses):
                leaving.page.keyboard.press("ArrowRight")
        finally:
            leaving.close()  # at once: the server is still sending the new figures
    time.sleep(2)
    log = "".join(server.lines[start:])
    assert not server_problems(log), f"the server logged an error after readers left:\n{log}"


def _raw_status(port: int, host: str, extra: str = "") -> str:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET /dashboard HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
        return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def check_host_header(server) -> None:
    """DNS rebinding: a foreign Host is refused, HTTP and websocket alike; localhost and the public name are served."""
    port = server.port
    assert " 403 " in _raw_status(port, "evil.example")
    assert " 403 " in _raw_status(port, f"evil.example:{port}")
    assert " 200 " in _raw_status(port, f"localhost:{port}")
    assert " 200 " in _raw_status(port, PUBLIC_HOST)
    assert _websocket_handshake_status(port, f"http://evil.example:{port}", host=f"evil.example:{port}") == 403


def _websocket_handshake_status(port: int, origin: str, host: str | None = None) -> int:
    """HTTP status of a websocket handshake to the app sent with ``Origin: origin`` (101 = accepted)."""
    import asyncio

    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    async def attempt() -> int:
        headers = {"Origin": origin} | ({"Host": host} if host else {})
        request = HTTPRequest(f"ws://127.0.0.1:{port}/dashboard/ws", headers=headers)
        try:
            conn = await websocket_connect(request)
        except HTTPClientError as err:
            return err.code
        conn.close()
        return 101

    # Its own thread and event loop: Playwright's sync API keeps an event loop running in this one.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, attempt()).result(timeout=60)


def check_websocket_origins(server) -> None:
    assert f"Dashboard: {server.url}" in server.output  # serve prints where it listens
    assert _websocket_handshake_status(server.port, "http://evil.example.com") == 403
    assert _websocket_handshake_status(server.port, f"http://127.0.0.1:{server.port + 1}") == 403
    assert _websocket_handshake_status(server.port, f"http://127.0.0.1:{server.port}") != 403


def test_dashboard_in_headless_chromium(browser, dashboard_server):
    """One test, one server, one tab visiting every page in turn, every failure reported by name.

    A single test rather than one per page: pytest-xdist 3.8 under pytest 9 ignores
    ``xdist_group`` (it rewrites ``item._nodeid``, which pytest 9 no longer reads), so
    separate tests could each start their own server and Chromium on another worker.
    """
    pages = discover_pages()  # the same discovery the server ran
    assert pages, "no dashboard page was discovered"
    checks = [("sidebar and shell", lambda s: check_shell(s, dashboard_server.url, pages))]
    checks += [(f"page {spec.slug!r}", lambda s, spec=spec: check_page(s, spec)) for spec in pages]
    checks += [("deep link", lambda s: check_deep_link(s, dashboard_server.url, pages[-1]))]
    checks += [("revisiting a page", lambda s: check_revisit(s, pages[0], pages[-1]))]
    checks += [("plotly guards", check_plotly_guards)]
    failures = []
    session = Session(browser, dashboard_server)
    try:
        for what, check in checks:
            try:
                check(session)
            except Exception as err:  # noqa: BLE001 - keep checking the other pages, report all at the end
                failures.append(f"{what}: {type(err).__name__}: {err}")
    finally:
        session.close()
    for what, check in [("websocket origins", lambda: check_websocket_origins(dashboard_server)),
                        ("host header", lambda: check_host_header(dashboard_server)),
                        ("late websocket", lambda: check_late_websocket(browser, dashboard_server,
                                                                        dashboard_server.url)),
                        ("readers leaving mid-update", lambda: check_readers_leaving_mid_update(
                            browser, dashboard_server, dashboard_server.url, pages[0]))]:
        try:
            check()
        except Exception as err:  # noqa: BLE001 - report every failing check
            failures.append(f"{what}: {type(err).__name__}: {err}")
    assert not failures, "\n\n".join(failures)
