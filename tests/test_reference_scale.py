"""Self-tests of the reference at scale: its memory and its accuracy, together.

The reference works through rows in blocks (``reference.core.BLOCK_ELEMENTS``)
and, for float32 logits and a float64 result, through a float64 path that
keeps a row only when its error bound proves it within 1.5 ULPs
(``reference.core._softmax_rows_float64``). These tests hold both claims at
once: at a language-model shape the peak extra memory (tracemalloc, which
sees NumPy's allocations) stays within 1.5 times the inputs' size, and the
results on a sample of rows still match mpmath within 2 ULPs of float64.
"""

import tracemalloc

import mpmath
import numpy as np
import pytest

import reference
from reference import core, oracle
import reference_precisions

MAX_ULPS = 2.0
MEMORY_FACTOR = 1.5
# no framework here: the single-framework tox environments deselect it (-m "not scale"), the full run has it
pytestmark = [pytest.mark.selftest, pytest.mark.scale]
working_precision = reference_precisions.working_precision


def _peak_extra_bytes(compute) -> tuple[int, np.ndarray]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = compute()
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


def _ulps(value, exact) -> float:
    return oracle.float64_ulps(float(value), exact)


def _soft_row_exact(per_class, labels) -> mpmath.mpf:
    with mpmath.workprec(oracle.PRECISION_BITS):
        return mpmath.fsum(mpmath.mpf(float(y)) * c for y, c in zip(labels, per_class) if float(y) != 0.0)


@pytest.mark.parametrize("scale", [1.0, 4.0, 30.0])
@pytest.mark.parametrize("n_classes", [3, 50, 1000])
def test_float32_logits_within_two_ulps(n_classes, scale):
    """float32 logits take the float64 path where its bound allows: random
    labels, labels at the maximum and soft labels, all within 2 ULPs of the
    exact value."""
    rng = np.random.default_rng(n_classes + int(scale))
    logits = (rng.standard_normal((12, n_classes)) * scale).astype(np.float32)
    logits[0, 0] = np.float32(1e-30)  # a gap that float64 cannot hold: that row goes to WORK
    labels = rng.integers(0, n_classes, 12)
    labels[:4] = np.argmax(logits[:4], axis=-1)
    soft = rng.random((12, n_classes)).astype(np.float32)
    soft[rng.random(soft.shape) < 0.3] = 0
    sparse = reference.sparse_softmax_cross_entropy(logits, labels)
    dense = reference.softmax_cross_entropy(logits, soft)
    for row in range(12):
        per_class = oracle.neg_log_softmax_row(logits[row].astype(np.float64))
        assert _ulps(sparse[row], per_class[labels[row]]) <= MAX_ULPS, row
        assert _ulps(dense[row], _soft_row_exact(per_class, soft[row])) <= MAX_ULPS, row


def test_float64_path_is_taken_and_declines_what_it_cannot_prove():
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((16, 1000)).astype(np.float32)
    labels = rng.integers(0, 1000, 16)
    labels[:4] = np.argmax(logits[:4], axis=-1)
    logits[np.arange(4), labels[:4]] += 10  # confident and right: a loss of about 0.005
    logits[15, 3] = np.float32(1e-30)
    _, accepted = core._softmax_rows_float64(logits, labels, sparse=True)
    assert accepted[4:15].all()  # a loss of about 7 leaves room for the bound
    assert not accepted[:4].any()  # a loss of 0.005 does not: they go to WORK
    assert not accepted[15]  # 1e-30 next to logits of order 1: the gaps are not exact
    exact = [oracle.sparse_softmax_cross_entropy_row(row.astype(np.float64), label)
             for row, label in zip(logits, labels)]
    got = reference.sparse_softmax_cross_entropy(logits, labels)
    assert max(_ulps(value, e) for value, e in zip(got, exact)) <= MAX_ULPS


@pytest.fixture(scope="module")
def language_model_problem():
    """(512, 32000) float32 logits, labels, soft labels and probabilities, and the exact values the test samples
    (mpmath, 1.3 s): the same in either working type, so computed once for both (and freed with the module)."""
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((512, 32000), dtype=np.float32)
    labels = rng.integers(0, 32000, 512)
    soft = rng.random((512, 32000), dtype=np.float32)
    soft /= soft.sum(axis=-1, keepdims=True)
    probabilities = rng.random((512, 32000), dtype=np.float32)
    rows = {}
    for row in (0, 511):
        per_class = oracle.neg_log_softmax_row(logits[row].astype(np.float64))
        rows[row] = (per_class[labels[row]], _soft_row_exact(per_class, soft[row]))
    elements = {}
    for flat_index in rng.integers(0, logits.size, 500):
        index = np.unravel_index(flat_index, logits.shape)
        elements[index] = oracle.sigmoid_cross_entropy(float(logits[index]), float(probabilities[index]))
    return logits, labels, soft, probabilities, rows, elements


def test_language_model_shape_memory_and_accuracy(language_model_problem):
    """(512, 32000) float32 logits: the three losses stay within 1.5 times the
    inputs' size in extra memory and within 2 ULPs on sampled rows."""
    logits, labels, soft, probabilities, rows, elements = language_model_problem

    extra, sparse = _peak_extra_bytes(lambda: reference.sparse_softmax_cross_entropy(logits, labels))
    assert extra <= MEMORY_FACTOR * (logits.nbytes + labels.nbytes)
    extra, dense = _peak_extra_bytes(lambda: reference.softmax_cross_entropy(logits, soft))
    assert extra <= MEMORY_FACTOR * (logits.nbytes + soft.nbytes)
    extra, sigmoid = _peak_extra_bytes(lambda: reference.sigmoid_cross_entropy(logits, probabilities))
    assert extra <= MEMORY_FACTOR * (logits.nbytes + probabilities.nbytes)

    for row, (sparse_exact, dense_exact) in rows.items():
        assert _ulps(sparse[row], sparse_exact) <= MAX_ULPS
        assert _ulps(dense[row], dense_exact) <= MAX_ULPS
    for index, exact in elements.items():
        assert _ulps(sigmoid[index], exact) <= MAX_ULPS
