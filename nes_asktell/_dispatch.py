"""The worker side of an :class:`~nes_asktell.Evaluator`: pools, dask transfers and tasks.

:class:`Dispatcher` is the base class of ``Evaluator``: it holds the workers (a process pool it
starts on first use, an Executor or a dask ``Client``), builds one generation's tasks in the
chosen mode (rows of ``X``, noise keys with the mean and step sizes broadcast once, or replays of
the client's updates on the workers' replicas of the strategy), runs them against the deadline,
retries those whose worker died, resends the strategy's state to workers whose replica is missing
or out of step, and counts the bytes moved (``last_bytes``). What the tasks do on the workers is
in ``_tasks``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import uuid
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from ._base import NESWarning, Strategy
from ._tasks import (
    UNPICKLABLE,
    NoiseMismatchError,
    Replay,
    ReplicaMissingError,
    SeedSpec,
    digest,
    drop_replicas,
    nbytes,
    pack_replica,
    ready,
    replay_task,
    seeds_task,
    unpicklable,
    vectors_task,
)
from ._typing import FloatArray

_TIMEOUTS = (TimeoutError, FuturesTimeoutError)
#: what ``seed_plan`` returns: the noise keys, the mean and the step sizes of the candidates.
Plan = tuple[SeedSpec, FloatArray, float | FloatArray]


class Dispatcher:
    """Run one evaluation's tasks on the workers of an :class:`~nes_asktell.Evaluator`.

    ``Evaluator.__init__`` sets every attribute below from its arguments.
    """

    _kind: str  # "serial", "map", "pool", "executor" or "dask"
    _timeout: float | None
    _mode: str
    #: the evaluator that owns the process pool (another one when sharing an Evaluator's workers)
    _owner: Dispatcher
    _workers: object
    _pool: ProcessPoolExecutor | None
    _size: int
    #: False once a worker could not rebuild candidates from keys: vectors from then on.
    _seeds_ok: bool
    #: dask: {name: (array, future)} broadcast to every worker, kept while the same array.
    _broadcast: dict[str, tuple[object, object]]
    #: replay mode: the run whose replicas the workers hold (a token per strategy).
    _token: str
    _token_of: weakref.ref[Strategy] | None
    #: serialized bytes sent to and received from the workers by the latest evaluate().
    last_bytes: int

    def _drop_replicas(self) -> None:
        """Free the workers' replicas of this evaluator's run (replay mode)."""
        if self._token:
            with contextlib.suppress(Exception):  # the cluster may be gone already
                self._workers.run(drop_replicas, self._token)  # type: ignore[attr-defined]
            self._token, self._token_of = "", None

    def _start_pool(self) -> ProcessPoolExecutor:
        """Return the process pool, first starting it and waiting until every worker runs.

        Starting spawned workers (a fresh interpreter importing numpy) can take seconds on a busy
        machine; it happens here, before a generation's `timeout` clock starts.
        """
        owner = self._owner
        if owner._pool is None:
            pool = ProcessPoolExecutor(self._size, mp_context=multiprocessing.get_context("spawn"))
            for fut in [pool.submit(ready) for _ in range(self._size)]:
                with contextlib.suppress(BrokenProcessPool):
                    fut.result()
            owner._pool = pool
        return owner._pool

    def _reset_pool(self) -> None:
        """Kill the pool's processes (hung or dead workers); a new pool starts on next use."""
        owner = self._owner
        pool, owner._pool = owner._pool, None
        if pool is not None:
            procs = getattr(pool, "_processes", None) or {}
            for proc in list(procs.values()):
                if proc.is_alive():
                    proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)

    def _dispatch(
        self,
        fun: Callable[..., object],
        args: tuple[object, ...],
        X: FloatArray,
        strategy: Strategy | None,
        plan: Plan | None,
    ) -> tuple[FloatArray, list[str]]:
        """Evaluate `X` on the pool, Executor or Client; return the values and the failures.

        With a `plan` the candidates travel as keys (replay mode on a dask Client, seeds mode
        elsewhere), otherwise as rows. A candidate without a value gets NaN.
        """
        n = len(X)
        replay = self._kind == "dask" and self._mode in ("auto", "replay")
        send_state = False
        fresh = self._token_of is None or self._token_of() is not strategy
        if plan is not None and replay and strategy is not None and fresh:
            self._drop_replicas()  # those of the previous run
            self._token, self._token_of = uuid.uuid4().hex, weakref.ref(strategy)
            send_state = True  # first contact: the workers install the replica
        values = np.full(n, np.nan)
        errors: list[str] = []
        if self._kind == "pool":
            self._start_pool()  # start-up is not evaluation time
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        box = None if strategy is None else strategy._box
        bounds = None if box is None else (box.lower, box.upper)  # the same arrays each time
        n_tasks = self._n_workers()
        chunks = [c for c in np.array_split(np.arange(n), min(n_tasks, n)) if c.size]
        todo = list(range(len(chunks)))
        lost: list[int] = []
        retried = False
        state: Any = None
        while todo:
            if plan is not None and replay and strategy is not None:
                if send_state and state is None:
                    state = self._bcast_bytes(pack_replica(strategy))
                tasks = self._replay_tasks(fun, args, plan[0], strategy, state, chunks, todo)
            elif plan is not None:
                tasks = self._seeds_tasks(fun, args, plan, bounds, chunks, todo)
            else:
                tasks = {
                    i: (vectors_task, fun, args, self._ship(X[chunks[i][0] : chunks[i][-1] + 1]))
                    for i in todo
                }
            stale: list[int] = []
            failed = self._run(tasks, chunks, values, errors, deadline, retry=retried, stale=stale)
            if isinstance(failed, NoiseMismatchError):
                self._seeds_ok, plan = False, None
                warnings.warn(
                    f"a worker cannot rebuild candidates from keys ({failed}); "
                    "shipping vectors from now on.",
                    NESWarning,
                    stacklevel=3,  # the caller of Evaluator.evaluate
                )
                todo = [i for i in todo if np.isnan(values[chunks[i]]).all()]
                continue
            if stale and send_state:  # the state itself installs a replica: should not happen
                errors.append("a worker could not install the strategy's replica")
                failed, stale = sorted(failed + stale), []
            # A task whose worker has no replica in step is resent with the state (not a retry).
            send_state = send_state or bool(stale)
            if failed and retried:
                lost = failed
                failed = []
            retried = retried or bool(failed)
            todo = sorted(failed + stale)
        self._broadcast.pop("mean", None)
        if lost:
            errors.append(f"{sum(chunks[i].size for i in lost)} candidates lost with their worker")
        return values, errors

    def _n_workers(self) -> int:
        if self._kind == "dask":
            try:
                return max(1, sum(self._workers.nthreads().values()))  # type: ignore[attr-defined]
            except Exception:
                return 1
        return self._size

    def _n_procs(self) -> int:
        """Return the number of dask worker processes (a broadcast reaches each once)."""
        try:
            return max(1, len(self._workers.scheduler_info()["workers"]))  # type: ignore[attr-defined]
        except Exception:
            return self._n_workers()

    def _ship(self, value: Any) -> Any:
        """Return `value`, or on dask a future of it scattered to one worker."""
        if self._kind == "dask":
            self.last_bytes += nbytes(value)
            return self._workers.scatter(value, hash=False)  # type: ignore[attr-defined]
        return value

    def _bcast(self, name: str, value: Any) -> Any:
        """On dask, broadcast `value` to every worker once (kept while it is the same object)."""
        if self._kind != "dask" or not isinstance(value, np.ndarray):
            return value
        held = self._broadcast.get(name)
        if held is not None and held[0] is value:
            return held[1]
        self.last_bytes += nbytes(value) * self._n_procs()
        fut = self._workers.scatter(value, broadcast=True, hash=False)  # type: ignore[attr-defined]
        self._broadcast[name] = (value, fut)
        return fut

    def _bcast_bytes(self, blob: bytes) -> Any:
        """Broadcast a strategy's packed state to every dask worker (counted once per worker)."""
        self.last_bytes += nbytes(blob) * self._n_procs()
        return self._workers.scatter(blob, broadcast=True, hash=False)  # type: ignore[attr-defined]

    def _replay_tasks(
        self,
        fun: Callable[..., object],
        args: tuple[object, ...],
        spec: SeedSpec,
        strategy: Strategy,
        state: Any,
        chunks: list[np.ndarray],
        todo: list[int],
    ) -> dict[int, tuple[Any, ...]]:
        replay = Replay(self._token, tuple(strategy._applied), digest(strategy))
        return {i: (replay_task, fun, args, spec, replay, state, chunks[i].tolist()) for i in todo}

    def _seeds_tasks(
        self,
        fun: Callable[..., object],
        args: tuple[object, ...],
        plan: Plan,
        bounds: tuple[FloatArray, FloatArray] | None,
        chunks: list[np.ndarray],
        todo: list[int],
    ) -> dict[int, tuple[Any, ...]]:
        spec, mean, scale = plan
        m = self._bcast("mean", mean)
        s = self._bcast("scale", scale)
        b = (
            None
            if bounds is None
            else (self._bcast("lower", bounds[0]), self._bcast("upper", bounds[1]))
        )
        return {i: (seeds_task, fun, args, spec, m, s, b, chunks[i].tolist()) for i in todo}

    def _submit(self, task: tuple[Any, ...]) -> Any:
        if self._kind == "dask":
            return self._workers.submit(*task, pure=False)  # type: ignore[attr-defined]
        if self._kind == "pool":
            return self._start_pool().submit(*task)
        return self._workers.submit(*task)  # type: ignore[attr-defined]

    def _run(
        self,
        tasks: dict[int, tuple[Any, ...]],
        chunks: list[np.ndarray],
        values: FloatArray,
        errors: list[str],
        deadline: float | None,
        *,
        retry: bool,
        stale: list[int],
    ) -> list[int] | NoiseMismatchError:
        """Run `tasks`; fill `values`; return the tasks to retry (or the noise mismatch).

        Tasks whose worker has no replica in step are appended to `stale`.
        """
        failed: list[int] = []
        timed_out = False
        self.last_bytes += sum(nbytes(_wire(t[1:])) for t in tasks.values())
        # A retry of a process pool runs one task at a time, so a task that kills its worker
        # cannot take the others down with it.
        groups = [[i] for i in tasks] if retry and self._kind == "pool" else [list(tasks)]
        for group in groups:
            before = len(failed), timed_out
            futures = {i: self._submit(tasks[i]) for i in group}
            for i, fut in futures.items():
                # A finished future is collected without a timeout: dask raises TimeoutError
                # for result(timeout=0) even when the result is there.
                left = None
                if deadline is not None and not fut.done():
                    left = max(0.0, deadline - time.monotonic())
                try:
                    vals, errs = fut.result(timeout=left)
                except _TIMEOUTS:
                    fut.cancel()
                    timed_out = True
                    errors.append(f"timeout after {self._timeout} s")
                    continue
                except NoiseMismatchError as exc:
                    return exc
                except ReplicaMissingError:
                    stale.append(i)
                    continue
                except (BrokenProcessPool, CancelledError, OSError, EOFError) as exc:
                    failed.append(i)
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                except Exception as exc:
                    if unpicklable(exc):
                        raise TypeError(UNPICKLABLE.format(exc=exc)) from exc
                    failed.append(i)
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                values[chunks[i]] = vals
                errors.extend(errs)
                self.last_bytes += nbytes((vals, errs))
            if self._kind == "pool" and (len(failed), timed_out) != before:
                self._reset_pool()
        return failed


def _wire(obj: Any) -> Any:
    """Return `obj` with each dask future replaced by its key (what a task message carries)."""
    if isinstance(obj, tuple):
        return tuple(_wire(o) for o in obj)
    if type(obj).__name__ == "Future" and type(obj).__module__.startswith("distributed"):
        return obj.key
    return obj
