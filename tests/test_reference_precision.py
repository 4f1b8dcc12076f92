"""The reference's working precision: which type each platform gets, and the helpers that keep the code
the same in both (reference/core.py, "The working type"). The accuracy in each is proven by the oracle and
scale self-tests, which run once per platform's choice (tests/reference_precisions.py)."""

import importlib.util

import numpy as np
import pytest

from reference import core

pytestmark = pytest.mark.selftest

needs_quad = pytest.mark.skipif(importlib.util.find_spec("numpy_quaddtype") is None,
                                reason="numpy-quaddtype is not installed (no wheel for this platform)")


@pytest.mark.parametrize("bits, expected", [
    (53, "quad"),         # macOS on Apple silicon, Windows: long double is double
    (64, "longdouble"),   # x87 extended: Linux and Intel macOS on x86-64
    (113, "longdouble"),  # IEEE binary128: Linux on aarch64
])
def test_auto_takes_long_double_only_where_it_is_extended(bits, expected):
    assert core.choose_precision("auto", long_double_bits=bits) == expected


def test_the_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("XENT_REFERENCE_PRECISION", "quad")
    assert core.choose_precision(long_double_bits=64) == "quad"
    monkeypatch.setenv("XENT_REFERENCE_PRECISION", "")
    assert core.choose_precision(long_double_bits=64) == "longdouble"


def test_a_setting_that_cannot_hold_the_contract_is_refused():
    with pytest.raises(ValueError, match="53 significand bits"):
        core.choose_precision("longdouble", long_double_bits=53)
    with pytest.raises(ValueError, match="expected auto, longdouble or quad"):
        core.choose_precision("float64", long_double_bits=64)


def test_this_platform_gets_an_extended_type():
    assert np.finfo(core.WORK_DTYPE).nmant + 1 >= core.EXTENDED_SIGNIFICAND_BITS


@needs_quad
def test_working_precision_switches_and_restores():
    before = core.PRECISION
    with core.working_precision("quad"):
        assert core.PRECISION == "quad"
        assert core.WORK_EPS == 2.0 ** -112
        assert core.to_work(np.float32(0.1)).dtype == core.WORK_DTYPE
    assert core.PRECISION == before


@pytest.mark.parametrize("precision", [
    "longdouble",
    pytest.param("quad", marks=needs_quad),
])
def test_the_helpers_are_exact_in_each_type(precision):
    if precision == "longdouble" and core.platform_long_double_bits() < core.EXTENDED_SIGNIFICAND_BITS:
        pytest.skip("long double is not extended on this platform")
    with core.working_precision(precision):
        exponents = np.array([-16000, -1074, -1, 0, 1, 1023, 5000, 16000])  # normal in both types
        powers = core.pow2(exponents)
        assert powers.dtype == core.WORK_DTYPE
        # each is a power of two: halving then doubling it is exact, and its log2 is the exponent
        assert np.all(powers * core.work(0.5) * core.work(2) == powers)
        assert [int(round(float(np.log2(p)))) for p in powers] == exponents.tolist()
        assert core.total(np.array([], dtype=np.float32)) == 0
        assert core.total(np.array([2 ** 60, 1, -(2 ** 60)], dtype=np.int64)) == 1
        clipped = core.clip(core.to_work([np.nan, -1.0, 0.5, 2.0]), 0.0, 1.0)
        assert np.isnan(clipped[0]) and clipped[1:].tolist() == core.to_work([0.0, 0.5, 1.0]).tolist()
        assert core.finish(core.work(1) + core.work(2.0 ** -60), extended=False) == 1.0
