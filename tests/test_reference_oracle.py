"""Self-tests of the reference: its accuracy against mpmath, and its special values.

The claim (README, reference/core.py): within 2 ULPs of float64 of the exact
value for every finite input with labels in [0, 1], huge logits and tiny
losses included; NaN in, NaN out; documented limits at infinities.
"""

import math

import numpy as np
import pytest

import reference
from reference import core, oracle
import reference_precisions
from reference.conventions import keras as ref_keras
from reference.conventions import paddle as ref_paddle
from reference.conventions import tf_keras as ref_tf_keras
from reference.conventions import torch as ref_torch

MAX_ULPS = 2.0
pytestmark = pytest.mark.selftest
working_precision = reference_precisions.working_precision


def _worst_ulps(values, exacts) -> float:
    return max(oracle.float64_ulps(float(v), e) for v, e in zip(np.ravel(values), exacts))


def _soft_labels(rng, shape):
    raw = rng.exponential(size=shape)
    raw[rng.random(shape) < 0.3] = 0.0
    raw[..., 0] += 1e-3
    return raw / raw.sum(axis=-1, keepdims=True)


LOGIT_SCALES = [1.0, 30.0, 1e4, 1e30, 1e300]


@pytest.mark.parametrize("scale", LOGIT_SCALES)
@pytest.mark.parametrize("n_classes", [2, 3, 10, 57])
def test_softmax_cross_entropy_within_two_ulps(scale, n_classes):
    rng = np.random.default_rng(n_classes * 7 + int(math.log10(scale)))
    logits = rng.normal(scale=scale, size=(12, n_classes))
    labels = _soft_labels(rng, logits.shape)
    got = reference.softmax_cross_entropy(logits, labels)
    exact = [oracle.softmax_cross_entropy_row(x, y) for x, y in zip(logits, labels)]
    assert _worst_ulps(got, exact) <= MAX_ULPS


@pytest.mark.parametrize("scale", LOGIT_SCALES)
@pytest.mark.parametrize("n_classes", [2, 10, 300])
def test_sparse_softmax_cross_entropy_within_two_ulps(scale, n_classes):
    rng = np.random.default_rng(1000 + n_classes)
    logits = rng.normal(scale=scale, size=(16, n_classes))
    labels = rng.integers(0, n_classes, size=16)
    # make some rows confidently right: the tiny-loss regime
    labels[:6] = np.argmax(logits[:6], axis=-1)
    got = reference.sparse_softmax_cross_entropy(logits, labels)
    exact = [oracle.sparse_softmax_cross_entropy_row(x, y) for x, y in zip(logits, labels)]
    assert _worst_ulps(got, exact) <= MAX_ULPS


@pytest.mark.parametrize("gap", [1.0, 17.0, 40.0, 100.0, 300.0, 700.0, 740.0])
def test_tiny_softmax_losses_survive(gap):
    """logits [gap, 0], label 0: loss log1p(exp(-gap)), 3.7e-44 at 100, not 0."""
    logits = np.array([[gap, 0.0], [gap + 0.1, 0.1], [0.3, 0.3 - gap]])
    labels = np.array([0, 0, 0])
    got = reference.sparse_softmax_cross_entropy(logits, labels)
    exact = [oracle.sparse_softmax_cross_entropy_row(x, 0) for x in logits]
    assert _worst_ulps(got, exact) <= MAX_ULPS
    if gap == 100.0:
        assert got[0] == pytest.approx(3.720075976020836e-44, rel=1e-15)


def test_ties_and_huge_rows():
    logits = np.array([[5.0, 5.0, 5.0], [1e30, 1e30, -1e30], [1.5664488e31, 1.5914237e31, -3.1578729e31],
                       [-1e308, 1e308, 0.0]])
    labels = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [1.0, 0, 0], [1.0, 0.0, 0.0]])
    got = reference.softmax_cross_entropy(logits, labels)
    exact = [oracle.softmax_cross_entropy_row(x, y) for x, y in zip(logits, labels)]
    assert _worst_ulps(got, exact) <= MAX_ULPS
    assert np.all(np.isfinite(got[:3]))
    assert got[3] == np.inf  # the exact value exceeds float64's range: inf is its rounding


def _log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def test_sigmoid_cross_entropy_within_two_ulps():
    rng = np.random.default_rng(7)
    magnitudes = _log_uniform(rng, 1e-12, 1e30, 300)
    logits = magnitudes * rng.choice([-1.0, 1.0], 300)
    labels = np.concatenate([np.zeros(100), np.ones(100), rng.uniform(size=100)])
    got = reference.sigmoid_cross_entropy(logits, labels)
    exact = [oracle.sigmoid_cross_entropy(x, z) for x, z in zip(logits, labels)]
    assert _worst_ulps(got, exact) <= MAX_ULPS


@pytest.mark.parametrize("x", [100.0, 88.75, 20.0, 745.0, 1e4])
def test_tiny_sigmoid_losses_survive(x):
    got = reference.sigmoid_cross_entropy([x, -x], [1.0, 0.0])
    exact = oracle.sigmoid_cross_entropy(x, 1.0)
    assert _worst_ulps(got, [exact, exact]) <= MAX_ULPS
    assert (got[0] > 0) == (float(exact) > 0)


def test_binary_cross_entropy_within_two_ulps():
    rng = np.random.default_rng(8)
    near_zero = _log_uniform(rng, 1e-300, 0.5, 150)
    near_one = 1 - _log_uniform(rng, 1e-16, 0.5, 150)
    probs = np.concatenate([near_zero, near_one])
    labels = np.concatenate([np.zeros(50), np.ones(50), rng.uniform(size=50)] * 2)
    got = reference.binary_cross_entropy(probs, labels)
    exact = [oracle.binary_cross_entropy(p, z) for p, z in zip(probs, labels)]
    assert _worst_ulps(got, exact) <= MAX_ULPS


def test_float32_inputs_convert_exactly():
    """The reference computes on the given float32 values, not on decimal strings."""
    logits = np.array([[0.2, 0.1, 0.9]], dtype=np.float32)
    got = reference.sparse_softmax_cross_entropy(logits, [2])
    exact = oracle.sparse_softmax_cross_entropy_row(logits[0].astype(np.float64), 2)
    assert _worst_ulps(got, [exact]) <= MAX_ULPS
    assert got[0] != reference.sparse_softmax_cross_entropy(np.array([[0.2, 0.1, 0.9]]), [2])[0]


class TestSpecialValues:
    def test_nan_in_nan_out(self):
        assert np.isnan(reference.sigmoid_cross_entropy([np.nan], [0.0]))[0]
        assert np.isnan(reference.sigmoid_cross_entropy([1.0], [np.nan]))[0]
        rows = reference.softmax_cross_entropy([[np.nan, 1.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]])
        assert np.isnan(rows[0]) and np.isfinite(rows[1])
        assert np.isnan(reference.sparse_softmax_cross_entropy([[1.0, np.nan]], [0]))[0]
        assert np.isnan(reference.binary_cross_entropy([np.nan], [1.0]))[0]

    def test_softmax_infinities_take_limits(self):
        logits = [[np.inf, 0.0], [np.inf, 0.0], [np.inf, np.inf], [-np.inf, 0.0], [-np.inf, 0.0], [-np.inf, -np.inf]]
        labels = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]
        got = reference.softmax_cross_entropy(logits, labels)
        assert got[0] == 0.0 and got[1] == np.inf
        assert np.isnan(got[2])  # two +inf: no limit
        assert got[3] == 0.0 and got[4] == np.inf  # -inf costs nothing where the label is 0
        assert np.isnan(got[5])  # all -inf: no distribution

    def test_sigmoid_infinities_take_limits(self):
        got = reference.sigmoid_cross_entropy([np.inf, np.inf, -np.inf, -np.inf, np.inf], [1.0, 0.0, 0.0, 1.0, 0.5])
        assert list(got) == [0.0, np.inf, 0.0, np.inf, np.inf]

    def test_binary_edges_and_out_of_range(self):
        got = reference.binary_cross_entropy([0.0, 1.0, 0.0, 1.0, 1.5, -0.5], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
        assert list(got[:4]) == [0.0, 0.0, np.inf, np.inf]
        assert np.all(np.isnan(got[4:]))

    def test_sparse_labels_out_of_range_refused(self):
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            reference.sparse_softmax_cross_entropy([[1.0, 2.0, 3.0]], [3])
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            reference.sparse_softmax_cross_entropy([[1.0, 2.0, 3.0]], [-1])


class TestConventions:
    def test_clip_bounds_follow_the_dtype(self):
        low32, high32 = ref_keras.clip_bounds(np.float32)
        assert float(low32) == float(np.float32(1e-7)) and float(high32) == float(np.float32(1 - 1e-7))
        _, high16 = ref_keras.clip_bounds(np.float16)
        assert float(high16) == 1.0  # 1 - 1e-7 rounds to 1 in float16: no upper clip
        _, high64 = ref_keras.clip_bounds(np.float64)
        assert float(high64) == 1 - 1e-7

    def test_binary_on_probabilities_clips_and_means_over_the_last_axis(self):
        probs = np.array([[0.0, 1.0]], dtype=np.float32)
        labels = np.array([[1.0, 0.0]], dtype=np.float32)
        low, high = np.float64(np.float32(1e-7)), np.float64(np.float32(1 - 1e-7))
        expected = (-np.log(low) - np.log1p(-high)) / 2
        assert ref_keras.binary_crossentropy(labels, probs) == pytest.approx([expected], rel=1e-12)

    @pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
    def test_legacy_binary_adds_epsilon_inside_both_logs(self, dtype):
        """tf_keras: -(z log(q + eps) + (1 - z) log(1 - q + eps)) of the clipped q,
        eps rounded to the dtype, against mpmath; and its exact gradient."""
        import mpmath

        mpmath.mp.dps = 50
        probs = np.array([[0.0, 1e-9, 0.3, 0.9999, 1.0]], dtype=dtype)
        labels = np.array([[1.0, 0.0, 0.3, 0.999, 0.0]])
        low, high = (float(b) for b in ref_keras.clip_bounds(dtype))
        eps = mpmath.mpf(float(np.asarray(1e-7, dtype=np.float64).astype(dtype)))
        terms = []
        for p, z in zip(probs.ravel().astype(np.float64), labels.ravel()):
            q = mpmath.mpf(min(max(p, low), high))
            z = mpmath.mpf(z)
            terms.append(-(z * mpmath.log(q + eps) + (1 - z) * mpmath.log(1 - q + eps)))
        exact = sum(terms) / len(terms)
        got = ref_tf_keras.binary_crossentropy(labels, probs)
        assert oracle.float64_ulps(float(got[0]), exact) <= MAX_ULPS
        # Keras 3 takes the logs of the clipped q itself: -log(1e-7) where Keras 2 gives -log(2e-7)
        if dtype == np.float32:
            k2 = ref_tf_keras.binary_crossentropy(np.array([1.0]), probs[0, 1:2])
            k3 = ref_keras.binary_crossentropy(np.array([1.0]), probs[0, 1:2])
            assert float(k2) == pytest.approx(15.424948, rel=1e-6) and float(k3) == pytest.approx(16.118096, rel=1e-6)

        inside = (probs.astype(np.float64) > low) & (probs.astype(np.float64) < high)
        grad, scale = ref_tf_keras.gradient("binary", labels, probs, np.ones(1))
        for index in np.flatnonzero(inside.ravel()):
            p, z = mpmath.mpf(float(probs.ravel()[index])), mpmath.mpf(labels.ravel()[index])
            exact_grad = mpmath.diff(lambda t: -(z * mpmath.log(t + eps) + (1 - z) * mpmath.log(1 - t + eps)), p)
            exact_grad /= probs.size
            # the two terms cancel where p = z: exact to float64's eps of the terms' size (the tolerance's scale)
            error = abs(mpmath.mpf(float(np.ravel(grad)[index])) - exact_grad)
            assert error <= 2 * np.finfo(np.float64).eps * float(np.ravel(scale)[index])

    def test_legacy_reductions_are_the_new_ones_by_their_names(self):
        values = np.array([1.0, 2.0, 4.0])
        weights = np.array([1.0, 0.0, 0.5])
        assert ref_tf_keras.reduce_loss(values, weights, "auto") == ref_keras.reduce_loss(
            values, weights, "sum_over_batch_size")
        assert ref_tf_keras.reduce_loss(values, weights, "sum") == 3.0
        with pytest.raises(ValueError, match="Invalid Reduction Key: mean_with_sample_weight"):
            ref_tf_keras.reduce_loss(values, weights, "mean_with_sample_weight")

    def test_categorical_on_probabilities_renormalises_before_the_log(self):
        probs = np.array([[0.5, 0.89, 0.6]])
        got = ref_keras.categorical_crossentropy(np.array([[0.0, 1.0, 0.0]]), probs)
        assert got == pytest.approx([-np.log(0.89 / 1.99)], rel=1e-14)

    def test_binary_on_probabilities_clamps_log_terms_at_minus_100(self):
        got = ref_torch.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]), reduction="none")
        assert list(got) == [100.0, 100.0]

    def test_weighted_mean_divides_by_the_kept_weights(self):
        logits = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
        target = np.array([0, 2, -100])
        weight = np.array([0.5, 1.0, 2.0])
        per_example = reference.sparse_softmax_cross_entropy(logits[:2], target[:2])
        expected = (0.5 * per_example[0] + 2.0 * per_example[1]) / 2.5
        assert ref_torch.cross_entropy(logits, target, weight=weight) == pytest.approx(expected, rel=1e-15)

    def test_soft_label_class_weights_scale_the_whole_row(self):
        """The class-axis-last convention with soft labels: weight_gather = t . w multiplies the row's whole
        -sum_c t_c log softmax(x)_c (torch weighs each term instead), against mpmath; 'mean' divides by the
        summed weight_gather, and the exact gradient is the row's factor times softmax(x) * sum(t) - t."""
        import mpmath

        mpmath.mp.dps = 50
        logits = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [3.0, -2.0, 0.5]])
        labels = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.25, 0.75]])
        weight = np.array([1.0, 2.0, 3.0])
        rows, gathered = [], []
        for x, t in zip(logits, labels):
            log_z = mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in x))
            row = -sum(mpmath.mpf(tc) * (mpmath.mpf(xc) - log_z) for xc, tc in zip(x, t))
            factor = sum(mpmath.mpf(tc) * mpmath.mpf(wc) for tc, wc in zip(t, weight))
            rows.append(factor * row)
            gathered.append(factor)
        got = ref_paddle.cross_entropy(logits, labels, weight=weight, soft_label=True, reduction="none")
        assert _worst_ulps(got, rows) <= MAX_ULPS
        mean = ref_paddle.cross_entropy(logits, labels, weight=weight, soft_label=True, reduction="mean")
        assert oracle.float64_ulps(float(mean), sum(rows) / sum(gathered)) <= MAX_ULPS
        torch_style = ref_torch.cross_entropy(logits, labels, weight=weight, reduction="none")
        assert not np.allclose(got, torch_style)
        grad, _ = ref_paddle.cross_entropy_gradient(logits, labels, weight=weight, soft_label=True, reduction="sum")
        p = np.exp(logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True)))
        factors = np.array([float(f) for f in gathered])[:, None]
        assert np.allclose(grad, factors * (p * labels.sum(axis=1, keepdims=True) - labels), rtol=1e-14)

    def test_hard_label_mean_counts_kept_labels_only_for_a_nonnegative_ignore_index(self):
        """'mean' with ignore_index >= 0 divides by the kept labels (a divisor of 0 becomes 1, so all ignored
        gives 0, not NaN); with the default -100 a label of -100 costs 0 but still counts in N."""
        logits = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
        row = float(np.log(np.sum(np.exp(logits[0]))) - 1.0)
        assert float(ref_paddle.cross_entropy(logits, np.array([1, 1]), ignore_index=1)) == 0.0
        assert float(ref_paddle.cross_entropy(logits, np.array([1, 0]), ignore_index=0)) == pytest.approx(row)
        assert float(ref_paddle.cross_entropy(logits, np.array([1, -100]))) == pytest.approx(row / 2)
        assert float(ref_torch.cross_entropy(logits, np.array([1, -100]))) == pytest.approx(row)

    def test_probabilities_take_the_capped_log_of_zero(self):
        """use_softmax=False: -log q of the given probabilities, with -log 0 capped at 1e20."""
        got = ref_paddle.cross_entropy(np.array([[0.0, 1.0], [0.2, 0.8]]), np.array([0, 1]), use_softmax=False,
                                       reduction="none")
        assert got[0] == 1e20 and got[1] == pytest.approx(-math.log(0.8), rel=1e-15)

    def test_label_smoothing_mixes_in_the_uniform_target(self):
        logits = np.array([[1.0, 2.0, 3.0]])
        nls = reference.neg_log_softmax(logits)[0]
        expected = 0.9 * nls[0] + 0.1 / 3 * nls.sum()
        got = ref_torch.cross_entropy(logits, np.array([0]), label_smoothing=0.1, reduction="none")
        assert got == pytest.approx([expected], rel=1e-15)


def test_extended_results_are_finer_than_float64():
    extended = reference.sparse_softmax_cross_entropy([[0.2, 0.1, 0.9]], [0], extended=True)
    assert extended.dtype == core.WORK_DTYPE
    assert reference.sparse_softmax_cross_entropy([[0.2, 0.1, 0.9]], [0]).dtype == np.float64


@pytest.mark.parametrize("kind, from_logits, axis, shape", [
    ("binary_focal", True, -1, (2, 3, 4)), ("binary_focal", False, -1, (3, 5)), ("binary_focal", True, 0, (4, 3)),
    ("categorical_focal", True, -1, (2, 3, 4)), ("categorical_focal", False, 1, (3, 4, 2)),
    ("categorical_focal", True, -1, (5,)),
])
def test_the_focal_gradient_taken_row_by_row_is_the_one_taken_element_by_element(kind, from_logits, axis, shape):
    """The focal losses' gradients are difference quotients (reference.gradients.numeric); taken for every row
    at once (numeric_separable) they are the same quotients at the same steps, to well within their own error
    (about 1e-13 relative), and an infinite loss in another row no longer makes a finite row's gradient NaN."""
    from reference import gradients

    rng = np.random.default_rng(len(shape) * 10 + axis)
    prediction = rng.standard_normal(shape) * 3 if from_logits else rng.uniform(0.05, 0.95, shape)
    labels = rng.uniform(0, 1, shape) if kind == "binary_focal" else _soft_labels(rng, np.moveaxis(
        np.empty(shape), axis, -1).shape).swapaxes(-1, axis % len(shape)) if len(shape) > 1 else _soft_labels(
        rng, shape)
    function = ref_keras.binary_focal_crossentropy if kind == "binary_focal" else \
        ref_keras.categorical_focal_crossentropy

    def total(x):
        return function(labels, x, from_logits=from_logits, axis=axis, extended=True)

    by_element = gradients.numeric(total, prediction)
    by_row = gradients.numeric_separable(total, prediction, axis)
    np.testing.assert_allclose(by_row.astype(float), by_element.astype(float), rtol=1e-11, atol=1e-14)
    if from_logits and len(shape) > 1:
        moved = np.moveaxis(prediction.copy(), axis, -1)
        moved.reshape(-1, moved.shape[-1])[0, :2] = np.inf  # a first row whose loss is infinite or NaN
        with np.errstate(all="ignore"):
            assert not np.isfinite(np.asarray(total(np.moveaxis(moved, -1, axis)), dtype=float).reshape(-1)[0])
            separable = gradients.numeric_separable(total, np.moveaxis(moved, -1, axis), axis)
        rows = np.moveaxis(separable, axis, -1).reshape(-1, moved.shape[-1]).astype(float)
        expected = np.moveaxis(by_row, axis, -1).reshape(-1, moved.shape[-1]).astype(float)
        # (the sigmoid's general form for non-finite inputs rounds otherwise: equal within the quotients' error)
        np.testing.assert_allclose(rows[1:], expected[1:], rtol=1e-11, atol=1e-14)


def test_an_elementwise_focal_gradient_taken_at_once_is_the_one_taken_element_by_element():
    """PaddlePaddle's sigmoid focal loss, unreduced: every element's quotient taken in four calls. (No framework
    word in the name: ``-k`` selects by it, and this test imports no framework.)"""
    from reference import gradients

    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((3, 4)) * 4, (rng.random((3, 4)) < 0.5).astype(float)

    def total(x):
        return ref_paddle.sigmoid_focal_loss_unreduced(x, labels)

    np.testing.assert_allclose(gradients.numeric_separable(total, logits).astype(float),
                               gradients.numeric(total, logits).astype(float), rtol=1e-11, atol=1e-14)
