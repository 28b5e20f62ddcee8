"""Size profiles: one module per profile, discovered here, so a new part adds a file and edits nothing else.

A profile module ``postlib/book/profiles/<name>.py`` defines three dicts:

* ``CPU``: the sizes that keep the chapter near a minute on a laptop CPU (the book build runs these);
* ``GPU``: the same keys, bigger, for a CUDA machine (a Colab T4);
* ``SMOKE``: overrides for the *expensive counts* (steps, repeats, draws, trials, and lengths that only
  cost time), applied over ``CPU`` or ``GPU`` in a smoke run (``POSTLIB_SMOKE=1``). A smoke run checks
  that every code path of the page runs — with the GPU profile forced, and without Triton — in seconds,
  not that its stochastic results hold: those are ``claim()``-ed and only reported there.

``PROFILES[name] == {"cpu": CPU, "gpu": GPU, "smoke": SMOKE}``.
"""
from __future__ import annotations

import importlib
import pkgutil

KINDS = ("cpu", "gpu")


def _check(name: str, module) -> dict[str, dict]:
    missing = [k for k in ("CPU", "GPU", "SMOKE") if not isinstance(getattr(module, k, None), dict)]
    if missing:
        raise TypeError(f"profile module {module.__name__} must define dicts {missing}")
    cpu, gpu, smoke = module.CPU, module.GPU, module.SMOKE
    if set(cpu) != set(gpu):
        raise ValueError(f"profile {name!r}: CPU and GPU must have the same keys; "
                         f"only in CPU {sorted(set(cpu) - set(gpu))}, only in GPU {sorted(set(gpu) - set(cpu))}")
    unknown = sorted(set(smoke) - set(cpu))
    if unknown:
        raise ValueError(f"profile {name!r}: SMOKE overrides unknown keys {unknown}")
    return {"cpu": cpu, "gpu": gpu, "smoke": smoke}


def _discover() -> dict[str, dict[str, dict]]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        found[info.name] = _check(info.name, importlib.import_module(f"{__name__}.{info.name}"))
    return found


PROFILES: dict[str, dict[str, dict]] = _discover()
