"""The NumPy reference: what each cross-entropy loss is, computed exactly.

Pure NumPy, no framework imports, float64 results (``extended=True`` keeps the
extended-precision value for comparisons against float64 outputs).

* :func:`softmax_cross_entropy` (soft labels), :func:`sparse_softmax_cross_entropy`
  (class indices), :func:`sigmoid_cross_entropy` (logits), :func:`binary_cross_entropy`
  (probabilities, no clipping) are the exact losses, per example or elementwise;
* :mod:`reference.conventions` models each framework's documented conventions
  by name (Keras' clipping and renormalisation, torch's clamp at -100, label
  smoothing, weights, ignored targets, reductions);
* :mod:`reference.oracle` recomputes the exact losses with mpmath, to prove the
  accuracy of this package in its self-tests.
"""

from reference.core import (
    binary_cross_entropy,
    neg_log_softmax,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from reference import conventions

__all__ = [
    "binary_cross_entropy",
    "conventions",
    "neg_log_softmax",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
]
