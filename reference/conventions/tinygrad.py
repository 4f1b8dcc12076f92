"""tinygrad's cross-entropy conventions (tinygrad 0.14), as its ``Tensor`` methods compute them
(``tinygrad/mixin/op.py``, "loss ops"); each docstring points at torch's page for the meaning.

* ``Tensor.sparse_categorical_crossentropy(Y, ignore_index=-1, label_smoothing=0.0, reduction='mean')``: logits
  with the class axis **last** ("unlike PyTorch, this function expects the class axis to be -1") and class
  indices ``Y``. Per target ``-((1 - e) log softmax(x)[y] + e mean_c log softmax(x)_c)``, torch's smoothed loss;
  a target equal to ``ignore_index`` costs 0 and leaves the mean's divisor, **except that the default -1 turns
  the mask off** (``Y.ne(ignore_index) if ignore_index != -1 else`` all kept). 'mean' divides the sum by the
  number of kept targets. Class indices must lie in [0, C): tinygrad checks none (an index outside selects no
  class through its one-hot row, a finite loss and no error; ``cases/behaviour.yaml`` pins it for the pinned
  forms, whose behaviour items ``XENT_TINYGRAD=full`` runs).
* ``Tensor.cross_entropy(Y, reduction='mean', label_smoothing=0.0)``: torch's ``cross_entropy`` without class
  weights or ``ignore_index``, class axis 1 (0 for a 1-D input); ``Y`` class indices (the logits' shape
  without that axis) or probabilities (the logits' shape); ``Y = (1 - e) Y + e / C``, then
  ``-sum_c Y_c log softmax(x)_c``; 'mean' over every target.
* ``Tensor.binary_crossentropy(Y, reduction='mean')`` on probabilities: ``-Y log p - (1 - Y) log(1 - p)``, the
  plain formula, **with no clamp** (torch clamps each log at -100; tinygrad's docstring points at torch's page).
* ``Tensor.binary_crossentropy_logits(Y, reduction='mean', pos_weight=None)``:
  ``-(pos_weight Y logsigmoid(x) + (1 - Y) logsigmoid(-x))``, torch's ``binary_cross_entropy_with_logits``
  without ``weight``.

``reduction`` is 'none', 'sum' or 'mean' ('mean' by default for all four, over every element for the last three).
"""

from __future__ import annotations

import numpy as np

from reference import core
from reference.conventions import torch as ref_torch

REDUCTIONS = ("none", "sum", "mean")
# the default ignore_index, which tinygrad takes as "no target is ignored"
NO_MASK = -1


def _check(reduction: str, label_smoothing: float = 0.0) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} must be one of {REDUCTIONS}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise AssertionError("label_smoothing must be in [0.0, 1.0]")


def _kept(Y, ignore_index: int) -> np.ndarray:
    Y = np.asarray(Y)
    return np.ones(Y.shape, dtype=bool) if ignore_index == NO_MASK else Y != ignore_index


def sparse_categorical_crossentropy_unreduced(logits, Y, ignore_index=NO_MASK, label_smoothing=0.0, *,
                                              extended=False):
    """The per-target loss (what reduction='none' returns): torch's smoothed loss, class axis last, 0 where
    the target is masked."""
    x, Y = np.asarray(logits), np.asarray(Y)
    kept = _kept(Y, ignore_index)
    labels = np.where(kept, Y, 0)
    if x.ndim >= 2:
        x = np.moveaxis(x, -1, 1)  # torch's layout
    values = ref_torch.cross_entropy_unreduced(x, labels, label_smoothing=label_smoothing, extended=True)
    return core.finish(np.where(kept, values, core.work(0)), extended)


def sparse_categorical_crossentropy(logits, Y, ignore_index=NO_MASK, label_smoothing=0.0, reduction="mean", *,
                                    extended=False):
    """Tensor.sparse_categorical_crossentropy."""
    _check(reduction, label_smoothing)
    values = sparse_categorical_crossentropy_unreduced(logits, Y, ignore_index, label_smoothing, extended=True)
    divisor = core.work(np.count_nonzero(_kept(Y, ignore_index)))
    return ref_torch.reduce(values, reduction, divisor, extended=extended)


def sparse_categorical_crossentropy_gradient(logits, Y, ignore_index=NO_MASK, label_smoothing=0.0,
                                             reduction="mean"):
    """(gradient, scale) by the logits (class axis last): torch's, with the masked targets as ignored ones."""
    x, Y = np.asarray(logits), np.asarray(Y)
    kept = _kept(Y, ignore_index)
    # a label no valid class index equals stands for the masked ones in torch's convention
    masked = -(2 ** 62)
    labels = np.where(kept, Y, masked)
    moved = np.moveaxis(x, -1, 1) if x.ndim >= 2 else x
    gradient, scale = ref_torch.cross_entropy_gradient(moved, labels, ignore_index=masked, reduction=reduction,
                                                       label_smoothing=label_smoothing)
    if x.ndim >= 2:
        gradient, scale = np.moveaxis(gradient, 1, -1), np.moveaxis(scale, 1, -1)
    return gradient, scale


def sparse_categorical_crossentropy_scales(values, Y, ignore_index=NO_MASK, reduction="mean"):
    """Each target's rounding scale carried through the mask and the reduction (the tolerance model)."""
    kept = _kept(Y, ignore_index)
    weighted = np.where(kept, core.to_work(values), core.work(0))
    return ref_torch.reduce(weighted, reduction, core.work(np.count_nonzero(kept)), extended=True)


def cross_entropy(logits, Y, reduction="mean", label_smoothing=0.0, *, extended=False):
    """Tensor.cross_entropy: torch's cross_entropy without weights or ignore_index."""
    _check(reduction, label_smoothing)
    return ref_torch.cross_entropy(logits, Y, reduction=reduction, label_smoothing=label_smoothing,
                                   extended=extended)


def cross_entropy_gradient(logits, Y, reduction="mean", label_smoothing=0.0):
    """(gradient, scale) of cross_entropy by its logits (torch's layout)."""
    return ref_torch.cross_entropy_gradient(logits, Y, reduction=reduction, label_smoothing=label_smoothing)


def binary_crossentropy_unreduced(p, Y, *, extended=False):
    """``-(Y log p + (1 - Y) log(1 - p))`` exactly, with no clamp: 0 log 0 is 0, the formula's limit."""
    p, z = np.asarray(p), np.asarray(Y)
    if p.shape != z.shape:
        raise ValueError(f"shapes {p.shape} and {z.shape} differ")
    return core.binary_cross_entropy(p, z, extended=extended)


def binary_crossentropy(p, Y, reduction="mean", *, extended=False):
    """Tensor.binary_crossentropy (probabilities, no clamp)."""
    _check(reduction)
    values = binary_crossentropy_unreduced(p, Y, extended=True)
    return ref_torch.reduce(values, reduction, extended=extended)


def binary_crossentropy_gradient(p, Y, reduction="mean"):
    """(gradient, scale) of binary_crossentropy by its probabilities: torch's, with no clamp."""
    from reference import gradients

    p, z = core.to_work(p), core.to_work(Y)
    factor = ref_torch._elementwise_factor(Y, None, reduction)
    every = np.ones(p.shape, dtype=bool)
    return gradients.log_pair(p, factor * z, factor * (1 - z), every, every)


def binary_crossentropy_logits(x, Y, reduction="mean", pos_weight=None, *, extended=False):
    """Tensor.binary_crossentropy_logits: torch's binary_cross_entropy_with_logits without weight."""
    _check(reduction)
    return ref_torch.binary_cross_entropy_with_logits(x, Y, reduction=reduction, pos_weight=pos_weight,
                                                      extended=extended)


def binary_crossentropy_logits_gradient(x, Y, reduction="mean", pos_weight=None):
    """(gradient, scale) of binary_crossentropy_logits by its logits."""
    return ref_torch.binary_cross_entropy_with_logits_gradient(x, Y, reduction=reduction, pos_weight=pos_weight)


def reduce_scales(values, reduction="mean", pos_weight=None):
    """Each element's rounding scale carried through the reduction: torch's unweighted one."""
    return ref_torch.reduce_elementwise_scales(values, pos_weight=pos_weight, reduction=reduction)
