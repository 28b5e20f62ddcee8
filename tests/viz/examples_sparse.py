"""Catalogue examples: postlib.viz.sparse (see catalogue.py)."""
import torch

from postlib.sparse import attention_mask, branch_counts, make_pattern, receptive_field
from postlib.viz import sparse as vs
from postlib.viz.core import frames_figure


def _gallery():
    L = 32
    return vs.pattern_gallery({"dense (causal)": torch.ones(L, L, dtype=torch.bool).tril(),
                               "window": attention_mask("sliding", L, causal=True, window=5),
                               "BigBird": attention_mask("bigbird", L, block_size=4, num_random_blocks=1),
                               "dilated": attention_mask("dilated", L, segment_lengths=[4, 16], dilations=[1, 4])})


def _chapter_gallery():
    """The chapter's five panels (its widest figure)."""
    L = 64
    return vs.pattern_gallery({
        "dense (causal)": torch.ones(L, L, dtype=torch.bool).tril(),
        "window": attention_mask("sliding", L, causal=True, window=9),
        "with globals": attention_mask("longformer", L, causal=True, window=9, global_tokens=[0, 1]),
        "BigBird": attention_mask("bigbird", L, block_size=8, num_random_blocks=1, num_global_blocks=1),
        "dilated": attention_mask("dilated", L, causal=True, segment_lengths=[8, 32, 64], dilations=[1, 4, 8])})


def _chapter_tiles():
    """The chapter's four tile layouts."""
    return vs.tile_layout_figure({name: make_pattern(kind, 256, causal=causal, **params).tile_layout(16)[0]
                                  for name, kind, causal, params in [
                                      ("window", "sliding", True, dict(window=33)),
                                      ("window + globals", "longformer", True, dict(window=33,
                                                                                    global_tokens=[0, 1, 2, 3])),
                                      ("BigBird", "bigbird", False, dict(block_size=16, num_random_blocks=2,
                                                                         num_global_blocks=1)),
                                      ("dilated", "dilated", True, dict(segment_lengths=[16, 64, 256],
                                                                        dilations=[1, 4, 16]))]}, 16)


def _chapter_fields():
    """The chapter's three legend names (its longest), at a shorter length."""
    pairs = dict(segment_lengths=[16, 64, 256], dilations=[1, 4, 16])
    return {"window 64": receptive_field("sliding", 256, layers=4, causal=True, window=64),
            "window 64 + 4 sinks": receptive_field("longformer", 256, layers=4, causal=True, window=64,
                                                   global_tokens=[0, 1, 2, 3]),
            "LongNet, 64 heads": receptive_field("dilated", 256, layers=4, causal=True, heads=64, offset="per_head",
                                                 **pairs)}


def _tiles():
    return vs.tile_layout_figure({name: make_pattern(kind, 128, causal=True, **params).tile_layout(16)[0]
                                  for name, kind, params in [("window", "sliding", dict(window=17)),
                                                             ("dilated", "dilated", dict(segment_lengths=[16, 64],
                                                                                         dilations=[1, 4]))]}, 16)


def _fields():
    return {"window 8": receptive_field("sliding", 128, layers=3, causal=True, window=8),
            "LongNet, 16 heads": receptive_field("dilated", 128, layers=3, causal=True, heads=16, offset="per_head",
                                                 segment_lengths=[8, 32, 128], dilations=[1, 4, 16])}


def _cost_doc():
    rows = []
    for name, t0, p, m0, q in (("sparse_attention (torch)", 8.0, 1.0, 5.7e6, 0.9),
                               ("SDPA (dense, fused)", 3.7, 1.9, 8.6e5, 0.6),
                               ("softmax_attention (materialised)", 8.0, 2.5, 9.4e6, 2.0)):
        for L in (1024, 2048, 4096, 8192):
            rows.append(dict(name=name, length=L, time_ms=t0 * (L / 1024) ** p, peak_mem_bytes=m0 * (L / 1024) ** q,
                             status="ok", window=256, head_dim=64))
    return {"rows": rows, "crossover_vs_sdpa": 3800.0, "provenance": {"device_name": "a test CPU", "torch": "2.x"},
            "fits": {"sparse_attention (torch)": {"time_ms": 1.0, "peak_mem_bytes": 0.9}}}


EXAMPLES = {
    "sparse.pattern_figure": lambda: vs.pattern_figure("longformer", 40, causal=True, window=6, global_tokens=[0, 1],
                                                       tile=8),
    "sparse.pattern_figure#bigbird": lambda: vs.pattern_figure("bigbird", 100, tile=16, block_size=8,
                                                               num_random_blocks=2, num_global_blocks=1,
                                                               name="BigBird"),
    "sparse.pattern_gallery": _gallery,
    "sparse.pattern_gallery#chapter": _chapter_gallery,
    "sparse.tile_layout_figure": _tiles,
    "sparse.tile_layout_figure#chapter": _chapter_tiles,
    "sparse.branch_counts_figure": lambda: vs.branch_counts_figure(branch_counts(48, [8, 16], [1, 2], causal=True)),
    "sparse.receptive_field_figure": lambda: vs.receptive_field_figure(_fields(), 2),
    "sparse.receptive_field_figure#frames": lambda: frames_figure(vs.receptive_field_figure, "layer", range(4),
                                                                   fields=_fields(), label="layers"),
    "sparse.receptive_field_figure#chapter": lambda: frames_figure(
        vs.receptive_field_figure, "layer", range(5), fields=_chapter_fields(), label="layers"),
    "sparse.path_length_figure": lambda: vs.path_length_figure(
        [dict(variant=v, length=L, diameter=d) for v, L, d in
         [("window", 256, 15), ("window", 1024, 63), ("window + random", 256, 4), ("window + random", 1024, 6),
          ("window + global", 256, 2), ("window + global", 1024, 2)]]),
    "sparse.tile_fraction_figure": lambda: vs.tile_fraction_figure(
        [dict(pattern=p, length=L, tile_fraction=f) for p, L, f in
         [("window 256", 1024, 0.18), ("window 256", 4096, 0.046), ("BigBird", 1024, 0.4), ("BigBird", 4096, 0.1)]]),
    "sparse.sparse_cost_figure": lambda: vs.sparse_cost_figure(_cost_doc()),
    "sparse.memory_formula_figure": lambda: vs.memory_formula_figure(
        "longformer", 65536, causal=True, heads=8, window=256, global_tokens=[0, 1], name="Longformer"),
    "sparse.pattern_reach_figure": lambda: vs.pattern_reach_figure(
        "dilated", 256, 2, layers=4, causal=True, heads=8, compare=17, segment_lengths=[8, 32, 128],
        dilations=[1, 4, 16], name="LongNet"),
}
