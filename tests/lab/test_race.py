"""The scaling race (issue 10 §1): budgets refuse before allocating, fits and crossovers, the recorded run."""
import math

import pytest
import torch

import postlib
from postlib.bench import load_results, peak_memory
from postlib.bench.__main__ import build_parser
from postlib.bench.experiments import race as race_mod
from postlib.bench.experiments.race import STATUSES, crossover, crossovers, race, race_fits


def _no_run(*args, **kwargs):
    raise AssertionError("the race ran a call it should have refused")


def test_over_budget_is_refused_with_a_message_before_anything_is_allocated(monkeypatch):
    monkeypatch.setattr(race_mod, "mixer_thunk", _no_run)
    monkeypatch.setattr(race_mod, "time_fn", _no_run)
    rows = []
    # 65536 tokens of width 64 in float32 are 16 MiB of input alone; the L×L scores 16 GiB per head
    peak = peak_memory(lambda: rows.extend(race(["softmax"], [65536], max_bytes=64 * 2**20)))
    assert [r["status"] for r in rows] == ["over budget", "over budget"]
    for r in rows:
        assert "MiB" in r["reason"] and "refused before allocating" in r["reason"]
        assert r["estimate_bytes"] >= 64 * 2**20 and r["time_ms"] is None and r["peak_mem_bytes"] is None
    assert peak < 4 * 2**20, f"the refusal allocated {peak} bytes"


def test_exactly_the_budget_is_refused():
    mixer = postlib.build_mixer("linear", 16)
    need = postlib.bench.estimate_bytes(mixer, 1, 32, torch.float32, "forward")
    rows = race(["linear"], [32], d_model=16, modes=["forward"], max_bytes=need, repeats=1, warmup=0)
    assert rows[0]["status"] == "over budget"
    rows = race(["linear"], [32], d_model=16, modes=["forward"], max_bytes=need + 1, repeats=1, warmup=0)
    assert rows[0]["status"] == "ok" and rows[0]["peak_mem_bytes"] <= need


def test_time_budget_stops_a_mixer_after_its_first_length():
    rows = race(["linear"], [8, 16, 32], d_model=8, modes=["forward"], max_call_s=1e-9, repeats=1, warmup=0)
    assert [r["status"] for r in rows] == ["ok", "over time budget", "over time budget"]
    assert "predicted" in rows[1]["reason"] and "a call" in rows[1]["reason"]
    rows = race(["linear"], [8], d_model=8, modes=["forward"], total_s=1e-9, repeats=1, warmup=0)
    assert rows[0]["status"] == "over time budget" and "total time budget" in rows[0]["reason"]


def test_a_mixer_without_an_estimate_is_refused_not_run(monkeypatch):
    monkeypatch.setattr(race_mod, "estimate_bytes", lambda *a, **k: None)
    monkeypatch.setattr(race_mod, "time_fn", _no_run)
    rows = race(["linear"], [8], d_model=8, modes=["forward"])
    assert rows[0]["status"] == "no estimate" and "memory_estimate" in rows[0]["reason"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(names=["not-a-mixer"]), "name"),
    (dict(names=[]), "at least one"),
    (dict(lengths=[0]), "lengths"),
    (dict(modes=["backward"]), "modes"),
    (dict(max_call_s=0), "max_call_s"),
    (dict(total_s=-1), "total_s"),
    (dict(max_bytes=0), "max_bytes"),
])
def test_bad_settings_get_a_clear_error(kwargs, match):
    args = dict(names=["linear"], lengths=[8], d_model=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        race(args.pop("names"), args.pop("lengths"), **args)


def test_fits_use_the_longest_lengths():
    rows = [dict(name="quad", mode="forward", length=n, status="ok", time_ms=5.0 + 1e-3 * n * n if n < 100 else
                 1e-3 * n * n, peak_mem_bytes=4 * n) for n in (16, 32, 128, 256, 512, 1024)]
    fits = race_fits(rows)["quad (forward)"]
    assert fits["time_ms"] == pytest.approx(2.0, abs=1e-3) and fits["peak_mem_bytes"] == pytest.approx(1.0)


def test_crossover_kinds():
    soft = [(n, n * n * 1e-3) for n in (256, 512, 1024)]
    # 10·L vs L²/1000: equal at L = 10 000 (beyond softmax's last length → extrapolated)
    lin = [(n, 10.0 * n) for n in (256, 512, 1024, 4096, 16384)]
    length, kind = crossover(lin, soft)
    assert kind == "extrapolated" and length == pytest.approx(10_000, rel=1e-6)
    # 0.5·L vs L²/1000: equal at L = 500, between two measured lengths
    length, kind = crossover([(n, 0.5 * n) for n in (256, 512, 1024)], soft)
    assert kind == "measured" and length == pytest.approx(500, rel=1e-6)
    assert crossover([(n, 1e-6 * n) for n in (256, 512)], soft) == (None, "faster throughout")
    assert crossover([(n, 1e3 * n * n) for n in (256, 512, 1024)], soft) == (None, "never")
    assert crossover([(n, 1e-9 * n ** 3) for n in (256, 512, 1024)], [(n, 1e-3 * n) for n in (256, 512, 1024)]) \
        == (None, "slower at long lengths")


def test_crossovers_compare_within_each_mode():
    rows = [dict(name=name, mode=mode, length=n, status="ok", time_ms=t(n), peak_mem_bytes=1)
            for n in (100, 1000, 10000) for mode in ("forward", "forward_backward")
            for name, t in (("softmax", lambda n: n * n / 1000), ("linear", lambda n: 2.0 * n))]
    found = crossovers(rows)
    assert set(found) == {"linear (forward)", "linear (forward_backward)"}
    for key in found:   # 2·L against L²/1000: equal at L = 2000, between the measured 1000 and 10 000
        assert found[key][1] == "measured" and found[key][0] == pytest.approx(2000, rel=1e-6)


def test_the_command_records_rows_fits_and_crossovers(tmp_path):
    args = build_parser().parse_args(["race", "--quiet", "--mixers", "softmax,linear", "--lengths", "8,16",
                                      "--d-model", "8", "--repeats", "1", "--warmup", "0",
                                      "--out", str(tmp_path / "race.json")])
    assert args.threads == 1
    doc = args._module.record(args)
    assert len(doc["rows"]) == 2 * 2 * 2 and all(r["status"] == "ok" for r in doc["rows"])
    assert set(doc["fits"]) == {f"{n} ({m})" for n in ("softmax", "linear") for m in ("forward", "forward_backward")}
    assert set(doc["crossovers"]) == {"linear (forward)", "linear (forward_backward)"}
    assert doc["budget"]["max_bytes"] == 2 * 2**30


def test_cuda_without_a_gpu_is_refused_clearly():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        race(["linear"], [8], device="cuda")


def test_the_recorded_race_is_complete_and_explains_every_refusal():
    doc = load_results("cpu_race.json")
    rows = doc["rows"]
    assert {r["status"] for r in rows} <= set(STATUSES)
    assert all(r["reason"] for r in rows if r["status"] != "ok")
    names = {r["name"] for r in rows}
    assert {"softmax", "mamba", "linear"} <= names
    lengths = sorted({r["length"] for r in rows})
    assert lengths[0] == 256 and lengths[-1] == 65536
    assert len(rows) == len(names) * len(lengths) * 2
    # softmax's scores are refused by the memory budget, decided from its estimate alone
    soft = [r for r in rows if r["name"] == "softmax" and r["length"] == 65536]
    assert {r["status"] for r in soft} == {"over budget"}
    budget = doc["budget"]["max_bytes"]
    for r in rows:
        if r["status"] == "over budget":
            assert r["estimate_bytes"] >= budget
        elif r["status"] == "ok":
            assert r["estimate_bytes"] < budget and r["peak_mem_bytes"] <= r["estimate_bytes"]
    assert set(doc["crossovers"]) == set(doc["crossover_kinds"])
    for key, length in doc["crossovers"].items():
        assert length is None or (isinstance(length, (int, float)) and math.isfinite(length) and length > 0), key


def test_stops_walls_and_crossover_words():
    from postlib.bench.experiments.race import describe_crossover
    from postlib.viz.race import memory_walls, race_stops

    rows = [dict(name="m", mode="forward", length=n, status=s, reason=why)
            for n, s, why in ((256, "ok", ""), (512, "ok", ""), (1024, "over time budget", "slow"),
                              (2048, "over budget", "big"), (4096, "over budget", "bigger"))]
    assert race_stops(rows, "forward")["m"] == {"reached": 512, "status": "over time budget", "reason": "slow",
                                                "stopped_at": 1024}
    assert memory_walls(rows, "forward") == {"m": 2048} and memory_walls(rows, "forward_backward") == {}
    lengths = [256, 65536]
    assert describe_crossover(1131.4, "measured", lengths) == "≈ 1131"
    assert describe_crossover(None, "faster throughout", lengths) == "below 256"
    assert describe_crossover(None, "never", lengths) == "none up to 65536"
    assert describe_crossover(9800.0, "extrapolated", lengths) == "≈ 9800 (softmax extrapolated)"


def test_the_gpu_race_writes_its_own_file_with_the_gpu_budgets(monkeypatch):
    """`make gpu-race` path without a GPU: the device check and the sweep are replaced, the wiring is real."""
    seen = {}

    def fake_race(names, lengths, **kwargs):
        seen.update(kwargs, lengths=lengths)
        return [dict(name="linear", mode="forward", length=lengths[0], status="ok", time_ms=1.0, peak_mem_bytes=1)]

    monkeypatch.setattr(race_mod, "_device_type", lambda device: "cuda")
    monkeypatch.setattr(race_mod, "default_budget_bytes", lambda device: 7 * 2**30)
    monkeypatch.setattr(race_mod, "race", fake_race)
    args = build_parser().parse_args(["race", "--quiet", "--device", "cuda"])
    doc = args._module.record(args)
    assert args.out.endswith("gpu_race.json")
    assert seen["lengths"] == race_mod.GPU_LENGTHS and seen["device"] == "cuda"
    assert (seen["max_call_s"], seen["total_s"]) == (race_mod.GPU_TIME_BUDGET["max_call_s"],
                                                     race_mod.GPU_TIME_BUDGET["total_s"])
    assert doc["budget"]["max_bytes"] == 7 * 2**30


def test_a_mixer_with_max_length_is_built_for_the_longest_length_its_parameters_fit():
    from postlib.bench.experiments.race import CPU_LENGTHS, _constructor_config
    assert _constructor_config("softmax", 64, CPU_LENGTHS, 2 * 2**30) == {}
    assert _constructor_config("linformer", 64, CPU_LENGTHS, 2 * 2**30) == {"max_length": 65536}
    # E and F are (rank 32) × max_length floats: 256 bytes a position, so a quarter of 4 MiB holds 2048, not 4096
    assert _constructor_config("linformer", 64, CPU_LENGTHS, 4 * 2**20) == {"max_length": 2048}
