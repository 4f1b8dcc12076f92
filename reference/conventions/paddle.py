"""``paddle.nn.functional`` cross-entropy conventions (PaddlePaddle 3.3), as documented and as its Python
wrappers compute them (``python/paddle/nn/functional/loss.py``).

Layouts mirror Paddle: the class axis is ``axis`` (default -1, the last one, unlike torch's 1); hard labels
have the input's shape without the class axis (or with it of size 1), soft labels the input's shape.

* ``cross_entropy``: every form is ``sum_c a_c (-log q_c)`` with ``q = softmax(x)`` along ``axis``
  (``use_softmax=True``) or ``q = x`` itself (``use_softmax=False``, where a ``-log 0`` is Paddle's
  "tolerable value" ``1e20``, not ``inf``).

  - hard labels: ``a = w[y] one_hot(y)``, 0 where ``y == ignore_index``;
  - soft labels (``soft_label=True``): ``a = (t . w) t``: the class weights are gathered by the label
    (``weight_gather = t @ w``) and multiply the whole row, where torch weighs each class's term;
  - ``label_smoothing`` e turns hard labels into soft ones, ``t = (1 - e) one_hot(y) + e / C``, and
    then weighs them as soft labels.

  ``reduction='mean'`` (documented): ``sum loss / N`` without weights, ``sum loss / sum_j weight_gather_j``
  with them. Where ``ignore_index >= 0`` on hard labels, ``N`` counts (and the weights sum over) the
  labels that are kept only, and a divisor of 0 becomes 1, so that a batch with every label ignored has
  a mean of 0 where torch has NaN; with the default ``ignore_index=-100`` ("a negative value means that
  no label value needs to be ignored") a label of -100 still gives a loss of 0, but counts in ``N``.
  A weighted divisor of 0 becomes 1 too. An empty batch has a mean of NaN.
* ``softmax_with_cross_entropy``: the unreduced hard- or soft-label loss, with the class axis kept
  (size 1).
* ``binary_cross_entropy``: ``-(z max(log p, -100) + (1 - z) max(log(1 - p), -100))`` times ``weight``,
  probabilities outside [0, 1] refused; 'mean' divides by numel.
* ``binary_cross_entropy_with_logits``: ``w ((1 - z) x + (1 + (pw - 1) z) softplus(-x))``, which is
  ``w (pw z softplus(-x) + (1 - z) softplus(x))``: torch's formula; 'mean' divides by numel.
* ``sigmoid_focal_loss``: ``alpha_t (1 - p_t)**gamma`` times the sigmoid cross-entropy, with
  ``p_t = z p + (1 - z)(1 - p)`` and ``alpha_t = z alpha + (1 - z)(1 - alpha)`` (RetinaNet's loss:
  Keras' binary focal loss from logits with class balancing, elementwise); its default reduction is
  'sum', and ``normalizer`` divides each element.
"""

from __future__ import annotations

import numpy as np

from reference import core
from reference.conventions import keras as ref_keras
from reference.conventions import torch as ref_torch

REDUCTIONS = ("none", "sum", "mean")
# what Paddle's cross-entropy kernel writes for -log(0) (its TolerableValue), instead of inf
TOLERABLE_VALUE = 1e20
DEFAULT_IGNORE_INDEX = -100


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"The value of 'reduction' should be 'sum', 'mean' or 'none', but received {reduction}")


def _class_view(values, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return core.to_work(values).reshape(shape)


def soft_targets(input, label, soft_label=False, label_smoothing=0.0, axis=-1) -> np.ndarray | None:
    """The soft label each row is weighed by (smoothed hard labels included), or None for hard labels."""
    x = np.asarray(input)
    axis = axis % x.ndim
    n_classes = x.shape[axis]
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    e = core.work(label_smoothing)
    if label_smoothing > 0:
        if soft_label:
            t = core.to_work(label)
        else:
            labels = np.asarray(label)
            if labels.ndim == x.ndim:
                labels = np.squeeze(labels, axis)
            labels = core.check_class_indices(labels, n_classes)
            t = np.moveaxis(np.eye(n_classes, dtype=core.WORK)[labels], -1, axis)
        return (1 - e) * t + e / n_classes
    return core.to_work(label) if soft_label else None


def _hard_labels(input, label, axis: int):
    labels = np.asarray(label)
    if labels.ndim == np.ndim(input):
        labels = np.squeeze(labels, axis)
    return labels


def cross_entropy_coefficients(input, label, weight=None, ignore_index=DEFAULT_IGNORE_INDEX, soft_label=False,
                               axis=-1, label_smoothing=0.0) -> np.ndarray:
    """a[..., c] of ``sum_c a_c (-log q_c)``, unreduced, in the input's layout."""
    x = np.asarray(input)
    axis = axis % x.ndim
    n_classes = x.shape[axis]
    if ignore_index > 0 and soft_label:
        raise ValueError("When soft_label == True, the value of 'ignore_index' should be '-100'")
    if weight is not None and np.shape(weight) != (n_classes,):
        raise ValueError(f"input's class_dimension({n_classes}) must equal to weight's class_dimension")
    w = _class_view(np.ones(n_classes) if weight is None else weight, x.ndim, axis)
    t = soft_targets(x, label, soft_label, label_smoothing, axis)
    if t is not None:
        gathered = np.sum(core.mul0(t, w), axis=axis, keepdims=True) if weight is not None else core.work(1)
        return gathered * t
    labels = _hard_labels(x, label, axis)
    kept = labels != ignore_index
    safe = core.check_class_indices(np.where(kept, labels, 0), n_classes)
    one_hot = _class_view(np.arange(n_classes), x.ndim, axis) == np.expand_dims(safe, axis)
    return core.mul0(w * one_hot, np.expand_dims(kept, axis).astype(core.WORK))


def neg_log_probabilities(input, axis=-1, use_softmax=True) -> np.ndarray:
    """``-log q`` in WORK precision: of softmax(x), or of x itself with -log 0 = 1e20."""
    if use_softmax:
        return core.neg_log_softmax(input, axis=axis, extended=True)
    p = core.to_work(input)
    with np.errstate(divide="ignore"):
        return np.minimum(-np.log(p), core.work(TOLERABLE_VALUE))


def cross_entropy_unreduced(input, label, weight=None, ignore_index=DEFAULT_IGNORE_INDEX, soft_label=False,
                            axis=-1, use_softmax=True, label_smoothing=0.0, *, extended=False):
    """The per-example loss (reduction='none'), the class axis removed."""
    a = cross_entropy_coefficients(input, label, weight, ignore_index, soft_label, axis, label_smoothing)
    terms = core.mul0(a, neg_log_probabilities(input, axis, use_softmax))
    return core.finish(np.sum(terms, axis=axis % np.ndim(input)), extended)


def cross_entropy_divisor(input, label, weight=None, ignore_index=DEFAULT_IGNORE_INDEX, soft_label=False,
                          axis=-1, label_smoothing=0.0):
    """What reduction='mean' divides the summed loss by."""
    x = np.asarray(input)
    axis = axis % x.ndim
    if x.size == 0:
        return core.work(np.nan)
    t = soft_targets(x, label, soft_label, label_smoothing, axis)
    hard = t is None
    if weight is None:
        if hard and ignore_index >= 0:
            count = core.work(np.count_nonzero(_hard_labels(x, label, axis) != ignore_index))
            return count + (count == 0)
        return core.work(x.size // x.shape[axis])
    a = cross_entropy_coefficients(x, label, weight, ignore_index if hard else DEFAULT_IGNORE_INDEX, soft_label,
                                   axis, label_smoothing)
    if hard:
        total = core.total(a)  # w[y] over the kept labels
    else:
        w = _class_view(weight, x.ndim, axis)
        total = core.total(np.sum(core.mul0(t, w), axis=axis))
    return total + (total == 0)


def cross_entropy(input, label, weight=None, ignore_index=DEFAULT_IGNORE_INDEX, reduction="mean",
                  soft_label=False, axis=-1, use_softmax=True, label_smoothing=0.0, *, extended=False):
    """paddle.nn.functional.cross_entropy."""
    _check_reduction(reduction)
    values = cross_entropy_unreduced(input, label, weight, ignore_index, soft_label, axis, use_softmax,
                                     label_smoothing, extended=True)
    divisor = cross_entropy_divisor(input, label, weight, ignore_index, soft_label, axis, label_smoothing)
    return ref_torch.reduce(values, reduction, divisor, extended=extended)


def softmax_with_cross_entropy(logits, label, soft_label=False, ignore_index=DEFAULT_IGNORE_INDEX, axis=-1,
                               *, extended=False):
    """paddle.nn.functional.softmax_with_cross_entropy (the class axis kept, of size 1)."""
    values = cross_entropy_unreduced(logits, label, None, ignore_index, soft_label, axis, extended=True)
    return core.finish(np.expand_dims(values, axis % np.ndim(logits)), extended)


def cross_entropy_gradient(input, label, weight=None, ignore_index=DEFAULT_IGNORE_INDEX, reduction="mean",
                           soft_label=False, axis=-1, use_softmax=True, label_smoothing=0.0):
    """(gradient, scale) of cross_entropy by its input (reference.gradients)."""
    from reference import gradients

    _check_reduction(reduction)
    a = cross_entropy_coefficients(input, label, weight, ignore_index, soft_label, axis, label_smoothing)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            a = core.mul0(a, 1 / cross_entropy_divisor(input, label, weight, ignore_index, soft_label, axis,
                                                       label_smoothing))
    if use_softmax:
        return gradients.softmax_family(input, a, axis=axis)
    p = core.to_work(input)
    with np.errstate(divide="ignore"):
        active = -np.log(p) < TOLERABLE_VALUE  # the capped -log 0 is flat
    return gradients.log_pair(p, a, core.work(0), active, False)


def reduce_scales(values, input, label, weight=None, ignore_index=DEFAULT_IGNORE_INDEX, reduction="mean",
                  soft_label=False, axis=-1, label_smoothing=0.0):
    """Per-example scales (or values) reduced as cross_entropy reduces its loss (for the tolerance model)."""
    bound = core.work(1) if weight is None else max(core.work(1), np.max(np.abs(core.to_work(weight))))
    divisor = cross_entropy_divisor(input, label, weight, ignore_index, soft_label, axis, label_smoothing)
    return ref_torch.reduce(core.to_work(values) * bound, reduction, divisor, extended=True)


# --- the elementwise losses: torch's formulas and reductions ------------------------------------------------

binary_cross_entropy = ref_torch.binary_cross_entropy
binary_cross_entropy_gradient = ref_torch.binary_cross_entropy_gradient
binary_cross_entropy_with_logits = ref_torch.binary_cross_entropy_with_logits
binary_cross_entropy_with_logits_gradient = ref_torch.binary_cross_entropy_with_logits_gradient
reduce_elementwise_scales = ref_torch.reduce_elementwise_scales


def sigmoid_focal_loss_unreduced(logit, label, alpha=0.25, gamma=2.0) -> np.ndarray:
    """``alpha_t (1 - p_t)**gamma`` times the sigmoid cross-entropy, elementwise, in WORK precision."""
    return ref_keras.binary_focal_crossentropy_elementwise(label, logit, apply_class_balancing=True, alpha=alpha,
                                                           gamma=gamma, from_logits=True)


def sigmoid_focal_loss(logit, label, alpha=0.25, gamma=2.0, reduction="sum", *, extended=False):
    """paddle.nn.functional.sigmoid_focal_loss (no normalizer)."""
    _check_reduction(reduction)
    values = sigmoid_focal_loss_unreduced(logit, label, alpha, gamma)
    return ref_torch.reduce(values, reduction, core.work(values.size) if values.size else core.work(np.nan),
                            extended=extended)


def sigmoid_focal_scale(logit, label, alpha=0.25, gamma=2.0) -> np.ndarray:
    """The focal loss's rounding scale, elementwise (Keras' binary focal scale, with balancing)."""
    return ref_keras.binary_focal_scale(label, logit, from_logits=True, apply_class_balancing=True, alpha=alpha,
                                        gamma=gamma)
