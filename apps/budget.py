"""The dashboard's memory budget: refuse before allocating, and give memory back after a large run.

Every page that computes something whose size a reader chooses (a length, a
width, a number of features) checks it here first::

    refusal = budget_refusal("the 4096 × 4096 attention map", map_bytes(4096))
    if refusal:
        show(refusal)        # a visible sentence; nothing was allocated
    else:
        compute()

The rule (tested at the edge in ``tests/apps/test_budget.py``): a computation
may run only when its estimate is **strictly below** the budget. An estimate
exactly equal to the budget is refused, and so is an unknown estimate
(``None``, as ``postlib.bench.estimate_bytes`` returns for a mixer that
defines no ``memory_estimate``): the budget is a limit the server never
reaches, not a target.

The budget is a share of the memory available when the check runs, capped,
because the server is shared by every open session. After a large run,
:func:`release_memory` returns freed memory to the operating system: CPython
and PyTorch free into glibc's heaps, which keep the pages (a Scaling run with
memory profiling left the server at 3.7 GiB resident until ``malloc_trim``
brought it back to 0.4 GiB).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import functools

import psutil

GIB = 1024 ** 3
# A request may use at most this share of the memory available when it checks,
# and never more than the cap: the server is shared by every open session.
BUDGET_FRACTION = 0.25
BUDGET_CAP_BYTES = 4 * GIB


def memory_budget_bytes(fraction: float = BUDGET_FRACTION, cap_bytes: int = BUDGET_CAP_BYTES) -> int:
    """The bytes one request may use: ``fraction`` of available memory, at most ``cap_bytes``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if cap_bytes <= 0:
        raise ValueError(f"cap_bytes must be positive, got {cap_bytes!r}")
    available = psutil.virtual_memory().available
    return int(min(available * fraction, cap_bytes))


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``; human-readable sizes for budget messages."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fits(estimate_bytes: int | None, budget_bytes: int) -> bool:
    """True when a computation estimated at ``estimate_bytes`` may run: known, and strictly below the budget."""
    return estimate_bytes is not None and estimate_bytes < budget_bytes


def budget_refusal(what: str, estimate_bytes: int | None, budget_bytes: int | None = None,
                   unknown: str = "") -> str | None:
    """``None`` when ``what`` fits the budget, else the sentence a page shows to refuse it.

    Args:
        what: names the computation, e.g. ``"`softmax` at length 16384 (forward)"``.
        estimate_bytes: an upper bound on its peak memory, or ``None`` when unknown.
        budget_bytes: the budget; default :func:`memory_budget_bytes` now.
        unknown: why the estimate is unknown (appended when ``estimate_bytes`` is ``None``).
    """
    budget = memory_budget_bytes() if budget_bytes is None else int(budget_bytes)
    if fits(estimate_bytes, budget):
        return None
    if estimate_bytes is None:
        return (f"Refused: how much memory {what} needs is unknown, so this server does not run it "
                f"(its budget is {format_bytes(budget)}). {unknown}".rstrip())
    return (f"Refused: {what} needs about {format_bytes(estimate_bytes)}, which does not fit this server's "
            f"budget of {format_bytes(budget)} ({BUDGET_FRACTION:.0%} of the memory available now, at most "
            f"{format_bytes(BUDGET_CAP_BYTES)}). Choose a shorter length, a smaller width or fewer items.")


def rss_bytes() -> int:
    """This process's resident memory, in bytes."""
    return psutil.Process().memory_info().rss


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on another C library (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> int:
    """Collect garbage and hand freed heap pages back to the operating system; returns the RSS drop in bytes.

    ``gc.collect`` frees unreachable cycles (a profiler run leaves many);
    glibc's ``malloc_trim(0)`` then returns free pages of every heap, the
    per-thread arenas of a background measurement included. Elsewhere it only
    collects garbage. On a CUDA server the cached device blocks are released too.
    """
    before = rss_bytes()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except ImportError:  # the budget helpers do not need torch
        pass
    return before - rss_bytes()
