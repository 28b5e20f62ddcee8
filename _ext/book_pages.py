"""Page conventions the book's HTML needs (loaded from _config.yml's local_extensions).

* Toggle labels: a hidden solution cell says "Solution", a hidden plumbing cell "Show code", a hidden
  output "Show output" — instead of myst-nb's "Show code cell content". A solution cell is tagged
  ``solution``, or is a ``hide-cell`` cell that calls an exercise checker (``check_...``).
* Figure captions read "Figure 1.2: ..." (Sphinx writes "Figure 1.2 " and no separator).
* The figures' responsive script (``postlib/viz/static/postlib-figures.js``) and plotly.js are copied
  into ``_static``; the script is added to ``html_js_files`` after plotly.js once it exists.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

FIGURES_JS = Path("postlib") / "viz" / "static" / "postlib-figures.js"
LABELS = {
    "solution": ("Solution", "Hide solution"),
    "all": ("Show code", "Hide code"),
    "input": ("Show code", "Hide code"),
    "input+output": ("Show code", "Hide code"),
    "output": ("Show output", "Hide output"),
}
_CAPTION_NUMBER = re.compile(r'(<span class="caption-number">)((?:Figure|Table|Listing) [\d.]+) (</span>)')


def is_solution(tags: list[str], source: str, hide_mode: str | None) -> bool:
    return "solution" in tags or (hide_mode == "all" and re.search(r"\bcheck_\w+\(", source) is not None)


class ToggleLabels(SphinxPostTransform):
    """Runs before myst-nb's HideInputCells (priority 199), which reads these prompts."""

    default_priority = 150
    formats = ("html",)

    def run(self, **kwargs):
        for node in self.document.findall(nodes.container):
            mode = node.get("hide_mode")
            if node.get("nb_element") != "cell_code" or not mode:
                continue
            tags = list((node.get("cell_metadata") or {}).get("tags", []))
            kind = "solution" if is_solution(tags, node.astext(), mode) else mode
            node["prompt_show"], node["prompt_hide"] = LABELS.get(kind, LABELS["all"])


def _copy_static(app, config) -> None:
    static = Path(app.srcdir) / "_static"
    static.mkdir(exist_ok=True)
    sources = [Path(app.srcdir) / FIGURES_JS]
    try:
        import plotly
        sources.append(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
    except ImportError:  # pragma: no cover - the book needs plotly
        pass
    for src in sources:
        dest = static / src.name
        if src.exists() and (not dest.exists() or dest.read_bytes() != src.read_bytes()):
            shutil.copyfile(src, dest)
    if (static / FIGURES_JS.name).exists():
        names = [f if isinstance(f, str) else f[0] for f in config.html_js_files]
        if FIGURES_JS.name not in names:
            config.html_js_files = [*config.html_js_files, FIGURES_JS.name]


def _caption_separator(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if body:
        context["body"] = _CAPTION_NUMBER.sub(r"\1\2: \3", body)


def setup(app):
    app.add_post_transform(ToggleLabels)
    app.connect("config-inited", _copy_static)
    app.connect("html-page-context", _caption_separator)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
