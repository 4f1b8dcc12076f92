"""Array specifications in case files: literals and seeded generators.

A literal is a nested list of numbers or strings (``"nan"``, ``"inf"``,
``"-inf"``, hex floats such as ``"0x1.8p+1"``). A generator is a mapping with
exactly one key naming the recipe:

* ``normal: {shape, seed, loc=0, scale=1}``
* ``uniform: {shape, seed, low=0, high=1}``
* ``integers: {shape, seed, low=0, high}`` (high exclusive)
* ``fill: {shape, value}``
* ``arange: {shape, start=0}`` (``start, start+1, ...`` reshaped)
* ``one_hot: {indices: <array>, depth}`` (an out-of-range index is a zero row)
* ``softmax: <array>`` or ``softmax: {of: <array>, axis}`` (probabilities from logits, last axis by default)
* ``scaled: {array: <array>, by}`` (multiplies an array)

Seeds make every generated array the same on every machine (NumPy's PCG64).
"""

from __future__ import annotations

import math

import numpy as np

RECIPES = ("normal", "uniform", "integers", "fill", "arange", "one_hot", "softmax", "scaled")


class ArraySpecError(ValueError):
    """A malformed array specification; the message names what is wrong."""


def _scalar(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("nan", "+nan", "-nan"):
            return math.nan
        if text in ("inf", "+inf", "infinity"):
            return math.inf
        if text in ("-inf", "-infinity"):
            return -math.inf
        try:
            return float.fromhex(value) if "0x" in text else float(value)
        except ValueError:
            raise ArraySpecError(f"not a number: {value!r}") from None
    raise ArraySpecError(f"not a number: {value!r}")


def _literal(value):
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return _scalar(value)


def _rng(params):
    if "seed" not in params:
        raise ArraySpecError("a random generator needs a 'seed'")
    return np.random.default_rng(int(params["seed"]))


def _shape(params):
    shape = params.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ArraySpecError(f"'shape' must be a list of non-negative integers, got {shape!r}")
    return tuple(shape)


def build(spec) -> np.ndarray:
    """The array a spec describes: float64 for reals, int64 for integers."""
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ArraySpecError(f"a generator has exactly one recipe key, got {sorted(spec)}")
        (recipe, params), = spec.items()
        if recipe not in RECIPES:
            raise ArraySpecError(f"unknown generator {recipe!r}; known: {', '.join(RECIPES)}")
        return _GENERATORS[recipe](params)
    literal = _literal(spec)
    try:
        array = np.asarray(literal)
    except ValueError:
        array = np.asarray(None, dtype=object)
    if array.dtype == object:
        raise ArraySpecError("a literal array must be rectangular")
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    return array.astype(np.float64)


def _normal(params):
    return _rng(params).normal(params.get("loc", 0.0), params.get("scale", 1.0), _shape(params))


def _uniform(params):
    return _rng(params).uniform(params.get("low", 0.0), params.get("high", 1.0), _shape(params))


def _integers(params):
    if "high" not in params:
        raise ArraySpecError("'integers' needs 'high' (exclusive)")
    return _rng(params).integers(params.get("low", 0), params["high"], _shape(params)).astype(np.int64)


def _fill(params):
    return np.full(_shape(params), _scalar(params.get("value", 0.0)), dtype=np.float64)


def _arange(params):
    shape = _shape(params)
    start = int(params.get("start", 0))
    return np.arange(start, start + math.prod(shape), dtype=np.int64).reshape(shape)


def _one_hot(params):
    indices = build(params["indices"]).astype(np.int64)
    depth = int(params["depth"])
    return (indices[..., None] == np.arange(depth)).astype(np.float64)


def _softmax(params):
    axis = -1
    if isinstance(params, dict) and "of" in params:
        params, axis = params["of"], int(params.get("axis", -1))
    logits = build(params)
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _scaled(params):
    return build(params["array"]) * _scalar(params["by"])


_GENERATORS = {
    "normal": _normal,
    "uniform": _uniform,
    "integers": _integers,
    "fill": _fill,
    "arange": _arange,
    "one_hot": _one_hot,
    "softmax": _softmax,
    "scaled": _scaled,
}
