"""Option parity across APIs: which option settings give the same loss, and
which do not, on the documented conventions and on the frameworks themselves.

Row ids carry no framework name: a row compares two frameworks, so neither
-k torch nor -k tensorflow selects it (use -m parity).
"""

from pathlib import Path

import numpy as np
import pytest

from conformance.bindings import load_bindings
from conformance.option_parity import ROWS
from conformance.tolerance import bound
from reference import core

pytestmark = pytest.mark.parity
README = Path(__file__).resolve().parent.parent / "README.md"


def _values(bindings, side, dtype, which):
    binding = bindings[side.binding]
    problem = side.problem(dtype)
    compute = binding.reference if which == "reference" else binding.call
    return np.asarray(compute(problem), dtype=core.WORK)


def _agree(left, right, dtype) -> bool:
    if np.shape(left) != np.shape(right):
        return False
    return bool(np.all(np.abs(left - right) <= bound(np.maximum(np.abs(left), np.abs(right)), 1.0, dtype)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_documented_conventions(row, dtype):
    bindings = load_bindings()
    left = _values(bindings, row.left, dtype, "reference")
    right = _values(bindings, row.right, dtype, "reference")
    assert _agree(left, right, dtype) == row.agree, (row.why, left.astype(float), right.astype(float))


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_frameworks(row):
    bindings = load_bindings()
    for side in (row.left, row.right):
        missing = bindings[side.binding].missing_requirement()
        if missing:
            pytest.skip(missing)
    left = _values(bindings, row.left, "float32", "framework")
    right = _values(bindings, row.right, "float32", "framework")
    assert _agree(left, right, "float32") == row.agree, (row.why, left.astype(float), right.astype(float))


def test_the_readme_lists_every_row():
    text = README.read_text()
    for row in ROWS:
        assert f"`{row.id}`" in text, f"README's option parity table lacks {row.id}"
