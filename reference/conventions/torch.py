"""``torch.nn.functional`` cross-entropy conventions, as documented.

Signatures and layouts mirror PyTorch: the class dimension is 1 (0 for an
unbatched input of shape ``(C,)``), ``reduction`` is 'none' | 'sum' | 'mean'.

* ``cross_entropy`` with class indices: the per-element loss is
  ``w[y] * -log softmax(x)[y]`` (0 where ``y == ignore_index``); 'mean' divides
  the sum by the sum of ``w[y]`` over the targets that are not ignored (NaN
  when that is 0). ``label_smoothing`` e mixes in the uniform target:
  ``(1 - e) * nll + e / C * sum_c w[c] * -log softmax(x)[c]``, same divisor.
* ``cross_entropy`` with class probabilities (target shaped like input):
  ``-sum_c w[c] * t[c] * log softmax(x)[c]`` with ``t = t * (1 - e) + e / C``;
  'mean' divides by the number of rows (numel / C), ignoring the weights; an
  ``ignore_index`` >= 0 is refused.
* ``binary_cross_entropy`` clamps each log term at -100 (documented: "BCELoss
  clamps its log function outputs to be greater than or equal to -100") and
  refuses probabilities outside [0, 1]; 'mean' divides by numel.
* ``binary_cross_entropy_with_logits``:
  ``w * (pos_weight * z * softplus(-x) + (1 - z) * softplus(x))``, ``pos_weight``
  broadcast against the last dimension; 'mean' divides by numel.
"""

from __future__ import annotations

import numpy as np

from reference import core

REDUCTIONS = ("none", "sum", "mean")
LOG_CLAMP = -100.0


def class_dim(ndim: int) -> int:
    return 0 if ndim == 1 else 1


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction")


def reduce(values, reduction: str, divisor=None, *, extended=False):
    """Sum or divide a per-element loss: 'mean' uses ``divisor`` (numel when None)."""
    _check_reduction(reduction)
    values = core.to_work(values)
    if reduction == "none":
        return core.finish(values, extended)
    total = core.total(values)
    if reduction == "sum":
        return core.finish(total, extended)
    divisor = core.work(values.size) if divisor is None else core.to_work(divisor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return core.finish(total / divisor, extended)


def _class_weight_view(weight, ndim: int) -> np.ndarray:
    w = core.to_work(weight)
    if ndim <= 1:
        return w
    shape = [1] * ndim
    shape[1] = w.shape[0]
    return w.reshape(shape)


def cross_entropy_unreduced(input, target, weight=None, ignore_index=-100, label_smoothing=0.0, *, extended=False):
    """The per-element loss of ``cross_entropy`` (what reduction='none' returns)."""
    x = np.asarray(input)
    t = np.asarray(target)
    dim = class_dim(x.ndim)
    n_classes = x.shape[dim]
    e = core.work(label_smoothing)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if weight is not None and np.shape(weight) != (n_classes,):
        raise ValueError(f"weight tensor should be defined either for all {n_classes} classes or no classes")
    nls = core.neg_log_softmax(x, axis=dim, extended=True)
    if x.shape == t.shape:
        if t.dtype.kind not in "f" and t.dtype.name != "bfloat16":
            raise ValueError(f"Expected floating point type for target with class probabilities, got {t.dtype}")
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported for floating point target")
        probs = core.to_work(t) * (1 - e) + e / n_classes
        if weight is not None:
            probs = probs * _class_weight_view(weight, x.ndim)
        return core.finish(np.sum(core.mul0(probs, nls), axis=dim), extended)
    ignored = t == ignore_index
    safe_target = np.where(ignored, 0, t)
    safe_target = core.check_class_indices(safe_target, n_classes)
    picked = np.take_along_axis(nls, np.expand_dims(safe_target, dim), axis=dim).squeeze(dim)
    w = core.to_work(np.ones(n_classes) if weight is None else weight)
    loss = w[safe_target] * picked
    if label_smoothing > 0:
        smooth = np.sum(core.mul0(np.broadcast_to(_class_weight_view(w, x.ndim), nls.shape), nls), axis=dim)
        loss = (1 - e) * loss + e / n_classes * smooth
    return core.finish(np.where(ignored, core.work(0), loss), extended)


def cross_entropy_divisor(input, target, weight=None, ignore_index=-100):
    """What reduction='mean' divides by: the rows for probability targets, the
    summed class weights of the kept targets for class indices."""
    x = np.asarray(input)
    t = np.asarray(target)
    dim = class_dim(x.ndim)
    if x.shape == t.shape:
        return core.work(x.size // x.shape[dim]) if x.size else core.work(np.nan)
    return class_index_divisor(t, weight, ignore_index)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                  *, extended=False):
    """torch.nn.functional.cross_entropy."""
    _check_reduction(reduction)
    values = cross_entropy_unreduced(input, target, weight, ignore_index, label_smoothing, extended=True)
    divisor = cross_entropy_divisor(input, target, weight, ignore_index)
    return reduce(values, reduction, divisor, extended=extended)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean", *, extended=False):
    """torch.nn.functional.nll_loss on log-probabilities ``input``."""
    _check_reduction(reduction)
    logp = np.asarray(input)
    t = np.asarray(target)
    dim = class_dim(logp.ndim)
    n_classes = logp.shape[dim]
    ignored = t == ignore_index
    safe_target = core.check_class_indices(np.where(ignored, 0, t), n_classes)
    picked = np.take_along_axis(core.to_work(logp), np.expand_dims(safe_target, dim), axis=dim).squeeze(dim)
    w = core.to_work(np.ones(n_classes) if weight is None else weight)
    values = np.where(ignored, core.work(0), -w[safe_target] * picked)
    return reduce(values, reduction, class_index_divisor(t, weight, ignore_index), extended=extended)


def class_index_divisor(target, weight=None, ignore_index=-100):
    """The 'mean' divisor for class-index targets: summed weights of kept targets."""
    kept = np.asarray(target) != ignore_index
    if weight is None:
        return core.work(np.count_nonzero(kept))
    w = core.to_work(weight)
    return core.total(w[np.where(kept, target, 0)][kept])


def binary_cross_entropy_unreduced(input, target, weight=None, *, extended=False):
    """The per-element loss of ``binary_cross_entropy``, log terms clamped at -100."""
    p = core.to_work(input)
    z = core.to_work(target)
    if p.shape != z.shape:
        raise ValueError(f"Using a target size ({z.shape}) that is different to the input size ({p.shape})")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("all elements of input should be between 0 and 1")
    clamp = core.work(LOG_CLAMP)
    log_p = np.maximum(core.log_probabilities(p), clamp)
    log_1mp = np.maximum(core.log1m_probabilities(p), clamp)
    loss = -(z * log_p + (core.work(1) - z) * log_1mp)
    if weight is not None:
        loss = loss * core.to_work(weight)
    return core.finish(loss, extended)


def binary_cross_entropy(input, target, weight=None, reduction="mean", *, extended=False):
    """torch.nn.functional.binary_cross_entropy (probabilities, log clamped at -100)."""
    _check_reduction(reduction)
    values = binary_cross_entropy_unreduced(input, target, weight, extended=True)
    return reduce(values, reduction, _numel_divisor(values), extended=extended)


def binary_cross_entropy_with_logits_unreduced(input, target, weight=None, pos_weight=None, *, extended=False):
    """The per-element loss of ``binary_cross_entropy_with_logits``."""
    x = core.to_work(input)
    z = core.to_work(target)
    if x.shape != z.shape:
        raise ValueError(f"Target size ({z.shape}) must be the same as input size ({x.shape})")
    positive = z if pos_weight is None else z * core.to_work(pos_weight)
    loss = core.mul0(positive, core.softplus(-x)) + core.mul0(core.work(1) - z, core.softplus(x))
    if weight is not None:
        loss = loss * core.to_work(weight)
    return core.finish(loss, extended)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None,
                                     *, extended=False):
    """torch.nn.functional.binary_cross_entropy_with_logits."""
    _check_reduction(reduction)
    values = binary_cross_entropy_with_logits_unreduced(input, target, weight, pos_weight, extended=True)
    return reduce(values, reduction, _numel_divisor(values), extended=extended)


def _numel_divisor(values):
    return core.work(np.size(values)) if np.size(values) else core.work(np.nan)


# --- exact gradients: the coefficients of each convention's linear terms ------------------------------------
# d loss.sum() / d input, in torch's layout (class dimension 1), as (gradient, scale) pairs of
# reference.gradients: the scale is the size of the standard formula's terms, for the tolerance model.

def _mean_factor(reduction: str, divisor) -> core.WORK:
    if reduction in ("none", "sum"):
        return core.work(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return core.work(1) / core.to_work(divisor)


def _class_view(values, ndim: int, dim: int) -> np.ndarray:
    shape = [1] * ndim
    shape[dim] = -1
    return core.to_work(values).reshape(shape)


def cross_entropy_coefficients(input, target, weight=None, ignore_index=-100, reduction="mean",
                               label_smoothing=0.0) -> np.ndarray:
    """a[..., c] of ``sum_c a_c (-log softmax(x)_c)``, the loss as torch defines it
    (class-index or probability targets, weights, smoothing, ignored targets, reduction)."""
    x, t = np.asarray(input), np.asarray(target)
    dim = class_dim(x.ndim)
    n_classes = x.shape[dim]
    w = _class_view(np.ones(n_classes) if weight is None else weight, x.ndim, dim)
    e = core.work(label_smoothing)
    if t.shape == x.shape:  # probability targets (torch's rule: a target shaped like the input)
        a = w * (core.to_work(t) * (1 - e) + e / n_classes)
        return core.mul0(a, _mean_factor(reduction, cross_entropy_divisor(x, t)))
    keep = np.expand_dims(t != ignore_index, dim)
    safe = np.expand_dims(np.where(t == ignore_index, 0, t), dim)
    one_hot = np.arange(n_classes).reshape(_class_view(np.arange(n_classes), x.ndim, dim).shape) == safe
    picked = np.take_along_axis(np.broadcast_to(w, x.shape), safe, axis=dim)
    a = ((1 - e) * picked * one_hot + e / n_classes * w) * keep
    # an ignored target takes no part, even where nothing is kept (0 / 0)
    return core.mul0(a, _mean_factor(reduction, class_index_divisor(t, weight, ignore_index)))


def cross_entropy_gradient(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """(gradient, scale) of cross_entropy (and of nll_loss over log_softmax) by its input."""
    from reference import gradients

    a = cross_entropy_coefficients(input, target, weight, ignore_index, reduction, label_smoothing)
    return gradients.softmax_family(input, a, axis=class_dim(np.ndim(input)))


def _elementwise_factor(target, weight, reduction: str):
    factor = _mean_factor(reduction, np.size(target))
    return factor if weight is None else factor * core.to_work(weight)


def binary_cross_entropy_gradient(input, target, weight=None, reduction="mean"):
    """(gradient, scale) of binary_cross_entropy: its log terms clamped at -100 are flat there."""
    from reference import gradients

    p, z = core.to_work(input), core.to_work(target)
    factor = _elementwise_factor(target, weight, reduction)
    with np.errstate(divide="ignore"):
        active_positive = np.log(p) > LOG_CLAMP
        active_negative = np.log1p(-p) > LOG_CLAMP
    return gradients.log_pair(p, factor * z, factor * (1 - z), active_positive, active_negative)


def binary_cross_entropy_with_logits_gradient(input, target, weight=None, reduction="mean", pos_weight=None):
    """(gradient, scale) of binary_cross_entropy_with_logits."""
    from reference import gradients

    z = core.to_work(target)
    factor = _elementwise_factor(target, weight, reduction)
    positive = core.to_work(1.0 if pos_weight is None else pos_weight)
    return gradients.softplus_pair(input, factor * positive * z, factor * (1 - z))


# --- each element's rounding scale carried through the reduction (for the tolerance model) ----------------

def _weight_bound(*weights) -> core.WORK:
    bound = core.work(1)
    for weight in weights:
        if weight is not None:
            bound = bound * max(core.work(1), np.max(np.abs(core.to_work(weight))))
    return bound


def reduce_scales(values, input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Per-example scales (or values) of cross_entropy reduced as torch reduces the loss."""
    target = np.asarray(target)
    weighted = core.to_work(values) * _weight_bound(weight)
    if target.shape != np.shape(input):  # class indices
        weighted = np.where(target == ignore_index, core.work(0), weighted)
        divisor = class_index_divisor(target, weight, ignore_index)
    else:
        divisor = cross_entropy_divisor(input, target)
    return reduce(weighted, reduction, divisor, extended=True)


def reduce_elementwise_scales(values, weight=None, pos_weight=None, reduction="mean"):
    """The same for the elementwise (binary) losses."""
    return reduce(core.to_work(values) * _weight_bound(weight, pos_weight), reduction, extended=True)
