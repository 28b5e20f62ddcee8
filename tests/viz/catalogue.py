"""The figure catalogue: one small example call for every public builder in ``postlib.viz``.

Examples live in ``tests/viz/examples_<topic>.py`` files, each defining
``EXAMPLES = {"<module>.<builder>": callable, "<module>.<builder>#<variant>": callable, ...}``
(``<module>`` relative to ``postlib.viz``). A new part adds its own examples file, so parts
never edit the same one. ``test_figure_rules.py`` fails for any public builder without an
example, and checks every example against the style rules; ``test_figures_browser.py``
renders them all in Chromium at a desktop and a phone width.

A *builder* is a public function of a ``postlib.viz`` module (the style machinery in
``palette``, ``theme`` and ``responsive`` excepted) annotated ``-> go.Figure``; every public
function there must carry a return annotation, so no builder can slip through unannotated.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from pathlib import Path

import plotly.graph_objects as go

import postlib.viz

STYLE_MODULES = {"palette", "theme", "responsive"}
HERE = Path(__file__).parent


def viz_modules() -> dict:
    """``{name: module}`` for every public module of ``postlib.viz`` except the style machinery."""
    out = {}
    for info in pkgutil.iter_modules(postlib.viz.__path__):
        if info.name.startswith("_") or info.name in STYLE_MODULES:
            continue
        out[info.name] = importlib.import_module(f"postlib.viz.{info.name}")
    return out


def public_functions() -> dict:
    """``{"module.function": function}`` for every public function defined in a viz module."""
    out = {}
    for name, module in viz_modules().items():
        for fname, obj in vars(module).items():
            if fname.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            out[f"{name}.{fname}"] = inspect.unwrap(obj)
    return out


def _returns_figure(fn) -> bool:
    ann = inspect.signature(fn).return_annotation
    return ann is go.Figure or ann in ("go.Figure", "plotly.graph_objects.Figure", "Figure")


def builders() -> list[str]:
    return sorted(k for k, fn in public_functions().items() if _returns_figure(fn))


def examples() -> dict:
    """Every example from every ``examples_*.py`` file, keyed "module.builder[#variant]"."""
    out = {}
    for path in sorted(HERE.glob("examples_*.py")):
        module = importlib.import_module(f"tests.viz.{path.stem}")
        for key, fn in module.EXAMPLES.items():
            if key in out:
                raise ValueError(f"example {key!r} is defined twice (second time in {path.name})")
            out[key] = fn
    return out


@functools.lru_cache(maxsize=None)
def figure(key: str) -> go.Figure:
    """The example figure for ``key``, built once per test process."""
    return examples()[key]()
