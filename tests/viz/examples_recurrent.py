"""Catalogue examples: postlib.viz.recurrent (see catalogue.py)."""
from postlib.bench import load_results
from postlib.viz import recurrent
from postlib.viz.core import frames_figure


def _decode():
    doc = load_results("cpu_retnet_decode.json")
    return recurrent.decode_cost_figure(doc["rows"], provenance=doc["provenance"])


def _copy():
    doc = load_results("cpu_transformer_xl_context.json")
    return recurrent.copy_accuracy_figure(doc["rows"], provenance=doc["provenance"])


EXAMPLES = {
    "recurrent.decay_figure": lambda: recurrent.decay_figure(length=48, head=1),
    "recurrent.decay_figure#frames": lambda: frames_figure(recurrent.decay_figure, "head", [0, 1, 2, 3], length=40),
    "recurrent.retention_state_figure": lambda: recurrent.retention_state_figure(10, gamma=0.8, length=16),
    "recurrent.retention_state_figure#frames": lambda: frames_figure(recurrent.retention_state_figure, "t",
                                                                     list(range(0, 16, 3)), length=16, duration_ms=200),
    "recurrent.decode_cost_figure": _decode,
    "recurrent.memory_window_figure": lambda: recurrent.memory_window_figure(21, length=32),
    "recurrent.memory_window_figure#frames": lambda: frames_figure(recurrent.memory_window_figure, "position",
                                                                   list(range(0, 32, 4)), length=32),
    "recurrent.reach_figure": lambda: recurrent.reach_figure(40, 8, 8, 2),
    "recurrent.rel_shift_figure": lambda: recurrent.rel_shift_figure(4, 7),
    "recurrent.copy_accuracy_figure": _copy,
    "recurrent.ema_kernel_figure": lambda: recurrent.ema_kernel_figure(0.5, 0.3),
}
