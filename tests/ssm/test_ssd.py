"""Mamba-2's chunked SSD ≡ the selective scan with a scalar A per head."""
import pytest
import torch

from postlib.ssm.scan import selective_scan
from postlib.ssm.ssd import ssd_chunked


@pytest.mark.parametrize("L,chunk", [(1, 4), (7, 4), (13, 5), (64, 16), (100, 7)])
def test_ssd_equals_the_scan(L, chunk):
    g = torch.Generator().manual_seed(L)
    b, H, P, N = 2, 3, 4, 5
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    u, delta = r(b, H, P, L), torch.rand(b, H, L, generator=g, dtype=torch.float64)
    A = -torch.rand(H, generator=g, dtype=torch.float64) * 3 - 0.1
    B, C = r(b, N, L), r(b, N, L)
    y = ssd_chunked(u, delta, A, B, C, chunk_size=chunk)
    # The same system in selective_scan's terms: dim = H·P channels, Δ and A shared within a head.
    ref = selective_scan(u.reshape(b, H * P, L), delta.repeat_interleave(P, dim=1), A.repeat_interleave(P)[:, None].expand(H * P, N).contiguous(),
                         B, C, backend="sequential").reshape(b, H, P, L)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-12)


def test_ssd_rejects_bad_shapes():
    u = torch.randn(1, 2, 3, 8)
    with pytest.raises(ValueError, match=r"delta must have shape \(batch, heads, L\)"):
        ssd_chunked(u, torch.rand(1, 3, 8), -torch.ones(2), torch.randn(1, 4, 8), torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match=r"A must have shape \(heads,\)"):
        ssd_chunked(u, torch.rand(1, 2, 8), -torch.ones(3), torch.randn(1, 4, 8), torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match=r"B must have shape \(batch, N, L\)"):
        ssd_chunked(u, torch.rand(1, 2, 8), -torch.ones(2), torch.randn(1, 4, 7), torch.randn(1, 4, 8))
