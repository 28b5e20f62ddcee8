"""postlib.book: renderer, sizes, explore() in both settings; viz.core.frames_figure."""
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from postlib import book
from postlib.viz.core import frames_figure


def _bars(height=1.0, label="a"):
    fig = go.Figure(go.Bar(x=[label], y=[height]))
    fig.update_layout(title=f"h={height}")
    return fig


def test_static_renderer_emits_html_without_a_cdn():
    name = book.register_renderer()
    bundle = pio.renderers[name].to_mimebundle(_bars().to_dict())
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "cdn.plot.ly" not in html and "<script src" not in html
    assert set(bundle) == {"text/html"}


def test_sizes_profile_and_unknown_chapter():
    cpu = book.sizes("baseline", "cpu")
    assert cpu["bench_lengths"] and max(cpu["bench_lengths"]) <= max(book.sizes("baseline", "gpu")["bench_lengths"])
    with pytest.raises(ValueError, match="chapter must be one of"):
        book.sizes("no-such-chapter")


def test_setup_in_book_build_selects_the_static_renderer(monkeypatch):
    monkeypatch.setenv(book.BOOK_BUILD_ENV, "1")
    before = pio.renderers.default
    try:
        assert book.setup("baseline")["bench_lengths"]
        assert pio.renderers.default == book.RENDERER
    finally:
        pio.renderers.default = before


def test_frames_figure_has_a_frame_and_slider_step_per_value():
    fig = frames_figure(_bars, "height", [1.0, 2.0, 3.0], label="h")
    assert len(fig.frames) == 3 and len(fig.layout.sliders[0].steps) == 3
    assert [f.data[0].y[0] for f in fig.frames] == [1.0, 2.0, 3.0]
    assert fig.layout.updatemenus  # the play button
    with pytest.raises(ValueError, match="must not be empty"):
        frames_figure(_bars, "height", [])
    with pytest.raises(ValueError, match="different number of traces"):
        frames_figure(lambda n: go.Figure([go.Bar(y=[1])] * n), "n", [1, 2])


def test_explore_is_a_framed_figure_in_the_static_book(monkeypatch):
    monkeypatch.setenv(book.BOOK_BUILD_ENV, "1")
    fig = book.explore(_bars, {"height": [1.0, 2.0], "label": ["a", "b"]})
    assert isinstance(fig, go.Figure) and len(fig.frames) == 2
    assert fig.frames[1].data[0].x[0] == "a"   # later controls stay at their first value
    with pytest.raises(ValueError, match="controls"):
        book.explore(_bars, {})


def test_explore_builds_widgets_in_a_live_kernel(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.delenv(book.BOOK_BUILD_ENV, raising=False)
    monkeypatch.setattr(book, "_widgets_available", lambda: True)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    calls = []

    def builder(height=1.0, label="a"):
        calls.append((height, label))
        return _bars(height, label)

    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: None)
    assert book.explore(builder, {"height": [1.0, 2.0], "label": ["a", "b"]}) is None
    (box,) = shown
    slider, dropdown = box.children[:2]
    assert isinstance(slider, widgets.SelectionSlider) and isinstance(dropdown, widgets.Dropdown)
    slider.value = 2.0
    dropdown.value = "b"
    assert calls[0] == (1.0, "a") and calls[-1] == (2.0, "b")
