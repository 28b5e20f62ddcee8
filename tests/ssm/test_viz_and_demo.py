"""The state-space figures and the demo computations behind the animations."""
import numpy as np
import pytest

from postlib.ssm.demo import demo_input, relative_change_on_quiet_steps, state_trajectories
from postlib.viz import get_caption, ssm
from postlib.viz.core import frames_figure
from postlib.viz.ssm import (accuracy_table_figure, crossover_figure, eigenvalue_map, hidden_state_figure,
                             hippo_reconstruction, scan_tree, training_curves_figure)


def test_eigenvalue_map_counts_euler_blowups():
    import re
    counts = {}
    for dt in (0.01, 1.0):
        fig = eigenvalue_map(dt)
        assert "unstable" in get_caption(fig) and str(dt) not in get_caption(fig)   # one caption for every Δ
        listed = fig.layout.title.text.split("unstable modes: ")[1]
        counts[dt] = {m: int(n) for m, n in re.findall(r"(\w+) (\d+)", listed)}
    for m in ("zoh", "bilinear", "backward_euler"):
        assert counts[0.01].get(m, 0) == counts[1.0].get(m, 0) == 0
    assert 0 < counts[0.01]["euler"] < counts[1.0]["euler"]     # oscillating modes escape even at small Δ


def test_hippo_reconstruction_gets_better_with_more_coefficients():
    err = lambda N: float(hippo_reconstruction(400, kind="legs", N=N, L=400).layout.title.text.split("error ")[1])
    assert err(32) < err(4) / 3


def test_scan_tree_phases():
    L, K = 8, 3
    figs = [scan_tree(step, L=L) for step in range(2 * K + 1)]
    assert all(len(f.data) == 3 for f in figs)                 # same traces in every frame: animatable
    colors = lambda f: list(f.data[2].marker.color)
    assert colors(figs[0]).count(ssm.PENDING_COLOR) == 2 * L - 1 - L   # only the inputs (level 0) are done
    assert colors(figs[-1]).count(ssm.FINAL_COLOR) == 2 * L - 1        # at the end every node holds its final state
    with pytest.raises(ValueError, match="power of two"):
        scan_tree(0, L=6)


def test_selective_state_holds_through_noise():
    u = demo_input("spikes", 300, seed=1)
    tr = state_trajectories(u, N=6, dt=0.1, selectivity=8.0)
    change = lambda x: relative_change_on_quiet_steps(x, u)
    assert change(tr["selective"]) < change(tr["lti"]) / 3
    same = state_trajectories(u, N=6, dt=0.1, selectivity=0.0)
    assert np.allclose(same["selective"], same["lti"])      # no selectivity: Δ_t = Δ, the LTI system


def test_hidden_state_animation_frames():
    u = demo_input("sine", 40)
    tr = state_trajectories(u, N=4)
    fig = frames_figure(hidden_state_figure, "t", [5, 20, 40], traj=tr, u=u)
    assert len(fig.frames) == 3
    heat = fig.frames[0].data[3].z
    assert np.isnan(np.asarray(heat, dtype=float)[:, 5:]).all()   # the future is hidden


def test_result_figures():
    rows = [dict(name=n, states=s, time_ms=t, status="ok") for n, s, t in
            [("a", 256, 1.0), ("a", 4096, 3.0), ("b", 256, 2.0), ("b", 4096, 2.5)]]
    assert len(crossover_figure(rows).data) == 2
    fig = accuracy_table_figure({"x": 50.0}, {"x": 99.8, "y": 18.3})
    assert list(fig.data[0].y) == ["y", "x"] and fig.data[1].x[0] is None      # horizontal, first label on top
    assert len(training_curves_figure({"m": [(0, 2.0), (10, 1.0)]}).data) == 1
    with pytest.raises(ValueError, match="kind must be one of"):
        demo_input("square", 10)


def test_the_mamba_block_figure_counts_the_modules_parameters():
    import postlib
    from postlib.viz.mamba_block import mamba_block_figure, mamba_block_parameters
    for d_model, config in ((32, {}), (48, {"d_state": 8, "d_conv": 3, "expand": 3, "dt_rank": 5})):
        mixer = postlib.build_mixer("mamba", d_model, **config)
        parts = mamba_block_parameters(d_model, mixer.d_inner // d_model, mixer.d_state, mixer.d_conv, mixer.dt_rank)
        assert sum(parts.values()) == sum(p.numel() for p in mixer.parameters())
        caption = get_caption(mamba_block_figure(d_model, mixer.d_inner // d_model, mixer.d_state, mixer.d_conv,
                                                 mixer.dt_rank))
        assert f"{sum(parts.values()):,} in all" in caption


def test_discretization_and_reconstruction_figures_report_the_fitted_slopes():
    dts = [0.1, 0.05, 0.025]
    fig = ssm.discretization_error_figure(dts, {"u ≡ 1": {"euler": [d for d in dts], "zoh": [1e-16] * 3}})
    assert "euler 1.00" in get_caption(fig) and "zoh exact" in get_caption(fig)
    fig = ssm.reconstruction_error_figure([4, 8, 16], {"square": [0.4, 0.2, 0.1]})
    assert "square 1.00" in get_caption(fig)
