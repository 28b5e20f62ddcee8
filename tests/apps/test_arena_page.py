"""The Arena page without a browser: the recorded arena's views, the race (or its absence), the hybrid
composer's recorded or live result, and its memory budget (refused before anything is allocated)."""
from __future__ import annotations

import panel as pn
import pytest

from apps.pages import arena
from apps.pages.arena import PAGE, ArenaPage
from postlib import bench
from postlib.viz import get_caption


@pytest.fixture
def quick_live(monkeypatch):
    monkeypatch.setitem(arena.LIVE, "steps", 3)
    monkeypatch.setitem(arena.LIVE, "n_train", 64)
    monkeypatch.setitem(arena.LIVE, "n_test", 16)
    arena.LIVE_RESULTS.clear()
    yield
    arena.LIVE_RESULTS.clear()


def test_page_contract_and_recorded_views():
    assert PAGE == {"title": "Arena", "order": 95, "viewer": ArenaPage}
    page = ArenaPage()
    assert pn.panel(page).get_root() is not None
    assert page.alert.message is None and page.doc is not None
    assert "Recall against state size" in page.arena_figure.object.layout.title.text
    page.view = "induction"
    assert "beyond the training length" in page.arena_figure.object.layout.title.text
    page.view = "table"
    heatmap = page.arena_figure.object.data[0]
    assert list(heatmap.y) == page.entrants
    page.entrants = ["softmax"]
    assert list(page.arena_figure.object.data[0].y) == ["softmax"]
    assert "Measured on" in get_caption(page.arena_figure.object)


def test_race_is_plotted_or_its_absence_said(monkeypatch):
    page = ArenaPage()
    try:
        bench.load_results("cpu_race.json")
        assert page.race_figure.visible
    except FileNotFoundError:
        assert not page.race_figure.visible and "No recorded scaling race" in page.race_info.object
    monkeypatch.setattr(arena, "RACE_FILES", ("no_such_race.json",))
    page.draw_race()
    assert not page.race_figure.visible and "python -m postlib.bench race" in page.race_info.object


def test_composer_shows_the_recorded_result_of_a_recorded_stack():
    page = ArenaPage(n_layers=2, layer_1="mamba", layer_2="softmax")    # the arena's jamba-like stack
    assert "Recorded arena result" in page.stack_info.object and page.train_button.disabled
    assert "a KV cache" in page.stack_info.object
    page.layer_2 = "s4d"
    assert "fixed: no layer keeps every token" in page.stack_info.object


def test_composer_trains_an_unrecorded_stack_live(quick_live):
    page = ArenaPage(n_layers=3, layer_1="s4d", layer_2="softmax", layer_3="s4d")
    assert "press **Train**" in page.stack_info.object and not page.train_button.disabled
    page.train(background=False)
    assert page.alert.message is None and not page.running
    assert "Live MQAR run" in page.status.object and page.progress.value == 3
    assert ("s4d", "softmax", "s4d") in arena.LIVE_RESULTS and page.train_button.disabled
    again = ArenaPage(n_layers=3, layer_1="s4d", layer_2="softmax", layer_3="s4d")   # another session
    assert "Live MQAR run" in again.stack_info.object


def test_composer_refuses_over_budget_before_allocating(quick_live, monkeypatch):
    monkeypatch.setattr(arena, "memory_budget_bytes", lambda: 1024)
    page = ArenaPage(n_layers=2, layer_1="s4d", layer_2="s4d")
    page.train(background=False)
    assert page.refusal.visible and "Refused" in str(page.refusal.object)
    assert not page.running and not arena.LIVE_RESULTS


@pytest.mark.parametrize("stack", [("s4d", "softmax"), ("mamba", "softmax", "mamba", "mamba"), ("linear", "lola")])
def test_composer_bytes_bounds_a_measured_training_run(stack):
    from postlib.tasks import associative_recall
    from postlib.train import train_on_task
    kw = dict(n_pairs=arena.LIVE["pairs"], n_keys=arena.LIVE["keys"], n_values=arena.LIVE["keys"])
    x, y, vocab = associative_recall(64, **kw)
    need = arena.composer_bytes(stack)
    peak = bench.peak_memory(lambda: train_on_task(list(stack), (x, y), (x[:16], y[:16]), vocab,
                                                   d_model=arena.LIVE["d_model"], steps=2,
                                                   batch_size=arena.LIVE["batch"], device="cpu",
                                                   max_length=x.shape[1]))
    assert 0 < peak <= need, (peak, need)
