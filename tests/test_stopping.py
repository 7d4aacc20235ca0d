"""Termination: each criterion of stop() triggered on purpose, and the result it produces."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from nes_asktell.integrations.optuna._sampler import COMMON_OPTIONS

from nes_asktell import IPOP, SNES, XNES, OpenES, Strategy, resolve_strategy
from nes_asktell._stopping import (
    FLAT_GENERATIONS,
    MESSAGES,
    default_stagnation,
    history_length,
    is_flat,
)
from nes_asktell._strategy import CRITERIA


def sphere(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def constant(x: np.ndarray) -> float:
    return 1.0


def run_until_stop(es: OpenES, fun: object, limit: int = 10_000) -> int:
    for _ in range(limit):
        if es.stop():
            return es.generation
        X = es.ask()
        es.tell(X, [fun(x) for x in X])  # type: ignore[operator]
    raise AssertionError("stop() never held")


def test_nothing_holds_at_the_start() -> None:
    assert OpenES(np.zeros(3), 0.1, rng=0, maxfev=10, maxiter=2, timeout=100.0).stop() == {}


@pytest.mark.parametrize("tol", [1.0 + 1e-12, 1.1, 1.24])
def test_conditioncov_ends_a_run_only_after_its_first_generation(tol: float) -> None:
    """CR-FM-NES's covariance starts at condition 1 + |v|^2 (v drawn from `rng`: 1.243 here),
    so a `tolconditioncov` below it held before the first generation: optimize returned
    having evaluated nothing (nfev 0, fun inf), as a threshold of 1 did before it was
    refused. Like every criterion on the search distribution it now holds after a generation.
    """
    es = resolve_strategy("crfmnes")(np.zeros(3), 1.0, rng=0, tolconditioncov=tol)
    assert es.axis_ratio**2 > tol  # the condition number the criterion reads, at the start
    assert es.stop() == {}
    res = es.optimize(sphere)
    assert (res.nit, res.nfev, res.stop) == (1, es.popsize, {"conditioncov": tol})
    assert math.isfinite(res.fun)


def test_maxiter() -> None:
    es = OpenES(np.ones(3), 0.1, rng=0, maxiter=7)
    assert run_until_stop(es, sphere) == 7
    assert es.stop() == {"maxiter": 7}
    assert es.result.status == 2
    assert es.result.message == MESSAGES[2]


def test_maxfev_in_the_ask_tell_loop() -> None:
    es = OpenES(np.ones(3), 0.1, 8, rng=0, maxfev=20)
    run_until_stop(es, sphere)
    assert es.nfev == 24  # whole generations: 3 x 8 >= 20
    assert es.stop()["maxfev"] == 20


@pytest.mark.parametrize("maxfev", [1, 7, 8, 9, 50, 101])
def test_optimize_spends_maxfev_exactly(maxfev: int) -> None:
    calls = []

    def f(x: np.ndarray) -> float:
        calls.append(x.copy())
        return sphere(x)

    es = OpenES(np.ones(3), 0.1, 8, rng=0, tolstagnation=10**6)
    res = es.optimize(f, maxfev=maxfev)
    assert len(calls) == res.nfev == es.nfev == maxfev
    assert res.nit == math.ceil(maxfev / 8)
    assert res.status == 1
    assert not res.success
    # the best is one of the evaluated points, with its value
    assert any(np.array_equal(res.x, c) for c in calls)
    assert res.fun == min(sphere(c) for c in calls)


def test_ftarget() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0, ftarget=1.5)
    run_until_stop(es, sphere)
    assert es.best[1] <= 1.5
    assert "ftarget" in es.stop()
    assert es.result.status == 0
    assert es.result.success


def test_tolfun_on_a_flat_function() -> None:
    # a constant f: the range of the best values and of the last generation is 0 < tolfun once
    # the history is full
    es = OpenES(np.zeros(3), 0.1, 8, rng=0, tolstagnation=10**6)
    g = run_until_stop(es, constant)
    assert g == history_length(3, 8)
    assert es.stop() == {"tolfun": 1e-12}
    assert es.result.success


def test_tolx_with_a_shrinking_sigma() -> None:
    es = OpenES(np.zeros(3), 1.0, rng=0, sigma_decay=0.5, tolx=1e-3, tolfun=None)
    g = run_until_stop(es, sphere)
    assert g == 10  # 0.5^10 < 1e-3 <= 0.5^9
    assert es.stop() == {"tolx": 1e-3}


def test_tolstagnation() -> None:
    # constant f: the first generation sets the best, no later one improves on it
    es = OpenES(np.zeros(3), 0.1, rng=0, tolstagnation=5, tolfun=None)
    assert run_until_stop(es, constant) == 6
    assert es.stop() == {"tolstagnation": 5}
    assert es.result.status == 3


def test_default_tolstagnation() -> None:
    es = OpenES(np.zeros(4), 0.1, rng=0)
    assert es.state_dict()["criteria"]["tolstagnation"] == default_stagnation(4, es.popsize)  # type: ignore[index]


def test_none_switches_tolstagnation_off_as_every_criterion() -> None:
    # None meant "the default" for tolstagnation alone, so it could not be switched off (0 is
    # refused): a run on a constant f past the default stopped by it all the same.
    es = OpenES(np.zeros(2), 0.1, rng=0, tolstagnation=None, tolfun=None)
    limit = default_stagnation(2, es.popsize)
    for _ in range(limit + 5):
        X = es.ask()
        es.tell(X, [constant(x) for x in X])
    assert es.stop() == {}
    state = json.loads(json.dumps(es.state_dict()))
    assert state["criteria"]["tolstagnation"] is None
    assert OpenES.from_state(state).stop() == {}


def step(x: np.ndarray) -> float:
    """A staircase: f is constant on unit cells, so a small spread ties every candidate."""
    return float(np.sum(np.floor(np.abs(x))))


@pytest.mark.parametrize("name", ["XNES", "SNES", "DXNESIC", "CRFMNES"])
def test_tolflatfitness_ends_a_run_on_a_plateau(name: str) -> None:
    # pycma's rule: after more than 3 generations in a row whose best value ties with the
    # value at rank int(0.75 n), the run stops (and IPOP restarts); the range of the best
    # values (tolfun) would wait 10 + 30 d / popsize generations
    es = resolve_strategy(name)(np.full(3, 0.5), 0.01, rng=0)
    assert es.state_dict()["criteria"]["tolflatfitness"] == FLAT_GENERATIONS  # type: ignore[index]
    assert run_until_stop(es, step) == FLAT_GENERATIONS + 1  # type: ignore[arg-type]
    assert es.stop() == {"tolflatfitness": FLAT_GENERATIONS}
    assert es.result.status == 0  # as tolfun: the values stopped differing
    # off with None: the run goes on until its history is full at least (then tolfun)
    off = resolve_strategy(name)(np.full(3, 0.5), 0.01, rng=0, tolflatfitness=None)
    assert run_until_stop(off, step) >= history_length(3, off.popsize)  # type: ignore[arg-type]
    assert "tolflatfitness" not in off.stop()


def test_tolflatfitness_counts_flat_generations_in_a_row_only() -> None:
    # three flat generations, one that is not, three more: no stop; a fourth in a row stops
    es = XNES(np.zeros(2), 0.1, 6, rng=0, mirrored=False, tolfun=None)
    flat, varied = np.zeros(6), np.arange(6.0)
    for f in (flat, flat, flat, varied, flat, flat, flat):
        es.tell(es.ask(), f)
        assert "tolflatfitness" not in es.stop()
    # the state carries the count: a copy stops at the same generation
    copy = XNES.from_state(json.loads(json.dumps(es.state_dict())))
    for s in (es, copy):
        s.tell(s.ask(), flat)
        assert s.stop() == {"tolflatfitness": FLAT_GENERATIONS}


@pytest.mark.parametrize(
    ("f", "flat"),
    [
        ([1.0, 1.0, 1.0, 1.0], True),  # all tie
        ([0.0, 1.0, 1.0, 1.0], False),  # the best alone
        ([2.0, 1.0, 1.0, 1.0, 5.0], False),  # rank int(0.75 * 5) = 3 holds 2.0
        ([1.0, 1.0, 1.0, 1.0, 5.0], True),
        ([1.0, 1.0, 1.0, np.nan], False),  # a non-finite value sorts last: rank 3 is not 1.0
        ([np.nan, np.inf, np.nan, np.nan], False),  # no finite best: not flat
    ],
)
def test_a_generation_is_flat_when_its_best_ties_the_three_quarter_rank(
    f: list[float], flat: bool
) -> None:
    assert is_flat(np.array(f)) is flat


def test_openes_and_the_sampler_leave_tolflatfitness_off() -> None:
    # OpenES's sigma is fixed (a plateau is not convergence); the sampler's parameters tie
    assert OpenES(np.zeros(2), 0.1).state_dict()["criteria"]["tolflatfitness"] is None  # type: ignore[index]
    assert COMMON_OPTIONS["tolflatfitness"] is None


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_a_bad_tolflatfitness_is_refused_naming_it(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="`tolflatfitness` must be an integer"):
        XNES(np.zeros(2), 0.1, tolflatfitness=bad)


def test_timeout() -> None:
    # a zero timeout holds as soon as one generation is done (elapsed >= 0); deterministic
    es = OpenES(np.zeros(3), 0.1, rng=0, timeout=0.0)
    assert es.stop() == {}
    assert run_until_stop(es, sphere) == 1
    assert "timeout" in es.stop()
    assert es.result.status == 4


def test_sigma_collapse() -> None:
    # sigma below the resolution of the mean: mean + sigma == mean in every coordinate
    es = OpenES(np.full(2, 1e20), 1.0, rng=0, tolx=None, tolfun=None)
    assert run_until_stop(es, sphere) == 1
    assert es.stop() == {"sigma": 1.0}
    assert es.result.status == 3


@pytest.mark.parametrize("cls", [XNES, SNES])
def test_sigma_collapse_is_judged_in_the_dtype_of_the_candidates(cls: type[Strategy]) -> None:
    """Bug: with ``dtype=float32`` the collapse was judged in float64, so it never held while
    the float32 candidates were all the mean. A step of 1e-9 at a mean of 1 is below float32's
    resolution (6e-8) and above float64's (1e-16)."""
    stops = {}
    for dtype in (np.float32, np.float64):
        es = cls(np.ones(2), 1e-9, rng=0, dtype=dtype, tolx=None, tolfun=None)
        X = es.ask()
        es.tell(X, np.sum(X * X, axis=1))
        stops[dtype] = es.stop()
    assert set(stops[np.float32]) == {"sigma"}
    assert stops[np.float64] == {}
    # a mean beyond float32's range is judged in float64, not taken as collapsed
    es = cls(np.full(2, 1e39), 1.0, rng=0, dtype=np.float32, tolx=None, tolfun=None)
    assert "sigma" not in es.stop()


@pytest.mark.parametrize("how", ["return True", "return np.True_", "raise StopIteration"])
def test_callback_stops_the_run(how: str) -> None:
    # np.True_ (what `np.linalg.norm(res.x) < 1e-3` returns) did not stop the run: the loop
    # tested `callback(...) is True`
    seen = []

    def callback(result: object) -> object:
        seen.append(result)
        if len(seen) == 3:
            if how == "raise StopIteration":
                raise StopIteration
            return np.True_ if how == "return np.True_" else True
        return np.False_ if how == "return np.True_" else False

    es = OpenES(np.ones(2), 0.1, rng=0)
    res = es.optimize(sphere, callback=callback)
    assert res.nit == 3
    assert res.status == 99
    assert res.message == MESSAGES[99]
    assert "callback" in res.stop
    # a later optimize() call starts afresh
    res = es.optimize(sphere, maxiter=5)
    assert res.nit == 5
    assert res.status == 2


def test_several_criteria_at_once_and_the_status_order() -> None:
    es = OpenES(np.ones(2), 0.1, 4, rng=0, maxfev=8, maxiter=2)
    run_until_stop(es, sphere)
    assert es.stop() == {"maxfev": 8, "maxiter": 2}
    assert es.result.status == 1  # maxfev is reported before maxiter, as scipy does


def test_a_strategy_and_ipop_pickled_before_their_newest_fields_load_and_run() -> None:
    # pickles carry __dict__: one written before tolflatfitness (a strategy) or before the
    # deferred restart (IPOP) lacks those attributes; stop() and ask() raised AttributeError
    from nes_asktell import IPOP

    es = XNES(np.zeros(2), 0.5, rng=0)
    es.tell(es.ask(), np.arange(float(es.popsize)))
    d = es.__getstate__()
    del d["_flat_generations"]
    old = XNES.__new__(XNES)
    old.__setstate__(d)
    assert old.stop() == es.stop()
    ipop = IPOP("xnes", np.zeros(2), 0.5, rng=0)
    d = ipop.__getstate__()
    del d["_call_it_limit"]
    old_ipop = IPOP.__new__(IPOP)
    old_ipop.__setstate__(d)
    assert np.array_equal(old_ipop.ask(), ipop.ask())


def test_the_documented_criteria_and_defaults_are_those_of_the_code() -> None:
    # Strategy's docstring lists every stopping keyword with its default, and the strategies
    # whose docstrings list their thresholds list them all.
    doc = Strategy.__doc__ or ""
    for name in (*CRITERIA, "degenerate", "sigma"):
        assert f"``{name}``" in doc, name
    for cls in (XNES, SNES, OpenES):
        assert all(f"`{name}`" in (cls.__doc__ or "") for name in CRITERIA), cls.__name__
    es = XNES(np.zeros(5), 0.5)
    assert es.criteria == {
        "maxfev": None,
        "maxiter": None,
        "ftarget": None,
        "timeout": None,
        "tolfun": 1e-12,
        "tolx": 1e-12,
        "tolstagnation": default_stagnation(5, es.popsize),
        "tolconditioncov": 1e14,
        "tolflatfitness": FLAT_GENERATIONS,
    }
    assert FLAT_GENERATIONS == 3
    assert default_stagnation(5, 8) == int(100 + 100 * 5**1.5 / 8)


@pytest.mark.parametrize("name", ["snes", "crfmnes", "dxnesic"])
def test_a_coordinate_fixed_by_the_box_does_not_hold_off_tolx_nor_end_the_run_by_condition(
    name: str,
) -> None:
    # its step size is not a spread of the candidates (they are its value) and no selection
    # acts on it: SNES kept it at 9e-4 and CRFMNES at 1e-6 while the others fell to 1e-17, so
    # tolx never held, and its ratio to the others alone made conditioncov end the runs
    from nes_asktell import resolve_strategy

    bounds = [(-5.0, 5.0)] * 4
    bounds[2] = (0.5, 0.5)
    es = resolve_strategy(name)(np.full(4, 3.0), 1.0, bounds=bounds, rng=0, tolfun=None)
    held: dict[str, int] = {}
    for g in range(1, 1001):
        X = es.ask()
        es.tell(X, np.sum((X - 0.5) ** 2, axis=1))
        for k in es.stop():
            held.setdefault(k, g)
        if "tolx" in held:
            break
    assert "tolx" in held, held
    assert "conditioncov" not in held, held


@pytest.mark.parametrize("name", ["xnes", "snes", "dxnesic", "crfmnes"])
def test_a_per_coordinate_sigma0_is_no_ill_conditioning(name: str) -> None:
    """Coordinates in other units, sigma0 = (1e-4, 1e4): the covariance starts with condition
    number 1e16, above the default tolconditioncov (1e14), and every run stopped by
    ``conditioncov`` before its first generation (optimize returned fun=inf, nfev 0). It is
    now counted relative to the start, as pycma counts it apart from CMA_stds."""
    cls = resolve_strategy(name)

    def f(x: np.ndarray) -> float:
        return float((x[0] / 1e-4) ** 2 + (x[1] / 1e4) ** 2)

    es = cls(np.array([1e-4, 1e4]), [1e-4, 1e4], rng=0)
    assert es.stop() == {}
    res = es.optimize(f, maxiter=2000)
    assert res.fun < 1e-10
    assert "conditioncov" not in res.stop

    # the threshold still counts, relative to the start: an ellipsoid of condition 1e6 in the
    # coordinates' own units passes a limit of 100 once the shape is learnt
    def ellipsoid(x: np.ndarray) -> float:
        return f(x) + 1e6 * float((x[1] / 1e4) ** 2)

    es = cls(np.array([1e-4, 1e4]), [1e-4, 1e4], rng=0, tolconditioncov=100.0)
    res = es.optimize(ellipsoid, maxiter=2000)
    assert "conditioncov" in res.stop
    assert res.nit > 1


@pytest.mark.parametrize("name", ["xnes", "snes", "openes", "dxnesic", "crfmnes"])
def test_a_result_while_no_criterion_holds_prints(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """scipy formats a field that is a dict as a block, and raised ValueError on the empty
    ``stop`` of a run that goes on: print(es.result), and optimize(callback=print), failed."""
    es = resolve_strategy(name)(np.ones(2), 0.5, rng=0)
    assert es.result.stop == {}
    assert "stop: {}" in repr(es.result)
    es.optimize(lambda x: float(x @ x), maxiter=2, callback=print)
    assert capsys.readouterr().out.count("stop: {}") == 2
    assert "stop: {}" in repr(IPOP(resolve_strategy(name), np.ones(2), 0.5, rng=0).result)
    assert "maxiter" in repr(es.optimize(lambda x: float(x @ x), maxiter=3))


def test_a_result_that_holds_a_result_prints() -> None:
    """A result kept in another (a field set by the caller) was formatted by scipy as a block,
    whose empty ``stop`` raised ValueError (max() arg is an empty sequence) on print."""
    es = XNES(np.ones(2), 0.5, rng=0)
    outer = es.result
    outer["previous"] = es.result
    text = repr(outer)
    assert text.count("stop: {}") == 2
    assert outer.previous.stop == {}  # (the result itself unchanged)


def test_a_sigma0_far_too_small_along_a_coordinate_does_not_end_a_well_conditioned_run() -> None:
    """conditioncov holds when both the covariance and the covariance in the units sigma0
    states pass the threshold: read in those units only, a step size that must grow 1e7-fold
    along one coordinate ended a run at f = 1.3e10 whose covariance was of condition 28."""
    s0 = np.array([1e3, 1e-5, 1.0, 0.1])
    bounds = [(-5, 5), (-5, 5), (0.25, 0.25), (-5, 5)]

    def f(x: np.ndarray) -> float:
        return float(np.sum((x - 0.25) ** 2 * [1e-6, 1e10, 1, 1e2]))

    es = SNES(np.array([4.0, -4.0, 0.25, 3.0]), s0, bounds=bounds, rng=0)
    res = es.optimize(f, maxfev=20000)
    assert "conditioncov" not in res.stop
    assert res.fun < 1e-10
