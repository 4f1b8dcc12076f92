"""NumPy bindings that fail in chosen ways, for the self-tests of pinned divergence signatures.

``numpy:divergent.as_recorded`` is 1e4 ULPs off, as the test's baseline records
for every one of them; each other binding fails otherwise: 1e6 ULPs off, a
raise, a float16 result for float32 inputs, NaN. ``numpy:divergent.inf_as_recorded``
and ``numpy:divergent.nan_where_inf`` are recorded overflowing to inf: the
first still does, the second now gives NaN. Loaded by
tests/test_divergence_signatures.py with ``--bindings changed_divergences``.
"""

from __future__ import annotations

import numpy as np

from conformance.bindings import Binding, Problem
from conformance.frameworks import exact_softmax_cross_entropy
from reference import core


def _scaled(ulps: float):
    def call(problem: Problem) -> np.ndarray:
        dtype = np.asarray(problem.prediction).dtype
        return (exact_softmax_cross_entropy(problem) * core.work(1 + ulps * float(np.finfo(dtype).eps))).astype(dtype)

    return call


def _raising(problem: Problem) -> np.ndarray:
    raise ValueError("this loss no longer accepts these logits")


def _float16(problem: Problem) -> np.ndarray:
    return _scaled(1e4)(problem).astype(np.float16)


def _filled(value: float):
    def call(problem: Problem) -> np.ndarray:
        return np.full(np.shape(_scaled(0)(problem)), value, np.asarray(problem.prediction).dtype)

    return call


FAILURES = {"as_recorded": _scaled(1e4), "worse": _scaled(1e6), "raising": _raising, "wrong_dtype": _float16,
            "nan": _filled(np.nan), "inf_as_recorded": _filled(np.inf), "nan_where_inf": _filled(np.nan)}

BINDINGS = [
    Binding(id=f"numpy:divergent.{name}", api=f"divergent softmax cross-entropy ({name})", framework="numpy",
            family="softmax", call=call, reference=exact_softmax_cross_entropy,
            convention=exact_softmax_cross_entropy.convention, dtypes=frozenset({"float32"}),
            options={"axis": None}, requires=("numpy",), notes={"gradient": "no gradient binding"})
    for name, call in FAILURES.items()
]
