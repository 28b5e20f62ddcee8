"""The dashboard on a 390-px phone and a 1400-px desktop: every page fits, nothing scrolls sideways.

For each width, one browser tab opens the dashboard once and visits every page
through the sidebar (on the phone, through the header's menu button), waits for
the page's figure, and checks:

* the page has a viewport meta tag (without one a phone draws it 980 px wide);
* nothing scrolls sideways: neither the document nor the main column is wider
  than the screen, and no visible element reaches past the screen's edge
  (plotly's own SVG drawing is clipped by its figure and not counted; the
  figure itself is);
* every figure is sized to its container: at most the container's width, and
  at least 90 % of it;
* on the phone, the sidebar starts closed, opens from the header's menu button,
  and closes again once a page is chosen; on the desktop it is open;
* the Player's buttons say what they do.
"""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from apps.dashboard import VIEWPORT, default_pages

pytestmark = [pytest.mark.browser]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PHONE, DESKTOP = (390, 844), (1400, 1000)

# Every visible element (through Panel's shadow roots) that reaches past the screen's edges.
OVERFLOW_JS = """() => {
    const W = document.documentElement.clientWidth, out = [];
    const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
            if (el.closest('svg')) continue;              // plotly clips its own drawing to the figure
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0 || r.right < -1000) continue;  // empty, or parked offscreen
            const style = getComputedStyle(el);
            if (style.visibility === 'hidden' || style.display === 'none') continue;
            if (r.right > W + 1 || r.left < -1) {
                const name = `${el.tagName.toLowerCase()}.${String(el.className).slice(0, 60)}`;
                out.push(`${name} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
            }
            if (el.shadowRoot) walk(el.shadowRoot);
        }
    };
    walk(document);
    const main = document.getElementById('main');
    return {width: W, document: document.scrollingElement.scrollWidth,
            main: main ? main.scrollWidth - main.clientWidth : 0, outside: out.slice(0, 10)};
}"""

# Each drawn plotly figure's width against the width of the element that holds it.
FIGURE_WIDTHS_JS = """els => els.filter(el => el.getBoundingClientRect().width > 0).map(el => {
    const host = el.getRootNode().host || el.parentElement;
    return [Math.round(el.getBoundingClientRect().width), Math.round(host.getBoundingClientRect().width)];
})"""


def _sidebar_open(page) -> bool:
    return page.evaluate("""() => { const s = document.getElementById('sidebar');
        return !!s && s.getBoundingClientRect().width > 50 && getComputedStyle(s).display !== 'none'; }""")


def _visit(page, spec, phone: bool) -> list[str]:
    """Go to ``spec``'s page through the sidebar; on a phone, open the menu first and see it close."""
    problems = []
    if phone:
        if _sidebar_open(page):
            problems.append(f"before {spec.slug}: the sidebar is open on a phone before the menu button is pressed")
        page.locator("#sidebar-toggle").click()
        page.wait_for_timeout(800)
        if not _sidebar_open(page):
            return problems + [f"before {spec.slug}: the menu button does not open the sidebar"]
    page.get_by_role("button", name=spec.title, exact=True).first.click(timeout=20_000)
    page.locator(f".page-{spec.slug} .js-plotly-plot .trace").first.wait_for(state="attached", timeout=120_000)
    page.wait_for_timeout(1500)  # let plotly size every figure to its container, and the menu close
    if phone and _sidebar_open(page):
        problems.append(f"choosing {spec.slug} does not close the sidebar")
    return problems


def _check_page(page, spec, width: int) -> list[str]:
    problems = []
    layout = page.evaluate(OVERFLOW_JS)
    if layout["document"] > layout["width"] or layout["main"] > 1 or layout["outside"]:
        problems.append(f"{spec.slug} at {width}px scrolls sideways: {layout}")
    for figure, host in page.locator(f".page-{spec.slug} .js-plotly-plot").evaluate_all(FIGURE_WIDTHS_JS):
        if figure > host + 1 or figure < 0.9 * host:
            problems.append(f"{spec.slug} at {width}px: a figure is {figure}px wide in a {host}px container")
    return problems


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone-390", "desktop-1400"])
def test_every_page_fits_the_screen(browser, dashboard_server, size):
    pages = [p for p in default_pages() if p.viewer is not None]
    context = browser.new_context(viewport={"width": size[0], "height": size[1]},
                                  is_mobile=size == PHONE, has_touch=size == PHONE)
    context.set_default_timeout(60_000)
    outside, errors = [], []

    def route(r):
        if urlparse(r.request.url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))
    problems = []
    phone = size == PHONE
    try:
        page.goto(dashboard_server.url, wait_until="domcontentloaded")
        page.locator(".js-plotly-plot .trace").first.wait_for(state="attached", timeout=120_000)
        content = page.evaluate("document.querySelector('meta[name=viewport]')?.content")
        if content != VIEWPORT:
            problems.append(f"viewport meta tag: {content!r}")
        if not phone and not _sidebar_open(page):
            problems.append("the sidebar is closed on a desktop")
        for spec in pages:
            try:
                reached = _visit(page, spec, phone)
                problems += reached
                if any("does not open" in p for p in reached):
                    continue
                problems += _check_page(page, spec, size[0])
                if spec.slug == "state_spaces":
                    label = page.locator(".page-state_spaces button.play").first.evaluate(
                        "el => getComputedStyle(el, '::after').content", timeout=20_000)
                    if label != '"Play"':
                        problems.append(f"the Player's play button is not labelled: {label!r}")
            except Exception as err:  # noqa: BLE001 - report every page
                problems.append(f"{spec.slug}: {type(err).__name__}: {str(err)[:300]}")
    finally:
        context.close()
    assert not outside, f"requests left localhost: {outside}"
    assert not errors, f"page errors: {errors}"
    assert not problems, "\n".join(problems)
