"""Catalogue examples: postlib.viz.arena, drawn from the recorded arena (see catalogue.py)."""
from postlib.bench import load_results
from postlib.bench.experiments.arena import accuracy_table
from postlib.viz import arena


def _doc():
    return load_results("cpu_arena.json")


def _growth_rows():
    # the shape of the chapter's live measurement: a KV cache grows, recurrent states stay flat
    rows = []
    for length in (16, 64, 256):
        rows += [{"name": "softmax", "length": length, "state_bytes": 2 * 2 * length * 32 * 4},
                 {"name": "jamba-like", "length": length, "state_bytes": 2 * length * 32 * 4 + 9216},
                 {"name": "mamba", "length": length, "state_bytes": 18432},
                 {"name": "s4d", "length": length, "state_bytes": 8192}]
    return rows


EXAMPLES = {
    "arena.state_recall_figure": lambda: arena.state_recall_figure(_doc()["rows"], provenance=_doc()["provenance"]),
    "arena.extrapolation_figure": lambda: arena.extrapolation_figure(_doc()["rows"], provenance=_doc()["provenance"]),
    "arena.accuracy_table_figure": lambda: arena.accuracy_table_figure(accuracy_table(_doc()["rows"]),
                                                                       provenance=_doc()["provenance"]),
    "arena.state_growth_figure": lambda: arena.state_growth_figure(_growth_rows()),
}
