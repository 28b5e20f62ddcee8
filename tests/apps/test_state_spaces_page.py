"""The State spaces page's logic, without a browser."""
import panel as pn
import pytest

from apps.pages.state_spaces import MAX_CELLS, PAGE, StateSpacesPage


def _titles(pane):
    return pane.object.layout.title.text


def test_page_contract():
    assert PAGE == {"title": "State spaces", "order": 20, "viewer": StateSpacesPage}
    assert issubclass(StateSpacesPage, pn.viewable.Viewer)
    page = StateSpacesPage()
    assert pn.panel(page).get_root() is not None
    assert page.alert.message is None


def test_player_moves_the_state_figure():
    page = StateSpacesPage(length=60)
    assert page.player.end == 60
    page.player.value = 10
    assert _titles(page.state_pane).endswith("t = 10")
    heat = [t for t in page.state_pane.object.data if t.type == "heatmap"][0]
    assert heat.z.shape == (page.N, 60)
    page.player.value = 40
    assert _titles(page.state_pane).endswith("t = 40")


def _heatmaps(pane):
    return [t.z for t in pane.object.data if t.type == "heatmap"]


def test_sliders_recompute_states():
    page = StateSpacesPage(length=50)
    lti, selective = _heatmaps(page.state_pane)
    page.selectivity = 0.0
    assert (_heatmaps(page.state_pane)[0] == lti).all()            # S4D ignores the selectivity
    assert not (_heatmaps(page.state_pane)[1] == selective).all()  # Mamba's states change
    page.N = 4
    assert _heatmaps(page.state_pane)[0].shape == (4, 50)
    page.input_kind = "sine"
    assert page.alert.message is None


def test_refuses_too_many_cells_visibly():
    page = StateSpacesPage(length=100)
    page.N = 256
    page.length = 4000
    assert page.refusal.visible and "Refused" in page.refusal.object and f"{MAX_CELLS:,}" in page.refusal.object
    assert not page.state_pane.visible
    page.N = 8
    page.length = 100
    assert not page.refusal.visible and page.state_pane.visible


@pytest.mark.parametrize("kind", ["legs", "legt", "lagt"])
def test_hippo_explorer_and_eigenvalue_map_update(kind):
    page = StateSpacesPage(length=30)
    page.hippo_kind = kind
    page.hippo_step = 123
    assert "step 123" in _titles(page.hippo_pane) and kind.upper() in _titles(page.hippo_pane)
    page.eig_dt = 1.5
    assert "Δ = 1.5" in _titles(page.eig_pane)
    assert page.alert.message is None
