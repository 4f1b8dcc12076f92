"""Self-tests of the work done ahead (conformance.prepare): the background process
prepares the listed checks from the last to the first, survives a failing call,
and starts only where a core is idle; a plain run starts it and stops it."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance import prepare

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).resolve().parent.parent

BINDINGS_MODULE = '''
import os
from pathlib import Path

import numpy as np

from conformance.bindings import Binding
from reference.conventions import tensorflow as ref_tf


def reference(problem):
    return ref_tf.sparse_softmax_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True)


def call(problem):
    return np.asarray(reference(problem), dtype=np.float64).astype(problem.dtype)


def prepare(problem):
    with open(os.environ["XENT_PREPARED"], "a") as log:
        log.write(f"{problem.dtype} {problem.prediction.shape[0]}\\n")
    if problem.prediction.shape[0] == 2:
        raise RuntimeError("a framework error while preparing")


BINDINGS = [Binding(id="numpy:ahead", api="numpy.ahead", framework="numpy", family="sparse_softmax", call=call,
                    reference=reference, dtypes=frozenset({"float32", "float64"}), prepare=prepare,
                    convention=("reference.conventions.tensorflow.sparse_softmax_cross_entropy_with_logits",))]
'''

CASES = """
cases:
""" + "".join(f"""
  - id: ahead_rows_{rows}
    family: sparse_softmax
    inputs:
      logits: {{normal: {{shape: [{rows}, 3], seed: {rows}}}}}
      labels: {{integers: {{shape: [{rows}], low: 0, high: 3, seed: {rows}}}}}
    bindings: ["numpy:*"]
""" for rows in (1, 2, 3))


@pytest.fixture
def ahead(tmp_path, monkeypatch):
    (tmp_path / "ahead_bindings.py").write_text(BINDINGS_MODULE)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "ahead.yaml").write_text(textwrap.dedent(CASES))
    monkeypatch.syspath_prepend(str(tmp_path))
    log = tmp_path / "prepared.log"
    monkeypatch.setenv("XENT_PREPARED", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path, log


def test_checks_are_prepared_from_the_last_and_a_failure_does_not_stop_it(ahead):
    tmp_path, log = ahead
    ids = [f"sparse_softmax-ahead_rows_{rows}-numpy:ahead-{dtype}-cpu" for rows in (1, 2, 3)
           for dtype in ("float32", "float64")]
    listing = {"cases_dir": str(tmp_path / "cases"), "bindings": ["ahead_bindings"], "checks": ids}
    assert prepare.prepare_all(listing) == 6
    assert log.read_text().split("\n")[:-1] == ["float64 3", "float32 3", "float64 2", "float32 2", "float64 1",
                                                  "float32 1"]


def _config(**option):
    defaults = {"numprocesses": None, "collectonly": False}
    return SimpleNamespace(option=SimpleNamespace(**{**defaults, **option}))


def test_it_starts_only_where_a_core_is_idle(monkeypatch):
    monkeypatch.delenv("XENT_PREPARE", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert prepare.Preparer(_config()).wanted()
    assert not prepare.Preparer(_config(numprocesses=2)).wanted()  # xdist's workers use every core
    assert not prepare.Preparer(_config(collectonly=True)).wanted()
    worker = _config()
    worker.workerinput = {}
    assert not prepare.Preparer(worker).wanted()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not prepare.Preparer(_config()).wanted()
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setenv("XENT_PREPARE", "0")
    assert not prepare.Preparer(_config()).wanted()


def test_a_plain_run_prepares_its_checks_ahead(ahead, monkeypatch):
    tmp_path, log = ahead
    monkeypatch.setattr(prepare, "MINIMUM_CHECKS", 1)
    monkeypatch.delenv("XENT_PREPARE", raising=False)
    script = textwrap.dedent(f"""
        import sys, time, pytest
        from conformance import prepare
        prepare.MINIMUM_CHECKS = 1
        started = []

        class Wait:
            def pytest_sessionfinish(self, session):
                preparer = session.config.pluginmanager.get_plugin("xent-conformance-preparer")
                started.append(preparer.started)
                deadline = time.monotonic() + 60
                while preparer.process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)

        code = pytest.main(["-q", "-o", "addopts=", "-p", "no:cacheprovider", "--bindings", "ahead_bindings",
                            "--cases-dir={tmp_path / 'cases'}", "--reports-dir={tmp_path}", "-k", "float64",
                            "tests/test_conformance.py"], plugins=[Wait()])
        print("STARTED", started)
        sys.exit(code)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "STARTED [True]" in result.stdout
    assert log.read_text().split("\n")[:-1] == ["float64 3", "float64 2", "float64 1"]


def test_a_plain_run_puts_the_prepared_bindings_items_last_in_their_order(ahead, monkeypatch):
    from conformance.suite import build

    tmp_path, _ = ahead
    monkeypatch.delenv("XENT_PREPARE", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    first, second = [check for check in build(str(tmp_path / "cases"), ("ahead_bindings",)).checks
                     if check.kind == "value" and not check.skip][:2]
    eager = "torch:nn.functional.cross_entropy"

    def item(name, **params):
        return SimpleNamespace(name=name, callspec=SimpleNamespace(params=params) if params else None)

    items = [item("prepared check 1", value_check=first), item("plain self-test"),
             item("prepared property", binding_id="numpy:ahead", dtype="float32"),
             item("eager property", binding_id=eager, dtype="float32"), item("prepared check 2", value_check=second),
             item("eager pair", first_id=eager, second_id=eager, dtype="float64")]
    config = _config()
    config.getoption = lambda name: ("ahead_bindings",)
    monkeypatch.setattr(prepare, "MINIMUM_CHECKS", 2)
    ordered = list(items)
    prepare.Preparer(config).pytest_collection_modifyitems(None, config, ordered)
    assert [entry.name for entry in ordered] == ["plain self-test", "eager property", "eager pair",
                                                 "prepared check 1", "prepared property", "prepared check 2"]
    monkeypatch.setattr(prepare, "MINIMUM_CHECKS", 3)  # too few checks to start the background process
    kept = list(items)
    prepare.Preparer(config).pytest_collection_modifyitems(None, config, kept)
    assert kept == items


GRAPHS_IN_BOTH_ORDERS = '''
import functools, json, sys
import torch, torch._dynamo

graphs = []


def recording(graph, example_inputs):
    """What inductor's cache keys on: the traced code and its inputs' symbolic shapes, dtypes and strides."""
    inputs = [node.meta.get("example_value") for node in graph.graph.nodes if node.op == "placeholder"]
    graphs.append(graph.code + repr([(tuple(map(str, value.shape)), str(value.dtype), tuple(map(str, value.stride())))
                                     if isinstance(value, torch.Tensor) else str(value) for value in inputs]))
    return graph.forward


torch.compile = functools.partial(torch.compile, backend=recording)
from conformance.problems import make_problem
from conformance.suite import build

suite = build()
result = {}
for selection in json.loads(sys.argv[1]):
    binding, case_prefix = selection
    checks = [check for check in suite.checks if check.binding.id == binding and check.dtype == "float32"
              and check.kind == "value" and not check.skip and check.case.id.startswith(case_prefix)]
    built = []
    for order in (checks, checks[::-1]):
        torch._dynamo.reset()
        graphs.clear()
        for check in order:
            try:
                check.binding.call(make_problem(check.case, check.dtype, check.binding))
            except Exception:  # a bad input's error is a graph like any other's
                pass
        built.append(sorted(set(graphs)))
    result[binding] = {"checks": len(checks), "forward": built[0], "reverse": built[1]}
print(json.dumps(result))
'''


def test_the_work_done_ahead_builds_the_graphs_the_run_meets_whichever_order_it_walks():
    """The background process walks the checks from the last; its graphs serve the run only if walking them
    forward builds the same ones. Dynamo graphs of two compiled losses over float32 cases, traced in both orders
    with a recording backend (no inductor build). Duck shaping alone made 2 of the 9 graphs of the binary
    loss's 15 cases differ, the options' keyword order alone all 6 graphs of the class-index loss's 24
    options-grid cases (27 of 238 over every compiled check, each a graph the run built again)."""
    import importlib.util
    import json

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: the compiled forms need it")
    # (binding, the prefix of the case ids it runs): every case of the binary loss, the options grid of the other
    selections = [("torch:compile.nn.functional.binary_cross_entropy", ""),
                  ("torch:compile.nn.functional.cross_entropy", "masked_logits_class_index_options@")]
    result = subprocess.run([sys.executable, "-c", GRAPHS_IN_BOTH_ORDERS, json.dumps(selections)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout.strip().splitlines()[-1])
    for binding, _ in selections:
        assert built[binding]["checks"] >= 10 and len(built[binding]["forward"]) >= 5, binding
        assert built[binding]["forward"] == built[binding]["reverse"], binding
