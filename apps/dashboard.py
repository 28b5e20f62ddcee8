"""One Panel app for the whole book: a sidebar of pages, one page per family.

Pages are discovered, not listed: every module in ``apps/pages/`` that defines
``PAGE = {"title": str, "order": int, "viewer": <pn.viewable.Viewer subclass>}``
becomes a page, sorted by ``order``. A page module that fails to import (or a
viewer that fails to build) shows an error card with its traceback instead of
taking the whole dashboard down, and the error is logged.

Serve it with ``python -m apps.serve`` (``make dashboard``), or
``panel serve apps/dashboard.py``. Offline by construction: Panel serves its
own JavaScript, ``BootstrapTemplate`` is the stock template that fetches no
web fonts (the others request Google Fonts), and every session's stylesheets
point at the server's own copy (:func:`pin_local_stylesheets`).

It fits any screen: a viewport meta tag, a sidebar that collapses into the
header's menu button on a phone (``apps/static/dashboard.js`` and
``dashboard.css``), and pages built from ``apps.layout``'s wrapping rows.
"""
from __future__ import annotations

import functools
import importlib
import logging
import math
import pkgutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script by ``panel serve apps/dashboard.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import panel as pn

import postlib.viz

TITLE = "Beyond Transformers — explorer"
STATIC = Path(__file__).resolve().parent / "static"
VIEWPORT = "width=device-width, initial-scale=1"
SIDEBAR_WIDTH = 260
PAGES_PACKAGE = "apps.pages"
# A page whose module failed to import has no order of its own: list it last.
_FAILED_ORDER = math.inf

log = logging.getLogger("apps.dashboard")

VENDOR = STATIC / "vendor"


def use_cartesian_plotly() -> bool:
    """Serve plotly.js's cartesian partial bundle (``apps/static/vendor``, 1.3 MB: scatter, heatmap, bar,
    histogram, the only trace types the pages draw) in place of the full 4.8 MB bundle Panel ships.

    Every reader's browser parses plotly.js before it draws anything: it was 2.7 of the 3.5 s of script
    time of a first page. Only while the vendored file has Panel's own plotly.js version (the Plotly
    pane's code expects it); otherwise Panel's bundle stays. Returns whether the swap was made.
    """
    from panel.models import plotly as panel_plotly

    name = f"plotly-cartesian-{panel_plotly.PLOTLY_VERSION}.min.js"
    if not (VENDOR / name).is_file():
        log.warning("no %s in %s (Panel's plotly.js version): serving Panel's full plotly.js bundle", name, VENDOR)
        return False
    panel_plotly.PlotlyPlot.__javascript__ = [f"dashboard-static/vendor/{name}"]
    panel_plotly.PlotlyPlot.__css__ = []        # maplibre's stylesheet, for map traces: none here
    return True


use_cartesian_plotly()
# "plotly" loads the Plotly pane's JS (served by this server, never a CDN).
pn.extension("plotly", notifications=False)
# Served by apps.serve from apps/static (and the figures' narrow-screen script from postlib/viz/static,
# when the package ships it). Through pn.config, not the template's js_files: Panel 1.9's
# BootstrapTemplate overrides the block that would include the template's own scripts.
pn.config.js_files = {**pn.config.js_files, "bt-dashboard": "dashboard-static/dashboard.js"}
if (Path(postlib.viz.__file__).resolve().parent / "static" / "postlib-figures.js").is_file():
    pn.config.js_files["postlib-figures"] = "postlib-static/postlib-figures.js"


@dataclass(frozen=True)
class PageSpec:
    """One entry of the sidebar: a page that loaded (``viewer``) or failed (``error``)."""

    slug: str
    title: str
    order: float
    viewer: type | None = None
    error: str | None = None
    module: str = ""  # the full module name, for error messages

    @property
    def where(self) -> str:
        return self.module or f"{PAGES_PACKAGE}.{self.slug}"


def _spec_from_module(slug: str, module) -> PageSpec | None:
    modname = module.__name__
    page = getattr(module, "PAGE", None)
    if page is None:
        return None  # a helper module, not a page
    problems = []
    if not isinstance(page, dict):
        problems.append(f"PAGE must be a dict, got {type(page).__name__}")
        page = {}
    title, order, viewer = page.get("title"), page.get("order"), page.get("viewer")
    if not isinstance(title, str) or not title:
        problems.append(f"PAGE['title'] must be a non-empty str, got {title!r}")
    if isinstance(order, bool) or not isinstance(order, (int, float)):
        problems.append(f"PAGE['order'] must be an int, got {order!r}")
    if not (isinstance(viewer, type) and issubclass(viewer, pn.viewable.Viewer)):
        problems.append(f"PAGE['viewer'] must be a pn.viewable.Viewer subclass, got {viewer!r}")
    title = title if isinstance(title, str) and title else slug
    if problems:
        message = f"{modname}: invalid PAGE: " + "; ".join(problems)
        log.error(message)
        return PageSpec(slug, title, _FAILED_ORDER, error=message, module=modname)
    return PageSpec(slug, title, float(order), viewer=viewer, module=modname)


def discover_pages(package: str = PAGES_PACKAGE) -> list[PageSpec]:
    """Every page module in ``package``, sorted by ``PAGE["order"]`` then title.

    Modules whose name starts with ``_`` are skipped; a module that raises on
    import becomes a :class:`PageSpec` carrying the traceback (and is logged),
    so one broken page never hides the others.
    """
    pkg = importlib.import_module(package)
    specs: list[PageSpec] = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        modname = f"{package}.{info.name}"
        try:
            module = importlib.import_module(modname)
        except Exception:  # any import-time failure must stay inside its own page
            tb = traceback.format_exc()
            log.error("dashboard page %s failed to import:\n%s", modname, tb)
            specs.append(PageSpec(info.name, info.name.replace("_", " ").capitalize(), _FAILED_ORDER, error=tb,
                                  module=modname))
            continue
        spec = _spec_from_module(info.name, module)
        if spec is not None:
            specs.append(spec)
    return sorted(specs, key=lambda s: (s.order, s.title))


@functools.lru_cache(maxsize=1)
def default_pages() -> tuple[PageSpec, ...]:
    """The pages of ``apps.pages``, discovered once per server process."""
    return tuple(discover_pages())


def error_card(spec: PageSpec, error: str | None = None) -> pn.viewable.Viewable:
    """What a broken page shows: a red alert naming the module, and the traceback."""
    error = error or spec.error or "unknown error"
    return pn.Column(
        pn.pane.Alert(f"**The page “{spec.title}” could not be loaded** (`{spec.where}`). "
                      "The other pages still work; the error below is also in the server log.",
                      alert_type="danger", sizing_mode="stretch_width"),
        pn.Card(pn.pane.Markdown(f"```\n{error.rstrip()}\n```", sizing_mode="stretch_width"),
                title="Traceback", collapsed=False, sizing_mode="stretch_width"),
        sizing_mode="stretch_width", css_classes=["page-error"])


def _unique_labels(pages: list[PageSpec]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for spec in pages:
        label = spec.title if spec.title not in labels else f"{spec.title} ({spec.slug})"
        labels[label] = spec.slug
    return labels


def _requested_page(slugs: list[str]) -> str | None:
    """The ``?page=<slug>`` of the session URL, if it names a page (deep links)."""
    args = getattr(pn.state, "session_args", None) or {}
    values = args.get("page") or []
    for raw in values:
        slug = raw.decode() if isinstance(raw, bytes) else str(raw)
        if slug in slugs:
            return slug
    return None


class Dashboard:
    """One session's app: the navigation, and each page's viewer built on first visit.

    Viewers are built lazily (a page may measure or load data when built) and
    kept, so a page keeps its settings when the user comes back to it.
    """

    def __init__(self, pages: list[PageSpec] | None = None):
        self.pages = list(default_pages() if pages is None else pages)
        self._by_slug = {p.slug: p for p in self.pages}
        self._built: dict[str, pn.viewable.Viewable] = {}   # slug -> the viewer (or its error card)
        self._layouts: dict[str, pn.viewable.Viewable] = {}  # slug -> its rendered layout, reused on revisits
        self._wrappers: dict[str, pn.Column] = {}             # slug -> its mounted wrapper (hidden when not shown)
        labels = _unique_labels(self.pages)
        initial = _requested_page(list(self._by_slug)) or (self.pages[0].slug if self.pages else None)
        self.nav = pn.widgets.RadioButtonGroup(
            label="Pages", options=labels, value=initial, orientation="vertical", color="light",
            variant="outline", sizing_mode="stretch_width", css_classes=["dashboard-nav"])
        self.content = pn.Column(sizing_mode="stretch_width", css_classes=["dashboard-content"])
        self.nav.param.watch(self._on_nav, "value")
        self.show(initial)

    def view(self, slug: str) -> pn.viewable.Viewable:
        """The (cached) viewer of page ``slug``, or its error card."""
        if slug in self._built:
            return self._built[slug]
        spec = self._by_slug[slug]
        if spec.error is not None:
            view = error_card(spec)
        else:
            try:
                view = spec.viewer()
                # Build the layout now, so a broken __panel__ fails here rather than inside Bokeh.
                self._layouts[slug] = pn.panel(view)
            except Exception:
                tb = traceback.format_exc()
                log.error("dashboard page %s failed to build:\n%s", spec.where, tb)
                view = error_card(spec, tb)
        self._built[slug] = view
        self._layouts.setdefault(slug, view)
        return view

    def show(self, slug: str | None) -> None:
        if slug is None:
            self.content.objects = [pn.pane.Alert(f"No dashboard pages were found in `{PAGES_PACKAGE}`.",
                                                  alert_type="warning")]
            return
        # Visited pages stay mounted and are only hidden: a page's background work (the Scaling
        # page measures in a thread) may still update its panes, and a pane whose Bokeh models
        # were torn down by navigation raises KeyError inside Panel when that update lands.
        # The wrapper's class names the page, so a browser test can wait for this page's own DOM.
        self.view(slug)
        if slug not in self._wrappers:
            self._wrappers[slug] = pn.Column(self._layouts[slug], sizing_mode="stretch_width",
                                             css_classes=["dashboard-page", f"page-{slug}"])
            self.content.append(self._wrappers[slug])
        for other, wrapper in self._wrappers.items():
            wrapper.visible = other == slug

    def _on_nav(self, event) -> None:
        self.show(event.new)
        location = getattr(pn.state, "location", None)
        if location is not None and event.new is not None:
            try:
                location.update_query(page=event.new)
            except Exception:  # the URL is a convenience; never let it break navigation
                log.debug("could not update the URL query", exc_info=True)

    def template(self) -> pn.template.BootstrapTemplate:
        about = pn.pane.Markdown(
            "Each page drives the same `postlib` code the chapters run: the math in `postlib`, "
            "the figures in `postlib.viz`.", sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        return pn.template.BootstrapTemplate(title=TITLE, sidebar=[self.nav, about], main=[self.content],
                                             sidebar_width=SIDEBAR_WIDTH, meta_viewport=VIEWPORT,
                                             raw_css=[_stylesheet()], busy_indicator=None)


# BokehJS bundles a session page loads by default that nothing in the dashboard uses: WebGL glyphs
# (Bokeh plots only; every figure here is plotly) and MathJax (Panel adds it for any Markdown pane in
# case it holds LaTeX; none here does, and without it Panel shows the text as written). They are 2.0
# of the page's 9.9 MB of scripts, parsed by every reader's browser and sent by this one process to
# each. (Bokeh's tables bundle stays: panel.min.js imports it at load, used or not.)
UNUSED_BOKEH_BUNDLES = ("bokeh-gl", "bokeh-mathjax")


def skip_unused_bokeh_bundles() -> None:
    """Leave ``UNUSED_BOKEH_BUNDLES`` out of every session page this server renders (idempotent).

    Panel renders a session's page through ``panel.io.server.bundle_resources(roots, resources)``;
    the wrapper hands it the same resources without those components. tests/apps/test_dashboard.py
    checks the page's script list, and the browser tests that every page still draws without errors.
    """
    import panel.io.server as panel_server

    original = getattr(panel_server, "bundle_resources", None)
    if original is None:                    # another Panel: serve every bundle rather than fail
        log.warning("panel.io.server.bundle_resources is gone: every BokehJS bundle will be served")
        return
    if getattr(original, "skips_unused_bokeh_bundles", False):
        return

    @functools.wraps(original)
    def bundle_resources(roots, resources, *args, **kwargs):
        if resources is not None and hasattr(resources, "components"):
            kept = [c for c in resources.components if c not in UNUSED_BOKEH_BUNDLES]
            resources = resources.clone(components=kept)
        return original(roots, resources, *args, **kwargs)

    bundle_resources.skips_unused_bokeh_bundles = True
    panel_server.bundle_resources = bundle_resources


skip_unused_bokeh_bundles()


@functools.lru_cache(maxsize=1)
def _stylesheet() -> str:
    return (STATIC / "dashboard.css").read_text(encoding="utf-8")


def pin_local_stylesheets(doc=None) -> None:
    """Make every stylesheet of this session's document load from this server, never from a CDN.

    Panel points a component's stylesheets at the server's copy only once the
    session's page has been rendered (it records ``dist_url`` then). A session
    whose page was never rendered — Bokeh builds a second one when a browser's
    websocket arrives after the first was discarded as unused, which happened
    to every reader when 20 opened the dashboard at once — kept Panel's
    default, cdn.holoviz.org. Recording the local path when the session is
    created closes that gap.
    """
    from panel.io.resources import LOCAL_DIST

    doc = doc if doc is not None else pn.state.curdoc
    if doc is None:
        return
    rel = pn.state.rel_path
    doc._template_variables.setdefault("dist_url", f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST)


def create_app(pages: list[PageSpec] | None = None) -> pn.template.BootstrapTemplate:
    """A fresh servable for one session (``pn.serve`` calls this per browser session)."""
    pin_local_stylesheets()
    return Dashboard(pages).template()


def warm_up(pages: list[PageSpec] | None = None) -> list[str]:
    """Build every page once outside any session, and let it ``warm`` the figures its first controls
    reach, so the first readers find them cached.

    Returns the slugs built. A page's on-load work (the Scaling page measures
    on load) is queued on a throwaway document and dropped, never run.
    """
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    built = []
    for spec in (default_pages() if pages is None else pages):
        if spec.viewer is None:
            continue
        doc = Document()
        with set_curdoc(doc):
            pn.state._loaded[doc] = False  # queue on-load callbacks instead of running them
            try:
                page = spec.viewer()
                pn.panel(page)
                if callable(getattr(page, "warm", None)):
                    page.warm()
                built.append(spec.slug)
            except Exception:  # a broken page shows its error card to readers; warming goes on
                log.exception("warming up page %s failed", spec.where)
            finally:
                pn.state._onload.pop(doc, None)
                pn.state._loaded.pop(doc, None)
    return built


def warm_session(pages: list[PageSpec] | None = None) -> int:
    """Build one whole session's document outside any session, serialize it, and destroy it.

    A server's first session costs ~3x the next ones (1.2 against 0.4 CPU-s here): Panel's
    plotly pane imports plotly's widget modules the first time it makes a model, and Bokeh's
    serializer and Panel's template have first-use work too. ``warm_up`` builds pages
    but no models, so without this the first reader of a class — and every reader queued
    behind them — paid for it. The session's on-destroy hooks run with a stand-in context,
    so nothing of it stays registered in ``pn.state``. Returns the number of models it held.
    """
    from types import SimpleNamespace

    from bokeh.document import Document
    from panel.io.state import set_curdoc

    doc = Document()
    models = 0
    with set_curdoc(doc):
        pn.state._loaded[doc] = False  # queue on-load callbacks instead of running them
        try:
            create_app(pages).server_doc(doc)
            doc.to_json()
            models = len(doc.models)
        except Exception:  # readers will see the same failure in their own session
            log.exception("warming up a whole session failed")
    # Outside the document: a hook that reads pn.state.location would otherwise make a new one for it.
    context = SimpleNamespace(id=f"warm-up-{id(doc)}", _document=doc)
    for callback in list(doc.session_destroyed_callbacks):
        try:
            callback(context)
        except Exception:
            log.debug("a session-destroyed hook failed on the warm-up session", exc_info=True)
    for registry in (pn.state._onload, pn.state._loaded, pn.state._locations, pn.state._templates,
                     pn.state._notifications, pn.state._periodic):
        registry.pop(doc, None)
    return models


if pn.state.served:
    create_app().servable(title=TITLE)
