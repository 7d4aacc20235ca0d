"""SNES and XNES: the protocol, the update, state and resume, invariances, bad input."""

from __future__ import annotations

import json
import math
import pickle
import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from nes_asktell import SNES, XNES, NESWarning, Strategy
from nes_asktell._shaping import nes_utilities
from nes_asktell._xnes import ShapePath

SOLUTION = np.array([0.5, 0.1, -0.3])
CLASSES = [SNES, XNES]


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - SOLUTION[: x.size]) ** 2))


def ellipsoid(x: np.ndarray) -> float:
    d = x.size
    scales = 10.0 ** (3.0 * np.arange(d) / max(d - 1, 1))
    return float(np.sum((scales * (x - 0.3)) ** 2))


def run(es: Strategy, fun: object, generations: int) -> list[np.ndarray]:
    asks = []
    for _ in range(generations):
        X = es.ask()
        asks.append(X.copy())
        es.tell(X, [fun(x) for x in X])  # type: ignore[operator]
    return asks


# ---------------------------------------------------------------------- the XNES update
class IndependentPath:
    """Cumulative step-size adaptation (Hansen 2016, Table 1), written out plainly."""

    def __init__(self, d: int, lam: int, mirrored: bool = False) -> None:
        self.mirrored = mirrored
        w = np.array([max(0.0, math.log(lam / 2 + 1) - math.log(k)) for k in range(1, lam + 1)])
        w = w / w.sum()
        mueff = 1 / np.sum(w**2)
        self.c = (mueff + 2) / (d + mueff + 5)
        self.damp = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (d + 1)) - 1) + self.c
        self.chi = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))
        self.p = np.zeros(d)

    def log_step(self, step: np.ndarray, u_norm: float) -> float:
        c = self.c
        self.p = (1 - c) * self.p + math.sqrt(c * (2 - c)) * step / u_norm
        return min(1.0, c / self.damp * (np.linalg.norm(self.p) / self.chi - 1))


class IndependentRankOne:
    """CMA-ES's rank-one path and rates (Hansen 2016, eqs. 45, 47, 56, 57), written out plainly."""

    def __init__(self, d: int, lam: int) -> None:
        w = np.array([max(0.0, math.log(lam / 2 + 1) - math.log(k)) for k in range(1, lam + 1)])
        w = w / w.sum()
        mueff = 1 / np.sum(w**2)
        self.cc = (4 + mueff / d) / (d + 4 + 2 * mueff / d)
        self.c1 = 2 / ((d + 1.3) ** 2 + mueff)
        self.p = np.zeros(d)
        self.generation = 0

    def shape_term(self, y: np.ndarray, B: np.ndarray, path: IndependentPath | None) -> np.ndarray:
        """Update the path by the step `y`; return the trace-free log of (1 - c_1) I + c_1 q q^T.

        q = B^-1 p; the logarithm by scipy's logm of the symmetric matrix, then its trace removed.
        """
        d = y.size
        h = 1.0
        if path is not None:  # the path of CSA, already updated by this generation's step
            g = self.generation
            corrected = np.linalg.norm(path.p) / math.sqrt(1 - (1 - path.c) ** (2 * (g + 1)))
            h = float(corrected < (1.4 + 2 / (d + 1)) * path.chi)
        self.generation += 1
        self.p = (1 - self.cc) * self.p + h * math.sqrt(self.cc * (2 - self.cc)) * y
        q = np.linalg.inv(B) @ self.p
        log_m = np.real(scipy.linalg.logm((1 - self.c1) * np.eye(d) + self.c1 * np.outer(q, q)))
        return log_m - np.trace(log_m) / d * np.eye(d)


def independent_xnes_step(
    X: np.ndarray,
    f: np.ndarray,
    mu: np.ndarray,
    sigma: float,
    B: np.ndarray,
    eta: tuple[float, float, float],
    path: IndependentPath | None,
    rank_one: IndependentRankOne | None = None,
    mirrored: bool = False,
    active: bool = False,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Wierstra 2014, Algorithm 5, by a plain loop over the samples and scipy's expm.

    With `active`, G_B weighs the samples by :func:`independent_active_weights` instead.
    """
    eta_mu, eta_sigma, eta_B = eta
    d = mu.size
    u = nes_utilities(f)
    Binv = np.linalg.inv(B)
    G_delta = np.zeros(d)
    G_M = np.zeros((d, d))
    for k in range(X.shape[0]):
        s = Binv @ (X[k] - mu) / sigma
        G_delta += u[k] * s
        G_M += u[k] * (np.outer(s, s) - np.eye(d))
    G_sigma = np.trace(G_M) / d
    G_B = G_M - G_sigma * np.eye(d)
    if active:
        w = independent_active_weights(f, float(sum(x for x in u if x > 0)))
        G_A = np.zeros((d, d))
        for k in range(X.shape[0]):
            s = Binv @ (X[k] - mu) / sigma
            G_A += w[k] * (np.outer(s, s) - np.eye(d))
        G_B = G_A - np.trace(G_A) / d * np.eye(d)
    mu_new = mu + eta_mu * sigma * B @ G_delta
    log_step = eta_sigma / 2 * G_sigma
    # mirrored pairs: sum_k u_k s_k = sum_j (u_j - u_{j+m}) s_j, so |a| = |u[:m] - u[m:]|
    m = X.shape[0] // 2
    a = u[:m] - u[m:] if mirrored else u
    if path is not None:
        log_step += path.log_step(G_delta, float(np.linalg.norm(a)))
    sigma_new = sigma * math.exp(log_step)
    exponent = eta_B / 2 * G_B
    if rank_one is not None:
        exponent += rank_one.shape_term(B @ G_delta / np.linalg.norm(a), B, path) / 2
    B_new = B @ scipy.linalg.expm(exponent)
    return mu_new, sigma_new, B_new


def independent_active_weights(f: np.ndarray, mass: float) -> list[float]:
    """Active CMA-ES's weights by rank (Hansen 2016, eq. 49), each side of total `mass`.

    The better half ``ln(n/2 + 1) - ln k``, the worse half ``ln((n + 1)/2) - ln k``, for the
    rank k of each value (1 = best; a non-finite value last, ties by position), by a loop.
    """
    n = len(f)
    order = sorted(
        range(n), key=lambda i: (not math.isfinite(f[i]), f[i] if math.isfinite(f[i]) else 0.0, i)
    )
    pos = [max(0.0, math.log(n / 2 + 1) - math.log(k)) for k in range(1, n + 1)]
    neg = [min(0.0, math.log((n + 1) / 2) - math.log(k)) for k in range(1, n + 1)]
    w = [0.0] * n
    for r, i in enumerate(order):
        w[i] = mass * (pos[r] / sum(pos) - neg[r] / sum(neg))
    return w


@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 6),
    mirrored=st.booleans(),
    adapt=st.booleans(),
    csa=st.booleans(),
    rank_one=st.booleans(),
    active=st.booleans(),
)
def test_xnes_update_matches_an_independent_computation(
    seed: int, d: int, mirrored: bool, adapt: bool, csa: bool, rank_one: bool, active: bool
) -> None:
    rng = np.random.default_rng(seed)
    es = XNES(
        rng.standard_normal(d),
        0.7,
        rng=seed,
        mirrored=mirrored,
        csa=csa,
        adaptation_sampling=adapt,
        rank_one=rank_one,
        active=active,
        eta_sigma=0.4,
        eta_B=0.3,
    )
    path = IndependentPath(d, es.popsize, mirrored) if csa else None
    r1 = IndependentRankOne(d, es.popsize) if rank_one else None
    for _ in range(6):  # a few generations so that B is not the identity
        mu, sigma, B = es.mean, es.sigma, es.B
        X = es.ask()
        f = np.array([ellipsoid(x) for x in X])
        es.tell(X, f)
        eta_sigma = es.eta_sigma  # adaptation sampling sets the rate used by this tell
        mu_new, sigma_new, B_new = independent_xnes_step(
            X, f, mu, sigma, B, (1.0, eta_sigma, 0.3), path, r1, mirrored, active
        )
        np.testing.assert_allclose(es.mean, mu_new, rtol=1e-9, atol=1e-12)
        assert es.sigma == pytest.approx(sigma_new, rel=1e-10)
        np.testing.assert_allclose(es.B, B_new, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("d", "lam", "cc", "c1"),
    [
        # mueff = 1 / sum w_k^2 of the positive NES weights: 2.25482 for lam = 6 (w = 0.5857,
        # 0.2929, 0.1214), 3.41477 for lam = 10
        (2, 6, (4 + 2.25482 / 2) / (2 + 4 + 2 * 2.25482 / 2), 2 / (3.3**2 + 2.25482)),
        (10, 10, (4 + 3.41477 / 10) / (10 + 4 + 2 * 3.41477 / 10), 2 / (11.3**2 + 3.41477)),
    ],
)
def test_rank_one_rates_are_cma_es_defaults(d: int, lam: int, cc: float, c1: float) -> None:
    # Hansen (2016), eqs. 56 and 57 with alpha_cov = 2, for the positive NES weights.
    rates = ShapePath(d, lam)
    assert rates.c_c == pytest.approx(cc, rel=1e-5)
    assert rates.c_1 == pytest.approx(c1, rel=1e-5)


@pytest.mark.parametrize("d", [2, 5])
def test_rank_one_term_grows_the_variance_along_a_repeated_step(d: int) -> None:
    # The same mean step y = e_1 every generation: the path turns to e_1 and the rank-one term
    # alone makes B B^T longer along e_1 and shorter across, keeping det B = 1.
    rates = ShapePath(d, 8)
    B, p_c = np.eye(d), np.zeros(d)
    e1 = np.eye(d)[0]
    for _ in range(50):
        p_c = rates.step(p_c, e1, 1.0)
        B = B @ scipy.linalg.expm(rates.shape_log(p_c, B) / 2)
    C = B @ B.T
    assert np.linalg.det(B) == pytest.approx(1.0, rel=1e-9)
    assert C[0, 0] > 1.0 + 10 * rates.c_1
    assert np.all(np.diag(C)[1:] < 1.0)
    # a stalled path (h_sigma = 0) does not grow
    np.testing.assert_array_equal(rates.step(np.zeros(d), e1, 0.0), np.zeros(d))


def test_rank_one_term_of_a_long_path_across_a_thin_direction_stays_finite() -> None:
    # q = B^-1 p_c of 1e10: the first-order term c_1 |q|^2 would overflow exp; the logarithm
    # of the rank-one factor is ln(1 + c_1 1e20 / (1 - c_1)), and exp of it stays finite.
    rates = ShapePath(2, 6)
    B = np.diag([1e-5, 1e5])
    p_c = np.array([1e5, 0.0])
    log_m = rates.shape_log(p_c, B)
    L = math.log1p(rates.c_1 * 1e20 / (1 - rates.c_1))
    np.testing.assert_allclose(log_m, np.diag([L / 2, -L / 2]), rtol=1e-12)
    assert np.all(np.isfinite(B @ scipy.linalg.expm(log_m / 2)))
    np.testing.assert_array_equal(rates.shape_log(np.zeros(2), B), np.zeros((2, 2)))


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 8), mirrored=st.booleans())
def test_xnes_det_b_is_one_and_covariance_spd_after_every_tell(
    seed: int, d: int, mirrored: bool
) -> None:
    rng = np.random.default_rng(seed)
    es = XNES(rng.uniform(-3, 3, d), 2.0, rng=seed, mirrored=mirrored, rank_one=seed % 2 == 0)
    for _ in range(30):
        X = es.ask()
        es.tell(X, [ellipsoid(x) for x in X])
        B = es.B
        assert np.linalg.det(B) == pytest.approx(1.0, abs=1e-9)
        C = B @ B.T
        np.testing.assert_allclose(C, C.T, rtol=1e-12, atol=1e-12 * np.abs(C).max())
        assert np.all(np.linalg.eigvalsh((C + C.T) / 2) > 0)
        assert es.sigma > 0
        assert math.isfinite(es.sigma)
        # adaptation sampling keeps eta_sigma between its start and max(0.5, start)
        eta0 = XNES(np.zeros(d), 1.0).eta_sigma
        assert eta0 * (1 - 1e-12) <= es.eta_sigma <= max(0.5, eta0)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 8), mirrored=st.booleans())
def test_snes_sigma_stays_positive(seed: int, d: int, mirrored: bool) -> None:
    rng = np.random.default_rng(seed)
    es = SNES(rng.uniform(-3, 3, d), rng.uniform(0.1, 2, d), rng=seed, mirrored=mirrored)
    for _ in range(30):
        X = es.ask()
        es.tell(X, [ellipsoid(x) for x in X])
        assert np.all(es.sigma > 0)
        assert np.all(np.isfinite(es.sigma))


@pytest.mark.parametrize("csa", [False, True])
@pytest.mark.parametrize("mirrored", [False, True])
def test_snes_update_matches_the_equations(csa: bool, mirrored: bool) -> None:
    sigma0 = np.array([0.5, 1.0, 2.0])
    es = SNES(np.zeros(3), sigma0, rng=3, eta_sigma=0.3, eta_mu=0.8, csa=csa, mirrored=mirrored)
    path = IndependentPath(3, es.popsize, mirrored)
    for _ in range(5):
        mu, sigma = es.mean, es.sigma
        X = es.ask()
        f = np.array([ellipsoid(x) for x in X])
        es.tell(X, f)
        u = nes_utilities(f)
        S = (X - mu) / sigma
        np.testing.assert_allclose(es.mean, mu + 0.8 * sigma * (u @ S), rtol=1e-12)
        log_step = 0.3 / 2 * (u @ (S**2 - 1))
        if csa:
            m = u.size // 2
            a = u[:m] - u[m:] if mirrored else u
            log_step += path.log_step(u @ S, float(np.linalg.norm(a)))
        np.testing.assert_allclose(es.sigma, sigma * np.exp(log_step), rtol=1e-10)


# ---------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("rng", [7, "generator"])
def test_same_seed_same_asks(cls: type[Strategy], rng: object) -> None:
    def make() -> Strategy:
        r = np.random.default_rng(7) if rng == "generator" else rng
        return cls(np.ones(4), 0.5, rng=r)

    a, b = run(make(), ellipsoid, 8), run(make(), ellipsoid, 8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cls", [*CLASSES, "XNES rank_one", "XNES active"])
@pytest.mark.parametrize("rng", [11, "generator"])
@pytest.mark.parametrize("pending", [False, True])
@pytest.mark.parametrize("how", ["json", "pickle"])
def test_resume_is_bit_exact(cls: type[Strategy], rng: object, pending: bool, how: str) -> None:
    kw: dict[str, object] = {}
    if cls == "XNES rank_one":
        cls, kw = XNES, {"rank_one": True}
    elif cls == "XNES active":
        cls, kw = XNES, {"active": True, "mirrored": False}
    elif cls is XNES:
        kw = {"adaptation_sampling": True}

    def make() -> Strategy:
        r = np.random.default_rng(11) if rng == "generator" else rng
        return cls(np.full(5, 2.0), 1.0, rng=r, **kw)

    reference = make()
    asks_ref = run(reference, ellipsoid, 12)
    es = make()
    run(es, ellipsoid, 5)
    if pending:
        es.ask()
    if how == "json":
        es2 = cls.from_state(json.loads(json.dumps(es.state_dict())))
    else:
        es2 = pickle.loads(pickle.dumps(es))
    asks = run(es2, ellipsoid, 7)
    for x, y in zip(asks, asks_ref[5:], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(es2.mean, reference.mean)
    np.testing.assert_array_equal(es2.sigma, reference.sigma)
    assert es2.best[1] == reference.best[1]
    assert es2.state_dict() == reference.state_dict()


def test_a_state_saved_before_the_rank_one_term_resumes_without_it() -> None:
    reference = XNES(np.full(4, 2.0), 1.0, rng=3, rank_one=False)
    run(reference, ellipsoid, 5)
    state = json.loads(json.dumps(reference.state_dict()))
    del state["options"]["rank_one"]
    del state["algo"]["path_c"]
    es = XNES.from_state(state)
    assert es.state_dict()["options"]["rank_one"] is False
    for x, y in zip(run(es, ellipsoid, 5), run(reference, ellipsoid, 5), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_state_saved_before_active_weights_resumes_without_them() -> None:
    reference = XNES(np.full(4, 2.0), 1.0, rng=3)
    run(reference, ellipsoid, 5)
    state = json.loads(json.dumps(reference.state_dict()))
    del state["options"]["active"]
    es = XNES.from_state(state)
    assert es.state_dict()["options"]["active"] is False
    for x, y in zip(run(es, ellipsoid, 5), run(reference, ellipsoid, 5), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("mirrored", [False, True])
def test_active_weights_change_the_shape_alone(mirrored: bool) -> None:
    """One tell of the same batch: the mean, sigma and paths as without them, B not."""
    plain = XNES(np.full(4, 2.0), 1.0, rng=5, mirrored=mirrored, rank_one=True)
    active = XNES(np.full(4, 2.0), 1.0, rng=5, mirrored=mirrored, rank_one=True, active=True)
    X = plain.ask()
    np.testing.assert_array_equal(X, active.ask())
    f = np.array([ellipsoid(x) for x in X])
    plain.tell(X, f)
    active.tell(X, f)
    np.testing.assert_array_equal(active.mean, plain.mean)
    assert active.sigma == plain.sigma
    a, b = active.state_dict()["algo"], plain.state_dict()["algo"]
    assert a["path"] == b["path"]
    assert a["path_c"] == b["path_c"]
    assert not np.allclose(active.B, plain.B, rtol=1e-6, atol=0.0)
    np.testing.assert_allclose(np.linalg.det(active.B), 1.0, rtol=1e-12)


def test_active_weights_follow_the_rows_as_told_with_the_mass_of_the_utilities() -> None:
    kw = {"mirrored": False, "adaptation_sampling": False, "rank_one": False}
    active = XNES(np.zeros(5), 0.3, rng=3, active=True, **kw)
    f = np.array([3.0, 1.0, 7.0, 0.5, 2.0, np.nan, 5.0, 4.0])  # worst first: nan, 7, 5, 4
    X = active.ask()
    active.tell(X[::-1], f[::-1])  # rows in another order
    _, u, _, w = active.recent_updates()[-1]
    assert u is not None
    assert w is not None
    assert abs(float(w.sum())) < 1e-12
    assert np.isclose(float(w[w > 0].sum()), float(u[u > 0].sum()))
    assert list(np.argsort(w)) == [5, 2, 6, 7, 0, 4, 1, 3]  # by f: nan, 7, 5, 4, 3, 2, 1, 0.5
    assert w[7] < 0.0 < w[0]


def test_a_replica_replays_active_weights_and_refuses_them_misplaced() -> None:
    master = XNES(np.full(3, 1.0), 0.5, rng=9, active=True)
    replica = XNES.from_state(master.replica_state())
    plain = XNES(np.full(3, 1.0), 0.5, rng=9)
    for _ in range(4):
        X = master.ask()
        master.tell(X, np.array([ellipsoid(x) for x in X]))
        gen, u, n_finite, w = master.recent_updates()[-1]
        assert w is not None
        assert w.shape == (master.popsize,)
        before = replica.state_dict()
        with pytest.raises(ValueError, match=r"`w_shape` must be given for XNES with `active"):
            replica.replay(gen, u, n_finite)
        with pytest.raises(ValueError, match=r"`w_shape` must have length 8, but got length 7"):
            replica.replay(gen, u, n_finite, w[:-1])
        with pytest.raises(ValueError, match=r"`w_shape` must be None for this strategy"):
            plain.replay(0, u, n_finite, w)
        assert replica.state_dict() == before  # a rejected call changes nothing
        replica.replay(gen, u, n_finite, w)
        assert replica.digest() == master.digest()
    np.testing.assert_array_equal(replica.B, master.B)


def test_a_strategy_pickled_before_active_weights_unpickles_and_goes_on() -> None:
    reference = XNES(np.full(3, 1.0), 0.5, rng=4)
    run(reference, ellipsoid, 3)
    d = pickle.loads(pickle.dumps(reference)).__getstate__()
    # what a pickle of the version before the option held: neither attribute, 3-item updates
    del d["_active"], d["_shape_told"]
    d["_applied"] = [e[:3] for e in d["_applied"]]
    es = XNES.__new__(XNES)
    es.__setstate__(d)
    assert all(len(e) == 4 and e[3] is None for e in es.recent_updates())
    for x, y in zip(run(es, ellipsoid, 4), run(reference, ellipsoid, 4), strict=True):
        np.testing.assert_array_equal(x, y)
    assert es.state_dict()["options"]["active"] is False


@pytest.mark.parametrize("cls", CLASSES)
def test_a_state_whose_options_are_not_all_there_is_refused(cls: type[Strategy]) -> None:
    # [] loaded as no options and a list of pairs as a dict: XNES saved with active=True and
    # eta_B=0.05 came back with the defaults, another run; so did one option deleted
    es = cls(np.zeros(3), 1.0, rng=3)
    state = json.loads(json.dumps(es.state_dict()))
    for options in ([], [[k, x] for k, x in state["options"].items()]):
        with pytest.raises(ValueError, match=r"`options` must be a dict, but got \["):
            cls.from_state({**state, "options": options})
    first = next(iter(state["options"]))
    lacking = {k: x for k, x in state["options"].items() if k != first}
    with pytest.raises(ValueError, match=rf"must hold every option of {cls.__name__}, but lacks"):
        cls.from_state({**state, "options": lacking})
    with pytest.raises(ValueError, match=r"`criteria` must be a dict, but got \["):
        cls.from_state({**state, "criteria": []})


@pytest.mark.parametrize("cls", CLASSES)
def test_replay_checks_its_generation_and_utilities_naming_them(cls: type[Strategy]) -> None:
    # u of the wrong length broadcast against the pairs' weights (a wrong update, accepted),
    # a list raised AttributeError, NaN "mean overflowed"; a numpy generation was stored as
    # one (state_dict() no longer JSON), np.uint8(255) wrapped to 0, and 0.0 raised numpy's
    # "seed must be integer" (0.0 is 0 here, as every integer argument takes it)
    master = cls(np.full(3, 1.0), 0.5, rng=9)
    replica = cls.from_state(master.replica_state())
    X = master.ask()
    master.tell(X, np.array([ellipsoid(x) for x in X]))
    gen, u, n_finite, w = master.recent_updates()[-1]
    assert u is not None
    before = replica.state_dict()
    bad_u = [
        (u[:-1], ValueError, r"`u` must have length"),
        (np.where(u > 0, np.nan, u), ValueError, r"`u` must hold finite|`u` must be finite|`u`"),
        (list(map(str, u)), TypeError, r"`u` must be a 1-d array of numbers"),
    ]
    for bad, exc, match in bad_u:
        with pytest.raises(exc, match=match):
            replica.replay(gen, bad, n_finite, w)
    for bad_gen, exc in ((0.5, TypeError), ("0", TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(exc, match=r"`generation` must be"):
            replica.replay(bad_gen, u, n_finite, w)  # type: ignore[arg-type]
    assert replica.state_dict() == before  # a rejected call changes nothing
    expected = u.copy()
    u[:] = 0.0  # a copy: the master's record is the same as before
    np.testing.assert_array_equal(master.recent_updates()[-1][1], expected)
    u = expected
    replica.replay(np.int64(gen), list(u), n_finite, w)  # type: ignore[arg-type]
    assert type(replica.generation) is int
    assert replica.digest() == master.digest()
    json.dumps(replica.state_dict())


def test_a_state_with_rank_one_needs_its_path() -> None:
    es = XNES(np.zeros(3), 1.0, rng=3, rank_one=True)
    run(es, ellipsoid, 2)
    state = es.state_dict()
    del state["algo"]["path_c"]
    with pytest.raises(ValueError, match="the key 'path_c' is missing"):
        XNES.from_state(state)
    state = es.state_dict()
    state["algo"]["path_c"] = [0.0, math.inf, 0.0]
    with pytest.raises(ValueError, match="path_c"):
        XNES.from_state(state)


@pytest.mark.parametrize(
    ("path_c", "match"),
    [
        ([0.0, 0.0], "`path_c` must have length 3"),
        ([0.0, math.nan, 0.0], "`path_c` must be finite"),
        (["a", "b", "c"], "`path_c` must be a 1-d array of numbers"),
        ([True, False, True], "`path_c` must be a 1-d array of numbers"),
        (None, "`path_c` must be a 1-d array of numbers"),
        ([[0.0], [0.0], [0.0]], "`path_c` must be 1-d"),
        # beyond any run (PATH_C_MAX = 1e100): before, 1e20 loaded and every tell then raised
        # "B overflowed", and so did 1e308 (|B^-1 p_c|^2 overflowed to inf)
        (
            [1e308, 0.0, 0.0],
            r"`path_c` must have entries of at most 1e\+100 in absolute value, but got 1e\+308",
        ),
        ([-1e300, 1e300, 0.0], r"`path_c` must have entries of at most 1e\+100"),
    ],
)
def test_a_crafted_rank_one_path_is_rejected_naming_it(path_c: object, match: str) -> None:
    es = XNES(np.zeros(3), 1.0, rng=3, rank_one=True)
    run(es, ellipsoid, 2)
    state = json.loads(json.dumps(es.state_dict()))
    state["algo"]["path_c"] = path_c
    with pytest.raises(ValueError, match=match):
        XNES.from_state(state)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        # before, each loaded and every tell then raised: "math range error" from exp(-last_step)
        # of adaptation sampling, "int too large to convert to float" from (1 - c) ** (2 g)
        ("last_step", -1e308, r"`last_step` must be at most 460.517 in absolute value, but got"),
        ("last_step", 800.0, r"`last_step` must be at most 460.517 in absolute value, but got"),
        ("generation", 1e308, r"`generation` must be an integer in \[0, 9007199254740992\]"),
        ("nfev", 2**53 + 1, r"`nfev` must be an integer in \[0, 9007199254740992\]"),
    ],
)
def test_a_crafted_step_or_count_beyond_any_run_is_rejected(
    key: str, value: float, match: str
) -> None:
    es = XNES(np.zeros(3), 1.0, rng=3)
    run(es, ellipsoid, 3)
    state = json.loads(json.dumps(es.state_dict()))
    assert state["algo"]["last_step"] != 0.0  # adaptation sampling is on
    (state["algo"] if key == "last_step" else state)[key] = value
    with pytest.raises(ValueError, match=match):
        XNES.from_state(state)
    # the largest values that load give a working tell
    (state["algo"] if key == "last_step" else state)[key] = (
        -math.log(1e200) if key == "last_step" else 2**53
    )
    es = XNES.from_state(state)
    run(es, ellipsoid, 2)
    assert np.all(np.isfinite(es.mean))


def test_the_longest_rank_one_path_that_loads_gives_a_working_tell() -> None:
    # Every state that loads must continue: a path just within the bound, across the thin
    # direction of a B at its conditioning limit, makes B times the exponential of the
    # rank-one term singular to working precision; B is held, as at any update beyond its
    # conditioning limit, where `tell` used to raise "B overflowed".
    es = XNES(np.zeros(2), 1.0, rng=3, rank_one=True)
    state = json.loads(json.dumps(es.state_dict()))
    state["algo"]["B"] = [[1e-5 / 0.99, 0.0], [0.0, 1e5 * 0.99]]
    state["algo"]["path_c"] = [0.99e100, 0.0]
    es = XNES.from_state(state)
    B = es.B
    run(es, ellipsoid, 3)
    np.testing.assert_array_equal(es.B, B)
    assert np.all(np.isfinite(es.mean))
    assert np.max(np.abs(es.state_dict()["algo"]["path_c"])) < 1e100


@pytest.mark.parametrize("where", ["step", "shape_log"])
def test_a_tell_interrupted_in_the_rank_one_update_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    reference = XNES(np.full(3, 2.0), 1.0, rng=5, rank_one=True)
    run(reference, ellipsoid, 4)
    es = XNES(np.full(3, 2.0), 1.0, rng=5, rank_one=True)
    run(es, ellipsoid, 3)
    X = es.ask()
    f = [ellipsoid(x) for x in X]
    before = json.dumps(es.state_dict())

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ShapePath, where, interrupted)
        with pytest.raises(KeyboardInterrupt):
            es.tell(X, f)
    assert json.dumps(es.state_dict()) == before
    es.tell(X, f)  # the batch is still pending: the same tell succeeds, as if never interrupted
    assert es.state_dict() == reference.state_dict()


@pytest.mark.slow
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 5),
    mirrored=st.booleans(),
    bounded=st.booleans(),
)
def test_rank_one_runs_with_non_finite_fitness_stay_checkpointable(
    seed: int, d: int, mirrored: bool, bounded: bool
) -> None:
    # NaN, inf and -inf in about a third of the values (some generations all of them): every
    # state the run reaches loads and asks the same batch; the path stays finite.
    rng = np.random.default_rng(seed)
    bounds = (-1.0, 1.0) if bounded else None
    es = XNES(np.full(d, 0.5), 0.5, rng=seed, mirrored=mirrored, bounds=bounds, rank_one=True)
    for _ in range(40):
        X = es.ask()
        f = np.array([ellipsoid(x) for x in X])
        f[rng.random(f.size) < 0.35] = rng.choice([np.nan, np.inf, -np.inf])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NESWarning)  # the generations with no finite value
            es.tell(X, f)
        state = json.loads(json.dumps(es.state_dict()))
        assert np.all(np.isfinite(state["algo"]["path_c"]))
        copy = XNES.from_state(state)
        np.testing.assert_array_equal(copy.ask(), es.ask())
        es = copy


# ---------------------------------------------------------------------- invariances
@pytest.mark.parametrize("cls", CLASSES)
@given(seed=st.integers(0, 2**32 - 1))
def test_rank_shaping_is_invariant_under_increasing_transforms(
    cls: type[Strategy], seed: int
) -> None:
    def transform(y: float) -> float:
        return math.exp(y / 10.0) * 3.0 - 7.0

    a = run(cls(np.ones(3), 1.0, rng=seed), sphere, 15)
    b = run(cls(np.ones(3), 1.0, rng=seed), lambda x: transform(sphere(x)), 15)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cls", CLASSES)
@given(seed=st.integers(0, 2**32 - 1))
def test_translating_the_problem_translates_the_run(cls: type[Strategy], seed: int) -> None:
    # Shifting by a power of two keeps the ranks; rounding of the shifted sums differs by a few
    # ulps of |shift|, so trajectories agree to that precision.
    shift = np.array([4.0, -8.0, 2.0])
    x0 = np.array([1.0, -0.5, 0.25])
    a = run(cls(x0, 1.0, rng=seed), sphere, 15)
    b = run(cls(x0 + shift, 1.0, rng=seed), lambda x: sphere(x - shift), 15)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(y - shift, x, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------- convergence
@pytest.mark.parametrize("cls", CLASSES)
def test_solves_the_seed_problem_within_600_evaluations(cls: type[Strategy]) -> None:
    # Deterministic seeds 0..10 (a fixed-seed run is an exact regression check): the median
    # number of evaluations to reach f < 1e-8 on the seed's 3-d problem is at most 600.
    nfev = []
    for seed in range(11):
        x0 = np.random.default_rng(seed).standard_normal(3)
        res = cls(x0, 1.0, rng=seed, ftarget=1e-8, maxfev=5000).optimize(sphere)
        assert res.fun < 1e-8
        nfev.append(res.nfev)
    assert float(np.median(nfev)) <= 600


@pytest.mark.parametrize("cls", CLASSES)
def test_bounds_keep_candidates_inside(cls: type[Strategy]) -> None:
    es = cls(np.zeros(3), 5.0, rng=1, bounds=(np.full(3, -1.0), np.full(3, 1.0)))
    for X in run(es, sphere, 10):
        assert np.all(np.abs(X) <= 1.0)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"eta_mu": -1.0}, ValueError, r"`eta_mu` must be a positive finite number, but got -1.0"),
        ({"eta_mu": "a"}, TypeError, r"`eta_mu` must be a positive finite number, but got 'a'"),
        ({"eta_sigma": 0.0}, ValueError, r"`eta_sigma` must be a positive finite number"),
        ({"eta_sigma": math.inf}, ValueError, r"`eta_sigma` must be a positive finite number"),
        ({"sigma0": -1.0}, ValueError, r"`sigma0` must be a positive finite number, but got -1"),
        ({"popsize": 1}, ValueError, r"`popsize` must be an integer >= 2, but got 1"),
        ({"bogus": 1}, TypeError, r"unknown option `bogus` = 1"),
        ({"csa": "yes"}, TypeError, r"`csa` must be True or False, but got 'yes'"),
    ],
)
def test_bad_arguments(cls: type[Strategy], kw: dict, exc: type, match: str) -> None:
    args = {"x0": np.zeros(3), "sigma0": 1.0, **kw}
    with pytest.raises(exc, match=match):
        cls(**args)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"eta_B": -0.1}, ValueError, r"`eta_B` must be a positive finite number, but got -0.1"),
        (
            {"adaptation_sampling": 1},
            TypeError,
            r"`adaptation_sampling` must be True or False, but got 1",
        ),
        ({"sigma0": [1.0, 1.0]}, ValueError, r"`sigma0` must have shape \(3,\)"),
        ({"rank_one": "no"}, TypeError, r"`rank_one` must be True or False, but got 'no'"),
        ({"active": 1}, TypeError, r"`active` must be True or False, but got 1"),
    ],
)
def test_bad_xnes_arguments(kw: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        XNES(np.zeros(3), **{"sigma0": 1.0, **kw})


@pytest.mark.parametrize(
    ("sigma0", "exc", "match"),
    [
        ([1.0, 2.0], ValueError, r"`sigma0` must have shape \(3,\), but got shape \(2,\)"),
        ([1.0, -2.0, 1.0], ValueError, r"`sigma0` must hold positive finite numbers"),
        (["a", 1, 1], TypeError, r"`sigma0` must be a positive number or an array of 3"),
    ],
)
def test_bad_snes_sigma0(sigma0: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        SNES(np.zeros(3), sigma0)


def test_snes_accepts_a_sigma_vector() -> None:
    es = SNES(np.zeros(3), np.array([1.0, 2.0, 3.0]), rng=0)
    np.testing.assert_array_equal(es.sigma, [1.0, 2.0, 3.0])
    assert SNES(np.zeros(3), np.float64(2.0), rng=0).sigma.tolist() == [2.0, 2.0, 2.0]


def test_malformed_xnes_state_is_rejected() -> None:
    es = XNES(np.zeros(3), 1.0, rng=0)
    state = es.state_dict()
    state["algo"]["B"] = (2.0 * np.eye(3)).tolist()
    with pytest.raises(ValueError, match=r"`state` is malformed: `B` must have determinant 1"):
        XNES.from_state(state)
    state["algo"]["B"] = [[1.0, 0.0]]
    with pytest.raises(ValueError, match=r"`B` must be a finite \(3, 3\) matrix"):
        XNES.from_state(state)


def test_malformed_snes_state_is_rejected() -> None:
    state = SNES(np.zeros(3), 1.0, rng=0).state_dict()
    state["algo"]["sigma"] = [1.0, -1.0, 1.0]
    with pytest.raises(
        ValueError, match=r"`state` is malformed: `sigma` must hold positive finite numbers"
    ):
        SNES.from_state(state)


@pytest.mark.parametrize("cls", CLASSES)
def test_state_of_another_strategy_is_rejected(cls: type[Strategy]) -> None:
    other = XNES if cls is SNES else SNES
    state = other(np.zeros(3), 1.0, rng=0).state_dict()
    with pytest.raises(ValueError, match=r"`state` must come from"):
        cls.from_state(state)


def test_weighted_rank_test() -> None:
    from nes_asktell._xnes import weighted_rank_test

    order = np.arange(6.0)  # 0 = worst
    assert weighted_rank_test(order, np.ones(6)) == pytest.approx(0.5)
    # weight on the good samples -> above 1/2; on the bad ones -> below
    assert weighted_rank_test(order, np.array([0.1, 0.1, 0.1, 2, 2, 2])) > 0.5
    assert weighted_rank_test(order, np.array([2, 2, 2, 0.1, 0.1, 0.1])) < 0.5
    assert weighted_rank_test(order, np.array([np.inf, 1, 1, 1, 1, 1])) == 0.0


# ---------------------------------------------------------------------- the bound of cond(B)
def _ill(scale: float):  # an ellipsoid of condition `scale` (its Hessian's)
    def f(x: np.ndarray) -> float:
        d = x.size
        return float(np.sum(scale ** (np.arange(d) / (d - 1)) * x * x))

    return f


def _run(d: int, fun, maxfev: int, **options: object) -> tuple[str, list[str]]:
    es = XNES(np.full(d, 2.0), 1.0, rng=3, **options)
    es.optimize(fun, maxfev=maxfev)
    return json.dumps(es.state_dict(), sort_keys=True), sorted(es.stop())


@pytest.mark.parametrize(
    ("d", "scale", "options"),
    [
        (3, 1e6, {}),
        (6, 1e16, {}),  # ends by conditioncov
        (5, 1e24, {"tolconditioncov": None, "tolstagnation": None}),  # B held at COND_B_MAX
        (8, 1e6, {"bounds": [(-5.0, 5.0)] * 8}),
    ],
)
def test_the_bound_of_cond_b_changes_no_run(monkeypatch, d, scale, options) -> None:
    # The update and stop() skip the SVD of B while a bound of cond(B) says it is far from the
    # limits; with the SVD in every generation (the bound never trusted) every run is the same
    # to the bit, also where conditioncov ends it and where COND_B_MAX holds B.
    fun = _ill(scale)
    fast = _run(d, fun, 20_000, **options)
    monkeypatch.setattr("nes_asktell._xnes.COND_B_SURE", 0.0)
    monkeypatch.setattr(XNES, "_condition_at_most", lambda self, limit: False)
    exact = _run(d, fun, 20_000, **options)
    assert fast == exact
    if scale == 1e16:
        assert fast[1] == ["conditioncov"]


def test_the_bound_of_cond_b_bounds_it_and_spares_svds(monkeypatch) -> None:
    calls = []
    svd = np.linalg.svd

    def counted(*args, **kwargs):
        calls.append(1)
        return svd(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", counted)
    es = XNES(np.full(20, 2.0), 1.0, rng=5)
    fun = _ill(1e4)
    for _ in range(300):
        X = es.ask()
        es.tell(X, [fun(x) for x in X])
        es.stop()
        bound = es._cond_bound()
        assert bound is not None
        sv = svd(es.B, compute_uv=False)
        assert sv[0] / sv[-1] <= bound * (1.0 + 1e-9)  # an upper bound of cond(B)
    # once per generation in the update and once in stop() before the bound; now rarely
    assert len(calls) <= 30


@pytest.mark.parametrize("seed", [1, 2])
def test_value_based_shapings_do_not_suit_xnes_and_snes_as_the_docs_say(seed: int) -> None:
    """docs/algorithms/snes_xnes.rst: the learning rates are set for rank-based utilities."""

    def sphere(x: np.ndarray) -> float:
        return float(x @ x)

    def run(cls: type, shaping: str) -> float:
        return float(
            cls(np.ones(3), 0.5, shaping=shaping, rng=seed).optimize(sphere, maxiter=300).fun
        )

    for cls in (XNES, SNES):
        assert run(cls, "nes") < 1e-15
        with pytest.raises(FloatingPointError, match=r"sigma (over|under)flowed"):
            run(cls, "raw")
    assert run(XNES, "zscore") > 1e-7  # stagnates
    assert run(SNES, "zscore") < 1e-13


@pytest.mark.parametrize("cls", [XNES, SNES])
def test_a_huge_learning_rate_is_the_default_one_in_other_fitness_units(cls: type) -> None:
    # Why the rates have no upper bound at construction (only at the update, which raises
    # FloatingPointError changing nothing): with raw shaping the utilities are -f, in the
    # fitness's units, so rates times 2**600 on the fitness times 2**-600 (exact in floats)
    # make the same run bit for bit; a bound such as the Optuna sampler's 10 would refuse it.
    def make(c: float) -> Strategy:
        rates = {"eta_mu": c, "eta_sigma": 0.25 * c}
        if cls is XNES:
            rates.update(eta_B=0.25 * c, adaptation_sampling=False)
        es: Strategy = cls(np.full(3, 0.5), 0.3, shaping="raw", csa=False, rng=0, **rates)
        return es

    c = 2.0**600
    ref, big = make(1.0), make(c)
    for _ in range(3):
        for es, scale in ((ref, 1.0), (big, 1.0 / c)):
            X = es.ask()
            es.tell(X, [scale * sphere(x) for x in X])
    np.testing.assert_array_equal(big.mean, ref.mean)
    np.testing.assert_array_equal(big.stds, ref.stds)
    assert not np.array_equal(ref.mean, np.full(3, 0.5))  # the runs moved
