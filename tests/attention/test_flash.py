"""The tiled (torch) flash attention equals the materialised reference, values and gradients."""
import pytest
import torch

from postlib.attention import causal_mask, flash_attention, softmax_attention
from postlib.attention.flash import (FlashAttentionFunction, flash_attention_backward_torch,
                                    flash_attention_torch, online_softmax_update)
from postlib.testing import assert_rel_rms

SHAPES = [(1, 1), (7, 7), (13, 13), (100, 100), (5, 37), (13, 100)]  # (L_q, L_k); L_q < L_k: KV cache
BLOCKS = [1, 3, 16, 64, 257]  # block 1 (pure recurrence), awkward, and a block longer than every sequence


def qkv(lq, lk, d=8, dv=None, dtype=torch.float64, requires_grad=False):
    gen = torch.Generator().manual_seed(31 * lq + lk)
    make = lambda n, dim: torch.randn(2, 3, n, dim, generator=gen, dtype=dtype,  # noqa: E731
                                      requires_grad=requires_grad)
    return make(lq, d), make(lk, d), make(lk, dv or d)


@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block_size", BLOCKS)
def test_equals_reference_fp64(lq, lk, causal, block_size):
    q, k, v = qkv(lq, lk)
    out = flash_attention(q, k, v, causal=causal, block_size=block_size, backend="torch")
    assert out.dtype == torch.float64 and out.shape == (2, 3, lq, 8)
    assert_rel_rms(softmax_attention(q, k, v, causal=causal), out, 1e-12)


def test_more_queries_than_keys_and_value_width():
    q, k, v = qkv(100, 7, dv=5)
    out = flash_attention(q, k, v, block_size=4, backend="torch")
    assert out.shape == (2, 3, 100, 5)
    assert_rel_rms(softmax_attention(q, k, v), out, 1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float16, 5e-3), (torch.bfloat16, 5e-3)])
def test_low_precision_keeps_dtype_and_accuracy(dtype, tol):
    q, k, v = qkv(63, 63, dtype=dtype)
    out = flash_attention(q, k, v, causal=True, block_size=16, backend="torch")
    assert out.dtype == dtype
    assert_rel_rms(softmax_attention(q.double(), k.double(), v.double(), causal=True), out, tol)


def test_auto_backend_on_cpu_is_torch():
    q, k, v = qkv(13, 13)  # float64: the Triton kernel would refuse it, so this proves the choice
    assert_rel_rms(softmax_attention(q, k, v, causal=True), flash_attention(q, k, v, causal=True), 1e-12)


def test_log_sum_exp_statistic():
    q, k, v = qkv(13, 40)
    _, lse = flash_attention_torch(q, k, v, causal=True, block_size=8, return_stats=True)
    scores = (q @ k.transpose(-1, -2)) / 8 ** 0.5
    scores = scores.masked_fill(~causal_mask(13, 40), float("-inf"))
    assert_rel_rms(torch.logsumexp(scores, -1), lse, 1e-12)


@pytest.mark.parametrize("lq,lk,block_size", [(7, 7, 3), (5, 37, 16), (13, 13, 64)])
def test_gradients_through_tiling_equal_reference(lq, lk, block_size):
    q, k, v = qkv(lq, lk, requires_grad=True)
    grad_out = torch.randn(2, 3, lq, 8, dtype=torch.float64)
    ref_grads = torch.autograd.grad(softmax_attention(q, k, v, causal=True), (q, k, v), grad_out)
    out = flash_attention(q, k, v, causal=True, block_size=block_size, backend="torch")
    for name, ref, got in zip("qkv", ref_grads, torch.autograd.grad(out, (q, k, v), grad_out)):
        assert_rel_rms(ref, got, 1e-10, what=f"d{name}")


def test_gradcheck_tiled_form():
    q, k, v = (t[:1, :1] .detach().requires_grad_() for t in qkv(5, 9, d=3))
    assert torch.autograd.gradcheck(
        lambda a, b, c: flash_attention(a, b, c, causal=True, block_size=2, backend="torch"), (q, k, v))


def test_online_update_leaves_fully_masked_rows_empty():
    m = torch.full((1, 2), float("-inf"), dtype=torch.float64)
    l, acc = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, 3, dtype=torch.float64)
    scores = torch.tensor([[[float("-inf"), float("-inf")], [0.0, 1.0]]], dtype=torch.float64)
    m, l, acc = online_softmax_update(m, l, acc, scores, torch.ones(1, 2, 3, dtype=torch.float64))
    assert m[0, 0] == float("-inf") and l[0, 0] == 0 and torch.all(acc[0, 0] == 0)
    assert not torch.isnan(acc).any() and l[0, 1] == pytest.approx(torch.exp(torch.tensor(-1.0)).item() + 1)


def test_bad_inputs_name_the_argument():
    q, k, v = qkv(8, 8)
    with pytest.raises(ValueError, match="q must have 4 dimensions"):
        flash_attention(q[0], k, v)
    with pytest.raises(ValueError, match="k must have head_dim 8"):
        flash_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="v must have the same length as k"):
        flash_attention(q, k, v[:, :, :5])
    with pytest.raises(TypeError, match="v has dtype torch.float32"):
        flash_attention(q, k, v.float())
    with pytest.raises(TypeError, match="q must be a torch.Tensor"):
        flash_attention(q.numpy(), k, v)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        flash_attention(q, k, v, block_size=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        flash_attention(q, k, v, backend="cuda")
    with pytest.raises(ValueError, match="L_k >= L_q"):
        flash_attention(*qkv(9, 4), causal=True)


def test_tiled_backward_fp64_equals_autograd_of_reference():
    q, k, v = (t.requires_grad_() for t in qkv(13, 29, 8, dv=5))
    grad_out = torch.randn(2, 3, 13, 5, dtype=torch.float64)
    ref = torch.autograd.grad(softmax_attention(q, k, v, causal=True), (q, k, v), grad_out)
    out, lse = flash_attention_torch(q, k, v, causal=True, block_size=4, return_stats=True)
    got = flash_attention_backward_torch(q, k, v, out, lse, grad_out, True, 8 ** -0.5, block_size=6)
    for name, r, g in zip("qkv", ref, got):
        assert_rel_rms(r, g, 1e-12, what=f"d{name}")


def test_gradcheck_autograd_function_fp64():
    # The Triton forward has no fp64 path, so gradcheck swaps in its torch twin as the forward;
    # the backward under test is the same code the Triton path uses.
    q, k, v = (t[:1, :2].requires_grad_() for t in qkv(5, 9, 3))
    twin = lambda a, b, c: flash_attention_torch(a, b, c, causal=True, block_size=2, return_stats=True)  # noqa: E731
    fn = lambda a, b, c: FlashAttentionFunction.apply(a, b, c, True, 3 ** -0.5, 2, twin)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))


def test_torch_forms_sit_together_and_name_the_triton_kernel():
    """The torch forward and backward live in one module; the kernel and its twin name each other."""
    import postlib.attention.flash as flash
    import postlib.kernels.flash_fwd as kernel

    assert flash_attention_backward_torch.__module__ == flash_attention_torch.__module__ == flash.__name__
    assert kernel.FlashAttentionFunction is FlashAttentionFunction
    assert "flash_attention_triton" in flash_attention_torch.__doc__
    for name in ("flash_attention_torch", "flash_attention_backward_torch"):
        assert f"postlib.attention.flash.{name}" in kernel.__doc__ + kernel.flash_attention_triton.__doc__


@pytest.mark.parametrize("form", ["softmax", "flash"])
def test_causal_forms_refuse_non_finite_input_and_check_scale(form):
    fn = softmax_attention if form == "softmax" else lambda *a, **kw: flash_attention(*a, backend="torch", **kw)
    q, k, v = qkv(7, 7)
    v[:, :, 5] = float("nan")
    with pytest.raises(ValueError, match=r"v must be finite, but v\[0, 0, 5, 0\] = nan"):
        fn(q, k, v, causal=True)
    assert torch.isnan(fn(q, k, v)).any()  # non-causal: every output depends on every value anyway
    q, k, v = qkv(7, 7)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale must be a finite number"):
            fn(q, k, v, scale=bad)
