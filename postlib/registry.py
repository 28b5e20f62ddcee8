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
* ``memory_estimate(batch, length, dtype, mode="forward") -> int | None`` — an
  upper bound on the peak bytes one call allocates beyond its inputs and
  parameters, as ``postlib.bench.peak_memory`` measures it; ``mode`` is
  ``"forward"`` (under ``torch.no_grad``) or ``"forward_backward"`` (forward, then
  ``output.sum().backward()``, parameter gradients included). ``None`` (the
  default) means unknown: the bench and the dashboard then refuse or measure
  cautiously. ``tests/test_registry.py`` holds every registered mixer's estimate
  to at least its measured peak, and to within a small factor of it.

The input policy, enforced here for every mixer (``Mixer.forward`` / ``Mixer.step``):

* a batch of size 0 gives an empty output (and ``step`` an empty token);
* input whose dtype or device differs from the parameters' is refused with a
  ``TypeError`` naming both;
* non-finite input (NaN, ±inf) is refused with a ``ValueError``: through an FFT
  or a masked matrix product (0·NaN = NaN) one NaN would change *earlier*
  outputs too, so ``forward`` and ``step`` would disagree. Inside
  ``with postlib.allow_nonfinite():`` it is let through (the output is then
  whatever the arithmetic gives);
* ``step`` with a token batch that differs from the state's batch is refused.

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

from ._checks import check_choice, check_finite, check_positive_int, check_sequence, check_token

# The folders of postlib are the taxonomy of the field; each family package
# imports its mixer modules in its __init__ so they register themselves.
FAMILIES = ("attention", "ssm", "mixing", "recurrent", "sparse")
# What ``memory_estimate`` bounds: a forward under no_grad, or a forward and ``.sum().backward()``.
ESTIMATE_MODES = ("forward", "forward_backward")
# Estimates count the tensors a call holds at its peak; this factor covers allocator detail the count leaves out.
ESTIMATE_MARGIN = 1.25


def itemsizes(dtype: torch.dtype) -> tuple[int, int]:
    """(bytes per element of ``dtype``, bytes per element of the fp32-or-wider working copy that
    softmaxes, FFTs and scans make of half-precision tensors), for ``memory_estimate``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return dtype.itemsize, max(dtype.itemsize, 4)


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
    """Base class: validates input so every mixer fails the same, clear way (see the module docstring).

    Subclasses implement ``_forward(x)`` and, when causal, ``init_state`` and
    ``_step(x_t, state)``; each also states ``memory_estimate``.
    """

    causal: bool = False

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, self.d_model)
        self._check_input(x, "x")
        if x.shape[0] == 0:
            return x * 0  # an empty batch: nothing to mix (the product keeps autograd's link to x)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def init_state(self, batch_size: int, device=None, dtype=None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} is not causal: it has no recurrent state")

    def step(self, x_t: torch.Tensor, state: Any):
        if not self.causal:
            raise NotImplementedError(f"{type(self).__name__} is not causal: it cannot step token by token")
        check_token(x_t, self.d_model)
        self._check_input(x_t, "x_t")
        expected = self.state_batch_size(state)
        if expected is not None and expected != x_t.shape[0]:
            raise ValueError(f"x_t has batch {x_t.shape[0]} but the state was made for batch {expected} "
                             f"(init_state({expected})); step one token of each of the {expected} sequences, "
                             f"shape ({expected}, d_model={self.d_model})")
        if x_t.shape[0] == 0:
            return x_t * 0, state
        return self._step(x_t, state)

    def _step(self, x_t, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_batch_size(self, state: Any) -> int | None:
        """The batch a state was made for: the leading size of its first tensor (override for other layouts)."""
        stack = [state]
        while stack:
            item = stack.pop(0)
            if isinstance(item, torch.Tensor):
                return int(item.shape[0]) if item.dim() else None
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, (tuple, list)):
                stack.extend(item)
        return None

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int | None:
        """Upper bound on the peak bytes of one call (see the module docstring); None = unknown."""
        return None

    def _estimate(self, mode: str, dtype: torch.dtype, forward: float, forward_backward: float) -> int:
        """Finish a ``memory_estimate`` from the bytes counted for each mode: the backward adds the
        parameter gradients (in ``dtype``), and both get ``ESTIMATE_MARGIN``."""
        check_choice(mode, "mode", ESTIMATE_MODES)
        if mode == "forward":
            return int(ESTIMATE_MARGIN * forward)
        grads = sum(p.numel() for p in self.parameters() if p.requires_grad) * dtype.itemsize
        return int(ESTIMATE_MARGIN * (forward_backward + grads))

    def _check_input(self, x: torch.Tensor, name: str) -> None:
        ref = next((p for p in self.parameters() if p.is_floating_point()), None)
        if ref is not None:
            owner = f"{type(self).__name__}'s parameters"
            if x.device != ref.device:
                raise TypeError(f"{name} is on {x.device} but {owner} are on {ref.device}; move one of them "
                                f"({name}.to({str(ref.device)!r}) or mixer.to({str(x.device)!r}))")
            if x.dtype != ref.dtype:
                raise TypeError(f"{name} has dtype {x.dtype} but {owner} have dtype {ref.dtype}; convert one of "
                                f"them ({name}.to({ref.dtype}) or mixer.to({x.dtype}))")
        check_finite(x, name, "a NaN or inf at one position can change the outputs at earlier positions "
                              "(0·NaN = NaN in masked products and FFTs); to pass it through anyway, call "
                              "inside `with postlib.allow_nonfinite():`")

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, causal={self.causal}"


def register_mixer(name: str, *, family: str, causal: bool, summary: str):
    """Class or function decorator: ``@register_mixer("softmax", family="attention", causal=True, summary=...)``.

    ``family`` must be one of ``FAMILIES`` (the folders of postlib); a new family
    is added there together with its folder.
    """

    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    check_choice(family, "family", FAMILIES)
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be True or False, got {causal!r}")
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError(f"summary must be a one-line description of mixer {name!r}, got {summary!r}")

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
