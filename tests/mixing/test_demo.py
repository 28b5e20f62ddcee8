"""The chapter's small experiments: the lagged-copy task, gMLP learning its lag in W, the comparisons' plumbing."""
import pytest
import torch

from postlib.mixing.demo import band_mass, lagged_copy, recall_comparison, train_gmlp_lagged_copy
from postlib.tasks import IGNORE


def test_lagged_copy_targets_the_token_lag_steps_back():
    x, y, vocab = lagged_copy(5, length=10, lag=3, vocab=7)
    assert x.shape == y.shape == (5, 10) and vocab == 7 and int(x.max()) < 7
    assert (y[:, :3] == IGNORE).all() and torch.equal(y[:, 3:], x[:, :-3])
    with pytest.raises(ValueError, match="lag"):
        lagged_copy(2, length=4, lag=4)


def test_band_mass():
    W = torch.zeros(6, 6)
    W.diagonal(-2).fill_(1.0)
    assert band_mass(W, 2) == 1.0 and band_mass(W, 1) == 0.0


def test_gmlp_learns_the_lag_in_its_spatial_weights():
    result, w_init, w_trained = train_gmlp_lagged_copy(length=12, lag=2, d_model=16, steps=120, n_train=512,
                                                       n_test=64)
    assert w_init.shape == w_trained.shape == (12, 12)
    assert (w_trained.triu(1) == 0).all()                           # causal
    assert result.accuracy > 0.9
    assert band_mass(w_trained, 2) > 0.5 > 0.2 > band_mass(w_init, 2)


def test_recall_comparison_reports_every_mixer():
    rows = recall_comparison(("convmixer", "rwkv"), n_pairs=2, n_train=64, n_test=32, d_model=16, n_layers=1,
                             steps=3)
    assert [r["name"] for r in rows] == ["convmixer", "rwkv"]
    assert all(0 <= r["accuracy"] <= 1 and r["parameters"] > 0 and r["length"] == 6 for r in rows)
