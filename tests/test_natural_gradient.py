"""With raw fitness, the SNES and XNES search gradients are unbiased natural gradients.

For a quadratic ``f(x) = 1/2 (x - c)^T H (x - c) + f0`` and the search distribution
``x = mu + A s``, ``s ~ N(0, I)`` (XNES: ``A = sigma B``; SNES: ``A = diag(sigma)``), write
``g = H (mu - c)`` and ``K = A^T H A``. The natural gradient of ``J = E[-f(x)]`` in the local
coordinates of Wierstra et al. (2014, section 4.2), where the Fisher matrix is the identity, is

    for the mean:        E[-f(x) s]            = -A^T g
    for the covariance:  E[-f(x) (s s^T - I)]  = -K

(Isserlis: ``E[s^T K s (s s^T - I)] / 2 = K``; odd moments vanish), that is ``-Sigma g`` and
``-Sigma H Sigma`` in global coordinates. With ``shaping="raw"`` (``u_k = -f(x_k)``) one tell
computes ``G_delta = sum_k u_k s_k`` and ``G_M = sum_k u_k (s_k s_k^T - I)``, sums of ``n``
independent terms, so ``G / n`` is an unbiased estimate whose component ``i`` has variance
``Var(Y_i) / n`` with ``Y = f(x) s_i`` or ``f(x) (s_i s_j - delta_ij)``. ``Var(Y)`` is the
expectation of a polynomial of degree 6 (mean) or 8 (covariance) in ``s``, computed exactly by a
5-point Gauss-Hermite rule per axis (exact up to degree 9), independently of the analytic mean.

The tests read the gradients back from the update (``eta_mu = 1`` and tiny ``eta_sigma``,
``eta_B``): ``G_delta = B^-1 (mu' - mu) / sigma``, ``G_sigma = 2 ln(sigma' / sigma) / eta_sigma``,
``G_B = 2 logm(B^-1 B') / eta_B`` and ``G_M = G_B + G_sigma I``; the read-back is exact to
about 1e-9 relative, far below the statistical tolerance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
from conftest import Z
from hypothesis import given
from hypothesis import strategies as st

from nes_asktell import SNES, XNES

N = 200_000  # samples per gradient estimate


class Quadratic:
    """A random quadratic whose minimum is a few standard deviations from `mu`.

    With ``c = mu - A z / 2``, ``z ~ N(0, I)``, the linear and quadratic parts of
    ``f(mu + A s)`` have comparable sizes, and ``E[f]`` is at most ``tr(K)/4`` away from zero,
    so that the mean and covariance gradients are both well resolved by ``N`` samples.
    """

    def __init__(self, rng: np.random.Generator, mu: np.ndarray, A: np.ndarray) -> None:
        d = mu.size
        M = rng.standard_normal((d, d))
        self.H = M @ M.T / d + 0.2 * np.eye(d)
        self.c = mu - A @ rng.standard_normal(d) / 2
        K = A.T @ self.H @ A
        D = mu - self.c
        self.f0 = float(-0.5 * D @ self.H @ D + rng.uniform(-0.75, -0.25) * np.trace(K))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        D = X - self.c
        out: np.ndarray = 0.5 * np.einsum("...i,ij,...j->...", D, self.H, D) + self.f0
        return out


def gauss_hermite(d: int, points: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (N, d) and weights (N,) integrating polynomials of degree <= 9 against N(0, I)."""
    x, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / math.sqrt(2 * math.pi)
    S = np.array(list(itertools.product(x, repeat=d)))
    W = np.prod(np.array(list(itertools.product(w, repeat=d))), axis=1)
    return S, W


def exact_moments(
    f: Quadratic, mu: np.ndarray, A: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return E[u s], Var(u s_i), E[u (ss^T - I)], Var(u (s_i s_j - d_ij)) for u = -f(mu + A s)."""
    d = mu.size
    S, W = gauss_hermite(d)
    u = -f(mu + S @ A.T)
    Y1 = u[:, None] * S
    m1 = W @ Y1
    v1 = W @ Y1**2 - m1**2
    Y2 = u[:, None, None] * (S[:, :, None] * S[:, None, :] - np.eye(d))
    m2 = np.einsum("n,nij->ij", W, Y2)
    v2 = np.einsum("n,nij->ij", W, Y2**2) - m2**2
    return m1, v1, m2, v2


def random_B(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random matrix with determinant 1 (not symmetric)."""
    S = rng.standard_normal((d, d)) * 0.3
    S = (S + S.T) / 2
    S -= np.trace(S) / d * np.eye(d)
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    Q = Q * np.sign(np.diag(R))
    if np.linalg.det(Q) < 0:
        Q[:, 0] = -Q[:, 0]
    out: np.ndarray = scipy.linalg.expm(S) @ Q
    return out


@pytest.mark.slow
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4))
def test_xnes_raw_search_gradient_is_the_natural_gradient(seed: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d)
    sigma = float(rng.uniform(0.3, 1.5))
    B = random_B(rng, d)
    f = Quadratic(rng, mu, sigma * B)
    eta_sigma, eta_B = 1e-7, 1e-7
    es = XNES(
        mu,
        sigma,
        N,
        shaping="raw",
        csa=False,
        eta_sigma=eta_sigma,
        eta_B=eta_B,
        rng=rng,
        mirrored=False,
        adaptation_sampling=False,
        rank_one=False,
    )
    state = es.state_dict()
    state["algo"]["B"] = B.tolist()
    state["algo"]["sigma"] = sigma
    es = XNES.from_state(state)
    X = es.ask()
    es.tell(X, f(X))

    G_delta = np.linalg.solve(B, es.mean - mu) / sigma
    G_sigma = 2 * math.log(es.sigma / sigma) / eta_sigma
    G_B = 2 * np.real(scipy.linalg.logm(np.linalg.solve(B, es.B))) / eta_B
    G_M = (G_B + G_B.T) / 2 + G_sigma * np.eye(d)

    A = sigma * B
    g = f.H @ (mu - f.c)
    m1, v1, m2, v2 = exact_moments(f, mu, A)
    # The quadrature reproduces the analytic natural gradient (a deterministic check of the
    # derivation in the module docstring; quadrature is exact for these polynomials).
    np.testing.assert_allclose(m1, -A.T @ g, rtol=1e-9, atol=1e-9 * (1 + np.abs(m1).max()))
    K = A.T @ f.H @ A
    np.testing.assert_allclose(m2, -K, rtol=1e-9, atol=1e-9 * (1 + np.abs(K).max()))
    # d + d(d+1)/2 <= 14 assertions per example, each |error| <= Z sd with Z = 6.57
    # (alpha = 5e-11 each, conftest), sd = sqrt(Var(Y) / N) from the exact moments.
    for i in range(d):
        assert abs(G_delta[i] / N - m1[i]) <= Z * math.sqrt(v1[i] / N)
    for i in range(d):
        for j in range(i, d):
            assert abs(G_M[i, j] / N - m2[i, j]) <= Z * math.sqrt(v2[i, j] / N)


@pytest.mark.slow
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4))
def test_snes_raw_search_gradient_is_the_natural_gradient(seed: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d)
    sigma = rng.uniform(0.3, 1.5, d)
    f = Quadratic(rng, mu, np.diag(sigma))
    eta_sigma = 1e-7
    es = SNES(mu, sigma, N, shaping="raw", csa=False, eta_sigma=eta_sigma, rng=rng, mirrored=False)
    X = es.ask()
    es.tell(X, f(X))

    G_mu = (es.mean - mu) / sigma
    G_sigma = 2 * np.log(es.sigma / sigma) / eta_sigma

    A = np.diag(sigma)
    g = f.H @ (mu - f.c)
    m1, v1, m2, v2 = exact_moments(f, mu, A)
    np.testing.assert_allclose(m1, -A.T @ g, rtol=1e-9, atol=1e-9 * (1 + np.abs(m1).max()))
    K = A.T @ f.H @ A
    np.testing.assert_allclose(
        np.diag(m2), -np.diag(K), rtol=1e-9, atol=1e-9 * (1 + np.abs(K).max())
    )
    # 2d <= 8 assertions per example, each |error| <= Z sd with Z = 6.57 (alpha = 5e-11 each),
    # sd = sqrt(Var(Y) / N) from the exact moments.
    for i in range(d):
        assert abs(G_mu[i] / N - m1[i]) <= Z * math.sqrt(v1[i] / N)
        assert abs(G_sigma[i] / N - m2[i, i]) <= Z * math.sqrt(v2[i, i] / N)
