"""selective_scan: every backend ≡ the sequential loop; gradients; peers; long sequences; bad shapes."""
import pytest
import torch

from postlib.ssm.scan import associative_scan, pick_backend, selective_scan

BACKENDS = ["parallel", "chunked", "triton"]


def _inputs(b=2, d=4, N=3, L=13, layout="var", dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    u, delta = r(b, d, L), r(b, d, L)
    A = -torch.rand(d, N, generator=g, dtype=dtype) * 2 - 0.1
    if layout == "var":
        B, C = r(b, N, L), r(b, N, L)
    elif layout == "fixed":
        B, C = r(d, N), r(d, N)
    else:   # groups: 2 groups of d/2 channels
        B, C = r(b, 2, N, L), r(b, 2, N, L)
    return dict(u=u, delta=delta, A=A, B=B, C=C, D=r(d), z=r(b, d, L), delta_bias=r(d))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("L", [1, 7, 13, 100])
@pytest.mark.parametrize("layout", ["var", "fixed", "groups"])
def test_backends_equal_the_loop_fp64(backend, L, layout):
    kw = _inputs(L=L, layout=layout)
    ref, ref_last = selective_scan(**kw, delta_softplus=True, backend="sequential", return_last_state=True)
    out, last = selective_scan(**kw, delta_softplus=True, backend=backend, return_last_state=True)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(last, ref_last, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_fp32_within_mamba_tolerance(backend):
    kw = _inputs(b=1, d=8, N=16, L=61, dtype=torch.float32)
    ref = selective_scan(**{k: v.double() for k, v in kw.items()}, delta_softplus=True, backend="sequential")
    out = selective_scan(**kw, delta_softplus=True, backend=backend)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=6e-4, atol=2e-3)


def test_the_recurrence_is_the_papers():
    """One hand-written step: x1 = exp(Δ A) x0 + Δ B u, y = C·x + D u, times silu(z)."""
    kw = _inputs(b=1, d=1, N=2, L=2)
    y = selective_scan(**kw, backend="sequential")
    d = kw["delta"][0, 0] + kw["delta_bias"][0]
    A, B, C, u = kw["A"][0], kw["B"][0], kw["C"][0], kw["u"][0, 0]
    x0 = d[0] * B[:, 0] * u[0]
    x1 = torch.exp(d[1] * A) * x0 + d[1] * B[:, 1] * u[1]
    silu = lambda v: v * torch.sigmoid(v)
    expect = torch.stack([(C[:, 0] * x0).sum(), (C[:, 1] * x1).sum()]) + kw["D"][0] * u
    torch.testing.assert_close(y[0, 0], expect * silu(kw["z"][0, 0]))


@pytest.mark.parametrize("backend", ["sequential", "parallel", "chunked", "triton"])
def test_gradcheck_fp64(backend):
    kw = _inputs(b=1, d=2, N=2, L=5)
    names = list(kw)
    tensors = [kw[n].requires_grad_() for n in names]

    def f(*ts):
        return selective_scan(**dict(zip(names, ts)), delta_softplus=True, backend=backend)
    assert torch.autograd.gradcheck(f, tensors, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["parallel", "chunked"])
def test_long_sequence_has_no_overflow(backend):
    L = 16384
    kw = _inputs(b=1, d=2, N=4, L=L, dtype=torch.float32)
    kw["delta"] = kw["delta"] + 3.0        # large steps: exp(ΔA) underflows towards 0, must not become NaN
    y = selective_scan(**kw, delta_softplus=True, backend=backend)
    ref = selective_scan(**kw, delta_softplus=True, backend="sequential") if backend == "parallel" else None
    assert torch.isfinite(y).all()
    if ref is not None:
        torch.testing.assert_close(y, ref, rtol=6e-4, atol=2e-3)


def test_triton_long_sequence_is_finite_and_exact():
    kw = _inputs(b=1, d=2, N=4, L=2053, dtype=torch.float32)
    y = selective_scan(**kw, delta_softplus=True, backend="triton")
    torch.testing.assert_close(y, selective_scan(**kw, delta_softplus=True, backend="chunked"), rtol=6e-4, atol=2e-3)


def test_cross_check_mambapy_pscan():
    """mambapy.pscan solves H_t = A_t H_{t-1} + X_t on (B, L, D, N); ours on (B, D, L, N): transpose L and D."""
    from mambapy.pscan import pscan
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 37, 5, generator=g)            # (B, D, L, N), decays in (0, 1)
    b = torch.randn(2, 3, 37, 5, generator=g)
    ours = associative_scan(a, b)
    theirs = pscan(a.transpose(1, 2).contiguous(), b.transpose(1, 2).contiguous()).transpose(1, 2)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_cross_check_accelerated_scan_reference():
    """accelerated_scan.ref.scan(gates, tokens) solves x_t = g_t x_{t-1} + t_t on (B, C, T): ours with N = 1."""
    from accelerated_scan.ref import scan
    g = torch.Generator().manual_seed(2)
    gates, tokens = torch.rand(2, 4, 64, generator=g), torch.randn(2, 4, 64, generator=g)
    ours = associative_scan(gates[..., None], tokens[..., None])[..., 0]
    torch.testing.assert_close(ours, scan(gates, tokens), rtol=1e-5, atol=1e-5)


def test_auto_picks_by_state_size():
    assert pick_backend(torch.zeros(1, 16, 128), 16) == "parallel"
    assert pick_backend(torch.zeros(1, 32, 128), 16) == "parallel"
    assert pick_backend(torch.zeros(1, 64, 128), 16) == "chunked"
    assert pick_backend(torch.zeros(1, 128, 128), 16) == "chunked"
    assert pick_backend(torch.zeros(1, 512, 128), 16) == "chunked"
    assert pick_backend(torch.zeros(1, 16, 8), 16) == "sequential"


def test_bad_shapes_name_the_argument():
    kw = _inputs()
    cases = [
        ("u", kw["u"][0], r"u must have 3 dimensions \(batch, dim, L\)"),
        ("delta", kw["delta"][:, :, :-1], r"delta must have shape \(batch, dim, L\)"),
        ("A", kw["A"][:-1], r"A must have shape \(dim=4, N\)"),
        ("B", kw["B"][:, :, :-1], r"B must have shape \(batch, N, L\)"),
        ("C", torch.randn(4, 5, dtype=torch.float64), r"C must have shape"),
        ("D", torch.randn(3, dtype=torch.float64), r"D must have shape \(dim=4,\)"),
        ("z", kw["z"][:1], r"z must have shape \(batch, dim, L\)"),
        ("delta_bias", torch.randn(4, 1, dtype=torch.float64), r"delta_bias must have 1 dimensions"),
    ]
    for name, bad, msg in cases:
        with pytest.raises(ValueError, match=msg):
            selective_scan(**{**kw, name: bad})
    with pytest.raises(TypeError, match="u must be a torch.Tensor"):
        selective_scan(**{**kw, "u": [1.0]})
    with pytest.raises(TypeError, match="B has dtype torch.float32"):
        selective_scan(**{**kw, "B": kw["B"].float()})
    with pytest.raises(ValueError, match="backend must be one of"):
        selective_scan(**kw, backend="cuda")


@pytest.mark.parametrize("layout", ["var", "fixed"])
def test_chunked_backward_allocates_linearly_in_length(layout):
    """Training through the chunked form allocates O(L) bytes in all: its loops over the √L steps and chunks
    take unbind's views, whose backward is one stack (indexing M[..., t] per step wrote √L full-size zero
    gradients, O(L^1.5))."""
    from postlib.bench.core import _cpu_allocation_trace

    def volume(L):
        x = {k: (v.float().requires_grad_() if k in ("u", "delta", "B", "C") else v.float())
             for k, v in _inputs(b=1, d=8, N=4, L=L, layout=layout).items()}
        run = lambda: selective_scan(**x, delta_softplus=True, backend="chunked").sum().backward()  # noqa: E731
        run()
        return sum(size for _, size in _cpu_allocation_trace(run) if size > 0)
    assert volume(16384) / volume(1024) <= 1.3 * 16
