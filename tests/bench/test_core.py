"""time_fn, peak_memory and provenance measure what they claim."""
import time

import pytest
import torch

from postlib.bench import peak_memory, provenance, time_fn

MB = 1_000_000


def test_time_fn_is_the_median_of_the_repeats():
    delays = iter([0.0, 0.05, 0.001, 0.001, 0.001])  # warmup, then one slow outlier among the repeats

    def fn():
        time.sleep(next(delays))

    ms = time_fn(fn, repeats=4, warmup=1)
    assert 0.5 < ms < 20, ms  # the 50 ms outlier must not move the median


def test_time_fn_measures_sleep():
    assert time_fn(lambda: time.sleep(0.02), repeats=3, warmup=0) == pytest.approx(20, abs=15)


def test_time_fn_errors_name_the_argument():
    with pytest.raises(TypeError, match="fn must be a zero-argument callable"):
        time_fn(3)
    with pytest.raises(ValueError, match="repeats"):
        time_fn(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="device"):
        time_fn(lambda: None, device="tpu")


def test_peak_memory_sees_a_tensor_of_known_size():
    def fn():
        x = torch.ones(1000, 1000)  # 4 MB
        return float(x.sum())

    assert peak_memory(fn) >= 4 * MB


def test_peak_memory_does_not_count_freed_memory_twice():
    def sequential():  # 4 MB, freed, then 4 MB again: the peak is one block
        a = torch.ones(1000, 1000)
        del a
        b = torch.ones(1000, 1000)
        del b

    def overlapping():  # both alive at once: the peak is two blocks
        a = torch.ones(1000, 1000)
        b = torch.ones(1000, 1000)
        del a, b

    seq, both = peak_memory(sequential), peak_memory(overlapping)
    assert 4 * MB <= seq < 5 * MB, seq
    assert 8 * MB <= both < 9 * MB, both


def test_peak_memory_excludes_memory_held_before_the_call():
    held = torch.ones(4000, 1000)  # 16 MB alive throughout, not allocated by fn
    peak = peak_memory(lambda: held.add_(1))  # in-place: fn allocates nothing large
    assert peak < MB, peak


def test_peak_memory_counts_the_returned_result():
    assert peak_memory(lambda: torch.zeros(250, 1000)) >= MB


def test_peak_memory_scales_with_size():
    small = peak_memory(lambda: torch.randn(200, 200) @ torch.randn(200, 200))
    large = peak_memory(lambda: torch.randn(400, 400) @ torch.randn(400, 400))
    assert 3.5 < large / small < 4.5


def test_provenance_on_cpu():
    info = provenance("cpu")
    for key in ("device_name", "device_type", "torch", "triton", "python", "platform", "cpu_count", "date"):
        assert key in info
    assert info["device_type"] == "cpu"
    assert info["torch"] == torch.__version__
    assert info["date"].endswith("+00:00")
