"""The Mixing page's logic, without a browser: the player steps the chapter's WKV frames, the sliders
redraw the panes in place, the gMLP weights come from the recorded file, refused sizes show a message."""
from __future__ import annotations

import numpy as np
import panel as pn

from apps.pages import mixing
from apps.pages.mixing import PAGE, MixingPage
from postlib.bench import load_results
from postlib.mixing.convmixer import receptive_field
from postlib.recurrent.wkv_trace import wkv_trace
from postlib.viz import get_caption
from postlib.viz.mixing import wkv_state_figure


def test_page_contract_and_layout_renders():
    assert PAGE == {"title": "Mixing", "order": 40, "viewer": MixingPage}
    page = MixingPage()
    assert pn.panel(page).get_root() is not None
    widgets = pn.panel(page).select(pn.widgets.Widget)
    assert any(isinstance(w, pn.widgets.Player) for w in widgets)
    labels = {w.name for w in widgets}
    assert {"decay w", "kernel size k", "depth (blocks)"} <= labels
    assert page.alert.message is None and not page.refusal.visible


def test_player_steps_the_same_wkv_frames_as_the_chapter():
    page = MixingPage(wkv_length=16, decay=0.5, seed=3)
    assert (page.player.start, page.player.end) == (0, 15)
    k, v = mixing._channel(16, 3)
    trace = wkv_trace(0.5, 0.5, k, v)
    for t in (0, 7, 15):
        page.player.value = t
        expected = wkv_state_figure(t, trace)
        assert page.state_pane.object.layout.title.text == expected.layout.title.text
        np.testing.assert_allclose(np.asarray(page.state_pane.object.data[0].y, float),
                                   np.asarray(expected.data[0].y, float))
    page.wkv_length = 8                      # a shorter demo: the player's end follows, its token is clamped
    assert page.player.end == 7 and page.player.value == 7
    assert "Token 7" in page.state_pane.object.layout.title.text


def test_decay_slider_redraws_the_weights_in_place():
    page = MixingPage()
    pane, before = page.weights_pane, page.weights_pane.object
    page.decay = 2.0
    assert page.weights_pane is pane and pane.object is not before
    assert "w = 2" in get_caption(pane.object)
    z = np.asarray(pane.object.data[0].z)
    np.testing.assert_allclose(z.sum(1), 1.0, atol=1e-12)            # rows are distributions
    assert np.all(z[np.triu_indices(len(z), 1)] == 0)                   # causal


def test_convmixer_sliders_change_the_receptive_field():
    page = MixingPage()
    for k, depth in ((3, 1), (9, 4), (5, 0)):
        page.kernel_size, page.depth = k, depth
        z = np.asarray(page.field_pane.object.data[0].z)
        width = (z[-1] > 0).sum()                                       # the last output's field
        assert width == receptive_field(depth, k) == depth * (k - 1) + 1
        assert f"{receptive_field(depth, k)} positions" in get_caption(page.field_pane.object)


def test_gmlp_weights_are_the_recorded_ones():
    rec = load_results("cpu_gmlp_spatial.json")
    fig = MixingPage().spatial_pane.object
    np.testing.assert_allclose(np.asarray(fig.data[1].z, float), np.asarray(rec["W_trained"]))
    assert "recorded" in get_caption(fig) or rec["provenance"]["date"][:10] in get_caption(fig)


def test_over_budget_sizes_are_refused_with_a_message():
    budget = max(mixing.wkv_bytes(24), mixing.forget_bytes()) + 1                  # strictly below: drawn
    page = MixingPage(budget_bytes=budget, field_length=16)
    assert not page.refusal.visible and page.state_pane.visible and page.forget_pane.visible
    page.wkv_length = 48
    assert page.refusal.visible and not page.state_pane.visible and not page.weights_pane.visible
    assert "Refused" in page.refusal.object and "48-token" in page.refusal.object
    page.depth = 5                           # another section drawing does not hide the WKV refusal
    assert page.refusal.visible and page.field_pane.visible
    page.field_length = 64
    assert not page.field_pane.visible and "64-position" in page.refusal.object and "48-token" in page.refusal.object
    page.wkv_length, page.field_length = 16, 16
    assert not page.refusal.visible and page.state_pane.visible and page.field_pane.visible
    assert page.alert.message is None


def test_rwkv6_sliders_move_the_reset_and_its_strength():
    """The forgetting demo is the chapter's: reset_demo_log_decay through rwkv6_decay_figure."""
    from postlib.recurrent.rwkv6 import reset_demo_log_decay, rwkv6_past_weights
    page = MixingPage()
    fig = page.forget_pane.object
    fixed, data = (np.asarray(t.z, float) for t in fig.data)
    t = page.reset_at
    np.testing.assert_allclose(data, rwkv6_past_weights(reset_demo_log_decay(32, [t], strength=5.0)).numpy())
    assert data[t + 1:, :t].max() < 0.05 < fixed[t + 1, t - 1]           # forgotten across the reset; kept without
    assert [s.x0 for s in fig.layout.shapes] == [t, t]
    page.reset_at = 20
    assert [s.x0 for s in page.forget_pane.object.layout.shapes] == [20, 20]
    page.reset_strength = 0.0                                          # no push: the two panels agree
    fixed, data = (np.asarray(t.z, float) for t in page.forget_pane.object.data)
    np.testing.assert_allclose(fixed, data)
    assert page.alert.message is None


def test_the_forgetting_demo_is_refused_over_budget():
    page = MixingPage(budget_bytes=mixing.forget_bytes() - 1, wkv_length=8, field_length=16)
    assert not page.forget_pane.visible and "forgetting demo" in page.refusal.object
    assert page.state_pane.visible and page.field_pane.visible
