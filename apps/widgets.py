"""Helpers every dashboard page shares: a memory budget, a plotly pane, error alerts.

Pages hold widgets and layout only; these helpers keep the three things every
page must do the same way:

* refuse a setting that would not fit in memory, with a visible message
  (:func:`memory_budget_bytes`, :func:`over_budget_message`);
* update a figure in place (:func:`plotly_pane`, then ``pane.object = fig``:
  returning a new pane per change logs a ``_guiEditing`` page error);
* never crash on a widget value (:class:`ErrorAlert`, whose ``guard`` wraps a
  callback so an exception becomes a red alert on the page and a log line).

Offline trap (Panel 1.9.4): the dashboard builds a page when the user first
opens it, i.e. after the first render, and ``pn.layout.Divider`` created then
fetches its CSS from cdn.holoviz.org (its model skips Panel's stylesheet
patching). Use ``pn.pane.Markdown("---")`` for a rule; the browser test
(``tests/apps/test_dashboard_browser.py``) fails on any request off localhost.
"""
from __future__ import annotations

import functools
import logging
from typing import Callable

import panel as pn
import psutil

log = logging.getLogger("apps")

GIB = 1024 ** 3
# A page may use at most this share of the memory available when it checks,
# and never more than the cap: the server is shared by every open session.
BUDGET_FRACTION = 0.25
BUDGET_CAP_BYTES = 4 * GIB

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def memory_budget_bytes(fraction: float = BUDGET_FRACTION, cap_bytes: int = BUDGET_CAP_BYTES) -> int:
    """The bytes one request may use: ``fraction`` of available memory, at most ``cap_bytes``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if cap_bytes <= 0:
        raise ValueError(f"cap_bytes must be positive, got {cap_bytes!r}")
    available = psutil.virtual_memory().available
    return int(min(available * fraction, cap_bytes))


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``; human-readable sizes for budget messages."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def over_budget_message(what: str, estimate_bytes: int, budget_bytes: int) -> str | None:
    """``None`` when ``estimate_bytes`` fits, else the sentence the page shows to refuse."""
    if estimate_bytes <= budget_bytes:
        return None
    return (f"Refused: {what} needs about {format_bytes(estimate_bytes)}, over this server's budget of "
            f"{format_bytes(budget_bytes)} ({BUDGET_FRACTION:.0%} of available memory, capped at "
            f"{format_bytes(BUDGET_CAP_BYTES)}). Choose a shorter length, a smaller width or fewer items.")


def plotly_pane(fig=None, **kw) -> pn.pane.Plotly:
    """A plotly pane that stretches with the page; update it with ``pane.object = fig``."""
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("config", PLOTLY_CONFIG)
    return pn.pane.Plotly(fig, **kw)


class ErrorAlert:
    """A hidden alert that a page shows when a callback fails or a setting is refused."""

    def __init__(self, **kw):
        kw.setdefault("sizing_mode", "stretch_width")
        self.pane = pn.pane.Alert("", alert_type="danger", visible=False, **kw)

    def show(self, message: str, kind: str = "danger") -> None:
        self.pane.alert_type = kind
        self.pane.object = message
        self.pane.visible = True

    def clear(self) -> None:
        self.pane.visible = False
        self.pane.object = ""

    @property
    def message(self) -> str | None:
        return self.pane.object if self.pane.visible else None

    def guard(self, fn: Callable) -> Callable:
        """Wrap a callback: an exception is logged and shown here instead of escaping."""

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # a widget value must never crash the page
                log.exception("dashboard callback %s failed", getattr(fn, "__qualname__", fn))
                self.show(f"**{type(exc).__name__}:** {exc}")
                return None

        return wrapped
