"""Self-test: the README's "Adding a framework" example, made real.

A framework installed from outside this repository (a distribution ``mxlib``
with the README's bindings module, registered through the
``xent_conformance.bindings`` entry point) gets, with no edit to the suite, its
marker (``-m mxlib`` under ``--strict-markers``), its column in the parity
report, its version in the reports, and passes its first run: the behaviour
cases it has no entries for record what it did ("unrecorded") instead of
failing.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from suite_runs import small_cases_dir

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).resolve().parent.parent

# a stand-in for the framework itself: the shifted algorithm, in float64, rounded once
FRAMEWORK = '''
import numpy as np


def tensor(values):
    return np.asarray(values)


class losses:
    @staticmethod
    def sparse_cross_entropy(logits, labels):
        x = logits.astype(np.float64)
        top = np.max(x, axis=-1, keepdims=True)
        picked = np.take_along_axis(x, labels[..., None], axis=-1)[..., 0]
        with np.errstate(invalid="ignore"):
            terms = np.exp(x - top)
        np.put_along_axis(terms, np.argmax(x, axis=-1)[..., None], 0.0, axis=-1)
        return ((top[..., 0] - picked) + np.log1p(np.sum(terms, axis=-1))).astype(logits.dtype)
'''


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Adding a framework"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "mxlib").mkdir()
    (site / "mxlib" / "__init__.py").write_text(FRAMEWORK)
    (site / "mxlib_bindings.py").write_text(_readme_example())
    info = site / "mxlib-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mxlib\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("mxlib\nmxlib_bindings\n")
    (info / "entry_points.txt").write_text("[xent_conformance.bindings]\nmxlib = mxlib_bindings\n")
    (info / "RECORD").write_text("")
    reports = tmp_path_factory.mktemp("reports")
    # the published numbers and the behaviour matrix: a first run's checks of both kinds, not the whole suite's
    cases = small_cases_dir(reports, "published.yaml", "behaviour.yaml")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q", "--strict-markers",
         "-m", "mxlib", f"--junitxml={reports / 'junit.xml'}", f"--reports-dir={reports}", f"--cases-dir={cases}",
         "tests/test_conformance.py", "tests/test_behaviour.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    return result, reports


def test_the_example_runs_green_with_its_marker(installed):
    result, _ = installed
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout) and " failed" not in result.stdout, result.stdout[-2000:]


def test_it_has_its_column_and_version_in_the_reports(installed):
    _, reports = installed
    parity = json.loads((reports / "parity.json").read_text())
    bindings = {cell["binding"] for cell in parity["matrix"]}
    assert bindings == {"mxlib:losses.sparse_cross_entropy"}, bindings
    assert parity["environment"]["packages"].get("mxlib") == "1.2.3"
    assert {row["framework_version"] for row in parity["checks"]} == {"mxlib 1.2.3"}
    outcomes = {row["outcome"] for row in parity["checks"] if row["kind"] == "value"}
    assert "passed" in outcomes and not outcomes & {"failed", "error"}, outcomes


def test_its_behaviour_is_recorded_ready_to_paste(installed):
    _, reports = installed
    parity = json.loads((reports / "parity.json").read_text())
    unrecorded = [row for row in parity["checks"] if row["kind"] == "behaviour" and row.get("unrecorded")]
    assert unrecorded and all(row["outcome"] == "passed" for row in unrecorded)
    summary = (reports / "behaviour.md").read_text()
    assert "## Unrecorded" in summary and '"mxlib:losses.sparse_cross_entropy": {' in summary
