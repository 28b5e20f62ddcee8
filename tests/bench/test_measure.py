"""measure_mixers, measure_functions, fit_exponent, the memory budget and the memory wall."""
import math

import pytest
import torch

from postlib.bench import (ROW_KEYS, estimate_bytes, fit_exponent, measure_functions, measure_mixers,
                           memory_wall)


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


def test_estimate_bytes_is_quadratic_for_attention_only():
    mixer = torch.nn.Linear(4, 4)
    mixer.n_heads, mixer.d_model = 2, 4
    att = estimate_bytes(mixer, 1, 1000, torch.float32, family="attention")
    assert att == 2 * 1000 * 1000 * 4
    assert estimate_bytes(mixer, 1, 1000, torch.float32, "forward_backward", family="attention") == 2 * att
    assert estimate_bytes(mixer, 1, 1000, torch.float32, family="ssm") == 16 * 1000 * 4 * 4


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
