"""DXNESIC and CRFMNES: their updates against independent computations from the papers.

Each reference below re-does one generation from the candidates alone (the noise z_k is
recovered from x_k by solving with the covariance factor, the candidates are sorted by
fitness, and every sum is a loop over the sorted samples), with dense linear algebra where the
strategies use closed forms: scipy's ``expm`` for the matrix exponential, ``det`` for the
normalisations, a dense solve for the Sherman-Morrison step of CR-FM-NES. The comparisons are
deterministic (rounding only), not statistical.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy.linalg import expm, sqrtm

from nes_asktell import CRFMNES, DXNESIC, SNES, XNES, NESWarning, Strategy
from nes_asktell._crfmnes import half_log_det, rank_one_condition
from nes_asktell._dxnesic import h_inv
from nes_asktell._xnes import COND_B_MAX

RTOL = 1e-9


def ellipsoid(x: np.ndarray) -> float:
    w = 10.0 ** np.linspace(0, 3, x.size)
    return float(np.sum(w * (x - 1.0) ** 2))


def paper_weights(lam: int) -> tuple[np.ndarray, np.ndarray, float]:
    """w_hat, w_rank (best first) and mu_eff (Nomura et al. 2021, Table 1)."""
    w_hat = np.array([max(0.0, math.log(lam / 2 + 1) - math.log(i)) for i in range(1, lam + 1)])
    w_rank = w_hat / w_hat.sum() - 1.0 / lam
    mueff = 1.0 / sum((w + 1.0 / lam) ** 2 for w in w_rank)
    return w_hat, w_rank, mueff


def chi(d: int) -> float:
    return math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d))


def eta_sigma_ref(norm_p: float, d: int, lam_f: int) -> float:
    if norm_p >= chi(d):
        return 1.0
    if norm_p >= 0.1 * chi(d):
        return math.tanh((0.024 * lam_f + 0.7 * d + 20) / (d + 12))
    return 2 * math.tanh((0.025 * lam_f + 0.75 * d + 10) / (d + 4))


def weights_ref(z, w_hat, w_rank, norm_p, d, lam, lam_f):
    """The phase weights: distance weights in movement, else the rank weights."""
    if norm_p < chi(d):
        return w_rank
    alpha = h_inv(d) * min(1.0, math.sqrt(lam / d)) * math.sqrt(lam_f / lam)
    raw = np.array([w_hat[i] * math.exp(alpha * np.linalg.norm(z[i])) for i in range(lam)])
    return raw / raw.sum() - 1.0 / lam


# ---------------------------------------------------------------------- DX-NES-IC
def dxnesic_reference(es: DXNESIC, X: np.ndarray, f: np.ndarray, lam_f: int) -> dict:
    """One DX-NES-IC generation (Nomura and Ono 2021, Algorithm 1), sample by sample."""
    st = es.state_dict()["algo"]
    d, lam = es.dim, es.popsize
    m, sigma, B = es.mean, st["sigma"], np.array(st["B"])
    p, gamma = np.array(st["p_sigma"]), st["gamma"]
    order = np.argsort(f, kind="stable")
    z = np.array([np.linalg.solve(sigma * B, X[i] - m) for i in order])
    w_hat, w_rank, mueff = paper_weights(lam)
    c_s = (mueff + 2) / (d + mueff + 5)
    p = (1 - c_s) * p + math.sqrt(c_s * (2 - c_s) * mueff) * sum(
        w_rank[i] * z[i] for i in range(lam)
    )
    norm_p = float(np.linalg.norm(p))
    w = weights_ref(z, w_hat, w_rank, norm_p, d, lam, lam_f)
    eta_sigma = eta_sigma_ref(norm_p, d, lam_f)
    c_B = 180 if norm_p >= chi(d) else 168 if norm_p >= 0.1 * chi(d) else 12
    eta_B = c_B * d * math.tanh(0.02 * lam_f) / (47 * d * d + 6400)
    G_delta = sum(w[i] * z[i] for i in range(lam))
    G_M = sum(w[i] * (np.outer(z[i], z[i]) - np.eye(d)) for i in range(lam))
    G_sigma = np.trace(G_M) / d
    G_B = G_M - G_sigma * np.eye(d)
    m_new = m + sigma * B @ G_delta
    sigma_new = sigma * math.exp(eta_sigma / 2 * G_sigma)
    B_new = B @ expm(eta_B / 2 * G_B)
    A_old, A_new = B @ B.T, B_new @ B_new.T
    _e, V = np.linalg.eigh(A_old)
    tau = [V[:, i] @ A_new @ V[:, i] / (V[:, i] @ A_old @ V[:, i]) - 1 for i in range(d)]
    c_g, d_g = 1 / (3 * (d - 1)), min(1.0, d / lam)
    gamma = max((1 - c_g) * gamma + c_g * math.sqrt(1 + d_g * max(tau)), 1.0)
    if norm_p >= chi(d):
        Q = np.eye(d) + (gamma - 1) * sum(
            np.outer(V[:, i], V[:, i]) for i in range(d) if tau[i] > 0
        )
        root = np.linalg.det(Q) ** (1 / d)
        sigma_new *= root
        B_new = Q @ B_new / root
    return {"mean": m_new, "sigma": sigma_new, "B": B_new, "p_sigma": p, "gamma": gamma}


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize(("d", "seed"), [(2, 0), (5, 1), (8, 2)])
def test_dxnesic_update_matches_the_paper(d: int, seed: int, implicit: bool) -> None:
    es = DXNESIC(np.full(d, 4.0), 0.5, rng=seed, implicit_constraints=implicit)
    phases = set()
    for g in range(60):
        X = es.ask()
        f = np.array([ellipsoid(x) for x in X])
        lam_f = es.popsize
        if implicit and g % 3 == 0:
            f[np.argsort(f)[-2:]] = np.inf  # two infeasible candidates
            lam_f -= 2
        ref = dxnesic_reference(es, X, f, lam_f)
        es.tell(X, f)
        phases.add(es.phase)
        np.testing.assert_allclose(es.mean, ref["mean"], rtol=RTOL, atol=1e-12)
        assert es.sigma == pytest.approx(ref["sigma"], rel=RTOL)
        np.testing.assert_allclose(es.B, ref["B"], rtol=1e-8, atol=1e-10)
        assert es.gamma == pytest.approx(ref["gamma"], rel=RTOL)
    assert "move" in phases
    assert len(phases) >= 2


def test_dxnesic_defaults_follow_the_paper() -> None:
    a = h_inv(10)
    assert (1 + a * a) * math.exp(a * a / 2) / 0.24 - 10 - 10 == pytest.approx(0, abs=1e-9)
    es = DXNESIC(np.zeros(11), 1.0)
    assert es.popsize == 4 + math.floor(3 * math.log(11)) + 1  # 11, made even: mirrored
    assert es.mirrored
    assert (es.gamma, es.phase) == (1.0, "move")


# ---------------------------------------------------------------------- CR-FM-NES
def vd_natural_gradient(y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, s) of one row y (Nomura and Ono 2022, Algorithm 2), the inverse as a dense solve."""
    nv2 = float(v @ v)
    vb = v / math.sqrt(nv2)
    vbb = vb**2
    gv = 1 + nv2
    ip = float(y @ vb)
    alpha = min(1.0, math.sqrt(nv2**2 + (2 * gv - math.sqrt(gv)) / vbb.max()) / (2 + nv2))
    t = y * ip - 0.5 * (ip**2 + gv) * vb
    b = -(1 - alpha**2) * nv2**2 / gv + 2 * alpha**2
    H = np.diag(2 - (b + 2 * alpha**2) * vbb)
    s = y**2 - nv2 / gv * ip * y * vb - 1
    s = s - alpha / gv * ((2 + nv2) * t * vb - nv2 * float(t @ vb) * vbb)
    s = np.linalg.solve(H + b * np.outer(vbb, vbb), s)
    t = t - alpha * ((2 + nv2) * s * vb - float(s @ vbb) * vb)
    return t, s


def crfmnes_reference(es: CRFMNES, X: np.ndarray, f: np.ndarray) -> dict:
    """One CR-FM-NES generation (Nomura and Ono 2022, Algorithm 1), sample by sample."""
    st = es.state_dict()["algo"]
    d, lam = es.dim, es.popsize
    m, sigma = es.mean, st["sigma"]
    v, D = np.array(st["v"]), np.array(st["D"])
    ps, pc = np.array(st["p_sigma"]), np.array(st["p_c"])
    root = np.real(sqrtm(np.eye(d) + np.outer(v, v)))  # (I + v v^T)^(1/2)
    order = np.argsort(f, kind="stable")
    y = np.array([(X[i] - m) / (sigma * D) for i in order])
    z = np.array([np.linalg.solve(root, y[i]) for i in range(lam)])
    w_hat, w_rank, mueff = paper_weights(lam)
    c_s = (mueff + 2) / (d + mueff + 5)
    c_c = (4 + mueff / d) / (d + 4 + 2 * mueff / d)
    c1 = max(0.0, 2 / ((d + 1.3) ** 2 + mueff) * (d - 5) / 6)  # the paper's, not below 0
    eta_B = math.tanh((min(0.02 * lam, 3 * math.log(d)) + 5) / (0.23 * d + 25))
    ps = (1 - c_s) * ps + math.sqrt(c_s * (2 - c_s) * mueff) * sum(
        w_rank[i] * z[i] for i in range(lam)
    )
    norm_p = float(np.linalg.norm(ps))
    w = weights_ref(z, w_hat, w_rank, norm_p, d, lam, lam)
    eta_sigma = eta_sigma_ref(norm_p, d, lam)
    wxm = sum(w[i] * (X[order[i]] - m) for i in range(lam))
    pc = (1 - c_c) * pc + math.sqrt(c_c * (2 - c_c) * mueff) * wxm / sigma
    m_new = m + wxm
    dv, dD = np.zeros(d), np.zeros(d)
    for i in range(lam + 1):
        row, weight = (y[i], eta_B * w[i]) if i < lam else (pc / D, c1)
        t, s = vd_natural_gradient(row, v)
        dv += weight * t
        dD += weight * s
    v_new = v + dv / np.linalg.norm(v)
    D_new = D + dD * D
    det = np.linalg.det(np.diag(D_new) @ (np.eye(d) + np.outer(v_new, v_new)) @ np.diag(D_new))
    D_new = D_new / det ** (1 / (2 * d))
    G_s = sum(w[i] * (z[i] @ z[i] - d) for i in range(lam)) / d
    sigma_new = sigma * math.exp(eta_sigma / 2 * G_s)
    return {"mean": m_new, "sigma": sigma_new, "v": v_new, "D": D_new, "p_c": pc}


@pytest.mark.parametrize(("d", "seed"), [(3, 0), (6, 1), (12, 2)])
def test_crfmnes_update_matches_the_paper(d: int, seed: int) -> None:
    es = CRFMNES(np.full(d, 4.0), 0.5, rng=seed)
    phases = set()
    for _ in range(60):
        X = es.ask()
        f = np.array([ellipsoid(x) for x in X])
        ref = crfmnes_reference(es, X, f)
        es.tell(X, f)
        phases.add(es.phase)
        np.testing.assert_allclose(es.mean, ref["mean"], rtol=RTOL, atol=1e-12)
        assert es.sigma == pytest.approx(ref["sigma"], rel=1e-8)
        np.testing.assert_allclose(es.v, ref["v"], rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(es.D, ref["D"], rtol=1e-8)
        det = np.prod(es.D) ** 2 * (1 + es.v @ es.v)
        assert det == pytest.approx(1.0, rel=1e-12)
    assert "move" in phases
    assert len(phases) >= 2


def test_crfmnes_rank_one_rate_is_the_papers_but_not_negative() -> None:
    # Nomura and Ono's c_1 (d - 5) / 6 from d = 5 on; below, where it is negative, 0
    for d in (2, 3, 4, 5, 6, 12, 100):
        es = CRFMNES(np.zeros(d), 1.0)
        _, _, mueff = paper_weights(es.popsize)
        paper = 2 / ((d + 1.3) ** 2 + mueff) * (d - 5) / 6
        assert es._c1 == pytest.approx(max(0.0, paper), rel=1e-12)
        assert (es._c1 > 0) == (d > 5)


def _separable_ellipsoid_solved(es: CRFMNES) -> bool:
    d = es.dim
    scale = 1e6 ** (np.arange(d) / (d - 1))
    res = es.optimize(lambda x: float(scale @ (x * x)), maxfev=20_000)
    return bool(res.fun <= 1e-8)


@pytest.mark.parametrize("d", [2, 3])
def test_crfmnes_learns_a_small_separable_ellipsoid(d: int) -> None:
    # With the paper's negative rank-one rate below d = 5, CR-FM-NES failed on this ellipsoid
    # (condition 1e6) from x0 = 1: 0 of 10 seeds at d = 2 and 3 of 10 at d = 3 reached 1e-8
    # in 20,000 evaluations (the authors' own code: 1 of 10 at both d). Deterministic seeds.
    solved = [
        _separable_ellipsoid_solved(CRFMNES(np.ones(d), 1.0, rng=s, ftarget=1e-8))
        for s in range(10)
    ]
    assert all(solved)
    paper = []
    for s in range(10):
        es = CRFMNES(np.ones(d), 1.0, rng=s, ftarget=1e-8)
        es._c1 = 2 / ((d + 1.3) ** 2 + es._phases.mueff) * (d - 5) / 6
        paper.append(_separable_ellipsoid_solved(es))
    assert sum(paper) <= 3  # the rate is what differs


def test_crfmnes_samples_from_its_covariance() -> None:
    # x = m + sigma D y with y = (I + v v^T)^(1/2) z: check the factor on the asked rows
    es = CRFMNES(np.zeros(5), 0.7, rng=4)
    X = es.ask()
    root = np.real(sqrtm(np.eye(5) + np.outer(es.v, es.v)))
    Y = X / (0.7 * es.D)
    Z = np.linalg.solve(root, Y.T).T
    m = es.popsize // 2
    np.testing.assert_allclose(Z[:m], -Z[m:], atol=1e-12)  # mirrored pairs
    np.testing.assert_allclose(root @ root, np.eye(5) + np.outer(es.v, es.v), rtol=1e-12)
    # the recovered z are standard normals drawn for this ask: |z|^2 is finite and positive
    assert np.all(np.einsum("ij,ij->i", Z, Z) > 0)


# ---------------------------------------------------------------------- options and state
@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_implicit_constraints_is_checked(cls: type[Strategy]) -> None:
    with pytest.raises(TypeError, match="`implicit_constraints` must be"):
        cls(np.zeros(3), 1.0, implicit_constraints="yes")  # type: ignore[call-arg]


@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_implicit_constraints_counts_non_finite_values(cls: type[Strategy]) -> None:
    a = cls(np.full(4, 2.0), 0.5, rng=1, implicit_constraints=True)  # type: ignore[call-arg]
    b = cls(np.full(4, 2.0), 0.5, rng=1)
    for _ in range(12):  # until a movement phase uses the distance weights
        Xa, Xb = a.ask(), b.ask()
        f = np.array([ellipsoid(x) for x in Xa])
        f[np.argsort(f)[-1]] = np.nan
        a.tell(Xa, f)
        b.tell(Xb, f)
    assert not np.array_equal(a.mean, b.mean)


@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_implicit_constraints_sets_the_step_size_rate_outside_movement_too(
    cls: type[Strategy],
) -> None:
    # docs (crfmnes.rst, the CRFMNES docstring) said that lambda_F enters the distance
    # weights only; it sets eta_sigma of the stagnation and convergence phases as well, where
    # the weights are the rank weights and the means stay equal
    a = cls(np.full(4, 2.0), 0.5, rng=1, implicit_constraints=True)  # type: ignore[call-arg]
    b = cls(np.full(4, 2.0), 0.5, rng=1)
    X = a.ask()
    f = np.array([ellipsoid(x) for x in X])
    f[np.argmax(f)] = np.nan
    a.tell(X, f)
    b.tell(b.ask(), f)
    assert a.phase == b.phase == "stag"  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.sigma != b.sigma


@pytest.mark.parametrize(
    ("cls", "key", "bad", "match"),
    [
        (DXNESIC, "B", [[2.0, 0.0], [0.0, 2.0]], "determinant 1"),
        (DXNESIC, "gamma", 0.5, "`gamma` must be at least 1"),
        (DXNESIC, "phase", "fast", "`phase` must be one of"),
        (CRFMNES, "D", [1.0, -1.0], "`D` must be positive"),
        (CRFMNES, "v", [0.0, 0.0], "`v` must be nonzero"),
        (CRFMNES, "v", [1e308, 0.0], "finite"),  # |v|^2 overflows: sampling would give NaN
        (DXNESIC, "sigma", 1e308, r"`sigma` must be a number in \[1e-100, 1e\+100\]"),
        (CRFMNES, "sigma", 1e308, r"`sigma` must be a number in \[1e-100, 1e\+100\]"),
        (CRFMNES, "phase", "fast", "`phase` must be one of"),
    ],
)
def test_from_state_rejects_crafted_algorithm_state(cls, key, bad, match) -> None:
    es = cls(np.zeros(2), 1.0, rng=0)
    X = es.ask()
    es.tell(X, [float(x @ x) for x in X])
    state = json.loads(json.dumps(es.state_dict()))
    state["algo"][key] = bad
    with pytest.raises(ValueError, match=match):
        Strategy.from_state(state)


def test_crfmnes_survives_a_degenerate_v_on_a_rotated_ellipsoid() -> None:
    # A rotated ellipsoid (condition 1e6) at d = 5 is outside what D (I + v v^T) D can
    # represent: |v| grows without bound until the increments stop being finite (this seed
    # gets there within 1500 generations). The strategy must keep a valid state (v and D
    # kept for such a generation) and stay checkpointable, not raise.
    d = 5
    Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((d, d)))
    w = 10.0 ** (6 * np.arange(d) / (d - 1))
    es = CRFMNES(np.full(d, 3.0), 2.0, rng=1)
    for _ in range(1500):
        X = es.ask()
        es.tell(X, [float(w @ (Q @ (x - 1.0)) ** 2) for x in X])
    assert np.linalg.norm(es.v) > 1e6  # the degenerate case was reached
    assert np.all(es.D > 0)
    assert np.all(np.isfinite(es.D))
    copy = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
    np.testing.assert_array_equal(copy.ask(), es.ask())


@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_per_coordinate_sigma0_sets_the_initial_shape(cls: type[Strategy]) -> None:
    # One step size per coordinate, as XNES and SNES take it: sigma starts at their geometric
    # mean and the shape (B for DXNESIC, D for CRFMNES) at sigma0 / sigma, and the state loads.
    sigma0 = np.array([0.4, 0.2, 0.05])
    es = cls(np.zeros(3), sigma0, rng=3)
    geo = float(np.exp(np.mean(np.log(sigma0))))
    assert es.sigma == pytest.approx(geo, rel=1e-15)
    shape = es.B if cls is DXNESIC else np.diag(es.D)  # type: ignore[attr-defined]
    np.testing.assert_allclose(shape, np.diag(sigma0 / geo), rtol=1e-15)
    twin = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
    np.testing.assert_array_equal(twin.ask(), es.ask())
    with pytest.raises(ValueError, match="`sigma0` must have shape"):
        cls(np.zeros(3), [0.1, 0.2])


def test_dxnesic_per_coordinate_sigma0_is_bounded_like_xnes() -> None:
    with pytest.raises(ValueError, match="`sigma0` must have a ratio"):
        DXNESIC(np.zeros(3), [1.0, 1e-11, 1.0])


def test_dxnesic_checks_the_size_of_b_before_allocating_it() -> None:
    # A 10**5-long mean would ask for a 74.5 GiB B: refused before any allocation, as by XNES.
    with pytest.raises(ValueError, match=r"dim\*\*2 \(the matrix B\)"):
        DXNESIC(np.zeros(10**5), 0.3)


@pytest.mark.parametrize("cls", [CRFMNES, DXNESIC])
def test_a_scalar_sigma0_in_any_form_is_accepted(cls: type[Strategy]) -> None:
    for sigma0 in (0.5, np.float32(0.5), np.array(0.5), 1):
        assert float(cls(np.ones(3), sigma0).sigma) == float(np.float64(sigma0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("D", "v"),
    [
        ([1.0], [0.5]),
        ([2.0, 0.5], [1.0, -3.0]),
        ([1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]),  # equal D: eigenvalue 1, three times
        ([1.0, 3.0, 1.0, 3.0, 0.2], [0.0, 2.0, 0.0, -1.0, 0.0]),  # zeros in v, repeated D
        ([1e-6, 1.0, 1e3], [1e-9, 1.0, 1e-9]),
    ],
)
def test_rank_one_condition_is_that_of_the_covariance(D: list[float], v: list[float]) -> None:
    Dm, va = np.diag(D), np.array(v)
    eig = np.linalg.eigvalsh(Dm @ (np.eye(len(D)) + np.outer(va, va)) @ Dm)
    # eigvalsh is accurate to eps * lambda_max, so lambda_min to eps * cond (< 1e-8 here)
    assert rank_one_condition(np.array(D), va) == pytest.approx(eig[-1] / eig[0], rel=1e-6)


def test_rank_one_condition_beyond_what_eigvalsh_resolves() -> None:
    # D = I: the eigenvalues are 1 and 1 + |v|^2 exactly
    assert rank_one_condition(np.ones(2), np.array([1e7, -1e7])) == 1.0 + 2e14
    assert rank_one_condition(np.ones(5), np.full(5, 1e7)) == pytest.approx(1.0 + 5e14, rel=1e-15)
    assert rank_one_condition(np.array([1e-200, 1e200]), np.ones(2)) == math.inf


@pytest.mark.parametrize("seed", range(5))
def test_rank_one_condition_in_many_dimensions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 200
    D = np.exp(rng.uniform(-3.0, 3.0, d))
    v = rng.standard_normal(d) * np.exp(rng.uniform(-2.0, 2.0))
    Dm = np.diag(D)
    eig = np.linalg.eigvalsh(Dm @ (np.eye(d) + np.outer(v, v)) @ Dm)
    # cond <= e^12 (1 + |v|^2) < 1e9: eigvalsh's lambda_min is good to eps * 1e9 ~ 2e-7
    assert rank_one_condition(D, v) == pytest.approx(eig[-1] / eig[0], rel=1e-6)


def test_stop_reads_the_condition_of_a_covariance_that_is_not_diagonal() -> None:
    # Equal standard deviations per coordinate, but axes 1e8 apart: the condition number of
    # the covariance is 1e16 > tolconditioncov = 1e14. CRFMNES and DXNESIC read the ratio of
    # the coordinates' variances (1) and ran on.
    # (States after a generation: the criterion is read from the first generation on.)
    d = 4
    state = told_once(CRFMNES(np.ones(d), 1.0, rng=0)).state_dict()
    state["algo"]["D"] = [1.0] * d
    state["algo"]["v"] = [1e8 / math.sqrt(d)] * d
    es = Strategy.from_state(state)
    assert es.axis_ratio == pytest.approx(math.sqrt(1.0 + 1e16), rel=1e-9)
    assert "conditioncov" in es.stop()
    H = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    B = H @ np.diag([1e4, 1e4, 1e-4, 1e-4]) @ H.T  # rows of equal norm, cond(B) = 1e8
    state = told_once(DXNESIC(np.ones(d), 1.0, rng=0)).state_dict()
    state["algo"]["B"] = B.tolist()
    es = Strategy.from_state(state)
    assert es.axis_ratio == pytest.approx(1e8, rel=1e-6)
    assert "conditioncov" in es.stop()


def told_once(es: Strategy) -> Strategy:
    """Return `es` after one generation on the sphere."""
    X = es.ask()
    es.tell(X, [float(x @ x) for x in X])
    return es


# ---------------------------------------------------------------------- long and crafted shapes
def _rotated_ellipsoid(d: int, log10_cond: float):
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    scales = 10.0 ** np.linspace(0, log10_cond / 2, d)

    def f(x: np.ndarray) -> float:
        return float(np.sum((scales * (Q @ x)) ** 2))

    return f


def _cond(B: np.ndarray) -> float:
    sv = np.linalg.svd(B, compute_uv=False)
    return float(sv[0] / sv[-1])


@pytest.mark.slow
def test_dxnesic_long_ill_conditioned_run_keeps_det_b_and_loads() -> None:
    # A rotated ellipsoid of condition 1e120 with conditioncov off drives cond(B) to its limit
    # (COND_B_MAX = 1e10, as for XNES) and holds it there. det B drifted before (1.00003 by
    # generation 3000, -0.19 by 6000) and the checkpoints stopped loading.
    fun = _rotated_ellipsoid(6, 120.0)
    es = DXNESIC(np.ones(6), 1.0, rng=0, tolconditioncov=None)
    top = 0.0
    for g in range(1, 6001):
        X = es.ask()
        es.tell(X, [fun(x) for x in X])
        if g % 1000 == 0:
            cond = _cond(es.B)
            assert cond <= COND_B_MAX * (1 + 1e-9)  # the SVD's rounding at the bound
            top = max(top, cond)
            sign, logdet = np.linalg.slogdet(es.B)
            assert sign == 1.0
            # ln det B is known to about d cond(B) eps (the tolerance of from_state)
            assert abs(logdet) <= 1e-6 + 8 * 6 * cond * np.finfo(np.float64).eps
            copy = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
            np.testing.assert_array_equal(copy.ask(), es.ask())
    assert top > 0.5 * COND_B_MAX  # the limit was reached


def _b_at_cond(cond: float) -> list[list[float]]:
    """A 3x3 diagonal B with det 1 (to rounding) whose singular values are exactly cond apart."""
    lo = 2.0**-17  # a power of two: lo * COND_B_MAX is exact, as the bound's test computes it
    hi = cond * lo
    return np.diag([hi, lo, 1.0 / (hi * lo)]).tolist()


def test_dxnesic_from_state_takes_b_up_to_the_conditioning_limit_and_rejects_beyond() -> None:
    state = json.loads(json.dumps(DXNESIC(np.ones(3), 0.5, rng=0).state_dict()))
    state["algo"]["B"] = _b_at_cond(COND_B_MAX)
    es = Strategy.from_state(state)
    X = es.ask()
    es.tell(X, [float(x @ x) for x in X])  # a B at the limit updates
    assert _cond(es.B) <= COND_B_MAX * (1 + 1e-9)
    state["algo"]["B"] = _b_at_cond(np.nextafter(COND_B_MAX, np.inf))  # one ulp beyond
    with pytest.raises(ValueError, match=r"`B` must have a condition number <= 1e\+10"):
        Strategy.from_state(state)
    # det 1 and cond 1e16: was accepted, and the next tell raised FloatingPointError
    state["algo"]["B"] = [[1.0, 1e8, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(
        ValueError, match=r"`B` must have a condition number <= 1e\+10, but got 1e\+16"
    ):
        Strategy.from_state(state)


def _dxnesic_run(start_cond: float | None, generations: int) -> tuple[str, float, int]:
    """A run on an axis-aligned ellipsoid of condition 1e40 (from a B of `start_cond`)."""
    scales = np.array([1.0, 1e10, 1e20])
    state = json.loads(
        json.dumps(DXNESIC(np.ones(3), 1.0, rng=5, tolconditioncov=None).state_dict())
    )
    if start_cond is not None:
        state["algo"]["B"] = _b_at_cond(start_cond)
    es = Strategy.from_state(state)
    top, held = 0.0, 0
    for _ in range(generations):
        X = es.ask()
        B = es.B  # type: ignore[attr-defined]
        es.tell(X, [float(np.sum((scales * x) ** 2)) for x in X])
        top = max(top, _cond(es.B))  # type: ignore[attr-defined]
        held += bool(np.array_equal(B, es.B))  # type: ignore[attr-defined]
    return json.dumps(es.state_dict()), top, held


@pytest.mark.parametrize(("start_cond", "generations"), [(None, 400), (9.9e9, 600)])
def test_dxnesic_holds_b_at_its_limit_and_the_bound_of_cond_b_changes_no_run(
    monkeypatch, start_cond: float | None, generations: int
) -> None:
    # The update takes the singular values of the new B only when a bound of its condition
    # number (from the eigenvalues of B B^T) passes COND_B_SURE; with them in every
    # generation, the run is the same to the bit, also where B is held at COND_B_MAX.
    fast, top, held = _dxnesic_run(start_cond, generations)
    monkeypatch.setattr("nes_asktell._dxnesic.COND_B_SURE", 0.0)
    exact, _, _ = _dxnesic_run(start_cond, generations)
    assert fast == exact
    assert top <= COND_B_MAX * (1 + 1e-9)  # the SVD's rounding at the bound
    if start_cond is not None:
        assert held > 0  # B was held at its limit, and the run went on
        Strategy.from_state(json.loads(fast))


def test_dxnesic_from_state_repairs_a_small_drift_of_det_b_as_xnes_does() -> None:
    state = json.loads(json.dumps(DXNESIC(np.ones(3), 0.5, rng=0).state_dict()))
    state["algo"]["B"] = (np.eye(3) * 1.0000318 ** (1 / 3)).tolist()  # saved with a drift
    B = Strategy.from_state(state).B  # type: ignore[attr-defined]
    assert abs(np.linalg.det(B) - 1.0) < 1e-14
    state["algo"]["B"] = (np.eye(3) * 2.0).tolist()
    with pytest.raises(ValueError, match=r"`B` must have determinant 1, but got (8|7\.99)"):
        Strategy.from_state(state)


def test_an_overflow_message_shows_no_empty_rate_list(monkeypatch) -> None:
    # DXNESIC has no numeric options: the message named the learning rates as "()".
    es = DXNESIC(np.ones(3), 0.5, rng=0)
    monkeypatch.setattr(DXNESIC, "_updated", lambda self, u, Zh: {"_gamma": math.inf})
    X = es.ask()
    with pytest.raises(FloatingPointError) as info:
        es.tell(X, [float(x @ x) for x in X])
    assert str(info.value) == (
        "`tell` could not update the distribution: gamma overflowed to a non-finite value."
    )
    assert es.generation == 0


@pytest.mark.parametrize("scale", [1e300, 1.001, 1.0 - 1e-5])
def test_crfmnes_from_state_rejects_a_d_that_is_not_normalised(scale: float) -> None:
    # Every update keeps det(D (I + v v^T) D) = 1; D = 1e300 was accepted, every candidate
    # was ~1e299, every fitness inf, and stop() reported nothing.
    es = CRFMNES(np.ones(3), 0.5, rng=0)
    X = es.ask()
    es.tell(X, [float(x @ x) for x in X])
    state = json.loads(json.dumps(es.state_dict()))
    state["algo"]["D"] = (np.array(state["algo"]["D"]) * scale).tolist()
    before = json.dumps(state)
    with pytest.raises(
        ValueError, match=r"`D` must be normalised, sum\(ln D\) \+ ln\(1 \+ \|v\|\^2\) / 2 = 0"
    ):
        Strategy.from_state(state)
    assert json.dumps(state) == before


def test_crfmnes_holds_d_within_its_bound_and_from_state_rejects_one_beyond() -> None:
    # One bound on D for every way it is set, max D / min D <= COND_B_MAX (XNES's on B): a
    # normalised D of 1e150 and 1e-150 loaded, and the run stopped at once by conditioncov;
    # with tolconditioncov off, the update took D past 1e14 on this ellipsoid in these 700
    # generations (and on, without bound), so no bound below what a run reaches could be checked.
    scales = np.array([1.0, 1e60])
    es = CRFMNES(np.ones(2), 1.0, rng=0, tolconditioncov=None)
    ratios = []
    for g in range(1, 701):
        X = es.ask()
        es.tell(X, [float(scales @ x**2) for x in X])
        if g % 100 == 0:
            D = es.D
            ratios.append(float(np.max(D) / np.min(D)))
            assert np.min(D) * COND_B_MAX >= np.max(D)
            copy = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
            np.testing.assert_array_equal(copy.ask(), es.ask())
            es = copy
    assert max(ratios) > 1e9  # the run reached the bound and was held there
    state = json.loads(json.dumps(es.state_dict()))
    v_ = np.array(state["algo"]["v"])
    D = np.array([1e150, 1e-150])
    state["algo"]["D"] = (D / math.exp(half_log_det(D, v_) / 2)).tolist()  # normalised
    before = json.dumps(state)
    with pytest.raises(
        ValueError, match=r"`D` must have a ratio of largest to smallest entry of at most 1e\+10"
    ):
        Strategy.from_state(state)
    assert json.dumps(state) == before
    # the constructor keeps the bound its docstring states for a per-coordinate sigma0
    with pytest.raises(ValueError, match=r"`sigma0` must have a ratio .* at most 1e\+10"):
        CRFMNES(np.ones(2), np.array([1e-50, 1e50]))
    CRFMNES(np.ones(2), np.array([1.0, 1e10]))  # at the bound: taken


@pytest.mark.slow
@pytest.mark.parametrize(("d", "log10_cond"), [(3, 60.0), (8, 12.0)])
def test_crfmnes_long_ill_conditioned_run_stays_normalised_and_loads(
    d: int, log10_cond: float
) -> None:
    # Thousands of generations on an ellipsoid CR-FM-NES cannot fully learn (rotated), far
    # past convergence: every checkpoint passes the normalisation check of from_state and
    # resumes identically.
    fun = _rotated_ellipsoid(d, log10_cond)
    es = CRFMNES(np.ones(d), 1.0, rng=2, tolconditioncov=None)
    for g in range(1, 4001):
        X = es.ask()
        es.tell(X, [fun(x) for x in X])
        if g % 500 == 0:
            D, v_ = es.D, es.v
            residual = float(np.sum(np.log(D))) + 0.5 * math.log1p(float(v_ @ v_))
            # rounding of d logarithms of entries up to max|ln D| (the tolerance of from_state)
            eps = np.finfo(np.float64).eps
            assert abs(residual) <= 8 * d * eps * (1 + float(np.max(np.abs(np.log(D)))))
            copy = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
            np.testing.assert_array_equal(copy.ask(), es.ask())
            Xc = copy.ask()
            f = [fun(x) for x in Xc]
            es.tell(es.ask(), f)
            copy.tell(Xc, f)
            assert json.dumps(copy.state_dict()) == json.dumps(es.state_dict())


# ---------------------------------------------------------------------- lambda_F of a tell
def _implicit_twins(cls: type[Strategy]) -> tuple[Strategy, Strategy, np.ndarray, np.ndarray]:
    a = cls(np.full(4, 2.0), 0.5, rng=3, implicit_constraints=True)  # type: ignore[call-arg]
    b = cls(np.full(4, 2.0), 0.5, rng=3, implicit_constraints=True)  # type: ignore[call-arg]
    X = a.ask()
    np.testing.assert_array_equal(b.ask(), X)
    return a, b, X, np.array([ellipsoid(x) for x in X])


@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_implicit_constraints_read_a_huge_int_as_inf(cls: type[Strategy]) -> None:
    # A Python int beyond the float range is a real number that tell reads as inf; the count
    # of feasible candidates raised a bare OverflowError on it.
    a, b, X, f = _implicit_twins(cls)
    huge: list[object] = [float(y) for y in f]
    huge[0] = 10**400
    a.tell(X, huge)
    f[0] = np.inf
    b.tell(X, f)
    assert json.dumps(a.state_dict()) == json.dumps(b.state_dict())


@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_implicit_constraints_count_masked_values_as_infeasible(cls: type[Strategy]) -> None:
    # tell reads a masked entry as NaN; lambda_F counted it as finite (feasible).
    a, b, X, f = _implicit_twins(cls)
    bad = np.arange(f.size) % 2 == 0
    a.tell(X, np.ma.masked_array(f, mask=bad))
    b.tell(X, np.where(bad, np.nan, f))
    assert json.dumps(a.state_dict()) == json.dumps(b.state_dict())


@pytest.mark.parametrize("cls", [DXNESIC, CRFMNES])
def test_a_replica_replays_implicit_constraints_exactly(cls: type[Strategy]) -> None:
    # replay() got the utilities only, not lambda_F: a worker's replica of a run with
    # implicit_constraints and infeasible candidates diverged from the first generation on.
    master = cls(np.ones(4), 0.5, rng=7, implicit_constraints=True)  # type: ignore[call-arg]
    replica = Strategy.from_state(master.replica_state())
    for g in range(12):
        X = master.ask()
        f = np.array([ellipsoid(x) for x in X])
        f[:: 3 if g % 2 else 4] = np.nan  # infeasible candidates, a varying number of them
        if g == 5:
            f[:] = np.nan  # a skipped update
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NESWarning)
            master.tell(X, f)
        replica.replay(*master.recent_updates()[-1])
        assert replica.digest() == master.digest()
    a, b = master.replica_state(), replica.replica_state()
    assert json.dumps([a["mean"], a["algo"]]) == json.dumps([b["mean"], b["algo"]])


def test_replay_checks_the_count_of_finite_values() -> None:
    es = DXNESIC(np.ones(3), 0.5, rng=1, implicit_constraints=True)
    X = es.ask()
    es.tell(X, [float(x @ x) for x in X])
    gen, u, _, _ = es.recent_updates()[-1]
    replica = DXNESIC(np.ones(3), 0.5, rng=1, implicit_constraints=True)
    before = json.dumps(replica.replica_state())
    for bad in (-1, es.popsize + 1, 2.5, "3"):
        with pytest.raises((TypeError, ValueError), match="`n_finite` must be"):
            replica.replay(gen, u, bad)  # type: ignore[arg-type]
        assert json.dumps(replica.replica_state()) == before


def test_dxnesic_stops_by_conditioncov_where_the_singular_values_say_without_taking_them() -> None:
    # stop() took the SVD of B every generation (about +15-45% per generation at d = 100);
    # the update's estimate of cond(B) spares it far below the limit. The estimate must never
    # say "within" where the singular values say otherwise, and the run stops by conditioncov
    # at the very generation at which it would with the SVD every generation.
    class EverySVD(DXNESIC):
        def _condition_at_most(self, limit: float) -> bool:
            return False

    d = 8
    scales = 10.0 ** np.linspace(0.0, 4.0, d)

    def ellipsoid(X: np.ndarray) -> np.ndarray:
        return np.sum((scales * X) ** 2, axis=1)

    runs = []
    for cls in (DXNESIC, EverySVD):
        es = cls(np.ones(d), 1.0, rng=3, tolconditioncov=1e6, tolfun=None, tolx=None)
        trusted = 0
        while not es.stop() and es.generation < 3000:
            X = es.ask()
            es.tell(X, ellipsoid(X))
            for limit in (1e2, 1e4, 1e6):
                if es._condition_at_most(limit):
                    trusted += 1
                    assert es._condition() <= limit
        runs.append((es.generation, dict(es.stop()), trusted))
    assert runs[0][:2] == runs[1][:2]
    assert "conditioncov" in runs[0][1]
    assert runs[0][2] > 0  # the estimate spared some SVDs
    assert runs[1][2] == 0


@pytest.mark.parametrize(
    ("cls", "kw"),
    [
        (DXNESIC, {}),
        (CRFMNES, {}),
        (XNES, {"csa": False}),
        (XNES, {"csa": False, "rank_one": True}),
        (SNES, {"csa": False}),
    ],
)
def test_a_single_mirrored_pair_is_rejected_where_sigma_cannot_learn(
    cls: type[Strategy], kw: dict[str, bool]
) -> None:
    # Over the pair (z, -z) the two utilities sum to 0 and every step-size term is even in z,
    # so the update of sigma is exactly 0: with popsize=2 (mirrored, the default) sigma stayed
    # at sigma0 for 2,000 generations on a sphere, which the run never solved.
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match=r"`popsize` must be at least 4 with mirrored sampling"):
        cls(np.ones(5), 1.0, 2, rng=rng, **kw)  # type: ignore[call-arg]
    assert rng.bit_generator.state == np.random.default_rng(4).bit_generator.state  # untouched
    # without mirroring, or with a larger population, sigma adapts
    for popsize, mirrored in ((2, False), (4, True)):
        es = cls(np.ones(5), 1.0, popsize, rng=0, mirrored=mirrored, **kw)  # type: ignore[call-arg]
        for _ in range(300):
            X = es.ask()
            es.tell(X, [float(x @ x) for x in X])
        assert np.max(es.sigma) < 0.1  # frozen, it stayed at 1.0 exactly
