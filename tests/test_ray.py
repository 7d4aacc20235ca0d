"""Ray as an engine (``workers=ray``) on a real local Ray cluster of 2 CPUs.

Every comparison is exact: a run on Ray's actors must be bit-identical to the serial run with the
same seed in each mode (vectors, seeds with the mean in the object store, replay with replicas
in the actors), and a candidate whose function raises, exits its worker process or hangs past
the timeout costs only its candidates (NaN and a warning); the run goes on.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import pytest

from nes_asktell import SNES, XNES, Evaluator, NESWarning, OpenES, _backends, evaluate

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

D = 12_000  # above SEEDS_MIN_DIM: "auto" rebuilds candidates from keys; a mean is 96 KB


def sphere(x: np.ndarray, shift: float = 0.5) -> float:
    return float(np.sum((x - shift) ** 2))


def raise_at(x: np.ndarray, target: np.ndarray) -> float:
    if np.array_equal(x, target):
        raise RuntimeError("boom")
    return sphere(x)


def exit_at(x: np.ndarray, target: np.ndarray) -> float:
    if np.array_equal(x, target):
        os._exit(3)  # the worker process dies
    return sphere(x)


def sleep_at(x: np.ndarray, target: np.ndarray, seconds: float) -> float:
    if np.array_equal(x, target):
        time.sleep(seconds)
    return sphere(x)


@pytest.fixture(scope="module")
def cluster():
    # The actors do not import this test module: its functions travel by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def step(es: object, ev: Evaluator | None, fun=sphere, args: tuple = ()) -> np.ndarray:
    """One generation: evaluated by `ev`, or serially in this process when `ev` is None."""
    X = es.ask()  # type: ignore[attr-defined]
    if ev is None:
        f = np.array([fun(x, *args) for x in X])
    else:
        f = ev.evaluate(fun, X, args, strategy=es)  # type: ignore[arg-type]
    es.tell(X, f)  # type: ignore[attr-defined]
    return f


@pytest.mark.parametrize("mode", ["vectors", "seeds", "replay"])
def test_each_mode_is_bit_identical_to_serial_and_moves_what_it_should(cluster, mode) -> None:
    es, ref = (OpenES(np.zeros(D), 0.3, popsize=8, rng=5) for _ in range(2))
    sent = []
    with Evaluator(cluster, mode=mode) as ev:
        for _ in range(3):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
            sent.append(ev.last_bytes)
    np.testing.assert_array_equal(es.mean, ref.mean)
    mean_bytes = 8 * D
    if mode == "vectors":  # the whole population, every generation
        assert min(sent) >= 8 * mean_bytes
    elif mode == "seeds":  # the mean once (one node), a few bytes per candidate
        assert all(mean_bytes <= b < 2 * mean_bytes for b in sent)
    else:  # the state once (mean and Adam's two moments), then a few KB
        assert sent[0] >= 3 * mean_bytes
        assert max(sent[1:]) < 10_000


@pytest.mark.parametrize("mode", ["seeds", "replay"])
def test_a_bounded_run_rebuilt_from_keys_is_bit_identical_to_serial(cluster, mode) -> None:
    # the bounds travel as two broadcasts in seeds mode: Ray resolves a handle only when it is
    # an argument of the task itself, not inside a tuple
    es, ref = (SNES(np.zeros(D), 0.3, bounds=(-0.2, 0.4), popsize=8, rng=9) for _ in range(2))
    with Evaluator(cluster, mode=mode) as ev:
        for _ in range(2):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
    np.testing.assert_array_equal(es.mean, ref.mean)


def test_workers_ray_in_optimize_is_bit_identical_for_xnes_and_snes(cluster) -> None:
    for cls in (XNES, SNES):
        got = cls(np.ones(6), 0.5, rng=3).optimize(sphere, maxiter=15, workers=cluster)
        want = cls(np.ones(6), 0.5, rng=3).optimize(sphere, maxiter=15)
        np.testing.assert_array_equal(got.x, want.x)
        assert got.fun == want.fun
        assert got.nfev == want.nfev


def test_a_lambda_travels_to_ray_by_value(cluster) -> None:
    # Ray serialises functions by value (cloudpickle): no pickle check rejects a lambda,
    # which a spawned process pool cannot load.
    got = SNES(np.ones(4), 0.5, rng=1).optimize(
        lambda x: float(np.sum(x**2)), maxiter=5, workers=cluster
    )
    want = SNES(np.ones(4), 0.5, rng=1).optimize(sphere, args=(0.0,), maxiter=5)
    np.testing.assert_array_equal(got.x, want.x)
    with pytest.raises(TypeError, match=r"cannot be pickled|pickle"):
        SNES(np.ones(4), 0.5, rng=1).optimize(lambda x: 0.0, maxiter=1, workers=2)


@pytest.mark.parametrize("mode", ["seeds", "replay"])
def test_a_raising_candidate_gets_nan_and_the_run_goes_on(cluster, mode) -> None:
    es, ref = (SNES(np.zeros(D), 0.3, popsize=8, rng=11) for _ in range(2))
    with Evaluator(cluster, mode=mode) as ev:
        for gen in range(2):
            X, Xr = es.ask(), ref.ask()
            target = X[3 * gen].copy()
            with pytest.warns(NESWarning, match="RuntimeError: boom"):
                f = ev.evaluate(raise_at, X, (target,), strategy=es)
            fr = np.array([np.nan if np.array_equal(x, target) else sphere(x) for x in Xr])
            np.testing.assert_array_equal(f, fr)  # NaN exactly where fun raised
            es.tell(X, f)
            ref.tell(Xr, fr)
    np.testing.assert_array_equal(es.mean, ref.mean)


def test_a_candidate_that_exits_its_worker_gets_nan_and_the_run_goes_on(cluster) -> None:
    es, ref = (SNES(np.zeros(D), 0.3, popsize=8, rng=12) for _ in range(2))
    with Evaluator(cluster, mode="replay") as ev:
        np.testing.assert_array_equal(step(es, ev), step(ref, None))  # replicas installed
        X, Xr = es.ask(), ref.ask()
        with pytest.warns(NESWarning, match="1 of 8 candidates .* ActorDiedError"):
            f = ev.evaluate(exit_at, X, (X[5].copy(),), strategy=es)
        expected = np.array([sphere(x) for x in Xr])
        expected[5] = np.nan  # only the faulty candidate is lost
        np.testing.assert_array_equal(f, expected)
        es.tell(X, f)
        ref.tell(Xr, f)
        # fresh actors without replicas: the state is sent again, the run stays identical
        for _ in range(2):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
    np.testing.assert_array_equal(es.mean, ref.mean)


def exit_below(x: np.ndarray, limit: float) -> float:
    if x[0] < limit:
        os._exit(3)
    return float(x[0])


def test_candidates_waiting_when_every_actor_died_run_again_and_keep_their_values(
    cluster,
) -> None:
    # 2 actors: candidates 0 and 1 kill the actor that runs them. Run again one per task, they
    # kill both fresh actors while 2 and 3 wait for one: those never started and run again.
    X = np.arange(8.0).reshape(8, 1)
    with pytest.warns(NESWarning, match=r"2 of 8 candidates .* ActorDiedError"):
        f = evaluate(X, exit_below, cluster, args=(2.0,))
    np.testing.assert_array_equal(f, [np.nan, np.nan, 2, 3, 4, 5, 6, 7])


def test_a_hanging_candidate_times_out_and_the_run_goes_on(cluster) -> None:
    es, ref = (SNES(np.zeros(D), 0.3, popsize=8, rng=13) for _ in range(2))
    with Evaluator(cluster, mode="seeds", timeout=2.0) as ev:
        np.testing.assert_array_equal(step(es, ev), step(ref, None))
        X, Xr = es.ask(), ref.ask()
        with pytest.warns(NESWarning, match=r"timeout after 2\.0 s"):
            f = ev.evaluate(sleep_at, X, (X[0].copy(), 60.0), strategy=es)
        # the hung actor was killed, not waited for; only the hanging candidate is lost
        assert np.isnan(f[0])
        np.testing.assert_array_equal(f[1:], [sphere(x) for x in Xr[1:]])
        es.tell(X, f)
        ref.tell(Xr, f)
        for _ in range(2):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
    np.testing.assert_array_equal(es.mean, ref.mean)


def hang_at(x: np.ndarray, hanging: tuple[float, ...]) -> float:
    if x[0] in hanging:
        time.sleep(60)  # killed with its actor at the timeout
    return float(x[0])


def test_candidates_queued_behind_hanging_ones_run_again_and_keep_their_values(cluster) -> None:
    # 2 actors: candidates 0 and 1 hang while 2..7 wait for an actor; at the timeout the
    # waiting ones never started and run again, then 6 and 7 hang in their turn
    X = np.arange(8.0).reshape(8, 1)
    with pytest.warns(NESWarning, match=r"4 of 8 candidates .* timeout after 2\.0 s"):
        f = evaluate(X, hang_at, cluster, args=((0.0, 1.0, 6.0, 7.0),), timeout=2.0)
    np.testing.assert_array_equal(f, [np.nan, np.nan, 2, 3, 4, 5, np.nan, np.nan])


def test_a_lambda_runs_on_ray_which_pickles_functions_by_value(cluster) -> None:
    X = np.arange(12.0).reshape(6, 2)
    with Evaluator(cluster) as ev:
        f = ev.evaluate(lambda x: float(x[0] - x[1]), X)
    np.testing.assert_array_equal(f, X[:, 0] - X[:, 1])


def test_an_evaluator_outlives_a_restart_of_ray_and_closing_it_does_not_start_ray(cluster) -> None:
    X = np.arange(12.0).reshape(6, 2)
    ev = Evaluator(cluster, mode="vectors")
    np.testing.assert_array_equal(ev.evaluate(sphere, X), [sphere(x) for x in X])
    cluster.shutdown()  # its actors end with the connection
    ev.close()  # nothing to kill: it must not connect to (start) a Ray instance to do it
    assert not cluster.is_initialized()
    cluster.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with Evaluator(cluster, mode="vectors") as ev2:
        np.testing.assert_array_equal(ev2.evaluate(sphere, X), [sphere(x) for x in X])
        cluster.shutdown()
        cluster.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        # fresh actors in the new connection, not the old ones' "Can't find actor"
        np.testing.assert_array_equal(ev2.evaluate(sphere, X), [sphere(x) for x in X])


def test_a_module_that_is_not_ray_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"`workers` must be .* the ray module, but got <module"):
        Evaluator(np)


def test_an_evaluator_waiting_for_cpus_held_by_another_says_so(cluster, monkeypatch) -> None:
    # Each actor reserves a CPU: with the actors of an evaluator still open holding every CPU,
    # a second evaluator's actors cannot start, and its evaluation waited in silence for ever
    # (its timeout counts from the start). Now a NESWarning says so after NO_WORKERS_WARN s;
    # here the warning closes the first evaluator, which frees the CPUs, and the second runs.
    monkeypatch.setattr(_backends, "NO_WORKERS_WARN", 0.0)
    first = Evaluator(cluster)
    es = SNES(np.ones(3), 0.5, rng=0)
    step(es, first)  # its actors hold both CPUs from now on
    seen: list[str] = []

    def close_first(message: Warning | str, *args: object, **kwargs: object) -> None:
        seen.append(str(message))
        first.close()

    other = SNES(np.ones(3), 0.5, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = close_first
        f = evaluate(other, sphere, cluster, timeout=60.0)
    np.testing.assert_array_equal(f, [sphere(x) for x in other.ask()])
    assert len(seen) == 1
    assert "Ray actors have not started" in seen[0]
    assert "another Evaluator still open" in seen[0]
