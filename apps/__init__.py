"""The Panel dashboard of *Beyond Transformers*.

``python -m apps.serve`` (or ``make dashboard``) serves one app at
``/dashboard``; ``apps.dashboard`` discovers every page module in
``apps/pages/``; ``apps.widgets`` holds the helpers pages share (memory
budget, plotly pane, error alerts) and ``apps.results`` reads recorded
benchmark results for plotting.
"""
