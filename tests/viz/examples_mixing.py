"""Catalogue examples: postlib.viz.mixing (see catalogue.py)."""
import numpy as np

from postlib.bench import load_results
from postlib.recurrent.wkv_trace import wkv_trace
from postlib.viz import mixing
from postlib.viz.core import frames_figure


def _spatial():
    rec = load_results("cpu_gmlp_spatial.json")
    return mixing.spatial_weights_figure(rec["W_init"], rec["W_trained"], lag=rec["lag"], provenance=rec["provenance"])


def _trace():
    g = np.random.default_rng(0)
    return wkv_trace(0.5, 0.3, g.normal(size=16), g.normal(size=16))


def _digits():
    rec = load_results("cpu_convmixer_digits.json")
    return mixing.digits_figure(rec["curves"], provenance=rec["provenance"])


EXAMPLES = {
    "mixing.spatial_weights_figure": _spatial,
    "mixing.receptive_field_figure": lambda: mixing.receptive_field_figure(3, 5, 32),
    "mixing.receptive_field_figure#frames": lambda: frames_figure(mixing.receptive_field_figure, "depth", [1, 2, 4, 8],
                                                                  kernel_size=5, length=32),
    "mixing.wkv_weights_figure": lambda: mixing.wkv_weights_figure(0.3),
    "mixing.wkv_weights_figure#frames": lambda: frames_figure(mixing.wkv_weights_figure, "decay", [0.05, 0.5, 2.0]),
    "mixing.wkv_state_figure": lambda: mixing.wkv_state_figure(9, _trace()),
    "mixing.wkv_state_figure#frames": lambda: frames_figure(mixing.wkv_state_figure, "t", list(range(16)),
                                                            trace=_trace(), duration_ms=300),
    "mixing.rwkv6_decay_figure": lambda: mixing.rwkv6_decay_figure(
        {"fixed decay": np.full(24, -0.1), "from the input": np.where(np.arange(24) == 12, -8.0, -0.1)}, marks=[12]),
    "mixing.wkv_speed_figure": lambda: mixing.wkv_speed_figure(load_results("cpu_wkv.json")["rows"],
                                                               provenance=load_results("cpu_wkv.json")["provenance"]),
    "mixing.decode_figure": lambda: mixing.decode_figure(load_results("cpu_rwkv_decode.json")["rows"],
                                                         provenance=load_results("cpu_rwkv_decode.json")["provenance"]),
    "mixing.digits_figure": _digits,
}
