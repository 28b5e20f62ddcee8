"""Page discovery and the app shell, without a browser: a broken page never takes the dashboard down."""
from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import panel as pn
import pytest

from apps.dashboard import TITLE, Dashboard, PageSpec, create_app, discover_pages

GOOD_PAGE = '''
import panel as pn, param

class {cls}(pn.viewable.Viewer):
    value = param.Integer(default=1)
    def __panel__(self):
        return pn.Column(pn.pane.Markdown("{title} page"), css_classes=["{slug}-page"])

PAGE = {{"title": "{title}", "order": {order}, "viewer": {cls}}}
'''


@pytest.fixture
def fake_pages(tmp_path, monkeypatch):
    """A package ``fakepages`` with good pages, a broken one, a helper and an invalid PAGE."""
    pkg = tmp_path / "fakepages"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "beta.py").write_text(GOOD_PAGE.format(cls="Beta", title="Beta", order=20, slug="beta"))
    (pkg / "alpha.py").write_text(GOOD_PAGE.format(cls="Alpha", title="Alpha", order=10, slug="alpha"))
    (pkg / "broken.py").write_text("raise ImportError('a dependency is missing')\n")
    (pkg / "helpers.py").write_text("X = 1\n")  # no PAGE: not a page
    (pkg / "_private.py").write_text("raise RuntimeError('never imported')\n")
    (pkg / "invalid.py").write_text("PAGE = {'title': 'Invalid', 'order': 'first', 'viewer': object}\n")
    (pkg / "crashing.py").write_text(textwrap.dedent('''
        import panel as pn
        class Crashing(pn.viewable.Viewer):
            def __init__(self, **params):
                raise RuntimeError("the viewer failed to build")
        PAGE = {"title": "Crashing", "order": 5, "viewer": Crashing}
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fakepages"
    for name in [m for m in sys.modules if m == "fakepages" or m.startswith("fakepages.")]:
        del sys.modules[name]


def test_discovery_sorts_by_order_and_turns_failures_into_error_pages(fake_pages, caplog):
    with caplog.at_level(logging.ERROR, logger="apps.dashboard"):
        pages = discover_pages(fake_pages)
    assert [p.slug for p in pages] == ["crashing", "alpha", "beta", "broken", "invalid"]
    by_slug = {p.slug: p for p in pages}
    assert by_slug["alpha"].error is None and by_slug["alpha"].viewer.__name__ == "Alpha"
    assert "ImportError: a dependency is missing" in by_slug["broken"].error
    assert "PAGE['order'] must be an int" in by_slug["invalid"].error
    assert "PAGE['viewer'] must be a pn.viewable.Viewer subclass" in by_slug["invalid"].error
    logged = caplog.text
    assert "fakepages.broken failed to import" in logged and "fakepages.invalid: invalid PAGE" in logged


def test_the_real_pages_include_scaling():
    pages = discover_pages()
    scaling = next(p for p in pages if p.slug == "scaling")
    assert scaling.title == "Scaling" and scaling.order == 90 and scaling.error is None
    assert [p.order for p in pages] == sorted(p.order for p in pages)


def _markdown_text(view) -> str:
    return " ".join(str(m.object) for m in pn.panel(view).select(pn.pane.Markdown)) + " ".join(
        str(a.object) for a in pn.panel(view).select(pn.pane.Alert))


def _shown(app):
    """The one page wrapper that is visible (visited pages stay mounted, hidden)."""
    (shown,) = [w for w in app.content.objects if w.visible]
    return shown


def test_navigation_builds_each_viewer_once_and_shows_error_cards(fake_pages, caplog):
    app = Dashboard(discover_pages(fake_pages))
    assert list(app.nav.options.values()) == ["crashing", "alpha", "beta", "broken", "invalid"]
    with caplog.at_level(logging.ERROR, logger="apps.dashboard"):
        first = app.content.objects[0]  # "crashing" is first: its viewer raises in __init__
    assert "could not be loaded" in _markdown_text(first) and "the viewer failed to build" in _markdown_text(first)
    app.nav.value = "alpha"
    alpha = app.view("alpha")
    assert type(alpha).__name__ == "Alpha" and "Alpha page" in _markdown_text(_shown(app))
    alpha.value = 7
    app.nav.value = "broken"
    assert "a dependency is missing" in _markdown_text(_shown(app)) and "Alpha page" not in _markdown_text(_shown(app))
    n_mounted = len(app.content.objects)
    app.nav.value = "alpha"
    assert len(app.content.objects) == n_mounted  # a revisit re-shows the mounted page, it mounts nothing new
    assert app.view("alpha") is alpha and alpha.value == 7  # built once: the page keeps its settings
    pn.panel(app.content).get_root()  # the error cards and pages render to Bokeh models


def test_no_pages_at_all_is_a_visible_warning():
    app = Dashboard([])
    (alert,) = app.content.objects
    assert isinstance(alert, pn.pane.Alert) and "No dashboard pages" in alert.object


def test_duplicate_titles_stay_distinguishable():
    specs = [PageSpec("a", "Same", 1, error="x"), PageSpec("b", "Same", 2, error="y")]
    app = Dashboard(specs)
    assert app.nav.options == {"Same": "a", "Same (b)": "b"}


def test_create_app_is_a_fresh_bootstrap_template_per_session(fake_pages):
    pages = discover_pages(fake_pages)
    one, two = create_app(pages), create_app(pages)
    assert isinstance(one, pn.template.BootstrapTemplate) and one is not two
    assert one.title == TITLE == "Beyond Transformers — explorer"
    assert one.main[0] is not two.main[0]


def test_the_plotly_extension_is_loaded():
    assert "plotly" in pn.extension._loaded_extensions


def test_warm_up_builds_every_page_without_running_on_load_work(monkeypatch):
    from apps.dashboard import default_pages, warm_up
    from apps.figures import FIGURES
    from postlib import bench

    def fail(*args, **kwargs):
        raise AssertionError("warming up must not measure (the Scaling page measures on load)")

    monkeypatch.setattr(bench, "measure_mixers", fail)
    before = FIGURES.misses + FIGURES.hits
    built = warm_up()
    assert built == [p.slug for p in default_pages() if p.viewer is not None]
    assert FIGURES.misses + FIGURES.hits > before  # the pages' figures went through the shared cache
    assert not pn.state._onload  # nothing queued is left behind


def test_warm_session_builds_a_whole_session_and_leaves_nothing_registered():
    """The server's first session paid ~3x the next (plotly's widget modules imported on the first
    Plotly model, first-use work in Bokeh's serializer): warm_session pays it at start-up."""
    from apps.dashboard import warm_session

    registries = ("_templates", "_locations", "_notifications", "_periodic", "_onload", "_loaded", "_views")
    before = {name: len(getattr(pn.state, name)) for name in registries}
    models = warm_session()
    assert models > 50  # the template, the navigation and the first page, all made into models
    assert {name: len(getattr(pn.state, name)) for name in registries} == before, dict(pn.state._locations)


def test_a_session_created_without_a_rendered_page_still_uses_local_stylesheets():
    from bokeh.document import Document
    from bokeh.models import ImportedStyleSheet
    from panel.io.state import set_curdoc

    doc = Document()
    with set_curdoc(doc):
        create_app([]).server_doc(doc)
    assert doc._template_variables["dist_url"].endswith("static/extensions/panel/")
    urls = [str(s.url) for root in doc.roots for m in root.references()
            for s in (getattr(m, "stylesheets", None) or []) if isinstance(s, ImportedStyleSheet)]
    assert urls and not [u for u in urls if "cdn.holoviz.org" in u], urls


def test_the_template_fits_a_phone():
    from apps.dashboard import VIEWPORT

    template = create_app([])
    assert template.meta_viewport == VIEWPORT == "width=device-width, initial-scale=1"
    assert any("@media (max-width: 767.98px)" in css for css in template.config.raw_css)
    assert pn.config.js_files["bt-dashboard"] == "dashboard-static/dashboard.js"


def test_session_pages_skip_the_unused_bokeh_bundles():
    """A session's page lists BokehJS's widgets and tables bundles (panel.min.js imports tables at
    load) but not WebGL and MathJax, which nothing in the dashboard uses (2 MB per reader)."""
    import panel.io.server as panel_server
    from bokeh.resources import Resources

    import apps.dashboard as dashboard
    dashboard.skip_unused_bokeh_bundles()                    # idempotent: already done at import
    assert panel_server.bundle_resources.skips_unused_bokeh_bundles
    assert not getattr(panel_server.bundle_resources.__wrapped__, "skips_unused_bokeh_bundles", False)
    bundle = panel_server.bundle_resources([], Resources(mode="server", root_url="/"))
    scripts = " ".join(str(f) for f in bundle.js_files)
    assert "bokeh-widgets" in scripts and "bokeh-tables" in scripts and "bokeh.min.js" in scripts
    assert dashboard.UNUSED_BOKEH_BUNDLES and not any(name in scripts for name in dashboard.UNUSED_BOKEH_BUNDLES)


def test_the_dashboard_serves_plotly_js_cartesian_bundle():
    """plotly.js's cartesian bundle (1.3 MB, vendored) replaces Panel's full one (4.8 MB) at Panel's plotly.js
    version, and holds every trace type a page or a figure builder draws."""
    import re

    from panel.models import plotly as panel_plotly

    import apps.dashboard as dashboard
    name = f"plotly-cartesian-{panel_plotly.PLOTLY_VERSION}.min.js"
    assert panel_plotly.PlotlyPlot.__javascript__ == [f"dashboard-static/vendor/{name}"]
    bundle = (dashboard.VENDOR / name).read_text(encoding="utf-8")
    assert f"plotly.js (cartesian - minified) v{panel_plotly.PLOTLY_VERSION}" in bundle[:200]
    traces = set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))
    root = Path(dashboard.__file__).resolve().parent.parent
    used = {m.lower() for folder in ("apps", "postlib/viz") for f in (root / folder).rglob("*.py")
            for m in re.findall(r"\bgo\.(\w+)\(", f.read_text(encoding="utf-8"))} - {"figure", "frame"}
    assert used and used <= traces, f"trace types missing from the cartesian bundle: {used - traces}"


def test_without_the_vendored_bundle_panels_own_plotly_js_stays(monkeypatch, tmp_path, caplog):
    from panel.models import plotly as panel_plotly

    import apps.dashboard as dashboard
    monkeypatch.setattr(panel_plotly.PlotlyPlot, "__javascript__", ["panel's own"])
    monkeypatch.setattr(dashboard, "VENDOR", tmp_path)
    assert dashboard.use_cartesian_plotly() is False
    assert panel_plotly.PlotlyPlot.__javascript__ == ["panel's own"]
    assert "serving Panel's full plotly.js bundle" in caplog.text
