"""Catalogue examples: postlib.viz.approx, approx_lowrank, favor and lola (see catalogue.py)."""
import torch

from postlib.attention.softmax import attention_weights
from postlib.viz import approx as vx
from postlib.viz import approx_lowrank as vl
from postlib.viz import favor as fv
from postlib.viz import lola as lv


def _spectrum_maps():
    q, k = vx.demo_qk(48, 16)
    g = torch.Generator().manual_seed(3)
    rq, rk = (torch.randn(1, 1, 48, 16, generator=g, dtype=torch.float64) for _ in range(2))
    return {"structured q, k": attention_weights(q, k), "random q, k": attention_weights(rq, rk)}


EXAMPLES = {
    "approx.approx_maps_figure": lambda: vx.approx_maps_figure("performer", 16, length=32),
    "approx.approx_maps_figure#linear": lambda: vx.approx_maps_figure("linear", 1, length=32),
    "approx.error_vs_budget_figure": lambda: vx.error_vs_budget_figure(
        {"performer": [4, 16, 64], "linformer": [2, 8, 32], "reformer": [1, 2, 4]}, length=32, seeds=(0,)),
    "approx.rnn_state_step": lambda: vx.rnn_state_step(5, length=12),
    "approx.rnn_state_figure": lambda: vx.rnn_state_figure(length=8),
    "favor.favor_unbiasedness_figure": lambda: fv.favor_unbiasedness_figure(draws=300),
    "favor.favor_error_figure": lambda: fv.favor_error_figure(num_features=(4, 16, 64), length=32, seeds=range(2)),
    "favor.favor_bias_figure": lambda: fv.favor_bias_figure(draws=100, length=32),
    "favor.favor_stability_figure": lambda: fv.favor_stability_figure(scales=(1, 4, 16), length=16),
    "lola.lola_memory_figure": lambda: lv.lola_memory_figure(length=16),
    "lola.lola_recall_figure": lambda: lv.lola_recall_figure(sparse_sizes=(0, 4, 8), n_pairs=8, seeds=range(1)),
    "approx.recall_figure": lambda: vx.recall_figure({"softmax": 0.97, "linear": 0.31, "performer": 0.22}),
    "approx.recall_figure#seeds": lambda: vx.recall_figure({"softmax": [1.0, 0.23], "linear": [0.26, 0.25],
                                                            "lola (window 4, sparse 4)": [0.24, 0.23]}),
    "approx_lowrank.spectrum_figure": lambda: vl.spectrum_figure(_spectrum_maps()),
    "approx_lowrank.linformer_rank_figure": lambda: vl.linformer_rank_figure((1, 4, 16), length=32, seeds=range(1)),
    "approx_lowrank.causality_figure": lambda: vl.causality_figure(rank=8, length=24),
    "approx_lowrank.collision_figure": lambda: vl.collision_figure(n_trials=200),
    "approx_lowrank.bucket_recall_figure": lambda: vl.bucket_recall_figure(length=64),
    "approx_lowrank.lsh_sorted_figure": lambda: vl.lsh_sorted_figure(length=32),
    "approx_lowrank.lsh_rounds_figure": lambda: vl.lsh_rounds_figure((1, 2, 4), length=32),
    "approx_lowrank.reversible_memory_figure": lambda: vl.reversible_memory_figure((1, 2, 4), width=16, length=32),
}
