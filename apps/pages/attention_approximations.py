"""Attention approximations: pick a method, slide its budget, compare its map with softmax's.

Widgets and layout only: the maps are ``postlib.viz.approx.approx_maps_figure`` (each method's
effective map is the method applied to V = I), the error-vs-budget curve is
``error_vs_budget_figure``, and the Player steps through ``rnn_state_step`` (causal linear
attention's state S_t accumulating token by token).
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import ErrorAlert, over_budget_message, plotly_pane
from postlib.viz.approx import (BUDGET_NAME, DEFAULT_BUDGETS, METHODS, approx_maps_figure, error_vs_budget_figure,
                                rnn_state_step)

BUDGET_RANGE = {"linear": (1, 1), "performer": (1, 1024), "linformer": (1, 512), "reformer": (1, 16)}
# The maps are (L × L) float64 matrices; the methods also build a few temporaries of that size
# (Performer: L × m features). Three heatmaps of L² cells is what a browser redraws comfortably.
MAX_CELLS = 3 * 256 * 256


def map_bytes(method: str, budget: int, length: int, head_dim: int) -> int:
    """A generous estimate of the float64 memory one map computation needs."""
    per = 8 * length * length * 6
    if method == "performer":
        per += 8 * length * budget * 4
    if method == "reformer":
        per += 8 * length * length * budget * 2
    return per + 8 * length * head_dim * 8


class AttentionApproximationsPage(pn.viewable.Viewer):
    """Approximate attention maps against the exact one, with error and cost; the linear-attention state."""

    method = param.Selector(default="performer", objects=list(METHODS), doc="The approximation.")
    budget = param.Integer(default=16, bounds=(1, 1024),
                           doc="Features m (Performer), rank k (Linformer) or hash rounds (Reformer).")
    length = param.Integer(default=64, bounds=(8, 512), doc="Sequence length L.")
    head_dim = param.Integer(default=16, bounds=(2, 128), doc="Head dimension d.")
    causal = param.Boolean(default=False, doc="Causal mask (not available for Linformer).")
    seed = param.Integer(default=0, bounds=(0, 10_000))
    state_length = param.Integer(default=16, bounds=(2, 64), doc="Tokens in the RNN-state animation.")

    def __init__(self, **params):
        super().__init__(**params)
        self.alert = ErrorAlert()
        self.refusal = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.maps_pane = plotly_pane(css_classes=["approx-maps"])
        self.error_pane = plotly_pane(css_classes=["approx-error"])
        self.state_pane = plotly_pane(css_classes=["approx-state"])
        self.player = pn.widgets.Player(label="token t", start=0, end=self.state_length - 1, value=0, step=1,
                                        interval=400, loop_policy="once", show_loop_controls=False,
                                        sizing_mode="stretch_width")
        self.player.param.watch(self.alert.guard(lambda _e: self.draw_state()), "value")
        self.param.watch(self.alert.guard(lambda _e: self._on_method()), ["method"])
        self.param.watch(self.alert.guard(lambda _e: self.draw_maps()), ["budget", "length", "head_dim", "causal", "seed"])
        self.param.watch(self.alert.guard(lambda _e: self._on_state_length()), ["state_length"])
        self.alert.guard(self._on_method)()
        self.alert.guard(self.draw_state)()

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
        return over_budget_message("this map", map_bytes(self.method, self.budget, self.length, self.head_dim),
                                   2 ** 31)

    def _on_method(self) -> None:
        lo, hi = BUDGET_RANGE[self.method]
        with param.parameterized.discard_events(self):
            self.budget = min(max(self.budget, lo), hi)            # e.g. 256 features → 16 hash rounds
            if self.method == "linformer":
                self.causal = False
        self.draw_maps()
        self.draw_error()

    def _on_state_length(self) -> None:
        with param.parameterized.discard_events(self.player):
            self.player.end = self.state_length - 1
            self.player.value = min(self.player.value, self.state_length - 1)
        self.draw_state()

    def draw_maps(self) -> None:
        message = self.refusal_message()
        if message is not None:
            self.refusal.object, self.refusal.visible = message, True
            return
        self.refusal.visible = False
        self.maps_pane.object = approx_maps_figure(self.method, self.budget, self.length, self.head_dim,
                                                   self.causal, self.seed)

    def draw_error(self) -> None:
        if self.method == "linear":
            budgets = {m: b[:4] for m, b in DEFAULT_BUDGETS.items() if m != "linear"}
        else:
            budgets = {self.method: DEFAULT_BUDGETS[self.method]}
        self.error_pane.object = error_vs_budget_figure(budgets, length=min(self.length, 64), head_dim=self.head_dim,
                                                        seeds=(self.seed,))

    def draw_state(self) -> None:
        self.state_pane.object = rnn_state_step(int(self.player.value), self.state_length, 8, self.seed)

    def __panel__(self):
        controls = pn.Column(
            pn.widgets.Select.from_param(self.param.method, name="method"),
            pn.widgets.IntSlider.from_param(self.param.budget, name="budget (features / rank / rounds)", end=256),
            pn.widgets.IntSlider.from_param(self.param.length, name="length L", end=256, step=8),
            pn.widgets.IntSlider.from_param(self.param.head_dim, name="head dim d", end=64),
            pn.widgets.Checkbox.from_param(self.param.causal, name="causal"),
            pn.widgets.IntInput.from_param(self.param.seed, name="seed"), width=280)
        return pn.Column(
            pn.pane.Markdown(
                "### Attention approximations\nEach method's map is the method applied to V = I, next to exact "
                "softmax and the absolute error. Slide the budget: Performer's error falls like 1/√m, Linformer's "
                "with the rank k, Reformer's with the number of hash rounds.", sizing_mode="stretch_width"),
            self.alert.pane,
            pn.Row(controls, pn.Column(self.refusal, self.maps_pane, self.error_pane, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.pane.Markdown("### Causal linear attention is an RNN\nPress ▶: the state S_t = S_(t−1) + φ(k_t)v_tᵀ "
                             "keeps a fixed size while the tokens it summarises accumulate.",
                             sizing_mode="stretch_width"),
            pn.widgets.IntSlider.from_param(self.param.state_length, name="tokens"),
            self.player, self.state_pane, sizing_mode="stretch_width")


PAGE = {"title": "Attention approximations", "order": 30, "viewer": AttentionApproximationsPage}
