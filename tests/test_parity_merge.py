"""Self-test: several runs' reports (one per CI job) merge into one.

Two separate pytest runs, each with its own bindings module and reports
directory, as the workflow's jobs are; ``python -m conformance.parity merge``
makes one parity.json, parity.md and parity.html of them, and judges the
merged result against a baseline.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from suite_runs import run_in_process, small_cases_dir

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"


def _run(module: str, directory: Path) -> Path:
    cases = small_cases_dir(directory, "published.yaml")
    run_in_process("-q", "--bindings", module, "-k", "numpy and article0", f"--cases-dir={cases}",
                   f"--reports-dir={directory}", str(ROOT / "tests" / "test_conformance.py"), bindings_path=True)
    assert (directory / "parity.json").exists()
    return directory / "parity.json"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    return (_run("naive_numpy", tmp_path_factory.mktemp("job_naive")),
            _run("perturbed_numpy", tmp_path_factory.mktemp("job_perturbed")))


def _merge(*args):
    return subprocess.run([sys.executable, "-m", "conformance.parity", "merge", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_two_runs_merge_into_one_matrix_in_every_format(two_runs, tmp_path):
    first, second = (json.loads(path.read_text()) for path in two_runs)
    result = _merge(*two_runs, "--out", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    merged = json.loads((tmp_path / "parity.json").read_text())
    ran = {row["check"] for doc in (first, second) for row in doc["checks"] if row["outcome"] != "skipped"}
    assert ran and {row["check"] for row in merged["checks"] if row["outcome"] != "skipped"} == ran
    bindings = {cell["binding"] for cell in merged["matrix"]}
    assert any("naive" in b for b in bindings) and any("perturbed" in b for b in bindings), bindings
    assert sum(merged["totals"].values()) == len(merged["checks"])
    assert [source["source"] for source in merged["environment"]["sources"]] == [str(p) for p in two_runs]
    assert "Merged from" in (tmp_path / "parity.md").read_text()
    assert "Merged from" in (tmp_path / "parity.html").read_text()


def test_the_merged_run_is_judged_against_a_baseline(two_runs, tmp_path):
    first = json.loads(two_runs[0].read_text())
    failing = next(row["check"] for row in first["checks"] if row["outcome"] == "failed")
    stored = {"environment": {}, "checks": [{"check": failing, "outcome": "passed", "max_ulp": 0.0}]}
    (tmp_path / "stored.json").write_text(json.dumps(stored))
    result = _merge(*two_runs, "--out", tmp_path / "merged", "--parity-baseline", tmp_path / "stored.json")
    assert result.returncode == 1, result.stdout + result.stderr
    merged = json.loads((tmp_path / "merged" / "parity.json").read_text())
    assert [d["check"] for d in merged["baseline"]["new_failures"]] == [failing]


def test_an_unreadable_input_is_a_usage_error(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    result = _merge(tmp_path / "broken.json", "--out", tmp_path / "out")
    assert result.returncode == 2 and "broken.json" in result.stderr
