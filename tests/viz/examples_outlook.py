"""Catalogue examples: postlib.viz.outlook (the outlook chapter), from the recorded roofline and small runs."""
from postlib.bench import load_results
from postlib.outlook import long_context as lc
from postlib.outlook import roofline as rl
from postlib.viz import outlook


def _roofline():
    doc = load_results("cpu_roofline.json")
    return outlook.roofline_figure(doc["rows"], doc["roofs"], provenance=doc["provenance"])


def _roofline_gpu():
    # a GPU record in gpu_check.json's row format (numbers made up for the layout test only)
    doc = {"notes": "quick run", "provenance": {"device_name": "a GPU", "device_type": "cuda"}, "rows": [
        dict(kernel="flash_fwd", check="timing forward vs SDPA", dtype="bfloat16", length_q=4096, length_k=4096,
             batch=4, heads=8, head_dim=64, causal=False, triton_ms=1.0),
        dict(kernel="selective_scan", check="speed", shape="(8,1024,16,2048)", triton_ms=0.5, copy_GBps=1500.0),
        dict(kernel="linear_attention", check="timing causal torch.bfloat16", length=4096, batch=1, heads=8,
             head_dim=64, triton_ms=0.2)]}
    rows, roofs = rl.gpu_points(doc)
    cpu = load_results("cpu_roofline.json")
    return outlook.roofline_figure(cpu["rows"], cpu["roofs"], gpu_rows=rows, gpu_roofs=roofs,
                                   provenance=cpu["provenance"], gpu_provenance=doc["provenance"])


def _traffic():
    s = rl.Shape(length=1024, dim=64, groups=4, tile=64)
    forms = ["softmax (materialised)", "flash tiling (PyTorch loop)", "flash (fused kernel)",
             "linear attention (prefix sums)", "linear attention (chunked)"]
    return outlook.traffic_figure({f: rl.traffic(f, s) for f in forms}, s.itemsize, shape_text="L = 1024")


def _streaming():
    rows = [dict(length=n, streaming_bytes=4.7e6, one_shot_bytes=3.3e3 * n if n <= 65536 else None,
                 kv_cache_bytes=lc.kv_cache_bytes(n), state_bytes=lc.linear_state_bytes()) for n in
            (4096, 16384, 65536, 262144)]
    return outlook.streaming_memory_figure(rows, segment=1024, heads=2, dim=32)


EXAMPLES = {
    "outlook.roofline_figure": _roofline,
    "outlook.roofline_figure#gpu": _roofline_gpu,
    "outlook.traffic_figure": _traffic,
    "outlook.streaming_memory_figure": _streaming,
    "outlook.retrieval_figure": lambda: outlook.retrieval_figure(lc.retrieval_sweep(4096, [1, 4, 16, 64], n_queries=64)),
    "outlook.selectivity_figure": lambda: outlook.selectivity_figure(
        [dict(layer=1, noise=[0.05, 0.02, 0.1], colour=[0.09, 0.02, 0.05], selective=2),
         dict(layer=2, noise=[0.03, 0.04, 0.01], colour=[0.03, 0.07, 0.01], selective=1)],
        [dict(layer=1, noise=[0.02, 0.02, 0.03], colour=[0.021, 0.02, 0.03], selective=0),
         dict(layer=2, noise=[0.02, 0.01, 0.02], colour=[0.02, 0.011, 0.02], selective=0)]),
    "outlook.probe_figure": lambda: outlook.probe_figure(dict(
        slots=[1, 2, 3, 4], chance=0.25, n_train=800, n_test=400, features=512,
        trained=[[0.98, 0.85, 0.98, 1.0], [0.99, 0.83, 0.77, 0.9]],
        untrained=[[0.96, 0.65, 0.77, 0.96], [0.96, 0.68, 0.78, 0.96]])),
}
