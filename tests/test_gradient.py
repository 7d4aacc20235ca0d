"""The Monte-Carlo gradient estimate against analytic gradients, with exact tolerances.

Derivation (mirrored sampling, m pairs, n = 2m evaluations, z_k ~ N(0, I_d) independent)::

    g_hat = 1/(2 m sigma) sum_k (f(x + sigma z_k) - f(x - sigma z_k)) z_k.

For a quadratic f(y) = 1/2 y^T A y + b^T y + c (and for a linear f, A = 0) the difference is
exactly f(x + sigma z) - f(x - sigma z) = 2 sigma z^T g with g = A x + b, the gradient at x, so

    g_hat = (1/m) sum_k z_k z_k^T g,      E[g_hat] = g,
    Cov[g_hat] = (E[z z^T g g^T z z^T] - g g^T) / m = (|g|^2 I + g g^T) / m

(Isserlis: E[z (z.g)^2 z^T] = |g|^2 I + 2 g g^T). Instead of a normal approximation (poor in
the far tails the false-alarm budget needs), the tests use the exact distribution. Let u = g/|g|,
a_k = z_k.u ~ N(0, 1), and b_k = the components of z_k orthogonal to u ~ N(0, I_{d-1}),
independent of a. Then

* T1 = m (g_hat.u) / |g| = sum_k a_k^2            ~ chi2(m)               exactly;
* P  = g_hat - (g_hat.u) u = (|g|/m) sum_k a_k b_k  | a ~ N(0, |g|^2 T1/m^2 I_{d-1}), so
  T2 = m^2 |P|^2 / (|g|^2 T1)                       ~ chi2(d - 1), independent of T1.

Both are checked two-sided at ALPHA_PER_ASSERTION (5e-11, see conftest: Bonferroni over the
suite's 1e-6 budget), i.e. chi2 quantiles alpha/2 and 1 - alpha/2. Their variances reproduce
the covariance above: Var(g_hat.u) = 2|g|^2/m, Var(P_i) = E[T1] |g|^2/m^2 = |g|^2/m.

Without mirroring (n evaluations) the estimate for f is 1/(n sigma) sum_k f(x + sigma z_k) z_k;
for f(y) = g.(y - x) + c it is (1/n) sum_k z_k z_k^T g + c/(n sigma) sum_k z_k: the first term
has the same law as above with m = n, and the second (the variance that mirroring removes) is
exactly N(0, c^2/(n sigma^2) I).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from conftest import ALPHA_PER_ASSERTION
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nes_asktell import OpenES, estimate_gradient

ALPHA = ALPHA_PER_ASSERTION
EPS = np.finfo(np.float64).eps


def chi2_band(dof: int) -> tuple[float, float]:
    """Two-sided acceptance band of chi2(dof) at ALPHA (each tail ALPHA/2)."""
    return float(stats.chi2.ppf(ALPHA / 2, dof)), float(stats.chi2.isf(ALPHA / 2, dof))


def mirrored_statistics(g_hat: np.ndarray, g: np.ndarray, m: int) -> tuple[float, float | None]:
    """Return (T1, T2) of the module docstring (T2 is None when d = 1)."""
    norm = float(np.linalg.norm(g))
    u = g / norm
    along = float(g_hat @ u)
    T1 = m * along / norm
    if g.size == 1:
        return T1, None
    P = g_hat - along * u
    T2 = m**2 * float(P @ P) / (norm**2 * T1)
    return T1, T2


def accepts(g_hat: np.ndarray, g: np.ndarray, m: int) -> bool:
    """Whether both exact statistics lie in their bands (two assertions' worth of alpha)."""
    T1, T2 = mirrored_statistics(g_hat, g, m)
    lo, hi = chi2_band(m)
    if not lo <= T1 <= hi:
        return False
    if T2 is None:
        return True
    lo2, hi2 = chi2_band(g.size - 1)
    return lo2 <= T2 <= hi2


def assert_exact_law(g_hat: np.ndarray, g: np.ndarray, m: int) -> None:
    T1, T2 = mirrored_statistics(g_hat, g, m)
    lo, hi = chi2_band(m)
    # T1 ~ chi2(m) exactly; two-sided band at alpha = 5e-11 (one assertion of the budget)
    assert lo <= T1 <= hi, (T1, lo, hi, m)
    if T2 is not None:
        lo2, hi2 = chi2_band(g.size - 1)
        # T2 ~ chi2(d - 1) exactly, independent of T1; band at alpha = 5e-11 (one assertion)
        assert lo2 <= T2 <= hi2, (T2, lo2, hi2, g.size)


def random_quadratic(
    seed: int, d: int
) -> tuple[Callable[[np.ndarray], float], np.ndarray, np.ndarray]:
    """A random quadratic (any symmetric A, not only definite), a point x, and grad f(x)."""
    r = np.random.default_rng(seed)
    M = r.standard_normal((d, d))
    A = (M + M.T) / 2
    b = r.standard_normal(d)
    c = float(r.standard_normal())
    x = r.standard_normal(d)

    def f(y: np.ndarray) -> float:
        return float(0.5 * y @ A @ y + b @ y + c)

    return f, x, A @ x + b


seeds = st.integers(0, 2**32 - 1)
dims = st.integers(1, 8)
pairs = st.integers(1, 200)
sigmas = st.sampled_from([0.01, 0.3, 1.0, 3.0])


@given(seed=seeds, d=dims, m=pairs, sigma=sigmas)
def test_mirrored_estimate_of_a_random_quadratic_has_the_exact_law(
    seed: int, d: int, m: int, sigma: float
) -> None:
    f, x, g = random_quadratic(seed, d)
    g_hat = estimate_gradient(f, x, sigma, 2 * m, rng=seed + 1)
    assert_exact_law(g_hat, g, m)


@given(seed=seeds, d=dims, m=pairs, sigma=sigmas)
def test_mirrored_estimate_of_a_linear_function_has_the_same_law(
    seed: int, d: int, m: int, sigma: float
) -> None:
    # linear f: not exact either; g_hat = (1/m) sum z z^T g, the same law as for a quadratic
    r = np.random.default_rng(seed)
    g = r.standard_normal(d) * r.choice([1e-3, 1.0, 1e3])
    c = float(r.standard_normal())

    def f(y: np.ndarray) -> float:
        return float(g @ y + c)

    g_hat = estimate_gradient(f, r.standard_normal(d), sigma, 2 * m, rng=seed)
    assert_exact_law(g_hat, g, m)


@pytest.mark.slow
@settings(max_examples=10)
@given(seed=seeds, d=st.integers(2, 6))
def test_error_shrinks_as_one_over_sqrt_popsize(seed: int, d: int) -> None:
    """m |g_hat - g|^2 / |g|^2 stays below a bound that does not grow with m.

    With T1 ~ chi2(m) in [lo, hi] and T2 ~ chi2(d-1) <= hi2 (each tail alpha/2; three
    assertions' worth of alpha per m, spent through the union bound):

        m |e|^2 / |g|^2 = (T1 - m)^2 / m + T2 T1 / m
                       <= max((lo - m)^2, (hi - m)^2) / m + hi2 hi / m  =: B(m),

    and B(m) tends to z^2 * 2 + hi2 (about 130 for d = 6), whatever m. An error that does not
    shrink as 1/sqrt(m) makes the left side grow like m and fails at the largest m: with
    m = 4096 and an error stuck at the level of m = 16, the left side is about 256 (d + 1) > B.
    """
    f, x, g = random_quadratic(seed, d)
    for j, m in enumerate((16, 256, 4096)):
        g_hat = estimate_gradient(f, x, 0.5, 2 * m, rng=seed + j)
        e = g_hat - g
        scaled = m * float(e @ e) / float(g @ g)
        lo, hi = chi2_band(m)
        hi2 = float(stats.chi2.isf(ALPHA / 2, d - 1))
        bound = max((lo - m) ** 2, (hi - m) ** 2) / m + hi2 * hi / m
        assert scaled <= bound, (m, scaled, bound)


def test_the_exact_law_rejects_wrong_estimators() -> None:
    # The acceptance test has power: a factor-2 scale error, a sign error, and an error that
    # does not shrink with m are rejected. Fixed seeds: a deterministic check of the test itself.
    f, x, g = random_quadratic(11, 5)
    m = 2000
    g_hat = estimate_gradient(f, x, 0.5, 2 * m, rng=12)
    assert accepts(g_hat, g, m)
    assert not accepts(2.0 * g_hat, g, m)
    assert not accepts(-g_hat, g, m)
    small = estimate_gradient(f, x, 0.5, 2 * 8, rng=12)  # the error of m = 8, claimed as m = 2000
    assert not accepts(small, g, m)


@given(seed=seeds, d=dims, m=pairs)
def test_mirrored_estimate_ignores_a_constant_offset(seed: int, d: int, m: int) -> None:
    # (f + c)(x + s z) - (f + c)(x - s z) = f(x + s z) - f(x - s z): equal up to rounding.
    f, x, _ = random_quadratic(seed, d)
    c = 1e3
    a = estimate_gradient(f, x, 0.3, 2 * m, rng=seed)
    b = estimate_gradient(lambda y: f(y) + c, x, 0.3, 2 * m, rng=seed)
    # rounding: each value carries an error <= |value| * eps; |value| <= c + max|f| over the
    # 2m points, so each difference is off by <= 4 eps (c + F) and the average by at most
    # 4 eps (c + F) max|z| / (2 sigma); 1e3 times that covers it generously.
    X = OpenES(x, 0.3, 2 * m, shaping="raw", rng=seed).ask()
    F = max(abs(f(row)) for row in X)
    zmax = float(np.max(np.abs(X - x))) / 0.3
    np.testing.assert_allclose(a, b, rtol=0, atol=1e3 * 4 * EPS * (c + F) * zmax / 0.6)


@given(seed=seeds, d=dims, n=st.integers(2, 400), sigma=sigmas)
def test_plain_estimate_of_a_linear_function_has_the_exact_law(
    seed: int, d: int, n: int, sigma: float
) -> None:
    # f(y) = g.(y - x): f(x) = 0, so g_hat = (1/n) sum z z^T g: the mirrored law with m = n.
    r = np.random.default_rng(seed)
    g = r.standard_normal(d)
    x = r.standard_normal(d)

    def f(y: np.ndarray) -> float:
        return float(g @ (y - x))

    g_hat = estimate_gradient(f, x, sigma, n, mirrored=False, rng=seed)
    # rounding of y - x is relative eps: negligible next to the chi2 bands (which are O(1)).
    assert_exact_law(g_hat, g, n)


@given(seed=seeds, d=dims, n=st.integers(2, 400), sigma=sigmas)
def test_plain_estimate_carries_the_offset_variance_that_mirroring_removes(
    seed: int, d: int, n: int, sigma: float
) -> None:
    # With the same noise, the estimate for f + c minus the one for f is c/(n sigma) sum z_k,
    # so Q = n sigma^2 |difference|^2 / c^2 = |sum z_k|^2 / n ~ chi2(d) exactly.
    f, x, _ = random_quadratic(seed, d)
    c = 50.0
    a = estimate_gradient(f, x, sigma, n, mirrored=False, rng=seed)
    b = estimate_gradient(lambda y: f(y) + c, x, sigma, n, mirrored=False, rng=seed)
    Q = n * sigma**2 * float((b - a) @ (b - a)) / c**2
    lo, hi = chi2_band(d)
    # Q ~ chi2(d); two-sided band at alpha = 5e-11 (one assertion). Rounding of f + c is
    # relative 1e-16 of c: negligible next to the band's width.
    assert lo <= Q <= hi, (Q, lo, hi)


@given(
    seed=seeds,
    d=dims,
    half=st.integers(1, 40),
    mirrored=st.booleans(),
    lr=st.sampled_from([1e-3, 0.1, 2.0]),
)
def test_openes_raw_sgd_step_is_learning_rate_times_the_estimate(
    seed: int, d: int, half: int, mirrored: bool, lr: float
) -> None:
    f, x, _ = random_quadratic(seed, d)
    n = 2 * half
    g_hat = estimate_gradient(f, x, 0.2, n, mirrored=mirrored, rng=seed)
    es = OpenES(
        x, 0.2, n, optimizer="sgd", learning_rate=lr, shaping="raw", mirrored=mirrored, rng=seed
    )
    X = es.ask()
    es.tell(X, [f(row) for row in X])
    # the same noise, the same arithmetic: equal to the last bit
    np.testing.assert_array_equal(es.mean, x - lr * g_hat)


def test_estimate_uses_the_noise_of_openes_generation_zero() -> None:
    # documented: with the same integer seed the perturbations equal those of generation 0 of
    # OpenES(x, sigma, popsize, rng=seed, mirrored=mirrored); checked through a linear f whose
    # estimate is a known function of the noise.
    d, n, sigma = 4, 10, 0.5
    g = np.array([1.0, -2.0, 0.5, 3.0])
    x = np.zeros(d)
    for mirrored in (True, False):
        X = OpenES(x, sigma, n, rng=9, mirrored=mirrored).ask()
        Z = (X - x) / sigma
        expected = (
            Z.T @ (Z @ g) / n if not mirrored else Z[: n // 2].T @ (Z[: n // 2] @ g) / (n // 2)
        )
        got = estimate_gradient(lambda y: float(g @ y), x, sigma, n, mirrored=mirrored, rng=9)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["generator", "seedsequence"])
def test_estimate_accepts_every_rng_kind(kind: str) -> None:
    f, x, _ = random_quadratic(3, 3)
    make = {
        "generator": lambda: np.random.default_rng(5),
        "seedsequence": lambda: np.random.SeedSequence(5),
    }[kind]
    a = estimate_gradient(f, x, 0.1, 8, rng=make())
    b = estimate_gradient(f, x, 0.1, 8, rng=make())
    np.testing.assert_array_equal(a, b)
    if kind == "seedsequence":  # the same stream as the integer seed
        np.testing.assert_array_equal(a, estimate_gradient(f, x, 0.1, 8, rng=5))


@pytest.mark.parametrize("value", ["1.5", True, None])
def test_estimate_accepts_only_real_numbers_from_fun(value: object) -> None:
    with pytest.raises(TypeError, match=r"`fun` must return a real number, but '<lambda>' ret"):
        estimate_gradient(lambda x: value, np.ones(2), 0.1, 4, rng=0)


def test_an_estimate_beyond_the_float_range_raises_instead_of_returning_inf() -> None:
    # Finite values of fun gave [inf, -inf] with numpy's RuntimeWarning: an overflow went on
    # as a gradient.
    with pytest.raises(FloatingPointError, match=r"beyond the float range .* `sigma` = 0\.001"):
        estimate_gradient(lambda x: 1e307 * np.sign(x[0]), np.zeros(2), 1e-3, 10, rng=0)
    with pytest.raises(FloatingPointError, match="largest \\|fun\\| = 1e\\+306"):
        estimate_gradient(lambda x: 1e306, np.zeros(2), 1e-3, 10, mirrored=False, rng=0)
    es = OpenES(np.zeros(2), 1e-3, 10, rng=0)
    es.ask()
    u = np.r_[np.full(5, 1e307), np.full(5, -1e307)]
    with pytest.raises(FloatingPointError, match=r"largest \|u_k\| = 1e\+307 and sigma = 0\.001"):
        es.gradient(u)
    # a representable estimate is returned as before
    assert np.all(np.isfinite(es.gradient(u * 1e-10)))
