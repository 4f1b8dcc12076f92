"""Historical upstream bugs of cross-entropy implementations, re-created as bindings.

Each binding takes the declaration of the real API the bug lived in (its
documented convention, options, reduction and exact gradient, from the
adapters) and replaces the framework call with a NumPy re-creation of the
bug, in the check's dtype. ``tests/test_historical_bugs.py`` loads this module
with ``--bindings historical_bugs`` (the interface a third party uses) and
proves that the suite fails every one: on its value checks where the bug was a
value bug, on its gradient checks where it was a gradient bug. The inputs that
exposed each bug are the ``history_*`` cases of ``cases/regressions.yaml``.
Never part of the default run.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from conformance.bindings import Binding, Problem, load_bindings
from conformance.dtypes import round_to


def _in(dtype: str):
    """Correct rounding to ``dtype`` after each operation."""

    def rounded(values):
        with np.errstate(all="ignore"):
            return round_to(np.asarray(values, dtype=np.float64), dtype).astype(np.float64)

    return rounded


def _finish(values, problem: Problem) -> np.ndarray:
    return round_to(np.asarray(values, dtype=np.float64), problem.dtype)


def _rows(problem: Problem):
    """(logits with classes last, labels, rounding) in float64."""
    x = np.moveaxis(np.asarray(problem.prediction, dtype=np.float64), problem.axis, -1)
    return x, problem.labels, _in(problem.dtype)


def _log_partition(x, r):
    """The shifted log-sum-exp's two parts, each rounded: (max, log sum exp(x - max))."""
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        return m, r(np.log(r(np.sum(r(np.exp(r(x - m))), axis=-1, keepdims=True))))


def _logsumexp(x, r):
    """logsumexp(x) rounded at its own size, the size of the offset: the weak
    algorithms subtract the target term from it afterwards."""
    m, log_sum = _log_partition(x, r)
    with np.errstate(all="ignore"):
        return r(m + log_sum)[..., 0]


# --- softmax -----------------------------------------------------------------------------------------------

def logsumexp_minus_target(problem: Problem):
    """pytorch/pytorch#11752 (torch 0.4.1's x - (max + log sum)), the formula of optax's integer-label loss
    before PR #1792: the log-sum-exp is rounded at the size of the offset before the target logit goes."""
    x, labels, r = _rows(problem)
    target = np.take_along_axis(x, np.asarray(labels)[..., None], axis=-1)[..., 0]
    return _finish(r(_logsumexp(x, r) - target), problem)


def logsumexp_minus_score(problem: Problem):
    """ml-explore/mlx PR #4188: mlx's cross_entropy with probability targets was logsumexp(x) - sum(x y)."""
    x, _, r = _rows(problem)
    y = np.moveaxis(np.asarray(problem.labels, dtype=np.float64), problem.axis, -1)
    with np.errstate(all="ignore"):
        score = r(np.sum(r(x * y), axis=-1))
        return _finish(r(_logsumexp(x, r) - score), problem)


def labels_times_log_softmax(problem: Problem):
    """google-deepmind/optax#896: -sum(y * log_softmax(x)) makes 0 * -inf = NaN at a masked class."""
    x, _, r = _rows(problem)
    y = np.moveaxis(np.asarray(problem.labels, dtype=np.float64), problem.axis, -1)
    m, log_sum = _log_partition(x, r)
    with np.errstate(all="ignore"):
        log_softmax = r(r(x - m) - log_sum)
        return _finish(-r(np.sum(r(y * log_softmax), axis=-1)), problem)


def _torch_cross_entropy(problem: Problem, *, mask_smoothing: bool) -> np.ndarray:
    """torch's cross_entropy on class indices (N, C) with weight, ignore_index, label_smoothing and
    reduction, in float64; ``mask_smoothing=False`` re-creates pytorch/pytorch#73205."""
    x, labels, _ = _rows(problem)
    if x.ndim != 2:
        raise NotImplementedError("the re-created cross_entropy takes (N, C) inputs only")
    options = problem.options
    n_classes = x.shape[-1]
    weight = np.ones(n_classes) if options.get("weight") is None else np.asarray(options["weight"], np.float64)
    ignore_index = options.get("ignore_index", -100)
    smoothing = float(options.get("label_smoothing", 0.0))
    t = np.asarray(labels)
    kept = t != ignore_index
    safe = np.where(kept, t, 0)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        log_p = x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))
        nll = np.where(kept, -weight[safe] * np.take_along_axis(log_p, safe[:, None], axis=-1)[:, 0], 0.0)
        smooth = -np.sum(weight * log_p, axis=-1) / n_classes
        if mask_smoothing:
            smooth = np.where(kept, smooth, 0.0)
        losses = (1 - smoothing) * nll + smoothing * smooth
        reduction = options.get("reduction", "mean")
        if reduction == "none":
            return _finish(losses, problem)
        if reduction == "sum":
            return _finish(np.sum(losses), problem)
        return _finish(np.sum(losses) / np.sum(np.where(kept, weight[safe], 0.0)), problem)


def smoothing_counts_ignored(problem: Problem):
    """pytorch/pytorch#73205: the smoothing term of the ignored samples was not masked out."""
    return _torch_cross_entropy(problem, mask_smoothing=False)


def weight_smoothing_ignore_crash(problem: Problem):
    """pytorch/pytorch#69339: weight, label_smoothing and an ignored target together raised IndexError."""
    options = problem.options
    ignore_index = options.get("ignore_index", -100)
    if (options.get("weight") is not None and options.get("label_smoothing", 0.0)
            and np.any(np.asarray(problem.labels) == ignore_index)):
        n_classes = np.shape(problem.prediction)[problem.axis]
        raise IndexError(f"index {ignore_index} is out of bounds for dimension 0 with size {n_classes}")
    return _torch_cross_entropy(problem, mask_smoothing=True)


def labels_cast_to_prediction_dtype(binding: Binding):
    """keras-team/keras#15012: the integer labels went through the prediction's float dtype and back."""

    def call(problem: Problem):
        cast = round_to(np.asarray(problem.labels, dtype=np.float64), problem.dtype).astype(np.int64)
        moved = dataclasses.replace(problem, inputs={**problem.inputs, "labels": cast})
        return _finish(binding.reference(moved), problem)

    return call


# --- sigmoid and binary --------------------------------------------------------------------------------------

def _torch_elementwise_reduction(losses, problem: Problem):
    options = problem.options
    if options.get("weight") is not None:
        losses = losses * np.asarray(options["weight"], np.float64)
    reduction = options.get("reduction", "mean")
    if reduction == "sum":
        return _finish(np.sum(losses), problem)
    if reduction == "mean":
        return _finish(np.mean(losses), problem)
    return _finish(losses, problem)


def pos_weight_unshifted(problem: Problem):
    """pytorch/pytorch#13773: with pos_weight, (1 - z) x + (1 + (pw - 1) z) log(1 + exp(-x)) exponentiated
    -x without the shift (re-created so; the thread gives NaN for x = -120, this form gives inf)."""
    r = _in(problem.dtype)
    x = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    pos_weight = np.asarray(problem.options.get("pos_weight", 1.0), dtype=np.float64)
    with np.errstate(all="ignore"):
        log_weight = r(1 + r(r(pos_weight - 1) * z))
        losses = r(r(r(1 - z) * x) + r(log_weight * r(np.log1p(r(np.exp(-x))))))
    return _torch_elementwise_reduction(losses, problem)


def one_minus_z_x_minus_log_sigmoid(problem: Problem):
    """pytorch/pytorch#135359: (1 - z) x - log_sigmoid(x) is 0.1 (-inf) + inf = NaN at x = -inf, z = 0.9."""
    r = _in(problem.dtype)
    x = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    with np.errstate(all="ignore"):
        log_sigmoid = r(np.minimum(x, 0) - r(np.log1p(r(np.exp(-np.abs(x))))))
        losses = r(r(r(1 - z) * x) - log_sigmoid)
    return _torch_elementwise_reduction(losses, problem)


def relu_minus_x_z(problem: Problem):
    """tensorflow/tensorflow#75256: max(x, 0) - x z + log1p(exp(-|x|)) is inf - 0.9 inf = NaN at x = +inf."""
    r = _in(problem.dtype)
    x = np.asarray(problem.prediction, dtype=np.float64)
    z = np.asarray(problem.labels, dtype=np.float64)
    with np.errstate(all="ignore"):
        return _finish(r(r(np.maximum(x, 0) - r(x * z)) + r(np.log1p(r(np.exp(-np.abs(x)))))), problem)


def double_epsilon(problem: Problem):
    """keras-team/keras#15249: Keras 2 clipped to [1e-7, 1 - 1e-7] and then added 1e-7 inside both logs."""
    from reference.conventions import keras as ref_keras

    r = _in(problem.dtype)
    z = np.asarray(problem.labels, dtype=np.float64)
    smoothing = float(problem.options.get("label_smoothing", 0.0))
    if smoothing:
        z = r(r(z * (1 - smoothing)) + 0.5 * smoothing)
    low, high = (float(bound) for bound in ref_keras.clip_bounds(np.asarray(problem.prediction).dtype))
    epsilon = float(round_to(ref_keras.EPSILON, problem.dtype))
    with np.errstate(all="ignore"):
        p = np.clip(np.asarray(problem.prediction, dtype=np.float64), low, high)
        bce = r(r(z * r(np.log(r(p + epsilon)))) + r(r(1 - z) * r(np.log(r(r(1 - p) + epsilon)))))
        return _finish(-r(np.mean(bce, axis=int(problem.options.get("axis", -1)))), problem)


def gradient_of_abs_at_zero(binding: Binding):
    """pytorch/pytorch PR #2195, issue #2298: written with |x|, the loss's autograd took d|x|/dx = 0 at x = 0,
    so the gradient there lost its sigmoid(0) = 1/2 term: -z instead of 1/2 - z. The value is right."""

    def gradient(problem: Problem):
        grad, _ = binding.reference_gradient(problem)["logits"]
        x = np.asarray(problem.prediction, dtype=np.float64)
        z = np.asarray(problem.labels, dtype=np.float64)
        options = problem.options
        factor = 1.0 / z.size if options.get("reduction", "mean") == "mean" else 1.0
        if options.get("weight") is not None:
            factor = factor * np.asarray(options["weight"], np.float64)
        pos_weight = np.asarray(options.get("pos_weight", 1.0), np.float64)
        lost = factor * (pos_weight * z + (1 - z)) * 0.5
        return {"logits": _finish(np.where(x == 0, np.asarray(grad, np.float64) - lost, grad), problem)}

    return gradient


# --- the bindings ----------------------------------------------------------------------------------------------

_REAL = load_bindings()
VALUE_ONLY = {"gradient": "the re-created bug is a value bug; its binding has no gradient"}


def _bug(name: str, real_id: str, call=None, gradient=None) -> Binding:
    real = _REAL[real_id]

    def exact_value(problem: Problem):
        return _finish(real.reference(problem), problem)

    return dataclasses.replace(
        real, id=f"numpy:history.{name}", api=f"{real.api} as of {name.replace('_', '#', 1)}", framework="numpy",
        markers=(), requires=("numpy",), call=call or exact_value, gradient=gradient,
        notes={**real.notes, **({} if gradient else VALUE_ONLY)})


BINDINGS = [
    _bug("pytorch_11752", "jax:optax.softmax_cross_entropy_with_integer_labels", logsumexp_minus_target),
    _bug("mlx_4188", "jax:optax.softmax_cross_entropy", logsumexp_minus_score),
    _bug("optax_896", "jax:optax.softmax_cross_entropy", labels_times_log_softmax),
    _bug("pytorch_73205", "torch:nn.functional.cross_entropy", smoothing_counts_ignored),
    _bug("pytorch_69339", "torch:nn.functional.cross_entropy", weight_smoothing_ignore_crash),
    _bug("keras_15012", "tensorflow:keras.losses.sparse_categorical_crossentropy(from_logits=True)",
         labels_cast_to_prediction_dtype(_REAL["tensorflow:keras.losses.sparse_categorical_crossentropy(from_logits=True)"])),
    _bug("pytorch_13773", "torch:nn.functional.binary_cross_entropy_with_logits", pos_weight_unshifted),
    _bug("pytorch_135359", "torch:nn.functional.binary_cross_entropy_with_logits", one_minus_z_x_minus_log_sigmoid),
    _bug("tensorflow_75256", "tensorflow:nn.sigmoid_cross_entropy_with_logits", relu_minus_x_z),
    _bug("keras_15249", "tensorflow:keras.losses.binary_crossentropy", double_epsilon),
    _bug("pytorch_2195", "torch:nn.functional.binary_cross_entropy_with_logits",
         gradient=gradient_of_abs_at_zero(_REAL["torch:nn.functional.binary_cross_entropy_with_logits"])),
]
