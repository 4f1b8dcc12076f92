"""Behaviour checks: what a framework does with inputs outside the value domain.

A case's ``expect`` maps binding patterns (ids or framework labels, fnmatch)
to one behaviour:

* ``raises: <exception class name>`` (the class or any base class, by name),
  with an optional ``match`` regular expression searched in the message;
* ``returns: nan | inf | -inf | finite`` (every element), or ``reference``
  (the value check, against the reference);

plus ``documented: false`` and a ``note`` where the framework documents
nothing and the entry records what was observed. A binding the case applies
to but names no behaviour for (a new API) does not fail: its item records
what it observed as ``unrecorded``, ready to paste into the case, and the
behaviour report lists it; once the entry exists it is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from conformance import devices
from conformance.problems import make_problem
from conformance.runner import run_value_check
from conformance.suite import Check, behaviour_for


@dataclass
class Observation:
    """What a call did: raised (type name, message) or returned an array."""

    raised: BaseException | None
    value: np.ndarray | None
    matched_reference: bool | None = None

    def cell(self) -> str:
        """A short matrix cell: 'raises IndexError', '= reference', 'NaN', '[NaN, ref, inf]'."""
        if self.raised is not None:
            return f"raises {type(self.raised).__name__}"
        if self.matched_reference:
            return "= reference"
        value = np.asarray(self.value, dtype=np.float64).reshape(-1)
        if value.size == 0:
            return "empty"
        names = ["NaN" if np.isnan(v) else "inf" if v == np.inf else "-inf" if v == -np.inf else "value"
                 for v in value]
        if len(set(names)) == 1:
            return names[0] if names[0] != "value" else "value (not the reference)"
        return "[" + ", ".join(names) + "]"

    def describe(self) -> str:
        if self.raised is not None:
            message = str(self.raised).strip().splitlines()[0][:300] if str(self.raised).strip() else ""
            return f"raises: {type(self.raised).__name__}  # {message}"
        value = np.asarray(self.value, dtype=np.float64)
        if value.size and np.all(np.isnan(value)):
            return "returns: nan"
        if value.size and np.all(value == np.inf):
            return "returns: inf"
        if value.size and np.all(value == -np.inf):
            return "returns: -inf"
        if np.all(np.isfinite(value)):
            return f"returns: finite  # {np.array2string(value, precision=6, threshold=12)}"
        # elementwise, as a list that pastes into cases/behaviour.yaml
        names = ["nan" if np.isnan(v) else "inf" if v == np.inf else "-inf" if v == -np.inf else "finite"
                 for v in value.reshape(-1)]
        return f"returns: [{', '.join(names)}]  # {np.array2string(value, precision=6, threshold=12)}"


def observe(check: Check) -> Observation:
    problem = make_problem(check.case, check.dtype, check.binding, device=check.device)
    try:
        return Observation(None, np.asarray(check.binding.call(problem)))
    except devices.Unavailable as error:  # no such device on this machine: nothing was observed
        import pytest

        pytest.skip(str(error))
    except devices.Misplaced:  # the harness's own failure, not a behaviour
        raise
    except Exception as error:  # the behaviour under test
        return Observation(error, None)


def _type_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


ELEMENT_TESTS = {
    "nan": np.isnan,
    "inf": lambda v: v == np.inf,
    "-inf": lambda v: v == -np.inf,
    "finite": np.isfinite,
}


def _elementwise_mismatch(wanted: list, value: np.ndarray, reference) -> str | None:
    flat = value.reshape(-1)
    if flat.size != len(wanted):
        return f"expected {len(wanted)} elements, got {flat.size}: {np.array2string(flat, precision=6)}"
    wrong = []
    for index, (want, got) in enumerate(zip(wanted, flat)):
        if want == "reference":
            ok = reference is not None and reference(index, got)
        else:
            ok = bool(ELEMENT_TESTS[want](got))
        if not ok:
            wrong.append(f"element {index}: expected {want}, got {got:.8g}")
    return "; ".join(wrong) if wrong else None


def mismatch(expected: dict, seen: Observation, reference=None) -> str | None:
    """Why ``seen`` is not the ``expected`` behaviour, or None if it is."""
    if "raises" in expected:
        if seen.raised is None:
            return f"expected {expected['raises']} to be raised; instead it {seen.describe()}"
        if expected["raises"] not in _type_names(seen.raised):
            return f"expected {expected['raises']}; it {seen.describe()}"
        pattern = expected.get("match")
        if pattern and not re.search(pattern, str(seen.raised)):
            return f"the message does not match {pattern!r}: {str(seen.raised)[:500]}"
        return None
    if seen.raised is not None:
        return f"expected it to return ({expected['returns']}); it {seen.describe()}"
    value = np.asarray(seen.value, dtype=np.float64)
    wanted = expected["returns"]
    if isinstance(wanted, list):
        return _elementwise_mismatch(wanted, value, reference)
    checks = {
        "nan": lambda v: v.size > 0 and bool(np.all(np.isnan(v))),
        "inf": lambda v: v.size > 0 and bool(np.all(v == np.inf)),
        "-inf": lambda v: v.size > 0 and bool(np.all(v == -np.inf)),
        "finite": lambda v: bool(np.all(np.isfinite(v))),
    }
    if not checks[wanted](value):
        return f"expected it to return {wanted}; it {seen.describe()}"
    return None


def _element_reference(check: Check, seen: Observation):
    """A predicate (index, value) -> matches the reference at that element."""
    if seen.raised is not None:
        return None
    from conformance.dtypes import NUMPY
    from conformance.tolerance import compare

    from conformance.tolerance import output_scale

    problem = make_problem(check.case, check.dtype, check.binding, device=check.device)
    try:
        exact = np.asarray(check.binding.reference(problem))
        scale = np.broadcast_to(output_scale(check.binding, problem, exact), exact.shape).reshape(-1)
    except (ValueError, TypeError):
        return None  # the reference refuses these inputs: no element can match it
    exact = exact.reshape(-1)
    dtype = np.asarray(seen.value).dtype.name
    dtype = dtype if dtype in NUMPY else check.dtype

    def matches(index: int, got: float) -> bool:
        return compare(np.array([got]), exact[index:index + 1], scale[index:index + 1], dtype).ok

    return matches


def unrecorded_entry(check: Check, seen: Observation) -> str:
    """The YAML entry to paste under the case's ``expect`` for what was observed."""
    return f"\"{check.binding.id}\": {{{seen.describe().split('  #')[0]}}}"


def run_behaviour_check(check: Check) -> tuple[str | None, Observation | None]:
    """(failure message or None, observation). ``returns: reference`` runs the
    value check instead; a binding with no entry is not a failure (see
    ``unrecorded_entry``)."""
    expected = behaviour_for(check.case, check.binding, check.device)
    if expected is not None and expected.get("returns") == "reference":
        from conformance.runner import failure_message

        try:
            outcome = run_value_check(check)
        except devices.Misplaced:  # the harness's own failure, not a behaviour
            raise
        except Exception as error:  # the framework raised where a value was expected
            seen = Observation(error, None)
            return f"{check.binding.api} on case {check.case.id!r}: expected the reference; it {seen.describe()}", seen
        seen = Observation(None, outcome.got, matched_reference=outcome.verdict.ok)
        return (None if outcome.verdict.ok else failure_message(check, outcome)), seen
    seen = observe(check)
    if expected is None:
        return None, seen
    problem = mismatch(expected, seen, _element_reference(check, seen))
    if problem:
        note = f" ({expected['note']})" if expected.get("note") else ""
        return f"{check.binding.api} on case {check.case.id!r} ({check.dtype}): {problem}{note}", seen
    return None, seen
