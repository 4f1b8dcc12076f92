"""Self-tests of the versions the known divergences and behaviour entries were measured on
(``conformance/versions.py``): inside them a check is held as measured, outside them it runs as "unverified
on this version" (a non-strict xfail that fails no run, listed in the parity report), and the baseline guard
labels a failure on other framework versions instead of counting it as a regression.
"""

import json

import pytest

from conformance import baseline, versions
from conformance.cases import CaseError, load_all
from conformance.divergences import load as load_divergences
from suite_runs import ROOT, run_in_process, small_cases_dir

pytestmark = pytest.mark.selftest

TORCH_ENTRY = "torch_bce_with_logits_cancels"


def test_a_version_outside_the_specifier_is_unverified(monkeypatch):
    monkeypatch.setattr(versions, "installed", {"torch": "2.12.1", "keras": "3.15.1"}.get)
    measured = versions.parse({"torch": "==2.13.0", "keras": ">=3.15,<3.16"})
    why = versions.unverified(measured, "entry")
    assert why == "entry was measured on torch==2.13.0; torch 2.12.1 is installed"
    assert versions.unverified(measured, "entry", distributions=("keras",)) is None  # not this check's framework
    assert versions.unverified(versions.parse({"jax": "==0.10.2"}), "entry") is None  # not installed: it skips


def test_a_local_build_is_the_version_it_builds(monkeypatch):
    monkeypatch.setattr(versions, "installed", {"torch": "2.13.0+cpu"}.get)
    assert versions.unverified((("torch", "==2.13.0"),), "entry") is None


def test_every_shipped_entry_states_its_versions_and_holds_on_the_pinned_set(request):
    entries = load_divergences(ROOT / "cases")
    assert all(entry.versions for entry in entries)
    behaviour = [case for case in load_all(ROOT / "cases") if case.expect]
    assert behaviour and all(case.versions for case in behaviour)
    from conformance.plugin import suite_of

    checks = suite_of(request.config).checks
    pinned = [check for check in checks if versions.on_the_pinned_set(versions.binding_distributions(check.binding))]
    assert pinned, "no framework is installed at the pinned set's versions"
    assert [check.id for check in pinned if check.unverified] == []
    # the entries measured on the older set name no check here: those checks are held to the reference
    older = {entry.id for entry in entries if ("keras", "==3.12.0") in entry.versions}
    assert older and not any(check.divergence and check.divergence.id in older for check in pinned)


def _entry(entry_id, specifier):
    from conformance.divergences import Divergence

    return Divergence(id=entry_id, match=("a-*",), reason="r" * 20, source="s" * 5, versions=(("torch", specifier),))


@pytest.mark.parametrize("pinned, installed_version, chosen, unverified", [
    (True, "2.13.0", "pinned", False),   # the entry measured on the installed version applies
    (True, "2.12.0", "older", False),
    (True, "2.11.0", None, False),       # the pinned set's run: entries of other versions do not apply
    (False, "2.11.0", "pinned", True),   # versions nothing was measured on: the first entry, unverified
])
def test_the_entry_measured_on_the_installed_version_applies(monkeypatch, pinned, installed_version, chosen,
                                                             unverified):
    from conformance import suite

    monkeypatch.setattr(versions, "installed", {"torch": installed_version}.get)
    monkeypatch.setattr(versions, "on_the_pinned_set", lambda distributions: pinned)
    entries = [_entry("pinned", "==2.13.0"), _entry("older", "==2.12.0")]
    entry = suite._entry_for(entries, "a-b", "value", ("torch",))
    assert (entry.id if entry else None) == chosen
    assert bool(entry and entry.unverified(("torch",))) is unverified


def test_a_malformed_specifier_names_the_entry(tmp_path):
    cases = small_cases_dir(tmp_path, "published.yaml")
    path = cases / "divergences.yaml"
    path.write_text(path.read_text().replace('versions: {torch: "==2.13.0"}', 'versions: {torch: "2.13 or so"}', 1))
    with pytest.raises(CaseError, match=r"cases/divergences.yaml.*versions.torch.*not a version specifier"):
        load_divergences(cases)


def test_behaviour_entries_need_their_versions(tmp_path):
    cases = small_cases_dir(tmp_path, "behaviour.yaml", divergences=False)
    path = cases / "behaviour.yaml"
    text = path.read_text()
    start = text.index("  # what every entry below was measured on")
    end = text.index("\ncases:")
    path.write_text(text[:start] + text[end:])
    with pytest.raises(CaseError, match="behaviour.yaml.*versions.*need the versions they were measured on"):
        load_all(cases)


def test_an_expectation_with_a_malformed_specifier_names_its_case(tmp_path):
    cases = small_cases_dir(tmp_path, "behaviour.yaml", divergences=False)
    path = cases / "behaviour.yaml"
    old = '        raises: IndexError\n'
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, old + '        versions: {torch: "about 2"}\n', 1))
    with pytest.raises(CaseError, match=r"behaviour.yaml.*sequence_labels_out_of_range.*versions.torch"):
        load_all(cases)


def _measured_on_an_old_torch(tmp_path):
    """The extreme cases and the behaviour cases, with torch's known divergence and the behaviour entries
    stated as measured on torch 1.x only."""
    cases = small_cases_dir(tmp_path, "extreme.yaml", "behaviour.yaml")
    for name, old, new in (("divergences.yaml", 'id: torch_bce_with_logits_cancels\n    versions: {torch: "==2.13.0",',
                            'id: torch_bce_with_logits_cancels\n    versions: {torch: "<2",'),
                           ("behaviour.yaml", 'versions: {torch: "==2.13.0",', 'versions: {torch: "<2",')):
        text = (cases / name).read_text()
        assert old in text
        (cases / name).write_text(text.replace(old, new, 1))
    return cases


def test_outside_its_versions_a_check_runs_unverified_and_the_report_lists_it(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[torch]')")
    # as on a machine whose torch is neither the entries' nor the shipped baseline's
    monkeypatch.setattr(versions, "on_the_pinned_set", lambda distributions: False)
    cases = _measured_on_an_old_torch(tmp_path)
    reports = tmp_path / "reports"
    run = run_in_process("-q", "-rxX", "-k", "sigmoid_tiny_losses and BCEWithLogits or behaviour and torch:nn.functional.cross_entropy-",
                         f"--cases-dir={cases}", f"--reports-dir={reports}", str(ROOT / "tests" / "test_conformance.py"),
                         str(ROOT / "tests" / "test_behaviour.py"))
    assert run.returncode == pytest.ExitCode.OK, run.output[-3000:]
    document = json.loads((reports / "parity.json").read_text())
    groups = {group["why"]: group for group in document["unverified"]}
    divergence = next(group for why, group in groups.items() if f"[{TORCH_ENTRY}] was measured on torch<2" in why)
    assert divergence["xfailed"] >= 1  # the cancellation is still there on the installed torch
    still = [record for record in document["checks"] if record.get("unverified") and record["outcome"] == "xfailed"]
    assert still and all("does not match the reference" in record["reason"] for record in still)  # what differs
    behaviour = [group for why, group in groups.items() if why.startswith("the behaviour entry of")]
    assert behaviour and sum(group["xpassed"] for group in behaviour) >= 1  # it behaves as recorded
    assert "## Unverified on the installed versions" in (reports / "parity.md").read_text()
    assert "id='unverified'" in (reports / "parity.html").read_text()
    assert "unverified on this version" in run.output


def test_the_baseline_labels_a_failure_on_another_version_instead_of_counting_it():
    now = {"packages": {"torch": "2.12.1"}, "distributions": {"torch": ["torch"]}}
    then = {"packages": {"torch": "2.13.0"}, "distributions": {"torch": ["torch"]}}
    record = {"check": "a", "outcome": "failed", "max_ulp": 40.0, "versions_of": "torch"}
    stored = {"a": {"check": "a", "outcome": "passed", "max_ulp": 0.5}}
    diff = baseline.compare([record], stored, ["a"], "base", (now, then))
    assert diff["regressions"] == 0 and diff["new_failures"] == []
    assert diff["other_environments"][0]["what"] == "passed -> failed on torch 2.12.1 (the baseline: torch 2.13.0)"
    assert baseline.compare([record], stored, ["a"], "base", (then, then))["regressions"] == 1


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def test_the_older_set_differs_from_the_pinned_set_in_four_pins_only():
    """tox -e older runs on constraints-older.txt: the pinned set but for these."""
    pinned, older = _pins("constraints.txt"), _pins("constraints-older.txt")
    assert set(pinned) == set(older)
    assert {name for name in pinned if pinned[name] != older[name]} == {"keras", "jax", "jaxlib", "optax"}


class _Verdicts:
    """{test id: (outcome, xfail reason)} of the call phase."""

    def __init__(self):
        self.found = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            self.found[report.nodeid] = (report.outcome, getattr(report, "wasxfail", ""))


@pytest.mark.parametrize("specifier, outcome", [("<1", "passed"), (">=1", "failed")])
def test_an_entry_on_a_test_that_is_not_a_check_knows_its_versions(tmp_path, specifier, outcome):
    """An entry naming a cross-check item ('function:param-id') is strict on its versions (a pass there is an
    XPASS(strict), a failure) and unverified, non-strict, on others (a pass is an XPASS, labelled)."""
    cases = small_cases_dir(tmp_path, "published.yaml", divergences=False)
    (cases / "divergences.yaml").write_text(
        "divergences:\n  - id: conventions_on_a_numpy_of_another_era\n"
        f"    versions: {{numpy: \"{specifier}\"}}\n"
        "    match: [\"test_documented_conventions:*-float64\"]\n"
        "    reason: a self-test's entry on items that pass, to see how they end\n    source: tests/test_versions.py\n")
    verdicts = _Verdicts()  # the rows that agree (focal's conventions differ: keras_categorical_focal_gamma0_clips)
    run_in_process("-q", "-k", "documented_conventions and float64 and not focal", f"--cases-dir={cases}",
                   f"--reports-dir={tmp_path / 'reports'}", str(ROOT / "tests" / "test_option_parity.py"),
                   plugins=[verdicts])
    assert verdicts.found
    assert {result for result, _ in verdicts.found.values()} == {outcome}
    labelled = {reason.startswith(versions.LABEL) for _, reason in verdicts.found.values()}
    assert labelled == {outcome == "passed"}  # an XPASS carries its xfail reason; a strict one fails without


def test_the_baseline_labels_a_grown_error_on_another_cpu_instead_of_counting_it():
    """Another CPU runs other SIMD kernels: an error that grew there is listed with both CPUs, not a regression;
    on the baseline's CPU (or where a file does not say) it still is one."""
    then = {"packages": {"torch": "2.13.0"}, "distributions": {"torch": ["torch"]},
            "cpu": "Intel(R) Xeon(R) Processor", "simd": ["avx", "avx2", "avx512f"]}
    now = {**then, "cpu": "AMD EPYC", "simd": ["avx", "avx2"]}
    record = {"check": "a", "outcome": "passed", "max_ulp": 86.0, "versions_of": "torch"}
    stored = {"a": {"check": "a", "outcome": "passed", "max_ulp": 41.0}}
    diff = baseline.compare([record], stored, ["a"], "base", (now, then))
    assert diff["regressions"] == 0 and diff["grown"] == []
    assert diff["other_environments"][0]["what"] == (
        "max error 41 -> 86 ULP on another CPU: AMD EPYC (the baseline: Intel(R) Xeon(R) Processor)")
    assert baseline.compare([record], stored, ["a"], "base", (then, then))["regressions"] == 1
    assert baseline.compare([record], stored, ["a"], "base", ({**then, "simd": ["avx"]}, then))["regressions"] == 0
    assert baseline.compare([record], stored, ["a"], "base", ({"packages": then["packages"],
                                                               "distributions": then["distributions"]}, then)
                            )["regressions"] == 1
