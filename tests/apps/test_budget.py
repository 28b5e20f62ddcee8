"""The memory budget: the edge of the budget, unknown estimates, and memory given back after a large run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import pytest

from apps import budget
from apps.budget import budget_refusal, fits, format_bytes, memory_budget_bytes, release_memory, rss_bytes

ROOT = Path(__file__).resolve().parents[2]
FakeMemory = namedtuple("FakeMemory", "available")


def test_budget_is_a_fraction_of_available_memory_capped(monkeypatch):
    monkeypatch.setattr(budget.psutil, "virtual_memory", lambda: FakeMemory(8 * budget.GIB))
    assert memory_budget_bytes() == 2 * budget.GIB  # 25 % of 8 GiB
    assert memory_budget_bytes(fraction=1.0, cap_bytes=3 * budget.GIB) == 3 * budget.GIB
    monkeypatch.setattr(budget.psutil, "virtual_memory", lambda: FakeMemory(64 * budget.GIB))
    assert memory_budget_bytes() == budget.BUDGET_CAP_BYTES
    with pytest.raises(ValueError, match="fraction"):
        memory_budget_bytes(fraction=0)
    with pytest.raises(ValueError, match="cap_bytes"):
        memory_budget_bytes(cap_bytes=0)


def test_exactly_the_budget_is_refused_one_byte_less_runs():
    four_gib = 4 * budget.GIB
    assert fits(four_gib - 1, four_gib) and not fits(four_gib, four_gib) and not fits(four_gib + 1, four_gib)
    assert budget_refusal("x", four_gib - 1, four_gib) is None
    message = budget_refusal("`softmax` at length 16384", four_gib, four_gib)
    assert message.startswith("Refused: `softmax` at length 16384 needs about 4.0 GiB")
    assert "budget of 4.0 GiB" in message


def test_an_unknown_estimate_is_refused_with_its_reason():
    message = budget_refusal("`newmixer` at length 1024", None, 10 * budget.GIB,
                             unknown="`newmixer` defines no `memory_estimate`.")
    assert message.startswith("Refused: how much memory `newmixer` at length 1024 needs is unknown")
    assert message.endswith("`newmixer` defines no `memory_estimate`.") and "10.0 GiB" in message
    assert not fits(None, 10 * budget.GIB)


def test_default_budget_is_read_when_not_given(monkeypatch):
    monkeypatch.setattr(budget, "memory_budget_bytes", lambda: 1000)
    assert budget_refusal("x", 999) is None and budget_refusal("x", 1000) is not None


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 2**30) == "3.0 GiB"
    assert format_bytes(5 * 2**40) == "5.0 TiB"


def test_release_memory_reports_a_drop_and_never_fails():
    assert isinstance(release_memory(), int) and rss_bytes() > 0


# A measurement with memory profiling, as the Scaling page runs it, in a fresh process so the
# resident size is this run's alone. It fragments glibc's heaps (the profiler's many small
# records sit between the freed blocks), so only malloc_trim gives the pages back. A tiny run
# first pays the one-time costs (imports, kernels), so the baseline is a warm server.
_LARGE_RUN = textwrap.dedent("""
    import json
    import torch
    torch.set_num_threads(1)
    import apps.measure as m
    from apps.budget import release_memory, rss_bytes
    def run(points):
        m.MeasurementRun(points, m.Settings(mode="forward_backward"), report=lambda progress: None,
                         cache=m.PointCache(), budget=2 ** 40).start(background=True)  # a thread, like the page
    seen = {}
    def spy():
        seen["before"] = rss_bytes()
        dropped = release_memory()
        seen["after"] = rss_bytes()
        return dropped
    first = m.MeasurementRun([("softmax", 64)], m.Settings(mode="forward_backward"), report=lambda p: None,
                             cache=m.PointCache(), budget=2 ** 40)
    first.start(background=False)
    base = rss_bytes()
    m.release_memory = spy
    large = m.MeasurementRun([("softmax", 1024), ("softmax", 2048)], m.Settings(mode="forward_backward"),
                             report=lambda p: None, cache=m.PointCache(), budget=2 ** 40)
    large.start(background=True)
    large.wait()
    print(json.dumps({"base": base, **seen}))
""")


@pytest.mark.slow
def test_a_large_run_gives_its_memory_back():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _LARGE_RUN], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    left_by_the_run = rss["before"] - rss["base"]
    left_after_release = rss["after"] - rss["base"]
    # The run leaves hundreds of MiB resident until release_memory, then little of it.
    assert left_by_the_run > 64 * 2 ** 20, rss
    assert left_after_release < 0.3 * left_by_the_run, rss
