"""The floating-point formats under test, as NumPy sees them, and their units.

bfloat16 comes from ml_dtypes (a dependency of both TensorFlow and JAX, and
the only NumPy spelling of it). Every format embeds exactly in float64, which
embeds exactly in the reference's extended precision.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from reference import core

DTYPES = ("float16", "bfloat16", "float32", "float64")

NUMPY = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


class Format:
    """Precision facts of one format: machine epsilon, smallest subnormal, ..."""

    def __init__(self, name: str):
        info = ml_dtypes.finfo(NUMPY[name]) if name == "bfloat16" else np.finfo(NUMPY[name])
        self.name = name
        self.mantissa_bits = int(info.nmant)  # stored bits, without the leading one
        self.min_exponent = int(info.minexp)  # exponent of the smallest normal
        self.eps = float(info.eps)  # 2 ** -mantissa_bits
        self.smallest_normal = float(info.smallest_normal)
        self.smallest_subnormal = float(2.0 ** (self.min_exponent - self.mantissa_bits))
        self.max = float(info.max)


FORMATS = {name: Format(name) for name in DTYPES}


def name_of(dtype) -> str:
    """'float32' for np.float32, torch-free and TF-free."""
    name = np.dtype(dtype).name
    if name not in NUMPY:
        raise ValueError(f"not a floating-point format under test: {name}")
    return name


def round_to(values, dtype: str) -> np.ndarray:
    """Rounds float inputs to ``dtype`` (round to nearest even, via float64)."""
    return np.asarray(values, dtype=np.float64).astype(NUMPY[dtype])


def ulp(values, dtype: str) -> np.ndarray:
    """The unit in the last place of each (extended) value in ``dtype``:
    ``2 ** (exponent - mantissa_bits)``, the subnormal spacing below the normal
    range, for the binade that holds the value itself (not its rounding)."""
    fmt = FORMATS[dtype]
    magnitude = np.abs(core.to_work(values))
    finite = np.isfinite(magnitude) & (magnitude > 0)
    _, exponent = np.frexp(np.where(finite, magnitude, core.work(1)))
    # frexp gives m * 2**e with m in [0.5, 1): the binade's exponent is e - 1
    exponent = np.maximum(exponent.astype(np.int64) - 1, fmt.min_exponent)
    return np.where(finite, core.pow2(exponent - fmt.mantissa_bits), core.work(fmt.smallest_subnormal))
