"""PyTorch bindings: ``torch.nn.functional`` losses and their ``torch.nn`` modules.

The case's class axis (last, or the ``axis`` option) moves to torch's class
dimension 1 for the call and the reference alike; the per-example output then
has the case's layout with the class axis removed. Each binding's reference is
the torch convention of :mod:`reference.conventions.torch`.
"""

from __future__ import annotations

import numpy as np

from conformance.bindings import Binding, Problem
from conformance.frameworks import class_axis_to, pick
from reference import core
from reference.conventions import torch as ref

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
REDUCTIONS = frozenset({"none", "sum", "mean"})
DOCS = "https://docs.pytorch.org/docs/2.13/nn.functional.html"
UNREDUCED = {"reduction": "none"}


def _torch():
    import torch

    return torch


def tensor(array):
    """A torch tensor holding ``array`` (bfloat16 via float32, exactly)."""
    torch = _torch()
    array = np.asarray(array)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(array, copy=True))


def to_numpy(value) -> np.ndarray:
    """A tensor's values in its own dtype (bfloat16 as ml_dtypes.bfloat16)."""
    torch = _torch()
    value = value.detach()
    if value.dtype == torch.bfloat16:
        import ml_dtypes

        return value.float().numpy().astype(ml_dtypes.bfloat16)
    return value.numpy()


def _class_dim(problem: Problem) -> int:
    return 1 if problem.prediction.ndim > 1 else 0


def _prediction(problem: Problem) -> np.ndarray:
    return class_axis_to(problem, problem.prediction, _class_dim(problem))


def _target(problem: Problem) -> np.ndarray:
    if problem.family == "softmax":
        return class_axis_to(problem, problem.labels, _class_dim(problem))
    return np.asarray(problem.labels)


def _tensor_options(problem: Problem, names) -> dict:
    kwargs = pick(problem, names)
    for name in ("weight", "pos_weight"):
        if name in kwargs:
            kwargs[name] = tensor(kwargs[name])
    return kwargs


CROSS_ENTROPY_OPTIONS = ("weight", "ignore_index", "reduction", "label_smoothing")
NLL_OPTIONS = ("weight", "ignore_index", "reduction")
BCE_OPTIONS = ("weight", "reduction")
BCE_LOGITS_OPTIONS = ("weight", "pos_weight", "reduction")


# --- calls ------------------------------------------------------------------

def _call_cross_entropy(problem: Problem):
    F = _torch().nn.functional
    return to_numpy(F.cross_entropy(tensor(_prediction(problem)), tensor(_target(problem)),
                                    **_tensor_options(problem, CROSS_ENTROPY_OPTIONS)))


def _call_cross_entropy_module(problem: Problem):
    nn = _torch().nn
    module = nn.CrossEntropyLoss(**_tensor_options(problem, CROSS_ENTROPY_OPTIONS))
    return to_numpy(module(tensor(_prediction(problem)), tensor(_target(problem))))


def _call_nll_log_softmax(problem: Problem):
    F = _torch().nn.functional
    log_probs = F.log_softmax(tensor(_prediction(problem)), dim=_class_dim(problem))
    return to_numpy(F.nll_loss(log_probs, tensor(_target(problem)), **_tensor_options(problem, NLL_OPTIONS)))


def _call_nll_module(problem: Problem):
    torch = _torch()
    log_probs = torch.nn.functional.log_softmax(tensor(_prediction(problem)), dim=_class_dim(problem))
    module = torch.nn.NLLLoss(**_tensor_options(problem, NLL_OPTIONS))
    return to_numpy(module(log_probs, tensor(_target(problem))))


def _call_bce(problem: Problem):
    F = _torch().nn.functional
    return to_numpy(F.binary_cross_entropy(tensor(problem.prediction), tensor(problem.labels),
                                           **_tensor_options(problem, BCE_OPTIONS)))


def _call_bce_module(problem: Problem):
    nn = _torch().nn
    module = nn.BCELoss(**_tensor_options(problem, BCE_OPTIONS))
    return to_numpy(module(tensor(problem.prediction), tensor(problem.labels)))


def _call_bce_logits(problem: Problem):
    F = _torch().nn.functional
    return to_numpy(F.binary_cross_entropy_with_logits(tensor(problem.prediction), tensor(problem.labels),
                                                       **_tensor_options(problem, BCE_LOGITS_OPTIONS)))


def _call_bce_logits_module(problem: Problem):
    nn = _torch().nn
    module = nn.BCEWithLogitsLoss(**_tensor_options(problem, BCE_LOGITS_OPTIONS))
    return to_numpy(module(tensor(problem.prediction), tensor(problem.labels)))


# --- references (extended precision, torch conventions) -----------------------

def reference_cross_entropy(problem: Problem):
    return ref.cross_entropy(_prediction(problem), _target(problem), extended=True,
                             **pick(problem, CROSS_ENTROPY_OPTIONS))


def reference_nll_log_softmax(problem: Problem):
    return ref.cross_entropy(_prediction(problem), _target(problem), extended=True, **pick(problem, NLL_OPTIONS))


def reference_bce(problem: Problem):
    return ref.binary_cross_entropy(problem.prediction, problem.labels, extended=True,
                                    **pick(problem, BCE_OPTIONS))


def reference_bce_logits(problem: Problem):
    return ref.binary_cross_entropy_with_logits(problem.prediction, problem.labels, extended=True,
                                                **pick(problem, BCE_LOGITS_OPTIONS))


# --- reductions of per-element values (for the tolerance model's scale) -----

def _weight_bound(problem: Problem, *names) -> core.WORK:
    bound = core.WORK(1)
    for name in names:
        if name in problem.options:
            bound = bound * max(core.WORK(1), np.max(np.abs(core.to_work(problem.options[name]))))
    return bound


def reduce_cross_entropy(values, problem: Problem):
    reduction = problem.options.get("reduction", "mean")
    target = _target(problem)
    weighted = core.to_work(values) * _weight_bound(problem, "weight")
    divisor = None
    if problem.family == "sparse_softmax":
        ignore_index = problem.options.get("ignore_index", -100)
        weighted = np.where(np.asarray(target) == ignore_index, core.WORK(0), weighted)
        divisor = ref.class_index_divisor(target, problem.options.get("weight"), ignore_index)
    else:
        divisor = ref.cross_entropy_divisor(_prediction(problem), target)
    return ref.reduce(weighted, reduction, divisor, extended=True)


def reduce_elementwise(values, problem: Problem):
    weighted = core.to_work(values) * _weight_bound(problem, "weight", "pos_weight")
    return ref.reduce(weighted, problem.options.get("reduction", "mean"), extended=True)


def _binding(name, api, family, call, reference, reduce, options):
    return Binding(
        id=f"torch:{name}",
        api=api,
        framework="torch",
        family=family,
        call=call,
        reference=reference,
        reduce=reduce,
        dtypes=DTYPES,
        options={**{option: None for option in options if option != "reduction"},
                 **({"reduction": REDUCTIONS} if "reduction" in options else {})},
        defaults=UNREDUCED,
        requires=("torch",),
        doc=DOCS,
        notes={
            "axis": f"{api} takes the class dimension at 1; the case's axis moves there",
            "ignore_index": f"{api} has no ignore_index",
            "label_smoothing": f"{api} has no label_smoothing",
        },
    )


def _axis_options(options):
    return tuple(options) + ("axis",)


BINDINGS = [
    _binding("nn.functional.cross_entropy", "torch.nn.functional.cross_entropy", "sparse_softmax",
             _call_cross_entropy, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS)),
    _binding("nn.functional.cross_entropy(probability_targets)", "torch.nn.functional.cross_entropy",
             "softmax", _call_cross_entropy, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS)),
    _binding("nn.functional.nll_loss(log_softmax)", "torch.nn.functional.nll_loss(log_softmax(x))",
             "sparse_softmax", _call_nll_log_softmax, reference_nll_log_softmax, reduce_cross_entropy,
             _axis_options(NLL_OPTIONS)),
    _binding("nn.functional.binary_cross_entropy", "torch.nn.functional.binary_cross_entropy", "binary_probs",
             _call_bce, reference_bce, reduce_elementwise, BCE_OPTIONS),
    _binding("nn.functional.binary_cross_entropy_with_logits",
             "torch.nn.functional.binary_cross_entropy_with_logits", "sigmoid",
             _call_bce_logits, reference_bce_logits, reduce_elementwise, BCE_LOGITS_OPTIONS),
    _binding("nn.CrossEntropyLoss", "torch.nn.CrossEntropyLoss", "sparse_softmax",
             _call_cross_entropy_module, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS)),
    _binding("nn.CrossEntropyLoss(probability_targets)", "torch.nn.CrossEntropyLoss", "softmax",
             _call_cross_entropy_module, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS)),
    _binding("nn.NLLLoss(log_softmax)", "torch.nn.NLLLoss(log_softmax(x))", "sparse_softmax",
             _call_nll_module, reference_nll_log_softmax, reduce_cross_entropy, _axis_options(NLL_OPTIONS)),
    _binding("nn.BCELoss", "torch.nn.BCELoss", "binary_probs", _call_bce_module, reference_bce,
             reduce_elementwise, BCE_OPTIONS),
    _binding("nn.BCEWithLogitsLoss", "torch.nn.BCEWithLogitsLoss", "sigmoid", _call_bce_logits_module,
             reference_bce_logits, reduce_elementwise, BCE_LOGITS_OPTIONS),
]
