"""PyTorch bindings: ``torch.nn.functional`` losses and their ``torch.nn`` modules.

The case's class axis (last, or the ``axis`` option) moves to torch's class
dimension 1 for the call and the reference alike; the per-example output then
has the case's layout with the class axis removed. Each binding's reference is
the torch convention of :mod:`reference.conventions.torch`; its gradient
(autograd, of the sum of the output) is checked against :mod:`reference.gradients`.

Every binding computes on the check's device (``--device``: ``cpu``, ``cuda``,
``cuda:N``, see :mod:`conformance.devices`): its inputs, weights and targets are
placed there, and the result and gradient must come back from there.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from conformance import devices
from conformance.bindings import AS_CALLED, Binding, Problem, as_called_label, family_of
from conformance.frameworks import class_axis_to, pick
from reference.conventions import torch as ref

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
REDUCTIONS = frozenset({"none", "sum", "mean"})
DOCS = "https://docs.pytorch.org/docs/2.13/nn.functional.html"
UNREDUCED = {"reduction": "none"}

# the devices torch computes these losses on: its CPU and CUDA builds
DEVICES = ("cpu", "cuda", "cuda:[0-9]*")
CROSS_ENTROPY_OPTIONS = ("weight", "ignore_index", "reduction", "label_smoothing")
NLL_OPTIONS = ("weight", "ignore_index", "reduction")
BCE_OPTIONS = ("weight", "reduction")
BCE_LOGITS_OPTIONS = ("weight", "pos_weight", "reduction")


def _torch():
    import torch

    return torch


# the device of the call in progress (``on``): where ``tensor`` places what it makes
_DEVICE = contextvars.ContextVar("xent_torch_device", default=devices.DEFAULT)


@contextlib.contextmanager
def on(device: str):
    """Places the tensors made inside on ``device``; ``devices.Unavailable`` where torch finds no such device."""
    if device != devices.DEFAULT:
        torch = _torch()
        if devices.kind(device) == "cuda" and not torch.cuda.is_available():
            raise devices.Unavailable(f"torch finds no CUDA device here (torch.cuda.is_available() is False; "
                                      f"torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        if devices.kind(device) == "cuda" and devices.index(device) >= torch.cuda.device_count():
            raise devices.Unavailable(f"torch finds {torch.cuda.device_count()} CUDA devices here, no {device}")
    token = _DEVICE.set(device)
    try:
        yield
    finally:
        _DEVICE.reset(token)


def tensor(array):
    """A torch tensor holding ``array`` (bfloat16 via float32, exactly), on the call's device."""
    torch = _torch()
    if not isinstance(array, np.ndarray):
        return array  # a Python list or scalar, as a behaviour case passes it
    if array.dtype.name == "bfloat16":
        value = torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    else:
        value = torch.from_numpy(np.array(array, copy=True))
    device = _DEVICE.get()
    return value if device == devices.DEFAULT else value.to(device)


def placed(value, device: str):
    """``value`` itself, after confirming it lives on ``device`` (``devices.Misplaced`` otherwise)."""
    torch = _torch()
    wanted, got = torch.device(device), value.device
    if got.type != wanted.type or (wanted.index is not None and got.index != wanted.index) or (
            wanted.type == "cuda" and wanted.index is None and got.index != torch.cuda.current_device()):
        raise devices.Misplaced(f"torch returned a tensor on {got}, where the check's inputs were placed on "
                                f"{device}")
    return value


def to_numpy(value) -> np.ndarray:
    """A tensor's values in its own dtype (bfloat16 as ml_dtypes.bfloat16), brought back from the call's
    device after confirming it came from there."""
    torch = _torch()
    value = placed(value.detach(), _DEVICE.get()).cpu()
    if value.dtype == torch.bfloat16:
        import ml_dtypes

        return value.float().numpy().astype(ml_dtypes.bfloat16)
    return value.numpy()


def _class_dim(problem: Problem) -> int:
    return 1 if np.ndim(problem.prediction) > 1 else 0


def _is_class_family(problem: Problem) -> bool:
    return family_of(problem.family).softmax


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
        with on(problem.device):
            return to_numpy(forward(problem, tensor(_prediction(problem))))

    return call


def _autograd(forward):
    """d sum(output) / d prediction, by torch autograd, in the case's layout."""

    def gradient(problem: Problem):
        with on(problem.device):
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


# the convention function each reference computes, by name (nll_loss of log_softmax is cross_entropy)
for _reference, _name in ((reference_cross_entropy, "cross_entropy"), (reference_nll_log_softmax, "cross_entropy"),
                          (reference_bce, "binary_cross_entropy"),
                          (reference_bce_logits, "binary_cross_entropy_with_logits")):
    _reference.convention = (f"{ref.__name__}.{_name}",)


# --- exact gradients and reductions: the conventions' own (reference.conventions.torch) ----------------------

def _softmax_gradient(problem: Problem):
    grad, scale = ref.cross_entropy_gradient(_prediction(problem), _target(problem),
                                             **pick(problem, CROSS_ENTROPY_OPTIONS))
    return {"logits": (_to_case_layout(problem, grad), _to_case_layout(problem, scale))}


def _bce_gradient(problem: Problem):
    return {"probs": ref.binary_cross_entropy_gradient(problem.prediction, problem.labels,
                                                       **pick(problem, BCE_OPTIONS))}


def _bce_logits_gradient(problem: Problem):
    return {"logits": ref.binary_cross_entropy_with_logits_gradient(problem.prediction, problem.labels,
                                                                    **pick(problem, BCE_LOGITS_OPTIONS))}


def reduce_cross_entropy(values, problem: Problem):
    return ref.reduce_scales(values, _prediction(problem), _target(problem),
                             **pick(problem, ("weight", "ignore_index", "reduction")))


def reduce_elementwise(values, problem: Problem):
    return ref.reduce_elementwise_scales(values, **pick(problem, ("weight", "pos_weight", "reduction")))


def _binding(name, api, family, forward, reference, reduce, options, reference_gradient, as_called=False):
    return Binding(
        id=f"torch:{name}",
        api=api,
        markers=(AS_CALLED,) if as_called else (),
        framework="torch",
        family=family,
        call=_caller(forward),
        reference=reference,
        convention=reference.convention,
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
        devices=DEVICES,
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
    label = as_called_label(pinned.id.split(":", 1)[1])
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
