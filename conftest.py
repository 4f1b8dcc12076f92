"""Registers the conformance plugin and the hypothesis profiles.

Profiles (choose with ``--hypothesis-profile NAME``):

* ``ci``: derandomized, 10 examples per property, no deadline; the default when
  the environment says CI=true (as .ci/run and the GitHub workflow do);
* ``dev``: random, 10 examples, the default otherwise;
* ``thorough``: random, 400 examples, for a long hunt.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["conformance.plugin"]

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                      HealthCheck.differing_executors])
settings.register_profile("ci", derandomize=True, max_examples=10, **_COMMON)
settings.register_profile("dev", max_examples=10, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")


_SELECTION_MODULE = pytest.StashKey()


def pytest_collection_finish(session):
    """The import-isolation self-test's children start as soon as the run knows it has them (see
    tests/test_harness.py, SelectionChildren)."""
    for item in session.items:
        module = getattr(item, "module", None)
        if hasattr(module, "start_selection_children"):
            session.stash[_SELECTION_MODULE] = module
            module.start_selection_children(session)
            return


def pytest_sessionfinish(session):
    module = session.stash.get(_SELECTION_MODULE, None)
    if module is not None:
        module.stop_selection_children(session)
