"""Bindings: one declarative entry per framework API, and where they come from.

A binding says which API it is, which loss family it computes, which dtypes and
options it takes, how to call the framework (``call``), and which documented
convention of the reference it is held to: by name (``convention``, the dotted
names of the reference's functions that state it, such as
``reference.conventions.torch.cross_entropy``), and ``reference``, which computes
that convention on a case's inputs. Adapter modules
(``conformance/frameworks/<name>.py``, or a third party's module) expose a
``BINDINGS`` list and never import their framework at module level, so that
collecting the suite imports no framework at all.

Modules are found in three places, in this order: the built-in adapters, the
``xent_conformance.bindings`` entry-point group (each entry point names a
module), and ``--bindings MODULE`` on the command line.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from conformance import devices as device_names

BUILTIN_MODULES = (
    "conformance.frameworks.tensorflow",
    "conformance.frameworks.torch",
)
ENTRY_POINT_GROUP = "xent_conformance.bindings"
# the marker and id word of a binding of an API as users write it: default
# arguments, the framework's own reduction and dtype handling
AS_CALLED = "as_called"


def as_called_label(label: str) -> str:
    """The label of a pinned form's as-called form: ``as_called`` joins its parenthesised options, or opens them
    (``nn.CrossEntropyLoss(probability_targets)`` -> ``...(probability_targets,as_called)``, ``nn.BCELoss`` ->
    ``nn.BCELoss(as_called)``)."""
    return label[:-1] + f",{AS_CALLED})" if label.endswith(")") else f"{label}({AS_CALLED})"


@dataclass(frozen=True)
class Family:
    """A loss family: what its prediction is and what its labels are. The one definition code asks when it needs
    to know whether a family computes a softmax, takes class indices or is elementwise, rather than naming
    families. ``labels``: "soft" (a distribution along the class axis), "indices" (integer classes) or
    "elementwise" (a label in [0, 1] per element)."""

    name: str
    prediction: str  # the prediction input's name: "logits" or "probs"
    labels: str
    description: str

    @property
    def logits(self) -> bool:
        return self.prediction == "logits"

    @property
    def soft(self) -> bool:
        return self.labels == "soft"

    @property
    def indices(self) -> bool:
        return self.labels == "indices"

    @property
    def elementwise(self) -> bool:
        return self.labels == "elementwise"

    @property
    def softmax(self) -> bool:
        """A softmax over classes from logits (soft labels or class indices)."""
        return self.logits and not self.elementwise


FAMILIES = {family.name: family for family in (
    Family("softmax", "logits", "soft", "soft labels along the class axis"),
    Family("sparse_softmax", "logits", "indices", "integer class labels"),
    Family("sigmoid", "logits", "elementwise", "labels in [0, 1], elementwise"),
    Family("binary_probs", "probs", "elementwise", "labels in [0, 1], elementwise"),
    Family("categorical_probs", "probs", "soft", "soft labels along the class axis"),
    Family("sparse_categorical_probs", "probs", "indices", "integer class labels"),
)}


def family_of(name: str) -> Family:
    """The family named ``name`` (a case's or binding's ``family``)."""
    return FAMILIES[name]


def prediction_name(family: str) -> str:
    """'logits' or 'probs': the name of the prediction input of a family."""
    return FAMILIES[family].prediction


@dataclass(frozen=True)
class Problem:
    """One concrete computation: inputs already rounded to ``dtype``."""

    family: str
    inputs: Mapping[str, np.ndarray]
    options: Mapping[str, Any]
    dtype: str
    # where the framework computes (conformance.devices); the reference ignores it
    device: str = device_names.DEFAULT

    @property
    def prediction(self) -> np.ndarray:
        return self.inputs[prediction_name(self.family)]

    @property
    def labels(self) -> np.ndarray:
        return self.inputs["labels"]

    @property
    def axis(self) -> int:
        return int(self.options.get("axis", -1))


@dataclass(frozen=True)
class PropertyShapes:
    """The shapes the property tests draw for one binding: each dimension's size among ``sizes`` and the
    rank among ``ranks``, within what each property allows (None: every batch size from 1 to 4, every class
    count up to 7, every rank). For a framework that compiles per shape: what the properties vary is the
    values, and the cases hold the other shapes."""

    sizes: tuple[int, ...] | None = None
    ranks: tuple[int, ...] | None = None

    def shared(self, *others: "PropertyShapes") -> "PropertyShapes":
        """The shapes that this and ``others`` all draw (a property of several bindings)."""
        def common(pools):
            named = [set(pool) for pool in pools if pool is not None]
            return tuple(sorted(set.intersection(*named))) if named else None

        every = (self, *others)
        return PropertyShapes(common(shapes.sizes for shapes in every), common(shapes.ranks for shapes in every))


@dataclass(frozen=True)
class Binding:
    """A framework API under test. ``call`` and ``reference`` take a Problem;
    ``call`` returns the framework's output as a NumPy array in the dtype the
    framework returned, ``reference`` the documented convention's value in
    extended precision. ``reduce`` maps per-element values of the family (one
    per example, or per element for binary losses) to the binding's output by
    the binding's own weighting and reduction; the tolerance model uses it to
    carry each element's intermediate scale into a reduced output."""

    id: str
    api: str
    framework: str
    family: str
    call: Callable[[Problem], np.ndarray]
    reference: Callable[[Problem], np.ndarray]
    dtypes: frozenset
    options: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    reduce: Callable[[np.ndarray, Problem], np.ndarray] | None = None
    requires: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    doc: str = ""
    notes: Mapping[str, str] = field(default_factory=dict)
    # the documented convention by name: the dotted names of the functions of ``reference`` that state it, the
    # values first, then the reduction where the binding reduces (``reference.conventions.keras.reduce_loss``);
    # ``reference`` computes it on a Problem (a self-test proves that it calls each function named)
    convention: tuple[str, ...] = ()
    # d sum(output) / d input by the framework's autodiff, by input name; and the
    # exact gradient as {name: (gradient, scale)} (see reference.gradients)
    gradient: Callable[[Problem], Mapping[str, np.ndarray]] | None = None
    reference_gradient: Callable[[Problem], Mapping[str, tuple]] | None = None
    # the per-element intermediate scale, where the family's does not fit the
    # binding's algorithm (see conformance.tolerance)
    scale: Callable[[Problem], np.ndarray] | None = None
    # applies only to cases whose ``bindings`` filter names it (not by framework
    # label alone): for APIs that need options a plain case does not set
    opt_in: bool = False
    # every operation rounds to the output dtype (Keras' dtype policy), not
    # only the last: the tolerance model doubles K in half precision for it
    computes_in_output_dtype: bool = False
    # the dtype the documented convention computes in (its inputs are rounded
    # to it first) and the dtype of its result: one dtype, or one per input
    # dtype (absent: the input dtype); None: the input dtype. Keras objects
    # built without dtype= compute in and return floatx() (float32); torch's
    # autocast computes float16 and bfloat16 in float32 and leaves float64.
    compute_dtype: str | Mapping[str, str] | None = None
    result_dtype: str | Mapping[str, str] | None = None
    # the top-level modules whose distributions' versions decide this binding's
    # numbers (the reports print them); empty: those of ``requires``
    versions_of: tuple[str, ...] = ()
    # the pyproject extra that installs ``requires`` (the skip hint names it); empty: the framework label
    extra: str = ""
    # the shapes the property tests draw, for a framework that compiles per shape: torch.compile builds a
    # graph for each size 0 or 1, rank and, with label_smoothing, class count, so its properties draw the
    # cases' ones; JAX's jit compiles every new shape (tens of ms), so its properties draw a few
    property_shapes: PropertyShapes = PropertyShapes()
    # the label_smoothing values the label-smoothing property draws from: the identity holds for every value,
    # and a compiled form compiles a graph for each one (torch specialises on it), so it draws the cases' 0.1
    property_label_smoothing: tuple[float, ...] = (0.05, 0.1, 0.3)
    # work that can be done ahead, in another process, to make the checks' calls cheap: a call whose
    # framework caches what it builds on disk (torch.compile's graphs); see conformance.prepare
    prepare: Callable[[Problem], Any] | None = None
    # dtypes of ``dtypes`` this run leaves out by choice, and how to run them (an environment switch, for a
    # framework whose every check costs more than its place in the default run allows): their checks skip with
    # ``left_out_reason`` and count as checks that run when a known divergence's patterns are judged stale, so
    # an entry measured with the switch on stays live without it
    left_out_dtypes: frozenset = frozenset()
    left_out_reason: str = ""
    # the devices its adapter places the inputs on and confirms the result came from (fnmatch patterns of
    # conformance.devices' names); the default, cpu only, is an adapter that places nothing
    devices: tuple[str, ...] = (device_names.DEFAULT,)

    def version_modules(self) -> tuple[str, ...]:
        return self.versions_of or tuple(module.split(".")[0] for module in self.requires)

    def compute_dtype_for(self, dtype: str) -> str | None:
        """The dtype the binding documents computing ``dtype`` inputs in (None: not stated)."""
        return _per_dtype(self.compute_dtype, dtype)

    def result_dtype_for(self, dtype: str) -> str:
        """The dtype the binding documents for its result on ``dtype`` inputs."""
        return _per_dtype(self.result_dtype, dtype) or self.compute_dtype_for(dtype) or dtype

    def unsupported_option(self, name: str, value: Any, any_value: bool = False) -> str | None:
        """Why this binding cannot take ``name=value``, or None if it can. A
        limitation cites where it is documented (the API's page, or the
        behaviour case that pins what the API does instead). ``any_value``: only
        whether the API has the option at all (a behaviour case passes values
        the value checks avoid, to record what happens)."""
        where = f" (documented signature: {self.doc})" if self.doc else ""
        if name not in self.options:
            return self.notes.get(name, f"{self.api} has no option {name!r}{where}")
        allowed = self.options[name]
        if any_value or allowed is None or value in allowed or (isinstance(value, str) and value == "default"):
            return None
        return self.notes.get(name, f"{self.api} does not take {name}={value!r} (takes "
                                    f"{sorted(map(str, allowed))}){where}")

    def left_out(self, dtype: str | None = None) -> str | None:
        """Why this run leaves ``dtype`` (None: every declared dtype) out by choice, or None."""
        wanted = self.dtypes if dtype is None else {dtype}
        return self.left_out_reason if wanted and set(wanted) <= set(self.left_out_dtypes) else None

    def unsupported_device(self, device: str) -> str | None:
        """Why this binding does not run on ``device``, or None."""
        if device_names.supports(self.devices, device):
            return None
        return self.notes.get("device", f"{self.api} runs on {', '.join(self.devices)} only (declared in its "
                                        f"binding: its adapter places no input on {device})")

    def missing_requirement(self) -> str | None:
        """Why this binding's framework cannot run here, or None."""
        for module in self.requires:
            if not _importable(module.split(".")[0]):
                return f"{module} is not installed (pip install -e '.[{self.extra or self.framework}]' -c constraints.txt)"
        return None


@functools.lru_cache(maxsize=None)
def _importable(top_level: str) -> bool:
    """Whether a top-level module can be imported, asked once per process (tens of thousands of checks ask)."""
    return importlib.util.find_spec(top_level) is not None


def _per_dtype(declared, dtype: str) -> str | None:
    if isinstance(declared, Mapping):
        return declared.get(dtype)
    return declared


class BindingError(RuntimeError):
    """A bindings module that cannot be loaded or declares something invalid."""


def _bindings_of(module_name: str) -> list[Binding]:
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the message must name the module
        raise BindingError(f"cannot import bindings module {module_name!r}: {error}") from error
    declared = getattr(module, "BINDINGS", None)
    if not isinstance(declared, (list, tuple)) or not all(isinstance(b, Binding) for b in declared):
        raise BindingError(f"bindings module {module_name!r} must define BINDINGS, a list of Binding")
    for binding in declared:
        if binding.family not in FAMILIES:
            raise BindingError(f"{binding.id}: unknown family {binding.family!r}")
        if ":" not in binding.id or not binding.id.startswith(binding.framework + ":"):
            raise BindingError(f"{binding.id}: a binding id is '<framework>:<api>'")
        if not binding.convention or isinstance(binding.convention, str):
            raise BindingError(f"{binding.id}: convention must name the reference's functions that state the "
                               f"documented convention, as a tuple of dotted names (got {binding.convention!r})")
        for name in binding.convention:
            convention_function(name, binding.id)
    return list(declared)


def convention_function(name: str, binding_id: str = "") -> Callable:
    """The function of the reference that a binding's ``convention`` names (``reference.conventions.keras.
    categorical_crossentropy``)."""
    module, _, attribute = name.rpartition(".")
    who = f"{binding_id}: " if binding_id else ""
    if module.split(".")[0] != "reference":
        raise BindingError(f"{who}convention {name!r} is not a function of the reference (reference.*)")
    try:
        function = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise BindingError(f"{who}convention {name!r} names no function of the reference: {error}") from error
    if not callable(function):
        raise BindingError(f"{who}convention {name!r} is not a function")
    return function


def entry_point_modules() -> list[str]:
    return [entry.value for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]


def load_bindings(extra_modules=()) -> dict[str, Binding]:
    """Every binding by id: built-ins, entry points, then ``extra_modules``."""
    found: dict[str, Binding] = {}
    modules = list(BUILTIN_MODULES) + entry_point_modules() + list(extra_modules)
    for module_name in dict.fromkeys(modules):
        for binding in _bindings_of(module_name):
            if binding.id in found:
                raise BindingError(f"binding id {binding.id!r} is declared twice (again in {module_name})")
            found[binding.id] = binding
    return found


@functools.lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions(module: str) -> list[str]:
    """The installed distributions that provide a top-level module
    ('tensorflow' -> ['tensorflow-cpu'] here); [] when none is installed."""
    names = _module_distributions().get(module, [])
    return sorted(dict.fromkeys(re.sub(r"[-_.]+", "-", name).lower() for name in names))


def selection_words(bindings) -> tuple[str, ...]:
    """Every framework label and marker of the loaded bindings: the words
    ``-k`` and ``-m`` select them by (registered as markers; refused in case ids)."""
    words = {binding.framework for binding in bindings.values()}
    words.update(marker for binding in bindings.values() for marker in binding.markers)
    return tuple(sorted(words))
