"""OpenES invariants (STYLE.md): rank invariance, translation equivariance, tell order,
non-finite fitness, best-so-far; and the update against an independent computation."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nes_asktell import NESWarning, OpenES

EPS = np.finfo(np.float64).eps

seeds = st.integers(0, 2**32 - 1)


def rosen(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def trajectory(
    es: OpenES, fun: Callable[[np.ndarray], float], generations: int
) -> list[np.ndarray]:
    means = []
    for _ in range(generations):
        X = es.ask()
        es.tell(X, [fun(x) for x in X])
        means.append(es.mean)
    return means


# Strictly increasing maps. They preserve the order of any two distinct values exactly when
# they are exact (times 8) or when the values are not within a rounding error of each other
# (exp, arctan, cube); two fitness values of a generation that close occur with probability
# of order popsize^2 * 1e-15: negligible.
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "times 8": lambda v: 8.0 * v,
    "exp": lambda v: np.exp(v / 50.0),
    "arctan": np.arctan,
    "cube minus 7": lambda v: v**3 - 7.0,
}


@settings(max_examples=15)
@given(
    seed=seeds,
    d=st.integers(2, 6),
    transform=st.sampled_from(sorted(TRANSFORMS)),
    shaping=st.sampled_from(["centered_ranks", "nes"]),
    optimizer=st.sampled_from(["adam", "sgd", "momentum"]),
)
def test_rank_shaping_is_invariant_to_increasing_transforms(
    seed: int, d: int, transform: str, shaping: str, optimizer: str
) -> None:
    h = TRANSFORMS[transform]
    kw: dict[str, Any] = {"rng": seed, "shaping": shaping, "optimizer": optimizer}
    a = OpenES(np.full(d, -0.5), 0.2, **kw)
    b = OpenES(np.full(d, -0.5), 0.2, **kw)
    for _ in range(15):
        Xa, Xb = a.ask(), b.ask()
        np.testing.assert_array_equal(Xa, Xb)
        fa = np.array([rosen(x) for x in Xa])
        a.tell(Xa, fa)
        b.tell(Xb, h(fa))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.best[0], b.best[0])


def test_value_based_shaping_is_not_invariant() -> None:
    # The same check with z-score shaping must see a difference (the test above can fail).
    a = OpenES(np.full(3, -0.5), 0.2, rng=1, shaping="zscore")
    b = OpenES(np.full(3, -0.5), 0.2, rng=1, shaping="zscore")
    for _ in range(3):
        X = a.ask()
        f = np.array([rosen(x) for x in X])
        a.tell(X, f)
        b.tell(b.ask(), np.exp(f / 50.0))
    assert not np.array_equal(a.mean, b.mean)


@settings(max_examples=15)
@given(
    seed=seeds,
    d=st.integers(1, 6),
    shift_exp=st.integers(-3, 6),
    optimizer=st.sampled_from(["adam", "sgd", "momentum"]),
    shaping=st.sampled_from(["centered_ranks", "nes"]),
)
def test_translation_equivariance(
    seed: int, d: int, shift_exp: int, optimizer: str, shaping: str
) -> None:
    """Shifting x0 and the problem by t shifts the trajectory by t.

    With rank shaping the steps depend only on the noise and the ranks; the ranks agree
    because f(x + t - t) equals f(x) up to rounding (ties closer than that: negligible, see
    TRANSFORMS). So both runs add the same steps and differ only by the rounding of the
    additions: each generation's `mu + step` rounds with relative error eps/2 in both runs, and
    x0 + t and the final - t add at most eps/2 each. After G generations the gap is at most
    (G + 2) eps max_g max(|mu_g|, |mu'_g|) per coordinate, the tolerance used.
    """
    r = np.random.default_rng(seed)
    t = r.standard_normal(d) * 10.0**shift_exp
    x0 = r.standard_normal(d)
    c = r.standard_normal(d)

    def f(x: np.ndarray) -> float:
        return float(np.sum((x - c) ** 2 * np.arange(1, d + 1)))

    kw: dict[str, Any] = {"rng": seed, "optimizer": optimizer, "shaping": shaping}
    G = 20
    a = trajectory(OpenES(x0, 0.3, **kw), f, G)
    b = trajectory(OpenES(x0 + t, 0.3, **kw), lambda y: f(y - t), G)
    scale = np.maximum(np.max(np.abs(np.array(a)), axis=0), np.max(np.abs(np.array(b)), axis=0))
    for mu_a, mu_b in zip(a, b, strict=True):
        np.testing.assert_array_less(np.abs((mu_b - t) - mu_a), (G + 2) * EPS * scale + 1e-300)


@given(seed=seeds, perm_seed=seeds, mirrored=st.booleans())
def test_tell_rows_in_any_order(seed: int, perm_seed: int, mirrored: bool) -> None:
    a = OpenES(np.zeros(4), 0.5, 10, rng=seed, mirrored=mirrored, shaping="zscore")
    b = OpenES(np.zeros(4), 0.5, 10, rng=seed, mirrored=mirrored, shaping="zscore")
    for _ in range(3):
        Xa, Xb = a.ask(), b.ask()
        f = np.array([rosen(x) for x in Xa])
        p = np.random.default_rng(perm_seed).permutation(10)
        a.tell(Xa, f)
        b.tell(Xb[p], f[p])  # the same rows, shuffled, each with its own value
        assert a.state_dict() == b.state_dict()


def test_tell_accepts_lists_and_copies() -> None:
    a = OpenES(np.zeros(2), 0.5, rng=1)
    b = OpenES(np.zeros(2), 0.5, rng=1)
    X = a.ask()
    f = [rosen(x) for x in X]
    a.tell(X, f)
    b.tell([list(row) for row in b.ask()], tuple(f))
    assert a.state_dict() == b.state_dict()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("shaping", ["centered_ranks", "nes"])
def test_non_finite_values_rank_worst(bad: float, shaping: str) -> None:
    # rank shaping: a NaN/inf value is treated exactly as a value worse than every finite one
    a = OpenES(np.zeros(3), 0.5, 8, rng=3, shaping=shaping)
    b = OpenES(np.zeros(3), 0.5, 8, rng=3, shaping=shaping)
    for _ in range(3):
        X = a.ask()
        f = np.array([rosen(x) for x in X])
        fa, fb = f.copy(), f.copy()
        fa[[1, 6]] = bad
        fb[1], fb[6] = 1e300, 2e300  # tie broken by index, as for the two non-finite values
        a.tell(X, fa)
        b.tell(b.ask(), fb)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert np.isfinite(a.best[1])


@pytest.mark.parametrize("shaping", ["zscore", "raw"])
def test_value_shapings_replace_non_finite_values_by_the_worst_finite_one(shaping: str) -> None:
    a = OpenES(np.zeros(3), 0.5, 8, rng=3, shaping=shaping, optimizer="sgd")
    b = OpenES(np.zeros(3), 0.5, 8, rng=3, shaping=shaping, optimizer="sgd")
    X = a.ask()
    f = np.array([rosen(x) for x in X])
    fa, fb = f.copy(), f.copy()
    fa[2] = np.nan
    fb[2] = np.max(np.delete(f, 2))
    a.tell(X, fa)
    b.tell(b.ask(), fb)
    np.testing.assert_array_equal(a.mean, b.mean)


def test_all_non_finite_generation_is_skipped_with_a_warning() -> None:
    es = OpenES(np.zeros(3), 0.5, rng=4)
    trajectory(es, rosen, 2)
    before = es.state_dict()
    X = es.ask()
    with pytest.warns(NESWarning, match=r"generation 2: every fitness value is non-finite"):
        es.tell(X, np.full(es.popsize, np.nan))
    after = es.state_dict()
    np.testing.assert_array_equal(after["mean"], before["mean"])
    assert after["algo"] == before["algo"]  # the optimizer did not move either
    for key in ("best_f", "best_x", "fhist"):  # no new best, no history entry
        assert after["record"][key] == before["record"][key]
    assert after["record"]["since_improvement"] == before["record"]["since_improvement"] + 1
    assert (es.generation, es.nfev) == (3, 3 * es.popsize)
    # and the run goes on from the next generation's noise
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trajectory(es, rosen, 1)
    assert es.generation == 4


@given(seed=seeds)
def test_best_so_far_keeps_raw_values(seed: int) -> None:
    es = OpenES(np.full(3, 2.0), 0.5, rng=seed, shaping="zscore")
    told: list[tuple[float, np.ndarray]] = []
    for _ in range(8):
        X = es.ask()
        f = [rosen(x) + 1000.0 for x in X]
        es.tell(X, f)
        told += [(v, x.copy()) for v, x in zip(f, X, strict=True)]
        fbest, xbest = min(told, key=lambda p: p[0])
        assert es.best[1] == fbest
        np.testing.assert_array_equal(es.best[0], xbest)
        assert es.result.fun == fbest


def test_best_before_any_tell_is_x0_with_inf() -> None:
    x, fx = OpenES([1.0, 2.0], 0.1, rng=0).best
    assert fx == np.inf
    np.testing.assert_array_equal(x, [1.0, 2.0])


# ---------------------------------------------------------------- the update, independently
def reference_openes(
    x0: np.ndarray, sigma: float, Z: np.ndarray, f: np.ndarray, lr: float, optimizer: str
) -> np.ndarray:
    """One OpenES step from scratch: centered ranks, g = -sum u z / (n sigma), one optimizer
    step from a fresh state (Salimans et al. 2017; Kingma and Ba 2015)."""
    n = f.size
    order = np.argsort(f, kind="stable")
    u = np.empty(n)
    u[order] = 0.5 - np.arange(n) / (n - 1)
    g = -(u @ Z) / (n * sigma)
    if optimizer == "sgd":
        return x0 - lr * g
    if optimizer == "momentum":
        return x0 - lr * (0.1 * g)
    # Adam at t = 1 in the library's form (epsilon added to the uncorrected sqrt(v))
    m, v = 0.1 * g, 0.001 * g * g
    return x0 - lr * np.sqrt(1 - 0.999) / (1 - 0.9) * m / (np.sqrt(v) + 1e-8)


@given(seed=seeds, mirrored=st.booleans(), optimizer=st.sampled_from(["sgd", "momentum", "adam"]))
def test_first_update_matches_an_independent_computation(
    seed: int, mirrored: bool, optimizer: str
) -> None:
    x0 = np.array([0.3, -1.2, 2.0])
    es = OpenES(x0, 0.4, 10, rng=seed, mirrored=mirrored, optimizer=optimizer, learning_rate=0.1)
    X = es.ask()
    Z = (X - x0) / 0.4
    f = np.array([rosen(x) for x in X])
    es.tell(X, f)
    # Z is recovered from X with a relative rounding error of a few eps; the step is a smooth
    # function of Z (the ranks come from f, computed from the very same X), so 1e-9 relative
    # covers the rounding with a wide margin while any formula error is O(1).
    np.testing.assert_allclose(
        es.mean, reference_openes(x0, 0.4, Z, f, 0.1, optimizer), rtol=1e-9, atol=1e-12
    )


def test_mirrored_pairs_are_antithetic() -> None:
    es = OpenES(np.array([1.0, -1.0, 0.5]), 0.2, 12, rng=5)
    X = es.ask()
    np.testing.assert_allclose(X[:6] - es.mean, -(X[6:] - es.mean), rtol=0, atol=4 * EPS)


def test_weight_decay_adds_c_mu_to_the_gradient() -> None:
    x0 = np.array([1.0, -2.0])
    plain = OpenES(x0, 0.1, 4, rng=6, optimizer="sgd", learning_rate=0.5)
    decay = OpenES(x0, 0.1, 4, rng=6, optimizer="sgd", learning_rate=0.5, weight_decay=0.2)
    X = plain.ask()
    f = [rosen(x) for x in X]
    plain.tell(X, f)
    decay.tell(decay.ask(), f)
    np.testing.assert_allclose(decay.mean, plain.mean - 0.5 * 0.2 * x0, rtol=1e-15, atol=1e-15)


def test_sigma_and_learning_rate_schedules() -> None:
    es = OpenES(
        np.zeros(2),
        1.0,
        rng=7,
        sigma_decay=0.5,
        sigma_limit=0.1,
        learning_rate=0.8,
        learning_rate_decay=0.5,
        learning_rate_limit=0.2,
    )
    sigmas, rates = [], []
    for _ in range(5):
        X = es.ask()
        es.tell(X, [rosen(x) for x in X])
        sigmas.append(es.sigma)
        rates.append(es.learning_rate)
    assert sigmas == [0.5, 0.25, 0.125, 0.1, 0.1]
    assert rates == [0.4, 0.2, 0.2, 0.2, 0.2]


def test_the_default_popsize_is_made_even_only_for_mirrored_sampling() -> None:
    # as the docstring and docs/algorithms/openes.rst now say (they said "rounded up to even")
    assert OpenES(np.zeros(3), 0.1).popsize == 8
    assert OpenES(np.zeros(3), 0.1, mirrored=False).popsize == 4 + int(3 * np.log(3)) == 7


def test_the_decays_take_every_real_number_the_other_options_take() -> None:
    # sigma_decay=Fraction(1, 2) was refused, "must be a number in (0, 1], but got
    # Fraction(1, 2)", while learning_rate, weight_decay and the limits took a Fraction
    half = Fraction(1, 2)
    es = OpenES(np.zeros(2), 1.0, rng=7, sigma_decay=half, learning_rate_decay=half)
    assert (es.state_dict()["options"]["sigma_decay"], es.learning_rate) == (0.5, 0.01)
    X = es.ask()
    es.tell(X, [rosen(x) for x in X])
    assert (es.sigma, es.learning_rate) == (0.5, 0.005)
    with pytest.raises(ValueError, match=r"`sigma_decay` must be a number in \(0, 1\], but got"):
        OpenES(np.zeros(2), 1.0, sigma_decay=Fraction(3, 2))


@pytest.mark.parametrize("sigma0", [1.0, [1.0, 0.5]])
def test_a_sigma_decay_that_underflows_stops_sigma_at_its_floor(sigma0: object) -> None:
    # sigma stops at SIGMA_MIN = 1e-100; then 1e-100 * 1e-300 underflowed to 0, and the second
    # tell raised "sigma underflowed to 0" instead of holding sigma at its floor
    es = OpenES(np.zeros(2), sigma0, rng=7, sigma_decay=1e-300)  # type: ignore[arg-type]
    sigmas = []
    for _ in range(3):
        X = es.ask()
        es.tell(X, [rosen(x) for x in X])
        sigmas.append(np.asarray(es.sigma).tolist())
    floor = [1e-100, 1e-100] if isinstance(sigma0, list) else 1e-100
    assert sigmas == [floor] * 3


def test_seed_configuration_uses_the_legacy_stream() -> None:
    # x0 first, then the noise of generation 0, both from one RandomState: as np.random.seed(0)
    rs = np.random.RandomState(0)
    x0 = rs.randn(3)
    X = OpenES(x0, 0.1, 50, rng=rs, mirrored=False, shaping="zscore").ask()
    ref = np.random.RandomState(0)
    ref.randn(3)
    np.testing.assert_array_equal(X, x0 + 0.1 * ref.randn(50, 3))


def test_defaults() -> None:
    es = OpenES(np.zeros(10), 0.1)
    assert es.popsize == 10  # 4 + floor(3 ln 10) = 10, even
    assert es.mirrored
    assert es.learning_rate == 0.01
    assert es.state_dict()["shaping"] == "centered_ranks"
    assert es.state_dict()["options"]["optimizer"] == "adam"  # type: ignore[index]
    assert OpenES(np.zeros(3), 0.1).popsize == 8  # 4 + floor(3 ln 3) = 7, rounded up to even
    assert OpenES(np.zeros(3), 0.1, mirrored=False).popsize == 7


def _sphere_rows(X: np.ndarray) -> np.ndarray:
    return np.sum(X**2, axis=1)


@pytest.mark.parametrize(
    "options",
    [{"learning_rate_decay": 0.99}, {"learning_rate_limit": 0.5}, {"learning_rate": 1e-120}],
)
def test_a_learning_rate_schedule_is_state_not_configuration(options: dict) -> None:
    # The current learning rate was kept in the options: a run with a schedule changed its
    # configuration each generation, so IPOP refused its own state and the Optuna sampler
    # refused every tell ("`options` is {'learning_rate': 0.198, ...") and never moved.
    import json

    from nes_asktell import IPOP

    opts = {"learning_rate": 0.2, **options}
    es = IPOP("openes", np.ones(3), 0.5, rng=0, **opts)
    for _ in range(5):
        X = es.ask()
        es.tell(X, _sphere_rows(X))
    state = json.loads(json.dumps(es.state_dict()))
    assert state["run"]["options"]["learning_rate"] == opts["learning_rate"]
    again = IPOP.from_state(state)
    assert again.state_dict() == es.state_dict()
    np.testing.assert_array_equal(again.ask(), es.ask())
    # a state written before the rate was kept in the algorithm's state: the options' rate is
    # the current one, as it was then
    run = es.state_dict()["run"]
    current = run["algo"].pop("learning_rate")
    run["options"]["learning_rate"] = current
    old = OpenES.from_state(json.loads(json.dumps(run)))
    assert old.learning_rate == current
    np.testing.assert_array_equal(old.ask(), es.ask())


def test_the_sampler_follows_an_openes_learning_rate_schedule() -> None:
    optuna = pytest.importorskip("optuna")
    from nes_asktell import NESSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = NESSampler(
        seed=0,
        strategy="openes",
        strategy_options={"learning_rate": 0.2, "learning_rate_decay": 0.99},
    )
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(
            lambda t: t.suggest_float("x", -10, 10) ** 2 + t.suggest_float("y", -10, 10) ** 2,
            n_trials=120,
        )
    refused = [str(w.message) for w in caught if issubclass(w.category, NESWarning)]
    assert refused == []  # (before: one "refused to tell" per generation)
    assert len(sampler.generations(study)) >= 10


@pytest.mark.parametrize("mirrored", [True, False])
def test_gradient_reads_a_list_and_refuses_what_is_no_utilities(mirrored: bool) -> None:
    es = OpenES(np.ones(3), 0.1, 6, rng=0, mirrored=mirrored)
    es.ask()
    u = [0.5, 0.25, 0.0, 0.0, -0.25, -0.5]
    np.testing.assert_array_equal(es.gradient(u), es.gradient(np.array(u)))
    for bad in (np.ones(5), np.ones(1), np.ones((6, 1)), 1.0):
        with pytest.raises(ValueError, match="`u` must"):
            es.gradient(bad)
    for bad in (np.full(6, np.nan), np.array([np.inf, 0, 0, 0, 0, 0])):
        with pytest.raises(ValueError, match="`u` must be finite"):
            es.gradient(bad)
    for bad in (np.ones(6) * 1j, np.ones(6, dtype=bool), "abcdef", None):
        with pytest.raises(TypeError, match="`u` must"):
            es.gradient(bad)
