"""The Recurrent page's logic, without a browser, and its memory formulas against measured peaks."""
import panel as pn
import pytest
import torch

from apps.figures import FigureCache
from apps.pages import recurrent
from apps.pages.recurrent import PAGE, RecurrentPage, decay_gammas
from postlib.recurrent.retention import retnet_gammas
from postlib.viz import recurrent as vr
from tests.apps.test_page_budgets import measured_peak


def _title(pane):
    return pane.object.layout.title.text


@pytest.fixture(scope="module")
def page():
    return RecurrentPage()


def test_page_contract(page):
    assert PAGE == {"title": "Recurrent models", "order": 65, "viewer": RecurrentPage}
    assert issubclass(RecurrentPage, pn.viewable.Viewer)
    assert pn.panel(page).get_root() is not None
    assert page.alert.message is None and not page.refusal.visible
    for pane in (page.decay_pane, page.state_pane, page.window_pane, page.reach_pane, page.ema_pane):
        assert pane.visible and pane.object is not None


def test_default_decays_are_retnets_schedule():
    assert decay_gammas(1 - 2 ** -5, 4) == pytest.approx(retnet_gammas(4, torch.float64).tolist(), abs=1e-15)


def test_gamma_and_heads_redraw_the_decay(page):
    page.param.update(gamma_0=0.9, n_heads=3, head=2, decay_length=32)
    fig = page.decay_pane.object
    heat = [t for t in fig.data if t.type == "heatmap"][0]
    assert heat.z.shape == (32, 32)
    assert fig.layout.annotations[0].text == f"D for γ = {1 - 0.1 / 4:.4g}"     # head 2: 1 − (1 − γ₀)/4
    curves = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert len(curves) == 3
    # Fewer heads than the drawn head: the drawn head follows, and so does the slider's end.
    page.n_heads = 2
    assert page.head == 1 and page.head_slider.end == 1
    page.n_heads = 1
    assert page.head == 0 and page.head_slider.disabled
    page.n_heads = 4
    assert page.head_slider.end == 3 and not page.head_slider.disabled
    assert page.alert.message is None


def test_player_animates_the_state(page):
    page.param.update(state_length=10, state_gamma=0.5, state_dim=3)
    assert page.state_player.end == 9 and page.state_player.value == 9
    for t in (0, 4, 9):
        page.state_player.value = t
        assert _title(page.state_pane) == f"The RetNet state at t = {t}"
        bars = [tr for tr in page.state_pane.object.data if tr.type == "bar"][0]
        assert bars.y[t] == 1.0 and (t == 0 or bars.y[t - 1] == pytest.approx(0.5))
    page.state_length = 1                           # one token: the player cannot move, the figure still draws
    assert page.state_player.disabled and _title(page.state_pane) == "The RetNet state at t = 0"
    assert page.alert.message is None


def test_memory_window_slides_and_memory_zero_is_vanilla(page):
    page.param.update(txl_length=24, segment_length=8, memory_length=8, n_layers=2)
    page.window_player.value = 20
    assert _title(page.window_pane) == "What position 20 can see"
    assert "reaches 20 tokens back" in page.window_pane.object.layout.meta["caption"]
    page.memory_length = 0
    assert "reaches 4 tokens back" in page.window_pane.object.layout.meta["caption"]   # its own segment only
    page.txl_length = 6
    assert page.window_player.value == 5 and _title(page.window_pane) == "What position 5 can see"
    assert page.alert.message is None


def test_ema_kernel_follows_alpha_and_delta(page):
    page.param.update(alpha=0.2, delta=0.3, ema_length=20)
    chosen = page.ema_pane.object.data[-1]
    assert _title(page.ema_pane) == "EMA kernel, α = 0.2, δ = 0.3"
    assert len(chosen.y) == 20 and chosen.y[0] == pytest.approx(0.2) and chosen.y[1] == pytest.approx(0.2 * 0.94)


def test_refusal_names_the_section_and_hides_only_its_figure():
    budget = recurrent.decay_bytes(64, 4) + 1
    page = RecurrentPage(budget_bytes=budget)
    assert not page.refusal.visible and page.decay_pane.visible
    page.decay_length = 512
    assert page.refusal.visible and "the 512 × 512 decay matrix" in page.refusal.object
    assert not page.decay_pane.visible and page.state_pane.visible and page.ema_pane.visible
    page.decay_length = 64
    assert not page.refusal.visible and page.decay_pane.visible


# ----- memory formulas: measured, not computed --------------------------------------------------------
@pytest.fixture(scope="module")
def warm():
    # plotly's validators load on the first figure of each kind; the profiler's first use is not the page's.
    FigureCache().get(vr.decay_figure, decay_gammas(0.9, 2), 8, head=0)
    FigureCache().get(vr.retention_state_figure, 1, 0.8, 4, 2, 2, 0)
    FigureCache().get(vr.memory_window_figure, 1, 8, 4, 4, 2)
    FigureCache().get(vr.reach_figure, 8, 4, 4, 2)
    FigureCache().get(vr.ema_kernel_figure, 0.3, 0.3, 8)
    measured_peak(lambda: FigureCache().get(vr.ema_kernel_figure, 0.4, 0.3, 8))


@pytest.mark.parametrize("length, heads", [(16, 1), (256, 8), (recurrent.DECAY_LENGTHS[-1], recurrent.MAX_HEADS)])
def test_decay_bytes_bounds_the_measured_peak(warm, length, heads):
    peak = measured_peak(lambda: FigureCache().get(vr.decay_figure, decay_gammas(0.96, heads), length, head=0))
    assert 0 < peak <= recurrent.decay_bytes(length, heads), (peak, recurrent.decay_bytes(length, heads))


@pytest.mark.parametrize("length, dim", [(1, 1), (128, 16)])
def test_state_bytes_bounds_the_measured_peak(warm, length, dim):
    peak = measured_peak(lambda: FigureCache().get(vr.retention_state_figure, length - 1, 0.8, length, dim, dim, 0))
    assert 0 < peak <= recurrent.state_bytes(length, dim), (peak, recurrent.state_bytes(length, dim))


def test_window_and_ema_bytes_bound_the_measured_peak(warm):
    def window():
        cache = FigureCache()
        cache.get(vr.memory_window_figure, 95, 96, 32, 32, 4)
        cache.get(vr.reach_figure, 96, 32, 32, 4)

    peak = measured_peak(window)
    assert 0 < peak <= recurrent.window_bytes(96, 4), (peak, recurrent.window_bytes(96, 4))
    peak = measured_peak(lambda: FigureCache().get(vr.ema_kernel_figure, 0.5, 0.5, 256))
    assert 0 < peak <= recurrent.ema_bytes(256), (peak, recurrent.ema_bytes(256))


def test_warm_caches_the_decay_figure_for_every_head_count(monkeypatch):
    """Warmed at server start, every move of the first slider (heads) from the defaults is a cache hit."""
    cache = FigureCache()
    monkeypatch.setattr(recurrent, "cached_figure", cache.get)
    page = RecurrentPage()
    page.warm()
    hits = cache.hits
    for n in range(1, recurrent.MAX_HEADS + 1):
        page.n_heads = n
    assert cache.hits - hits == recurrent.MAX_HEADS and page.alert.message is None
    tiny = RecurrentPage(budget_bytes=1)          # nothing fits: warming builds nothing, and raises nothing
    empty = FigureCache()
    monkeypatch.setattr(recurrent, "cached_figure", empty.get)
    tiny.warm()
    assert empty.misses == 0 and len(empty) == 0
