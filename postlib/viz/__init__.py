"""Plotly figure builders shared by the chapters and the dashboard.

Pure functions, data in → ``plotly.graph_objects.Figure`` out, by topic:
``core`` (theme, frames, sliders), ``attention``, ``scaling``, ``ssm``,
``approx``. Import the topic module you need, e.g.
``from postlib.viz.attention import attention_map``.
"""
from . import core  # noqa: F401
