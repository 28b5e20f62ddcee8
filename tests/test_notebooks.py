"""Chapters: each MyST source has an output-free Colab notebook in sync with
it, an install cell that names the repository in _config.yml, learning
objectives, and exercises with hidden solutions."""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "chapters").rglob("*.md") if ".ipynb_checkpoints" not in p.parts)
NUMBERED = [p for p in CHAPTERS if p.parent.name[:2].isdigit()]


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


def test_there_are_chapters():
    assert NUMBERED, "no chapters found under chapters/<nn>_<family>/"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_pair_is_in_sync_and_output_free(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.relative_to(ROOT)} missing: run `jupytext --sync {md.relative_to(ROOT)}`"
    from_md = jupytext.read(md)
    from_nb = nbformat.read(ipynb, as_version=4)
    assert _cells(from_md) == _cells(from_nb), (
        f"{md.relative_to(ROOT)} and its .ipynb differ: run `jupytext --sync {md.relative_to(ROOT)}`")
    for cell in from_nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{ipynb.relative_to(ROOT)} has outputs committed"
            assert cell.get("execution_count") is None


@pytest.mark.parametrize("md", NUMBERED, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_installs_postlib_on_colab_from_the_configured_repository(md):
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert "google.colab" in first and repo in first, f"{md.name}: first cell must install from {repo} on Colab"
    pip_line = first.split("pip", 1)[1].split("\n")[0]
    assert "torch" not in pip_line, "the install cell must not reinstall torch"
    assert "[book]" not in pip_line, "Colab needs the library, not the book-building toolchain (sphinx, jupyter-book)"
    assert "from postlib.book import setup" in first


@pytest.mark.parametrize("md", NUMBERED, ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_has_objectives_exercises_and_hidden_solutions(md):
    text = md.read_text()
    assert "Learning objectives" in text, f"{md.name}: no learning objectives"
    nb = jupytext.read(md)
    hidden = [c for c in nb.cells if "hide-cell" in c.metadata.get("tags", []) and "check_" in c.source]
    assert len(hidden) >= 1, f"{md.name}: exercises need hidden solutions that call their checkers"
    assert "{bibliography}" in text, f"{md.name}: no bibliography"


def test_every_toc_file_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"_toc.yml names {f} but {f}.md does not exist"
