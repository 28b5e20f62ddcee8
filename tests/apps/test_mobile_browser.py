"""The dashboard on a 390-px phone and a 1400-px desktop: every page fits, nothing scrolls sideways.

For each width, one browser context visits every page (``?page=<slug>``), waits
for its figure, and checks:

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


def _visit(page, url: str, spec) -> None:
    page.goto(f"{url}?page={spec.slug}", wait_until="domcontentloaded")
    page.locator(f".page-{spec.slug} .js-plotly-plot .trace").first.wait_for(state="attached", timeout=120_000)
    page.wait_for_timeout(1500)  # let plotly size every figure to its container


def _check_page(page, spec, width: int) -> list[str]:
    problems = []
    layout = page.evaluate(OVERFLOW_JS)
    if layout["document"] > layout["width"] or layout["main"] > 1 or layout["outside"]:
        problems.append(f"{spec.slug} at {width}px scrolls sideways: {layout}")
    for figure, host in page.locator(f".page-{spec.slug} .js-plotly-plot").evaluate_all(FIGURE_WIDTHS_JS):
        if figure > host + 1 or figure < 0.9 * host:
            problems.append(f"{spec.slug} at {width}px: a figure is {figure}px wide in a {host}px container")
    return problems


def _phone_menu_problems(page, spec) -> list[str]:
    if _sidebar_open(page):
        return ["the sidebar is open on a phone before the menu button is pressed"]
    page.locator("#sidebar-toggle").click()
    page.wait_for_timeout(800)
    if not _sidebar_open(page):
        return ["the menu button does not open the sidebar"]
    page.get_by_role("button", name=spec.title, exact=True).first.click(timeout=10_000)
    page.wait_for_timeout(1200)
    return ["choosing a page does not close the sidebar"] if _sidebar_open(page) else []


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
    try:
        for spec in pages:
            _visit(page, dashboard_server.url, spec)
            problems += _check_page(page, spec, size[0])
        content = page.evaluate("document.querySelector('meta[name=viewport]')?.content")
        if content != VIEWPORT:
            problems.append(f"viewport meta tag: {content!r}")
        if size == PHONE:
            problems += _phone_menu_problems(page, pages[0])
        elif not _sidebar_open(page):
            problems.append("the sidebar is closed on a desktop")
        state = next((p for p in pages if p.slug == "state_spaces"), None)
        if state is not None:
            _visit(page, dashboard_server.url, state)
            labels = page.locator(".page-state_spaces button.play").first.evaluate(
                "el => getComputedStyle(el, '::after').content")
            if labels != '"Play"':
                problems.append(f"the Player's play button is not labelled: {labels!r}")
    finally:
        context.close()
    assert not outside, f"requests left localhost: {outside}"
    assert not errors, f"page errors: {errors}"
    assert not problems, "\n".join(problems)
