"""The linear-quadratic surrogate model (``nes_asktell._surrogate``), checked against exact data.

Each fit here is of noise-free data that the model family contains, so the checks are exact up
to rounding; no assertion is statistical.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nes_asktell import _surrogate as sg


def _quadratic(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dim, dim))
    H = A @ A.T + np.eye(dim)  # symmetric, with cross terms
    return H, rng.standard_normal(dim), float(rng.standard_normal())


def _values(X: np.ndarray, H: np.ndarray, g: np.ndarray, c: float) -> np.ndarray:
    return np.einsum("ni,ij,nj->n", X, H, X) / 2 + X @ g + c


@pytest.mark.parametrize(
    ("dim", "n", "kind"),
    [
        (5, 6, None),  # 1.1 x 6 coefficients of a linear model: 6.6 points
        (5, 7, sg.LINEAR),
        (5, 12, sg.LINEAR),  # 1.1 x 11 of the diagonal model: 12.1
        (5, 13, sg.DIAGONAL),
        (5, 23, sg.DIAGONAL),  # 1.1 x 21 of the full model: 23.1
        (5, 24, sg.FULL),
        (1, 4, sg.FULL),  # 1 + 1 + 1 = 3 coefficients: 3.3
        (10, 73, sg.FULL),  # 66 coefficients: 72.6
        (30, 546, sg.FULL),  # 496 coefficients: 545.6
        (31, 10**6, sg.DIAGONAL),  # no cross terms above MAX_FULL_DIM
        (31, 69, sg.LINEAR),  # 1.1 x 63 coefficients of the diagonal model: 69.3
        (31, 70, sg.DIAGONAL),
        (31, 35, None),  # 1.1 x 32 of the linear one: 35.2
    ],
)
def test_the_model_is_the_richest_its_points_can_fit(dim: int, n: int, kind: int | None) -> None:
    assert sg.kind_for(n, dim) == kind


def test_the_coefficients_and_points_kept_are_counted_as_lq_cma_es_counts_them() -> None:
    assert [sg.n_coefficients(5, k) for k in (sg.LINEAR, sg.DIAGONAL, sg.FULL)] == [6, 11, 21]
    assert sg.max_points(5) == 42
    assert sg.max_points(10) == 132
    assert sg.max_points(31) == 126  # twice the diagonal model's 63 coefficients
    assert sg.features(np.ones((3, 4)), sg.FULL).shape == (3, 15)
    assert [sg.first_batch(lam) for lam in (4, 8, 10, 11, 40)] == [1, 1, 1, 2, 4]
    assert sg.tau_points(1, 8) == 15
    assert sg.tau_points(30, 40) == 30


@given(dim=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_a_full_quadratic_is_recovered_exactly(dim: int, seed: int) -> None:
    H, g, c = _quadratic(dim, seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((sg.max_points(dim), dim))
    model = sg.fit(X, _values(X, H, g, c))
    assert model is not None
    assert model.kind == sg.FULL
    Y = rng.standard_normal((20, dim))
    want = _values(Y, H, g, c)
    np.testing.assert_allclose(model.predict(Y), want, rtol=1e-7, atol=1e-7 * np.abs(want).max())
    assert sg.rank_agreement(model, Y, want) == pytest.approx(1.0)


def test_points_drawn_together_as_a_search_converges_still_fit() -> None:
    # Unit-cube points within 1e-7 of each other: the quadratic terms are 1e-14 of the
    # constant, lost without the centring and scaling of `fit`. The ranking must stay exact.
    H, _, _ = _quadratic(5, 1)
    rng = np.random.default_rng(1)
    centre = rng.uniform(size=5)
    X = centre + 1e-7 * rng.standard_normal((42, 5))
    f = _values((X - centre) / 1e-7, H, np.zeros(5), 0.0)  # the bowl seen at that scale
    model = sg.fit(X, f)
    assert model is not None
    Y = centre + 1e-7 * rng.standard_normal((30, 5))
    assert sg.rank_agreement(model, Y, _values((Y - centre) / 1e-7, H, np.zeros(5), 0.0)) > 0.99


def test_only_the_most_recent_points_are_fitted() -> None:
    # Old points of another function are forgotten once max_points newer ones exist.
    H, g, c = _quadratic(3, 2)
    rng = np.random.default_rng(2)
    old = rng.standard_normal((50, 3))
    new = rng.standard_normal((sg.max_points(3), 3))
    X = np.vstack([old, new])
    f = np.concatenate([np.sin(10 * old[:, 0]) * 1e3, _values(new, H, g, c)])
    model = sg.fit(X, f)
    assert model is not None
    Y = rng.standard_normal((10, 3))
    np.testing.assert_allclose(model.predict(Y), _values(Y, H, g, c), rtol=1e-7, atol=1e-7)


def test_no_model_without_enough_finite_points() -> None:
    X = np.random.default_rng(3).standard_normal((30, 2))
    assert sg.fit(X[:3], np.zeros(3)) is None  # 1.1 x 3 coefficients of a linear model
    f = np.ones(30)
    f[4] = np.inf
    assert sg.fit(X, f) is None
    f[4] = np.nan
    assert sg.fit(X, f) is None
    assert sg.fit(np.empty((0, 2)), np.empty(0)) is None


def test_the_rank_agreement_of_too_few_or_constant_points_is_minus_one() -> None:
    X = np.random.default_rng(4).standard_normal((10, 2))
    model = sg.fit(X, X.sum(axis=1))
    assert model is not None
    assert sg.rank_agreement(model, X[:2], X[:2].sum(axis=1)) == -1.0
    assert sg.rank_agreement(model, X, np.zeros(10)) == -1.0  # tau undefined
    assert sg.rank_agreement(model, X, -X.sum(axis=1)) == pytest.approx(-1.0)
