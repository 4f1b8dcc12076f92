"""torch.compile and torch.autocast: what compiled and mixed-precision training loops compute.

Two more forms of torch's functional losses (``cross_entropy`` with class
indices and with probability targets, ``binary_cross_entropy``,
``binary_cross_entropy_with_logits``), each held to the same documented
convention as the eager form (:mod:`reference.conventions.torch`):

* ``torch:compile.<api>``: ``torch.compile`` with the inductor backend (C++
  code built by g++ on CPU), ``dynamic=True`` and ``fullgraph=True``. One
  compiled function per loss serves every case: shapes are symbolic, and
  ``weight`` and ``ignore_index`` are always passed to class-index and binary
  losses (ones and -100, their documented defaults, where a case sets none), as
  a tensor and an unspecialised int, and ``pos_weight`` as ones to the binary
  loss with logits where the targets are finite (``(pos_weight - 1) * y + 1``
  is then exactly 1, the unweighted loss; an infinite target would make it
  NaN), so only a new rank, dtype, reduction,
  size-0/1 pattern or ``label_smoothing`` value compiles again (the recompile limit is raised so
  that dynamo never falls back to eager without saying so); the property tests
  draw rank 2 and sizes 2 to 4 (``property_shapes``) and the cases' ``label_smoothing`` of 0.1
  (``property_label_smoothing``), and so build no graph the cases do not (22 when
  they drew every size from 2 and ranks 2 and 3). In a
  plain ``pytest`` the compiled forms' items run last, and a background process
  builds their graphs ahead, from the last check backwards, on the core the run
  leaves idle, from the start of the run (``conformance.prepare``); duck shaping
  is off and the options go in one keyword order, so that the graphs built are
  the same whichever order the checks come in. The value is computed as a
  training loop computes it, from an input that requires grad, so that the
  value check and the gradient check share one compiled graph; the gradient is
  AOTAutograd's compiled backward. Inductor caches what it builds on disk
  (``TORCHINDUCTOR_CACHE_DIR``, by default under the system's temporary
  directory): a first run compiles each graph (about 2.8 s on this project's
  2-core machine), later runs load them.
* ``torch:autocast.<api>``: the eager call under ``torch.autocast("cpu",
  dtype=torch.bfloat16)``. torch documents these losses on autocast's float32
  list: float16 and bfloat16 inputs are computed, and returned, in float32;
  float32 and float64 stay as they are.

``-k compile`` and ``-k autocast`` select them (markers ``compile`` and
``autocast``). Registered through the ``xent_conformance.bindings`` entry point
(pyproject.toml); torch is imported only when a check runs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from conformance.bindings import Binding, Problem, PropertyShapes
from conformance.frameworks import torch as eager

COMPILE_DOCS = "https://docs.pytorch.org/docs/2.13/generated/torch.compile.html"
AUTOCAST_DOCS = "https://docs.pytorch.org/docs/2.13/amp.html#cpu-ops-that-can-autocast-to-float32"
# more distinct (rank, dtype, option value) signatures than the suite has cases
RECOMPILE_LIMIT = 4096
# the property tests' shapes: no size 0 or 1 (each a graph of its own), with label_smoothing the class counts
# of the cases that pass it (2, 3 and 4), and rank 2, at which the cases pass every reduction and option
PROPERTY_SHAPES = PropertyShapes(sizes=(2, 3, 4), ranks=(2,))
# torch.nn.functional.cross_entropy's documented default
IGNORE_INDEX_DEFAULT = -100
# autocast's float32 list: half precision is computed and returned in float32, float64 untouched
AUTOCAST_COMPUTE_DTYPES = {"float16": "float32", "bfloat16": "float32"}

# CUDA's autocast is another form (float16 by default, its own op lists), not this one on another device
AUTOCAST_DEVICE_NOTE = ("torch.autocast('cpu', torch.bfloat16) is CPU autocast: CUDA's autocast "
                        "(torch.autocast('cuda'), float16 by default, its own lists of ops) is another form")
# eager binding id -> (the functional loss, the option names it takes)
LOSSES = {
    "torch:nn.functional.cross_entropy": ("cross_entropy", eager.CROSS_ENTROPY_OPTIONS),
    "torch:nn.functional.cross_entropy(probability_targets)": ("cross_entropy", eager.CROSS_ENTROPY_OPTIONS),
    "torch:nn.functional.binary_cross_entropy": ("binary_cross_entropy", eager.BCE_OPTIONS),
    "torch:nn.functional.binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits",
                                                             eager.BCE_LOGITS_OPTIONS),
}
_COMPILED: dict = {}


def _compiled(loss: str):
    """One compiled function per loss for the whole run (torch.compile caches its graphs on it). The tensor
    options are parameters of their own: dynamo treats a tensor inside ``**kwargs`` as static, so a
    weight passed there would compile again for every class count."""
    if loss not in _COMPILED:
        torch = eager._torch()
        import torch._dynamo

        torch._dynamo.config.recompile_limit = RECOMPILE_LIMIT
        torch._dynamo.config.accumulated_recompile_limit = RECOMPILE_LIMIT
        function = getattr(torch.nn.functional, loss)

        def loss_of(x, target, weight=None, pos_weight=None, **options):
            if pos_weight is not None:
                options["pos_weight"] = pos_weight
            return function(x, target, weight=weight, **options)

        _COMPILED[loss] = torch.compile(loss_of, dynamic=True, fullgraph=True)
    return _COMPILED[loss]


def _graphs_independent_of_call_order():
    """The graphs a run builds are then the same whichever order it meets the cases in, so that those the
    work done ahead builds, in another order (``conformance.prepare``), are the ones the run asks for. Two
    things made them differ: duck shaping (sizes of equal value share a symbol, named after the first
    source to have that value: the same graph got other symbol names, and another inductor cache key, by
    which case compiled it) and the options' keyword order (dynamo lays out a graph's inputs in the first
    call's order and does not guard on it; the caller passes them sorted). Measured over the compiled
    checks with a recording backend: 27 of the 238 graphs the run meets were not among those a reverse walk
    builds; with both causes removed, none. Duck shaping only merges symbols, so the code computes the same."""
    import torch.fx.experimental._config as shapes

    return shapes.patch(use_duck_shape=False)


def _arguments(problem: Problem, names):
    return eager.tensor(eager._target(problem)), eager._tensor_options(problem, names)


def _with_documented_defaults(problem: Problem, x, options: dict, names) -> dict:
    """``weight`` always passed, as ones where the case sets none, and ``ignore_index`` as -100: the values
    torch documents as their defaults, so the loss is the same, and as a tensor and an unspecialised int
    they let one graph serve cases with and without them (a None weight or an absent ignore_index is a
    graph of its own for every rank, dtype and reduction); ``pos_weight`` as ones likewise, which leaves
    ``(pos_weight - 1) * y + 1`` exactly 1 for a finite target. Not for probability targets, where a class
    weight makes torch specialise the graph on the class count, and not for integer inputs, whose
    behaviour entries record what torch does with them."""
    torch = eager._torch()
    if not hasattr(x, "is_floating_point") or not x.is_floating_point() or problem.family == "softmax":
        return options
    options = dict(options)
    if "weight" in names and "weight" not in options:
        options["weight"] = torch.ones(_weight_shape(problem, x), dtype=x.dtype, device=x.device)
    if "pos_weight" in names and "pos_weight" not in options and _all_finite(problem.labels):
        options["pos_weight"] = torch.ones(_weight_shape(problem, x), dtype=x.dtype, device=x.device)
    if "ignore_index" in names and "ignore_index" not in options:
        options["ignore_index"] = IGNORE_INDEX_DEFAULT
    return options


def _weight_shape(problem: Problem, x) -> tuple:
    """A class weight's shape for class indices; for the binary losses a row of the last axis, which
    broadcasts as the elementwise weight does and is the shape the cases' weights have, so that one graph
    serves a case with and without a weight (a full-shape weight is a rank, and a graph, of its own)."""
    if x.dim() == 0:
        return ()
    return (x.shape[1 if x.dim() > 1 and problem.family == "sparse_softmax" else -1],)


def _all_finite(values) -> bool:
    return bool(np.isfinite(np.asarray(values, dtype=float)).all())


def _compiled_forward(loss: str, names):
    def forward(problem: Problem, x):
        target, options = _arguments(problem, names)
        # contiguous, as a training loop's batches are: a case whose class axis was moved would otherwise
        # hand dynamo a strided view, and every stride pattern is a graph of its own
        x, target = (value.contiguous() if hasattr(value, "contiguous") else value for value in (x, target))
        options = _with_documented_defaults(problem, x, options, names)
        with _graphs_independent_of_call_order():
            return _compiled(loss)(x, target, **{name: options[name] for name in sorted(options)})

    return forward


def _autocast_forward(loss: str, names):
    def forward(problem: Problem, x):
        torch = eager._torch()
        target, options = _arguments(problem, names)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return getattr(torch.nn.functional, loss)(x, target, **options)

    return forward


def _training_caller(forward):
    """The value as a training loop computes it: from an input that requires
    grad, so that the value and the gradient checks share one compiled graph."""

    def call(problem: Problem):
        with eager.on(problem.device):
            x = eager.tensor(eager._prediction(problem))
            if hasattr(x, "requires_grad_") and x.is_floating_point():
                x.requires_grad_(True)
            return eager.to_numpy(forward(problem, x))

    return call


def _form(binding: Binding, prefix: str, api: str, forward, doc: str, marker: str, **changes) -> Binding:
    label = binding.id.split(":", 1)[1]
    return dataclasses.replace(
        binding, id=f"torch:{prefix}.{label}", api=api, call=_training_caller(forward),
        gradient=eager._autograd(forward), doc=doc, markers=(*binding.markers, marker), **changes)


def _forms() -> list[Binding]:
    from conformance.frameworks.torch import BINDINGS as EAGER

    by_id = {binding.id: binding for binding in EAGER}
    forms = []
    for binding_id, (loss, names) in LOSSES.items():
        binding = by_id[binding_id]
        compiled = _form(binding, "compile", f"torch.compile({binding.api})", _compiled_forward(loss, names),
                         COMPILE_DOCS, "compile", property_shapes=PROPERTY_SHAPES,
                         property_label_smoothing=(0.1,))
        # built ahead (conformance.prepare): the call compiles the forward and the backward graph into
        # inductor's on-disk cache, where the check's own call then finds them
        forms.append(dataclasses.replace(compiled, prepare=compiled.call))
        forms.append(_form(binding, "autocast", f"torch.autocast('cpu', torch.bfloat16): {binding.api}",
                           _autocast_forward(loss, names), AUTOCAST_DOCS, "autocast",
                           compute_dtype=AUTOCAST_COMPUTE_DTYPES, devices=("cpu",),
                           notes={**binding.notes, "device": AUTOCAST_DEVICE_NOTE}))
    return forms


BINDINGS = _forms()

