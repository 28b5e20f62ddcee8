"""measure_mixers, measure_functions, fit_exponent, the memory budget and the memory wall."""
import math

import pytest
import torch

from postlib.bench import ROW_KEYS, estimate_bytes, fit_exponent, measure_functions, measure_mixers, memory_wall


def test_fit_exponent_recovers_power_laws():
    lengths = [128, 256, 512, 1024]
    assert fit_exponent(lengths, [3 * n**2 for n in lengths]) == pytest.approx(2.0)
    assert fit_exponent(lengths, [0.5 * n for n in lengths]) == pytest.approx(1.0)
    assert fit_exponent(lengths, [n * math.log(n) for n in lengths]) == pytest.approx(1.17, abs=0.01)  # 1 + 1/ln(L) locally


def test_fit_exponent_errors():
    with pytest.raises(ValueError, match="same number"):
        fit_exponent([1, 2], [1])
    with pytest.raises(ValueError, match="two distinct lengths"):
        fit_exponent([4, 4], [1, 2])
    with pytest.raises(ValueError, match="values must be positive"):
        fit_exponent([1, 2], [1, 0])


def test_measure_mixers_rows():
    rows = measure_mixers(["softmax"], [1, 7, 13], d_model=16, repeats=1, warmup=0,
                          mixer_config={"n_heads": 2})
    assert len(rows) == 3 * 2
    for r in rows:
        assert tuple(r) == ROW_KEYS
        assert r["status"] == "ok" and r["time_ms"] > 0 and r["peak_mem_bytes"] > 0
        assert r["d_model"] == 16 and r["dtype"] == "float32" and r["device"] == "cpu"
    assert {(r["length"], r["mode"]) for r in rows} == {(n, m) for n in (1, 7, 13)
                                                         for m in ("forward", "forward_backward")}


def test_measure_mixers_budget_skips_instead_of_crashing():
    rows = measure_mixers(["softmax"], [8, 4096], d_model=8, modes=["forward"], repeats=1, warmup=0,
                          memory=False, max_bytes=1_000_000)
    ok, skipped = rows
    assert ok["status"] == "ok" and ok["peak_mem_bytes"] is None
    assert skipped["status"].startswith("skipped: estimated") and skipped["time_ms"] is None


def test_estimate_bytes_is_the_mixers_own_bound_or_none():
    from postlib import build_mixer
    from postlib.attention.mixers import SoftmaxAttentionMixer

    mixer = build_mixer("softmax", 8)
    assert estimate_bytes(mixer, 1, 100, torch.float32) == mixer.memory_estimate(1, 100, torch.float32)
    assert (estimate_bytes(mixer, 1, 100, torch.float32, "forward_backward")
            > estimate_bytes(mixer, 1, 100, torch.float32))
    assert estimate_bytes(torch.nn.Linear(4, 4), 1, 100, torch.float32) is None   # no memory_estimate at all
    with pytest.raises(ValueError, match="mode must be one of"):
        estimate_bytes(mixer, 1, 100, torch.float32, "backward")
    with pytest.raises(TypeError, match="length must be an int"):
        estimate_bytes(mixer, 1, 8.5, torch.float32)
    assert not hasattr(__import__("postlib.bench.measure", fromlist=["x"]), "QUADRATIC_FAMILIES")
    assert isinstance(SoftmaxAttentionMixer.memory_estimate(mixer, 2, 64, torch.float64, "forward"), int)


def test_over_budget_is_refused_before_anything_runs(monkeypatch):
    from postlib.attention.mixers import SoftmaxAttentionMixer

    def must_not_run(self, x):
        raise AssertionError("an over-budget configuration must not be run")
    monkeypatch.setattr(SoftmaxAttentionMixer, "_forward", must_not_run)
    rows = measure_mixers(["softmax"], [4096], d_model=8, repeats=1, warmup=0, max_bytes=2**20)
    assert all(r["status"].startswith("skipped: estimated") and "exceeds the budget of 1 MiB" in r["status"]
               for r in rows)


def test_an_estimate_exactly_at_the_budget_is_refused(monkeypatch):
    from postlib.attention.mixers import SoftmaxAttentionMixer

    monkeypatch.setattr(SoftmaxAttentionMixer, "memory_estimate", lambda self, b, n, d, mode="forward": 2**22)
    at, below = (measure_mixers(["softmax"], [8], d_model=8, modes=["forward"], repeats=1, warmup=0, memory=False,
                                max_bytes=budget)[0] for budget in (2**22, 2**22 + 1))
    assert at["status"].startswith("skipped: estimated 4 MiB") and below["status"] == "ok"


def test_a_mixer_without_an_estimate_is_measured_cautiously(monkeypatch):
    from postlib.attention.mixers import SoftmaxAttentionMixer

    monkeypatch.setattr(SoftmaxAttentionMixer, "memory_estimate", lambda self, *a, **kw: None)
    budget = 2**21
    rows = measure_mixers(["softmax"], [16, 128, 1024], d_model=8, modes=["forward"], repeats=1, warmup=0,
                          max_bytes=budget)
    assert [r["status"] for r in rows[:2]] == ["ok", "ok"]          # probed, then extrapolated from 16 to 128
    assert rows[2]["status"].startswith("skipped: no memory estimate; the peak measured at length 128")
    assert rows[1]["peak_mem_bytes"] * (1024 / 128) ** 2 >= budget  # the L² extrapolation that refused it


def test_repeats_and_lengths_are_checked_not_bent():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_mixers(["softmax"], [8], repeats=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        measure_mixers(["softmax"], [8], warmup=-1)
    with pytest.raises(TypeError, match="lengths must hold integers >= 1, got 8.7"):
        measure_mixers(["softmax"], [8.7])
    with pytest.raises(TypeError, match="lengths must hold integers"):
        measure_functions({"f": lambda n: (lambda: None)}, [8.7])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_functions({"f": lambda n: (lambda: None)}, [8], repeats=0)


def test_a_mixer_refusing_a_length_becomes_a_skipped_row(monkeypatch):
    from postlib.attention.mixers import SoftmaxAttentionMixer

    def refuse_long(self, x):
        if x.shape[1] > 8:
            raise ValueError("x has length > max_length 8")
        return x
    monkeypatch.setattr(SoftmaxAttentionMixer, "_forward", refuse_long)
    short, long = measure_mixers(["softmax"], [4, 16], d_model=8, modes=["forward"], repeats=1, warmup=0)
    assert short["status"] == "ok"
    assert long["status"] == "skipped: x has length > max_length 8" and long["time_ms"] is None


def test_measure_mixers_per_mixer_config_and_errors():
    rows = measure_mixers(["softmax"], [5], d_model=8, modes=["forward"], repeats=1, warmup=0, memory=False,
                          mixer_config={"softmax": {"n_heads": 8}})
    assert rows[0]["status"] == "ok"
    with pytest.raises(ValueError, match="name must be one of"):
        measure_mixers(["no-such-mixer"], [8])
    with pytest.raises(ValueError, match="modes must be a subset"):
        measure_mixers(["softmax"], [8], modes=["backward"])
    with pytest.raises(TypeError, match="dtype must be a floating"):
        measure_mixers(["softmax"], [8], dtype=torch.int32)


def test_measure_functions_and_out_of_memory_rows():
    def big(length):
        def thunk():
            if length > 10:
                raise torch.OutOfMemoryError("out of memory (simulated)")
            return torch.ones(length, 1000)
        return thunk

    rows = measure_functions({"big": big}, [10, 20], repeats=1, warmup=0)
    assert rows[0]["status"] == "ok" and rows[0]["peak_mem_bytes"] >= 10 * 1000 * 4
    assert rows[1]["status"] == "skipped: out of memory"
    with pytest.raises(RuntimeError, match="a real bug"):  # other errors are not hidden
        measure_functions({"bad": lambda n: (lambda: (_ for _ in ()).throw(RuntimeError("a real bug")))}, [4])
    with pytest.raises(TypeError, match="factories"):
        measure_functions([], [4])


def test_memory_wall_reference_is_quadratic_and_flash_linear():
    rows, fits = memory_wall([128, 256, 512], head_dim=16, block_size=32, repeats=1, warmup=0)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    assert fits["softmax_attention"]["peak_mem_bytes"] == pytest.approx(2.0, abs=0.1)
    assert fits["flash_attention (torch)"]["peak_mem_bytes"] == pytest.approx(1.0, abs=0.1)
    ref = [r for r in rows if r["name"] == "softmax_attention"]
    assert ref[-1]["peak_mem_bytes"] >= 512 * 512 * 4  # at least the score matrix itself
