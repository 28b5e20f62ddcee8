"""Chapters as files: each MyST source has an output-free Colab notebook in sync with it, a first cell
generated from _config.yml's repository URL, learning objectives, exercises with hidden solutions, no
device or Triton special-casing of its own, and (once converted) the figure-first page standard."""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from postlib.book import PROFILES
from postlib.book.pages import (INSTALL_TAGS, install_cell, lint_page, page_profile, repository_url,
                                toc_pages)

from .page_standard import NOT_YET_CONVERTED, converted

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "chapters").rglob("*.md") if ".ipynb_checkpoints" not in p.parts)
NUMBERED = [p for p in CHAPTERS if p.parent.name[:2].isdigit()]


def _page(md: Path) -> str:
    return str(md.relative_to(ROOT).with_suffix(""))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


def test_there_are_chapters():
    assert NUMBERED, "no chapters found under chapters/<nn>_<family>/"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_pair_is_in_sync_and_output_free(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.relative_to(ROOT)} missing: run `make sync`"
    from_md = jupytext.read(md)
    from_nb = nbformat.read(ipynb, as_version=4)
    assert _cells(from_md) == _cells(from_nb), f"{md.relative_to(ROOT)} and its .ipynb differ: run `make sync`"
    for cell in from_nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{ipynb.relative_to(ROOT)} has outputs committed"
            assert cell.get("execution_count") is None


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_is_the_install_cell_generated_from_the_configured_repository(md):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code")
    profile = page_profile(md.read_text())
    assert first.source == install_cell(repository_url(ROOT), profile), (
        f"{md.name}: the first code cell must be the generated install cell: run `make sync`")
    assert first.metadata.get("tags") == INSTALL_TAGS
    if md in NUMBERED:
        assert profile in PROFILES, f"{md.name}: setup({profile!r}) names no profile in postlib/book/profiles/"


def test_the_repository_url_is_written_once():
    url = repository_url(ROOT)
    holders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
               if p.is_file() and p.suffix in {".md", ".py", ".yml", ".toml", ".cfg"} and ".git" not in p.parts
               and "_build" not in p.parts and ".venv" not in p.parts and "chapters" not in p.parts
               and url in p.read_text(errors="ignore")]
    assert holders == ["_config.yml"], f"the repository URL must live in _config.yml only, found in {holders}"


def test_the_install_cell_pip_line_installs_the_library_only():
    pip_line = install_cell("https://example.org/x/y", "baseline").split("pip", 1)[1].split("\n")[0]
    assert "torch" not in pip_line, "the install cell must not reinstall torch"
    assert "[book]" not in pip_line, "Colab needs the library, not the book-building toolchain"
    assert "git+https://example.org/x/y" in pip_line


@pytest.mark.parametrize("md", NUMBERED, ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_has_objectives_exercises_and_hidden_solutions(md):
    text = md.read_text()
    assert "Learning objectives" in text, f"{md.name}: no learning objectives"
    nb = jupytext.read(md)
    hidden = [c for c in nb.cells if "hide-cell" in c.metadata.get("tags", []) and "check_" in c.source]
    assert len(hidden) >= 1, f"{md.name}: exercises need hidden solutions that call their checkers"
    assert "{bibliography}" in text, f"{md.name}: no bibliography"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_meets_the_page_standard(md):
    """Every page: no device or Triton special-casing (setup() decides). Converted pages: no
    inspect.getsource, no prose built in code, figure cells hidden (figure first)."""
    problems = lint_page(md.read_text(), converted=converted(_page(md)))
    assert not problems, f"{md.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_not_yet_converted_pages_exist_and_the_list_only_names_chapters():
    pages = set(toc_pages(ROOT))
    assert NOT_YET_CONVERTED <= pages, f"stale entries in tests/page_standard.py: {NOT_YET_CONVERTED - pages}"
    assert "chapters/intro" not in NOT_YET_CONVERTED and "chapters/01_baseline/attention" not in NOT_YET_CONVERTED


def test_converted_pages_place_every_figure_through_glue_figure():
    """figure("name", ...) in code ↔ a {glue:figure} name directive in the Markdown, one for one."""
    for md in CHAPTERS:
        if not converted(_page(md)):
            continue
        text = md.read_text()
        made = set(re.findall(r"(?<![\w.])figure\(\s*[\"']([\w-]+)[\"']", text))
        placed = set(re.findall(r"^```\{glue:figure\}\s+([\w-]+)", text, flags=re.M))
        assert made == placed, f"{md.name}: figures made but not placed {made - placed}, placed but not made {placed - made}"
        for name in placed:
            block = text.split("```{glue:figure} " + name, 1)[1].split("\n```", 1)[0]
            assert f":name: fig-{name}" in block, f"{md.name}: give figure {name} the label fig-{name}"


def test_every_toc_file_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"_toc.yml names {f} but {f}.md does not exist"
    for part in toc.get("parts", []):
        if any(c["file"].startswith("chapters/") for c in part["chapters"]):
            assert part.get("numbered") == 1, f"part {part.get('caption')!r}: numbered: 1 (figures are numbered per chapter)"


def test_bibliography_has_no_raw_latex_math():
    """sphinxcontrib-bibtex prints $...$ in titles literally: write O(n²), not $O(n^2)$."""
    text = (ROOT / "references.bib").read_text()
    assert "$" not in text, [line.strip() for line in text.splitlines() if "$" in line]


def test_bibliography_parses_and_every_citation_has_an_entry():
    """A broken entry (an unclosed brace after a merge) otherwise shows only in the full book build."""
    import re

    from pybtex.database import parse_file

    keys = set(parse_file(str(ROOT / "references.bib"), bib_format="bibtex").entries)
    cited = set()
    for page in (ROOT / "chapters").rglob("*.md"):
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", page.read_text()):
            cited.update(key.strip() for key in group.split(","))
    assert cited - keys == set(), f"cited but not in references.bib: {sorted(cited - keys)}"


def test_figure_labels_are_unique_across_the_book():
    """Sphinx labels are global: two pages with ``:name: fig-try-it`` fail the build (--warningiserror)."""
    import collections
    import re

    owners = collections.defaultdict(set)
    for page in (ROOT / "chapters").rglob("*.md"):
        for label in re.findall(r"^:name:\s*(\S+)", page.read_text(), re.M):
            owners[label].add(page.relative_to(ROOT).as_posix())
    shared = {label: sorted(pages) for label, pages in owners.items() if len(pages) > 1}
    assert not shared, f"labels used on several pages (prefix them with the page's name): {shared}"
