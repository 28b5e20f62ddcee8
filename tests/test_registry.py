"""The one interface: every registered mixer obeys the same protocol.

These tests run over ``list_mixers()``, so a mixer registered by any later
chapter is checked here automatically.
"""
import pytest
import torch

import postlib
from postlib import build_mixer, list_mixers, run_steps

D_MODEL = 32


def _small(name):
    torch.manual_seed(0)
    return build_mixer(name, D_MODEL).double().eval()


def test_registry_lists_the_baseline():
    assert "softmax" in list_mixers()
    assert set(list_mixers(causal=True)) <= set(list_mixers())
    info = postlib.mixer_info("softmax")
    assert info.causal and info.family == "attention" and info.summary


@pytest.mark.parametrize("name", list_mixers())
@pytest.mark.parametrize("length", [1, 7, 24])
def test_forward_keeps_shape(name, length):
    mixer = _small(name)
    x = torch.randn(2, length, D_MODEL, dtype=torch.float64)
    y = mixer(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert isinstance(mixer.causal, bool)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_step_reproduces_forward(name):
    mixer = _small(name)
    x = torch.randn(2, 17, D_MODEL, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_step_reproduces_forward_fp32(name):
    torch.manual_seed(0)
    mixer = build_mixer(name, D_MODEL).eval()
    x = torch.randn(2, 11, D_MODEL)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_future_never_changes_the_past(name):
    mixer = _small(name)
    x = torch.randn(1, 16, D_MODEL, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 10:] = torch.randn(1, 6, D_MODEL, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x)[:, :10], mixer(x2)[:, :10])
        assert not torch.allclose(mixer(x)[:, 10:], mixer(x2)[:, 10:])


@pytest.mark.parametrize("name", list_mixers())
def test_bad_input_names_the_argument(name):
    mixer = _small(name)
    with pytest.raises(ValueError, match=r"x must have"):
        mixer(torch.randn(2, 5, D_MODEL + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(batch, length, d_model\)"):
        mixer(torch.randn(5, D_MODEL, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be"):
        mixer([[0.0] * D_MODEL])


@pytest.mark.parametrize("name", list_mixers(causal=False))
def test_non_causal_mixers_refuse_to_step(name):
    mixer = _small(name)
    with pytest.raises(NotImplementedError):
        mixer.step(torch.randn(1, D_MODEL, dtype=torch.float64), None)


def test_build_mixer_rejects_unknown_names_and_widths():
    with pytest.raises(ValueError, match="name must be one of"):
        build_mixer("no-such-mixer", 8)
    with pytest.raises(ValueError, match="d_model"):
        build_mixer("softmax", 0)
    with pytest.raises(ValueError, match="divisible"):
        build_mixer("softmax", 10, n_heads=4)


def test_step_rejects_wrong_token_shape():
    mixer = _small("softmax")
    state = mixer.init_state(2)
    with pytest.raises(ValueError, match=r"x_t must have .*\(batch, d_model"):
        mixer.step(torch.randn(2, 3, D_MODEL, dtype=torch.float64), state)


# --------------------------------------------------------------------------- memory estimates
ESTIMATE_BATCH = 2
ESTIMATE_LENGTHS = (1, 33, 128)   # a constant-dominated, a middle and a length-dominated size
MAX_OVERESTIMATE = 8              # an estimate must stay useful, not only safe


@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
@pytest.mark.parametrize("name", list_mixers())
def test_memory_estimate_bounds_the_measured_peak(name, mode):
    """Every registered mixer states an upper bound on its peak (the budget checks rely on it), and not a wild one."""
    from postlib.bench import estimate_bytes, peak_memory
    from postlib.bench.measure import mixer_thunk

    torch.manual_seed(0)
    mixer = build_mixer(name, D_MODEL)
    for length in ESTIMATE_LENGTHS:
        thunk = mixer_thunk(mixer, torch.randn(ESTIMATE_BATCH, length, D_MODEL), mode)
        thunk()                               # lazy one-time allocations are not the call's own
        mixer.zero_grad(set_to_none=True)     # so the measured call allocates its gradients, as a first call does
        peak = peak_memory(thunk)
        estimate = estimate_bytes(mixer, ESTIMATE_BATCH, length, torch.float32, mode)
        assert estimate is not None, f"{name} must implement memory_estimate (see postlib.registry)"
        assert estimate >= peak, f"{name} {mode} L={length}: estimate {estimate} B < measured peak {peak} B"
        assert estimate <= MAX_OVERESTIMATE * peak, (f"{name} {mode} L={length}: estimate {estimate} B is more "
                                                     f"than {MAX_OVERESTIMATE}x the measured peak {peak} B")


VOLUME_LENGTHS = (1024, 4096)     # long enough that BigBird's blocks are no longer all computed
VOLUME_SLOW_S = 1.0               # a token loop (LoLA) slower than this at the first length: a quarter of both
VOLUME_SLACK = 1.3


@pytest.mark.parametrize("name", list_mixers())
def test_bytes_allocated_in_training_grow_no_faster_than_the_estimate(name):
    """The *total* bytes a forward + backward allocates (not only the peak) grow with L no faster than the
    length itself or the mixer's own memory estimate, whichever grows more. A loop over chunks or tokens
    that indexes its input (``x[:, :, a:b]``, ``x[:, t]``) gets one full-length zero gradient per index in
    the backward: the peak stays linear but the work turns quadratic (the chunked linear attention took
    2.4 s instead of 0.6 s at 32k tokens). ``torch.split`` / ``unbind`` have a one-concatenation backward."""
    import inspect
    import time

    from postlib.bench import estimate_bytes
    from postlib.bench.core import _cpu_allocation_trace
    from postlib.bench.measure import mixer_thunk
    from postlib.registry import mixer_info

    params = inspect.signature(mixer_info(name).factory).parameters
    config = {key: VOLUME_LENGTHS[-1] for key in ("max_length", "max_len") if key in params}
    torch.manual_seed(0)
    mixer = build_mixer(name, D_MODEL, **config)
    lengths = VOLUME_LENGTHS
    start = time.perf_counter()
    mixer_thunk(mixer, torch.randn(1, lengths[0], D_MODEL), "forward_backward")()   # and lazy allocations
    if time.perf_counter() - start > VOLUME_SLOW_S:
        lengths = tuple(n // 4 for n in lengths)
    volumes, estimates = [], []
    for length in lengths:
        thunk = mixer_thunk(mixer, torch.randn(1, length, D_MODEL), "forward_backward")
        volumes.append(sum(size for _, size in _cpu_allocation_trace(thunk) if size > 0))
        estimates.append(estimate_bytes(mixer, 1, length, torch.float32, "forward_backward"))
    grown = volumes[1] / volumes[0]
    allowed = max(estimates[1] / estimates[0], lengths[1] / lengths[0])
    assert grown <= VOLUME_SLACK * allowed, (
        f"{name}: from L={lengths[0]} to {lengths[1]} a forward + backward allocates {grown:.1f}x more bytes, "
        f"its memory estimate and its length only {allowed:.1f}x: an indexing loop in the backward?")


def test_memory_estimate_default_is_unknown():
    class Plain(postlib.Mixer):
        def _forward(self, x):
            return x

    assert Plain(4).memory_estimate(1, 8, torch.float32) is None
    with pytest.raises(ValueError, match="mode must be one of"):
        _small("softmax").memory_estimate(1, 8, torch.float32, mode="backward")


# --------------------------------------------------------------------------- the input policy (CONTRACTS §2)
@pytest.mark.parametrize("name", list_mixers())
def test_empty_batch_gives_empty_output(name):
    mixer = _small(name)
    x = torch.randn(0, 5, D_MODEL, dtype=torch.float64)
    y = mixer(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    if mixer.causal:
        y_t, state = mixer.step(x[:, 0], mixer.init_state(0, dtype=torch.float64))
        assert y_t.shape == (0, D_MODEL)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", list_mixers())
def test_non_finite_input_is_refused_unless_allowed(name, bad):
    mixer = _small(name)
    x = torch.randn(1, 9, D_MODEL, dtype=torch.float64)
    x[0, 6, 3] = bad
    with pytest.raises(ValueError, match=r"x must be finite, but x\[0, 6, 3\] = .*postlib.allow_nonfinite"):
        mixer(x)
    if mixer.causal:
        state = mixer.init_state(1, dtype=torch.float64)
        with pytest.raises(ValueError, match=r"x_t must be finite"):
            mixer.step(x[:, 6], state)
    with postlib.allow_nonfinite():         # the opt-out: the arithmetic runs, whatever it gives
        assert mixer(x).shape == x.shape
    with pytest.raises(ValueError):         # and only inside the block
        mixer(x)


@pytest.mark.parametrize("name", list_mixers())
def test_input_dtype_or_device_unlike_the_parameters_names_both(name):
    mixer = _small(name)                    # float64 parameters
    with pytest.raises(TypeError, match=r"x has dtype torch.float32 but \w+'s parameters have dtype torch.float64"):
        mixer(torch.randn(1, 4, D_MODEL))
    with pytest.raises(TypeError, match=r"x is on meta but \w+'s parameters are on cpu"):
        mixer(torch.empty(1, 4, D_MODEL, dtype=torch.float64, device="meta"))
    if mixer.causal:
        with pytest.raises(TypeError, match=r"x_t has dtype torch.float32"):
            mixer.step(torch.randn(1, D_MODEL), mixer.init_state(1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list_mixers())
def test_half_precision_layers_run(name, dtype):
    """fp16/bf16 layers work end to end (S4/S4D/DSS compute their complex kernel in fp32 and cast)."""
    torch.manual_seed(0)
    mixer = build_mixer(name, D_MODEL).eval().to(dtype)
    x = torch.randn(2, 7, D_MODEL).to(dtype)
    with torch.no_grad():
        y = mixer(x)
        assert y.dtype == dtype and torch.isfinite(y).all()
        if mixer.causal:
            ref = build_mixer(name, D_MODEL).eval()
            ref.load_state_dict(mixer.float().state_dict())
            mixer.to(dtype)
            torch.testing.assert_close(run_steps(mixer, x).float(), ref(x.float()), rtol=0.1, atol=0.1)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_step_with_a_batch_unlike_the_state_is_refused(name):
    mixer = _small(name)
    state = mixer.init_state(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x_t has batch 3 but the state was made for batch 2 \(init_state\(2\)\)"):
        mixer.step(torch.randn(3, D_MODEL, dtype=torch.float64), state)


def test_register_mixer_validates_the_family():
    with pytest.raises(ValueError, match=r"family must be one of \['attention', 'ssm'"):
        postlib.register_mixer("x-test", family="attn", causal=True, summary="a typo in the family")
    with pytest.raises(TypeError, match="causal must be True or False"):
        postlib.register_mixer("x-test", family="ssm", causal=1, summary="causal given as an int")
    assert "x-test" not in list_mixers()


def test_docs_name_exactly_the_family_folders_that_exist():
    """README and CONTRIBUTING name only folders that exist, and every family folder that does."""
    import re
    from pathlib import Path

    from postlib.registry import FAMILIES

    package = Path(postlib.__file__).parent
    existing = {f for f in FAMILIES if (package / f / "__init__.py").exists()}
    for doc in ("README.md", "CONTRIBUTING.md"):
        text = (package.parent / doc).read_text(encoding="utf-8")
        assert {f for f in FAMILIES if re.search(rf"\b{f}/", text)} == existing, doc
        for folder in re.findall(r"postlib/([a-z_]+)/", text):
            assert (package / folder).is_dir(), f"{doc} names postlib/{folder}/, which does not exist"
