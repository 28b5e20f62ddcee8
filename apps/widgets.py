"""The page toolkit: everything a dashboard page needs besides ``postlib``, in one import.

    from apps.widgets import Page, guarded, budget_refusal, cached_figure, plotly_pane, controls, beside

* :class:`Page` — the base of every page (a ``pn.viewable.Viewer``): an
  :class:`ErrorAlert` and a refusal banner, both hidden until used;
* :func:`guarded` — decorates a page method so an exception becomes a red alert
  on the page and a log line, never a broken session;
* the memory budget (``apps.budget``): :func:`budget_refusal` before anything
  is allocated, :func:`release_memory` after a large run;
* figures (``apps.figures``): :func:`cached_figure` shares built figures across
  sessions; :func:`captioned_figure` shows one with its caption, updated in place
  (``figure.object = fig``; :func:`plotly_pane` is the bare pane);
* layout (``apps.layout``): :func:`controls`, :func:`beside`,
  :func:`labelled_player`, :func:`section`, :func:`rule` fit a 390-px phone.

CONTRIBUTING.md ("Dashboard") shows a whole page built from these.
"""
from __future__ import annotations

import functools
import logging
from typing import Callable

import panel as pn

from apps.budget import (BUDGET_CAP_BYTES, BUDGET_FRACTION, GIB, budget_refusal, fits, format_bytes,
                         memory_budget_bytes, release_memory, rss_bytes)
from apps.figures import PLOTLY_CONFIG, CaptionedFigure, cached_figure, captioned_figure, plotly_pane
from apps.layout import beside, controls, labelled_player, rule, section, stack

__all__ = ["Page", "ErrorAlert", "guarded", "budget_refusal", "fits", "format_bytes", "memory_budget_bytes",
           "release_memory", "rss_bytes", "GIB", "BUDGET_FRACTION", "BUDGET_CAP_BYTES", "cached_figure",
           "plotly_pane", "captioned_figure", "CaptionedFigure", "PLOTLY_CONFIG", "controls", "beside", "stack",
           "labelled_player", "section", "rule"]

log = logging.getLogger("apps")


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
        if self.pane.visible:
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


def guarded(method: Callable) -> Callable:
    """Decorate a :class:`Page` method: an exception shows in the page's alert instead of escaping.

    Stack it under ``param.depends``::

        @param.depends("length", watch=True)
        @guarded
        def draw_map(self): ...
    """

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        return self.alert.guard(method)(self, *args, **kwargs)

    return wrapped


class Page(pn.viewable.Viewer):
    """Base of a dashboard page: ``self.alert`` for failures, ``self.refusal`` for refused settings.

    Subclasses declare ``param`` parameters, build their panes in ``__init__``
    (after ``super().__init__``), draw them once, and wire redraws with
    ``@param.depends(..., watch=True)`` + :func:`guarded`. ``__panel__``
    returns the layout, built from ``apps.layout``.
    """

    def __init__(self, **params):
        super().__init__(**params)
        self.alert = ErrorAlert()
        self.refusal = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width",
                                     css_classes=["page-refusal"])

    def warm(self) -> None:
        """Build, into the server-wide figure cache, the figures a reader's first moves reach.

        ``apps.dashboard.warm_up`` calls it once at server start on a throwaway instance. The default
        builds nothing; a page whose first slider redraws a figure slower than a reader notices overrides it.
        """

    def refuse(self, message: str | None) -> bool:
        """Show ``message`` in the refusal banner (or hide the banner when None); True when refused."""
        if message is None:
            if self.refusal.visible:
                self.refusal.visible = False
            return False
        self.refusal.object = message
        self.refusal.visible = True
        return True
