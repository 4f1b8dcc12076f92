"""A deliberately naive NumPy implementation of the losses, for a self-test only.

It computes what a textbook writes: the log of softmax and the log of sigmoid,
in the input dtype. tests/test_naive_bindings.py loads it with ``--bindings
naive_numpy`` (the interface a third party uses) and proves that the suite
catches it on the extreme cases while it passes the ordinary ones, and that it
reproduces the source document's wrong answers (nan, and 82.89307 with
clipping). Never part of the default run.
"""

from __future__ import annotations

import numpy as np

from conformance.bindings import Binding, Problem
from conformance.frameworks import (exact_sigmoid_cross_entropy, exact_softmax_cross_entropy,
                                    exact_sparse_softmax_cross_entropy)

DTYPES = frozenset({"float16", "float32", "float64"})


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)  # stable softmax; the naive part is the log after it
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_soft(problem: Problem) -> np.ndarray:
    x = np.asarray(problem.prediction)
    with np.errstate(all="ignore"):
        return -np.sum(problem.labels * np.log(_softmax(x, problem.axis)), axis=problem.axis)


def _clipped_log_softmax_soft(problem: Problem) -> np.ndarray:
    x = np.asarray(problem.prediction)
    with np.errstate(all="ignore"):
        p = np.clip(_softmax(x, problem.axis), x.dtype.type(1e-36), x.dtype.type(1))
        return -np.sum(problem.labels * np.log(p), axis=problem.axis)


def _log_softmax_sparse(problem: Problem) -> np.ndarray:
    x = np.asarray(problem.prediction)
    with np.errstate(all="ignore"):
        p = _softmax(x, -1)
        return -np.log(np.take_along_axis(p, np.asarray(problem.labels)[..., None], axis=-1)[..., 0])


def _log_sigmoid(problem: Problem) -> np.ndarray:
    x = np.asarray(problem.prediction)
    z = np.asarray(problem.labels, dtype=x.dtype)
    with np.errstate(all="ignore"):
        s = 1 / (1 + np.exp(-x))
        return -(z * np.log(s) + (1 - z) * np.log(1 - s))


def _binding(name, family, call, reference, options=None):
    return Binding(id=f"numpy:naive.{name}", api=name, framework="numpy", family=family, call=call,
                   reference=reference, convention=reference.convention, dtypes=DTYPES, options=options or {},
                   requires=("numpy",),
                   notes={"gradient": "the naive implementation has no gradient"})


SOFTMAX, SPARSE, SIGMOID = (exact_softmax_cross_entropy, exact_sparse_softmax_cross_entropy,
                            exact_sigmoid_cross_entropy)
BINDINGS = [
    _binding("-sum(y*log(softmax(x)))", "softmax", _log_softmax_soft, SOFTMAX, {"axis": None}),
    _binding("-sum(y*log(clip(softmax(x),1e-36,1)))", "softmax", _clipped_log_softmax_soft, SOFTMAX, {"axis": None}),
    _binding("-log(softmax(x)[label])", "sparse_softmax", _log_softmax_sparse, SPARSE, {"axis": {-1}}),
    _binding("-(z*log(sigmoid(x))+(1-z)*log(1-sigmoid(x)))", "sigmoid", _log_sigmoid, SIGMOID),
]
