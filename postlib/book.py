"""What every chapter's first cell needs.

    from postlib.book import setup
    sizes = setup("baseline")      # seeds, plotly renderer, CPU/GPU size profile

* **Plotly renderer.** plotly ≥ 6.1 under nbclient emits only
  ``application/vnd.plotly.v1+json``, which myst-nb drops: the figure would be
  blank in the book. During the book build we register a renderer that emits
  ``text/html`` referencing a ``plotly.min.js`` served from the site's own
  ``_static`` folder, so no request leaves the site.
* **Sizes.** Chapters never hard-code sizes twice: they ask for a profile that
  is small on a CPU (≈ a minute per chapter) and bigger on a GPU.
* **explore().** One call gives ipywidgets controls in a live notebook and a
  plotly figure with a slider over precomputed frames in the static book.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import torch

BOOK_BUILD_ENV = "POSTLIB_BOOK_BUILD"
RENDERER = "postlib_html"

# Per-chapter sizes. "cpu" keeps each chapter near a minute on a laptop CPU.
PROFILES: dict[str, dict[str, dict]] = {
    "baseline": {
        "cpu": dict(bench_lengths=[128, 256, 512, 1024, 2048], bench_d_model=64, bench_repeats=3,
                    memory_lengths=[1024, 2048, 4096, 8192, 16384], map_length=32, tile_length=24, tile_block=6,
                    kv_lengths=[128, 256, 512, 1024, 2048], kv_cache_lengths=[128, 512, 2048, 8192, 32768, 131072],
                    kv_d_model=64, kv_repeats=5),
        "gpu": dict(bench_lengths=[512, 1024, 2048, 4096, 8192, 16384], bench_d_model=256, bench_repeats=10,
                    memory_lengths=[1024, 2048, 4096, 8192, 16384, 32768], map_length=32, tile_length=24, tile_block=6,
                    kv_lengths=[256, 512, 1024, 2048, 4096, 8192], kv_cache_lengths=[256, 1024, 4096, 16384, 65536, 262144],
                    kv_d_model=256, kv_repeats=10),
    },
    # State-space models (chapters/02_ssm): one profile per section so each stays near a minute.
    "ssm": {
        "cpu": dict(eig_dts=[0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0], hippo_L=400, hippo_steps=list(range(20, 401, 20)),
                    hippo_N=[4, 8, 16, 32, 64], memory_N=16, memory_steps=3000,
                    kernel_L=256, cauchy_lengths=[64, 256, 1024], cauchy_N=64,
                    state_L=200, state_frames=40, scan_lengths=[256, 1024, 4096], scan_dims=[16, 64, 256],
                    copy_length=16, copy_memorize=4, copy_colors=4, copy_train=2000, copy_test=256,
                    copy_steps=300, copy_d_model=32, copy_layers=2, copy_batch=32, copy_lr=1e-2, copy_d_state=8),
        "gpu": dict(eig_dts=[0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0], hippo_L=400, hippo_steps=list(range(20, 401, 20)),
                    hippo_N=[4, 8, 16, 32, 64], memory_N=16, memory_steps=3000,
                    kernel_L=256, cauchy_lengths=[256, 1024, 4096], cauchy_N=64,
                    state_L=200, state_frames=40, scan_lengths=[1024, 4096, 16384], scan_dims=[16, 64, 256, 1024],
                    copy_length=256, copy_memorize=16, copy_colors=16, copy_train=20000, copy_test=1024,
                    copy_steps=2000, copy_d_model=64, copy_layers=2, copy_batch=64, copy_lr=3e-3, copy_d_state=16),
    },
    # Kernel attention (chapters/03_kernel): maps, Performer statistics, live timings, MQAR toy.
    "kernel": {
        "cpu": dict(map_length=48, head_dim=16, state_length=16, state_dim=8, favor_draws=1000,
                    favor_features=[4, 8, 16, 32, 64, 128, 256], favor_seeds=4,
                    live_lengths=[512, 1024, 2048, 4096], live_gen_lengths=[256, 1024, 4096], live_repeats=3,
                    mqar_pairs=6, mqar_keys=24, mqar_train=4000, mqar_test=256, mqar_steps=300, mqar_d_model=64,
                    mqar_heads=2, mqar_batch=64, mqar_lr=3e-3, mqar_features=32),
        "gpu": dict(map_length=64, head_dim=16, state_length=24, state_dim=8, favor_draws=4000,
                    favor_features=[4, 8, 16, 32, 64, 128, 256, 512], favor_seeds=16,
                    live_lengths=[1024, 4096, 16384, 65536], live_gen_lengths=[1024, 8192, 32768], live_repeats=10,
                    mqar_pairs=16, mqar_keys=64, mqar_train=20000, mqar_test=1024, mqar_steps=1500, mqar_d_model=64,
                    mqar_heads=2, mqar_batch=128, mqar_lr=3e-3, mqar_features=64),
    },
    # Low rank and hashing (chapters/04_lowrank): spectra, Linformer rank, LSH statistics, reversible memory.
    "lowrank": {
        "cpu": dict(map_length=48, head_dim=16, spectrum_pairs=6, spectrum_steps=300, rank_length=96,
                    ranks=[1, 2, 4, 8, 16, 32, 64], rank_seeds=2, lsh_trials=2000, recall_length=256,
                    depths=[1, 2, 4, 8, 16]),
        "gpu": dict(map_length=64, head_dim=16, spectrum_pairs=16, spectrum_steps=1500, rank_length=256,
                    ranks=[1, 2, 4, 8, 16, 32, 64, 128], rank_seeds=4, lsh_trials=4000, recall_length=1024,
                    depths=[1, 2, 4, 8, 16, 32]),
    },
}


def in_book_build() -> bool:
    """True while ``make book`` executes the chapters (static output wanted)."""
    return os.environ.get(BOOK_BUILD_ENV) == "1"


def on_colab() -> bool:
    return "google.colab" in sys.modules


def device_kind() -> str:
    return "gpu" if torch.cuda.is_available() else "cpu"


def sizes(chapter: str, kind: str | None = None) -> dict:
    """The size profile of ``chapter`` for this device ("cpu" or "gpu")."""
    if chapter not in PROFILES:
        raise ValueError(f"chapter must be one of {sorted(PROFILES)}, got {chapter!r}")
    kind = kind or device_kind()
    return dict(PROFILES[chapter][kind])


def register_renderer() -> str:
    """Register (once) and return the name of the static HTML renderer."""
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class StaticHTMLRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            html = pio.to_html(fig_dict, full_html=False, include_plotlyjs=False, include_mathjax=False, auto_play=False,
                               config={"responsive": True, "displaylogo": False})
            return {"text/html": html}

    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = StaticHTMLRenderer()
    return RENDERER


def setup(chapter: str | None = None, seed: int = 0) -> dict:
    """Seed everything, choose a plotly renderer, and return the chapter's size profile."""
    import plotly.io as pio

    from .train import seed_everything
    seed_everything(seed)
    if in_book_build():
        pio.renderers.default = register_renderer()
    elif on_colab():
        pio.renderers.default = "colab"
    return sizes(chapter) if chapter else {}


def explore(builder: Callable, controls: dict, **fixed):
    """Interactive exploration of a ``postlib.viz`` builder.

    ``controls`` maps a builder argument to the list of values to offer.
    In a live notebook: ipywidgets sliders/dropdowns re-run the builder.
    In the static book: the first control becomes a plotly slider over
    precomputed frames (the other controls stay at their first value).
    """
    if not controls:
        raise ValueError("controls must name at least one argument and its values")
    if in_book_build() or not _widgets_available():
        from .viz.core import frames_figure
        name, values = next(iter(controls.items()))
        rest = {k: list(v)[0] for k, v in list(controls.items())[1:]}
        return frames_figure(builder, name, values, play=False, **rest, **fixed)
    import ipywidgets as widgets
    from IPython.display import display

    out = widgets.Output()
    pickers = {k: (widgets.SelectionSlider(options=list(v), description=k, continuous_update=False)
                   if all(isinstance(x, (int, float)) for x in v)
                   else widgets.Dropdown(options=list(v), description=k))
               for k, v in controls.items()}

    def redraw(_=None):
        with out:
            out.clear_output(wait=True)
            builder(**{k: w.value for k, w in pickers.items()}, **fixed).show()

    for w in pickers.values():
        w.observe(redraw, names="value")
    redraw()
    display(widgets.VBox([*pickers.values(), out]))
    return None


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def install_static(static_dir="_static") -> str:
    """Copy the installed plotly.js into the book's ``_static`` folder (served by the site, no CDN)."""
    import shutil
    from pathlib import Path

    import plotly
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    dest = Path(static_dir) / "plotly.min.js"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dest)
    return str(dest)
