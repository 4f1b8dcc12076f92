"""Option parity: the same loss reached through two APIs with different options.

Each row names two (binding, options) sides computed on the same inputs, the
formula each documents, and whether they agree. ``tests/test_option_parity.py``
checks every row on the reference conventions and, where the frameworks are
installed, on the frameworks themselves; the README's option parity table
lists the same rows by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from conformance.bindings import Problem

LOGITS = np.random.default_rng(7).normal(scale=2.0, size=(6, 4))
CLASSES = np.array([0, 3, 2, 2, 1, 0])
ONE_HOT = np.eye(4)[CLASSES]
CLASS_WEIGHT = np.array([0.2, 1.0, 0.5, 2.0])
BINARY_LOGITS = np.random.default_rng(8).normal(scale=2.0, size=(4, 3))
BINARY_LABELS = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
POS_WEIGHT = np.array([3.0, 0.5, 1.5])
EDGE_PROBS = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.6]])
EDGE_LABELS = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
UNNORMALISED = np.array([[0.0, 0.5, 0.7], [0.2, 0.3, 0.6]])
SPREAD_LOGITS = np.array([[18.0, 0.5, -2.0], [1.0, 0.25, -0.5]])
SPREAD_LABELS = np.eye(3)[[1, 0]]


@dataclass(frozen=True)
class Side:
    binding: str
    family: str
    inputs: Callable[[], dict]
    options: dict
    formula: str

    def problem(self, dtype: str) -> Problem:
        from conformance.problems import resolve_options

        inputs = {name: (value.astype(dtype) if value.dtype.kind == "f" else value)
                  for name, value in self.inputs().items()}
        return Problem(self.family, inputs, resolve_options(self.options, None, dtype), dtype)


@dataclass(frozen=True)
class Row:
    id: str
    left: Side
    right: Side
    agree: bool
    why: str


def _sparse():
    return {"logits": LOGITS, "labels": CLASSES}


def _one_hot():
    return {"logits": LOGITS, "labels": ONE_HOT}


ROWS = [
    Row("label_smoothing_unweighted",
        Side("torch:nn.functional.cross_entropy", "sparse_softmax", _sparse,
             {"label_smoothing": 0.1, "reduction": "none"}, "(1 - e) nll + e / C sum_c -log p_c"),
        Side("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)", "softmax", _one_hot,
             {"label_smoothing": 0.1, "reduction": "none"}, "-sum_c (y_c (1 - e) + e / C) log p_c"),
        True, "both mix the one-hot target with the uniform distribution by e"),
    Row("label_smoothing_weighted",
        Side("torch:nn.functional.cross_entropy", "sparse_softmax", _sparse,
             {"label_smoothing": 0.1, "weight": CLASS_WEIGHT, "reduction": "mean"},
             "sum_i [(1 - e) w_yi nll_i + e / C sum_c w_c (-log p_ic)] / sum_i w_yi"),
        Side("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)", "softmax", _one_hot,
             {"label_smoothing": 0.1, "sample_weight": CLASS_WEIGHT[CLASSES], "reduction": "mean_with_sample_weight"},
             "sum_i w_yi [-sum_c (y_ic (1 - e) + e / C) log p_ic] / sum_i w_yi"),
        False, "torch weights each class's smoothing term by that class's weight; Keras weights the example"),
    Row("weighted_mean_by_sample_weight",
        Side("torch:nn.functional.cross_entropy", "sparse_softmax", _sparse,
             {"weight": CLASS_WEIGHT, "reduction": "mean"}, "sum_i w_yi nll_i / sum_i w_yi"),
        Side("tensorflow:keras.losses.SparseCategoricalCrossentropy(from_logits=True)", "sparse_softmax", _sparse,
             {"sample_weight": CLASS_WEIGHT[CLASSES], "reduction": "mean_with_sample_weight"},
             "sum_i s_i nll_i / sum_i s_i, s_i = w_yi"),
        True, "with s_i = w[y_i], mean_with_sample_weight is torch's weighted mean"),
    Row("weighted_mean_by_batch_size",
        Side("torch:nn.functional.cross_entropy", "sparse_softmax", _sparse,
             {"weight": CLASS_WEIGHT, "reduction": "mean"}, "sum_i w_yi nll_i / sum_i w_yi"),
        Side("tensorflow:keras.losses.SparseCategoricalCrossentropy(from_logits=True)", "sparse_softmax", _sparse,
             {"sample_weight": CLASS_WEIGHT[CLASSES], "reduction": "sum_over_batch_size"},
             "sum_i s_i nll_i / N"),
        False, "Keras' default reduction divides by the number of examples, not by the weights"),
    Row("weighted_mean_by_target_format",
        Side("torch:nn.functional.cross_entropy", "sparse_softmax", _sparse,
             {"weight": CLASS_WEIGHT, "reduction": "mean"}, "sum_i w_yi nll_i / sum_i w_yi"),
        Side("torch:nn.functional.cross_entropy(probability_targets)", "softmax", _one_hot,
             {"weight": CLASS_WEIGHT, "reduction": "mean"}, "sum_i sum_c w_c t_ic (-log p_ic) / N"),
        False, "torch's weighted mean divides by the weights for class indices, by N for probability targets"),
    Row("pos_weight",
        Side("torch:nn.functional.binary_cross_entropy_with_logits", "sigmoid",
             lambda: {"logits": BINARY_LOGITS, "labels": BINARY_LABELS}, {"pos_weight": POS_WEIGHT, "reduction": "none"},
             "pw z softplus(-x) + (1 - z) softplus(x)"),
        Side("tensorflow:nn.weighted_cross_entropy_with_logits", "sigmoid",
             lambda: {"logits": BINARY_LOGITS, "labels": BINARY_LABELS}, {"pos_weight": POS_WEIGHT},
             "z (-log sigmoid(x)) pw + (1 - z) (-log(1 - sigmoid(x)))"),
        True, "the same positive-class weight"),
    Row("probability_edges",
        Side("torch:nn.functional.binary_cross_entropy", "binary_probs",
             lambda: {"probs": EDGE_PROBS, "labels": EDGE_LABELS}, {"reduction": "none"},
             "-(z max(log p, -100) + (1 - z) max(log(1 - p), -100))"),
        Side("tensorflow:keras.losses.binary_crossentropy", "binary_probs",
             lambda: {"probs": EDGE_PROBS, "labels": EDGE_LABELS}, {"axis": 0},
             "-(z log q + (1 - z) log(1 - q)), q = clip(p, 1e-7, 1 - 1e-7), mean over axis"),
        False, "a wrong prediction at 0 or 1 costs 100 in torch and 16.1 (float32: 15.9 and 16.1) in Keras"),
    Row("focal_gamma_zero_from_logits",
        Side("tensorflow:keras.losses.categorical_focal_crossentropy(from_logits=True)", "softmax",
             lambda: {"logits": SPREAD_LOGITS, "labels": SPREAD_LABELS}, {"gamma": 0.0, "alpha": 1.0},
             "-sum_c y_c log clip(softmax(x)_c / sum softmax(x))"),
        Side("tensorflow:keras.losses.categorical_crossentropy(from_logits=True)", "softmax",
             lambda: {"logits": SPREAD_LOGITS, "labels": SPREAD_LABELS}, {},
             "-sum_c y_c log softmax(x)_c"),
        True, "documented: gamma = 0 has no focal effect; from logits the focal loss clips (known divergence "
              "keras_categorical_focal_gamma0_clips)"),
    Row("renormalise_then_clip",
        Side("tensorflow:keras.losses.categorical_crossentropy", "categorical_probs",
             lambda: {"probs": UNNORMALISED, "labels": np.eye(3)[[0, 2]]}, {},
             "-sum_c y_c log clip(p_c / sum p)"),
        Side("tensorflow:keras.losses.sparse_categorical_crossentropy", "sparse_categorical_probs",
             lambda: {"probs": UNNORMALISED, "labels": np.array([0, 2])}, {},
             "log(sum_c clip(p_c) / clip(p_y))"),
        False, "the categorical form renormalises before the clip, the sparse form after it: they part where a "
               "probability is clipped (row 0); they agree where none is (row 1)"),
]
