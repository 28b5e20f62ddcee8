"""The server-wide figure cache: built once per distinct arguments, a fresh copy per caller, bounded."""
from __future__ import annotations

import threading
import time

import numpy as np
import panel as pn
import plotly.graph_objects as go
import pytest

from apps.figures import FigureCache, cached_figure, plotly_pane
from postlib.viz.attention import attention_map


def counting_builder():
    calls = []

    def heatmap(n: int, scale: float = 1.0, *, title: str = "") -> go.Figure:
        calls.append((n, scale, title))
        fig = go.Figure(go.Heatmap(z=np.arange(n * n, dtype=float).reshape(n, n) * scale))
        fig.update_layout(title=title, meta={"caption": f"n = {n}"})
        return fig

    return heatmap, calls


def test_built_once_per_arguments_and_each_caller_gets_an_independent_copy():
    cache, (build, calls) = FigureCache(), counting_builder()
    first = cache.get(build, 3, title="a")
    second = cache.get(build, 3, title="a")
    assert calls == [(3, 1.0, "a")] and (cache.hits, cache.misses) == (1, 1)
    assert second is not first and isinstance(second.data[0].z, np.ndarray)  # arrays stay arrays
    np.testing.assert_array_equal(second.data[0].z, first.data[0].z)
    assert second.layout.title.text == "a" and second.layout.meta["caption"] == "n = 3"
    second.data[0].z[0, 0] = -1.0  # a pane may mutate the figure it shows: the cache must not see it
    second.layout.title.text = "changed"
    third = cache.get(build, 3, title="a")
    assert third.data[0].z[0, 0] == 0.0 and third.layout.title.text == "a"
    cache.get(build, 3, 2.0, title="a")
    cache.get(build, 3, title="b")
    assert len(calls) == 3  # other arguments, other figures


def test_lists_and_dicts_are_keys_too_and_unhashable_arguments_are_built_uncached():
    cache, calls = FigureCache(), []

    def builder(budgets: dict, lengths) -> go.Figure:
        calls.append(1)
        return go.Figure(go.Scatter(x=list(lengths), y=[len(budgets)] * len(lengths)))

    cache.get(builder, {"performer": [4, 8]}, [1, 2])
    cache.get(builder, {"performer": [4, 8]}, [1, 2])
    assert len(calls) == 1
    cache.get(builder, {"performer": [4, 8]}, np.arange(2))  # an array is not hashable: built every time
    cache.get(builder, {"performer": [4, 8]}, np.arange(2))
    assert len(calls) == 3


def test_least_recently_used_figures_leave_first_and_the_bytes_are_bounded():
    build, calls = counting_builder()
    cache = FigureCache(max_entries=2)
    cache.get(build, 2)
    cache.get(build, 3)
    cache.get(build, 2)      # 2 is now the most recently used
    cache.get(build, 4)      # evicts 3
    assert len(cache) == 2
    cache.get(build, 2)
    cache.get(build, 3)
    assert [c[0] for c in calls] == [2, 3, 4, 3]
    small = FigureCache(max_bytes=64 * 64 * 8 * 2)  # room for about two 64 × 64 float heatmaps
    for n in (64, 63, 62):
        small.get(build, n)
    assert small.bytes <= small.max_bytes and len(small) < 3
    small.get(build, 400)    # larger than the whole cache: returned, never kept
    assert small.bytes <= small.max_bytes
    with pytest.raises(ValueError, match="max_entries"):
        FigureCache(max_entries=0)


def test_concurrent_callers_wait_for_one_build():
    cache, calls = FigureCache(), []

    def slow(n: int) -> go.Figure:
        calls.append(n)
        time.sleep(0.3)
        return go.Figure(go.Scatter(y=[n]))

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(slow, 7))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [7] and len(results) == 5 and all(list(r.data[0].y) == [7] for r in results)


def test_a_failing_builder_is_not_cached_and_does_not_block_the_next_caller():
    cache, attempts = FigureCache(), []

    def flaky(n: int) -> go.Figure:
        attempts.append(n)
        if len(attempts) == 1:
            raise ValueError("n must be even")
        return go.Figure(go.Scatter(y=[n]))

    with pytest.raises(ValueError, match="even"):
        cache.get(flaky, 1)
    assert list(cache.get(flaky, 1).data[0].y) == [1] and len(attempts) == 2


def test_a_real_builder_through_the_shared_cache():
    fig = cached_figure(attention_map, 13, 4, causal=True, seed=0, pattern="random")
    again = cached_figure(attention_map, 13, 4, causal=True, seed=0, pattern="random")
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), np.asarray(again.data[0].z))
    assert np.asarray(again.data[0].z).shape == (13, 13)


def test_plotly_pane_stretches_is_not_linked_and_hides_the_logo():
    pane = plotly_pane()
    assert pane.sizing_mode == "stretch_width" and pane.config["displaylogo"] is False
    assert pane.link_figure is False


def test_a_captioned_figure_shows_the_caption_under_the_figure_and_hides_with_it():
    from apps.figures import captioned_figure
    from postlib.viz import finish

    fig = finish(go.Figure(go.Scatter(y=[1, 2])), "Headline", "L = 32 <and> d = 16: error 0.1.")
    shown = captioned_figure(css_classes=["demo"])
    assert shown.object is None and not shown.caption.visible
    shown.object = fig
    assert shown.pane.object is fig and shown.caption.visible
    assert shown.caption.object == "<p>L = 32 &lt;and&gt; d = 16: error 0.1.</p>"  # plain text, escaped
    shown.object = go.Figure()  # no caption: none shown
    assert not shown.caption.visible
    shown.visible = False
    assert not pn.panel(shown).visible
    hidden = captioned_figure(visible=False)
    assert not hidden.visible and not pn.panel(hidden).visible and hidden.pane.visible
