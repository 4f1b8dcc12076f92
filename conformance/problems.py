"""From a case and a dtype to the concrete Problem a binding computes."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from conformance import options as vocabulary
from conformance.bindings import Binding, Problem, family_of
from conformance.cases import Case
from conformance.dtypes import NUMPY, round_to


def round_input(name: str, family: str, value: np.ndarray, dtype: str) -> np.ndarray:
    """Real inputs take the dtype under test; integer class labels stay int64."""
    array = np.asarray(value)
    if name == "labels" and family_of(family).indices and array.dtype.kind in "iu":
        return array.astype(np.int64)
    return round_to(array, dtype)


def resolve_options(case_options: Mapping[str, Any], binding: Binding | None, dtype: str) -> dict[str, Any]:
    """The binding's harness defaults, then the case's options; ``default``
    drops an option (the framework's own default applies); real arrays take
    the dtype under test."""
    merged = dict(binding.defaults) if binding is not None else {}
    merged.update(case_options)
    resolved = {}
    for name, value in merged.items():
        if isinstance(value, str) and value == vocabulary.DEFAULT:
            continue
        if name in vocabulary.FLOAT_ARRAY_OPTIONS and isinstance(value, np.ndarray):
            value = round_to(value, dtype)
        resolved[name] = value
    return resolved


def _as_given(name: str, case: Case, value: np.ndarray, dtype: str):
    """Behaviour cases may fix an input's dtype or pass it as Python objects."""
    if name in case.input_dtypes:
        wanted = case.input_dtypes[name]
        value = round_to(value, wanted) if wanted in NUMPY else np.asarray(value).astype(wanted)
    else:
        value = round_input(name, case.family, value, dtype)
    if name in case.python_inputs:
        return value.tolist()
    return value


def make_problem(case: Case, dtype: str, binding: Binding | None = None,
                 extra_options: Mapping[str, Any] | None = None, device: str = "cpu") -> Problem:
    inputs = {name: _as_given(name, case, value, dtype) for name, value in case.inputs.items()}
    options = {**case.options, **(extra_options or {})}
    return Problem(case.family, inputs, resolve_options(options, binding, dtype), dtype, device)


def as_computed(problem: Problem, binding: Binding) -> Problem:
    """The problem as the binding's documented convention computes it: its
    real inputs and weights rounded to the binding's compute dtype (exact when
    that dtype is wider), or the problem itself."""
    dtype = binding.compute_dtype_for(problem.dtype)
    if dtype is None or dtype == problem.dtype:
        return problem
    inputs = {name: round_input(name, problem.family, value, dtype) if isinstance(value, np.ndarray) else value
              for name, value in problem.inputs.items()}
    options = {name: round_to(value, dtype) if name in vocabulary.FLOAT_ARRAY_OPTIONS and isinstance(
        value, np.ndarray) else value for name, value in problem.options.items()}
    return Problem(problem.family, inputs, options, dtype, problem.device)


def least_precise(*dtypes: str) -> str:
    """The format with the largest machine epsilon: an error bound in it
    covers every rounding the others add."""
    from conformance.dtypes import FORMATS

    return max(dtypes, key=lambda name: FORMATS[name].eps)
