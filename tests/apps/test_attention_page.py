"""The Attention page's logic, without a browser: params redraw the panes in place, the player steps
the library's tile animation, and over-budget lengths show a message instead of a map."""
from __future__ import annotations

import numpy as np
import panel as pn

from apps.pages import attention
from apps.pages.attention import PAGE, AttentionPage
from postlib.viz import get_caption
from postlib.viz.attention import flash_tiles_step


def test_page_contract_and_layout_renders():
    assert PAGE == {"title": "Attention", "order": 10, "viewer": AttentionPage}
    assert issubclass(AttentionPage, pn.viewable.Viewer)
    page = AttentionPage()
    assert pn.panel(page).get_root() is not None
    widgets = pn.panel(page).select(pn.widgets.Widget)
    assert any(isinstance(w, pn.widgets.Player) for w in widgets)
    assert any(isinstance(w, pn.widgets.DiscreteSlider) and "length" in w.name for w in widgets)
    assert page.alert.message is None and not page.refusal.visible


def test_params_update_the_map_and_the_costs_in_place():
    page = AttentionPage()
    map_pane, cost_pane = page.map_pane, page.cost_pane
    first_map, first_costs = map_pane.object, cost_pane.object
    assert np.asarray(first_map.data[0].z).shape == (32, 32)
    page.length = 48
    assert page.map_pane is map_pane and map_pane.object is not first_map
    assert np.asarray(map_pane.object.data[0].z).shape == (48, 48)
    assert list(cost_pane.object.data[2].x) == [48, 48]  # the current length is marked
    page.causal = True
    z = np.asarray(map_pane.object.data[0].z)
    assert np.all(z[np.triu_indices(48, 1)] == 0)
    before = cost_pane.object
    page.head_dim = 64
    assert cost_pane.object is not before and "d = 64" in get_caption(cost_pane.object)
    assert "d = 64" in get_caption(map_pane.object)


def test_player_steps_the_same_tile_figure_as_the_chapter():
    page = AttentionPage(tile_length=13, block_size=5)
    assert (page.player.start, page.player.end, page.player.value) == (1, 3, 1)
    for step in (2, 3):
        page.player.value = step
        expected = flash_tiles_step(13, 5, step, causal=True, seed=0)
        assert page.tiles_pane.object.layout.title.text == expected.layout.title.text
        np.testing.assert_array_equal(np.asarray(page.tiles_pane.object.data[2].y, float),
                                      np.asarray(expected.data[2].y, float))
    page.block_size = 2  # a new tiling restarts the player
    assert page.player.end == 7 and page.player.value == 1
    assert "Tile 1/7" in page.tiles_pane.object.layout.title.text
    page.block_size = 64  # a single tile: nothing to play
    assert page.player.disabled and "Tile 1/1" in page.tiles_pane.object.layout.title.text


def test_over_budget_length_shows_a_message_and_keeps_the_costs():
    page = AttentionPage(budget_bytes=attention.map_bytes(64) + 1)  # strictly below the budget: drawn
    page.length = 64
    assert not page.refusal.visible and page.map_pane.visible
    page.length = 96
    assert page.refusal.visible and not page.map_pane.visible
    assert "Refused" in page.refusal.object and "96 × 96" in page.refusal.object
    assert list(page.cost_pane.object.data[2].x) == [96, 96]
    page.length = 32  # back under the budget: the map returns
    assert not page.refusal.visible and page.map_pane.visible
    assert np.asarray(page.map_pane.object.data[0].z).shape == (32, 32)
    assert page.alert.message is None


def test_lengths_beyond_what_a_browser_draws_are_refused():
    page = AttentionPage()
    page.length = 1024
    assert page.refusal.visible and "draws up to 512 × 512" in page.refusal.object
    assert page.refusal_message(256) is None
    huge = page.refusal_message(65536)
    assert huge is not None and "GiB" in huge
