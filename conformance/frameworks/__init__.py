"""Framework adapters: one module per framework, each a ``BINDINGS`` list.

An adapter module may import only NumPy and the harness at module level; its
framework is imported inside the calls, so that collecting the suite (and
``pytest -k torch``) never imports TensorFlow, and the reverse.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from conformance.bindings import Problem


def pick(problem: Problem, names: Iterable[str], rename: dict[str, str] | None = None) -> dict[str, Any]:
    """The problem's options among ``names``, as keyword arguments."""
    rename = rename or {}
    return {rename.get(name, name): problem.options[name] for name in names if name in problem.options}


def class_axis_to(problem: Problem, array, position: int):
    """Moves the case's class axis (``axis`` option, default last) to ``position``;
    Python lists (behaviour cases) pass through where the move changes nothing."""
    ndim = np.ndim(array)
    if ndim != np.ndim(problem.prediction):
        return array  # a malformed input (behaviour case): the framework decides
    if not isinstance(array, np.ndarray) and (ndim <= 1 or problem.axis % ndim == position % ndim):
        return array
    return np.moveaxis(np.asarray(array), problem.axis, position)


def split_batches(array, count: int):
    """``count`` consecutive slices along axis 0 (a metric's update_state calls)."""
    if array is None:
        return [None] * count
    return np.array_split(np.asarray(array), count, axis=0)


# The exact losses of the three logits families, for bindings whose documented
# convention is the plain formula (no clipping, smoothing or reduction).

def exact_softmax_cross_entropy(problem: Problem):
    from reference import core

    return core.softmax_cross_entropy(problem.prediction, problem.labels, axis=problem.axis, extended=True)


def exact_sparse_softmax_cross_entropy(problem: Problem):
    from reference import core

    logits = np.moveaxis(np.asarray(problem.prediction), problem.axis, -1) if np.ndim(problem.prediction) else (
        problem.prediction)
    return core.sparse_softmax_cross_entropy(logits, problem.labels, extended=True)


def exact_sigmoid_cross_entropy(problem: Problem):
    from reference import core

    return core.sigmoid_cross_entropy(problem.prediction, problem.labels, extended=True)


for _exact, _name in ((exact_softmax_cross_entropy, "softmax_cross_entropy"),
                      (exact_sparse_softmax_cross_entropy, "sparse_softmax_cross_entropy"),
                      (exact_sigmoid_cross_entropy, "sigmoid_cross_entropy")):
    _exact.convention = (f"reference.core.{_name}",)  # what a binding held to it names (Binding.convention)
