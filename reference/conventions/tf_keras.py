"""Keras 2 (``tf-keras``, imported as ``tf_keras``) cross-entropy conventions.

Keras 2 computes what Keras 3 computes (``reference.conventions.keras``: the
clip to ``[epsilon, 1 - epsilon]``, the renormalisation, label smoothing, the
metrics' weighted mean), except for:

* ``binary_crossentropy`` (and the binary focal loss built on it) on
  probabilities adds ``epsilon()`` inside both logs after the clip:
  ``-(z log(p + eps) + (1 - z) log(1 - p + eps))`` (``tf_keras.backend
  .binary_crossentropy``). Keras 3 dropped the second epsilon
  (keras-team/keras#15249): at a clipped ``p = 1e-7`` with ``z = 1`` Keras 2
  gives ``-log(2e-7) = 15.4249`` where Keras 3 gives ``16.1181``.
* Loss objects know the reductions 'auto' (which is 'sum_over_batch_size'
  outside a distribution strategy), 'sum_over_batch_size', 'sum' and 'none';
  there is no 'mean' or 'mean_with_sample_weight', and None raises.
* Loss objects take no ``dtype``: they compute in the prediction's dtype.
  Metric objects cast both inputs to their ``dtype`` (floatx(), float32, unless
  given) before computing, where Keras 3 only casts the result.
"""

from __future__ import annotations

import functools

from reference.conventions import keras
from reference.conventions.keras import (  # noqa: F401  (the same as Keras 3)
    EPSILON, categorical_crossentropy, categorical_focal_crossentropy, categorical_focal_scale, clip_bounds,
    metric_mean, per_example, sparse_categorical_crossentropy, sparse_mask, squeeze_or_expand_inputs,
    values_shape)

REDUCTIONS = ("auto", "sum_over_batch_size", "sum", "none")
DEFAULT_REDUCTION = "auto"

binary_crossentropy = functools.partial(keras.binary_crossentropy, epsilon_in_log=True)
binary_focal_crossentropy = functools.partial(keras.binary_focal_crossentropy, epsilon_in_log=True)
binary_focal_scale = keras.binary_focal_scale


def _as_keras3(reduction):
    """Keras 2's reduction by the name Keras 3 gives the same computation."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid Reduction Key: {reduction}. Expected keys are \"{set(REDUCTIONS)}\"")
    return "sum_over_batch_size" if reduction == "auto" else reduction


def reduce_loss(values, sample_weight=None, reduction=DEFAULT_REDUCTION, mask=None, *, extended=False):
    """tf_keras.losses.Loss.__call__: compute_weighted_loss after apply_valid_mask."""
    return keras.reduce_loss(values, sample_weight, _as_keras3(reduction), mask, extended=extended)


def reduction_coefficients(values_shape, sample_weight=None, reduction=DEFAULT_REDUCTION, mask=None):
    return keras.reduction_coefficients(values_shape, sample_weight, _as_keras3(reduction), mask)


def gradient(kind: str, y_true, y_pred, coefficients, from_logits=False, **options):
    return keras.gradient(kind, y_true, y_pred, coefficients, from_logits,
                          epsilon_in_log=kind in ("binary", "binary_focal"), **options)
