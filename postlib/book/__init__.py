"""What every chapter needs: its first cell, sizes that follow the device, numbered figures, glued
numbers, claims, and source listings.

    from postlib.book import claim, figure, glue, setup, show_source   # the generated first cell
    sizes = setup("baseline")      # seeds, plotly renderer, the size profile, sizes.device, sizes.triton

* ``setup(profile) -> Profile``: the profile's sizes (a dict) with ``.device`` ("cuda"/"cpu"),
  ``.triton`` ("compiled"/"interpreter"/None), ``.can_run_triton(what)``, ``.kind``, ``.smoke``
  (``runtime``; sizes in ``profiles/<name>.py``).
* ``figure(name, fig)``: a numbered, captioned figure through ``{glue:figure}``; ``glue(name, value)``:
  a computed number quoted in prose with ``{glue:text}``; ``claim(condition, message)``: a result the
  prose states, asserted in real runs and reported in smoke runs (``figures``).
* ``show_source(obj)``: a code listing that wraps or folds instead of scrolling sideways (``source``).
* ``explore(builder, controls)``: widgets live, a slider over frames in the static book (``interactive``).
* ``python -m postlib.book sync | lint | run``: install cells from ``_config.yml``, the page
  standard, and executing pages as the build does or in the GPU-profile / no-Triton smoke modes
  (``pages``, ``run``).
"""
from .interactive import explore, widgets_available
from .figures import caption_of, claim, figure, glue
from .profiles import PROFILES
from .render import RENDERER, figure_html, install_static, register_renderer
from .runtime import (BOOK_BUILD_ENV, PROFILE_ENV, SMOKE_ENV, Profile, device_kind, in_book_build, on_colab,
                      setup, sizes, smoke_run)
from .source import Listing, show_source

__all__ = ["BOOK_BUILD_ENV", "PROFILES", "PROFILE_ENV", "RENDERER", "SMOKE_ENV", "Listing", "Profile", "caption_of",
           "claim", "device_kind", "explore", "figure", "figure_html", "glue", "in_book_build", "install_static",
           "on_colab", "register_renderer", "setup", "show_source", "sizes", "smoke_run", "widgets_available"]
