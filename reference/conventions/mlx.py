"""``mlx.nn.losses`` cross-entropy conventions (MLX 0.32), as documented and as its Python code computes them
(``python/mlx/nn/losses.py``).

Layouts mirror MLX: the class axis is ``axis`` (default -1, the last one); class-index targets have the
logits' shape without it, probability targets the logits' shape (MLX tells them apart by their rank).

* ``cross_entropy(logits, targets, weights=None, axis=-1, label_smoothing=0.0, reduction='none')``: the
  cross-entropy ``-sum_c a_c log softmax(x)_c`` against ``a = (1 - e) t + e / C``, with ``t`` the one-hot
  row of a class index or the probability row. MLX computes it as ``logsumexp(x) - sum_c a_c x_c`` (its
  code: ``logsumexp_logits - score``, with ``mean(x)`` for the smoothed part), which is that cross-entropy
  when ``a`` sums to 1, as probabilities and one-hot rows do. ``label_smoothing`` must lie in [0, 1).
  ``weights`` (documented: "weights for each target") has the loss's shape and multiplies each loss;
  ``reduction`` 'none' (the default), 'sum', or 'mean', the mean over every element whatever the weights.
  Its docstring: "The CPU reduces in the dtype of the logits, so upcast them to get the same accuracy":
  half-precision logits are computed in half precision throughout.
* ``binary_cross_entropy(inputs, targets, weights=None, with_logits=True, reduction='mean')``: from logits
  (the default), ``log(1 + exp(x)) - x z`` (``logaddexp(0, x) - x z``), which is
  ``z softplus(-x) + (1 - z) softplus(x)``; from probabilities (``with_logits=False``),
  ``-(z max(log p, -100) + (1 - z) max(log(1 - p), -100))`` (documented: "clips the input probabilities
  (in log-space) to a minimum value of -100", torch's clamp). ``weights`` has the inputs' shape and
  multiplies each element; ``reduction`` as above, 'mean' by default.
"""

from __future__ import annotations

import numpy as np

from reference import core
from reference.conventions import torch as ref_torch

REDUCTIONS = ("none", "mean", "sum")
LOG_CLAMP = ref_torch.LOG_CLAMP


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid reduction. Must be one of {REDUCTIONS}.")


def reduce(values, reduction: str = "none", *, extended=False):
    """``_reduce`` of mlx.nn.losses: 'mean' divides by the number of elements (NaN for none), whatever the
    weights (torch's unweighted reduction)."""
    _check_reduction(reduction)
    return ref_torch.reduce(values, reduction, extended=extended)


def _weighted(loss, weights):
    if weights is None:
        return loss
    if np.shape(weights) != np.shape(loss):
        raise ValueError(f"Weights with shape {np.shape(weights)} is not the same as output loss with shape "
                         f"{np.shape(loss)}.")
    return loss * core.to_work(weights)


def _check_class_targets(x: np.ndarray, t: np.ndarray, axis: int) -> None:
    axis = axis % x.ndim
    if t.shape != x.shape[:axis] + x.shape[axis + 1:]:
        raise ValueError(f"Targets shape {t.shape} does not match logits shape {x.shape}.")


def cross_entropy_coefficients(logits, targets, axis=-1, label_smoothing=0.0) -> np.ndarray:
    """a[..., c] of ``-sum_c a_c log softmax(x)_c``: the smoothed one-hot or probability row."""
    x, t = np.asarray(logits), np.asarray(targets)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"Label smoothing must be in [0, 1), got {label_smoothing}.")
    axis = axis % x.ndim
    n_classes = x.shape[axis]
    if t.ndim == x.ndim:  # probabilities
        if t.shape != x.shape:
            raise ValueError(f"Targets shape {t.shape} does not match logits shape {x.shape}.")
        rows = core.to_work(t)
    else:
        _check_class_targets(x, t, axis)
        labels = core.check_class_indices(t, n_classes)
        rows = np.moveaxis(np.eye(n_classes, dtype=core.WORK)[labels], -1, axis)
    e = core.work(label_smoothing)
    return rows if label_smoothing == 0 else (1 - e) * rows + e / n_classes


def cross_entropy_unreduced(logits, targets, weights=None, axis=-1, label_smoothing=0.0, *, extended=False):
    """The per-target loss of ``cross_entropy`` (its default, reduction='none'), weighted."""
    x = np.asarray(logits)
    if label_smoothing == 0 and np.ndim(targets) < x.ndim:  # a class index: no one-hot row needed
        _check_class_targets(x, np.asarray(targets), axis)
        loss = core.sparse_softmax_cross_entropy(x, targets, axis=axis, extended=True)
    else:
        a = cross_entropy_coefficients(logits, targets, axis, label_smoothing)
        loss = np.sum(core.mul0(a, core.neg_log_softmax(x, axis=axis, extended=True)), axis=axis)
    return core.finish(_weighted(loss, weights), extended)


def cross_entropy(logits, targets, weights=None, axis=-1, label_smoothing=0.0, reduction="none", *,
                  extended=False):
    """mlx.nn.losses.cross_entropy."""
    _check_reduction(reduction)
    values = cross_entropy_unreduced(logits, targets, weights, axis, label_smoothing, extended=True)
    return reduce(values, reduction, extended=extended)


def cross_entropy_gradient(logits, targets, weights=None, axis=-1, label_smoothing=0.0, reduction="none"):
    """(gradient, scale) of cross_entropy by its logits (reference.gradients.softmax_family)."""
    from reference import gradients

    a = cross_entropy_coefficients(logits, targets, axis, label_smoothing)
    targets_count = np.size(a) // np.shape(a)[axis]
    factor = core.work(1) if reduction != "mean" else core.work(1) / core.work(max(targets_count, 1))
    if weights is not None:
        factor = factor * np.expand_dims(core.to_work(weights), axis)
    return gradients.softmax_family(logits, core.mul0(a, factor), axis=axis)


def binary_cross_entropy_unreduced(inputs, targets, weights=None, with_logits=True, *, extended=False):
    """The per-element loss of ``binary_cross_entropy``, weighted."""
    if np.shape(inputs) != np.shape(targets):
        raise ValueError(f"Inputs shape {np.shape(inputs)} does not match targets shape {np.shape(targets)}.")
    if with_logits:
        loss = core.sigmoid_cross_entropy(inputs, targets, extended=True)
    else:
        p, z = core.to_work(inputs), core.to_work(targets)
        clamp = core.work(LOG_CLAMP)
        with np.errstate(invalid="ignore"):
            loss = -(z * np.maximum(core.log_probabilities(p), clamp)
                     + (core.work(1) - z) * np.maximum(core.log1m_probabilities(p), clamp))
    return core.finish(_weighted(loss, weights), extended)


def binary_cross_entropy(inputs, targets, weights=None, with_logits=True, reduction="mean", *, extended=False):
    """mlx.nn.losses.binary_cross_entropy."""
    _check_reduction(reduction)
    values = binary_cross_entropy_unreduced(inputs, targets, weights, with_logits, extended=True)
    return reduce(values, reduction, extended=extended)


def binary_cross_entropy_gradient(inputs, targets, weights=None, with_logits=True, reduction="mean"):
    """(gradient, scale) of binary_cross_entropy by its inputs: torch's, whose formulas, elementwise weights and
    mean over every element MLX shares (flat where a log term is clamped)."""
    if with_logits:
        return ref_torch.binary_cross_entropy_with_logits_gradient(inputs, targets, weights, reduction)
    return ref_torch.binary_cross_entropy_gradient(inputs, targets, weights, reduction)


def reduce_scales(values, weights=None, reduction="none"):
    """Each element's rounding scale (or value) carried through the weights and the reduction (for the
    tolerance model): torch's for its elementwise losses, whose unweighted mean MLX shares."""
    _check_reduction(reduction)
    return ref_torch.reduce_elementwise_scales(values, weights, reduction=reduction)
