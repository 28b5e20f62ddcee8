"""Each page's own memory formula bounds what the page really allocates for one figure.

Measured, not computed: PyTorch's allocations through ``postlib.bench.peak_memory``
(the profiler's allocation events) plus NumPy's and Python's through ``tracemalloc``,
while the page's figure is built and stored in a fresh figure cache, exactly as the page
does it. The sum of the two peaks bounds their joint peak.
"""
from __future__ import annotations

import tracemalloc

import pytest

from apps.figures import FigureCache
from apps.pages import attention, attention_approximations as approx, state_spaces
from postlib import bench
from postlib.viz.approx import approx_maps_figure
from postlib.viz.attention import attention_map


def measured_peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        torch_peak = bench.peak_memory(fn)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return torch_peak + python_peak


@pytest.fixture(scope="module", autouse=True)
def _warm():
    # One figure of each kind first: plotly's first figure loads its validators (tens of MiB, once per process).
    FigureCache().get(attention_map, 8, 4, causal=True, seed=0, pattern="random")
    FigureCache().get(approx_maps_figure, "reformer", 2, 16, 8)
    state_spaces.states_figure(5, "spikes", 10, 2, 0.1, 8.0, 0)
    # And one measurement: the profiler's and tracemalloc's own first-use allocations are not the page's.
    measured_peak(lambda: FigureCache().get(attention_map, 8, 4, causal=False, seed=1, pattern="random"))


@pytest.mark.parametrize("length, causal", [(64, False), (256, True), (attention.MAX_DRAWN_LENGTH, False)])
def test_attention_map_bytes_bounds_the_measured_peak(length, causal):
    peak = measured_peak(lambda: FigureCache().get(attention_map, length, 64, causal=causal, seed=0,
                                                   pattern="random"))
    assert 0 < peak <= attention.map_bytes(length), (peak, attention.map_bytes(length))


@pytest.mark.parametrize("method, budget, length", [
    ("linear", 1, 256), ("performer", 1024, 256), ("performer", 16, 64), ("linformer", 256, 256),
    ("reformer", 16, 256), ("reformer", 1, 64)])
def test_approximation_map_bytes_bounds_the_measured_peak(method, budget, length):
    budget = min(budget, length) if method == "linformer" else budget
    need = approx.map_bytes(method, budget, length, 64)
    peak = measured_peak(lambda: FigureCache().get(approx_maps_figure, method, budget, length, 64, False, 0))
    assert 0 < peak <= need, (peak, need)


@pytest.mark.parametrize("length, N", [(200, 8), (1000, 30), (60, 64)])
def test_state_spaces_states_bytes_bounds_the_measured_peak(length, N):
    assert state_spaces.state_cells(length, N) <= state_spaces.MAX_CELLS

    def draw():
        state_spaces._trajectories.cache_clear()
        FigureCache().get(state_spaces.states_figure, length, "spikes", length, N, 0.1, 8.0, 3)

    peak = measured_peak(draw)
    assert 0 < peak <= state_spaces.states_bytes(length, N), (peak, state_spaces.states_bytes(length, N))
