"""Sparsity patterns: the masks of Longformer, BigBird and LongNet, their tiles, reach and memory.

Widgets and layout only. The patterns are ``postlib.sparse.attention_mask`` — the definition the
chapter "Sparse attention" tests every form against — and the figures are ``postlib.viz.sparse``
builders, computed from the pattern's parameters and shared through the server-wide figure cache
(``apps.figures.cached_figure``):

* ``pattern_figure``: the mask over the (tile × tile) blocks a block-sparse kernel computes, and the
  fraction of blocks computed (``Pattern.tile_layout``, counted);
* ``pattern_reach_figure``: the receptive field of the last token after k layers (boolean powers of the
  mask, ``postlib.sparse.receptive_field``) against a plain window; a Player grows it layer by layer;
* ``memory_formula_figure``: the scores one layer holds at a chosen length, against dense attention,
  **counted from the formula** (``postlib.sparse.analysis.pattern_memory``): nothing of that size is
  allocated, so it goes to 10⁶ tokens.

Everything a reader sizes is checked against the memory budget before it is computed
(``drawn_bytes``, ``count_bytes``; tests/apps/test_page_budgets.py holds them above the measured peaks).
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import (Page, beside, budget_refusal, cached_figure, captioned_figure, controls, guarded,
                          labelled_player, memory_budget_bytes, section, stack)
from postlib.sparse.analysis import MAX_FORMULA_BLOCKS
from postlib.viz.sparse import memory_formula_figure, pattern_figure, pattern_reach_figure

PATTERNS = {"sliding window": "sliding", "Longformer (window + global tokens)": "longformer",
            "BigBird (window + global + random blocks)": "bigbird", "LongNet (dilated segments)": "dilated"}
SHORT_NAMES = {"sliding": "window", "longformer": "Longformer", "bigbird": "BigBird", "dilated": "LongNet"}
# The widgets each pattern uses (the others are hidden while it is chosen).
KNOBS = {"sliding": ("window",), "longformer": ("window", "global_tokens"),
         "bigbird": ("block_size", "random_blocks", "global_blocks", "seed"),
         "dilated": ("segment_length", "dilation", "pairs")}
# Awkward lengths (13, 100, 200) beside powers of two: tiles that do not divide L are drawn cut.
LENGTHS = [13, 16, 32, 48, 64, 100, 128, 200, 256, 384, 512]
# A heatmap of more than 512 × 512 cells makes the browser crawl (the figure is sent as JSON).
MAX_DRAWN_LENGTH = 512
MEMORY_LENGTHS = [1024, 4096, 16384, 65536, 262144, 1048576]
MAX_LAYERS = 8
# Measured (tests/apps/test_page_budgets.py): the drawn mask and its tiles (int64 index grids inside
# attention_mask, the int8 z and its copy in the figure cache), plus LongNet's receptive field, whose
# sparse masks hold about 40 bytes per kept (query, key) pair for each head's pairs: 7 MiB in all for a
# 512 × 512 window with tiles of 4 (28 bytes per cell, overhead included), 4 MiB for LongNet with 64 heads.
# Charged: 96 bytes per cell, 48 per cell and head for LongNet, and 16 MiB of plotly objects.
CELL_BYTES, HEAD_CELL_BYTES, DRAW_OVERHEAD_BYTES = 96, 48, 16 * 2 ** 20
# The count from the formula: about a dozen int64 vectors of L for a window (Longformer's globals), the
# (n × n) block mask of BigBird (one byte per block pair, a few copies). Charged: 160 bytes per token,
# 8 per block pair, 4 MiB of plotly objects.
TOKEN_BYTES, BLOCK_PAIR_BYTES, COUNT_OVERHEAD_BYTES = 160, 8, 4 * 2 ** 20


def drawn_bytes(kind: str, length: int, heads: int = 1) -> int:
    """An upper bound on the bytes the mask figure and the receptive field of ``length`` tokens allocate."""
    cells = int(length) ** 2
    per_head = HEAD_CELL_BYTES * cells * int(heads) if kind == "dilated" else 0
    return CELL_BYTES * cells + per_head + DRAW_OVERHEAD_BYTES


def count_bytes(kind: str, length: int, block_size: int = 1) -> int:
    """An upper bound on the bytes counting one layer's scores from the formula allocates (and its figure)."""
    blocks = -(-int(length) // int(block_size))
    pairs = BLOCK_PAIR_BYTES * blocks ** 2 if kind == "bigbird" else 0
    return TOKEN_BYTES * int(length) + pairs + COUNT_OVERHEAD_BYTES


class SparsityPage(Page):
    """Choose a pattern; see its mask, the tiles it needs, how far it reaches, and what it saves."""

    pattern = param.Selector(default="Longformer (window + global tokens)", objects=list(PATTERNS))
    length = param.Selector(default=128, objects=LENGTHS, doc="Sequence length L of the drawn mask.")
    causal = param.Boolean(default=True, doc="Intersect with the lower triangle (a decoder).")
    tile = param.Selector(default=16, objects=[4, 8, 16, 32, 64], doc="Tile side of the block-sparse kernel.")
    window = param.Integer(default=16, bounds=(1, 256), doc="Sliding window w: |i − j| ≤ w // 2.")
    global_tokens = param.Integer(default=2, bounds=(0, 16), doc="Leading global tokens (Longformer).")
    block_size = param.Selector(default=8, objects=[2, 4, 8, 16, 32, 64], doc="BigBird block b.")
    random_blocks = param.Integer(default=2, bounds=(0, 8), doc="BigBird random blocks per block row.")
    global_blocks = param.Integer(default=1, bounds=(0, 4), doc="BigBird global block rows and columns.")
    seed = param.Integer(default=0, bounds=(0, 10_000), doc="Seed of BigBird's random blocks.")
    segment_length = param.Selector(default=8, objects=[2, 4, 8, 16, 32, 64], doc="LongNet's first segment w₀.")
    dilation = param.Selector(default=2, objects=[2, 3, 4, 8], doc="LongNet's ratio: pair k is (w₀·rᵏ, rᵏ).")
    pairs = param.Integer(default=3, bounds=(1, 5), doc="Number of LongNet (segment, dilation) pairs.")
    heads = param.Integer(default=8, bounds=(1, 64), doc="Heads: LongNet's offsets, and the memory count.")
    memory_length = param.Selector(default=16384, objects=MEMORY_LENGTHS, doc="Length for the memory count.")

    def __init__(self, budget_bytes: int | None = None, **params):
        super().__init__(**params)
        self._budget_bytes = budget_bytes
        self.refusal.css_classes = ["sparsity-refusal"]
        self.memory_refusal = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width",
                                            css_classes=["sparsity-memory-refusal"])
        self.mask_pane = captioned_figure(css_classes=["sparsity-mask"])
        self.field_pane = captioned_figure(css_classes=["sparsity-field"])
        self.memory_pane = captioned_figure(css_classes=["sparsity-memory"])
        self.player = labelled_player("layers", start=0, end=MAX_LAYERS, value=2, interval=900)
        self.player.param.watch(self._on_player, "value")
        self.knobs = {
            "window": pn.widgets.IntSlider.from_param(self.param.window, name="window w", end=128),
            "global_tokens": pn.widgets.IntSlider.from_param(self.param.global_tokens, name="global tokens"),
            "block_size": pn.widgets.DiscreteSlider.from_param(self.param.block_size, name="block size b"),
            "random_blocks": pn.widgets.IntSlider.from_param(self.param.random_blocks, name="random blocks per row"),
            "global_blocks": pn.widgets.IntSlider.from_param(self.param.global_blocks, name="global blocks"),
            "seed": pn.widgets.IntInput.from_param(self.param.seed, name="seed"),
            "segment_length": pn.widgets.DiscreteSlider.from_param(self.param.segment_length,
                                                                   name="LongNet segment w₀"),
            "dilation": pn.widgets.DiscreteSlider.from_param(self.param.dilation, name="LongNet dilation ratio r"),
            "pairs": pn.widgets.IntSlider.from_param(self.param.pairs, name="LongNet pairs (w₀rᵏ, rᵏ)"),
        }
        self.show_knobs()
        self.draw_pattern()
        self.draw_memory()

    # ----- settings ---------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return PATTERNS[self.pattern]

    @property
    def budget_bytes(self) -> int:
        return memory_budget_bytes() if self._budget_bytes is None else self._budget_bytes

    def pattern_params(self, length: int | None = None) -> dict:
        """The chosen pattern's ``attention_mask`` parameters, from the sliders (globals cut to ``length``)."""
        length = self.length if length is None else length
        if self.kind == "sliding":
            return dict(window=self.window)
        if self.kind == "longformer":
            return dict(window=self.window, global_tokens=list(range(min(self.global_tokens, length))))
        if self.kind == "bigbird":
            return dict(block_size=self.block_size, num_random_blocks=self.random_blocks,
                        num_global_blocks=self.global_blocks, seed=self.seed)
        ratios = [self.dilation ** k for k in range(self.pairs)]
        return dict(segment_lengths=[self.segment_length * r for r in ratios], dilations=ratios)

    def compare_window(self) -> int | None:
        """The plain window the receptive field is compared with: about the pattern's own local width."""
        return {"sliding": None, "longformer": self.window, "bigbird": 2 * self.block_size + 1,
                "dilated": self.segment_length + 1}[self.kind]

    def reach_heads(self) -> int:
        return self.heads if self.kind == "dilated" else 1

    @param.depends("pattern", watch=True)
    def show_knobs(self) -> None:
        for name, widget in self.knobs.items():
            widget.visible = name in KNOBS[self.kind]

    def refusal_message(self) -> str | None:
        """Why the mask and its receptive field are not drawn (memory or browser limit), or None."""
        L = self.length
        message = budget_refusal(f"the {L} × {L} mask and its receptive field",
                                 drawn_bytes(self.kind, L, self.reach_heads()), self.budget_bytes)
        if message is None and L > MAX_DRAWN_LENGTH:
            message = (f"Refused: a {L} × {L} mask has {L ** 2:,} cells, more than a browser draws smoothly "
                       f"(this page draws up to {MAX_DRAWN_LENGTH} × {MAX_DRAWN_LENGTH}).")
        return message

    def memory_refusal_message(self) -> str | None:
        L = self.memory_length
        if self.kind == "bigbird" and -(-L // self.block_size) > MAX_FORMULA_BLOCKS:
            return (f"Refused: BigBird's count walks its block mask, and L = {L:,} in blocks of {self.block_size} "
                    f"is more than {MAX_FORMULA_BLOCKS:,} blocks per side. Choose a larger block or a shorter length.")
        return budget_refusal(f"counting the scores at L = {L:,}", count_bytes(self.kind, L, self.block_size),
                              self.budget_bytes)

    # ----- drawing ----------------------------------------------------------------------------
    @param.depends("pattern", "length", "causal", "tile", "window", "global_tokens", "block_size", "random_blocks",
                   "global_blocks", "seed", "segment_length", "dilation", "pairs", "heads", watch=True)
    @guarded
    def draw_pattern(self) -> None:
        drawable = not self.refuse(self.refusal_message())
        self.mask_pane.visible = self.field_pane.visible = drawable
        if not drawable:
            return
        self.mask_pane.object = cached_figure(pattern_figure, self.kind, self.length, causal=self.causal,
                                              tile=self.tile, name=SHORT_NAMES[self.kind], **self.pattern_params())
        self.draw_field()

    @guarded
    def _on_player(self, _event) -> None:
        if self.field_pane.visible:
            self.draw_field()

    def draw_field(self) -> None:
        heads = self.reach_heads()
        name = SHORT_NAMES[self.kind] + (f", {heads} heads" if heads > 1 else "")
        layer = min(max(int(self.player.value), 0), MAX_LAYERS)
        self.field_pane.object = cached_figure(pattern_reach_figure, self.kind, self.length, layer, layers=MAX_LAYERS,
                                               causal=self.causal, heads=heads, compare=self.compare_window(),
                                               name=name, **self.pattern_params())

    @param.depends("pattern", "causal", "window", "global_tokens", "block_size", "random_blocks", "global_blocks",
                   "seed", "segment_length", "dilation", "pairs", "heads", "memory_length", watch=True)
    @guarded
    def draw_memory(self) -> None:
        message = self.memory_refusal_message()
        self.memory_refusal.object = message or ""
        self.memory_refusal.visible = message is not None
        self.memory_pane.visible = message is None
        if message is not None:
            return
        L = self.memory_length
        self.memory_pane.object = cached_figure(memory_formula_figure, self.kind, L, causal=self.causal,
                                                heads=self.heads, name=SHORT_NAMES[self.kind],
                                                **self.pattern_params(L))

    # ----- layout -----------------------------------------------------------------------------
    def __panel__(self):
        settings = stack(
            pn.widgets.Select.from_param(self.param.pattern, name="pattern"),
            pn.widgets.DiscreteSlider.from_param(self.param.length, name="sequence length L"),
            controls(pn.widgets.Checkbox.from_param(self.param.causal, name="causal"),
                     pn.widgets.Select.from_param(self.param.tile, name="kernel tile"), basis_px=110),
            *self.knobs.values())
        memory_settings = controls(
            pn.widgets.DiscreteSlider.from_param(self.param.memory_length, name="length for the memory count"),
            pn.widgets.IntSlider.from_param(self.param.heads, name="heads H"))
        return stack(
            section("### Sparsity patterns\nEach query attends only the keys its pattern allows (dark cells), and "
                    "softmax runs over those alone. Longformer slides a window and adds global tokens; BigBird adds "
                    "random blocks; LongNet keeps every r-th token in segments of w, for several (w, r) at once. "
                    "Light cells are computed by a block-sparse kernel and masked; white tiles are skipped."),
            self.alert.pane,
            beside(settings, stack(self.refusal, self.mask_pane)),
            section("### Receptive field, layer by layer\nPress **Play**: after k layers the last token has read "
                    "every token that the k-th boolean power of the mask connects it to, against a plain window "
                    "of about the pattern's local width (LongNet: all H heads, offsets 0 … H − 1)."),
            self.player, self.field_pane,
            section("### Memory of the pattern against dense attention\nThe scores one layer holds, **counted from "
                    "the formula** (not measured), 4 bytes each, at any length."),
            memory_settings, self.memory_refusal, self.memory_pane)


PAGE = {"title": "Sparsity patterns", "order": 60, "viewer": SparsityPage}
