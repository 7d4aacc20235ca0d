"""The strategy contract: every registered strategy keeps the same promises.

The suite is parametrized over the registry (:func:`nes_asktell.strategy_names`), so a new
strategy is covered as soon as its module defines it; ``tests/toy_strategy.py`` shows that one
module is enough. Every comparison is exact (bit-identical runs), not statistical.
"""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import numpy as np
import pytest
import toy_strategy  # noqa: F401  (defining the toy registers it)
from hypothesis import given
from hypothesis import strategies as st

from nes_asktell import IPOP, SNES, NESWarning, Strategy, resolve_strategy, strategy_names

NAMES = strategy_names()
D = 4


def ellipsoid(x: np.ndarray) -> float:
    w = 10.0 ** np.linspace(0, 2, x.size)
    return float(np.sum(w * (x - 0.3) ** 2))


def make(name: str, **kw: object) -> Strategy:
    return resolve_strategy(name)(np.full(D, 0.5), 0.3, rng=kw.pop("rng", 3), **kw)  # type: ignore[arg-type]


def step(es: Strategy, f=ellipsoid) -> np.ndarray:
    X = es.ask()
    es.tell(X, [f(x) for x in X])
    return X


def test_the_registry_holds_the_library_and_the_toy() -> None:
    assert {"openes", "snes", "xnes", "toy"} <= set(NAMES)


# ---------------------------------------------------------------------- protocol
@pytest.mark.parametrize("name", NAMES)
def test_batch_keys_of_anything_but_the_pending_rows_is_none(name: str) -> None:
    # a list raised AttributeError ('list' object has no attribute 'base'), a row IndexError
    es = make(name)
    X = es.ask()
    for other in (X.tolist(), X[0], X.copy(), None, 3, X[:0]):
        assert es.batch_keys(other) is None  # type: ignore[arg-type]
    assert (es.batch_keys(X) is None) == (es.batch_keys(X[:2]) is None)


@pytest.mark.parametrize("name", NAMES)
def test_ask_tell_protocol(name: str) -> None:
    es = make(name)
    assert (es.dim, es.generation, es.nfev) == (D, 0, 0)
    X = es.ask()
    assert X.shape == (es.popsize, D)
    assert X.dtype == np.float64
    assert not X.flags.writeable
    assert es.ask() is X  # asking again before tell: the same batch
    es.tell(X[::-1], [ellipsoid(x) for x in X[::-1]])  # rows in any order
    assert (es.generation, es.nfev) == (1, es.popsize)
    assert es.best[1] == min(ellipsoid(x) for x in X)
    res = es.result
    for field in ("x", "fun", "nfev", "nit", "status", "success", "message", "stop", "mean"):
        assert field in res
    assert isinstance(es.stop(), dict)


def test_told_rows_match_the_asked_ones_with_minus_zero_as_zero() -> None:
    # rows were matched by their bytes: a float32 run whose step size underflows asks -0.0
    # and 0.0, and the same rows told as X + 0.0 in another order were "not one of the
    # candidates", though every value compares equal
    es = SNES(np.array([-0.0, 1.0]), np.array([1e-60, 0.1]), rng=0, dtype="float32", popsize=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the underflow)
        X = np.array(es.ask())
    assert np.signbit(X[:, 0]).any()  # the case: a -0.0 asked
    order = [1, 0, 2, 3]
    f = np.array([ellipsoid(x) for x in X])
    es.tell((X + 0.0)[order], f[order])
    assert es.generation == 1
    assert es.best[1] == f.min()


@pytest.mark.parametrize("name", NAMES)
def test_stds_are_a_copy_of_the_spread_along_each_coordinate(name: str) -> None:
    es = make(name)
    for _ in range(3):
        step(es)
    stds = es.stds
    assert stds.shape == (D,)
    assert np.all(np.isfinite(stds))
    assert np.all(stds > 0)
    stds[:] = -1.0
    assert np.all(es.stds > 0)  # a copy


def test_stds_are_the_square_roots_of_the_covariance_diagonal() -> None:
    from nes_asktell import CRFMNES, DXNESIC, SNES, XNES, OpenES

    x0 = np.full(D, 0.5)
    for cls in (XNES, DXNESIC):
        es = cls(x0, 0.3, rng=3)
        for _ in range(5):
            step(es)
        cov = es.sigma**2 * es.B @ es.B.T  # type: ignore[attr-defined, operator]
        np.testing.assert_allclose(es.stds, np.sqrt(np.diag(cov)), rtol=1e-12)
    cr = CRFMNES(x0, 0.3, rng=3)
    for _ in range(5):
        step(cr)
    cov = cr.sigma**2 * np.diag(cr.D) @ (np.eye(D) + np.outer(cr.v, cr.v)) @ np.diag(cr.D)  # type: ignore[operator]
    np.testing.assert_allclose(cr.stds, np.sqrt(np.diag(cov)), rtol=1e-12)
    sn = SNES(x0, 0.3, rng=3)
    step(sn)
    np.testing.assert_array_equal(sn.stds, sn.sigma)
    op = OpenES(x0, 0.3, rng=3)
    np.testing.assert_array_equal(op.stds, np.full(D, 0.3))


@pytest.mark.parametrize("name", NAMES)
def test_optimize_respects_the_budget(name: str) -> None:
    es = make(name)
    res = es.optimize(ellipsoid, maxfev=3 * es.popsize + 1)
    assert res.nfev == 3 * es.popsize + 1
    assert res.status == 1
    assert res.fun == es.best[1] <= ellipsoid(np.full(D, 0.5))


@pytest.mark.parametrize("name", NAMES)
def test_the_name_resolves_in_any_case_everywhere(name: str) -> None:
    cls = resolve_strategy(name)
    assert resolve_strategy(name.upper()) is cls
    assert resolve_strategy(cls) is cls
    assert cls.name == name
    opt = IPOP(name.upper(), np.zeros(D), 0.3, rng=0)
    assert type(opt.strategy) is cls


# ---------------------------------------------------------------------- state
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("trip", ["json", "pickle"])
@pytest.mark.parametrize("between", [True, False])
def test_state_round_trips_continue_bit_identically(name: str, trip: str, between: bool) -> None:
    ref, es = make(name), make(name)
    for _ in range(3):
        step(ref), step(es)
    if between:
        ref.ask(), es.ask()
    if trip == "json":
        copy_ = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
    else:
        copy_ = pickle.loads(pickle.dumps(es))
    assert type(copy_) is type(es)
    for _ in range(4):
        np.testing.assert_array_equal(step(copy_), step(ref))
    np.testing.assert_array_equal(copy_.mean, ref.mean)
    assert copy_.best[1] == ref.best[1]
    assert (copy_.generation, copy_.nfev) == (ref.generation, ref.nfev)


@pytest.mark.parametrize("name", NAMES)
def test_from_state_of_a_subclass_rejects_another_strategy(name: str) -> None:
    state = make(name).state_dict()
    other = next(n for n in NAMES if n != name)
    with pytest.raises(ValueError, match="`state` must come from"):
        resolve_strategy(other).from_state(state)


@given(seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_asks_for_every_strategy(seed: int) -> None:
    for name in NAMES:
        a, b = make(name, rng=seed), make(name, rng=seed)
        for _ in range(2):
            np.testing.assert_array_equal(step(a), step(b))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", NAMES)
def test_misuse_and_bad_input_leave_the_strategy_unchanged(name: str) -> None:
    es = make(name)
    with pytest.raises(RuntimeError, match="tell before ask"):
        es.tell(np.zeros((es.popsize, D)), np.zeros(es.popsize))
    step(es)
    with pytest.raises(RuntimeError, match="the same batch twice"):
        es.tell(np.zeros((es.popsize, D)), np.zeros(es.popsize))
    X = es.ask()
    before = es.state_dict()
    with pytest.raises(ValueError, match=r"`fitness` must have shape"):
        es.tell(X, np.zeros(es.popsize + 1))
    with pytest.raises(ValueError, match=r"`solutions` row 0 is not one of the candidates"):
        es.tell(X + 1.0, np.zeros(es.popsize))
    with pytest.raises(TypeError, match=r"`fitness` must be a sequence"):
        es.tell(X, "abc")  # type: ignore[arg-type]
    assert es.state_dict() == before
    es.tell(X, [ellipsoid(x) for x in X])  # the batch is still pending after the rejections
    with pytest.raises(ValueError, match="`sigma0` must be a positive finite number"):
        resolve_strategy(name)(np.zeros(D), -1.0)
    with pytest.raises(TypeError, match="unknown option `foo`"):
        resolve_strategy(name)(np.zeros(D), 1.0, foo=1)  # type: ignore[call-arg]


# ---------------------------------------------------------------------- non-finite fitness
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_values_rank_worst_and_all_non_finite_skips(name: str) -> None:
    ref, es = make(name), make(name)
    X, Xr = es.ask(), ref.ask()
    f = np.array([ellipsoid(x) for x in X])
    worst = np.argsort(f)[-2:]  # the two worst values become NaN and inf: same ranks
    g = f.copy()
    g[worst[0]], g[worst[1]] = np.nan, np.inf
    h = f.copy()
    h[worst[0]], h[worst[1]] = 1e300, 1e301
    if es.default_shaping == "nes":  # rank-based: the same update
        es.tell(X, g)
        ref.tell(Xr, h)
        np.testing.assert_array_equal(es.mean, ref.mean)
    else:
        es.tell(X, g)
    assert np.isfinite(es.mean).all()
    before = es.mean
    X = es.ask()
    with pytest.warns(NESWarning, match="every fitness value is non-finite"):
        es.tell(X, np.full(es.popsize, np.nan))
    np.testing.assert_array_equal(es.mean, before)
    assert es.generation == 2


@pytest.mark.parametrize("name", NAMES)
def test_a_masked_fitness_value_is_no_value(name: str) -> None:
    # np.asarray drops the mask of a masked array: the best candidate, masked out as a failed
    # evaluation over a data value of 0.0, was told as 0.0 and became the best point
    masked, nan = make(name), make(name)
    X, Xn = masked.ask(), nan.ask()
    f = np.array([ellipsoid(x) for x in X])
    best = int(np.argmin(f))
    data = f.copy()
    data[best] = 0.0
    g = f.copy()
    g[best] = np.nan
    masked.tell(X, np.ma.masked_array(data, mask=np.arange(f.size) == best))
    nan.tell(Xn, g)
    assert json.dumps(masked.state_dict()) == json.dumps(nan.state_dict())
    assert masked.best[1] != 0.0

    # the same through optimize with a vectorized objective that masks its failures
    def fails_right(X: np.ndarray) -> np.ma.MaskedArray:
        y = np.sum(X**2, axis=0)
        return np.ma.masked_array(np.where(X[0] > 0.8, -1.0, y), mask=X[0] > 0.8)

    res = make(name).optimize(fails_right, maxiter=5, vectorized=True)
    assert res.fun >= 0.0


@pytest.mark.parametrize("name", NAMES)
def test_a_rank_shaped_run_ignores_increasing_transforms(name: str) -> None:
    a, b = make(name, shaping="nes"), make(name, shaping="nes")
    for _ in range(4):
        np.testing.assert_array_equal(step(a), step(b, lambda x: np.exp(ellipsoid(x)) - 7.0))


# ---------------------------------------------------------------------- bounds
@pytest.mark.parametrize("name", NAMES)
def test_bounds_hold_every_candidate_and_the_best(name: str) -> None:
    lo, hi = np.full(D, 0.4), np.full(D, 0.6)
    es = make(name, bounds=(lo, hi))
    for _ in range(5):
        X = step(es)
        assert np.all((lo <= X) & (hi >= X))
    assert np.all((es.best[0] >= lo) & (es.best[0] <= hi))


# ---------------------------------------------------------------------- resume
@pytest.mark.parametrize("name", NAMES)
def test_a_resumed_optimize_equals_an_uninterrupted_one(name: str) -> None:
    whole = make(name).optimize(ellipsoid, maxiter=12)
    first = make(name)
    first.optimize(ellipsoid, maxiter=5)
    resumed = Strategy.from_state(json.loads(json.dumps(first.state_dict())))
    res = resumed.optimize(ellipsoid, maxiter=12)
    np.testing.assert_array_equal(res.x, whole.x)
    np.testing.assert_array_equal(res.mean, whole.mean)
    assert (res.fun, res.nfev, res.nit) == (whole.fun, whole.nfev, whole.nit)


@pytest.mark.parametrize("name", NAMES)
def test_the_scipy_method_and_the_sampler_accept_every_registered_name(name: str) -> None:
    from scipy.optimize import minimize

    from nes_asktell import NESSampler, nes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            ellipsoid,
            np.zeros(D),
            method=nes,
            options={"strategy": name.upper(), "maxfev": 60, "rng": 0},
        )
    assert res.nfev == 60
    sampler = NESSampler(strategy=name.upper(), seed=0)
    assert copy.copy(sampler) is not None


@pytest.mark.parametrize("name", NAMES)
def test_scale_sigma_scales_every_standard_deviation(name: str) -> None:
    es = make(name)
    step(es)
    before = es._stds().copy()
    es.scale_sigma(2.5)
    np.testing.assert_allclose(es._stds(), before * 2.5, rtol=1e-12)
    back = type(es).from_state(es.state_dict())
    np.testing.assert_array_equal(back._stds(), es._stds())
    step(es)  # and the run goes on


@pytest.mark.parametrize("name", NAMES)
def test_threads_none_is_the_default_one_thread(name: str) -> None:
    # dtype=None was the default already; threads=None raised "`threads` must be an integer",
    # also as an option of the scipy method, where None is how an option is left unset
    a, b = make(name, threads=None), make(name)
    step(a)
    step(b)
    assert json.dumps(a.state_dict()) == json.dumps(b.state_dict())
    from scipy.optimize import minimize

    from nes_asktell import nes

    kw = {"strategy": name, "rng": 0, "maxiter": 3}
    x0 = np.full(D, 0.5)
    got = minimize(ellipsoid, x0, method=nes, options={**kw, "threads": None})
    ref = minimize(ellipsoid, x0, method=nes, options=kw)
    np.testing.assert_array_equal(got.x, ref.x)


def negated_ranks(f: np.ndarray) -> np.ndarray:
    """A callable shaping: utilities from the ranks, best first (sum 0)."""
    r = np.argsort(np.argsort(f)).astype(float)
    return (r.mean() - r) / f.size


@pytest.mark.parametrize("name", NAMES)
def test_a_callable_shaping_refuses_a_json_state_and_points_to_pickle(name: str) -> None:
    # the message (and the docs) said "pass it again to from_state(state, shaping=...)", but
    # state_dict() itself raises, so there is no state to pass: pickle is the one way
    es = make(name, shaping=negated_ranks)
    step(es)
    es.ask()
    with pytest.raises(
        ValueError, match=r"^`shaping` is a callable, which state_dict\(\) cannot"
    ) as info:
        es.state_dict()
    assert "from_state" not in str(info.value)
    assert "use pickle" in str(info.value)
    resumed = pickle.loads(pickle.dumps(es))
    np.testing.assert_array_equal(step(resumed), step(es))


def test_dtype_names_the_candidates_dtype() -> None:
    from nes_asktell import XNES

    assert XNES(np.zeros(2), 1.0).dtype == np.float64
    es = XNES(np.zeros(2), 1.0, dtype="float32")
    assert es.dtype == np.float32
    assert es.ask().dtype == es.dtype
