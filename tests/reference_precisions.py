"""The reference's working precisions the self-tests run it in (reference/core.py, "The working type").

``native`` is what this platform gets; ``long_double_float64`` is what a platform whose ``long double`` is plain
float64 gets (macOS on Apple silicon, Windows): the same choice, made as there, so that the 2-ULP contract is
proven for those users on every run here.
"""

from __future__ import annotations

import importlib.util

import pytest

from reference import core

FLOAT64_SIGNIFICAND_BITS = 53
PLATFORMS = {
    "native": None,
    "long_double_float64": FLOAT64_SIGNIFICAND_BITS,
}


@pytest.fixture(autouse=True, params=list(PLATFORMS))
def working_precision(request):
    """Runs every test of the module that uses it once per platform's working precision."""
    name = core.choose_precision("auto", long_double_bits=PLATFORMS[request.param])
    if name == "quad" and importlib.util.find_spec("numpy_quaddtype") is None:
        pytest.skip("numpy-quaddtype is not installed (it has no wheel for this platform), so the working "
                    "precision of a platform whose long double is float64 cannot be run here")
    with core.working_precision(name):
        yield name
