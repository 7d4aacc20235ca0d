"""Evaluate a population: :class:`Evaluator` (reused across generations) and :func:`evaluate`.

Three ways to move a population to the workers of an engine (``_backends``):

* ``"vectors"``: each task carries its rows of ``X`` (8 d bytes per candidate).
* ``"seeds"``: for a strategy with counter-based noise (any `rng` but a legacy RandomState)
  and a diagonal perturbation, each task carries the keys of its candidates; the worker
  rebuilds them from the mean, the step sizes and the keys. On a dask ``Client`` the mean is
  broadcast once per generation, so a generation moves a few mean-sized messages instead of
  the whole population.
* ``"replay"`` (dask ``Client`` only; what "auto" picks there): every worker keeps a replica of
  the strategy and replays the client's updates from their utilities, so a generation moves a
  few KB; the state travels on first contact and whenever a replica is missing or out of step.

Faults cost only their candidate. On the package's process pool and on a thread pool every
task records each row's progress on a shared-memory :class:`~nes_asktell._tasks.Board`; when a
task is lost (its worker died, or the timeout passed) the rows it finished keep their values,
the row its worker was evaluating gets NaN (if that worker died by itself, or was still running
at the deadline) and the other rows run again, one task per candidate. Elsewhere (dask, Ray,
other executors) a lost task's candidates (its worker died, or it was still running at the
deadline) run again once, one task per candidate, after the engine replaced its workers where
it can (Ray's actors); a candidate lost a second time gets NaN. On dask the workers say which
tasks their threads run at the deadline, and Ray's engine which tasks its actors run: a
candidate running then gets NaN, one still queued runs again, and with ``restart_workers`` the
dask workers holding hung calls restart. On a
``ThreadPoolExecutor`` the engine's spare threads take the place of those that hung calls hold
(:class:`~nes_asktell._backends.ExecutorEngine`). A worker's reply is checked for its shape
before it is used.

The evaluator reaches the strategy only through its narrow public methods (:class:`Keyed`),
and runs what ``_tasks`` defines on the workers.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
import pickletools
import signal
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError as FuturesCancelledError
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import _warn
from ._backends import Engine, EngineLike, MapEngine, ProcessPool, make_engine
from ._batch import KeyedBatch
from ._tasks import (
    DONE,
    MAX_ERROR_CHARS,
    NOT_STARTED,
    STARTED,
    UNPICKLABLE,
    Board,
    NoiseMismatchError,
    Replay,
    ReplicaMissingError,
    VectorizedCallError,
    as_value,
    block_values,
    drop_replicas,
    nbytes,
    replay_task,
    seeds_task,
    tracked_task,
    unpicklable,
    vectorized_task,
    vectors_task,
)
from ._typing import JSON, AppliedUpdate, ArrayLike, FloatArray
from ._validate import extra_args, real_rows, short

MODES = ("auto", "vectors", "seeds", "replay")
#: below this dimension ``mode="auto"`` ships vectors: rebuilding would cost more than it saves.
SEEDS_MIN_DIM = 10_000
_TIMEOUTS = (TimeoutError, FuturesTimeoutError)
#: how often one evaluation sends again what workers lost with a dead worker (dask's scattered
#: mean, scale and bounds): the tasks that needed it are cancelled, not failed by their rows
MAX_RESENDS = 3
#: the longest `timeout` that is a limit: a longer one is none (no wait can be longer)
MAX_TIMEOUT = threading.TIMEOUT_MAX
_SIGTERM = int(signal.SIGTERM)


@runtime_checkable
class Keyed(Protocol):
    """What evaluation needs of a strategy (see :class:`nes_asktell.Strategy`)."""

    @property
    def dim(self) -> int: ...

    @property
    def generation(self) -> int: ...

    @property
    def rows_from_keys(self) -> bool: ...

    def ask(self) -> FloatArray: ...

    def batch_keys(self, X: FloatArray) -> KeyedBatch | None: ...

    def recent_updates(self) -> tuple[AppliedUpdate, ...]: ...

    def replica_state(self) -> JSON: ...

    def digest(self) -> bytes: ...


class Evaluator:
    """Evaluate populations with the chosen `workers`, reused across generations.

    Parameters
    ----------
    workers : None, int, map-like callable, Executor, dask Client, the ray module or Evaluator
        See :func:`nes_asktell.evaluate`. A process pool (an int) starts on first use and is
        kept for the whole interpreter, shared by every evaluator of that size (a second
        ``optimize(workers=4)`` reuses it); :func:`nes_asktell.shutdown_pools` (also run at
        exit) shuts it down. Evaluations from several threads take turns on it, so that a
        fault in one (which replaces the pool) costs the others nothing. An Executor or Client
        you pass stays yours to close.
    timeout : float, optional
        Seconds one :meth:`evaluate` call may take (pools, Executors and Clients; None,
        ``inf`` or a timeout beyond ``threading.TIMEOUT_MAX``, the longest wait Python can
        make: no limit); the
        candidates re-run after a fault get a fresh `timeout` of their own. On a
        ``ThreadPoolExecutor`` a call hung past it keeps its thread (a thread cannot be
        stopped), and the evaluator starts a spare thread of its own in its place, so that
        the next candidates and later evaluations keep the pool's parallelism. The spare
        threads follow the number of threads held (fewer as hung calls return) and never
        outnumber the pool's threads that ran the evaluator's calls, hung spare threads
        included; :meth:`close` shuts them down without waiting for a hung call.
    mode : {"auto", "vectors", "seeds", "replay"}, optional
        How candidates reach the workers (see :func:`nes_asktell.evaluate`): "replay" keeps a
        replica of the strategy on each dask worker or Ray actor, which redraws a generation's
        noise to replay the update instead of receiving the mean: network traffic traded for
        worker compute. Default (None): the mode of an Evaluator passed as `workers`, else
        "auto"; a mode given here, "auto" included, overrides the lent one.
    tasks : int, optional
        How many tasks a generation is split into (pools, Executors and Clients). Default:
        the engine's size: the pool's processes, a Client's worker threads, an Executor's
        public ``num_workers`` (``mpi4py.futures``) or else the machine's CPU count. Give it
        for an Executor whose size is not public, such as dask's ``client.get_executor()``.
        With a `timeout`, on a dask Client, Ray or an Executor other than a thread pool, the
        default is one task per candidate (not vectorized): nothing tells which row of a
        timed-out task hung, so each candidate is its own task and a hang costs only itself.
    vectorized : bool, optional
        Evaluate each task's candidates in one call ``fun(X.T, *args)`` (see
        :func:`nes_asktell.evaluate`). ``Strategy.optimize(fun, workers=Evaluator(None,
        vectorized=True))`` runs a whole optimization so.
    restart_workers : bool, optional
        On a dask Client with a `timeout`: restart the worker processes whose threads still
        run a candidate at the timeout (``Client.restart_workers``, through their nannies),
        so that the next evaluation has threads again (see :func:`nes_asktell.evaluate`).
        Default False: the Client and its workers are yours, and a restart discards
        whatever else those workers hold or run. Inherited from an Evaluator passed as
        `workers` unless given.

    Attributes
    ----------
    last_bytes : int
        Serialized bytes sent to and received from the workers by the latest :meth:`evaluate`
        (pickle protocol 5 sizes of the tasks, of what is scattered and of the results; a
        broadcast counts once per worker process, and so does a resent strategy state; 0 when
        serial).

    Raises
    ------
    TypeError, ValueError
        From the constructor, for the arguments :func:`nes_asktell.evaluate` rejects (see its
        Raises); from :meth:`evaluate`, as that function raises them.

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

    _engine: Engine
    _timeout: float | None
    _mode: str
    _tasks: int | None
    _vectorized: bool
    _restart: bool

    def __init__(
        self,
        workers: WorkersLike = None,
        *,
        timeout: float | None = None,
        mode: str | None = None,
        tasks: int | None = None,
        vectorized: bool | None = None,
        restart_workers: bool | None = None,
    ) -> None:
        if mode is not None and not isinstance(mode, str):
            raise TypeError(f"`mode` must be one of {MODES} or None, but got {short(mode)}.")
        if mode is not None and mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES} or None, but got {short(mode)}.")
        if vectorized is not None and not isinstance(vectorized, (bool, np.bool_)):
            raise TypeError(f"`vectorized` must be True or False, but got {short(vectorized)}.")
        if restart_workers is not None and not isinstance(restart_workers, (bool, np.bool_)):
            raise TypeError(
                f"`restart_workers` must be True or False, but got {short(restart_workers)}."
            )
        if tasks is not None:
            if isinstance(tasks, bool) or not isinstance(tasks, numbers.Integral):
                raise TypeError(f"`tasks` must be a positive integer, but got {short(tasks)}.")
            if tasks < 1:
                raise ValueError(f"`tasks` must be a positive integer, but got {short(tasks)}.")
        if isinstance(workers, Evaluator):
            # Share its engine (and pool); its timeout, mode and tasks apply unless given here.
            engine, owned = workers._engine, False
            timeout = workers._timeout if timeout is None else timeout
            mode = workers._mode if mode is None else mode
            tasks = workers._tasks if tasks is None else tasks
            vectorized = workers._vectorized if vectorized is None else vectorized
            restart_workers = workers._restart if restart_workers is None else restart_workers
        else:
            engine = make_engine(workers)
            owned = not isinstance(engine, ProcessPool)  # pools are shared: shutdown_pools()
        if mode is None:
            mode = "auto"
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
                raise TypeError(f"`timeout` must be a positive number, but got {short(timeout)}.")
            try:
                seconds = float(timeout)
            except OverflowError:  # an int beyond the float range
                seconds = math.inf if timeout > 0 else -math.inf
            if not seconds > 0:
                raise ValueError(f"`timeout` must be a positive number, but got {short(timeout)}.")
            # inf is no limit, as None (a deadline at inf overflowed the waits: every
            # candidate failed with "timestamp out of range"), and so is any timeout longer
            # than a wait can be (threading.TIMEOUT_MAX, about 292 years on 64-bit Linux:
            # 1e10 s overflowed the waits the same way)
            timeout = None if seconds >= MAX_TIMEOUT else seconds
            if timeout is not None and not engine.takes_tasks:
                raise ValueError(
                    "`timeout` needs workers that return futures (a number of processes, an "
                    "Executor, a dask Client or the ray module), but got "
                    f"workers={short(workers)}."
                )
        vectorized = bool(vectorized)
        restart_workers = bool(restart_workers)
        if restart_workers and not engine.restarts_workers:
            raise ValueError(
                "`restart_workers` needs a dask Client (whose nannies can restart a worker "
                "process); a process pool and Ray replace hung workers anyway, and a thread "
                f"cannot be stopped; but got restart_workers=True with workers={short(workers)}."
            )
        if restart_workers and timeout is None:
            raise ValueError(
                "`restart_workers` restarts the workers still running a candidate at the "
                "`timeout`, but got restart_workers=True with timeout=None."
            )
        if vectorized and isinstance(engine, MapEngine):
            raise ValueError(
                "`vectorized` needs workers that take the population as a whole (None, a "
                "number of processes, an Executor, a dask Client or the ray module); a map-like "
                "callable receives single rows."
            )
        if vectorized and mode in ("seeds", "replay"):
            raise ValueError(
                f"`vectorized` ships the candidates as vectors, but `mode` is {mode!r}; use "
                "mode='auto' or 'vectors'."
            )
        if mode == "seeds" and isinstance(engine, MapEngine):
            raise ValueError(
                "`mode` 'seeds' needs workers that take tasks (a number of processes, an "
                "Executor, a dask Client or the ray module); a map-like callable receives single "
                "rows."
            )
        if mode == "replay" and not engine.keeps_replicas:
            raise ValueError(
                "`mode` 'replay' needs a dask Client or the ray module (their workers keep "
                "replicas of the strategy between generations), but got "
                f"workers={short(workers)}; use mode='seeds'."
            )
        self._engine = engine
        self._owns_engine = owned
        self._timeout = None if timeout is None else float(timeout)
        self._mode = mode
        self._tasks = None if tasks is None else int(tasks)
        self._vectorized = vectorized
        self._restart = restart_workers
        #: what the engine reported about hung workers during the latest evaluation
        self._notes: list[str] = []
        #: False once a worker could not rebuild candidates from keys: vectors from then on.
        self._seeds_ok = True
        #: {name: (array, handle)} broadcast to every worker, kept while the same array.
        self._broadcast: dict[str, tuple[object, object]] = {}
        #: within one evaluation, after a worker died with what was broadcast: the tasks carry
        #: those inputs themselves (they cannot be lost again), see :meth:`_bcast`
        self._inline = False
        #: replay mode: the run whose replicas the workers hold (a token per strategy).
        self._token = ""
        self._token_of: weakref.ref[Keyed] | None = None
        self.last_bytes = 0

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
        """Free worker replicas and spare threads; close nothing shared or passed in.

        Spare threads (see `timeout`) are shut down without waiting for a hung call; a
        process pool is shared (see :func:`nes_asktell.shutdown_pools`).
        """
        self._broadcast.clear()
        self._drop_replicas()
        if self._owns_engine:
            self._engine.close()

    def _drop_replicas(self) -> None:
        """Free the workers' replicas of this evaluator's run (replay mode)."""
        if self._token:
            self._engine.run_everywhere(drop_replicas, self._token)
            self._token, self._token_of = "", None

    # ------------------------------------------------------------------ evaluation
    def check_call(
        self, fun: object, args: object = (), strategy: Keyed | None = None
    ) -> tuple[object, ...]:
        """Return `args` as a tuple, or raise if `fun` cannot run on these workers.

        TypeError when `fun` is not callable, `args` is not a sequence, or they cannot be
        pickled to other processes (a process pool); ValueError when `mode` ships keys
        ("seeds", "replay") and `strategy` cannot rebuild its candidates from keys (its
        ``rows_from_keys`` is False). A caller checks them before it asks for a batch, so
        that a rejected call leaves the strategy as it was.
        """
        if not callable(fun):
            raise TypeError(f"`fun` must be callable, but got {short(fun)}.")
        args = extra_args(args)
        keyed = self._mode in ("seeds", "replay") and self._seeds_ok
        if keyed and strategy is not None and not strategy.rows_from_keys:
            raise ValueError(
                f"`mode` is {self._mode!r}, but the candidates of {type(strategy).__name__} "
                "cannot be rebuilt from keys (its `rows_from_keys` is False): that needs "
                "counter-based noise (any `rng` but a legacy RandomState) and a diagonal "
                "perturbation (OpenES, SNES); use mode='auto' or 'vectors'."
            )
        engine = self._engine
        if engine.takes_tasks and engine.isolates_retries:
            # our spawned pool: say early that fun cannot travel
            _check_picklable(fun, args, main=True)
        elif engine.takes_tasks and _in_user_processes(engine):
            _check_picklable(fun, args, main=False)  # its start method is the user's choice
        engine.check_payload(fun, args)
        return args

    def evaluate(
        self,
        fun: Callable[..., object],
        X: FloatArray,
        args: Sequence[object] = (),
        *,
        strategy: Keyed | None = None,
    ) -> FloatArray:
        """Return ``[fun(x, *args) for x in X]`` as a float64 array.

        `X` is an (n, d) array of real numbers (a float array is passed on as it is, other
        numbers as float64); anything else raises TypeError or ValueError naming `X` before
        `fun` runs. `fun` cannot change `X`: in this process it is given read-only rows of it.
        With `strategy`, `X` must be the first rows of its pending batch; the rows may then be
        rebuilt by the workers from keys (``mode`` "auto", "seeds" or "replay").
        """
        args = self.check_call(fun, args, strategy)
        X = candidate_rows(X, "X", "an (n, d) array")
        if X.flags.writeable:
            # the caller's own candidates: `fun` reads them in this process, never edits them
            X = X.view()
            X.flags.writeable = False
        self.last_bytes = 0
        self._notes = []
        n = len(X)
        engine = self._engine
        if not n:  # no candidate, no task (splitting nothing into tasks raised ValueError)
            return np.zeros(0)
        if self._vectorized and not engine.takes_tasks:  # serial: one call, errors propagate
            return block_values(fun(X.T, *args), n, fun)
        if not engine.takes_tasks:  # serial: exceptions propagate, as in scipy's own loops
            ys = engine.map(_Call(fun, args), list(X))
            return np.array([as_value(y, fun) for y in ys], dtype=np.float64)
        plan = None
        keyed = self._mode in ("seeds", "replay")
        wanted = keyed or (strategy is not None and strategy.dim >= SEEDS_MIN_DIM)
        if self._vectorized:
            wanted = False
        if wanted and self._mode != "vectors" and self._seeds_ok and strategy is not None:
            plan = strategy.batch_keys(X)
        if keyed and self._seeds_ok and plan is None:
            raise ValueError(
                f"`mode` is {self._mode!r}, but these candidates cannot be rebuilt from keys: "
                "that needs the strategy's pending batch, counter-based noise (any `rng` but a "
                "legacy RandomState) and a diagonal perturbation (OpenES, SNES); XNES ships "
                "vectors."
            )
        with engine.hold():  # a shared process pool: evaluations in other threads wait
            try:
                values, errors = self._dispatch(fun, args, X, strategy, plan)
            except BaseException:
                # Ctrl-C (or any error) during an evaluation: nothing may outlive it, so the
                # busy workers of a process pool (or Ray's actors) are killed, not awaited.
                engine.reset()
                raise
        if errors:
            bad = int(np.count_nonzero(~np.isfinite(values)))
            _warn.warn(
                f"{bad} of {n} candidates have no finite fitness (ranked worst); "
                f"{len(errors)} failure(s), the first: {errors[0]}",
                stacklevel=2,
            )
        for note in self._notes:
            _warn.warn(note, stacklevel=2)
        return values

    def _dispatch(
        self,
        fun: Callable[..., object],
        args: tuple[object, ...],
        X: FloatArray,
        strategy: Keyed | None,
        plan: KeyedBatch | None,
    ) -> tuple[FloatArray, list[str]]:
        """Evaluate `X` on the engine's workers; return the values and the failures.

        With a `plan` the candidates travel as keys (replay mode where workers keep
        replicas, seeds mode elsewhere), otherwise as rows. A candidate without a value gets
        NaN. The rows of a task lost with its worker are run again, one task per candidate
        (those lost again along with others once more, each by itself: a loss then is its
        own); on a process pool the board (:class:`~nes_asktell._tasks.Board`) tells which row
        caused the loss (it alone gets NaN) and which rows had finished (their values kept).
        """
        engine = self._engine
        n = len(X)
        replay = engine.keeps_replicas and self._mode in ("auto", "replay")
        send_state = False
        fresh = self._token_of is None or self._token_of() is not strategy
        if plan is not None and replay and strategy is not None and fresh:
            self._drop_replicas()  # those of the previous run
            self._token, self._token_of = uuid.uuid4().hex, weakref.ref(strategy)
            send_state = True  # first contact: the workers install the replica
        values = np.full(n, np.nan)
        errors: list[str] = []
        engine.start()  # start-up is not evaluation time
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        tracked = engine.tracks_rows()
        if self._tasks is not None:
            size = self._tasks
        elif self._timeout is not None and not tracked and not self._vectorized:
            # Without a board a timed-out task cannot say which of its rows hung: with one
            # candidate per task a hang costs only its candidate (and its worker's thread).
            size = n
        else:
            size = engine.size()
        chunks = [c for c in np.array_split(np.arange(n), min(size, n)) if c.size]
        todo = list(range(len(chunks)))
        lost_once = np.zeros(n, dtype=bool)  # lost without a culprit once: the next loss is final
        alone: list[int] = []  # lost twice, each time with others: each runs once more by itself
        isolated = False  # whether this round runs one candidate by itself
        board = Board(n) if tracked and n else None
        state: Any = None
        resends = 0
        rounds = 0
        try:
            while todo:
                if plan is not None and replay and strategy is not None:
                    if send_state and state is None:
                        blob = pickle.dumps((type(strategy), strategy.replica_state()), protocol=5)
                        state, sent = (blob, 0) if self._inline else engine.broadcast(blob)
                        self.last_bytes += sent
                    tasks = self._replay_tasks(fun, args, plan, strategy, state, chunks, todo)
                elif plan is not None:
                    tasks = self._seeds_tasks(fun, args, plan, chunks, todo)
                else:
                    tasks = {}
                    for i in todo:
                        rows, sent = engine.ship(X[chunks[i][0] : chunks[i][-1] + 1])
                        self.last_bytes += sent
                        task = vectorized_task if self._vectorized else vectors_task
                        tasks[i] = (task, fun, args, rows)
                if board is not None:
                    board.clear([k for i in todo for k in chunks[i].tolist()])
                    tasks = {
                        i: (
                            tracked_task,
                            board.name,
                            n,
                            chunks[i].tolist(),
                            board.ticket[chunks[i]].tolist(),
                            *t,
                        )
                        for i, t in tasks.items()
                    }
                stale: list[int] = []
                orphaned: list[int] = []
                ran: list[bool] = []  # whether a row of the round started (or may have)
                epoch = engine.epoch
                outcome = self._run(
                    tasks, chunks, values, errors, deadline, board, stale, orphaned, ran
                )
                rounds += 1
                if engine.epoch != epoch or orphaned:  # workers lost what was broadcast
                    self._broadcast.clear()
                    state = None
                if isinstance(outcome, NoiseMismatchError):
                    self._seeds_ok, plan = False, None
                    _warn.warn(
                        f"a worker cannot rebuild candidates from keys ({outcome}); "
                        "shipping vectors from now on.",
                        stacklevel=3,  # the caller of Evaluator.evaluate
                    )
                    todo = [i for i in todo if np.isnan(values[chunks[i]]).all()]
                    continue
                rerun, blamed = outcome
                if rounds > 1 and rerun and not ran and board is not None:
                    # A round after a fault in which no row started before the deadline: on a
                    # pool whose tasks wait in one queue (a thread pool and its spare threads)
                    # no thread was free, every one held by a hung call. The rows waiting get
                    # NaN now, not one more timeout each. (On dask a task waits on the worker
                    # it was given, behind a hung call, while another worker may be free: it
                    # runs again, and work stealing or the call's return frees it.)
                    errors.append(
                        f"{len(rerun)} candidates found no free thread within the timeout "
                        "(every thread held by a call hung past an earlier timeout)"
                    )
                    rerun = []
                if orphaned and resends < MAX_RESENDS:
                    # Their inputs died with a worker: not a loss of theirs. They run again
                    # with the inputs inside their tasks, which no dead worker can take away.
                    resends += 1
                    spare = orphaned
                    self._inline = True
                else:
                    spare = []
                    if orphaned:
                        errors.append(f"the inputs of {len(orphaned)} candidates were lost")
                        rerun = sorted(rerun + orphaned)
                if stale and send_state:  # the state itself installs a replica: should not happen
                    errors.append("a worker could not install the strategy's replica")
                    rerun, stale = sorted(rerun + [k for i in stale for k in chunks[i]]), []
                # A task whose worker has no replica in step is resent with the state.
                send_state = send_state or bool(stale)
                if not blamed:  # no culprit found: a row may be lost so only once
                    again = [k for k in rerun if lost_once[k]]
                    # Lost again by itself (alone on the workers, or the only row lost): its
                    # own fault. Lost again with others: dask fails every task queued on a
                    # worker that dies, so an innocent row that shared the culprit's workers
                    # is lost with it; each of them runs once more by itself.
                    final = again if isolated or len(again) == 1 else []
                    if final:
                        errors.append(f"{len(final)} candidates lost with their worker")
                    alone.extend(k for k in again if k not in final)
                    lost_once[rerun] = True
                    rerun = [k for k in rerun if k not in set(again)]
                # The innocent rows of a lost task run again, one task per candidate.
                rerun = sorted(rerun + spare)
                isolated = not rerun and not stale and bool(alone)
                if isolated:
                    rerun = [alone.pop(0)]
                todo = stale + list(range(len(chunks), len(chunks) + len(rerun)))
                chunks.extend(np.array([k]) for k in rerun)
                if rerun and self._timeout is not None:
                    engine.start()  # a pool reset after a fault starts again off the clock
                    deadline = time.monotonic() + self._timeout  # a fresh clock for the re-run
        finally:
            self._inline = False
            if board is not None:
                board.void()  # a task abandoned on a thread runs none of its rows left
                board.close(unlink=True)
        self._broadcast.pop("mean", None)
        return values, errors

    def _bcast(self, name: str, value: object) -> object:
        """Broadcast `value` to every worker once (kept while it is the same array).

        After a worker died with what was broadcast (``_inline``), `value` itself: each task
        carries it.
        """
        if not isinstance(value, np.ndarray) or self._inline:
            return value
        held = self._broadcast.get(name)
        if held is not None and held[0] is value:
            return held[1]
        handle, sent = self._engine.broadcast(value)
        self.last_bytes += sent
        self._broadcast[name] = (value, handle)
        return handle

    def _replay_tasks(
        self,
        fun: Callable[..., object],
        args: tuple[object, ...],
        plan: KeyedBatch,
        strategy: Keyed,
        state: Any,
        chunks: list[np.ndarray],
        todo: list[int],
    ) -> dict[int, tuple[Any, ...]]:
        replay = Replay(self._token, strategy.recent_updates(), strategy.digest())
        return {
            i: (replay_task, fun, args, plan.keys, replay, state, chunks[i].tolist()) for i in todo
        }

    def _seeds_tasks(
        self,
        fun: Callable[..., object],
        args: tuple[object, ...],
        plan: KeyedBatch,
        chunks: list[np.ndarray],
        todo: list[int],
    ) -> dict[int, tuple[Any, ...]]:
        m = self._bcast("mean", plan.mean)
        s = self._bcast("scale", plan.scale)
        box = plan.box
        lo = None if box is None else self._bcast("lower", box.lower)
        hi = None if box is None else self._bcast("upper", box.upper)
        return {
            i: (seeds_task, fun, args, plan.keys, m, s, lo, hi, chunks[i].tolist()) for i in todo
        }

    def _run(
        self,
        tasks: dict[int, tuple[Any, ...]],
        chunks: list[np.ndarray],
        values: FloatArray,
        errors: list[str],
        deadline: float | None,
        board: Board | None,
        stale: list[int],
        orphaned: list[int],
        ran: list[bool],
    ) -> tuple[list[int], bool] | NoiseMismatchError:
        """Run `tasks`; fill `values`; return the rows to run again and whether one was blamed.

        Tasks whose worker has no replica in step are appended to `stale`; the rows of tasks
        cancelled by the engine (dask cancels a task whose scattered inputs died with their
        worker) to `orphaned`; a noise mismatch is returned as such. `ran` gets True once a
        task is known to have started (or cannot be known not to have): it stays empty when
        every task timed out still queued.
        """
        engine = self._engine
        rerun: list[int] = []
        waited: list[int] = []  # rows of tasks that timed out without a board
        blamed = False
        crashed: list[int] = []
        crash_messages: list[str] = []
        timed_out = False
        lost = False
        late: list[tuple[int, Any]] = []  # tasks past the deadline without a board
        self.last_bytes += sum(nbytes(_wire(t[1:])) for t in tasks.values())
        futures = {i: engine.submit(*tasks[i]) for i in tasks}
        try:
            for i, fut in futures.items():
                rows = chunks[i]
                # A finished future is collected without a timeout: dask raises TimeoutError
                # for result(timeout=0) even when the result is there.
                left = None
                if deadline is not None and not fut.done():
                    left = max(0.0, deadline - time.monotonic())
                try:
                    reply = engine.result(fut, left)
                except _TIMEOUTS:
                    engine.abandon(fut)
                    timed_out = True
                    if board is None:  # sorted out below, once every task has been seen
                        late.append((i, fut))
                        continue
                    # The rows running at the deadline are the slow ones; those not started
                    # yet run again with a fresh clock.
                    st, _, val = board.snapshot()
                    if any(st[k] != NOT_STARTED for k in rows.tolist()):
                        ran.append(True)
                    for k in rows.tolist():
                        if st[k] == DONE:
                            values[k] = val[k]
                        elif st[k] == STARTED:
                            blamed = True
                            errors.append(f"timeout after {self._timeout} s (candidate {k})")
                        else:
                            rerun.append(k)
                    continue
                except NoiseMismatchError as exc:
                    _detached(exc)
                    return exc
                except ReplicaMissingError as exc:
                    _detached(exc)
                    ran.append(True)
                    stale.append(i)
                    continue
                except FuturesCancelledError as exc:  # never cancelled here but on Ctrl-C
                    _detached(exc)
                    ran.append(True)
                    orphaned.extend(rows.tolist())
                    continue
                except Exception as exc:
                    _detached(exc)
                    ran.append(True)
                    if unpicklable(exc):
                        raise TypeError(UNPICKLABLE.format(exc=exc)) from exc
                    if isinstance(exc, BrokenProcessPool) and _in_user_processes(engine):
                        # A spawned worker of the user's pool died: for want of __main__?
                        reason = _unimportable_main(tasks[i][1], pickle.dumps(tasks[i][1:3]))
                        if reason is not None:
                            raise TypeError(UNPICKLABLE.format(exc=reason)) from exc
                    message = f"{type(exc).__name__}: {str(exc)[:MAX_ERROR_CHARS]}"
                    if board is None or not isinstance(exc, BrokenProcessPool):
                        if not isinstance(exc, VectorizedCallError):  # the re-runs will say
                            errors.append(message)
                            lost = True  # its worker may be dead: replace it if the engine can
                        rerun.extend(rows.tolist())
                    else:
                        crashed.append(i)
                        crash_messages.append(message)
                    continue
                ran.append(True)
                checked = _checked_reply(reply, rows.size)
                if checked is None:
                    errors.append(f"a worker sent a malformed reply for {rows.size} candidates")
                    continue
                values[rows] = checked[0]
                errors.extend(checked[1])
                self.last_bytes += nbytes(reply)
        except BaseException:  # Ctrl-C: what has not started never will
            for fut in futures.values():
                fut.cancel()
            raise
        if late:
            # A single-candidate task that a worker's thread was running at the deadline
            # hangs: NaN. One still queued is innocent: it runs again with a fresh clock.
            # Where the engine cannot tell (or a task holds several rows), each runs again once.
            running = engine.locate([fut for _, fut in late])
            if running is None or any(running):
                ran.append(True)
            for j, (i, _) in enumerate(late):
                rows = chunks[i]
                if running is None or (running[j] and rows.size > 1):
                    errors.append(f"timeout after {self._timeout} s")
                    waited.extend(rows.tolist())
                elif running[j]:
                    blamed = True
                    errors.append(f"timeout after {self._timeout} s (candidate {int(rows[0])})")
                else:
                    rerun.extend(rows.tolist())
        if timed_out:
            note = engine.release_hung(self._restart)  # restart their workers where asked
            if note is not None:
                self._notes.append(note)
        if board is None and (lost or timed_out):
            engine.reset()  # dead or hung workers are replaced where the engine can (Ray)
        if board is not None and (crashed or timed_out):
            codes = engine.exit_codes() if crashed else {}
            engine.reset()
            st, pid, val = board.snapshot()
            found = len(errors)
            under_way = False  # whether a crashed task had a row under way
            shared = False  # whether a crashed call had several rows under way
            for i in crashed:
                # A vectorized call runs its rows together: which one killed the process is
                # unknown, so each runs again alone (the faulty one then dies by itself).
                together = sum(st[k] == STARTED for k in chunks[i].tolist()) > 1
                shared = shared or together
                for k in chunks[i].tolist():
                    under_way = under_way or st[k] == STARTED
                    if st[k] == DONE:
                        values[k] = val[k]
                    elif st[k] == STARTED and codes.get(int(pid[k])) != -_SIGTERM and not together:
                        # Its process died by itself while evaluating it (the pool
                        # terminates the others with SIGTERM): this row is the fault.
                        blamed = True
                        code = codes.get(int(pid[k]))
                        errors.append(
                            f"the worker died (exit code {code}) while evaluating candidate {k}"
                        )
                    else:
                        rerun.append(k)
            if crashed and len(errors) == found and not under_way:
                # the pool broke with no candidate under way: a worker died while idle
                self._notes.append(
                    f"a worker of the process pool died while idle ({crash_messages[0]}); "
                    "the pool was replaced and its candidates ran again"
                )
            elif crashed and len(errors) == found and not shared:
                errors.append(crash_messages[0])  # no row to blame: say what happened
        # Tasks start in the order they were sent: of those that timed out, the first ones
        # were the likeliest to be running (hung), the later ones to be waiting behind them.
        # The later ones run again first, so that they take the free threads.
        return sorted(rerun) + sorted(waited, reverse=True), blamed


def _detached(exc: BaseException) -> None:
    """Drop from `exc`, a task's failure, the frames of this process it passed through.

    dask keeps the exception of a failed task in its future's state for the client's life.
    With the frames that caught it in its traceback, their locals (every future, row and
    scattered block of the evaluation) stayed in memory and on the cluster as long.
    """
    exc.__traceback__ = None


def _checked_reply(reply: object, m: int) -> tuple[FloatArray, list[str]] | None:
    """Return a task's reply ``(values, errors)`` for `m` rows if well formed, else None.

    A worker's reply is untrusted: values must be `m` float64 numbers, errors at most `m`
    strings (each cut to ``MAX_ERROR_CHARS``).
    """
    if not isinstance(reply, tuple) or len(reply) != 2:
        return None
    vals, errs = reply
    if not isinstance(vals, np.ndarray) or vals.dtype != np.float64 or vals.shape != (m,):
        return None
    if not isinstance(errs, list) or len(errs) > m or not all(isinstance(e, str) for e in errs):
        return None
    return vals, [e[:MAX_ERROR_CHARS] for e in errs]


def _in_user_processes(engine: Engine) -> bool:
    """Return whether `engine` runs tasks in a user's ``ProcessPoolExecutor``."""
    return isinstance(getattr(engine, "executor", None), ProcessPoolExecutor)


def _check_picklable(fun: Callable[..., object], args: tuple[object, ...], *, main: bool) -> None:
    """Raise the UNPICKLABLE TypeError unless other processes can load `fun` and `args`.

    With `main`, a reference to ``__main__`` must also be importable by a spawned worker
    (see :func:`_unimportable_main`).
    """
    try:
        blob = pickle.dumps((fun, args))
    except Exception as exc:
        raise TypeError(UNPICKLABLE.format(exc=exc)) from exc
    reason = _unimportable_main(fun, blob) if main else None
    if reason is not None:
        raise TypeError(UNPICKLABLE.format(exc=reason))


def _unimportable_main(fun: Callable[..., object], blob: bytes) -> str | None:
    """Say why the pickle `blob` of `fun` cannot load in a spawned process, or return None.

    A spawned worker imports the main script again to find what the pickle names in
    ``__main__``; it cannot when the script came from stdin (``python - < script``) or
    ``python -c``, or in an interactive session: the main module then has no file.
    """
    main_module = sys.modules.get("__main__")
    path = getattr(main_module, "__file__", None)
    if getattr(main_module, "__spec__", None) is not None or (
        isinstance(path, str) and os.path.isfile(path)
    ):
        return None
    for op, arg, _ in pickletools.genops(blob):
        if (op.name == "GLOBAL" and str(arg).startswith("__main__ ")) or arg == "__main__":
            name = getattr(fun, "__qualname__", type(fun).__name__)
            return (
                f"{name!r} is defined in a __main__ module that other processes cannot "
                "import (a script read from stdin, `python -c` or an interactive session)"
            )
    return None


#: what ``workers=`` accepts: an engine's argument, or an Evaluator to share its workers.
WorkersLike = EngineLike | Evaluator


def _wire(obj: Any) -> Any:
    """Return `obj` with each dask future replaced by its key (what a task message carries)."""
    if isinstance(obj, tuple):
        return tuple(_wire(o) for o in obj)
    if type(obj).__name__ == "Future" and type(obj).__module__.startswith("distributed"):
        return obj.key
    return obj


def candidate_rows(value: object, name: str, want: str) -> FloatArray:
    """Return the candidates `value` as a 2-d float array, or raise naming `name`.

    A float array is taken as its plain array, in its dtype (a float32 batch stays float32);
    anything else is read as float64. `want` says what `name` must be (``"an (n, d)
    array"``). TypeError for what holds no real numbers (text, bool, complex, a ragged
    nesting), ValueError for another shape or an int no float holds.
    """
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        X: FloatArray = np.asarray(value)  # (a matrix or a masked array as its plain array)
    else:
        real_rows(value, name, f"{want} of real numbers")
        try:
            X = np.asarray(value, dtype=np.float64)
        except OverflowError as exc:  # (an int beyond the float range)
            raise ValueError(
                f"`{name}` must hold numbers a float can hold, but got {short(value)}."
            ) from exc
        except (TypeError, ValueError) as exc:  # text, a ragged nesting
            raise TypeError(
                f"`{name}` must be {want} of real numbers, but got {short(value)}."
            ) from exc
    if X.ndim != 2:
        raise ValueError(f"`{name}` must be {want}, but got an array of shape {X.shape}.")
    return X


class _Call:
    """A picklable ``x -> fun(x, *args)``."""

    def __init__(self, fun: Callable[..., object], args: Sequence[object]) -> None:
        self.fun = fun
        self.args = tuple(args)

    def __call__(self, x: FloatArray) -> object:
        return self.fun(x, *self.args)


def evaluate(
    strategy_or_candidates: Keyed | ArrayLike,
    fun: Callable[..., object],
    workers: WorkersLike = None,
    *,
    args: Sequence[object] = (),
    timeout: float | None = None,
    mode: str | None = None,
    tasks: int | None = None,
    vectorized: bool | None = None,
    restart_workers: bool | None = None,
) -> FloatArray:
    """Evaluate `fun` on a population, serially or in parallel.

    Parameters
    ----------
    strategy_or_candidates : Strategy or array_like of shape (n, d)
        A strategy (its pending batch is evaluated; ``ask()`` is called if needed) or candidates.
    fun : callable
        ``fun(x, *args) -> float``. In this process (serially, on threads, through a map)
        it receives read-only rows, so that it cannot change the candidates (an array given
        as `strategy_or_candidates` included); in other processes, copies of them.
    workers : None, int, map-like callable, Executor, dask Client, the ray module or Evaluator
        None or 1: serial, in this process; an exception raised by `fun` propagates. An int:
        a process pool of that size (``-1``: one per core), started with "spawn". A map-like
        callable ``workers(func, iterable)`` (scipy's convention): it receives the rows one by
        one. A ``concurrent.futures.Executor`` (dask's ``client.get_executor()``,
        ``mpi4py.futures.MPIPoolExecutor``, a ``ThreadPoolExecutor``). A dask
        ``distributed.Client``: natively, with replicas of the strategy on the workers (see
        `mode`). The ``ray`` module (after ``ray.init()``): one Ray actor per CPU of the
        cluster, each keeping replicas like a dask worker. An :class:`Evaluator`, to reuse
        its workers and pool (its `timeout`, `mode`, `tasks`, `vectorized` and
        `restart_workers` apply unless given here). Pools, Executors and Clients get about one
        task per worker (see `tasks`). A process pool is kept and reused by later calls with
        the same number until :func:`nes_asktell.shutdown_pools` or the interpreter's exit.
    args : tuple
        Extra arguments of `fun`.
    timeout : float, optional
        Seconds the evaluation may take (pools, Executors and Clients; None, ``inf`` or more
        than ``threading.TIMEOUT_MAX``: no limit). The candidates still
        running then get NaN; those that had not started run again with a fresh `timeout`
        (where the engine cannot tell which candidate of a task hung, each runs again once).
        The process pool and Ray kill their hung workers (the pool's, on POSIX, with the
        programs ``fun`` started there). A hung ``fun`` in a thread (a thread pool, a dask
        worker) cannot be stopped: it keeps its thread until it returns, and a
        :class:`NESWarning` says how many threads are held. On a ``ThreadPoolExecutor`` the
        evaluator runs the next candidates on spare threads of its own in place of the held
        ones (never more than the pool's threads that ran its calls, shut down with the
        evaluator); on a dask worker the others run on the threads left (see
        `restart_workers`).
    mode : {"auto", "vectors", "seeds", "replay"}, optional
        How candidates reach pools, Executors and Clients. "vectors": their rows (8 d bytes each).
        "seeds": their noise keys (a strategy with counter-based noise, any `rng` but a legacy
        RandomState, and a diagonal perturbation: OpenES, SNES), with the mean and step sizes sent
        along (on a dask Client broadcast once per generation: 8 d bytes per worker, twice that for
        SNES). "replay" (a dask Client or Ray): every worker keeps a replica of the strategy and
        brings it up to date by replaying the client's updates from their utilities, so a
        generation moves a few KB whatever d is (the state travels in the first generation, and
        again to a worker that lost its replica or whose replica no longer matches); the price is
        compute on the workers, each of which redraws the whole generation's noise (popsize x d
        normals, half with mirrored sampling) and keeps a buffer of that size. Choose "replay" when
        the network or the number of workers limits, "seeds" when the workers are few, on one
        machine or a fast network, and their cores are busy. "auto" uses keys from d = 10,000 on:
        "replay" on a dask Client or Ray, "seeds" elsewhere. Default (None): the mode of an
        :class:`Evaluator` passed as `workers`, else "auto"; a mode given here, "auto"
        included, overrides the lent one.
    tasks : int, optional
        How many tasks the population is split into (pools, Executors and Clients); by
        default the engine's size, or one per candidate with a `timeout` where no task can
        report its rows' progress (dask, Ray, other Executors than a thread pool; see
        :class:`Evaluator`).
    vectorized : bool, optional
        Call ``fun(X.T, *args)`` once per task (once in all when serial) with the candidates
        as the columns of a (d, m) array, scipy's convention, and expect m values back:
        as ``differential_evolution`` reads them, any array of m real numbers with at most
        one axis longer than 1, so (m,), (m, 1) or (1, m), and for m = 1 a scalar (another
        shape is a ValueError, no numbers a TypeError). Serially a failing call propagates;
        on workers the candidates of a failing call run again one per call, so only the
        faulty one gets NaN. Candidates travel as vectors (not with ``mode`` "seeds" or
        "replay"); not with a map-like callable. Default False.
    restart_workers : bool, optional
        With a dask Client and a `timeout`: restart the worker processes whose threads still
        run a candidate at the timeout, so that later evaluations have threads again. The
        calls they ran are cancelled first and their candidates get NaN; the values already
        received are kept, and candidates that were only queued run again on the fresh
        workers. A restart needs the workers' nannies (the default of ``LocalCluster`` and
        ``dask worker``); workers without one cannot restart, which a :class:`NESWarning`
        says, and their hung threads stay busy. A restart discards everything else those
        workers hold or run, so the default is False: the Client is yours. A
        :class:`NESWarning` names the workers restarted.

    Returns
    -------
    f : ndarray of shape (n,)
        The fitness values. With a pool, an Executor or a Client, a candidate whose `fun`
        raises (SystemExit and KeyboardInterrupt included) or returns something that is not
        a real number, whose worker dies, or that is still running at `timeout`, gets NaN,
        with one :class:`NESWarning` per call; the strategy ranks NaN worst. The other
        candidates of its task keep their values: those it had finished are kept, the others
        run again, one task per candidate (see the fault table in the parallel guide).

    Raises
    ------
    TypeError
        If `workers`, `mode`, `tasks`, `vectorized` or `restart_workers` is of the wrong
        kind (a `mode` that is not a string), `strategy_or_candidates` holds no real numbers, or
        `fun` cannot be pickled for a process pool (or is defined in a ``__main__`` that
        other processes cannot import: a script read from stdin, ``python -c``, an
        interactive session) or, with `args`, for a dask Client (a lambda over a lock).
    ValueError
        If `workers`, `timeout`, `mode` or `tasks` has a bad value (a `timeout` with serial
        or map-like workers, "seeds" with a map-like callable, "replay" without a dask
        Client or the ray module), `mode` asks for keys that cannot rebuild these
        candidates, `vectorized` is True with a map-like callable or with `mode` "seeds" or
        "replay", or `restart_workers` is True without a dask Client or without a
        `timeout`.
    KeyboardInterrupt
        On Ctrl-C, at once: pending tasks are cancelled and a process pool's busy workers
        killed, with the programs ``fun`` started there (a new pool starts on next use).

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
    strategy = strategy_or_candidates if isinstance(strategy_or_candidates, Keyed) else None
    if strategy is None:
        X = candidate_rows(
            strategy_or_candidates, "strategy_or_candidates", "a Strategy or an (n, d) array"
        ).astype(np.float64, copy=False)
    with Evaluator(
        workers,
        timeout=timeout,
        mode=mode,
        tasks=tasks,
        vectorized=vectorized,
        restart_workers=restart_workers,
    ) as ev:
        # (asked once the arguments are checked: a rejected call leaves the strategy as it was)
        args = ev.check_call(fun, args, strategy)
        if strategy is not None:
            X = strategy.ask()
        return ev.evaluate(fun, X, args, strategy=strategy)
