"""postlib: the library behind *Beyond Transformers*.

One interface for every sequence mixer in the book::

    import postlib
    postlib.list_mixers()                 # ['linear', 'mamba', 's4d', 'softmax', ...]
    mixer = postlib.build_mixer("softmax", d_model=64, n_heads=4)
    y = mixer(x)                          # (batch, length, 64) -> same shape
    state = mixer.init_state(batch)       # causal mixers only
    y_t, state = mixer.step(x[:, t], state)
"""
from ._checks import allow_nonfinite
from .registry import Mixer, build_mixer, list_mixers, mixer_info, register_mixer, run_steps

__version__ = "0.1.0"
__all__ = ["Mixer", "allow_nonfinite", "build_mixer", "list_mixers", "mixer_info", "register_mixer", "run_steps", "__version__"]
