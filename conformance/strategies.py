"""Hypothesis strategies for the property tests, shared by every framework.

A strategy draws a :class:`Problem` of one loss family in one dtype, from one
of four regimes of logits:

* ``ordinary``: values within +-20, the everyday range of trained models;
* ``wide``: within +-1e4 for half precision and float32 (float16's range is
  65504), +-1e30 for float64: shifting by the max must keep them finite;
* ``ties``: drawn from a handful of values, so rows have tied maxima;
* ``whole``: each element from the ordinary range or from the dtype's whole
  finite range (to 65504, 3.4e38, 1.8e308), so that rows mix everyday values
  with extreme ones and their spread can exceed what the dtype represents.

Logits are dyadic (a few significant bits) so that shifting them by an integer
is exact in every dtype, and the invariance properties compare like with like.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.bindings import Problem, PropertyShapes, family_of
from conformance.dtypes import FORMATS, round_to

REGIMES = ("ordinary", "wide", "ties", "whole")
WIDE = {"float16": 1e4, "bfloat16": 1e4, "float32": 1e4, "float64": 1e30}
ORDINARY = 20.0
TIE_VALUES = (-3.0, 0.0, 0.0, 1.5, 1.5, 1.5)
# sigmoid losses whose exact value is subnormal (|x| in these bands with the
# right label) are flushed to 0 by TensorFlow: the fixed case
# sigmoid_tiny_losses covers that divergence; a property would only hit the
# band by chance, so the sigmoid strategies leave it out.
SUBNORMAL_BANDS = {"float16": (np.inf, np.inf), "bfloat16": (87.0, 104.0), "float32": (87.0, 104.0),
                   "float64": (708.0, 746.0)}


def _dyadic(value: float, bits: int = 12) -> float:
    """``value`` with only ``bits`` significant bits: exact after integer shifts."""
    if value == 0 or not np.isfinite(value):
        return float(value)
    mantissa, exponent = np.frexp(value)
    with np.errstate(over="ignore"):  # float64's largest values round up to inf; logits() clips them back
        return float(np.ldexp(np.round(mantissa * 2.0**bits), int(exponent) - bits))


@functools.cache
def _values(shape, dtype: str, regime: str):
    """The array strategy of one shape and regime, built once: hypothesis
    validates a strategy the first time it draws from it."""
    if regime == "ties":
        return hnp.arrays(np.float64, shape, elements=st.sampled_from(TIE_VALUES))
    if regime == "whole":
        largest = float(FORMATS[dtype].max)
        return hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(-ORDINARY, ORDINARY),
                                                               st.floats(-largest, largest)))
    bound = ORDINARY if regime == "ordinary" else WIDE[dtype]
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_nan=False))


@st.composite
def logits(draw, shape, dtype: str, regime: str) -> np.ndarray:
    values = draw(_values(tuple(shape), dtype, regime))
    if values.size:  # keeping 12 bits may round the largest values up, past the dtype's range
        largest = FORMATS[dtype].max
        with np.errstate(over="ignore"):  # the vectorised loop reports _dyadic's overflow again
            values = np.clip(np.vectorize(_dyadic)(values), -largest, largest)
    return round_to(values, dtype)


BATCH_MAX, CLASSES_MAX = 4, 7


def _drawn(draw, low: int, high: int, pool: tuple[int, ...] | None, what: str) -> int:
    if pool is None:
        return draw(st.integers(low, high))
    allowed = [value for value in pool if low <= value <= high]
    if not allowed:
        raise ValueError(f"none of the {what} {pool} lies in [{low}, {high}]")
    return draw(st.sampled_from(allowed))


def _shape(draw, rank_min: int = 2, rank_max: int = 2, classes_min: int = 2,
           shapes: PropertyShapes = PropertyShapes()) -> tuple[int, ...]:
    """A rank from ``rank_min`` to ``rank_max``, batch dimensions of 1 to 4 and a last axis of
    ``classes_min`` to 7, or only those of ``shapes`` (Binding.property_shapes) within those ranges."""
    rank = _drawn(draw, rank_min, rank_max, shapes.ranks, "ranks")
    batch = tuple(_drawn(draw, 1, BATCH_MAX, shapes.sizes, "sizes") for _ in range(rank - 1))
    return batch + (_drawn(draw, classes_min, CLASSES_MAX, shapes.sizes, "sizes"),)


@st.composite
def soft_labels(draw, shape, dtype: str) -> np.ndarray:
    """Non-negative rows summing to 1 (up to the dtype's rounding), some one-hot."""
    if draw(st.booleans()):
        index = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
        return round_to((index[..., None] == np.arange(shape[-1])).astype(float), dtype)
    weights = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 2.0])))
    weights[..., 0] += 0.0625
    return round_to(weights / weights.sum(axis=-1, keepdims=True), dtype)


@st.composite
def class_problems(draw, family: str, dtype: str, regime: str | None = None, rank_max: int = 3,
                   shapes: PropertyShapes = PropertyShapes()) -> Problem:
    """softmax (soft labels) or sparse_softmax (class indices), class axis last."""
    regime = regime or draw(st.sampled_from(REGIMES))
    shape = _shape(draw, 2, rank_max, shapes=shapes)
    x = draw(logits(shape, dtype, regime))
    if family == "softmax":
        labels = draw(soft_labels(shape, dtype))
    else:
        labels = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
    return Problem(family, {"logits": x, "labels": labels}, {}, dtype)


def _outside_band(value: float, dtype: str) -> bool:
    low, high = SUBNORMAL_BANDS[dtype]
    return not (low <= abs(value) <= high)


@st.composite
def sigmoid_problems(draw, dtype: str, regime: str | None = None, shapes: PropertyShapes = PropertyShapes()) -> Problem:
    regime = regime or draw(st.sampled_from(REGIMES))
    shape = _shape(draw, 1, 2, classes_min=1, shapes=shapes)
    x = draw(logits(shape, dtype, regime))
    x = np.where(np.vectorize(lambda v: _outside_band(float(v), dtype))(x.astype(np.float64)), x, round_to(1.0, dtype))
    labels = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 0.0, 1.0, 0.25, 0.5, 0.875])))
    return Problem("sigmoid", {"logits": round_to(x, dtype), "labels": round_to(labels, dtype)}, {}, dtype)


PROBABILITY_REGIMES = ("ordinary", "whole")


def _inside_unit(probs: np.ndarray, dtype: str, smallest: str = "smallest_normal") -> np.ndarray:
    """Probabilities rounded to ``dtype`` and kept strictly inside (0, 1),
    from ``smallest`` (the format's smallest normal or subnormal value): in
    bfloat16 0.999 rounds to 1, where Keras' clip is void (a known divergence
    with its own fixed case)."""
    rounded = round_to(probs, dtype).astype(np.float64)
    below_one = 1.0 - FORMATS[dtype].eps / 2
    return round_to(np.clip(rounded, getattr(FORMATS[dtype], smallest), below_one), dtype)


@functools.cache
def _probabilities(shape, regime: str, low: float):
    """Values in [low, 1 - low]; the whole regime mixes in the whole of [0, 1],
    whose draws reach the smallest subnormals and the last values below 1
    (the callers keep them off 0 and 1)."""
    ordinary = st.floats(low, 1.0 - low)
    return hnp.arrays(np.float64, shape, elements=ordinary if regime == "ordinary" else st.one_of(
        ordinary, st.floats(0.0, 1.0)))


@st.composite
def probability_problems(draw, dtype: str, regime: str | None = None,
                         shapes: PropertyShapes = PropertyShapes()) -> Problem:
    """Binary losses on probabilities strictly inside (0, 1)."""
    regime = regime or draw(st.sampled_from(PROBABILITY_REGIMES))
    shape = _shape(draw, 1, 2, classes_min=1, shapes=shapes)
    probs = draw(_probabilities(tuple(shape), regime, 0.001))
    labels = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 0.25, 0.5])))
    smallest = "smallest_normal" if regime == "ordinary" else "smallest_subnormal"
    return Problem("binary_probs", {"probs": _inside_unit(probs, dtype, smallest), "labels": round_to(labels, dtype)},
                   {}, dtype)


@st.composite
def categorical_probability_problems(draw, family: str, dtype: str, regime: str | None = None,
                                     shapes: PropertyShapes = PropertyShapes()) -> Problem:
    regime = regime or draw(st.sampled_from(PROBABILITY_REGIMES))
    shape = _shape(draw, 2, 2, shapes=shapes)
    raw = np.maximum(draw(_probabilities(tuple(shape), regime, 0.01)), FORMATS["float64"].smallest_subnormal)
    # rows normalised in float64, then rounded; no probability rounds to 0
    probs = round_to(np.maximum(raw / raw.sum(axis=-1, keepdims=True), FORMATS[dtype].smallest_subnormal), dtype)
    if family == "categorical_probs":
        labels = draw(soft_labels(shape, dtype))
    else:
        labels = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
    return Problem(family, {"probs": probs, "labels": labels}, {}, dtype)


@functools.cache
def problems(family: str, dtype: str, regime: str | None = None, shapes: PropertyShapes = PropertyShapes()):
    """A strategy of problems of ``family`` in ``dtype``, of the shapes ``shapes`` allows."""
    if family_of(family).softmax:
        return class_problems(family, dtype, regime, shapes=shapes)
    if family == "sigmoid":
        return sigmoid_problems(dtype, regime, shapes=shapes)
    if family == "binary_probs":
        return probability_problems(dtype, regime, shapes=shapes)
    return categorical_probability_problems(family, dtype, regime, shapes=shapes)


def as_yaml_case(problem: Problem, case_id: str = "regression_from_property") -> str:
    """A falsifying problem as a case to paste into cases/regressions.yaml."""
    from conformance.options import VOCABULARY

    def literal(array) -> str:
        array = np.asarray(array)
        if array.dtype.kind in "iub":
            return str(array.tolist())
        return str(np.vectorize(lambda v: float(v).hex() if np.isfinite(v) else str(float(v)))(
            array.astype(np.float64)).tolist()).replace("'", '"')

    lines = [f"  - id: {case_id}", f"    family: {problem.family}", f"    dtypes: [{problem.dtype}]",
             "    inputs:"]
    for name, value in problem.inputs.items():
        lines.append(f"      {name}: {literal(value)}")
    options = {k: v for k, v in problem.options.items() if k in VOCABULARY}
    if options:
        lines.append("    options:")
        for name, value in options.items():
            lines.append(f"      {name}: {literal(value) if isinstance(value, np.ndarray) else value}")
    return "\n".join(lines)
