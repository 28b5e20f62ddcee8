"""Attention: the softmax map, its quadratic cost, and FlashAttention's tiles step by step.

Widgets and layout only. The figures are ``postlib.viz.attention`` builders —
the same ones chapter 1 draws: ``attention_map`` (recomputed when the length,
head width, mask or pattern changes), ``cost_curves`` (counts from the formula,
marking the current length) and ``flash_tiles_step`` (one tile merged per
step; the chapter's animation is built from the same function, and here a
``pn.widgets.Player`` steps it).

A map needs O(L²) memory to compute and L² cells to draw. Lengths whose map
would exceed the server's memory budget (``apps.widgets.memory_budget_bytes``)
or the cells a browser can draw are refused with a visible message; the cost
curves, which are formulas, still follow the chosen length.
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import ErrorAlert, memory_budget_bytes, over_budget_message, plotly_pane
from postlib.viz.attention import PATTERNS, attention_map, cost_curves, flash_tiles_step, n_tiles

HEAD_DIMS = [2, 4, 8, 16, 32, 64, 128]
# Awkward lengths (1, 7, 13, 24, 48, 96) beside powers of two; the longest ones are refused for the map.
LENGTHS = [1, 7, 13, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536]
# A heatmap of more than 512 × 512 cells makes the browser crawl (the figure is
# sent as JSON); beyond it the page refuses to draw the map.
MAX_DRAWN_LENGTH = 512
# Computing one map holds the scores, the masked scores and the softmax in float64,
# plus the figure's copy of the weights: four L × L arrays of 8 bytes.
MAP_ARRAYS, BYTES_PER_ELEMENT = 4, 8
COST_LENGTHS = [2 ** p for p in range(4, 17)]


def map_bytes(length: int) -> int:
    """Estimated peak bytes to compute and hold one attention map of ``length`` tokens."""
    return MAP_ARRAYS * BYTES_PER_ELEMENT * int(length) ** 2


class AttentionPage(pn.viewable.Viewer):
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
        self.alert = ErrorAlert()
        self.refusal = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width",
                                     css_classes=["attention-refusal"])
        self.map_pane = plotly_pane(css_classes=["attention-map"])
        self.cost_pane = plotly_pane(css_classes=["attention-costs"])
        self.tiles_pane = plotly_pane(css_classes=["attention-tiles"])
        self.player = pn.widgets.Player(label="tiles merged", start=1, end=1, value=1, interval=800,
                                        loop_policy="once", show_loop_controls=False, sizing_mode="stretch_width")
        self.player.param.watch(self.alert.guard(lambda _e: self.draw_tiles()), "value")
        self.param.watch(self.alert.guard(lambda _e: self.draw_map()),
                         ["length", "head_dim", "causal", "pattern", "seed"])
        self.param.watch(self.alert.guard(lambda _e: self.draw_costs()), ["length", "head_dim"])
        self.param.watch(self.alert.guard(lambda _e: self.reset_tiles()), ["tile_length", "block_size",
                                                                            "tile_causal", "seed"])
        for draw in (self.draw_map, self.draw_costs, self.reset_tiles):
            self.alert.guard(draw)()

    # ----- budget -----------------------------------------------------------------------------
    @property
    def budget_bytes(self) -> int:
        return memory_budget_bytes() if self._budget_bytes is None else self._budget_bytes

    def refusal_message(self, length: int | None = None) -> str | None:
        """Why the map at ``length`` is not drawn (memory or browser limit), or None if it is."""
        length = self.length if length is None else length
        message = over_budget_message(f"the {length} × {length} attention map", map_bytes(length), self.budget_bytes)
        if message is None and length > MAX_DRAWN_LENGTH:
            message = (f"Refused: a {length} × {length} map has {length ** 2:,} cells, more than a browser draws "
                       f"smoothly (this page draws up to {MAX_DRAWN_LENGTH} × {MAX_DRAWN_LENGTH}).")
        if message is not None:
            message += " The cost curves below still follow this length."
        return message

    # ----- drawing ----------------------------------------------------------------------------
    def draw_map(self) -> None:
        message = self.refusal_message()
        if message is not None:
            self.refusal.object, self.refusal.visible = message, True
            self.map_pane.visible = False
            return
        self.refusal.visible = False
        self.map_pane.object = attention_map(self.length, self.head_dim, causal=self.causal, seed=self.seed,
                                             pattern=self.pattern)
        self.map_pane.visible = True

    def draw_costs(self) -> None:
        lengths = sorted(set(COST_LENGTHS) | {self.length})
        self.cost_pane.object = cost_curves(lengths, self.head_dim, current_length=self.length)

    def reset_tiles(self) -> None:
        """New demo settings: the player restarts at the first tile of the new tiling."""
        total = n_tiles(self.tile_length, self.block_size)
        with param.parameterized.discard_events(self.player):
            self.player.end = max(total, 1)
            self.player.value = 1
        # Panel's Player needs end > start to render; with one tile it just shows that tile.
        self.player.disabled = total == 1
        self.draw_tiles()

    def draw_tiles(self) -> None:
        step = min(max(int(self.player.value), 1), n_tiles(self.tile_length, self.block_size))
        self.tiles_pane.object = flash_tiles_step(self.tile_length, self.block_size, step,
                                                  causal=self.tile_causal, seed=self.seed)

    # ----- layout -----------------------------------------------------------------------------
    def __panel__(self):
        controls = pn.Column(
            pn.widgets.DiscreteSlider.from_param(self.param.length, name="sequence length L"),
            pn.widgets.Select.from_param(self.param.head_dim, name="head dim d"),
            pn.widgets.Checkbox.from_param(self.param.causal, name="causal"),
            pn.widgets.RadioButtonGroup.from_param(self.param.pattern),
            pn.widgets.IntInput.from_param(self.param.seed, name="seed"),
            width=280)
        tile_controls = pn.Row(
            pn.widgets.IntSlider.from_param(self.param.tile_length, name="demo length"),
            pn.widgets.IntSlider.from_param(self.param.block_size, name="tile size (keys)"),
            pn.widgets.Checkbox.from_param(self.param.tile_causal, name="causal"),
            sizing_mode="stretch_width")
        intro = pn.pane.Markdown(
            "### Softmax attention\nEach row of the map is one query's distribution over keys, "
            "softmax(QKᵀ/√d). The cost curves are **counts from the formula** (not measurements): "
            "materialised attention holds L² scores, the tiled form one tile of them.",
            sizing_mode="stretch_width")
        tiles_intro = pn.pane.Markdown(
            "### FlashAttention, one tile at a time\nPress ▶: each step merges one K/V tile into every "
            "query's running max m, denominator l and output acc/l (the library's `online_softmax_update`); "
            "after the last tile the output equals softmax attention.", sizing_mode="stretch_width")
        return pn.Column(
            intro, self.alert.pane,
            pn.Row(controls, pn.Column(self.refusal, self.map_pane, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            self.cost_pane, tiles_intro, tile_controls, self.player, self.tiles_pane,
            sizing_mode="stretch_width")


PAGE = {"title": "Attention", "order": 10, "viewer": AttentionPage}
