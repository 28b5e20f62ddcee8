"""Figures for dashboard pages: computed once per setting for the whole server, drawn in place.

``postlib.viz`` builders are pure functions of their arguments, and building a
figure is most of what a page does when a reader opens it or moves a slider
(80–200 ms for a plotly figure, against 2–9 ms to copy a built one). So pages
ask for figures through :func:`cached_figure`::

    pane.object = cached_figure(attention_map, length, head_dim, causal=causal, seed=seed)

The first call with these arguments builds the figure; later calls — from this
session or any other — return a fresh copy of it (never the cached object: a
plotly pane may mutate the figure it shows). The cache is a bounded LRU keyed by
the builder and its arguments, shared by the threads of one server process; a
second caller asking for a figure that is being built waits for it rather than
building it again (20 readers opening the same page at once build it once).

:func:`plotly_pane` makes the pane every page uses: it stretches with its
container, is updated in place (``pane.object = fig``; a new pane per change
made plotly raise ``_guiEditing`` errors), and is not linked back to the figure
object (``link_figure=False``: the browser's resize events would otherwise be
written into the shared figure and echoed back as relayout messages).
:class:`CaptionedFigure` is that pane with the figure's caption under it
(``postlib.viz`` builders keep short headlines as titles and put parameters and
results in ``fig.layout.meta["caption"]``): ``captioned.object = fig`` updates both.
"""
from __future__ import annotations

import copy
import html
import logging
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np
import panel as pn
import param
import plotly.graph_objects as go

from postlib.viz import get_caption

log = logging.getLogger("apps")

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
MAX_ENTRIES = 256
MAX_BYTES = 128 * 2 ** 20


def _size_bytes(obj) -> int:
    """Roughly the memory a figure dict holds: its arrays and numeric lists (8 bytes per number)."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_size_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_size_bytes(v) for v in obj) if obj and isinstance(obj[0], (dict, list, tuple, np.ndarray)) \
            else 8 * len(obj)
    if isinstance(obj, str):
        return len(obj)
    return 8


def _frozen(value):
    """A hashable stand-in for an argument: lists become tuples, dicts sorted item tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(_frozen(v) for v in value))
    hash(value)  # raises TypeError for anything else unhashable
    return value


def _snapshot(fig: go.Figure) -> dict:
    """A figure's validated properties as plain dicts with numpy arrays (not ``to_dict``'s base64 arrays).

    Reads plotly's internal ``_data``/``_layout``/``_frame_objs`` (plotly 5–6): copying them
    and rebuilding without validation takes 2–9 ms where ``go.Figure(fig)`` takes 30–40 ms.
    """
    try:
        return {"data": copy.deepcopy(fig._data), "layout": copy.deepcopy(fig._layout),
                "frames": copy.deepcopy([frame._props for frame in fig._frame_objs])}
    except AttributeError:  # another plotly: keep a validated copy of the whole figure
        return {"figure": go.Figure(fig)}


def _figure_from(snapshot: dict) -> go.Figure:
    """A new, independent Figure from a :func:`_snapshot` (already valid, so validation is skipped)."""
    if "figure" in snapshot:
        return go.Figure(snapshot["figure"])
    spec = copy.deepcopy(snapshot)
    if not spec["frames"]:
        del spec["frames"]
    try:
        return go.Figure(spec, _validate=False)
    except TypeError:  # a plotly without the private fast path: validate (slower, same figure)
        return go.Figure(spec)


class FigureCache:
    """A bounded LRU of built figures (as snapshots of their properties), keyed by builder and arguments;
    thread-safe."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"max_entries and max_bytes must be >= 1, got {max_entries}, {max_bytes}")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[tuple, tuple[dict, int]] = OrderedDict()
        self._building: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = self.hits = self.misses = 0

    @staticmethod
    def key(builder: Callable, args: tuple, kwargs: dict) -> tuple:
        return (builder.__module__, builder.__qualname__, _frozen(args), _frozen(kwargs))

    def get(self, builder: Callable[..., go.Figure], *args, **kwargs) -> go.Figure:
        """``builder(*args, **kwargs)``, built at most once per distinct arguments; a fresh copy each call."""
        try:
            key = self.key(builder, args, kwargs)
        except TypeError:  # an unhashable argument: build it, uncached
            log.debug("cached_figure: unhashable arguments for %s; not cached", builder.__qualname__)
            return builder(*args, **kwargs)
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return _figure_from(entry[0])
                waiting = self._building.get(key)
                if waiting is None:
                    self._building[key] = threading.Event()
                    self.misses += 1
                    break
            waiting.wait()  # another thread builds this figure; then read it from the cache (or build on failure)
        try:
            fig = builder(*args, **kwargs)
            self._store(key, _snapshot(fig))
            return fig
        finally:
            with self._lock:
                self._building.pop(key).set()

    def _store(self, key: tuple, spec: dict) -> None:
        size = _size_bytes(spec)
        if size > self.max_bytes:
            return  # larger than the whole cache: never kept
        with self._lock:
            if key in self._entries:
                self.bytes -= self._entries.pop(key)[1]
            self._entries[key] = (spec, size)
            self.bytes += size
            while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                _old, (_spec, old_size) = self._entries.popitem(last=False)
                self.bytes -= old_size


FIGURES = FigureCache()


def cached_figure(builder: Callable[..., go.Figure], *args, **kwargs) -> go.Figure:
    """``builder(*args, **kwargs)`` from the server-wide figure cache (see the module docstring)."""
    return FIGURES.get(builder, *args, **kwargs)


def plotly_pane(fig=None, **kw) -> pn.pane.Plotly:
    """A plotly pane that stretches with the page; update it in place with ``pane.object = fig``."""
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("config", PLOTLY_CONFIG)
    kw.setdefault("link_figure", False)
    return pn.pane.Plotly(fig, **kw)


CAPTION_STYLES = {"font-size": "0.85em", "color": "var(--bs-secondary-color, #555)", "margin-top": "0"}


class CaptionedFigure(pn.viewable.Viewer):
    """A plotly pane and the figure's caption under it; set ``object`` to show a new figure in place."""

    object = param.Parameter(default=None, doc="The plotly figure shown (None: nothing yet).")
    visible = param.Boolean(default=True, doc="Show or hide the figure and its caption together.")

    def __init__(self, fig=None, visible: bool = True, **pane_kw):
        super().__init__()
        self.pane = plotly_pane(**pane_kw)
        self.caption = pn.pane.HTML("", sizing_mode="stretch_width", visible=False, styles=CAPTION_STYLES,
                                    css_classes=["figure-caption"])
        self._layout = pn.Column(self.pane, self.caption, sizing_mode="stretch_width")
        self.object = fig
        self.visible = visible
        self._show_figure()
        self._show()

    @param.depends("object", watch=True)
    def _show_figure(self) -> None:
        fig = self.object
        self.pane.object = fig
        text = get_caption(fig) if fig is not None and hasattr(fig, "layout") else ""
        self.caption.object = f"<p>{html.escape(text)}</p>" if text else ""
        self.caption.visible = bool(text)

    @param.depends("visible", watch=True)
    def _show(self) -> None:
        self._layout.visible = self.visible

    def __panel__(self):
        return self._layout


def captioned_figure(fig=None, visible: bool = True, **pane_kw) -> CaptionedFigure:
    """A :class:`CaptionedFigure` (``pane_kw`` go to :func:`plotly_pane`, e.g. ``css_classes``)."""
    return CaptionedFigure(fig, visible=visible, **pane_kw)
