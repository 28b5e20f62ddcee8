"""The two editions from one source: tags, the committed student notebooks, and no solution leaks."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from postlib.exercises import all_exercises
from postlib.exercises.editions import (EXERCISE_TAG, SOLUTION_TAG, answer_key, exercise_calls, read_page,
                                        solution_lines, stale_student_notebooks, student_book_source, tags,
                                        toc_pages)
from postlib.exercises.guide import course_pages, over_budget, syllabus

ROOT = Path(__file__).resolve().parents[2]
PAGES = [p for p in toc_pages(ROOT) if p.get("path") is not None and p["path"].suffix == ".md"]
CHAPTERS = [p["path"] for p in PAGES if not p["file"].startswith("instructor/")]


def _ids(p):
    return str(p.relative_to(ROOT))


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids)
def test_exercise_and_solution_cells_are_tagged(md):
    """A solution is tagged `solution` and folded (`hide-cell`); a learner cell that calls a checker is
    tagged `exercise`; every exercise cell calls a registered checker."""
    registry = all_exercises()
    for cell in read_page(md).cells:
        if cell.cell_type != "code":
            continue
        t, calls = tags(cell), exercise_calls(cell.source, registry)
        where = f"{md.name}: cell starting {cell.source.strip()[:50]!r}"
        if SOLUTION_TAG in t:
            assert "hide-cell" in t, f"{where}: a solution cell is also tagged hide-cell (folded in the book)"
        elif calls and not any(re.search(rf"\b{registry[i].name}\s*\.reveal\(", cell.source) for i in calls):
            assert EXERCISE_TAG in t, f"{where}: calls a checker, so it is a learner cell: tag it `exercise`"
            assert "hide-cell" not in t and "assert " not in cell.source, (
                f"{where}: a folded or asserting checker call is a solution: tag it `solution`")
        if EXERCISE_TAG in t:
            assert calls, f"{where}: tagged exercise but calls no registered checker"


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids)
def test_every_exercise_has_a_solution_in_the_book(md):
    for entry in answer_key(md):
        assert entry["solutions"], f"{md.name}: {entry['exercise'].id} has no solution cell"


def test_every_registered_exercise_is_asked_by_a_chapter():
    asked = {e["exercise"].id for md in CHAPTERS for e in answer_key(md)}
    missing = sorted(set(all_exercises()) - asked)
    assert not missing, f"checkers that no chapter uses: {missing}"


def test_student_notebooks_are_committed_and_in_sync():
    stale = stale_student_notebooks(ROOT)
    assert not stale, f"run `python -m postlib.exercises student` and commit: {stale}"


@pytest.mark.parametrize("md", CHAPTERS, ids=_ids)
def test_no_solution_text_in_the_student_notebook(md):
    nb = read_page(md)
    student = ROOT / "student" / md.relative_to(ROOT).with_suffix(".ipynb")
    text = student.read_text()
    if answer_key(md):
        assert solution_lines(nb), f"{md.name}: no solution lines found (is the `solution` tag used?)"
    assert not [line for line in solution_lines(nb) if line not in md.read_text()]     # the probe itself works
    leaked = [line for line in solution_lines(nb) if line in text]
    assert not leaked, f"{student.relative_to(ROOT)} contains solution lines: {leaked[:3]}"
    notebook = nbformat.reads(text, as_version=4)
    assert not any(SOLUTION_TAG in tags(c) for c in notebook.cells)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    registry = all_exercises()
    assert notebook.metadata["postlib"]["exercises"] == [e["exercise"].id for e in answer_key(md, registry)]


def test_student_book_source_drops_solutions_and_instructor_pages(tmp_path):
    """The student book's sources, laid out from (here: unexecuted) notebooks: no solution line anywhere,
    execution off, Colab buttons on student/, no instructor part."""
    import yaml
    executed = tmp_path / "executed"
    for page in PAGES:
        nb = read_page(page["path"])
        if any(c.cell_type == "code" for c in nb.cells):
            dest = executed / f"{page['file']}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, dest)
    out = student_book_source(ROOT, executed, tmp_path / "student")
    config = yaml.safe_load((out / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["repository"]["path_to_book"] == "student"
    assert "instructor" not in (out / "_toc.yml").read_text()
    everything = "\n".join(p.read_text() for p in (out / "chapters").rglob("*") if p.is_file())
    for md in CHAPTERS:
        leaked = [line for line in solution_lines(read_page(md)) if line in everything]
        assert not leaked, f"{md.name}: {leaked[:3]}"


def test_student_book_source_refuses_stale_executions(tmp_path):
    from postlib.exercises.editions import StaleBuild
    page = next(p for p in PAGES if p["file"].startswith("chapters/0"))
    nb = read_page(page["path"])
    nb.cells[1].source += "\n# edited after the build"
    dest = tmp_path / "executed" / f"{page['file']}.ipynb"
    dest.parent.mkdir(parents=True)
    nbformat.write(nb, dest)
    with pytest.raises(StaleBuild, match="make book"):
        student_book_source(ROOT, tmp_path / "executed", tmp_path / "student")


def test_syllabus_splits_reading_order_into_even_weeks():
    pages = course_pages(ROOT, words={p["file"]: 2400 for p in PAGES})
    weeks = syllabus(pages, 6)
    assert len(weeks) == min(6, len([p for p in pages if p.part]))
    assert [p.file for w in weeks for p in w] == [p.file for p in pages if p.part]     # order kept, none lost
    loads = [sum(p.load_minutes for p in w) for w in weeks]
    biggest = max(p.load_minutes for p in pages)
    assert max(loads) <= max(biggest, sum(loads) / len(loads)) * 2


def test_budget_fails_the_build_for_a_slow_page(monkeypatch):
    sys.path.insert(0, str(ROOT / "_ext"))
    import coursework
    from myst_nb.sphinx_ import NbMetadataCollector
    from sphinx.errors import ExtensionError
    assert over_budget({"a": 10.0, "b": 130.0, "c": None}, 120) == [("b", 130.0)]
    env = SimpleNamespace(get_domain=lambda name: SimpleNamespace(data={}))
    NbMetadataCollector.set_exec_data(env, "chapters/slow", {"runtime": 150.0, "method": "force", "succeeded": True})
    NbMetadataCollector.set_exec_data(env, "chapters/quick", {"runtime": 20.0, "method": "force", "succeeded": True})
    app = SimpleNamespace(config=SimpleNamespace(postlib_edition="instructor", coursework_page_budget_s=120))
    monkeypatch.delenv("POSTLIB_PAGE_BUDGET_S", raising=False)
    with pytest.raises(ExtensionError, match=r"chapters/slow \(150 CPU s\)"):   # no CPU time known: wall time
        coursework.check_budget(app, env)
    # With the kernel's CPU time measured, that is what is charged: a page slow only because the machine
    # was busy passes, and a page whose own work is over budget fails.
    env.postlib_coursework = {"_cpu": {"chapters/slow": 60.0, "chapters/quick": 130.0}}
    with pytest.raises(ExtensionError, match=r"chapters/quick \(130 CPU s\)") as failure:
        coursework.check_budget(app, env)
    assert "chapters/slow" not in str(failure.value)
    monkeypatch.setenv("POSTLIB_PAGE_BUDGET_S", "200")
    assert coursework.check_budget(app, env) == []
    app.config.postlib_edition = "student"
    monkeypatch.setenv("POSTLIB_PAGE_BUDGET_S", "1")
    assert coursework.check_budget(app, env) == []
