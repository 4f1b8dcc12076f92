"""Input regions of known divergences, for the property tests.

A fixed case pins a known divergence as a strict xfail; a property test that
draws inputs at random would hit the same region only now and then, which
would make a strict xfail on the property flaky. So a divergence entry may
name a ``region`` (a predicate here) and the bindings it applies to. Each
predicate returns a boolean mask shaped like the binding's unreduced output
(True: inside the divergence's region).

Inside a region the property tests do not give up: where the divergence is
the documented weaker algorithm's rounding, :data:`WEAKER_SCALES` gives that
algorithm's error scale (per element, in the tolerance model's units: the
bound is ``k eps (|exact| + scale)``), and the invariants are held to it, so
that a fault worse than the known one still fails. Only where no bound
describes the framework (another function, a clip, a NaN or an overflow: a
semantics or special-values divergence, or a scale of inf) are the elements
left out. The property report counts, per property and entry, the examples
each region held to the weaker bound and those it left out.
"""

from __future__ import annotations

import numpy as np

from conformance.bindings import Problem, family_of
from reference import core


def sigmoid_cancellation(problem: Problem) -> np.ndarray:
    """A negative logit with a label below 1: where (1 - z) x - log_sigmoid(x)
    and its tf.nn.weighted twin cancel terms of size |x|."""
    if problem.family != "sigmoid":
        return np.zeros(np.shape(problem.labels), bool)
    x = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    return (x < 0) & (z < 1)


def clipped_rows(problem: Problem) -> np.ndarray:
    """Rows whose softmax has a probability Keras' clip to [1e-7, 1 - 1e-7] moves."""
    from reference.conventions import keras as ref_keras

    if not family_of(problem.family).soft:
        return np.zeros(np.shape(problem.labels)[:-1], bool)
    x = core.to_work(problem.prediction)
    if family_of(problem.family).logits:
        q = np.exp(-core.neg_log_softmax(x, extended=True))
    else:
        q = x / np.sum(x, axis=-1, keepdims=True)
    low, high = ref_keras.clip_bounds(np.asarray(problem.prediction).dtype)
    return np.any((q < low) | (q > high), axis=-1)


def offset_rows(problem: Problem) -> np.ndarray:
    """Softmax rows whose largest logit is larger than the loss's scale: where
    ``logsumexp(x) - x[y]`` rounds a log-sum-exp of the size of the offset
    (``|max x|``) that the shifted algorithm never forms."""
    from conformance.tolerance import family_scale

    if not family_of(problem.family).softmax:
        return np.zeros(_output_shape(problem), bool)
    x = np.moveaxis(core.to_work(problem.prediction), problem.axis, -1)
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(np.isfinite(x), np.abs(x), core.work(0)), axis=-1)
    return top > family_scale(problem)


def soft_label_cancellation(problem: Problem) -> np.ndarray:
    """A positive logit with a soft label where ``x z`` exceeds the loss: there
    ``max(x, 0) - x z`` cancels and loses ``eps x z``, more than ``eps |loss|``."""
    if problem.family != "sigmoid":
        return np.zeros(np.shape(problem.labels), bool)
    x = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    loss = np.asarray(core.sigmoid_cross_entropy(problem.prediction, problem.labels), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (x > 0) & (z > 0) & (z < 1) & (x * z > loss)


def _binary_terms(problem: Problem):
    """(p, z, exact loss) of a binary_probs problem, in float64."""
    p = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = np.asarray(core.binary_cross_entropy(np.clip(p, 0, 1), np.clip(z, 0, 1)), dtype=np.float64)
    return p, z, loss


def one_minus_p_rounds(problem: Problem) -> np.ndarray:
    """A probability below 1/2 with a label below 1 and a loss below ``1 - z``:
    there ``log(1 - p)`` loses the rounding of ``1 - p``, about ``(1 - z) eps / 2``
    absolute, which ``log1p(-p)`` keeps, and that is over a few eps of the loss."""
    if problem.family != "binary_probs":
        return np.zeros(np.shape(problem.labels), bool)
    p, z, loss = _binary_terms(problem)
    with np.errstate(invalid="ignore"):
        return (p < 0.5) & (z < 1) & ~(loss >= 1 - z)


def log_argument_rounds(problem: Problem) -> np.ndarray:
    """Where Keras 2's ``log(p + eps)`` or ``log(1 - p + eps)`` takes a small log of
    an argument rounded at the size of 1: the rounding (half an eps) is then the
    whole error of a term of the size of its log. ``one_minus_p_rounds`` for a
    small ``p`` and its mirror, a ``p`` above 1/2 with a label above 0 and a loss
    below ``z``."""
    if problem.family != "binary_probs":
        return np.zeros(np.shape(problem.labels), bool)
    p, z, loss = _binary_terms(problem)
    with np.errstate(invalid="ignore"):
        return one_minus_p_rounds(problem) | ((p > 0.5) & (z > 0) & ~(loss >= z))


def half_precision(problem: Problem) -> np.ndarray:
    """Every element of a float16 or bfloat16 problem: where an API that rounds
    every step in the dtype (not once from float32) exceeds one rounding."""
    return np.full(np.shape(problem.labels), problem.dtype in ("float16", "bfloat16"), bool)


def sigmoid_through_probabilities(problem: Problem) -> np.ndarray:
    """Every element of a sigmoid problem: where an API that forms p = sigmoid(x) in the dtype and takes the loss
    of the rounded p (Keras' binary focal loss on torch) loses what the rounding of p at the size of 1 costs."""
    return np.full(np.shape(problem.labels), problem.family == "sigmoid", bool)


def float64_inputs(problem: Problem) -> np.ndarray:
    """Every element of a float64 problem: where an API that narrows 64-bit types to 32 bits (Keras on every
    backend but TensorFlow) computes in float32."""
    return np.full(_output_shape(problem), problem.dtype == "float64", bool)


def bfloat16_inputs(problem: Problem) -> np.ndarray:
    """Every element of a bfloat16 problem: where an API that sums the softmax's terms in bfloat16, rounding
    after each, loses up to half an ULP of the running sum per class."""
    return np.full(_output_shape(problem), problem.dtype == "bfloat16", bool)


def _output_shape(problem: Problem) -> tuple:
    """The unreduced output's shape: the labels', without the class axis of soft labels."""
    shape = np.shape(problem.labels)
    return shape[:-1] if family_of(problem.family).soft else shape


def softmax_floor(problem: Problem) -> np.ndarray:
    """Softmax rows with a logit more than 64 below the row's largest (-inf included): where Paddle's
    softmax clips x - max(x) at -64."""
    if not family_of(problem.family).softmax:
        return np.zeros(_output_shape(problem), bool)
    x = np.moveaxis(np.asarray(problem.prediction, dtype=np.float64), problem.axis, -1)
    if x.shape[-1] == 0:
        return np.zeros(x.shape[:-1], bool)
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(np.isnan(x), -np.inf, x), axis=-1, keepdims=True)
        return np.any(top - x > 64, axis=-1)


def sigmoid_log_rounded_at_one(problem: Problem) -> np.ndarray:
    """A sigmoid loss below (1 + |x|) / 4: where an absolute error of eps (1 + |x|), from a log(1 + exp(-|x|))
    rounded at 1 and from max(x, 0) - x z cancelling, is more than the tolerance allows."""
    if problem.family != "sigmoid":
        return np.zeros(_output_shape(problem), bool)
    x = np.asarray(problem.prediction, dtype=np.float64)
    loss = np.asarray(core.sigmoid_cross_entropy(x, np.asarray(problem.labels, dtype=np.float64)), np.float64)
    with np.errstate(invalid="ignore"):
        return loss < (1 + np.abs(x)) / 4


def smoothed_hard_or_float64_labels(problem: Problem) -> np.ndarray:
    """Every row of a problem with label_smoothing > 0 whose labels are class indices (Paddle smooths them into
    soft labels of another shape) or float64 (Paddle builds the smoothed labels in float32)."""
    smoothed = float(problem.options.get("label_smoothing") or 0) > 0
    affected = family_of(problem.family).indices or problem.dtype == "float64"
    return np.full(_output_shape(problem), smoothed and affected)


def _gaps_beyond_range(problem: Problem, total: bool) -> np.ndarray:
    """Rows of a class problem with a gap ``max - x_c`` (``total``: the sum of
    the row's gaps) at or beyond the dtype's largest finite value."""
    from conformance.dtypes import FORMATS

    if not family_of(problem.family).softmax:
        return np.zeros(_output_shape(problem), bool)
    x = np.moveaxis(core.to_work(problem.prediction), problem.axis, -1)
    with np.errstate(invalid="ignore"):
        gaps = np.max(x, axis=-1, keepdims=True) - x
        gaps = np.where(np.isfinite(gaps), gaps, core.work(0))  # infinite logits are masks, not spread
    reach = np.sum(gaps, axis=-1) if total else np.max(gaps, axis=-1)
    return reach >= core.work(FORMATS[problem.dtype].max)


def log_probability_overflows(problem: Problem) -> np.ndarray:
    """Rows whose spread reaches past the dtype's range: a log-softmax formed
    in the dtype is -inf at the far class, and a soft label times it is NaN
    (label 0) or inf, where the loss itself is finite."""
    return _gaps_beyond_range(problem, total=False)


def log_probability_sum_overflows(problem: Problem) -> np.ndarray:
    """Label-smoothed rows whose log-probabilities sum past the dtype's range:
    the smoothing term summed over the classes before its division by their
    number is -inf, where each term and the loss are finite."""
    smoothed = float(problem.options.get("label_smoothing") or 0) > 0
    return _gaps_beyond_range(problem, total=True) & smoothed


def loss_sum_overflows(problem: Problem) -> np.ndarray:
    """Every element of a class or sigmoid problem whose exact losses sum past the dtype's largest finite
    value (one loss past the range is enough): where a mean formed as the sum of the losses, rounded to the
    dtype, over their number overflows (over the samples, or over the last axis as Keras' binary losses
    average), though the mean itself is finite."""
    from conformance.dtypes import FORMATS

    shape = _output_shape(problem)
    if not family_of(problem.family).logits:
        return np.zeros(shape, bool)
    with np.errstate(all="ignore"):
        if problem.family == "sigmoid":
            loss = core.sigmoid_cross_entropy(problem.prediction, problem.labels, extended=True)
        elif problem.family == "softmax":
            loss = core.softmax_cross_entropy(problem.prediction, problem.labels, axis=problem.axis, extended=True)
        else:
            loss = core.sparse_softmax_cross_entropy(problem.prediction, problem.labels, axis=problem.axis,
                                                     extended=True)
        total = np.sum(np.abs(loss))
    return np.full(shape, bool(total >= core.work(FORMATS[problem.dtype].max)))


def _sigmoid_terms(problem: Problem):
    x = np.asarray(problem.prediction, dtype=np.float64)
    return x, np.asarray(problem.labels, dtype=np.float64)


def cancelling_logit_scale(problem: Problem) -> np.ndarray:
    """(1 - z) x - log_sigmoid(x) (torch), (1 - z) x + l (log1p(exp(-|x|)) + max(-x, 0)) (tf.nn's weighted
    form): terms of the size of |x| (times the positive weight l, where one is given) cancel, so each
    rounding costs eps |x| absolute."""
    x, _ = _sigmoid_terms(problem)
    weight = np.abs(np.asarray(problem.options.get("pos_weight", 1.0), dtype=np.float64))
    return np.abs(x) * np.maximum(weight, 1.0)


def offset_scale(problem: Problem) -> np.ndarray:
    """logsumexp(x) - x[y] (optax's integer labels) rounds a log-sum-exp of the size of the row's largest
    |logit|: eps |max x| absolute."""
    if not family_of(problem.family).softmax:
        return np.zeros(np.shape(problem.labels), np.float64)
    x = np.moveaxis(np.asarray(problem.prediction, dtype=np.float64), problem.axis, -1)
    with np.errstate(invalid="ignore"):
        return np.max(np.where(np.isfinite(x), np.abs(x), 0.0), axis=-1)


def log_at_one_scale(problem: Problem) -> np.ndarray:
    """max(x, 0) - x z + log(1 + exp(-|x|)) (Paddle): the log of an argument rounded at 1 and the cancelling
    first terms cost eps (1 + |x|) absolute."""
    x, _ = _sigmoid_terms(problem)
    return 1.0 + np.abs(x)


def soft_label_scale(problem: Problem) -> np.ndarray:
    """max(x, 0) - x z + log1p(exp(-|x|)) (tf.nn) with a positive x: the first two terms, of the size of x,
    cancel: eps |x| absolute."""
    x, _ = _sigmoid_terms(problem)
    return np.abs(x)


def unit_scale(problem: Problem) -> np.ndarray:
    """log(1 - p) of a rounded 1 - p (Keras 3, Paddle), log(p + eps) and log(1 - p + eps) (Keras 2): the
    argument of a small log is rounded at the size of 1, half an eps absolute, which is the term's whole
    error: eps absolute."""
    return np.ones(np.shape(problem.labels), np.float64)


def each_step_scale(problem: Problem) -> np.ndarray:
    """torch's half-precision binary_cross_entropy rounds the log, the clamp, the products with z and 1 - z
    and their sum each in the dtype: a few roundings of each term, and eps absolute where 1 - p rounds to 1
    (log(1 - p) formed as log of the rounded 1 - p)."""
    p = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.abs(z * np.maximum(np.log(p), -100.0)) + np.abs((1 - z) * np.maximum(np.log1p(-p), -100.0))
    return 1.0 + 2.0 * np.where(np.isfinite(terms), terms, 0.0)


def running_sum_scale(problem: Problem) -> np.ndarray:
    """sum(exp(x - max)) rounded to bfloat16 after each of the C terms (TensorFlow's sparse kernel): up to
    half an ULP of a sum of at least 1 per term, C eps in all, carried into its log."""
    if not family_of(problem.family).softmax:
        return np.zeros(_output_shape(problem), np.float64)
    classes = np.shape(problem.prediction)[problem.axis]
    return np.full(_output_shape(problem), float(classes))


def float32_labels_scale(problem: Problem) -> np.ndarray:
    """Paddle's label smoothing builds the smoothed labels in float32: a float64 loss carries the float32
    rounding of each label, eps32 times the size of the row's log-probabilities (in float64 ULPs, eps32 /
    eps64 = 2**29 of them). Class-index labels are smoothed into soft labels of another shape: no bound
    (inf), those rows are left out."""
    if not family_of(problem.family).soft:
        return np.full(_output_shape(problem), np.inf)
    from conformance.dtypes import FORMATS

    x = core.to_work(problem.prediction)
    with np.errstate(all="ignore"):
        minus_log_q = (core.neg_log_softmax(x, extended=True) if family_of(problem.family).logits
                       else -np.log(x / np.sum(x, axis=-1, keepdims=True)))
        size = np.sum(np.where(np.isfinite(minus_log_q), minus_log_q, 0), axis=-1).astype(np.float64)
    ratio = float(FORMATS["float32"].eps) / float(FORMATS[problem.dtype].eps)
    with np.errstate(over="ignore"):  # log-probabilities summing past float64's range: no bound, left out
        return max(ratio, 1.0) * (1.0 + size)


def probability_rounding_scale(problem: Problem) -> np.ndarray:
    """log(1 - p) and log(p) of a p = sigmoid(x) rounded at the size of 1: half an eps of 1 over the smaller of p
    and 1 - p, about exp(|x|) eps absolute. Where the rounded p is 0 or 1, or past Keras' clip to [1e-7, 1 -
    1e-7], the loss is the clip's (or torch's clamp at -100), not a rounding of the exact one: no bound, those
    elements are left out."""
    from conformance.dtypes import round_to

    x = np.asarray(problem.prediction, np.float64)
    with np.errstate(over="ignore"):
        p = np.asarray(round_to(1.0 / (1.0 + np.exp(-x)), problem.dtype), np.float64)
        scale = 1.0 + np.exp(np.abs(x))
    saturated = ~(np.minimum(p, 1.0 - p) >= 1e-7)
    return np.where(saturated, np.inf, scale)


def _loss_size(problem: Problem) -> np.ndarray:
    """|loss| of the family, unreduced, in float64 (0 where it is not finite)."""
    family = family_of(problem.family)
    x, y = problem.prediction, problem.labels
    with np.errstate(all="ignore"):
        if family.elementwise:
            loss = (core.sigmoid_cross_entropy(x, y) if family.logits else core.binary_cross_entropy(x, y))
        elif family.logits:
            loss = (core.softmax_cross_entropy(x, y, axis=problem.axis) if family.soft
                    else core.sparse_softmax_cross_entropy(x, y, axis=problem.axis))
        else:
            p = np.moveaxis(np.asarray(x, np.float64), problem.axis, -1)
            log_q = np.log(p / np.sum(p, axis=-1, keepdims=True))
            loss = (-np.sum(core.mul0(np.moveaxis(np.asarray(y, np.float64), problem.axis, -1), log_q), axis=-1)
                    if family.soft else -np.take_along_axis(log_q, np.asarray(y, np.int64)[..., None], -1)[..., 0])
        loss = np.abs(np.asarray(loss, np.float64))
    return np.where(np.isfinite(loss), loss, 0.0)


def float32_rounding_scale(problem: Problem) -> np.ndarray:
    """A float64 loss computed in float32 (Keras on every backend but TensorFlow narrows 64-bit types): each step
    rounds at float32's eps, eps32 / eps64 = 2**29 float64 ULPs of the loss and of the family's intermediate
    scale."""
    from conformance.dtypes import FORMATS
    from conformance.tolerance import family_scale

    ratio = float(FORMATS["float32"].eps) / float(FORMATS[problem.dtype].eps)
    size = _loss_size(problem) + np.asarray(family_scale(problem), np.float64)
    x = np.abs(np.asarray(problem.prediction, np.float64))
    if not family_of(problem.family).elementwise:
        x = np.max(np.moveaxis(x, problem.axis, -1), axis=-1, initial=0.0)
    # past float32's range the narrowed loss overflows: no bound, those elements are left out
    beyond = (size >= float(FORMATS["float32"].max)) | ~(x < float(FORMATS["float32"].max))
    return np.where(beyond, np.inf, max(ratio, 1.0) * (1.0 + size))


# the weaker algorithm's error scale where a region's divergence is its rounding (see the module's docstring);
# a region without one (a clip, another function, a NaN or an overflow) leaves its elements out
WEAKER_SCALES = {"sigmoid_cancellation": cancelling_logit_scale, "offset_rows": offset_scale,
                 "sigmoid_log_rounded_at_one": log_at_one_scale, "soft_label_cancellation": soft_label_scale,
                 "one_minus_p_rounds": unit_scale, "log_argument_rounds": unit_scale,
                 "half_precision": each_step_scale, "bfloat16_inputs": running_sum_scale,
                 "smoothed_hard_or_float64_labels": float32_labels_scale, "float64_inputs": float32_rounding_scale,
                 "sigmoid_through_probabilities": probability_rounding_scale}

REGIONS = {"sigmoid_cancellation": sigmoid_cancellation, "clipped_rows": clipped_rows, "offset_rows": offset_rows,
           "soft_label_cancellation": soft_label_cancellation, "one_minus_p_rounds": one_minus_p_rounds,
           "log_argument_rounds": log_argument_rounds, "half_precision": half_precision,
           "bfloat16_inputs": bfloat16_inputs, "float64_inputs": float64_inputs,
           "sigmoid_through_probabilities": sigmoid_through_probabilities,
           "softmax_floor": softmax_floor, "sigmoid_log_rounded_at_one": sigmoid_log_rounded_at_one,
           "smoothed_hard_or_float64_labels": smoothed_hard_or_float64_labels,
           "log_probability_overflows": log_probability_overflows,
           "log_probability_sum_overflows": log_probability_sum_overflows,
           "loss_sum_overflows": loss_sum_overflows}
