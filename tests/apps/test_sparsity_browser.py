"""The Sparsity page in headless Chromium: the Player grows the receptive field, the pattern choice redraws
the mask, all offline and without errors (the generic dashboard test moves only the page's first slider).

Shares the session's dashboard server and browser with tests/apps/test_dashboard_browser.py.
"""
from __future__ import annotations

import json

import pytest

from .test_dashboard_browser import SNAPSHOT_JS, Session, _wait

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("dashboard")]


def _figure(session: Session, css: str) -> list[dict]:
    """The traces of the plotly figure inside the pane with class ``css``, as plain JSON."""
    return [json.loads(s) for s in session.scope.locator(f".{css} .js-plotly-plot").evaluate_all(SNAPSHOT_JS)]


def _reached(session: Session) -> list[int]:
    """Tokens the receptive-field figure marks as reached, per trace of its top panel."""
    traces = _figure(session, "sparsity-field")[0]
    return [len(t["x"]) for t in traces if t.get("type") == "scatter" and t.get("x")]


def test_player_grows_the_field_and_the_pattern_choice_redraws_the_mask(browser, dashboard_server):
    session = Session(browser, dashboard_server)
    try:
        session.open(f"{dashboard_server.url}?page=sparsity")
        session.scope = session.page.locator(".page-sparsity")
        session.scope.wait_for(state="attached")
        session.wait_for_stable_figure()

        before = _reached(session)
        next_button = session.scope.locator("button.next").first   # the Player's "one step forward"
        next_button.click()
        _wait(session.page, lambda: _reached(session) != before, 60, "the receptive field to grow after a step")
        after = _reached(session)
        assert sum(after) > sum(before), (before, after)

        mask = _figure(session, "sparsity-mask")
        session.scope.locator("select").first.select_option("LongNet (dilated segments)")
        _wait(session.page, lambda: _figure(session, "sparsity-mask") != mask, 60,
              "the mask to change with the pattern")
        _wait(session.page, lambda: session.scope.locator(".noUi-target:visible").count() > 0, 30,
              "LongNet's sliders")
        assert session.scope.get_by_text("LongNet segment", exact=False).first.is_visible()
        session.wait_for_stable_figure()
        session.assert_clean()
    finally:
        session.close()
