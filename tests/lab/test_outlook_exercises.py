"""Outlook checkers: correct answers pass, typical mistakes fail with their hint, stubs never raise."""
import math

import torch

from postlib.exercises import lab_outlook as ex


def stub(*args):
    raise NotImplementedError


def good_attainable(i, p, b):
    return min(p, i * b)


def good_stream(segments):
    outs, S, z = [], None, None
    for pq, pk, v in segments:
        if S is None:
            S, z = pq.new_zeros(*pq.shape[:2], pq.shape[-1], v.shape[-1]), pq.new_zeros(*pq.shape[:2], pq.shape[-1])
        for t in range(pq.shape[2]):
            S = S + pk[:, :, t, :, None] * v[:, :, t, None, :]
            z = z + pk[:, :, t]
            num = torch.einsum("bhd,bhdv->bhv", pq[:, :, t], S)
            outs.append((num / (torch.einsum("bhd,bhd->bh", pq[:, :, t], z)[..., None] + 1e-6))[:, :, None])
    return torch.cat(outs, dim=2)


def reset_stream(segments):
    return torch.cat([good_stream([s]) for s in segments], dim=2)


def good_topk(q, keys, values, k):
    top = (q @ keys.T / math.sqrt(q.shape[1])).topk(min(k, keys.shape[0]), dim=1)
    return torch.einsum("nk,nkv->nv", torch.softmax(top.values, 1), values[top.indices])


def unnormalised_topk(q, keys, values, k):
    scores = q @ keys.T / math.sqrt(q.shape[1])
    top = scores.topk(min(k, keys.shape[0]), dim=1)
    return torch.einsum("nk,nkv->nv", torch.softmax(scores, 1).gather(1, top.indices), values[top.indices])


def _fails_with(checker, answer, capsys, fragment):
    assert checker(answer) is False
    out = capsys.readouterr().out
    assert "❌" in out and fragment in out, out


def test_correct_answers_pass(capsys):
    assert ex.check_attainable(good_attainable)
    assert ex.check_stream_segments(good_stream)
    assert ex.check_topk_attention(good_topk)
    assert ex.check_state_half_life(math.log(2) / 0.05)
    assert ex.check_fused_scan_intensity(8 * 1024 * 16 / ((3 * 1024 + 2 * 16) * 2))
    assert ex.check_which_bound("b")
    assert capsys.readouterr().out.count("✅") == 6


def test_stubs_are_not_implemented_yet(capsys):
    for checker in (ex.check_attainable, ex.check_stream_segments, ex.check_topk_attention):
        assert checker(stub) is False
        assert "not implemented yet" in capsys.readouterr().out
    assert ex.check_state_half_life(...) is False and "not answered yet" in capsys.readouterr().out


def test_typical_mistakes_get_their_hint(capsys):
    _fails_with(ex.check_attainable, lambda i, p, b: max(p, i * b), capsys, "smaller of the two roofs")
    _fails_with(ex.check_attainable, lambda i, p, b: min(p, i / b), capsys, "units")
    _fails_with(ex.check_stream_segments, reset_stream, capsys, "carry S and z")
    _fails_with(ex.check_topk_attention, unnormalised_topk, capsys, "sum to 1")
    _fails_with(ex.check_state_half_life, 1 / 0.05, capsys, "1/e")
    _fails_with(ex.check_fused_scan_intensity, 2 * 8 * 1024 * 16 / ((3 * 1024 + 2 * 16) * 2), capsys, "2 bytes")
    _fails_with(ex.check_which_bound, "a", capsys, "ridge point")


def test_library_solution_is_refused(capsys):
    from postlib.outlook.long_context import topk_attention
    assert ex.check_topk_attention(lambda q, k_, v, k: topk_attention(q, k_, v, k)) is False
    assert "yourself" in capsys.readouterr().out
