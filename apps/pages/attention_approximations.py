"""Attention approximations: pick a method, slide its budget, compare its map with softmax's.

Widgets and layout only: the maps are ``postlib.viz.approx.approx_maps_figure`` (each method's
effective map is the method applied to V = I), the error-vs-budget curve is
``error_vs_budget_figure``, and the Player steps through ``rnn_state_step`` (causal linear
attention's state S_t accumulating token by token). Every figure comes from the server-wide
cache (``apps.figures.cached_figure``); ``map_bytes`` bounds what one map allocates (checked
against a measurement in ``tests/apps/test_page_budgets.py``).
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import (Page, beside, budget_refusal, cached_figure, controls, guarded, labelled_player,
                          captioned_figure, section, stack)
from postlib.viz.approx import (BUDGET_NAME, DEFAULT_BUDGETS, METHODS, approx_maps_figure, error_vs_budget_figure,
                                rnn_state_step)

BUDGET_RANGE = {"linear": (1, 1), "performer": (1, 1024), "linformer": (1, 512), "reformer": (1, 16)}
# Three heatmaps of L² cells is what a browser redraws comfortably.
MAX_CELLS = 3 * 256 * 256
# Measured peaks (tests/apps/test_page_budgets.py), in float64 L × L arrays: about 20 for
# any method (q, k, V = I, the exact and approximate maps, the error, the figure's and the
# cache's copies), plus Performer's L × m features and, for Reformer, about 7 per hash round
# (each round attends with V = I: its own L × L output and weights). Charged with margin.
BASE_ARRAYS, ARRAYS_PER_ROUND, OVERHEAD_BYTES = 24, 10, 4 * 2 ** 20


def map_bytes(method: str, budget: int, length: int, head_dim: int) -> int:
    """An upper bound on the bytes one map figure allocates (float64 throughout)."""
    square = 8 * length * length
    need = BASE_ARRAYS * square + 8 * length * head_dim * 16 + OVERHEAD_BYTES
    if method == "performer":
        need += 8 * length * budget * 8
    if method == "reformer":
        need += ARRAYS_PER_ROUND * budget * square
    return need


class AttentionApproximationsPage(Page):
    """Approximate attention maps against the exact one, with error and cost; the linear-attention state."""

    method = param.Selector(default="performer", objects=list(METHODS), doc="The approximation.")
    budget = param.Integer(default=16, bounds=(1, 1024),
                           doc="Features m (Performer), rank k (Linformer) or hash rounds (Reformer).")
    length = param.Integer(default=64, bounds=(8, 512), doc="Sequence length L.")
    head_dim = param.Integer(default=16, bounds=(2, 128), doc="Head dimension d.")
    causal = param.Boolean(default=False, doc="Causal mask (not available for Linformer).")
    seed = param.Integer(default=0, bounds=(0, 10_000))
    state_length = param.Integer(default=16, bounds=(2, 64), doc="Tokens in the RNN-state animation.")

    def __init__(self, budget_bytes: int | None = None, **params):
        super().__init__(**params)
        self._budget_bytes = budget_bytes
        self.maps_pane = captioned_figure(css_classes=["approx-maps"])
        self.error_pane = captioned_figure(css_classes=["approx-error"])
        self.state_pane = captioned_figure(css_classes=["approx-state"])
        self.player = labelled_player("token t", start=0, end=self.state_length - 1, interval=400)
        self.player.param.watch(self._on_player, "value")
        self._on_method()
        self.draw_state()

    # ------------------------------------------------------------------ logic (tested without a browser)
    def refusal_message(self) -> str | None:
        if self.method == "linformer" and self.causal:
            return ("Refused: Linformer cannot be causal — its projection E·K mixes every position into every "
                    "projected key, so each query would see the future. Untick 'causal' or pick another method.")
        lo, hi = BUDGET_RANGE[self.method]
        if not lo <= self.budget <= hi:
            return f"Refused: {BUDGET_NAME[self.method]} must be between {lo} and {hi} for {self.method}."
        if self.method == "linformer" and self.budget > self.length:
            return f"Refused: rank k = {self.budget} is larger than the length L = {self.length}."
        cells = 3 * self.length ** 2
        if cells > MAX_CELLS:
            return f"Refused: L = {self.length} makes {cells:,} heatmap cells (at most {MAX_CELLS:,} redraw smoothly)."
        return budget_refusal("this map", map_bytes(self.method, self.budget, self.length, self.head_dim),
                              self._budget_bytes)

    @param.depends("method", watch=True)
    @guarded
    def _on_method(self) -> None:
        lo, hi = BUDGET_RANGE[self.method]
        with param.parameterized.discard_events(self):
            self.budget = min(max(self.budget, lo), hi)            # e.g. 256 features → 16 hash rounds
            if self.method == "linformer":
                self.causal = False
        self.draw_maps()
        self.draw_error()

    @param.depends("state_length", watch=True)
    @guarded
    def _on_state_length(self) -> None:
        with param.parameterized.discard_events(self.player):
            self.player.end = self.state_length - 1
            self.player.value = min(self.player.value, self.state_length - 1)
        self.draw_state()

    @param.depends("budget", "length", "head_dim", "causal", "seed", watch=True)
    @guarded
    def draw_maps(self) -> None:
        if self.refuse(self.refusal_message()):
            return
        self.maps_pane.object = cached_figure(approx_maps_figure, self.method, self.budget, self.length,
                                              self.head_dim, self.causal, self.seed)

    def draw_error(self) -> None:
        if self.method == "linear":
            budgets = {m: b[:4] for m, b in DEFAULT_BUDGETS.items() if m != "linear"}
        else:
            budgets = {self.method: DEFAULT_BUDGETS[self.method]}
        self.error_pane.object = cached_figure(error_vs_budget_figure, budgets, length=min(self.length, 64),
                                               head_dim=self.head_dim, seeds=(self.seed,))

    @guarded
    def _on_player(self, _event) -> None:
        self.draw_state()

    def draw_state(self) -> None:
        self.state_pane.object = cached_figure(rnn_state_step, int(self.player.value), self.state_length, 8,
                                               self.seed)

    def __panel__(self):
        settings = stack(
            pn.widgets.Select.from_param(self.param.method, label="method"),
            pn.widgets.IntSlider.from_param(self.param.budget, label="budget (features / rank / rounds)", end=256),
            pn.widgets.IntSlider.from_param(self.param.length, label="length L", end=256, step=8),
            pn.widgets.IntSlider.from_param(self.param.head_dim, label="head dim d", end=64),
            controls(pn.widgets.Checkbox.from_param(self.param.causal, label="causal"),
                     pn.widgets.IntInput.from_param(self.param.seed, label="seed"), basis_px=110))
        return stack(
            section("### Attention approximations\nEach method's map is the method applied to V = I, next to "
                    "exact softmax and the absolute error. Slide the budget: Performer's error falls like 1/√m, "
                    "Linformer's with the rank k, Reformer's with the number of hash rounds."),
            self.alert.pane,
            beside(settings, stack(self.refusal, self.maps_pane, self.error_pane)),
            section("### Causal linear attention is an RNN\nPress **Play**: the state S_t = S_(t−1) + φ(k_t)v_tᵀ "
                    "keeps a fixed size while the tokens it summarises accumulate."),
            controls(pn.widgets.IntSlider.from_param(self.param.state_length, label="tokens")),
            self.player, self.state_pane)


PAGE = {"title": "Attention approximations", "order": 30, "viewer": AttentionApproximationsPage}
