"""PyTorch bindings: ``torch.nn.functional`` losses and their ``torch.nn`` modules.

The case's class axis (last, or the ``axis`` option) moves to torch's class
dimension 1 for the call and the reference alike; the per-example output then
has the case's layout with the class axis removed. Each binding's reference is
the torch convention of :mod:`reference.conventions.torch`; its gradient
(autograd, of the sum of the output) is checked against :mod:`reference.gradients`.
"""

from __future__ import annotations

import numpy as np

from conformance.bindings import AS_CALLED, Binding, Problem
from conformance.frameworks import class_axis_to, pick
from reference import core
from reference import gradients as ref_grad
from reference.conventions import torch as ref

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
REDUCTIONS = frozenset({"none", "sum", "mean"})
DOCS = "https://docs.pytorch.org/docs/2.13/nn.functional.html"
UNREDUCED = {"reduction": "none"}

CROSS_ENTROPY_OPTIONS = ("weight", "ignore_index", "reduction", "label_smoothing")
NLL_OPTIONS = ("weight", "ignore_index", "reduction")
BCE_OPTIONS = ("weight", "reduction")
BCE_LOGITS_OPTIONS = ("weight", "pos_weight", "reduction")


def _torch():
    import torch

    return torch


def tensor(array):
    """A torch tensor holding ``array`` (bfloat16 via float32, exactly)."""
    torch = _torch()
    if not isinstance(array, np.ndarray):
        return array  # a Python list or scalar, as a behaviour case passes it
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
    return 1 if np.ndim(problem.prediction) > 1 else 0


def _is_class_family(problem: Problem) -> bool:
    return problem.family in ("softmax", "sparse_softmax")


def _prediction(problem: Problem) -> np.ndarray:
    if not _is_class_family(problem):
        return problem.prediction
    return class_axis_to(problem, problem.prediction, _class_dim(problem))


def _target(problem: Problem) -> np.ndarray:
    if problem.family == "softmax":
        return class_axis_to(problem, problem.labels, _class_dim(problem))
    return problem.labels


def _to_case_layout(problem: Problem, array: np.ndarray) -> np.ndarray:
    if not _is_class_family(problem):
        return array
    return np.moveaxis(array, _class_dim(problem), problem.axis)


def _tensor_options(problem: Problem, names) -> dict:
    kwargs = pick(problem, names)
    for name in ("weight", "pos_weight"):
        if name in kwargs:
            kwargs[name] = tensor(kwargs[name])
    return kwargs


# --- forward computations on a prediction tensor -------------------------------

def _cross_entropy(problem: Problem, x):
    F = _torch().nn.functional
    return F.cross_entropy(x, tensor(_target(problem)), **_tensor_options(problem, CROSS_ENTROPY_OPTIONS))


def _cross_entropy_module(problem: Problem, x):
    module = _torch().nn.CrossEntropyLoss(**_tensor_options(problem, CROSS_ENTROPY_OPTIONS))
    return module(x, tensor(_target(problem)))


def _nll_log_softmax(problem: Problem, x):
    F = _torch().nn.functional
    return F.nll_loss(F.log_softmax(x, dim=_class_dim(problem)), tensor(_target(problem)),
                      **_tensor_options(problem, NLL_OPTIONS))


def _nll_module(problem: Problem, x):
    torch = _torch()
    module = torch.nn.NLLLoss(**_tensor_options(problem, NLL_OPTIONS))
    return module(torch.nn.functional.log_softmax(x, dim=_class_dim(problem)), tensor(_target(problem)))


def _bce(problem: Problem, x):
    return _torch().nn.functional.binary_cross_entropy(x, tensor(problem.labels),
                                                       **_tensor_options(problem, BCE_OPTIONS))


def _bce_module(problem: Problem, x):
    return _torch().nn.BCELoss(**_tensor_options(problem, BCE_OPTIONS))(x, tensor(problem.labels))


def _bce_logits(problem: Problem, x):
    return _torch().nn.functional.binary_cross_entropy_with_logits(
        x, tensor(problem.labels), **_tensor_options(problem, BCE_LOGITS_OPTIONS))


def _bce_logits_module(problem: Problem, x):
    return _torch().nn.BCEWithLogitsLoss(**_tensor_options(problem, BCE_LOGITS_OPTIONS))(x, tensor(problem.labels))


def _caller(forward):
    def call(problem: Problem):
        return to_numpy(forward(problem, tensor(_prediction(problem))))

    return call


def _autograd(forward):
    """d sum(output) / d prediction, by torch autograd, in the case's layout."""

    def gradient(problem: Problem):
        x = tensor(_prediction(problem)).requires_grad_(True)
        forward(problem, x).sum().backward()
        name = "logits" if "logits" in problem.inputs else "probs"
        return {name: _to_case_layout(problem, to_numpy(x.grad))}

    return gradient


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


# --- exact gradients: the coefficients of each convention's linear terms ------

def _mean_factor(problem: Problem, divisor) -> core.WORK:
    if problem.options.get("reduction", "mean") in ("none", "sum"):
        return core.WORK(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return core.WORK(1) / core.to_work(divisor)


def _class_view(values, ndim: int, dim: int) -> np.ndarray:
    shape = [1] * ndim
    shape[dim] = -1
    return core.to_work(values).reshape(shape)


def cross_entropy_coefficients(problem: Problem) -> np.ndarray:
    """a[..., c] of ``sum_c a_c (-log softmax(x)_c)``, torch layout."""
    x, t = np.asarray(_prediction(problem)), np.asarray(_target(problem))
    dim = _class_dim(problem)
    n_classes = x.shape[dim]
    weight = problem.options.get("weight")
    w = _class_view(np.ones(n_classes) if weight is None else weight, x.ndim, dim)
    e = core.WORK(problem.options.get("label_smoothing", 0.0))
    if problem.family == "softmax":
        a = w * (core.to_work(t) * (1 - e) + e / n_classes)
        return core.mul0(a, _mean_factor(problem, ref.cross_entropy_divisor(x, t)))
    ignore_index = problem.options.get("ignore_index", -100)
    keep = np.expand_dims(t != ignore_index, dim)
    safe = np.expand_dims(np.where(t == ignore_index, 0, t), dim)
    one_hot = np.arange(n_classes).reshape(_class_view(np.arange(n_classes), x.ndim, dim).shape) == safe
    picked = np.take_along_axis(np.broadcast_to(w, x.shape), safe, axis=dim)
    a = ((1 - e) * picked * one_hot + e / n_classes * w) * keep
    # an ignored target takes no part, even where nothing is kept (0 / 0)
    return core.mul0(a, _mean_factor(problem, ref.class_index_divisor(t, weight, ignore_index)))


def _softmax_gradient(problem: Problem):
    grad, scale = ref_grad.softmax_family(_prediction(problem), cross_entropy_coefficients(problem),
                                          axis=_class_dim(problem))
    return {"logits": (_to_case_layout(problem, grad), _to_case_layout(problem, scale))}


def _elementwise_factor(problem: Problem):
    factor = _mean_factor(problem, np.size(problem.labels))
    weight = problem.options.get("weight")
    return factor if weight is None else factor * core.to_work(weight)


def _bce_gradient(problem: Problem):
    p, z = core.to_work(problem.prediction), core.to_work(problem.labels)
    factor = _elementwise_factor(problem)
    with np.errstate(divide="ignore"):
        active_positive = np.log(p) > ref.LOG_CLAMP
        active_negative = np.log1p(-p) > ref.LOG_CLAMP
    grad, scale = ref_grad.log_pair(p, factor * z, factor * (1 - z), active_positive, active_negative)
    return {"probs": (grad, scale)}


def _bce_logits_gradient(problem: Problem):
    z = core.to_work(problem.labels)
    factor = _elementwise_factor(problem)
    pos_weight = core.to_work(problem.options.get("pos_weight", 1.0))
    grad, scale = ref_grad.softplus_pair(problem.prediction, factor * pos_weight * z, factor * (1 - z))
    return {"logits": (grad, scale)}


# --- reductions of per-element values (for the tolerance model's scale) -----

def _weight_bound(problem: Problem, *names) -> core.WORK:
    bound = core.WORK(1)
    for name in names:
        if name in problem.options:
            bound = bound * max(core.WORK(1), np.max(np.abs(core.to_work(problem.options[name]))))
    return bound


def reduce_cross_entropy(values, problem: Problem):
    reduction = problem.options.get("reduction", "mean")
    target = np.asarray(_target(problem))
    weighted = core.to_work(values) * _weight_bound(problem, "weight")
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


def _binding(name, api, family, forward, reference, reduce, options, reference_gradient, as_called=False):
    return Binding(
        id=f"torch:{name}",
        api=api,
        markers=(AS_CALLED,) if as_called else (),
        framework="torch",
        family=family,
        call=_caller(forward),
        reference=reference,
        reduce=reduce,
        dtypes=DTYPES,
        options={**{option: None for option in options if option != "reduction"},
                 **({"reduction": REDUCTIONS} if "reduction" in options else {})},
        defaults={} if as_called else UNREDUCED,
        requires=("torch",),
        doc=DOCS,
        notes={
            "axis": f"{api} takes the class dimension at 1; the case's axis moves there",
            "ignore_index": f"{api} has no ignore_index (documented signature: {DOCS})",
            "label_smoothing": f"{api} has no label_smoothing (documented signature: {DOCS})",
        },
        gradient=_autograd(forward),
        reference_gradient=reference_gradient,
    )


def _axis_options(options):
    return tuple(options) + ("axis",)


BINDINGS = [
    _binding("nn.functional.cross_entropy", "torch.nn.functional.cross_entropy", "sparse_softmax",
             _cross_entropy, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS), _softmax_gradient),
    _binding("nn.functional.cross_entropy(probability_targets)", "torch.nn.functional.cross_entropy",
             "softmax", _cross_entropy, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS), _softmax_gradient),
    _binding("nn.functional.nll_loss(log_softmax)", "torch.nn.functional.nll_loss(log_softmax(x))",
             "sparse_softmax", _nll_log_softmax, reference_nll_log_softmax, reduce_cross_entropy,
             _axis_options(NLL_OPTIONS), _softmax_gradient),
    _binding("nn.functional.binary_cross_entropy", "torch.nn.functional.binary_cross_entropy", "binary_probs",
             _bce, reference_bce, reduce_elementwise, BCE_OPTIONS, _bce_gradient),
    _binding("nn.functional.binary_cross_entropy_with_logits",
             "torch.nn.functional.binary_cross_entropy_with_logits", "sigmoid",
             _bce_logits, reference_bce_logits, reduce_elementwise, BCE_LOGITS_OPTIONS, _bce_logits_gradient),
    _binding("nn.CrossEntropyLoss", "torch.nn.CrossEntropyLoss", "sparse_softmax",
             _cross_entropy_module, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS), _softmax_gradient),
    _binding("nn.CrossEntropyLoss(probability_targets)", "torch.nn.CrossEntropyLoss", "softmax",
             _cross_entropy_module, reference_cross_entropy, reduce_cross_entropy,
             _axis_options(CROSS_ENTROPY_OPTIONS), _softmax_gradient),
    _binding("nn.NLLLoss(log_softmax)", "torch.nn.NLLLoss(log_softmax(x))", "sparse_softmax",
             _nll_module, reference_nll_log_softmax, reduce_cross_entropy, _axis_options(NLL_OPTIONS),
             _softmax_gradient),
    _binding("nn.BCELoss", "torch.nn.BCELoss", "binary_probs", _bce_module, reference_bce,
             reduce_elementwise, BCE_OPTIONS, _bce_gradient),
    _binding("nn.BCEWithLogitsLoss", "torch.nn.BCEWithLogitsLoss", "sigmoid", _bce_logits_module,
             reference_bce_logits, reduce_elementwise, BCE_LOGITS_OPTIONS, _bce_logits_gradient),
]


def _as_called(pinned: Binding, call: str) -> Binding:
    """A module as users call it: only the options a case sets, so the module's
    own default reduction ('mean') applies; ``call`` shows the user's line."""
    label = pinned.id.split(":", 1)[1]
    label = label[:-1] + f",{AS_CALLED})" if label.endswith(")") else f"{label}({AS_CALLED})"
    return _binding(label, call, pinned.family, _MODULE_FORWARDS[pinned.id], pinned.reference, pinned.reduce,
                    [name for name in pinned.options], pinned.reference_gradient, as_called=True)


_MODULE_FORWARDS = {
    "torch:nn.CrossEntropyLoss": _cross_entropy_module,
    "torch:nn.CrossEntropyLoss(probability_targets)": _cross_entropy_module,
    "torch:nn.NLLLoss(log_softmax)": _nll_module,
    "torch:nn.BCELoss": _bce_module,
    "torch:nn.BCEWithLogitsLoss": _bce_logits_module,
}
_CALLS = {
    "torch:nn.CrossEntropyLoss": "torch.nn.CrossEntropyLoss()(input, target)",
    "torch:nn.CrossEntropyLoss(probability_targets)": "torch.nn.CrossEntropyLoss()(input, probabilities)",
    "torch:nn.NLLLoss(log_softmax)": "torch.nn.NLLLoss()(log_softmax(input), target)",
    "torch:nn.BCELoss": "torch.nn.BCELoss()(input, target)",
    "torch:nn.BCEWithLogitsLoss": "torch.nn.BCEWithLogitsLoss()(input, target)",
}
BINDINGS += [_as_called(binding, _CALLS[binding.id]) for binding in list(BINDINGS) if binding.id in _CALLS]
