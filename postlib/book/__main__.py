"""``python -m postlib.book sync | lint | run``: the chapter tools (see postlib.book.pages and .run)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .pages import chapter_pages, lint_page, repo_root, sync_pages, toc_pages
from .run import MODES, SMOKE_MODES, run_pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postlib.book", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sync", help="regenerate every page's install cell from _config.yml and re-pair its .ipynb")
    lint = sub.add_parser("lint", help="check pages against the page standard")
    lint.add_argument("pages", nargs="*", type=Path)
    run = sub.add_parser("run", help="execute pages as the book build does, or in the smoke modes")
    run.add_argument("pages", nargs="*", help="pages (default: every page of _toc.yml)")
    run.add_argument("--mode", choices=[*MODES, "smoke"], default="book",
                     help="book: as the build runs it; gpu / no-triton: the smoke modes; smoke: both")
    args = parser.parse_args(argv)
    root = repo_root()
    if args.command == "sync":
        for page in sync_pages(root):
            print(f"install cell regenerated: {page.relative_to(root)}")
        return 0
    if args.command == "lint":
        failed = 0
        for page in args.pages or chapter_pages(root):
            for problem in lint_page(Path(page).read_text()):
                print(f"{page}: {problem}")
                failed += 1
        return 1 if failed else 0
    modes = list(SMOKE_MODES) if args.mode == "smoke" else [args.mode]
    results = run_pages(args.pages or toc_pages(root), modes, root)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
