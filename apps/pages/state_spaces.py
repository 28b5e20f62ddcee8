"""State spaces: watch S4D's and Mamba's hidden states, HiPPO rebuilding a signal, and where discretization sends eigenvalues.

Widgets and layout only: the states are ``postlib.ssm.demo.state_trajectories``, the HiPPO memory is
``postlib.ssm.hippo``, the figures are ``postlib.viz.ssm``.
"""
from __future__ import annotations

import panel as pn
import param

from apps.widgets import ErrorAlert, over_budget_message, plotly_pane
from postlib.ssm.demo import INPUTS, demo_input, state_trajectories
from postlib.ssm.hippo import KINDS
from postlib.viz.ssm import eigenvalue_map, hidden_state_figure, hippo_reconstruction

# Heatmap cells a browser redraws smoothly on every Player step (two heatmaps of N × L).
MAX_CELLS = 60_000
HIPPO_L = 400


def state_cells(length: int, N: int) -> int:
    return 2 * int(length) * int(N)


class StateSpacesPage(pn.viewable.Viewer):
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

    def __init__(self, **params):
        super().__init__(**params)
        self.alert = ErrorAlert()
        self.refusal = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.state_pane = plotly_pane(css_classes=["ssm-states"])
        self.hippo_pane = plotly_pane(css_classes=["ssm-hippo"])
        self.eig_pane = plotly_pane(css_classes=["ssm-eigenvalues"])
        self.player = pn.widgets.Player(label="time step", start=1, end=self.length, value=self.length, step=1,
                                        interval=60, loop_policy="once", show_loop_controls=False,
                                        sizing_mode="stretch_width")
        self._traj = None
        self._u = None
        self.player.param.watch(self.alert.guard(lambda _e: self.draw_states()), "value")
        self.param.watch(self.alert.guard(lambda _e: self.recompute_states()),
                         ["input_kind", "length", "N", "dt", "selectivity", "seed"])
        self.param.watch(self.alert.guard(lambda _e: self.draw_hippo()),
                         ["hippo_kind", "hippo_N", "hippo_signal", "hippo_step"])
        self.param.watch(self.alert.guard(lambda _e: self.draw_eigenvalues()), ["eig_dt"])
        for draw in (self.recompute_states, self.draw_hippo, self.draw_eigenvalues):
            self.alert.guard(draw)()

    def refusal_message(self) -> str | None:
        cells = state_cells(self.length, self.N)
        if cells > MAX_CELLS:
            return (f"Refused: L = {self.length} and N = {self.N} make {cells:,} heatmap cells, more than this page "
                    f"redraws smoothly at every step ({MAX_CELLS:,}). Shorten the input or use fewer states.")
        # The state history is 2 × L × N float64 values; the memory check keeps the page honest on tiny servers.
        return over_budget_message("the state history", 8 * cells, 2 ** 31)

    def recompute_states(self) -> None:
        message = self.refusal_message()
        if message is not None:
            self.refusal.object, self.refusal.visible = message, True
            self.state_pane.visible = False
            self._traj = None
            return
        self.refusal.visible = False
        self._u = demo_input(self.input_kind, self.length, seed=self.seed)
        self._traj = state_trajectories(self._u, N=self.N, dt=self.dt, selectivity=self.selectivity)
        with param.parameterized.discard_events(self.player):
            self.player.end = max(self.length, 2)
            self.player.value = min(max(int(self.player.value), 1), self.length)
        self.state_pane.visible = True
        self.draw_states()

    def draw_states(self) -> None:
        if self._traj is None:
            return
        self.state_pane.object = hidden_state_figure(int(self.player.value), self._traj, self._u)

    def draw_hippo(self) -> None:
        self.hippo_pane.object = hippo_reconstruction(self.hippo_step, kind=self.hippo_kind, N=self.hippo_N,
                                                      signal=self.hippo_signal, L=HIPPO_L)

    def draw_eigenvalues(self) -> None:
        self.eig_pane.object = eigenvalue_map(self.eig_dt)

    def __panel__(self):
        state_controls = pn.Column(
            pn.widgets.Select.from_param(self.param.input_kind, name="input"),
            pn.widgets.IntSlider.from_param(self.param.length, name="length L", end=1000, step=10),
            pn.widgets.IntSlider.from_param(self.param.N, name="state size N", end=64),
            pn.widgets.FloatSlider.from_param(self.param.dt, name="Δ", step=0.005),
            pn.widgets.FloatSlider.from_param(self.param.selectivity, name="selectivity of Δ_t", step=0.5),
            pn.widgets.IntInput.from_param(self.param.seed, name="seed"), width=280)
        hippo_controls = pn.Row(
            pn.widgets.Select.from_param(self.param.hippo_kind, name="measure"),
            pn.widgets.IntSlider.from_param(self.param.hippo_N, name="coefficients N"),
            pn.widgets.Select.from_param(self.param.hippo_signal, name="signal"),
            pn.widgets.IntSlider.from_param(self.param.hippo_step, name="time step"), sizing_mode="stretch_width")
        return pn.Column(
            pn.pane.Markdown(
                "### Hidden states: S4D vs Mamba\nPress ▶. S4D uses one Δ for every step; Mamba computes Δ_t from "
                "the input, so large inputs are written into the state and small ones barely touch it: the state "
                "**holds** what mattered (selective forgetting). Set the selectivity to 0 and both behave alike.",
                sizing_mode="stretch_width"),
            self.alert.pane,
            pn.Row(state_controls, pn.Column(self.refusal, self.player, self.state_pane, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.pane.Markdown("### HiPPO: rebuilding the history from N numbers", sizing_mode="stretch_width"),
            hippo_controls, self.hippo_pane,
            pn.pane.Markdown("### Discretization: where the eigenvalues go\nZOH and bilinear keep every stable "
                             "eigenvalue inside the unit circle; forward Euler throws fast modes out of it.",
                             sizing_mode="stretch_width"),
            pn.widgets.FloatSlider.from_param(self.param.eig_dt, name="Δ", step=0.01), self.eig_pane,
            sizing_mode="stretch_width")


PAGE = {"title": "State spaces", "order": 20, "viewer": StateSpacesPage}
