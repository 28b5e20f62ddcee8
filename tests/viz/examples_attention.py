"""Catalogue examples: postlib.viz.attention and postlib.viz.core (see catalogue.py)."""
from postlib.viz import attention as va
from postlib.viz.core import frames_figure


def _kv_rows():
    rows = [dict(name="KV cache", length=n, time_ms=0.05 + 2e-6 * n, status="ok")
            for n in (128, 512, 2048, 8192, 32768, 131072)]
    rows += [dict(name="recompute", length=n, time_ms=0.02 * (n / 128) ** 1.6, status="ok")
             for n in (128, 256, 512, 1024, 2048)]
    return rows


EXAMPLES = {
    "attention.attention_map": lambda: va.attention_map(24, 16, causal=True, pattern="positional"),
    "attention.cost_curves": lambda: va.cost_curves([2 ** p for p in range(7, 16)], 64, current_length=2048),
    "attention.flash_tiles_step": lambda: va.flash_tiles_step(24, 6, 2, causal=True),
    "attention.flash_tiles_figure": lambda: va.flash_tiles_figure(24, 6, causal=True),
    "attention.kv_cache_figure": lambda: va.kv_cache_figure(_kv_rows()),
    # what postlib.book.explore builds in the static book: a slider, no play button
    "core.frames_figure": lambda: frames_figure(va.attention_map, "head_dim", [2, 8, 32], play=False, length=16,
                                                pattern="positional"),
    "core.frames_figure#play": lambda: frames_figure(va.flash_tiles_step, "step", [1, 2, 3, 4], length=16,
                                                     block_size=4),
}
