"""Behaviour checks: what a framework does with inputs outside the value domain.

A case's ``expect`` maps binding patterns (ids or framework labels, fnmatch)
to one behaviour:

* ``raises: <exception class name>`` (the class or any base class, by name),
  with an optional ``match`` regular expression searched in the message;
* ``returns: nan | inf | -inf | finite`` (every element), or ``reference``
  (the value check, against the reference);

plus ``documented: false`` and a ``note`` where the framework documents
nothing and the entry records what was observed. A binding the case applies
to but names no behaviour for fails with what it observed, ready to paste.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from conformance.problems import make_problem
from conformance.runner import run_value_check
from conformance.suite import Check, behaviour_for


@dataclass
class Observation:
    """What a call did: raised (type name, message) or returned an array."""

    raised: BaseException | None
    value: np.ndarray | None

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
        return f"returns a mix of values: {np.array2string(value, precision=6, threshold=12)}"


def observe(check: Check) -> Observation:
    problem = make_problem(check.case, check.dtype, check.binding)
    try:
        return Observation(None, np.asarray(check.binding.call(problem)))
    except Exception as error:  # the behaviour under test
        return Observation(error, None)


def _type_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def mismatch(expected: dict, seen: Observation) -> str | None:
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
    checks = {
        "nan": lambda v: v.size > 0 and bool(np.all(np.isnan(v))),
        "inf": lambda v: v.size > 0 and bool(np.all(v == np.inf)),
        "-inf": lambda v: v.size > 0 and bool(np.all(v == -np.inf)),
        "finite": lambda v: bool(np.all(np.isfinite(v))),
    }
    if not checks[wanted](value):
        return f"expected it to return {wanted}; it {seen.describe()}"
    return None


def run_behaviour_check(check: Check) -> tuple[str | None, Observation | None]:
    """(failure message or None, observation). ``returns: reference`` runs the
    value check instead."""
    expected = behaviour_for(check.case, check.binding)
    if expected is not None and expected.get("returns") == "reference":
        from conformance.runner import failure_message

        outcome = run_value_check(check)
        return (None if outcome.verdict.ok else failure_message(check, outcome)), None
    seen = observe(check)
    if expected is None:
        return (f"case {check.case.id!r} records no behaviour for {check.binding.id}; observed:\n"
                f"    expect:\n      \"{check.binding.id}\": {{{seen.describe().split('  #')[0]}}}"), seen
    problem = mismatch(expected, seen)
    if problem:
        note = f" ({expected['note']})" if expected.get("note") else ""
        return f"{check.binding.api} on case {check.case.id!r} ({check.dtype}): {problem}{note}", seen
    return None, seen
