"""JAX bindings: optax's cross-entropies and the forms built on jax.nn.log_softmax.

Registered through the ``xent_conformance.bindings`` entry point (see
pyproject.toml), the same interface a third party uses; installed with the
``jax`` extra. float64 needs ``jax_enable_x64``, which the adapter turns on
when it first imports JAX (only then, so collecting the suite imports nothing).

XLA compiles every function again for each shape and dtype (about 60 ms for a
value and 90 ms for a gradient on this project's 2-core machine), and the cases
and property tests draw many shapes. The adapter therefore turns on JAX's own
persistent compilation cache, as JAX documents for repeated runs, for every
compile (JAX's default keeps only those over 1 s): in
``JAX_COMPILATION_CACHE_DIR`` where that is set, else in
``<temp>/xent_jax_cache_<user>``, like inductor's default. A later run loads
the executable XLA built before, the same code a first run got (about 30 ms a
shape instead of 90); ``JAX_ENABLE_COMPILATION_CACHE=false`` turns it off. The
property tests draw rank 2 and every dimension from the sizes 3 and 4
(``PROPERTY_SHAPES``), the shapes the cases compile most, so that their
examples meet shapes jit has already compiled; what they vary is the values,
and the cases hold the other shapes (single rows and classes, other ranks).

Every binding computes on the check's device (``--device``, see
:mod:`conformance.devices`): ``cpu`` is ``jax.devices("cpu")[0]`` (also on a
machine whose default backend is a GPU), ``cpu:N`` the N-th host device (with
``XLA_FLAGS=--xla_force_host_platform_device_count``), ``cuda`` and ``cuda:N``
the CUDA devices. The inputs are committed there with ``jax.device_put`` (jit
runs where its inputs are committed), Python inputs are made there by
``jax.default_device``, and every result must come back from there.
"""

from __future__ import annotations

import functools
import getpass
import os
import tempfile
from pathlib import Path

import numpy as np

from conformance import devices
from conformance.bindings import Binding, Problem, PropertyShapes
from conformance.frameworks import (exact_sigmoid_cross_entropy, exact_softmax_cross_entropy,
                                    exact_sparse_softmax_cross_entropy)
from reference import core
from reference import gradients as ref_grad

DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
# JAX's host devices and its CUDA ones
DEVICES = ("cpu", "cpu:[0-9]*", "cuda", "cuda:[0-9]*")
OPTAX_DOCS = "https://optax.readthedocs.io/en/latest/api/losses.html"
LOG_SOFTMAX_DOCS = "https://docs.jax.dev/en/latest/_autosummary/jax.nn.log_softmax.html"
# the property tests' shapes (see the module's docstring). Measured with JAX's cache empty, CI=true pytest -k "jax
# and not keras_jax": its property tests 20.5 s with the sizes 1, 2 and 5 at every rank, 5.7 s with these
PROPERTY_SHAPES = PropertyShapes(sizes=(3, 4), ranks=(2,))


@functools.cache
def _jax():
    """JAX, configured once: float64, and the persistent compilation cache."""
    import jax

    jax.config.update("jax_enable_x64", True)
    _use_persistent_cache(jax)
    return jax


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.getuid()) if hasattr(os, "getuid") else "user"


def _use_persistent_cache(jax) -> None:
    """JAX's persistent compilation cache for every compile, unless the user configured it (see the module's
    docstring); JAX's own settings win."""
    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(Path(tempfile.gettempdir()) / f"xent_jax_cache_{_user()}"))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@functools.cache
def device(name: str):
    """JAX's device named ``name`` (``cpu``, ``cpu:1``, ``cuda``); ``devices.Unavailable`` where it finds none."""
    jax = _jax()
    platform = devices.kind(name)
    try:
        found = jax.devices(platform)
    except RuntimeError as error:  # no backend of that platform here
        raise devices.Unavailable(f"JAX finds no {platform} device here ({str(error).splitlines()[0][:200]})")
    if devices.index(name) >= len(found):
        raise devices.Unavailable(f"JAX finds {len(found)} {platform} devices here, no {name}")
    return found[devices.index(name)]


def array(value, where: str = devices.DEFAULT):
    """A JAX array of ``value`` in its own dtype, committed to the device named ``where`` (Python objects pass
    through)."""
    if not isinstance(value, np.ndarray):
        return value
    return _jax().device_put(value, device(where))


def to_numpy(value, where: str | None = None) -> np.ndarray:
    """``value`` as NumPy, after confirming that it came from the device named ``where`` (where given)."""
    if where is not None and hasattr(value, "devices"):
        came_from = value.devices()
        if came_from != {device(where)}:
            raise devices.Misplaced(f"JAX returned an array from {sorted(map(str, came_from))}, where the check's "
                                    f"inputs were placed on {device(where)}")
    return np.asarray(value)


def _optax():
    _jax()
    import optax

    return optax


# --- forward computations: (logits, labels, axis) -> per-example losses ------------------

def _softmax_ce(x, labels, axis):
    return _optax().softmax_cross_entropy(x, labels, axis=axis)


def _integer_ce(x, labels, axis):
    return _optax().softmax_cross_entropy_with_integer_labels(x, labels, axis=axis)


def _sigmoid_ce(x, labels, axis):
    return _optax().sigmoid_binary_cross_entropy(x, labels)


def _log_softmax_soft(x, labels, axis):
    jax = _jax()
    return -jax.numpy.sum(labels * jax.nn.log_softmax(x, axis=axis), axis=axis)


def _log_softmax_integer(x, labels, axis):
    jax = _jax()
    jnp = jax.numpy
    log_probs = jax.nn.log_softmax(x, axis=axis)
    picked = jnp.take_along_axis(log_probs, jnp.expand_dims(jnp.asarray(labels), axis), axis=axis)
    return -jnp.squeeze(picked, axis)


# JAX code runs under jax.jit in practice, and eager dispatch compiles every
# primitive separately (1-2 s per check); so arrays go through one jitted
# function per forward. Python lists and scalars, which jit would trace as
# pytrees of scalars, go through the eager call as a user would write it.
_JITTED: dict = {}


def _compiled(forward, gradient: bool):
    key = (forward, gradient)
    if key not in _JITTED:
        jax = _jax()
        function = forward
        if gradient:
            function = jax.grad(lambda x, labels, axis: jax.numpy.sum(forward(x, labels, axis)))
        _JITTED[key] = jax.jit(function, static_argnames="axis")
    return _JITTED[key]


def _run(forward, problem: Problem, gradient: bool = False):
    x, labels = problem.prediction, problem.labels
    axis, where = problem.axis, problem.device
    if isinstance(x, np.ndarray) and isinstance(labels, np.ndarray):
        return _compiled(forward, gradient)(array(x, where), array(labels, where), axis=axis)
    jax = _jax()
    with jax.default_device(device(where)):  # the Python inputs become arrays on the device
        if gradient:
            return jax.grad(lambda v: jax.numpy.sum(forward(v, array(labels, where), axis)))(array(x, where))
        return forward(array(x, where), array(labels, where), axis)


def _caller(forward):
    def call(problem: Problem):
        return to_numpy(_run(forward, problem), problem.device)

    return call


def _autodiff(forward):
    def gradient(problem: Problem):
        return {"logits": to_numpy(_run(forward, problem, gradient=True), problem.device)}

    return gradient


# --- references and exact gradients ----------------------------------------------------

def _gradient_soft(problem: Problem):
    return {"logits": ref_grad.softmax_family(problem.prediction, problem.labels, axis=problem.axis)}


def _gradient_integer(problem: Problem):
    x = np.asarray(problem.prediction)
    axis = problem.axis
    one_hot = (np.asarray(problem.labels)[..., None] == np.arange(x.shape[axis])).astype(np.float64)
    return {"logits": ref_grad.softmax_family(x, np.moveaxis(one_hot, -1, axis), axis=axis)}


def _gradient_sigmoid(problem: Problem):
    z = core.to_work(problem.labels)
    return {"logits": ref_grad.softplus_pair(problem.prediction, z, 1 - z)}


def _binding(name, api, family, forward, reference, reference_gradient, options=None, notes=None, doc=OPTAX_DOCS):
    return Binding(
        id=f"jax:{name}", api=api, framework="jax", family=family, call=_caller(forward), reference=reference,
        convention=reference.convention, dtypes=DTYPES, options=options or {}, requires=("jax", "optax"), doc=doc,
        versions_of=("jax", "jaxlib", "optax"), markers=("optax",) if api.startswith("optax.") else (),
        gradient=_autodiff(forward), reference_gradient=reference_gradient, notes=notes or {},
        property_shapes=PROPERTY_SHAPES, devices=DEVICES,
    )


BINDINGS = [
    _binding("optax.softmax_cross_entropy", "optax.softmax_cross_entropy", "softmax", _softmax_ce,
             exact_softmax_cross_entropy, _gradient_soft, {"axis": None}),
    _binding("optax.softmax_cross_entropy_with_integer_labels", "optax.softmax_cross_entropy_with_integer_labels",
             "sparse_softmax", _integer_ce, exact_sparse_softmax_cross_entropy, _gradient_integer,
             {"axis": None}),
    _binding("optax.sigmoid_binary_cross_entropy", "optax.sigmoid_binary_cross_entropy", "sigmoid", _sigmoid_ce,
             exact_sigmoid_cross_entropy, _gradient_sigmoid),
    _binding("nn.log_softmax(soft_labels)", "-sum(labels * jax.nn.log_softmax(logits))", "softmax",
             _log_softmax_soft, exact_softmax_cross_entropy, _gradient_soft, {"axis": None}, doc=LOG_SOFTMAX_DOCS),
    _binding("nn.log_softmax(integer_labels)", "-take_along_axis(jax.nn.log_softmax(logits), labels)",
             "sparse_softmax", _log_softmax_integer, exact_sparse_softmax_cross_entropy, _gradient_integer,
             {"axis": None}, doc=LOG_SOFTMAX_DOCS),
]
