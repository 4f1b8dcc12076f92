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
from conformance.dtypes import FORMATS, round_to, ulp
from conformance.tolerance import K, compare, family_scale, k_for
from reference import core
import reference

pytestmark = pytest.mark.selftest


def _softmax_problem(logits, labels, dtype):
    return Problem("sparse_softmax", {"logits": np.asarray(logits, dtype), "labels": np.asarray(labels)}, {},
                   np.dtype(dtype).name)


def _in(dtype):
    """Correct rounding to ``dtype`` after each operation (float64 holds the
    exact result of one operation on half-precision inputs closely enough)."""
    return lambda values: round_to(np.asarray(values, dtype=np.float64), dtype).astype(np.float64)


def _shifted(logits, labels, dtype):
    """The best stable algorithm, each step rounded to ``dtype``:
    ``(m - x[y]) + log sum exp(x - m)``."""
    r = _in(dtype)
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    partition = r(np.sum(r(np.exp(r(x - m))), axis=-1))
    return r(r(m[:, 0] - x[np.arange(len(x)), labels]) + r(np.log(partition)))


def _lse_minus_target(logits, labels, dtype):
    """The weak algorithm, each step rounded to ``dtype``: ``logsumexp(x) - x[y]``
    with the log-sum-exp itself shifted (stable against overflow), the target
    logit subtracted last: not shift-invariant."""
    r = _in(dtype)
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    lse = r(m[:, 0] + r(np.log(r(np.sum(r(np.exp(r(x - m))), axis=-1)))))
    return r(lse - x[np.arange(len(x)), labels])


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
    def test_the_shifted_algorithm_passes_on_ill_scaled_rows(self, dtype):
        """logits [100, 0]: the exact loss is 3.7e-44; (m - x[y]) + log sum exp(x - m)
        gives 0 next to the partition sum's 1, which the scale allows (and the
        ULP figures show)."""
        logits = np.array([[100.0, 0.0], [1e4, 1e4 - 3.5], [-3e4, -3e4 + 1.25], [20.0, 0.0]])
        labels = np.array([0, 0, 1, 0])
        problem = _softmax_problem(logits, labels, dtype)
        exact = reference.sparse_softmax_cross_entropy(problem.prediction, labels, extended=True)
        got = _shifted(problem.prediction, labels, dtype)
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


# --- the weak algorithms fail where they are weak; the best stable one passes ---------------------------

# A common offset of every logit the dtype holds with room (float16's largest is 65504); ties and a
# clear winner, so the loss is log 2 or small but well above the dtype's tiny.
OFFSETS = {"float16": 1e4, "bfloat16": 1e4, "float32": 1e8, "float64": 1e30}


def _offset_rows(dtype):
    offset = OFFSETS[dtype]
    logits = round_to(offset + np.array([[0.0, 0.0], [0.0, -offset / 2**20], [0.0, 0.0]]), dtype)
    return logits, np.array([0, 1, 1])


def _half_k(dtype):
    """The K of a binding that rounds every step to a half-precision dtype (the
    emulations here do); plain K elsewhere."""
    class EveryStep:
        computes_in_output_dtype = True

    return k_for(dtype, EveryStep())


class TestWeakAlgorithms:
    """Each weak algorithm of the field fails on the inputs where it is weak, in
    every dtype where the difference is visible, while the best stable algorithm,
    run on the same inputs in the same dtype, passes."""

    @pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
    def test_logsumexp_minus_target_fails_a_common_offset(self, dtype):
        logits, labels = _offset_rows(dtype)
        problem = _softmax_problem(logits, labels, logits.dtype)
        exact = reference.sparse_softmax_cross_entropy(logits, labels, extended=True)
        scale = family_scale(problem)
        k = _half_k(dtype)
        assert compare(_shifted(logits, labels, dtype), exact, scale, dtype, k).ok
        weak = compare(_lse_minus_target(logits, labels, dtype), exact, scale, dtype, k)
        assert not weak.ok and weak.n_failed >= 2, weak

    @pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
    def test_a_common_offset_never_widens_the_softmax_bound(self, dtype):
        logits, labels = _offset_rows(dtype)
        offset_free = round_to(np.asarray(logits, np.float64) - OFFSETS[dtype], dtype)
        with_offset = family_scale(_softmax_problem(logits, labels, logits.dtype))
        without = family_scale(_softmax_problem(offset_free, labels, logits.dtype))
        assert np.allclose(np.asarray(with_offset, np.float64), np.asarray(without, np.float64))

    # p small enough that 1 - p rounds in the dtype, large enough that the loss is normal
    SMALL_P = {"float16": 3e-3, "bfloat16": 3e-2, "float32": 3e-5, "float64": 3e-12}

    @pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
    def test_log_of_one_minus_p_fails_small_probabilities(self, dtype):
        r = _in(dtype)
        p = round_to(self.SMALL_P[dtype] * np.array([1.0, 1.37, 2.91, 0.53]), dtype)
        z = round_to(np.zeros(4), dtype)
        problem = Problem("binary_probs", {"probs": p, "labels": z}, {}, dtype)
        exact = reference.binary_cross_entropy(p, z, extended=True)
        scale = family_scale(problem)
        k = _half_k(dtype)
        p64 = np.asarray(p, np.float64)
        stable = r(-r(np.log1p(-p64)))
        weak = r(-r(np.log(r(1 - p64))))
        assert compare(stable, exact, scale, dtype, k).ok
        verdict = compare(weak, exact, scale, dtype, k)
        assert not verdict.ok and verdict.n_failed >= 2, verdict

    # logits large and positive, labels just below 1: x z cancels against max(x, 0)
    SOFT = {"float16": (100.0, 2.0**-8), "bfloat16": (100.0, 2.0**-6), "float32": (1000.0, 2.0**-16),
            "float64": (1e10, 2.0**-40)}

    @pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
    def test_cancelling_soft_label_sigmoid_fails_large_logits(self, dtype):
        r = _in(dtype)
        size, gap = self.SOFT[dtype]
        x = round_to(size * np.array([4 / 3, np.pi / 2, np.e, np.sqrt(0.5)]), dtype)  # full significands
        z = round_to(1 - gap * np.array([1.0, 3.0, 0.5, 1.5]), dtype)
        problem = Problem("sigmoid", {"logits": x, "labels": z}, {}, dtype)
        exact = reference.sigmoid_cross_entropy(x, z, extended=True)
        scale = family_scale(problem)
        k = _half_k(dtype)
        x64, z64 = np.asarray(x, np.float64), np.asarray(z, np.float64)

        def softplus(v):
            return r(r(np.maximum(v, 0)) + r(np.log1p(r(np.exp(r(-np.abs(v)))))))

        stable = r(r(z64 * softplus(-x64)) + r(r(1 - z64) * softplus(x64)))
        weak = r(r(r(np.maximum(x64, 0)) - r(x64 * z64)) + r(np.log1p(r(np.exp(r(-np.abs(x64)))))))
        assert compare(stable, exact, scale, dtype, k).ok
        verdict = compare(weak, exact, scale, dtype, k)
        assert not verdict.ok and verdict.n_failed >= 2, verdict


def test_the_tolerance_model_knows_no_framework():
    """conformance/tolerance.py states the bound for any algorithm; what a
    convention's algorithm rounds (its scale) lives with the convention in
    reference/conventions/, and the adapters name it."""
    import ast
    from pathlib import Path

    import conformance.tolerance as tolerance

    tree = ast.parse(Path(tolerance.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    leaks = [name for name in imported if name and (name.startswith(("reference.conventions", "conformance.frameworks"))
                                                    or name.split(".")[0] in ("torch", "tensorflow", "keras", "jax",
                                                                              "optax", "tf_keras", "paddle"))]
    assert not leaks, leaks
