"""Replay mode on a real dask cluster: workers keep replicas and replay the client's updates.

Every comparison is exact: a replayed run must be bit-identical to the serial run with the same
seed, also when the client's strategy is changed behind the workers' back, when a worker has lost
its replica, and across a skipped (all-NaN) generation.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from nes_asktell import SNES, XNES, Evaluator, NESWarning, OpenES, _tasks
from nes_asktell._strategy import APPLIED_KEPT

D = 12_000  # above SEEDS_MIN_DIM: "auto" rebuilds candidates from keys
D_BYTES = 200_000  # a mean is 1.6 MB here, so any mean-sized message stands out


def sphere(x: np.ndarray, shift: float = 0.5) -> float:
    return float(np.sum((x - shift) ** 2))


def nan_when(x: np.ndarray, bad: bool) -> float:
    return float("nan") if bad else sphere(x)


def raise_at(x: np.ndarray, target: np.ndarray) -> float:
    if np.array_equal(x, target):
        raise RuntimeError("boom")
    return sphere(x)


def sleep_at(x: np.ndarray, target: np.ndarray, seconds: float) -> float:
    if np.array_equal(x, target):
        time.sleep(seconds)
    return sphere(x)


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


def state_bytes(es: object) -> int:
    """The size of the replica state the client sends on first contact."""
    return len(pickle.dumps((type(es), es.replica_state()), protocol=5))  # type: ignore[attr-defined]


def step(es: object, ev: Evaluator | None, fun=sphere, args: tuple = ()) -> np.ndarray:
    """One generation: evaluated by `ev`, or serially in this process when `ev` is None."""
    X = es.ask()  # type: ignore[attr-defined]
    if ev is None:
        f = np.array([fun(x, *args) for x in X])
    else:
        f = ev.evaluate(fun, X, args, strategy=es)  # type: ignore[arg-type]
    es.tell(X, f)  # type: ignore[attr-defined]
    return f


def holds(token: str) -> bool:
    """Whether this worker holds a replica of run `token` (run on every worker).

    A worker that ran a task of the run without its state has an entry for the run but no
    replica (the task raised ReplicaMissingError, and the evaluator sent the state with the
    task again, possibly to the other worker): that is no replica.
    """
    held = _tasks._REPLICAS.get(token)
    return held is not None and held.replica is not None


def until_every_worker_holds_the_run(
    client, ev: Evaluator, es: object, ref: object | None = None
) -> None:
    """Step `es` by `ev` (and `ref` serially, checked against it) until every worker holds a
    replica of the run.

    Which worker runs which task is the scheduler's choice: on a loaded machine both tasks of
    a generation may run on one worker, and the other then gets the state on its first task.
    """
    for _ in range(20):
        if all(client.run(holds, ev._token).values()):
            return
        f = step(es, ev)
        if ref is not None:
            np.testing.assert_array_equal(f, step(ref, None))
    raise AssertionError("a worker ran no task of the run in 20 generations")


CASES = [
    (OpenES, {}),
    (SNES, {}),
    (SNES, {"bounds": (np.full(D, -0.3), np.full(D, 0.4))}),
    (SNES, {"mirrored": True, "popsize": 8, "dtype": "float32"}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "kw"), CASES)
def test_replay_gives_the_same_run_as_serial(client, cls: type, kw: dict) -> None:
    gens = APPLIED_KEPT + 2
    ref = cls(np.zeros(D), 0.3, rng=7, **kw)
    es = cls(np.zeros(D), 0.3, rng=7, **kw)
    with Evaluator(client) as ev:  # "auto" on a Client: replay
        for _ in range(gens):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
        assert ev._token  # the replicas were used
    np.testing.assert_array_equal(es.mean, ref.mean)
    np.testing.assert_array_equal(es.sigma, ref.sigma)


@pytest.mark.slow
def test_after_first_contact_a_generation_moves_a_few_kb(client) -> None:
    es = OpenES(np.zeros(D_BYTES), 0.3, popsize=8, rng=3)
    with Evaluator(client, mode="replay") as ev:
        first = state_bytes(es)  # mean and Adam's two moments: 3 * 8 d bytes and a header
        step(es, ev)
        # the state goes once to each of the 2 workers
        assert ev.last_bytes >= 2 * first
        until_every_worker_holds_the_run(client, ev, es)
        for _ in range(APPLIED_KEPT + 1):
            step(es, ev)
            # per generation: 2 tasks, each with the function's name, the seed spec, the keys,
            # a 16-byte digest and at most APPLIED_KEPT = 4 utility vectors of popsize = 8
            # floats (256 bytes), plus 2 results of 4 floats: about 3 kB. 50 kB is 1/32 of one
            # mean (8 d = 1.6 MB), so a mean or any d-sized message breaks the bound.
            assert ev.last_bytes < 50_000


@pytest.mark.slow
@pytest.mark.parametrize("cls", [OpenES, SNES])
def test_a_strategy_changed_behind_the_workers_back_is_reinstalled(client, cls: type) -> None:
    ref = cls(np.zeros(D), 0.3, popsize=8, rng=5)
    es = cls(np.zeros(D), 0.3, popsize=8, rng=5)
    with Evaluator(client, mode="replay") as ev:
        for gen in range(5):
            if gen == 2:  # the same change on both: replaying u would now give another mean
                ref._mean = ref._mean + 0.01
                es._mean = es._mean + 0.01
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
            if gen == 2:  # the digest told the workers; the state was sent again
                assert ev.last_bytes >= state_bytes(es)
        # a strategy loaded from a checkpoint is another run: its state is sent on first contact
        es = cls.from_state(es.state_dict())
        ref = cls.from_state(ref.state_dict())
        for _ in range(2):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
    np.testing.assert_array_equal(es.mean, ref.mean)


@pytest.mark.slow
def test_a_worker_without_a_replica_gets_the_state(client) -> None:
    ref = SNES(np.zeros(D), 0.3, popsize=8, rng=9)
    es = SNES(np.zeros(D), 0.3, popsize=8, rng=9)
    with Evaluator(client, mode="replay") as ev:
        step(es, ev), step(ref, None)
        until_every_worker_holds_the_run(client, ev, es, ref)
        step(es, ev), step(ref, None)
        assert ev.last_bytes < 50_000  # in step: no state
        client.run(_tasks.drop_replicas)  # as if every worker had been replaced
        np.testing.assert_array_equal(step(es, ev), step(ref, None))
        assert ev.last_bytes >= state_bytes(es)  # resent to the workers that lost it
        until_every_worker_holds_the_run(client, ev, es, ref)
        np.testing.assert_array_equal(step(es, ev), step(ref, None))
        assert ev.last_bytes < 50_000  # installed again
    np.testing.assert_array_equal(es.mean, ref.mean)


@pytest.mark.slow
def test_skipped_generations_replay_and_a_worker_far_behind_gets_the_state(client) -> None:
    ref = OpenES(np.zeros(D), 0.3, popsize=8, rng=4)
    es = OpenES(np.zeros(D), 0.3, popsize=8, rng=4)
    with Evaluator(client, mode="replay") as ev:
        step(es, ev), step(ref, None)
        until_every_worker_holds_the_run(client, ev, es, ref)
        # two generations told on the client alone (no worker sees them), the first all NaN
        with pytest.warns(NESWarning, match="every fitness value is non-finite"):
            step(es, None, nan_when, (True,)), step(ref, None, nan_when, (True,))
        step(es, None), step(ref, None)
        assert es.recent_updates()[-2][1] is None  # the skipped update is recorded as such
        np.testing.assert_array_equal(step(es, ev), step(ref, None))
        assert ev.last_bytes < 50_000  # the workers replayed both generations
        for _ in range(APPLIED_KEPT + 1):  # further behind than the recipes the client keeps
            step(es, None), step(ref, None)
        np.testing.assert_array_equal(step(es, ev), step(ref, None))
        assert ev.last_bytes >= state_bytes(es)
    np.testing.assert_array_equal(es.mean, ref.mean)


@pytest.mark.slow
def test_replay_falls_back_to_vectors_where_keys_cannot_rebuild(client) -> None:
    es = XNES(np.zeros(5), 0.3, rng=0)
    es.tell(es.ask(), np.arange(float(es.popsize)))
    with (
        Evaluator(client, mode="replay") as ev,
        pytest.raises(ValueError, match="`mode` is 'replay', but the candidates of XNES cannot"),
    ):
        ev.evaluate(sphere, es.ask(), strategy=es)
    with Evaluator(client) as ev:  # "auto": XNES ships vectors
        f = ev.evaluate(sphere, es.ask(), strategy=es)
    np.testing.assert_array_equal(f, [sphere(x) for x in es.ask()])


def test_replay_needs_a_dask_client() -> None:
    with pytest.raises(ValueError, match=r"`mode` 'replay' needs a dask Client.*workers=2"):
        Evaluator(2, mode="replay")
    with pytest.raises(ValueError, match=r"`mode` 'replay' needs a dask Client.*workers=None"):
        Evaluator(None, mode="replay")


def test_a_strategy_records_the_utilities_it_applied() -> None:
    es = OpenES(np.zeros(3), 0.3, popsize=4, rng=0)
    for g in range(APPLIED_KEPT + 2):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
        assert es.recent_updates()[-1][0] == g
    assert [g for g, _, _, _ in es.recent_updates()] == list(range(2, APPLIED_KEPT + 2))  # bounded
    assert "applied" not in str(es.state_dict())  # not state


@pytest.mark.slow
def test_a_raising_candidate_gets_nan_in_replay_and_the_run_goes_on(client) -> None:
    ref = SNES(np.zeros(D), 0.3, popsize=8, rng=11)
    es = SNES(np.zeros(D), 0.3, popsize=8, rng=11)
    with Evaluator(client, mode="replay") as ev:
        for gen in range(3):
            X, Xr = es.ask(), ref.ask()
            target = X[2 * gen].copy()
            with pytest.warns(NESWarning, match="RuntimeError: boom"):
                f = ev.evaluate(raise_at, X, (target,), strategy=es)
            fr = np.array([np.nan if np.array_equal(x, target) else sphere(x) for x in Xr])
            np.testing.assert_array_equal(f, fr)  # NaN exactly where fun raised
            es.tell(X, f)
            ref.tell(Xr, fr)
    np.testing.assert_array_equal(es.mean, ref.mean)
    np.testing.assert_array_equal(es.sigma, ref.sigma)


@pytest.mark.slow
def test_a_hanging_candidate_times_out_in_replay_and_the_run_goes_on(client) -> None:
    ref = SNES(np.zeros(D), 0.3, popsize=8, rng=12)
    es = SNES(np.zeros(D), 0.3, popsize=8, rng=12)
    with Evaluator(client, mode="replay", timeout=2.0) as ev:
        np.testing.assert_array_equal(step(es, ev), step(ref, None))  # replicas installed
        X, Xr = es.ask(), ref.ask()
        with pytest.warns(NESWarning, match="timeout after 2.0 s"):
            f = ev.evaluate(sleep_at, X, (X[0].copy(), 6.0), strategy=es)
    # with a timeout each candidate is a task of its own: only the hanging one is lost
    assert np.isnan(f[0])
    np.testing.assert_array_equal(f[1:], [sphere(x) for x in Xr[1:]])
    es.tell(X, f)
    ref.tell(Xr, f)
    with Evaluator(client, mode="replay") as ev:  # no timeout: waits for the busy worker
        for _ in range(2):
            np.testing.assert_array_equal(step(es, ev), step(ref, None))
    np.testing.assert_array_equal(es.mean, ref.mean)
