"""Static plotly output for the book, and the JavaScript the site serves itself.

plotly ≥ 6.1 under nbclient emits only ``application/vnd.plotly.v1+json``, which myst-nb drops: the
figure would be blank in the book. During the book build we register a renderer that emits
``text/html`` referencing the ``plotly.min.js`` served from the site's own ``_static`` folder, so no
request leaves the site. ``install_static`` copies that file, and the figures' responsive script
``postlib/viz/static/postlib-figures.js`` when it exists, into ``_static``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

RENDERER = "postlib_html"
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False}
FIGURES_JS = Path(__file__).resolve().parent.parent / "viz" / "static" / "postlib-figures.js"


def figure_html(fig) -> str:
    """The figure as an HTML fragment that needs the page's ``plotly.min.js`` (no CDN, no MathJax)."""
    import plotly.io as pio
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, include_mathjax=False, auto_play=False,
                       config=PLOTLY_CONFIG)


def register_renderer() -> str:
    """Register (once) and return the name of the static HTML renderer."""
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class StaticHTMLRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return {"text/html": figure_html(fig_dict)}

    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = StaticHTMLRenderer()
    return RENDERER


def _copy_if_changed(src: Path, dest: Path) -> None:
    if not dest.exists() or dest.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dest)


def install_static(static_dir="_static") -> list[str]:
    """Copy the installed plotly.js (and postlib-figures.js, once it exists) into the book's ``_static``."""
    import plotly
    static = Path(static_dir)
    static.mkdir(parents=True, exist_ok=True)
    copied = []
    for src in (Path(plotly.__file__).parent / "package_data" / "plotly.min.js", FIGURES_JS):
        if src.exists():
            _copy_if_changed(src, static / src.name)
            copied.append(str(static / src.name))
    return copied
