"""Plotly figure builders shared by the chapters and the dashboard, in one style.

Pure functions, data in → ``plotly.graph_objects.Figure`` out, by topic: ``attention``,
``scaling``, ``ssm``, ``approx``, ``approx_lowrank``, ``favor``, ``lola``. Import the topic module you need,
e.g. ``from postlib.viz.attention import attention_map``.

The style (importing this package registers the "postlib" plotly template):

* :mod:`postlib.viz.palette` — one fixed colour per method, form and family
  (:func:`color`, strict) and styles for free-text labels (:func:`series_styles`);
* :func:`finish` — the last call of every builder: template, short headline, caption in
  ``fig.layout.meta["caption"]``, decade-labelled log axes, legend and colorbars in their own
  space, and the narrow-screen patch in ``fig.layout.meta["narrow"]`` (with the figure's own values
  of the same keys in ``fig.layout.meta["wide"]``);
* :func:`frames_figure` — animations as plotly frames (slider and play button);
* :data:`FIGURES_JS` — ``static/postlib-figures.js``, which applies the narrow patch in a
  browser (the book copies it to ``_static``; the dashboard serves it).
"""
from pathlib import Path

from . import palette
from .core import frames_figure
from .palette import color, ramp, resolve, series_colors, series_styles
from .responsive import NARROW_PX, narrow_patch
from .theme import TEMPLATE_NAME, caption_text, coloraxis, finish, get_caption, provenance_sentence, register_template

FIGURES_JS = Path(__file__).parent / "static" / "postlib-figures.js"

register_template()

__all__ = ["FIGURES_JS", "NARROW_PX", "TEMPLATE_NAME", "caption_text", "color", "coloraxis", "finish",
           "frames_figure", "get_caption", "narrow_patch", "palette", "provenance_sentence", "ramp",
           "register_template", "resolve", "series_colors", "series_styles"]
