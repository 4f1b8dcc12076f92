"""The exact mathematics of cross-entropy, computed to better than float64.

Every function here works in ``WORK`` precision (NumPy's ``longdouble``: the
80-bit x87 extended format on x86-64, 64 significand bits, 11 more than
float64), with formulas that never cancel for labels in [0, 1]:

* softmax cross-entropy per class is ``(m - x_c) + log1p(t)`` with ``m`` the
  row maximum and ``t`` the sum of ``exp(x_j - m)`` over every class but one
  maximum, so a loss of 3.7e-44 from logits [100, 0] survives;
* sigmoid cross-entropy is ``z * softplus(-x) + (1 - z) * softplus(x)``, two
  non-negative terms, with ``softplus(x) = max(x, 0) + log1p(exp(-|x|))``;
* binary cross-entropy on probabilities is ``-(z log p + (1 - z) log1p(-p))``.

The extended exponent range (to 1e4932) means nothing here overflows for
float64 inputs, and the results round once, to float64, at the very end.
``tests/test_reference_oracle.py`` measures the results against mpmath.

Special values (the documented semantics, also in the README):

* NaN anywhere in a row's inputs gives NaN for that row (NaN in, NaN out).
* A label of exactly 0 takes no part in the loss (``0 * log 0 = 0``), so a
  ``-inf`` logit or a probability of exactly 0 or 1 costs nothing where its
  label is 0, and costs ``+inf`` where its label is positive.
* softmax with exactly one ``+inf`` logit in a row is the one-hot distribution
  on it (its limit); two or more ``+inf``, or a row of only ``-inf``, have no
  limit and give NaN.
* sigmoid with ``x = +inf`` or ``-inf`` takes the limit: ``softplus(+inf) =
  inf`` and ``softplus(-inf) = 0``.
* Probabilities outside [0, 1] give NaN (the logarithm of a negative number).
"""

from __future__ import annotations

import numpy as np

WORK = np.longdouble
# Block size (elements) for row-wise work: bounds the extended-precision
# temporaries to a few tens of MiB whatever the input's size.
BLOCK_ELEMENTS = 1 << 20


def to_work(values) -> np.ndarray:
    """Converts any real input (bool, int, float16/bfloat16/32/64) exactly."""
    array = np.asarray(values)
    if array.dtype == WORK:
        return array
    if array.dtype.kind in "biu":
        return array.astype(WORK)
    # every float format in use embeds exactly in float64, and float64 in WORK
    return array.astype(np.float64).astype(WORK)


def finish(values: np.ndarray, extended: bool) -> np.ndarray:
    """Rounds a WORK result once, to float64, unless the caller wants it all."""
    values = np.asarray(values, dtype=WORK)
    if extended:
        return values
    with np.errstate(over="ignore"):  # beyond float64's range, inf is the rounding
        return values.astype(np.float64)


def mul0(label: np.ndarray, term: np.ndarray) -> np.ndarray:
    """``label * term`` where a zero label contributes exactly 0, even next to
    an infinite term; a NaN term still propagates."""
    with np.errstate(invalid="ignore", over="ignore"):
        product = label * term
    return np.where((label == 0) & ~np.isnan(term), WORK(0), product)


def row_blocks(n_rows: int, n_cols: int):
    """Slices of rows whose blocks hold at most BLOCK_ELEMENTS elements."""
    step = max(1, BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _neg_log_softmax_rows(x: np.ndarray) -> np.ndarray:
    """``-log softmax(x)`` along the last axis of a 2-D WORK array."""
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        m_safe = np.where(np.isfinite(m), m, WORK(0))
        d = m_safe - x
        e = np.exp(-d)
        # every class but one maximum: log(sum exp(x - m)) = log1p(t) exactly
        first_max = np.argmax(np.where(np.isnan(x), -np.inf, x), axis=-1)
        np.put_along_axis(e, first_max[:, None], WORK(0), axis=-1)
        t = np.sum(e, axis=-1, keepdims=True)
        result = d + np.log1p(t)
        # limits: one +inf logit is the one-hot distribution; more have none
        n_pos_inf = np.sum(x == np.inf, axis=-1, keepdims=True)
        one_hot_limit = np.where(x == np.inf, WORK(0), WORK(np.inf))
        result = np.where(m == np.inf, np.where(n_pos_inf == 1, one_hot_limit, WORK(np.nan)), result)
        result = np.where(m == -np.inf, WORK(np.nan), result)
        nan_row = np.any(np.isnan(x), axis=-1, keepdims=True)
        result = np.where(nan_row, WORK(np.nan), result)
    return result


def _move_class_axis_last(values: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(values, axis, -1)


def neg_log_softmax(logits, axis: int = -1, *, extended: bool = False) -> np.ndarray:
    """``-log softmax(logits)`` along ``axis``, elementwise (the per-class loss)."""
    x = _move_class_axis_last(to_work(logits), axis)
    flat = x.reshape(-1, x.shape[-1]) if x.size else x.reshape(-1, max(1, x.shape[-1]))
    out = np.empty(flat.shape, dtype=WORK)
    for rows in row_blocks(flat.shape[0], flat.shape[1]):
        out[rows] = _neg_log_softmax_rows(flat[rows])
    return finish(np.moveaxis(out.reshape(x.shape), -1, axis), extended)


def softmax_cross_entropy(logits, labels, axis: int = -1, *, extended: bool = False) -> np.ndarray:
    """Softmax cross-entropy with soft labels: ``-sum_c y_c log softmax(x)_c``.

    ``labels`` has the shape of ``logits``; the result drops ``axis``.
    """
    x = _move_class_axis_last(to_work(logits), axis)
    y = _move_class_axis_last(to_work(labels), axis)
    if x.shape != y.shape:
        raise ValueError(f"labels shape {np.shape(labels)} differs from logits shape {np.shape(logits)}")
    n_classes = x.shape[-1]
    flat_x = x.reshape(-1, n_classes)
    flat_y = y.reshape(-1, n_classes)
    out = np.empty(flat_x.shape[0], dtype=WORK)
    for rows in row_blocks(flat_x.shape[0], n_classes):
        per_class = _neg_log_softmax_rows(flat_x[rows])
        out[rows] = np.sum(mul0(flat_y[rows], per_class), axis=-1)
    return finish(out.reshape(x.shape[:-1]), extended)


def check_class_indices(labels, n_classes: int) -> np.ndarray:
    """Integer class indices in [0, n_classes); anything else is a ValueError."""
    array = np.asarray(labels)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError("sparse labels must be whole numbers")
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"sparse labels must be integers, got {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(f"sparse labels must lie in [0, {n_classes}), got [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


def sparse_softmax_cross_entropy(logits, labels, axis: int = -1, *, extended: bool = False) -> np.ndarray:
    """Softmax cross-entropy with integer labels: ``-log softmax(x)[label]``.

    ``labels`` has the shape of ``logits`` without ``axis``.
    """
    x = _move_class_axis_last(to_work(logits), axis)
    n_classes = x.shape[-1]
    indices = check_class_indices(labels, n_classes)
    if indices.shape != x.shape[:-1]:
        raise ValueError(f"labels shape {indices.shape} must be logits shape {np.shape(logits)} without axis {axis}")
    flat_x = x.reshape(-1, n_classes)
    flat_i = indices.reshape(-1)
    out = np.empty(flat_x.shape[0], dtype=WORK)
    for rows in row_blocks(flat_x.shape[0], n_classes):
        per_class = _neg_log_softmax_rows(flat_x[rows])
        out[rows] = np.take_along_axis(per_class, flat_i[rows, None], axis=-1)[:, 0]
    return finish(out.reshape(x.shape[:-1]), extended)


def softplus(x) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow or cancellation, in WORK precision."""
    x = to_work(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.maximum(x, WORK(0)) + np.log1p(np.exp(-np.abs(x)))


def sigmoid_cross_entropy(logits, labels, *, extended: bool = False) -> np.ndarray:
    """Sigmoid cross-entropy on logits, elementwise:
    ``-(z log sigmoid(x) + (1 - z) log(1 - sigmoid(x)))``."""
    x = to_work(logits)
    z = to_work(labels)
    if x.shape != z.shape:
        raise ValueError(f"labels shape {z.shape} differs from logits shape {x.shape}")
    return finish(mul0(z, softplus(-x)) + mul0(WORK(1) - z, softplus(x)), extended)


def binary_cross_entropy(probs, labels, *, extended: bool = False) -> np.ndarray:
    """Binary cross-entropy on probabilities, elementwise, exact (no clipping):
    ``-(z log p + (1 - z) log(1 - p))``."""
    p = to_work(probs)
    z = to_work(labels)
    if p.shape != z.shape:
        raise ValueError(f"labels shape {z.shape} differs from probabilities shape {p.shape}")
    return finish(-(mul0(z, _log(p)) + mul0(WORK(1) - z, _log1p(-p))), extended)


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p)


def _log1p(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(p)


def log_probabilities(probs) -> np.ndarray:
    """``log p`` in WORK precision, ``-inf`` at 0 and NaN below it."""
    return _log(to_work(probs))


def log1m_probabilities(probs) -> np.ndarray:
    """``log(1 - p)`` in WORK precision, exact for small ``p``."""
    return _log1p(-to_work(probs))
