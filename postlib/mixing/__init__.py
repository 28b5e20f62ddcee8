"""MLP and convolution mixers: tokens mixed without attention scores.

* ``gmlp`` — gMLP's spatial gating unit: a learned (causal) length × length matrix along the sequence.
* ``convmixer`` — ConvMixer's causal depthwise convolution: local mixing, receptive field linear in depth.

Also ``vision``: the 2-D ConvMixer image classifier beside a softmax patch-Transformer of the same
size, and scikit-learn's digits for training them on a CPU. Importing this package registers the mixers.
"""
from . import convmixer, gmlp  # noqa: F401  (register "convmixer" and "gmlp")
from .convmixer import ConvMixerMixer, receptive_field, receptive_field_counts  # noqa: F401
from .gmlp import GMLPMixer, SpatialGatingUnit  # noqa: F401
