"""RWKV-4 against an independent implementation: the ``rwkv`` package's CPU model (pip ``rwkv``).

Conventions, made explicit:
* The package loads an official checkpoint: ``time_decay`` is stored and the model uses
  −exp(time_decay) (our wkv takes w = exp(time_decay) > 0 and subtracts it); ``time_first`` is u as is.
* Checkpoint projections are PyTorch ``Linear`` weights (out, in); the package transposes them on load.
* The package applies ``blocks.0.ln0`` to the embedding table on load; its blocks are
  x ← x + TM(ln1(x)), x ← x + CM(ln2(x)), then ln_out and head — the official block, which we build
  here from postlib's ``TimeMix`` and ``ChannelMix`` (the registered mixer wires them inside our
  backbone instead; see postlib/recurrent/rwkv.py).
* Its recurrent state per layer is (att x, aa, bb, pp, ffn x): aa, bb, pp are our WKVState
  (num, den, shift); its empty shift is −1e30, ours −1e38 (both mean "no tokens yet").
We save a random tiny checkpoint in the official format, load it with the package, and compare
logits in its sequence mode and its one-token RNN mode, and the WKV state.
"""
import os

import pytest
import torch
from torch import nn

os.environ.setdefault("RWKV_JIT_ON", "0")       # plain nn.Module: no TorchScript compile in a test
os.environ.setdefault("RWKV_CUDA_ON", "0")
rwkv_model = pytest.importorskip("rwkv.model")

from postlib.recurrent.rwkv import ChannelMix, TimeMix  # noqa: E402

VOCAB, D, LAYERS = 50, 16, 2


class OfficialBlock(nn.Module):
    def __init__(self, layer_id):
        super().__init__()
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(D)
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.att = TimeMix(D, layer_id, LAYERS, backend="parallel")
        self.ffn = ChannelMix(D, layer_id, LAYERS)


class OfficialRWKV4(nn.Module):
    """The RWKV-4 language model of the official code, assembled from postlib's time and channel mix."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, D)
        self.blocks = nn.ModuleList(OfficialBlock(i) for i in range(LAYERS))
        self.ln_out = nn.LayerNorm(D)
        self.head = nn.Linear(D, VOCAB, bias=False)

    def forward(self, tokens):
        x = self.blocks[0].ln0(self.emb(tokens))
        states = []
        for blk in self.blocks:
            y, st = blk.att(blk.ln1(x), return_state=True)
            x = x + y
            x = x + blk.ffn(blk.ln2(x))
            states.append(st[1])
        return self.head(self.ln_out(x)), states


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    ours = OfficialRWKV4()
    with torch.no_grad():      # move every parameter off its initial value so no convention hides
        for name, p in ours.named_parameters():
            if "time_decay" in name:
                p.uniform_(-3.0, 1.5)
            elif "time_" in name:
                p.uniform_(0.0, 1.0) if "mix" in name else p.normal_()
            elif "ln" in name:
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.normal_(0, 0.5)
    path = tmp_path_factory.mktemp("rwkv") / "tiny_rwkv4.pth"
    torch.save({k: v.clone() for k, v in ours.state_dict().items()}, path)
    peer = rwkv_model.RWKV(str(path), "cpu fp32", verbose=False)
    return ours.eval(), peer


def test_sequence_mode_logits_match(models):
    ours, peer = models
    tokens = torch.randint(0, VOCAB, (23,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mine, my_states = ours(tokens[None])
    theirs, state = peer.forward(tokens.tolist(), None, full_output=True)
    torch.testing.assert_close(mine[0], theirs, rtol=1e-4, atol=1e-4)
    for layer, s in enumerate(my_states):        # (aa, bb, pp) = (num, den, shift) after the last token
        aa, bb, pp = state[layer * 5 + 1], state[layer * 5 + 2], state[layer * 5 + 3]
        torch.testing.assert_close(s.num[0] * torch.exp(s.shift[0] - pp), aa, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(s.den[0] * torch.exp(s.shift[0] - pp), bb, rtol=1e-4, atol=1e-5)


def test_rnn_mode_matches_our_parallel_forward(models):
    """The package's one-token-at-a-time RNN mode against our whole-sequence (parallel WKV) pass."""
    ours, peer = models
    tokens = torch.randint(0, VOCAB, (9,), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mine, _ = ours(tokens[None])
    state, outs = None, []
    for t in tokens.tolist():
        out, state = peer.forward([t], state)
        outs.append(out)
    torch.testing.assert_close(mine[0], torch.stack(outs), rtol=1e-4, atol=1e-4)
