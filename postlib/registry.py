"""The mixer registry: one interface for every architecture in the book.

A *mixer* is the part of a block that moves information along the sequence
(softmax attention, an SSM, linear attention, ...). Everything else in a
block (norm, MLP, residual) is shared, so one backbone (``postlib.models``),
one benchmark (``postlib.bench``) and one dashboard page can serve all of them.

The protocol
------------
* ``causal: bool`` — True when output t depends only on inputs <= t.
* ``forward(x)`` — ``(batch, length, d_model) -> (batch, length, d_model)``.
* Causal mixers also have ``init_state(batch_size, device=None, dtype=None)``
  and ``step(x_t, state) -> (y_t, new_state)`` with ``x_t`` of shape
  ``(batch, d_model)``. Stepping through a sequence reproduces ``forward``
  (fp32), which ``tests/test_registry.py`` checks for *every* registered mixer.

Families register their mixers with :func:`register_mixer` in their own
subpackage; :func:`_load_families` imports each family package so that
registration happens on first use of :func:`list_mixers`.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_sequence, check_token

# The folders of postlib are the taxonomy of the field; each family package
# imports its mixer modules in its __init__ so they register themselves.
FAMILIES = ("attention", "ssm", "mixing", "recurrent", "sparse")


@dataclass(frozen=True)
class MixerInfo:
    name: str
    factory: Callable[..., nn.Module]
    family: str
    causal: bool
    summary: str


_REGISTRY: dict[str, MixerInfo] = {}
_loaded = False


class Mixer(nn.Module):
    """Base class: validates shapes so every mixer fails the same, clear way.

    Subclasses implement ``_forward(x)`` and, when causal, ``init_state`` and
    ``_step(x_t, state)``.
    """

    causal: bool = False

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, self.d_model)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def init_state(self, batch_size: int, device=None, dtype=None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} is not causal: it has no recurrent state")

    def step(self, x_t: torch.Tensor, state: Any):
        if not self.causal:
            raise NotImplementedError(f"{type(self).__name__} is not causal: it cannot step token by token")
        check_token(x_t, self.d_model)
        return self._step(x_t, state)

    def _step(self, x_t, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, causal={self.causal}"


def register_mixer(name: str, *, family: str, causal: bool, summary: str):
    """Class or function decorator: ``@register_mixer("softmax", family="attention", causal=True, summary=...)``."""

    def deco(factory):
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"mixer {name!r} is already registered by {_REGISTRY[name].factory}")
        _REGISTRY[name] = MixerInfo(name, factory, family, causal, summary)
        return factory

    return deco


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    for fam in FAMILIES:
        modname = f"postlib.{fam}"
        if importlib.util.find_spec(modname) is not None:
            importlib.import_module(modname)
    _loaded = True


def list_mixers(*, causal: bool | None = None, family: str | None = None) -> list[str]:
    """Names of all registered mixers, sorted; optionally only causal ones or one family."""
    _load_families()
    out = []
    for info in _REGISTRY.values():
        if causal is not None and info.causal != causal:
            continue
        if family is not None and info.family != family:
            continue
        out.append(info.name)
    return sorted(out)


def mixer_info(name: str) -> MixerInfo:
    _load_families()
    check_choice(name, "name", sorted(_REGISTRY))
    return _REGISTRY[name]


def build_mixer(name: str, d_model: int, **config) -> nn.Module:
    """Build the mixer ``name`` for width ``d_model``; ``config`` goes to its constructor."""
    info = mixer_info(name)
    check_positive_int(d_model, "d_model")
    module = info.factory(d_model=d_model, **config)
    if bool(getattr(module, "causal", None)) != info.causal:
        raise RuntimeError(f"mixer {name!r} registered causal={info.causal} but built causal={module.causal}")
    return module


@torch.no_grad()
def run_steps(mixer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a causal mixer token by token; the output must equal ``mixer(x)``."""
    check_sequence(x, mixer.d_model)
    state = mixer.init_state(x.shape[0], device=x.device, dtype=x.dtype)
    ys = []
    for t in range(x.shape[1]):
        y_t, state = mixer.step(x[:, t], state)
        ys.append(y_t)
    return torch.stack(ys, dim=1)
