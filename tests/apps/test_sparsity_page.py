"""The Sparsity page's logic, without a browser: every pattern draws its library mask over its tiles, the
receptive field and the counted memory; the Player steps the receptive field; sizes beyond the budget or
the browser's limit are refused with a message, before anything is computed."""
from __future__ import annotations

import numpy as np
import panel as pn
import pytest

from apps.figures import FIGURES
from apps.pages import sparsity
from apps.pages.sparsity import KNOBS, MAX_DRAWN_LENGTH, PAGE, PATTERNS, SparsityPage, count_bytes, drawn_bytes
from postlib.sparse import attention_mask, make_pattern, receptive_field
from postlib.sparse.analysis import pattern_memory
from postlib.viz import get_caption


def _z(pane) -> np.ndarray:
    return np.asarray(pane.object.data[0].z)


def test_page_contract_and_layout_renders():
    assert PAGE == {"title": "Sparsity patterns", "order": 60, "viewer": SparsityPage}
    page = SparsityPage()
    assert pn.panel(page).get_root() is not None
    widgets = pn.panel(page).select(pn.widgets.Widget)
    assert any(isinstance(w, pn.widgets.Player) for w in widgets)
    for label in ("window", "global tokens", "random blocks", "LongNet segment", "LongNet dilation",
                  "sequence length", "heads", "length for the memory count"):
        assert any(label in (w.name or "") for w in widgets), label
    assert page.alert.message is None and not page.refusal.visible and not page.memory_refusal.visible
    for pane in (page.mask_pane, page.field_pane, page.memory_pane):   # captioned figures
        assert pane.visible and get_caption(pane.object) and pane.caption.visible


@pytest.mark.parametrize("name, kind", list(PATTERNS.items()))
@pytest.mark.parametrize("length, causal", [(100, True), (64, False)])
def test_every_pattern_draws_its_library_mask_and_tiles_in_place(name, kind, length, causal):
    page = SparsityPage(length=length, causal=causal)
    pane = page.mask_pane
    page.pattern = name
    assert page.mask_pane is pane and page.alert.message is None
    params = page.pattern_params()
    z = _z(pane)
    want = attention_mask(kind, length, causal=causal, **params).numpy()
    assert np.array_equal(z == 2, want)                           # dark: allowed, the library's mask
    any_, _ = make_pattern(kind, length, causal=causal, **params).tile_layout(page.tile)
    tiles = np.kron(any_.numpy(), np.ones((page.tile, page.tile), dtype=bool))[:length, :length]
    assert np.array_equal(z >= 1, tiles | want)                   # light: computed tiles (white: skipped)
    computed = int(any_.sum())
    assert f"computes {computed} of the {any_.numel()} tiles" in get_caption(pane.object)
    # only this pattern's sliders are shown
    assert {k for k, w in page.knobs.items() if w.visible} == set(KNOBS[kind])


def test_sliders_redraw_the_mask():
    page = SparsityPage(pattern="sliding window", length=64)
    page.window = 4
    assert (_z(page.mask_pane) == 2).sum() == attention_mask("sliding", 64, causal=True, window=4).sum().item()
    page.pattern = "LongNet (dilated segments)"
    page.pairs, page.dilation = 2, 4
    want = attention_mask("dilated", 64, causal=True, segment_lengths=[8, 32], dilations=[1, 4])
    assert np.array_equal(_z(page.mask_pane) == 2, want.numpy())
    page.pattern = "BigBird (window + global + random blocks)"
    before = _z(page.mask_pane)
    page.seed = 1
    assert not np.array_equal(before, _z(page.mask_pane))         # other random blocks
    assert page.alert.message is None


def _reached(page) -> list[int]:
    """Tokens reached per pattern row in the top panel (one marker trace per pattern)."""
    return [len(t.x) for t in page.field_pane.object.data if t.yaxis == "y" and t.x is not None]


def test_player_grows_the_receptive_field():
    page = SparsityPage(pattern="sliding window", window=8, length=64)
    sizes = []
    for layer in (0, 1, 2, 3):
        page.player.value = layer
        sizes.append(_reached(page)[0])
    want = receptive_field("sliding", 64, layers=3, causal=True, window=8).sum(1).tolist()
    assert sizes == want and sizes[3] > sizes[1]
    assert "reached after 3 layers" in page.field_pane.object.layout.annotations[0].text


def test_longnet_reach_uses_every_heads_offsets_against_a_window():
    page = SparsityPage(pattern="LongNet (dilated segments)", length=128, heads=4)
    page.player.value = 2
    window, longnet = _reached(page)
    params = page.pattern_params()
    want = receptive_field("dilated", 128, layers=2, causal=True, heads=4, offset="per_head", **params).sum(1)
    assert longnet == int(want[2])
    assert window == int(receptive_field("sliding", 128, layers=2, causal=True, window=9).sum(1)[2])
    names = [t.name for t in page.field_pane.object.data if t.showlegend is not False and t.yaxis == "y2"]
    assert names == ["window 9", "LongNet, 4 heads"]


def test_memory_is_counted_and_labelled_so():
    page = SparsityPage(pattern="Longformer (window + global tokens)", memory_length=1048576, heads=4)
    assert page.memory_pane.visible
    caption = get_caption(page.memory_pane.object)
    counted = pattern_memory("longformer", 1048576, causal=True, heads=4, **page.pattern_params(1048576))
    assert "counted from the formula" in caption and "1,048,576" in caption and f"{counted['scores']:,}" in caption
    assert "counted" in page.memory_pane.object.layout.xaxis.title.text
    page.pattern = "BigBird (window + global + random blocks)"
    page.block_size = 2
    assert page.memory_refusal.visible and "Refused" in page.memory_refusal.object and not page.memory_pane.visible
    page.memory_length, page.block_size = 16384, 8
    assert page.memory_pane.visible and not page.memory_refusal.visible


def test_budget_refusal_comes_before_anything_is_computed():
    FIGURES.clear()
    page = SparsityPage(budget_bytes=drawn_bytes("longformer", 128) + 1, length=128)
    assert page.mask_pane.visible and not page.refusal.visible
    misses = FIGURES.misses
    page.length = 256                                               # over this page's budget
    assert page.refusal.visible and "Refused" in page.refusal.object
    assert not page.mask_pane.visible and not page.field_pane.visible
    assert FIGURES.misses == misses                                  # nothing was built
    page.length = 128
    assert page.mask_pane.visible and not page.refusal.visible
    small = SparsityPage(budget_bytes=count_bytes("sliding", 4096) + 1, length=13, memory_length=1024)
    small.memory_length = 16384
    assert small.memory_refusal.visible and not small.memory_pane.visible


def test_lengths_beyond_the_browser_limit_are_refused(monkeypatch):
    page = SparsityPage(length=64)
    monkeypatch.setattr(sparsity, "MAX_DRAWN_LENGTH", 100)
    page.length = 128
    assert page.refusal.visible and "100 × 100" in page.refusal.object and not page.mask_pane.visible
    assert max(sparsity.LENGTHS) <= MAX_DRAWN_LENGTH              # the slider itself stops at the limit
