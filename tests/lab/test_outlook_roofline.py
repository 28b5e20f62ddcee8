"""postlib.outlook.roofline: counts against hand counts, the IO-aware orderings, GPU points from a record."""
import math

import pytest
import torch

from postlib.outlook import roofline as rl


def test_attention_counts_by_hand():
    s = rl.Shape(length=8, dim=4, groups=2, tile=4, itemsize=4)
    assert rl.flops("softmax (materialised)", s) == 2 * (2 * 8 * 8 * 4 + 2 * 8 * 8 * 4)   # QKᵀ and PV, 2 heads
    io = 2 * (3 * 8 * 4 + 8 * 4)
    assert sum(rl.traffic("softmax (materialised)", s).values()) == io + 2 * 3 * 2 * 8 * 8
    # two key tiles of 4: scores and probabilities (8×4, twice each), P·V and the running output (8×4)
    assert sum(rl.traffic("flash tiling (PyTorch loop)", s).values()) == io + 2 * 2 * (2 * 2 * 8 * 4 + 2 * 2 * 8 * 4)
    # fused, blocks of 64 queries: one block at L = 8, so q, o once and k, v once
    assert rl.bytes_moved("flash (fused kernel)", s) == 4 * 2 * (2 * 8 * 4 + 2 * 8 * 4)


def test_linear_and_scan_counts_by_hand():
    s = rl.Shape(length=10, dim=3, groups=1, tile=4, state=2, itemsize=8)
    chunks = 3                                                    # 4 + 4 + 2, the last padded in the count
    assert rl.flops("linear attention (chunked)", s) == chunks * (4 * 16 * 3 + 4 * 4 * 9)
    assert rl.flops("linear attention (prefix sums)", s) == 4 * 10 * 9
    assert rl.flops("scan (fused kernel)", s) == 8 * 3 * 10 * 2
    assert rl.traffic("scan (fused kernel)", s) == {"u, Δ read, y written": 90, "B, C read": 40}
    assert rl.bytes_moved("scan (sequential loop)", s) == 8 * (130 + 16 * 3 * 2 * 10)
    assert rl.intensity("matmul", rl.Shape(length=4)) == 2 * 64 / (3 * 16 * 4)


@pytest.mark.parametrize("length", [1, 97, 4096])
def test_fusing_raises_intensity_and_a_pytorch_tile_loop_does_not(length):
    att = rl.Shape(length=length, dim=64, groups=4, tile=64)
    scan = rl.Shape(length=length, dim=64, state=16, tile=max(1, math.isqrt(length)))
    I = lambda form, s: rl.intensity(form, s)  # noqa: E731
    assert I("flash (fused kernel)", att) >= I("softmax (materialised)", att)
    assert I("flash tiling (PyTorch loop)", att) <= I("softmax (materialised)", att)
    assert I("linear attention (fused kernel)", att) > I("linear attention (chunked)", att) > \
        I("linear attention (prefix sums)", att)
    assert I("scan (fused kernel)", scan) > 50 * I("scan (sequential loop)", scan) > 50 * I("scan (chunked)", scan)


def test_attainable_is_the_lower_roof():
    assert rl.attainable(1.0, 100.0, 10.0) == 10.0
    assert rl.attainable(50.0, 100.0, 10.0) == 100.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="form must be one of"):
        rl.flops("bogus", rl.Shape(length=4))
    with pytest.raises(ValueError, match="length"):
        rl.Shape(length=0)
    with pytest.raises(ValueError, match="gpu_check.json"):
        rl.kernel_thunk("flash (fused kernel)", rl.Shape(length=4))
    with pytest.raises(ValueError, match="itemsize"):
        rl.kernel_thunk("matmul", rl.Shape(length=4, itemsize=2))


def test_every_cpu_form_runs_and_its_row_is_consistent():
    rows = rl.cpu_points(rl.default_shapes(32, groups=1, dim=8, scan_dim=4, state=2, tile=8), repeats=1)
    assert [r["form"] for r in rows] == list(rl.default_shapes(32))
    for r in rows:
        assert r["time_ms"] > 0 and r["intensity"] == r["flops"] / r["bytes"]
        assert math.isclose(r["flops_per_s"], r["flops"] / (r["time_ms"] * 1e-3))
    roofs = rl.measure_roofs(matmul_n=32, copy_mib=1, repeats=1)
    assert roofs["peak_flops"] > 0 and roofs["bandwidth"] > 0


def test_thunks_compute_the_forms_they_name():
    from postlib.attention.softmax import softmax_attention

    s = rl.Shape(length=20, dim=4, groups=2, tile=8, itemsize=8)
    soft, tiled = rl.kernel_thunk("softmax (materialised)", s)(), rl.kernel_thunk("flash tiling (PyTorch loop)", s)()
    assert torch.allclose(soft, tiled) and soft.dtype == torch.float64
    loop = rl.kernel_thunk("scan (sequential loop)", rl.Shape(length=13, dim=3, state=2, tile=4, itemsize=8))()
    chunk = rl.kernel_thunk("scan (chunked)", rl.Shape(length=13, dim=3, state=2, tile=4, itemsize=8))()
    assert torch.allclose(loop, chunk)
    assert softmax_attention is not None


GPU_DOC = {"notes": "quick run", "provenance": {"device_name": "GPU"}, "rows": [
    dict(kernel="flash_fwd", check="forward vs softmax_attention (fp64)", dtype="float32", ok=True),
    dict(kernel="flash_fwd", check="timing", dtype="bfloat16", length_q=1024, length_k=1024, batch=4, heads=8,
         head_dim=64, causal=False, triton_ms=2.0),
    dict(kernel="flash_fwd", check="timing", dtype="bfloat16", length_q=1024, length_k=1024, batch=4, heads=8,
         head_dim=64, causal=True, triton_ms=1.0),
    dict(kernel="selective_scan", check="speed", shape="(8,1024,16,2048)", triton_ms=0.5, copy_GBps=2000.0),
    dict(kernel="linear_attention", check="timing causal torch.bfloat16", length=1024, batch=1, heads=8,
         head_dim=64, triton_ms=0.1)]}


def test_gpu_points_from_a_record():
    rows, roofs = rl.gpu_points(GPU_DOC)
    assert [r["form"] for r in rows] == ["flash (fused kernel)", "scan (fused kernel)", "linear attention (fused kernel)"]
    flash = rows[0]
    assert flash["flops"] == 4 * 32 * 1024 * 1024 * 64 and flash["itemsize"] == 2     # the causal row is left out
    assert math.isclose(flash["flops_per_s"], flash["flops"] / 2e-3)
    assert roofs == {"peak_flops": None, "bandwidth": 2000.0e9}
    assert rl.gpu_points(None) == ([], None)
    assert rl.gpu_points({**GPU_DOC, "notes": "smoke run: tiny sizes"}) == ([], None)


def test_the_roofline_experiment_records_points_and_roofs():
    from postlib.bench.__main__ import build_parser

    args = build_parser().parse_args(["roofline", "--quiet", "--lengths", "16,32", "--groups", "1", "--dim", "8",
                                      "--state", "2", "--tile", "8", "--matmul-n", "32", "--copy-mib", "1",
                                      "--repeats", "1", "--roof-repeats", "2"])
    doc = args._module.record(args)
    assert args.threads == 1                                        # the experiment's default (THREADS)
    assert len(doc["rows"]) == 2 * len(rl.default_shapes(16)) and {r["length"] for r in doc["rows"]} == {16, 32}
    assert doc["roofs"]["peak_flops"] > 0 and doc["roofs"]["bandwidth"] > 0
    assert all(r["name"] == r["form"] and r["status"] == "ok" for r in doc["rows"])


def test_the_recorded_file_has_a_point_per_form_and_length():
    from postlib.bench import load_results

    doc = load_results("cpu_roofline.json")
    lengths = {r["length"] for r in doc["rows"]}
    assert {(r["form"], r["length"]) for r in doc["rows"]} == {(f, n) for f in rl.default_shapes(16) for n in lengths}
    for r in doc["rows"]:                                           # the counts are the formulas' (exact)
        s = rl.Shape(length=r["length"], dim=r["dim"], groups=r["groups"], state=r["state"], tile=r["tile"],
                     itemsize=r["itemsize"])
        assert r["flops"] == rl.flops(r["form"], s) and r["bytes"] == rl.bytes_moved(r["form"], s)
