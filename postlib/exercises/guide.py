"""What the instructor guide collects from the book, as plain data (the Sphinx side is ``_ext/coursework.py``).

Nothing here is typed per chapter: the pages come from ``_toc.yml``, the exercises and their marks
from the checker calls in each page, the reading time from the page's text, the execution time from
the book build. A new part appears in the guide, the syllabus and the answer keys as soon as it is in
the table of contents.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .editions import INSTRUCTOR_DIR, answer_key, toc_pages

__all__ = ["Page", "course_pages", "syllabus", "over_budget", "WORDS_PER_MINUTE", "DEFAULT_PAGE_BUDGET_S"]

WORDS_PER_MINUTE = 120          # technical reading, with the code and figures
DEFAULT_PAGE_BUDGET_S = 120.0   # a page must execute within this on a 2-core CPU


@dataclass
class Page:
    file: str
    part: str | None
    title: str = ""
    exercises: list[dict] = field(default_factory=list)    # answer_key() entries
    reading_minutes: float = 0.0

    @property
    def exercise_minutes(self) -> int:
        return sum(e["exercise"].minutes for e in self.exercises)

    @property
    def points(self) -> int:
        return sum(e["exercise"].points for e in self.exercises)

    @property
    def load_minutes(self) -> float:
        return self.reading_minutes + self.exercise_minutes


def course_pages(root: Path, words: dict[str, int] | None = None, titles: dict[str, str] | None = None) -> list[Page]:
    """Every page a learner reads (not the instructor pages), with its exercises and reading time."""
    pages = []
    for entry in toc_pages(root):
        file = entry["file"]
        if file.startswith(INSTRUCTOR_DIR + "/") or entry.get("path") is None:
            continue
        page = Page(file, entry["part"], (titles or {}).get(file, file))
        if entry["path"].suffix == ".md":
            page.exercises = answer_key(entry["path"])
        page.reading_minutes = (words or {}).get(file, 0) / WORDS_PER_MINUTE
        pages.append(page)
    return pages


def syllabus(pages: list[Page], weeks: int = 6) -> list[list[Page]]:
    """Split the pages, in reading order, into ``weeks`` contiguous groups with the most even load
    (reading + exercise minutes): the classic linear partition, by dynamic programming."""
    pages = [p for p in pages if p.part is not None] or pages
    n = len(pages)
    weeks = max(1, min(weeks, n))
    load = [p.load_minutes for p in pages]
    prefix = [0.0]
    for x in load:
        prefix.append(prefix[-1] + x)
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(weeks + 1)]       # best[k][i]: max week load, first i pages in k weeks
    cut = [[0] * (n + 1) for _ in range(weeks + 1)]
    best[0][0] = 0.0
    for k in range(1, weeks + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                cost = max(best[k - 1][j], prefix[i] - prefix[j])
                if cost < best[k][i]:
                    best[k][i], cut[k][i] = cost, j
    groups, i = [], n
    for k in range(weeks, 0, -1):
        j = cut[k][i]
        groups.append(pages[j:i])
        i = j
    return groups[::-1]


def over_budget(runtimes: dict[str, float | None], budget_s: float) -> list[tuple[str, float]]:
    """Pages whose measured execution time exceeds the budget."""
    return sorted((doc, t) for doc, t in runtimes.items() if t is not None and t > budget_s)
