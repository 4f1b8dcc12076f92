"""Exact gradients of the losses, in extended precision, with their error scale.

Every loss in scope is linear in a few per-element terms once its labels and
options are fixed, so its gradient has a closed form in the coefficients of
those terms (which a framework convention supplies):

* softmax families: ``L = sum_c a_c (-log softmax(x)_c)``, so
  ``dL/dx = A softmax(x) - a`` with ``A = sum_c a_c`` (the row sum);
* sigmoid: ``L = alpha softplus(-x) + beta softplus(x)``, so
  ``dL/dx = -alpha sigmoid(-x) + beta sigmoid(x) = (alpha + beta) sigmoid(x) - alpha``;
* binary on probabilities: ``L = -(alpha log p + beta log(1 - p))``, so
  ``dL/dp = -alpha / p + beta / (1 - p)``, a term dropping out where the
  convention clips or clamps it (its derivative there is 0);
* categorical on probabilities (Keras): ``L = -sum_c a_c log(q_c)`` with
  ``q = p / sum(p)`` (then clipped), so ``dL/dp_j = -a_j / p_j + (sum_c a_c) / sum(p)``
  over the classes the clip leaves alone;
* sparse categorical on probabilities (Keras): ``L = b (log sum_c clip(p_c) - log clip(p_y))``.

Each function returns ``(gradient, scale)``: the scale is the sum of the
absolute values of the terms of the standard formula (``softmax(x) - y``,
``sigmoid(x) - z``), the size of what a framework rounds on the way, for the
tolerance model.
"""

from __future__ import annotations

import numpy as np

from reference import core


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def softmax_family(logits, coefficients, axis=-1):
    """``A softmax(x) - a`` along ``axis``, and its scale
    ``|A| p (1 + |log p| + ceil(log2 n)) + |a|``: ``p`` comes from an exponential
    of a rounded ``x - max x`` (or of a rounded ``log p``), so its relative error
    grows with ``|log p|``; and ``A = sum a`` is a sum of the row's ``n`` nonzero
    coefficients (a distribution over a 32000-token vocabulary: n = 32000), which
    a framework rounds ``ceil(log2 n)`` times in a pairwise sum (0 for one-hot)."""
    neg_log_p = core.neg_log_softmax(logits, axis=axis, extended=True)
    p = np.exp(-neg_log_p)
    a = core.to_work(coefficients)
    total = np.sum(a, axis=axis, keepdims=True)
    nonzero = np.maximum(np.sum(a != 0, axis=axis, keepdims=True), 1)
    with np.errstate(invalid="ignore"):
        growth = 1 + np.where(np.isfinite(neg_log_p), neg_log_p, core.work(0)) + np.ceil(np.log2(nonzero))
        return total * p - a, np.abs(total) * p * growth + np.abs(a)


def softmax_labels(logits, axis=-1):
    """d/dy of ``-sum_c y_c log softmax(x)_c``: ``-log softmax(x)``, with the scale
    of the shifted log-sum-exp that computes it, ``(max x - x_c) + 1``: the
    distance from the row maximum and the log of a partition sum of at least 1
    (a common offset of the logits never widens it)."""
    neg_log_p = core.neg_log_softmax(logits, axis=axis, extended=True)
    x = core.to_work(logits)
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(finite, x, core.work(-np.inf)), axis=axis, keepdims=True)
        distance = np.where(finite & np.isfinite(top), top - x, core.work(0))
    return neg_log_p, distance + 1


def softplus_pair(logits, alpha, beta):
    """Gradient of ``alpha softplus(-x) + beta softplus(x)``, which the standard
    form computes as ``(alpha + beta) sigmoid(x) - alpha`` (sigmoid(x) - z for
    plain labels): its scale is ``|alpha + beta| sigmoid(x) + |alpha|``."""
    x = core.to_work(logits)
    alpha, beta = core.to_work(alpha), core.to_work(beta)
    positive, negative = _sigmoid(x), _sigmoid(-x)
    grad = core.mul0(beta, positive) - core.mul0(alpha, negative)
    return grad, np.abs(core.mul0(alpha + beta, positive)) + np.abs(alpha)


def log_pair(probs, alpha, beta, active_positive=True, active_negative=True, shift=0):
    """Gradient of ``-(alpha log(p + s) + beta log(1 - p + s))`` where the terms are
    active (``s`` is Keras 2's epsilon inside the logs, else 0); its scale counts
    both label weights against both terms, since a framework forms ``1 - z`` (and
    ``1 - p``) by subtracting at the size of 1."""
    p = core.to_work(probs)
    s = core.to_work(shift)
    alpha = np.where(active_positive, core.to_work(alpha), core.work(0))
    beta = np.where(active_negative, core.to_work(beta), core.work(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        first = core.mul0(alpha, 1 / (p + s))
        second = core.mul0(beta, 1 / (1 - p + s))
        size = np.abs(alpha) + np.abs(beta)
        scale = core.mul0(np.where(active_positive, size, core.work(0)), 1 / (p + s)) + core.mul0(
            np.where(active_negative, size, core.work(0)), 1 / (1 - p + s))
    return second - first, scale


def categorical_probabilities(probs, coefficients, active, axis=-1):
    """Gradient of ``-sum_c a_c log(p_c / sum p)`` over the active (unclipped) classes."""
    p = core.to_work(probs)
    a = np.where(active, core.to_work(coefficients), core.work(0))
    total_p = np.sum(p, axis=axis, keepdims=True)
    total_a = np.sum(a, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = core.mul0(a, 1 / p)
        shared = total_a / total_p
    return shared - own, np.abs(shared) + np.abs(own)


def sparse_categorical_probabilities(clipped, labels, weights, active, axis=-1):
    """Gradient of ``b (log sum_c clip(p_c) - log clip(p_y))`` along ``axis``;
    ``clipped`` holds clip(p), ``active`` marks the entries the clip left alone."""
    q = np.moveaxis(core.to_work(clipped), axis, -1)
    on = np.moveaxis(np.asarray(active), axis, -1)
    b = core.to_work(weights)[..., None]
    target = np.arange(q.shape[-1]) == np.asarray(labels)[..., None]
    total = np.sum(q, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shared = np.where(on, b / total, core.work(0))
        own = np.where(target & on, b / q, core.work(0))
        # the softmax of log(q) that frameworks differentiate exponentiates a
        # rounded log: relative error grows with |log(q / total)|
        growth = 1 + np.abs(np.log(q / total))
    grad, scale = shared - own, np.abs(shared) * growth + np.abs(own)
    return np.moveaxis(grad, -1, axis), np.moveaxis(scale, -1, axis)


def _richardson(at, h):
    """Central differences at steps ``h`` and ``h / 2``, with one Richardson step."""
    with np.errstate(invalid="ignore"):  # at an infinite input the quotient is NaN: callers decide
        coarse = (at(1) - at(-1)) / (2 * h)
        fine = (at(0.5) - at(-0.5)) / h
        return (4 * fine - coarse) / 3


def _step(x, step):
    # relative to the value: a probability of 1e-3 needs a step far below it
    return core.work(step) * np.where(x != 0, np.abs(x), core.work(1))


def numeric_separable(function, values, axis=None, *, step=1e-3):
    """What :func:`numeric` gives, for a function whose outputs each depend on one row of the input along
    ``axis`` only (its output is the input's shape without that axis), or on one element only (``axis=None``,
    the output shaped as the input): the same central differences and Richardson step at the same steps, taken
    for every row at once, one class (or, elementwise, every element) at a time. A row's difference is its
    own output's, not the total's, so an infinite or NaN loss in another row does not reach it. Falls back to
    :func:`numeric` of the sum where the output's shape says the function is not of that form."""
    x = core.to_work(values)
    if x.ndim == 0 or np.shape(function(x)) != (x.shape if axis is None else
                                                 x.shape[:axis % x.ndim] + x.shape[axis % x.ndim + 1:]):
        return numeric(function, values, step=step)
    h = _step(x, step)
    if axis is None:
        return _richardson(lambda factor: core.to_work(function(x + factor * h)), h)
    axis = axis % x.ndim
    grad = np.empty(x.shape, dtype=core.WORK)
    for k in range(x.shape[axis]):
        index = (slice(None),) * axis + (k,)

        def at(factor):
            moved = x.copy()
            moved[index] += factor * h[index]
            return core.to_work(function(moved))

        grad[index] = _richardson(at, h[index])
    return grad


def numeric(function, values, *, step=1e-3):
    """d sum(function(x)) / dx by central differences with one Richardson step,
    in extended precision: accurate to about 1e-13 relative, for conventions
    without a closed form here (focal losses). Not fine enough for float64."""
    x = core.to_work(values)
    h = _step(x, step)
    grad = np.empty(x.shape, dtype=core.WORK)
    flat, flat_h = x.reshape(-1), h.reshape(-1)
    for index in range(flat.size):
        def at(factor):
            moved = flat.copy()
            moved[index] += factor * flat_h[index]
            return np.sum(core.to_work(function(moved.reshape(x.shape))))

        grad.reshape(-1)[index] = _richardson(at, flat_h[index])
    return grad
