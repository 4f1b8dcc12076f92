"""The option vocabulary of case files and the id tokens each option prints as.

One vocabulary for every framework: a name means the framework's own option of
that name (``reduction: mean`` is torch's weighted mean for a torch binding and
Keras' 'mean' for a Keras one; the reference models each by name). A binding
declares which options it takes; a case that sets one it lacks is skipped for
that binding with the reason.

``default`` as a value means "do not pass it": the framework's documented
default applies, and the reference's signature has the same default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT = "default"

# name -> (kind, id token). Array-valued options print their token alone.
VOCABULARY: dict[str, tuple[str, str]] = {
    "axis": ("int", "axis"),
    "weight": ("array", "weight"),
    "pos_weight": ("array", "pos_weight"),
    "sample_weight": ("array", "sample_weight"),
    "ignore_index": ("int", "ignore_index"),
    "ignore_class": ("int", "ignore_class"),
    "label_smoothing": ("float", "ls"),
    "gamma": ("float", "gamma"),
    "alpha": ("float_or_array", "alpha"),
    "apply_class_balancing": ("bool", "balanced"),
    "metric_batches": ("int", "batches"),
    "reduction": ("choice", ""),
}

REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size", "mean_with_sample_weight", DEFAULT)
# Options whose arrays are real-valued and so take the dtype under test.
FLOAT_ARRAY_OPTIONS = ("weight", "pos_weight", "sample_weight", "alpha")


def token(name: str, value: Any) -> str:
    """The id token for one option setting, from a fixed vocabulary."""
    kind, prefix = VOCABULARY[name]
    if kind == "array" or (kind == "float_or_array" and isinstance(value, (list, dict, np.ndarray))):
        return prefix
    if name == "reduction":
        return f"reduction_{value}" if value == DEFAULT else str(value)
    if value == DEFAULT:
        return f"{prefix}_default"
    if kind == "bool":
        return prefix if value else f"not_{prefix}"
    return f"{prefix}{_number(value)}"


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def grid_tokens(name: str, values: list) -> list[str]:
    """Tokens for each value of one grid option; several arrays of one option
    are told apart by their place: weight1, weight2."""
    plain = [token(name, value) for value in values if value is not None]
    tokens_ = []
    arrays_seen = 0
    for value in values:
        if value is None:
            tokens_.append("")
            continue
        text = token(name, value)
        if plain.count(text) > 1:
            arrays_seen += 1
            text = f"{text}{arrays_seen}"
        tokens_.append(text)
    return tokens_


def join(parts_by_name: dict[str, str]) -> str:
    """'weight+ignore_index-100+ls0.1+mean': in vocabulary order, reduction last."""
    return "+".join(parts_by_name[name] for name in VOCABULARY if parts_by_name.get(name))


def tokens(options: dict[str, Any]) -> str:
    return join({name: token(name, value) for name, value in options.items()})
