"""What runs on the workers: the row loop, candidates rebuilt from keys, replicas that replay.

With counter-based noise (any `rng` but a legacy RandomState), candidate ``k`` of generation
``g`` is a function of the mean, the step sizes, the bounds and its
:class:`~nes_asktell._batch.Keys`. A task of vectors mode carries rows; :func:`seeds_task`
carries keys with the mean and step sizes, checks on first contact that its numpy draws the
same noise, rebuilds its rows and evaluates them.

:func:`replay_task` is the variant that moves no mean at all (the way of Salimans et al.'s
algorithm 2): each worker process keeps a replica of the strategy per run (keyed by a token)
and brings it to the asked generation by replaying the updates the client applied
(``Strategy.replay``), then checks the replica's digest. A worker without a replica in step
raises :class:`ReplicaMissingError`, and the client resends the task with the strategy's
``replica_state()``. Nothing here imports the strategies: a replica's class travels with its
state.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Protocol

import numpy as np

from . import _noise
from ._batch import Keys, rebuild_row
from ._bounds import Box
from ._typing import AppliedUpdate, FloatArray
from ._validate import float_or_inf, is_real_number, short, unmasked

Result = tuple[FloatArray, list[str]]
#: the longest error line a task returns per failure (a worker's reply is bounded)
MAX_ERROR_CHARS = 500


class NoiseMismatchError(RuntimeError):
    """A worker draws other normal numbers than this process (another numpy version)."""


class ReplicaMissingError(RuntimeError):
    """A worker has no replica of the strategy in step with the client's: send the state."""


class Replica(Protocol):
    """What a worker uses of its replica of a strategy."""

    @property
    def generation(self) -> int: ...

    @property
    def mean(self) -> FloatArray: ...

    @property
    def sigma(self) -> float | FloatArray: ...

    @property
    def bounds(self) -> tuple[FloatArray, FloatArray] | None: ...

    def replay(
        self,
        generation: int,
        u: FloatArray | None,
        n_finite: int | None,
        w_shape: FloatArray | None,
    ) -> None: ...

    def digest(self) -> bytes: ...


def ready() -> None:
    """Do nothing: a process pool runs it once per worker to start them before the clock."""


def init_worker(pids: Any) -> None:
    """Set up a process pool's worker: a session of its own, its pid on `pids`, no Ctrl-C.

    Where the platform has sessions (POSIX), the worker leads a new one, so that the
    processes its candidates start (a simulator run as a program) belong to its process
    group: the parent ends the worker and them together (:func:`kill_group`). The parent
    records the pids so that it can end busy workers through public means (``os.killpg``,
    ``os.kill``); Ctrl-C is the parent's to handle (a terminal sends it to the foreground
    process group, which a worker has left; it ignores it anyway). A worker ends, with its
    group, when its parent has ended (:func:`_end_with`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "setsid"):
        os.setsid()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), daemon=True).start()
    pids.put(os.getpid())


def kill_group(pid: int) -> bool:
    """Kill the process group led by the pool's worker `pid`; return whether there was one.

    The worker leads a group of its own (:func:`init_worker`), which the processes it starts
    join unless they leave it (``start_new_session``), so the group is the worker and the
    programs its candidates started, killed as one. A group outlives its leader while one of
    its processes lives (and its id is not handed out again meanwhile), so the programs left
    by a worker that has ended are killed too. False without process groups (Windows), or
    once no process of the group is left.
    """
    if not hasattr(os, "killpg"):
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # no such group
        return False
    return True


def _end_with(sentinel: int) -> None:
    """End this worker and its group once its parent has ended (killed with SIGKILL, say).

    The parent kills busy workers on Ctrl-C and shuts the pool down at its exit; a parent
    killed outright does neither, and its idle workers wait for tasks for ever (each holds
    the task queue's write end too, so no end of the queue ever reaches them), a busy one
    runs its candidate on, and the programs the candidates started run on too.
    """
    multiprocessing.connection.wait([sentinel])
    if not kill_group(os.getpid()):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


#: the board's states of a row
NOT_STARTED, STARTED, DONE = 0, 1, 2


class Board:
    """Per-row progress of one evaluation in shared memory: what a dead task had done.

    Row ``k`` has a state (:data:`NOT_STARTED`, :data:`STARTED`, :data:`DONE`), the pid of the
    worker that started it and its value. A worker writes the value before the state, so a
    row marked :data:`DONE` has its value even when its process dies a moment later, and a
    row left :data:`STARTED` names the process that was evaluating it.

    Row ``k`` also has a ticket: the task that runs it carries the ticket the row had when
    the task was sent, and skips the row (no call of `fun`) when the ticket has changed by
    the time it gets there. Sending the row again (:meth:`clear`) and giving the evaluation up
    (:meth:`void`: it ended, by a timeout or Ctrl-C) change it, so a task abandoned on a
    thread, which cannot be stopped, runs none of its rows that are no longer its own.
    """

    def __init__(self, n: int, name: str | None = None) -> None:
        self.n = n
        if name is None:
            self.shm = SharedMemory(create=True, size=max(1, 32 * n))
        else:
            self.shm = SharedMemory(name=name)
        buf = self.shm.buf
        self.state = np.ndarray((n,), np.int64, buf, 0)
        self.pid = np.ndarray((n,), np.int64, buf, 8 * n)
        self.value = np.ndarray((n,), np.float64, buf, 16 * n)
        self.ticket = np.ndarray((n,), np.int64, buf, 24 * n)
        if name is None:
            self.state[:] = NOT_STARTED
            self.ticket[:] = 0

    @property
    def name(self) -> str:
        """Return the shared memory's name (what a task carries)."""
        return self.shm.name

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, FloatArray]:
        """Return copies of the states, the pids and the values."""
        return self.state.copy(), self.pid.copy(), self.value.copy()

    def clear(self, rows: Sequence[int]) -> None:
        """Mark `rows` not started, with new tickets (before they are sent again)."""
        self.state[list(rows)] = NOT_STARTED
        self.ticket[list(rows)] += 1

    def void(self) -> None:
        """Give every row a ticket no task holds: the tasks still under way run no more rows."""
        self.ticket[:] = -1

    def holds(self, k: int, ticket: int) -> bool:
        """Return whether a task sent with `ticket` for row `k` is still to run it."""
        return bool(self.ticket[k] == ticket)

    def close(self, unlink: bool = False) -> None:
        """Release this process's view (and the memory itself when `unlink`)."""
        del self.state, self.pid, self.value, self.ticket
        self.shm.close()
        if unlink:
            self.shm.unlink()


class _Tracking(threading.local):
    """Per thread: the board, positions and tickets of the tracked task running.

    Per thread, since the tasks of a thread pool run side by side in one process.
    """

    def __init__(self) -> None:
        self.stack: list[tuple[Board, Sequence[int], Sequence[int]]] = []


_TRACK = _Tracking()


def _tracked() -> tuple[Board, Sequence[int], Sequence[int]] | None:
    """Return the board, positions and tickets of the tracked task running in this thread."""
    return _TRACK.stack[-1] if _TRACK.stack else None


def tracked_task(
    board: str,
    n: int,
    positions: Sequence[int],
    tickets: Sequence[int],
    fn: Callable[..., Result],
    *args: Any,
) -> Result:
    """Run the task ``fn(*args)``, recording each of its rows on the `n`-row `board`.

    `positions` are the places of the task's rows in the evaluated population, `tickets`
    their tickets when the task was sent (see :class:`Board`).
    """
    b = Board(n, board)
    _TRACK.stack.append((b, positions, tickets))
    try:
        return fn(*args)
    finally:
        _TRACK.stack.pop()
        b.close()


def numpy_of(y: object) -> object:
    """Return what `fun` returned as numpy reads it, for :func:`as_value` and :func:`block_values`.

    An array of another library (a torch or JAX array or scalar: anything with ``__array__``)
    becomes its numpy array, and a numeric masked array float64 with NaN where masked (see
    :func:`~nes_asktell._validate.unmasked`); anything else is returned as it is (one that
    does not convert, a tensor on a device, say, is then refused by the caller).
    """
    if not isinstance(y, np.ndarray) and hasattr(type(y), "__array__"):
        with contextlib.suppress(Exception):
            y = np.asarray(y)
    return unmasked(y)


def as_value(y: object, fun: object) -> float:
    """Return a fitness value as a float, or raise TypeError naming `fun`.

    Only real numbers are fitness values: int, float, numpy real scalars, and what holds one
    real number as scipy's own methods read it: a 0-d (or one-element) real array, an array
    of another library (a torch or JAX scalar: anything with ``__array__``) and a list or
    tuple of one number, nested or not (``[[y]]``, as ``np.asarray(...).item()`` reads it).
    None, bool, strings and complex numbers are rejected.
    """
    got = y
    while isinstance(y, (list, tuple)) and len(y) == 1:
        y = y[0]
    y = numpy_of(y)
    if isinstance(y, np.ndarray) and y.size == 1 and y.dtype.kind in "iuf":
        return float(y.reshape(()))
    if is_real_number(y):
        try:
            return float(y)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf if y > 0 else -math.inf  # type: ignore[operator]
    raise TypeError(
        f"`fun` must return a real number, but {getattr(fun, '__name__', fun)!r} "
        f"returned {short(got)}."
    )


def failure(exc: BaseException) -> str:
    """Return the error line of `exc`: its type and text, cut to :data:`MAX_ERROR_CHARS`.

    The text comes from the exception's own ``__str__``, user code like `fun`: one that raises
    gives a placeholder, not a second exception that ends the task (and, in an SPMD run,
    its rank, leaving the other ranks waiting for its values for ever).
    """
    try:
        text = str(exc)
    except Exception as err:
        text = f"<str() of the exception raised {type(err).__name__}>"
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_CHARS]


def eval_rows(
    fun: Callable[..., object],
    args: Sequence[object],
    rows: Sequence[FloatArray] | FloatArray,
    *,
    interruptible: bool = False,
) -> Result:
    """Evaluate each row; a row whose `fun` raises gets NaN and an error line.

    With `interruptible`, a KeyboardInterrupt propagates: this process is the caller's own
    (a rank of an SPMD run, which receives the terminal's Ctrl-C), not a worker.
    """
    values = np.full(len(rows), np.nan)
    errors: list[str] = []
    track = _tracked()
    pid = os.getpid()
    for i, x in enumerate(rows):
        if track is None and i and cancelled_on_dask():
            break  # Ctrl-C or a closed client: the caller takes no value of this task now
        if track is not None:
            k = track[1][i]
            if not track[0].holds(k, track[2][i]):
                continue  # sent again, or the evaluation was given up: not this task's now
            track[0].pid[k] = pid
            track[0].state[k] = STARTED
        try:
            values[i] = as_value(fun(x, *args), fun)
        except BaseException as exc:
            if interruptible and isinstance(exc, KeyboardInterrupt):
                raise
            # SystemExit, KeyboardInterrupt or a BaseException of the user's own (asyncio's
            # CancelledError, say) from `fun` would end the worker or the whole run: they cost
            # only this candidate (Ctrl-C in the parent is handled there).
            errors.append(failure(exc))
        if track is not None:
            track[0].value[k] = values[i]
            track[0].state[k] = DONE
    return values, errors


def cancelled_on_dask() -> bool:
    """Return whether this thread runs a dask task that its client has cancelled.

    A dask worker's thread cannot be stopped: a task of several rows cancelled under way
    (Ctrl-C in the caller, a client closed) would otherwise call `fun` on every row left, for
    nothing. False outside a dask worker's task (``distributed`` is then not even imported).
    """
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        worker = get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
    except (ValueError, KeyError, AttributeError):  # not in a task of a dask worker
        return False
    return task is None or task.state == "cancelled"


def vectors_task(fun: Callable[..., object], args: Sequence[object], X: FloatArray) -> Result:
    """Evaluate the rows of `X` (a task of vectors mode)."""
    return eval_rows(fun, args, X)


class VectorizedCallError(RuntimeError):
    """A vectorized call of `fun` failed: its candidates are run again one by one."""


def block_values(y: object, m: int, fun: object) -> FloatArray:
    """Return the `m` values of a vectorized call as float64, or raise naming `fun`.

    As ``scipy.optimize.differential_evolution`` with ``vectorized=True``, any array of `m`
    real numbers with at most one axis longer than 1 is read as the `m` values: shape
    ``(m,)``, but also ``(m, 1)`` (``np.sum(..., keepdims=True)`` over rows), ``(1, m)``, and
    for ``m = 1`` a scalar. Each number is read as :func:`as_value` reads one (a Fraction as
    its float, an int beyond the float range as +-inf). Masked entries of a masked array are
    NaN. An array of another
    library (a torch or JAX array: anything with ``__array__``) is read as its numpy array,
    as :func:`as_value` reads a scalar of one.

    Raises
    ------
    TypeError
        If `y` holds no real numbers (None, strings, bool, complex values, objects).
    ValueError
        If it holds real numbers in another shape (``(2, m)``, say, or the wrong count).
    """
    y = numpy_of(y)
    arr = (
        np.asarray(y)
        if isinstance(y, (np.ndarray, np.generic, list, tuple)) or is_real_number(y)
        else None
    )
    if arr is not None and arr.dtype == object and all(map(is_real_number, arr.reshape(-1))):
        # Python numbers numpy holds as objects (a Fraction, an int beyond the float range):
        # each read as one returned alone is (see as_value), an int beyond the floats as +-inf
        arr = np.array([float_or_inf(x) for x in arr.reshape(-1)]).reshape(arr.shape)
    if arr is None or arr.dtype.kind not in "iuf":
        what = (
            f"an array of shape {arr.shape} and dtype {arr.dtype}"
            if arr is not None
            else f"{y!r:.80}"
        )
        raise TypeError(
            f"`fun` must return {m} real numbers, an array of shape ({m},), when vectorized, "
            f"but {getattr(fun, '__name__', fun)!r} returned {what}."
        )
    if arr.size != m or sum(n > 1 for n in arr.shape) > 1:
        raise ValueError(
            f"`fun` must return {m} real numbers, an array of shape ({m},) (or ({m}, 1)), when "
            f"vectorized, but {getattr(fun, '__name__', fun)!r} returned an array of shape "
            f"{arr.shape}."
        )
    return np.asarray(arr, dtype=np.float64).reshape(m)


def vectorized_task(fun: Callable[..., object], args: Sequence[object], X: FloatArray) -> Result:
    """Evaluate the rows of `X` in one call ``fun(X.T, *args)`` (scipy's vectorized convention).

    A call that raises raises :class:`VectorizedCallError`, so that the client runs the
    candidates again one per task and only the faulty one gets NaN. A call that returns
    values of another shape or type (see :func:`block_values`) gives NaN for every row, with
    the error: the rows run one by one would each pass.
    """
    track = _tracked()
    if track is not None:
        board, positions, tickets = track
        if not all(board.holds(k, t) for k, t in zip(positions, tickets, strict=True)):
            return np.full(len(X), np.nan), []  # given up (see eval_rows): no call
        board.pid[list(positions)] = os.getpid()
        board.state[list(positions)] = STARTED
    errors: list[str] = []
    try:
        y = fun(X.T, *args)
    except BaseException as exc:  # as in eval_rows: only the candidates' fault
        if len(X) == 1:  # one candidate: its own fault
            return np.full(1, np.nan), [failure(exc)]
        raise VectorizedCallError(failure(exc)) from None
    try:
        values = block_values(y, len(X), fun)
    except (TypeError, ValueError) as exc:
        # Not one candidate's fault but the return convention's: the rows run one by one
        # would each pass (one value is a call of one row's), and the wrong shape went
        # unnoticed. Every row of the call gets NaN, and the warning says why.
        values = np.full(len(X), np.nan)
        errors = [failure(exc)]
    if track is not None:
        board.value[list(positions)] = values
        board.state[list(positions)] = DONE
    return values, errors


_CHECKED: set[str] = set()  # precisions whose check value this process has confirmed


def _check(keys: Keys) -> None:
    """On first contact, check that this process draws the client's noise."""
    if keys.dtype not in _CHECKED:
        if _noise.check_value(keys.dtype) != keys.check:
            raise NoiseMismatchError(f"numpy {np.__version__} draws other {keys.dtype} noise")
        _CHECKED.add(keys.dtype)


def seeds_task(
    fun: Callable[..., object],
    args: Sequence[object],
    keys: Keys,
    mean: FloatArray,
    scale: float | FloatArray,
    lower: FloatArray | None,
    upper: FloatArray | None,
    rows: Sequence[int],
) -> Result:
    """Rebuild the candidates `rows` from the mean, the step sizes and the bounds; evaluate them.

    Each broadcast input (`mean`, `scale`, `lower`, `upper`) is an argument of its own: Ray
    resolves an object-store reference only there, not inside a tuple. `lower` and `upper`
    are None without bounds.
    """
    _check(keys)
    box = None if lower is None or upper is None else Box(lower, upper)
    return eval_rows(fun, args, [rebuild_row(keys, mean, scale, box, k) for k in rows])


@dataclass(frozen=True)
class Replay:
    """What a worker needs to bring its replica to the asked generation (a few KB)."""

    token: str
    #: (generation, utilities or None for a skipped update, finite values, shape weights or
    #: None) of the latest tells.
    applied: tuple[AppliedUpdate, ...]
    digest: bytes


class _Held:
    """A worker's replica of one run's strategy, with the digest of its generation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replica: Replica | None = None
        self.digest = b""


#: replicas held by this worker process, most recently used last (at most KEPT_RUNS).
_REPLICAS: OrderedDict[str, _Held] = OrderedDict()
_REPLICAS_LOCK = threading.Lock()
KEPT_RUNS = 2


def _held(token: str) -> _Held:
    with _REPLICAS_LOCK:
        held = _REPLICAS.get(token)
        if held is None:
            held = _REPLICAS[token] = _Held()
            while len(_REPLICAS) > KEPT_RUNS:
                _REPLICAS.popitem(last=False)
        else:
            _REPLICAS.move_to_end(token)
        return held


def drop_replicas(token: str | None = None) -> None:
    """Free this worker's replica of run `token` (all replicas when None)."""
    with _REPLICAS_LOCK:
        if token is None:
            _REPLICAS.clear()
        else:
            _REPLICAS.pop(token, None)


def _bring_forward(held: _Held, target: int, replay: Replay) -> bool:
    """Replay the missed updates on the replica; return whether it now matches the digest."""
    es = held.replica
    if es is None or es.generation > target:
        return False
    if es.generation < target:
        recipes = {h: (u, n_finite, w_shape) for h, u, n_finite, w_shape in replay.applied}
        if any(h not in recipes for h in range(es.generation, target)):
            return False
        for h in range(es.generation, target):
            es.replay(h, *recipes[h])
        held.digest = es.digest()
    if held.digest != replay.digest:
        held.replica = None  # diverged (another BLAS, a changed strategy): reinstall
        return False
    return True


def replay_task(
    fun: Callable[..., object],
    args: Sequence[object],
    keys: Keys,
    replay: Replay,
    state: bytes | None,
    rows: Sequence[int],
) -> Result:
    """Bring this worker's replica to ``keys.generation``, rebuild the rows and evaluate them.

    `state` is the pickled ``(class, replica_state())`` of the strategy, sent on first contact.
    Raises :class:`ReplicaMissingError` when the replica is missing, too far behind or
    diverged and no `state` came with the task.
    """
    _check(keys)
    held = _held(replay.token)
    with held.lock:
        if not _bring_forward(held, keys.generation, replay):
            if state is None:
                raise ReplicaMissingError(f"no replica of run {replay.token[:8]} in step")
            cls, plain = pickle.loads(state)
            es = cls.from_state(plain)
            held.replica, held.digest = es, es.digest()
            if es.generation != keys.generation or held.digest != replay.digest:
                held.replica = None
                raise RuntimeError("the strategy's state does not match its digest")
        replica = held.replica
        assert replica is not None
        mean, scale, bounds = replica.mean, replica.sigma, replica.bounds
    box = None if bounds is None else Box(*bounds)
    return eval_rows(fun, args, [rebuild_row(keys, mean, scale, box, k) for k in rows])


def executing_keys(dask_worker: Any) -> list[str]:
    """Return the keys of the tasks a dask worker's threads are running now.

    Run by ``Client.run``, which passes the worker as `dask_worker`. The scheduler's
    ``Client.processing()`` also lists the tasks queued on a worker behind a running one; only
    the worker knows which of them hold a thread.
    """
    return [str(ts.key) for ts in dask_worker.state.executing]


def nbytes(obj: object) -> int:
    """Return the serialized size of `obj` (pickle protocol 5, buffers counted, not copied)."""
    sizes: list[int] = []
    try:
        head = pickle.dumps(obj, protocol=5, buffer_callback=lambda b: sizes.append(len(b.raw())))
    except Exception:
        return 0
    return len(head) + sum(sizes)


def unpicklable(exc: BaseException) -> bool:
    """Return whether `exc` says that a task could not be pickled or unpickled."""
    text = str(exc)
    return isinstance(exc, pickle.PicklingError) or (
        isinstance(exc, (AttributeError, TypeError))
        and ("pickle" in text or "Can't get attribute" in text)
    )


UNPICKLABLE = (
    "`fun` (and `args`) must be picklable to run in other processes, but {exc}. Define `fun` "
    "at module level in an importable module (not a lambda, a local function or a function "
    "typed into an interactive session), guard the script with `if __name__ == '__main__':`, "
    "or evaluate serially (workers=None), with threads (a ThreadPoolExecutor) or on an "
    "engine that pickles lambdas by value (dask, Ray, loky's executor)."
)

UNPICKLABLE_ON_DASK = (
    "`fun` (and `args`) must be picklable to run on the dask workers, but {exc}. dask sends a "
    "lambda or a local function by value, with everything it refers to: create what cannot "
    "be pickled (a lock, an open file, a connection, a Client) inside `fun`, or evaluate "
    "serially (workers=None) or with threads (a ThreadPoolExecutor)."
)
