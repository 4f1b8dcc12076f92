"""An arbitrary-precision oracle (mpmath) for the exact losses.

Slow and small on purpose: it exists to measure :mod:`reference.core`, never
to produce expected values for frameworks. Inputs are float64 values (any
narrower float converts exactly); differences of inputs are taken at a
precision where they are exact, and logarithms and exponentials at
``PRECISION_BITS``, far beyond float64's 53.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

PRECISION_BITS = 320
# Wide enough to hold any difference of two float64 values exactly.
EXACT_BITS = 2200


def _mpf(value) -> mpmath.mpf:
    return mpmath.mpf(float(value))


def neg_log_softmax_row(logits) -> list:
    """``-log softmax(x)_c`` for each class of one row, as mpf values."""
    values = [float(v) for v in logits]
    if any(math.isnan(v) for v in values):
        return [mpmath.nan] * len(values)
    top = max(values)
    if math.isinf(top):
        raise ValueError("the oracle covers finite rows only")
    with mpmath.workprec(EXACT_BITS):
        gaps = [_mpf(top) - _mpf(v) for v in values]  # exact, all >= 0
    first_max = values.index(top)
    with mpmath.workprec(PRECISION_BITS):
        # log(sum_j exp(-g_j)) = log1p(sum over all but one maximum): 1 + t
        # would lose a t below 2**-PRECISION_BITS
        rest = mpmath.fsum(mpmath.exp(-g) for j, g in enumerate(gaps) if j != first_max)
        log_partition = mpmath.log1p(rest)
        return [+(g + log_partition) for g in gaps]


def softmax_cross_entropy_row(logits, labels) -> mpmath.mpf:
    per_class = neg_log_softmax_row(logits)
    with mpmath.workprec(PRECISION_BITS):
        return mpmath.fsum(_mpf(y) * c for y, c in zip(labels, per_class) if float(y) != 0.0)


def sparse_softmax_cross_entropy_row(logits, label: int) -> mpmath.mpf:
    return neg_log_softmax_row(logits)[int(label)]


def softplus(x) -> mpmath.mpf:
    """``log(1 + exp(x))`` for a finite float ``x``."""
    with mpmath.workprec(PRECISION_BITS):
        x = _mpf(x)
        return mpmath.log1p(mpmath.exp(x)) if x < 0 else x + mpmath.log1p(mpmath.exp(-x))


def sigmoid_cross_entropy(logit, label) -> mpmath.mpf:
    with mpmath.workprec(PRECISION_BITS):
        z = _mpf(label)
        total = mpmath.mpf(0)
        if z != 0:
            total += z * softplus(-float(logit))
        if z != 1:
            total += (1 - z) * softplus(float(logit))
        return total


def binary_cross_entropy(prob, label) -> mpmath.mpf:
    with mpmath.workprec(PRECISION_BITS):
        p = _mpf(prob)
        z = _mpf(label)
        total = mpmath.mpf(0)
        if z != 0:
            total -= z * (mpmath.log(p) if p > 0 else mpmath.mpf("-inf"))
        if z != 1:
            total -= (1 - z) * (mpmath.log1p(-p) if p < 1 else mpmath.mpf("-inf"))
        return total


def float64_ulps(value: float, exact) -> float:
    """The error of float64 ``value`` in units of the last place of ``exact``."""
    if isinstance(exact, mpmath.mpf) and mpmath.isnan(exact):
        return 0.0 if math.isnan(value) else math.inf
    if math.isnan(value):
        return math.inf
    with mpmath.workprec(PRECISION_BITS):
        exact_f = float(exact)
        if math.isinf(exact_f) or math.isinf(value):
            return 0.0 if value == exact_f else math.inf
        unit = float(np.spacing(np.float64(abs(exact_f))))
        # the unit of the exact value, not of its rounding: below a power of 2
        # the rounded value may sit in the next binade up
        if exact_f != 0 and abs(exact) < abs(mpmath.mpf(exact_f)):
            unit = min(unit, float(np.spacing(np.nextafter(np.float64(abs(exact_f)), 0))))
        return float(abs(_mpf(value) - exact) / _mpf(unit))
