"""Every recorded experiment is reachable from ``python -m postlib.bench`` and declares the interface."""
import argparse
import subprocess
import sys
from pathlib import Path

from postlib.bench.__main__ import build_parser
from postlib.bench.experiments import experiments

ROOT = Path(__file__).resolve().parents[2]


def test_every_experiment_declares_the_interface():
    found = experiments()
    assert {"mixers", "memory-wall", "scan-crossover", "linear-attention", "generation"} <= set(found)
    for command, module in found.items():
        assert isinstance(module.SUMMARY, str) and module.SUMMARY, command
        assert module.RESULT.endswith(".json"), command
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)  # must not raise, and must not clash with the CLI's own options
        assert not {"--out", "--notes", "--quiet", "--threads"} & set(parser._option_string_actions), command


def test_help_lists_every_experiment():
    proc = subprocess.run([sys.executable, "-m", "postlib.bench", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in experiments():
        assert command in proc.stdout


def test_unknown_experiment_is_refused():
    parser = build_parser()
    try:
        parser.parse_args(["not-an-experiment"])
    except SystemExit as exit_:
        assert exit_.code == 2
    else:  # pragma: no cover
        raise AssertionError("an unknown experiment must be refused")


def test_every_recorded_result_has_its_experiment():
    """One home for benchmarks: each committed CPU record is written by an experiment module
    (gpu_check.json comes from ``make gpu-check``, the kernels' own checks)."""
    from postlib.bench import RESULTS_DIR

    written = {module.RESULT for module in experiments().values()}
    # an experiment run on a GPU writes gpu_<name>.json beside its cpu_<name>.json (the race does)
    written |= {"gpu_" + name[len("cpu_"):] for name in written if name.startswith("cpu_")}
    recorded = {p.name for p in RESULTS_DIR.glob("*.json")} - {"gpu_check.json"}
    assert recorded <= written, f"recorded without an experiment: {sorted(recorded - written)}"


def test_no_benchmark_modules_outside_the_bench():
    for old in ("postlib/ssm/scan_bench.py", "postlib/attention/approx_bench.py", "postlib/bench/memory_wall.py"):
        assert not (ROOT / old).exists(), old


def _record(command, *argv):
    args = build_parser().parse_args([command, "--quiet", *argv])
    doc = args._module.record(args)
    assert doc["title"] and doc["rows"] and all(r["status"] == "ok" for r in doc["rows"])
    return args, doc


def test_scan_crossover_records_every_form_and_the_ratios():
    _, doc = _record("scan-crossover", "--dims", "4,64", "--length", "64", "--repeats", "1")
    assert {r["name"] for r in doc["rows"]} >= {"sequential", "parallel", "chunked", "auto"}
    assert [r["dim"] for r in doc["ratios"]] == [4, 64]
    assert {r["picked"] for r in doc["rows"] if r["name"] == "auto"} <= {"sequential", "parallel", "chunked"}


def test_linear_attention_scaling_records_the_exponents():
    args, doc = _record("linear-attention", "--lengths", "32,64", "--softmax-lengths", "32,64", "--heads", "1",
                        "--head-dim", "8", "--repeats", "1", "--softmax-repeats", "1")
    assert args.threads == 1                          # the experiment's default (THREADS)
    assert set(doc["exponents"]) == {r["name"] for r in doc["rows"]}


def test_generation_records_the_speedups():
    _, doc = _record("generation", "--lengths", "8,16", "--d-model", "16", "--heads", "2", "--repeats", "1",
                     "--warmup", "0")
    assert doc["speedup_at"] == 16 and doc["speedups"]["linear (recurrent)"] == 1.0


def test_s4_vs_s4d_records_every_model_and_a_summary():
    from postlib.bench.experiments.s4_vs_s4d import MODELS, delayed_copy
    _, doc = _record("s4-vs-s4d", "--length", "12", "--lag", "3", "--train", "16", "--test", "8", "--steps", "2",
                     "--batch", "4", "--d-model", "8", "--layers", "1", "--state", "4", "--seeds", "1")
    assert [r["name"] for r in doc["rows"]] == list(MODELS)
    assert [s["name"] for s in doc["summary"]] == list(MODELS) and all(s["seeds"] == 1 for s in doc["summary"])
    x, y = delayed_copy(3, 10, 4, 5, seed=0)
    assert (y[:, :4] == -100).all() and (y[:, 4:] == x[:, :-4]).all() and x.min() >= 1 and x.max() < 5


def test_s4_kernel_records_both_forms_and_their_ratio():
    from postlib.bench.experiments.s4_kernel import CAUCHY, NAIVE, kernel_factories
    _, doc = _record("s4-kernel", "--lengths", "16,37", "--state", "8", "--repeats", "1")
    assert {(r["name"], r["length"]) for r in doc["rows"]} == {(n, L) for n in (NAIVE, CAUCHY) for L in (16, 37)}
    assert [s["length"] for s in doc["speedups"]] == [16, 37]
    for s in doc["speedups"]:
        assert s["speedup"] == s["naive_ms"] / s["cauchy_ms"] > 0
    f = kernel_factories(8)
    naive, fast = f[NAIVE](37)(), f[CAUCHY](37)()
    assert naive.shape == fast.shape == (37,) and (fast - naive).abs().max() < 1e-9 * naive.abs().max()


def test_wkv_speed_records_paired_speedups(monkeypatch):
    """The speed-up is the median of back-to-back (loop, parallel) pairs, one per repeat."""
    from postlib.bench.experiments import wkv_speed
    calls = []
    real = wkv_speed.paired_speedups

    def spy(forms, lengths, repeats):
        calls.append((list(lengths), repeats))
        return real(forms, lengths, repeats)
    monkeypatch.setattr(wkv_speed, "paired_speedups", spy)
    _, doc = _record("wkv-speed", "--lengths", "13,40", "--channels", "8", "--repeats", "2", "--no-memory")
    assert calls == [([13, 40], 2)]
    assert set(doc["speedups"]) == {"13", "40"} and all(s > 0 for s in doc["speedups"].values())
    assert doc["meets_target"] == (doc["speedups"]["40"] >= doc["target_speedup"])
    assert "back-to-back pairs" in doc["notes"]
