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
from apps.pages import attention, attention_approximations as approx, mixing, sparsity, state_spaces
from postlib import bench
from postlib.viz.approx import approx_maps_figure
from postlib.viz import sparse as sparse_viz
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
    mixing.state_frame(2, 0.3, 0.5, 8, 1)
    FigureCache().get(sparse_viz.pattern_figure, "sliding", 8, window=3)
    FigureCache().get(sparse_viz.pattern_reach_figure, "sliding", 8, 1, layers=2, window=3)
    FigureCache().get(sparse_viz.memory_formula_figure, "sliding", 8, window=3)
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


@pytest.mark.parametrize("length", [8, 24, mixing.WKV_LENGTHS[-1]])
def test_mixing_wkv_bytes_bounds_the_measured_peak(length):
    def draw():
        mixing._trace.cache_clear()
        cache = FigureCache()
        cache.get(mixing.state_frame, length - 1, 0.2, 0.5, length, 0)
        cache.get(mixing.wkv_weights_figure, 0.2, length, 0.5, 1.0, 0)

    peak = measured_peak(draw)
    assert 0 < peak <= mixing.wkv_bytes(length), (peak, mixing.wkv_bytes(length))


def test_mixing_forget_bytes_bounds_the_measured_peak():
    peak = measured_peak(lambda: FigureCache().get(mixing.forgetting_figure, 5.0, mixing.FORGET_LENGTH - 2))
    assert 0 < peak <= mixing.forget_bytes(), (peak, mixing.forget_bytes())


@pytest.mark.parametrize("length, depth, k", [(16, 16, 9), (mixing.FIELD_LENGTHS[-1], 16, 9), (64, 1, 2)])
def test_mixing_field_bytes_bounds_the_measured_peak(length, depth, k):
    peak = measured_peak(lambda: FigureCache().get(mixing.receptive_field_figure, depth, k, length))
    assert 0 < peak <= mixing.field_bytes(length), (peak, mixing.field_bytes(length))


def _sparsity_draw(page):
    """Everything the Sparsity page builds for one setting of its pattern: the mask over its tiles and the
    receptive field (its LongNet fields cache cleared, so they are computed inside the measurement)."""
    sparse_viz._reach.cache_clear()
    cache = FigureCache()
    heads = page.reach_heads()
    cache.get(sparse_viz.pattern_figure, page.kind, page.length, causal=page.causal, tile=page.tile, name="p",
              **page.pattern_params())
    cache.get(sparse_viz.pattern_reach_figure, page.kind, page.length, 2, layers=sparsity.MAX_LAYERS,
              causal=page.causal, heads=heads, compare=page.compare_window(), name="p", **page.pattern_params())


@pytest.mark.parametrize("pattern, length, settings", [
    ("Longformer (window + global tokens)", sparsity.MAX_DRAWN_LENGTH, dict(window=128, global_tokens=16)),
    ("BigBird (window + global + random blocks)", 384, dict(block_size=2, random_blocks=8, global_blocks=4)),
    ("LongNet (dilated segments)", sparsity.MAX_DRAWN_LENGTH, dict(segment_length=64, dilation=2, pairs=5, heads=64)),
    ("LongNet (dilated segments)", 100, dict(segment_length=2, dilation=3, pairs=5, heads=1)),
    ("sliding window", 13, dict(window=1, tile=4))])
def test_sparsity_drawn_bytes_bounds_the_measured_peak(pattern, length, settings):
    page = sparsity.SparsityPage(pattern=pattern, length=13, causal=False)
    page.param.update(length=length, **settings)
    peak = measured_peak(lambda: _sparsity_draw(page))
    need = sparsity.drawn_bytes(page.kind, length, page.reach_heads())
    assert 0 < peak <= need, (peak, need)


@pytest.mark.parametrize("pattern, length, settings", [
    ("Longformer (window + global tokens)", 1048576, dict(window=256, global_tokens=16)),
    ("sliding window", 1048576, dict(window=1)),
    ("BigBird (window + global + random blocks)", 262144, dict(block_size=64, random_blocks=8, global_blocks=4)),
    ("LongNet (dilated segments)", 1048576, dict(segment_length=64, dilation=2, pairs=5))])
def test_sparsity_count_bytes_bounds_the_measured_peak(pattern, length, settings):
    page = sparsity.SparsityPage(pattern=pattern, length=13, memory_length=1024)
    page.param.update(**settings)
    assert page.memory_refusal_message() is None or "budget" in page.memory_refusal_message()
    params = page.pattern_params(length)
    peak = measured_peak(lambda: FigureCache().get(sparse_viz.memory_formula_figure, page.kind, length, causal=True,
                                                   heads=8, name="p", **params))
    need = sparsity.count_bytes(page.kind, length, page.block_size)
    assert 0 < peak <= need, (peak, need)
