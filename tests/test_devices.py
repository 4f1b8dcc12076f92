"""Self-tests of the device dimension (``--device``, conformance/devices.py), on a machine without a GPU.

* ``--device cpu`` given explicitly runs through the same code as a GPU run: every id ends with its device,
  the device type is a marker (``-k cuda`` selects a device's checks), and every report carries it;
* a binding that does not declare a device skips with that reason, and one whose framework finds no such
  device here (``cuda`` on this machine) skips when it runs;
* the data really moves: JAX with a second host device (``cpu:1``, in a child process, since XLA reads its
  flags once) computes there, and torch's ``meta`` device receives the tensors; an adapter whose result comes
  back from another device fails the check as misplaced;
* case data names the devices it was measured on: elsewhere a known divergence or a behaviour entry is
  unverified, not applied strictly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from conformance import devices, divergences as divergence_data, parity, suite as suite_module
from conformance.bindings import Problem, load_bindings
from conformance.cases import load_all
from suite_runs import ROOT, run_in_process, small_cases_dir

pytestmark = pytest.mark.selftest
TORCH_LOSS = "torch:nn.functional.cross_entropy"
# one torch API and a NumPy one that declares cpu only (tests/plugins/honest_numpy.py), on one published case
HONEST = "numpy:honest.sparse_softmax_cross_entropy"
SELECTION = "article1_sparse_rows and (torch:nn.functional.cross_entropy- or numpy:honest)"


@pytest.fixture(scope="module")
def two_device_run(tmp_path_factory):
    """A run on ``--device cpu --device cuda``: cuda's checks skip here (no GPU), cpu's run."""
    pytest.importorskip("torch", reason="the device run's torch checks need torch (pip install -e '.[torch]')")
    directory = tmp_path_factory.mktemp("devices")
    cases = small_cases_dir(directory, "published.yaml", divergences=False)
    junit = directory / "junit.xml"
    run = run_in_process("-q", "-rs", "--device", "cpu", "--device", "cuda", "--bindings", "honest_numpy", "-k",
                         SELECTION, f"--cases-dir={cases}", f"--reports-dir={directory}", f"--junitxml={junit}",
                         str(ROOT / "tests" / "test_conformance.py"), str(ROOT / "tests" / "test_gradients.py"),
                         bindings_path=True)
    assert run.returncode == 0, run.output[-3000:]
    records = json.loads((directory / "parity.json").read_text())["checks"]
    return directory, records, run.output


def test_every_id_ends_with_its_device_and_every_report_carries_it(two_device_run):
    directory, records, _ = two_device_run
    by_device = {}
    for record in records:
        by_device.setdefault(record["device"], []).append(record)
        assert record["check"].endswith("-" + record["device"]), record["check"]
    assert set(by_device) == {"cpu", "cuda"}
    ran = [r for r in by_device["cpu"] if r["outcome"] != "skipped"]
    assert {r["outcome"] for r in ran} == {"passed"}
    assert {(r["framework"], r["kind"]) for r in ran} == {("torch", "value"), ("torch", "gradient"), ("numpy", "value")}
    assert sorted(r["check"][:-len("-cpu")] for r in by_device["cpu"]) == sorted(
        r["check"][:-len("-cuda")] for r in by_device["cuda"])
    assert {r["kind"] for r in by_device["cpu"]} == {"value", "gradient"}
    tree = ElementTree.parse(directory / "junit.xml")
    devices_in_junit = {prop.get("value") for prop in tree.iter("property") if prop.get("name") == "device"}
    assert devices_in_junit == {"cpu", "cuda"}
    table = (directory / "parity.md").read_text()
    assert f"| `{TORCH_LOSS}` | cpu |" in table and f"| `{TORCH_LOSS}` | cuda |" in table
    page = (directory / "parity.html").read_text()
    assert f"data-binding='{TORCH_LOSS}' data-device='cuda'" in page


def test_a_device_a_binding_does_not_declare_or_this_machine_lacks_skips_with_the_reason(two_device_run):
    _, records, _ = two_device_run
    cuda = {record["binding"]: record for record in records if record["device"] == "cuda" and record["kind"] == "value"}
    assert all(record["outcome"] == "skipped" for record in cuda.values())
    assert "runs on cpu only (declared in its binding" in cuda[HONEST]["reason"]
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: torch's cuda checks ran (the GPU check's job)")
    assert "torch finds no CUDA device here" in cuda[TORCH_LOSS]["reason"]


def test_the_device_type_selects_with_k_and_m(tmp_path):
    cases = small_cases_dir(tmp_path, "published.yaml", divergences=False)

    def collected(*selection):
        listing = run_in_process("--collect-only", "-q", "--device", "cpu", "--device", "cuda", "--bindings",
                                 "honest_numpy", *selection, f"--cases-dir={cases}", f"--reports-dir={tmp_path}",
                                 str(ROOT / "tests" / "test_conformance.py"), bindings_path=True)
        return [line for line in listing.output.splitlines() if "::" in line]

    by_keyword, by_marker = collected("-k", f"cuda and {SELECTION}"), collected("-m", "cuda", "-k", SELECTION)
    assert by_keyword and all(line.endswith("-cuda]") for line in by_keyword)
    assert by_marker == by_keyword
    assert sorted(line[:-len("-cpu]")] for line in collected("-m", "cpu", "-k", SELECTION)) == sorted(
        line[:-len("-cuda]")] for line in by_keyword)


def test_a_device_name_that_is_not_one_is_a_usage_error(tmp_path):
    run = run_in_process("--collect-only", "-q", "--device", "CUDA 0", str(ROOT / "tests" / "test_conformance.py"))
    assert run.returncode == pytest.ExitCode.USAGE_ERROR and "a device is named 'type' or 'type:index'" in run.output


def test_a_divergence_or_behaviour_measured_on_cpu_is_unverified_on_another_device():
    bindings = load_bindings()
    binding = bindings[TORCH_LOSS]
    case = next(c for c in load_all(suite_module.CASES_DIR) if c.id == "article1_sparse_rows")
    data_id = suite_module.check_id(case, binding, "float32")
    on_cpu = divergence_data.Divergence("on_cpu", (data_id,), "a reason long enough", "nowhere")
    on_cuda = dataclasses.replace(on_cpu, id="on_cuda", devices=("cuda*",))
    for entry, verified_on, unverified_on in ((on_cpu, "cpu", "cuda:1"), (on_cuda, "cuda:1", "cpu")):
        verified, unverified = (next(c for c in suite_module.generate([case], {binding.id: binding}, (entry,), (d,))
                                     if c.dtype == "float32" and c.kind == "value")
                                for d in (verified_on, unverified_on))
        assert verified.divergence is entry and verified.unverified is None
        assert unverified.divergence is entry
        assert unverified.unverified == (f"known divergence [{entry.id}] was measured on "
                                         f"{', '.join(entry.devices or devices.MEASURED_ON)}, not on {unverified_on}")
    behaviour_case = dataclasses.replace(case, expect={
        TORCH_LOSS: {"returns": "nan", "devices": ["cuda"]}, "torch": {"raises": "ValueError"}})
    assert suite_module.behaviour_for(behaviour_case, binding, "cuda") == {"returns": "nan", "devices": ["cuda"]}
    assert suite_module.behaviour_for(behaviour_case, binding, "cpu") == {"raises": "ValueError"}
    only_cuda = dataclasses.replace(case, expect={TORCH_LOSS: {"returns": "nan", "devices": ["cuda"]}})
    assert suite_module._behaviour_unverified(only_cuda, binding, (), "cpu") == (
        "the behaviour entry of article1_sparse_rows was measured on cuda, not on cpu")


def test_a_run_on_another_device_alone_finds_no_divergence_stale():
    """TensorFlow's checks all skip on cuda (cpu only), yet its entries describe the checks it runs on cpu."""
    on_cpu, on_cuda = (suite_module.build(devices=(device,)) for device in ("cpu", "cuda"))
    assert any(check.skip for check in on_cuda.checks if check.binding.framework == "tensorflow")
    assert on_cuda.stale_divergences() == on_cpu.stale_divergences()


def test_the_parity_page_has_a_row_per_device():
    record = {"check": "softmax-c-torch:f-float32-cpu", "kind": "value", "framework": "torch", "binding": "torch:f",
              "api": "f", "family": "softmax", "case": "c", "dtype": "float32", "outcome": "passed", "max_ulp": 0.5,
              "device": "cpu"}
    elsewhere = {**record, "check": "softmax-c-torch:f-float32-cuda", "device": "cuda", "outcome": "failed"}
    old = {key: value for key, value in record.items() if key != "device"}  # a report from before devices
    document = parity.document([record, elsewhere], {"packages": {}}, interrupted=False)
    assert [(cell["device"], cell["counts"]["failed"]) for cell in document["matrix"]] == [("cpu", 0), ("cuda", 1)]
    assert parity.matrix([old])[0]["device"] == "cpu"


def _torch_problem(device: str) -> Problem:
    return Problem("sparse_softmax", {"logits": np.float32([[0.2, 0.1, 0.9]]), "labels": np.int64([2])},
                   {"reduction": "none"}, "float32", device)


def test_tensors_move_to_the_named_device_and_a_result_from_elsewhere_is_refused(monkeypatch):
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[torch]')")
    from conformance.frameworks import torch as adapter

    binding = load_bindings()[TORCH_LOSS]
    with adapter.on("meta"):
        assert adapter.tensor(np.ones(3, np.float32)).device.type == "meta"
    # computed on the meta device, which holds shapes and no values: its result cannot come back as numbers
    with pytest.raises(NotImplementedError, match="meta"):
        binding.call(_torch_problem("meta"))
    assert binding.call(_torch_problem("cpu")).dtype == np.float32
    original = adapter.tensor

    def left_on_the_host(array):
        with adapter.on("cpu"):
            return original(array)

    monkeypatch.setattr(adapter, "tensor", left_on_the_host)
    with pytest.raises(devices.Misplaced, match="torch returned a tensor on cpu, where the check's inputs were "
                                                "placed on meta"):
        binding.call(_torch_problem("meta"))


JAX_SECOND_DEVICE = textwrap.dedent('''
    import json
    import numpy as np
    from conformance import devices
    from conformance.frameworks import jax as adapter
    from conformance.runner import run_gradient_check, run_value_check
    from conformance.suite import build

    suite = build(devices=("cpu:1",))
    checks = [check for check in suite.checks if check.case.id == "article1_sparse_rows" and check.dtype == "float32"
              and check.binding.id == "jax:optax.softmax_cross_entropy_with_integer_labels"]
    outcomes = {check.kind: (run_value_check(check).verdict.ok if check.kind == "value"
                             else all(o.verdict.ok for o in run_gradient_check(check))) for check in checks}
    value = next(check for check in checks if check.kind == "value")
    jax = adapter._jax()
    placed = adapter.array(np.float32([1.0]), "cpu:1")
    adapter.array = lambda value, where="cpu": jax.device_put(value, jax.devices("cpu")[0])  # a misplacing adapter
    try:
        run_value_check(value)
        misplaced = None
    except devices.Misplaced as error:
        misplaced = str(error)
    print(json.dumps({"ids": [check.id for check in checks], "outcomes": outcomes, "devices": len(jax.devices("cpu")),
                      "placed_on_the_second": placed.devices() == {jax.devices("cpu")[1]},
                      "second": str(jax.devices("cpu")[1]), "misplaced": misplaced}))
''')


def test_a_second_host_device_computes_the_checks_and_a_misplaced_result_fails():
    pytest.importorskip("jax", reason="JAX is not installed (pip install -e '.[jax]')")
    pytest.importorskip("optax", reason="optax is not installed (pip install -e '.[jax]')")
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
                   "JAX_PLATFORMS": "cpu"}
    child = subprocess.run([sys.executable, "-c", JAX_SECOND_DEVICE], cwd=ROOT, env=environment,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    found = json.loads(child.stdout.strip().splitlines()[-1])
    assert found["devices"] == 2 and found["placed_on_the_second"]
    assert found["outcomes"] == {"value": True, "gradient": True}
    assert all(check_id.endswith("-cpu:1") for check_id in found["ids"]) and len(found["ids"]) == 2
    assert found["misplaced"] and f"where the check's inputs were placed on {found['second']}" in found["misplaced"]


def test_the_accuracy_and_behaviour_reports_keep_devices_apart():
    from conformance import reports

    record = {"check": "softmax-c-torch:f-float32-cpu", "kind": "value", "framework": "torch", "binding": "torch:f",
              "api": "f", "family": "softmax", "case": "c", "dtype": "float32", "outcome": "passed", "max_ulp": 0.5,
              "device": "cpu"}
    elsewhere = {**record, "check": "softmax-c-torch:f-float32-cuda", "device": "cuda", "max_ulp": 3.0}
    rows = reports.accuracy_rows([record, elsewhere])
    assert [(row["device"], row["max_ulp"]) for row in rows] == [("cpu", 0.5), ("cuda", 3.0)]
    assert "| `f` | cuda | float32 | loss |" in reports.accuracy_markdown(rows)
    behaviour = [{**record, "kind": "behaviour", "cell": "returns: nan"},
                 {**elsewhere, "kind": "behaviour", "cell": "raises ValueError"}]
    table = reports.behaviour_tables(behaviour)["softmax"]
    assert table["columns"] == ["torch:f", "torch:f on cuda"]
    assert table["rows"]["c"] == {"torch:f": "returns: nan", "torch:f on cuda": "raises ValueError"}


def test_the_gpu_check_selects_its_two_frameworks_on_both_devices(tmp_path):
    """benchmarks/gpu_check.py's own arguments, collected on a few cases: what the GPU machine will run."""
    gpu_check = pytest.importorskip("benchmarks.gpu_check", reason="benchmarks/ ships with a clone, not the wheel")
    cases = small_cases_dir(tmp_path, "published.yaml", divergences=False)
    arguments = [argument for argument in gpu_check.pytest_arguments(str(tmp_path))
                 if argument not in gpu_check.TEST_FILES]
    listing = run_in_process("--collect-only", *arguments, f"--cases-dir={cases}",
                             *(str(ROOT / name) for name in gpu_check.TEST_FILES))
    ids = [line.split("[", 1)[1][:-1] for line in listing.output.splitlines() if "::" in line]
    assert ids, listing.output[-2000:]
    bindings = {device: {check_id.split("-")[2] for check_id in ids if check_id.endswith("-" + device)}
                for device in gpu_check.DEVICES}
    assert set(bindings) == {"cuda", "cpu"} and len(ids) == sum(
        1 for check_id in ids if check_id.endswith(("-cuda", "-cpu")))
    assert {"torch:compile.nn.functional.cross_entropy", "torch:nn.functional.cross_entropy",
            "jax:optax.softmax_cross_entropy_with_integer_labels"} <= bindings["cuda"]
    assert "torch:nn.functional.cross_entropy" in bindings["cpu"] and not any(
        "compile" in binding for binding in bindings["cpu"])
    assert all(binding.split(":")[0] in ("torch", "jax") for device in bindings.values() for binding in device)
