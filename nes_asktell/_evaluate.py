"""Evaluate a population: serially, in a process pool, with any Executor or map, or on dask.

Three ways to move a population to the workers:

* ``"vectors"``: each task carries its rows of ``X`` (8 d bytes per candidate).
* ``"seeds"``: for a strategy with counter-based noise (an integer seed), each task carries the
  keys of its candidates; the worker rebuilds them from the mean, the step sizes and the noise
  keys (``_tasks.rebuild_row``). On a dask ``Client`` the mean is broadcast once per
  generation, so a generation moves a few mean-sized messages instead of the whole population.
* ``"replay"`` (dask ``Client`` only; what "auto" picks there): every worker keeps a replica of
  the strategy and replays the client's updates from their utilities (``_tasks.replay_task``),
  so a generation moves a few KB; the state travels on first contact and whenever a replica is
  missing or out of step.

This module holds what the user sees: :func:`evaluate` and the constructor and ``evaluate`` of
:class:`Evaluator`. Its base class ``_dispatch.Dispatcher`` builds and runs the tasks on the
workers; ``_tasks`` holds what runs there.
"""

from __future__ import annotations

import numbers
import os
import pickle
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from types import TracebackType

import numpy as np

from ._base import NESWarning, Strategy
from ._dispatch import Dispatcher
from ._tasks import UNPICKLABLE, as_value, is_dask_client, seed_plan
from ._typing import FloatArray

MODES = ("auto", "vectors", "seeds", "replay")
#: below this dimension ``mode="auto"`` ships vectors: rebuilding would cost more than it saves.
SEEDS_MIN_DIM = 10_000


class Evaluator(Dispatcher):
    """Evaluate populations with the chosen `workers`, reused across generations.

    Parameters
    ----------
    workers : None, int, map-like callable, Executor, dask Client or Evaluator
        See :func:`nes_asktell.evaluate`. A process pool (an int) starts on first use and is
        shut down by :meth:`close` or on leaving the ``with`` block; an Executor or Client you
        pass stays yours to close.
    timeout : float, optional
        Seconds one :meth:`evaluate` call may take (pools, Executors and Clients).
    mode : {"auto", "vectors", "seeds", "replay"}
        How candidates reach the workers (see :func:`nes_asktell.evaluate`): "replay" keeps a
        replica of the strategy on each dask worker, which redraws a generation's noise to
        replay the update instead of receiving the mean: network traffic traded for worker
        compute.

    Attributes
    ----------
    last_bytes : int
        Serialized bytes sent to and received from the workers by the latest :meth:`evaluate`
        (pickle protocol 5 sizes of the tasks, of what is scattered and of the results; a
        broadcast counts once per worker process, and so does a resent strategy state; 0 when
        serial).

    Examples
    --------
    >>> import numpy as np
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from nes_asktell import Evaluator, SNES
    >>> es = SNES(np.zeros(4), 0.5, rng=0, maxiter=20)
    >>> with ThreadPoolExecutor(2) as pool, Evaluator(pool) as ev:
    ...     while not es.stop():
    ...         X = es.ask()
    ...         es.tell(X, ev.evaluate(lambda x: float(np.sum(x**2)), X, strategy=es))
    >>> es.generation
    20
    """

    def __init__(self, workers: object = None, *, timeout: object = None, mode: str = "auto"):
        # The attributes are those of the Dispatcher base class, which documents them.
        self._owner = self
        self._workers = workers
        self._pool = None
        self._size = 1
        self._seeds_ok = True
        self._broadcast = {}
        self._token, self._token_of = "", None
        self.last_bytes = 0
        if isinstance(workers, Evaluator):
            # Share its workers (and its pool); its timeout and mode apply unless given here.
            self._owner = workers._owner
            self._kind, self._workers, self._size = workers._kind, workers._workers, workers._size
            timeout = workers._timeout if timeout is None else timeout
            mode = workers._mode if mode == "auto" else mode
        elif workers is None:
            self._kind = "serial"
        elif isinstance(workers, numbers.Integral) and not isinstance(workers, bool):
            n = int(workers)
            if n == 0 or n < -1:
                raise ValueError(
                    f"`workers` must be a positive number of processes or -1 (one per core), "
                    f"but got {n}."
                )
            self._size = (os.cpu_count() or 1) if n == -1 else n
            self._kind = "pool" if self._size > 1 else "serial"
        elif is_dask_client(workers):
            self._kind = "dask"
        elif isinstance(workers, Executor):
            self._kind = "executor"
            self._size = int(getattr(workers, "_max_workers", 0) or os.cpu_count() or 1)
        elif callable(workers):
            self._kind = "map"
        else:
            raise TypeError(
                "`workers` must be None, a number of processes, a map-like callable, a "
                f"concurrent.futures.Executor or a dask Client, but got {workers!r}."
            )
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
                raise TypeError(f"`timeout` must be a positive number, but got {timeout!r}.")
            if not float(timeout) > 0:
                raise ValueError(f"`timeout` must be a positive number, but got {timeout!r}.")
            if self._kind in ("serial", "map"):
                raise ValueError(
                    "`timeout` needs workers that return futures (a number of processes, an "
                    f"Executor or a dask Client), but got workers={workers!r}."
                )
        self._timeout = None if timeout is None else float(timeout)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}, but got {mode!r}.")
        if mode == "seeds" and self._kind == "map":
            raise ValueError(
                "`mode` 'seeds' needs workers that take tasks (a number of processes, an "
                "Executor or a dask Client); a map-like callable receives single rows."
            )
        if mode == "replay" and self._kind != "dask":
            raise ValueError(
                "`mode` 'replay' needs a dask Client (its workers keep replicas of the strategy "
                f"between generations), but got workers={workers!r:.80}; use mode='seeds'."
            )
        self._mode = mode

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut down the process pool this evaluator created (if any); free worker replicas."""
        self._broadcast.clear()
        self._drop_replicas()
        if self._owner is self and self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        fun: Callable[..., object],
        X: FloatArray,
        args: Sequence[object] = (),
        *,
        strategy: Strategy | None = None,
    ) -> FloatArray:
        """Return ``[fun(x, *args) for x in X]`` as a float64 array.

        With `strategy`, `X` must be the first rows of its pending batch; the rows may then be
        rebuilt by the workers from keys (``mode`` "auto", "seeds" or "replay").
        """
        if not callable(fun):
            raise TypeError(f"`fun` must be callable, but got {fun!r:.80}.")
        args = tuple(args)
        self.last_bytes = 0
        n = len(X)
        if self._kind == "serial":  # exceptions propagate, as in scipy's own loops
            return np.array([as_value(fun(x, *args), fun) for x in X], dtype=np.float64)
        if self._kind == "map":
            ys = list(self._workers(_Call(fun, args), list(X)))  # type: ignore[operator]
            if len(ys) != n:
                raise ValueError(f"`workers` returned {len(ys)} values for {n} candidates.")
            return np.array([as_value(y, fun) for y in ys], dtype=np.float64)
        plan = None
        keyed = self._mode in ("seeds", "replay")
        wanted = keyed or (strategy is not None and strategy.dim >= SEEDS_MIN_DIM)
        if wanted and self._mode != "vectors" and self._seeds_ok and strategy is not None:
            plan = seed_plan(strategy, X)
        if keyed and self._seeds_ok and plan is None:
            raise ValueError(
                f"`mode` is {self._mode!r}, but these candidates cannot be rebuilt from keys: "
                "that needs the strategy's pending batch, an integer `rng` and a diagonal "
                "perturbation (OpenES, SNES); XNES ships vectors."
            )
        if self._kind == "pool":
            try:
                pickle.dumps((fun, args))
            except Exception as exc:
                raise TypeError(UNPICKLABLE.format(exc=exc)) from exc
        values, errors = self._dispatch(fun, args, X, strategy, plan)
        if errors:
            bad = int(np.count_nonzero(~np.isfinite(values)))
            warnings.warn(
                f"{bad} of {n} candidates have no finite fitness (ranked worst); "
                f"{len(errors)} failure(s), the first: {errors[0]}",
                NESWarning,
                stacklevel=2,
            )
        return values


class _Call:
    """A picklable ``x -> fun(x, *args)``."""

    def __init__(self, fun: Callable[..., object], args: Sequence[object]) -> None:
        self.fun = fun
        self.args = tuple(args)

    def __call__(self, x: FloatArray) -> object:
        return self.fun(x, *self.args)


def evaluate(
    strategy_or_candidates: Strategy | object,
    fun: Callable[..., object],
    workers: object = None,
    *,
    args: Sequence[object] = (),
    timeout: float | None = None,
    mode: str = "auto",
) -> FloatArray:
    """Evaluate `fun` on a population, serially or in parallel.

    Parameters
    ----------
    strategy_or_candidates : Strategy or array_like of shape (n, d)
        A strategy (its pending batch is evaluated; ``ask()`` is called if needed) or candidates.
    fun : callable
        ``fun(x, *args) -> float``. It receives read-only rows.
    workers : None, int, map-like callable, Executor, dask Client or Evaluator
        None or 1: serial, in this process; an exception raised by `fun` propagates. An int:
        a process pool of that size (``-1``: one per core), started with "spawn". A map-like
        callable ``workers(func, iterable)`` (scipy's convention): it receives the rows one by
        one. A ``concurrent.futures.Executor`` (dask's ``client.get_executor()``,
        ``mpi4py.futures.MPIPoolExecutor``, a ``ThreadPoolExecutor``). A dask
        ``distributed.Client``: natively, with replicas of the strategy on the workers (see
        `mode`). An
        :class:`Evaluator`, to reuse its workers and pool (its `timeout` and `mode` apply unless
        given here). Pools, Executors and Clients get about
        one task per worker.
    args : tuple
        Extra arguments of `fun`.
    timeout : float, optional
        Seconds the evaluation may take (pools, Executors and Clients); candidates without a
        value by then get NaN.
    mode : {"auto", "vectors", "seeds", "replay"}
        How candidates reach pools, Executors and Clients. "vectors": their rows (8 d bytes
        each). "seeds": their noise keys (a strategy with an integer `rng` and a diagonal
        perturbation: OpenES, SNES), with the mean and step sizes sent along (on a dask Client
        broadcast once per generation: 8 d bytes per worker, twice that for SNES). "replay"
        (a dask Client only): every worker keeps a replica of the strategy and brings it up to
        date by replaying the client's updates from their utilities, so a generation moves a
        few KB whatever d is (the state travels in the first generation, and again to a worker
        that lost its replica or whose replica no longer matches); the price is compute on
        the workers, each of which redraws the whole generation's noise (popsize x d normals,
        half with mirrored sampling) and keeps a buffer of that size. Choose "replay" when the
        network or the number of workers limits, "seeds" when the workers are few, on one
        machine or a fast network, and their cores are busy. "auto" uses keys from d = 10,000
        on: "replay" on a dask Client, "seeds" elsewhere.

    Returns
    -------
    f : ndarray of shape (n,)
        The fitness values. With a pool, an Executor or a Client, a candidate whose `fun`
        raises, whose worker dies (after one retry) or that misses `timeout` gets NaN, with a
        :class:`NESWarning`; the strategy ranks NaN worst.

    Raises
    ------
    TypeError
        If `workers` is of the wrong kind, or `fun` cannot be pickled for a process pool.
    ValueError
        If `workers`, `timeout` or `mode` has a bad value ("replay" without a dask Client), or
        `mode` asks for keys that cannot rebuild these candidates.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import OpenES, evaluate
    >>> es = OpenES(np.zeros(3), sigma0=0.5, popsize=6, rng=0)
    >>> f = evaluate(es, lambda x: float(np.sum(x**2)))
    >>> es.tell(es.ask(), f)
    >>> f.shape
    (6,)
    """
    strategy = strategy_or_candidates if isinstance(strategy_or_candidates, Strategy) else None
    if strategy is not None:
        X = strategy.ask()
    else:
        X = np.asarray(strategy_or_candidates, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(
                "`strategy_or_candidates` must be a Strategy or an (n, d) array, but got an "
                f"array of shape {X.shape}."
            )
    with Evaluator(workers, timeout=timeout, mode=mode) as ev:
        return ev.evaluate(fun, X, args, strategy=strategy)
