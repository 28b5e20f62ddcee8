"""Cross-checks against independent PyPI implementations. Each test states the convention gap it bridges."""
import pytest
import torch

from postlib.attention.linear import apply_feature_map, linear_attention_features
from postlib.attention.linformer import linformer_attention
from postlib.attention.performer import gaussian_projection, performer_attention
from postlib.attention.reformer import lsh_attention
from postlib.testing import rel_rms


def test_performer_pytorch_softmax_kernel():
    """performer-pytorch's ``softmax_kernel`` with the *same* projection matrix.
    Conventions: it adds eps (set to 0 here) after the exp, and subtracts a per-query max and a global key max
    of ωᵀx (ours subtracts maxima of ωᵀx − |x|²/2); both are constants that cancel after normalisation,
    so we compare the row-normalised attention outputs, not raw features."""
    pp = pytest.importorskip("performer_pytorch.performer_pytorch")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 20, 16, generator=g, dtype=torch.float64) * 0.7 for _ in range(3))
    w = gaussian_projection(32, 16, seed=4)
    pq = pp.softmax_kernel(q, projection_matrix=w, is_query=True, eps=0.0)
    pk = pp.softmax_kernel(k, projection_matrix=w, is_query=False, eps=0.0)
    A = pq @ pk.transpose(-1, -2)
    theirs = (A @ v) / A.sum(-1, keepdim=True)
    ours = performer_attention(q, k, v, 32, projection=w, eps=0.0)
    assert rel_rms(theirs, ours) < 1e-10


def test_linformer_package():
    """``linformer.LinformerSelfAttention``: projections stored as (seq_len, k) (ours: E = proj_kᵀ, (k, L));
    one E/F pair shared by all heads; no bias on q/k/v; our function sees the already projected heads."""
    lin = pytest.importorskip("linformer")
    torch.manual_seed(0)
    L, dim, heads, rank = 24, 16, 2, 5
    m = lin.LinformerSelfAttention(dim=dim, seq_len=L, k=rank, heads=heads).double().eval()
    x = torch.randn(2, L, dim, dtype=torch.float64)
    with torch.no_grad():
        theirs = m(x)
        split = lambda t: t.view(2, L, heads, dim // heads).transpose(1, 2)   # noqa: E731
        q, k, v = split(m.to_q(x)), split(m.to_k(x)), split(m.to_v(x))
        y = linformer_attention(q, k, v, m.proj_k.T, m.proj_v.T)
        ours = m.to_out(y.transpose(1, 2).reshape(2, L, dim))
    assert rel_rms(theirs, ours) < 1e-12


def test_reformer_pytorch_lsh_attention_with_its_buckets():
    """reformer-pytorch's ``LSHAttention`` (attend_across_buckets and duplicate attention on, its defaults, so
    ours with dedup=False: its duplicate counting compares chunks round by round and misses a key that the
    look-back into the previous round's last chunk finds a second time, which ours counts).
    Conventions: (batch, length, dim) without a heads axis; its buckets come flattened with round offsets
    r·n_buckets, which we strip; its chunk length is ``bucket_size`` and n_buckets = L / bucket_size."""
    rp = pytest.importorskip("reformer_pytorch.reformer_pytorch")
    torch.manual_seed(0)
    L, D, bucket_size, n_hashes = 32, 8, 4, 3
    for causal in (False, True):
        attn = rp.LSHAttention(bucket_size=bucket_size, n_hashes=n_hashes, causal=causal).eval()
        qk, v = torch.randn(2, L, D, dtype=torch.float64), torch.randn(2, L, D, dtype=torch.float64)
        with torch.no_grad():
            theirs, _, buckets = attn(qk, v)
        n_buckets = L // bucket_size
        b = buckets.view(2, n_hashes, L) - (torch.arange(n_hashes) * n_buckets)[None, :, None]
        ours = lsh_attention(qk[:, None], v[:, None], n_buckets, n_hashes, bucket_size, causal=causal,
                             buckets=b[:, None], dedup=False)[:, 0]
        assert rel_rms(theirs, ours) < 1e-10, causal


def test_fla_naive_linear_attention():
    """fla-core's ``naive_recurrent_linear_attn``: layout [B, T, H, K], applies no feature map (we pass φ(q),
    φ(k)), scales q by ``scale`` (1 here: it cancels after normalisation), computes in fp32 and adds 1e-10
    to the denominator — hence an fp32 tolerance."""
    naive = pytest.importorskip("fla.ops.linear_attn.naive")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 37, 16, generator=g) for _ in range(3))
    pq, pk = apply_feature_map(q), apply_feature_map(k)
    theirs, _ = naive.naive_recurrent_linear_attn(*(t.transpose(1, 2) for t in (pq, pk, v)), scale=1.0, normalize=True)
    ours = linear_attention_features(pq.double(), pk.double(), v.double(), causal=True, eps=1e-10)
    assert rel_rms(ours, theirs.transpose(1, 2)) < 1e-5
