"""Two editions from one source: the student edition drops every cell tagged ``solution``.

* **Student notebooks** (for Colab and Jupyter): ``student/<page>.ipynb``, output-free, generated from
  ``<page>.md`` and committed, because Colab opens notebooks only from a repository; the student
  book's Colab buttons point there (``repository.path_to_book: student``). ``tests/exercises``
  fails when they are out of date: run ``python -m postlib.exercises student``.
* **Student book** (HTML): rendered from the notebooks the instructor build already executed
  (``_build/jupyter_execute``), minus the solution cells, with execution off — nothing runs twice.
* **Instructor edition**: the book itself (``make book``): solutions folded (``hide-cell``), the
  instructor guide and the answer keys (pages under ``instructor/``, left out of the student book).

The grader and the answer keys find exercises the same way: a cell calls a registered checker by name.
"""
from __future__ import annotations

import copy
import functools
import re
import shutil
from pathlib import Path

import yaml

__all__ = ["SOLUTION_TAG", "EXERCISE_TAG", "toc_pages", "exercise_calls", "student_notebook", "write_student_notebooks",
           "stale_student_notebooks", "student_book_source", "answer_key", "solution_lines", "StaleBuild"]

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
INSTRUCTOR_DIR = "instructor"
STUDENT_DIR = "student"
_EXERCISE_NAME = re.compile(r"\b((?:check|predict)_\w+)\s*[(.]")       # a call, not an import


class StaleBuild(RuntimeError):
    """The executed notebooks do not match the sources: build the book first (``make book``)."""


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_solution(cell) -> bool:
    return SOLUTION_TAG in tags(cell)


def toc_pages(root: Path) -> list[dict]:
    """Every page of ``_toc.yml`` in reading order: {"file", "part", "path" (the source file)}."""
    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [{"file": toc["root"], "part": None}]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            for entry in [chapter, *chapter.get("sections", [])]:
                pages.append({"file": entry["file"], "part": part.get("caption")})
    for page in pages:
        for suffix in (".md", ".ipynb"):
            if (root / f"{page['file']}{suffix}").exists():
                page["path"] = root / f"{page['file']}{suffix}"
                break
    return pages


def read_page(path: Path):
    """The page as a notebook (a fresh copy; parsed once per file version)."""
    path = Path(path)
    return copy.deepcopy(_parse(path.resolve(), path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=64)
def _parse(path: Path, mtime_ns: int):
    import jupytext
    return jupytext.read(path)


def exercise_calls(source: str, registry: dict | None = None) -> list[str]:
    """Ids of the registered exercises whose checker ``source`` calls, in order of first call."""
    from .core import all_exercises
    by_name = {e.name: e.id for e in (registry or all_exercises()).values()}
    ids = []
    for name in _EXERCISE_NAME.findall(source):
        if name in by_name and by_name[name] not in ids:
            ids.append(by_name[name])
    return ids


def notebook_exercises(nb) -> list[str]:
    """The exercises a notebook asks for: those its non-solution code cells call, in order."""
    ids: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_solution(cell):
            ids += [i for i in exercise_calls(cell.source) if i not in ids]
    return ids


def student_notebook(nb, keep_outputs: bool = False):
    """A copy of ``nb`` without its solution cells; output-free unless ``keep_outputs``. The notebook's
    metadata lists the exercises it asks for (the grader's list when a learner deletes a cell)."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_solution(c)]
    for cell in out.cells:
        if cell.cell_type == "code" and not keep_outputs:
            cell.outputs, cell.execution_count = [], None
    out.metadata.pop("source_map", None)
    out.metadata.get("jupytext", {}).pop("formats", None)      # a student notebook has no .md pair
    out.metadata["postlib"] = {"edition": "student", "exercises": notebook_exercises(out)}
    return out


def _notebook_text(nb) -> str:
    import nbformat
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"            # stable ids: regenerating gives the same file
    return nbformat.writes(nb) + "\n"


def _student_pages(root: Path):
    for page in toc_pages(root):
        path = page.get("path")
        if path is not None and not page["file"].startswith(INSTRUCTOR_DIR + "/") and path.suffix == ".md":
            nb = read_page(path)
            if any(c.cell_type == "code" for c in nb.cells):
                yield page["file"], student_notebook(nb)


def write_student_notebooks(root: Path, out: str = STUDENT_DIR) -> list[Path]:
    """Write ``<out>/<page>.ipynb`` for every notebook page; returns the files written."""
    root = Path(root)
    written = []
    for file, nb in _student_pages(root):
        dest = root / out / f"{file}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = _notebook_text(nb)
        if not dest.exists() or dest.read_text() != text:
            dest.write_text(text)
            written.append(dest)
    return written


def stale_student_notebooks(root: Path, out: str = STUDENT_DIR) -> list[str]:
    """Student notebooks missing, out of date, or left over from a removed page."""
    root = Path(root)
    expected = {}
    for file, nb in _student_pages(root):
        expected[root / out / f"{file}.ipynb"] = _notebook_text(nb)
    stale = [str(p.relative_to(root)) for p, text in expected.items() if not p.exists() or p.read_text() != text]
    stale += [str(p.relative_to(root)) for p in (root / out).rglob("*.ipynb") if p not in expected]
    return stale


def solution_lines(nb, min_length: int = 12) -> set[str]:
    """Lines that only the solution cells of ``nb`` contain: the probe for leaks into a student edition."""
    solution = {line.strip() for c in nb.cells if is_solution(c) for line in c.source.splitlines()}
    elsewhere = {line.strip() for c in nb.cells if not is_solution(c) for line in c.source.splitlines()}
    return {line for line in solution - elsewhere if len(line) >= min_length and not line.startswith("#")}


def _code(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def student_book_source(root: Path, executed: Path, dest: Path) -> Path:
    """Lay out the student book's sources in ``dest``: the executed notebooks minus solution cells, the
    plain pages, and the book's configuration with execution off and Colab buttons on ``student/``."""
    import nbformat
    root, executed, dest = Path(root), Path(executed), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["title"] = f"{config.get('title', '')} (student edition)"
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    config.setdefault("repository", {})["path_to_book"] = STUDENT_DIR
    config["exclude_patterns"] = [p for p in config.get("exclude_patterns", []) if not p.endswith(".ipynb")]
    config.setdefault("sphinx", {}).setdefault("config", {})["postlib_edition"] = "student"
    (dest / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    toc["parts"] = [p for p in toc.get("parts", [])
                    if not all(c["file"].startswith(INSTRUCTOR_DIR + "/") for c in p.get("chapters", []))]
    (dest / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    for extra in ("references.bib", "_static", "_ext"):
        src = root / extra
        if src.is_dir():
            shutil.copytree(src, dest / extra, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, dest / extra)
    for page in toc_pages(dest):
        file = page["file"]
        source = root / f"{file}.md"
        nb_path = executed / f"{file}.ipynb"
        target = dest / f"{file}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        if nb_path.exists():
            ran = nbformat.read(nb_path, as_version=4)
            if source.exists() and _code(read_page(source)) != _code(ran):
                raise StaleBuild(f"{nb_path} was executed from an older {source.name}: run `make book` first")
            student = student_notebook(ran, keep_outputs=True)
            _restore_glue(student, executed / f"{file}.glue.json")
            nbformat.write(student, target)
        elif source.exists():
            nb = read_page(source)
            if any(c.cell_type == "code" for c in nb.cells):
                raise StaleBuild(f"{file} has code but no executed notebook in {executed}: run `make book` first")
            shutil.copy(source, dest / f"{file}.md")
            target.unlink(missing_ok=True)
        else:
            raise StaleBuild(f"_toc.yml names {file}, which has no source")
    return dest


def _restore_glue(nb, glue_file: Path) -> None:
    """myst-nb moves the values a page glued (figures, numbers: ``postlib.book.figure``/``glue``) out of
    the executed notebook into ``<page>.glue.json``; put them back, in a removed cell, so the student book
    (execution off) can paste them."""
    import json

    import nbformat
    if not glue_file.exists():
        return
    outputs = []
    for output in json.loads(glue_file.read_text()).values():
        prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
        output["data"] = {prefix + mime: value for mime, value in output.get("data", {}).items()}
        outputs.append(nbformat.from_dict(output))
    nb.cells.append(nbformat.v4.new_code_cell("", metadata={"tags": ["remove-cell"]}, outputs=outputs))


def answer_key(path: Path, registry: dict | None = None) -> list[dict]:
    """A chapter's answer key: for each exercise, its marks and the solution cells that answer it."""
    from .core import all_exercises
    registry = registry or all_exercises()
    nb = read_page(Path(path))
    entries: dict[str, dict] = {}
    current: str | None = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        ids = exercise_calls(cell.source, registry)
        if is_solution(cell):
            target = ids[0] if ids else current
            if target is not None:
                entries.setdefault(target, {"exercise": registry[target], "solutions": []})["solutions"].append(
                    cell.source.strip())
        elif ids and EXERCISE_TAG in tags(cell):
            current = ids[-1]
            for i in ids:
                entries.setdefault(i, {"exercise": registry[i], "solutions": []})
    return list(entries.values())


def exercise_section(nb, heading: str = "Exercises") -> list:
    """The cells of the chapter's "## Exercises" section (from its heading to the next ``## `` heading)."""
    start = end = None
    for i, cell in enumerate(nb.cells):
        lines = cell.source.splitlines() if cell.cell_type == "markdown" else []
        if start is None and any(line.strip() == f"## {heading}" for line in lines):
            start = i
        elif start is not None and any(line.startswith("## ") for line in lines):
            end = i
            break
    return [] if start is None else nb.cells[start:end]
