"""Self-tests: the suite's own bad situations lose nothing.

* a framework call that raises fails its item and the run goes on;
* a call that kills its xdist worker is a crash in every report (signal, last
  check id) and a new failure for the baseline guard;
* an interrupted run (a real SIGINT, as Ctrl-C sends) still leaves well-formed
  JUnit XML, the HTML report and the JSON reports, marked as interrupted;
* a malformed case file fails collection with the file, case and field.

The misbehaving framework is a bindings module written for the test and loaded
with ``--bindings``, the interface any third party uses. Each child pytest runs
on a case directory of one case (``--cases-dir``), so that it collects a
handful of items instead of the whole suite, and starts with SIGINT at its
default disposition: a run started in the background (a CI runner, ``nohup``)
inherits SIGINT ignored, and its child would never see the interrupt.
"""

import html
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).resolve().parent.parent

BINDINGS_MODULE = '''
"""Bindings that misbehave on purpose, for the robustness self-tests."""
import os
import time
from pathlib import Path

import numpy as np

from conformance.bindings import Binding
from reference.conventions import tensorflow as ref_tf


def reference(problem):
    return ref_tf.sparse_softmax_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True)


def honest(problem):
    return np.asarray(reference(problem), dtype=np.float64).astype(problem.dtype)


def crashing(problem):
    raise RuntimeError("the framework fell over")


def sleeping(problem):
    Path(os.environ["XENT_MARKER"]).write_text("called")
    time.sleep(60)
    return honest(problem)


def aborting(problem):
    os.abort()  # a framework that takes the process down (a segfault in a kernel, an abort in C++)


def binding(name, call):
    return Binding(id=f"numpy:{name}", api=f"numpy.{name}", framework="numpy", family="sparse_softmax",
                   call=call, reference=reference, dtypes=frozenset({"float32"}),
                   convention=("reference.conventions.tensorflow.sparse_softmax_cross_entropy_with_logits",))


BINDINGS = [binding("honest", honest), binding("crashing", crashing), binding("sleeping", sleeping),
            binding("aborting", aborting)]
'''


ONE_CASE = """
cases:
  - id: article1_sparse_rows
    family: sparse_softmax
    inputs:
      logits: [[0.2, 0.1, 0.9], [0.2, 0.1, 0.9], [0.7, 0.4, 0.1]]
      labels: [2, 1, 0]
    dtypes: [float32]
    bindings: ["numpy:*"]
"""
# a child that ends on its own within this never needs more; one that does not is killed
CHILD_TIMEOUT = 120


@pytest.fixture
def misbehaving(tmp_path):
    (tmp_path / "misbehaving_bindings.py").write_text(BINDINGS_MODULE)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "one.yaml").write_text(ONE_CASE)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "XENT_MARKER": str(tmp_path / "called")}
    return tmp_path, env


def _command(tmp_path, *args):
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
            "--bindings", "misbehaving_bindings", f"--cases-dir={tmp_path / 'cases'}",
            f"--junitxml={tmp_path / 'junit.xml'}", f"--html={tmp_path / 'report.html'}", "--self-contained-html",
            f"--reports-dir={tmp_path}", "tests/test_conformance.py", *args]


def _default_sigint():
    """Runs in the child before exec: Ctrl-C's signal must reach it however this run was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(command, env, **kwargs):
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT,
                          preexec_fn=_default_sigint, **kwargs)


def test_a_crashing_call_fails_its_item_and_the_run_goes_on(misbehaving):
    tmp_path, env = misbehaving
    result = _run(_command(tmp_path, "-q", "-k", "honest or crashing"), env)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed, 1 passed" in result.stdout, result.stdout[-3000:]
    assert "the framework fell over" in result.stdout
    parity = json.loads((tmp_path / "parity.json").read_text())
    outcomes = {check["binding"]: check["outcome"] for check in parity["checks"] if check["kind"] == "value"}
    assert outcomes == {"numpy:honest": "passed", "numpy:crashing": "failed"}
    # pytest-html's table lists the failure with its message; the passed item is counted, not listed
    page = (tmp_path / "report.html").read_text()
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    rows = {node_id: entries for node_id, entries in blob["tests"].items() if entries}
    assert [node_id for node_id in rows if "crashing" in node_id] and not [n for n in rows if "honest" in n], rows
    assert "the framework fell over" in json.dumps(rows) and "1 Passed" in page and "1 passed and 0 skipped" in page


def test_a_dead_worker_is_a_crash_in_every_report_and_a_new_failure(misbehaving):
    tmp_path, env = misbehaving
    selection = "honest or aborting"
    honest_id = "sparse_softmax-article1_sparse_rows-numpy:honest-float32-cpu"
    aborting_id = "sparse_softmax-article1_sparse_rows-numpy:aborting-float32-cpu"
    # the stored run in which the aborting binding still passed
    stored = {"environment": {}, "checks": [{"check": honest_id, "outcome": "passed", "max_ulp": 0.0},
                                            {"check": aborting_id, "outcome": "passed", "max_ulp": 0.0}]}
    (tmp_path / "stored.json").write_text(json.dumps(stored))
    result = _run(_command(tmp_path, "-q", "-n", "2", "-k", selection,
                           f"--parity-baseline={tmp_path / 'stored.json'}"), env)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "crashed" in result.stdout, result.stdout[-3000:]
    parity = json.loads((tmp_path / "parity.json").read_text())
    checks = {check["check"]: check for check in parity["checks"]}
    assert checks[honest_id]["outcome"] == "passed"
    crash = checks[aborting_id]
    assert crash["outcome"] == "crashed" and crash["crash_signal"] == "SIGABRT", crash
    assert crash["last_check"] == aborting_id and crash["binding"] == "numpy:aborting", crash
    assert parity["totals"]["crashed"] == 1
    assert [d["check"] for d in parity["baseline"]["new_failures"]] == [aborting_id], parity["baseline"]
    page = (tmp_path / "parity.html").read_text()
    assert "o-crashed" in page and "SIGABRT" in page
    summary = (tmp_path / "parity.md").read_text()
    assert "## Crashed" in summary and aborting_id in summary
    junit = ElementTree.parse(tmp_path / "junit.xml").getroot()
    crashed = [case for case in junit.iter("testcase") if aborting_id in case.get("name")]
    assert crashed and "SIGABRT" in "".join(e.get("message", "") for e in crashed[0] if e.tag in ("error", "failure"))


def test_an_interrupted_run_still_writes_its_reports(misbehaving):
    tmp_path, env = misbehaving
    process = subprocess.Popen(_command(tmp_path, "-q", "-k", "honest or sleeping", "-p", "no:randomly"),
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + CHILD_TIMEOUT
        while not (tmp_path / "called").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()[-3000:]
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=CHILD_TIMEOUT)
    finally:
        if process.poll() is None:  # never leave a child running, whatever failed above
            process.kill()
            process.communicate()
    assert "KeyboardInterrupt" in output, output[-3000:]
    ElementTree.parse(tmp_path / "junit.xml")  # well-formed
    assert "</html>" in (tmp_path / "report.html").read_text()
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity["interrupted"] is True
    assert any(check["outcome"] == "passed" for check in parity["checks"])
    assert "interrupted" in (tmp_path / "accuracy.md").read_text()


def test_a_malformed_case_file_fails_collection_naming_file_case_and_field(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "broken.yaml").write_text(textwrap.dedent("""
        cases:
          - id: broken_rows
            family: sparse_softmax
            inputs:
              logits: [[1.0, "two", 3.0]]
              labels: [2]
    """))
    result = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
                   f"--cases-dir={cases}", f"--reports-dir={tmp_path}", "tests/test_conformance.py"], dict(os.environ))
    assert result.returncode != 0
    assert "broken.yaml: case 'broken_rows': field 'inputs.logits'" in result.stdout, result.stdout[-3000:]
