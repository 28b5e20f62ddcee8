"""The book: it builds (executing every chapter), every page renders its
interactive figures in headless Chromium, and nothing leaves the site.

The build runs once per session (``built_book``); CI runs it on a fresh clone,
so this is also the test that every chapter executes without error.
"""
from __future__ import annotations

import functools
import json
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
from .page_standard import converted

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
    """A chapter's "Try it" figure is a plotly figure with frames; stepping its slider to another frame
    changes the data."""
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
                const frames = gd._transitionData._frames;
                // figures may open on their last (most informative) frame: step to the first one then
                const slider = (gd.layout.sliders || [])[0];
                const last = frames.length - 1;
                const name = frames[slider && slider.active === last ? 0 : last].name;
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


# ---------------------------------------------------------------------------------- the page standard

FIGURE = re.compile(r"<figure\b[^>]*>(.*?)</figure>", re.S)
CAPTION = re.compile(r'<span class="caption-number">Figure (\d+)\.(\d+): </span>')
CHAPTER = re.compile(r'<h1><span class="section-number">(\d+)\. </span>')


def test_every_figure_of_a_converted_page_has_a_numbered_caption(built_book):
    """Static check (the browser test below checks what a reader sees): each plotly figure sits in a
    <figure> whose caption reads "Figure <chapter>.<n>: ...", numbered 1, 2, ... in page order."""
    for f in toc_files():
        if not converted(f):
            continue
        html = (built_book / f"{f}.html").read_text()
        figures = [body for body in FIGURE.findall(html) if "plotly-graph-div" in body]
        assert len(figures) == html.count('class="plotly-graph-div"'), f"{f}: a plotly figure outside a numbered figure"
        numbers = [CAPTION.search(body) for body in figures]
        assert all(numbers), f"{f}: a figure without a 'Figure N.k:' caption"
        chapter = CHAPTER.search(html)
        for index, match in enumerate(numbers, start=1):
            assert chapter and match.group(1) == chapter.group(1), f"{f}: figure numbered {match.group(0)} in chapter {chapter}"
            assert int(match.group(2)) == index, f"{f}: figure {index} is numbered {match.group(2)}"


def test_toggles_say_show_code_or_solution(built_book):
    for f in toc_files():
        html = (built_book / f"{f}.html").read_text()
        labels = set(re.findall(r'<p class="collapsed admonition-title">([^<]*)</p>', html))
        assert labels <= {"Show code", "Show output", "Solution"}, f"{f}: toggle labels {labels}"
        if "## Exercises" in (ROOT / f"{f}.md").read_text():
            assert "Solution" in labels, f"{f}: exercise solutions should be behind 'Solution' toggles"


PAGE_REPORT_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const clipsX = el => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '');
  const wide = [], scrollers = [];
  for (const el of article.querySelectorAll('*')) {
    if (!visible(el) || el.closest('svg')) continue;
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1 || r.left < -1) {
      let clipped = false;
      for (let a = el.parentElement; a && a !== article.parentElement; a = a.parentElement) {
        if (clipsX(a) && a.getBoundingClientRect().right <= vw + 1) { clipped = true; break; }
      }
      if (!clipped) wide.push(name(el) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    }
    const s = getComputedStyle(el).overflowX;
    if ((s === 'auto' || s === 'scroll') && el.scrollWidth > el.clientWidth + 1 && !el.closest('.plotly-graph-div'))
      scrollers.push(name(el) + ' ' + el.scrollWidth + '>' + el.clientWidth);
  }
  const figures = Array.from(document.querySelectorAll('div.plotly-graph-div')).map(gd => {
    const fl = gd._fullLayout || {};
    const lengths = Object.keys(fl).filter(k => /^xaxis\\d*$/.test(k)).map(k => fl[k]._length);
    const plot = lengths.length ? Math.min(...lengths) : (fl._size ? fl._size.w : 0);
    const fig = gd.closest('figure'), cap = fig && fig.querySelector('figcaption');
    return {plot: Math.round(plot), caption: cap ? cap.innerText.trim().slice(0, 80) : null};
  });
  return {pageWidth: document.documentElement.scrollWidth, viewport: vw, wide: wide.slice(0, 8),
          scrollers: scrollers.slice(0, 8), figures};
}"""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
NUMBERED_CAPTION = re.compile(r"^Figure \d+\.\d+: \S")


def page_problems(report: dict, phone: bool) -> list[str]:
    problems = []
    if report["pageWidth"] > report["viewport"] + 1:
        problems.append(f"the page scrolls sideways ({report['pageWidth']} px wide in a {report['viewport']} px viewport)")
    problems += [f"wider than the viewport: {w}" for w in report["wide"]]
    problems += [f"sideways scrollbar: {s}" for s in report["scrollers"]]
    for i, fig in enumerate(report["figures"], start=1):
        if not fig["caption"] or not NUMBERED_CAPTION.match(fig["caption"]):
            problems.append(f"figure {i} has no numbered caption ({fig['caption']!r})")
        if phone and fig["plot"] < 200:
            problems.append(f"figure {i}'s plot area is {fig['plot']} px wide (< 200 px)")
    return problems


def _report(page, url, viewport) -> dict:
    page.set_viewport_size(viewport)
    page.goto(url, wait_until="load")
    page.wait_for_function("() => Array.from(document.querySelectorAll('div.plotly-graph-div'))"
                           ".every(d => d._fullLayout && d.querySelector('svg.main-svg'))", timeout=20000)
    page.wait_for_function("() => !document.querySelector('.math') || "
                           "document.documentElement.getAttribute('data-equations-fitted') === '1'", timeout=20000)
    page.wait_for_timeout(400)   # let resize handlers (postlib-figures.js, book.js, plotly's responsive mode) settle
    return page.evaluate(PAGE_REPORT_JS)


@pytest.mark.browser
def test_pages_fit_a_phone_and_every_figure_is_numbered_on_phone_and_desktop(site):
    """On a 390-px phone every converted page scrolls only vertically (no element wider than the
    viewport, no sideways scrollbar), every figure keeps a plot area ≥ 200 px wide and has a numbered
    caption; on a desktop the same captions are there. Pages in tests/page_standard.py's
    NOT_YET_CONVERTED are exempt, and must still fail (so the list shrinks as pages are converted)."""
    failures, meets_standard = {}, []
    with browser_page() as (page, record):
        for f in toc_files():
            phone = _report(page, f"{site}/{f}.html", PHONE)
            desktop = _report(page, f"{site}/{f}.html", DESKTOP)
            problems = page_problems(phone, phone=True)
            if [fig["caption"] for fig in desktop["figures"]] != [fig["caption"] for fig in phone["figures"]]:
                problems.append("the desktop page shows other captions than the phone page")
            problems += [f"desktop: {p}" for p in page_problems(desktop, phone=False) if "caption" in p]
            if converted(f) and problems:
                failures[f] = problems
            elif not converted(f) and not problems:
                meets_standard.append(f)
        assert not record["page"], record["page"][:3]
    assert not failures, "\n".join(f"{f}:\n  " + "\n  ".join(p) for f, p in failures.items())
    assert not meets_standard, (f"{meets_standard} meet the page standard: remove them from NOT_YET_CONVERTED "
                                "in tests/page_standard.py")
def test_student_edition_renders_the_executed_book_without_solutions(built_book, tmp_path):
    """`make student`: the notebooks this build executed, minus the `solution` cells, rendered with
    execution off (one Sphinx pass, no second execution). No solution line reaches any output file, and
    each chapter's Colab button opens its committed notebook under student/."""
    import time
    from html import unescape

    import nbformat

    from postlib.exercises.editions import is_solution, read_page, solution_lines, student_book_source
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
    # What the pages display outside their solutions (a library listing, a printed table) is no leak, even
    # where a solution shares a line with it ("return torch.cat(outs, dim=2)"); a solution cell's own
    # outputs, glued values included, are.
    shown = "\n".join(_output_text(cell) for nb in (ROOT / "_build" / "jupyter_execute").rglob("*.ipynb")
                       for cell in nbformat.read(nb, as_version=4).cells if not is_solution(cell))
    for f in toc_files():
        if f.startswith("instructor/"):
            assert not (html / f"{f}.html").exists(), f"{f} is an instructor page"
            continue
        leaked = [line for line in solution_lines(read_page(ROOT / f"{f}.md")) if line in outputs and line not in shown]
        assert not leaked, f"{f}: solution text in the student edition: {leaked[:3]}"
        if f.startswith("chapters/0"):
            page = (html / f"{f}.html").read_text()
            assert f"colab.research.google.com/github/{repo}/blob/main/student/{f}.ipynb" in page, f
            assert (ROOT / "student" / f"{f}.ipynb").exists()
    print(f"student edition: {seconds:.0f} s")


def _output_text(cell) -> str:
    """The text a code cell's outputs show (HTML without its tags)."""
    from html import unescape
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                value = "".join(value) if isinstance(value, list) else value
                parts.append(unescape(re.sub(r"<[^>]+>", "", value)) if mime == "text/html" else value)
    return "\n".join(parts)


def test_instructor_guide_shows_the_measured_time_of_every_chapter(built_book):
    from html import unescape
    text = unescape(re.sub(r"<[^>]+>", " ", (built_book / "instructor" / "guide.html").read_text()))
    for f in toc_files():
        if f.startswith("chapters/0"):
            title = re.search(r"^# (.+)$", (ROOT / f"{f}.md").read_text(), re.M).group(1).strip()
            assert re.search(re.escape(title) + r"\s+\d+\.\d\s+\d+\.\d\s+✅ within budget", text), \
                f"{f}: no measured wall and CPU time"
    times = json.loads((built_book / "coursework" / "execution_times.json").read_text())
    for f in toc_files():
        if f.startswith("chapters/0"):       # the kernel's CPU time is measured, and is what the budget charges
            assert times["pages"][f]["cpu_s"] > 0.5, times["pages"][f]
    assert "Week 6" in text
