"""Catalogue examples: postlib.viz.scaling, drawn from the recorded results files (see catalogue.py)."""
from postlib.bench import load_results
from postlib.viz import scaling

EXAMPLES = {
    # every registered mixer in one plot: the legend holds ten entries
    "scaling.scaling_figure": lambda: scaling.scaling_figure(load_results("cpu_mixers.json")["rows"],
                                                             provenance=load_results("cpu_mixers.json")["provenance"]),
    "scaling.scaling_figure#generation": lambda: scaling.scaling_figure(
        load_results("cpu_generation.json")["rows"], title="Generating one token",
        provenance=load_results("cpu_generation.json")["provenance"]),
    "scaling.scaling_figure#memory": lambda: scaling.scaling_figure(load_results("cpu_mixers.json")["rows"],
                                                                    metric="peak_mem_bytes"),
    "scaling.memory_wall_figure": lambda: scaling.memory_wall_figure(load_results("cpu_attention_memory.json")),
}
