"""TensorFlow bindings: ``tf.nn`` cross-entropies and Keras 3 as ``tf.keras``
(losses as classes and functions, and the metrics).

Keras bindings carry the framework label ``tensorflow`` (they run on it) and
the extra marker ``keras``. A Keras loss or metric object is built with
``dtype=`` the dtype under test, since Keras otherwise converts every input to
``floatx()`` (float32). ``reduction`` left out by a case means None (the
per-example values); ``reduction: default`` means Keras' own default,
'sum_over_batch_size'.
"""

from __future__ import annotations

import os

import numpy as np

from conformance.bindings import Binding, Problem
from conformance.frameworks import pick, split_batches
from conformance.tolerance import binary_focal_scale, categorical_focal_scale
from reference import core
from reference.conventions import keras as ref_keras
from reference.conventions import tensorflow as ref_tf

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
KERAS_REDUCTIONS = frozenset({"none", "sum", "mean", "sum_over_batch_size", "mean_with_sample_weight"})
TF_DOCS = "https://www.tensorflow.org/api_docs/python/tf/nn"
KERAS_DOCS = "https://keras.io/api/losses/probabilistic_losses/"


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def constant(array):
    """A tf constant holding ``array`` in its own dtype (bfloat16 included)."""
    return _tf().constant(np.asarray(array))


def to_numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


# --- tf.nn --------------------------------------------------------------------

def _call_softmax(problem: Problem):
    tf = _tf()
    return to_numpy(tf.nn.softmax_cross_entropy_with_logits(
        labels=constant(problem.labels), logits=constant(problem.prediction), **pick(problem, ["axis"])))


def _reference_softmax(problem: Problem):
    return ref_tf.softmax_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True,
                                                    **pick(problem, ["axis"]))


def _call_sparse(problem: Problem):
    tf = _tf()
    return to_numpy(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=constant(problem.labels), logits=constant(problem.prediction)))


def _reference_sparse(problem: Problem):
    return ref_tf.sparse_softmax_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True)


def _call_sigmoid(problem: Problem):
    tf = _tf()
    return to_numpy(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=constant(problem.labels), logits=constant(problem.prediction)))


def _reference_sigmoid(problem: Problem):
    return ref_tf.sigmoid_cross_entropy_with_logits(problem.labels, problem.prediction, extended=True)


def _call_weighted(problem: Problem):
    tf = _tf()
    return to_numpy(tf.nn.weighted_cross_entropy_with_logits(
        labels=constant(problem.labels), logits=constant(problem.prediction),
        pos_weight=constant(problem.options["pos_weight"])))


def _reference_weighted(problem: Problem):
    return ref_tf.weighted_cross_entropy_with_logits(problem.labels, problem.prediction,
                                                     problem.options["pos_weight"], extended=True)


def _reduce_weighted(values, problem: Problem):
    pos_weight = np.max(np.abs(core.to_work(problem.options["pos_weight"])))
    return core.to_work(values) * max(core.WORK(1), pos_weight)


def _tf_nn(name, family, call, reference, options=None, defaults=None, notes=None, reduce=None):
    return Binding(
        id=f"tensorflow:nn.{name}", api=f"tf.nn.{name}", framework="tensorflow", family=family, call=call,
        reference=reference, dtypes=DTYPES, options=options or {}, defaults=defaults or {}, reduce=reduce,
        requires=("tensorflow",), doc=f"{TF_DOCS}/{name}", notes=notes or {},
    )


TF_NN = [
    _tf_nn("softmax_cross_entropy_with_logits", "softmax", _call_softmax, _reference_softmax, {"axis": None}),
    _tf_nn("sparse_softmax_cross_entropy_with_logits", "sparse_softmax", _call_sparse, _reference_sparse,
           {"axis": {-1}},
           notes={"axis": "tf.nn.sparse_softmax_cross_entropy_with_logits takes classes on the last axis only"}),
    _tf_nn("sigmoid_cross_entropy_with_logits", "sigmoid", _call_sigmoid, _reference_sigmoid),
    _tf_nn("weighted_cross_entropy_with_logits", "sigmoid", _call_weighted, _reference_weighted,
           {"pos_weight": None}, defaults={"pos_weight": np.array(1.0)}, reduce=_reduce_weighted),
]


# --- Keras --------------------------------------------------------------------

class KerasLoss:
    """One Keras cross-entropy (binary, categorical, sparse) in its three forms."""

    def __init__(self, kind, class_name, function_name, families, function_options, metric_options=None,
                 scale=None, opt_in=False):
        self.kind = kind
        self.class_name = class_name
        self.function_name = function_name
        self.families = families  # from_logits -> family
        self.function_options = function_options
        self.metric_options = metric_options  # None: Keras has no metric of it
        self.scale = scale
        self.opt_in = opt_in

    def forms(self):
        forms = [_class_binding, _function_binding]
        return forms + ([_metric_binding] if self.metric_options is not None else [])

    def reference_function(self, problem: Problem, from_logits: bool, names) -> np.ndarray:
        function = getattr(ref_keras, self.function_name)
        return function(problem.labels, problem.prediction, from_logits=from_logits, extended=True,
                        **pick(problem, names))

    def mask(self, problem: Problem):
        if self.kind != "sparse":
            return None
        return ref_keras.sparse_mask(problem.labels, problem.prediction, problem.options.get("ignore_class"),
                                     problem.axis)


def _keras():
    return _tf().keras


def _sample_weight(problem: Problem):
    return problem.options.get("sample_weight")


def _reduction_argument(problem: Problem) -> dict:
    if "reduction" not in problem.options:
        return {}
    reduction = problem.options["reduction"]
    return {"reduction": None if reduction == "none" else reduction}


def _class_binding(loss: KerasLoss, from_logits: bool) -> Binding:
    names = loss.function_options

    def call(problem: Problem):
        cls = getattr(_keras().losses, loss.class_name)
        instance = cls(from_logits=from_logits, dtype=problem.dtype, **pick(problem, names),
                       **_reduction_argument(problem))
        sample_weight = _sample_weight(problem)
        kwargs = {} if sample_weight is None else {"sample_weight": constant(sample_weight)}
        return to_numpy(instance(constant(problem.labels), constant(problem.prediction), **kwargs))

    def reference(problem: Problem):
        values = loss.reference_function(problem, from_logits, names)
        return ref_keras.reduce_loss(values, _sample_weight(problem), _keras_reduction(problem), loss.mask(problem),
                                     extended=True)

    def reduce(values, problem: Problem):
        values = _per_example(loss, values, problem)
        weight = _sample_weight(problem)
        weight = None if weight is None else np.abs(core.to_work(weight))
        return ref_keras.reduce_loss(values, weight, _keras_reduction(problem), loss.mask(problem), extended=True)

    return _keras_binding(f"keras.losses.{loss.class_name}", loss, from_logits, call, reference, reduce,
                          {**{n: None for n in names}, "reduction": KERAS_REDUCTIONS, "sample_weight": None},
                          defaults={"reduction": "none"})


def _keras_reduction(problem: Problem):
    return problem.options.get("reduction", "sum_over_batch_size")


def _per_example(loss: KerasLoss, values, problem: Problem):
    """Per-element family values to the Keras function's output shape."""
    if loss.kind in ("binary", "binary_focal"):
        return np.mean(core.to_work(values), axis=problem.options.get("axis", -1))
    if loss.kind == "sparse" and "ignore_class" in problem.options:
        return np.where(loss.mask(problem), core.to_work(values), core.WORK(0))
    return core.to_work(values)


def _function_binding(loss: KerasLoss, from_logits: bool) -> Binding:
    names = loss.function_options

    def call(problem: Problem):
        function = getattr(_keras().losses, loss.function_name)
        return to_numpy(function(constant(problem.labels), constant(problem.prediction), from_logits=from_logits,
                                 **pick(problem, names)))

    def reference(problem: Problem):
        return loss.reference_function(problem, from_logits, names)

    def reduce(values, problem: Problem):
        return _per_example(loss, values, problem)

    return _keras_binding(f"keras.losses.{loss.function_name}", loss, from_logits, call, reference, reduce,
                          {n: None for n in names})


def _metric_binding(loss: KerasLoss, from_logits: bool) -> Binding:
    names = loss.metric_options

    def batches(problem: Problem):
        count = int(problem.options.get("metric_batches", 1))
        labels = split_batches(problem.labels, count)
        predictions = split_batches(problem.prediction, count)
        weights = split_batches(_sample_weight(problem), count)
        return list(zip(labels, predictions, weights))

    def call(problem: Problem):
        cls = getattr(_keras().metrics, loss.class_name)
        metric = cls(from_logits=from_logits, dtype=problem.dtype, **pick(problem, names))
        for labels, predictions, weights in batches(problem):
            kwargs = {} if weights is None else {"sample_weight": constant(weights)}
            metric.update_state(constant(labels), constant(predictions), **kwargs)
        return to_numpy(metric.result())

    def reference(problem: Problem):
        parts = []
        for labels, predictions, weights in batches(problem):
            part = Problem(problem.family, {"labels": labels, _prediction_name(problem): predictions},
                           problem.options, problem.dtype)
            values = loss.reference_function(part, from_logits, names)
            mask = loss.mask(part)
            parts.append((values, _masked_weights(weights, mask)))
        return ref_keras.metric_mean(parts, extended=True)

    def reduce(values, problem: Problem):
        weights = _sample_weight(problem)
        weights = None if weights is None else np.abs(core.to_work(weights))
        return ref_keras.metric_mean([(_per_example(loss, values, problem),
                                       _masked_weights(weights, loss.mask(problem)))], extended=True)

    return _keras_binding(f"keras.metrics.{loss.class_name}", loss, from_logits, call, reference, reduce,
                          {**{n: None for n in names}, "sample_weight": None, "metric_batches": None},
                          notes={"reduction": f"tf.keras.metrics.{loss.class_name} always averages over samples"})


def _prediction_name(problem: Problem) -> str:
    return "logits" if "logits" in problem.inputs else "probs"


def _masked_weights(weights, mask):
    if mask is None:
        return weights
    mask = np.asarray(mask, dtype=np.float64)
    return mask if weights is None else core.to_work(weights) * mask


def _keras_binding(name, loss: KerasLoss, from_logits, call, reference, reduce, options, defaults=None, notes=None):
    suffix = "(from_logits=True)" if from_logits else ""
    return Binding(
        id=f"tensorflow:{name}{suffix}", api=f"tf.{name}{suffix}", framework="tensorflow",
        family=loss.families[from_logits], call=call, reference=reference, reduce=reduce, dtypes=DTYPES,
        options={**options, **({"axis": {-1}} if loss.kind == "sparse" and "axis" in options else {})},
        defaults=defaults or {}, requires=("tensorflow",), markers=("keras",), doc=KERAS_DOCS,
        scale=loss.scale, opt_in=loss.opt_in, notes={"axis": f"tf.{name} supports only axis=-1 (sparse labels)" if loss.kind == "sparse"
               else f"tf.{name} has no axis option", **(notes or {})},
    )


KERAS_LOSSES = [
    KerasLoss("binary", "BinaryCrossentropy", "binary_crossentropy", {True: "sigmoid", False: "binary_probs"},
              ("label_smoothing", "axis"), ("label_smoothing",)),
    KerasLoss("categorical", "CategoricalCrossentropy", "categorical_crossentropy",
              {True: "softmax", False: "categorical_probs"}, ("label_smoothing", "axis"),
              ("label_smoothing", "axis")),
    KerasLoss("sparse", "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
              {True: "sparse_softmax", False: "sparse_categorical_probs"}, ("ignore_class", "axis"),
              ("ignore_class", "axis")),
    KerasLoss("binary_focal", "BinaryFocalCrossentropy", "binary_focal_crossentropy",
              {True: "sigmoid", False: "binary_probs"},
              ("apply_class_balancing", "alpha", "gamma", "label_smoothing", "axis"),
              scale=binary_focal_scale, opt_in=True),
    KerasLoss("categorical_focal", "CategoricalFocalCrossentropy", "categorical_focal_crossentropy",
              {True: "softmax", False: "categorical_probs"}, ("alpha", "gamma", "label_smoothing", "axis"),
              scale=categorical_focal_scale, opt_in=True),
]

KERAS = [
    make(loss, from_logits)
    for loss in KERAS_LOSSES
    for from_logits in (False, True)
    for make in loss.forms()
]

BINDINGS = TF_NN + KERAS
