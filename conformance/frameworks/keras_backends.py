"""Keras 3 on its other backends: the same ``keras.losses`` and ``keras.metrics`` bindings as on TensorFlow
(``conformance.frameworks.tensorflow.keras_bindings``), run with ``KERAS_BACKEND=torch`` (this module's
``BINDINGS``) and ``KERAS_BACKEND=jax`` (``conformance.frameworks.keras_jax``), held to the same convention
(``reference.conventions.keras``).

Keras picks its backend once, when it is first imported, so each backend runs in a worker process of its own
(``conformance.isolation``, one worker per backend, started at its first call). Binding ids name the backend
(``keras_torch:``, ``keras_jax:``): ``-k keras_torch`` selects one backend, ``-k torch`` includes Keras on
torch. Tensors are the backend's own (torch tensors, JAX arrays) and the gradients come from the backend's
autodiff (``torch.autograd``, ``jax.grad``), as a training loop on that backend gets them. JAX runs as a user has
it by default: on the CPU, with 64-bit types off.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from conformance.bindings import Problem
from conformance.frameworks import tensorflow as keras_on_tensorflow
from conformance.frameworks import jax as jax_adapter
from conformance.frameworks import torch as torch_adapter
from conformance.isolation import isolate


def _keras():
    import keras

    return keras


# --- torch: the torch adapter's tensors (bfloat16 through float32, exactly) ---------------------------

def _torch_autograd(forward):
    """d sum(output) / d prediction by torch.autograd."""

    def gradient(problem: Problem):
        import torch

        x, y = torch_adapter.tensor(problem.prediction), torch_adapter.tensor(problem.labels)
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(forward(problem, x, y).sum(), [x], allow_unused=True)
        name = keras_on_tensorflow._prediction_name(problem)
        return {name: torch_adapter.to_numpy(grad) if grad is not None else np.zeros(np.shape(problem.prediction))}

    return gradient


# --- JAX ----------------------------------------------------------------------

@functools.cache
def _jax():
    """JAX with the persistent compilation cache that the JAX adapter keeps (the same executables, loaded from
    disk instead of compiled again: no result changes). Keras on JAX runs eagerly, and XLA compiles each
    operation for each new shape and dtype (25 to 35 ms on the 2-core AMD machine), nearly one compile per call
    of the run's: ``-k keras_jax`` takes about 230 s with the cache empty or off, 111 s with it warm (README,
    "Keras 3 on torch and JAX"). 64-bit types stay off, as JAX has them."""
    import jax

    jax_adapter._use_persistent_cache(jax)
    return jax


def _jax_array(array):
    """A JAX array as a user has it by default: not the JAX adapter's ``array``, which turns 64-bit types on."""
    if not isinstance(array, np.ndarray):
        return array
    _jax()
    import jax.numpy as jnp

    return jnp.asarray(array)


def _jax_numpy(value) -> np.ndarray:
    return np.asarray(value)


def _jax_grad(forward):
    """d sum(output) / d prediction by jax.grad."""

    def gradient(problem: Problem):
        import jax
        import jax.numpy as jnp

        x, y = _jax_array(problem.prediction), _jax_array(problem.labels)
        grad = jax.grad(lambda x: jnp.sum(forward(problem, x, y)))(x)
        return {keras_on_tensorflow._prediction_name(problem): _jax_numpy(grad)}

    return gradient


# backend: (its tensors, back to NumPy, its autodiff, the environment its worker needs)
_BACKENDS = {
    # on the CPU, the device these checks run on: Keras' torch backend takes cuda, mps or xpu where torch finds one
    # (its KERAS_TORCH_DEVICE overrides), and the torch adapter refuses a result from another device than the check's
    "torch": (torch_adapter.tensor, torch_adapter.to_numpy, _torch_autograd, {"KERAS_TORCH_DEVICE": "cpu"}),
    # JAX as a user has it by default: on the CPU here, float64 off (below); the worker serves every form, the
    # test process chooses which run (keras_jax.py: the default run leaves the pinned forms out)
    "jax": (_jax_array, _jax_numpy, _jax_grad, {"JAX_PLATFORMS": "cpu", "XENT_KERAS_JAX": "full"}),
}


def flavour(backend: str) -> keras_on_tensorflow.KerasFlavour:
    tensor, numpy, differentiate, _ = _BACKENDS[backend]
    return dataclasses.replace(
        keras_on_tensorflow.KERAS3, framework=f"keras_{backend}", api_prefix=f"KERAS_BACKEND={backend} keras",
        module=_keras, requires=("keras", backend), versions_of=("keras", backend), extra=f"keras_{backend}",
        tensor=tensor, numpy=numpy, differentiate=differentiate)


def backend_bindings(backend: str, module: str) -> list:
    """The Keras 3 bindings on ``backend``, their calls in ``module``'s worker with KERAS_BACKEND set to it."""
    bindings = keras_on_tensorflow.keras_bindings(flavour(backend))
    return isolate(bindings, module, {"KERAS_BACKEND": backend, **_BACKENDS[backend][3]})


BINDINGS = backend_bindings("torch", __name__)
