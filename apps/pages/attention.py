"""Attention: the softmax map, its quadratic cost, and FlashAttention's tiles step by step.

Widgets and layout only. The figures are ``postlib.viz.attention`` builders —
the same ones chapter 1 draws: ``attention_map`` (recomputed when the length,
head width, mask or pattern changes), ``cost_curves`` (counts from the formula,
marking the current length) and ``flash_tiles_step`` (one tile merged per
step; the chapter's animation is built from the same function, and here a
Player steps it). Every figure comes from the server-wide cache
(``apps.figures.cached_figure``).

A map needs O(L²) memory to compute and L² cells to draw. Lengths whose map
would not fit the server's memory budget (``map_bytes``, checked against a
measurement in ``tests/apps/test_page_budgets.py``) or exceed the cells a
browser draws smoothly are refused with a visible message; the cost curves,
which are formulas, still follow the chosen length.
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import (Page, beside, budget_refusal, cached_figure, controls, guarded, labelled_player,
                          memory_budget_bytes, captioned_figure, section, stack)
from postlib.viz.attention import PATTERNS, attention_map, cost_curves, flash_tiles_step, n_tiles

HEAD_DIMS = [2, 4, 8, 16, 32, 64, 128]
# Awkward lengths (1, 7, 13, 24, 48, 96) beside powers of two; the longest ones are refused for the map.
LENGTHS = [1, 7, 13, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536]
# A heatmap of more than 512 × 512 cells makes the browser crawl (the figure is
# sent as JSON); beyond it the page refuses to draw the map.
MAX_DRAWN_LENGTH = 512
# Measured peak of one map (tests/apps/test_page_budgets.py): about 10 float64 L × L arrays
# (scores, mask, softmax, entropy temporaries, the figure's and the cache's copies) plus a
# few MiB of plotly objects whatever the length. Charged: 12 arrays and 4 MiB.
MAP_ARRAYS, BYTES_PER_ELEMENT, MAP_OVERHEAD_BYTES = 12, 8, 4 * 2 ** 20
COST_LENGTHS = [2 ** p for p in range(4, 17)]


def map_bytes(length: int) -> int:
    """An upper bound on the peak bytes one attention map of ``length`` tokens allocates (computed and drawn)."""
    return MAP_ARRAYS * BYTES_PER_ELEMENT * int(length) ** 2 + MAP_OVERHEAD_BYTES


class AttentionPage(Page):
    """Softmax attention's map and cost, and FlashAttention's online softmax tile by tile."""

    length = param.Selector(default=32, objects=LENGTHS, doc="Sequence length L.")
    head_dim = param.Selector(default=16, objects=HEAD_DIMS, doc="Head width d.")
    causal = param.Boolean(default=False, doc="Mask the future (decoder attention).")
    pattern = param.Selector(default="positional", objects=list(PATTERNS), doc="How q and k are made.")
    seed = param.Integer(default=0, bounds=(0, 10_000))
    tile_length = param.Integer(default=24, bounds=(1, 64), doc="Length of the FlashAttention demo.")
    block_size = param.Integer(default=6, bounds=(1, 64), doc="Keys per K/V tile.")
    tile_causal = param.Boolean(default=True, doc="Causal mask in the tile demo.")

    def __init__(self, budget_bytes: int | None = None, **params):
        super().__init__(**params)
        self._budget_bytes = budget_bytes
        self.refusal.css_classes = ["attention-refusal"]
        self.map_pane = captioned_figure(css_classes=["attention-map"])
        self.cost_pane = captioned_figure(css_classes=["attention-costs"])
        self.tiles_pane = captioned_figure(css_classes=["attention-tiles"])
        self.player = labelled_player("tiles merged", start=1, end=2, interval=800)
        self.player.param.watch(self._on_player, "value")
        self.draw_map()
        self.draw_costs()
        self.reset_tiles()

    # ----- budget -----------------------------------------------------------------------------
    @property
    def budget_bytes(self) -> int:
        return memory_budget_bytes() if self._budget_bytes is None else self._budget_bytes

    def refusal_message(self, length: int | None = None) -> str | None:
        """Why the map at ``length`` is not drawn (memory or browser limit), or None if it is."""
        length = self.length if length is None else length
        message = budget_refusal(f"the {length} × {length} attention map", map_bytes(length), self.budget_bytes)
        if message is None and length > MAX_DRAWN_LENGTH:
            message = (f"Refused: a {length} × {length} map has {length ** 2:,} cells, more than a browser draws "
                       f"smoothly (this page draws up to {MAX_DRAWN_LENGTH} × {MAX_DRAWN_LENGTH}).")
        if message is not None:
            message += " The cost curves below still follow this length."
        return message

    # ----- drawing ----------------------------------------------------------------------------
    @param.depends("length", "head_dim", "causal", "pattern", "seed", watch=True)
    @guarded
    def draw_map(self) -> None:
        if self.refuse(self.refusal_message()):
            self.map_pane.visible = False
            return
        self.map_pane.object = cached_figure(attention_map, self.length, self.head_dim, causal=self.causal,
                                             seed=self.seed, pattern=self.pattern)
        self.map_pane.visible = True

    @param.depends("length", "head_dim", watch=True)
    @guarded
    def draw_costs(self) -> None:
        lengths = tuple(sorted(set(COST_LENGTHS) | {self.length}))
        self.cost_pane.object = cached_figure(cost_curves, lengths, self.head_dim, current_length=self.length)

    @param.depends("tile_length", "block_size", "tile_causal", "seed", watch=True)
    @guarded
    def reset_tiles(self) -> None:
        """New demo settings: the player restarts at the first tile of the new tiling."""
        total = n_tiles(self.tile_length, self.block_size)
        with param.parameterized.discard_events(self.player):
            # Panel's Player needs end > start to render; with one tile it just shows that tile.
            self.player.end = max(total, 2)
            self.player.value = 1
        self.player.disabled = total == 1
        self.draw_tiles()

    @guarded
    def _on_player(self, _event) -> None:
        self.draw_tiles()

    def draw_tiles(self) -> None:
        step = min(max(int(self.player.value), 1), n_tiles(self.tile_length, self.block_size))
        self.tiles_pane.object = cached_figure(flash_tiles_step, self.tile_length, self.block_size, step,
                                               causal=self.tile_causal, seed=self.seed)

    # ----- layout -----------------------------------------------------------------------------
    def __panel__(self):
        settings = stack(
            pn.widgets.DiscreteSlider.from_param(self.param.length, label="sequence length L"),
            controls(pn.widgets.Select.from_param(self.param.head_dim, label="head dim d"),
                     pn.widgets.IntInput.from_param(self.param.seed, label="seed"), basis_px=110),
            pn.widgets.Checkbox.from_param(self.param.causal, label="causal"),
            pn.widgets.RadioButtonGroup.from_param(self.param.pattern))
        tile_settings = controls(
            pn.widgets.IntSlider.from_param(self.param.tile_length, label="demo length"),
            pn.widgets.IntSlider.from_param(self.param.block_size, label="tile size (keys)"),
            pn.widgets.Checkbox.from_param(self.param.tile_causal, label="causal"))
        intro = section(
            "### Softmax attention\nEach row of the map is one query's distribution over keys, "
            "softmax(QKᵀ/√d). The cost curves are **counts from the formula** (not measurements): "
            "materialised attention holds L² scores, the tiled form one tile of them.")
        tiles_intro = section(
            "### FlashAttention, one tile at a time\nPress **Play**: each step merges one K/V tile into every "
            "query's running max m, denominator l and output acc/l (the library's `online_softmax_update`); "
            "after the last tile the output equals softmax attention.")
        return stack(
            intro, self.alert.pane,
            beside(settings, stack(self.refusal, self.map_pane)),
            self.cost_pane, tiles_intro, tile_settings, self.player, self.tiles_pane)


PAGE = {"title": "Attention", "order": 10, "viewer": AttentionPage}
