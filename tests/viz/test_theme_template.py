"""finish attaches the book's template without re-validating it: the same figure JSON as by name, and a copy."""
import json

import plotly.graph_objects as go
import plotly.io as pio

from postlib.viz import theme


def _json(fig):
    return json.dumps(fig.to_plotly_json(), sort_keys=True)


def test_finish_attaches_the_registered_template_as_plotly_would_by_name():
    by_name = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    theme.register_template()
    by_name.update_layout(template=theme.TEMPLATE_NAME)
    fast = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    theme._attach_template(fast)
    assert _json(fast) == _json(by_name)
    assert fast.layout.template.layout.font.size == pio.templates[theme.TEMPLATE_NAME].layout.font.size


def test_the_figures_template_is_a_copy_and_validation_comes_back_on():
    fig = theme.finish(go.Figure(go.Scatter(x=[1], y=[1])), "t", "c.")
    before = pio.templates[theme.TEMPLATE_NAME].layout.font.size
    fig.layout.template.layout.font.size = 99
    assert pio.templates[theme.TEMPLATE_NAME].layout.font.size == before
    assert fig.layout._validate is True
    try:
        fig.layout.height = "tall"
    except ValueError:
        pass
    else:
        raise AssertionError("layout validation is still off after finish")
