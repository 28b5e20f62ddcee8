"""postlib.outlook.probe on small models: the recurrent view equals forward, Δ read back, probes, errors."""
import pytest
import torch

from postlib.models import SequenceModel
from postlib.outlook import probe as pr
from postlib.tasks import selective_copying


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SequenceModel("mamba", 6, d_model=16, n_layers=2, mixer_config={"d_state": 4}).eval()


def test_collect_states_runs_the_recurrent_view_of_forward(model):
    tokens, _, _ = selective_copying(5, 8, 2, 4, seed=0)
    states, logits = pr.collect_states(model, tokens, at=tokens.shape[1] - 1)
    with torch.no_grad():
        assert torch.allclose(logits, model(tokens), atol=1e-5)
    assert [s.shape for s in states] == [(5, 32 * 4)] * 2
    _, first = pr.collect_states(model, tokens, at=0)
    assert first.shape == (5, 1, 6)
    with pytest.raises(ValueError, match="at must be"):
        pr.collect_states(model, tokens, at=tokens.shape[1])


def test_deltas_are_the_layers_step_sizes(model):
    tokens, _, _ = selective_copying(3, 8, 2, 4, seed=1)
    deltas = pr.layer_deltas(model, tokens)
    assert [d.shape for d in deltas] == [(3, tokens.shape[1], 32)] * 2 and all((d > 0).all() for d in deltas)
    # Δ at the last position of layer 1, recomputed from the layer's own step()
    m = model.blocks[0].mixer
    captured = []
    h = m.x_proj.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        h.remove()
    dt = captured[0][..., :m.dt_rank]
    want = torch.nn.functional.softplus(dt @ m.dt_proj.weight.T + m.dt_proj.bias)
    assert torch.allclose(deltas[0], want)
    rows = pr.token_retention(model, tokens, 8, 4)
    assert {r["kind"] for r in rows} == {"noise", "colour", "separator", "answer slots"}
    assert all(0 < r["retention"] < 1 for r in rows)
    ch = pr.channel_deltas(model, tokens, 8, 4)
    assert len(ch) == 2 and len(ch[0]["noise"]) == 32 and 0 <= ch[0]["selective"] <= 32


def test_token_kinds_partition_selective_copying():
    tokens, _, _ = selective_copying(4, 10, 3, 4, seed=2)
    kinds = pr.token_kinds(tokens, 10, 4)
    total = sum(k.long() for k in kinds.values())
    assert torch.equal(total, torch.ones_like(tokens))
    assert int(kinds["colour"].sum()) == 4 * 3


def test_ridge_probe_reads_a_linear_code_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    x = torch.nn.functional.one_hot(y, 3).float() @ torch.randn(3, 10, generator=g) + 0.01 * torch.randn(300, 10, generator=g)
    assert pr.ridge_probe(x[:200], y[:200], x[200:], y[200:], 3) == 1.0
    noise = torch.randn(300, 10, generator=g)
    assert pr.ridge_probe(noise[:200], y[:200], noise[200:], y[200:], 3) < 0.6


def test_memory_probe_shapes(model):
    out = pr.memory_probe(model, length=8, n_memorize=2, n_colors=4, n=60)
    assert out["chance"] == 0.25 and out["slots"] == [1, 2] and out["n_train"] == 40
    assert len(out["trained"]) == len(out["untrained"]) == 2 and all(len(a) == 2 for a in out["trained"])


def test_probes_refuse_a_model_that_is_not_mamba():
    other = SequenceModel("linear", 6, d_model=8, n_layers=1)
    with pytest.raises(TypeError, match="mamba"):
        pr.layer_deltas(other, torch.zeros(1, 4, dtype=torch.long))


def test_ridge_probe_dual_form_gives_the_primal_answer():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 20, generator=g)
    y = x[:, :4].argmax(1)                               # a label the features carry (not linearly exact)
    padded = torch.cat([x, torch.zeros(60, 15)], 1)      # 35 features + bias > 30 samples: the dual form
    a = pr.ridge_probe(x[:30], y[:30], x[30:], y[30:], 4, ridge=0.5)            # 21 <= 30: the primal form
    b = pr.ridge_probe(padded[:30], y[:30], padded[30:], y[30:], 4, ridge=0.5)  # zero columns change nothing
    assert a == b and a > 0.5
