"""Self-tests: every property fails on a deliberately wrong implementation.

Each mutant is a real binding with its framework call replaced by NumPy code
built on the binding's own reference, then bent in one way; hypothesis must
find an input on which the property breaks. The unbent implementation (the
reference rounded to the dtype) passes each property, so a failure below is
the property's doing. No framework is imported here.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import Phase, given, settings, strategies as st

from conformance import properties, strategies
from conformance.bindings import PropertyShapes, load_bindings
from reference import core

pytestmark = pytest.mark.selftest
BINDINGS = load_bindings()
CE = "torch:nn.functional.cross_entropy"
CE_PROBS = "torch:nn.functional.cross_entropy(probability_targets)"
BCE_LOGITS = "torch:nn.functional.binary_cross_entropy_with_logits"
FOCAL = "tensorflow:keras.losses.binary_focal_crossentropy"
PLAIN = "tensorflow:keras.losses.binary_crossentropy"
SEARCH = settings(max_examples=30, derandomize=True, database=None, deadline=None)
# a mutant needs one failing example, not the smallest: shrinking it was most of these tests' time
FIND = settings(SEARCH, phases=[Phase.explicit, Phase.reuse, Phase.generate])


def exact(binding_id, bend=lambda problem, value: value):
    """The binding computed by its reference, rounded to the dtype, then bent."""
    binding = BINDINGS[binding_id]

    def call(problem):
        value = np.asarray(binding.reference(problem), dtype=np.float64)
        return np.asarray(bend(problem, value), dtype=np.float64).astype(problem.dtype)

    def gradient(problem):
        return {name: np.asarray(grad, dtype=np.float64).astype(problem.dtype)
                for name, (grad, _) in binding.reference_gradient(problem).items()}

    return dataclasses.replace(binding, call=call, gradient=gradient if binding.reference_gradient else None)


def must_fail(check, strategy):
    @FIND
    @given(strategy)
    def search(drawn):
        check(drawn)

    with pytest.raises(AssertionError):
        search()


def must_pass(check, strategy):
    @SEARCH
    @given(strategy)
    def search(drawn):
        check(drawn)

    search()


def test_agreement_catches_a_relative_error_of_1e5():
    strategy = strategies.class_problems("sparse_softmax", "float32", "ordinary")
    must_pass(lambda p: properties.agrees_with_reference(exact(CE), p), strategy)
    must_fail(lambda p: properties.agrees_with_reference(exact(CE, lambda q, v: v * (1 + 1e-5)), p), strategy)


def test_shift_invariance_catches_a_loss_that_moves_with_the_logits():
    strategy = st.tuples(strategies.class_problems("sparse_softmax", "float64", "ordinary"), st.integers(1, 16))
    must_pass(lambda d: properties.shift_invariant(exact(CE), *d), strategy)
    moving = exact(CE, lambda q, v: v + 1e-3 * np.mean(q.inputs["logits"], axis=-1))
    must_fail(lambda d: properties.shift_invariant(moving, *d), strategy)


def _permutations(family):
    return strategies.class_problems(family, "float64").flatmap(
        lambda p: st.tuples(st.just(p), st.permutations(range(p.inputs["logits"].shape[-1])).map(np.asarray)))


def test_permutation_equivariance_catches_a_class_dependent_term():
    must_pass(lambda d: properties.permutation_equivariant(exact(CE), *d), _permutations("sparse_softmax"))
    ordered = exact(CE, lambda q, v: v + 1e-3 * q.inputs["logits"][..., 0])
    must_fail(lambda d: properties.permutation_equivariant(ordered, *d), _permutations("sparse_softmax"))


def test_sparse_equals_dense_catches_a_smoothed_dense_form():
    strategy = strategies.class_problems("sparse_softmax", "float64")
    must_pass(lambda p: properties.sparse_equals_dense(exact(CE), exact(CE_PROBS), p), strategy)
    smoothed = exact(CE_PROBS, lambda q, v: v + 0.01 * np.mean(
        core.neg_log_softmax(q.inputs["logits"]), axis=-1))
    must_fail(lambda p: properties.sparse_equals_dense(exact(CE), smoothed, p), strategy)


def test_sigmoid_is_two_class_softmax_catches_an_offset():
    strategy = strategies.sigmoid_problems("float64", "ordinary")
    must_pass(lambda p: properties.sigmoid_is_two_class_softmax(exact(BCE_LOGITS), exact(CE_PROBS), p), strategy)
    offset = exact(BCE_LOGITS, lambda q, v: v + 1e-4)
    must_fail(lambda p: properties.sigmoid_is_two_class_softmax(offset, exact(CE_PROBS), p), strategy)


def test_label_smoothing_mix_catches_smoothing_by_c_minus_1():
    strategy = st.tuples(strategies.class_problems("softmax", "float64"), st.sampled_from([0.1, 0.3]))
    must_pass(lambda d: properties.label_smoothing_mixes(exact(CE_PROBS), d[0], d[1], exact(CE_PROBS)), strategy)

    def wrong_smoothing(problem, value):
        e = problem.options.get("label_smoothing", 0.0)
        if not e:
            return value
        x, y = problem.inputs["logits"], problem.labels.astype(np.float64)
        n = x.shape[-1]
        smoothed = y * (1 - e) + e / (n - 1)  # the off-by-one-class mistake
        return np.sum(smoothed * core.neg_log_softmax(x), axis=-1)

    must_fail(lambda d: properties.label_smoothing_mixes(exact(CE_PROBS, wrong_smoothing), d[0], d[1],
                                                         exact(CE_PROBS)), strategy)


def test_focal_gamma_zero_catches_a_leftover_factor():
    strategy = strategies.probability_problems("float64")
    must_pass(lambda p: properties.focal_without_focus_is_plain(exact(FOCAL), exact(PLAIN), p), strategy)
    leftover = exact(FOCAL, lambda q, v: v * (1 + 1e-3))
    must_fail(lambda p: properties.focal_without_focus_is_plain(leftover, exact(PLAIN), p), strategy)


def test_sum_of_none_catches_a_scaled_sum():
    strategy = strategies.class_problems("sparse_softmax", "float64")
    must_pass(lambda p: properties.sum_is_sum_of_none(exact(CE), p), strategy)
    scaled = exact(CE, lambda q, v: v * (1 + 1e-3) if q.options.get("reduction") == "sum" else v)
    must_fail(lambda p: properties.sum_is_sum_of_none(scaled, p), strategy)


def test_weighted_mean_catches_a_mean_over_the_count():
    strategy = strategies.class_problems("sparse_softmax", "float64").flatmap(
        lambda p: st.tuples(st.just(p), st.lists(st.sampled_from([0.5, 2.0, 3.0]), min_size=p.inputs["logits"].shape[-1],
                                                 max_size=p.inputs["logits"].shape[-1]).map(np.asarray)))
    must_pass(lambda d: properties.mean_is_weighted_sum_over_weights(exact(CE), *d), strategy)

    def over_count(problem, value):
        if problem.options.get("reduction") != "mean":
            return value
        summed = BINDINGS[CE].reference(dataclasses.replace(problem, options={**problem.options, "reduction": "sum"}))
        return np.asarray(summed, dtype=np.float64) / np.size(problem.labels)

    must_fail(lambda d: properties.mean_is_weighted_sum_over_weights(exact(CE, over_count), *d), strategy)


def test_non_negativity_catches_a_negative_loss():
    strategy = strategies.sigmoid_problems("float64")
    must_pass(lambda p: properties.non_negative(exact(BCE_LOGITS), p), strategy)
    must_fail(lambda p: properties.non_negative(exact(BCE_LOGITS, lambda q, v: v - 0.5), p), strategy)


def test_finiteness_catches_an_overflow():
    strategy = strategies.class_problems("sparse_softmax", "float32", "wide")
    must_pass(lambda p: properties.finite_where_the_loss_is(exact(CE), p), strategy)

    def naive(problem, value):  # log(sum(exp(x))) - x[y], without the shift by the max
        x = problem.inputs["logits"].astype(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            lse = np.log(np.sum(np.exp(x), axis=-1))
        return lse - np.take_along_axis(x, problem.labels[..., None], axis=-1)[..., 0]

    must_fail(lambda p: properties.finite_where_the_loss_is(exact(CE, naive), p), strategy)


def test_the_floor_catches_a_halved_loss():
    strategy = strategies.class_problems("softmax", "float64", "ordinary")
    must_pass(lambda p: properties.at_least_minus_log_max_probability(exact(CE_PROBS), p), strategy)
    must_fail(lambda p: properties.at_least_minus_log_max_probability(exact(CE_PROBS, lambda q, v: v * 0.5), p),
              strategy)


def test_gradient_sum_catches_an_offset_gradient():
    strategy = strategies.class_problems("softmax", "float64")
    must_pass(lambda p: properties.gradient_sums_to_zero(exact(CE_PROBS), p), strategy)
    binding = exact(CE_PROBS)
    offset = dataclasses.replace(binding, gradient=lambda p: {"logits": binding.gradient(p)["logits"] + 1e-3})
    must_fail(lambda p: properties.gradient_sums_to_zero(offset, p), strategy)


def _cancelling(factor: float):
    """torch's BCE with logits, off by ``factor`` eps |x| where it cancels terms of size |x| (x < 0, z < 1):
    factor 1 is the known divergence torch_bce_with_logits_cancels, a larger one a second fault."""
    def bend(problem, value):
        x, z = problem.inputs["logits"].astype(np.float64), problem.labels.astype(np.float64)
        eps = float(np.finfo(problem.dtype).eps)
        return value + np.where((x < 0) & (z < 1), factor * eps * np.abs(x), 0.0)

    return exact(BCE_LOGITS, bend)


def test_a_region_holds_its_elements_to_the_weaker_algorithms_bound():
    strategy = strategies.sigmoid_problems("float32", "ordinary")
    must_pass(lambda p: properties.agrees_with_reference(_cancelling(1.0), p), strategy)
    must_fail(lambda p: properties.agrees_with_reference(_cancelling(1e3), p), strategy)
    must_fail(lambda p: properties.non_negative(_cancelling(-1e3), p), strategy)


def test_the_tally_counts_each_example_a_region_bound_weakly_or_left_out():
    from conformance.bindings import Problem

    properties.TALLY.clear()
    inside = Problem("sigmoid", {"logits": np.array([-7.25, 2.0], np.float32),
                                 "labels": np.array([0.0, 1.0], np.float32)}, {}, "float32")
    properties.agrees_with_reference(_cancelling(1.0), inside)
    properties.agrees_with_reference(_cancelling(1.0), dataclasses.replace(
        inside, inputs={**inside.inputs, "logits": np.array([7.25, 2.0], np.float32)}))
    assert properties.TALLY == {"examples": 2, ("torch_bce_with_logits_cancels", "weakly bound"): 1}
    properties.TALLY.clear()
    floored = Problem("sparse_softmax", {"logits": np.array([[0.0, 65.0]], np.float32), "labels": np.array([0])},
                      {}, "float32")  # Paddle clips x - max(x) at -64 (paddle_softmax_clipped_at_minus_64)
    properties.agrees_with_reference(exact("paddle:nn.functional.cross_entropy"), floored)
    assert properties.TALLY == {"examples": 1, ("paddle_softmax_clipped_at_minus_64", "left out"): 1}


POOL = PropertyShapes(sizes=(2, 5), ranks=(2,))


@pytest.mark.parametrize("family", ["softmax", "sparse_softmax", "sigmoid", "binary_probs", "categorical_probs"])
@settings(SEARCH)
@given(data=st.data())
def test_property_shapes_bound_every_dimension_and_the_rank_drawn(family, data):
    """A binding that compiles per shape draws only its pools' sizes and ranks (Binding.property_shapes), so
    that its properties meet the shapes already compiled; the default draws the whole range."""
    shape = data.draw(strategies.problems(family, "float32", shapes=POOL)).prediction.shape
    assert len(shape) == 2 and set(shape) <= {2, 5}, shape


def test_property_shapes_of_several_bindings_are_what_they_all_draw():
    every_size = PropertyShapes()
    assert POOL.shared(every_size) == POOL
    assert POOL.shared(PropertyShapes(sizes=(1, 2, 5))) == PropertyShapes(sizes=(2, 5), ranks=(2,))
    assert every_size.shared(every_size) == every_size

    @SEARCH
    @given(strategies.problems("sigmoid", "float32", shapes=PropertyShapes(sizes=(9,))))
    def draw_from_an_empty_pool(problem):
        pass

    with pytest.raises(ValueError, match="none of the sizes"):  # it names the pool and the range
        draw_from_an_empty_pool()
