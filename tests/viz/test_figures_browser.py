"""Every catalogue figure in headless Chromium, at a desktop (1400 px) and a phone (390 px) width.

One browser, one page, figures drawn one after another. At each width the DOM bounding
boxes must show: legend, colorbars, title, annotations, axis titles, tick labels and the
slider and buttons not overlapping each other (nor legend and colorbars the plot area);
nothing cut off at the figure's edge (so the title fits). On the phone: the narrow layout
applied by postlib-figures.js, every plot area at least 200 px wide, no toolbar, no
sideways scrolling. Resized from the phone to 1400 px the wide layout comes back whole; animated
figures are also checked resized from 1400 px to the phone.
"""
from __future__ import annotations

import pytest

from tests.browser import browser_page

from . import catalogue, layout_checks
from .figure_page import draw, open_page, resize

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
            phone = draw(page, fig, PHONE)        # opened on a phone
            found += [f"{PHONE} px: {p}" for p in layout_checks.problems(phone, narrow=True)]
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
