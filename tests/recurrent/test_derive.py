"""The chapter's symbolic derivations hold, and the derived forms match the numeric code."""
import torch

from postlib.recurrent.derive import ema_unrolled, four_terms, relative_score_numeric, retention_forms
from postlib.recurrent.transformer_xl import relative_scores_loop


def test_absolute_score_is_the_four_terms_and_the_relative_score_is_the_codes_form():
    d = four_terms()
    assert d["expanded_residual"] == 0
    assert d["relative_residual"] == 0
    assert len(d["terms"]) == 4 and all(t != 0 for t in d["terms"])


def test_derived_relative_score_equals_the_loop():
    g = torch.Generator().manual_seed(0)
    q, k, u, v = (torch.randn(1, 1, 1, 4, generator=g, dtype=torch.float64) for _ in range(4))
    r_by_distance = torch.randn(1, 1, 4, generator=g, dtype=torch.float64)
    loop = relative_scores_loop(q, k, r_by_distance, u[0, 0], v[0, 0])[0, 0, 0, 0].item()
    derived = relative_score_numeric(q.flatten().tolist(), k.flatten().tolist(), r_by_distance.flatten().tolist(),
                                     u.flatten().tolist(), v.flatten().tolist())
    assert abs(loop - derived) < 1e-12


def test_retention_forms_agree_symbolically():
    for length, chunk in ((5, 2), (6, 3), (4, 4)):
        assert all(r == 0 for r in retention_forms(length, chunk)["residuals"])


def test_ema_unrolls_into_its_kernel():
    assert all(r == 0 for r in ema_unrolled(5)["residuals"])
