"""Published numbers: the reference must reproduce each, and no documented
wrong answer.

A published number was printed by a framework API in some dtype (float32 for
all of the source documents) to some number of digits. The reference, under
the convention of the binding that printed it and on inputs rounded to that
dtype, must come within half a unit of the last printed digit plus the error
the tolerance model allows that dtype's computation: a float32 loss carries a
few ULPs of its largest intermediate, so a small loss next to large logits
matches only to about 1e-7 absolute, not digit for digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conformance import arrays
from conformance.bindings import Binding
from conformance.cases import Case, CaseError
from conformance.problems import make_problem
from conformance.tolerance import bound, output_scale
from reference import core


@dataclass
class PublishedCheck:
    """The outcome of comparing one published number with the reference."""

    field: str
    printed_by: str
    dtype: str
    reference: np.ndarray
    published: np.ndarray
    allowed: np.ndarray
    error: np.ndarray

    @property
    def ok(self) -> bool:
        return bool(np.all(self.error <= self.allowed))


def half_printed_unit(value: np.ndarray, digits: int | None, decimals: int | None) -> np.ndarray:
    """Half a unit of the last printed digit of each value."""
    if decimals is not None:
        return np.full(value.shape, 0.5 * 10.0 ** -decimals)
    magnitude = np.where(np.isfinite(value) & (value != 0), np.abs(value), 1.0)
    return 0.5 * 10.0 ** (np.floor(np.log10(magnitude)) - digits + 1)


def _quantity(values: np.ndarray, scale: np.ndarray, quantity: str):
    values = core.to_work(values)
    if quantity == "loss":
        return values, scale
    growth = math.ceil(math.log2(max(2, values.size)))
    reduce = np.mean if quantity == "mean" else np.sum
    reduced = reduce(values)
    return reduced, reduce(np.broadcast_to(scale, values.shape)) + growth * np.abs(reduced)


def reference_for(case: Case, entry: dict, binding: Binding):
    """(value, scale) of the reference for one published entry."""
    dtype = entry.get("dtype", "float32")
    problem = make_problem(case, dtype, binding, entry.get("options") or {})
    value = core.to_work(binding.reference(problem))
    scale = output_scale(binding, problem, value)
    return _quantity(value, scale, entry.get("quantity", "loss"))


def check_published(case: Case, bindings: dict[str, Binding]) -> list[PublishedCheck]:
    """Compares every published number of ``case`` with the reference; raises
    CaseError naming the field on the first that the reference misses."""
    results = []
    for index, entry in enumerate(case.published):
        field_path = f"published[{index}]"
        binding = _binding(case, bindings, entry, field_path)
        dtype = entry.get("dtype", "float32")
        try:
            value, scale = reference_for(case, entry, binding)
        except ValueError as error:
            raise CaseError(case.file, case.base_id, field_path, f"the reference refuses the inputs: {error}") from None
        published = arrays.build(entry["value"])
        if published.shape != np.shape(value):
            raise CaseError(case.file, case.base_id, f"{field_path}.value",
                            f"shape {published.shape}, but {binding.id} gives shape {np.shape(value)}")
        allowed = half_printed_unit(published, entry.get("digits"), entry.get("decimals")) + bound(value, scale, dtype)
        error = np.abs(core.to_work(published) - value)
        result = PublishedCheck(field_path, binding.id, dtype, value.astype(np.float64), published,
                                allowed.astype(np.float64), error.astype(np.float64))
        if not result.ok:
            raise CaseError(case.file, case.base_id, f"{field_path}.value",
                            f"the reference gives {_show(value)} ({binding.id}, {dtype} inputs), published "
                            f"{_show(published)}: off by {_show(error)} where {_show(allowed)} is allowed "
                            f"(half a printed unit plus the {dtype} tolerance)")
        results.append(result)
    for index, entry in enumerate(case.wrong_answers):
        _check_wrong_answer(case, bindings, index, entry)
    return results


def _check_wrong_answer(case: Case, bindings, index: int, entry: dict) -> None:
    field_path = f"wrong_answers[{index}]"
    if not case.published:
        raise CaseError(case.file, case.base_id, field_path, "a wrong answer needs a published value to stand against")
    first = case.published[0]
    binding = _binding(case, bindings, first, "published[0]")
    quantity_entry = {**first, "quantity": entry.get("quantity", first.get("quantity", "loss"))}
    value, scale = reference_for(case, quantity_entry, binding)
    wrong = arrays.build(entry["value"])
    dtype = first.get("dtype", "float32")
    with np.errstate(invalid="ignore"):
        same = np.isnan(wrong) & np.isnan(value) | (np.abs(core.to_work(wrong) - value) <= bound(value, scale, dtype))
    if np.all(same):
        raise CaseError(case.file, case.base_id, f"{field_path}.value",
                        f"the reference reproduces this documented wrong answer ({_show(value)})")


def _binding(case: Case, bindings, entry, field_path) -> Binding:
    name = entry["printed_by"]
    if name not in bindings:
        raise CaseError(case.file, case.base_id, f"{field_path}.printed_by", f"no binding {name!r}")
    binding = bindings[name]
    if binding.family != case.family:
        raise CaseError(case.file, case.base_id, f"{field_path}.printed_by",
                        f"{name} computes family {binding.family!r}, the case is {case.family!r}")
    return binding


def _show(values) -> str:
    array = np.asarray(values, dtype=np.float64)
    return np.array2string(array, precision=9, separator=", ") if array.ndim else f"{float(array):.9g}"
