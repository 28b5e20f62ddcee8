"""The roofline: arithmetic intensity (FLOPs per byte moved) against achieved throughput.

Williams et al. (2009): a kernel that does ``F`` FLOPs and moves ``Q`` bytes between memory and
the processor cannot run faster than ``min(P, I·β)`` FLOP/s, where ``I = F/Q`` is its arithmetic
intensity, ``P`` the peak compute and ``β`` the memory bandwidth. Left of the ridge ``P/β`` a
kernel is memory-bound, right of it compute-bound. IO-aware design (FlashAttention, the fused
scan, chunked linear attention) raises ``I`` by keeping intermediates out of memory.

Counts come from formulas, never from a profiler, so they are exact and the same on every
machine (``tests/lab/test_outlook_roofline.py`` checks them against hand counts):

* FLOPs: ``2·m·n·k`` per matrix product, and for the selective scan the 8 operations of one
  step of the recurrence per (batch, channel, state, time) element. Extra work a form does
  (the chunked scan's second pass) is not counted: a form that does more work for the same
  result shows as lower throughput, which is the honest reading.
* Bytes (the *traffic model*): inputs read once, outputs written once, and every intermediate
  tensor a form materialises written once and read once. A fused kernel keeps its tiles in
  registers and shared memory, so it moves only its inputs and outputs (plus what it re-reads
  per tile). Each form's traffic is a table of ``{tensor: elements × touches}`` (``traffic``),
  so the page can show where the bytes go.

Times are measured (``postlib.bench.time_fn``); the recorded run is
``python -m postlib.bench roofline`` (``postlib/bench/experiments/roofline.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .._checks import check_positive_int

# The measured forms (CPU, PyTorch) and the fused kernels (GPU, Triton: points from gpu_check.json).
FORMS = ("softmax (materialised)", "flash tiling (PyTorch loop)", "flash (fused kernel)",
         "linear attention (prefix sums)", "linear attention (chunked)", "linear attention (fused kernel)",
         "scan (sequential loop)", "scan (chunked)", "scan (fused kernel)", "matmul")
KIND = {"softmax (materialised)": "attention", "flash tiling (PyTorch loop)": "attention",
        "flash (fused kernel)": "attention", "linear attention (prefix sums)": "linear",
        "linear attention (chunked)": "linear", "linear attention (fused kernel)": "linear",
        "scan (sequential loop)": "scan", "scan (chunked)": "scan", "scan (fused kernel)": "scan",
        "matmul": "matmul"}
FLASH_KERNEL_BLOCK = 64       # query rows per program of postlib.kernels.flash_fwd (K, V re-read per block)
LINEAR_KERNEL_CHUNK = 64      # chunk of postlib.kernels.linear_attention


@dataclass(frozen=True)
class Shape:
    """Sizes of one kernel call. Attention: ``groups`` = batch·heads, ``length``, ``dim`` (head dim),
    ``tile`` (key tile or chunk). Scan: ``groups`` = batch, ``length``, ``dim`` (channels), ``state`` (N),
    ``tile`` (chunk). Matmul: ``length`` = n of an n×n×n product."""
    length: int
    dim: int = 64
    groups: int = 1
    state: int = 16
    tile: int = 64
    itemsize: int = 4

    def __post_init__(self):
        for name in ("length", "dim", "groups", "state", "tile", "itemsize"):
            check_positive_int(getattr(self, name), name)


def flops(form: str, s: Shape) -> int:
    """FLOPs of one call (see the module docstring for what is counted)."""
    G, L, D, N, T = s.groups, s.length, s.dim, s.state, s.tile
    kind = _kind(form)
    if kind == "attention":                     # QKᵀ and PV, non-causal: 2·L²·D each
        return 4 * G * L * L * D
    if kind == "linear":
        if form == "linear attention (prefix sums)":
            # outer products φ(k)vᵀ (L·D²), their running sum (L·D²), φ(q)ᵀ·S (2·L·D²)
            return 4 * G * L * D * D
        T = LINEAR_KERNEL_CHUNK if form == "linear attention (fused kernel)" else T
        chunks = -(-L // T)
        # per chunk: QKᵀ and its product with V (2·T²·D each), Q·S and the state update Kᵀ·V (2·T·D² each)
        return G * chunks * (4 * T * T * D + 4 * T * D * D)
    if kind == "scan":                          # ΔA, exp, Δ·B, ·u, a·x, +b, x·C, Σ: 8 per element
        return 8 * G * D * L * N
    return 2 * L ** 3                           # matmul


def traffic(form: str, s: Shape) -> dict[str, int]:
    """``{tensor: elements × touches}`` the form moves (multiply by the item size for bytes)."""
    G, L, D, N, T = s.groups, s.length, s.dim, s.state, s.tile
    kind = _kind(form)
    if kind == "attention":
        io = {"q, k, v read": 3 * G * L * D, "output written": G * L * D}
        if form == "softmax (materialised)":     # QKᵀ, its scaled copy, the softmax: L×L each, written and read
            return {**io, "scores, scaled scores, probabilities (L×L)": 3 * 2 * G * L * L}
        if form == "flash tiling (PyTorch loop)":
            tiles = -(-L // T)                   # per key tile: scores and probabilities (L×T), P·V and the
            return {**io, "score and probability tiles (L×T)": 2 * 2 * G * L * T * tiles,   # running output
                    "running output and P·V per tile (L×D)": 2 * 2 * G * L * D * tiles}
        blocks = -(-L // FLASH_KERNEL_BLOCK)    # fused: K and V re-read once per block of query rows
        return {"q read, output written": 2 * G * L * D, "k, v read per query block": 2 * G * L * D * blocks}
    if kind == "linear":
        io = {"φ(q), φ(k), v read": 3 * G * L * D, "output written": G * L * D}
        if form == "linear attention (prefix sums)":
            return {**io, "outer products and their running sum (L×D×D)": 2 * 2 * G * L * D * D,
                    "normaliser and numerator (L×D)": 2 * 2 * G * L * D}
        if form == "linear attention (fused kernel)":
            return io
        chunks = -(-L // T)
        return {**io, "chunk similarity and its masked copy (T×T)": 2 * 2 * G * chunks * T * T,
                "intra- and inter-chunk products, numerator (T×D)": 3 * 2 * G * chunks * T * D,
                "state read and written, Kᵀ·V (D×D)": 2 * 2 * G * chunks * D * D}
    if kind == "scan":
        io = {"u, Δ read, y written": 3 * G * D * L, "B, C read": 2 * G * N * L}
        if form == "scan (fused kernel)":
            return io
        if form == "scan (sequential loop)":     # 8 (batch, dim, N) temporaries per step, written and read
            return {**io, "per-step temporaries (dim×N)": 8 * 2 * G * D * N * L}
        # chunked: the same 8 per step in pass 1, and 4 more per step in pass 2 (decay, carry, ·C, Σ)
        return {**io, "pass-1 temporaries (dim×N per step)": 8 * 2 * G * D * N * L,
                "pass-2 temporaries (dim×N per step)": 4 * 2 * G * D * N * L}
    return {"A, B read, C written": 3 * L * L}


def bytes_moved(form: str, s: Shape) -> int:
    return sum(traffic(form, s).values()) * s.itemsize


def intensity(form: str, s: Shape) -> float:
    """Arithmetic intensity in FLOPs per byte."""
    return flops(form, s) / bytes_moved(form, s)


def _kind(form: str) -> str:
    if form not in KIND:
        raise ValueError(f"form must be one of {list(FORMS)}, got {form!r}")
    return KIND[form]


def attainable(intensity_: float, peak_flops: float, bandwidth: float) -> float:
    """The roofline: min(peak, intensity · bandwidth), FLOP/s."""
    return min(peak_flops, intensity_ * bandwidth)


# ----------------------------------------------------------------------------- measured CPU points
def _randn(*shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)


def kernel_thunk(form: str, s: Shape, device="cpu") -> Callable[[], object]:
    """A zero-argument call of ``form`` on inputs of ``s`` (inputs built here, outside the timing)."""
    from ..attention.flash import flash_attention_torch
    from ..attention.linear import apply_feature_map, causal_chunked, causal_prefix_sum
    from ..attention.softmax import softmax_attention
    from ..ssm.scan import selective_scan

    dtype = {4: torch.float32, 8: torch.float64}.get(s.itemsize)
    if dtype is None:
        raise ValueError(f"CPU points are measured in float32 or float64 (itemsize 4 or 8), got {s.itemsize}")
    kind = _kind(form)
    G, L, D, N, T = s.groups, s.length, s.dim, s.state, s.tile
    if "fused kernel" in form:
        raise ValueError(f"{form!r} is a Triton kernel: its points come from gpu_check.json (gpu_points)")
    if kind == "attention":
        q, k, v = (_randn(1, G, L, D, dtype=dtype, device=device) for _ in range(3))
        if form == "softmax (materialised)":
            return lambda: softmax_attention(q, k, v)
        return lambda: flash_attention_torch(q, k, v, block_size=T)
    if kind == "linear":
        q, k, v = (_randn(1, G, L, D, dtype=dtype, device=device) for _ in range(3))
        pq, pk = apply_feature_map(q), apply_feature_map(k)
        if form == "linear attention (prefix sums)":
            return lambda: causal_prefix_sum(pq, pk, v)
        return lambda: causal_chunked(pq, pk, v, chunk_size=T)
    if kind == "scan":
        u = _randn(G, D, L, dtype=dtype, device=device)
        delta = torch.nn.functional.softplus(_randn(G, D, L, dtype=dtype, device=device) - 2)
        A = -torch.linspace(0.5, 4.0, D * N, dtype=dtype, device=device).reshape(D, N)
        B, C = _randn(G, N, L, dtype=dtype, device=device), _randn(G, N, L, dtype=dtype, device=device)
        backend = "sequential" if form == "scan (sequential loop)" else "chunked"
        return lambda: selective_scan(u, delta, A, B, C, backend=backend, chunk_size=T if backend == "chunked" else None)
    a, b = _randn(L, L, dtype=dtype, device=device), _randn(L, L, dtype=dtype, device=device)
    return lambda: a @ b


def measure_roofs(*, matmul_n: int = 512, copy_mib: int = 64, repeats: int = 5, device="cpu") -> dict:
    """Measured roofs of this machine: peak FLOP/s of a large fp32 matmul, bandwidth of a large copy.

    A roof is what the machine *can* do, so each is the fastest of ``repeats`` timed calls (after a
    warm-up), not their median: on a shared machine the median is what the neighbours left over.
    """
    from ..bench import time_fn

    check_positive_int(matmul_n, "matmul_n")
    check_positive_int(copy_mib, "copy_mib")
    check_positive_int(repeats, "repeats")
    mm = Shape(length=matmul_n)

    def fastest(fn):
        fn()
        return min(time_fn(fn, repeats=1, warmup=0, device=device) for _ in range(repeats))

    with torch.no_grad():
        ms = fastest(kernel_thunk("matmul", mm, device))
        big = torch.ones(copy_mib * 2 ** 20 // 4, device=device)
        dst = torch.empty_like(big)          # preallocated: a clone would time the page faults of a new buffer
        copy_ms = fastest(lambda: dst.copy_(big))
    return {"peak_flops": flops("matmul", mm) / (ms * 1e-3), "bandwidth": 2 * big.numel() * 4 / (copy_ms * 1e-3),
            "matmul_n": matmul_n, "copy_mib": copy_mib}


def measure_point(form: str, s: Shape, *, repeats: int = 3, device="cpu") -> dict:
    """One roofline point: counts from the formulas, the time measured."""
    from ..bench import time_fn

    thunk = kernel_thunk(form, s, device)
    with torch.no_grad():
        ms = time_fn(thunk, repeats=repeats, warmup=1, device=device)
    return point_row(form, s, ms, source="measured on CPU" if str(device) == "cpu" else f"measured on {device}")


def point_row(form: str, s: Shape, time_ms: float, source: str) -> dict:
    f, q = flops(form, s), bytes_moved(form, s)
    return {"name": form, "form": form, "kind": _kind(form), "mode": "forward", "status": "ok",
            "dtype": {2: "16-bit", 4: "float32", 8: "float64"}.get(s.itemsize, f"{s.itemsize}-byte"),
            "length": s.length, "dim": s.dim, "groups": s.groups,
            "state": s.state, "tile": s.tile, "itemsize": s.itemsize, "flops": f, "bytes": q,
            "intensity": f / q, "time_ms": time_ms, "flops_per_s": f / (time_ms * 1e-3), "source": source}


def cpu_points(shapes: dict[str, Shape], *, repeats: int = 3, device="cpu", progress: bool = False) -> list[dict]:
    """Measure every form in ``shapes`` (``{form: Shape}``), one row each."""
    items = list(shapes.items())
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, desc="roofline", leave=False)
    return [measure_point(form, s, repeats=repeats, device=device) for form, s in items]


def default_shapes(length: int, *, groups: int = 4, dim: int = 64, scan_dim: int = 64, state: int = 16,
                   tile: int = 64, scan_length: int | None = None) -> dict[str, Shape]:
    """The book's CPU points at one length: attention and linear attention on (groups, length, dim),
    the scan on (1, scan_dim, scan_length, state), chunks and tiles of ``tile``."""
    att = Shape(length=length, dim=dim, groups=groups, tile=tile)
    scan_len = scan_length or length
    return {"softmax (materialised)": att, "flash tiling (PyTorch loop)": att,
            "linear attention (prefix sums)": att, "linear attention (chunked)": att,
            "scan (sequential loop)": Shape(length=scan_len, dim=scan_dim, groups=1, state=state, tile=tile),
            "scan (chunked)": Shape(length=scan_len, dim=scan_dim, groups=1, state=state,
                                    tile=max(1, math.ceil(math.sqrt(scan_len))))}


# ----------------------------------------------------------------------------- recorded GPU points
_GPU_ITEMSIZE = {"bfloat16": 2, "float16": 2, "float32": 4, "torch.bfloat16": 2, "torch.float16": 2,
                 "torch.float32": 4}


def gpu_points(doc: dict | None) -> tuple[list[dict], dict | None]:
    """Roofline points and roofs from a ``make gpu-check`` record (``gpu_check.json``).

    Returns ``(rows, roofs)``: a row per timed fused kernel (flash forward, linear attention, the
    selective scan; counts from the same formulas as the CPU points), and the memory roof from the
    copy bandwidth the scan check measured (``roofs["bandwidth"]``; no compute roof is measured
    there, so ``roofs["peak_flops"]`` is None). ``([], None)`` for ``None`` or a smoke run, whose
    timings come from the Triton interpreter and mean nothing.
    """
    if not doc or "smoke" in str(doc.get("notes", "")):
        return [], None
    rows, bandwidth = [], None
    for r in doc.get("rows", []):
        kernel = r.get("kernel")
        if kernel == "flash_fwd" and r.get("triton_ms") and not r.get("causal"):
            s = Shape(length=int(r["length_q"]), dim=int(r["head_dim"]), groups=int(r["batch"]) * int(r["heads"]),
                      itemsize=_GPU_ITEMSIZE.get(str(r.get("dtype")), 2))
            rows.append(point_row("flash (fused kernel)", s, float(r["triton_ms"]), "recorded gpu_check.json"))
        elif kernel == "linear_attention" and r.get("triton_ms"):
            s = Shape(length=int(r["length"]), dim=int(r["head_dim"]), groups=int(r["batch"]) * int(r["heads"]),
                      itemsize=2 if "16" in str(r.get("check", "")) else 4)
            rows.append(point_row("linear attention (fused kernel)", s, float(r["triton_ms"]),
                                  "recorded gpu_check.json"))
        elif kernel == "selective_scan" and r.get("triton_ms"):
            bsz, dim, N, L = (int(t) for t in str(r["shape"]).strip("()").split(","))
            s = Shape(length=L, dim=dim, groups=bsz, state=N, itemsize=4)
            rows.append(point_row("scan (fused kernel)", s, float(r["triton_ms"]), "recorded gpu_check.json"))
            if r.get("copy_GBps"):
                bandwidth = max(bandwidth or 0.0, float(r["copy_GBps"]) * 1e9)
    roofs = {"peak_flops": None, "bandwidth": bandwidth} if rows else None
    return rows, roofs
