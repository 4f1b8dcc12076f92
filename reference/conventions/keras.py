"""Keras 3 (``tf.keras``) cross-entropy conventions, as documented and implemented.

What sets Keras apart from the exact losses:

* On probabilities (``from_logits=False``) predictions are clipped to
  ``[epsilon, 1 - epsilon]`` (``keras.backend.epsilon()``, 1e-7), with both
  bounds rounded to the prediction's dtype first, as ``tf.clip_by_value`` does
  with Python scalars. In float16 and bfloat16 ``1 - 1e-7`` rounds to 1, so the
  upper clip does nothing there.
* ``categorical_crossentropy`` on probabilities first renormalises each
  prediction by its sum along ``axis``, then clips.
* ``sparse_categorical_crossentropy`` on probabilities clips, takes the log, and
  hands it to the sparse softmax cross-entropy as logits: the same as
  renormalising after the clip.
* ``binary_crossentropy`` returns the mean over ``axis`` (the last by default)
  of the elementwise loss.
* ``label_smoothing`` e: categorical ``y * (1 - e) + e / C``; binary
  ``y * (1 - e) + e / 2``.
* Loss objects reduce with ``reduction``: 'sum_over_batch_size' and 'mean'
  divide the (sample-weighted) sum by the number of loss values,
  'mean_with_sample_weight' by the sum of the sample weights, 'sum' sums,
  None / 'none' return the values; a zero divisor gives 0 (``divide_no_nan``).
  ``ignore_class`` masks values out and, for the mean reductions, divides by
  the number of values kept.
* Metric objects average the per-sample values (the loss averaged over every
  axis but the first), weighted by ``sample_weight``, over all ``update_state``
  calls since the last reset.
"""

from __future__ import annotations

import numpy as np

from reference import core

EPSILON = 1e-7  # keras.backend.epsilon()
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def clip_bounds(dtype, epsilon: float = EPSILON) -> tuple[np.ndarray, np.ndarray]:
    """``(epsilon, 1 - epsilon)`` rounded to ``dtype``, as Keras clips."""
    if not _is_float(dtype):
        dtype = np.float32  # Keras converts other inputs to floatx() first
    low = np.asarray(epsilon, dtype=np.float64).astype(dtype)
    high = np.asarray(1.0 - epsilon, dtype=np.float64).astype(dtype)
    return core.to_work(low), core.to_work(high)


def _is_float(dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype.name == "bfloat16"


def clip(probs, epsilon: float = EPSILON) -> np.ndarray:
    """Keras' clip of probabilities, in WORK precision, bounds in the input dtype."""
    low, high = clip_bounds(np.asarray(probs).dtype, epsilon)
    return core.clip(core.to_work(probs), low, high)


def _smooth_categorical(y, label_smoothing, axis):
    if not label_smoothing:
        return y
    n_classes = y.shape[axis]
    return y * (1 - core.work(label_smoothing)) + core.work(label_smoothing) / n_classes


def _smooth_binary(z, label_smoothing):
    if not label_smoothing:
        return z
    return z * (1 - core.work(label_smoothing)) + core.work(0.5) * core.work(label_smoothing)


def _keep_dtype_for_clip(labels, predictions):
    """Labels in WORK precision; predictions keep their dtype for the clip."""
    return core.to_work(labels), np.asarray(predictions)


def log_shift(dtype, epsilon: float = EPSILON, epsilon_in_log: bool = False):
    """What Keras 2 adds inside both logs of the binary loss on probabilities
    (``log(p + epsilon())``, ``log(1 - p + epsilon())``, after the clip): epsilon
    rounded to the prediction's dtype, as a Python float added to a tensor is;
    0 for Keras 3, which takes the logs of the clipped ``p`` itself."""
    if not epsilon_in_log:
        return core.work(0)
    if not _is_float(dtype):
        dtype = np.float32
    return core.to_work(np.asarray(epsilon, dtype=np.float64).astype(dtype))


def _log_complement_plus(q, shift):
    """log(1 - q + s): log1p(s - q) for a small q, and for q above 1/2 the log of
    (1 - q) + s, whose 1 - q is exact (Sterbenz), so no rounding at the size of 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0.5, np.log((1 - q) + shift), np.log1p(shift - q))


def _binary_on_clipped(clipped, z, shift):
    """-(z log(q + s) + (1 - z) log(1 - q + s)) of the clipped q, exactly."""
    if not shift:
        return core.binary_cross_entropy(clipped, z, extended=True)
    return -(core.mul0(z, np.log(clipped + shift)) + core.mul0(1 - z, _log_complement_plus(clipped, shift)))


def binary_crossentropy_elementwise(y_true, y_pred, from_logits=False, label_smoothing=0.0, epsilon=EPSILON,
                                    epsilon_in_log=False):
    """The elementwise loss before Keras' mean over ``axis``, in WORK precision."""
    z, p = _keep_dtype_for_clip(y_true, y_pred)
    z = _smooth_binary(z, label_smoothing)
    if from_logits:
        return core.sigmoid_cross_entropy(p, z, extended=True)
    return _binary_on_clipped(clip(p, epsilon), z, log_shift(p.dtype, epsilon, epsilon_in_log))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, *,
                        epsilon=EPSILON, epsilon_in_log=False, extended=False):
    """keras.losses.binary_crossentropy: mean over ``axis`` of the elementwise loss."""
    values = binary_crossentropy_elementwise(y_true, y_pred, from_logits, label_smoothing, epsilon, epsilon_in_log)
    return core.finish(np.mean(values, axis=axis), extended)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, *,
                             epsilon=EPSILON, extended=False):
    """keras.losses.categorical_crossentropy."""
    y, p = _keep_dtype_for_clip(y_true, y_pred)
    y = _smooth_categorical(y, label_smoothing, axis)
    if from_logits:
        return core.softmax_cross_entropy(p, y, axis=axis, extended=extended)
    with np.errstate(invalid="ignore", divide="ignore"):
        renormalised = core.to_work(p) / np.sum(core.to_work(p), axis=axis, keepdims=True)
    low, high = clip_bounds(p.dtype, epsilon)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_q = np.log(core.clip(renormalised, low, high))
    return core.finish(-np.sum(core.mul0(y, log_q), axis=axis), extended)


def squeeze_sparse_labels(y_true, y_pred, axis=-1) -> np.ndarray:
    """Keras drops a trailing size-1 label axis: (N, 1) labels mean (N,)."""
    y = np.asarray(y_true)
    if y.ndim == np.ndim(y_pred) and y.shape[axis] == 1:
        y = np.squeeze(y, axis=axis)
    return y


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1, *,
                                    epsilon=EPSILON, extended=False):
    """keras.losses.sparse_categorical_crossentropy (0 where the label is ``ignore_class``)."""
    labels = squeeze_sparse_labels(y_true, y_pred, axis)
    keep = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    safe_labels = np.where(keep, labels, 0)
    p = np.asarray(y_pred)
    if from_logits:
        values = core.sparse_softmax_cross_entropy(p, safe_labels, axis=axis, extended=True)
    else:
        clipped = np.moveaxis(clip(p, epsilon), axis, -1)
        indices = core.check_class_indices(safe_labels, clipped.shape[-1])
        picked = np.take_along_axis(clipped, indices[..., None], axis=-1)[..., 0]
        target = np.arange(clipped.shape[-1]) == indices[..., None]
        others = np.sum(np.where(target, core.work(0), clipped), axis=-1)
        # log(sum q / q_y) = log1p(sum_{c != y} q_c / q_y): no cancellation near 1
        values = np.log1p(others / picked)
    return core.finish(np.where(keep, values, core.work(0)), extended)


def sparse_mask(y_true, y_pred, ignore_class=None, axis=-1):
    """The mask Keras attaches to the sparse loss when ``ignore_class`` is set."""
    if ignore_class is None:
        return None
    return squeeze_sparse_labels(y_true, y_pred, axis) != ignore_class


def squeeze_or_expand_inputs(y_true, y_pred):
    """LossFunctionWrapper.call: a trailing size-1 axis on one side of a rank
    difference of one is dropped (or added to a rank-1 other side)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        if y_pred.ndim == 1:
            y_pred = y_pred[..., None]
        else:
            y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        if y_true.ndim == 1:
            y_true = y_true[..., None]
        else:
            y_pred = y_pred[..., 0]
    return y_true, y_pred


def _squeeze_or_expand(values, weights):
    """keras.src.losses.loss.squeeze_or_expand_to_same_rank for (values, weights)."""
    if values.ndim == weights.ndim + 1 and values.shape[-1] == 1:
        if weights.ndim == 1:
            weights = weights[..., None]
        else:
            values = values[..., 0]
    elif weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
        if values.ndim == 1:
            values = values[..., None]
        else:
            weights = weights[..., 0]
    return values, weights


def loss_weights(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """The effective per-value weights a Keras Loss object applies (None if none)."""
    values = core.to_work(values)
    weights = None if sample_weight is None else core.to_work(sample_weight)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if reduction in ("mean", "sum_over_batch_size"):
            kept = np.count_nonzero(mask)
            mask_weight = core.work(mask.size) / kept if kept else core.work(0)
            float_mask = np.where(mask, mask_weight, core.work(0))
        else:
            float_mask = mask.astype(core.WORK)
        if weights is None:
            weights = float_mask
        else:
            float_mask, weights = _squeeze_or_expand(float_mask, weights)
            weights = weights * float_mask
    return weights


def _weights_and_divisor(values, sample_weight, reduction, mask):
    """Loss.__call__'s effective weights (None for none) and its mean divisor."""
    weights = loss_weights(values, sample_weight, mask, reduction)
    if weights is not None:
        values, weights = _squeeze_or_expand(values, weights)
    if reduction == "mean_with_sample_weight" and weights is not None:
        divisor = core.total(weights)
    else:
        shape = values.shape if weights is None else np.broadcast_shapes(values.shape, weights.shape)
        divisor = core.work(int(np.prod(shape)))
    return values, weights, divisor


def reduce_loss(values, sample_weight=None, reduction="sum_over_batch_size", mask=None, *, extended=False):
    """keras.losses.Loss.__call__'s weighting and reduction of loss values."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Received: reduction={reduction}")
    values, weights, divisor = _weights_and_divisor(core.to_work(values), sample_weight, reduction, mask)
    if weights is not None:
        values = values * weights
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return core.finish(values, extended)
    total = core.total(values)
    if reduction == "sum":
        return core.finish(total, extended)
    return core.finish(total / divisor if divisor != 0 else core.work(0), extended)


def reduction_coefficients(values_shape, sample_weight=None, reduction="sum_over_batch_size", mask=None):
    """c with Loss.__call__(values) = c * values (reduction None) or sum(c * values):
    the derivative of the reduced loss with respect to each loss value."""
    ones = np.ones(values_shape, dtype=core.WORK)
    shaped, weights, divisor = _weights_and_divisor(ones, sample_weight, reduction, mask)
    coefficients = np.ones(shaped.shape, core.WORK) if weights is None else np.broadcast_to(
        weights, np.broadcast_shapes(shaped.shape, weights.shape)) * core.work(1)
    if reduction in (None, "none", "sum") or tuple(values_shape) in ((), (0,)):
        return coefficients.reshape(values_shape) if coefficients.size == ones.size else coefficients
    scale = core.work(1) / divisor if divisor != 0 else core.work(0)
    coefficients = coefficients * scale
    return coefficients.reshape(values_shape) if coefficients.size == ones.size else coefficients


def metric_mean(batches, *, extended=False):
    """A Keras Mean-wrapping metric's result after ``update_state`` on each of
    ``batches``: a list of ``(values, sample_weight_or_None)``."""
    total = core.work(0)
    count = core.work(0)
    for values, sample_weight in batches:
        values = core.to_work(values)
        if sample_weight is None:
            per_sample = values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values
            total += core.total(per_sample)
            count += values.shape[0] if values.ndim >= 1 else 1
            continue
        weights = core.to_work(sample_weight)
        values, weights = _squeeze_or_expand(values, weights)
        if values.ndim > weights.ndim:
            values = values.mean(axis=tuple(range(weights.ndim, values.ndim)))
        weights = np.broadcast_to(weights, values.shape)
        weighted = values * weights
        if weights.ndim > 1:
            weights = weights.mean(axis=tuple(range(1, weights.ndim)))
        if weighted.ndim > 1:
            weighted = weighted.mean(axis=tuple(range(1, weighted.ndim)))
        total += core.total(weighted)
        count += core.total(weights)
    return core.finish(total / count if count != 0 else core.work(0), extended)


def _sigmoid_pair(logits):
    """``(sigmoid(x), 1 - sigmoid(x))`` exactly, the complement as sigmoid(-x)."""
    x = core.to_work(logits)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))


def binary_focal_crossentropy_elementwise(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                                          from_logits=False, label_smoothing=0.0, epsilon=EPSILON,
                                          epsilon_in_log=False):
    """Keras' binary focal loss before its mean over ``axis``, in WORK precision:
    ``w (1 - p_t)**gamma * bce`` with ``p_t = z p + (1 - z)(1 - p)`` and
    ``w = z alpha + (1 - z)(1 - alpha)`` when balancing. On probabilities ``bce``
    is taken on the clipped ``p``; from logits, ``p = sigmoid(x)`` carries its
    logits along (Keras' ``_keras_logits``), so ``bce`` is the stable sigmoid
    cross-entropy of ``x``, unclipped."""
    z = _smooth_binary(core.to_work(y_true), label_smoothing)
    predictions = np.asarray(y_pred)
    if from_logits:
        p, one_minus_p = _sigmoid_pair(predictions)
        bce = core.sigmoid_cross_entropy(predictions, z, extended=True)
    else:
        p = core.to_work(predictions)
        one_minus_p = 1 - p
        low, high = clip_bounds(predictions.dtype, epsilon)
        clipped = core.clip(p, low, high)
        shift = log_shift(predictions.dtype, epsilon, epsilon_in_log)
        bce = -(core.mul0(z, np.log(clipped + shift)) + core.mul0(1 - z, _log_complement_plus(clipped, shift)))
    one_minus_p_t = z * one_minus_p + (1 - z) * p
    with np.errstate(divide="ignore", invalid="ignore"):
        focal = np.power(one_minus_p_t, core.work(gamma)) * bce
    if apply_class_balancing:
        focal = (z * core.work(alpha) + (1 - z) * (1 - core.work(alpha))) * focal
    return focal


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1, *, epsilon=EPSILON,
                              epsilon_in_log=False, extended=False):
    """keras.losses.binary_focal_crossentropy."""
    values = binary_focal_crossentropy_elementwise(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits,
                                                   label_smoothing, epsilon, epsilon_in_log)
    return core.finish(np.mean(values, axis=axis), extended)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                                   axis=-1, *, epsilon=EPSILON, extended=False):
    """keras.losses.categorical_focal_crossentropy: ``sum_c alpha_c (1 - q_c)**gamma
    (-y_c log q_c)`` with ``q`` the prediction renormalised by its sum and clipped
    (``softmax(x)``, exact, when from_logits)."""
    y = _smooth_categorical(core.to_work(y_true), label_smoothing, axis)
    predictions = np.asarray(y_pred)
    if from_logits:
        p = np.exp(-core.neg_log_softmax(predictions, axis=axis, extended=True))
    else:
        p = core.to_work(predictions)
    total = np.sum(p, axis=axis, keepdims=True)
    renormalised = p / total
    complement = (total - p) / total  # 1 - q, summed from the other classes' share
    low, high = clip_bounds(predictions.dtype, epsilon)
    clipped = core.clip(renormalised, low, high)
    complement = np.where(clipped == renormalised, complement, 1 - clipped)
    alpha_values = core.to_work(alpha)
    if alpha_values.ndim:
        shape = [1] * p.ndim
        shape[axis] = alpha_values.shape[0]
        alpha_values = alpha_values.reshape(shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = alpha_values * np.power(complement, core.work(gamma)) * -core.mul0(y, np.log(clipped))
    return core.finish(np.sum(per_class, axis=axis), extended)


# --- the focal losses' rounding scales (for the tolerance model) --------------------------------------------
# Beyond the loss itself, what the focal losses' standard chains round: the harness multiplies these by its
# K eps (conformance.tolerance), so they state the algorithm, not a tolerance.

def _power(base, exponent):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = np.power(base, core.work(exponent))
    return np.where(np.isfinite(value), value, core.work(0))


def binary_focal_scale(y_true, y_pred, from_logits=False, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                       label_smoothing=0.0, axis=-1):
    """``w (1 - p_t)**g bce``, elementwise: the rounding of ``1 - p`` (size 1)
    moves ``bce`` by eps and ``1 - p_t`` by eps, so the scale is
    ``w ((1 - p_t)**g |1 - z| + g (1 - p_t)**(g - 1) bce)``."""
    gamma = float(gamma)
    z = core.to_work(y_true)
    if label_smoothing:
        z = z * (1 - core.work(label_smoothing)) + core.work(0.5) * core.work(label_smoothing)
    if from_logits:
        with np.errstate(over="ignore"):
            p = 1 / (1 + np.exp(-core.to_work(y_pred)))
    else:
        p = core.to_work(y_pred)
    one_minus_p_t = np.abs(z * (1 - p) + (1 - z) * p)
    bce = np.abs(binary_crossentropy_elementwise(y_true, y_pred, from_logits, label_smoothing))
    scale = _power(one_minus_p_t, gamma) * np.abs(1 - z) + gamma * _power(one_minus_p_t, gamma - 1) * bce
    if apply_class_balancing:
        alpha = core.work(alpha)
        scale = np.abs(z * alpha + (1 - z) * (1 - alpha)) * scale
    return scale


def categorical_focal_scale(y_true, y_pred, from_logits=False, alpha=0.25, gamma=2.0, label_smoothing=0.0,
                            axis=-1, *, subnormal_growth=lambda q: 1):
    """``sum_c a_c (1 - q_c)**g (-y_c log q_c)``: the renormalised ``q`` carries a
    relative eps, so each class adds ``|a_c y_c| ((1 - q_c)**g + g (1 - q_c)**(g - 1) q_c |log q_c|)``;
    ``subnormal_growth(q)`` is the dtype's factor for a ``q`` held as a subnormal."""
    gamma = float(gamma)
    y = np.abs(np.moveaxis(core.to_work(y_true), axis, -1))
    if from_logits:
        q = np.exp(-np.moveaxis(core.neg_log_softmax(y_pred, axis=axis, extended=True), axis, -1))
    else:
        p = np.moveaxis(core.to_work(y_pred), axis, -1)
        q = p / np.sum(p, axis=-1, keepdims=True)
    alpha = np.abs(core.to_work(alpha))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.where(q > 0, np.abs(np.log(q)), core.work(0))
    per_class = alpha * y * (_power(1 - q, gamma) * subnormal_growth(q)
                             + gamma * _power(1 - q, gamma - 1) * q * log_q)
    return np.sum(per_class, axis=-1)


# --- exact gradients of the Keras functions' values, for every form -----------------------------------------
# ``coefficients`` c are shaped like the function's values: 1 for the function itself, the Loss object's
# reduction weights (reduction_coefficients) or nothing for a metric. Each returns (gradient, scale) of
# reference.gradients: d sum(c * values) / d y_pred, and the size of the standard chain's terms.

def _function(kind: str):
    return {"binary": binary_crossentropy, "categorical": categorical_crossentropy,
            "sparse": sparse_categorical_crossentropy, "binary_focal": binary_focal_crossentropy,
            "categorical_focal": categorical_focal_crossentropy}[kind]


def values_shape(kind: str, y_true, y_pred, axis=-1) -> list:
    """The shape of the function's values: the prediction's without its class (or mean) axis."""
    prediction = np.asarray(y_pred)
    if kind == "sparse":
        return list(squeeze_sparse_labels(y_true, prediction, axis).shape)
    return np.delete(np.array(prediction.shape), axis % prediction.ndim).tolist()


def per_example(kind: str, values, y_true, y_pred, ignore_class=None, axis=-1):
    """The family's per-element values (one per example, or per element for the binary losses) in the
    function's layout: the binary losses average over ``axis``, an ignored class counts 0."""
    if kind in ("binary", "binary_focal"):
        return np.mean(core.to_work(values), axis=axis)
    if kind == "sparse" and ignore_class is not None:
        return np.where(sparse_mask(y_true, y_pred, ignore_class, axis), core.to_work(values), core.work(0))
    return core.to_work(values)


def _one_hot(labels, n_classes) -> np.ndarray:
    return (np.asarray(labels)[..., None] == np.arange(n_classes)).astype(np.float64)


def _probability_spread(kind: str, y_pred, from_logits: bool, axis=-1) -> np.ndarray:
    """p (1 - p) of the probability each element's gradient runs through: the
    autodiff chain of a loss on probabilities divides by p and 1 - p, whose
    rounding carries a relative eps max(1, p / (1 - p), (1 - p) / p)."""
    x = core.to_work(y_pred)
    if kind == "binary_focal":
        p = 1 / (1 + np.exp(-x)) if from_logits else x
    else:
        p = np.exp(-core.neg_log_softmax(x, axis=axis, extended=True)) if from_logits else x / np.sum(
            x, axis=axis, keepdims=True)
    low, high = clip_bounds(np.asarray(y_pred).dtype)
    p = core.clip(p, low, high)
    return p * (1 - p)


def gradient(kind: str, y_true, y_pred, coefficients, from_logits=False, *, epsilon_in_log=False, **options):
    """(gradient, scale) of sum(c * values) by y_pred, for the function of ``kind``
    with its keyword ``options`` (label_smoothing, axis, ignore_class, gamma, alpha,
    apply_class_balancing); ``epsilon_in_log`` is Keras 2's binary loss on
    probabilities (``log_shift``). The focal losses are differentiated numerically."""
    from reference import gradients

    c = core.to_work(coefficients)
    if kind in ("binary_focal", "categorical_focal"):
        shifted = {"epsilon_in_log": True} if epsilon_in_log and kind == "binary_focal" else {}

        def total(prediction):
            return c * _function(kind)(y_true, prediction, from_logits=from_logits, extended=True, **shifted,
                                       **options)
        # each output is one row's along the class axis (the binary loss's mean, the categorical loss's sum)
        grad = gradients.numeric_separable(total, y_pred, options.get("axis", -1))
        if from_logits:
            # an infinite logit saturates its softmax or sigmoid: the loss does not move with it (a masked
            # class, p = 0, stays masked), so its derivative is 0 where a difference quotient gives NaN
            grad = np.where(np.isinf(core.to_work(y_pred)), core.work(0), grad)
        # the autodiff chain's terms are of the size of the loss over p and 1 - p
        size = np.abs(total(y_pred))
        size = np.expand_dims(size, -1) if size.ndim < np.ndim(y_pred) else size
        spread = _probability_spread(kind, y_pred, from_logits, options.get("axis", -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            # a saturated probability (spread 0) has an exact derivative of 0 and no chain to round
            scale = np.where(spread > 0, (np.abs(grad) + size) / spread, np.abs(grad) + size)
        return grad, scale
    prediction = np.asarray(y_pred)
    axis = options.get("axis", -1)
    if kind == "binary":
        weight = np.expand_dims(c, axis) / prediction.shape[axis]
        z = core.to_work(y_true)
        if options.get("label_smoothing"):
            e = core.work(options["label_smoothing"])
            z = z * (1 - e) + e / 2
        if from_logits:
            return gradients.softplus_pair(prediction, weight * z, weight * (1 - z))
        low, high = clip_bounds(prediction.dtype)
        p = core.to_work(prediction)
        active = (p >= low) & (p <= high)
        shift = log_shift(prediction.dtype, epsilon_in_log=epsilon_in_log)
        return gradients.log_pair(p, weight * z, weight * (1 - z), active, active, shift=shift)
    if kind == "categorical":
        y = core.to_work(y_true)
        if options.get("label_smoothing"):
            e = core.work(options["label_smoothing"])
            y = y * (1 - e) + e / y.shape[axis]
        a = np.expand_dims(c, axis) * y
        if from_logits:
            return gradients.softmax_family(prediction, a, axis=axis)
        p = core.to_work(prediction)
        q = p / np.sum(p, axis=axis, keepdims=True)
        low, high = clip_bounds(prediction.dtype)
        return gradients.categorical_probabilities(p, a, (q >= low) & (q <= high), axis=axis)
    labels = squeeze_sparse_labels(y_true, prediction, axis)
    ignore_class = options.get("ignore_class")
    keep = np.ones(labels.shape, bool) if ignore_class is None else sparse_mask(y_true, prediction, ignore_class,
                                                                                axis)
    weight = c * keep
    safe = np.where(keep, labels, 0)
    if from_logits:
        return gradients.softmax_family(prediction, weight[..., None] * _one_hot(safe, prediction.shape[-1]))
    p = core.to_work(prediction)
    low, high = clip_bounds(prediction.dtype)
    return gradients.sparse_categorical_probabilities(core.clip(p, low, high), safe, weight, (p >= low) & (p <= high))
