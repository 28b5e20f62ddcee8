"""Cross-checks against independent implementations; each test states the conventions it bridges."""
import pytest
import torch

from postlib.sparse import dilated_attention, sparse_attention
from postlib.testing import rel_rms


@pytest.mark.parametrize("causal", [False, True])
def test_local_attention_exact_window(causal):
    """``local-attention``'s ``LocalAttention(window_size=W, exact_windowsize=True)``: query t sees keys
    with t − W·look_backward <= j <= t + W·look_forward (look_forward = 0 when causal, else 1). With
    look_backward = look_forward = 1 that is our |i − j| <= window // 2 with window = 2W. Its layout is
    (batch·heads, length, head_dim) and the length must be a multiple of W (its buckets); it masks with the
    dtype's most negative number instead of −inf (every row sees itself, so the two agree). Without
    ``exact_windowsize`` it attends whole buckets instead: a different (blocky) pattern."""
    local_attention = pytest.importorskip("local_attention")
    W, L = 4, 32
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, L, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    attn = local_attention.LocalAttention(window_size=W, causal=causal, look_backward=1, exact_windowsize=True,
                                          use_rotary_pos_emb=False).eval()
    theirs = attn(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1)).view(2, 3, L, 8)
    ours = sparse_attention(q, k, v, "sliding", causal=causal, window=2 * W, backend="torch", tile=16)
    assert rel_rms(theirs, ours) < 1e-12


def test_transformers_longformer_self_attention():
    """``transformers``' ``LongformerSelfAttention`` (an encoder layer: not causal). Conventions:
    ``attention_window`` w (even) means w/2 keys on each side, our window=w; the sequence must be a
    multiple of w (``LongformerModel`` pads, the layer does not); its ``attention_mask`` is −10000 / 0 /
    +10000 for padding / local / global; global tokens use their own projections ``query_global`` etc., set
    equal to the local ones here so that the pattern, not the weights, is compared; a global key is
    removed from the window so that no key is counted twice — our union mask. No output projection. It
    computes the softmax in fp32 even for fp64 input, hence an fp32 tolerance."""
    modeling = pytest.importorskip("transformers.models.longformer.modeling_longformer")
    from transformers import LongformerConfig

    torch.manual_seed(0)
    d, heads, w, L, globals_ = 32, 4, 8, 48, [0, 19]
    config = LongformerConfig(hidden_size=d, num_attention_heads=heads, attention_window=[w],
                              attention_probs_dropout_prob=0.0)
    layer = modeling.LongformerSelfAttention(config, layer_id=0).double().eval()
    for name in ("query", "key", "value"):
        getattr(layer, f"{name}_global").load_state_dict(getattr(layer, name).state_dict())
    x = torch.randn(2, L, d, dtype=torch.float64)
    mask = torch.zeros(2, L, dtype=torch.float64)
    mask[:, globals_] = 10000.0
    with torch.no_grad():
        theirs = layer(x, attention_mask=mask, is_index_masked=mask < 0, is_index_global_attn=mask > 0,
                       is_global_attn=True)[0]
        split = lambda t: t.view(2, L, heads, d // heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(layer.query(x)), split(layer.key(x)), split(layer.value(x))
        ours = sparse_attention(q, k, v, "longformer", window=w, global_tokens=globals_, backend="torch")
    assert rel_rms(theirs, ours.transpose(1, 2).reshape(2, L, d)) < 1e-6


def test_torchscale_dilated_attention():
    """``torchscale``'s ``DilatedAttention`` (LongNet's official code). SKIPPED when absent — and the latest
    PyPI release (torchscale 0.3.0) does not ship ``torchscale/component/dilated_attention.py``: the module
    exists only in the GitHub repository, and installing torchscale with its dependencies would replace
    torch (via timm → torchvision), so it is not a dev dependency. Run this test after installing torchscale
    from source with ``--no-deps``.

    Conventions, read from that code: (batch, length, heads·head_dim) with its own q/k/v/out projections
    (identities here); a segment longer than the sequence is cut to it; the sequence is zero-padded to a
    multiple of each segment (use multiples: padding keys would be attended when not causal); heads are split
    into r equal groups and group g uses offset g (our (heads × pairs) offset table); the branch outputs are
    mixed with weights exp(lse) / Σ exp(lse), computed under ``torch.no_grad`` (gradients differ; values do
    not); its ``attention_ops`` needs flash-attn, so on CPU it is replaced by exact attention returning
    (output, lse) in the layout the flash kernel returns."""
    dilated = pytest.importorskip("torchscale.component.dilated_attention")
    import math
    from types import SimpleNamespace

    torch.manual_seed(0)
    heads, head_dim, L, seg, dil = 4, 8, 64, [16, 32, 64], [1, 2, 4]
    d = heads * head_dim
    args = SimpleNamespace(flash_attention=True, segment_length=seg, dilated_ratio=dil, seq_parallel=False,
                           layernorm_eps=1e-5, xpos_rel_pos=False, xpos_scale_base=512, multiway=False)
    layer = dilated.DilatedAttention(args, d, heads, self_attention=True).double().eval()
    for proj in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
        torch.nn.init.eye_(proj.weight)
        torch.nn.init.zeros_(proj.bias)

    def exact_ops(q, k, v, key_padding_mask=None, attn_mask=None, rel_pos=None, is_causal=False):
        s = q @ k.transpose(1, 2) / math.sqrt(head_dim)
        if is_causal:
            s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
        out = torch.softmax(s, -1) @ v                               # ((b·h), l, d)
        lse = torch.logsumexp(s, -1)                                 # ((b·h), l)
        bh, l_, _ = out.shape
        out = out.view(bh // heads, heads, l_, head_dim).transpose(1, 2).reshape(bh // heads, l_, d)
        return out, lse.view(bh // heads, heads, l_)

    layer.attention_ops = exact_ops
    x = torch.randn(2, L, d, dtype=torch.float64)
    table = [[h // -(-heads // r) for r in dil] for h in range(heads)]   # head h → group h // ⌈H / r⌉
    for causal in (False, True):
        with torch.no_grad():
            theirs = layer(x, x, x, is_causal=causal)[0]
        q = x.view(2, L, heads, head_dim).transpose(1, 2)
        ours = dilated_attention(q, q, q, seg, dil, causal=causal, offset=table, backend="torch")
        assert rel_rms(theirs, ours.transpose(1, 2).reshape(2, L, d)) < 1e-10, causal
