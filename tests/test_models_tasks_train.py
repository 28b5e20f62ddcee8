"""The shared backbone, the synthetic tasks and the training loop."""
import pytest
import torch

from postlib import list_mixers
from postlib.models import SequenceModel
from postlib.tasks import IGNORE, associative_recall, induction_heads, selective_copying
from postlib.train import masked_accuracy, train_on_task


@pytest.mark.parametrize("mixer", list_mixers(causal=True))
def test_lm_backbone_runs_every_causal_mixer(mixer):
    model = SequenceModel(mixer, vocab_size=11, d_model=32, n_layers=2, max_length=16)
    tokens = torch.randint(0, 11, (2, 13))
    logits = model(tokens)
    assert logits.shape == (2, 13, 11) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.dim() > 1)


@pytest.mark.parametrize("mixer", list_mixers(causal=False))
def test_classifier_backbone_runs_non_causal_mixers(mixer):
    model = SequenceModel(mixer, vocab_size=7, d_model=32, task="classify", n_classes=3)
    assert model(torch.randint(0, 7, (4, 9))).shape == (4, 3)


def test_backbone_rejects_bad_configurations():
    noncausal = list_mixers(causal=False)[0]
    with pytest.raises(ValueError, match="causal mixer"):
        SequenceModel(noncausal, vocab_size=5, task="lm")
    with pytest.raises(ValueError, match="task must be one of"):
        SequenceModel("softmax", vocab_size=5, task="regress")
    model = SequenceModel("softmax", vocab_size=5, d_model=16, max_length=8)
    with pytest.raises(TypeError, match="tokens must be an integer tensor"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="tokens must have 2 dimensions"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="max_length 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_selective_copying_places_colours_in_order():
    x, y, vocab = selective_copying(5, length=20, n_memorize=4, n_colors=3, seed=1)
    assert x.shape == y.shape == (5, 25) and vocab == 5
    for row_x, row_y in zip(x, y):
        colours = row_x[:20][row_x[:20] > 0]
        assert colours.tolist() == row_y[20:24].tolist()          # the answers, in order
        assert row_x[20] == 4 and (row_y[:20] == IGNORE).all()
    x2, _, _ = selective_copying(5, length=20, n_memorize=4, n_colors=3, seed=1)
    assert torch.equal(x, x2)                                      # seeded
    with pytest.raises(ValueError, match="n_memorize"):
        selective_copying(2, length=3, n_memorize=4)


def test_associative_recall_answers_are_the_queried_values():
    x, y, vocab = associative_recall(6, n_pairs=5, n_keys=10, n_values=7, seed=2)
    assert vocab == 17 and x.shape == (6, 15)
    for row_x, row_y in zip(x, y):
        pairs = dict(zip(row_x[0:10:2].tolist(), row_x[1:10:2].tolist()))
        for q, a in zip(row_x[10:].tolist(), row_y[10:].tolist()):
            assert pairs[q] == a
    with pytest.raises(ValueError, match="n_pairs"):
        associative_recall(1, n_pairs=11, n_keys=10)


def test_induction_heads_target_follows_the_trigger():
    x, y, vocab = induction_heads(8, length=12, vocab=6, seed=3)
    for row_x, row_y in zip(x, y):
        first = (row_x == 6).nonzero()[0].item()
        assert row_y[-1] == row_x[first + 1] and (row_y[:-1] == IGNORE).all()


def test_masked_accuracy_counts_only_scored_positions():
    targets = torch.tensor([[IGNORE, 1, 2]])
    logits = torch.zeros(1, 3, 3)
    logits[0, 1, 1] = logits[0, 2, 0] = 5.0
    assert masked_accuracy(logits, targets) == 0.5
    with pytest.raises(ValueError, match="no scored positions"):
        masked_accuracy(logits, torch.full((1, 3), IGNORE))


def test_training_learns_a_trivial_copy_task():
    """Associative recall with 1 pair is learnable in a few steps; an untrained model is at chance."""
    train = associative_recall(256, n_pairs=1, n_keys=4, n_values=4, seed=0)[:2]
    test = associative_recall(64, n_pairs=1, n_keys=4, n_values=4, seed=1)[:2]
    result = train_on_task("softmax", train, test, vocab_size=8, d_model=32, n_layers=1, steps=120,
                           batch_size=32, lr=1e-2, max_length=3, device="cpu")
    assert result.accuracy > 0.9, result
    assert result.losses[-1][1] < result.losses[0][1]
    assert result.model is not None and not result.model.training   # the trained model comes back, in eval mode


def test_recall_model_maps_are_softmax_maps_of_the_trained_model():
    from postlib.viz.approx_lowrank import recall_model_maps
    maps, loss = recall_model_maps(n_pairs=2, steps=20, d_model=16, n_heads=2)
    assert maps.shape == (2 * 4 * 2, 6, 6)                           # layers · batch · heads, L, L
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:2], dtype=maps.dtype))
    assert torch.triu(maps, diagonal=1).abs().max() == 0           # causal
    assert loss > 0
