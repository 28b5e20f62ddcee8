"""Every public builder has a catalogue example, and every example follows the style rules."""
from __future__ import annotations

import inspect

import pytest

from . import catalogue, rules

EXAMPLES = catalogue.examples()


def test_every_public_function_of_postlib_viz_says_what_it_returns():
    missing = [name for name, fn in catalogue.public_functions().items()
               if inspect.signature(fn).return_annotation is inspect.Signature.empty]
    assert not missing, f"annotate the return type of {missing} (builders: -> go.Figure)"


def test_every_builder_has_a_catalogue_example():
    covered = {key.split("#")[0] for key in EXAMPLES}
    missing = [b for b in catalogue.builders() if b not in covered]
    assert not missing, (f"add an example call for {missing} to tests/viz/examples_<topic>.py "
                         f"(see tests/viz/catalogue.py)")
    stale = sorted(covered - set(catalogue.builders()))
    assert not stale, f"catalogue examples name no builder: {stale}"


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_example_follows_the_rules(key):
    fig = catalogue.figure(key)
    found = rules.problems(fig)
    assert not found, f"{key}:\n  " + "\n  ".join(found)
