"""A NumPy binding whose error is set from outside, for the baseline guard's self-tests.

It returns the exact softmax cross-entropy rounded to the input dtype, times
(1 + XENT_PERTURB_ULPS * eps): 0 reproduces the reference, a few ULPs stay
within the tolerance but grow the error against a baseline, thousands fail.
Loaded by tests/test_parity_baseline.py with ``--bindings perturbed_numpy``.
"""

from __future__ import annotations

import os

import numpy as np

from conformance.bindings import Binding, Problem
from conformance.frameworks import exact_softmax_cross_entropy
from reference import core


def _call(problem: Problem) -> np.ndarray:
    dtype = np.asarray(problem.prediction).dtype
    exact = exact_softmax_cross_entropy(problem)
    factor = 1 + float(os.environ.get("XENT_PERTURB_ULPS", "0")) * float(np.finfo(dtype).eps)
    return (exact * core.work(factor)).astype(dtype)


BINDINGS = [
    Binding(id="numpy:perturbed.softmax_cross_entropy", api="perturbed softmax cross-entropy", framework="numpy",
            family="softmax", call=_call, reference=exact_softmax_cross_entropy,
            convention=exact_softmax_cross_entropy.convention,
            dtypes=frozenset({"float32", "float64"}), options={"axis": None}, requires=("numpy",),
            notes={"gradient": "the perturbed binding has no gradient"}),
]
