"""The palette: one fixed colour per method, form and family, a strict lookup and a lenient one for labels."""
from __future__ import annotations

import pytest

import postlib
from postlib.viz import palette

RESERVED = ("gmlp", "convmixer", "rwkv", "longformer", "bigbird", "longnet", "retnet", "transformer_xl", "mega")
FORMS = ("reference", "parallel", "chunked", "recurrent", "triton", "loop", "flash")


def test_every_registered_and_reserved_mixer_form_and_family_has_a_colour():
    missing = [n for n in (*postlib.list_mixers(), *RESERVED, *FORMS, *postlib.registry.FAMILIES)
               if n not in palette.known_names()]
    assert not missing, f"give {missing} a colour in postlib/viz/palette.py"
    for name in postlib.list_mixers():
        assert palette.color(name) == palette.MIXER_COLORS[name]


def test_mixers_have_distinct_colours_and_differ_from_their_family():
    colours = [c.lower() for c in palette.MIXER_COLORS.values()]
    assert len(set(colours)) == len(colours)
    families = {c.lower() for c in palette.FAMILY_COLORS.values()}
    assert len(families) == len(palette.FAMILY_COLORS)
    forms = [c.lower() for c in palette.FORM_COLORS.values()]
    assert len(set(forms)) == len(forms)


def test_strict_lookup_fails_loudly_and_knows_aliases():
    assert palette.color("softmax_attention") == palette.color("Softmax") == palette.MIXER_COLORS["softmax"]
    assert palette.color("flash_attention") == palette.FORM_COLORS["flash"]
    assert palette.color("sequential") == palette.FORM_COLORS["loop"]
    # "recurrent" is a form and a family: one colour, so the two readings agree
    assert palette.FORM_COLORS["recurrent"] == palette.FAMILY_COLORS["recurrent"] == palette.color("recurrent")
    with pytest.raises(ValueError, match="'hyena' has no colour.*known names: .*softmax"):
        palette.color("hyena")


@pytest.mark.parametrize("label,name", [
    ("softmax (KV cache)", "softmax"), ("softmax_attention", "softmax"), ("flash_attention (torch)", "flash"),
    ("linear attention (causal, chunked)", "linear"), ("Linformer, random JL E, F", "linformer"),
    ("S4D-Lin", "s4d"), ("mamba: selective", "mamba"), ("Transformer-XL", "transformer_xl"),
    ("S4 channel 0", None), ("KV cache", None), ("best rank-k map (SVD)", None), ("positive", None)])
def test_resolve_reads_the_method_a_label_names(label, name):
    assert palette.resolve(label) == name


def test_series_styles_keep_method_colours_and_vary_the_dash_for_a_second_form():
    styles = palette.series_styles(["softmax (KV cache)", "softmax (recompute)", "linear (recurrent)", "KV cache",
                                    "other"])
    assert [s["color"] for s in styles[:3]] == [palette.color("softmax")] * 2 + [palette.color("linear")]
    assert [s["dash"] for s in styles[:3]] == ["solid", "dash", "solid"]
    # labels that name nothing take series colours in order, skipping colours already in the figure
    assert styles[3]["color"] == palette.SERIES[0] != palette.color("softmax")
    assert styles[4]["color"] == palette.SERIES[1]
    assert palette.series_styles(["a", "b"]) == palette.series_styles(["a", "b"])          # deterministic
    many = palette.series_styles([f"series {i}" for i in range(len(palette.SERIES) + 1)])
    assert many[-1] == {"color": palette.SERIES[0], "dash": "dash"}                       # cycles with a new dash


def test_a_series_colour_a_method_already_wears_is_skipped():
    # series colours reuse palette hues: an unnamed series never takes one a named line in the figure has
    assert palette.FAMILY_COLORS["attention"] == palette.SERIES[0]
    styles = palette.series_styles(["attention", "unnamed"])
    assert styles[1]["color"] == palette.SERIES[1]


def test_ramp_is_ordered_and_from_the_palette():
    assert len(palette.ramp(4)) == 4 and len(set(palette.ramp(4))) == 4
    assert all(palette.is_palette_color(c) for c in palette.ramp(9))
    assert palette.ramp(1)[0] in palette.RAMP
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        palette.ramp(0)


def test_is_palette_color():
    assert palette.is_palette_color(palette.color("mamba").upper())
    assert not palette.is_palette_color("#1f77b4")          # plotly's default blue is not ours
    assert not palette.is_palette_color(None)
