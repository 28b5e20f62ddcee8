"""One palette for the whole book: every method, form and family keeps its colour everywhere.

Softmax is the same blue in the MQAR bars, the scaling plots and the dashboard, because
every builder asks this module instead of picking colours by position. Colours are
grouped by family (attention in blues and purples, state spaces in greens and oranges,
recurrent in reds, sparse in browns and pinks, mixing in slate and olive), and members of a
family differ in lightness so that they stay apart when drawn together.

Two lookups, on purpose:

* :func:`color` is **strict**: a name that has no colour raises ``ValueError`` naming
  the known names, so a new mixer cannot quietly borrow another method's colour
  (``tests/viz/test_palette.py`` also checks every registered mixer has one).
* :func:`series_styles` is **lenient** and deterministic, for figure labels: a label
  that names a method ("softmax (KV cache)", "linear attention (causal, chunked)")
  gets that method's colour; a second label of the same method keeps the colour and
  changes the dash; a label that names nothing known ("S4 channel 0", "KV cache")
  takes the next :data:`SERIES` colour that the figure does not use yet, in the order
  the labels come. The same labels always get the same styles.
"""
from __future__ import annotations

import re
from typing import Sequence

# Registered mixers (postlib.list_mixers()) and the names reserved for parts 5-7 (CONTRACTS.md §8).
MIXER_COLORS = {
    # attention: blues, purples, teals
    "softmax": "#2c5aa0",
    "linear": "#6aaed6",
    "performer": "#6b4c9a",
    "linformer": "#b39ddb",
    "reformer": "#1b8a85",
    "lola": "#7fcdc4",
    # state spaces: greens, orange, amber
    "s4": "#2e7d32",
    "s4d": "#8bc34a",
    "dss": "#556b2f",
    "mamba": "#e6750a",
    "mega": "#f2b447",
    # recurrent: reds
    "rwkv": "#c62828",
    "retnet": "#ef8a80",
    "transformer_xl": "#7f1d3b",
    # sparse: browns and pink
    "longformer": "#8d5a2b",
    "bigbird": "#cfa77a",
    "longnet": "#d16ba5",
    # mixing: slate and olive
    "gmlp": "#5f6b7a",
    "convmixer": "#a8a23a",
}

# Implementation forms of one method (reference beside every efficient form). "recurrent"
# is both a form and a family: it has one colour, so the two readings never disagree.
FORM_COLORS = {
    "reference": "#262626",
    "loop": "#8c8c8c",
    "parallel": "#1f9e77",
    "chunked": "#d95f02",
    "recurrent": "#c0392b",
    "triton": "#7570b3",
    "flash": "#e6ab02",
    "auto": "#e7298a",
}

FAMILY_COLORS = {
    "attention": "#3b6cb7",
    "ssm": "#3c8d40",
    "recurrent": FORM_COLORS["recurrent"],
    "sparse": "#9c6b3c",
    "mixing": "#6f7a89",
}

# Ink and greys for context: reference curves, guides, "not yet" cells, grid.
NEUTRALS = {
    "ink": "#262626",
    "muted": "#6b6b6b",
    "context": "#a6a6a6",
    "faint": "#d9d9d9",
    "grid": "#ebebeb",
    "paper": "#ffffff",
}

# Colours for series that name no method (channels, bucket counts, "KV cache"...), taken in order.
SERIES = ("#3b6cb7", "#e6750a", "#3c8d40", "#c62828", "#6b4c9a", "#8d5a2b", "#d16ba5", "#5f6b7a",
          "#1b8a85", "#a8a23a")

# Colour scales: values (viridis), signed values (red-white-blue), magnitudes of an error.
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"
MAGNITUDE = "Reds"
COLORSCALES = (SEQUENTIAL, DIVERGING, MAGNITUDE)

# Light to dark, for ordered parameters (see ramp()).
RAMP = ("#b3cde3", "#8cb3d9", "#6497c8", "#3f7bb6", "#2a62a0", "#1c4a85", "#123466", "#0a2148")

# Other spellings of known names, as they appear in result files and labels.
ALIASES = {
    "softmax_attention": "softmax", "sdpa": "softmax", "transformer": "softmax",
    "linear_attention": "linear", "flash_attention": "flash", "flashattention": "flash",
    "sequential": "loop", "naive": "reference", "exact": "reference",
    "transformer-xl": "transformer_xl", "transformerxl": "transformer_xl", "txl": "transformer_xl",
    "long_former": "longformer", "big_bird": "bigbird", "long_net": "longnet",
    "s6": "mamba", "state space": "ssm", "state spaces": "ssm",
}

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")

_KNOWN = {**FAMILY_COLORS, **FORM_COLORS, **MIXER_COLORS}


def known_names() -> list[str]:
    """Every name :func:`color` knows (mixers, forms, families), sorted."""
    return sorted(_KNOWN)


def all_colors() -> set[str]:
    """Every colour a figure may use (lower-case hex): named, series, ramp and neutral colours."""
    return {c.lower() for c in (*_KNOWN.values(), *SERIES, *RAMP, *NEUTRALS.values())}


def _normalise(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def resolve(label: str) -> str | None:
    """The known name a figure label refers to, or None.

    The label's head (the text before " (", "," or ":") is matched after lower-casing
    and dropping an "attention" suffix; "S4D-Lin" falls back to its part before "-".
    So "softmax (KV cache)" → softmax, "flash_attention (torch)" → flash,
    "Linformer, random JL E, F" → linformer, but "S4 channel 0" → None.
    """
    head = re.split(r" \(|,|:", _normalise(label), maxsplit=1)[0].strip()
    candidates = [head, re.sub(r"[ _]attention$", "", head)]
    candidates.append(candidates[-1].split("-")[0])
    for cand in candidates:
        cand = ALIASES.get(cand, cand)
        if cand in _KNOWN:
            return cand
    return None


def color(name: str) -> str:
    """The fixed colour of a mixer, form or family (aliases such as "softmax_attention" work).

    Strict on purpose: an unknown name raises ``ValueError`` (add it to ``MIXER_COLORS``,
    ``FORM_COLORS`` or ``FAMILY_COLORS``). For free-text labels use :func:`series_styles`.
    """
    key = ALIASES.get(_normalise(name), _normalise(name))
    if key not in _KNOWN:
        raise ValueError(f"name {name!r} has no colour in postlib.viz.palette; known names: "
                         f"{', '.join(known_names())}. Add it to MIXER_COLORS/FORM_COLORS/FAMILY_COLORS, "
                         f"or use series_styles() for labels that name no method")
    return _KNOWN[key]


def series_styles(labels: Sequence[str]) -> list[dict]:
    """``{"color", "dash"}`` for each label of one figure (see the module docstring for the rules)."""
    resolved = [resolve(label) for label in labels]
    used = {_KNOWN[r].lower() for r in resolved if r is not None}
    free = [c for c in SERIES if c.lower() not in used]
    seen: dict[str, int] = {}
    styles = []
    fallback = 0
    for label, name in zip(labels, resolved):
        if name is None:
            # Unnamed series: the next free series colour; when all are taken, cycle them with dashes.
            pool = free or list(SERIES)
            col = pool[fallback % len(pool)]
            dash = DASHES[(fallback // len(pool)) % len(DASHES)]
            fallback += 1
        else:
            col = _KNOWN[name]
            dash = DASHES[seen.get(name, 0) % len(DASHES)]
            seen[name] = seen.get(name, 0) + 1
        styles.append({"color": col, "dash": dash})
    return styles


def series_colors(labels: Sequence[str]) -> list[str]:
    """Just the colours of :func:`series_styles`."""
    return [s["color"] for s in series_styles(labels)]


def ramp(n: int) -> list[str]:
    """``n`` colours of increasing darkness for an *ordered* parameter (bucket counts, ranks, N...)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    usable = RAMP[1:]                  # the lightest step is for fills, too pale for a line
    if n == 1:
        return [usable[len(usable) // 2]]
    if n > len(usable):
        return [usable[i % len(usable)] for i in range(n)]
    return [usable[round(i * (len(usable) - 1) / (n - 1))] for i in range(n)]


def is_palette_color(value) -> bool:
    """True for a named, series, ramp or neutral colour (case-insensitive hex)."""
    return isinstance(value, str) and value.strip().lower() in all_colors()
