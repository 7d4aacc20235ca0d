"""Parallel and distributed evaluation: serial, threads, a process pool and a real dask cluster.

Every comparison here is exact: the same seed must give bit-identical runs whatever evaluates
the population, and seeds mode must rebuild exactly the candidates that ask() returned.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from nes_asktell.integrations.scipy import nes
from scipy.optimize import minimize

import nes_asktell
from nes_asktell import IPOP, SNES, XNES, Evaluator, NESWarning, OpenES, _tasks, evaluate
from nes_asktell._batch import rebuild_row

D_BIG = 12_000  # above SEEDS_MIN_DIM: "auto" ships keys


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.5) ** 2))


def raises_on_first_positive(x: np.ndarray) -> float:
    if x[0] > 0:
        raise ArithmeticError("boom")
    return sphere(x)


def nan_on_positive(x: np.ndarray) -> float:
    return float("nan") if x[0] > 0 else sphere(x)


def hangs_on_positive(x: np.ndarray) -> float:
    if x[0] > 0:
        threading.Event().wait(120)  # a worker that hangs: only the timeout ends it
    return sphere(x)


def dies_on_positive(x: np.ndarray) -> float:
    if x[0] > 0:
        os._exit(3)  # the worker process dies without a word
    return sphere(x)


def children(evaluator: Evaluator) -> set[int]:
    """The live child processes, once `evaluator` has evaluated (its pool has started)."""
    evaluator.evaluate(sphere, np.zeros((4, 1)))
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


def run(cls: type, workers: object, d: int = 50, gens: int = 3, **kw: object) -> np.ndarray:
    """Run `gens` generations and return the concatenated fitness values and final mean."""
    es = cls(np.zeros(d), 0.3, rng=7, **kw)
    out = []
    with Evaluator(workers) as evaluator:
        for _ in range(gens):
            X = es.ask()
            f = evaluator.evaluate(sphere, X, strategy=es)
            es.tell(X, f)
            out.append(f)
    return np.concatenate([*out, es.mean])


@pytest.fixture(scope="module")
def pool() -> Evaluator:
    # pools are shared per size within the interpreter: a fresh one for this module, none left
    nes_asktell.shutdown_pools()
    with Evaluator(2) as evaluator:
        yield evaluator
    nes_asktell.shutdown_pools()


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


# ---------------------------------------------------------------------- same run everywhere
@pytest.mark.parametrize("cls", [OpenES, SNES])
def test_serial_threads_and_map_give_the_same_run(cls: type) -> None:
    ref = run(cls, None)
    with ThreadPoolExecutor(2) as tp:
        np.testing.assert_array_equal(run(cls, tp), ref)
    np.testing.assert_array_equal(run(cls, map), ref)
    np.testing.assert_array_equal(run(cls, 1), ref)


@pytest.mark.slow
def test_process_pool_gives_the_same_run_in_both_modes(pool: Evaluator) -> None:
    for cls in (OpenES, SNES):
        ref = run(cls, None, d=D_BIG)
        np.testing.assert_array_equal(run(cls, pool, d=D_BIG), ref)  # auto: seeds
        with Evaluator(pool, mode="vectors") as vec:
            np.testing.assert_array_equal(run(cls, vec, d=D_BIG), ref)


@pytest.mark.slow
def test_optimize_on_a_borrowed_pool_matches_serial(pool: Evaluator) -> None:
    before = children(pool)
    ref = SNES(np.zeros(D_BIG), 0.3, rng=2, maxiter=3).optimize(sphere)
    res = SNES(np.zeros(D_BIG), 0.3, rng=2, maxiter=3).optimize(sphere, workers=pool)
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun
    # optimize() closed its borrower, not the lender's pool: the same processes still run
    assert {p.pid for p in multiprocessing.active_children()} >= before


@pytest.mark.slow
def test_dask_cluster_gives_the_same_run_in_both_modes(client) -> None:
    for cls in (OpenES, SNES):
        ref = run(cls, None, d=D_BIG)
        with Evaluator(client, mode="seeds") as seeds:
            np.testing.assert_array_equal(run(cls, seeds, d=D_BIG), ref)
        with Evaluator(client, mode="vectors") as vec:
            np.testing.assert_array_equal(run(cls, vec, d=D_BIG), ref)
    es = OpenES(np.zeros(20), 0.3, rng=1, maxiter=5)
    ref = OpenES(np.zeros(20), 0.3, rng=1, maxiter=5).optimize(sphere)
    res = es.optimize(sphere, workers=client.get_executor())
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun


@pytest.mark.slow
def test_seeds_move_far_fewer_bytes_than_vectors_on_dask(client) -> None:
    es = OpenES(np.zeros(D_BIG), 0.3, popsize=8, rng=3)
    X = es.ask()
    with Evaluator(client, mode="seeds") as s, Evaluator(client, mode="vectors") as v:
        fs = s.evaluate(sphere, X, strategy=es)
        fv = v.evaluate(sphere, X, strategy=es)
        np.testing.assert_array_equal(fs, fv)
        # vectors: the 8 rows once (8 * 8 * d bytes); seeds: the mean to each of 2 workers
        assert v.last_bytes >= 8 * 8 * D_BIG
        assert s.last_bytes <= 2 * 8 * D_BIG + 20_000


@pytest.mark.slow
def test_bounds_are_broadcast_once_and_bounded_runs_match(client) -> None:
    box = (np.full(D_BIG, -0.3), np.full(D_BIG, 0.4))
    ref = run(SNES, None, d=D_BIG, gens=2, bounds=box)
    with Evaluator(client, mode="seeds") as seeds:
        np.testing.assert_array_equal(run(SNES, seeds, d=D_BIG, gens=2, bounds=box), ref)
        # the second generation sends the mean and SNES's sigma to 2 workers (4 * 8 d bytes),
        # not the bounds again (another 4 * 8 d)
        assert seeds.last_bytes <= 4 * 8 * D_BIG + 20_000


def test_seeds_mode_rebuilds_exactly_the_asked_rows() -> None:
    box = (np.full(D_BIG, -0.2), np.full(D_BIG, 0.25))
    for cls, kw in ((OpenES, {}), (SNES, {"mirrored": True}), (SNES, {"dtype": "float32"})):
        es = cls(np.zeros(D_BIG), 0.3, popsize=6, rng=11, bounds=box, **kw)
        es.tell(es.ask(), np.arange(6.0))
        X = es.ask()
        plan = es.batch_keys(X)
        assert plan is not None
        for k in range(6):
            row = rebuild_row(plan.keys, plan.mean, plan.scale, plan.box, k)
            np.testing.assert_array_equal(row, X[k])


@pytest.mark.parametrize(
    "rng",
    [None, 7, np.random.SeedSequence(7), np.random.default_rng(7)],
    ids=["none", "int", "seedsequence", "generator"],
)
def test_every_rng_but_a_legacy_randomstate_ships_keys(rng: object) -> None:
    # docs/parallel.rst said that a Generator is drawn in sequence and ships vectors, and
    # extra_samples() that a Generator gives none: its noise is counter-based, as an int's
    es = SNES(np.zeros(4), 0.3, rng=rng)  # type: ignore[arg-type]
    X = es.ask()
    assert es.rows_from_keys
    assert es.batch_keys(X) is not None
    assert es.extra_samples(2) is not None
    with ThreadPoolExecutor(2) as pool:
        f = evaluate(es, sphere, pool, mode="seeds")
    np.testing.assert_array_equal(f, [sphere(x) for x in X])
    legacy = OpenES(np.zeros(4), 0.3, rng=np.random.RandomState(7))
    assert not legacy.rows_from_keys
    assert legacy.batch_keys(legacy.ask()) is None
    assert legacy.extra_samples(2) is None


@pytest.mark.parametrize("name", ["xnes", "dxnesic", "crfmnes"])
def test_strategies_that_cannot_be_rebuilt_ship_vectors(name: str) -> None:
    # Bug: XNES's (and DX-NES-IC's) first rows, with the identity shape, could be rebuilt
    # from keys, so evaluate(..., mode="seeds") worked for one generation and raised at the
    # second, after a generation's evaluations; now they ship vectors in every generation and
    # "seeds" is refused at the first call, before anything is evaluated.
    es = nes_asktell.resolve_strategy(name)(np.zeros(5), 0.3, rng=0)
    X = es.ask()
    assert es.batch_keys(X) is None  # x = mu + sigma B s, B not diagonal in general
    calls: list[object] = []

    def counted(x: np.ndarray) -> float:
        calls.append(x)
        return sphere(x)

    with (
        ThreadPoolExecutor(1) as tp,
        pytest.raises(ValueError, match=r"`mode` is 'seeds', but the candidates of \w+ cannot"),
    ):
        evaluate(es, counted, tp, mode="seeds")
    assert not calls
    assert es.ask() is X  # the rejected call changed nothing
    es.tell(X, [sphere(x) for x in X])
    assert es.batch_keys(es.ask()) is None
    gen = OpenES(np.zeros(5), 0.3, rng=np.random.RandomState(0))
    assert gen.batch_keys(gen.ask()) is None  # a sequential stream (legacy) has no keys


@pytest.mark.parametrize("through", ["evaluate", "optimize"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: XNES(np.zeros(3), 0.3, rng=0),
        lambda: nes_asktell.resolve_strategy("crfmnes")(np.zeros(3), 0.3, rng=0),
        lambda: OpenES(np.zeros(3), 0.3, rng=np.random.RandomState(0)),
    ],
    ids=["xnes", "crfmnes", "openes legacy rng"],
)
def test_keys_for_a_strategy_whose_rows_they_cannot_rebuild_are_refused_before_the_ask(
    make: Callable[[], Any], through: str
) -> None:
    # Bug: without a pending batch, evaluate(es, fun, mode="seeds") asked first and refused
    # after: the refused call left a batch pending (another state_dict) and, with a legacy
    # RandomState, drew from the caller's stream. Strategy.rows_from_keys says beforehand.
    es, twin = make(), make()
    assert not es.rows_from_keys
    before = json.dumps(es.state_dict())
    call = (
        (lambda ev: evaluate(es, sphere, ev))
        if through == "evaluate"
        else (lambda ev: es.optimize(sphere, maxiter=1, workers=ev))
    )
    with (
        ThreadPoolExecutor(1) as tp,
        Evaluator(tp, mode="seeds") as ev,
        pytest.raises(ValueError, match=r"`mode` is 'seeds', but the candidates of \w+ cannot"),
    ):
        call(ev)
    assert json.dumps(es.state_dict()) == before  # the rejected call changed nothing
    np.testing.assert_array_equal(es.ask(), twin.ask())
    assert OpenES(np.zeros(3), 0.3, rng=0).rows_from_keys
    assert SNES(np.zeros(3), 0.3, rng=np.random.default_rng(0)).rows_from_keys


def test_a_worker_with_other_noise_falls_back_to_vectors(monkeypatch) -> None:
    es = OpenES(np.zeros(D_BIG), 0.3, popsize=4, rng=5)
    X = es.ask()
    ref = evaluate(es, sphere)
    real = es.batch_keys

    def wrong_check(X):
        plan = real(X)
        return dataclasses.replace(plan, keys=dataclasses.replace(plan.keys, check=b"other"))

    monkeypatch.setattr(es, "batch_keys", wrong_check)
    monkeypatch.setattr(_tasks, "_CHECKED", set())
    with (
        ThreadPoolExecutor(2) as tp,
        pytest.warns(NESWarning, match="cannot rebuild candidates from keys"),
    ):
        f = evaluate(es, sphere, tp, mode="seeds")
    np.testing.assert_array_equal(f, ref)
    assert es.ask() is X


# ---------------------------------------------------------------------- faults
def test_serial_evaluation_propagates_the_exception() -> None:
    es = OpenES(np.zeros(4), 1.0, rng=0)
    with pytest.raises(ArithmeticError, match="boom"):
        evaluate(es, raises_on_first_positive)


def test_a_raising_candidate_gets_nan_and_the_run_goes_on() -> None:
    es = OpenES(np.zeros(4), 1.0, rng=0, maxiter=3)
    with ThreadPoolExecutor(2) as tp, pytest.warns(NESWarning, match="ArithmeticError: boom"):
        res = es.optimize(raises_on_first_positive, workers=tp)
    assert res.nit == 3
    assert np.isfinite(res.fun)


def test_nan_fitness_is_returned_as_nan_and_ranked_worst() -> None:
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with ThreadPoolExecutor(2) as tp:
        f = evaluate(X, nan_on_positive, tp)
    assert np.isnan(f[0])
    assert f[1] == sphere(X[1])


@pytest.mark.slow
def test_a_hanging_worker_times_out_and_the_pool_recovers() -> None:
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with Evaluator(2, timeout=5.0) as evaluator:
        evaluator.evaluate(sphere, X)  # start the pool before the clock matters
        with pytest.warns(NESWarning, match="timeout after 5.0 s"):
            f = evaluator.evaluate(hangs_on_positive, X)
        assert np.isnan(f[0])
        assert f[1] == sphere(X[1])
        np.testing.assert_array_equal(evaluator.evaluate(sphere, X), [sphere(x) for x in X])


@pytest.mark.slow
def test_a_dying_worker_costs_only_its_candidates() -> None:
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [-2.0, 0.0], [-3.0, 1.0]])
    with Evaluator(2) as evaluator:
        with pytest.warns(NESWarning, match=r"the worker died \(exit code 3\)"):
            f = evaluator.evaluate(dies_on_positive, X)
        # row 0 kills its worker: only it gets NaN; row 1 of its task runs again
        assert np.isnan(f[0])
        np.testing.assert_array_equal(f[1:], [sphere(x) for x in X[1:]])
        np.testing.assert_array_equal(evaluator.evaluate(sphere, X), [sphere(x) for x in X])


def test_unpicklable_function_with_a_process_pool_says_what_to_do() -> None:
    X = np.zeros((2, 3))
    with pytest.raises(TypeError, match=r"must be picklable.*module level"):
        evaluate(X, lambda x: 0.0, 2)


@pytest.mark.slow
def test_unpicklable_function_with_a_user_process_pool_says_what_to_do() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(1, mp_context=ctx) as pp,
        pytest.raises(TypeError, match=r"must be picklable.*module level"),
    ):
        evaluate(np.zeros((2, 3)), lambda x: 0.0, pp)


# ---------------------------------------------------------------------- arguments
def test_workers_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="`workers` must be None, a number of processes"):
        Evaluator("four")


@pytest.mark.parametrize("n", [0, -2, 1025, 10**6])
def test_workers_bad_count(n: int) -> None:
    # 10**6 was taken, and the pool spawned interpreters until the machine gave out
    with pytest.raises(ValueError, match=rf"`workers` must be a number of .*but got {n}\."):
        Evaluator(n)


def test_a_run_refuses_too_many_processes_before_evaluating_anything() -> None:
    from nes_asktell import XNES

    es = XNES(np.ones(3), 0.5, rng=0)
    calls = []
    with pytest.raises(
        ValueError, match=r"`workers` must be a number of processes from 1 to 1024"
    ):
        es.optimize(lambda x: calls.append(x) or 0.0, maxfev=60, workers=10**6)
    assert calls == []
    assert es.nfev == 0


def test_workers_bool_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"`workers` must be None.*but got True"):
        Evaluator(True)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="`timeout` must be a positive number, but got -1"):
        Evaluator(2, timeout=-1)


@pytest.mark.parametrize(
    "timeout",
    [np.float32(30.0), np.int64(30), math.inf, 10**400, 1e10, sys.float_info.max],
    ids=["float32", "int64", "inf", "huge", "past-TIMEOUT_MAX", "float-max"],
)
def test_timeout_may_be_any_real_number(timeout: object) -> None:
    # np.float32 and np.int64 were refused ("must be a positive number"), float() of an int
    # beyond the float range raised OverflowError, and inf (accepted) made every candidate
    # fail: "OverflowError: timestamp out of range for platform time_t"
    with ThreadPoolExecutor(1) as ex, Evaluator(ex, timeout=timeout) as ev:  # type: ignore[arg-type]
        X = np.ones((2, 3))
        np.testing.assert_array_equal(ev.evaluate(sphere, X), [sphere(x) for x in X])
    with pytest.raises(ValueError, match=r"`timeout` must be a positive number, but got -1000"):
        Evaluator(2, timeout=-(10**400))


@pytest.mark.parametrize(
    "changes",
    [
        {"workers": 0},
        {"workers": 2, "timeout": -1},
        {"workers": 2, "mode": "bogus"},
        {"workers": 2, "tasks": 0},
        {"workers": None, "vectorized": 1},
        {"fun": "sphere"},  # (these two were checked after the ask)
        {"args": 5},
        {"fun": lambda x: 0.0, "workers": 2},  # (a process pool cannot take it: after the ask)
    ],
)
def test_a_rejected_evaluate_leaves_the_strategy_as_it_was(changes: dict[str, object]) -> None:
    # evaluate(strategy, ...) asked the strategy for its batch before the Evaluator checked
    # its arguments: a rejected call left a pending batch and another state_dict
    es = SNES(np.zeros(3), 0.5, rng=0)
    before = es.state_dict()
    given = {"fun": sphere, **changes}
    with pytest.raises((TypeError, ValueError)):
        evaluate(es, **given)  # type: ignore[arg-type]
    assert es.state_dict() == before


def test_an_optimize_whose_fun_cannot_travel_leaves_the_strategy_as_it_was() -> None:
    """A `fun` a process pool cannot take (a lambda) was refused after the first ask: the
    rejected call left a pending batch (another state_dict)."""
    es = SNES(np.zeros(3), 0.5, rng=0)
    before = es.state_dict()
    with pytest.raises(TypeError, match="`fun` \\(and `args`\\) must be picklable"):
        es.optimize(lambda x: 0.0, workers=2)
    assert es.state_dict() == before


def test_timeout_needs_futures() -> None:
    with pytest.raises(ValueError, match="`timeout` needs workers that return futures"):
        Evaluator(None, timeout=1.0)


def test_mode_must_be_known() -> None:
    with pytest.raises(ValueError, match="`mode` must be one of"):
        Evaluator(2, mode="keys")


def test_seeds_mode_needs_tasks() -> None:
    with pytest.raises(ValueError, match="`mode` 'seeds' needs workers that take tasks"):
        Evaluator(map, mode="seeds")


def test_an_evaluator_as_workers_lends_its_pool_and_settings(pool: Evaluator) -> None:
    before = children(pool)
    with Evaluator(pool, mode="vectors") as vec:
        assert children(vec) == before  # the borrower evaluates on the lender's processes
    # closing the borrower left the pool to its owner: the same processes still run
    assert {p.pid for p in multiprocessing.active_children()} >= before
    with Evaluator(None) as serial, pytest.raises(ValueError, match="`timeout` needs workers"):
        Evaluator(serial, timeout=1.0)


@pytest.mark.parametrize("through", ["Evaluator", "evaluate"])
def test_a_mode_given_explicitly_overrides_the_lent_evaluators_mode(through: str) -> None:
    # Bug: "auto" was the default and read as "not given", so Evaluator(seeds_ev, mode="auto")
    # and evaluate(es, fun, seeds_ev, mode="auto") kept "seeds" and refused XNES (whose rows
    # cannot be rebuilt from keys), although the docs say the lent mode applies unless given.
    es, twin = XNES(np.zeros(3), 0.3, rng=0), XNES(np.zeros(3), 0.3, rng=0)
    with ThreadPoolExecutor(1) as tp, Evaluator(tp, mode="seeds") as seeds:
        if through == "Evaluator":
            with Evaluator(seeds, mode="auto") as ev:
                f = ev.evaluate(sphere, es.ask(), strategy=es)
        else:
            f = evaluate(es, sphere, seeds, mode="auto")
        with Evaluator(seeds) as inherits, pytest.raises(ValueError, match="`mode` is 'seeds'"):
            inherits.check_call(sphere, (), es)  # without a mode, the lent one still applies
    X = twin.ask()
    np.testing.assert_array_equal(f, [sphere(x) for x in X])


def test_mode_none_means_auto() -> None:
    es, twin = (OpenES(np.zeros(3), 0.3, popsize=4, rng=0) for _ in range(2))
    with ThreadPoolExecutor(1) as tp:
        np.testing.assert_array_equal(
            evaluate(es, sphere, tp, mode=None), evaluate(twin, sphere, tp, mode="auto")
        )


def test_candidates_must_be_2d() -> None:
    with pytest.raises(ValueError, match="`strategy_or_candidates` must be a Strategy or an"):
        evaluate(np.zeros(3), sphere)


@pytest.mark.parametrize(
    ("candidates", "match"),
    [
        # numpy's messages, which named no argument
        ("abc", r"`strategy_or_candidates` must be .*, but got 'abc'\."),
        ([[1.0, 2.0], [3.0]], r"`strategy_or_candidates` must be .*, but got \[\[1.0, 2.0\], "),
        # the imaginary part was dropped (numpy's ComplexWarning) and the real part evaluated
        (np.ones((2, 3)) + 1j, r"`strategy_or_candidates` must be .* complex values"),
        (np.ones((2, 3)).astype(str), r"`strategy_or_candidates` must be .* string values"),
    ],
)
def test_candidates_must_be_real_numbers(candidates: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        evaluate(candidates, sphere)  # type: ignore[arg-type]


def test_args_must_be_a_tuple_or_a_list() -> None:
    # a string was spread into its characters: fun(x, "a", "b")
    with pytest.raises(TypeError, match=r"`args` must be a tuple of the extra arguments"):
        evaluate(np.zeros((2, 3)), lambda x, *a: float(len(a)), args="ab")  # type: ignore[arg-type]
    np.testing.assert_array_equal(
        evaluate(np.zeros((2, 3)), lambda x, a: a, args=[2.0]),  # type: ignore[arg-type]
        [2.0, 2.0],
    )


def test_a_map_that_returns_no_iterable_is_named() -> None:
    # list(None) raised "'NoneType' object is not iterable", which named no argument
    with pytest.raises(TypeError, match=r"`workers` must return an iterable .* returned None"):
        evaluate(np.zeros((2, 3)), sphere, lambda f, xs: None)  # type: ignore[arg-type,return-value]


def test_fun_must_be_callable() -> None:
    with pytest.raises(TypeError, match="`fun` must be callable"):
        evaluate(np.zeros((2, 3)), 3.0)


def test_map_returning_the_wrong_count() -> None:
    with pytest.raises(ValueError, match="`workers` returned 1 values for 2 candidates"):
        evaluate(np.zeros((2, 3)), sphere, lambda f, xs: [0.0])


def stops_past_half(x: np.ndarray) -> float:
    if x[0] > 0.5:
        raise StopIteration("fun stopped at x[0] > 0.5")
    return sphere(x)


def test_a_stopiteration_of_fun_through_a_map_propagates_as_without_workers() -> None:
    # map takes a StopIteration escaping from its function for its own end: the values were
    # cut short and the error read "`workers` returned 3 values for 6 candidates"; it now
    # propagates as it does from a serial evaluation, where fun's exceptions propagate
    X = np.linspace(0.0, 1.0, 12).reshape(6, 2)
    with pytest.raises(StopIteration, match=r"fun stopped at x\[0\] > 0\.5"):
        evaluate(X, stops_past_half)
    with ThreadPoolExecutor(2) as pool:
        for workers in (map, pool.map):
            with pytest.raises(StopIteration, match=r"fun stopped at x\[0\] > 0\.5"):
                evaluate(X, stops_past_half, workers)  # type: ignore[arg-type]
    es = XNES(np.ones(2), 0.5, rng=0)
    with pytest.raises(StopIteration, match=r"fun stopped at x\[0\] > 0\.5"):
        es.optimize(stops_past_half, maxiter=3, workers=map)


def shifts_its_point(x: np.ndarray) -> float:
    x += 1.0  # an objective that works on the point it is given, in place
    return sphere(x)


def test_fun_cannot_change_the_candidates_given_to_evaluate() -> None:
    # the docstring promises read-only rows; rows of a candidates array were views of the
    # caller's own array, so an objective that shifted its point in place changed the
    # caller's candidates (those of an ask() were read-only already)
    X = np.linspace(0.0, 1.0, 12).reshape(6, 2)
    before = X.copy()
    with pytest.raises(ValueError, match="read-only"):
        evaluate(X, shifts_its_point)  # serially fun's exception propagates
    with pytest.raises(ValueError, match="read-only"):
        evaluate(X, shifts_its_point, map)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read-only"):
        evaluate(X, lambda Y: shifts_its_point(Y.T), vectorized=True)
    with ThreadPoolExecutor(2) as pool, pytest.warns(NESWarning, match="read-only"):
        f = evaluate(X, shifts_its_point, pool)
    assert np.isnan(f).all()
    np.testing.assert_array_equal(X, before)
    assert X.flags.writeable  # the caller's array itself stays as it was given


def test_evaluate_is_public() -> None:
    assert "evaluate" in nes_asktell.__all__
    assert "Evaluator" in nes_asktell.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = evaluate(np.eye(3), sphere, 1)
    np.testing.assert_array_equal(f, [sphere(x) for x in np.eye(3)])


# ---------------------------------------------------------------------- pool lifecycle, size
def worker_pid(x: np.ndarray) -> float:
    return float(os.getpid())


@pytest.mark.slow
def test_process_pools_are_reused_across_calls_until_shut_down() -> None:
    X = np.zeros((4, 1))
    with Evaluator(3) as first:
        pids = {int(p) for p in first.evaluate(worker_pid, X)}
    # The pool's processes: the workers that ran a row above are some of them (a worker that
    # started late may have had no row), and a reused pool runs every later row on them.
    children = {p.pid for p in multiprocessing.active_children()}
    assert pids <= children
    # a later evaluator (a second optimize call) finds the same running workers
    res = SNES(np.zeros(2), 0.3, rng=0, maxiter=1).optimize(sphere, workers=3)
    assert res.nit == 1
    with Evaluator(3) as second:
        assert {int(p) for p in second.evaluate(worker_pid, X)} <= children
    nes_asktell.shutdown_pools()
    assert not pids & {p.pid for p in multiprocessing.active_children()}
    with Evaluator(3) as third:  # a new pool after the shutdown
        assert not {int(p) for p in third.evaluate(worker_pid, X)} & children
    nes_asktell.shutdown_pools()


@pytest.mark.slow
def test_a_pool_restarted_by_an_open_evaluator_is_still_the_one_shutdown_pools_stops() -> None:
    # shutdown_pools() forgot the pools it shut down, but an open Evaluator kept its pool and
    # started it again on its next evaluation: that pool was out of shutdown_pools()'s reach
    # (its processes lived until the interpreter's exit), and evaluate(..., 3) started a
    # second pool of the same size beside it.
    X = np.zeros((4, 1))
    nes_asktell.shutdown_pools()
    others = {p.pid for p in multiprocessing.active_children()}  # (a dask cluster's, say)

    def pool_processes() -> set[int | None]:
        return {p.pid for p in multiprocessing.active_children()} - others

    try:
        with Evaluator(3) as ev:
            ev.evaluate(worker_pid, X)
            nes_asktell.shutdown_pools()
            ev.evaluate(worker_pid, X)  # its pool starts again
            workers = pool_processes()
            assert len(workers) == 3
            # a later evaluation finds that pool: no second pool of 3
            assert {int(p) for p in evaluate(X, worker_pid, 3)} <= workers
            assert pool_processes() == workers
            nes_asktell.shutdown_pools()
            assert pool_processes() == set()
    finally:
        nes_asktell.shutdown_pools()


def test_tasks_sets_how_many_tasks_a_generation_is_split_into() -> None:
    X = np.arange(12.0).reshape(6, 2)
    seen: list[int] = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(len(args[-1]))
            return super().submit(fn, *args, **kwargs)

    with Counting(2) as ex:
        f = evaluate(X, sphere, ex, tasks=3)
        assert seen == [2, 2, 2]
        seen.clear()
        with Evaluator(ex, tasks=6) as ev, Evaluator(ev) as borrower:
            np.testing.assert_array_equal(borrower.evaluate(sphere, X), f)
        assert seen == [1] * 6
    np.testing.assert_array_equal(f, [sphere(x) for x in X])


@pytest.mark.parametrize(
    ("tasks", "error", "match"),
    [
        (0, ValueError, r"`tasks` must be a positive integer, but got 0\."),
        (-3, ValueError, r"`tasks` must be a positive integer, but got -3\."),
        (2.0, TypeError, r"`tasks` must be a positive integer, but got 2\.0\."),
        (True, TypeError, r"`tasks` must be a positive integer, but got True\."),
    ],
)
def test_tasks_must_be_a_positive_integer(tasks, error, match) -> None:
    with ThreadPoolExecutor(1) as ex, pytest.raises(error, match=match):
        Evaluator(ex, tasks=tasks)


def test_an_executor_size_comes_from_its_public_num_workers() -> None:
    class Sized(ThreadPoolExecutor):
        num_workers = 3

    seen: list[int] = []

    class Counting(Sized):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(len(args[-1]))
            return super().submit(fn, *args, **kwargs)

    with Counting(1) as ex:
        evaluate(np.zeros((7, 2)), sphere, ex)
    assert seen == [3, 2, 2]


def test_a_malformed_worker_reply_costs_its_candidates_with_one_warning() -> None:
    class Hostile(ThreadPoolExecutor):
        """Replies of the wrong shape, type or size, as an untrusted worker might send."""

        replies = iter([(np.zeros(5), []), ("x",), (np.zeros(2, dtype=object), []), None])

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            reply = next(self.replies)
            return super().submit(lambda: reply)

    X = np.zeros((8, 2))
    with Hostile(2) as ex, pytest.warns(NESWarning, match="malformed reply") as rec:
        f = evaluate(X, sphere, ex, tasks=4)
    assert np.isnan(f).all()
    assert len(rec) == 1


# ---------------------------------------------------------------------- vectorized
def sphere_columns(X: np.ndarray) -> np.ndarray:
    """The sphere of each column of a (d, m) array (scipy's vectorized convention)."""
    return np.sum((X - 0.5) ** 2, axis=0)


def columns_raise_at_5(X: np.ndarray) -> np.ndarray:
    if np.any(X[0] == 5.0):
        raise ArithmeticError("boom")
    return sphere_columns(X)


def returns_a_matrix(X: np.ndarray) -> np.ndarray:
    return np.zeros((2, X.shape[1]))


def returns_text(X: np.ndarray) -> list[str]:
    return ["a"] * X.shape[1]


@pytest.mark.parametrize(
    "shape_of",
    [lambda m: (m,), lambda m: (m, 1), lambda m: (1, m), lambda m: (1, m, 1)],
    ids=["(S,)", "(S,1)", "(1,S)", "(1,S,1)"],
)
def test_vectorized_takes_every_shape_that_differential_evolution_takes(
    shape_of: Callable[[int], tuple[int, ...]],
) -> None:
    # scipy's differential_evolution(vectorized=True) squeezes what fun returns and takes it
    # when S values remain, so a column (np.sum(..., keepdims=True) over rows) is S values
    # too. The core refused (S, 1) while the scipy method took it.
    X = np.arange(16.0).reshape(8, 2)
    want = np.array([sphere(x) for x in X])

    def columns(Xt: np.ndarray) -> np.ndarray:
        return sphere_columns(Xt).reshape(shape_of(Xt.shape[1]))

    np.testing.assert_array_equal(evaluate(X, columns, vectorized=True), want)
    with ThreadPoolExecutor(2) as tp:
        np.testing.assert_array_equal(evaluate(X, columns, tp, vectorized=True), want)
    ref = SNES(np.zeros(3), 0.3, rng=4, maxiter=5).optimize(sphere)
    res = SNES(np.zeros(3), 0.3, rng=4, maxiter=5).optimize(columns, vectorized=True)
    np.testing.assert_array_equal(res.x, ref.x)
    # one candidate: a scalar is its value, as in differential_evolution
    assert evaluate(X[:1], lambda Xt: float(sphere_columns(Xt)[0]), vectorized=True) == want[0]


def test_a_masked_value_is_nan_alike_one_by_one_and_vectorized() -> None:
    # A value the user masked out is no value, NaN, whether `fun` is called one row at a time
    # or vectorized. Read one by one, numpy's float() of the masked element gave the NaN with a
    # UserWarning of its own ("converting a masked element to nan"); vectorized, none.
    X = np.arange(8.0).reshape(4, 2)
    want = np.where(X[:, 0] > 3.0, np.nan, [sphere(x) for x in X])

    def rows(x: np.ndarray) -> object:
        return np.ma.masked_array([sphere(x)], mask=[x[0] > 3.0])

    def columns(Xt: np.ndarray) -> object:
        return np.ma.masked_array(sphere_columns(Xt), mask=Xt[0] > 3.0)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(evaluate(X, rows), want)
        np.testing.assert_array_equal(evaluate(X, columns, vectorized=True), want)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Fraction(1, 3), 1 / 3), (10**400, math.inf), (-(10**400), -math.inf)],
    ids=["a Fraction", "an int past the floats", "a negative int past the floats"],
)
def test_a_python_number_is_read_alike_one_by_one_and_vectorized(
    value: object, expected: float
) -> None:
    # A Fraction, or an int beyond the float range (+-inf), is a value `fun` may return one
    # row at a time; vectorized, a list holding one was an array of dtype object, refused
    # with "must return 4 real numbers, an array of shape (4,), ... but returned an array of
    # shape (4,) and dtype object"
    X = np.arange(8.0).reshape(4, 2)

    def rows(x: np.ndarray) -> object:
        return value if x[0] == 2.0 else sphere(x)

    def columns(Xt: np.ndarray) -> object:
        return [rows(x) for x in Xt.T]

    want = evaluate(X, rows)
    assert want[1] == expected
    np.testing.assert_array_equal(evaluate(X, columns, vectorized=True), want)
    with ThreadPoolExecutor(2) as tp:
        np.testing.assert_array_equal(evaluate(X, columns, tp, vectorized=True), want)


def test_vectorized_gives_the_same_values_and_run_as_rows() -> None:
    X = np.arange(16.0).reshape(8, 2)
    want = [sphere(x) for x in X]
    np.testing.assert_array_equal(evaluate(X, sphere_columns, vectorized=True), want)
    with ThreadPoolExecutor(2) as tp:
        np.testing.assert_array_equal(evaluate(X, sphere_columns, tp, vectorized=True), want)
    ref = SNES(np.zeros(3), 0.3, rng=4, maxiter=5).optimize(sphere)
    with Evaluator(None, vectorized=True) as ev:
        res = SNES(np.zeros(3), 0.3, rng=4, maxiter=5).optimize(sphere_columns, workers=ev)
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun
    for opt in (SNES(np.zeros(3), 0.3, rng=4, maxiter=5), IPOP("snes", np.zeros(3), 0.3, rng=4)):
        calls = CountingColumns()
        res = opt.optimize(calls, maxiter=5, vectorized=True)
        np.testing.assert_array_equal(res.x, ref.x)
        assert res.fun == ref.fun
        assert calls.shapes == [(3, opt.popsize)] * 5  # one call per generation, X is (d, S)


class CountingColumns:
    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.shapes.append(X.shape)
        return sphere_columns(X)


def test_a_failing_vectorized_call_costs_only_the_faulty_candidate_on_workers() -> None:
    X = np.column_stack([np.arange(8.0), np.zeros(8)])
    want = np.array([sphere(x) for x in X])
    want[5] = np.nan
    with (
        ThreadPoolExecutor(2) as tp,
        pytest.warns(NESWarning, match="1 of 8 candidates.*ArithmeticError: boom") as rec,
    ):
        f = evaluate(X, columns_raise_at_5, tp, vectorized=True)
    np.testing.assert_array_equal(f, want)
    assert len(rec) == 1
    with pytest.raises(ArithmeticError, match="boom"):  # serial: it propagates
        evaluate(X, columns_raise_at_5, vectorized=True)


def sum_of_everything(XT: np.ndarray) -> float:
    return float(np.sum(XT**2))  # (axis=0 forgotten: one number for the whole batch)


def test_a_vectorized_call_of_the_wrong_shape_gives_nan_and_says_why_on_workers() -> None:
    # On workers a call returning one number for 4 candidates failed, its candidates ran
    # again one by one, where one number is a legal return: no warning, and vectorization
    # silently lost (serially the same call raises ValueError)
    X = np.arange(8.0).reshape(4, 2)
    calls: list[tuple[int, ...]] = []

    def counted(XT: np.ndarray) -> float:
        calls.append(XT.shape)
        return sum_of_everything(XT)

    with (
        ThreadPoolExecutor(2) as tp,
        pytest.warns(NESWarning, match=r"4 of 4 candidates.*ValueError: `fun` must return 2 real"),
    ):
        f = evaluate(X, counted, tp, vectorized=True)
    assert np.isnan(f).all()
    assert sorted(calls) == [(2, 2), (2, 2)]  # two calls of two rows, no call of one row
    with pytest.raises(ValueError, match="`fun` must return 4 real numbers"):
        evaluate(X, sum_of_everything, vectorized=True)


@pytest.mark.slow
def test_vectorized_on_a_process_pool(pool: Evaluator) -> None:
    X = np.column_stack([np.arange(8.0), np.zeros(8)])
    want = np.array([sphere(x) for x in X])
    with Evaluator(pool, vectorized=True) as ev:
        np.testing.assert_array_equal(ev.evaluate(sphere_columns, X), want)
        want[5] = np.nan
        with pytest.warns(NESWarning, match="1 of 8 candidates"):
            np.testing.assert_array_equal(ev.evaluate(columns_raise_at_5, X), want)


def test_vectorized_checks_what_fun_returns_and_its_arguments() -> None:
    X = np.zeros((3, 2))
    with pytest.raises(
        ValueError, match=r"must return 3 real numbers.*'returns_a_matrix' returned .*\(2, 3\)"
    ):
        evaluate(X, returns_a_matrix, vectorized=True)
    with pytest.raises(TypeError, match=r"must return 3 real numbers.*'returns_text'"):
        evaluate(X, returns_text, vectorized=True)
    with pytest.raises(TypeError, match=r"`vectorized` must be True or False, but got 1\."):
        Evaluator(None, vectorized=1)
    with pytest.raises(ValueError, match="`vectorized` needs workers that take the population"):
        Evaluator(map, vectorized=True)
    with (
        ThreadPoolExecutor(1) as tp,
        pytest.raises(ValueError, match="`vectorized` ships the candidates as vectors"),
    ):
        Evaluator(tp, vectorized=True, mode="seeds")


# ---------------------------------------------------------------------- nested runs on one pool
NESTED = """
import json, sys, warnings
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from scipy.optimize import minimize
from nes_asktell import XNES, NESWarning
from nes_asktell.integrations.scipy import nes

def inner_fun(x, y):
    if sys.argv[2] == "raise" and x[0] > 0.0:
        raise ArithmeticError("boom")
    return float(np.sum((x - y) ** 2))

def outer(x, pool):
    es = XNES(np.zeros(2), 0.5, rng=1, maxiter=4)
    inner = es.optimize(inner_fun, args=(x[:2],), workers=pool).fun
    options = {"maxiter": 3, "rng": 2, "workers": pool}
    low = minimize(inner_fun, np.ones(2), args=(x[:2],), method=nes, options=options).fun
    return float(x @ x) + inner + low

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with ThreadPoolExecutor(int(sys.argv[1])) as pool:
        res = XNES(np.ones(3), 0.5, rng=0, maxiter=3).optimize(outer, args=(pool,), workers=pool)
messages = [str(w.message) for w in caught if issubclass(w.category, NESWarning)]
print(json.dumps({"x": res.x.tolist(), "fun": res.fun, "nit": res.nit, "warned": messages}))
"""


def nested_on_one_pool(threads: int, inner: str) -> dict[str, object]:
    """Run NESTED in a subprocess: a deadlock fails the test at the timeout, never hangs it."""
    out = subprocess.run(
        [sys.executable, "-c", NESTED, str(threads), inner],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def nested_serially(x: np.ndarray, pool: None) -> float:
    def inner_fun(z: np.ndarray, y: np.ndarray) -> float:
        return float(np.sum((z - y) ** 2))

    inner = XNES(np.zeros(2), 0.5, rng=1, maxiter=4).optimize(inner_fun, args=(x[:2],)).fun
    options = {"maxiter": 3, "rng": 2}
    low = minimize(inner_fun, np.ones(2), args=(x[:2],), method=nes, options=options).fun
    return float(x @ x) + inner + low


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_nested_in_an_objective_on_the_same_thread_pool_runs_inline(threads: int) -> None:
    # The outer run's tasks hold every thread of the pool; before, the inner runs (optimize and
    # minimize) queued their tasks behind them on the same pool and waited: a deadlock. Now a
    # task submitted from a thread running a task of that pool runs at once in that thread,
    # so the run is the serial one, bit for bit.
    got = nested_on_one_pool(threads, "sphere")
    serial = XNES(np.ones(3), 0.5, rng=0, maxiter=3).optimize(nested_serially, args=(None,))
    assert got["nit"] == serial.nit == 3
    assert got["x"] == serial.x.tolist()
    assert got["fun"] == serial.fun
    assert got["warned"] == []


@pytest.mark.slow
def test_a_nested_run_inline_on_a_pool_thread_keeps_the_pools_fault_handling() -> None:
    # Run inline, the inner tasks still get the pool's treatment: a raising call costs its
    # candidate (NaN and a warning), it does not end the outer run.
    got = nested_on_one_pool(2, "raise")
    assert got["nit"] == 3
    warned = got["warned"]
    assert isinstance(warned, list)
    assert any("ArithmeticError: boom" in w for w in warned)
