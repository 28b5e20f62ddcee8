"""Every catalogue figure in headless Chromium, at a desktop (1400 px) and a phone (390 px) width.

One browser, one page, figures drawn one after another, also at the narrowest width that keeps
the wide layout (``layout.meta["narrow_below"]``, 600 px or more). At each width the DOM bounding
boxes must show: legend, colorbars, title, annotations, axis titles, tick labels and the
slider and buttons not overlapping each other (nor legend and colorbars the plot area);
nothing cut off at the figure's edge (so the title fits). On the phone: the narrow layout
applied by postlib-figures.js, every plot area at least 200 px wide, no toolbar, no
sideways scrolling; animated figures also after stepping to their first frame. Resized from the
phone to 1400 px the wide layout comes back whole; animated figures are also checked resized from
1400 px to the phone.
"""
from __future__ import annotations

import pytest

from tests.browser import browser_page

from . import catalogue, layout_checks
from .figure_page import CONFIG, PAGE_PADDING, animate, draw, open_page, resize

pytestmark = pytest.mark.browser

WIDE, PHONE = 1400, 390


def test_every_figure_is_clean_on_a_desktop_and_on_a_phone():
    report = {}
    with browser_page() as (page, record):
        open_page(page)
        for key in sorted(catalogue.examples()):
            fig = catalogue.figure(key)
            found = []
            wide = draw(page, fig, WIDE)
            found += [f"{WIDE} px: {p}" for p in layout_checks.problems(wide, narrow=False)]
            # the narrowest screen that still gets the wide layout (a book column, a tablet)
            least = fig.layout.meta["narrow_below"] + 2 * PAGE_PADDING + 8
            tight = draw(page, fig, least)
            found += [f"{least} px: {p}" for p in layout_checks.problems(tight, narrow=False)]
            phone = draw(page, fig, PHONE)        # opened on a phone
            found += [f"{PHONE} px: {p}" for p in layout_checks.problems(phone, narrow=True)]
            if fig.frames:                        # a frame changes texts, never the phone's positions
                stepped = animate(page, "0")
                found += [f"{PHONE} px, frame 0: {p}" for p in layout_checks.problems(stepped, narrow=True)]
            back = resize(page, WIDE)             # turned to a wide screen: the figure's own layout again
            found += [f"{PHONE} → {WIDE} px: {p}" for p in layout_checks.problems(back, narrow=False)]
            if len(back["boxes"]) != len(wide["boxes"]):
                found.append(f"{PHONE} → {WIDE} px: {len(back['boxes'])} elements instead of {len(wide['boxes'])}")
            if fig.frames:                        # and the other way, with the player's controls
                again = resize(page, PHONE)
                found += [f"{WIDE} → {PHONE} px: {p}" for p in layout_checks.problems(again, narrow=True)]
            if found:
                report[key] = found
        assert not record["outside"], f"requests left the machine: {record['outside']}"
        assert not record["page"], f"page errors: {record['page']}"
        assert not record["console"], f"console errors: {record['console']}"
    assert not report, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in report.items())


SHADOW = """async ([first, second, config]) => {
  // A figure inside an open shadow root, as Panel renders it, later replaced with Plotly.react.
  const host = document.createElement('div');
  document.getElementById('box').innerHTML = '';
  document.getElementById('box').appendChild(host);
  const root = host.attachShadow({mode: 'open'});
  const gd = document.createElement('div');
  root.appendChild(gd);
  await Plotly.newPlot(gd, first.data, first.layout, config);
  const wait = async (meta) => {
    for (let i = 0; i < 100; i++) {              // the script finds it on its own (no update() call)
      if (gd.getAttribute('data-postlib-layout') === 'narrow' && gd.layout.meta === meta &&
          gd.layout.legend && gd.layout.legend.orientation === 'h') return true;
      await new Promise(r => setTimeout(r, 100));
    }
    return false;
  };
  const firstOk = await wait(gd.layout.meta);
  await Plotly.react(gd, second.data, second.layout);
  const secondOk = await wait(gd.layout.meta);
  const toolbar = Array.from(root.querySelectorAll('.modebar-container')).some(el => getComputedStyle(el).display !== 'none');
  return {firstOk, secondOk, toolbar, width: gd._fullLayout.width};
}"""


def test_figures_in_a_shadow_root_and_replaced_figures_get_the_phone_layout():
    import json

    first = json.loads(catalogue.figure("ssm.memory_figure").to_json())
    second = json.loads(catalogue.figure("favor.favor_error_figure").to_json())
    with browser_page() as (page, record):
        open_page(page)
        page.set_viewport_size({"width": PHONE, "height": 900})
        out = page.evaluate(SHADOW, [first, second, CONFIG])
        assert not record["page"] and not record["console"], record
    assert out["firstOk"] and out["secondOk"], out
    assert not out["toolbar"] and out["width"] < 400, out
