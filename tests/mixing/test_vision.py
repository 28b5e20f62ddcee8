"""The digits split, the two image classifiers (same embedding, same head), and the training loop."""
import pytest
import torch

from postlib.mixing.vision import (ConvMixer2d, ImageData, PatchTransformer, accuracy, load_digits_split,
                                   num_parameters, train_image_classifier)

pytest.importorskip("sklearn")


def test_digits_split_is_seeded_and_complete():
    a, b = load_digits_split(seed=3), load_digits_split(seed=3)
    assert torch.equal(a.test_y, b.test_y)
    assert a.train_x.shape[1:] == (1, 8, 8) and len(a.train_y) + len(a.test_y) == 1797
    assert 0 <= float(a.train_x.min()) and float(a.train_x.max()) <= 1
    assert len(a.test_y) == round(1797 * 0.25) and set(a.train_y.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_split(test_fraction=1.5)


def test_both_models_share_the_embedding_and_head_shapes():
    cm, tf = ConvMixer2d(dim=16, depth=2), PatchTransformer(dim=16, depth=1)
    x = torch.randn(5, 1, 8, 8)
    assert cm(x).shape == tf(x).shape == (5, 10)
    assert cm.embed.weight.shape == tf.embed.weight.shape and cm.head.weight.shape == tf.head.weight.shape
    assert num_parameters(cm) > 0 and num_parameters(tf) > 0
    with pytest.raises(ValueError, match="image_size"):
        PatchTransformer(image_size=8, patch_size=3)
    with pytest.raises(ValueError, match="built for 16"):
        PatchTransformer(dim=16)(torch.randn(1, 1, 12, 12))


def test_training_learns_the_digits_quickly():
    data = load_digits_split()
    small = ImageData(data.train_x[:400], data.train_y[:400], data.test_x[:200], data.test_y[:200])
    model = ConvMixer2d(dim=16, depth=2)
    before = accuracy(model, small.test_x, small.test_y)
    result = train_image_classifier(model, small, epochs=4, batch_size=16, lr=1e-2)
    assert result.accuracy > max(0.5, before + 0.2)
    assert len(result.curve) == 4 and result.steps == 4 * 25 and result.parameters == num_parameters(model)
    assert result.curve[-1][2] < result.curve[0][2]          # the training loss went down
