"""Recurrent causal models: RetNet's decay and state, Transformer-XL's memory window, Mega's EMA kernel.

Widgets and layout only. The figures are ``postlib.viz.recurrent`` builders — the ones the chapter
"Recurrent causal models" draws: ``decay_figure`` (D and the forgetting curves for the decays
γ_h = 1 − (1 − γ_0)·2^(−h), RetNet's schedule when γ_0 = 1 − 2^(−5)), ``retention_state_figure`` (a
Player steps the state S_t token by token), ``memory_window_figure`` and ``reach_figure`` (a Player moves
the query along the segments) and ``ema_kernel_figure``. Every figure comes from the server-wide cache.

Every size a reader chooses is checked against the server's memory budget before anything is computed,
with a formula per figure (``*_bytes``) that ``tests/apps/test_recurrent_page.py`` holds above the
measured peak. The sliders' bounds keep every figure small (a 512 × 512 decay matrix at most), so on a
normal server nothing is refused; a refusal names the section and hides only that section's figure.
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import (Page, beside, budget_refusal, cached_figure, captioned_figure, controls, guarded,
                          labelled_player, section, stack)
from postlib.viz.recurrent import (decay_figure, ema_kernel_figure, memory_window_figure, reach_figure,
                                   retention_state_figure)

DECAY_LENGTHS = [1, 7, 16, 32, 64, 128, 256, 512]   # a 512 × 512 heatmap is the most a browser redraws smoothly
MAX_HEADS = 8
# Measured (tests/apps/test_recurrent_page.py): the largest decay figure (512 × 512, 8 heads) peaks at about
# 7 float64 values per cell of D (D, its masked copy, the figure's and the cache's copies), the others below
# that, plus well under 1 MiB of plotly objects whatever the size. Charged: 12 values per cell and 2 MiB.
BYTES_PER_CELL, OVERHEAD_BYTES = 12 * 8, 2 * 2 ** 20


def decay_gammas(gamma_0: float, n_heads: int) -> tuple[float, ...]:
    """γ_h = 1 − (1 − γ_0)·2^(−h): each head forgets half as fast as the one before (RetNet: γ_0 = 1 − 2^(−5))."""
    return tuple(1.0 - (1.0 - float(gamma_0)) * 2.0 ** -h for h in range(int(n_heads)))


def decay_bytes(length: int, n_heads: int) -> int:
    """An upper bound on the bytes one decay figure allocates (the L × L matrix and n_heads curves)."""
    return BYTES_PER_CELL * (int(length) ** 2 + int(n_heads) * int(length)) + OVERHEAD_BYTES


def state_bytes(length: int, dim: int) -> int:
    """An upper bound on the bytes one RetNet-state frame allocates (every state S_1 … S_L, d × d each)."""
    return BYTES_PER_CELL * int(length) * (int(dim) ** 2 + 2 * int(dim) + 1) + OVERHEAD_BYTES


def window_bytes(length: int, n_layers: int) -> int:
    """An upper bound on the bytes of one memory-window and one reach figure (n_layers × L cells, 3 curves)."""
    return BYTES_PER_CELL * int(length) * (int(n_layers) + 3) + OVERHEAD_BYTES


def ema_bytes(length: int) -> int:
    """An upper bound on the bytes of one EMA-kernel figure (six kernels of ``length`` lags)."""
    return BYTES_PER_CELL * 6 * int(length) + OVERHEAD_BYTES


class RecurrentPage(Page):
    """RetNet's decay per head and its state as tokens arrive, Transformer-XL's memory, Mega's EMA kernel."""

    gamma_0 = param.Number(default=1 - 2 ** -5, bounds=(0.5, 0.995), doc="Decay γ_0 of the fastest head.")
    n_heads = param.Integer(default=4, bounds=(1, MAX_HEADS), doc="Number of retention heads.")
    head = param.Integer(default=0, bounds=(0, MAX_HEADS - 1), doc="The head whose D is drawn.")
    decay_length = param.Selector(default=64, objects=DECAY_LENGTHS, doc="Length of D.")
    state_gamma = param.Number(default=0.8, bounds=(0.05, 0.99), doc="γ of the animated state.")
    state_length = param.Integer(default=24, bounds=(1, 128), doc="Tokens in the state demo.")
    state_dim = param.Integer(default=6, bounds=(1, 16), doc="d_k = d_v of the state demo.")
    seed = param.Integer(default=0, bounds=(0, 10_000))
    txl_length = param.Integer(default=32, bounds=(1, 96), doc="Tokens in the memory demo.")
    segment_length = param.Integer(default=8, bounds=(1, 32), doc="Transformer-XL's segment S.")
    memory_length = param.Integer(default=8, bounds=(0, 32), doc="Cached states per layer M (0: vanilla).")
    n_layers = param.Integer(default=2, bounds=(1, 4), doc="Layers N.")
    alpha = param.Number(default=0.5, bounds=(0.01, 0.99), doc="EMA α (weight of the present input).")
    delta = param.Number(default=0.5, bounds=(0.01, 0.99), doc="EMA δ (damping of the decay).")
    ema_length = param.Integer(default=48, bounds=(2, 256), doc="Lags drawn.")

    def __init__(self, budget_bytes: int | None = None, **params):
        super().__init__(**params)
        self._budget_bytes = budget_bytes
        self._refusals: dict[str, str] = {}
        self.decay_pane = captioned_figure(css_classes=["recurrent-decay"])
        self.state_pane = captioned_figure(css_classes=["recurrent-state"])
        self.window_pane = captioned_figure(css_classes=["recurrent-window"])
        self.reach_pane = captioned_figure(css_classes=["recurrent-reach"])
        self.ema_pane = captioned_figure(css_classes=["recurrent-ema"])
        self.head_slider = pn.widgets.IntSlider.from_param(self.param.head, label="drawn head h",
                                                           end=self.n_heads - 1 if self.n_heads > 1 else 1)
        self.state_player = labelled_player("token t", start=0, end=max(self.state_length - 1, 1),
                                            value=self.state_length - 1, interval=400)
        self.state_player.param.watch(self._on_state_player, "value")
        self.window_player = labelled_player("query position", start=0, end=max(self.txl_length - 1, 1),
                                             value=self.txl_length - 1, interval=500)
        self.window_player.param.watch(self._on_window_player, "value")
        self.draw_decay()
        self.reset_state()
        self.reset_window()
        self.draw_ema()

    def warm(self) -> None:
        """The decay figure for every head count at the other settings' defaults: the page's first slider.

        A new decay figure takes ~70 ms of plotly object building on a 2-core server, a cached one ~15 ms;
        warm, a lone reader's move of the heads slider redraws in well under 200 ms (``apps.loadtest``).
        """
        for n_heads in range(1, MAX_HEADS + 1):
            need = decay_bytes(self.decay_length, n_heads)
            if budget_refusal("warming", need, self._budget_bytes) is None:
                cached_figure(decay_figure, decay_gammas(self.gamma_0, n_heads), self.decay_length,
                              head=min(self.head, n_heads - 1))

    # ----- budget -----------------------------------------------------------------------------
    def _check(self, key: str, what: str, need: int) -> bool:
        """Record (or clear) ``key``'s refusal and show every current one; True when ``what`` fits."""
        message = budget_refusal(what, need, self._budget_bytes)
        if message is None:
            self._refusals.pop(key, None)
        else:
            self._refusals[key] = message
        self.refuse(" ".join(self._refusals.values()) or None)
        return message is None

    # ----- RetNet: decay ----------------------------------------------------------------------
    @param.depends("gamma_0", "n_heads", "head", "decay_length", watch=True)
    @guarded
    def draw_decay(self) -> None:
        if self.head > self.n_heads - 1:         # fewer heads: draw the last one (the slider shows it)
            self.head = self.n_heads - 1         # re-enters draw_decay through the watcher
            return
        # Panel's slider needs end > start; with one head the slider is disabled at 0.
        self.head_slider.end = max(self.n_heads - 1, 1)
        self.head_slider.disabled = self.n_heads == 1
        fits = self._check("decay", f"the {self.decay_length} × {self.decay_length} decay matrix",
                           decay_bytes(self.decay_length, self.n_heads))
        self.decay_pane.visible = fits
        if fits:
            self.decay_pane.object = cached_figure(decay_figure, decay_gammas(self.gamma_0, self.n_heads),
                                                   self.decay_length, head=self.head)

    # ----- RetNet: state as tokens arrive -----------------------------------------------------
    @param.depends("state_gamma", "state_length", "state_dim", "seed", watch=True)
    @guarded
    def reset_state(self) -> None:
        """New settings: the player keeps its token where it can and ends at the last token."""
        with param.parameterized.discard_events(self.state_player):
            self.state_player.end = max(self.state_length - 1, 1)
            self.state_player.value = min(int(self.state_player.value), self.state_length - 1)
        self.state_player.disabled = self.state_length == 1
        self.draw_state()

    @guarded
    def _on_state_player(self, _event) -> None:
        self.draw_state()

    def draw_state(self) -> None:
        fits = self._check("state", f"the states of {self.state_length} tokens",
                           state_bytes(self.state_length, self.state_dim))
        self.state_pane.visible = fits
        if fits:
            t = min(int(self.state_player.value), self.state_length - 1)
            self.state_pane.object = cached_figure(retention_state_figure, t, self.state_gamma, self.state_length,
                                                   self.state_dim, self.state_dim, self.seed)

    # ----- Transformer-XL: memory window ------------------------------------------------------
    @param.depends("txl_length", "segment_length", "memory_length", "n_layers", watch=True)
    @guarded
    def reset_window(self) -> None:
        with param.parameterized.discard_events(self.window_player):
            self.window_player.end = max(self.txl_length - 1, 1)
            self.window_player.value = min(int(self.window_player.value), self.txl_length - 1)
        self.window_player.disabled = self.txl_length == 1
        fits = self._check("window", f"the memory window over {self.txl_length} tokens",
                           window_bytes(self.txl_length, self.n_layers))
        self.window_pane.visible = self.reach_pane.visible = fits
        if fits:
            self.reach_pane.object = cached_figure(reach_figure, self.txl_length, self.segment_length,
                                                   self.memory_length, self.n_layers)
            self.draw_window()

    @guarded
    def _on_window_player(self, _event) -> None:
        if self.window_pane.visible:
            self.draw_window()

    def draw_window(self) -> None:
        position = min(int(self.window_player.value), self.txl_length - 1)
        self.window_pane.object = cached_figure(memory_window_figure, position, self.txl_length,
                                                self.segment_length, self.memory_length, self.n_layers)

    # ----- Mega: EMA kernel -------------------------------------------------------------------
    @param.depends("alpha", "delta", "ema_length", watch=True)
    @guarded
    def draw_ema(self) -> None:
        fits = self._check("ema", f"the EMA kernel over {self.ema_length} lags", ema_bytes(self.ema_length))
        self.ema_pane.visible = fits
        if fits:
            self.ema_pane.object = cached_figure(ema_kernel_figure, self.alpha, self.delta, self.ema_length)

    # ----- layout -----------------------------------------------------------------------------
    def __panel__(self):
        # Heads first: the page's first slider moves in whole steps that its handle reports (noUiSlider's
        # aria-valuenow is rounded to one decimal, so γ₀'s 0.001 steps from 0.969 all read "1.0").
        decay_settings = stack(
            pn.widgets.IntSlider.from_param(self.param.n_heads, label="heads"),
            self.head_slider,
            pn.widgets.FloatSlider.from_param(self.param.gamma_0, label="γ₀ (fastest head)", step=0.001,
                                              format="0.000"),
            pn.widgets.DiscreteSlider.from_param(self.param.decay_length, label="length L"))
        state_settings = stack(
            pn.widgets.FloatSlider.from_param(self.param.state_gamma, label="γ", step=0.01),
            controls(pn.widgets.IntSlider.from_param(self.param.state_length, label="tokens"),
                     pn.widgets.IntSlider.from_param(self.param.state_dim, label="d_k = d_v"), basis_px=140),
            pn.widgets.IntInput.from_param(self.param.seed, label="seed"))
        window_settings = stack(
            pn.widgets.IntSlider.from_param(self.param.txl_length, label="tokens"),
            pn.widgets.IntSlider.from_param(self.param.segment_length, label="segment S"),
            pn.widgets.IntSlider.from_param(self.param.memory_length, label="memory M (0: vanilla)"),
            pn.widgets.IntSlider.from_param(self.param.n_layers, label="layers N"))
        ema_settings = controls(
            pn.widgets.FloatSlider.from_param(self.param.alpha, label="α", step=0.01),
            pn.widgets.FloatSlider.from_param(self.param.delta, label="δ", step=0.01),
            pn.widgets.IntSlider.from_param(self.param.ema_length, label="lags"))
        return stack(
            section("### Retention's decay, head by head\nRetNet weighs a token d steps back by γ^d, the same "
                    "for every input: the matrix D of the parallel form (QKᵀ ⊙ D)V is the causal mask and this "
                    "forgetting curve in one. Each head gets its own γ, here γ_h = 1 − (1 − γ₀)·2^(−h); "
                    "γ₀ = 1 − 2^(−5) ≈ 0.969 is the paper's schedule."),
            self.alert.pane, self.refusal,
            beside(decay_settings, self.decay_pane),
            section("### The same numbers as a state\nPress **Play**: each token adds k_tᵀv_t to a d × d "
                    "state and every earlier one shrinks by γ. The state never grows — this is what RetNet "
                    "decodes with instead of a KV cache."),
            beside(state_settings, stack(self.state_player, self.state_pane)),
            section("### Transformer-XL: the memory window\nPress **Play** to move the query along the "
                    "sequence. It attends to its own segment and to the cached states of the previous one "
                    "(no gradient flows into them); through N layers the reach grows by M per layer. Set the "
                    "memory to 0 for a vanilla segment model."),
            beside(window_settings, stack(self.window_player, self.window_pane)),
            self.reach_pane,
            section("### Mega: the damped EMA's kernel\nh_t = αβ x_t + (1 − αδ) h_(t−1): a real, diagonal "
                    "state-space model. Its kernel α(1 − αδ)^t decays without oscillating; α weighs the "
                    "present, δ damps the decay."),
            ema_settings, self.ema_pane)


PAGE = {"title": "Recurrent models", "order": 65, "viewer": RecurrentPage}
