"""NoiseHandler: the rank-change measure and its reaction, with and without noise."""

from __future__ import annotations

import copy
import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from conftest import Z
from hypothesis import given
from hypothesis import strategies as st

from nes_asktell import SNES, XNES, NoiseHandler, OpenES, resolve_strategy, strategy_names
from nes_asktell._uncertainty import rank_change


@given(seed=st.integers(0, 2**32 - 1), lam=st.integers(2, 30), ties=st.booleans())
def test_without_noise_the_measure_is_never_positive(seed: int, lam: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 3, lam).astype(float) if ties else rng.standard_normal(lam)
    k = int(rng.integers(1, lam + 1))
    assert rank_change(f, f[:k].copy(), 0.2) <= 0.0


@pytest.mark.parametrize("cls", [XNES, SNES])
def test_a_noise_free_run_never_raises_sigma(cls) -> None:
    plain = cls(np.full(5, 1.0), 0.5, rng=3)
    nh = NoiseHandler(cls(np.full(5, 1.0), 0.5, rng=3))
    for _ in range(150):
        X = nh.ask()
        nh.tell(X, [float(x @ x) for x in X])
        Xp = plain.ask()
        plain.tell(Xp, [float(x @ x) for x in Xp])
    assert nh.raises == 0
    # and the strategy ran exactly as without the handler
    np.testing.assert_array_equal(nh.strategy.mean, plain.mean)
    assert nh.nfev == plain.nfev + 150 * nh.reevaluations


def exact_positive_probability(lam: int, k: int) -> float:
    """P(s > 0) when the fitness is pure noise: the joint ranking is a random permutation.

    s depends only on the ranks of the k re-evaluated candidates' two values among the
    lam + k: enumerate every placement (all equally likely).
    """
    L = lam + k
    hits = total = 0
    for pos in itertools.permutations(range(L), 2 * k):
        joint = np.empty(L)
        rest = [p for p in range(L) if p not in pos]
        old = np.empty(lam)
        old[:k] = pos[:k]
        old[k:] = rest
        joint = np.asarray(pos[k:], dtype=float)
        hits += rank_change(old, joint, 0.2) > 0
        total += 1
    return hits / total


def test_pure_noise_makes_the_measure_positive_at_its_exact_rate() -> None:
    lam, N = 8, 400
    es = SNES(np.zeros(3), 1.0, rng=0)
    nh = NoiseHandler(es)
    k = nh.reevaluations
    assert k == 2  # max(0.1, 2/8) * 8
    p = exact_positive_probability(lam, k)
    rng = np.random.default_rng(1)
    positive = 0
    for _ in range(N):
        X = nh.ask()
        nh.tell(X, rng.standard_normal(len(X)))
        positive += nh.last_measure > 0
    # Binomial(N, p) (the permutations of successive generations are independent):
    # Z = 6.57 standard deviations (alpha 5e-11, conftest). One assertion.
    assert abs(positive - N * p) <= Z * math.sqrt(N * p * (1 - p))
    assert p > 0.8  # noise dominates: the measure says so in most generations
    assert nh.raises > N / 2


@pytest.mark.parametrize("seed", range(3))
def test_strong_noise_keeps_sigma_up_where_plain_runs_collapse(seed: int) -> None:
    # sphere plus N(0, 0.001^2): the noise-free optimum is reached to 1e-16 with sigma near
    # 1e-8 in 3000 evaluations; with the handler sigma stays near the noise's scale.
    r = np.random.default_rng(seed + 50)
    nh = NoiseHandler(XNES(np.full(5, 1.0), 0.5, rng=seed))
    nh.optimize(lambda x: float(x @ x) + 1e-3 * r.standard_normal(), maxfev=3000)
    assert nh.raises > 100
    assert nh.strategy.sigma > 1e-3


def test_bad_arguments_are_rejected() -> None:
    es = XNES(np.zeros(3), 1.0)
    with pytest.raises(TypeError, match="`strategy` must be a Strategy"):
        NoiseHandler("xnes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`alpha_sigma` must be a number >= 1"):
        NoiseHandler(es, alpha_sigma=0.5)
    with pytest.raises(ValueError, match="`theta`"):
        NoiseHandler(es, theta=2.0)
    # c_s = 0 never moved the smoothed measure from 0, so the handler never acted: rejected
    with pytest.raises(ValueError, match=r"`c_s` must be a number in \(0, 1\], but got 0\."):
        NoiseHandler(es, c_s=0)
    with pytest.raises(TypeError, match=r"`c_s` must be a number in \(0, 1\], but got None\."):
        NoiseHandler(es, c_s=None)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"`reevaluations` must be a number in \[0, 1\], but got 1\.5"
    ):
        NoiseHandler(es, reevaluations=1.5)
    nh = NoiseHandler(es)
    X = nh.ask()
    with pytest.raises(ValueError, match="`fitness`"):
        nh.tell(X, np.zeros(3))
    assert nh.strategy.generation == 0  # the rejected tell changed nothing


def test_the_closed_ends_of_the_option_ranges_are_taken() -> None:
    # c_s = 1 (no smoothing), theta = 1 (the median) and reevaluations = 1 (every candidate
    # twice) are the paper's ranges' ends; each was rejected as outside [0, 1).
    rng = np.random.default_rng(5)
    nh = NoiseHandler(XNES(np.zeros(3), 1.0, rng=0), reevaluations=1, theta=1, c_s=1)
    assert nh.reevaluations == nh.strategy.popsize
    for _ in range(5):
        X = nh.ask()
        nh.tell(X, [float(x @ x) + 10.0 * rng.normal() for x in X])
        assert nh.measure == nh.last_measure  # c_s = 1: the measure as it is
    copy = NoiseHandler.from_state(json.loads(json.dumps(nh.state_dict())))
    assert json.dumps(copy.state_dict()) == json.dumps(nh.state_dict())


def test_a_strategy_with_a_callable_shaping_is_handled_in_place() -> None:
    # sigma is raised in place (Strategy.scale_sigma), so a shaping that cannot be written
    # into a state is no obstacle, and the strategy object stays the same
    es = OpenES(np.zeros(3), 0.1, shaping=lambda f: -np.asarray(f), rng=0)
    nh = NoiseHandler(es, alpha_sigma=2.0)
    rng = np.random.default_rng(1)
    for _ in range(5):
        X = nh.ask()
        nh.tell(X, rng.normal(size=len(X)))  # pure noise: ranks change, sigma is raised
    assert nh.strategy is es
    assert nh.raises >= 1
    # OpenES keeps sigma fixed by default: only the raises change it
    assert nh.strategy.result.sigma == pytest.approx(0.1 * 2.0**nh.raises, rel=1e-12)


@pytest.mark.parametrize("cls", [XNES, SNES, OpenES])
def test_scale_sigma_multiplies_every_step_size_and_is_refused_mid_batch(cls: type) -> None:
    es = cls(np.zeros(3), np.array([0.1, 0.2, 0.4]) if cls is SNES else 0.3, rng=0)
    before = es.result.sigma
    es.scale_sigma(3.0)
    np.testing.assert_allclose(es.result.sigma, np.asarray(before) * 3.0, rtol=1e-15)
    X = es.ask()
    with pytest.raises(RuntimeError, match=r"scale_sigma\(\) changes the distribution"):
        es.scale_sigma(2.0)
    np.testing.assert_allclose(es.result.sigma, np.asarray(before) * 3.0, rtol=1e-15)
    es.tell(X, np.arange(len(X), dtype=float))
    for bad, exc in ((0.0, ValueError), (math.inf, ValueError), ("2", TypeError)):
        with pytest.raises(exc, match=r"`factor` must be a positive finite number"):
            es.scale_sigma(bad)
    es.scale_sigma(1e300)  # clipped to the range every update keeps sigma in
    assert np.all(np.isfinite(es.result.sigma))
    back = cls.from_state(es.state_dict())  # a scaled strategy is a valid state
    np.testing.assert_array_equal(back.result.sigma, es.result.sigma)


def excess(es: Any) -> float:
    """The largest standard deviation of `es` over its box's width."""
    lo, hi = es.bounds
    return float(np.max(es._stds() / (hi - lo)))


@pytest.mark.parametrize("cls", [XNES, SNES, OpenES])
def test_noise_handling_in_a_box_does_not_raise_the_spread_past_the_box(cls: type) -> None:
    # On pure noise every generation looks noisy, so the handler raises sigma each time. In
    # the box [-1, 1]^3 OpenES (whose update leaves sigma alone) grew to sigma = 6.6e11 in
    # 194 generations: every candidate on a wall, the ranking meaningless; SNES ended a
    # raise with a spread past the box (the next tell fitted it back).
    es = cls(np.zeros(3), 0.5, rng=0, bounds=([-1.0] * 3, [1.0] * 3))
    nh = NoiseHandler(es)
    rng = np.random.default_rng(0)
    noisy = 0
    for _ in range(150):
        X = nh.ask()
        nh.tell(X, rng.normal(size=len(X)))
        assert excess(es) <= 1.0 + 1e-12
        noisy += nh.measure > 0.0  # a raise asked for (`raises` counts those that widened)
    assert noisy > 50
    wide = OpenES(np.zeros(2), 5.0, rng=0, bounds=([-1.0, -1.0], [1.0, 1.0]))
    wide.scale_sigma(2.0)  # a spread already past the box is not raised
    assert wide.result.sigma == 5.0
    wide.scale_sigma(0.5)  # and is lowered as asked
    assert wide.result.sigma == 2.5


def test_raises_counts_the_generations_that_raised_sigma() -> None:
    # Bug: `raises` ("how many generations raised sigma") counted every generation judged
    # noisy, also those whose raise the box held back (OpenES's sigma stops at the box's
    # width): 30 noisy generations gave raises = 30, with sigma raised in 11 of them.
    es = OpenES(np.zeros(3), 0.5, rng=0, bounds=([-1.0] * 3, [1.0] * 3))
    nh = NoiseHandler(es)
    lam, k = es.popsize, nh.reevaluations
    # every re-evaluation turns a best candidate into the worst: noisy in every generation
    f = np.concatenate([np.arange(lam), 100.0 + np.arange(k)])
    raised = 0
    for _ in range(30):
        before = es.sigma
        nh.tell(nh.ask(), f)
        assert nh.measure > 0.0
        raised += es.sigma > before
    # sigma * alpha**g reaches the box's width 2 after ceil(ln 4 / ln alpha) = 10 raises (one
    # more when the 10th, cut to the width, rounds to 1 ulp below it); none after that
    assert math.ceil(math.log(4.0) / math.log(1.0 + 2.0 / 13.0)) == 10
    assert raised in (10, 11)
    assert es.sigma == 2.0
    assert nh.raises == raised
    assert nh.result.raises == raised


@pytest.mark.parametrize("value", ["1.5", True, None, 1j, [1.0, 2.0]])
def test_optimize_accepts_only_real_numbers_from_fun(value: object) -> None:
    nh = NoiseHandler(XNES(np.ones(2), 0.5, rng=0))
    with pytest.raises(TypeError, match=r"`fun` must return a real number, but '<lambda>' ret"):
        nh.optimize(lambda x: value, maxfev=100)
    assert (nh.strategy.generation, nh.nfev) == (0, 0)


def test_optimize_accepts_numpy_scalars_and_one_element_arrays() -> None:
    for wrap in (np.float32, lambda y: np.array([y]), lambda y: np.array(y), int):
        nh = NoiseHandler(XNES(np.ones(2), 0.5, rng=0))
        res = nh.optimize(lambda x, w=wrap: w(float(x @ x)), maxfev=60)
        per = nh.strategy.popsize + nh.reevaluations  # whole generations within the budget
        assert res.nfev == 60 // per * per


def test_optimize_reports_its_budget_as_the_stopping_reason() -> None:
    nh = NoiseHandler(XNES(np.ones(2), 0.5, rng=0))
    res = nh.optimize(lambda x: float(x @ x), maxfev=100)
    assert res.nfev <= 100
    assert (res.status, res.success) == (1, False)
    assert res.message == "Maximum number of function evaluations has been exceeded."
    assert "maxfev" in res.stop


def test_optimize_takes_an_infinite_budget_as_no_limit() -> None:
    nh = NoiseHandler(XNES(np.ones(2), 0.5, rng=0, maxiter=4))
    res = nh.optimize(lambda x: float(x @ x), maxfev=float("inf"))
    assert (res.nit, res.status) == (4, 2)


def test_tell_rejects_reevaluation_rows_that_are_not_the_first_candidates() -> None:
    nh = NoiseHandler(XNES(np.ones(2), 0.5, rng=0))
    X = nh.ask()
    f = [float(x @ x) for x in X]
    forged = X.copy()
    forged[-1] += 1.0
    with pytest.raises(ValueError, match=r"`solutions` must repeat the first 2 rows of ask"):
        nh.tell(forged, f)
    assert nh.strategy.generation == 0
    nh.tell(X, f)  # the batch is still pending
    assert nh.strategy.generation == 1


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        # the imaginary part was dropped (with numpy's ComplexWarning) and the tell accepted
        (lambda X: X + 1j, TypeError, r"`solutions` must be the real array .* complex values"),
        (lambda X: X.astype(str), TypeError, r"`solutions` must be .* string values"),
        # numpy's messages, which named no argument
        (lambda X: "abc", TypeError, r"`solutions` must be the 8 rows of ask\(\), but got 'abc'"),
        (lambda X: [{}] * len(X), TypeError, r"`solutions` must be .* non-number values"),
        (lambda X: [[1.0, 2.0], [3.0]], TypeError, r"`solutions` must be the 8 rows of ask"),
    ],
)
def test_tell_rejects_solutions_that_are_not_real_rows(
    make: Any, exc: type[Exception], match: str
) -> None:
    nh = NoiseHandler(XNES(np.ones(2), 0.5, rng=0))
    X = nh.ask()
    f = [float(x @ x) for x in X]
    before = json.dumps(nh.state_dict())
    with pytest.raises(exc, match=match):
        nh.tell(make(X), f)
    assert json.dumps(nh.state_dict()) == before
    nh.tell(X, f)
    assert nh.strategy.generation == 1


def _noisy_handler(generations: int) -> tuple[NoiseHandler, np.random.Generator]:
    rng = np.random.default_rng(5)
    nh = NoiseHandler(SNES(np.ones(3), 0.5, rng=1))
    for _ in range(generations):
        X = nh.ask()
        nh.tell(X, [float(x @ x) + rng.normal() for x in X])
    return nh, rng


def test_state_dict_round_trip_continues_bit_identically() -> None:
    nh, rng = _noisy_handler(40)
    assert nh.raises > 0  # the noise dominates: the state holds raises and a positive measure
    X = nh.ask()  # mid-batch, as after an interruption
    copy = NoiseHandler.from_state(json.loads(json.dumps(nh.state_dict())))
    assert np.array_equal(copy.ask(), X)
    for _ in range(5):
        X = nh.ask()
        f = [float(x @ x) + rng.normal() for x in X]
        nh.tell(X, f)
        copy.tell(copy.ask(), f)
    assert json.dumps(copy.state_dict()) == json.dumps(nh.state_dict())
    assert (copy.nfev, copy.raises, copy.measure) == (nh.nfev, nh.raises, nh.measure)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.update(version=1), r"`state` must come from NoiseHandler.state_dict\(\)"),
        (lambda s: s.pop("measure"), r"`state` is malformed: the key 'measure' is missing"),
        (lambda s: s.update(reevaluations=0), r"`reevaluations` must be an integer in \[1, "),
        (lambda s: s.update(raises=10**6), r"`raises` must be an integer in \[0, 40\]"),
        (lambda s: s.update(nfev_extra=-1), r"`nfev_extra` must be an integer in \[0, "),
        (lambda s: s.update(measure=math.nan), r"`measure` must be a finite number"),
        (lambda s: s.update(theta="0.2"), r"`theta` must be a number in \[0, 1\]"),
        (lambda s: s["run"].update(strategy="cmaes"), r"`state` must come from a strategy's"),
        # None (the constructor's default) was taken: another run than the one saved
        (lambda s: s.update(alpha_sigma=None), r"`alpha_sigma` must be a number, but got None"),
        (lambda s: s.update(c_s=None), r"`c_s` must be a number, but got None"),
    ],
)
def test_from_state_rejects_a_malformed_state(edit: object, match: str) -> None:
    nh, _ = _noisy_handler(40)
    state = json.loads(json.dumps(nh.state_dict()))
    edit(state)  # type: ignore[operator]
    with pytest.raises(ValueError, match=match):
        NoiseHandler.from_state(state)


@pytest.mark.parametrize("name", strategy_names())
def test_optimize_keeps_the_strategys_own_maxfev_with_the_reevaluations(name: str) -> None:
    # XNES(..., maxfev=100) under a NoiseHandler made 130 evaluations: the strategy counted
    # only its own 104 (13 whole generations of 8) and the 26 re-evaluations came on top
    es = resolve_strategy(name)(np.zeros(3), 1.0, rng=0, maxfev=100)
    nh = NoiseHandler(es)
    calls = []
    res = nh.optimize(lambda x: calls.append(1) or float(x @ x))
    per = es.popsize + nh.reevaluations
    assert len(calls) == res.nfev == nh.nfev == 100 // per * per
    assert (res.status, "maxfev" in res.stop) == (1, True)
    # with a budget of the call as well, the smaller one holds
    nh = NoiseHandler(resolve_strategy(name)(np.zeros(3), 1.0, rng=0, maxfev=100))
    assert nh.optimize(lambda x: float(x @ x), maxfev=50).nfev == 50 // per * per
    # and stop() of a hand-written loop says so once the re-evaluations reach it
    nh = NoiseHandler(resolve_strategy(name)(np.zeros(3), 1.0, rng=0, maxfev=100))
    while not nh.stop():
        X = nh.ask()
        nh.tell(X, [float(x @ x) for x in X])
    assert nh.nfev == -(-100 // per) * per
    assert nh.stop()["maxfev"] == 100


@pytest.mark.parametrize(("r", "lam", "expected"), [(0.07, 100, 7), (0.55, 100, 55), (0.1, 30, 3)])
def test_reevaluations_are_the_fraction_of_the_population_not_one_more(
    r: float, lam: int, expected: int
) -> None:
    # ceil(0.07 * 100) = ceil(7.000000000000001) re-evaluated 8 of 100 candidates, not 7%
    nh = NoiseHandler(SNES(np.zeros(3), 1.0, popsize=lam, rng=0), reevaluations=r)
    assert nh.reevaluations == expected
    assert NoiseHandler(
        SNES(np.zeros(3), 1.0, popsize=lam, rng=0), reevaluations=0.071
    ).reevaluations == math.ceil(0.071 * lam)


@pytest.mark.parametrize("name", strategy_names())
def test_result_of_a_hand_written_loop_is_the_one_optimize_returns(name: str) -> None:
    # A loop ended by nh.stop() had only the strategy's result, which counted 80 of the 100
    # evaluations, held no criterion and said "still running"; NoiseHandler had no result.
    def f(x: np.ndarray) -> float:
        return float(x @ x)

    # (a budget of whole generations: optimize ends before a generation that would pass it,
    # a loop of one's own after the one that reaches it; "toy" has another popsize)
    per = len(NoiseHandler(resolve_strategy(name)(np.full(3, 2.0), 0.5, rng=0)).ask())
    budget = 10 * per
    nh = NoiseHandler(resolve_strategy(name)(np.full(3, 2.0), 0.5, rng=0, maxfev=budget))
    while not nh.stop():
        X = nh.ask()
        nh.tell(X, [f(x) for x in X])
    res = nh.result
    assert (res.nfev, res.stop, res.status, res.raises) == (nh.nfev, nh.stop(), 1, nh.raises)
    np.testing.assert_array_equal(res.mean, nh.strategy.mean)
    ran = NoiseHandler(resolve_strategy(name)(np.full(3, 2.0), 0.5, rng=0, maxfev=budget))
    expected = ran.optimize(f)
    assert {k: res[k] for k in ("nfev", "nit", "fun", "status", "message", "stop", "raises")} == {
        k: expected[k] for k in ("nfev", "nit", "fun", "status", "message", "stop", "raises")
    }
    # before the run ends it is running, with the re-evaluations counted
    nh = NoiseHandler(resolve_strategy(name)(np.full(3, 2.0), 0.5, rng=0))
    X = nh.ask()
    nh.tell(X, [f(x) for x in X])
    assert (nh.result.nfev, nh.result.status, nh.result.stop) == (nh.nfev, -1, {})


def test_a_subclass_without_a_name_is_read_back_as_itself() -> None:
    # The strategy's state names its parent ("xnes"); from_state rebuilt the handler's
    # strategy as XNES, so a resumed run left the user's class.
    class Mine(XNES):
        pass

    rng = np.random.default_rng(2)
    nh = NoiseHandler(Mine(np.zeros(3), 1.0, rng=0))
    for _ in range(3):
        X = nh.ask()
        nh.tell(X, [float(x @ x) + rng.normal() for x in X])
    state = json.loads(json.dumps(nh.state_dict()))
    back = NoiseHandler.from_state(state, strategy=Mine)
    assert type(back.strategy) is Mine
    assert json.dumps(back.state_dict()) == json.dumps(nh.state_dict())
    np.testing.assert_array_equal(back.ask(), nh.ask())
    assert type(NoiseHandler.from_state(state).strategy) is XNES  # the class the state names
    with pytest.raises(ValueError, match=r"must come from SNES\.state_dict\(\)"):
        NoiseHandler.from_state(state, strategy=SNES)
    with pytest.raises(TypeError, match=r"`strategy` must be a Strategy subclass or None"):
        NoiseHandler.from_state(state, strategy="xnes")  # type: ignore[arg-type]


@pytest.mark.parametrize("failed", ["all", "one", "first_value"])
def test_failed_evaluations_are_no_evidence_of_noise(failed: str) -> None:
    # A NaN re-evaluation ranked worst in the joint ranking, so it counted as the largest
    # rank change: on a noise-free objective whose re-evaluations failed, s was 6.4 and sigma
    # was raised in every one of 200 generations. Pairs with a non-finite value are now left
    # out; without noise the measure of the other pairs is <= 0, so nothing is raised and the
    # run is exactly the plain strategy's.
    nh = NoiseHandler(XNES(np.full(3, 2.0), 1.0, rng=0))
    plain = XNES(np.full(3, 2.0), 1.0, rng=0)
    lam, k = nh.strategy.popsize, nh.reevaluations
    assert k >= 2
    for _ in range(60):
        X = nh.ask()
        f = [float(x @ x) for x in X]
        if failed == "all":
            f[lam:] = [math.nan] * k
        elif failed == "one":
            f[lam] = math.nan  # the re-evaluation of candidate 0
        else:
            f[0] = math.nan  # candidate 0's first value; its re-evaluation is finite
        nh.tell(X, f)
        Y = plain.ask()
        np.testing.assert_array_equal(X[:lam], Y)
        plain.tell(Y, f[:lam])
        assert nh.measure <= 0.0
    assert nh.raises == 0
    assert nh.nfev == plain.nfev + 60 * k


@given(
    L=st.integers(2, 80),
    q=st.one_of(st.sampled_from([0.0, 10.0, 20.0, 50.0, 100.0]), st.floats(0.0, 100.0)),
    data=st.data(),
)
def test_the_distance_percentile_is_numpys_percentile_of_the_distances(
    L: int, q: float, data: st.DataObject
) -> None:
    from nes_asktell._uncertainty import distance_percentile

    R = np.array(data.draw(st.lists(st.integers(0, L), min_size=1, max_size=8)))
    dense = np.percentile(np.abs(np.arange(1, L)[None, :] - R[:, None]), q, axis=1)
    np.testing.assert_array_equal(distance_percentile(R, L, q), dense)


def test_a_large_population_is_measured_without_a_quadratic_allocation() -> None:
    # rank_change built a (lambda_r x (lambda + lambda_r)) matrix of distances: a tell of
    # popsize 4096 with every candidate re-evaluated took 0.5 GB (at 2**18, tens of GB).
    import tracemalloc

    rng = np.random.default_rng(0)
    f_old = rng.normal(size=4096)
    f_new = f_old + 0.1 * rng.normal(size=4096)
    tracemalloc.start()
    try:
        s = rank_change(f_old, f_new, 0.2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert math.isfinite(s)
    assert peak < 16 * 2**20  # 8 * 4096 * 8192 bytes = 256 MB for one matrix before


def test_optimize_shows_each_warning_once_at_the_callers_line_with_a_summary() -> None:
    # NoiseHandler.optimize let every warning through, once per generation (20 for this run),
    # each pointing into the library; XNES.optimize shows the first one at the caller's line
    # and a summary line (docs/watching.rst, "Warnings, once per run").
    import warnings

    for run in (
        lambda: NoiseHandler(XNES(np.ones(3), 0.5, rng=0)).optimize(
            lambda x: math.nan, maxfev=200
        ),
        lambda: XNES(np.ones(3), 0.5, rng=0).optimize(lambda x: math.nan, maxfev=200),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        assert len(caught) == 2, [str(w.message) for w in caught]
        assert all(w.filename == __file__ for w in caught)
        assert "this run raised" in str(caught[1].message)


def test_from_state_names_a_bad_shaping_argument_as_the_callers() -> None:
    # NoiseHandler.from_state(state, shaping=3) said "`state` is malformed" of a valid state,
    # and made the TypeError a ValueError
    nh, _ = _noisy_handler(5)
    state = nh.state_dict()
    with pytest.raises(TypeError, match=r"^`shaping` must be a string or a callable, but got 3"):
        NoiseHandler.from_state(state, shaping=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^`shaping` must be one of .* but got 'nope'"):
        NoiseHandler.from_state(state, shaping="nope")
    assert NoiseHandler.from_state(state, shaping="nes").state_dict() == state


def test_ask_is_read_only_so_an_objective_cannot_change_the_rows_it_is_given() -> None:
    # an objective that projected its point in place (out=x) changed the rows optimize()
    # then told, and tell refused `solutions`, which the caller never passed
    def f(x: np.ndarray) -> float:
        np.clip(x, -0.5, 0.5, out=x)
        return float(x @ x)

    nh = NoiseHandler(XNES(np.ones(3), 0.5, rng=0))
    assert not nh.ask().flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        nh.optimize(f, maxfev=100)
    assert nh.nfev == 0


@pytest.mark.parametrize("pending", [False, True])
def test_a_shallow_copy_goes_on_independently_as_a_deep_one(pending: bool) -> None:
    """copy.copy(nh) has a strategy of its own, as copy.deepcopy(nh) has: they shared one, so
    the copy's tell told the original's batch (and the original's next tell was refused as
    the same batch twice)."""
    nh = NoiseHandler(XNES(np.full(3, 0.5), 0.3, rng=4))
    for _ in range(2):
        X = nh.ask()
        nh.tell(X, [float(x @ x) for x in X])
    if pending:
        nh.ask()
    twin, reference = copy.copy(nh), copy.deepcopy(nh)
    for h in (twin, reference, nh):  # the twin first: nothing it does may reach the original
        X = h.ask()
        h.tell(X, [float(x @ x) for x in X])
    assert twin.strategy is not nh.strategy
    assert json.dumps(twin.state_dict()) == json.dumps(reference.state_dict())
    assert json.dumps(nh.state_dict()) == json.dumps(reference.state_dict())
