"""Mixing: RWKV's WKV state token by token, RWKV-6 forgetting on cue, ConvMixer's receptive field, gMLP's weights.

Widgets and layout only. The WKV trace is ``postlib.recurrent.wkv_trace.wkv_trace`` (the reference
loop, one channel), the figures are ``postlib.viz.mixing`` builders — the ones chapter 5 draws:
``wkv_state_figure`` (one frame per token; here a Player steps it), ``wkv_weights_figure`` (what
each output reads), ``rwkv6_decay_figure`` (on ``postlib.recurrent.rwkv6.reset_demo_log_decay``, the
chapter's forgetting demo), ``receptive_field_figure`` and ``spatial_weights_figure`` (the trained weights
come from the recorded ``gmlp-spatial`` experiment, ``postlib/bench/results/cpu_gmlp_spatial.json``).
Every figure comes from the server-wide cache (``apps.figures.cached_figure``).

The reader chooses lengths, depths and kernel sizes within bounds; each figure's size is checked
against the server's memory budget (``wkv_bytes``, ``forget_bytes``, ``field_bytes``, bounded by a measurement in
``tests/apps/test_page_budgets.py``) before it is built.
"""
from __future__ import annotations

import functools

import numpy as np
import panel as pn
import param

from apps.widgets import (Page, beside, budget_refusal, cached_figure, captioned_figure, controls, guarded,
                          labelled_player, section, stack)
from postlib.bench import load_results
from postlib.recurrent.rwkv6 import reset_demo_log_decay
from postlib.recurrent.wkv_trace import wkv_trace
from postlib.viz.mixing import (receptive_field_figure, rwkv6_decay_figure, spatial_weights_figure, wkv_state_figure,
                                wkv_weights_figure)

DECAYS = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
WKV_LENGTHS = [8, 12, 16, 24, 32, 48]
FIELD_LENGTHS = [16, 32, 48, 64]
FORGET_LENGTH = 32                        # tokens in the RWKV-6 forgetting demo (the chapter's)
# Measured (tests/apps/test_page_budgets.py): a WKV frame or weights map holds a few float64 L × L
# arrays (log weights, softmax, the figure's copy) plus a few MiB of plotly objects; the receptive
# field multiplies int64 L × L matrices ``depth`` times. Charged: 16 arrays and 6 MiB.
ARRAYS, BYTES_PER_ELEMENT, OVERHEAD_BYTES = 16, 8, 6 * 2 ** 20


def wkv_bytes(length: int) -> int:
    """An upper bound on the peak bytes of one WKV frame or weights map of ``length`` tokens."""
    return ARRAYS * BYTES_PER_ELEMENT * int(length) ** 2 + OVERHEAD_BYTES


def field_bytes(length: int) -> int:
    """An upper bound on the peak bytes of one receptive-field map over ``length`` positions."""
    return ARRAYS * BYTES_PER_ELEMENT * int(length) ** 2 + OVERHEAD_BYTES


def forget_bytes() -> int:
    """An upper bound on the peak bytes of the RWKV-6 forgetting demo: two L × L maps, charged like WKV's."""
    return wkv_bytes(FORGET_LENGTH)


def _channel(length: int, seed: int):
    g = np.random.default_rng(seed)
    return g.normal(size=length), g.normal(size=length)


@functools.lru_cache(maxsize=32)
def _trace(decay: float, bonus: float, length: int, seed: int) -> dict:
    return wkv_trace(decay, bonus, *_channel(length, seed))


def state_frame(t: int, decay: float, bonus: float, length: int, seed: int):
    """The WKV state figure at token ``t`` for one setting (a pure function of its arguments)."""
    return wkv_state_figure(t, _trace(decay, bonus, length, seed))


def forgetting_figure(strength: float, reset_at: int, length: int = FORGET_LENGTH):
    """What one RWKV-6 key channel keeps with a fixed decay and with a reset token at ``reset_at``."""
    return rwkv6_decay_figure({"fixed decay (RWKV-4, RWKV-5)": reset_demo_log_decay(length, ()),
                               "decay from the input (RWKV-6)": reset_demo_log_decay(length, [reset_at],
                                                                                     strength=strength)},
                              marks=[reset_at])


def recorded_spatial_figure():
    """gMLP's spatial weights at initialisation and after training, from the recorded experiment."""
    rec = load_results("cpu_gmlp_spatial.json")
    return spatial_weights_figure(rec["W_init"], rec["W_trained"], lag=rec["lag"], provenance=rec["provenance"])


class MixingPage(Page):
    """RWKV's WKV (Player + weights map), ConvMixer's receptive field, gMLP's recorded spatial weights."""

    decay = param.Selector(default=0.2, objects=DECAYS, doc="WKV decay rate w (per token).")
    bonus = param.Number(default=0.5, bounds=(-2.0, 2.0), step=0.25, doc="WKV bonus u of the current token.")
    wkv_length = param.Selector(default=24, objects=WKV_LENGTHS, doc="Tokens in the WKV demo.")
    seed = param.Integer(default=0, bounds=(0, 10_000))
    kernel_size = param.Integer(default=5, bounds=(2, 9), doc="ConvMixer kernel size k.")
    depth = param.Integer(default=3, bounds=(0, 16), doc="Stacked ConvMixer blocks.")
    field_length = param.Selector(default=48, objects=FIELD_LENGTHS, doc="Positions in the receptive-field map.")
    reset_strength = param.Number(default=5.0, bounds=(0.0, 6.0), step=0.5,
                                  doc="How far the reset token pushes RWKV-6's d_t up (B of the low-rank map).")
    reset_at = param.Integer(default=12, bounds=(1, FORGET_LENGTH - 2), doc="The token that carries the reset feature.")

    def __init__(self, budget_bytes: int | None = None, **params):
        super().__init__(**params)
        self._budget_bytes = budget_bytes
        self._refusals: dict[str, str | None] = {}
        self.refusal.css_classes = ["mixing-refusal"]
        self.state_pane = captioned_figure(css_classes=["mixing-wkv-state"])
        self.weights_pane = captioned_figure(css_classes=["mixing-wkv-weights"])
        self.field_pane = captioned_figure(css_classes=["mixing-field"])
        self.forget_pane = captioned_figure(css_classes=["mixing-forget"])
        self.spatial_pane = captioned_figure(css_classes=["mixing-spatial"])
        self.player = labelled_player("token t", start=0, end=self.wkv_length - 1, interval=500)
        self.player.param.watch(self._on_player, "value")
        self.reset_wkv()
        self.draw_forgetting()
        self.draw_field()
        self.draw_spatial()

    def _refused(self, section_name: str, what: str, need: int) -> bool:
        """Check one section's size; the banner shows every section's refusal at once."""
        self._refusals[section_name] = budget_refusal(what, need, self._budget_bytes)
        self.refuse(" ".join(m for m in self._refusals.values() if m) or None)
        return self._refusals[section_name] is not None

    # ----- RWKV -------------------------------------------------------------------------------
    @param.depends("decay", "bonus", "wkv_length", "seed", watch=True)
    @guarded
    def reset_wkv(self) -> None:
        """New WKV settings: the player keeps its token if it still exists, and both figures redraw."""
        if self._refused("wkv", f"the {self.wkv_length}-token WKV demo", wkv_bytes(self.wkv_length)):
            self.state_pane.visible = self.weights_pane.visible = False
            return
        with param.parameterized.discard_events(self.player):
            self.player.end = self.wkv_length - 1
            self.player.value = min(int(self.player.value), self.wkv_length - 1)
        self.weights_pane.object = cached_figure(wkv_weights_figure, self.decay, self.wkv_length, self.bonus,
                                                 1.0, self.seed)
        self.state_pane.visible = self.weights_pane.visible = True
        self.draw_state()

    @guarded
    def _on_player(self, _event) -> None:
        self.draw_state()

    def draw_state(self) -> None:
        t = min(max(int(self.player.value), 0), self.wkv_length - 1)
        self.state_pane.object = cached_figure(state_frame, t, self.decay, self.bonus, self.wkv_length, self.seed)

    # ----- RWKV-6 -----------------------------------------------------------------------------
    @param.depends("reset_strength", "reset_at", watch=True)
    @guarded
    def draw_forgetting(self) -> None:
        if self._refused("forget", "the RWKV-6 forgetting demo", forget_bytes()):
            self.forget_pane.visible = False
            return
        self.forget_pane.object = cached_figure(forgetting_figure, float(self.reset_strength), int(self.reset_at))
        self.forget_pane.visible = True

    # ----- ConvMixer --------------------------------------------------------------------------
    @param.depends("kernel_size", "depth", "field_length", watch=True)
    @guarded
    def draw_field(self) -> None:
        if self._refused("field", f"the {self.field_length}-position receptive field", field_bytes(self.field_length)):
            self.field_pane.visible = False
            return
        self.field_pane.object = cached_figure(receptive_field_figure, self.depth, self.kernel_size, self.field_length)
        self.field_pane.visible = True

    # ----- gMLP -------------------------------------------------------------------------------
    @guarded
    def draw_spatial(self) -> None:
        self.spatial_pane.object = cached_figure(recorded_spatial_figure)

    # ----- layout -----------------------------------------------------------------------------
    def __panel__(self):
        wkv_settings = stack(
            pn.widgets.DiscreteSlider.from_param(self.param.decay, label="decay w"),
            pn.widgets.FloatSlider.from_param(self.param.bonus, label="bonus u"),
            controls(pn.widgets.Select.from_param(self.param.wkv_length, label="tokens"),
                     pn.widgets.IntInput.from_param(self.param.seed, label="seed"), basis_px=110))
        forget_settings = stack(
            pn.widgets.FloatSlider.from_param(self.param.reset_strength, label="reset strength"),
            pn.widgets.IntSlider.from_param(self.param.reset_at, label="reset at token"))
        field_settings = stack(
            pn.widgets.IntSlider.from_param(self.param.kernel_size, label="kernel size k"),
            pn.widgets.IntSlider.from_param(self.param.depth, label="depth (blocks)"),
            pn.widgets.Select.from_param(self.param.field_length, label="positions"))
        return stack(
            section("### RWKV: the WKV state, token by token\nOne channel of RWKV-4's WKV operator, run as the "
                    "RNN (`postlib.recurrent.wkv`, the reference loop). Press **Play**: each step decays the "
                    "numerator and denominator by e^(−w) and adds the new token's e^k·(v, 1); the output is their "
                    "ratio. Beside it, the weights every output gives to the past — the attention matrix WKV "
                    "never builds. A small w remembers long, a large w only the last tokens."),
            self.alert.pane, self.refusal,
            beside(wkv_settings, stack(self.player, self.state_pane)),
            self.weights_pane,
            section("### RWKV-6: forgetting on cue\nRWKV-6 computes its decay from the token "
                    "(`postlib.recurrent.rwkv6`): w_t = exp(−exp(d_t)), d_t = ω + tanh(x_t A) B. Here one token "
                    "carries a reset feature, and the strength is B: the larger it is, the closer that token's "
                    "w_t gets to 0, and the state forgets everything before it. A fixed decay (left) cannot."),
            beside(forget_settings, self.forget_pane),
            section("### ConvMixer: the receptive field\nA stack of causal depthwise convolutions of size k: one "
                    "output sees depth·(k − 1) + 1 positions, a field that grows linearly with depth. The colours "
                    "count the paths from each input, which crowd in the middle of the window."),
            beside(field_settings, self.field_pane),
            section("### gMLP: the spatial weights\nThe length × length matrix W of a one-layer gMLP, at "
                    "initialisation (near zero: the unit starts as the identity) and after training on a copy "
                    "with a fixed lag (recorded by `python -m postlib.bench gmlp-spatial`): the rule is one "
                    "subdiagonal."),
            self.spatial_pane)


PAGE = {"title": "Mixing", "order": 40, "viewer": MixingPage}
