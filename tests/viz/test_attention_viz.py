"""Figures of chapter 1: they draw the library's numbers, and the tile animation is the library's loop."""
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from postlib.attention.derive import attention_costs
from postlib.attention.softmax import softmax_attention
from postlib.viz import attention as va
from postlib.viz import get_caption


def _row_entropy(w):
    return float(-(w * np.log(np.where(w > 0, w, 1.0))).sum(-1).mean())


@pytest.mark.parametrize("length", [1, 7, 32])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_map_draws_softmax_rows(length, causal):
    fig = va.attention_map(length, 8, causal=causal, seed=3)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (length, length)
    np.testing.assert_allclose(z.sum(-1), 1.0, rtol=1e-12)
    if causal:
        assert np.all(z[np.triu_indices(length, 1)] == 0)
    assert f"L = {length}" in get_caption(fig)


def test_attention_map_seed_and_pattern_matter():
    a = np.asarray(va.attention_map(16, 8, seed=0).data[0].z)
    b = np.asarray(va.attention_map(16, 8, seed=1).data[0].z)
    assert not np.allclose(a, b)
    # Positional codes give a local pattern that sharpens with head_dim.
    flat = np.asarray(va.attention_map(32, 4, pattern="positional").data[0].z)
    sharp = np.asarray(va.attention_map(32, 64, pattern="positional").data[0].z)
    assert _row_entropy(sharp) < _row_entropy(flat) - 0.5
    assert np.all(sharp.argmax(-1) == np.arange(32))


def test_attention_map_rejects_bad_arguments():
    with pytest.raises(ValueError, match="length must be >= 1"):
        va.attention_map(0, 8)
    with pytest.raises(TypeError, match="head_dim must be an int"):
        va.attention_map(8, 2.5)
    with pytest.raises(ValueError, match="pattern must be one of"):
        va.attention_map(8, 8, pattern="banded")


def test_cost_curves_plot_the_formula_and_mark_the_current_length():
    lengths = [256, 128, 1024, 512]
    fig = va.cost_curves(lengths, 64, current_length=300, block_size=32)
    assert len(fig.data) == 6
    assert "not measured" in get_caption(fig)
    flops_mat, flops_tiled, now_flops, mem_mat, mem_tiled, now_mem = fig.data
    assert list(flops_mat.x) == sorted(lengths)
    expected = [attention_costs(n, 64, block_size=32) for n in sorted(lengths)]
    assert list(flops_mat.y) == [c["flops_materialised"] for c in expected]
    assert list(mem_tiled.y) == [c["bytes_tiled"] for c in expected]
    now = attention_costs(300, 64, block_size=32)
    assert list(now_mem.x) == [300, 300]
    assert list(now_mem.y) == [now["bytes_materialised"], now["bytes_tiled"]]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis2.type == "log"
    # default marker: the largest length
    assert list(va.cost_curves([8, 16], 4).data[2].x) == [16, 16]
    with pytest.raises(ValueError, match="lengths must contain"):
        va.cost_curves([], 64)


@pytest.mark.parametrize("length,block", [(1, 4), (7, 3), (13, 5), (24, 6), (10, 64)])
@pytest.mark.parametrize("causal", [False, True])
def test_flash_tiles_data_converges_to_exact_attention(length, block, causal):
    data = va.flash_tiles_data(length, block, causal, 0, 8)
    steps = data["steps"]
    assert len(steps) == math.ceil(length / block) == va.n_tiles(length, block)
    assert [s["start"] for s in steps] == list(range(0, length, block))
    assert steps[-1]["end"] == length
    np.testing.assert_allclose(steps[-1]["partial"], data["exact"], rtol=1e-12, atol=1e-13)
    # The exact output is the library's reference on the same q, k, v.
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(length, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    ref = softmax_attention(q[None, None], k[None, None], v[None, None], causal=causal)[0, 0].numpy()
    np.testing.assert_allclose(data["exact"], ref, rtol=1e-13)
    # the running max never decreases
    for a, b in zip(steps, steps[1:]):
        finite = np.isfinite(a["m"])
        assert np.all(b["m"][finite] >= a["m"][finite])


def test_flash_tiles_are_computed_by_the_library_update(monkeypatch):
    calls = []
    real = va.online_softmax_update

    def spy(*args):
        calls.append(args[3].shape)
        return real(*args)

    monkeypatch.setattr(va, "online_softmax_update", spy)
    va.flash_tiles_data.cache_clear()
    va.flash_tiles_data(11, 4, False, 5, 8)
    assert calls == [(11, 4), (11, 4), (11, 3)]
    va.flash_tiles_data.cache_clear()


def test_flash_tiles_step_shows_the_merged_tiles_only():
    fig = va.flash_tiles_step(13, 5, step=2)
    assert len(fig.data) == 7
    seen = np.asarray(fig.data[0].z, dtype=float)
    assert np.isfinite(seen[:, :10]).all() and np.isnan(seen[:, 10:]).all()
    rect = fig.layout.shapes[0]
    assert (rect.x0, rect.x1) == (4.5, 9.5)
    assert "Tile 2/3" in fig.layout.title.text
    last = va.flash_tiles_step(13, 5, step=3)
    partial, exact = np.asarray(last.data[6].y, float), np.asarray(last.data[5].y, float)
    np.testing.assert_allclose(partial, exact, rtol=1e-12)
    with pytest.raises(ValueError, match="step must be between 1 and n_tiles = 3"):
        va.flash_tiles_step(13, 5, step=4)
    with pytest.raises(ValueError, match="step must be >= 1"):
        va.flash_tiles_step(13, 5, step=0)


def test_flash_tiles_step_causal_rows_without_keys_are_gaps():
    fig = va.flash_tiles_step(12, 4, step=1, causal=True)
    partial = fig.data[6].y
    assert all(y is not None for y in partial)  # row i always sees key 0 in the first tile
    seen = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(seen[0, 1:]).all()  # the future of query 0 is blank, not -inf


def test_flash_tiles_figure_has_one_frame_per_tile_and_a_player():
    fig = va.flash_tiles_figure(13, 5, causal=True)
    assert len(fig.frames) == 3
    assert [s.label for s in fig.layout.sliders[0].steps] == ["1", "2", "3"]
    assert fig.layout.updatemenus[0].buttons[0].label == "▶"
    for i, frame in enumerate(fig.frames, start=1):
        direct = va.flash_tiles_step(13, 5, step=i, causal=True)
        np.testing.assert_array_equal(np.asarray(frame.data[2].y, float), np.asarray(direct.data[2].y, float))
        assert frame.layout.shapes[0].x0 == direct.layout.shapes[0].x0


def _kv_rows():
    rows = []
    for n in (16, 32, 64):
        rows.append(dict(name="KV cache", length=n, time_ms=0.1 + 0.001 * n, status="ok"))
        rows.append(dict(name="recompute", length=n, time_ms=0.1 + 0.01 * n, status="ok"))
    rows.append(dict(name="recompute", length=128, time_ms=None, status="skipped: over budget"))
    return rows


def test_kv_cache_figure_plots_measured_rows_and_the_ratio():
    fig = va.kv_cache_figure(_kv_rows())
    cached, recompute, ratio = fig.data
    assert list(cached.x) == [16, 32, 64] and list(recompute.x) == [16, 32, 64]
    np.testing.assert_allclose(ratio.y, [(0.1 + 0.01 * n) / (0.1 + 0.001 * n) for n in (16, 32, 64)])
    assert fig.layout.xaxis.range == fig.layout.xaxis2.range     # both panels span the same lengths
    assert "slowdown" in fig.layout.yaxis2.title.text           # not a lone "×"
    assert list(fig.layout.xaxis.tickvals) == [16, 32, 64]         # less than two decades: the lengths themselves
    with pytest.raises(ValueError, match="cached='cache' names no measured series"):
        va.kv_cache_figure(_kv_rows(), cached="cache")
