"""Both editions of a small book built offline, exactly as `make book` and `make student` do.

A two-page book (one chapter with an exercise, a number question and a choice question, plus the
real instructor pages) is built with execution; then the student edition is laid out from the
executed notebooks and built with execution off. Checks: the guide collects objectives, measured
times, a syllabus and the answer key; no solution text reaches the student HTML or its sources; the
student Colab button opens the committed student notebook path.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from postlib.exercises.editions import read_page, solution_lines, student_book_source

ROOT = Path(__file__).resolve().parents[2]
JB = Path(sys.executable).parent / "jupyter-book"
pytestmark = [pytest.mark.slow, pytest.mark.book, pytest.mark.skipif(not JB.exists(), reason="jupyter-book not installed")]

SOLUTION_MARK = "kv_solution_marker_7d1"       # appears only in solution cells
CHAPTER = f'''---
jupytext:
  formats: md:myst
  text_representation: {{extension: .md, format_name: myst, format_version: 0.13}}
kernelspec: {{display_name: Python 3, language: python, name: python3}}
---

# A tiny chapter

:::{{admonition}} Learning objectives
:class: tip
1. count the $O(L^2)$ FLOPs of attention by hand {{cite}}`vaswani2017attention`.
:::

```{{code-cell}} ipython3
print("chapter body runs")
```

## Exercises

```{{code-cell}} ipython3
:tags: [exercise]

from postlib.exercises.baseline import check_attention_flops, check_kv_cache_gib

def my_attention_flops(length, head_dim):
    raise NotImplementedError

check_attention_flops(my_attention_flops);
```

```{{code-cell}} ipython3
:tags: [solution, hide-cell]

def my_attention_flops(length, head_dim):
    {SOLUTION_MARK} = 4 * length * length * head_dim
    return {SOLUTION_MARK}

assert check_attention_flops(my_attention_flops)
```

```{{code-cell}} ipython3
:tags: [exercise]

kv_cache_gib = ...

check_kv_cache_gib(kv_cache_gib);
```

```{{code-cell}} ipython3
:tags: [solution, hide-cell]

kv_cache_gib = 4.0   # {SOLUTION_MARK}
assert check_kv_cache_gib(kv_cache_gib)
```

## References

```{{bibliography}}
:filter: docname in docnames
```
'''
TOC = """format: jb-book
root: chapters/intro
parts:
  - caption: Tiny
    chapters:
      - file: chapters/01_tiny/tiny
  - caption: For instructors
    chapters:
      - file: instructor/guide
      - file: instructor/answer_keys
"""


def _build(src: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(JB), "build", str(src), "--all", "--warningiserror", "--keep-going"], cwd=src,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    src = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, src / name)
    for name in ("_ext", "_static", "instructor"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "_toc.yml").write_text(TOC)
    (src / "chapters" / "01_tiny").mkdir(parents=True)
    (src / "chapters" / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    (src / "chapters" / "01_tiny" / "tiny.md").write_text(CHAPTER)
    env = dict(os.environ, POSTLIB_BOOK_BUILD="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = _build(src, env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    student = student_book_source(src, src / "_build" / "jupyter_execute", src / "_build" / "student")
    proc = _build(student, env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return src / "_build" / "html", student / "_build" / "html", src


def _text(path: Path, joiner: str = " ") -> str:
    return unescape(re.sub(r"<[^>]+>", joiner, path.read_text()))


def test_instructor_edition_has_folded_solutions_and_the_guide(books):
    html, _, _ = books
    page = (html / "chapters" / "01_tiny" / "tiny.html").read_text()
    assert SOLUTION_MARK in page and "tag_solution" in page
    assert "★ · about 5 min · 1 point" in unescape(page)           # marks shown beside the exercise
    assert re.search(r"postlib-exercise-marks.{0,200}attention FLOPs", page, re.S)      # above the cell, before running
    guide = _text(html / "instructor" / "guide.html")
    assert "FLOPs of attention by hand" in guide                       # collected objectives (math kept)
    assert "vaswani2017attention" not in guide and "mathjax" in (html / "instructor" / "guide.html").read_text()
    assert re.search(r"A tiny chapter\s+\d+\.\d\s+\d+\.\d\s+✅ within budget", guide), guide[-3000:]
    assert "Week 1" in guide and "baseline.attention_flops" in guide   # syllabus with the assignment
    keys = _text(html / "instructor" / "answer_keys.html")
    assert "baseline.kv_cache_gib" in keys and SOLUTION_MARK in keys
    times = json.loads((html / "coursework" / "execution_times.json").read_text())
    assert times["pages"]["chapters/01_tiny/tiny"]["cpu_s"] > 0          # the kernel's CPU time, charged by the budget


def test_student_edition_has_no_solution_text_anywhere(books):
    _, html, _ = books
    assert (html / "chapters" / "01_tiny" / "tiny.html").exists()
    assert not (html / "instructor").exists()
    leaks = [str(p.relative_to(html)) for p in html.rglob("*") if p.is_file()
             and p.suffix in (".html", ".js", ".ipynb", ".txt", ".md", ".json") and SOLUTION_MARK in p.read_text(errors="ignore")]
    assert not leaks, f"solution text in the student edition: {leaks}"
    page = (html / "chapters" / "01_tiny" / "tiny.html").read_text()
    assert "chapter body runs" in page and "postlib-exercise-marks" in page
    source = books[2] / "chapters" / "01_tiny" / "tiny.md"
    lines = solution_lines(read_page(source), min_length=8)
    assert "return kv_solution_marker_7d1" in lines
    visible = _text(html / "chapters" / "01_tiny" / "tiny.html", "")       # highlighted code: <span>s removed
    assert not [line for line in lines if line in visible]
    instructor = _text(books[0] / "chapters" / "01_tiny" / "tiny.html", "")
    assert all(line in instructor for line in lines)          # the same probe finds them where they belong
    assert "colab.research.google.com/github/" in page and "/blob/main/student/chapters/01_tiny/tiny.ipynb" in page
