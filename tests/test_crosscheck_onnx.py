"""A second opinion on the reference's torch conventions: the ONNX reference
evaluator (``onnx.reference``), whose SoftmaxCrossEntropyLoss and
NegativeLogLikelihoodLoss follow torch's weight / ignore_index / reduction
semantics, on a grid of weights, ignored indices, reductions, shapes and dtypes.

The ONNX evaluator computes ``log(softmax(x))`` in the input dtype, so it is
judged by the same tolerance model as a framework. Where its algorithm cannot
be exact (a probability that underflows), the disagreement is documented by
``test_onnx_takes_the_log_of_an_underflowed_softmax``.
"""

import itertools

import numpy as np
import pytest

from conformance.bindings import Problem
from conformance.tolerance import compare
from reference import core
from reference.conventions import torch as ref_torch

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[crosscheck]')")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

pytestmark = pytest.mark.crosscheck

ELEMENT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
SHAPES = {"rows": (5, 4), "sequence": (2, 4, 3), "spatial": (2, 4, 2, 3)}
WEIGHTS = {"unweighted": None, "weighted": [0.3, 1.0, 2.5, 0.75]}
IGNORED = {"keep_all": None, "ignore1": 1}
REDUCTIONS = ("none", "sum", "mean")


def _model(op: str, reduction: str, ignore_index, weighted: bool, dtype: str):
    element = ELEMENT_TYPES[dtype]
    inputs = [helper.make_tensor_value_info("scores", element, None),
              helper.make_tensor_value_info("labels", TensorProto.INT64, None)]
    names = ["scores", "labels"]
    if weighted:
        inputs.append(helper.make_tensor_value_info("weights", element, None))
        names.append("weights")
    attributes = {"reduction": reduction}
    if ignore_index is not None:
        attributes["ignore_index"] = ignore_index
    node = helper.make_node(op, names, ["loss"], **attributes)
    graph = helper.make_graph([node], "loss", inputs, [helper.make_tensor_value_info("loss", element, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _inputs(shape, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=2.0, size=shape)
    labels = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    return scores, labels


def _scale(scores, labels, options, dtype, exact):
    """The torch binding's tolerance scale for the same problem (class axis 1)."""
    from conformance.frameworks.torch import BINDINGS
    from conformance.tolerance import output_scale

    binding = next(b for b in BINDINGS if b.id == "torch:nn.functional.cross_entropy")
    problem = Problem("sparse_softmax", {"logits": scores, "labels": labels}, {**options, "axis": 1}, dtype)
    return output_scale(binding, problem, exact)


GRID = list(itertools.product(SHAPES, WEIGHTS, IGNORED, REDUCTIONS, ELEMENT_TYPES))


@pytest.mark.parametrize("shape, weights, ignored, reduction, dtype", GRID,
                         ids=["-".join(point) for point in GRID])
def test_softmax_cross_entropy_loss_agrees(shape, weights, ignored, reduction, dtype):
    scores, labels = _inputs(SHAPES[shape], seed=len(shape) + len(weights) * 3 + len(reduction))
    scores = scores.astype(dtype)
    weight = None if WEIGHTS[weights] is None else np.asarray(WEIGHTS[weights], dtype=dtype)
    ignore_index = IGNORED[ignored]
    model = _model("SoftmaxCrossEntropyLoss", reduction, ignore_index, weight is not None, dtype)
    feeds = {"scores": scores, "labels": labels, **({"weights": weight} if weight is not None else {})}
    (got,) = ReferenceEvaluator(model).run(None, feeds)
    options = {"reduction": reduction, **({"weight": weight} if weight is not None else {}),
               **({"ignore_index": ignore_index} if ignore_index is not None else {})}
    exact = ref_torch.cross_entropy(scores, labels, extended=True, **options)
    verdict = compare(np.asarray(got), exact, _scale(scores, labels, options, dtype, exact), dtype)
    assert verdict.ok, (verdict, np.asarray(got), exact.astype(np.float64))


@pytest.mark.parametrize("shape, weights, ignored, reduction, dtype", GRID,
                         ids=["-".join(point) for point in GRID])
def test_negative_log_likelihood_loss_agrees(shape, weights, ignored, reduction, dtype):
    scores, labels = _inputs(SHAPES[shape], seed=100 + len(shape) + len(weights) * 3 + len(reduction))
    log_probs = (-core.neg_log_softmax(scores, axis=1)).astype(dtype)
    weight = None if WEIGHTS[weights] is None else np.asarray(WEIGHTS[weights], dtype=dtype)
    ignore_index = IGNORED[ignored]
    model = _model("NegativeLogLikelihoodLoss", reduction, ignore_index, weight is not None, dtype)
    feeds = {"scores": log_probs, "labels": labels, **({"weights": weight} if weight is not None else {})}
    (got,) = ReferenceEvaluator(model).run(None, feeds)
    options = {"reduction": reduction, **({"weight": weight} if weight is not None else {}),
               **({"ignore_index": ignore_index} if ignore_index is not None else {})}
    exact = ref_torch.nll_loss(log_probs, labels, extended=True, **options)
    # negation and weighting are exact; only the reduction's partial sums round
    growth = np.ceil(np.log2(max(2, labels.size)))
    verdict = compare(np.asarray(got), exact, growth * np.abs(exact), dtype)
    assert verdict.ok, (verdict, np.asarray(got), exact.astype(np.float64))


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log")
def test_onnx_takes_the_log_of_an_underflowed_softmax():
    """Disagreement, documented: ONNX's reference evaluator computes
    log(softmax(x)), which is log(0) = -inf once a class's probability
    underflows; the exact loss of logits [0, -800] at class 1 is 800."""
    scores = np.array([[0.0, -800.0]])
    labels = np.array([1])
    (got,) = ReferenceEvaluator(_model("SoftmaxCrossEntropyLoss", "none", None, False, "float64")).run(
        None, {"scores": scores, "labels": labels})
    assert np.asarray(got)[0] == np.inf
    assert ref_torch.cross_entropy(scores, labels, reduction="none")[0] == pytest.approx(800.0, rel=1e-15)
