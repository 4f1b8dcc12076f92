"""Framework conventions by name: each module mirrors one framework's documented
semantics (signatures, layouts, clipping, smoothing, weighting, reduction) on top
of the exact math in :mod:`reference.core`."""

from reference.conventions import keras, tensorflow, torch

__all__ = ["keras", "tensorflow", "torch"]
