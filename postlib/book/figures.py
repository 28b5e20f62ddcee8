"""Numbered figures, numbers quoted in prose, and result claims.

A figure is made in a hidden code cell and placed by a ``glue:figure`` directive, whose caption is the
page's own words followed by the builder's caption (parameters, results, provenance)::

    ```{code-cell} ipython3
    :tags: [hide-input]
    figure("kv-cache", va.kv_cache_figure(kv_rows))
    ```

    ```{glue:figure} kv-cache
    :name: fig-kv-cache

    **The cache makes a step linear, not constant.** {glue:md}`kv-cache-caption:myst`
    ```

Sphinx numbers it ("Figure 1.4: ...") and ``{numref}`fig-kv-cache``` refers to it. A number computed
in code is quoted in prose with ``glue("speedup", x)`` and ``{glue:text}`speedup:.1f```.

Outside the book build (Colab, Jupyter: myst-nb may not even be installed) the same calls just show
the figure with its caption, and print the glued values, so a notebook reader sees them too.
"""
from __future__ import annotations

import sys

from .runtime import in_book_build, smoke_run

CAPTION_SUFFIX = "-caption"


class _HTML:
    """A display object whose only representation is the given HTML (what glue stores)."""

    def __init__(self, html: str):
        self.html = html

    def _repr_html_(self) -> str:
        return self.html


def caption_of(fig) -> str:
    """The caption the figure's builder stored in ``fig.layout.meta["caption"]`` ("" when none)."""
    meta = fig.layout.meta if fig is not None else None
    if isinstance(meta, dict):
        return str(meta.get("caption") or "")
    return ""


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in " :`"):
        raise ValueError(f"name must be a non-empty string without spaces, ':' or '`', got {name!r}")
    return name


def figure(name: str, fig) -> None:
    """Glue ``fig`` as ``name`` and its builder caption as ``name + "-caption"`` for a ``glue:figure``
    directive; outside the book build, display the figure followed by its caption.

    ``fig`` may be None (``explore`` returns None in a live notebook, where it shows widgets instead).
    """
    _check_name(name)
    if fig is None:
        return
    from IPython.display import Markdown, display
    caption = caption_of(fig)
    if in_book_build():
        from myst_nb import glue as nb_glue

        from .render import figure_html
        nb_glue(name, _HTML(figure_html(fig)), display=False)
        nb_glue(name + CAPTION_SUFFIX, Markdown(caption), display=False)
        return
    display(fig)
    if caption:
        display(Markdown(f"*{caption}*"))


def _plain(value):
    """numpy and torch scalars as Python numbers: glue stores repr(), and {glue:text} must parse it."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def glue(name: str | None = None, value=None, **values) -> None:
    """Make computed values quotable in the page's Markdown: ``glue("err", err)`` or ``glue(err=err, n=n)``,
    then ``{glue:text}`err:.1e``` in prose. Outside the book build the values are printed instead."""
    if name is not None:
        values = {_check_name(name): value, **values}
    elif value is not None:
        raise TypeError("glue(name, value): a value needs a name")
    if not values:
        raise ValueError("glue needs at least one name and value")
    for key in values:
        _check_name(key)
    values = {key: _plain(val) for key, val in values.items()}
    if in_book_build():
        from myst_nb import glue as nb_glue
        for key, val in values.items():
            nb_glue(key, val, display=False)
        return
    print(" · ".join(f"{key} = {val:.4g}" if isinstance(val, float) else f"{key} = {val}"
                     for key, val in values.items()))


def claim(condition, message: str) -> bool:
    """A claim the page's prose makes about a stochastic or measured result.

    Asserted in a real run (the book build, a reader's run): a failure stops the page with ``message``.
    In a smoke run (``POSTLIB_SMOKE=1``: a few training steps, one repeat) the result is meaningless,
    so the claim is reported on stderr and not enforced. Deterministic equalities stay plain asserts.
    """
    if not isinstance(message, str) or not message:
        raise ValueError("claim needs a message saying what the page claims")
    held = bool(condition)
    if smoke_run():
        print(f"[smoke run] claim {'held' if held else 'not held (not enforced)'}: {message}", file=sys.stderr)
        return held
    if not held:
        raise AssertionError(f"claim does not hold: {message}")
    return True
