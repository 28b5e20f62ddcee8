"""Where a page runs: its size profile, the device its tensors live on, and whether Triton can run.

    sizes = setup("ssm")           # first cell of every chapter
    x = torch.randn(8, 64, device=sizes.device)
    if sizes.can_run_triton("the Triton kernel check"):
        ...

One page runs unchanged on a Colab GPU (sizes from the "gpu" profile, tensors on CUDA, Triton
compiled), on a laptop CPU (the "cpu" profile, Triton's interpreter) and on a CPU without Triton
(macOS, Windows: a Triton cell says it is skipped and the rest of the page runs).

Environment variables (CI sets them; readers never need to):

* ``POSTLIB_PROFILE=cpu|gpu`` forces the profile's kind whatever the device, e.g. to execute every
  page with the GPU sizes on a CPU runner;
* ``POSTLIB_SMOKE=1`` applies each profile's ``SMOKE`` overrides (fewer steps, repeats, draws) and
  turns ``claim()`` failures into reports: the page's code paths run, its statistics are not judged;
* ``TRITON_INTERPRET=1`` (set by ``setup`` on a machine without CUDA) makes Triton interpret its
  kernels on the CPU. Triton reads it when a function is *decorated*, its own library included, so
  ``setup`` must run before anything imports ``triton``: hence the first cell.
"""
from __future__ import annotations

import os
import sys

from .profiles import KINDS, PROFILES

BOOK_BUILD_ENV = "POSTLIB_BOOK_BUILD"
PROFILE_ENV = "POSTLIB_PROFILE"
SMOKE_ENV = "POSTLIB_SMOKE"
INTERPRET_ENV = "TRITON_INTERPRET"

NO_TRITON = ("Triton is not installed here (it is an optional extra on Linux, and missing on macOS "
             "and Windows)")


def in_book_build() -> bool:
    """True while the book build executes the chapters (static output wanted)."""
    return os.environ.get(BOOK_BUILD_ENV) == "1"


def smoke_run() -> bool:
    """True in a smoke execution (``POSTLIB_SMOKE=1``): counts are cut, claims are reported, not enforced."""
    return os.environ.get(SMOKE_ENV) == "1"


def on_colab() -> bool:
    return "google.colab" in sys.modules


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def device_kind() -> str:
    """The profile kind this machine gets: ``POSTLIB_PROFILE`` if set, else "gpu" with CUDA, else "cpu"."""
    forced = os.environ.get(PROFILE_ENV, "")
    if forced:
        if forced not in KINDS:
            raise ValueError(f"{PROFILE_ENV} must be one of {KINDS}, got {forced!r}")
        return forced
    return "gpu" if cuda_available() else "cpu"


def sizes(chapter: str, kind: str | None = None, smoke: bool | None = None) -> dict:
    """The size profile of ``chapter`` for ``kind`` ("cpu" or "gpu"; default: this machine's), with the
    smoke overrides when ``smoke`` (default: ``POSTLIB_SMOKE=1``)."""
    if chapter not in PROFILES:
        raise ValueError(f"chapter must be one of {sorted(PROFILES)}, got {chapter!r}")
    kind = kind or device_kind()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    values = dict(PROFILES[chapter][kind])
    if smoke_run() if smoke is None else smoke:
        values.update(PROFILES[chapter]["smoke"])
    return values


def _installed(name: str) -> bool:
    """Whether ``import name`` would find the package, without importing it."""
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def triton_support(cuda: bool) -> tuple[str | None, str]:
    """("compiled" | "interpreter" | None, why).

    On a machine without CUDA this sets ``TRITON_INTERPRET=1`` *before* ``triton`` is first imported:
    Triton decides between compiling and interpreting when a function is decorated, and its own
    library (``tl.associative_scan``, ...) is decorated when ``triton.language`` is imported.
    """
    from ..kernels import triton_available
    interpreting = os.environ.get(INTERPRET_ENV, "0") == "1"
    if not cuda and not interpreting and _installed("triton"):
        if "triton" in sys.modules:
            return None, ("triton was imported before setup() could switch it to its interpreter; call "
                          "setup() in the first cell, before anything imports triton")
        os.environ[INTERPRET_ENV] = "1"
        interpreting = True
    if not triton_available():
        return None, NO_TRITON
    if cuda and not interpreting:
        return "compiled", "Triton compiles the kernels for this GPU"
    return "interpreter", ("Triton's interpreter runs the kernels on the CPU (slowly, but exactly)" if cuda else
                           "no GPU here: Triton's interpreter runs the kernels on the CPU (slowly, but exactly)")


class Profile(dict):
    """A chapter's sizes (a dict) that also knows where the page runs.

    Attributes: ``name`` (the profile), ``kind`` ("cpu" or "gpu" sizes), ``smoke`` (smoke overrides
    applied), ``device`` ("cuda" or "cpu": create tensors and models there), ``triton``
    ("compiled", "interpreter" or None when Triton cannot run here) and ``triton_note`` (why).
    """

    def __init__(self, values: dict, *, name: str | None, kind: str, smoke: bool, device: str,
                 triton: str | None, triton_note: str):
        super().__init__(values)
        self.name, self.kind, self.smoke = name, kind, smoke
        self.device, self.triton, self.triton_note = device, triton, triton_note

    def can_run_triton(self, what: str = "this cell") -> bool:
        """True where a Triton kernel can run (compiled on CUDA, interpreted on a CPU). Otherwise it
        prints that ``what`` is skipped and why, and returns False: guard a Triton cell with it."""
        if self.triton:
            return True
        print(f"Skipped here: {what}. {self.triton_note}. The rest of the page runs without it.")
        return False

    def describe(self) -> str:
        """One line for the reader: where this page ran."""
        triton = f"Triton {self.triton}" if self.triton else "no Triton"
        smoke = ", smoke run" if self.smoke else ""
        return f"device {self.device}, {self.kind} sizes{'' if not self.name else f' ({self.name!r})'}, {triton}{smoke}"

    def __repr__(self) -> str:
        return f"Profile({self.describe()}: {dict.__repr__(self)})"


def runtime_profile(chapter: str | None = None) -> Profile:
    """The Profile for ``chapter`` on this machine (no seeding, no renderer: see ``setup``)."""
    cuda = cuda_available()
    kind = device_kind()
    smoke = smoke_run()
    values = sizes(chapter, kind, smoke) if chapter else {}
    triton, note = triton_support(cuda)
    return Profile(values, name=chapter, kind=kind, smoke=smoke, device="cuda" if cuda else "cpu",
                   triton=triton, triton_note=note)


def setup(chapter: str | None = None, seed: int = 0) -> Profile:
    """First cell of every chapter: seed everything, pick the plotly renderer, decide where tensors live
    and how Triton runs, and return the chapter's sizes (a ``Profile``)."""
    import plotly.io as pio

    from ..train import seed_everything
    from .render import register_renderer

    profile = runtime_profile(chapter)
    seed_everything(seed)
    if in_book_build():
        pio.renderers.default = register_renderer()
    elif on_colab():
        pio.renderers.default = "colab"
    return profile
