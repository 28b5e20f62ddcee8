"""Dashboard pages, one module each.

A page module defines a ``pn.viewable.Viewer`` subclass (``param`` parameters,
widgets and layout only; the math lives in ``postlib``, the figures in
``postlib.viz``) and a module-level dict::

    PAGE = {"title": "Scaling", "order": 90, "viewer": ScalingPage}

``apps.dashboard.discover_pages`` finds every such module, sorted by ``order``.
"""
