"""postlib.viz.approx.recall_figure: per-seed accuracies are drawn as their mean plus one dot per seed."""
import pytest

from postlib.viz import approx as vx


def test_recall_figure_bars_are_seed_means_and_every_seed_is_a_dot():
    fig = vx.recall_figure({"softmax": [1.0, 0.2], "linear": [0.25, 0.35]})
    bars, dots = fig.data
    assert list(bars.y) == pytest.approx([0.6, 0.3])
    assert list(dots.x) == ["softmax", "softmax", "linear", "linear"]
    assert list(dots.y) == pytest.approx([1.0, 0.2, 0.25, 0.35])


def test_recall_figure_with_one_number_per_mixer_has_no_seed_dots():
    fig = vx.recall_figure({"softmax": 0.9, "linear": 0.3})
    assert len(fig.data) == 1 and list(fig.data[0].y) == pytest.approx([0.9, 0.3])
