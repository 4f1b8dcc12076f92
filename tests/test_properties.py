"""Property-based conformance: invariants that must hold in every framework.

Problems are drawn by :mod:`conformance.strategies` (ordinary, wide and
tie-heavy logits; labels in [0, 1]); the invariants live in
:mod:`conformance.properties`. Agreement with the reference runs in all four
dtypes, the invariants in float32 and float64. The hypothesis profile (ci,
dev, thorough) sets the number of examples: see conftest.py and the README.
Ids carry the framework label, so ``-k torch`` selects torch's properties.
"""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from conformance import properties, strategies
from conformance.bindings import AS_CALLED, family_of, load_bindings

pytestmark = pytest.mark.property


@pytest.fixture(autouse=True)
def region_tally(request):
    """How many examples each known divergence's region held to a weaker bound or left out, in the item's
    report (the property report sums them)."""
    properties.TALLY.clear()
    yield
    tally = {("examples" if key == "examples" else f"{key[0]}: {key[1]}"): count
             for key, count in properties.TALLY.items()}
    request.node.user_properties.append(("region_tally", tally))
# the as-called forms run the pinned forms' kernels with the framework's own
# reduction and dtype handling, which the cases check; the invariants are the
# kernels', so they are drawn once per kernel
BINDINGS = {binding_id: binding for binding_id, binding in load_bindings().items()
            if AS_CALLED not in binding.markers}
DTYPES = ("float16", "bfloat16", "float32", "float64")
INVARIANT_DTYPES = ("float32", "float64")


def _ids(pairs):
    return [f"{binding}-{dtype}" for binding, dtype in pairs]


def _cases(select, dtypes=INVARIANT_DTYPES):
    pairs = [(binding_id, dtype) for binding_id, binding in BINDINGS.items() if select(binding) for dtype in dtypes
             if dtype in binding.dtypes]
    return pytest.mark.parametrize("binding_id, dtype", pairs, ids=_ids(pairs))


def _binding(binding_id, dtype=None):
    binding = BINDINGS[binding_id]
    missing = binding.missing_requirement() or binding.left_out(dtype) or binding.notes.get("properties")
    if missing:
        pytest.skip(missing)
    return binding


def _pair_cases(pairs):
    expanded = [(first, second, dtype) for first, second in pairs for dtype in INVARIANT_DTYPES]
    ids = [f"{first}=={second.split(':', 1)[1]}-{dtype}" for first, second, dtype in expanded]
    return pytest.mark.parametrize("first_id, second_id, dtype", expanded, ids=ids)


def _shapes(binding, *partners):
    """The shapes every binding of a property draws (see Binding.property_shapes)."""
    return binding.property_shapes.shared(*(partner.property_shapes for partner in partners))


def _problems(binding, dtype, *partners):
    return strategies.problems(binding.family, dtype, shapes=_shapes(binding, *partners))


def _class_problems(binding, dtype, regime=None, *partners):
    return strategies.class_problems(binding.family, dtype, regime, shapes=_shapes(binding, *partners))


def _class_logits(binding):
    return family_of(binding.family).softmax


@_cases(lambda binding: True, DTYPES)
@given(data=st.data())
def test_agrees_with_reference(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    properties.agrees_with_reference(binding, data.draw(_problems(binding, dtype)))


@_cases(_class_logits)
@given(data=st.data())
def test_shift_invariance(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    problem = data.draw(_class_problems(binding, dtype, data.draw(st.sampled_from(["ordinary", "ties"]))))
    shift = data.draw(st.integers(-16, 16))
    properties.shift_invariant(binding, problem, shift)


@_cases(_class_logits)
@given(data=st.data())
def test_permutation_equivariance(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    problem = data.draw(_class_problems(binding, dtype))
    permutation = np.asarray(data.draw(st.permutations(range(problem.inputs["logits"].shape[-1]))))
    properties.permutation_equivariant(binding, problem, permutation)


SPARSE_DENSE = [
    ("tensorflow:nn.sparse_softmax_cross_entropy_with_logits", "tensorflow:nn.softmax_cross_entropy_with_logits"),
    ("tensorflow:keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
     "tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)"),
    ("tensorflow:keras.losses.sparse_categorical_crossentropy(from_logits=True)",
     "tensorflow:keras.losses.categorical_crossentropy(from_logits=True)"),
    ("tensorflow:keras.metrics.SparseCategoricalCrossentropy(from_logits=True)",
     "tensorflow:keras.metrics.CategoricalCrossentropy(from_logits=True)"),
    ("torch:nn.functional.cross_entropy", "torch:nn.functional.cross_entropy(probability_targets)"),
    ("torch:nn.CrossEntropyLoss", "torch:nn.CrossEntropyLoss(probability_targets)"),
    ("torch:nn.functional.nll_loss(log_softmax)", "torch:nn.functional.cross_entropy(probability_targets)"),
    ("paddle:nn.functional.cross_entropy", "paddle:nn.functional.cross_entropy(soft_label=True)"),
    ("paddle:nn.functional.softmax_with_cross_entropy",
     "paddle:nn.functional.softmax_with_cross_entropy(soft_label=True)"),
]


@_pair_cases(SPARSE_DENSE)
@given(data=st.data())
def test_sparse_equals_one_hot(first_id, second_id, dtype, data):
    sparse, dense = _binding(first_id, dtype), _binding(second_id, dtype)
    properties.sparse_equals_dense(sparse, dense, data.draw(_class_problems(sparse, dtype, None, dense)))


SIGMOID_SOFTMAX = [
    ("tensorflow:nn.sigmoid_cross_entropy_with_logits", "tensorflow:nn.softmax_cross_entropy_with_logits"),
    ("tensorflow:nn.weighted_cross_entropy_with_logits", "tensorflow:nn.softmax_cross_entropy_with_logits"),
    ("tensorflow:keras.losses.BinaryCrossentropy(from_logits=True)",
     "tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)"),
    ("tensorflow:keras.losses.binary_crossentropy(from_logits=True)",
     "tensorflow:keras.losses.categorical_crossentropy(from_logits=True)"),
    ("torch:nn.functional.binary_cross_entropy_with_logits", "torch:nn.functional.cross_entropy(probability_targets)"),
    ("torch:nn.BCEWithLogitsLoss", "torch:nn.CrossEntropyLoss(probability_targets)"),
    ("paddle:nn.functional.binary_cross_entropy_with_logits", "paddle:nn.functional.cross_entropy(soft_label=True)"),
]


@_pair_cases(SIGMOID_SOFTMAX)
@given(data=st.data())
def test_sigmoid_is_two_class_softmax(first_id, second_id, dtype, data):
    sigmoid, softmax = _binding(first_id, dtype), _binding(second_id, dtype)
    problem = data.draw(strategies.sigmoid_problems(dtype, shapes=_shapes(sigmoid, softmax)))
    properties.sigmoid_is_two_class_softmax(sigmoid, softmax, problem)


def _smoothing_partner(binding):
    """The binding computing the loss on uniform labels: itself, or for class indices the same API's soft-label
    form (torch's probability targets, Paddle's soft_label), else its framework's one loss on probabilities
    (tinygrad's cross_entropy for its sparse_categorical_crossentropy); never the class-index binding itself."""
    if not family_of(binding.family).indices:
        return binding
    label = binding.id.replace("(log_softmax)", "")
    candidates = [label + "(probability_targets)", label + "(soft_label=True)"]
    if "(" in label:
        candidates.append(label.replace("(", "(soft_label=True,", 1))
    for candidate in candidates:
        if candidate in BINDINGS:
            return BINDINGS[candidate]
    soft_family = properties.SOFT_LABEL_FAMILY[binding.family]
    others = [other for other in BINDINGS.values() if other.framework == binding.framework
              and other.family == soft_family]
    if len(others) != 1:
        raise LookupError(f"{binding.id}: no binding of {binding.framework} computes its loss on uniform labels "
                          f"(found {[other.id for other in others]})")
    return others[0]


@_cases(lambda binding: "label_smoothing" in binding.options and not binding.opt_in)
@given(data=st.data())
def test_label_smoothing_is_a_mix(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    problem = data.draw(_problems(binding, dtype))
    smoothing = data.draw(st.sampled_from(binding.property_label_smoothing))
    properties.label_smoothing_mixes(binding, problem, smoothing, _smoothing_partner(binding))


FOCAL_PLAIN = [
    (f"tensorflow:keras.losses.{focal}{suffix}", f"tensorflow:keras.losses.{plain}{suffix}")
    for focal, plain in (("BinaryFocalCrossentropy", "BinaryCrossentropy"),
                         ("binary_focal_crossentropy", "binary_crossentropy"),
                         ("CategoricalFocalCrossentropy", "CategoricalCrossentropy"),
                         ("categorical_focal_crossentropy", "categorical_crossentropy"))
    for suffix in ("", "(from_logits=True)")
]


@_pair_cases(FOCAL_PLAIN)
@given(data=st.data())
def test_focal_with_gamma_zero_is_plain(first_id, second_id, dtype, data):
    focal, plain = _binding(first_id, dtype), _binding(second_id, dtype)
    properties.focal_without_focus_is_plain(focal, plain, data.draw(_problems(focal, dtype, plain)))


def _reduces(binding):
    allowed = binding.options.get("reduction")
    return "reduction" in binding.options and (allowed is None or {"none", "sum"} <= set(allowed))


@_cases(_reduces)
@given(data=st.data())
def test_sum_is_the_sum_of_none(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    properties.sum_is_sum_of_none(binding, data.draw(_problems(binding, dtype)))


def _weighted_mean(binding):
    if "weight" in binding.options:  # torch's class weights; probability targets divide by N instead
        return binding.family == "sparse_softmax"
    # Keras 3 names it mean_with_sample_weight; Keras 2 has no such reduction
    return "sample_weight" in binding.options and binding.unsupported_option(
        "reduction", "mean_with_sample_weight") is None


@_cases(_weighted_mean)
@given(data=st.data())
def test_mean_is_weighted_sum_over_weights(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    problem = data.draw(_problems(binding, dtype))
    prediction = problem.inputs["logits" if "logits" in problem.inputs else "probs"]
    if "weight" in binding.options:
        count = prediction.shape[-1]
    else:  # one weight per value of the loss
        count = prediction.shape[0]
    # a mean needs at least two values: Keras returns a lone loss value unreduced (cases/behaviour.yaml)
    assume(prediction.ndim > 1 and prediction.shape[0] > 1 or "weight" in binding.options)
    weights = np.asarray(data.draw(st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0]), min_size=count,
                                            max_size=count)), dtype=problem.dtype)
    if "weight" not in binding.options and prediction.ndim > 2:
        weights = np.broadcast_to(weights.reshape((count,) + (1,) * (prediction.ndim - 2)),
                                  prediction.shape[:-1]).copy()
    properties.mean_is_weighted_sum_over_weights(binding, problem, weights)


@_cases(lambda binding: True)
@given(data=st.data())
def test_non_negative(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    properties.non_negative(binding, data.draw(_problems(binding, dtype)))


@_cases(lambda binding: True)
@given(data=st.data())
def test_finite_where_the_loss_is(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    properties.finite_where_the_loss_is(binding, data.draw(_problems(binding, dtype)))


@_cases(lambda binding: _class_logits(binding) and "gamma" not in binding.options)
@given(data=st.data())
def test_at_least_minus_log_max_probability(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    properties.at_least_minus_log_max_probability(binding, data.draw(_class_problems(binding, dtype)))


@_cases(lambda binding: _class_logits(binding) and binding.gradient is not None)
@given(data=st.data())
def test_gradient_sums_to_zero(binding_id, dtype, data):
    binding = _binding(binding_id, dtype)
    properties.gradient_sums_to_zero(binding, data.draw(_class_problems(binding, dtype)))
