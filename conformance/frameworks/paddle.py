"""PaddlePaddle bindings: ``paddle.nn.functional`` losses and their ``paddle.nn`` modules (CPU wheel).

Paddle takes the class axis where the case has it (``axis``, default -1, the last one: torch's is 1), so
inputs pass unchanged. Each binding's reference is the Paddle convention of
:mod:`reference.conventions.paddle`; its gradient (Paddle's autograd, of the sum of the output) is
checked against the same convention's exact gradient.

Soft-label losses unreduced return the class axis kept, of size 1 (documented: "if soft_label = True,
the dimension of return value is [N_1, N_2, ..., N_k, 1]"): the call checks that shape and removes the
axis, so that a change of layout fails the check. The CPU wheel has no float16 or bfloat16 kernels for
these losses (each raises ``The kernel with key (CPU, ..., float16) ... is not registered``): the
bindings take float32 and float64, and the behaviour cases pin the refusal.

Registered through the ``xent_conformance.bindings`` entry point (pyproject.toml); ``-k paddle`` selects
it. Paddle runs in a worker process of its own (:mod:`conformance.isolation`), started at the first check:
``libpaddle`` crashes the interpreter (SIGSEGV) when it is imported after TensorFlow, which a full run imports.
"""

from __future__ import annotations

import numpy as np

from conformance.bindings import AS_CALLED, Binding, Problem, as_called_label
from conformance.frameworks import pick
from conformance.isolation import isolate
from reference import core, gradients
from reference.conventions import paddle as ref

DTYPES = frozenset({"float32", "float64"})
REDUCTIONS = frozenset(ref.REDUCTIONS)
DOCS = "https://www.paddlepaddle.org.cn/documentation/docs/en/3.3/api/paddle/nn/functional/cross_entropy_en.html"
FUNCTIONAL_DOCS = "https://www.paddlepaddle.org.cn/documentation/docs/en/3.3/api/paddle/nn/functional/{}_en.html"
HALF_PRECISION = ("the CPU wheel registers no float16 or bfloat16 kernel for {api} (it raises NotFound: "
                  "'The kernel with key (CPU, ..., float16) ... is not registered'); pinned in cases/behaviour.yaml")

CROSS_ENTROPY_OPTIONS = ("weight", "ignore_index", "reduction", "label_smoothing", "axis")
SOFT_CROSS_ENTROPY_OPTIONS = ("weight", "reduction", "label_smoothing", "axis")
SOFTMAX_WITH_CROSS_ENTROPY_OPTIONS = ("ignore_index", "axis")
BCE_OPTIONS = ("weight", "reduction")
BCE_LOGITS_OPTIONS = ("weight", "pos_weight", "reduction")
FOCAL_OPTIONS = ("alpha", "gamma", "reduction")


def _paddle():
    import paddle

    return paddle


def tensor(array, stop_gradient=True):
    """A paddle tensor holding ``array``; Python lists (behaviour cases) pass as they are."""
    if not isinstance(array, np.ndarray):
        return array
    if array.dtype.name == "bfloat16":  # ml_dtypes' bfloat16 goes through float32, exactly
        value = _paddle().to_tensor(array.astype(np.float32)).astype("bfloat16")
        value.stop_gradient = stop_gradient
        return value
    return _paddle().to_tensor(np.array(array, copy=True), stop_gradient=stop_gradient)


def _tensor_options(problem: Problem, names) -> dict:
    kwargs = pick(problem, names)
    for name in ("weight", "pos_weight"):
        if name in kwargs:
            kwargs[name] = tensor(kwargs[name])
    return kwargs


def _class_axis_kept(problem: Problem, value):
    """A soft-label loss unreduced: the documented ``[..., 1]`` layout, the class axis then removed."""
    prediction = np.shape(problem.prediction)
    if value.ndim != len(prediction) or not prediction:
        return value  # reduced, or an input the call refused to shape
    axis = problem.axis % len(prediction)
    expected = prediction[:axis] + (1,) + prediction[axis + 1:]
    if tuple(value.shape) != expected:
        raise AssertionError(f"the unreduced soft-label loss has shape {tuple(value.shape)}, documented {expected}")
    return np.squeeze(value, axis)


# --- forward computations on a prediction tensor -------------------------------

def _cross_entropy(soft_label: bool, use_softmax: bool):
    names = SOFT_CROSS_ENTROPY_OPTIONS if soft_label else CROSS_ENTROPY_OPTIONS

    def forward(problem: Problem, x):
        F = _paddle().nn.functional
        extra = {"soft_label": True} if soft_label else {}
        extra.update({} if use_softmax else {"use_softmax": False})
        return F.cross_entropy(x, tensor(problem.labels), **extra, **_tensor_options(problem, names))

    return forward


def _cross_entropy_module(soft_label: bool):
    names = SOFT_CROSS_ENTROPY_OPTIONS if soft_label else CROSS_ENTROPY_OPTIONS

    def forward(problem: Problem, x):
        extra = {"soft_label": True} if soft_label else {}
        module = _paddle().nn.CrossEntropyLoss(**extra, **_tensor_options(problem, names))
        return module(x, tensor(problem.labels))

    return forward


def _softmax_with_cross_entropy(soft_label: bool):
    """Hard labels go with the class axis kept, of size 1, as documented ("[N_1, ..., 1, ..., N_k]")."""

    def forward(problem: Problem, x):
        F = _paddle().nn.functional
        extra = {"soft_label": True} if soft_label else {}
        labels = problem.labels
        if not soft_label and isinstance(labels, np.ndarray) and labels.ndim + 1 == np.ndim(problem.prediction):
            labels = np.expand_dims(labels, problem.axis % np.ndim(problem.prediction))
        return F.softmax_with_cross_entropy(x, tensor(labels), **extra,
                                            **_tensor_options(problem, SOFTMAX_WITH_CROSS_ENTROPY_OPTIONS))

    return forward


def _bce(problem: Problem, x):
    return _paddle().nn.functional.binary_cross_entropy(x, tensor(problem.labels),
                                                        **_tensor_options(problem, BCE_OPTIONS))


def _bce_module(problem: Problem, x):
    return _paddle().nn.BCELoss(**_tensor_options(problem, BCE_OPTIONS))(x, tensor(problem.labels))


def _bce_logits(problem: Problem, x):
    return _paddle().nn.functional.binary_cross_entropy_with_logits(
        x, tensor(problem.labels), **_tensor_options(problem, BCE_LOGITS_OPTIONS))


def _bce_logits_module(problem: Problem, x):
    return _paddle().nn.BCEWithLogitsLoss(**_tensor_options(problem, BCE_LOGITS_OPTIONS))(x, tensor(problem.labels))


def _focal(problem: Problem, x):
    return _paddle().nn.functional.sigmoid_focal_loss(x, tensor(problem.labels), **pick(problem, FOCAL_OPTIONS))


def _caller(forward, keeps_class_axis: bool):
    def call(problem: Problem):
        value = np.asarray(forward(problem, tensor(problem.prediction)).numpy())
        return _class_axis_kept(problem, value) if keeps_class_axis else value

    return call


def _autograd(forward):
    """d sum(output) / d prediction, by Paddle's autograd."""

    def gradient(problem: Problem):
        x = tensor(problem.prediction, stop_gradient=False)
        forward(problem, x).sum().backward()
        name = "logits" if "logits" in problem.inputs else "probs"
        return {name: np.asarray(x.grad.numpy())}

    return gradient


# --- references, exact gradients and reductions: reference.conventions.paddle -----------------------------

def _cross_entropy_arguments(problem: Problem, soft_label: bool, use_softmax: bool) -> dict:
    names = SOFT_CROSS_ENTROPY_OPTIONS if soft_label else CROSS_ENTROPY_OPTIONS
    return {"soft_label": soft_label, "use_softmax": use_softmax, **pick(problem, names)}


def _cross_entropy_reference(soft_label: bool, use_softmax: bool, reduced: bool = True):
    def reference(problem: Problem):
        arguments = _cross_entropy_arguments(problem, soft_label, use_softmax)
        if not reduced:
            arguments.pop("reduction", None)
            return ref.cross_entropy_unreduced(problem.prediction, problem.labels, extended=True, **arguments)
        return ref.cross_entropy(problem.prediction, problem.labels, extended=True, **arguments)

    reference.convention = (f"{ref.__name__}.{'cross_entropy' if reduced else 'cross_entropy_unreduced'}",)
    return reference


def _cross_entropy_gradient(soft_label: bool, use_softmax: bool, reduced: bool = True):
    def reference_gradient(problem: Problem):
        arguments = _cross_entropy_arguments(problem, soft_label, use_softmax)
        if not reduced:
            arguments["reduction"] = "none"
        name = "logits" if use_softmax else "probs"
        return {name: ref.cross_entropy_gradient(problem.prediction, problem.labels, **arguments)}

    return reference_gradient


def _cross_entropy_reduce(soft_label: bool, reduced: bool = True):
    def reduce(values, problem: Problem):
        names = SOFT_CROSS_ENTROPY_OPTIONS if soft_label else CROSS_ENTROPY_OPTIONS
        arguments = {"soft_label": soft_label, **pick(problem, names)}
        if not reduced:
            arguments["reduction"] = "none"
        return ref.reduce_scales(values, problem.prediction, problem.labels, **arguments)

    return reduce


def reference_bce(problem: Problem):
    return ref.binary_cross_entropy(problem.prediction, problem.labels, extended=True, **pick(problem, BCE_OPTIONS))


def reference_bce_logits(problem: Problem):
    return ref.binary_cross_entropy_with_logits(problem.prediction, problem.labels, extended=True,
                                                **pick(problem, BCE_LOGITS_OPTIONS))


def _bce_gradient(problem: Problem):
    return {"probs": ref.binary_cross_entropy_gradient(problem.prediction, problem.labels,
                                                       **pick(problem, BCE_OPTIONS))}


def _bce_logits_gradient(problem: Problem):
    return {"logits": ref.binary_cross_entropy_with_logits_gradient(problem.prediction, problem.labels,
                                                                    **pick(problem, BCE_LOGITS_OPTIONS))}


def reduce_elementwise(values, problem: Problem):
    return ref.reduce_elementwise_scales(values, **pick(problem, ("weight", "pos_weight", "reduction")))


def reference_focal(problem: Problem):
    return ref.sigmoid_focal_loss(problem.prediction, problem.labels, extended=True, **pick(problem, FOCAL_OPTIONS))


reference_bce.convention = (f"{ref.__name__}.binary_cross_entropy",)
reference_bce_logits.convention = (f"{ref.__name__}.binary_cross_entropy_with_logits",)
reference_focal.convention = (f"{ref.__name__}.sigmoid_focal_loss",)


def _focal_reduction_factor(problem: Problem):
    reduction = problem.options.get("reduction", "sum")
    return 1 / np.size(problem.labels) if reduction == "mean" else 1


def _focal_gradient(problem: Problem):
    """Numerical, as for Keras' focal losses (reference.conventions.keras.gradient), with the same scale: the
    autodiff chain's terms are of the size of the loss over p (1 - p), and an infinite logit's derivative is 0."""
    options = pick(problem, ("alpha", "gamma"))
    factor = _focal_reduction_factor(problem)

    def total(x):
        return factor * ref.sigmoid_focal_loss_unreduced(x, problem.labels, **options)

    x = core.to_work(problem.prediction)
    grad = np.where(np.isinf(x), core.work(0), gradients.numeric_separable(total, problem.prediction))
    size = np.abs(total(problem.prediction))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = 1 / (1 + np.exp(-x))
        spread = p * (1 - p)
        scale = np.where(spread > 0, (np.abs(grad) + size) / spread, np.abs(grad) + size)
    return {"logits": (grad, scale)}


def _focal_scale(problem: Problem):
    return ref.sigmoid_focal_scale(problem.prediction, problem.labels, **pick(problem, ("alpha", "gamma")))


def _focal_reduce(values, problem: Problem):
    return ref.reduce_elementwise_scales(values, reduction=problem.options.get("reduction", "sum"))


def _notes(api: str, doc: str) -> dict:
    return {
        "ignore_index": f"{api} has no ignore_index (documented signature: {doc})",
        "label_smoothing": f"{api} has no label_smoothing (documented signature: {doc})",
        "apply_class_balancing": f"{api} always weighs by alpha (class balancing on, alpha=0.25 by default; "
                                 f"documented: {doc})",
        "sample_weight": f"{api} takes no sample_weight: its weight is per class or per element ({doc})",
        "float16": HALF_PRECISION.format(api=api),
        "bfloat16": HALF_PRECISION.format(api=api),  # the skip reason of a dtype the binding lacks
    }


FOCAL_PROPERTIES = ("the property tests draw 1-D inputs, which sigmoid_focal_loss refuses (divergence "
                    "paddle_focal_refuses_one_dimensional_inputs, pinned by the behaviour case "
                    "focal_one_dimensional_logits); its fixed cases, of rank 2 and more, check it")


def _binding(label, api, family, forward, reference, reduce, options, reference_gradient, *, doc=DOCS,
             as_called=False, keeps_class_axis=False, reduced=True, notes=None, **extra):
    option_map = {option: None for option in options if option != "reduction"}
    if "reduction" in options:
        option_map["reduction"] = REDUCTIONS
    return Binding(
        id=f"paddle:{label}",
        api=api,
        markers=(AS_CALLED,) if as_called else (),
        framework="paddle",
        family=family,
        call=_caller(forward, keeps_class_axis),
        reference=reference,
        convention=reference.convention,
        reduce=reduce,
        dtypes=DTYPES,
        options=option_map,
        defaults={} if as_called or not reduced else {"reduction": "none"},
        requires=("paddle",),
        doc=doc,
        notes={**_notes(api, doc), **(notes or {})},
        gradient=_autograd(forward),
        reference_gradient=reference_gradient,
        **extra,
    )


def _cross_entropy_binding(label, api, family, forward, soft_label, use_softmax=True, *, as_called=False,
                           keeps_class_axis=None):
    names = SOFT_CROSS_ENTROPY_OPTIONS if soft_label else CROSS_ENTROPY_OPTIONS
    return _binding(label, api, family, forward, _cross_entropy_reference(soft_label, use_softmax),
                    _cross_entropy_reduce(soft_label), names, _cross_entropy_gradient(soft_label, use_softmax),
                    as_called=as_called, keeps_class_axis=soft_label if keeps_class_axis is None else keeps_class_axis)


F_CE = "paddle.nn.functional.cross_entropy"
BINDINGS = [
    _cross_entropy_binding("nn.functional.cross_entropy", F_CE, "sparse_softmax", _cross_entropy(False, True),
                           soft_label=False),
    _cross_entropy_binding("nn.functional.cross_entropy(soft_label=True)", f"{F_CE}(soft_label=True)", "softmax",
                           _cross_entropy(True, True), soft_label=True),
    _cross_entropy_binding("nn.functional.cross_entropy(use_softmax=False)", f"{F_CE}(use_softmax=False)",
                           "sparse_categorical_probs", _cross_entropy(False, False), soft_label=False,
                           use_softmax=False),
    _cross_entropy_binding("nn.functional.cross_entropy(soft_label=True,use_softmax=False)",
                           f"{F_CE}(soft_label=True, use_softmax=False)", "categorical_probs",
                           _cross_entropy(True, False), soft_label=True, use_softmax=False),
    _binding("nn.functional.softmax_with_cross_entropy", "paddle.nn.functional.softmax_with_cross_entropy",
             "sparse_softmax", _softmax_with_cross_entropy(False), _cross_entropy_reference(False, True, False),
             _cross_entropy_reduce(False, False), SOFTMAX_WITH_CROSS_ENTROPY_OPTIONS,
             _cross_entropy_gradient(False, True, False), doc=FUNCTIONAL_DOCS.format("softmax_with_cross_entropy"),
             keeps_class_axis=True, reduced=False),
    _binding("nn.functional.softmax_with_cross_entropy(soft_label=True)",
             "paddle.nn.functional.softmax_with_cross_entropy(soft_label=True)", "softmax",
             _softmax_with_cross_entropy(True), _cross_entropy_reference(True, True, False),
             _cross_entropy_reduce(True, False), ("axis",), _cross_entropy_gradient(True, True, False),
             doc=FUNCTIONAL_DOCS.format("softmax_with_cross_entropy"), keeps_class_axis=True, reduced=False),
    _binding("nn.functional.binary_cross_entropy", "paddle.nn.functional.binary_cross_entropy", "binary_probs",
             _bce, reference_bce, reduce_elementwise, BCE_OPTIONS, _bce_gradient,
             doc=FUNCTIONAL_DOCS.format("binary_cross_entropy")),
    _binding("nn.functional.binary_cross_entropy_with_logits",
             "paddle.nn.functional.binary_cross_entropy_with_logits", "sigmoid", _bce_logits, reference_bce_logits,
             reduce_elementwise, BCE_LOGITS_OPTIONS, _bce_logits_gradient,
             doc=FUNCTIONAL_DOCS.format("binary_cross_entropy_with_logits")),
    # the focal loss needs its own cases (their bindings filter names it)
    _binding("nn.functional.sigmoid_focal_loss", "paddle.nn.functional.sigmoid_focal_loss", "sigmoid", _focal,
             reference_focal, _focal_reduce, FOCAL_OPTIONS, _focal_gradient,
             doc=FUNCTIONAL_DOCS.format("sigmoid_focal_loss"), scale=_focal_scale, opt_in=True,
             notes={"properties": FOCAL_PROPERTIES}),
    _binding("nn.functional.sigmoid_focal_loss(as_called)", "paddle.nn.functional.sigmoid_focal_loss(logit, label)",
             "sigmoid", _focal, reference_focal, _focal_reduce, FOCAL_OPTIONS, _focal_gradient,
             doc=FUNCTIONAL_DOCS.format("sigmoid_focal_loss"), scale=_focal_scale, opt_in=True, as_called=True,
             notes={"properties": FOCAL_PROPERTIES}),
]

# the modules, pinned (reduction='none') and as users call them (their default 'mean')
_MODULES = [
    ("nn.CrossEntropyLoss", "paddle.nn.CrossEntropyLoss()(input, label)", "sparse_softmax",
     _cross_entropy_module(False), False),
    ("nn.CrossEntropyLoss(soft_label=True)", "paddle.nn.CrossEntropyLoss(soft_label=True)(input, label)", "softmax",
     _cross_entropy_module(True), True),
]
for _label, _api, _family, _forward, _soft in _MODULES:
    for _as_called in (False, True):
        _id = as_called_label(_label) if _as_called else _label
        BINDINGS.append(_cross_entropy_binding(_id, _api, _family, _forward, soft_label=_soft, as_called=_as_called))
for _label, _api, _family, _forward, _reference, _options, _gradient in [
        ("nn.BCELoss", "paddle.nn.BCELoss()(input, label)", "binary_probs", _bce_module, reference_bce, BCE_OPTIONS,
         _bce_gradient),
        ("nn.BCEWithLogitsLoss", "paddle.nn.BCEWithLogitsLoss()(logit, label)", "sigmoid", _bce_logits_module,
         reference_bce_logits, BCE_LOGITS_OPTIONS, _bce_logits_gradient)]:
    for _as_called in (False, True):
        BINDINGS.append(_binding(f"{_label}({AS_CALLED})" if _as_called else _label, _api, _family, _forward,
                                 _reference, reduce_elementwise, _options, _gradient, as_called=_as_called))

# libpaddle crashes the interpreter when it is imported after TensorFlow: Paddle runs in a process of its own
BINDINGS = isolate(BINDINGS, __name__)
