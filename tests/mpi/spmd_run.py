"""Run under ``mpiexec -n 2``: SPMD runs bit-identical to serial, faults, divergence.

Every rank runs the same checks and prints one line per check; tests/test_mpi.py reads them.
A failed check raises, so mpiexec returns non-zero.
"""

from __future__ import annotations

import faulthandler
import signal
import time
import warnings

import numpy as np
from mpi4py import MPI

from nes_asktell import SNES, XNES, NESWarning, OpenES, mpi_optimize


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.5) ** 2))


def raise_on_rank_1(x: np.ndarray) -> float:
    if MPI.COMM_WORLD.Get_rank() == 1 and x[0] > 0.5:
        raise RuntimeError("boom")
    return sphere(x)


class CtrlCAt:
    """A sphere that receives Ctrl-C (SIGINT, as mpiexec forwards it) at its `n`-th call."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        if self.calls == self.n:
            signal.raise_signal(signal.SIGINT)  # Python raises KeyboardInterrupt here
        return sphere(x)


def slow_sphere(x: np.ndarray) -> float:
    time.sleep(0.005)
    return sphere(x)


def main() -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    assert size == 2, size
    cases = [
        (XNES, np.ones(8), {}),
        (SNES, np.ones(30), {}),
        (OpenES, np.ones(30), {"popsize": 9, "mirrored": False}),  # slices of 5 and 4
    ]
    for cls, x0, kw in cases:
        got = mpi_optimize(cls(x0, 0.5, rng=7, **kw), sphere, maxiter=40, check_every=3)
        want = cls(x0, 0.5, rng=7, **kw).optimize(sphere, maxiter=40)
        np.testing.assert_array_equal(got.x, want.x)
        assert got.fun == want.fun
        assert got.nfev == want.nfev
        assert got.nit == 40
        print(f"rank {rank}: {cls.__name__} identical to serial, f = {got.fun!r}", flush=True)

    # a function that raises on rank 1 only: NaN there, the same run on both ranks
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        es = SNES(np.ones(6), 0.5, rng=3)
        got = mpi_optimize(es, raise_on_rank_1, maxiter=5)
    mine = [w for w in caught if issubclass(w.category, NESWarning)]
    assert bool(mine) == (rank == 1), [str(w.message) for w in mine]
    assert all("rank 1" in str(w.message) and "boom" in str(w.message) for w in mine)
    xs = comm.allgather(got.x)
    np.testing.assert_array_equal(xs[0], xs[1])
    print(f"rank {rank}: raising candidates ranked worst, warned on rank 1 only", flush=True)

    # ranks that built different strategies: the same error on every rank, no hang
    message = ""
    try:
        mpi_optimize(SNES(np.ones(6), 0.5, rng=rank), sphere, maxiter=5)
    except RuntimeError as exc:
        message = str(exc)
    assert "rank(s) [1] differ from rank 0" in message, message
    print(f"rank {rank}: divergence detected", flush=True)

    # a wall-clock timeout holds on each rank at its own moment: rank 1 builds its strategy a
    # second later, so its clock runs behind. Both ranks must stop in the same generation with
    # the same result (a rank that stopped alone left the other waiting for ever: the
    # watchdog ends such a hang with a traceback and a non-zero exit)
    faulthandler.dump_traceback_later(60, exit=True)
    comm.Barrier()
    if rank == 1:
        time.sleep(1.0)
    es = SNES(np.ones(6), 0.5, popsize=8, rng=5, timeout=1.5)
    got = mpi_optimize(es, slow_sphere, maxiter=100_000)
    faulthandler.cancel_dump_traceback_later()
    assert got.stop == {"timeout": 1.5}, got.stop
    results = comm.allgather((got.nit, got.status, got.message, got.x))
    assert all(r[:3] == results[0][:3] for r in results), results
    np.testing.assert_array_equal(results[0][3], results[1][3])
    print(f"rank {rank}: a timeout stops every rank in the same generation", flush=True)

    # Ctrl-C during fun stops the run on every rank (8 candidates: 4 per rank and generation,
    # so each rank is interrupted in its 10th call, in generation 2), not only a candidate
    es = SNES(np.ones(6), 0.5, popsize=8, rng=5)
    try:
        mpi_optimize(es, CtrlCAt(10), maxiter=20)
    except KeyboardInterrupt:
        assert es.generation == 2, es.generation
        print(f"rank {rank}: Ctrl-C stops the run", flush=True)
    else:
        raise AssertionError("Ctrl-C in fun did not stop the run")


if __name__ == "__main__":
    main()
