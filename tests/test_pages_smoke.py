"""Every page of the book runs where its readers run it, checked without a GPU (issue 11, §1):

* ``gpu``: with the GPU size profile forced (POSTLIB_PROFILE=gpu) — its keys and shapes, Triton's
  interpreter standing in for the compiler;
* ``no-triton``: with ``import triton`` failing, as on macOS and Windows.

Both are smoke runs (POSTLIB_SMOKE=1: each profile's SMOKE counts, claims reported, not enforced), one
kernel per mode for all pages, so together they cost a few seconds per page; the book build
(tests/test_book.py) executes the real CPU profile. Locally: ``python -m postlib.book run --mode smoke``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from postlib.book.pages import toc_pages
from postlib.book.run import SMOKE_MODES, PageKernel

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.book, pytest.mark.slow]
TIMES = ROOT / "_build" / "smoke"
# A page's smoke run should take a few CPU seconds: more means its profile's SMOKE misses an expensive
# count (steps, repeats, draws, trials) — the two smoke modes must stay ~5 min of CPU for ~30 pages.
CPU_BUDGET_S = 15.0


@pytest.fixture(scope="module", params=SMOKE_MODES)
def kernel(request):
    pytest.importorskip("jupyter_client")
    pytest.importorskip("jupytext")
    results = []
    with PageKernel(request.param, ROOT) as k:
        k.results = results
        yield k
    TIMES.mkdir(parents=True, exist_ok=True)
    (TIMES / f"{request.param}.json").write_text(json.dumps(
        [{"page": r.page, "seconds": round(r.seconds, 2), "cpu_seconds": round(r.cpu_seconds, 2), "ok": r.ok,
          "claims": r.claims} for r in results], indent=1))


@pytest.mark.parametrize("page", toc_pages(ROOT))
def test_page_runs(kernel, page):
    cpu = kernel.cpu_seconds()
    result = kernel.run(page)
    result.cpu_seconds = kernel.cpu_seconds() - cpu
    kernel.results.append(result)
    assert result.ok, f"{page} fails in the {kernel.mode!r} smoke mode:\n{result.error}"
    assert result.cpu_seconds < CPU_BUDGET_S, (
        f"{page} took {result.cpu_seconds:.0f} s of CPU in the {kernel.mode!r} smoke mode (budget {CPU_BUDGET_S:.0f} s): "
        "add its expensive counts to its profile's SMOKE overrides (postlib/book/profiles/)")
