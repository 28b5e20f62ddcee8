"""The recorded experiment ``python -m postlib.bench sparse-attention`` at tiny sizes, and its crossover rule."""
import argparse

from postlib.bench.experiments import experiments
from postlib.bench.experiments.sparse_attention import MATERIALISED, SDPA, SPARSE, crossover


def test_record_at_tiny_sizes():
    module = experiments()["sparse-attention"]
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args(["--lengths", "64,128", "--window", "16", "--head-dim", "8", "--tile", "16",
                              "--dense-max", "64", "--materialised-max", "128", "--repeats", "1", "--warmup", "0"])
    args.quiet = True
    doc = module.record(args)
    status = {(r["name"], r["length"]): r["status"] for r in doc["rows"]}
    assert status[(SPARSE, 128)] == "ok" and status[(SDPA, 128)] == "skipped: beyond --dense-max"
    assert status[(MATERIALISED, 128)] == "ok"
    assert set(doc["fits"]) == {SPARSE, MATERIALISED}
    assert all(r["dense_scores_bytes"] == 4 * r["length"] ** 2 for r in doc["rows"])


def test_crossover_interpolates_in_log_log():
    rows = [dict(name=n, length=L, time_ms=t, status="ok") for n, L, t in
            [("a", 1000, 4.0), ("a", 4000, 8.0), ("b", 1000, 1.0), ("b", 4000, 32.0)]]
    # log(a/b) goes from log 4 to log(1/4): zero halfway in log L, i.e. at 2000.
    assert abs(crossover(rows, "a", "b") - 2000.0) < 1e-6
    assert crossover(rows, "b", "a") == 1000.0 and crossover(rows, "a", "c") is None
