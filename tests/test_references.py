"""Stale references and dead code stay gone: every test or results file that the library's docstrings
name exists, and the helpers removed as dead code are not back."""
import re
from pathlib import Path

import postlib
import postlib.ssm.s4 as s4
import postlib.testing

ROOT = Path(postlib.__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "postlib").rglob("*.py")) + sorted((ROOT / "apps").rglob("*.py"))


def test_every_test_file_named_in_a_docstring_exists():
    missing = {(src.relative_to(ROOT).as_posix(), ref) for src in SOURCES
               for ref in re.findall(r"tests/[\w/]+\.py", src.read_text(encoding="utf-8"))
               if not (ROOT / ref).exists()}
    assert not missing, f"docstrings name test files that do not exist: {sorted(missing)}"


def test_every_recorded_result_named_in_the_library_exists():
    # gpu_check.json is written by `make gpu-check` on a GPU, not committed.
    missing = {(src.relative_to(ROOT).as_posix(), ref) for src in SOURCES
               for ref in re.findall(r"results/(\w+\.json)", src.read_text(encoding="utf-8"))
               if ref != "gpu_check.json" and not (ROOT / "postlib" / "bench" / "results" / ref).exists()}
    assert not missing, f"the library names results files that do not exist: {sorted(missing)}"


def test_removed_duplicates_stay_removed():
    assert not hasattr(postlib.testing, "default_tol")   # never used: tests state their tolerance
    assert not hasattr(s4, "_cauchy_g")                  # s4.cauchy takes per-channel nodes itself


def test_kernels_and_experiments_time_with_the_bench_timer():
    """One timer (``postlib.bench.time_fn``: CUDA events on a GPU, a warm-up, the median), not one per module."""
    from postlib.bench.experiments import experiments
    from postlib.kernels.gpu_check import kernel_modules

    paths = [ROOT / (name.replace(".", "/") + ".py") for name in kernel_modules()]
    paths += [Path(module.__file__) for module in experiments().values()]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "perf_counter" not in text and "elapsed_time" not in text, f"{path.name} keeps its own timer"
