"""MLX bindings: ``mlx.nn.losses.cross_entropy`` and ``binary_cross_entropy`` (the CPU build, ``mlx[cpu]``).

MLX takes the class axis where the case has it (``axis``, default -1), so inputs pass unchanged; it tells
class-index targets from probability targets by their rank, so each is a binding of its own family. Each
binding's reference is MLX's convention in :mod:`reference.conventions.mlx`, and its gradient
(``mx.grad`` of the sum of the output) is checked against that convention's exact gradient.

Options, in the suite's vocabulary: ``sample_weight`` is cross_entropy's ``weights`` (one per target, the
loss's shape), ``weight`` is binary_cross_entropy's ``weights`` (one per element, the inputs' shape); both
multiply the loss and leave the mean's divisor alone. cross_entropy's default reduction is 'none', so
one binding is both the pinned and the as-called form; binary_cross_entropy's is 'mean', so it comes
pinned (reduction='none') and as called. Every dtype MLX has on the CPU (float16, bfloat16, float32,
float64) runs; MLX documents that "the CPU reduces in the dtype of the logits", so half-precision inputs
are computed in half precision throughout (``computes_in_output_dtype``).

Registered through the ``xent_conformance.bindings`` entry point (pyproject.toml), installed with the ``mlx``
extra (in ``all``); ``-k mlx`` selects it. MLX imports in tens of milliseconds and computes eagerly (no graph to
build per shape), so it runs in the test process. ``mx.array`` narrows a float64 ndarray to float32 unless it is
given ``dtype=mx.float64``; the bindings pass it, as a user computing in float64 must.
"""

from __future__ import annotations

import functools

import numpy as np

from conformance.bindings import AS_CALLED, Binding, Problem
from conformance.frameworks import pick
from reference.conventions import mlx as ref

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
REDUCTIONS = frozenset(ref.REDUCTIONS)
DOCS = "https://ml-explore.github.io/mlx/build/html/python/nn/_autosummary_functions/mlx.nn.losses.{}.html"
CROSS_ENTROPY_OPTIONS = ("sample_weight", "axis", "label_smoothing", "reduction")
BCE_OPTIONS = ("weight", "reduction")
RENAME = {"sample_weight": "weights", "weight": "weights"}


@functools.cache
def _mx():
    import mlx.core

    return mlx.core


@functools.cache
def _losses():
    import mlx.nn.losses

    return mlx.nn.losses


def array(value):
    """An MLX array holding ``value`` in its own dtype (bfloat16 through float32, exactly); Python objects
    (behaviour cases) pass as they are."""
    if not isinstance(value, np.ndarray):
        return value
    mx = _mx()
    if value.dtype.name == "bfloat16":
        return mx.array(value.astype(np.float32)).astype(mx.bfloat16)
    if value.dtype == np.float64:  # mx.array narrows a float64 ndarray to float32 unless told the dtype
        return mx.array(value, dtype=mx.float64)
    return mx.array(value)


def to_numpy(value) -> np.ndarray:
    """An MLX array's values in its own dtype (bfloat16 as ml_dtypes.bfloat16)."""
    mx = _mx()
    if value.dtype == mx.bfloat16:
        import ml_dtypes

        return np.array(value.astype(mx.float32)).astype(ml_dtypes.bfloat16)
    return np.array(value)


def _options(problem: Problem, names) -> dict:
    kwargs = pick(problem, names, RENAME)
    if "weights" in kwargs:
        kwargs["weights"] = array(kwargs["weights"])
    return kwargs


def _cross_entropy(problem: Problem, x):
    return _losses().cross_entropy(x, array(problem.labels), **_options(problem, CROSS_ENTROPY_OPTIONS))


def _bce(with_logits: bool):
    extra = {} if with_logits else {"with_logits": False}

    def forward(problem: Problem, x):
        return _losses().binary_cross_entropy(x, array(problem.labels), **extra, **_options(problem, BCE_OPTIONS))

    return forward


def _caller(forward):
    def call(problem: Problem):
        return to_numpy(forward(problem, array(problem.prediction)))

    return call


def _autodiff(forward):
    """d sum(output) / d prediction, by mx.grad."""

    def gradient(problem: Problem):
        mx = _mx()
        grad = mx.grad(lambda x: mx.sum(forward(problem, x)))(array(problem.prediction))
        return {"logits" if "logits" in problem.inputs else "probs": to_numpy(grad)}

    return gradient


# --- references and exact gradients: reference.conventions.mlx -------------------------------------------

def _cross_entropy_arguments(problem: Problem) -> dict:
    return pick(problem, CROSS_ENTROPY_OPTIONS, RENAME)


def reference_cross_entropy(problem: Problem):
    return ref.cross_entropy(problem.prediction, problem.labels, extended=True, **_cross_entropy_arguments(problem))


def _cross_entropy_gradient(problem: Problem):
    return {"logits": ref.cross_entropy_gradient(problem.prediction, problem.labels,
                                                 **_cross_entropy_arguments(problem))}


def _bce_reference(with_logits: bool):
    def reference(problem: Problem):
        return ref.binary_cross_entropy(problem.prediction, problem.labels, with_logits=with_logits, extended=True,
                                        **pick(problem, BCE_OPTIONS, RENAME))

    reference.convention = (f"{ref.__name__}.binary_cross_entropy",)
    return reference


def _bce_gradient(with_logits: bool):
    def reference_gradient(problem: Problem):
        name = "logits" if with_logits else "probs"
        return {name: ref.binary_cross_entropy_gradient(problem.prediction, problem.labels, with_logits=with_logits,
                                                        **pick(problem, BCE_OPTIONS, RENAME))}

    return reference_gradient


def _reduce(names, default_reduction: str):
    def reduce(values, problem: Problem):
        options = pick(problem, names, RENAME)
        return ref.reduce_scales(values, options.get("weights"), options.get("reduction", default_reduction))

    return reduce


reference_cross_entropy.convention = (f"{ref.__name__}.cross_entropy",)


def _binding(label, api, family, forward, reference, reference_gradient, options, *, as_called=False,
             default_reduction="none", pinned=False, doc=""):
    option_map = {name: None for name in options if name != "reduction"}
    option_map["reduction"] = REDUCTIONS
    return Binding(
        id=f"mlx:{label}", api=api, framework="mlx", family=family, call=_caller(forward), reference=reference,
        convention=reference.convention, reduce=_reduce(options, default_reduction), dtypes=DTYPES,
        options=option_map, defaults={"reduction": "none"} if pinned else {},
        markers=(AS_CALLED,) if as_called else (), requires=("mlx",), doc=doc,
        notes={"ignore_index": f"{api} has no ignore_index (documented signature: {doc})",
               "sample_weight": f"{api} takes weights of the inputs' shape, named weight in the cases ({doc})"}
        if family in ("sigmoid", "binary_probs") else
        {"ignore_index": f"{api} has no ignore_index (documented signature: {doc})",
         "weight": f"{api} has no class weights: its weights are one per target, sample_weight in the cases "
                   f"({doc})"},
        gradient=_autodiff(forward), reference_gradient=reference_gradient, computes_in_output_dtype=True,
    )


CE = "mlx.nn.losses.cross_entropy"
BCE = "mlx.nn.losses.binary_cross_entropy"
BINDINGS = [
    _binding("nn.losses.cross_entropy", f"{CE}(logits, targets)", "sparse_softmax", _cross_entropy,
             reference_cross_entropy, _cross_entropy_gradient, CROSS_ENTROPY_OPTIONS, doc=DOCS.format("cross_entropy")),
    _binding("nn.losses.cross_entropy(probabilities)", f"{CE}(logits, probabilities)", "softmax", _cross_entropy,
             reference_cross_entropy, _cross_entropy_gradient, CROSS_ENTROPY_OPTIONS, doc=DOCS.format("cross_entropy")),
]
for _with_logits, _family in ((True, "sigmoid"), (False, "binary_probs")):
    _label = "nn.losses.binary_cross_entropy" + ("" if _with_logits else "(with_logits=False)")
    _api = BCE + ("" if _with_logits else "(with_logits=False)")
    for _as_called in (False, True):
        BINDINGS.append(_binding(
            (_label[:-1] + f",{AS_CALLED})" if _label.endswith(")") else f"{_label}({AS_CALLED})") if _as_called
            else _label, _api, _family, _bce(_with_logits), _bce_reference(_with_logits), _bce_gradient(_with_logits),
            BCE_OPTIONS, as_called=_as_called, default_reduction="mean", pinned=not _as_called,
            doc=DOCS.format("binary_cross_entropy")))
