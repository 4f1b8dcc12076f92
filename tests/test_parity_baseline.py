"""Self-tests of the baseline guard (``--parity-baseline``, conformance/baseline.py).

An unchanged run passes; an injected regression fails the run, both kinds:
an error that grows but stays within tolerance (every item passes, the run
fails), and a check that now fails. The regression is injected through a
bindings module whose error is set by an environment variable.
"""

import json

import pytest

from conformance import baseline
from suite_runs import ROOT, run_in_process, small_cases_dir

pytestmark = pytest.mark.selftest


def record(check, outcome, max_ulp=None):
    return {"check": check, "outcome": outcome, "max_ulp": max_ulp}


def stored(*records):
    return {r["check"]: r for r in records}


def test_an_unchanged_run_has_no_regression():
    now = [record("a", "passed", 0.5), record("b", "xfailed", 900.0), record("c", "failed", 40.0)]
    diff = baseline.compare(now, stored(*now), ["a", "b", "c"], "base")
    assert diff["regressions"] == 0
    assert not any(diff[name] for name in ("new_failures", "grown", "fixed", "improved", "new_checks",
                                           "removed_checks"))


def test_a_new_failure_is_a_regression():
    diff = baseline.compare([record("a", "failed", 40.0)], stored(record("a", "passed", 0.5)), ["a"], "base")
    assert [entry["check"] for entry in diff["new_failures"]] == ["a"] and diff["regressions"] == 1


def test_a_new_check_that_fails_is_a_regression():
    diff = baseline.compare([record("n", "error")], stored(), ["n"], "base")
    assert diff["new_failures"][0]["what"] == "new -> error" and diff["regressions"] == 1


@pytest.mark.parametrize("was, now, grown", [
    (0.5, 1.4, False),   # within the 1-ULP slack
    (3.0, 5.9, False),   # within 2x
    (3.0, 6.5, True),
    (0.5, 1.6, True),
    (0.0, 1.01, True),
])
def test_an_error_counts_as_grown_beyond_twice_and_one_ulp(was, now, grown):
    diff = baseline.compare([record("a", "passed", now)], stored(record("a", "passed", was)), ["a"], "base")
    assert bool(diff["grown"]) is grown and diff["regressions"] == int(grown)


def test_fixed_divergences_and_improvements_are_reported_not_regressions():
    now = [record("x", "xpassed", 0.1), record("y", "passed", 0.2), record("z", "passed", 0.4)]
    before = stored(record("x", "xfailed", 900.0), record("y", "failed", 50.0), record("z", "passed", 30.0))
    diff = baseline.compare(now, before, ["x", "y", "z"], "base")
    assert [e["check"] for e in diff["fixed"]] == ["x"]
    assert sorted(e["check"] for e in diff["improved"]) == ["y", "z"]
    assert diff["regressions"] == 0


def test_new_removed_and_not_run_checks_are_counted_against_what_the_suite_generates():
    diff = baseline.compare([record("a", "passed", 0.1), record("s", "skipped"), record("fresh", "passed", 0.1)],
                            stored(record("a", "passed", 0.1), record("gone", "passed", 0.1),
                                   record("s", "passed", 0.1), record("deselected", "passed", 0.1)),
                            ["a", "s", "deselected", "fresh", "fresh-but-deselected"], "base")
    assert [e["check"] for e in diff["new_checks"]] == ["fresh"]
    assert [e["check"] for e in diff["removed_checks"]] == ["gone"]
    assert diff["not_run"] == 2 and diff["regressions"] == 0


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not readable JSON"),
    ('{"checks": [{"case": "a"}]}', "expected a parity.json"),
])
def test_a_bad_baseline_file_is_named_in_a_clear_error(tmp_path, content, message):
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(baseline.BaselineError, match=message) as caught:
        baseline.load(path)
    assert str(path) in str(caught.value)


def _run(tmp_path, name, perturb_ulps, *extra):
    cases = small_cases_dir(tmp_path / f"{name}-cases", "published.yaml")
    return run_in_process("-q", "--bindings", "perturbed_numpy", "-k", "perturbed and article0", f"--cases-dir={cases}",
                          f"--reports-dir={tmp_path / name}", *extra, str(ROOT / "tests" / "test_conformance.py"),
                          environ={"XENT_PERTURB_ULPS": str(perturb_ulps)}, bindings_path=True)


@pytest.fixture(scope="module")
def stored_baseline(tmp_path_factory):
    directory = tmp_path_factory.mktemp("baseline")
    first = _run(directory, "first", 0)
    assert first.returncode == 0, first.output[-3000:]
    target = directory / "baseline.json"
    assert baseline.main([str(directory / "first" / "parity.json"), str(target)]) == 0
    return directory, target


def test_the_guard_passes_an_unchanged_run(stored_baseline):
    directory, target = stored_baseline
    result = _run(directory, "same", 0, f"--parity-baseline={target}")
    assert result.returncode == 0, result.output[-3000:]
    assert "no regression" in result.output
    document = json.loads((directory / "same" / "parity.json").read_text())
    assert document["baseline"]["regressions"] == 0
    assert "no regression" in (directory / "same" / "parity.md").read_text()


def test_the_guard_fails_a_run_whose_error_grew_within_tolerance(stored_baseline):
    directory, target = stored_baseline
    result = _run(directory, "grown", 6, f"--parity-baseline={target}")
    assert " passed" in result.output and " failed" not in result.output.splitlines()[-1], result.output[-3000:]
    assert result.returncode == 1, result.output[-3000:]
    assert "REGRESSION" in result.output and "grown error: softmax-article0" in result.output
    assert json.loads((directory / "grown" / "parity.json").read_text())["baseline"]["grown"]
    assert "regression" in (directory / "grown" / "parity.html").read_text()


def test_the_guard_names_new_failures(stored_baseline):
    directory, target = stored_baseline
    result = _run(directory, "broken", 1e6, f"--parity-baseline={target}")
    assert result.returncode == 1
    assert "new failure: softmax-article0" in result.output, result.output[-3000:]


def test_a_missing_baseline_stops_the_run_with_its_path(tmp_path):
    result = _run(tmp_path, "missing", 0, f"--parity-baseline={tmp_path / 'nowhere.json'}")
    assert result.returncode == 4  # pytest's usage error
    assert "nowhere.json: no such file" in result.output
