"""The Panel dashboard of *Beyond Transformers*.

``python -m apps.serve`` (or ``make dashboard``) serves one app at ``/dashboard``;
``apps.dashboard`` discovers every page module in ``apps/pages/``. Pages take their
helpers from ``apps.widgets`` (one import), which gathers ``apps.budget`` (memory
budget, refusal messages, memory given back), ``apps.figures`` (the server-wide
figure cache, captioned plotly panes) and ``apps.layout`` (rows that wrap on a phone,
a labelled Player). ``apps.measure`` runs the Scaling page's live measurements,
``apps.results`` reads recorded benchmark results, and ``python -m apps.loadtest``
opens N readers at once against a served dashboard.
"""
