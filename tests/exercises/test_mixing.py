"""Part 5 checkers: correct answers pass, typical mistakes fail with their hint, stubs never raise;
the questions accept the right number/option and the prediction's answer key is what the run shows."""
import pytest
import torch
import torch.nn.functional as F

from postlib.exercises import mixing as ex


# ----------------------------------------------------------------- correct solutions (written from the equations)

def good_sgu(z, W, b):
    z1, z2 = z.chunk(2, dim=-1)
    return z1 * (W @ F.layer_norm(z2, (z2.shape[-1],)) + b[:, None])


def good_conv_step(window, x_t, weight, bias):
    full = torch.cat([window, x_t[..., None]], -1)
    return (full * weight).sum(-1) + bias, full[..., 1:]


def good_weights(w, u, k, gap=1):
    L = k.shape[0]
    t, i = torch.arange(L)[:, None], torch.arange(L)[None, :]
    logits = torch.where(t == i, u + k[None, :], k[None, :] - (t - gap - i) * w)
    return torch.softmax(logits.masked_fill(i > t, float("-inf")), -1)


def good_rwkv5_step(r_t, k_t, v_t, w, u, S):
    kv = torch.einsum("bhk,bhv->bhkv", k_t, v_t)
    o_t = torch.einsum("bhk,bhkv->bhv", r_t, S + u[None, :, :, None] * kv)
    return o_t, w[None, :, :, None] * S + kv


def good_merge(first, second, decay=True):
    p1, a1, b1, d1 = first
    p2, a2, b2, d2 = second
    q = p1 - d2 if decay else p1
    p = torch.maximum(q, p2)
    e1, e2 = torch.exp(q - p), torch.exp(p2 - p)
    return p, e1 * a1 + e2 * a2, e1 * b1 + e2 * b2, d1 + d2


def stub(*args):
    raise NotImplementedError


CHECKERS = [(ex.check_spatial_gating, good_sgu), (ex.check_causal_conv_step, good_conv_step),
            (ex.check_wkv_weights, good_weights), (ex.check_rwkv5_step, good_rwkv5_step),
            (ex.check_segment_merge, good_merge)]


@pytest.mark.parametrize("checker,solution", CHECKERS)
def test_correct_solution_passes(checker, solution, capsys):
    assert checker(solution) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("checker", [c for c, _ in CHECKERS])
def test_stub_is_not_implemented_yet_and_does_not_raise(checker, capsys):
    assert checker(stub) is False
    assert "not implemented yet" in capsys.readouterr().out


def _fails_with(checker, fn, capsys, fragment):
    assert checker(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and fragment in out, out


# ----------------------------------------------------------------- typical mistakes

def test_spatial_gating_mistakes(capsys):
    _fails_with(ex.check_spatial_gating, lambda z, W, b: good_sgu(torch.cat(z.chunk(2, -1)[::-1], -1), W, b), capsys,
                "wrong half")
    _fails_with(ex.check_spatial_gating, lambda z, W, b: z.chunk(2, -1)[0] * (W @ z.chunk(2, -1)[1] + b[:, None]),
                capsys, "normalised first")
    _fails_with(ex.check_spatial_gating, lambda z, W, b: good_sgu(z, W.T, b), capsys, "which index of W")


def test_conv_step_mistakes(capsys):
    _fails_with(ex.check_causal_conv_step, lambda win, x, wt, b: good_conv_step(win, x, wt.flip(-1), b), capsys,
                "other way")
    _fails_with(ex.check_causal_conv_step, lambda win, x, wt, b: (good_conv_step(win, x, wt, b)[0], win), capsys,
                "drop the oldest")
    _fails_with(ex.check_causal_conv_step, lambda win, x, wt, b: good_conv_step(win, x, wt, b)[0], capsys,
                "return a pair")


def test_wkv_weights_mistakes(capsys):
    _fails_with(ex.check_wkv_weights, lambda w, u, k: good_weights(w, u, k, gap=0), capsys, "one step too much decay")
    _fails_with(ex.check_wkv_weights, lambda w, u, k: good_weights(w, 0.0, k), capsys, "bonus u")

    def unnormalised(w, u, k):
        L = k.shape[0]
        t, i = torch.arange(L)[:, None], torch.arange(L)[None, :]
        logits = torch.where(t == i, u + k[None, :], k[None, :] - (t - 1 - i) * w)
        return torch.exp(logits.masked_fill(i > t, float("-inf")))
    _fails_with(ex.check_wkv_weights, unnormalised, capsys, "sum to 1")

    def naive(w, u, k):                    # right on paper, overflows for keys near 400
        L = k.shape[0]
        t, i = torch.arange(L)[:, None], torch.arange(L)[None, :]
        e = torch.where(t == i, torch.exp(u + k)[None, :].expand(L, L), torch.exp(k[None, :] - (t - 1 - i) * w))
        e = torch.where(i > t, torch.zeros_like(e), e)
        return e / e.sum(-1, keepdim=True)
    _fails_with(ex.check_wkv_weights, naive, capsys, "NaN or inf")


def test_rwkv5_step_mistakes(capsys):
    def decays_before_reading(r_t, k_t, v_t, w, u, S):
        return good_rwkv5_step(r_t, k_t, v_t, w, u, w[None, :, :, None] * S)[0], good_rwkv5_step(r_t, k_t, v_t, w, u, S)[1]

    def reads_after_update(r_t, k_t, v_t, w, u, S):
        _, new = good_rwkv5_step(r_t, k_t, v_t, w, u, S)
        return torch.einsum("bhk,bhkv->bhv", r_t, new), new

    def no_bonus(r_t, k_t, v_t, w, u, S):
        return good_rwkv5_step(r_t, k_t, v_t, w, torch.ones_like(u), S)

    def bonus_in_state(r_t, k_t, v_t, w, u, S):
        o_t, _ = good_rwkv5_step(r_t, k_t, v_t, w, u, S)
        return o_t, w[None, :, :, None] * S + u[None, :, :, None] * torch.einsum("bhk,bhv->bhkv", k_t, v_t)

    def transposed_state(r_t, k_t, v_t, w, u, S):
        o_t, new = good_rwkv5_step(r_t, k_t, v_t, w, u, S)
        return o_t, new.transpose(-1, -2)
    _fails_with(ex.check_rwkv5_step, decays_before_reading, capsys, "belongs to the update")
    _fails_with(ex.check_rwkv5_step, reads_after_update, capsys, "after adding the current token")
    _fails_with(ex.check_rwkv5_step, no_bonus, capsys, "bonus u")
    _fails_with(ex.check_rwkv5_step, bonus_in_state, capsys, "no bonus in the state")
    _fails_with(ex.check_rwkv5_step, transposed_state, capsys, "should have shape")
    _fails_with(ex.check_rwkv5_step, lambda *a: good_rwkv5_step(*a)[0], capsys, "return a pair")


def test_segment_merge_mistakes(capsys):
    _fails_with(ex.check_segment_merge, lambda a, b: good_merge(a, b, decay=False), capsys, "decay them over")

    def overflow(first, second):           # exact on paper, e^p overflows for sums near e^500... in float64? no:
        p1, a1, b1, d1 = first             # it multiplies out to e^{p}: with p near 500 that is still finite,
        p2, a2, b2, d2 = second            # so scale up to e^{1000} to make the point
        A = a1 * torch.exp(2 * (p1 - d2)) + a2 * torch.exp(2 * p2)
        B = b1 * torch.exp(2 * (p1 - d2)) + b2 * torch.exp(2 * p2)
        return torch.zeros_like(p1), A.sqrt(), B.sqrt(), d1 + d2
    assert ex.check_segment_merge(overflow) is False
    capsys.readouterr()
    _fails_with(ex.check_segment_merge, lambda a, b: (*good_merge(a, b)[:3], a[3]), capsys, "decays add")


# ----------------------------------------------------------------- questions

def test_numbers_by_hand(capsys):
    assert ex.check_gmlp_spatial_parameters(2048 ** 2 + 2048)
    assert not ex.check_gmlp_spatial_parameters((2048 ** 2 + 2048) / 2)
    assert "upper triangle" in capsys.readouterr().out
    assert ex.check_convmixer_receptive_field(161)
    assert not ex.check_convmixer_receptive_field(180)
    assert "k − 1 new positions" in capsys.readouterr().out


def test_which_form_choice():
    assert ex.check_which_wkv_form("a")
    assert not ex.check_which_wkv_form("c")


def test_prediction_answer_key_is_what_float32_does(capsys):
    k = torch.full((1, 4, 2), 100.0)
    naive = torch.exp(k).sum()
    ex.predict_naive_overflow.reset()
    ex.predict_naive_overflow("b")
    assert ex.predict_naive_overflow.reveal((bool(torch.isfinite(naive)), True, True))
    with pytest.raises(AssertionError, match="not the stored answer"):
        ex.predict_naive_overflow.reveal((True, True, True))
    ex.predict_naive_overflow.reset()
