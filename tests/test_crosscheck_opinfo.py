"""A second opinion from PyTorch itself: the sample inputs that PyTorch's OpInfo
database (``torch.testing._internal.common_methods_invocations``, shipped in the
torch wheel) generates for its own loss tests, run through torch and through the
reference's torch conventions, judged by the tolerance model.

Samples are drawn inside the test, not at collection, so that collecting the
suite imports no framework; a mismatch lists every failing sample.
"""

import dataclasses

import numpy as np
import pytest

from conformance.bindings import Problem, family_of, prediction_name
from conformance.tolerance import compare, output_scale
from reference.conventions import torch as ref_torch

pytestmark = [pytest.mark.crosscheck, pytest.mark.torch]

# OpInfo name -> (family for the target dtype, binding whose tolerance scale applies, reference)
OPS = {
    "nn.functional.cross_entropy": "torch:nn.functional.cross_entropy",
    "nn.functional.nll_loss": "torch:nn.functional.nll_loss(log_softmax)",
    "nn.functional.binary_cross_entropy": "torch:nn.functional.binary_cross_entropy",
    "nn.functional.binary_cross_entropy_with_logits": "torch:nn.functional.binary_cross_entropy_with_logits",
}


def _samples(name, dtype):
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[torch]')")
    pytest.importorskip("expecttest", reason="torch's test database needs expecttest (pip install -e '.[crosscheck]')")
    from torch.testing._internal.common_methods_invocations import op_db

    (op,) = [op for op in op_db if op.name == name and op.variant_test_name == ""]
    return torch, op, list(op.sample_inputs("cpu", getattr(torch, dtype)))


def _numpy(value):
    return value.detach().numpy() if hasattr(value, "detach") else value


def _problem_and_reference(name, sample, dtype, bindings):
    """(binding, problem, exact) for one OpInfo sample, in torch's layout."""
    inputs = _numpy(sample.input)
    target = _numpy(sample.args[0] if sample.args else sample.kwargs["target"])
    options = {key: _numpy(value) for key, value in sample.kwargs.items() if key != "target"}
    binding = bindings[OPS[name]]
    if name == "nn.functional.cross_entropy":
        family = "softmax" if target.dtype.kind == "f" else "sparse_softmax"
        exact = ref_torch.cross_entropy(inputs, target, extended=True, **options)
    elif name == "nn.functional.nll_loss":
        family = "sparse_softmax"
        exact = ref_torch.nll_loss(inputs, target, extended=True, **options)
        # -input[y] * w is exact: no per-element scale, only the reduction's sums
        binding = dataclasses.replace(binding, scale=lambda problem: np.zeros(np.shape(problem.labels)))
    elif name == "nn.functional.binary_cross_entropy":
        family = "binary_probs"
        exact = ref_torch.binary_cross_entropy(inputs, target, extended=True, **options)
    else:
        family = "sigmoid"
        exact = ref_torch.binary_cross_entropy_with_logits(inputs, target, extended=True, **options)
    axis = {"axis": 1} if family_of(family).softmax and np.ndim(inputs) > 1 else {}
    problem = Problem(family, {prediction_name(family): inputs, "labels": target}, {**options, **axis}, dtype)
    if family == "softmax":
        binding = dataclasses.replace(binding, reduce=bindings["torch:nn.functional.cross_entropy(probability_targets)"].reduce)
    return binding, problem, exact


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPS), ids=[f"torch:{name}" for name in OPS])
def test_opinfo_samples_agree(name, dtype):
    from conformance.bindings import load_bindings

    torch, op, samples = _samples(name, dtype)
    bindings = load_bindings()
    assert samples, f"OpInfo gave no samples for {name}"
    failures = []
    for index, sample in enumerate(samples):
        got = op(sample.input, *sample.args, **sample.kwargs).detach().numpy()
        binding, problem, exact = _problem_and_reference(name, sample, dtype, bindings)
        verdict = compare(got, exact, output_scale(binding, problem, exact), dtype)
        if not verdict.ok:
            failures.append(f"sample {index}: input {tuple(sample.input.shape)}, kwargs "
                            f"{ {k: getattr(v, 'shape', v) for k, v in sample.kwargs.items()} }: {verdict.problem}, "
                            f"max {verdict.max_ulp:.3g} ULP")
    assert not failures, f"{len(failures)} of {len(samples)} OpInfo samples disagree:\n" + "\n".join(failures)
