"""Live measurements (apps.measure): refused before allocating, one run at a time, stoppable, silent once detached.

``postlib.bench.estimate_bytes`` is replaced where a test needs a given estimate: the contract
(CONTRACTS.md §1) is an int upper bound or None for unknown, and the page must refuse both an
unknown estimate and one that reaches the budget.
"""
from __future__ import annotations

import threading

import pytest

from apps import measure
from apps.measure import MeasurementRun, PointCache, Settings, budget_refusal_for
from postlib import bench


@pytest.fixture
def estimates(monkeypatch):
    """Make ``estimate_bytes`` return ``table[(name, mode)]`` and record every call."""
    table, calls = {}, []

    def fake(module, batch, length, dtype, mode="forward"):
        name = type(module).__name__.lower()
        calls.append((name, length, mode))
        return table.get(mode)

    monkeypatch.setattr(bench, "estimate_bytes", fake)
    return table, calls


def _forbid_measuring(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("nothing may be measured (or allocated) for a refused setting")
    monkeypatch.setattr(bench, "measure_mixers", fail)


def test_an_unknown_estimate_is_refused_naming_the_mixer(estimates, monkeypatch):
    _forbid_measuring(monkeypatch)
    table, calls = estimates  # empty: every estimate is None
    message = budget_refusal_for([("softmax", 256), ("softmax", 1024)], Settings(), budget=2 ** 40)
    assert message.startswith("Refused: how much memory `softmax` at length 1024 (forward, d_model 64) needs "
                              "is unknown")
    assert "defines no `memory_estimate`" in message
    assert calls and all(length == 1024 for _name, length, _mode in calls)  # checked at the longest length


def test_the_budget_edge_and_the_mode_reach_the_estimate(estimates):
    table, calls = estimates
    table["forward"], table["forward_backward"] = 1000, 2000
    points = [("softmax", 64)]
    assert budget_refusal_for(points, Settings(), budget=1001) is None
    assert budget_refusal_for(points, Settings(), budget=1000) is not None          # exactly the budget: refused
    assert budget_refusal_for(points, Settings(mode="forward_backward"), budget=1001) is not None
    assert calls[-1][2] == "forward_backward"


def test_the_largest_estimate_is_named_first(monkeypatch):
    sizes = {"softmax": 5000, "linear": 3000}
    monkeypatch.setattr(bench, "estimate_bytes",
                        lambda module, batch, length, dtype, mode="forward": sizes[module._registry_name]
                        if hasattr(module, "_registry_name") else None)
    import postlib
    real_build = postlib.build_mixer

    def build(name, d_model, **kw):
        module = real_build(name, d_model, **kw)
        module._registry_name = name
        return module
    monkeypatch.setattr(postlib, "build_mixer", build)
    message = budget_refusal_for([("linear", 64), ("softmax", 64)], Settings(), budget=1000)
    assert "`softmax`" in message and "4.9 KiB" in message


def _run(points, cache, reports, settings=None, **kw):
    return MeasurementRun(points, settings or Settings(), reports.append, cache=cache, budget=2 ** 40, **kw)


def test_a_run_measures_into_the_cache_and_reports_each_point():
    cache, reports = PointCache(), []
    _run([("softmax", 16), ("softmax", 32)], cache, reports).start(background=False)
    rows = cache.rows([("softmax", 16), ("softmax", 32)], Settings())
    assert [r["length"] for r in rows] == [16, 32] and all(r["status"] == "ok" for r in rows)
    assert reports[-1].finished and reports[-1].done == 2 and reports[-1].message == "Measured 2 points in this run."
    assert [p.done for p in reports if not p.message] == [1, 2]
    assert cache.missing([("softmax", 16), ("softmax", 64)], Settings()) == [("softmax", 64)]


def test_a_mixer_that_raises_becomes_an_error_row(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("length must be a multiple of 64")
    monkeypatch.setattr(bench, "measure_mixers", broken)
    cache, reports = PointCache(), []
    _run([("softmax", 16)], cache, reports).start(background=False)
    (row,) = cache.rows([("softmax", 16)], Settings())
    assert row["status"] == "error: ValueError: length must be a multiple of 64"


def test_detach_silences_reports_and_stops_after_the_current_point(monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        started.set()
        release.wait(10)
        return [dict(name="softmax", length=16, status="ok", time_ms=1.0, peak_mem_bytes=1)]
    monkeypatch.setattr(bench, "measure_mixers", slow)
    cache, reports = PointCache(), []
    run = _run([("softmax", 16), ("softmax", 32), ("softmax", 64)], cache, reports)
    run.start()
    assert started.wait(10)
    seen = len(reports)
    run.detach()          # the reader left: nothing may touch their panes any more
    release.set()
    assert run.wait(10)
    assert len(reports) == seen and len(cache.rows([("softmax", 16), ("softmax", 32)], Settings())) == 1


def test_runs_take_turns(monkeypatch):
    inside, overlap = [], []

    def measured(*args, **kwargs):
        inside.append(1)
        if len(inside) > 1:
            overlap.append(1)
        threading.Event().wait(0.05)
        inside.pop()
        return [dict(name="softmax", length=args[1][0], status="ok", time_ms=1.0, peak_mem_bytes=1)]
    monkeypatch.setattr(bench, "measure_mixers", measured)
    cache = PointCache()
    runs = [_run([("softmax", 2 ** k)], cache, []) for k in range(4, 8)]
    for run in runs:
        run.start()
    assert all(run.wait(20) for run in runs)
    assert not overlap and not measure.MEASURE_LOCK.locked()
