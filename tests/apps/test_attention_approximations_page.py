"""The "Attention approximations" page: settings update the figures in place or are refused visibly."""
import pytest

pn = pytest.importorskip("panel")

from apps.pages.attention_approximations import PAGE, AttentionApproximationsPage  # noqa: E402
from postlib.viz import get_caption  # noqa: E402


def _titles(pane):  # what the figure says: its headline and its caption
    return pane.object.layout.title.text + " " + get_caption(pane.object)


def test_page_metadata():
    assert PAGE["title"] == "Attention approximations" and PAGE["order"] == 30
    assert PAGE["viewer"] is AttentionApproximationsPage


def test_initial_figures_and_layout():
    page = AttentionApproximationsPage()
    assert page.alert.message is None
    assert "performer" in _titles(page.maps_pane) and len(page.maps_pane.object.data) == 3
    assert page.error_pane.object is not None and page.state_pane.object is not None
    assert page.__panel__() is not None


def test_budget_changes_the_map_in_place():
    page = AttentionApproximationsPage(length=32)
    pane, before = page.maps_pane, _titles(page.maps_pane)
    page.budget = 256
    assert page.maps_pane is pane and _titles(pane) != before and "= 256" in pane.object.layout.annotations[1].text


@pytest.mark.parametrize("method", ["linear", "linformer", "reformer"])
def test_every_method_draws(method):
    page = AttentionApproximationsPage(length=32)
    page.method = method
    assert page.alert.message is None and not page.refusal.visible
    assert method in _titles(page.maps_pane)


def test_switching_method_clamps_budget():
    page = AttentionApproximationsPage(length=32, budget=200)
    page.method = "reformer"
    assert page.budget == 16 and not page.refusal.visible


def test_linformer_causal_is_refused_visibly():
    page = AttentionApproximationsPage(length=32, method="linformer")
    before = page.maps_pane.object
    page.causal = True
    assert page.refusal.visible and "cannot be causal" in page.refusal.object
    assert page.maps_pane.object is before           # the last good figure stays
    page.causal = False
    assert not page.refusal.visible


def test_too_large_is_refused():
    page = AttentionApproximationsPage()
    page.length = 512
    assert page.refusal.visible and "Refused" in page.refusal.object


def test_player_steps_the_state():
    page = AttentionApproximationsPage(state_length=8)
    page.player.value = 5
    assert "t = 5" in _titles(page.state_pane)
    page.state_length = 4
    assert page.player.end == 3 and page.player.value == 3
