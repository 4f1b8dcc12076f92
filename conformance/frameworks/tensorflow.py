"""TensorFlow bindings: ``tf.nn`` cross-entropies and Keras 3 as ``tf.keras``
(losses as classes and functions, and the metrics).

Keras bindings carry the framework label ``tensorflow`` (they run on it) and
the extra marker ``keras``. A Keras loss or metric object is built with
``dtype=`` the dtype under test, since Keras otherwise converts every input to
``floatx()`` (float32). ``reduction`` left out by a case means None (the
per-example values); ``reduction: default`` means Keras' own default,
'sum_over_batch_size'. Gradients (of the sum of the output, by GradientTape)
are checked for every loss; metric objects are not differentiated.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from conformance.bindings import AS_CALLED, Binding, Problem
from conformance.frameworks import pick, split_batches
from conformance.tolerance import subnormal_growth
from reference import core
from reference.conventions import keras as ref_keras
from reference.conventions import tensorflow as ref_tf

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
KERAS_REDUCTIONS = frozenset({"none", "sum", "mean", "sum_over_batch_size", "mean_with_sample_weight"})
TF_DOCS = "https://www.tensorflow.org/api_docs/python/tf/nn"
KERAS_DOCS = "https://keras.io/api/losses/probabilistic_losses/"
KERAS_METRICS_DOCS = "https://keras.io/api/metrics/probabilistic_metrics/"
# keras.backend.floatx() unless the user sets it: what objects built without dtype= compute in
KERAS_FLOATX = "float32"


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def constant(array):
    """A tf constant holding ``array`` in its own dtype (bfloat16 included);
    Python lists and scalars pass through, as a behaviour case gives them."""
    if not isinstance(array, np.ndarray):
        return array
    return _tf().constant(array)


def to_numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _prediction_name(problem: Problem) -> str:
    return "logits" if "logits" in problem.inputs else "probs"


def _caller(forward, tensor=constant, numpy=to_numpy):
    def call(problem: Problem):
        return numpy(forward(problem, tensor(problem.prediction), tensor(problem.labels)))

    return call


def _taped(forward, with_labels=False):
    """d sum(output) / d prediction (and labels) by GradientTape."""

    def gradient(problem: Problem):
        tf = _tf()
        x, y = constant(problem.prediction), constant(problem.labels)
        with tf.GradientTape() as tape:
            tape.watch(x)
            if with_labels:
                tape.watch(y)
            total = tf.reduce_sum(forward(problem, x, y))
        targets = [x, y] if with_labels else [x]
        grads = tape.gradient(total, targets)
        names = [_prediction_name(problem)] + (["labels"] if with_labels else [])
        return {name: to_numpy(grad) if grad is not None else np.zeros(np.shape(problem.inputs[name]))
                for name, grad in zip(names, grads)}

    return gradient


# --- tf.nn --------------------------------------------------------------------

def _softmax(problem: Problem, x, y):
    return _tf().nn.softmax_cross_entropy_with_logits(labels=y, logits=x, **pick(problem, ["axis"]))


def _reference_softmax(problem: Problem):
    return ref_tf.softmax_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True,
                                                    **pick(problem, ["axis"]))


def _softmax_gradient(problem: Problem):
    return ref_tf.softmax_cross_entropy_with_logits_gradient(problem.labels, problem.prediction,
                                                             **pick(problem, ["axis"]))


def _sparse(problem: Problem, x, y):
    return _tf().nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)


def _reference_sparse(problem: Problem):
    return ref_tf.sparse_softmax_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True)


def _sparse_gradient(problem: Problem):
    return ref_tf.sparse_softmax_cross_entropy_with_logits_gradient(problem.labels, problem.prediction)


def _sigmoid(problem: Problem, x, y):
    return _tf().nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x)


def _reference_sigmoid(problem: Problem):
    return ref_tf.sigmoid_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True)


def _sigmoid_gradient(problem: Problem):
    return ref_tf.sigmoid_cross_entropy_with_logits_gradient(problem.labels, problem.prediction)


def _weighted(problem: Problem, x, y):
    return _tf().nn.weighted_cross_entropy_with_logits(labels=y, logits=x,
                                                       pos_weight=constant(problem.options["pos_weight"]))


def _reference_weighted(problem: Problem):
    return ref_tf.weighted_cross_entropy_with_logits(problem.labels, problem.prediction,
                                                     problem.options["pos_weight"], extended=True)


def _weighted_gradient(problem: Problem):
    return ref_tf.weighted_cross_entropy_with_logits_gradient(problem.labels, problem.prediction,
                                                              problem.options["pos_weight"])


def _reduce_weighted(values, problem: Problem):
    return ref_tf.weighted_scale(values, problem.options["pos_weight"])


def _tf_nn(name, family, forward, reference, reference_gradient, options=None, defaults=None, notes=None,
           reduce=None, label_gradient=False):
    return Binding(
        id=f"tensorflow:nn.{name}", api=f"tf.nn.{name}", framework="tensorflow", family=family,
        call=_caller(forward), reference=reference, convention=(f"{ref_tf.__name__}.{name}",), dtypes=DTYPES,
        options=options or {}, defaults=defaults or {}, reduce=reduce, requires=("tensorflow",),
        doc=f"{TF_DOCS}/{name}", notes=notes or {}, gradient=_taped(forward, label_gradient),
        reference_gradient=reference_gradient,
    )


TF_NN = [
    _tf_nn("softmax_cross_entropy_with_logits", "softmax", _softmax, _reference_softmax, _softmax_gradient,
           {"axis": None}, label_gradient=True),
    _tf_nn("sparse_softmax_cross_entropy_with_logits", "sparse_softmax", _sparse, _reference_sparse,
           _sparse_gradient, {"axis": {-1}},
           notes={"axis": "tf.nn.sparse_softmax_cross_entropy_with_logits has no axis: its logits are documented "
                          f"as [d_0, ..., d_{{r-1}}, num_classes] ({TF_DOCS}/sparse_softmax_cross_entropy_with_logits)"}),
    _tf_nn("sigmoid_cross_entropy_with_logits", "sigmoid", _sigmoid, _reference_sigmoid, _sigmoid_gradient),
    _tf_nn("weighted_cross_entropy_with_logits", "sigmoid", _weighted, _reference_weighted, _weighted_gradient,
           {"pos_weight": None}, defaults={"pos_weight": np.array(1.0)}, reduce=_reduce_weighted),
]


# --- Keras --------------------------------------------------------------------

@dataclass(frozen=True)
class KerasFlavour:
    """What one Keras (Keras 3 as tf.keras, Keras 2 as tf_keras) brings to its bindings: its module, the
    convention it documents (a module of reference.conventions), its reductions, and how its objects take a
    dtype. Keras 2 (conformance.frameworks.tf_keras) builds the same binding list from its own flavour."""

    framework: str
    api_prefix: str  # what ``keras.losses.X`` reads as in the user's code: tf.keras..., tf_keras...
    module: Callable
    conventions: object
    reductions: frozenset
    reduction_none: object  # what the object takes for the unreduced values
    losses_take_dtype: bool  # Keras 3 objects take dtype=; Keras 2 loss objects compute in the input's dtype
    metric_as_called_dtypes: dict  # the as-called metric's dtype handling, in Binding's terms
    requires: tuple
    versions_of: tuple
    losses_doc: str
    metrics_doc: str
    default_reduction: str = "sum_over_batch_size"
    markers: tuple = ("keras",)
    sparse_object_options: tuple = ("ignore_class", "axis")
    # Keras 3 documents axis for its sparse loss but raises for any axis but -1; Keras 2 moves the axis last
    sparse_axis_last_only: bool = True
    extra: str = ""  # the pyproject extra that installs it (empty: the framework label)
    # the backend's tensors and autodiff: an array to the backend's tensor, a result to NumPy, and a forward
    # ``(problem, x, y) -> values`` to its gradient ``problem -> {input name: d sum(values) / d input}``
    tensor: Callable = constant
    numpy: Callable = to_numpy
    differentiate: Callable = _taped


class KerasLoss:
    """One Keras cross-entropy (binary, categorical, sparse, focal) in its forms."""

    def __init__(self, flavour, kind, class_name, function_name, families, function_options, metric_options=None,
                 scale=None, opt_in=False, object_options=None):
        self.flavour = flavour
        self.kind = kind
        self.class_name = class_name
        self.function_name = function_name
        self.families = families  # from_logits -> family
        self.function_options = function_options
        self.object_options = function_options if object_options is None else object_options
        self.metric_options = metric_options  # None: Keras has no metric of it
        self.scale = scale
        self.opt_in = opt_in

    def forms(self):
        """Every form a user writes: the object pinned to the dtype under test
        (unreduced, as the harness compares per example), the same object as
        users call it (``as_called``: default arguments, so Keras converts the
        inputs to floatx() and reduces by its default), the function, and the
        metric pinned and as called."""
        forms = [_class_binding, functools.partial(_class_binding, as_called=True), _function_binding]
        if self.metric_options is not None:
            forms += [_metric_binding, functools.partial(_metric_binding, as_called=True)]
        return forms

    def convention(self, reduction: str | None = None) -> tuple[str, ...]:
        """The names of the flavour's convention functions for this loss, then ``reduction``'s."""
        module = self.flavour.conventions.__name__
        return (f"{module}.{self.function_name}",) + ((f"{module}.{reduction}",) if reduction else ())

    def reference_function(self, problem: Problem, from_logits: bool, names) -> np.ndarray:
        function = getattr(self.flavour.conventions, self.function_name)
        return function(problem.labels, problem.prediction, from_logits=from_logits, extended=True,
                        **pick(problem, names))

    def mask(self, problem: Problem):
        if self.kind != "sparse":
            return None
        return self.flavour.conventions.sparse_mask(problem.labels, problem.prediction,
                                                    problem.options.get("ignore_class"), problem.axis)


def _keras():
    return _tf().keras


FOCAL_SCALE_OPTIONS = ("apply_class_balancing", "alpha", "gamma", "label_smoothing", "axis")


def binary_focal_scale(conventions, problem: Problem):
    """The binary focal loss's rounding scale, by the flavour's convention module."""
    return conventions.binary_focal_scale(problem.labels, problem.prediction, problem.family == "sigmoid",
                                          **pick(problem, FOCAL_SCALE_OPTIONS))


def categorical_focal_scale(conventions, problem: Problem):
    return conventions.categorical_focal_scale(problem.labels, problem.prediction, problem.family == "softmax",
                                               **pick(problem, FOCAL_SCALE_OPTIONS[1:]),
                                               subnormal_growth=lambda q: subnormal_growth(q, problem.dtype))


def _sample_weight(problem: Problem):
    return problem.options.get("sample_weight")


def _reduction_argument(flavour: KerasFlavour, problem: Problem) -> dict:
    if "reduction" not in problem.options:
        return {}
    reduction = problem.options["reduction"]
    return {"reduction": flavour.reduction_none if reduction == "none" else reduction}


def _keras_reduction(flavour: KerasFlavour, problem: Problem):
    return problem.options.get("reduction", flavour.default_reduction)


def _per_example(loss: KerasLoss, values, problem: Problem):
    """Per-element family values to the Keras function's output shape."""
    return ref_keras.per_example(loss.kind, values, problem.labels, problem.prediction,
                                 problem.options.get("ignore_class"), problem.axis)


def keras_gradient(loss: KerasLoss, from_logits: bool, problem: Problem, coefficients) -> dict:
    """d sum(c * values) / d prediction by the Keras convention (reference.conventions.keras)."""
    name = "logits" if from_logits else "probs"
    return {name: loss.flavour.conventions.gradient(loss.kind, problem.labels, problem.prediction, coefficients,
                                                    from_logits, **pick(problem, loss.function_options))}


def _values_shape(loss: KerasLoss, problem: Problem) -> list:
    return ref_keras.values_shape(loss.kind, problem.labels, problem.prediction, problem.axis)


def _constructor_arguments(from_logits: bool, dtype: str | None) -> dict:
    """``dtype=None`` is the user's form: no ``dtype`` and, for the default
    ``from_logits=False``, no ``from_logits`` either."""
    if dtype is None:
        return {"from_logits": True} if from_logits else {}
    return {"from_logits": from_logits, "dtype": dtype}


def _class_binding(loss: KerasLoss, from_logits: bool, as_called: bool = False) -> Binding:
    names = loss.object_options
    flavour = loss.flavour
    conventions = flavour.conventions
    pinned_dtype = flavour.losses_take_dtype and not as_called

    def forward(problem: Problem, x, y):
        cls = getattr(flavour.module().losses, loss.class_name)
        arguments = _constructor_arguments(from_logits, problem.dtype if pinned_dtype else None)
        instance = cls(**arguments, **pick(problem, names), **_reduction_argument(flavour, problem))
        sample_weight = _sample_weight(problem)
        kwargs = {} if sample_weight is None else {"sample_weight": flavour.tensor(sample_weight)}
        return instance(y, x, **kwargs)

    def reference(problem: Problem):
        labels, prediction = conventions.squeeze_or_expand_inputs(problem.labels, problem.prediction)
        problem = Problem(problem.family, {"labels": labels, _prediction_name(problem): prediction},
                          problem.options, problem.dtype)
        values = loss.reference_function(problem, from_logits, names)
        return conventions.reduce_loss(values, _sample_weight(problem), _keras_reduction(flavour, problem),
                                       loss.mask(problem), extended=True)

    def reduce(values, problem: Problem):
        values = _per_example(loss, values, problem)
        weight = _sample_weight(problem)
        weight = None if weight is None else np.abs(core.to_work(weight))
        return conventions.reduce_loss(values, weight, _keras_reduction(flavour, problem), loss.mask(problem),
                                       extended=True)

    def reference_gradient(problem: Problem):
        coefficients = conventions.reduction_coefficients(_values_shape(loss, problem), _sample_weight(problem),
                                                          _keras_reduction(flavour, problem), loss.mask(problem))
        return keras_gradient(loss, from_logits, problem, coefficients)

    return _keras_binding(f"keras.losses.{loss.class_name}", loss, from_logits,
                          _caller(forward, flavour.tensor, flavour.numpy), reference, loss.convention("reduce_loss"),
                          reduce,
                          {**{n: None for n in names}, "reduction": flavour.reductions, "sample_weight": None},
                          defaults={} if as_called else {"reduction": "none"}, gradient=flavour.differentiate(forward),
                          reference_gradient=reference_gradient, as_called=as_called,
                          as_called_dtypes={"compute_dtype": KERAS_FLOATX} if flavour.losses_take_dtype else {})


def _function_binding(loss: KerasLoss, from_logits: bool) -> Binding:
    names = loss.function_options

    def forward(problem: Problem, x, y):
        function = getattr(loss.flavour.module().losses, loss.function_name)
        return function(y, x, from_logits=from_logits, **pick(problem, names))

    def reference(problem: Problem):
        return loss.reference_function(problem, from_logits, names)

    def reduce(values, problem: Problem):
        return _per_example(loss, values, problem)

    def reference_gradient(problem: Problem):
        return keras_gradient(loss, from_logits, problem, np.ones(_values_shape(loss, problem)))

    return _keras_binding(f"keras.losses.{loss.function_name}", loss, from_logits,
                          _caller(forward, loss.flavour.tensor, loss.flavour.numpy), reference,
                          loss.convention(), reduce, {n: None for n in names},
                          gradient=loss.flavour.differentiate(forward), reference_gradient=reference_gradient)


def _metric_binding(loss: KerasLoss, from_logits: bool, as_called: bool = False) -> Binding:
    names = loss.metric_options

    def batches(problem: Problem):
        count = int(problem.options.get("metric_batches", 1))
        labels = split_batches(problem.labels, count)
        predictions = split_batches(problem.prediction, count)
        weights = split_batches(_sample_weight(problem), count)
        return list(zip(labels, predictions, weights))

    def call(problem: Problem):
        cls = getattr(loss.flavour.module().metrics, loss.class_name)
        metric = cls(**_constructor_arguments(from_logits, None if as_called else problem.dtype),
                     **pick(problem, names))
        tensor = loss.flavour.tensor
        for labels, predictions, weights in batches(problem):
            kwargs = {} if weights is None else {"sample_weight": tensor(weights)}
            metric.update_state(tensor(labels), tensor(predictions), **kwargs)
        return loss.flavour.numpy(metric.result())

    def reference(problem: Problem):
        parts = []
        for labels, predictions, weights in batches(problem):
            part = Problem(problem.family, {"labels": labels, _prediction_name(problem): predictions},
                           problem.options, problem.dtype)
            values = loss.reference_function(part, from_logits, names)
            parts.append((values, _masked_weights(weights, loss.mask(part))))
        return loss.flavour.conventions.metric_mean(parts, extended=True)

    def reduce(values, problem: Problem):
        weights = _sample_weight(problem)
        weights = None if weights is None else np.abs(core.to_work(weights))
        return loss.flavour.conventions.metric_mean([(_per_example(loss, values, problem),
                                       _masked_weights(weights, loss.mask(problem)))], extended=True)

    return _keras_binding(f"keras.metrics.{loss.class_name}", loss, from_logits, call, reference,
                          loss.convention("metric_mean"), reduce,
                          {**{n: None for n in names}, "sample_weight": None, "metric_batches": None},
                          notes={"reduction": f"{loss.flavour.api_prefix}.metrics.{loss.class_name} has no "
                                              "reduction: a metric documents the mean over the samples it has seen "
                                              f"({loss.flavour.metrics_doc})",
                                 "gradient": "metric objects keep state and are not differentiated"},
                          as_called=as_called, as_called_dtypes=loss.flavour.metric_as_called_dtypes)


def _masked_weights(weights, mask):
    if mask is None:
        return weights
    mask = np.asarray(mask, dtype=np.float64)
    return mask if weights is None else core.to_work(weights) * mask


def _keras_binding(name, loss: KerasLoss, from_logits, call, reference, convention, reduce, options, defaults=None,
                   notes=None, gradient=None, reference_gradient=None, as_called=False, as_called_dtypes=None):
    """A Keras form's binding. The ``as_called`` form of an object is built with
    no ``dtype``; ``as_called_dtypes`` says what the flavour then computes in
    and returns (Keras 3: its loss objects compute in floatx(), float32,
    converting the inputs to it; its metrics return floatx() while their
    values are computed in the inputs' dtype)."""
    flavour = loss.flavour
    suffix = "(from_logits=True)" if from_logits else ""
    base_api = f"{flavour.api_prefix}.{name.removeprefix('keras.')}"
    api = f"{base_api}{suffix}"
    identifier = f"{flavour.framework}:{name}{suffix}"
    dtypes = {}
    if as_called:
        identifier = f"{flavour.framework}:{name}({'from_logits=True,' if from_logits else ''}{AS_CALLED})"
        api = f"{base_api}({'from_logits=True' if from_logits else ''})(y_true, y_pred)"
        dtypes = dict(as_called_dtypes or {})
    metric = name.startswith("keras.metrics.")
    doc = flavour.metrics_doc if metric else flavour.losses_doc
    return Binding(
        id=identifier, api=api, framework=flavour.framework,
        family=loss.families[from_logits], call=call, reference=reference, convention=convention, reduce=reduce,
        dtypes=DTYPES,
        options={**options, **({"axis": {-1}} if loss.kind == "sparse" and "axis" in options
                                and flavour.sparse_axis_last_only else {})},
        defaults=defaults or {}, requires=flavour.requires, versions_of=flavour.versions_of, extra=flavour.extra,
        markers=flavour.markers + ((AS_CALLED,) if as_called else ()), doc=doc, **dtypes,
        scale=loss.scale, opt_in=loss.opt_in, gradient=gradient, reference_gradient=reference_gradient,
        computes_in_output_dtype=not dtypes,  # else it computes in float32 and rounds once
        notes={"axis": f"{base_api} documents axis, but any axis but -1 raises ValueError('Only axis=-1 is "
                       "currently supported'): pinned by the behaviour case sparse_class_axis_first "
                       "(cases/behaviour.yaml)" if loss.kind == "sparse" and "axis" in options
                                                   and flavour.sparse_axis_last_only
               else f"{base_api} has no axis option (documented signature: {doc})", **(notes or {})},
    )


def keras_losses(flavour: KerasFlavour) -> list[KerasLoss]:
    """The Keras cross-entropies, each with the options its function, object and metric take."""
    sparse_options = ("ignore_class", "axis")
    return [
        KerasLoss(flavour, "binary", "BinaryCrossentropy", "binary_crossentropy",
                  {True: "sigmoid", False: "binary_probs"}, ("label_smoothing", "axis"), ("label_smoothing",)),
        KerasLoss(flavour, "categorical", "CategoricalCrossentropy", "categorical_crossentropy",
                  {True: "softmax", False: "categorical_probs"}, ("label_smoothing", "axis"),
                  ("label_smoothing", "axis")),
        KerasLoss(flavour, "sparse", "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                  {True: "sparse_softmax", False: "sparse_categorical_probs"}, sparse_options, sparse_options,
                  object_options=flavour.sparse_object_options),
        KerasLoss(flavour, "binary_focal", "BinaryFocalCrossentropy", "binary_focal_crossentropy",
                  {True: "sigmoid", False: "binary_probs"},
                  ("apply_class_balancing", "alpha", "gamma", "label_smoothing", "axis"),
                  scale=functools.partial(binary_focal_scale, flavour.conventions), opt_in=True),
        KerasLoss(flavour, "categorical_focal", "CategoricalFocalCrossentropy", "categorical_focal_crossentropy",
                  {True: "softmax", False: "categorical_probs"}, ("alpha", "gamma", "label_smoothing", "axis"),
                  scale=functools.partial(categorical_focal_scale, flavour.conventions), opt_in=True),
    ]


def keras_bindings(flavour: KerasFlavour) -> list[Binding]:
    return [make(loss, from_logits)
            for loss in keras_losses(flavour)
            for from_logits in (False, True)
            for make in loss.forms()]


KERAS3 = KerasFlavour(
    framework="tensorflow", api_prefix="tf.keras", module=_keras, conventions=ref_keras,
    reductions=KERAS_REDUCTIONS, reduction_none=None, losses_take_dtype=True,
    metric_as_called_dtypes={"result_dtype": KERAS_FLOATX}, requires=("tensorflow",),
    versions_of=("tensorflow", "keras"), losses_doc=KERAS_DOCS, metrics_doc=KERAS_METRICS_DOCS)

KERAS = keras_bindings(KERAS3)

BINDINGS = TF_NN + KERAS
