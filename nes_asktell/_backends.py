"""The engines that evaluate a population: one class per way of running work.

Every engine has the small interface of :class:`Engine`. Two kinds exist:

* engines that evaluate rows themselves (``takes_tasks = False``): :class:`Serial` (in this
  process; an exception raised by ``fun`` propagates) and :class:`MapEngine` (a map-like
  callable, scipy's ``workers(func, iterable)`` convention);
* engines that run tasks and return futures: :class:`ProcessPool` (a process pool the engine
  starts, one per size for the whole interpreter by :func:`process_pool`, whose processes
  :func:`shutdown_pools` stops), :class:`ExecutorEngine` (any ``concurrent.futures.Executor``) and
  :class:`DaskEngine` (a dask ``distributed.Client``, whose worker processes can keep replicas
  of the strategy between generations and receive broadcasts) and :class:`RayEngine` (a Ray
  cluster: one actor per CPU, which keeps replicas and reads broadcasts from the object store).

:func:`make_engine` picks the engine for a ``workers`` argument: adding an engine is one class
here and one detection line there.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import numbers
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar, Protocol, runtime_checkable

from . import _warn
from ._tasks import (
    UNPICKLABLE,
    UNPICKLABLE_ON_DASK,
    executing_keys,
    init_worker,
    kill_group,
    nbytes,
    ready,
    unpicklable,
)
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

    def nthreads(self) -> Any: ...


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
        True for the process pool this package starts: :meth:`reset` kills busy workers,
        and :meth:`exit_codes` tells a worker that died by itself from one the pool
        terminated, so a crash costs only the candidate that caused it.
    restarts_workers : bool
        True when :meth:`release_hung` can restart the workers that run hung tasks, if asked
        (dask, through the workers' nannies).
    epoch : int
        Counts the restarts by :meth:`release_hung`: what was broadcast to the workers before
        may be gone.

    Engines whose workers can write to this process's shared memory (:meth:`tracks_rows`)
    have their tasks record each row's progress on a board
    (:class:`~nes_asktell._tasks.Board`); elsewhere a lost task's candidates run again.
    """

    takes_tasks: ClassVar[bool] = True
    keeps_replicas: ClassVar[bool] = False
    isolates_retries: ClassVar[bool] = False
    restarts_workers: ClassVar[bool] = False
    #: counts the restarts of workers that lost what they held (broadcasts, replicas)
    epoch: int = 0

    def size(self) -> int:
        """Return how many tasks a generation is split into (about one per worker)."""
        return 1

    def tracks_rows(self) -> bool:
        """Return whether tasks can record their rows on a shared-memory board of this process.

        True where every worker is this process or a child that shares its resource tracker
        (the package's process pool, a thread pool); a worker with a tracker of its own (a
        Ray actor) would unlink the board when it ends, and a remote one cannot reach it.
        """
        return False

    def map(self, call: Callable[[FloatArray], object], rows: list[FloatArray]) -> list[object]:
        """Return ``[call(x) for x in rows]`` (engines that evaluate rows themselves)."""
        raise NotImplementedError

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on a worker and return its future."""
        raise NotImplementedError

    def result(self, fut: Future[Any], timeout: float | None) -> Any:
        """Return the result of `fut`, waiting at most `timeout` seconds (None: no limit)."""
        return fut.result(timeout=timeout)

    def abandon(self, fut: Future[Any]) -> None:
        """Give up on the task of `fut` (past the timeout): cancel it if it has not started."""
        fut.cancel()

    def locate(self, futs: list[Future[Any]]) -> list[bool] | None:
        """Return, for each task abandoned at the timeout, whether a worker was running it.

        False means it was still queued (it holds no thread: its candidates are innocent);
        None means that the engine cannot tell.
        """
        return None

    def release_hung(self, restart: bool) -> str | None:
        """Free what the tasks still running past the timeout hold, where the engine can.

        With `restart`, restart the workers that run them (dask). Return what the caller
        should be told (a warning), or None.
        """
        return None

    def ship(self, value: object) -> tuple[object, int]:
        """Return what a task carries for `value` (it, or a handle) and the bytes sent ahead."""
        return value, 0

    def broadcast(self, value: object) -> tuple[object, int]:
        """Send `value` to every worker once; return its handle and the bytes sent.

        A task carries the handle as one of its own arguments, never inside a tuple or a
        list: Ray resolves an object-store reference only there (dask resolves both).
        """
        return value, 0

    def hold(self) -> contextlib.AbstractContextManager[object]:
        """Return a context in which one evaluation has the workers to itself.

        Engines whose recovery from a fault replaces every worker (the package's process
        pool, shared by the evaluators of one interpreter) make evaluations from other
        threads wait their turn: a reset would take down another evaluation's tasks, and
        their exit codes would blame its innocent candidates. Elsewhere, nothing to wait for.
        """
        return contextlib.nullcontext()

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

    def check_payload(self, fun: Callable[..., object], args: tuple[object, ...]) -> None:
        """Raise TypeError naming `fun` if the workers cannot be sent `fun` and `args`.

        Only engines that serialize tasks their own way need it (dask); the package's
        process pools are checked with plain pickle by the evaluator.
        """

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


class _FunStoppedError(Exception):
    """The StopIteration raised by ``fun`` in a map, carried past the map as its argument."""


class _Unstoppable:
    """A picklable ``call`` whose StopIteration cannot pass for the end of the map's values.

    A map-like callable stops at a StopIteration escaping from its function (the builtin
    ``map`` ends there, an executor's ``map`` turns it into a RuntimeError), so ``fun``'s
    StopIteration cut the values short and was reported as a wrong count of them.
    """

    def __init__(self, call: Callable[[FloatArray], object]) -> None:
        self.call = call

    def __call__(self, x: FloatArray) -> object:
        try:
            return self.call(x)
        except StopIteration as exc:
            raise _FunStoppedError(exc) from exc


class MapEngine(Engine):
    """A map-like callable ``workers(func, iterable)``, which receives the rows one by one."""

    takes_tasks = False

    def __init__(self, workers: MapLike) -> None:
        self.workers = workers

    def map(self, call: Callable[[FloatArray], object], rows: list[FloatArray]) -> list[object]:
        """Return ``list(workers(call, rows))``, checked for its length.

        An exception raised by `call` propagates, as in :class:`Serial`: a StopIteration too,
        which the map would otherwise take for the end of its values.
        """
        stop: StopIteration | None = None
        try:
            ys = _values(self.workers(_Unstoppable(call), rows))
        except _FunStoppedError as exc:
            stop = exc.args[0]
        if stop is not None:  # raised here, not in the handler, to chain nothing to it
            raise stop  # fun's own StopIteration, with its traceback
        if len(ys) != len(rows):
            raise ValueError(f"`workers` returned {len(ys)} values for {len(rows)} candidates.")
        return ys


def _values(out: Iterable[object]) -> list[object]:
    """Return the values a map-like `workers` returned, as a list, or raise naming it."""
    try:
        return list(out)
    except TypeError as exc:  # None, say
        raise TypeError(
            f"`workers` must return an iterable of the values of its rows, but returned "
            f"{short(out)}."
        ) from exc


class ProcessPool(Engine):
    """A pool of `n` spawned processes, started on first use and shared by every evaluator.

    :func:`process_pool` keeps one per size for the whole interpreter, so later evaluations
    (a second ``optimize(workers=2)``) reuse the running workers instead of starting new ones;
    :func:`shutdown_pools` (also run at exit) shuts them down. Each worker reports its pid
    when it starts (:func:`~nes_asktell._tasks.init_worker`), so busy workers can be ended
    with ``os.kill`` and the exit code of a dead one read back (:meth:`exit_codes`).

    Evaluations in several threads take turns (:meth:`hold`): a fault in one replaces the
    whole pool, which must not break the tasks of another.
    """

    isolates_retries = True

    def __init__(self, n: int) -> None:
        self.n = n
        self._pool: ProcessPoolExecutor | None = None
        self._pids: Any = None  # the queue on which workers report their pids
        self._procs: dict[int, multiprocessing.process.BaseProcess] = {}
        self._workers: set[int] = set()
        self._busy: set[Future[Any]] = set()
        #: held by the evaluation that uses the pool (re-entrant: an Evaluator sharing it)
        self._turn = threading.RLock()
        #: guards `_depth` and `_close_pending`, which :meth:`close` reads from any thread
        self._state = threading.Lock()
        self._depth = 0  # how many holds of the turn are under way
        self._close_pending = False  # close() was called while an evaluation held the turn

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the pool's turn: evaluations in other threads wait until this one ends.

        A fault (a worker that dies, a timeout, Ctrl-C) ends with :meth:`reset`, which kills
        every worker of the pool; evaluations that shared it would lose their tasks and see
        their rows killed as if their own candidates had died. A :meth:`close` asked for
        meanwhile (from another thread) happens when the turn ends.
        """
        with self._turn:
            with self._state:
                self._depth += 1
            try:
                yield
            finally:
                with self._state:
                    self._depth -= 1
                    if not self._depth and self._close_pending:
                        self._close_pending = False
                        self._shut_down()

    def size(self) -> int:
        """Return the number of processes."""
        return self.n

    def tracks_rows(self) -> bool:
        """Return True: the spawned workers share this process's resource tracker."""
        return True

    def start(self) -> None:
        """Start the pool and wait until every worker runs.

        Starting spawned workers (a fresh interpreter importing numpy) can take seconds on a
        busy machine; it happens here, before a generation's `timeout` clock starts.
        """
        if self._pool is not None:
            return
        ctx = multiprocessing.get_context("spawn")
        if self._pids is None:  # one queue for every pool of this engine: a worker still
            self._pids = ctx.SimpleQueue()  # starting after a reset finds it
        for _ in range(2):  # a worker killed from outside while starting: once more
            pool = ProcessPoolExecutor(
                self.n, mp_context=ctx, initializer=init_worker, initargs=(self._pids,)
            )
            self._pool = pool
            try:
                for fut in [pool.submit(ready) for _ in range(self.n)]:
                    fut.result()
            except BrokenProcessPool:
                self.reset()
                continue
            self._note_children()
            return
        raise RuntimeError(
            "the workers of the process pool died as they started, twice. Spawned workers "
            "import the main script again: a script that starts a run when it is imported must "
            "start it "
            'under `if __name__ == "__main__":`.'
        )

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
        try:
            fut = self._pool.submit(fn, *args)
        except BrokenProcessPool as exc:
            # A worker died while idle (killed from outside): the task fails as the tasks of a
            # worker that died while busy do, and the caller replaces the pool (reset) and
            # runs its rows again.
            failed: Future[Any] = Future()
            failed.set_exception(exc)
            return failed
        self._note_children()  # a worker replaced after max_tasks is a new child
        self._busy.add(fut)
        fut.add_done_callback(self._busy.discard)
        return fut

    def exit_codes(self) -> dict[int, int | None]:
        """Wait (up to 10 s each) for the workers of a broken pool; return their exit codes.

        The executor's own thread reaps the processes of a broken pool at the same time
        (``waitpid``); whichever thread loses that race sees no status, so the code is read
        from the process object once the winner has stored it (:func:`_exit_code`).
        """
        self._note_children()
        codes: dict[int, int | None] = {}
        for pid in self._workers:
            proc = self._procs.get(pid)
            if proc is not None:
                codes[pid] = _exit_code(proc, 10.0)
        return codes

    def reset(self) -> None:
        """Kill the pool's processes (hung or dead workers); a new pool starts on next use.

        Each worker is killed with its process group: the programs its candidates started
        (a simulator run by ``fun``) end with it.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.shutdown(wait=False, cancel_futures=True)
        self._note_children()
        for pid in self._workers:
            proc = self._procs.get(pid)
            if proc is None:
                continue
            # The worker's process group: the worker if it runs, and the programs its
            # candidates started, even those of a worker that has ended.
            if not kill_group(pid) and proc.exitcode is None:
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
        """Shut the pool down; if an evaluation uses it (another thread's), once that ends.

        Closing it under the evaluation would kill the workers running its candidates and
        clear the records it reads (the workers' pids and exit codes).
        """
        with self._state:
            if self._depth:
                self._close_pending = True
                return
            self._shut_down()

    def _shut_down(self) -> None:
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


def _exit_code(proc: multiprocessing.process.BaseProcess, timeout: float) -> int | None:
    """Return the exit code of `proc` once it ended (None if it still runs after `timeout` s).

    Two threads may reap the same child: this one and a broken executor's management thread,
    which joins its processes while the futures already report the break. The loser of that
    ``waitpid`` race gets no status (``exitcode`` is None although the process is gone), and
    the winner stores the code a moment later; so once the process's sentinel says it ended,
    the code is read until it is there (bounded by `timeout`).
    """
    end = time.monotonic() + timeout
    if not multiprocessing.connection.wait([proc.sentinel], timeout):
        return None  # still running
    code = proc.exitcode
    while code is None and time.monotonic() < end:
        time.sleep(0.001)  # the reaping thread stores the code within microseconds
        code = proc.exitcode
    return code


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
    evaluation starts the pool again. A pool whose workers are still busy is killed, not
    awaited; a pool that an evaluation in another thread is using is shut down when that
    evaluation ends. The pools stay this interpreter's pools: an open Evaluator that starts
    its pool again shares it with later evaluations of that size, and the next call stops it
    too.
    """
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.close()


atexit.register(shutdown_pools)


class ExecutorEngine(Engine):
    """Any ``concurrent.futures.Executor``: a thread pool, loky, ``mpi4py.futures``, dask's.

    Its size is its public ``num_workers`` (``mpi4py.futures``) when it has one, else the
    machine's CPU count; pass ``tasks=`` to :class:`~nes_asktell.Evaluator` for an executor
    whose size is neither (dask's ``client.get_executor()`` on a cluster).

    A ``ThreadPoolExecutor`` gets spare threads when calls hang. A call of `fun` still
    running past the timeout keeps its thread until it returns (a thread cannot be stopped),
    and the pool stays the caller's (never shut down or replaced), so the engine starts
    threads of its own in place of the held ones: a ``ThreadPoolExecutor`` it owns, sized
    before each evaluation and each re-run to the caller's threads that its hung calls hold
    then, and shut down by :meth:`close`. While it exists, each task is offered to both
    pools and runs on the first thread free (:class:`_Offered`): nothing waits behind a
    hung call while a thread is free, and the caller's free threads stay in use. The spare
    threads, those held by hung calls of their own included, never outnumber the caller's
    threads that have run this engine's tasks (at most the pool's size), so a `fun` that
    hangs every time cannot grow threads without bound; past that, candidates that find no
    thread get NaN at the timeout.

    A task submitted from a thread that is running one of this package's tasks on the same
    ``ThreadPoolExecutor`` (a run nested in the objective of a run on that pool) runs at once
    in that thread (:func:`_ran_here`): queued behind the tasks that wait for it, it would
    deadlock the pool. A `timeout` cannot interrupt it there.

    The spare threads are plain threads: they do not run the pool's ``initializer`` (which a
    ``ThreadPoolExecutor`` does not make public), and the warning that announces them says
    so. A `fun` that needs per-thread setup should do it lazily (``threading.local``): on a
    spare thread it would otherwise fail at once, again and again, and being the first
    thread free it would take most of the next candidates.
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._abandoned: set[Future[Any]] = set()
        #: the caller's threads that have run a task of this engine (their idents)
        self._lent: set[int] = set()
        self._spare: ThreadPoolExecutor | None = None
        self._spare_size = 0

    def size(self) -> int:
        """Return the executor's public number of workers (the machine's CPUs without one)."""
        n = getattr(self.executor, "num_workers", None)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            return int(n)
        return os.cpu_count() or 1

    def tracks_rows(self) -> bool:
        """Return whether the executor is a thread pool (its tasks share this process)."""
        return isinstance(self.executor, ThreadPoolExecutor)

    def start(self) -> None:
        """Fit the spare threads to the caller's threads that hung calls hold now."""
        self._fit_spare()

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on the executor (a thread pool's task: or on a spare thread).

        Raises
        ------
        RuntimeError
            If the executor refuses the task (it was shut down, before or during the run),
            naming `workers`; a broken executor's own error (``BrokenProcessPool``) says so too.
        TypeError
            If the executor cannot pickle the task as it takes it (dask's), naming `fun`.
        """
        try:
            if not isinstance(self.executor, ThreadPoolExecutor):
                return self.executor.submit(fn, *args)
            if self.executor in _RUNNING.pools:
                # A run nested in a task of this pool: its threads may all be running tasks
                # that wait for this one, so it runs here, at once.
                return _ran_here(fn, args)
            if self._spare is None:
                return self.executor.submit(
                    functools.partial(_noted, self._lent, self.executor, fn), *args
                )
            task = _Offered(fn, args)
            self.executor.submit(self._take, task, self.executor)
        except BrokenExecutor as exc:  # kept as its type, with what to do
            raise type(exc)(
                f"`workers` ({type(self.executor).__name__}) is broken: {exc}. One of its "
                "processes died (a candidate that ends its process, a crash, the out-of-memory "
                "killer), and a broken executor runs nothing again. Pass `workers=<n>` for the "
                "package's own process pool, which replaces a dead worker and costs only the "
                "candidate it was evaluating."
            ) from exc
        except RuntimeError as exc:  # concurrent.futures: "cannot schedule new futures ..."
            raise RuntimeError(
                f"`workers` ({type(self.executor).__name__}) refused a task: {exc}. It was "
                "shut down (or the interpreter is exiting); pass an Executor that is open."
            ) from exc
        except Exception as exc:
            # An executor that serializes the task as it is submitted (dask's raises its own
            # "Could not serialize object of type ...", the pickling error as its cause)
            cause = exc if unpicklable(exc) else exc.__cause__
            if cause is None or not unpicklable(cause):
                raise
            raise TypeError(UNPICKLABLE.format(exc=cause)) from exc
        self._spare.submit(self._take, task, self._spare)
        return task

    def _take(self, task: _Offered, pool: Executor) -> None:
        """Run `task` on this thread of `pool`, unless another thread has taken it."""
        if pool is self.executor:
            self._lent.add(threading.get_ident())
        with _running_on(self.executor):
            task.run(pool)

    def abandon(self, fut: Future[Any]) -> None:
        """Cancel the task of `fut` if it has not started; else note it until it ends."""
        if not fut.cancel():
            self._abandoned.add(fut)
            fut.add_done_callback(self._abandoned.discard)

    def _fit_spare(self) -> tuple[int, int]:
        """Size the spare pool to the caller's threads that hung calls hold now.

        Return how many of the caller's threads are held and how many spare threads replace
        them. A spare pool one of whose threads runs a hung call is shut down (that thread
        ends when its call returns) and a new one started, so that the free spare threads
        match the held ones.
        """
        if not isinstance(self.executor, ThreadPoolExecutor):
            return 0, 0
        held = collections.Counter(
            f.pool if isinstance(f, _Offered) else self.executor
            for f in list(self._abandoned)
            if not f.done()
        )
        theirs = held.pop(self.executor, 0)
        want = max(0, min(theirs, len(self._lent) - sum(held.values())))
        if self._spare is not None and (held[self._spare] or self._spare_size != want):
            self.close()  # its free threads no longer match the held ones: a new pool follows
        if self._spare is None and want:
            self._spare = ThreadPoolExecutor(want, thread_name_prefix="nes_asktell-spare")
            self._spare_size = want
        return theirs, want

    def release_hung(self, restart: bool) -> str | None:
        """Say how many abandoned tasks still run: an Executor has no way to stop them.

        A thread cannot be stopped, and an Executor passed in stays the caller's: it is
        neither shut down nor replaced. On a thread pool, spare threads replace the held ones
        (within their bound, see the class).
        """
        n = sum(1 for f in list(self._abandoned) if not f.done())
        if not n:
            return None
        if not isinstance(self.executor, ThreadPoolExecutor):
            return (
                f"{n} task(s) still run past the timeout on the Executor, which offers no way "
                "to stop a running task: they hold its workers until they return."
            )
        theirs, spare = self._fit_spare()
        if not theirs:
            instead = "the pool's own threads are free"
        elif spare == theirs:
            instead = (
                f"the next candidates run on its free threads and on {spare} spare thread(s) "
                "of the evaluator in place of the held ones (shut down with the evaluator; "
                "plain threads, which do not run the pool's `initializer`: a `fun` that needs "
                "per-thread setup should do it lazily, with threading.local)"
            )
        else:
            instead = (
                f"only {spare} spare thread(s) of the evaluator replace them: spare threads, "
                "held ones included, never outnumber the pool's threads that ran the "
                f"evaluator's calls ({len(self._lent)}), so candidates that find no thread "
                "get NaN at the timeout"
            )
        return (
            f"{n} call(s) of `fun` still run past the timeout and hold {n} thread(s) "
            f"({theirs} of the ThreadPoolExecutor, {n - theirs} spare) until they return: "
            "a thread cannot be stopped, and a pool you pass stays yours (it is not "
            f"replaced); {instead}. The pool's shutdown(wait=True), its `with` block and the "
            "interpreter's exit wait for these calls."
        )

    def close(self) -> None:
        """Shut the spare threads down without waiting; the caller's Executor stays theirs."""
        spare, self._spare, self._spare_size = self._spare, None, 0
        if spare is not None:
            spare.shutdown(wait=False, cancel_futures=True)  # a hung call keeps its thread


class _Running(threading.local):
    """Per thread: the caller's thread pools whose task this thread runs (innermost last).

    A task on a spare thread counts as one of the caller's pool, whose place it takes.
    """

    def __init__(self) -> None:
        self.pools: list[Executor] = []


_RUNNING = _Running()


def _noted(lent: set[int], pool: Executor, fn: Callable[..., object], *args: object) -> object:
    """Return ``fn(*args)``, noting this thread in `lent` (a task on a thread of `pool`)."""
    lent.add(threading.get_ident())
    with _running_on(pool):
        return fn(*args)


@contextlib.contextmanager
def _running_on(pool: Executor) -> Iterator[None]:
    """Note, for the duration, that this thread runs one of our tasks for `pool`."""
    _RUNNING.pools.append(pool)
    try:
        yield
    finally:
        _RUNNING.pools.pop()


def _ran_here(fn: Callable[..., object], args: tuple[object, ...]) -> Future[Any]:
    """Run ``fn(*args)`` in this thread now; return its future, done (as a pool's task would)."""
    fut: Future[Any] = Future()
    fut.set_running_or_notify_cancel()
    try:
        result = fn(*args)
    except BaseException as exc:  # as a ThreadPoolExecutor does: it goes to the future
        fut.set_exception(exc)
    else:
        fut.set_result(result)
    return fut


class _Offered(Future[Any]):
    """A task offered to two thread pools, the caller's and the spare one.

    The first thread free runs it; the other pool's offer finds it taken and returns. It is
    its own future: cancelled before a thread takes it, it never runs.
    """

    def __init__(self, fn: Callable[..., object], args: tuple[object, ...]) -> None:
        super().__init__()
        self.fn, self.args = fn, args
        #: the pool whose thread took the task
        self.pool: Executor | None = None
        self._taken = threading.Lock()  # acquired once, by the thread that takes the task

    def run(self, pool: Executor) -> None:
        """Run the task on this thread of `pool`, unless taken or cancelled already."""
        if not self._taken.acquire(blocking=False):
            return
        self.pool = pool
        if not self.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args)
        except BaseException as exc:  # as a ThreadPoolExecutor does: it goes to the future
            self.set_exception(exc)
        else:
            self.set_result(result)


class DaskEngine(Engine):
    """A dask ``distributed.Client``: tasks, scatters, broadcasts and worker replicas."""

    keeps_replicas = True
    restarts_workers = True

    def __init__(self, client: DaskClientLike) -> None:
        self.client = client
        self._warm = False
        self._abandoned: set[Any] = set()
        self.epoch = 0
        #: when each worker (by name) was last restarted, on the monotonic clock
        self._restarted_at: dict[str, float] = {}
        #: the workers the client's own cluster lacked at a check, and since which check
        self._closed_seen: tuple[list[str], float] | None = None

    def result(self, fut: Future[Any], timeout: float | None) -> Any:
        """Return the result of `fut` like ``fut.result(timeout)``, watching the workers.

        dask waits for workers however long the cluster has none. A LocalCluster (any
        SpecCluster) closes for good a worker whose name is absent from the scheduler when
        ``distributed.deploy.lost-worker-timeout`` has passed since it left: a candidate that
        kills its worker again and again (dask runs it up to ``allowed-failures`` + 1 times,
        the evaluator runs lost rows again) can keep a worker restarting that long, and once
        the last one is closed nothing is evaluated again. While it waits, the cluster is
        checked every `NO_WORKERS_POLL` seconds by :meth:`_watch` (the closed workers) and
        by a `NoWorkers` of this wait (a ``NESWarning`` after `NO_WORKERS_WARN` seconds
        without any worker).
        """
        end = None if timeout is None else time.monotonic() + timeout
        none = NoWorkers()
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            if fut.done() or left == 0.0:
                # (dask raises TimeoutError for result(timeout=0) even when the result is there)
                return fut.result(timeout=None if fut.done() else 0.0)
            step = NO_WORKERS_POLL if left is None else min(NO_WORKERS_POLL, left)
            try:
                return fut.result(timeout=step)
            except (TimeoutError, FuturesTimeoutError):
                if fut.done():
                    continue
            try:
                n = len(self.client.nthreads())
            except Exception:  # a closed or unreachable client: the future will say
                n = 1
            now = time.monotonic()
            self._watch(now)
            none.tick(n, now)

    def _watch(self, now: float) -> None:
        """Ask the client's own cluster to start the workers it closed, once it is sure.

        Called at the start of every evaluation and while a result is awaited. When the
        cluster has lacked the same workers of its spec (see :meth:`_closed_workers`) at two
        checks `REVIVE_AFTER` seconds apart or more, it is asked to start them again (see
        :meth:`_revive`). A cluster scaling up lacks its new workers for a few seconds too;
        asking it then is harmless (a SpecCluster starts its workers under a lock, and
        starts only those it does not run), but the warning would be wrong, hence the delay.
        The first sighting is kept from one evaluation to the next, so a cluster that lost
        some of its workers is restored even when no result is ever late.
        """
        cluster = getattr(self.client, "cluster", None)
        names = self._closed_workers(cluster)
        seen = self._closed_seen
        if not names or seen is None or seen[0] != names:
            self._closed_seen = (names, now) if names else None
        elif now - seen[1] >= REVIVE_AFTER:
            self._revive(cluster, names)
            self._closed_seen = None

    @staticmethod
    def _closed_workers(cluster: object) -> list[str]:
        """Return the workers `cluster` asks for and has not got (names).

        A ``SpecCluster`` (``LocalCluster``, and the clusters of dask-jobqueue and the like)
        keeps what it was asked for in ``worker_spec`` and the workers it runs in ``workers``.
        Its lost-worker timer closes a worker and removes it from ``workers`` only, so the
        two differ until the cluster is scaled again. Empty for a client of a scheduler that
        runs elsewhere (``client.cluster`` is None) or a cluster of another kind.
        """
        spec, live = getattr(cluster, "worker_spec", None), getattr(cluster, "workers", None)
        if not isinstance(spec, dict) or not isinstance(live, dict):
            return []
        try:  # (the cluster's event loop may change them meanwhile)
            return sorted(map(str, set(list(spec)) - set(list(live))))
        except Exception:
            return []

    @staticmethod
    def _revive(cluster: Any, names: list[str]) -> None:
        """Ask `cluster` to start the workers `names` it asks for again.

        ``cluster.scale`` to the size the cluster already asks for changes nothing of what it
        asks for: it only makes the cluster start the workers of its spec that it does not
        run. A ``NESWarning`` says so.
        """
        try:
            cluster.scale(len(cluster.worker_spec))
        except Exception as exc:  # a cluster closing meanwhile: the no-worker warning stays
            _warn.warn(
                f"could not ask the dask cluster to start its workers again: {exc}",
                stacklevel=4,
            )
            return
        _warn.warn(
            f"the dask cluster had closed {len(names)} of the workers it asks for "
            f"({', '.join(names)}): a LocalCluster closes for good a worker still absent when "
            "distributed.deploy.lost-worker-timeout (15 s) has passed since it died, as when "
            "candidates kill their workers again and again; the evaluator asked the cluster "
            "to start them again (cluster.scale to its own size).",
            stacklevel=4,
        )

    def abandon(self, fut: Future[Any]) -> None:
        """Give up on the task of `fut`, but keep the future until the task ends.

        A dask worker's thread cannot be stopped. Cancelling a running task would free its
        slot in the scheduler's view while the thread still runs it, and the scheduler would
        queue the candidates run again behind the hung call; a future kept keeps the slot
        counted busy. (A task that had not started yet runs when its turn comes; its value
        is not used.)
        """
        self._abandoned.add(fut)
        fut.add_done_callback(self._abandoned.discard)

    def _executing(self) -> dict[str, set[str]] | None:
        """Return the keys of the tasks each worker's threads run now (None if unknown)."""
        try:
            replies = self.client.run(executing_keys, on_error="return")
        except Exception:
            return None
        if not isinstance(replies, dict):
            return None
        return {
            str(addr): {k for k in keys if isinstance(k, str)}
            for addr, keys in replies.items()
            if isinstance(keys, list)
        }

    def _space_restarts(self, names: Iterable[str]) -> float:
        """Wait until no worker in `names` was restarted within the lost-worker timeout.

        Return the seconds waited.

        A ``LocalCluster`` (any ``SpecCluster``) arms a timer whenever a worker leaves, and
        closes that worker for good if its name is absent when the timer fires
        (``distributed.deploy.lost-worker-timeout``, 15 s by default), even when it came back
        in between: a second restart of the same worker at that moment would end it. Waiting
        out the timer (plus a margin for a busy event loop) lets every restart come back.
        """
        ready_at = max((self._restarted_at.get(n, -math.inf) for n in names), default=-math.inf)
        wait = ready_at + _lost_worker_timeout() + 2.0 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return max(0.0, wait)

    def locate(self, futs: list[Future[Any]]) -> list[bool] | None:
        """Return, for each abandoned task, whether a worker's thread was running it."""
        running = self._executing()
        if running is None:
            return None
        busy = set().union(*running.values()) if running else set()
        return [getattr(f, "key", None) in busy for f in futs]

    def release_hung(self, restart: bool) -> str | None:
        """Restart (with `restart`) the workers whose threads run abandoned tasks.

        A dask worker's thread cannot be stopped, but a worker process run by a nanny can be
        restarted (``Client.restart_workers``): the abandoned tasks are cancelled first (so
        that the scheduler does not hand them to another worker), then the workers holding
        them restart, which discards everything else they held. Workers without a nanny
        (``LocalCluster(processes=False)``, ``dask worker --no-nanny``) cannot restart: their
        hung threads stay busy, and the message says so. When a restart happens, the abandoned
        tasks that were only queued are cancelled as well.
        """
        hung = [f for f in list(self._abandoned) if not f.done()]
        if not hung:
            return None
        running = self._executing() or {}
        by_key = {f.key: f for f in hung}
        holders = {a: keys & by_key.keys() for a, keys in running.items() if keys & by_key.keys()}
        n = sum(len(keys) for keys in holders.values())
        if not holders:
            return None  # the queued ones run in their turn; their values are not used
        where = ", ".join(sorted(holders))
        if not restart:
            return (
                f"{n} call(s) of `fun` still run past the timeout and hold {n} thread(s) of "
                f"the dask worker(s) {where} until they return (a thread cannot be stopped); "
                "Evaluator(client, timeout=..., restart_workers=True) restarts those workers."
            )
        try:
            info = self.client.scheduler_info(n_workers=-1)["workers"]  # type: ignore[attr-defined]
        except Exception:
            info = {}
        bare = sorted(a for a in holders if not (info.get(a) or {}).get("nanny"))
        able = sorted(a for a in holders if a not in bare)
        notes: list[str] = []
        if able:
            names = {a: str((info.get(a) or {}).get("name", a)) for a in able}
            waited = self._space_restarts(names.values())
            doomed = [by_key[k] for a in able for k in holders[a]]
            queued = [f for k, f in by_key.items() if not any(k in v for v in holders.values())]
            with contextlib.suppress(Exception):
                self.client.cancel(doomed + queued, force=True)  # type: ignore[attr-defined]
            for f in doomed + queued:
                self._abandoned.discard(f)
            try:
                status = self.client.restart_workers(  # type: ignore[attr-defined]
                    workers=able, timeout=RESTART_TIMEOUT, raise_for_error=False
                )
            except Exception as exc:
                status = {a: f"{type(exc).__name__}: {exc}" for a in able}
            self._warm = False  # the fresh workers import the package before the next clock
            self.epoch += 1
            now = time.monotonic()
            self._restarted_at.update((name, now) for name in names.values())
            failed = {a: s for a, s in dict(status).items() if s != "OK"}
            hung_calls = sum(len(holders[a]) for a in able)
            notes.append(
                f"restarted the dask worker(s) {', '.join(able)} (restart_workers=True): their "
                f"threads ran {hung_calls} call(s) of `fun` hung past the timeout, and whatever "
                "else those workers held or ran is discarded"
                + (
                    f" (the restart waited {waited:.1f} s for dask's lost-worker timeout of an "
                    "earlier restart of the same worker)"
                    if waited > 0
                    else ""
                )
            )
            if failed:
                notes.append(
                    f"the restart failed or took longer than {RESTART_TIMEOUT} s: {failed}; "
                    "those workers may be gone"
                )
        if bare:
            k = sum(len(holders[a]) for a in bare)
            notes.append(
                f"cannot restart the dask worker(s) {', '.join(bare)}: they run without a "
                "nanny (LocalCluster(processes=False), `dask worker --no-nanny`), and only a "
                f"nanny can restart a worker; {k} hung call(s) of `fun` keep their threads "
                "until they return"
            )
        return "; ".join(notes) + "."

    def start(self) -> None:
        """Import the package on every worker once, before a generation's clock starts.

        A worker's first task otherwise pays the import (numpy, scipy) inside the `timeout`.
        The cluster is checked for workers it closed first (see :meth:`_watch`).
        """
        self._watch(time.monotonic())
        if not self._warm:
            self.run_everywhere(ready)
            self._warm = True

    def size(self) -> int:
        """Return the number of worker threads of the cluster."""
        try:
            return max(1, int(sum(self.client.nthreads().values())))
        except Exception:
            return 1

    def _n_procs(self) -> int:
        """Return the number of worker processes (a broadcast reaches each once)."""
        try:
            return max(1, len(self.client.scheduler_info()["workers"]))  # type: ignore[attr-defined]
        except Exception:
            return self.size()

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on the cluster (never cached: ``pure=False``).

        Raises
        ------
        RuntimeError
            If the Client is closed (before or during the run), naming `workers`.
        """
        try:
            fut: Future[Any] = self.client.submit(fn, *args, pure=False)
        except Exception as exc:
            status = getattr(self.client, "status", None)
            if status not in ("closing", "closed"):
                raise
            raise RuntimeError(
                f"`workers` (a dask Client) is {status}: {type(exc).__name__}: "
                f"{str(exc).rstrip('.')}. Pass a Client that is open."
            ) from exc
        return fut

    def check_payload(self, fun: Callable[..., object], args: tuple[object, ...]) -> None:
        """Raise TypeError naming `fun` if dask cannot serialize `fun` and `args`.

        dask sends what plain pickle cannot by value (cloudpickle). ``client.submit`` of a
        task it cannot serialize registers the task's future first and then raises its own
        "Could not serialize object of type LLGExpr", which names neither `fun` nor what
        failed, and leaves that future in ``client.futures``; checking first sends nothing.
        """
        cloudpickle = sys.modules.get("cloudpickle")  # imported by distributed
        if cloudpickle is None:
            return
        try:
            cloudpickle.dumps((fun, args))
        except Exception as exc:
            raise TypeError(UNPICKLABLE_ON_DASK.format(exc=exc)) from exc

    def ship(self, value: object) -> tuple[object, int]:
        """Return `value` to travel inside its task, or, if large, its future on one worker.

        Inline rows cannot be lost: a worker that dies (say, killed by another task's
        candidate) loses the data scattered to it, and the tasks that need that data then fail
        without any fault of their rows. Blocks above ``SHIP_INLINE_BYTES`` are scattered
        rather than put into the task graph; they are sent again when their task runs again.
        """
        size = nbytes(value)
        if size <= SHIP_INLINE_BYTES:
            return value, 0
        return self.client.scatter(value, hash=False), size

    def broadcast(self, value: object) -> tuple[object, int]:
        """Scatter `value` to every worker; return its future and the bytes sent in all."""
        fut = self.client.scatter(value, broadcast=True, hash=False)
        return fut, nbytes(value) * self._n_procs()

    def run_everywhere(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on every worker (the cluster may be gone already)."""
        with contextlib.suppress(Exception):
            self.client.run(fn, *args)


#: seconds between the checks of a dask cluster's workers while a result is awaited
NO_WORKERS_POLL = 2.0
#: seconds a dask cluster may have no worker before a ``NESWarning`` says so
NO_WORKERS_WARN = 30.0
#: seconds the client's own dask cluster may lack workers it asks for before it is asked to
#: start them again (a cluster scaling up lacks them for a few seconds too)
REVIVE_AFTER = 10.0


class NoWorkers:
    """The no-worker warning of one wait for a result on a dask cluster.

    `tick` is told how many workers the cluster has at each check; once it has had none for
    `NO_WORKERS_WARN` seconds of this wait, a ``NESWarning`` says so, once. A wait starts with
    a new instance, so time without workers in an earlier wait does not count.
    """

    def __init__(self) -> None:
        self.since: float | None = None  # since when, in this wait, there has been no worker
        self.warned = False

    def tick(self, workers: int, now: float) -> None:
        """Record that the cluster has `workers` workers at the monotonic time `now`."""
        if workers:
            self.since = None
            return
        if self.since is None:
            self.since = now
        if not self.warned and now - self.since >= NO_WORKERS_WARN:
            self.warned = True
            _warn.warn(
                f"the dask cluster has had no worker for {now - self.since:.0f} s; the "
                "evaluation waits for workers, as dask does. A cluster closes for good a "
                "worker still absent when distributed.deploy.lost-worker-timeout (15 s) "
                "has passed since it died, as when candidates kill their workers again "
                "and again; the evaluator restarts them only on a cluster of this process "
                "(client.cluster): add workers, or start a new cluster; Ctrl-C stops the "
                "run.",
                stacklevel=3,
            )


#: the largest block of rows a dask task carries inline (larger ones are scattered first)
SHIP_INLINE_BYTES = 1 << 20

#: seconds a restart of hung dask workers may take (the nanny gives a worker a few seconds to
#: close before it kills the process, then starts a new one)
RESTART_TIMEOUT = 60.0


def _lost_worker_timeout() -> float:
    """Return dask's ``distributed.deploy.lost-worker-timeout`` in seconds (15 if unknown)."""
    dask = sys.modules.get("dask")
    try:
        value = dask.config.get("distributed.deploy.lost-worker-timeout")  # type: ignore[union-attr]
        parsed = sys.modules["dask.utils"].parse_timedelta(value, "s")
        return float(parsed) if 0 <= float(parsed) < 3600 else 15.0
    except Exception:
        return 15.0


def is_dask_client(obj: object) -> bool:
    """Return whether `obj` is a dask ``distributed.Client`` (without importing dask)."""
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "scatter")


#: the most processes ``workers=<int>`` starts: each is an interpreter of its own, started
#: before the first evaluation (10**6 of them was taken, and spawned until the machine gave out)
MAX_PROCESSES = 1024


def check_workers(workers: object) -> None:
    """Raise the error of :func:`make_engine` for a malformed `workers`, building nothing."""
    if isinstance(workers, numbers.Integral) and not isinstance(workers, bool):
        n = int(workers)
        if n == 0 or n < -1 or n > MAX_PROCESSES:
            raise ValueError(
                f"`workers` must be a number of processes from 1 to {MAX_PROCESSES} or -1 "
                f"(one per core), but got {n}."
            )
    elif not (
        workers is None
        or is_dask_client(workers)
        or (isinstance(workers, types.ModuleType) and workers.__name__ == "ray")
        or isinstance(workers, Executor)
        or callable(workers)
    ):
        raise _bad_workers(workers)


def _bad_workers(workers: object) -> TypeError:
    return TypeError(
        "`workers` must be None, a number of processes, a map-like callable, a "
        "concurrent.futures.Executor, a dask Client or the ray module, but got "
        f"{short(workers)}."
    )


def make_engine(workers: EngineLike) -> Engine:
    """Return the engine for a `workers` argument, or raise naming it.

    None or 1: :class:`Serial`; an int: a :class:`ProcessPool` of that size (-1: one per
    core); a dask Client: :class:`DaskEngine`; the ``ray`` module: :class:`RayEngine`; an
    Executor: :class:`ExecutorEngine`; another callable: :class:`MapEngine`.
    """
    check_workers(workers)
    if workers is None:
        return Serial()
    if isinstance(workers, numbers.Integral) and not isinstance(workers, bool):
        n = int(workers)
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
    raise _bad_workers(workers)


class RayActor:
    """A Ray actor's body: runs tasks in its own worker process, which keeps the replicas."""

    def run(self, fn: Callable[..., object], *args: object) -> object:
        """Return ``fn(*args)`` (Ray has already fetched the object-store arguments)."""
        return fn(*args)


#: a task waiting for an idle Ray actor: the function, its arguments and its future
_Waiting = tuple[Callable[..., object], tuple[object, ...], Future[Any]]


class RayEngine(Engine):
    """A Ray cluster (the ``ray`` module): one actor per CPU, started on first use.

    Each actor is a worker process that lives across generations, so it keeps replicas of the
    strategy (replay mode) like a dask worker; a broadcast is put into the object store once
    (``ray.put``) and the tasks carry its reference. A task goes to an idle actor only (the
    others wait here, in submission order), so an actor that hangs or dies takes no further
    task with it; when the last actor dies, the tasks still waiting never started and are
    cancelled, which the evaluator takes as innocent (they run again). After a lost task the
    evaluator calls :meth:`reset`, which kills the actors;
    fresh ones start on next use and the lost candidates run again there. The cluster stays
    the caller's; :meth:`close` kills only the engine's actors. Actors end with the
    connection that started them (``ray.shutdown()``): the engine then forgets them, starts
    fresh ones on next use in the connection of that time, and never connects to Ray to
    kill actors that are gone.
    """

    keeps_replicas = True

    def __init__(self, ray: types.ModuleType, n: int | None = None) -> None:
        self.ray = ray
        self.n = n
        #: the connection (job and node ids) in which the actors were started
        self._session: tuple[str, str] | None = None
        self._actors: list[Any] = []
        self._idle: list[Any] = []
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._lock = threading.Lock()

    def _cpus(self) -> int:
        """Return the number of actors to start: `n`, or one per CPU of the cluster."""
        if self.n is not None:
            return self.n
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def size(self) -> int:
        """Return the number of actors."""
        return len(self._actors) or self._cpus()

    def _connection(self) -> tuple[str, str] | None:
        """Return this process's connection to Ray (job and node ids), None without one."""
        if not self.ray.is_initialized():
            return None
        ctx = self.ray.get_runtime_context()
        return str(ctx.get_job_id()), str(ctx.get_node_id())

    def _live_actors(self) -> list[Any]:
        """Return the actors, after forgetting those of an earlier connection (ended with it)."""
        if self._actors and self._connection() != self._session:
            with self._lock:
                self._actors, self._idle = [], []
        return self._actors

    def start(self) -> None:
        """Start the actors (``ray.init()`` first if needed) and wait until each runs."""
        if self._live_actors():
            return
        ray = self.ray
        if not ray.is_initialized():
            ray.init()
        cls = ray.remote(num_cpus=1, max_restarts=0)(RayActor)
        actors = [cls.remote() for _ in range(self._cpus())]
        try:
            self._await_start(actors)
        except BaseException:  # Ctrl-C while waiting: no actor of ours is left behind
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            raise
        with self._lock:
            self._actors, self._idle = actors, list(actors)
            self._session = self._connection()

    def _await_start(self, actors: list[Any]) -> None:
        """Wait until every new actor runs; say so once it has waited `NO_WORKERS_WARN` s.

        Each actor reserves a CPU, so an actor the cluster has no free CPU for (all held by
        the actors of another evaluator that is still open, say) waits until one is freed or
        added, as Ray does; before, that wait was silent, and the evaluation's `timeout`
        (which counts from the start) never came.
        """
        refs = [a.run.remote(ready) for a in actors]
        t0 = time.monotonic()
        pending, warned = refs, False
        while pending:
            _, pending = self.ray.wait(pending, num_returns=len(pending), timeout=NO_WORKERS_POLL)
            waited = time.monotonic() - t0
            if pending and not warned and waited >= NO_WORKERS_WARN:
                warned = True
                _warn.warn(
                    f"{len(pending)} of the evaluator's {len(actors)} Ray actors have not "
                    f"started in {waited:.0f} s: each reserves one CPU, and the cluster has "
                    "none free for them (the actors of another Evaluator still open hold "
                    "CPUs until it is closed). The evaluation waits for CPUs, as Ray does: "
                    "close the evaluators you no longer use, or add CPUs; Ctrl-C stops it.",
                    stacklevel=4,
                )
        self.ray.get(refs)  # an actor that died at start raises here

    def submit(self, fn: Callable[..., object], *args: object) -> Future[Any]:
        """Run ``fn(*args)`` on the next idle actor; return a concurrent future at once."""
        self.start()
        fut: Future[Any] = Future()
        with self._lock:
            self._waiting.append((fn, args, fut))
        self._hand_out()
        return fut

    def _hand_out(self) -> None:
        """Give waiting tasks to idle actors (a cancelled task is dropped)."""
        started = []
        with self._lock:
            while self._idle and self._waiting:
                fn, args, fut = self._waiting.popleft()
                if not fut.set_running_or_notify_cancel():
                    continue
                actor = self._idle.pop(0)
                started.append((actor, fut, actor.run.remote(fn, *args).future()))
        for actor, fut, ref in started:  # outside the lock: a finished ref calls back at once
            ref.add_done_callback(functools.partial(self._finished, actor, fut))

    def _finished(self, actor: Any, fut: Future[Any], ref: Future[Any]) -> None:
        """Pass an actor's outcome to `fut`; an actor still alive takes the next task."""
        exc = ref.exception()
        if exc is None:
            fut.set_result(ref.result())
        else:
            fut.set_exception(exc)
        died = isinstance(exc, self.ray.exceptions.RayActorError)
        orphans: list[Future[Any]] = []
        with self._lock:
            current = any(a is actor for a in self._actors)
            if current and not died:
                self._idle.append(actor)
            elif current:
                self._actors = [a for a in self._actors if a is not actor]
                if not self._actors:  # no actor left to run what waits: it never started,
                    orphans = [f for _, _, f in self._waiting]  # so it is cancelled (the
                    self._waiting.clear()  # evaluator runs it again, on fresh actors)
        for f in orphans:
            f.cancel()
        self._hand_out()

    def locate(self, futs: list[Future[Any]]) -> list[bool] | None:
        """Return, for each task abandoned at the timeout, whether an actor was running it.

        A task still waiting here for an idle actor was cancelled by :meth:`abandon`: it never
        started, and its candidates are innocent.
        """
        return [f.running() for f in futs]

    def broadcast(self, value: object) -> tuple[object, int]:
        """Put `value` into the object store; return its reference and the bytes sent.

        Each node of the cluster fetches the object once, and its actors read it from
        shared memory: the bytes are counted once per node.
        """
        nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        return self.ray.put(value), nbytes(value) * max(1, nodes)

    def run_everywhere(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on every actor (ignoring actors that are gone)."""
        refs = [a.run.remote(fn, *args) for a in self._live_actors()]
        if not refs:
            return
        with contextlib.suppress(Exception):
            self.ray.get(refs, timeout=30)

    def reset(self) -> None:
        """Kill the actors (hung or dead); fresh ones start on next use."""
        self._live_actors()  # those of an earlier connection are gone already
        with self._lock:
            actors, self._actors, self._idle = self._actors, [], []
            waiting = [f for _, _, f in self._waiting]
            self._waiting.clear()
        for f in waiting:
            f.cancel()
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)

    def close(self) -> None:
        """Kill the engine's actors; the cluster stays."""
        self.reset()
