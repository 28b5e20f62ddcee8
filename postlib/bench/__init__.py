"""Benchmarks: measured time and memory, saved with their provenance.

    from postlib.bench import measure_mixers, save_results, fit_exponent
    rows = measure_mixers(["softmax", "mamba"], [256, 512, 1024])
    save_results(rows, "my_run.json", title="mixers on my laptop")

Command line: ``python -m postlib.bench --help``. Recorded results (committed,
with device, versions and date) live in ``RESULTS_DIR``; load them with
``load_results("cpu_attention_memory.json")``.
"""
from .core import peak_memory, provenance, time_fn
from .measure import MODES, ROW_KEYS, estimate_bytes, fit_exponent, measure_functions, measure_mixers
from .memory_wall import fit_rows, memory_wall
from .results_io import RESULTS_DIR, load_results, save_results

__all__ = ["provenance", "time_fn", "peak_memory", "measure_mixers", "measure_functions", "fit_exponent",
           "estimate_bytes", "fit_rows", "memory_wall", "save_results", "load_results", "RESULTS_DIR",
           "ROW_KEYS", "MODES"]
