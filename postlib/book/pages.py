"""The chapter pages as files: their list, the generated install cell, and the page standard.

The repository URL is written once, in ``_config.yml`` (``repository.url``). Every page's first code
cell is generated from ``INSTALL_CELL`` with it (``make sync`` / ``python -m postlib.book sync``), so
publishing the book under another address changes one line. ``tests/test_notebooks.py`` fails when a
page's first cell differs from the generated one.
"""
from __future__ import annotations

import re
from pathlib import Path

INSTALL_TAGS = ["hide-input"]
INSTALL_CELL = '''\
# On Colab: install postlib from this book's repository (Colab's own torch is kept).
import sys
if "google.colab" in sys.modules:
    %pip install -q "postlib @ git+{url}"
from postlib.book import claim, figure, glue, setup, show_source
sizes = setup({profile})'''

_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?P<body>.*?)^```[ \t]*$\n?", re.S | re.M)
_SETUP = re.compile(r"\bsetup\(\s*(?:[\"'](?P<profile>[\w-]+)[\"'])?\s*\)")


def repo_root(start: Path | None = None) -> Path:
    """The book's root: the first folder upwards (from ``start``, else the working directory, else
    this package) that holds ``_config.yml``."""
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates.append(Path(__file__).resolve().parent.parent.parent)
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "_config.yml").exists() and (folder / "chapters").is_dir():
                return folder
    raise FileNotFoundError("no _config.yml with a chapters/ folder above the working directory")


def repository_url(root: Path | None = None) -> str:
    """``repository.url`` from ``_config.yml``: the one place the book's address is written."""
    import yaml
    root = root or repo_root()
    url = (yaml.safe_load((root / "_config.yml").read_text()).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{root / '_config.yml'} has no repository.url")
    return url.rstrip("/")


def chapter_pages(root: Path | None = None) -> list[Path]:
    """Every MyST page under chapters/ (the intro included), in file order."""
    root = root or repo_root()
    return sorted(p for p in (root / "chapters").rglob("*.md") if ".ipynb_checkpoints" not in p.parts)


def toc_pages(root: Path | None = None) -> list[str]:
    """The pages of ``_toc.yml`` in reading order, as paths without suffix ("chapters/intro", ...)."""
    import yaml
    root = root or repo_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def install_cell(url: str, profile: str | None) -> str:
    """The first code cell of a page using ``profile`` (None: a page without sizes, like the intro)."""
    return INSTALL_CELL.format(url=url, profile=f'"{profile}"' if profile else "")


def _cell_markdown(source: str) -> str:
    return "```{code-cell} ipython3\n:tags: [" + ", ".join(INSTALL_TAGS) + "]\n\n" + source + "\n```\n"


def page_profile(text: str) -> str | None:
    """The profile named by the page's ``setup(...)`` call in its first code cell (None if none)."""
    match = _CELL.search(text)
    found = _SETUP.search(match.group("body")) if match else None
    return found.group("profile") if found else None


def render_install_cell(text: str, url: str) -> str:
    """``text`` (a MyST page) with its first code cell replaced by the generated install cell, or the
    cell inserted before the first code cell when the page has none yet."""
    match = _CELL.search(text)
    if match is None:
        raise ValueError("the page has no code cell to put the install cell before")
    body = match.group("body")
    is_install = "postlib.book import" in body and _SETUP.search(body)
    cell = _cell_markdown(install_cell(url, page_profile(text) if is_install else None))
    if is_install:
        return text[:match.start()] + cell + text[match.end():]
    return text[:match.start()] + cell + "\n" + text[match.start():]


def sync_pages(root: Path | None = None, pages: list[Path] | None = None, pair: bool = True) -> list[Path]:
    """Regenerate every page's install cell from ``_config.yml`` and re-pair its ``.ipynb``.
    Returns the pages whose Markdown changed."""
    root = root or repo_root()
    url = repository_url(root)
    changed = []
    for page in pages or chapter_pages(root):
        text = page.read_text()
        new = render_install_cell(text, url)
        if new != text:
            page.write_text(new)
            changed.append(page)
    if pair:
        from jupytext.cli import jupytext as jupytext_cli
        for page in pages or chapter_pages(root):
            jupytext_cli(["--sync", "--quiet", str(page)])
    return changed


# The page standard, checked on the source (tests/test_notebooks.py). Every page, converted or not:
DEVICE_RULES = {
    "TRITON_INTERPRET": "setup() decides how Triton runs; a page never sets TRITON_INTERPRET",
    "torch.cuda.is_available": "use sizes.device (where tensors live) or sizes.kind (which sizes)",
    ".cuda()": "create tensors with device=sizes.device instead of moving them with .cuda()",
}
# Figure-first pages (every page once converted):
LAYOUT_RULES = {
    "getsource": "show code with show_source(obj), not inspect.getsource",
    "Markdown(": "write prose in Markdown and quote computed numbers with glue()/{glue:text}",
}


def code_cells(text: str) -> list[tuple[list[str], str]]:
    """(tags, source) of every code cell of a MyST page."""
    cells = []
    for match in _CELL.finditer(text):
        body = match.group("body")
        tags: list[str] = []
        lines = body.split("\n")
        if lines and lines[0].strip() == "---":  # YAML options block
            end = lines.index("---", 1)
            options, lines = lines[1:end], lines[end + 1:]
            for line in options:
                if line.startswith("tags:"):
                    tags = re.findall(r"[\w-]+", line[len("tags:"):])
        else:
            while lines and lines[0].startswith(":"):
                key, _, value = lines.pop(0)[1:].partition(":")
                if key.strip() == "tags":
                    tags = re.findall(r"[\w-]+", value)
        cells.append((tags, "\n".join(lines).strip("\n")))
    return cells


def lint_page(text: str, converted: bool = True) -> list[str]:
    """Problems with a page's code cells against the page standard (empty when it meets it)."""
    problems = []
    rules = dict(DEVICE_RULES, **(LAYOUT_RULES if converted else {}))
    for index, (tags, source) in enumerate(code_cells(text), start=1):
        for needle, why in rules.items():
            if needle in source:
                problems.append(f"code cell {index}: {needle!r}: {why}")
        if converted and re.search(r"(?<![\w.])figure\(", source) and not {"hide-input", "remove-input"} & set(tags):
            problems.append(f"code cell {index}: a figure cell is plumbing: tag it hide-input (figure first, code "
                            "one click away)")
    return problems
