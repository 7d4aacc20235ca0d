"""Fitness shaping: pure functions of one population's raw fitness (lower is better)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import rankdata

from nes_asktell import XNES, centered_ranks, nes_utilities, nes_weights, raw, zscore
from nes_asktell._shaping import apply, average_ranks, ranks, resolve

EPS = np.finfo(np.float64).eps

fitness = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6),
        st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0]),
    ),
    min_size=2,
    max_size=60,
).map(np.array)


@given(n=st.integers(2, 2000))
def test_nes_weights_sum_to_zero_and_do_not_increase(n: int) -> None:
    w = nes_weights(n)
    # |sum| <= n eps max|w| (summation rounding of n terms of size <= max|w| <= 1)
    assert abs(w.sum()) <= n * EPS
    assert np.all(np.diff(w) <= 0)
    assert w[0] > 0 > w[-1]
    # Wierstra et al. 2014, eq. 21: ranks k >= n/2 + 1 get the same weight -1/n
    k = np.arange(1, n + 1)
    np.testing.assert_array_equal(w[k >= n / 2 + 1], -1.0 / n)
    assert np.all(w[k < n / 2 + 1] > -1.0 / n)


def test_nes_weights_formula() -> None:
    n = 6
    raw_w = np.maximum(0.0, np.log(4.0) - np.log([1, 2, 3, 4, 5, 6]))
    np.testing.assert_allclose(nes_weights(n), raw_w / raw_w.sum() - 1 / 6, rtol=1e-15)


@given(f=fitness)
def test_ranks_put_non_finite_last_and_break_ties_by_index(f: np.ndarray) -> None:
    r = ranks(f)
    assert sorted(r.tolist()) == list(range(f.size))
    order = np.argsort(r)
    key = np.where(np.isfinite(f), f, np.inf)
    # sorted by value, non-finite (key inf) last, ties in index order
    assert all((key[a], a) < (key[b], b) for a, b in itertools.pairwise(order))


@given(f=fitness)
def test_rank_utilities_sum_to_zero_and_follow_the_order(f: np.ndarray) -> None:
    n = f.size
    for fn in (nes_utilities, centered_ranks):
        u = fn(f)
        assert u.shape == f.shape
        assert np.all(np.isfinite(u))
        assert abs(u.sum()) <= 4 * n * EPS  # rounding of n terms of size <= 1
        # better (lower) fitness never gets a lower utility
        by_rank = u[np.argsort(ranks(f))]
        assert np.all(np.diff(by_rank) <= 0)


def test_centered_ranks_values() -> None:
    np.testing.assert_allclose(
        centered_ranks(np.array([3.0, np.nan, 1.0, 2.0])),
        [-1 / 6, -0.5, 0.5, 1 / 6],
        rtol=4 * EPS,
    )


@given(f=fitness)
def test_zscore_is_standardised_and_safe(f: np.ndarray) -> None:
    u = zscore(f)
    assert np.all(np.isfinite(u))
    g = np.where(np.isfinite(f), f, np.max(f[np.isfinite(f)]) if np.isfinite(f).any() else 0.0)
    # The reference is exact equality, not np.std(g) > 0: np.std underflows to 0 for tiny
    # distinct values (squares below the smallest subnormal) and is not exactly 0 for equal
    # ones (the mean of equal values can round).
    if not np.all(g == g[0]):
        # mean 0 and std 1, up to rounding (values of size |g|/std, n of them)
        assert abs(u.mean()) <= 1e-9
        assert abs(u.std() - 1.0) <= 1e-9
        assert np.all((u[np.argsort(g)][:-1] - u[np.argsort(g)][1:]) >= -1e-9)
    else:
        assert np.all(u == 0.0)


def test_zscore_of_values_a_few_ulps_apart_is_still_standardised() -> None:
    f = np.array([-1e6, -999999.9999999999])  # adjacent doubles: the exact mean is between
    u = zscore(f)
    # two distinct values have z-scores +1 (the lower, better one) and -1, up to rounding
    np.testing.assert_allclose(u, [1.0, -1.0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("value", [0.0, 1e300, -5.0, np.nan, np.inf])
def test_zscore_all_equal_gives_zeros(value: float) -> None:
    np.testing.assert_array_equal(zscore(np.full(7, value)), np.zeros(7))


def test_zscore_matches_the_seed_formula_bit_for_bit() -> None:
    # the 2017 seed: A = (R - mean(R)) / std(R) with the reward R = -f
    f = np.random.default_rng(0).standard_normal(50) ** 2
    R = -f
    np.testing.assert_array_equal(zscore(f), (R - np.mean(R)) / np.std(R))


def test_raw_is_minus_f_with_non_finite_as_the_worst() -> None:
    np.testing.assert_array_equal(raw(np.array([1.0, np.nan, 3.0, -np.inf])), [-1, -3, -3, -3])


SHAPING_FUNCTIONS = [nes_utilities, centered_ranks, zscore, raw]


@pytest.mark.parametrize("fn", SHAPING_FUNCTIONS)
def test_shaping_functions_take_a_list_or_any_real_array(fn: Any) -> None:
    # a list raised AttributeError ("'list' object has no attribute 'shape'")
    f = np.array([3.0, np.nan, 1.0, 2.0])
    expected = fn(f)
    np.testing.assert_array_equal(fn(f.tolist()), expected)
    np.testing.assert_array_equal(fn(f.astype(np.float32)), expected)
    np.testing.assert_array_equal(fn([3, 1, 2]), fn(np.array([3.0, 1.0, 2.0])))


@pytest.mark.parametrize("fn", SHAPING_FUNCTIONS)
def test_shaping_functions_read_a_masked_value_as_nan_as_tell_does(fn: Any) -> None:
    # the data under the mask ranked the failed evaluation best, and zscore and raw returned
    # a masked array
    f = np.ma.masked_array([1.0, 0.5, 3.0], mask=[False, True, False])
    out = fn(f)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, fn(np.array([1.0, np.nan, 3.0])))


@pytest.mark.parametrize("fn", SHAPING_FUNCTIONS)
def test_shaping_functions_read_an_int_beyond_the_float_range_as_tell_does(fn: Any) -> None:
    # +-inf, as tell reads it (the conversion raised OverflowError, naming nothing)
    f = [10**400, 1, -(10**400), 2]
    np.testing.assert_array_equal(fn(f), fn(np.array([np.inf, 1.0, -np.inf, 2.0])))


@pytest.mark.parametrize("fn", SHAPING_FUNCTIONS)
@pytest.mark.parametrize(
    ("f", "exc", "match"),
    [
        ("abc", TypeError, r"`f` must be a 1-d array of real numbers, but got 'abc'\."),
        (
            [1 + 1j, 2.0],
            TypeError,
            r"`f` must be a 1-d array of real numbers, but got \[\(1\+1j\)",
        ),
        ([True, False], TypeError, r"`f` must be a 1-d array of real numbers, but got \[True"),
        ([[1.0], [2.0, 3.0]], TypeError, r"`f` must be a 1-d array of real numbers"),
        (None, TypeError, r"`f` must be a 1-d array of real numbers, but got None\."),
        ([], ValueError, r"`f` must be a non-empty 1-d array, but got shape \(0,\)\."),
        (np.array(1.0), ValueError, r"`f` must be a non-empty 1-d array, but got shape \(\)\."),
        ([[1.0, 2.0]], ValueError, r"`f` must be a non-empty 1-d array, but got shape \(1, 2\)"),
    ],
)
def test_shaping_functions_reject_what_is_no_fitness_naming_it(
    fn: Any, f: object, exc: type[Exception], match: str
) -> None:
    # AttributeError, IndexError and numpy's messages before, naming no argument
    with pytest.raises(exc, match=match):
        fn(f)


@pytest.mark.parametrize(
    ("n", "exc", "match"),
    [
        (0, ValueError, r"`n` must be an integer in \[1, 2147483648\], but got 0\."),
        (-3, ValueError, r"`n` must be an integer in \[1, 2147483648\], but got -3\."),
        ([1.0], TypeError, r"`n` must be an integer, but got \[1.0\]\."),
        # (numpy's "Maximum allowed size exceeded", naming no argument)
        (10**400, ValueError, r"`n` must be .*, but got 1000000000000000000000000000000000000"),
    ],
    ids=["zero", "negative", "a list", "past the limit"],
)
def test_nes_weights_rejects_what_is_no_population_size(
    n: object, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        nes_weights(n)  # type: ignore[arg-type]


def test_shaping_functions_do_not_modify_their_input() -> None:
    f = np.array([3.0, np.nan, 1.0])
    for fn in (nes_utilities, centered_ranks, zscore, raw):
        g = f.copy()
        fn(g)
        np.testing.assert_array_equal(g, f)


def test_resolve_and_apply_a_callable() -> None:
    fn = resolve(lambda f: -f * 2.0)
    np.testing.assert_array_equal(apply(fn, np.array([1.0, 2.0])), [-2.0, -4.0])
    assert resolve("nes") is nes_utilities
    with pytest.raises(ValueError, match=r"`shaping` must return 2 finite utilities"):
        apply(resolve(lambda f: f[:1]), np.array([1.0, 2.0]))


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e200, 1e307])
def test_zscore_does_not_depend_on_the_scale(scale: float) -> None:
    # huge values must not overflow in the squares of the standard deviation
    f = np.array([3.0, -1.0, 0.5, 2.0, np.inf])
    np.testing.assert_allclose(zscore(f * scale), zscore(f), rtol=1e-12, atol=0)


@given(
    st.lists(
        st.one_of(st.integers(-3, 3).map(float), st.floats(-1e300, 1e300)),
        min_size=1,
        max_size=40,
    )
)
def test_average_ranks_are_scipys(values: list[float]) -> None:
    # the rank test of XNES's adaptation sampling reads them; scipy's own, to the bit
    x = np.array(values)
    np.testing.assert_array_equal(average_ranks(x), rankdata(x, method="average"))


def _nested(depth: int) -> list[Any]:
    x: list[Any] = []
    for _ in range(depth):
        x = [x]
    return x


def test_shaping_errors_name_shaping_for_a_value_too_deep_to_print() -> None:
    # RecursionError from repr() before, instead of the TypeError naming `shaping`; the
    # message quotes the value's first levels (the 20 that a message prints, then "...")
    deep = _nested(100_000)
    with pytest.raises(
        TypeError,
        match=r"`shaping` must be a string or a callable, but got \[{21}\.\.\.\]{21}\.$",
    ):
        resolve(deep)
    with pytest.raises(TypeError, match=r"`shaping` must be a string or a callable"):
        XNES(np.ones(2), 0.5, shaping=deep)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`shaping` must return 2 finite utilities, but returned"):
        apply(resolve(lambda f: deep), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"`shaping` must be one of .*, but got 'xxxxx.*\.\.\."):
        resolve("x" * 100_000)
    with pytest.raises(ValueError, match=r"`shaping` must return 2 finite utilities"):
        apply(resolve(lambda f: np.full(5000, np.nan)), np.array([1.0, 2.0]))
