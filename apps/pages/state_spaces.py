"""State spaces: S4D's and Mamba's hidden states, HiPPO rebuilding a signal, where discretization sends eigenvalues.

Widgets and layout only: the states are ``postlib.ssm.demo.state_trajectories``, the HiPPO memory is
``postlib.ssm.hippo``, the figures are ``postlib.viz.ssm``; every figure comes from the server-wide cache
(``apps.figures.cached_figure``), so a Player replay or a second reader costs a copy, not a rebuild.
"""
from __future__ import annotations

import functools

import panel as pn
import param

from apps.widgets import (Page, beside, budget_refusal, cached_figure, controls, guarded, labelled_player,
                          captioned_figure, section, stack)
from postlib.ssm.demo import INPUTS, demo_input, state_trajectories
from postlib.ssm.hippo import KINDS
from postlib.viz.ssm import eigenvalue_map, hidden_state_figure, hippo_reconstruction

# Heatmap cells a browser redraws smoothly on every Player step (two heatmaps of N × L).
MAX_CELLS = 60_000
HIPPO_L = 400
# Measured (tests/apps/test_page_budgets.py): the trajectories and one frame's figure hold about
# 12 float64 values per heatmap cell, plus a few MiB of plotly objects. Charged: 16 and 4 MiB.
BYTES_PER_CELL, OVERHEAD_BYTES = 16 * 8, 4 * 2 ** 20


def state_cells(length: int, N: int) -> int:
    return 2 * int(length) * int(N)


def states_bytes(length: int, N: int) -> int:
    """An upper bound on the bytes one hidden-state frame allocates (trajectories and figure)."""
    return BYTES_PER_CELL * state_cells(length, N) + OVERHEAD_BYTES


@functools.lru_cache(maxsize=16)
def _trajectories(input_kind: str, length: int, N: int, dt: float, selectivity: float, seed: int):
    u = demo_input(input_kind, length, seed=seed)
    return u, state_trajectories(u, N=N, dt=dt, selectivity=selectivity)


def states_figure(t: int, input_kind: str, length: int, N: int, dt: float, selectivity: float, seed: int):
    """The hidden-state figure at time ``t`` for one demo setting (a pure function of its arguments)."""
    u, traj = _trajectories(input_kind, length, N, dt, selectivity, seed)
    return hidden_state_figure(t, traj, u)


class StateSpacesPage(Page):
    """S4D vs Mamba hidden states (Player), the HiPPO reconstruction explorer, the discretization map."""

    input_kind = param.Selector(default="spikes", objects=list(INPUTS), doc="The input signal.")
    length = param.Integer(default=200, bounds=(10, 4000), doc="Sequence length of the demo.")
    N = param.Integer(default=8, bounds=(1, 256), doc="State size N.")
    dt = param.Number(default=0.1, bounds=(0.005, 1.0), doc="Step size Δ (fixed for S4D, the base step for Mamba).")
    selectivity = param.Number(default=8.0, bounds=(0.0, 20.0),
                               doc="How strongly Mamba's Δ_t depends on |u_t| (0: no selectivity).")
    seed = param.Integer(default=3, bounds=(0, 10_000))
    hippo_kind = param.Selector(default="legs", objects=list(KINDS[:3]), doc="HiPPO measure.")
    hippo_N = param.Integer(default=16, bounds=(1, 64), doc="Number of HiPPO coefficients.")
    hippo_signal = param.Selector(default="sines", objects=["sines", "chirp", "steps", "noise"])
    hippo_step = param.Integer(default=HIPPO_L, bounds=(1, HIPPO_L), doc="Time step at which to rebuild the history.")
    eig_dt = param.Number(default=0.1, bounds=(0.001, 3.0), doc="Δ for the eigenvalue map.")

    def __init__(self, budget_bytes: int | None = None, **params):
        super().__init__(**params)
        self._budget_bytes = budget_bytes
        self._drawable = False
        self.state_pane = captioned_figure(css_classes=["ssm-states"])
        self.hippo_pane = captioned_figure(css_classes=["ssm-hippo"])
        self.eig_pane = captioned_figure(css_classes=["ssm-eigenvalues"])
        self.player = labelled_player("time step", start=1, end=self.length, value=self.length, interval=60)
        self.player.param.watch(self._on_player, "value")
        self.recompute_states()
        self.draw_hippo()
        self.draw_eigenvalues()

    def refusal_message(self) -> str | None:
        cells = state_cells(self.length, self.N)
        if cells > MAX_CELLS:
            return (f"Refused: L = {self.length} and N = {self.N} make {cells:,} heatmap cells, more than this page "
                    f"redraws smoothly at every step ({MAX_CELLS:,}). Shorten the input or use fewer states.")
        return budget_refusal("the state history", states_bytes(self.length, self.N), self._budget_bytes)

    @param.depends("input_kind", "length", "N", "dt", "selectivity", "seed", watch=True)
    @guarded
    def recompute_states(self) -> None:
        self._drawable = not self.refuse(self.refusal_message())
        self.state_pane.visible = self._drawable
        if not self._drawable:
            return
        with param.parameterized.discard_events(self.player):
            self.player.end = max(self.length, 2)
            self.player.value = min(max(int(self.player.value), 1), self.length)
        self.draw_states()

    @guarded
    def _on_player(self, _event) -> None:
        self.draw_states()

    def draw_states(self) -> None:
        if not self._drawable:
            return
        self.state_pane.object = cached_figure(states_figure, int(self.player.value), self.input_kind, self.length,
                                               self.N, self.dt, self.selectivity, self.seed)

    @param.depends("hippo_kind", "hippo_N", "hippo_signal", "hippo_step", watch=True)
    @guarded
    def draw_hippo(self) -> None:
        self.hippo_pane.object = cached_figure(hippo_reconstruction, self.hippo_step, kind=self.hippo_kind,
                                               N=self.hippo_N, signal=self.hippo_signal, L=HIPPO_L)

    @param.depends("eig_dt", watch=True)
    @guarded
    def draw_eigenvalues(self) -> None:
        self.eig_pane.object = cached_figure(eigenvalue_map, self.eig_dt)

    def __panel__(self):
        state_settings = stack(
            pn.widgets.Select.from_param(self.param.input_kind, label="input"),
            pn.widgets.IntSlider.from_param(self.param.length, label="length L", end=1000, step=10),
            pn.widgets.IntSlider.from_param(self.param.N, label="state size N", end=64),
            pn.widgets.FloatSlider.from_param(self.param.dt, label="Δ", step=0.005),
            pn.widgets.FloatSlider.from_param(self.param.selectivity, label="selectivity of Δ_t", step=0.5),
            pn.widgets.IntInput.from_param(self.param.seed, label="seed"))
        hippo_settings = controls(
            pn.widgets.Select.from_param(self.param.hippo_kind, label="measure"),
            pn.widgets.IntSlider.from_param(self.param.hippo_N, label="coefficients N"),
            pn.widgets.Select.from_param(self.param.hippo_signal, label="signal"),
            pn.widgets.IntSlider.from_param(self.param.hippo_step, label="time step"))
        return stack(
            section("### Hidden states: S4D vs Mamba\nPress **Play**. S4D uses one Δ for every step; Mamba computes "
                    "Δ_t from the input, so large inputs are written into the state and small ones barely touch it: "
                    "the state **holds** what mattered (selective forgetting). Set the selectivity to 0 and both "
                    "behave alike."),
            self.alert.pane,
            beside(state_settings, stack(self.refusal, self.player, self.state_pane)),
            section("### HiPPO: rebuilding the history from N numbers"),
            hippo_settings, self.hippo_pane,
            section("### Discretization: where the eigenvalues go\nZOH and bilinear keep every stable "
                    "eigenvalue inside the unit circle; forward Euler throws fast modes out of it."),
            controls(pn.widgets.FloatSlider.from_param(self.param.eig_dt, label="Δ", step=0.01)), self.eig_pane)


PAGE = {"title": "State spaces", "order": 20, "viewer": StateSpacesPage}
