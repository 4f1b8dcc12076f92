"""Runs one check: the reference's exact value, the framework's output, the verdict.

The reference value is computed once per (case, dtype, convention, options) in
each process and shared by every binding that names the same convention.
Measured figures go into the item's ``user_properties``, which travel with the
test report (also from xdist workers) into the JUnit XML and the reports.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance import devices
from conformance.cases import describe_array
from conformance.dtypes import FORMATS, NUMPY
from conformance.problems import as_computed, least_precise, make_problem
from conformance.suite import Check
from conformance.tolerance import Verdict, compare, k_for, output_scale
from reference import core

_EXPECTED_CACHE: dict[tuple, Any] = {}


class CheckFailure(AssertionError):
    """A framework output outside the tolerance model; the message tells all, ``signature`` how it failed
    (conformance.signatures)."""

    def __init__(self, message: str, signature: str = "error"):
        super().__init__(message)
        self.signature = signature


@dataclass
class Outcome:
    """What one value check measured."""

    check_id: str
    expected: np.ndarray
    got: np.ndarray
    out_dtype: str
    verdict: Verdict
    k: float
    judged_dtype: str = ""  # the format the bound is in: the least precise of computation and output
    properties: list[tuple[str, Any]] = field(default_factory=list)


def _options_key(options) -> str:
    def plain(value):
        if isinstance(value, np.ndarray):
            return [str(value.dtype), value.tolist()]
        return value

    return json.dumps({name: plain(value) for name, value in sorted(options.items())}, default=str)


def reference_identity(reference) -> tuple:
    """What makes two bindings' reference the same computation: the function and,
    for a closure made by a factory (one per loss, per Keras flavour), the objects
    it closes over. Two forms of one API share it; two APIs of one factory do not."""
    cells = getattr(reference, "__closure__", None) or ()
    return (getattr(reference, "__qualname__", repr(reference)), getattr(reference, "__module__", ""),
            tuple(id(cell.cell_contents) for cell in cells))


def expected_value(check: Check, problem) -> np.ndarray:
    """The binding's documented convention on the problem, cached."""
    key = (check.case.id, check.dtype, problem.dtype, reference_identity(check.binding.reference),
           _options_key(problem.options))
    if key not in _EXPECTED_CACHE:
        _EXPECTED_CACHE[key] = core.to_work(check.binding.reference(problem))
    return _EXPECTED_CACHE[key]


def _output_dtype(got: np.ndarray) -> str:
    name = np.asarray(got).dtype.name
    if name not in NUMPY:
        raise CheckFailure(f"the framework returned dtype {name}, not a floating-point format under test",
                           f"dtype {name}")
    return name


def _require_dtype(check: Check, what: str, got: str, documented: str) -> None:
    if got != documented:
        raise CheckFailure(f"{check.binding.api}: {what} is {got} on {check.dtype} inputs, where the binding "
                           f"documents {documented}", f"dtype {got}")


def _judge(check: Check, check_id: str, expected, got, scale, out_dtype: str) -> Outcome:
    """The bound is in the output's format, or in the binding's documented
    compute dtype where that is narrower: an API that returns float32 from
    half-precision inputs is held to float32 unless it documents computing in
    half precision."""
    compute = check.binding.compute_dtype_for(check.dtype)
    judged = out_dtype if compute is None else least_precise(compute, out_dtype)
    k = check.case.tolerance_k.get(judged, k_for(judged, check.binding))
    outcome = Outcome(check_id, expected, got, out_dtype, compare(got, expected, scale, judged, k), k, judged)
    outcome.properties = properties(check, outcome)
    return outcome


def called(check: Check, function, problem):
    """The framework's answer; an exception it raises fails the check by name
    (a CheckFailure, which a known divergence can pin), not as a harness error."""
    try:
        return function(problem)
    except devices.Unavailable as error:  # no such device on this machine: nothing was checked
        import pytest

        pytest.skip(str(error))
    except devices.Misplaced:  # the harness's own failure, which no known divergence absorbs
        raise
    except Exception as error:  # the framework's own error, whatever its type
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        raise CheckFailure(f"{check.binding.api} raised {type(error).__name__} on case '{check.case.id}' "
                           f"({check.dtype}): {first_line}", f"raises {type(error).__name__}") from error


def run_value_check(check: Check, require_dtype: bool = True) -> Outcome:
    """The result must have the documented dtype (unless not ``require_dtype``: a divergence's quote recomputes
    a figure of a result in another dtype) and lie within the bound."""
    problem = make_problem(check.case, check.dtype, check.binding, device=check.device)
    computed = as_computed(problem, check.binding)
    expected = expected_value(check, computed)
    got = np.asarray(called(check, check.binding.call, problem))
    out_dtype = _output_dtype(got)
    # a behaviour case may pass Python lists or mixed dtypes: it says what it expects
    if check.kind == "value" and require_dtype:
        _require_dtype(check, "its result", out_dtype, check.binding.result_dtype_for(check.dtype))
    scale = output_scale(check.binding, computed, expected)
    return _judge(check, check.id, expected, got, scale, out_dtype)


def expected_gradient(check: Check, problem) -> dict:
    reference = check.binding.reference_gradient
    key = ("gradient", check.case.id, check.dtype, problem.dtype, getattr(reference, "__qualname__", repr(reference)),
           getattr(reference, "__module__", ""), check.binding.id, _options_key(problem.options))
    if key not in _EXPECTED_CACHE:
        _EXPECTED_CACHE[key] = {name: (core.to_work(grad), core.to_work(scale))
                                for name, (grad, scale) in reference(problem).items()}
    return _EXPECTED_CACHE[key]


def run_gradient_check(check: Check) -> list[Outcome]:
    """One outcome per differentiated input (the prediction, and the labels
    where the API documents a gradient for them)."""
    problem = make_problem(check.case, check.dtype, check.binding, device=check.device)
    computed = as_computed(problem, check.binding)
    exact = expected_gradient(check, computed)
    got = called(check, check.binding.gradient, problem)
    outcomes = []
    for name, (grad, scale) in exact.items():
        if name not in got:
            raise CheckFailure(f"{check.binding.api} gave no gradient for {name}", "no gradient")
        value = np.asarray(got[name])
        out_dtype = _output_dtype(value)
        _require_dtype(check, f"its gradient d_{name}", out_dtype, np.asarray(problem.inputs[name]).dtype.name)
        outcomes.append(_judge(check, f"{check.id}:d_{name}", grad, value, scale, out_dtype))
    return outcomes


def worst(outcomes: list[Outcome]) -> Outcome:
    failing = [o for o in outcomes if not o.verdict.ok]
    pool = failing or outcomes
    return max(pool, key=lambda o: o.verdict.worst_ratio)


def properties(check: Check, outcome: Outcome) -> list[tuple[str, Any]]:
    verdict = outcome.verdict
    return [
        ("check", check.id),
        ("framework", check.binding.framework),
        ("binding", check.binding.id),
        ("api", check.binding.api),
        ("family", check.case.family),
        ("case", check.case.id),
        ("dtype", check.dtype),
        ("out_dtype", outcome.out_dtype),
        ("judged_dtype", outcome.judged_dtype),
        ("max_ulp", _finite_or_text(verdict.max_ulp)),
        ("median_ulp", _finite_or_text(verdict.median_ulp)),
        ("max_abs_error", _finite_or_text(verdict.max_abs_error)),
        ("bound_ratio", _finite_or_text(verdict.worst_ratio)),
        ("worst_index", list(verdict.worst_index)),
        ("n_elements", verdict.n_elements),
        ("k", outcome.k),
        ("contract_held", verdict.ok),
    ]


def _finite_or_text(value: float):
    return value if math.isfinite(value) else str(value)


def _show(values) -> str:
    array = np.asarray(values, dtype=np.float64)
    if array.size > 16:
        return describe_array(array)
    return np.array2string(array, precision=10, separator=", ", max_line_width=160)


def failure_message(check: Check, outcome: Outcome) -> str:
    """The whole story of a failed check, without a re-run."""
    verdict = outcome.verdict
    fmt = FORMATS[outcome.judged_dtype]
    worst = verdict.worst_index
    same_shape = np.shape(outcome.got) == np.shape(outcome.expected)
    if same_shape:
        expected_at = np.asarray(outcome.expected)[worst] if np.ndim(outcome.expected) else outcome.expected
        got_at = np.asarray(outcome.got)[worst] if np.ndim(outcome.got) else outcome.got
        worst_line = (f"  worst at index {worst}: expected {float(expected_at):.17g}, "
                      f"got {float(np.asarray(got_at, np.float64)):.17g}")
    else:  # nothing to compare element by element
        worst_line = f"  shape: got {np.shape(outcome.got)}, expected {np.shape(outcome.expected)}"
    options = {name: (describe_array(value) if isinstance(value, np.ndarray) else value)
               for name, value in check.case.options.items()}
    what = "its gradient " + outcome.check_id.rsplit(":", 1)[-1] if check.kind == "gradient" else "it"
    lines = [
        f"{check.binding.api}: {what} does not match the reference on case {check.case.id!r} "
        f"({check.case.family}, {check.dtype} inputs, {outcome.out_dtype} output)",
        f"  inputs:   {check.case.summary()} (rounded to {check.dtype})",
        f"  options:  {options or 'none'}",
        f"  expected: {_show(outcome.expected)}  (convention: {' then '.join(check.binding.convention)})",
        f"  got:      {_show(outcome.got)}",
        worst_line,
        f"    error {verdict.error_at_worst:.3g} = {verdict.ulp_at_worst:.4g} ULP of {outcome.judged_dtype}; "
        f"bound {verdict.bound_at_worst:.3g} = {outcome.k:g} * eps {fmt.eps:.3g} * (|exact| + scale "
        f"{verdict.scale_at_worst:.3g}) + {outcome.k:g} * {fmt.smallest_subnormal:.3g}",
        f"  over all elements: max error {verdict.max_abs_error:.3g}, max {verdict.max_ulp:.4g} ULP, "
        f"median {verdict.median_ulp:.3g} ULP; {verdict.problem}",
    ]
    if check.case.source:
        lines.append(f"  case source: {check.case.source}")
    return "\n".join(lines)
