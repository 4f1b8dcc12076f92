"""How a known divergence fails, pinned: a check it matches must fail the way it was recorded.

A strict xfail alone accepts any failure of the checks it matches: a raise, a
wrong dtype, or an error a thousand times larger would all pass for "the known
divergence". So every failing check records its failure signature (a
``failure`` property, in the reports and the baseline):

* ``error``: outside the bound, every element finite where the exact value is
  (with its worst error in ULPs, ``max_ulp``);
* ``nan``, ``inf`` or ``nan and inf``: NaN, an infinity, or both where the
  exact value is finite (a loss that overflowed to inf and now gives NaN
  fails otherwise than recorded);
* ``dtype <name>``: a result or gradient in another dtype than documented;
* ``shape``: an output of another shape than the exact value's;
* ``raises <Type>``: the call raised;
* ``no gradient``: the framework gave no gradient for an input.

The shipped baseline (``reports/baseline/parity.json``, ``--divergence-signatures``)
holds what each known divergence's checks did on the pinned versions. A check
that a divergence matches and that fails differently (another signature, or an
``error`` beyond twice the recorded worst and 1 ULP, the baseline guard's
growth rule) fails as :class:`DivergenceChanged`, which no xfail absorbs, with a
message naming the entry and the change. Where a binding's framework versions
differ from the baseline's, or the baseline lacks the check (a new case), there
is nothing to compare and the strict xfail stands alone.
"""

from __future__ import annotations

import importlib.metadata
import math
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from conformance.baseline import (GROWTH_FACTOR, GROWTH_SLACK_ULP, BaselineError, grew, load, load_environment,
                                  ulp_figure)
from conformance.runner import CheckFailure
from conformance.locations import BASELINE

DEFAULT_BASELINE = BASELINE


class DivergenceChanged(Exception):
    """A known divergence's check failed otherwise than recorded: not an AssertionError, so no xfail takes it."""


NON_FINITE = ("nan", "inf", "nan and inf")


def _non_finite(kinds: set) -> str | None:
    """``nan``, ``inf`` or ``nan and inf`` for the non-finite kinds found, None for none."""
    return " and ".join(kind for kind in ("nan", "inf") if kind in kinds) or None


def _lost(expected, got) -> set:
    """The kinds of non-finite value (``nan``, ``inf``) that ``got`` has where ``expected`` is finite."""
    with np.errstate(invalid="ignore", over="ignore"):  # an exact value past float64's range rounds to inf
        finite = np.isfinite(expected.astype(np.float64))
        got = got.astype(np.float64)
    return {kind for kind, where in (("nan", np.isnan(got)), ("inf", np.isinf(got))) if np.any(finite & where)}


def of_values(expected, got) -> str:
    """``shape`` where the output's shape is not the exact value's; ``nan``, ``inf`` or ``nan and inf`` where it
    has NaN, an infinity or both at a finite exact value; else ``error``."""
    expected, got = np.asarray(expected), np.asarray(got)
    if expected.shape != got.shape:
        return "shape"
    return _non_finite(_lost(expected, got)) or "error"


@lru_cache(maxsize=4)
def _recorded(path: str):
    """(checks by id, package versions) of a baseline; empty where it is missing (a run from an installed
    package, or a fork that has not made one)."""
    try:
        checks = load(Path(path))
    except BaselineError:
        return {}, {}
    return checks, load_environment(Path(path)).get("packages", {})


def version_mismatch(binding, baseline_path=DEFAULT_BASELINE) -> str | None:
    """Why the installed versions of a binding's framework are not the baseline's (its figures were measured
    on those), or None."""
    from conformance.bindings import distributions

    packages = _recorded(str(baseline_path))[1]
    names = [name for module in binding.version_modules() for name in distributions(module)]
    if not names:
        return f"{binding.id} names no distribution to compare"
    for name in names:
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return f"{name} is not installed"
        if installed != packages.get(name):
            return f"{name} {installed} is installed; {baseline_path} was measured on {packages.get(name)}"
    return None


def changed(check, signature: str, max_ulp, baseline_path) -> str | None:
    """Why this failure is not the one recorded for the check's divergence (None: it is, or nothing to
    compare)."""
    if check.divergence is None or not baseline_path or getattr(check, "unverified", None):
        return None  # an unverified check (conformance.versions) is reported, whichever way it fails
    checks = _recorded(str(baseline_path))[0]
    record = checks.get(check.id)
    if record is None or record.get("outcome") != "xfailed" or "failure" not in record:
        return None
    if version_mismatch(check.binding, baseline_path):
        return None
    was = record["failure"]
    entry = f"known divergence {check.divergence.id!r}"
    if signature != was:
        return (f"{entry} recorded this check failing as '{was}' (baseline {baseline_path}); it now fails as "
                f"'{signature}': a second fault, not the known one")
    before, now = ulp_figure(record.get("max_ulp")), ulp_figure(max_ulp)
    if signature == "error" and before is not None and now is not None and math.isfinite(before) and (
            grew(before, now)):
        return (f"{entry} recorded a worst error of {before:.4g} ULP for this check (baseline {baseline_path}); "
                f"it is now {now:.4g} ULP, beyond {GROWTH_FACTOR:g}x and {GROWTH_SLACK_ULP:g} ULP more: "
                "the divergence got worse")
    return None


def pin(check, node, signature: str, max_ulp=None, details: str = "") -> None:
    """Record the failure's signature on the item; raise DivergenceChanged, with the failure's own message
    below, if the check's known divergence recorded another."""
    node.user_properties.append(("failure", signature))
    path = node.config.getoption("divergence_signatures", None)
    why = changed(check, signature, max_ulp, path)
    if why:
        raise DivergenceChanged(f"{why}\n{details}" if details else why)


def of_outcomes(outcomes) -> str:
    """One signature for the failing outcomes of a check (a gradient has one per input): the non-finite
    values of all of them where any has one (``nan and inf`` where one input's gradient has NaN and
    another's inf), else the first's."""
    found = [of_values(o.expected, o.got) for o in outcomes if not o.verdict.ok]
    non_finite = _non_finite({kind for signature in found if signature in NON_FINITE
                              for kind in signature.split(" and ")})
    return non_finite or (found[0] if found else "error")


@contextmanager
def pinned(check, node):
    """A CheckFailure raised inside (a raise, a wrong dtype, no gradient) is pinned like a value failure."""
    try:
        yield
    except CheckFailure as failure:
        pin(check, node, failure.signature, details=str(failure))
        raise
