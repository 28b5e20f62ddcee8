"""Regression tests for the figure defects readers reported (issue 14), one by one."""
from __future__ import annotations

from postlib.viz import get_caption

from . import catalogue


def test_mamba_states_keep_legend_and_colorbar_apart_and_open_on_a_full_frame():
    fig = catalogue.figure("ssm.hidden_state_figure#frames")
    bar = fig.layout.coloraxis.colorbar
    bar_top = bar.y + bar.len / 2
    assert fig.layout.legend.orientation == "v" and fig.layout.legend.yanchor == "top"
    legend_panel_bottom = fig.layout.yaxis.domain[0]          # the legend sits beside the line panel only
    assert bar_top <= legend_panel_bottom + 1e-9
    assert fig.layout.sliders[0].active == len(fig.frames) - 1


def test_approximation_heatmaps_have_no_empty_bands_and_say_what_linear_is():
    for key in ("approx.approx_maps_figure", "approx.approx_maps_figure#linear"):
        fig = catalogue.figure(key)
        for i in ("", "2", "3"):
            assert fig.layout[f"xaxis{i}"].constrain == fig.layout[f"yaxis{i}"].constrain == "domain"
    titles = [a.text for a in catalogue.figure("approx.approx_maps_figure#linear").layout.annotations]
    assert "linear (elu+1)" in titles and not any("(none)" in t for t in titles)


def test_favor_figure_has_no_annotation_under_a_line():
    fig = catalogue.figure("favor.favor_unbiasedness_figure")
    panel_titles = {"300 single draws", "running mean over draws"}
    assert {a.text for a in fig.layout.annotations} == panel_titles
    assert any(t.name == "exact exp(xᵀy)" for t in fig.data)   # the target is a legend entry instead


def test_provenance_is_in_captions_not_on_axes():
    for key in ("scaling.memory_wall_figure", "scaling.scaling_figure", "ssm.crossover_figure"):
        fig = catalogue.figure(key)
        assert "Measured on" in get_caption(fig)
        assert not any("Measured" in (a.text or "") for a in fig.layout.annotations)
        assert "<sup>" not in (fig.layout.title.text or "")


def test_play_button_and_slider_label_stay_apart():
    fig = catalogue.figure("attention.flash_tiles_figure")
    slider, buttons = fig.layout.sliders[0], fig.layout.updatemenus[0]
    assert buttons.x == slider.x == 0 and buttons.xanchor == "left"
    assert slider.pad.l >= 70 and slider.currentvalue.xanchor == "right"
