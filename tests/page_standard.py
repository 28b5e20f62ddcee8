"""The pages not yet converted to the page standard (numbered captions on every figure, figure-first
layout, prose in Markdown, listings through show_source; see CONTRIBUTING.md, "Chapters").

This list only shrinks. The page-standard tests (tests/test_notebooks.py, tests/test_book.py) hold every
other page to the standard — a new page is held to it from its first commit — and fail for a listed
page that already meets it, so that converting a page means deleting its line here.
"""
NOT_YET_CONVERTED: set[str] = set()      # every page is converted: keep it empty


def converted(page: str) -> bool:
    """``page`` as "chapters/<dir>/<name>" (no suffix)."""
    return page not in NOT_YET_CONVERTED
