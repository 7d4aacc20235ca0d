"""MPI runs where every rank holds the strategy (SPMD): :func:`mpi_optimize` and :class:`SPMDMap`.

Every rank of the communicator builds the same strategy (the same ``x0``, options and integer
``rng``), so every rank asks the same batch. Each rank evaluates its contiguous slice of the
batch and the ranks all-gather the fitness values (``Allgatherv``), after which every rank tells
its own strategy the same values and applies the same update. A generation moves popsize
floats, whatever the dimension; no candidate, mean or state travels. That is the scheme of
Salimans et al. (2017), algorithm 2.

Identical strategies stay identical only as long as every rank computes the same numbers: the
same numpy, the same BLAS, the same options. Every `check_every` generations the ranks compare
a digest of their strategy and of their batch, and a divergence raises the same
``RuntimeError`` on every rank instead of running on with different searches.

mpi4py is imported where it is used, never when the package is imported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from . import _validate as v
from . import _warn
from ._loop import DispLike, disp_level, run
from ._stopping import with_stop
from ._strategy import Strategy
from ._tasks import eval_rows
from ._typing import FloatArray
from ._validate import short

#: the MPI methods a communicator must have (``mpi4py.MPI.Comm``).
_COMM_METHODS = ("Get_rank", "Get_size", "Allgatherv", "allgather")


def _check_comm(comm: object) -> None:
    """Raise TypeError unless `comm` has the methods of an mpi4py communicator that are used."""
    if not all(hasattr(comm, m) for m in _COMM_METHODS):
        raise TypeError(
            f"`comm` must be an mpi4py communicator (mpi4py.MPI.Comm), but got {short(comm)}."
        )


class SPMDMap:
    """A map-like ``workers(func, rows)`` for runs where every rank holds the strategy.

    Called with the same rows on every rank of `comm`, it evaluates this rank's contiguous
    slice, all-gathers the values (popsize float64 numbers in all) and returns the whole
    generation's values on every rank. A candidate whose `func` raises gets NaN and a
    :class:`~nes_asktell.NESWarning` on the rank that evaluated it; the run goes on. A
    KeyboardInterrupt (Ctrl-C, which ``mpiexec`` forwards to every rank) propagates.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The communicator whose ranks share the run.
    strategy : Strategy
        This rank's copy of the strategy, whose digest is compared across ranks.
    check_every : int
        Compare the digests every `check_every` calls (the first call included).

    Raises
    ------
    TypeError
        If `comm` is not a communicator, `strategy` not a strategy or `check_every` not an
        integer.
    ValueError
        If `check_every` is below 1.

    Attributes
    ----------
    last_bytes : int
        Bytes this rank received in the latest call: the other ranks' values (8 per
        candidate), plus 48 per rank when the digests were compared.
    """

    def __init__(self, comm: Any, strategy: Strategy, check_every: int = 10) -> None:
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"`strategy` must be a Strategy (XNES, SNES, OpenES), but got {short(strategy)}."
            )
        every = v.integer("check_every", check_every, minimum=1)
        _check_comm(comm)
        self.comm = comm
        self.strategy = strategy
        self.check_every = every
        self.calls = 0
        self.last_bytes = 0

    def check(self, rows: Sequence[FloatArray] | None = None) -> None:
        """Compare the ranks' digests of strategy and batch; raise RuntimeError if any differs.

        A collective call: every rank of the communicator must make it.
        """
        h = hashlib.blake2b(self.strategy.digest(), digest_size=16)
        if rows is not None and len(rows):
            h.update(np.ascontiguousarray(rows[0]).tobytes())
            h.update(np.ascontiguousarray(rows[-1]).tobytes())
        digests: list[bytes] = self.comm.allgather(h.digest())
        self.last_bytes += 48 * (len(digests) - 1)
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise RuntimeError(
                f"the ranks' strategies diverged by generation {self.strategy.generation}: "
                f"rank(s) {differ} differ from rank 0. Every rank must build the same "
                "strategy (x0, options, an integer `rng`) and run the same numpy and BLAS."
            )

    def __call__(
        self, func: Callable[[FloatArray], object], rows: Iterable[FloatArray]
    ) -> list[float]:
        """Evaluate this rank's slice of `rows`; return every rank's values, in order."""
        rows = list(rows)
        self.last_bytes = 0
        if self.calls % self.check_every == 0:
            self.check(rows)
        self.calls += 1
        size, rank = self.comm.Get_size(), self.comm.Get_rank()
        counts = [len(c) for c in np.array_split(np.arange(len(rows)), size)]
        start = sum(counts[:rank])
        # Ctrl-C reaches every rank (mpiexec forwards it): it stops the run, not a candidate
        mine, errors = eval_rows(func, (), rows[start : start + counts[rank]], interruptible=True)
        values = np.empty(len(rows), dtype=np.float64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        self.comm.Allgatherv(np.ascontiguousarray(mine), [values, counts, displs, _double()])
        self.last_bytes += 8 * (len(rows) - counts[rank])
        if errors:
            _warn.warn(
                f"rank {rank}: {len(errors)} of its {counts[rank]} candidates have no "
                f"fitness (ranked worst); the first failure: {errors[0]}",
                stacklevel=2,
            )
        return values.tolist()


def _double() -> Any:
    """Return MPI's float64 datatype (mpi4py imported here, on use)."""
    from mpi4py import MPI

    return MPI.DOUBLE


def mpi_optimize(
    es: Strategy,
    fun: Callable[..., float],
    *,
    comm: Any = None,
    args: Sequence[object] = (),
    maxfev: int | None = None,
    maxiter: int | None = None,
    check_every: int = 10,
    callback: Callable[[OptimizeResult], object] | None = None,
    disp: DispLike = False,
) -> OptimizeResult:
    """Run `es` on every rank of an MPI communicator, each rank evaluating its share.

    Call it on every rank (a script started with ``mpiexec -n N python script.py``), each with
    its own copy of the same strategy: the same ``x0``, options and integer ``rng``. Every rank
    asks the same batch, evaluates its contiguous slice of it, all-gathers the fitness values
    and tells them, so every rank ends with the same strategy and returns the same result,
    bit-identical to a serial run of that strategy.

    Parameters
    ----------
    es : Strategy
        This rank's copy of the strategy (XNES, SNES, OpenES, ...).
    fun : callable
        ``fun(x, *args) -> float`` to minimise; it runs on every rank.
    comm : mpi4py.MPI.Comm, optional
        The communicator (``MPI.COMM_WORLD`` by default).
    args : tuple
        Extra arguments of `fun`.
    maxfev, maxiter : int, optional
        Budgets of this call, as in :meth:`Strategy.optimize <nes_asktell.Strategy.optimize>`.
    check_every : int
        Every `check_every` generations (and at the end) the ranks compare a 16-byte digest
        of their strategy (generation, mean, step sizes) and of their batch, and raise
        RuntimeError on every rank if any differs.
    callback : callable, optional
        Called on every rank after each generation with the current result; returning True
        or raising StopIteration stops the run. It must decide the same way on every rank.
    disp : bool or {0, 1, 2}
        Print progress lines on rank 0, at the verbosity of
        :meth:`Strategy.optimize <nes_asktell.Strategy.optimize>` (2: every generation).

    Returns
    -------
    OptimizeResult
        The same on every rank.

    Raises
    ------
    TypeError
        If `es` is not a strategy, `comm` not a communicator, `check_every` not an
        integer or `disp` not a level.
    ValueError
        If `check_every` is below 1 or `disp` not 0, 1 or 2.
    RuntimeError
        If the ranks' strategies diverge (raised on every rank).

    Notes
    -----
    A generation moves popsize float64 numbers in all (each rank receives those it did not
    compute), plus a digest per rank every `check_every` generations: about ``8 popsize``
    bytes whatever d is. A strategy with a wall-clock ``timeout`` (which holds on each rank at
    its own moment) also has the ranks all-gather one boolean per generation, so that they
    stop in the same generation with the same result. A candidate whose `fun` raises gets
    NaN (ranked worst) with a warning on its rank; a rank that dies or hangs stops the whole
    MPI job, as MPI does.
    Ctrl-C (``mpiexec`` forwards it to every rank) raises KeyboardInterrupt on the ranks
    it interrupts in `fun`; a rank that was waiting for the others' values stays there until
    a second Ctrl-C, with which ``mpiexec`` aborts the job.
    Timeouts and retries need an engine with workers (``workers=`` of ``optimize``).

    References
    ----------
    Salimans, T., Ho, J., Chen, X., Sidor, S. and Sutskever, I. (2017). Evolution Strategies
    as a Scalable Alternative to Reinforcement Learning. arXiv:1703.03864, algorithm 2.

    Examples
    --------
    In a script started with ``mpiexec -n 4 python run.py``::

        import numpy as np
        from nes_asktell import XNES, mpi_optimize

        es = XNES(np.ones(10), 0.5, rng=0)        # the same seed on every rank
        res = mpi_optimize(es, lambda x: float(np.sum(x**2)), maxiter=200)
    """
    if not isinstance(es, Strategy):
        raise TypeError(f"`es` must be a Strategy (XNES, SNES, OpenES), but got {short(es)}.")
    every = v.integer("check_every", check_every, minimum=1)
    level = disp_level(disp)  # checked on every rank, shown on rank 0
    if comm is None:
        try:
            from mpi4py import MPI
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"mpi_optimize() needs {exc.name}, which is not installed: "
                "pip install 'nes_asktell[mpi]'"
            ) from exc
        comm = MPI.COMM_WORLD
    _check_comm(comm)
    spmd = SPMDMap(comm, es, every)
    agree = _agreed_timeout(comm, es)
    res = run(
        es,
        lambda: es,
        fun,
        args=args,
        maxfev=v.budget("maxfev", maxfev),
        maxiter=v.budget("maxiter", maxiter),
        workers=spmd,
        callback=callback,
        disp=level if comm.Get_rank() == 0 else 0,
        agree=agree,
    )
    spmd.check()
    return res if agree is None else with_stop(res, agree(res.stop))


def _agreed_timeout(
    comm: Any, es: Strategy
) -> Callable[[dict[str, float]], dict[str, float]] | None:
    """Return what makes the ranks agree on the strategy's ``timeout`` (None without one).

    Every other criterion follows from the numbers, the same on every rank; a wall-clock
    ``timeout`` holds on each rank at its own moment (its clock started when that rank built
    or loaded its strategy), and a rank that stopped alone left the others waiting for its
    values for ever. With it, the timeout holds on every rank once it holds on one: one
    boolean per rank and generation.
    """
    limit = es.criteria.get("timeout")
    if not isinstance(limit, (int, float)):
        return None

    def agree(held: dict[str, float]) -> dict[str, float]:
        if any(comm.allgather("timeout" in held)):
            return {**held, "timeout": float(limit)}
        return held

    return agree
