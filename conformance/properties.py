"""Invariants every cross-entropy API must satisfy, as checks on one Problem.

Each function takes the binding(s) and a drawn Problem and raises
AssertionError when the invariant breaks; the message ends with the problem as
a YAML case, ready to paste into ``cases/regressions.yaml``. The tolerance of
a relation between two outputs is the sum of the tolerance model's bounds for
each (each output may lie that far from its exact value, and the exact values
satisfy the relation exactly).
"""

from __future__ import annotations

import collections
import dataclasses
import functools

import numpy as np

from conformance.bindings import Binding, Problem, family_of
from conformance.dtypes import NUMPY, round_to
from conformance.strategies import as_yaml_case
from conformance.tolerance import bound, compare, family_scale, k_for, output_scale
from reference import core


@functools.lru_cache(maxsize=1)
def _divergences():
    from conformance.divergences import load

    return tuple(load())


# The examples of the current test item ("examples"), and by (divergence id, "weakly bound" | "left out")
# those whose elements a known divergence's region held to its weaker algorithm's bound, or left out. The
# property tests move them into their items' reports; the property report sums them (conformance.reports).
TALLY: collections.Counter = collections.Counter()
_EXAMPLE: set = set()


def tallied(check):
    """Counts each (divergence, treatment) once per example of ``check``."""

    @functools.wraps(check)
    def run_one(*args, **kwargs):
        _EXAMPLE.clear()
        TALLY["examples"] += 1
        try:
            return check(*args, **kwargs)
        finally:
            TALLY.update(_EXAMPLE)
            _EXAMPLE.clear()

    return run_one


def _fit(mask: np.ndarray, shape) -> np.ndarray:
    while mask.ndim > len(shape):  # Keras' binary losses average the last axis
        mask = mask.any(axis=-1)
    return np.broadcast_to(mask, shape)


def _regions(binding: Binding, problem: Problem, kinds=None) -> list:
    """(entry, inside, weaker scale or None) of each known divergence's region for the binding (see
    conformance.regions): the scale is inf where the region has no bound."""
    from conformance.divergences import known_regions
    from conformance.regions import WEAKER_SCALES

    found = []
    for entry, inside in known_regions(_divergences(), binding.id, problem, kinds):
        if not np.any(inside):
            continue
        weaker = WEAKER_SCALES.get(entry.region)
        scale = np.full(np.shape(inside), np.inf) if weaker is None else weaker(problem)
        found.append((entry, inside, np.broadcast_to(np.asarray(scale, np.float64), np.shape(inside))))
    return found


def outside_known_regions(binding: Binding, problem: Problem, shape, kinds=None) -> np.ndarray:
    """True where no known divergence's region leaves the element out (see conformance.regions): a region
    with a weaker algorithm's bound keeps its elements, held to that bound by ``run(..., in_regions=True)``;
    only the regions of divergences of ``kinds`` where given."""
    left_out = np.zeros(shape, bool)
    for entry, inside, scale in _regions(binding, problem, kinds):
        out = _fit(inside & ~np.isfinite(scale), shape)
        if np.any(out):
            _EXAMPLE.add((entry.id, "left out"))
            left_out = left_out | out
    return ~left_out


def _scale(binding: Binding, problem: Problem, exact: np.ndarray) -> np.ndarray:
    """The output's scale (conformance.tolerance.output_scale), with the weaker algorithm's scale inside
    each known divergence's region that has one."""
    held = [(entry, inside & np.isfinite(scale), scale) for entry, inside, scale in _regions(binding, problem)
            if np.any(inside & np.isfinite(scale))]
    if not held:
        return output_scale(binding, problem, exact)
    base = binding.scale(problem) if binding.scale is not None else family_scale(problem)
    weaker = np.zeros(np.shape(base))
    for entry, inside, scale in held:
        if np.shape(inside) != np.shape(base):
            continue  # a region of another shape (a row's, for elements): its elements stay at the model's bound
        weaker = np.where(inside, np.maximum(weaker, scale), weaker)
        _EXAMPLE.add((entry.id, "weakly bound"))
    return output_scale(dataclasses.replace(binding, scale=lambda _: np.maximum(base, weaker)), problem, exact)


def _fail(what: str, problem: Problem, detail: str = "") -> None:
    raise AssertionError(f"{what}\n{detail}\nAs a case (cases/regressions.yaml):\n{as_yaml_case(problem)}")


def _with(problem: Problem, **changes) -> Problem:
    inputs = {**problem.inputs, **changes.pop("inputs", {})}
    options = {**problem.options, **changes.pop("options", {})}
    return dataclasses.replace(problem, inputs=inputs, options=options, **changes)


def _resolved(binding: Binding, problem: Problem) -> Problem:
    """The binding's harness defaults (unreduced output) and the dtype's rounding
    of real-valued options, as for a case."""
    from conformance.problems import resolve_options

    return dataclasses.replace(problem, options=resolve_options(problem.options, binding, problem.dtype))


def run(binding: Binding, problem: Problem, in_regions: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """(output, its allowed error, output dtype) of a binding on a problem; ``in_regions``: the weaker
    algorithm's bound inside the known divergences' regions, for the properties that would otherwise leave
    those elements out (the others passed there at the model's bound, and keep it)."""
    problem = _resolved(binding, problem)
    got = np.asarray(binding.call(problem))
    dtype = got.dtype.name if got.dtype.name in NUMPY else problem.dtype
    exact = core.to_work(binding.reference(problem))
    scale = _scale(binding, problem, exact) if in_regions else output_scale(binding, problem, exact)
    allowed = bound(exact, scale, dtype, k_for(dtype, binding))
    return core.to_work(got), allowed, dtype


def _close(first, second, allowed, dtype: str) -> np.ndarray:
    """Within ``allowed`` of each other; an infinity of ``dtype`` also matches a
    value that, within ``allowed``, reaches past its largest finite value by
    half an ULP, where rounding to ``dtype`` overflows (a sum of large losses)."""
    from conformance.dtypes import FORMATS, ulp

    largest = core.work(FORMATS[dtype].max)
    overflow = largest + ulp(largest, dtype) / 2  # where rounding to nearest gives inf
    with np.errstate(invalid="ignore"):
        same = (np.isnan(first) & np.isnan(second)) | (first == second)
        rounds_to = ((np.isinf(first) & (np.sign(first) * second + allowed >= overflow))
                     | (np.isinf(second) & (np.sign(second) * first + allowed >= overflow)))
        return same | rounds_to | (np.abs(first - second) <= allowed)


@tallied
def agrees_with_reference(binding: Binding, problem: Problem) -> None:
    problem = _resolved(binding, problem)
    exact = core.to_work(binding.reference(problem))
    got = np.asarray(binding.call(problem))
    dtype = got.dtype.name if got.dtype.name in NUMPY else problem.dtype
    scale = np.broadcast_to(_scale(binding, problem, exact), exact.shape)
    keep = outside_known_regions(binding, problem, exact.shape) if got.shape == exact.shape else True
    verdict = compare(got[keep], exact[keep], scale[keep], dtype, k_for(dtype, binding))
    if not verdict.ok:
        _fail(f"{binding.api} disagrees with the reference", problem,
              f"worst at {verdict.worst_index}: error {verdict.error_at_worst:.3g} ({verdict.ulp_at_worst:.3g} ULP), "
              f"bound {verdict.bound_at_worst:.3g}; {verdict.problem}")


@tallied
def shift_invariant(binding: Binding, problem: Problem, shift: int) -> None:
    """softmax(x + c) = softmax(x): the loss does not move when a row shifts."""
    x = round_to(np.round(problem.inputs["logits"].astype(np.float64) * 8) / 8, problem.dtype)
    problem = _with(problem, inputs={"logits": x})
    shifted = round_to(x.astype(np.float64) + shift, problem.dtype)
    if not np.array_equal(shifted.astype(np.float64), x.astype(np.float64) + shift):
        raise ValueError("the shift must be exact in the dtype: draw smaller logits")
    first, allowed_first, dtype = run(binding, problem)
    second, allowed_second, _ = run(binding, _with(problem, inputs={"logits": shifted}))
    if not np.all(_close(first, second, allowed_first + allowed_second, dtype)):
        _fail(f"{binding.api} changes when every logit moves by {shift}", problem,
              f"loss {first.astype(float)} and {second.astype(float)}")


@tallied
def permutation_equivariant(binding: Binding, problem: Problem, permutation: np.ndarray) -> None:
    """Reordering the classes (and the labels with them) leaves the loss alone."""
    x = problem.inputs["logits"]
    labels = problem.labels
    if problem.family == "softmax":
        moved_labels = labels[..., permutation]
    else:
        moved_labels = np.argsort(permutation)[labels]
    first, allowed_first, dtype = run(binding, problem)
    second, allowed_second, _ = run(binding, _with(problem, inputs={"logits": x[..., permutation],
                                                                       "labels": moved_labels}))
    if not np.all(_close(first, second, allowed_first + allowed_second, dtype)):
        _fail(f"{binding.api} depends on the order of the classes", problem,
              f"permutation {permutation.tolist()}: {first.astype(float)} and {second.astype(float)}")


@tallied
def sparse_equals_dense(sparse: Binding, dense: Binding, problem: Problem) -> None:
    """Class indices and their one-hot rows give the same loss."""
    one_hot = round_to((problem.labels[..., None] == np.arange(problem.inputs["logits"].shape[-1])).astype(float),
                       problem.dtype)
    dense_problem = _with(problem, family="softmax", inputs={"labels": one_hot})
    first, allowed_first, dtype = run(sparse, problem, in_regions=True)
    second, allowed_second, _ = run(dense, dense_problem, in_regions=True)
    # a known divergence of either binding (the dense form's NaN at a -inf log-probability, say)
    keep = outside_known_regions(sparse, problem, first.shape) & outside_known_regions(dense, dense_problem,
                                                                                        first.shape)
    if not np.all(_close(first, second, allowed_first + allowed_second, dtype)[keep]):
        _fail(f"{sparse.api} and {dense.api} on one-hot labels disagree", problem,
              f"{first.astype(float)} and {second.astype(float)}")


@tallied
def sigmoid_is_two_class_softmax(sigmoid: Binding, softmax: Binding, problem: Problem) -> None:
    """sigmoid CE of (x, z) = softmax CE of logits (0, x) with labels (1 - z, z)."""
    x, z = problem.inputs["logits"], problem.labels
    pair_logits = np.stack([np.zeros_like(x), x], axis=-1)
    pair_labels = np.stack([round_to(1 - z.astype(np.float64), problem.dtype), z], axis=-1)
    first, allowed_first, dtype = run(sigmoid, problem, in_regions=True)
    pair = Problem("softmax", {"logits": pair_logits, "labels": pair_labels}, {}, problem.dtype)
    second, allowed_second, _ = run(softmax, pair, in_regions=True)
    if first.shape != second.shape:  # Keras' binary loss is the mean over the last axis
        second, allowed_second = second.mean(axis=-1), allowed_second.mean(axis=-1)
    # a known divergence of either binding: the sigmoid one's on the elements, the softmax one's on their rows
    keep = outside_known_regions(sigmoid, problem, first.shape) & outside_known_regions(softmax, pair, first.shape)
    if not np.all(_close(first, second, allowed_first + allowed_second, dtype)[keep]):
        _fail(f"{sigmoid.api} and {softmax.api} on [0, x] disagree", problem,
              f"{first.astype(float)} and {second.astype(float)}")


# the family of the same loss on probability labels, for a family of class indices
SOFT_LABEL_FAMILY = {"sparse_softmax": "softmax", "sparse_categorical_probs": "categorical_probs"}


@tallied
def label_smoothing_mixes(binding: Binding, problem: Problem, smoothing: float, uniform_binding: Binding) -> None:
    """L with smoothing e = (1 - e) L(labels) + e L(uniform labels)."""
    smoothed_problem = _with(problem, options={"label_smoothing": smoothing})
    smoothed, allowed_smoothed, dtype = run(binding, smoothed_problem, in_regions=True)
    plain, allowed_plain, _ = run(binding, problem, in_regions=True)
    shape = problem.inputs[_prediction_name(problem)].shape
    value = 0.5 if family_of(problem.family).elementwise else 1.0 / shape[-1]
    uniform_labels = round_to(np.full(shape, value), problem.dtype)
    family = SOFT_LABEL_FAMILY.get(problem.family, problem.family)
    uniform_problem = _with(problem, family=family, inputs={"labels": uniform_labels})
    uniform, allowed_uniform, _ = run(uniform_binding, uniform_problem, in_regions=True)
    e = core.work(smoothing)
    mixed = (1 - e) * plain + e * uniform
    # a known divergence of any of the three losses
    keep = (outside_known_regions(binding, smoothed_problem, mixed.shape)
            & outside_known_regions(binding, problem, mixed.shape)
            & outside_known_regions(uniform_binding, uniform_problem, mixed.shape))
    if not np.any(keep):
        return  # every row lies in a known divergence of one of the three losses
    if smoothed.shape != mixed.shape:
        _fail(f"{binding.api}: label_smoothing={smoothing} changes the output's shape", problem,
              f"{smoothed.shape} where {mixed.shape} was expected")
    if not np.all(_close(smoothed, mixed, allowed_smoothed + allowed_plain + allowed_uniform, dtype)[keep]):
        _fail(f"{binding.api}: label_smoothing={smoothing} is not the mix of the plain and uniform losses", problem,
              f"{smoothed.astype(float)} and {mixed.astype(float)}")


def _prediction_name(problem: Problem) -> str:
    return "logits" if "logits" in problem.inputs else "probs"


@tallied
def focal_without_focus_is_plain(focal: Binding, plain: Binding, problem: Problem) -> None:
    """gamma = 0 (and no class weighting) turns a focal loss into the plain one."""
    options = {"gamma": 0.0}
    if "alpha" in focal.options and family_of(problem.family).soft:
        options["alpha"] = 1.0
    first, allowed_first, dtype = run(focal, _with(problem, options=options), in_regions=True)
    second, allowed_second, _ = run(plain, problem, in_regions=True)
    keep = outside_known_regions(focal, problem, np.shape(first))
    if not np.all(_close(first, second, allowed_first + allowed_second, dtype)[keep]):
        _fail(f"{focal.api} with gamma=0 differs from {plain.api}", problem,
              f"{first.astype(float)} and {second.astype(float)}")


@tallied
def sum_is_sum_of_none(binding: Binding, problem: Problem) -> None:
    total, allowed_total, dtype = run(binding, _with(problem, options={"reduction": "sum"}))
    values, allowed_values, _ = run(binding, _with(problem, options={"reduction": "none"}))
    if not _close(total, np.sum(values), allowed_total + np.sum(allowed_values), dtype):
        _fail(f"{binding.api}: reduction='sum' is not the sum of reduction='none'", problem,
              f"{float(total)} and {float(np.sum(values))}")


@tallied
def mean_is_weighted_sum_over_weights(binding: Binding, problem: Problem, weights: np.ndarray) -> None:
    """torch's mean with class weights, Keras' mean_with_sample_weight: sum / sum of weights. Not judged where a
    known divergence leaves an element without a bound because its failure is a non-finite value or a narrower
    type overflows there (Keras on torch divides a float64 sum in float32: the mean of a loss past float32's
    range is inf where the sum is finite)."""
    if not outside_known_regions(binding, problem, (), kinds=("special-values", "dtype")):
        return
    if "weight" in binding.options:
        options, divisor = {"weight": weights}, np.sum(weights.astype(np.float64)[problem.labels])
        mean_name = "mean"
    else:
        options, divisor = {"sample_weight": weights}, np.sum(weights.astype(np.float64))
        mean_name = "mean_with_sample_weight"
    mean, allowed_mean, dtype = run(binding, _with(problem, options={**options, "reduction": mean_name}))
    total, allowed_total, _ = run(binding, _with(problem, options={**options, "reduction": "sum"}))
    expected = total / core.work(divisor)
    if not _close(mean, expected, allowed_mean + allowed_total / core.work(divisor), dtype):
        _fail(f"{binding.api}: the weighted mean is not the weighted sum over the summed weights", problem,
              f"{float(mean)} and {float(expected)} (weights {weights.astype(float).tolist()})")


@tallied
def non_negative(binding: Binding, problem: Problem) -> None:
    got, allowed, _ = run(binding, problem)
    if np.any(got < -allowed):
        _fail(f"{binding.api} returns a negative loss for labels in [0, 1]", problem, f"{got.astype(float)}")


@tallied
def finite_where_the_loss_is(binding: Binding, problem: Problem) -> None:
    """Finite inputs and a finite exact loss (in the output dtype) give a finite loss, except in the regions
    of the known divergences whose failure is a non-finite value (kind special-values) and where a dtype
    divergence's narrower type leaves an element without a bound (it overflows there): the regions of the
    others, which are only less accurate, stay in."""
    problem = _resolved(binding, problem)
    got = np.asarray(binding.call(problem))  # no bound: finiteness is the property
    dtype = got.dtype.name if got.dtype.name in NUMPY else problem.dtype
    exact = np.asarray(binding.reference(problem), dtype=np.float64)
    with np.errstate(over="ignore"):
        representable = np.isfinite(exact.astype(NUMPY[dtype]).astype(np.float64))
    if np.shape(got) == representable.shape:
        representable &= outside_known_regions(binding, problem, representable.shape,
                                               kinds=("special-values", "dtype"))
    if np.any(representable & ~np.isfinite(got)):
        _fail(f"{binding.api} returns a non-finite loss where the exact one is finite", problem,
              f"{got.astype(float)} against {exact}")


@tallied
def at_least_minus_log_max_probability(binding: Binding, problem: Problem) -> None:
    """For labels summing to 1: L >= -log(max_c softmax(x)_c)."""
    got, allowed, _ = run(binding, problem, in_regions=True)
    floor = np.min(core.neg_log_softmax(problem.inputs["logits"], extended=True), axis=-1)
    if np.ndim(got) < floor.ndim:  # a metric: the mean over the samples
        floor = np.mean(floor.reshape(floor.shape[0], -1).mean(axis=-1))
    keep = outside_known_regions(binding, problem, np.shape(got)) if np.ndim(got) == floor.ndim else True
    if np.any((got < floor - allowed) & keep):
        _fail(f"{binding.api} falls below -log(max softmax)", problem, f"{got.astype(float)} against {floor}")


@tallied
def gradient_sums_to_zero(binding: Binding, problem: Problem) -> None:
    """d L / d logits = A softmax(x) - a sums to A - A = 0 over the classes."""
    from conformance.dtypes import FORMATS

    problem = _resolved(binding, problem)
    grads = np.asarray(binding.gradient(problem)["logits"])
    _, scale = binding.reference_gradient(problem)["logits"]
    dtype = grads.dtype.name
    total = np.sum(core.to_work(grads), axis=-1)
    # each element may be off by its bound; their sum by the sum of the bounds
    k = k_for(dtype, binding)
    allowed = k * FORMATS[dtype].eps * np.sum(scale, axis=-1) + scale.shape[-1] * k * FORMATS[dtype].smallest_subnormal
    if np.any(np.abs(total) > allowed):
        _fail(f"{binding.api}: the gradient does not sum to 0 over the classes", problem,
              f"sums {total.astype(float)}, allowed {np.asarray(allowed, dtype=float)}")
