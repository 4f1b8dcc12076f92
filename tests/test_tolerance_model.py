"""Self-tests of the tolerance model: it fails what it must and passes what it must.

* a relative error of 1e-5 in a float32 loss of order 1 fails (84 eps);
* the standard stable algorithms, run in the dtype, pass on ill-scaled inputs
  (a tiny loss next to a logit of 100 computed as logsumexp(x) - x[y]);
* NaN must meet NaN, an infinity the same infinity, shapes must agree;
* a subnormal exact value returned as 0 fails where no intermediate excuses it.
"""

import numpy as np
import pytest

from conformance.bindings import Problem
from conformance.dtypes import FORMATS, ulp
from conformance.tolerance import K, compare, family_scale
from reference import core
import reference

pytestmark = pytest.mark.selftest


def _softmax_problem(logits, labels, dtype):
    return Problem("sparse_softmax", {"logits": np.asarray(logits, dtype), "labels": np.asarray(labels)}, {},
                   np.dtype(dtype).name)


def _lse_minus_target(logits, labels, dtype):
    """The standard stable algorithm, in the dtype: logsumexp(x) - x[y]."""
    x = np.asarray(logits, dtype)
    m = x.max(axis=-1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=-1, dtype=dtype)).astype(dtype)
    return (lse - x[np.arange(len(x)), labels]).astype(dtype)


class TestUnits:
    @pytest.mark.parametrize("dtype, one_ulp", [("float64", 2.0**-52), ("float32", 2.0**-23),
                                                ("float16", 2.0**-10), ("bfloat16", 2.0**-7)])
    def test_ulp_of_one(self, dtype, one_ulp):
        assert float(ulp(1.0, dtype)) == one_ulp
        assert float(ulp(1.999, dtype)) == one_ulp
        assert float(ulp(0.75, dtype)) == one_ulp / 2

    def test_ulp_in_the_subnormal_range_is_the_smallest_subnormal(self):
        assert float(ulp(3.7e-44, "float32")) == 2.0**-149
        assert float(ulp(0.0, "float32")) == 2.0**-149
        assert float(ulp(1e-310, "float64")) == 2.0**-1074

    def test_formats(self):
        assert FORMATS["float32"].eps == 2.0**-23
        assert FORMATS["bfloat16"].smallest_subnormal == 2.0**-133
        assert FORMATS["float16"].smallest_subnormal == 2.0**-24


class TestVerdicts:
    def test_a_relative_error_of_1e5_fails_in_float32(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(32, 10)).astype(np.float32)
        labels = rng.integers(0, 10, size=32)
        problem = _softmax_problem(logits, labels, np.float32)
        exact = reference.sparse_softmax_cross_entropy(logits, labels, extended=True)
        wrong = (exact * (1 + 1e-5)).astype(np.float32)
        verdict = compare(wrong, exact, family_scale(problem), "float32")
        assert not verdict.ok
        assert verdict.n_failed > 0.9 * len(labels)

    @pytest.mark.parametrize("dtype, relative", [("float16", 1e-3), ("bfloat16", 1e-2)])
    def test_a_relative_error_of_an_eps_fails_in_half_precision(self, dtype, relative):
        """Well scaled: sigmoid cross-entropy with labels 0 and 1 rounds nothing but the loss."""
        from conformance.dtypes import round_to

        rng = np.random.default_rng(2)
        logits = round_to(rng.normal(scale=2.0, size=64), dtype)
        labels = round_to(rng.integers(0, 2, size=64).astype(float), dtype)
        problem = Problem("sigmoid", {"logits": logits, "labels": labels}, {}, dtype)
        exact = reference.sigmoid_cross_entropy(logits, labels, extended=True)
        scale = family_scale(problem)
        assert compare(round_to(exact.astype(np.float64), dtype), exact, scale, dtype).ok
        wrong = round_to((exact * (1 + relative)).astype(np.float64), dtype)
        verdict = compare(wrong, exact, scale, dtype)
        assert not verdict.ok and verdict.n_failed > len(logits) // 4

    def test_an_overflowing_exact_value_rounds_to_inf(self):
        exact = np.array([1.2e5, 6.0e4], dtype=core.WORK)
        assert compare(np.array([np.inf, 6.0e4], np.float16), exact, np.zeros(2), "float16").ok
        assert not compare(np.array([65504.0, 6.0e4], np.float16), exact, np.zeros(2), "float16").ok

    def test_correctly_rounded_float32_passes_with_room(self):
        rng = np.random.default_rng(1)
        logits = rng.normal(size=(32, 10)).astype(np.float32)
        labels = rng.integers(0, 10, size=32)
        exact = reference.sparse_softmax_cross_entropy(logits, labels, extended=True)
        verdict = compare(exact.astype(np.float32), exact, family_scale(_softmax_problem(logits, labels, np.float32)),
                          "float32")
        assert verdict.ok and verdict.max_ulp <= 0.5 and verdict.worst_ratio < 0.1

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_the_standard_algorithm_passes_on_ill_scaled_rows(self, dtype):
        """logits [100, 0]: the exact loss is 3.7e-44; logsumexp(x) - x[y] gives 0
        (and rounds next to the big logits elsewhere). Allowed by the scale."""
        logits = np.array([[100.0, 0.0], [1e4, 1e4 - 3.5], [-3e4, -3e4 + 1.25], [20.0, 0.0]])
        labels = np.array([0, 0, 1, 0])
        problem = _softmax_problem(logits, labels, dtype)
        exact = reference.sparse_softmax_cross_entropy(problem.prediction, labels, extended=True)
        got = _lse_minus_target(logits, labels, dtype)
        verdict = compare(got, exact, family_scale(problem), dtype)
        assert verdict.ok, verdict
        assert verdict.max_ulp > 1e6  # the tiny loss lost, and it shows

    def test_a_lost_subnormal_fails_where_nothing_excuses_it(self):
        problem = Problem("sigmoid", {"logits": np.float32([[100.0]]), "labels": np.float32([[1.0]])}, {}, "float32")
        exact = reference.sigmoid_cross_entropy(problem.prediction, problem.labels, extended=True)
        assert float(exact[0, 0]) > 0
        assert not compare(np.float32([[0.0]]), exact, family_scale(problem), "float32").ok
        assert compare(exact.astype(np.float32), exact, family_scale(problem), "float32").ok

    def test_special_values_must_match(self):
        exact = np.array([np.nan, np.inf, 1.0], dtype=core.WORK)
        scale = np.zeros(3)
        assert compare(np.array([np.nan, np.inf, 1.0]), exact, scale, "float64").ok
        assert not compare(np.array([0.0, np.inf, 1.0]), exact, scale, "float64").ok
        assert not compare(np.array([np.nan, -np.inf, 1.0]), exact, scale, "float64").ok
        assert not compare(np.array([np.nan, np.inf, np.nan]), exact, scale, "float64").ok

    def test_shapes_must_match(self):
        verdict = compare(np.zeros(3), np.zeros((3, 1), dtype=core.WORK), np.zeros((3, 1)), "float64")
        assert not verdict.ok and "shape" in verdict.problem

    def test_k_table_covers_every_dtype(self):
        assert set(K) == set(FORMATS)
