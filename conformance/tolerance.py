"""The tolerance model: how far a framework's output may lie from the exact value.

A check passes, element by element, when

    |got - exact| <= K[dtype] * eps[dtype] * (|exact| + scale) + K[dtype] * tiny[dtype]

* ``exact`` is the reference's value on the inputs rounded to ``dtype``;
* ``eps`` is the format's machine epsilon, ``tiny`` its smallest subnormal;
* ``scale`` is what the best known stable algorithm must round beyond the loss
  itself, in quantities the loss depends on (see :func:`family_scale`). It
  describes what a careful implementation reaches, not the weakest one that
  is stable against overflow: a framework using a weaker algorithm falls
  outside and is a finding (a strict xfail in ``cases/divergences.yaml``).

The error in ULPs of the output dtype (against the exact value) is measured
for every element and reported beside the verdict.

Derivations (each operation rounds with a relative error of at most eps; the
inputs are exact, being the rounded inputs the reference also sees):

* Softmax cross-entropy ``L = sum_c y_c (m - x_c) + (sum_c y_c) log S`` with
  ``m = max x``, ``d_c = m - x_c >= 0`` and ``S = sum_j exp(-d_j) >= 1``, as the
  shifted algorithm ``(m - x_y) + log sum exp(x - m)`` computes it. Rounding
  ``d_c`` costs ``eps d_c`` in the target terms; the same rounding inside
  ``exp(-d_j)`` moves ``log S`` by ``eps sum_j d_j exp(-d_j) / S``, at most
  ``eps`` times the softmax-weighted distance, which the entropy bounds; the
  sum and the log of ``S >= 1`` cost ``eps`` each. So the scale is
  ``sum_c |y_c| (d_c + 1)``: a common offset of every logit leaves every
  ``d_c`` and so the bound unchanged, as it leaves the loss. ``logsumexp(x) -
  x[y]`` rounds ``m + log S`` at the size of ``|m|`` before the target logit is
  subtracted and loses ``eps |m|``: outside.
* Sigmoid cross-entropy ``L = z softplus(-x) + (1 - z) softplus(x)``: for
  labels in [0, 1] both terms are non-negative, each is computed to a relative
  eps (softplus is ``max(x, 0) + log1p(exp(-|x|))``, a sum of non-negative
  terms; ``1 - z`` is exact for ``z >= 1/2`` and relative-eps otherwise), and
  their sum adds one more: the error is a few eps of ``|L|`` and the scale is
  0. Labels outside [0, 1] make the terms' signs differ; the scale is then the
  size of the terms beyond ``|L|``. The documented TensorFlow form ``max(x, 0)
  - x z + log1p(exp(-|x|))`` cancels ``x`` against ``x z`` for soft labels near
  1 and large positive logits: outside.
* Binary cross-entropy on probabilities ``L = -(z log p + (1 - z) log1p(-p))``:
  both logs are relative-eps accurate in their own conditioning (``log p`` and
  ``log1p(-p)`` of an exact input), so the scale is again the size of the two
  terms beyond ``|L|``, 0 for labels in [0, 1]. ``log(1 - p)`` rounds ``1 - p``
  at the size of 1, an absolute eps that is the whole loss for ``p`` near eps:
  outside.
* Keras' categorical losses on probabilities renormalise ``q = p / sum p``
  (relative eps in each ``q_c``, an absolute eps in its log): ``sum_c |y_c|``,
  grown where ``q`` is subnormal. Keras' sparse loss on probabilities is
  softmax over the computed ``log p``, whose every entry is an intermediate
  rounded at its own size: ``|max log p| + sum_c |y_c| (|log p_c| + 1)``.
* Reductions carry each element's scale through the binding's weighting and
  add ``ceil(log2 n)`` partial sums of the output's size (pairwise summation).

K, one number per dtype, is set from measurements of the frameworks on the
suite's cases ("needed K" is the smallest K that passes a check: ``K *
bound_ratio``; the accuracy report prints the bound use of every cell):

Measured on the whole suite under the scales above (7987 passed, 352 known
divergences; pinned versions, this project's 2-core CI machine, 2026-12-01):

* float64 and float32, K = 8. Loss: the worst needed K of a passing check is
  6.76 in float64 (torch's binary_cross_entropy_with_logits with weight and
  pos_weight, summing two rounded terms) and 5.37 in float32
  (tf.nn.sigmoid_cross_entropy_with_logits on seeded soft labels: its
  cancellation stays inside the bound in float32 there, not in float64); the
  median is 0.15. Gradient: 7.23 in float32 (torch's probability-target
  cross_entropy over a 32000-token vocabulary: the row sum of the targets is a
  32000-term sum) and 2.91 in float64. A relative error of 1e-5 in a float32
  loss of order 1 is 84 eps: ten times over the bound.
* float16 and bfloat16, K = 1: tf.nn, torch and XLA compute half-precision
  losses through float32 and round once (tf.nn's sparse kernel in bfloat16
  does not: tf_sparse_softmax_bfloat16_sum), so one eps of the output format is
  room enough: the worst needed K is 0.864 (float16) and 0.861 (bfloat16) for
  losses, 0.91 and 0.81 for gradients. With K = 1 a relative error of 1e-3
  (1.02 eps) fails in float16 where nothing but the loss is rounded; in
  bfloat16 it cannot be seen at all (half an ULP is 3.9e-3), and 1e-2 fails.
  torch's binary_cross_entropy, which rounds every step in float16, needs 1.95
  there: a finding (torch_bce_half_rounds_each_step), not a wider K.
* A binding that computes every step in the output dtype (Keras, whose dtype
  policy is documented as "the dtype of the loss's computations") gets twice
  the half-precision K: its chains of half-precision operations measure up to
  1.22 eps for losses (the categorical focal loss with smoothing) and 1.33 for
  gradients (sparse categorical cross-entropy) in bfloat16, 0.85 and 0.60 in
  float16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conformance.bindings import Problem, family_of
from conformance.dtypes import FORMATS, ulp
from reference import core

K = {
    "float64": 8.0,
    "float32": 8.0,
    "float16": 1.0,
    "bfloat16": 1.0,
}


def family_scale(problem: Problem) -> np.ndarray:
    """Per-element intermediate scale for the family's unreduced loss, shaped like
    it: per example for the categorical families, per element for the binary ones.
    Each is what the best stable algorithm rounds beyond the loss itself, in
    quantities the loss depends on (the derivations are in the module docstring):

    * softmax families: ``sum_c |y_c| (d_c + 1)`` with ``d_c = max x - x_c``, the
      distances from the row maximum: a common offset of every logit never
      widens it;
    * sparse categorical on probabilities (Keras: softmax over the computed
      ``log p``): ``|max log p| + sum_c |y_c| (|log p_c| + 1)``, since every
      ``log p_c`` is an intermediate rounded at its own size;
    * categorical on probabilities: ``sum_c |y_c|``, the renormalisation's
      rounding of each probability (a relative eps, so an absolute eps in its log);
    * sigmoid: ``|z| softplus(-x) + |1 - z| softplus(x) - |loss|``, the size of
      the two terms beyond the loss: 0 for labels in [0, 1], where both terms
      are non-negative;
    * binary on probabilities: ``|z log p| + |(1 - z) log1p(-p)| - |loss|``,
      likewise 0 for labels in [0, 1].
    """
    family = problem.family
    labels = problem.labels
    if family_of(family).softmax:
        x = np.moveaxis(core.to_work(problem.prediction), problem.axis, -1)
        y = _label_sizes(problem, x)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(x)
            top = (np.max(np.where(finite, x, core.work(-np.inf)), axis=-1, keepdims=True) if x.shape[-1]
                   else np.zeros(x.shape[:-1] + (1,), core.WORK))
            distance = np.where(finite & np.isfinite(top), top - x, core.work(0))
            return np.sum(core.mul0(y, distance + 1), axis=-1)
    if family == "sparse_categorical_probs":
        x = np.moveaxis(core.to_work(problem.prediction), problem.axis, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(np.abs(x))
            finite_x = np.where(np.isfinite(x), np.abs(x), core.work(0))
        y = _label_sizes(problem, x)
        top = np.max(finite_x, axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1], core.WORK)
        return top + np.sum(core.mul0(y, finite_x + 1), axis=-1)
    if family == "categorical_probs":
        y = np.moveaxis(np.abs(core.to_work(labels)), problem.axis, -1)
        p = np.moveaxis(core.to_work(problem.prediction), problem.axis, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = p / np.sum(p, axis=-1, keepdims=True)
        return np.sum(core.mul0(y, subnormal_growth(q, problem.dtype)), axis=-1)
    if family == "sigmoid":
        x = core.to_work(problem.prediction)
        z = core.to_work(labels)
        terms = (np.abs(core.mul0(z, core.softplus(-x))), np.abs(core.mul0(1 - z, core.softplus(x))))
    elif family == "binary_probs":
        z = core.to_work(labels)
        p = core.to_work(problem.prediction)
        terms = (np.abs(core.mul0(z, core.log_probabilities(p))), np.abs(core.mul0(1 - z, core.log1m_probabilities(p))))
    else:
        raise ValueError(f"unknown family {family!r}")
    with np.errstate(invalid="ignore"):
        size = terms[0] + terms[1]
        # where both terms share a sign the loss is their sum and nothing cancels
        beyond = size - np.abs(_signed_sum(z, terms))
        return np.where(np.isfinite(beyond) & (beyond > 0), beyond, core.work(0))


def _signed_sum(z, terms):
    """The loss as the sum of its two terms with their signs: the first term
    has the sign of ``z``, the second that of ``1 - z`` (both terms' logs are
    of the same sign for a valid prediction)."""
    return np.sign(z) * terms[0] + np.sign(1 - z) * terms[1]


def _label_sizes(problem: Problem, x) -> np.ndarray:
    """|y| along the last axis of ``x``: the soft labels, or one-hot rows for
    class labels."""
    if problem.family == "softmax":
        return np.abs(np.moveaxis(core.to_work(problem.labels), problem.axis, -1))
    return _one_hot(problem.labels, x, problem.axis)


def subnormal_growth(q, dtype: str) -> np.ndarray:
    """max(1, tiny / (eps q)): a probability rounded into the subnormal range of
    ``dtype`` carries an absolute error (half the smallest subnormal), not a
    relative one, so its log moves by tiny / q instead of eps."""
    fmt = FORMATS[dtype]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = fmt.smallest_subnormal / (fmt.eps * np.abs(core.to_work(q)))
    return np.where(np.isfinite(growth), np.maximum(growth, core.work(1)), core.work(1))


def _one_hot(labels, x, axis) -> np.ndarray:
    """|y| for sparse labels, as a one-hot array along the last axis of ``x``
    (labels that keep a size-1 class axis, (N, 1) beside (N, C), are indices too)."""
    indices = np.asarray(labels)
    if indices.ndim == x.ndim and indices.shape[axis] == 1:
        indices = np.squeeze(indices, axis=axis)
    return (indices.astype(np.int64)[..., None] == np.arange(x.shape[-1])).astype(core.WORK)


@dataclass
class Verdict:
    """The measured error of one output against the exact value."""

    ok: bool
    max_ulp: float
    median_ulp: float
    max_abs_error: float
    worst_index: tuple
    worst_ratio: float  # |got - exact| / bound at the worst element (> 1 fails)
    n_failed: int
    n_elements: int
    problem: str  # empty when ok; else what broke (shape, NaN, bound)
    bound_at_worst: float
    scale_at_worst: float
    error_at_worst: float = math.nan
    ulp_at_worst: float = math.nan


HALF_PRECISION = ("float16", "bfloat16")


def k_for(dtype: str, binding=None) -> float:
    """K of the table, doubled in half precision for a binding whose every step
    rounds to the output dtype."""
    k = K[dtype]
    if binding is not None and dtype in HALF_PRECISION and getattr(binding, "computes_in_output_dtype", False):
        return 2 * k
    return k


def bound(exact: np.ndarray, scale: np.ndarray, dtype: str, k: float | None = None) -> np.ndarray:
    """The allowed absolute error of each element."""
    fmt = FORMATS[dtype]
    k = K[dtype] if k is None else k
    return k * fmt.eps * (np.abs(exact) + scale) + k * fmt.smallest_subnormal


def _round(values, dtype: str) -> np.ndarray:
    from conformance.dtypes import NUMPY

    with np.errstate(over="ignore", invalid="ignore"):
        return core.to_work(values.astype(np.float64).astype(NUMPY[dtype]))


def compare(got, exact, scale, dtype: str, k: float | None = None) -> Verdict:
    """Compares an output with the exact value under the model; NaN must meet
    NaN and an infinity the same infinity."""
    got_w = core.to_work(got)
    exact_w = core.to_work(exact)
    scale_w = np.broadcast_to(core.to_work(scale), exact_w.shape) if np.size(scale) else core.to_work(scale)
    if got_w.shape != exact_w.shape:
        return Verdict(False, math.inf, math.inf, math.inf, (), math.inf, exact_w.size, exact_w.size,
                       f"shape {got_w.shape} where {exact_w.shape} was expected", math.nan, math.nan)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # an exact value beyond the format's range rounds to an infinity: that is the right answer
        overflows = np.isfinite(exact_w) & np.isinf(_round(exact_w, dtype))
        exact_w = np.where(overflows, _round(exact_w, dtype), exact_w)
        error = np.abs(got_w - exact_w)
        limits = bound(exact_w, scale_w, dtype, k)
        # a non-finite exact value allows no error at all: only itself matches
        limits = np.where(np.isfinite(limits), limits, core.work(0))
        same_special = (np.isnan(got_w) & np.isnan(exact_w)) | (np.isinf(exact_w) & (got_w == exact_w))
        special_exact = ~np.isfinite(exact_w)
        error = np.where(same_special, core.work(0), np.where(np.isnan(error) | special_exact, core.work(np.inf), error))
        ulps = error / ulp(exact_w, dtype)
        ratio = np.where(error == 0, core.work(0), np.where(limits > 0, error / limits, core.work(np.inf)))
    failed = ratio > 1
    n_failed = int(np.count_nonzero(failed))
    if ratio.size:
        flat_worst = int(np.argmax(ratio))
        worst = np.unravel_index(flat_worst, ratio.shape) if ratio.ndim else ()
        worst_ratio = float(ratio.reshape(-1)[flat_worst])
        bound_at_worst = float(np.broadcast_to(limits, ratio.shape).reshape(-1)[flat_worst])
        scale_at_worst = float(np.broadcast_to(scale_w, ratio.shape).reshape(-1)[flat_worst])
        error_at_worst = float(error.reshape(-1)[flat_worst])
        ulp_at_worst = float(ulps.reshape(-1)[flat_worst])
    else:
        worst, worst_ratio, bound_at_worst, scale_at_worst = (), 0.0, 0.0, 0.0
        error_at_worst = ulp_at_worst = 0.0
    finite_ulps = ulps[np.isfinite(ulps)]
    problem = ""
    if n_failed:
        nan_mismatch = int(np.count_nonzero(np.isnan(got_w) != np.isnan(exact_w)))
        problem = (f"{n_failed} of {ratio.size} elements outside the bound"
                   + (f" ({nan_mismatch} NaN where a number was expected or the reverse)" if nan_mismatch else ""))
    return Verdict(
        ok=n_failed == 0,
        max_ulp=float(np.max(ulps)) if ulps.size else 0.0,
        median_ulp=float(np.median(finite_ulps)) if finite_ulps.size else 0.0,
        max_abs_error=float(np.max(error)) if error.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        worst_ratio=worst_ratio,
        n_failed=n_failed,
        n_elements=int(ratio.size),
        problem=problem,
        bound_at_worst=bound_at_worst,
        scale_at_worst=scale_at_worst,
        error_at_worst=error_at_worst,
        ulp_at_worst=ulp_at_worst,
    )


def output_scale(binding, problem: Problem, exact_output: np.ndarray) -> np.ndarray:
    """The scale of the binding's output: the family's per-element scale carried
    through the binding's weighting and reduction, plus, where elements are
    summed, the partial sums a pairwise summation rounds: ``ceil(log2 n)``
    times their size, which for non-negative losses is ``|exact|``."""
    scale = binding.scale(problem) if binding.scale is not None else family_scale(problem)
    if binding.reduce is None:
        return scale
    # weights may be negative (a divisor too): the scale is a size
    reduced_scale = np.abs(core.to_work(binding.reduce(scale, problem)))
    n_in = max(1, np.size(scale))
    n_out = max(1, np.size(reduced_scale))
    if n_in > n_out:
        growth = math.ceil(math.log2(n_in / n_out))
        with np.errstate(invalid="ignore"):
            magnitude = np.where(np.isfinite(exact_output), np.abs(core.to_work(exact_output)), core.work(0))
        reduced_scale = reduced_scale + growth * magnitude
    return reduced_scale
