"""Keras 3 on JAX (``KERAS_BACKEND=jax``): the Keras bindings of ``conformance.frameworks.keras_backends`` on
JAX, in a worker of their own, held to Keras 3's convention (``reference.conventions.keras``).

The default run takes the losses and metrics as users call them (the loss and metric objects with their default
reduction, and the loss functions) in JAX's default float, float32: 26 bindings, about 55 s of the README's
``pytest`` on the 2-core machine, their every failure a known divergence. Keras on JAX runs eagerly and XLA
compiles each operation again for each new shape and dtype (25 to 35 ms each), nearly one compile per check, so
the pinned forms (reduction='none', every element compared) and float16, bfloat16 and float64 (with JAX's 64-bit
types off, as users have them, a float64 input is computed in float32) take ``XENT_KERAS_JAX=full``: about 230 s
more, and their failures are not yet known divergences (the README's "Keras 3 on torch and JAX" lists what they
show). Without it the other dtypes' checks are collected and skip with the switch's name
(``Binding.left_out_dtypes``); the pinned forms are not built (no known divergence names them yet).
``-k keras_jax`` selects this backend; ``-k jax`` and ``-k keras`` include it.
"""

import dataclasses
import os

from conformance.bindings import AS_CALLED, as_called_label
from conformance.frameworks.keras_backends import backend_bindings

EVERY_FORM = backend_bindings("jax", __name__)
DEFAULT_DTYPES = frozenset({"float32"})
FULL = os.environ.get("XENT_KERAS_JAX", "").lower() == "full"
# the property tests' shapes: each new one is an XLA compile of every operation, so they draw the shapes the cases
# compile most (rows of 3 and 4 classes, 3 and 4 rows, rank 2) and vary the values; the cases hold the other
# shapes. Measured with JAX's cache empty, CI=true pytest -k keras_jax: its property tests 23.9 s with every
# size from (1, 2, 5) and every rank, 8.7 s with these
PROPERTY_SIZES = (3, 4)
PROPERTY_RANKS = (2,)


def _called_as_users_call_it(binding, every_id) -> bool:
    """An object's as-called form, or a loss function (it has no pinned form: users call it as it is)."""
    if AS_CALLED in binding.markers:
        return True
    framework, label = binding.id.split(":", 1)
    return f"{framework}:{as_called_label(label)}" not in every_id


LEFT_OUT = ("XENT_KERAS_JAX=full runs it: Keras on JAX compiles each operation for each new shape and dtype, so "
            "the default run takes its losses and metrics as users call them, in float32")


def _default_run(bindings):
    every_id = {binding.id for binding in bindings}
    return [dataclasses.replace(binding, left_out_reason=LEFT_OUT,
                                left_out_dtypes=frozenset(binding.dtypes) - DEFAULT_DTYPES,
                                property_shapes=dataclasses.replace(binding.property_shapes, sizes=PROPERTY_SIZES,
                                                                    ranks=PROPERTY_RANKS))
            for binding in bindings if _called_as_users_call_it(binding, every_id)]


BINDINGS = EVERY_FORM if FULL else _default_run(EVERY_FORM)
