"""Coursework: the instructor guide's collected sections, and the per-page execution budget.

Each cell tagged ``exercise`` gets its marks (title, ★ difficulty, minutes, points, id) right above it.

Directives (each a placeholder filled once every page has been read and executed):

``coursework-objectives``     every chapter's "Learning objectives" admonition, by part
``coursework-prerequisites``  per part: its chapters' "Prerequisites" admonitions and the parts they link to
``coursework-timings``        the execution time myst-nb measured for every page in this very build
``coursework-syllabus``       the pages split into ``:weeks:`` (default 6) even weeks, with assignments
``coursework-answer-keys``    per chapter: every exercise, its marks and the solution cells

The build fails (``ExtensionError``) when a page executed in this build used more than
``coursework_page_budget_s`` (default 120 s; the environment variable ``POSTLIB_PAGE_BUDGET_S``
overrides it) of CPU time. The budget is on the *kernel's CPU time*, not on wall time, so that a
busy machine (CI runs the book build beside other tests on 2 cores) does not fail a page that is
within budget: the kernel is a child process of the build, so the CPU seconds it used are the
growth of ``os.times()``'s children counters between reading the page's source and its doctree
(the kernel has been shut down and reaped by then). Both times are shown and written to
``coursework/execution_times.json`` in the output. ``postlib_edition: student`` (the student book,
which executes nothing) skips the budget.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOGGER = logging.getLogger(__name__)
KINDS = ("objectives", "prerequisites", "timings", "syllabus", "answer-keys")


class coursework_placeholder(nodes.General, nodes.Element):
    """Replaced by the collected content at write time."""


class CourseworkDirective(SphinxDirective):
    option_spec = {"weeks": int}

    def run(self):
        node = coursework_placeholder(kind=self.name.removeprefix("coursework-"), options=dict(self.options))
        _store(self.env).setdefault("_guides", set()).add(self.env.docname)
        return [node]


def _store(env) -> dict:
    if not hasattr(env, "postlib_coursework"):
        env.postlib_coursework = {}
    return env.postlib_coursework


def _admonition_body(admonition) -> list:
    """The admonition's content without its title and without citations (they belong to their page)."""
    body = []
    for child in admonition.children:
        if isinstance(child, nodes.title):
            continue
        child = child.deepcopy()
        for ref in list(child.findall(lambda n: n.get("refdomain") == "cite" if isinstance(n, nodes.Element) else False)):
            parent, index = ref.parent, ref.parent.index(ref)
            parent.remove(ref)
            before = parent[index - 1] if index > 0 else None
            if isinstance(before, nodes.Text) and before.endswith(" "):
                parent.replace(before, nodes.Text(before.rstrip(" ")))
        body.append(child)
    return body


def collect(app, doctree):
    """doctree-read: what the guide needs from each page."""
    env = app.env
    info = {"objectives": [], "prerequisites": [], "links": set(),
            "words": sum(len(p.astext().split()) for p in doctree.findall(nodes.paragraph))}
    for admonition in doctree.findall(nodes.admonition):
        titles = [c for c in admonition.children if isinstance(c, nodes.title)]
        title = titles[0].astext().strip().lower() if titles else ""
        if title == "learning objectives":
            info["objectives"] += _admonition_body(admonition)
        elif title == "prerequisites":
            info["prerequisites"] += _admonition_body(admonition)
    for ref in doctree.findall(nodes.Element):
        if ref.get("reftype") == "doc" and ref.get("reftarget"):
            info["links"].add(ref["reftarget"].lstrip("/").removesuffix(".md").removesuffix(".ipynb"))
    _store(env)[env.docname] = info


def mark_exercises(app, doctree):
    """doctree-read: put each exercise's marks (id, ★ difficulty, minutes, points) right above its cell."""
    cells = [c for c in doctree.findall(nodes.container) if c.get("nb_element") == "cell_code"
             and "tag_exercise" in c.get("classes", [])]
    if not cells:
        return
    from postlib.exercises.editions import exercise_calls
    for cell in cells:
        source = next((b.astext() for b in cell.findall(nodes.literal_block)), "")
        for exercise_id in exercise_calls(source):
            from postlib.exercises import EXERCISES
            ex = EXERCISES[exercise_id]
            badge = nodes.paragraph(classes=["postlib-exercise-marks"])
            badge += nodes.strong(text=ex.title)
            badge += nodes.Text(f" — {ex.marks} · id {ex.id}")
            cell.parent.insert(cell.parent.index(cell), badge)


def purge(app, env, docname):
    _store(env).pop(docname, None)
    _store(env).get("_guides", set()).discard(docname)
    _store(env).get("_cpu", {}).pop(docname, None)


def merge(app, env, docnames, other):
    mine, theirs = _store(env), _store(other)
    for docname in docnames:
        if docname in theirs:
            mine[docname] = theirs[docname]
    mine.setdefault("_guides", set()).update(theirs.get("_guides", set()) & set(docnames))
    mine.setdefault("_cpu", {}).update({d: t for d, t in theirs.get("_cpu", {}).items() if d in docnames})


_READ_STARTED: dict[str, float] = {}


def _children_cpu_s() -> float:
    times = os.times()
    return times.children_user + times.children_system


def start_cpu_clock(app, docname, source):
    """source-read: note the CPU time of finished child processes before the page executes."""
    _READ_STARTED[docname] = _children_cpu_s()


def stop_cpu_clock(app, doctree):
    """doctree-read: the page's kernel has run and been reaped; its CPU seconds are the difference."""
    started = _READ_STARTED.pop(app.env.docname, None)
    runtimes = _runtimes(app.env)
    if started is not None and app.env.docname in runtimes:
        _store(app.env).setdefault("_cpu", {})[app.env.docname] = round(_children_cpu_s() - started, 2)


def _cpu_times(env) -> dict:
    return _store(env).get("_cpu", {})


def _budget(app) -> float:
    return float(os.environ.get("POSTLIB_PAGE_BUDGET_S") or app.config.coursework_page_budget_s)


def _runtimes(env) -> dict:
    from myst_nb.sphinx_ import NbMetadataCollector
    out = {}
    for docname, data in NbMetadataCollector.get_doc_data(env).items():
        exec_data = data.get("exec_data")
        if exec_data:
            out[docname] = exec_data
    return out


def check_budget(app, env):
    """env-updated: every page is read (and executed); fail the build on a page over budget."""
    if app.config.postlib_edition != "student":
        from postlib.exercises.guide import over_budget
        cpu = _cpu_times(env)
        slow = over_budget({d: cpu.get(d, e.get("runtime")) for d, e in _runtimes(env).items()}, _budget(app))
        if slow:
            pages = ", ".join(f"{doc} ({t:.0f} CPU s)" for doc, t in slow)
            raise ExtensionError(f"pages over the execution budget of {_budget(app):.0f} CPU seconds on this "
                                 f"machine ({os.cpu_count()} CPUs): {pages}. Shrink the page's CPU size profile.")
    guides = sorted(_store(env).get("_guides", set()))
    math = env.get_domain("math").data.setdefault("has_equations", {})
    for docname in guides:          # the collected objectives bring math: load MathJax on these pages
        math[docname] = True
    return guides


def _link(app, fromdoc, todoc, text):
    para = nodes.paragraph()
    para += nodes.reference("", text, refuri=app.builder.get_relative_uri(fromdoc, todoc), internal=True)
    return para


def _table(header, rows, widths=None):
    table = nodes.table(classes=["colwidths-auto", "postlib-coursework"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    head += row
    for h in header:
        row += nodes.entry("", nodes.paragraph(text=h))
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        body += row
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=str(cell))
            row += entry
    return table


class CourseworkTransform(SphinxPostTransform):
    default_priority = 8      # before references are resolved

    def run(self, **kwargs):
        for node in list(self.document.findall(coursework_placeholder)):
            node.replace_self(getattr(self, "_" + node["kind"].replace("-", "_"))(node["options"]))

    # ------------------------------------------------------------------ the collected sections
    def _pages(self):
        from postlib.exercises.guide import course_pages
        store = _store(self.env)
        words = {d: i.get("words", 0) for d, i in store.items() if isinstance(i, dict)}
        titles = {d: t.astext() for d, t in self.env.titles.items()}
        return course_pages(Path(self.app.srcdir), words=words, titles=titles)

    def _by_part(self):
        parts: dict = {}
        for page in self._pages():
            parts.setdefault(page.part or "Introduction", []).append(page)
        return parts

    def _objectives(self, options):
        out, store = [], _store(self.env)
        for part, pages in self._by_part().items():
            with_objectives = [p for p in pages if store.get(p.file, {}).get("objectives")]
            if with_objectives:
                out.append(nodes.rubric(text=part))
            for page in with_objectives:
                out.append(_link(self.app, self.env.docname, page.file, page.title))
                out += [n.deepcopy() for n in store[page.file]["objectives"]]
        return out

    def _prerequisites(self, options):
        store, out = _store(self.env), []
        parts = self._by_part()
        part_of = {p.file: part for part, pages in parts.items() for p in pages}
        for index, (part, pages) in enumerate(parts.items()):
            if index == 0:
                continue
            linked = sorted({part_of[t] for p in pages for t in store.get(p.file, {}).get("links", set())
                             if t in part_of and part_of[t] != part}, key=list(parts).index)
            before = list(parts)[1:index]
            out.append(nodes.rubric(text=part))
            text = (f"Builds on: {', '.join(linked)} (its pages link there)." if linked else
                    "Builds on: " + (", ".join(before) if before else "the introduction") + " (the parts before it).")
            out.append(nodes.paragraph(text=text))
            for page in pages:
                out += [n.deepcopy() for n in store.get(page.file, {}).get("prerequisites", [])]
        return out

    def _timings(self, options):
        runtimes, cpu, budget, rows = _runtimes(self.env), _cpu_times(self.env), _budget(self.app), []
        total = total_cpu = 0.0
        for page in self._pages():
            data = runtimes.get(page.file)
            runtime = data.get("runtime") if data else None
            cpu_s = cpu.get(page.file)
            charged = cpu_s if cpu_s is not None else runtime
            total += runtime or 0.0
            total_cpu += cpu_s or 0.0
            status = ("not executed in this build" if charged is None else
                      "✅ within budget" if charged <= budget else "❌ over budget")
            rows.append([page.part or "", _link(self.app, self.env.docname, page.file, page.title),
                         "–" if runtime is None else f"{runtime:.1f}", "–" if cpu_s is None else f"{cpu_s:.1f}",
                         status])
        rows.append(["", nodes.paragraph(text="whole book"), f"{total:.1f}", f"{total_cpu:.1f}", ""])
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
        note = nodes.paragraph(text=(
            f"Measured by this build of the book ({datetime.date.today().isoformat()}) on {os.cpu_count()} CPUs "
            f"({platform.machine()}, {platform.system()}), load average {load} at the end of execution. "
            f"Budget per page: {budget:.0f} s of the kernel's CPU time (wall time depends on what else the "
            f"machine is doing); the build fails above it."))
        return [note, _table(["part", "page", "wall seconds", "CPU seconds", "status"], rows)]

    def _syllabus(self, options):
        from postlib.exercises.guide import syllabus
        weeks = syllabus(self._pages(), options.get("weeks", 6))
        rows = []
        for number, pages in enumerate(weeks, 1):
            links = nodes.container()
            for page in pages:
                links += _link(self.app, self.env.docname, page.file, page.title)
            exercises = [e["exercise"] for p in pages for e in p.exercises]
            work = nodes.paragraph(text="; ".join(f"{ex.id} ({ex.stars}, {ex.points} pt)" for ex in exercises)
                                   or "reading only")
            hours = sum(p.load_minutes for p in pages) / 60
            rows.append([f"Week {number}", links, work, sum(ex.points for ex in exercises), f"{hours:.1f}"])
        return [_table(["week", "read", "assignment (exercise id, difficulty, points)", "points", "hours"], rows)]

    def _answer_keys(self, options):
        out = []
        for page in self._pages():
            if not page.exercises:
                continue
            section = nodes.section(ids=[f"key-{page.file.replace('/', '-')}"])
            section += nodes.title(text=page.title)
            section += _link(self.app, self.env.docname, page.file, f"{len(page.exercises)} exercises, "
                             f"{page.points} points, about {page.exercise_minutes} min")
            for entry in page.exercises:
                ex = entry["exercise"]
                section += nodes.paragraph(text=f"{ex.id} — {ex.title} ({ex.kind}; {ex.marks})")
                for code in entry["solutions"] or ["(no solution cell)"]:
                    section += nodes.literal_block(code, code, language="python")
            out.append(section)
        return out


def write_times(app, exception):
    """build-finished: record the measured times beside the site."""
    if exception is not None or app.config.postlib_edition == "student" or app.builder.format != "html":
        return
    runtimes = _runtimes(app.env)
    if not runtimes:
        return
    dest = Path(app.outdir) / "coursework" / "execution_times.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "budget_s": _budget(app),
        "pages": {d: {"runtime_s": e.get("runtime"), "cpu_s": _cpu_times(app.env).get(d),
                      "method": e.get("method"), "succeeded": e.get("succeeded")}
                  for d, e in sorted(runtimes.items())}}, indent=2))


def _add_static(app):
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("coursework.css")
    app.add_config_value("postlib_edition", "instructor", "env")
    app.add_config_value("coursework_page_budget_s", 120.0, "env", types=(int, float))
    app.add_node(coursework_placeholder)
    for kind in KINDS:
        app.add_directive(f"coursework-{kind}", CourseworkDirective)
    app.add_post_transform(CourseworkTransform)
    app.connect("source-read", start_cpu_clock)
    app.connect("doctree-read", stop_cpu_clock)
    app.connect("doctree-read", collect)
    app.connect("doctree-read", mark_exercises)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-updated", check_budget)
    app.connect("build-finished", write_times)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
