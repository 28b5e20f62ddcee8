"""Sparse-attention checkers: correct answers pass, typical mistakes fail with their hint, stubs never raise."""
import math

import torch

from postlib.exercises import sparse_attention as ex
from postlib.sparse import attention_mask, dilated_attention
from postlib.sparse.attention import masked_attention


def good_sliding(length, window, causal):
    i = torch.arange(length)
    mask = (i[:, None] - i[None, :]).abs() <= window // 2
    return mask & (i[None, :] <= i[:, None]) if causal else mask


def good_longformer(length, window, global_tokens):
    mask = good_sliding(length, window, False)
    mask[global_tokens, :] = True
    mask[:, global_tokens] = True
    return mask


def good_window_attention(q, k, v, window):
    h = window // 2
    pad = lambda t: torch.nn.functional.pad(t, (0, 0, h, 0))  # noqa: E731
    keys, values = (pad(t).unfold(2, h + 1, 1).transpose(-1, -2) for t in (k, v))
    scores = (q[..., None, :] * keys).sum(-1) / math.sqrt(q.shape[-1])
    before_start = torch.arange(q.shape[2])[:, None] - h + torch.arange(h + 1)[None, :] < 0
    return (torch.softmax(scores.masked_fill(before_start, float("-inf")), -1)[..., None] * values).sum(-2)


def good_tiles(length, window, tile):
    h, n = window // 2, -(-length // tile)
    return sum(row - max(0, row * tile - h) // tile + 1 for row in range(n))


def good_mix(outs, lses):
    lse = torch.stack(lses)
    top = lse.amax(0)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    w = torch.exp(lse - top)
    total = w.sum(0)
    w = w / torch.where(total > 0, total, torch.ones_like(total))
    return sum(a[..., None] * o for a, o in zip(w, outs))


def good_field(mask, token, layers):
    reached = torch.zeros(mask.shape[0], dtype=torch.bool)
    reached[token] = True
    for _ in range(layers):
        reached = reached | mask[reached].any(0)
    return reached


def stub(*args):
    raise NotImplementedError


def test_correct_answers_pass():
    assert ex.check_sliding_mask(good_sliding)
    assert ex.check_longformer_mask(good_longformer)
    assert ex.check_window_attention(good_window_attention)
    assert ex.check_tiles_touched(good_tiles)
    assert ex.check_longnet_mix(good_mix)
    assert ex.check_receptive_field(good_field)
    assert ex.check_layers_to_connect(128)
    assert ex.check_which_pattern_short_paths("c")


def test_typical_mistakes_fail_with_a_hint(capsys):
    assert not ex.check_sliding_mask(lambda L, w, c: good_sliding(L, w, c).T)
    assert "transposed" in capsys.readouterr().out
    assert not ex.check_sliding_mask(lambda L, w, c: good_sliding(L, w, False))
    assert "causal" in capsys.readouterr().out
    rows_only = lambda L, w, g: good_sliding(L, w, False).index_fill(0, torch.tensor(g, dtype=torch.long), True)  # noqa: E731
    assert not ex.check_longformer_mask(rows_only)
    assert "add the columns" in capsys.readouterr().out
    def two_sided(q, k, v, w):
        scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~good_sliding(q.shape[2], w, False),
                                                                                 float("-inf"))
        return torch.softmax(scores, -1) @ v

    assert not ex.check_window_attention(two_sided)
    assert "two-sided" in capsys.readouterr().out
    def dense_masked(q, k, v, w):                          # right, but builds the (L × L) scores
        scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~good_sliding(q.shape[2], w, True),
                                                                                 float("-inf"))
        return torch.softmax(scores, -1) @ v

    assert not ex.check_window_attention(dense_masked)
    assert "MiB" in capsys.readouterr().out
    assert not ex.check_tiles_touched(lambda L, w, t: (-(-L // t)) * (-(-L // t) + 1) // 2)
    assert "every tile on or below the diagonal" in capsys.readouterr().out
    assert not ex.check_longnet_mix(lambda outs, lses: sum(outs) / len(outs))
    assert "plain average" in capsys.readouterr().out
    assert not ex.check_receptive_field(lambda m, t, k: m[t] if k else good_field(m, t, 0))
    assert "compose the mask" in capsys.readouterr().out
    assert not ex.check_layers_to_connect(64)
    assert "window // 2" in capsys.readouterr().out
    assert not ex.check_which_pattern_short_paths("b")
    assert "log L" in capsys.readouterr().out


def test_stubs_say_not_implemented(capsys):
    for check in (ex.check_sliding_mask, ex.check_longformer_mask, ex.check_window_attention, ex.check_tiles_touched,
                  ex.check_longnet_mix, ex.check_receptive_field):
        assert check(stub) is False
        assert "not implemented yet" in capsys.readouterr().out
    assert ex.check_layers_to_connect(...) is False


def test_prediction_reveal_follows_the_run():
    ex.predict_longnet_vs_union.reset()
    ex.predict_longnet_vs_union("b")
    q, k, v = (torch.randn(1, 2, 64, 8, dtype=torch.float64) for _ in range(3))
    mix = dilated_attention(q, k, v, [8, 32], [1, 4], backend="torch")
    union = masked_attention(q, k, v, attention_mask("dilated", 64, segment_lengths=[8, 32], dilations=[1, 4]))
    assert ex.predict_longnet_vs_union.reveal(((mix - union).abs().max() / mix.abs().max()).item())
    ex.predict_longnet_vs_union.reset()
