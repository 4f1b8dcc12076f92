"""A known divergence pins how it fails (conformance.signatures): a check it matches that starts raising,
returns another dtype, gives NaN, or gets much worse is a failure, not the known divergence."""

from __future__ import annotations

import importlib.metadata
import json
import xml.etree.ElementTree as ElementTree
from types import SimpleNamespace

import pytest

from conformance import signatures
from suite_runs import ROOT, run_in_process, small_cases_dir

CASE = "softmax-article0_softmax_single_row"
DIVERGENCE = f"""divergences:
  - id: divergent_numpy
    versions: {{numpy: ">=1.26"}}
    kind: precision
    match: ["{CASE}-numpy:divergent.*-float32"]
    reason: a NumPy binding 1e4 ULPs off, for the self-tests of divergence signatures
    source: tests/plugins/changed_divergences.py
"""
NAMES = ("as_recorded", "worse", "raising", "wrong_dtype", "nan", "inf_as_recorded", "nan_where_inf")
RECORDED_INF = ("inf_as_recorded", "nan_where_inf")


def _check_id(name: str) -> str:
    return f"{CASE}-numpy:divergent.{name}-float32-cpu"


def _baseline(path, numpy_version: str):
    """Every binding's check recorded as the as_recorded binding fails: 'error', at most 2e4 ULPs; those of
    RECORDED_INF as overflowing to inf."""
    path.write_text(json.dumps({
        "environment": {"packages": {"numpy": numpy_version}},
        "checks": [{"check": _check_id(name), "outcome": "xfailed", "max_ulp": 2e4,
                    "failure": "inf" if name in RECORDED_INF else "error"} for name in NAMES]}))
    return path


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """{binding name: (outcome, message)} of one run of the bindings against that baseline."""
    directory = tmp_path_factory.mktemp("signatures")
    cases = small_cases_dir(directory, "published.yaml", divergences=False)
    (cases / "divergences.yaml").write_text(DIVERGENCE)
    baseline = _baseline(directory / "baseline.json", importlib.metadata.version("numpy"))
    junit = directory / "junit.xml"
    result = run_in_process("-q", "--bindings", "changed_divergences", "-k", "divergent and article0_softmax_single_row",
                            f"--cases-dir={cases}", f"--reports-dir={directory}",
                            f"--divergence-signatures={baseline}", f"--junitxml={junit}",
                            str(ROOT / "tests" / "test_conformance.py"), bindings_path=True)
    assert junit.exists(), result.output[-3000:]
    found = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        if not case.get("name").endswith("-float32-cpu]"):
            continue  # the bindings declare float32 only
        name = case.get("name").split("numpy:divergent.", 1)[1].split("-", 1)[0]
        failure = case.find("failure")
        if failure is not None:
            found[name] = ("failed", (failure.get("message") or "") + (failure.text or ""))
        else:
            skipped = case.find("skipped")
            found[name] = ("xfailed" if skipped is not None and "xfail" in (skipped.get("type") or "")
                           else "skipped" if skipped is not None else "passed", "")
    assert set(found) == set(NAMES), (found, result.output[-3000:])
    return found


@pytest.mark.parametrize("name", ["as_recorded", "inf_as_recorded"])
def test_a_check_failing_as_recorded_stays_the_known_divergence(outcomes, name):
    assert outcomes[name][0] == "xfailed", outcomes[name]


@pytest.mark.parametrize("name, change", [
    ("worse", "the divergence got worse"),
    ("raising", "now fails as 'raises ValueError'"),
    ("wrong_dtype", "now fails as 'dtype float16'"),
    ("nan", "now fails as 'nan'"),
    ("nan_where_inf", "recorded this check failing as 'inf' (baseline"),
])
def test_a_check_failing_otherwise_fails_naming_the_entry_and_the_change(outcomes, name, change):
    outcome, message = outcomes[name]
    assert outcome == "failed", (name, outcomes[name])
    assert "DivergenceChanged" in message and "divergent_numpy" in message and change in message, message


def _fake_check(name: str):
    binding = SimpleNamespace(version_modules=lambda: ("numpy",))
    return SimpleNamespace(id=_check_id(name), divergence=SimpleNamespace(id="divergent_numpy"), binding=binding)


def test_other_versions_or_an_unrecorded_check_leave_the_strict_xfail_alone(tmp_path):
    mine = _baseline(tmp_path / "mine.json", importlib.metadata.version("numpy"))
    other = _baseline(tmp_path / "other.json", "0.0")
    assert "got worse" in signatures.changed(_fake_check("worse"), "error", 1e6, mine)
    assert signatures.changed(_fake_check("worse"), "error", 1e6, other) is None
    assert signatures.changed(_fake_check("unrecorded"), "raises ValueError", None, mine) is None
    assert signatures.changed(_fake_check("worse"), "error", 1e6, "") is None


def test_growth_follows_the_baseline_guard(tmp_path):
    mine = _baseline(tmp_path / "mine.json", importlib.metadata.version("numpy"))
    assert signatures.changed(_fake_check("worse"), "error", 4e4, mine) is None  # twice the recorded worst
    assert signatures.changed(_fake_check("worse"), "error", 4.0001e4, mine) is not None


@pytest.mark.parametrize("expected, got, signature", [
    ([1.0, 2.0], [1.5, 2.0], "error"),
    ([1.0, 2.0], [1.0, float("nan")], "nan"),
    ([1.0, 2.0], [1.0, float("-inf")], "inf"),
    ([1.0, 2.0, 3.0], [float("inf"), 2.0, float("nan")], "nan and inf"),
    ([1.0, float("nan")], [1.0, float("nan")], "error"),
    ([1.0, float("inf")], [1.0, float("inf")], "error"),
    ([1.0, 2.0], [1.0], "shape"),
])
def test_value_signatures(expected, got, signature):
    assert signatures.of_values(expected, got) == signature


def test_a_gradient_names_every_non_finite_kind_of_its_inputs():
    def outcome(got, ok=False):
        return SimpleNamespace(expected=[1.0, 2.0], got=got, verdict=SimpleNamespace(ok=ok))

    nan, inf, off = outcome([1.0, float("nan")]), outcome([float("inf"), 2.0]), outcome([1.5, 2.0])
    assert signatures.of_outcomes([off, nan, inf]) == "nan and inf"
    assert signatures.of_outcomes([off, inf]) == "inf"
    assert signatures.of_outcomes([off, outcome([1.0, float("nan")], ok=True)]) == "error"
