"""Benchmarks: measured time and memory, saved with their provenance.

    from postlib.bench import measure_mixers, save_results, fit_exponent
    rows = measure_mixers(["softmax", "mamba"], [256, 512, 1024])
    save_results(rows, "my_run.json", title="mixers on my laptop")

Command line: ``python -m postlib.bench --help``. Every recorded experiment (the
mixer sweep, the memory wall, the scan crossover, linear-attention scaling, generation
cost) is one module in ``postlib/bench/experiments/``, reachable as
``python -m postlib.bench <experiment>``. Recorded results (committed, with device,
versions and date) live in ``RESULTS_DIR``; load them with
``load_results("cpu_attention_memory.json")``.

Memory budgets: ``estimate_bytes`` is a mixer's own upper bound on its peak
(``Mixer.memory_estimate``, None when unknown) and ``budget_refusal`` says why a
call would not fit; ``measure_mixers(max_bytes=...)`` skips what does not fit
before allocating anything.
"""
from .core import peak_memory, provenance, time_fn
from .measure import (MODES, ROW_KEYS, budget_refusal, estimate_bytes, fit_exponent, fit_rows, measure_functions,
                      measure_mixers, mixer_thunk)
from .results_io import RESULTS_DIR, load_results, save_results
from .experiments.memory_wall import memory_wall

__all__ = ["provenance", "time_fn", "peak_memory", "measure_mixers", "measure_functions", "mixer_thunk",
           "fit_exponent", "estimate_bytes", "budget_refusal", "fit_rows", "memory_wall", "save_results",
           "load_results", "RESULTS_DIR", "ROW_KEYS", "MODES"]
