"""Catalogue examples: postlib.viz.ssm (see catalogue.py)."""
import numpy as np

from postlib.bench import load_results
from postlib.ssm.demo import demo_input, state_trajectories
from postlib.viz import mamba_block, ssm
from postlib.viz.core import frames_figure


def _hidden(t=None):
    u = demo_input("spikes", 120, seed=3)
    traj = state_trajectories(u, N=8, dt=0.1, selectivity=8.0)
    if t is None:
        return frames_figure(ssm.hidden_state_figure, "t", list(range(5, 121, 15)), traj=traj, u=u, duration_ms=120)
    return ssm.hidden_state_figure(t, traj, u)


def _kernels():
    lags = np.arange(128)
    return {f"S4 channel {h} (Δ = {dt:g})": np.exp(-dt * lags) * np.cos(0.3 * lags * (h + 1))
            for h, dt in enumerate((0.01, 0.05, 0.2))}


def _orders():
    dts = [0.1, 0.05, 0.025, 0.0125]
    rules = {"zoh": 0, "bilinear": 2, "euler": 1, "backward_euler": 1}
    step = {m: [1e-15 if p == 0 else 0.3 * d ** p for d in dts] for m, p in rules.items()}
    sine = {m: [0.9 * d for d in dts] for m in rules}
    return ssm.discretization_error_figure(dts, {"u ≡ 1": step, "sin, end of step": sine, "sin, mid-step": step})


EXAMPLES = {
    "ssm.discretization_error_figure": _orders,
    "ssm.reconstruction_error_figure": lambda: ssm.reconstruction_error_figure([4, 8, 16, 32, 64], {
        "sines": [0.7, 0.5, 0.29, 0.008, 0.007], "triangle": [0.56, 0.45, 0.066, 0.033, 0.014],
        "square": [0.96, 0.87, 0.41, 0.3, 0.23]}),
    "mamba_block.mamba_block_figure": lambda: mamba_block.mamba_block_figure(32, 2, 16, 4, 2),
    "ssm.eigenvalue_map": lambda: ssm.eigenvalue_map(0.5),
    "ssm.hippo_reconstruction": lambda: ssm.hippo_reconstruction(300, kind="legt", N=16, L=400),
    "ssm.hippo_reconstruction#frames": lambda: frames_figure(ssm.hippo_reconstruction, "step", list(range(40, 401, 40)),
                                                             kind="legs", N=16, L=400),
    "ssm.memory_figure": lambda: ssm.memory_figure([1, 2, 5, 10, 20, 40], {
        "HiPPO-LegT": [1.0, 0.99, 0.97, 0.9, 0.7, 0.4], "HiPPO-LagT": [1.0, 0.98, 0.9, 0.75, 0.5, 0.2],
        "random stable A": [0.9, 0.6, 0.2, 0.05, 0.0, 0.0]}),
    "ssm.kernels_figure": lambda: ssm.kernels_figure(_kernels()),
    "ssm.scan_tree": lambda: ssm.scan_tree(4, L=8),
    "ssm.scan_tree#frames": lambda: frames_figure(ssm.scan_tree, "step", list(range(7)), L=8, duration_ms=900),
    "ssm.hidden_state_figure": lambda: _hidden(60),
    "ssm.hidden_state_figure#frames": lambda: _hidden(),
    "ssm.crossover_figure": lambda: ssm.crossover_figure(load_results("cpu_scan_crossover.json")["rows"],
                                                         provenance=load_results("cpu_scan_crossover.json")["provenance"]),
    "ssm.accuracy_table_figure": lambda: ssm.accuracy_table_figure(
        {"S4": 20.1, "S6 (Mamba)": 92.0}, {"S4": 18.3, "S6 (Mamba)": 97.0, "Hyena": 30.1}),
    "ssm.training_curves_figure": lambda: ssm.training_curves_figure({
        "s4d": [(s, 2.5 * 0.99 ** s + 0.9) for s in range(0, 300, 10)],
        "mamba": [(s, 2.5 * 0.97 ** s + 0.02) for s in range(0, 300, 10)]}),
}
