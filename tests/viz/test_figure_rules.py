"""Every public builder has a catalogue example, and every example follows the style rules."""
from __future__ import annotations

import inspect

import pytest

from . import catalogue, rules

EXAMPLES = catalogue.examples()


def test_every_public_function_of_postlib_viz_says_what_it_returns():
    missing = [name for name, fn in catalogue.public_functions().items()
               if inspect.signature(fn).return_annotation is inspect.Signature.empty]
    assert not missing, f"annotate the return type of {missing} (builders: -> go.Figure)"


def test_every_builder_has_a_catalogue_example():
    covered = {key.split("#")[0] for key in EXAMPLES}
    missing = [b for b in catalogue.builders() if b not in covered]
    assert not missing, (f"add an example call for {missing} to tests/viz/examples_<topic>.py "
                         f"(see tests/viz/catalogue.py)")
    stale = sorted(covered - set(catalogue.builders()))
    assert not stale, f"catalogue examples name no builder: {stale}"


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_example_follows_the_rules(key):
    fig = catalogue.figure(key)
    found = rules.problems(fig)
    assert not found, f"{key}:\n  " + "\n  ".join(found)


def test_the_rules_catch_a_figure_that_breaks_them():
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=[1, 10, 100, 1000], y=[1, 2, 3, 4], name="softmax", line=dict(color="#1f77b4")),
                     go.Scatter(x=[1, 10], y=[2, 2], name="other"),
                     go.Heatmap(z=np.ones((2, 2)), colorscale="Jet", xaxis="x2", yaxis="y2")])
    fig.update_layout(title="Softmax time against length, d = 64, batch 1, measured on cpu, torch 2.13 today",
                      xaxis=dict(type="log", title="L"), xaxis2=dict(domain=[0.6, 1]))
    fig.add_annotation(text="Measured on a laptop", x=0, y=0)
    found = "\n".join(rules.problems(fig))
    for expected in ("'postlib' template", "meta['caption']", "meta['narrow']", "more than 60", "provenance",
                     "yaxis has no title", "xaxis2 has no title", "logarithmic without explicit tick values",
                     "'#1f77b4', which is not a palette colour", "not softmax's colour", "has no explicit colour",
                     "colour scale outside", "draws its own colorbar"):
        assert expected in found, f"missing {expected!r} in:\n{found}"


def test_the_rules_catch_an_animation_that_opens_empty():
    import numpy as np
    import plotly.graph_objects as go

    from postlib.viz import coloraxis, finish, frames_figure

    def step(t):
        z = np.full((4, 4), np.nan)
        z[:, :t] = 1.0
        fig = go.Figure(go.Heatmap(z=z, coloraxis="coloraxis"))
        coloraxis(fig, title="v")
        fig.update_xaxes(title="x")
        fig.update_yaxes(title="y")
        return finish(fig, f"t = {t}", "A heatmap that fills up column by column.")

    assert rules.problems(frames_figure(step, "t", [1, 2, 3, 4])) == []          # opens on the full frame
    found = rules.problems(frames_figure(step, "t", [1, 2, 3, 4], initial=0))
    assert any("mostly empty heatmap" in p for p in found), found


def test_log_axes_that_span_decades_label_only_decades():
    import plotly.graph_objects as go

    from postlib.viz import finish

    fig = go.Figure(go.Scatter(x=[3, 40, 500, 6000], y=[1, 2, 3, 4], name="a", line=dict(color="#262626")))
    fig.update_xaxes(type="log", title="x")
    fig.update_yaxes(title="y")
    finish(fig, "Decades", "Four points over three decades.")
    assert list(fig.layout.xaxis.tickvals) == [10, 100, 1000] and rules.check_log_axes(fig) == []
    fig.layout.xaxis.tickvals = [10, 20, 50, 100, 1000]
    assert "labels [20, 50]" in rules.check_log_axes(fig)[0]
