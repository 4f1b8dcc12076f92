"""``tf.nn`` cross-entropy functions, as documented: the exact losses, no clipping.

Signatures mirror TensorFlow's (``labels`` first, keyword ``logits``), so a
binding passes the same arguments to the framework and to its reference.
"""

from __future__ import annotations

import numpy as np

from reference import core


def softmax_cross_entropy_with_logits(labels, logits, axis=-1, *, extended=False):
    """tf.nn.softmax_cross_entropy_with_logits: soft labels along ``axis``."""
    return core.softmax_cross_entropy(logits, labels, axis=axis, extended=extended)


def sparse_softmax_cross_entropy_with_logits(labels, logits, *, extended=False):
    """tf.nn.sparse_softmax_cross_entropy_with_logits: class indices, last axis."""
    return core.sparse_softmax_cross_entropy(logits, labels, axis=-1, extended=extended)


def sigmoid_cross_entropy_with_logits(labels, logits, *, extended=False):
    """tf.nn.sigmoid_cross_entropy_with_logits, elementwise."""
    return core.sigmoid_cross_entropy(logits, labels, extended=extended)


def weighted_cross_entropy_with_logits(labels, logits, pos_weight, *, extended=False):
    """tf.nn.weighted_cross_entropy_with_logits, documented as
    ``labels * -log(sigmoid(logits)) * pos_weight + (1 - labels) * -log(1 - sigmoid(logits))``."""
    x = core.to_work(logits)
    z = core.to_work(labels)
    w = core.to_work(pos_weight)
    positive = core.mul0(z * w, core.softplus(-x))
    negative = core.mul0(core.work(1) - z, core.softplus(x))
    return core.finish(positive + negative, extended)


# --- exact gradients: (gradient, scale) pairs of reference.gradients --------------------------------------

def softmax_cross_entropy_with_logits_gradient(labels, logits, axis=-1):
    """d loss.sum() by the logits and, as TensorFlow documents a gradient for them, by the labels."""
    from reference import gradients

    return {"logits": gradients.softmax_family(logits, labels, axis=axis),
            "labels": gradients.softmax_labels(logits, axis=axis)}


def sparse_softmax_cross_entropy_with_logits_gradient(labels, logits):
    from reference import gradients

    one_hot = (np.asarray(labels)[..., None] == np.arange(np.shape(logits)[-1])).astype(np.float64)
    return {"logits": gradients.softmax_family(logits, one_hot)}


def sigmoid_cross_entropy_with_logits_gradient(labels, logits):
    from reference import gradients

    z = core.to_work(labels)
    return {"logits": gradients.softplus_pair(logits, z, 1 - z)}


def weighted_cross_entropy_with_logits_gradient(labels, logits, pos_weight):
    from reference import gradients

    z = core.to_work(labels)
    return {"logits": gradients.softplus_pair(logits, core.to_work(pos_weight) * z, 1 - z)}


def weighted_scale(values, pos_weight):
    """Each element's rounding scale, times the largest weight of its terms."""
    return core.to_work(values) * max(core.work(1), np.max(np.abs(core.to_work(pos_weight))))
