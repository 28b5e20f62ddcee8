"""The book: it builds (executing every chapter), every page renders its
interactive figures in headless Chromium, and nothing leaves the site.

The build runs once per session (``built_book``); CI runs it on a fresh clone,
so this is also the test that every chapter executes without error.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from .browser import browser_page, free_port

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.append(ch["file"])
            files += [s["file"] for s in ch.get("sections", [])]
    return files


@pytest.fixture(scope="session")
def built_book():
    """Build the book exactly as ``make book`` does (unless POSTLIB_SKIP_BOOK_BUILD=1 reuses _build)."""
    if os.environ.get("POSTLIB_SKIP_BOOK_BUILD") != "1":
        from postlib.book import install_static
        install_static(ROOT / "_static")
        env = dict(os.environ, POSTLIB_BOOK_BUILD="1")
        jb = Path(sys.executable).parent / "jupyter-book"
        proc = subprocess.run([str(jb), "build", ".", "--all", "--warningiserror", "--keep-going"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=1800)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"book build failed:\n{log[-8000:]}"
    assert (HTML / "index.html").exists()
    return HTML


@pytest.fixture(scope="session")
def site(built_book):
    """Serve _build/html on a free localhost port, as a reader's browser would see it."""
    port = free_port()
    handler = functools.partial(QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_every_toc_page_is_built(built_book):
    for f in toc_files():
        assert (built_book / f"{f}.html").exists(), f"{f}.html missing from the build"


def test_html_references_no_outside_assets(built_book):
    """Scripts, styles and fonts come from the site itself (links to papers are fine)."""
    pattern = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?:)?//""")
    for f in toc_files():
        html = (built_book / f"{f}.html").read_text()
        hits = [m.group(0) for m in pattern.finditer(html) if "rel=\"canonical\"" not in m.group(0)]
        assert not hits, f"{f}.html loads outside assets: {hits[:3]}"
        assert "cdn.plot.ly" not in html and "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_chapter_pages_have_colab_links_to_their_notebooks(built_book):
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]["url"].replace("https://github.com/", "")
    for f in toc_files():
        if not f.startswith("chapters/0"):
            continue
        html = (built_book / f"{f}.html").read_text()
        assert f"colab.research.google.com/github/{repo}/blob/main/{f}.ipynb" in html, f"no Colab link on {f}"
        assert (ROOT / f"{f}.ipynb").exists()


def test_every_chapter_has_figures_in_html(built_book):
    for f in toc_files():
        if f.startswith("chapters/0"):
            html = (built_book / f"{f}.html").read_text()
            assert html.count('class="plotly-graph-div"') >= 1, f"{f}: expected interactive figures"


@pytest.mark.browser
def test_pages_render_figures_offline_without_errors(site):
    with browser_page() as (page, record):
        for f in toc_files():
            before = {k: len(v) for k, v in record.items()}
            page.goto(f"{site}/{f}.html", wait_until="load")
            page.wait_for_timeout(300)
            expected = page.locator("div.plotly-graph-div").count()
            rendered = page.evaluate("""() => Array.from(document.querySelectorAll('div.plotly-graph-div'))
                .filter(d => d.querySelector('svg.main-svg') && (d.data || []).length > 0).length""")
            assert rendered == expected, f"{f}: {rendered} of {expected} plotly figures rendered"
            if "$" in (ROOT / f"{f}.md").read_text():
                page.wait_for_function("() => document.querySelector('mjx-container') !== null", timeout=15000)
            new = {k: record[k][before[k]:] for k in record}
            assert not new["outside"], f"{f}: requests left the site: {new['outside'][:5]}"
            assert not new["page"], f"{f}: page errors: {new['page'][:3]}"
            assert not new["console"], f"{f}: console errors: {new['console'][:3]}"


@pytest.mark.browser
def test_static_sliders_step_through_frames(site):
    """A chapter's "Try it" figure is a plotly figure with frames; stepping its slider changes the data."""
    checked = 0
    with browser_page() as (page, record):
        for f in toc_files():
            if not f.startswith("chapters/0"):
                continue
            page.goto(f"{site}/{f}.html", wait_until="load")
            changed = page.evaluate("""async () => {
                const gd = Array.from(document.querySelectorAll('div.plotly-graph-div'))
                    .find(d => d._transitionData && d._transitionData._frames && d._transitionData._frames.length > 1);
                if (!gd) return null;
                const before = JSON.stringify(gd.data.map(t => t.z || t.y));
                const name = gd._transitionData._frames[gd._transitionData._frames.length - 1].name;
                await Plotly.animate(gd, [name], {mode: 'immediate', frame: {duration: 0, redraw: true}, transition: {duration: 0}});
                return JSON.stringify(gd.data.map(t => t.z || t.y)) !== before;
            }""")
            assert changed is not False, f"{f}: stepping the slider did not change the figure"
            checked += changed is True
        assert not record["page"], record["page"][:3]
    assert checked >= 1, "no chapter has an animated (framed) figure"


def test_markdown_printed_by_cells_is_rendered(built_book):
    """A paper-vs-ours table printed with IPython's Markdown must be a table, not pipes in a text box."""
    for f in toc_files():
        html = (built_book / f"{f}.html").read_text()
        for output in re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>', html, flags=re.S):
            assert "|---|" not in output, f"{f}: a cell printed a markdown table that was not rendered"


def test_student_edition_renders_the_executed_book_without_solutions(built_book, tmp_path):
    """`make student`: the notebooks this build executed, minus the `solution` cells, rendered with
    execution off (one Sphinx pass, no second execution). No solution line reaches any output file, and
    each chapter's Colab button opens its committed notebook under student/."""
    import time
    from html import unescape

    from postlib.exercises.editions import read_page, solution_lines, student_book_source
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]["url"].replace("https://github.com/", "")
    source = student_book_source(ROOT, ROOT / "_build" / "jupyter_execute", tmp_path / "student")
    start = time.perf_counter()
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(source), "--all", "--warningiserror", "--keep-going"], cwd=source,
                          capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    html = source / "_build" / "html"
    def text(p: Path) -> str:            # highlighted code is split into <span>s: compare the text
        raw = p.read_text(errors="ignore")
        return unescape(re.sub(r"<[^>]+>", "", raw)) if p.suffix == ".html" else raw

    outputs = "\n".join(text(p) for p in html.rglob("*")
                        if p.is_file() and p.suffix in (".html", ".js", ".ipynb", ".md", ".txt", ".json"))
    for f in toc_files():
        if f.startswith("instructor/"):
            assert not (html / f"{f}.html").exists(), f"{f} is an instructor page"
            continue
        leaked = [line for line in solution_lines(read_page(ROOT / f"{f}.md")) if line in outputs]
        assert not leaked, f"{f}: solution text in the student edition: {leaked[:3]}"
        if f.startswith("chapters/0"):
            page = (html / f"{f}.html").read_text()
            assert f"colab.research.google.com/github/{repo}/blob/main/student/{f}.ipynb" in page, f
            assert (ROOT / "student" / f"{f}.ipynb").exists()
    print(f"student edition: {seconds:.0f} s")


def test_instructor_guide_shows_the_measured_time_of_every_chapter(built_book):
    from html import unescape
    text = unescape(re.sub(r"<[^>]+>", " ", (built_book / "instructor" / "guide.html").read_text()))
    for f in toc_files():
        if f.startswith("chapters/0"):
            title = re.search(r"^# (.+)$", (ROOT / f"{f}.md").read_text(), re.M).group(1).strip()
            assert re.search(re.escape(title) + r"\s+\d+\.\d\s+✅ within budget", text), f"{f}: no measured time"
    assert (built_book / "coursework" / "execution_times.json").exists()
    assert "Week 6" in text
