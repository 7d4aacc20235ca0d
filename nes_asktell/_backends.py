"""The engines that evaluate a population: one class per way of running work.

Every engine has the small interface of :class:`Engine`. Two kinds exist:

* engines that evaluate rows themselves (``takes_tasks = False``): :class:`Serial` (in this
  process; an exception raised by ``fun`` propagates) and :class:`MapEngine` (a map-like
  callable, scipy's ``workers(func, iterable)`` convention);
* engines that run tasks and return futures: :class:`ProcessPool` (a process pool the engine
  starts, kept per size for the whole interpreter by :func:`process_pool` until
  :func:`shutdown_pools`), :class:`ExecutorEngine` (any ``concurrent.futures.Executor``) and
  :class:`DaskEngine` (a dask ``distributed.Client``, whose worker processes can keep replicas
  of the strategy between generations and receive broadcasts) and :class:`RayEngine` (a Ray
  cluster: one actor per CPU, which keeps replicas and reads broadcasts from the object store).

:func:`make_engine` picks the engine for a ``workers`` argument: adding an engine is one class
here and one detection line there.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.process
import numbers
import os
import signal
import threading
import types
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar, Protocol, runtime_checkable

from ._tasks import init_worker, nbytes, ready
from ._typing import FloatArray
from ._validate import short

#: scipy's convention for a parallel map: ``workers(func, iterable) -> iterable``.
MapLike = Callable[[Callable[[FloatArray], object], Iterable[FloatArray]], Iterable[object]]


@runtime_checkable
class DaskClientLike(Protocol):
    """What the package uses of a dask ``distributed.Client``."""

    def submit(self, func: Callable[..., object], *args: object, **kwargs: object) -> Any: ...

    def scatter(self, data: object, **kwargs: object) -> Any: ...

    def run(self, function: Callable[..., object], *args: object, **kwargs: object) -> Any: ...


#: what ``workers=`` accepts besides an Evaluator (see :func:`nes_asktell.evaluate`).
EngineLike = None | int | MapLike | Executor | DaskClientLike | types.ModuleType


class Engine:
    """Where the candidates of a generation are evaluated.

    Attributes
    ----------
    takes_tasks : bool
        True when :meth:`submit` runs tasks and returns futures; False when the engine
        evaluates rows itself with :meth:`map`.
    keeps_replicas : bool
        True when worker processes live across generations and keep replicas (dask).
    isolates_retries : bool
        True for a process pool on this machine: its tasks record each row's progress on a
        shared-memory board (:class:`~nes_asktell._tasks.Board`), :meth:`reset` kills busy
        workers, and :meth:`exit_codes` tells a worker that died by itself from one the pool
        terminated, so a fault costs only the candidate that caused it.
    ships_by_value : bool
        True when the engine serialises functions by value (cloudpickle: Ray), so lambdas and
        functions of ``__main__`` reach the workers and need no pickle check.
    """

    takes_tasks: ClassVar[bool] = True
    keeps_replicas: ClassVar[bool] = False
    isolates_retries: ClassVar[bool] = False
    ships_by_value: ClassVar[bool] = False

    def size(self) -> int:
        """Return how many tasks a generation is split into (about one per worker)."""
        return 1

    def map(self, call: Callable[[FloatArray], object], rows: list[FloatArray]) -> list[object]:
        """Return ``[call(x) for x in rows]`` (engines that evaluate rows themselves)."""
        raise NotImplementedError

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on a worker and return its future."""
        raise NotImplementedError

    def ship(self, value: object) -> tuple[object, int]:
        """Return what a task carries for `value` (it, or a handle) and the bytes sent ahead."""
        return value, 0

    def broadcast(self, value: object) -> tuple[object, int]:
        """Send `value` to every worker once; return its handle and the bytes sent."""
        return value, 0

    def start(self) -> None:
        """Make the workers ready before a generation's clock starts (start a pool)."""

    def reset(self) -> None:
        """Replace workers that died or hang (after a failed task)."""

    def exit_codes(self) -> dict[int, int | None]:
        """Return the exit code of each worker process (by pid) once a broken pool ended.

        Only engines whose tasks report their rows on a board (``isolates_retries``) need it:
        a row left started by a process that died by itself is that process's fault; one
        whose process was terminated by the pool (``-SIGTERM``) is innocent.
        """
        return {}

    def run_everywhere(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` once in every worker process, ignoring failures (dask only)."""

    def close(self) -> None:
        """Release what the engine started (a pool); what the caller passed stays theirs."""


class Serial(Engine):
    """Evaluate in this process, one row after another; exceptions propagate."""

    takes_tasks = False

    def map(self, call: Callable[[FloatArray], object], rows: list[FloatArray]) -> list[object]:
        """Return ``[call(x) for x in rows]``."""
        return [call(x) for x in rows]


class MapEngine(Engine):
    """A map-like callable ``workers(func, iterable)``, which receives the rows one by one."""

    takes_tasks = False

    def __init__(self, workers: MapLike) -> None:
        self.workers = workers

    def map(self, call: Callable[[FloatArray], object], rows: list[FloatArray]) -> list[object]:
        """Return ``list(workers(call, rows))``, checked for its length."""
        ys = list(self.workers(call, rows))
        if len(ys) != len(rows):
            raise ValueError(f"`workers` returned {len(ys)} values for {len(rows)} candidates.")
        return ys


class ProcessPool(Engine):
    """A pool of `n` spawned processes, started on first use and shared by every evaluator.

    :func:`process_pool` keeps one per size for the whole interpreter, so later evaluations
    (a second ``optimize(workers=2)``) reuse the running workers instead of starting new ones;
    :func:`shutdown_pools` (also run at exit) shuts them down. Each worker reports its pid
    when it starts (:func:`~nes_asktell._tasks.init_worker`), so busy workers can be ended
    with ``os.kill`` and the exit code of a dead one read back (:meth:`exit_codes`).
    """

    isolates_retries = True

    def __init__(self, n: int) -> None:
        self.n = n
        self._pool: ProcessPoolExecutor | None = None
        self._pids: Any = None  # the queue on which workers report their pids
        self._procs: dict[int, multiprocessing.process.BaseProcess] = {}
        self._workers: set[int] = set()
        self._busy: set[Future[Any]] = set()

    def size(self) -> int:
        """Return the number of processes."""
        return self.n

    def start(self) -> None:
        """Start the pool and wait until every worker runs.

        Starting spawned workers (a fresh interpreter importing numpy) can take seconds on a
        busy machine; it happens here, before a generation's `timeout` clock starts.
        """
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            if self._pids is None:  # one queue for every pool of this engine: a worker still
                self._pids = ctx.SimpleQueue()  # starting after a reset finds it
            pool = ProcessPoolExecutor(
                self.n, mp_context=ctx, initializer=init_worker, initargs=(self._pids,)
            )
            self._pool = pool
            for fut in [pool.submit(ready) for _ in range(self.n)]:
                with contextlib.suppress(BrokenProcessPool):
                    fut.result()
            self._note_children()

    def _note_children(self) -> None:
        """Record the worker pids reported so far and the process objects of this process."""
        q = self._pids
        while q is not None and not q.empty():
            self._workers.add(int(q.get()))
        for proc in multiprocessing.active_children():
            if proc.pid is not None:
                self._procs.setdefault(proc.pid, proc)

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` in the pool (started if needed)."""
        self.start()
        if self._pool is None:
            raise RuntimeError("the process pool did not start")
        fut = self._pool.submit(fn, *args)
        self._note_children()  # a worker replaced after max_tasks is a new child
        self._busy.add(fut)
        fut.add_done_callback(self._busy.discard)
        return fut

    def exit_codes(self) -> dict[int, int | None]:
        """Wait (up to 10 s each) for the workers of a broken pool; return their exit codes."""
        self._note_children()
        codes: dict[int, int | None] = {}
        for pid in self._workers:
            proc = self._procs.get(pid)
            if proc is not None:
                proc.join(10.0)
                codes[pid] = proc.exitcode
        return codes

    def reset(self) -> None:
        """Kill the pool's processes (hung or dead workers); a new pool starts on next use."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.shutdown(wait=False, cancel_futures=True)
        self._note_children()
        for pid in self._workers:
            proc = self._procs.get(pid)
            if proc is not None and proc.exitcode is None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        for pid in self._workers:
            proc = self._procs.get(pid)
            if proc is not None:
                proc.join(10.0)
        self._workers.clear()
        self._procs.clear()
        self._busy.clear()

    def close(self) -> None:
        """Shut the pool down: at once, killing its workers, when a task still runs."""
        if self._pool is None:
            return
        if any(not f.done() for f in list(self._busy)):
            self.reset()
            return
        pool, self._pool = self._pool, None
        pool.shutdown(wait=True, cancel_futures=True)
        self._workers.clear()
        self._procs.clear()


#: the process pools of this interpreter, one per size (see :func:`process_pool`)
_POOLS: dict[int, ProcessPool] = {}
_POOLS_LOCK = threading.Lock()


def process_pool(n: int) -> ProcessPool:
    """Return this interpreter's process pool of `n` workers (created, not started, if new)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = _POOLS[n] = ProcessPool(n)
        return pool


def shutdown_pools() -> None:
    """Shut down the process pools that ``workers=<int>`` started; also run at exit.

    ``workers=4`` (or ``Evaluator(4)``) starts a pool of 4 spawned processes on first use and
    keeps it for later evaluations with the same number, so that a second ``optimize`` call
    does not pay the start-up again. Call this to free the processes earlier; a later
    evaluation starts a new pool. A pool whose workers are still busy is killed, not awaited.
    """
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(shutdown_pools)


class ExecutorEngine(Engine):
    """Any ``concurrent.futures.Executor``: a thread pool, loky, ``mpi4py.futures``, dask's.

    Its size is its public ``num_workers`` (``mpi4py.futures``) when it has one, else the
    machine's CPU count; pass ``tasks=`` to :class:`~nes_asktell.Evaluator` for an executor
    whose size is neither (dask's ``client.get_executor()`` on a cluster).
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def size(self) -> int:
        """Return the executor's public number of workers (the machine's CPUs without one)."""
        n = getattr(self.executor, "num_workers", None)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            return int(n)
        return os.cpu_count() or 1

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on the executor."""
        return self.executor.submit(fn, *args)


class DaskEngine(Engine):
    """A dask ``distributed.Client``: tasks, scatters, broadcasts and worker replicas."""

    keeps_replicas = True

    def __init__(self, client: DaskClientLike) -> None:
        self.client = client
        self._warm = False

    def start(self) -> None:
        """Import the package on every worker once, before a generation's clock starts.

        A worker's first task otherwise pays the import (numpy, scipy) inside the `timeout`.
        """
        if not self._warm:
            self.run_everywhere(ready)
            self._warm = True

    def size(self) -> int:
        """Return the number of worker threads of the cluster."""
        try:
            return max(1, sum(self.client.nthreads().values()))  # type: ignore[attr-defined]
        except Exception:
            return 1

    def _n_procs(self) -> int:
        """Return the number of worker processes (a broadcast reaches each once)."""
        try:
            return max(1, len(self.client.scheduler_info()["workers"]))  # type: ignore[attr-defined]
        except Exception:
            return self.size()

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on the cluster (never cached: ``pure=False``)."""
        fut: Future[Any] = self.client.submit(fn, *args, pure=False)
        return fut

    def ship(self, value: object) -> tuple[object, int]:
        """Scatter `value` to one worker; return its future and its size."""
        return self.client.scatter(value, hash=False), nbytes(value)

    def broadcast(self, value: object) -> tuple[object, int]:
        """Scatter `value` to every worker; return its future and the bytes sent in all."""
        fut = self.client.scatter(value, broadcast=True, hash=False)
        return fut, nbytes(value) * self._n_procs()

    def run_everywhere(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on every worker (the cluster may be gone already)."""
        with contextlib.suppress(Exception):
            self.client.run(fn, *args)


def is_dask_client(obj: object) -> bool:
    """Return whether `obj` is a dask ``distributed.Client`` (without importing dask)."""
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "scatter")


def make_engine(workers: EngineLike) -> Engine:
    """Return the engine for a `workers` argument, or raise naming it.

    None or 1: :class:`Serial`; an int: a :class:`ProcessPool` of that size (-1: one per
    core); a dask Client: :class:`DaskEngine`; the ``ray`` module: :class:`RayEngine`; an
    Executor: :class:`ExecutorEngine`; another callable: :class:`MapEngine`.
    """
    if workers is None:
        return Serial()
    if isinstance(workers, numbers.Integral) and not isinstance(workers, bool):
        n = int(workers)
        if n == 0 or n < -1:
            raise ValueError(
                f"`workers` must be a positive number of processes or -1 (one per core), "
                f"but got {n}."
            )
        n = (os.cpu_count() or 1) if n == -1 else n
        return process_pool(n) if n > 1 else Serial()
    if is_dask_client(workers):
        return DaskEngine(workers)  # type: ignore[arg-type]
    if isinstance(workers, types.ModuleType) and workers.__name__ == "ray":
        return RayEngine(workers)
    if isinstance(workers, Executor):
        return ExecutorEngine(workers)
    if callable(workers):
        return MapEngine(workers)
    raise TypeError(
        "`workers` must be None, a number of processes, a map-like callable, a "
        "concurrent.futures.Executor, a dask Client or the ray module, but got "
        f"{short(workers)}."
    )


class RayActor:
    """A Ray actor's body: runs tasks in its own worker process, which keeps the replicas."""

    def run(self, fn: Callable[..., object], *args: object) -> object:
        """Return ``fn(*args)`` (Ray has already fetched the object-store arguments)."""
        return fn(*args)


class RayEngine(Engine):
    """A Ray cluster (the ``ray`` module): one actor per CPU, started on first use.

    Each actor is a worker process that lives across generations, so it keeps replicas of the
    strategy (replay mode) like a dask worker; a broadcast is put into the object store once
    (``ray.put``) and the tasks carry its reference. A task that raises, kills its actor or
    misses the deadline is retried alone on fresh actors (the engine kills and replaces them).
    The cluster stays the caller's; :meth:`close` kills only the engine's actors.
    """

    keeps_replicas = True
    isolates_retries = True
    ships_by_value = True

    def __init__(self, ray: types.ModuleType, n: int | None = None) -> None:
        self.ray = ray
        self.n = n
        self._actors: list[Any] = []
        self._next = 0

    def _cpus(self) -> int:
        """Return the number of actors to start: `n`, or one per CPU of the cluster."""
        if self.n is not None:
            return self.n
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def size(self) -> int:
        """Return the number of actors."""
        return len(self._actors) or self._cpus()

    def start(self) -> None:
        """Start the actors (``ray.init()`` first if needed) and wait until each runs."""
        if self._actors:
            return
        ray = self.ray
        if not ray.is_initialized():
            ray.init()
        cls = ray.remote(num_cpus=1, max_restarts=0)(RayActor)
        actors = [cls.remote() for _ in range(self._cpus())]
        ray.get([a.run.remote(ready) for a in actors])
        self._actors, self._next = actors, 0

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on the next actor, round robin; return a concurrent future."""
        self.start()
        actor = self._actors[self._next % len(self._actors)]
        self._next += 1
        fut: Future[Any] = actor.run.remote(fn, *args).future()
        return fut

    def broadcast(self, value: object) -> tuple[object, int]:
        """Put `value` into the object store; return its reference and the bytes sent.

        Each node of the cluster fetches the object once, and its actors read it from
        shared memory: the bytes are counted once per node.
        """
        nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        return self.ray.put(value), nbytes(value) * max(1, nodes)

    def run_everywhere(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on every actor (ignoring actors that are gone)."""
        refs = [a.run.remote(fn, *args) for a in self._actors]
        with contextlib.suppress(Exception):
            self.ray.get(refs, timeout=30)

    def reset(self) -> None:
        """Kill the actors (hung or dead); fresh ones start on next use."""
        actors, self._actors = self._actors, []
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)

    def close(self) -> None:
        """Kill the engine's actors; the cluster stays."""
        self.reset()
