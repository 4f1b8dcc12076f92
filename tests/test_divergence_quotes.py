"""Every figure a divergence's reason quotes, recomputed: the reason must say what the framework does.

An entry's ``quotes`` name a check (its case, binding and dtype), the element, the framework's output and,
where the reason gives it, the exact value, each written as the reason writes it. Here the check runs again:
the quoted figure must appear in the reason, the check must be one the entry matches, and the framework's
output (and the reference's exact value) must round to the quoted digits. A quote is judged only on the
framework versions of the shipped baseline, where the figures were measured.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import numpy as np
import pytest

from conformance import versions
from conformance.runner import run_gradient_check, run_value_check


# how a reason writes a quoted special value
WRITTEN = {"nan": "NaN"}


def agrees(quoted: str, value: float) -> bool:
    """``value`` rounds to ``quoted``: within half a unit of its last written digit; a quoted integer ("0", a
    loss that came out zero) is exact, and so are inf, -inf and nan."""
    if quoted in ("inf", "-inf", "nan"):
        return repr(float(value)) == quoted
    if not math.isfinite(value):
        return False
    if not any(mark in quoted for mark in ".e"):
        return float(value) == int(quoted)
    unit = Decimal(1).scaleb(Decimal(quoted).as_tuple().exponent)
    return abs(Decimal(repr(float(value))) - Decimal(quoted)) <= unit / 2


@pytest.mark.parametrize("quoted, value, ok", [
    ("0.038330", 0.038330078125, True),
    ("0.0383", 0.038330078125, True),
    ("0.038331", 0.038330078125, False),
    ("1.0986328", 1.0986328125, True),
    ("-0.0390625", -0.0390625, True),
    ("2.2e7", 2.21e7, True),
    ("2.2e7", 2.26e7, False),
    ("0", 0.0, True),
    ("0", 3.36e-4, False),
    ("3.3552e-4", 3.3551887e-4, True),
    ("inf", float("inf"), True),
    ("inf", 3.4e38, False),
    ("-inf", float("-inf"), True),
    ("nan", float("nan"), True),
    ("nan", float("inf"), False),
    ("1.5", float("nan"), False),
    ("1.5", float("inf"), False),
])
def test_a_quote_agrees_to_its_last_digit(quoted, value, ok):
    assert agrees(quoted, value) is ok


@pytest.fixture
def suite(request):
    from conformance.plugin import suite_of

    return suite_of(request.config)


def _quotes(suite):
    return [pytest.param(entry, quote, id=f"{entry.id}:{quote['check']}:{quote.get('index', '')}")
            for entry in suite.divergences for quote in entry.quotes]


def pytest_generate_tests(metafunc):
    if "quote" in metafunc.fixturenames:
        from conformance.plugin import suite_of

        metafunc.parametrize("entry, quote", _quotes(suite_of(metafunc.config)))


def test_the_quoted_figure_is_what_the_framework_gives(suite, entry, quote):
    checks = {check.data_id: check for check in suite.checks}
    check = checks.get(quote["check"])
    assert check is not None, f"{entry.id}: quotes {quote['check']!r}, which is no check of the suite"
    assert entry.matches(check.data_id, check.kind), f"{entry.id}: quotes {check.id!r}, which it does not match"
    for name in ("got", "exact"):
        if name in quote:
            written = WRITTEN.get(quote[name], quote[name])
            assert written in entry.reason, f"{entry.id}: quotes {name} {written} that its reason never says"
    if check.skip:
        pytest.skip(check.skip)
    unverified = entry.unverified(versions.binding_distributions(check.binding))
    if unverified:
        pytest.skip(f"{unverified}: its figures are recomputed where it was measured (tox -e older for an older set)")
    if check.kind == "gradient":
        outcome = run_gradient_check(check)[0]  # d_prediction
    else:
        outcome = run_value_check(check, require_dtype=False)  # a narrowed result's figures are quoted too
    index = tuple(quote.get("index", ()))
    got = np.asarray(outcome.got, dtype=np.float64)
    exact = np.asarray(outcome.expected, dtype=np.float64)
    at = (lambda a: a[index]) if index else (lambda a: a.reshape(-1)[0])
    assert agrees(quote["got"], float(at(got))), (
        f"{entry.id}: its reason quotes {quote['got']} for {check.id}{list(index) or ''}; "
        f"{check.binding.api} gives {float(at(got))!r}")
    if "exact" in quote:
        assert agrees(quote["exact"], float(at(exact))), (
            f"{entry.id}: its reason quotes the exact value {quote['exact']} for {check.id}{list(index) or ''}; "
            f"the reference gives {float(at(exact))!r}")


# a measured figure as reasons write them: a decimal point or an exponent (1.3e-4, 0.22364, 2.0e-313, 6e4)
MEASURED_FIGURE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+(?:e[-+]?\d+)?|e[-+]?\d+)(?![\w.])")


def test_every_reason_with_figures_quotes_one(suite):
    """A reason that states a measured figure about checks of the suite names where to recompute it; entries
    whose checks are all property tests or behaviour items have no value to quote."""
    matched = {entry.id for check in suite.checks if check.divergence is not None for entry in [check.divergence]}
    missing = [entry.id for entry in suite.divergences
               if entry.id in matched and MEASURED_FIGURE.search(" ".join(entry.reason.split())) and not entry.quotes]
    assert not missing, f"reasons that state figures without a quote to recompute them: {missing}"
