"""The exact mathematics of cross-entropy, computed to better than float64.

Every function here works in ``WORK`` precision, a floating-point type with
more significand bits than float64 and a wider exponent range, with formulas
that never cancel for labels in [0, 1]:

* softmax cross-entropy per class is ``(m - x_c) + log1p(t)`` with ``m`` the
  row maximum and ``t`` the sum of ``exp(x_j - m)`` over every class but one
  maximum, so a loss of 3.7e-44 from logits [100, 0] survives;
* sigmoid cross-entropy is ``z * softplus(-x) + (1 - z) * softplus(x)``, two
  non-negative terms, with ``softplus(x) = max(x, 0) + log1p(exp(-|x|))``;
* binary cross-entropy on probabilities is ``-(z log p + (1 - z) log1p(-p))``.

The extended exponent range (to 1e4932) means nothing here overflows for
float64 inputs, and the results round once, to float64, at the very end.
``tests/test_reference_oracle.py`` measures the results against mpmath.

The working type, and why (``XENT_REFERENCE_PRECISION``, :func:`choose_precision`):

* ``longdouble``, NumPy's ``long double``, where it carries at least 64
  significand bits: the 80-bit x87 format on x86-64 Linux and Intel macOS
  (64 bits), IEEE binary128 on Linux aarch64 (113 bits). Its arithmetic is in
  hardware (x87) or in the C library, vectorised by NumPy's loops.
* ``quad``, IEEE binary128 from ``numpy-quaddtype`` (the NumPy project's
  quad-precision dtype, on SLEEF's vectorised functions with 1-ULP exp and
  log1p), where ``long double`` is plain float64: macOS on Apple silicon and
  Windows, whose compilers define ``long double`` as ``double``. There float64
  working precision would lose the tiny losses and fail the 2-ULP contract
  (27 ULPs on confidently right rows, measured), so the same formulas run in
  binary128 instead. Error-free float64 arithmetic (double-double) was the
  other way; it would need exp and log1p written here in double-double and
  proven, where binary128 is a maintained library already proven by its
  authors and, through the same self-tests, here.

``auto`` (the default) takes ``longdouble`` where it is extended and ``quad``
elsewhere; every error bound below is written in WORK's own unit roundoff
(``WORK_EPS``), so it holds in either. The self-tests run the oracle and the
scale tests in both, the second as on a platform whose ``long double`` is
float64 (``choose_precision(long_double_bits=53)``), so a Mac's reference is
proven on every run here.

Scale: rows are processed in blocks of at most ``BLOCK_ELEMENTS`` logits, each
converted to WORK only while it is worked on, on up to ``THREADS`` threads
(NumPy's loops release the GIL), so the extra memory stays a few blocks
whatever the input's size (``tests/test_reference_scale.py``). Where the
caller wants a float64 result (the default) and the logits are float32 (or
float16, bfloat16), softmax cross-entropy first tries a float64 path with a
proven error bound per row, and recomputes in WORK every row whose bound
does not guarantee the float64 accuracy; see :func:`_softmax_rows_float64`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PRECISIONS = ("longdouble", "quad")
# the significand bits (with the implicit one) a working type needs: the
# x87 format's 64 are the fewest the error bounds were proven with
EXTENDED_SIGNIFICAND_BITS = 64


def platform_long_double_bits() -> int:
    """The significand bits of this platform's ``long double``, with the implicit one."""
    return int(np.finfo(np.longdouble).nmant) + 1


def choose_precision(setting: str | None = None, long_double_bits: int | None = None) -> str:
    """The working type: ``setting`` (else ``XENT_REFERENCE_PRECISION``, else
    ``auto``) resolved for a platform whose ``long double`` has
    ``long_double_bits`` significand bits (else this platform's)."""
    setting = (setting or os.environ.get("XENT_REFERENCE_PRECISION") or "auto").strip().lower()
    bits = platform_long_double_bits() if long_double_bits is None else long_double_bits
    if setting == "auto":
        return "longdouble" if bits >= EXTENDED_SIGNIFICAND_BITS else "quad"
    if setting == "longdouble" and bits < EXTENDED_SIGNIFICAND_BITS:
        raise ValueError(f"XENT_REFERENCE_PRECISION=longdouble: long double has {bits} significand bits here, "
                         f"fewer than the {EXTENDED_SIGNIFICAND_BITS} the reference's error bounds need; "
                         "use quad (or auto)")
    if setting not in PRECISIONS:
        raise ValueError(f"XENT_REFERENCE_PRECISION={setting!r}: expected auto, longdouble or quad")
    return setting


def _quad_dtype():
    try:
        from numpy_quaddtype import QuadPrecDType
    except ImportError as error:
        raise ImportError(
            "the reference needs a working precision beyond float64; long double is not extended here, so it "
            "uses binary128 from numpy-quaddtype, which is not installed (pip install numpy-quaddtype; the "
            "project's install names it for macOS arm64, Windows and Linux x86-64)") from error
    return QuadPrecDType


def set_precision(name: str) -> None:
    """Makes ``name`` (see PRECISIONS) the working type of every function here."""
    global PRECISION, WORK, WORK_DTYPE, WORK_EPS
    if name == "longdouble":
        work_type, dtype = np.longdouble, np.dtype(np.longdouble)
    elif name == "quad":
        work_type = _quad_dtype()  # the DType class: what ufuncs' dtype= arguments accept
        dtype = work_type("sleef")
    else:
        raise ValueError(f"unknown working precision {name!r}: expected one of {PRECISIONS}")
    PRECISION, WORK, WORK_DTYPE = name, work_type, dtype
    # twice WORK's unit roundoff (2**-63 for the x87 format, 2**-112 for binary128), a margin over every rounding
    WORK_EPS = float(np.finfo(dtype).eps)
    _float64_exp_trusted.cache_clear()


@contextlib.contextmanager
def working_precision(name: str):
    """The working type ``name`` for the duration of a block (the self-tests run both)."""
    previous = PRECISION
    set_precision(name)
    try:
        yield name
    finally:
        set_precision(previous)


def work(value):
    """A scalar in WORK precision (exact for every float64 and integer below 2**64)."""
    return np.asarray(value, dtype=WORK_DTYPE)[()]


# Block size (elements) for row-wise work: bounds the extended-precision
# temporaries to a few tens of MiB whatever the input's size.
BLOCK_ELEMENTS = 1 << 20
# Elementwise losses hold five WORK temporaries per element: smaller blocks.
ELEMENTWISE_BLOCK = 1 << 18
# Blocks run on this many threads when there are several of them.
THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

# The float64 path's error model (see _softmax_rows_float64). UNIT is float64's
# unit roundoff. EXP_ERROR is the relative error allowed to np.exp in float64:
# 2 ULPs (4 units), some four times what current libm exponentials reach; the
# path is used only where a sample measures np.exp within half of it
# (_float64_exp_trusted). WORK_EPS is twice WORK's unit roundoff (2**-63 for
# the x87 format), a margin over every WORK rounding.
UNIT = 2.0 ** -53
EXP_ERROR = 4 * UNIT
SMALLEST_SUBNORMAL = 2.0 ** -1074
# An accepted row's computed loss is within GATE_UNITS * UNIT * |loss| (or that
# many subnormal steps) of the exact value before its final rounding to float64,
# which adds at most half an ULP: 1.5 ULPs in all, inside the 2 the self-tests allow.
GATE_UNITS = 1.0
# Sums of many terms are taken in chunks of this many, then over the chunks:
# see _sum_rows.
SUM_CHUNK = 64
FLOAT64_PATH_DTYPES = ("float16", "bfloat16", "float32")


def to_work(values) -> np.ndarray:
    """Converts any real input (bool, int, float16/bfloat16/32/64) exactly."""
    array = np.asarray(values)
    if array.dtype == WORK_DTYPE:
        return array
    if array.dtype.kind in "biu" or array.dtype in (np.float16, np.float32, np.float64):
        return array.astype(WORK)
    # every other float format in use (bfloat16) embeds exactly in float64, and float64 in WORK
    return array.astype(np.float64).astype(WORK)


def finish(values: np.ndarray, extended: bool) -> np.ndarray:
    """Rounds a WORK result once, to float64, unless the caller wants it all."""
    values = np.asarray(values, dtype=WORK)
    if extended:
        return values
    with np.errstate(over="ignore"):  # beyond float64's range, inf is the rounding
        return values.astype(np.float64)


def clip(values, low, high) -> np.ndarray:
    """``np.clip`` for WORK values (binary128 has no clip loop): NaN stays NaN."""
    return np.minimum(np.maximum(values, low), high)


def pow2(exponents) -> np.ndarray:
    """``2 ** e`` in WORK for integer ``e``, exactly, in steps of float64 powers of two (binary128's ldexp
    takes no array of exponents)."""
    remaining = np.asarray(exponents, dtype=np.int64)
    result = np.ones(remaining.shape, dtype=WORK)
    while np.any(remaining != 0):
        step = np.clip(remaining, -1000, 1000)
        result = result * np.ldexp(1.0, step)
        remaining = remaining - step
    return result


def total(values, **kwargs):
    """``np.sum`` in WORK of any real input; 0 for no values (binary128's add has no identity)."""
    return np.sum(to_work(values), initial=work(0), **kwargs)


def mul0(label: np.ndarray, term: np.ndarray) -> np.ndarray:
    """``label * term`` where a zero label contributes exactly 0, even next to
    an infinite term; a NaN term still propagates."""
    with np.errstate(invalid="ignore", over="ignore"):
        product = label * term
    return np.where((label == 0) & ~np.isnan(term), work(0), product)


def row_blocks(n_rows: int, n_cols: int, block_elements: int = BLOCK_ELEMENTS):
    """Slices of rows whose blocks hold at most ``block_elements`` elements."""
    step = max(1, block_elements // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def for_each_block(n_rows: int, n_cols: int, compute, block_elements: int = BLOCK_ELEMENTS) -> None:
    """``compute(rows)`` for every block of rows; several blocks run on
    THREADS threads. Each call writes only its own rows of the output."""
    blocks = list(row_blocks(n_rows, n_cols, block_elements))
    if len(blocks) < 2 or THREADS < 2:
        for rows in blocks:
            compute(rows)
        return
    with ThreadPoolExecutor(max_workers=min(THREADS, len(blocks))) as pool:
        for _ in pool.map(compute, blocks):
            pass


def _rows_of(values: np.ndarray, axis: int) -> np.ndarray:
    """The class axis last, as 2-D rows: a view for the last axis; a copy in
    the input's own dtype otherwise (never in WORK)."""
    moved = np.moveaxis(np.asarray(values), axis, -1)
    return moved.reshape(-1, moved.shape[-1])


# --- WORK precision, row by row --------------------------------------------------


def _finite_rows(x: np.ndarray) -> np.ndarray:
    """Rows free of NaN and infinities (max and min propagate NaN)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(np.max(x, axis=-1)) & np.isfinite(np.min(x, axis=-1))


def _log_partition(x: np.ndarray):
    """For finite WORK rows: the row maximum and ``log1p(t)``, ``t`` the sum of
    ``exp(x_j - max)`` over every class but one maximum, so that
    ``-log softmax(x)_c = (max - x_c) + log1p(t)`` without cancellation."""
    top = np.max(x, axis=-1, keepdims=True)
    terms = np.subtract(x, top)
    np.exp(terms, out=terms)
    terms[np.arange(len(x)), np.argmax(x, axis=-1)] = 0
    return top, np.log1p(np.sum(terms, axis=-1, keepdims=True))


def _neg_log_softmax_special(x: np.ndarray) -> np.ndarray:
    """``-log softmax(x)`` of WORK rows holding NaN or infinities: the limits
    of the module's docstring."""
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        m_safe = np.where(np.isfinite(m), m, work(0))
        d = m_safe - x
        e = np.exp(-d)
        # every class but one maximum: log(sum exp(x - m)) = log1p(t) exactly
        first_max = np.argmax(np.where(np.isnan(x), -np.inf, x), axis=-1)
        np.put_along_axis(e, first_max[:, None], work(0), axis=-1)
        t = np.sum(e, axis=-1, keepdims=True)
        result = d + np.log1p(t)
        # limits: one +inf logit is the one-hot distribution; more have none
        n_pos_inf = np.sum(x == np.inf, axis=-1, keepdims=True)
        one_hot_limit = np.where(x == np.inf, work(0), work(np.inf))
        result = np.where(m == np.inf, np.where(n_pos_inf == 1, one_hot_limit, work(np.nan)), result)
        result = np.where(m == -np.inf, work(np.nan), result)
        nan_row = np.any(np.isnan(x), axis=-1, keepdims=True)
        result = np.where(nan_row, work(np.nan), result)
    return result


def _neg_log_softmax_rows(x: np.ndarray) -> np.ndarray:
    """``-log softmax(x)`` along the last axis of a 2-D block, in WORK."""
    x = to_work(x)
    finite = _finite_rows(x)
    if finite.all():
        top, log_partition = _log_partition(x)
        return (top - x) + log_partition
    result = np.empty(x.shape, dtype=WORK)
    if finite.any():
        top, log_partition = _log_partition(x[finite])
        result[finite] = (top - x[finite]) + log_partition
    result[~finite] = _neg_log_softmax_special(x[~finite])
    return result


def _sparse_rows_work(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``-log softmax(x)[label]`` per row of a 2-D block, in WORK."""
    x = to_work(x)
    picked = np.arange(len(x))
    finite = _finite_rows(x)
    if not finite.all():
        return _neg_log_softmax_rows(x)[picked, labels]
    top, log_partition = _log_partition(x)
    return (top[:, 0] - x[picked, labels]) + log_partition[:, 0]


def _soft_rows_work(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``-sum_c y_c log softmax(x)_c`` per row of a 2-D block, in WORK. For
    finite logits every per-class term is finite, so a plain product is mul0."""
    x = to_work(x)
    y = to_work(y)
    if not _finite_rows(x).all():
        return np.sum(mul0(y, _neg_log_softmax_rows(x)), axis=-1)
    top, log_partition = _log_partition(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sum(y * ((top - x) + log_partition), axis=-1)


# --- the float64 path, with a proven bound per row ---------------------------------


def _sum_rows(terms: np.ndarray):
    """Row sums in WORK of terms of one sign (each exact in WORK), and a bound
    on their relative error. Recursive summation of k terms of one sign errs
    by at most k - 1 roundings relative to the sum, in whatever order NumPy
    adds them; summing chunks of SUM_CHUNK, then chunks of those sums, and so
    on, keeps the count at (SUM_CHUNK - 1) per level (WORK_EPS, twice WORK's
    rounding, covers the second-order terms)."""
    n_rows = terms.shape[0]
    partial, roundings = terms, 0
    while partial.shape[1] > SUM_CHUNK:
        width = partial.shape[1]
        whole = width - width % SUM_CHUNK
        sums = partial[:, :whole].reshape(n_rows, -1, SUM_CHUNK).sum(axis=-1, dtype=WORK)
        if whole < width:
            sums = np.concatenate([sums, partial[:, whole:].sum(axis=-1, dtype=WORK, keepdims=True)], axis=1)
        partial, roundings = sums, roundings + SUM_CHUNK - 1
    total = partial.sum(axis=-1, dtype=WORK)
    return total, (roundings + max(0, partial.shape[1] - 1)) * WORK_EPS


def _exact_gap_rows(x: np.ndarray, top: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Rows of float32 values whose every gap ``top - x`` is exact in float64.

    Every float32 is a multiple of its ULP, and ULPs are powers of 2, so every
    value of a row is a multiple of ``g``, the ULP of its smallest non-zero
    magnitude, and so is every gap; float64 holds every multiple of ``g``
    below ``2**53 g`` exactly. The span ``top - low`` bounds the gaps; computed
    in float64 it is exact below that limit and rounds to at least the limit
    above it, so the test never passes a row it should not."""
    magnitude = np.abs(x)
    tiny = np.min(magnitude, axis=-1)
    if not tiny.all():  # a row holds an exact 0, which is a multiple of anything
        tiny = np.min(magnitude, axis=-1, where=x != 0, initial=np.inf)
    _, exponent = np.frexp(tiny)
    ulp_exponent = np.maximum(exponent.astype(np.int64) - 24, -149)
    span = top.astype(np.float64) - low.astype(np.float64)
    return span < np.ldexp(1.0, ulp_exponent + 53)


def _softmax_rows_float64(x: np.ndarray, labels: np.ndarray, sparse: bool):
    """Softmax cross-entropy of a block of float32 rows through float64, with
    the rows whose result is proven within GATE_UNITS of the exact value.

    Returns ``(loss, accepted)``; rows not accepted are to be recomputed in
    WORK. For an accepted row, ``loss = d_y + log1p(t)`` (sparse) or
    ``sum_c y_c d_c + (sum_c y_c) log1p(t)`` (soft labels, all finite and
    non-negative), with ``d_c = max - x_c`` and ``t = sum_{j != argmax} exp(-d_j)``:

    * each ``d_c`` is exact in float64 (:func:`_exact_gap_rows`; other rows go
      to WORK), so each term ``exp(-d_j)`` errs by at most EXP_ERROR relative,
      or by 2 subnormal steps where it underflows;
    * ``t`` is summed in WORK with the bound of :func:`_sum_rows`, so
      ``|t_computed - t| <= t_error = (EXP_ERROR + sum bound) t + n 2**-1073``
      (a 0.1% margin covers the second-order terms);
    * ``log1p`` is 1-Lipschitz divided by ``1 + t``: its argument's error moves
      it by at most ``t_error / (1 + t - t_error)``; the WORK operations after
      it (log1p, products, sums) add a few WORK_EPS relative;
    * the soft labels' ``sum_c y_c d_c`` and ``sum_c y_c`` are WORK products
      and sums of non-negative terms, bounded like ``t``.

    The sum of these bounds is checked against GATE_UNITS * UNIT * loss; a row
    with small ``t`` and a label at the maximum (a confident, right prediction)
    has too little room and takes the WORK path."""
    n_rows, n_cols = x.shape
    loss = np.zeros(n_rows, dtype=WORK)
    top, low = np.max(x, axis=-1), np.min(x, axis=-1)
    with np.errstate(invalid="ignore"):
        accepted = np.isfinite(top) & np.isfinite(low)
    if not sparse:
        with np.errstate(invalid="ignore"):
            accepted &= (np.min(labels, axis=-1) >= 0) & np.isfinite(np.max(labels, axis=-1))
    accepted &= _exact_gap_rows(x, top, low)
    rows = np.flatnonzero(accepted)
    if rows.size == 0:
        return loss, accepted
    if rows.size < n_rows:
        x, top, labels = x[rows], top[rows], labels[rows]
    top = top.astype(np.float64)
    # -d_c, exact as d_c is; the exponential goes in place for the sparse loss,
    # which needs no gap but the label's (recomputed in WORK below)
    negative_gaps = np.subtract(x, top[:, None], dtype=np.float64)
    terms = np.exp(negative_gaps, out=negative_gaps if sparse else None)
    terms[np.arange(len(rows)), np.argmax(x, axis=-1)] = 0.0
    t, t_sum_bound = _sum_rows(terms)
    t_error = (EXP_ERROR + t_sum_bound) * 1.001 * t + n_cols * 2.0 ** -1073
    log_partition = np.log1p(t)
    partition_error = t_error / (1 + np.maximum(t - t_error, 0)) + 4 * WORK_EPS * log_partition
    if sparse:
        label_gaps = top.astype(WORK) - x[np.arange(len(rows)), labels].astype(WORK)
        value = label_gaps + log_partition
        error = partition_error + 2 * WORK_EPS * value
    else:
        weighted, weighted_bound = _sum_rows(np.multiply(labels, negative_gaps, dtype=WORK))
        weighted = -weighted
        mass, mass_bound = _sum_rows(labels)
        value = weighted + mass * log_partition
        error = (weighted * (weighted_bound + WORK_EPS) + mass * partition_error
                 + mass * log_partition * mass_bound + 3 * WORK_EPS * value)
    room = GATE_UNITS * np.maximum(UNIT * value, SMALLEST_SUBNORMAL)
    proven = error <= room
    loss[rows] = value
    accepted[rows] = proven
    return loss, accepted


@functools.lru_cache(maxsize=1)
def _float64_exp_trusted() -> bool:
    """Whether this platform's np.exp in float64 stays within half of
    EXP_ERROR on a sample spanning its whole range below 0, measured against
    WORK's exponential: the float64 path's error model assumes EXP_ERROR."""
    arguments = np.concatenate([np.linspace(-745.0, 0.0, 20011),
                                -np.random.default_rng(0).exponential(8.0, 20000)])
    with np.errstate(under="ignore"):
        approximate = np.exp(arguments).astype(WORK)
        exact = np.exp(arguments.astype(WORK))
        normal = exact >= np.finfo(np.float64).tiny
        relative = np.abs(approximate[normal] - exact[normal]) / exact[normal]
    return bool(np.max(relative) <= EXP_ERROR / 2)


def _softmax_rows(x: np.ndarray, labels: np.ndarray, sparse: bool, extended: bool) -> np.ndarray:
    """One block of rows: the float64 path where it applies and is proven,
    WORK for the rest."""
    with np.errstate(all="ignore"):
        exact_path = _sparse_rows_work if sparse else _soft_rows_work
        if extended or x.dtype.name not in FLOAT64_PATH_DTYPES or not _float64_exp_trusted():
            return exact_path(x, labels)
        path_labels = labels
        if not sparse and labels.dtype not in (np.float16, np.float32, np.float64):
            path_labels = labels.astype(np.float64)  # exactly: integers, booleans, bfloat16
        loss, accepted = _softmax_rows_float64(x.astype(np.float32, copy=False), path_labels, sparse)
        if not accepted.all():
            rest = ~accepted
            loss[rest] = exact_path(x[rest], labels[rest])
        return loss


# --- softmax cross-entropy ------------------------------------------------------------


def neg_log_softmax(logits, axis: int = -1, *, extended: bool = False) -> np.ndarray:
    """``-log softmax(logits)`` along ``axis``, elementwise (the per-class loss)."""
    array = np.asarray(logits)
    moved_shape = np.moveaxis(array, axis, -1).shape
    flat = _rows_of(array, axis) if array.size else np.empty((0, max(1, moved_shape[-1])))
    out = np.empty(flat.shape, dtype=WORK if extended else np.float64)

    def compute(rows):
        out[rows] = finish(_neg_log_softmax_rows(flat[rows]), extended)

    for_each_block(flat.shape[0], flat.shape[1], compute)
    return np.moveaxis(out.reshape(moved_shape), -1, axis)


def softmax_cross_entropy(logits, labels, axis: int = -1, *, extended: bool = False) -> np.ndarray:
    """Softmax cross-entropy with soft labels: ``-sum_c y_c log softmax(x)_c``.

    ``labels`` has the shape of ``logits``; the result drops ``axis``.
    """
    x, y = np.asarray(logits), np.asarray(labels)
    if x.shape != y.shape:
        raise ValueError(f"labels shape {y.shape} differs from logits shape {x.shape}")
    batch_shape = np.moveaxis(x, axis, -1).shape[:-1]
    flat_x, flat_y = _rows_of(x, axis), _rows_of(y, axis)
    out = np.empty(flat_x.shape[0], dtype=WORK)

    def compute(rows):
        out[rows] = _softmax_rows(flat_x[rows], flat_y[rows], sparse=False, extended=extended)

    for_each_block(flat_x.shape[0], flat_x.shape[1], compute)
    return finish(out.reshape(batch_shape), extended)


def check_class_indices(labels, n_classes: int) -> np.ndarray:
    """Integer class indices in [0, n_classes); anything else is a ValueError."""
    array = np.asarray(labels)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError("sparse labels must be whole numbers")
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"sparse labels must be integers, got {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(f"sparse labels must lie in [0, {n_classes}), got [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


def sparse_softmax_cross_entropy(logits, labels, axis: int = -1, *, extended: bool = False) -> np.ndarray:
    """Softmax cross-entropy with integer labels: ``-log softmax(x)[label]``.

    ``labels`` has the shape of ``logits`` without ``axis``.
    """
    x = np.asarray(logits)
    moved_shape = np.moveaxis(x, axis, -1).shape
    indices = check_class_indices(labels, moved_shape[-1])
    if indices.shape != moved_shape[:-1]:
        raise ValueError(f"labels shape {indices.shape} must be logits shape {np.shape(logits)} without axis {axis}")
    flat_x = _rows_of(x, axis)
    flat_i = indices.reshape(-1)
    out = np.empty(flat_x.shape[0], dtype=WORK)

    def compute(rows):
        out[rows] = _softmax_rows(flat_x[rows], flat_i[rows], sparse=True, extended=extended)

    for_each_block(flat_x.shape[0], flat_x.shape[1], compute)
    return finish(out.reshape(moved_shape[:-1]), extended)


# --- elementwise losses -----------------------------------------------------------------


def softplus(x) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow or cancellation, in WORK precision."""
    x = to_work(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.maximum(x, work(0)) + np.log1p(np.exp(-np.abs(x)))


def sigmoid_cross_entropy(logits, labels, *, extended: bool = False) -> np.ndarray:
    """Sigmoid cross-entropy on logits, elementwise:
    ``-(z log sigmoid(x) + (1 - z) log(1 - sigmoid(x)))``."""
    x, z = np.asarray(logits), np.asarray(labels)
    if x.shape != z.shape:
        raise ValueError(f"labels shape {z.shape} differs from logits shape {x.shape}")
    flat_x, flat_z = x.reshape(-1), z.reshape(-1)
    out = np.empty(flat_x.size, dtype=WORK if extended else np.float64)

    def compute(elements):
        out[elements] = finish(_sigmoid_elements(flat_x[elements], flat_z[elements]), extended)

    for_each_block(flat_x.size, 1, compute, ELEMENTWISE_BLOCK)
    return out.reshape(x.shape)


def _sigmoid_elements(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``z softplus(-x) + (1 - z) softplus(x)`` for a block, in WORK.

    For finite inputs the two softplus share ``l = log1p(exp(-|x|))`` and only
    one of ``max(-x, 0)``, ``max(x, 0)`` is non-zero, so the loss is
    ``c x + l`` with ``c = [x >= 0] - z``: one exponential and one logarithm
    per element, and two non-negative terms for labels in [0, 1]. Infinities
    and NaN take the general form's limits."""
    x, z = to_work(logits), to_work(labels)
    with np.errstate(over="ignore", invalid="ignore"):
        if not (np.isfinite(x).all() and np.isfinite(z).all()):
            return mul0(z, softplus(-x)) + mul0(work(1) - z, softplus(x))
        # |x| is exact in the input's own format, and cheaper there than in WORK
        shared = to_work(np.abs(logits)) if logits.dtype.kind == "f" else np.abs(x)
        np.negative(shared, out=shared)
        np.exp(shared, out=shared)
        np.log1p(shared, out=shared)
        coefficient = np.subtract(logits >= 0, z, dtype=WORK)
        np.multiply(coefficient, x, out=coefficient)
        return np.add(coefficient, shared, out=shared)


def binary_cross_entropy(probs, labels, *, extended: bool = False) -> np.ndarray:
    """Binary cross-entropy on probabilities, elementwise, exact (no clipping):
    ``-(z log p + (1 - z) log(1 - p))``."""
    p = to_work(probs)
    z = to_work(labels)
    if p.shape != z.shape:
        raise ValueError(f"labels shape {z.shape} differs from probabilities shape {p.shape}")
    return finish(-(mul0(z, _log(p)) + mul0(work(1) - z, _log1p(-p))), extended)


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p)


def _log1p(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(p)


def log_probabilities(probs) -> np.ndarray:
    """``log p`` in WORK precision, ``-inf`` at 0 and NaN below it."""
    return _log(to_work(probs))


def log1m_probabilities(probs) -> np.ndarray:
    """``log(1 - p)`` in WORK precision, exact for small ``p``."""
    return _log1p(-to_work(probs))


set_precision(choose_precision())
