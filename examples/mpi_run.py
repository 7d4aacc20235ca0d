"""An MPI run where every rank holds the strategy (SPMD), checked against a serial run.

Start it with ``mpiexec -n 2 python mpi_run.py`` (any number of ranks). Started as a single
process (``python mpi_run.py``), it starts itself again under ``mpiexec -n 2`` (the one installed
with the ``mpi`` extra, beside this Python). Every rank builds the same XNES with the same
integer seed, evaluates its slice of each generation and all-gathers the fitness values; the
run must equal a serial run bit for bit, or the script fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from nes_asktell import XNES, mpi_optimize


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def main() -> None:
    from mpi4py import MPI  # after the relaunch check: a single process starts no MPI

    comm = MPI.COMM_WORLD
    es = XNES(np.zeros(8), 0.5, rng=2026)  # the same strategy and seed on every rank
    res = mpi_optimize(es, rosenbrock, comm=comm, maxiter=300, check_every=10)
    serial = XNES(np.zeros(8), 0.5, rng=2026).optimize(rosenbrock, maxiter=300)
    if not np.array_equal(res.x, serial.x):
        raise SystemExit(f"rank {comm.Get_rank()}: the MPI run differs from the serial run")
    if comm.Get_rank() == 0:
        print(f"{comm.Get_size()} ranks, {res.nit} generations, {res.nfev} evaluations")
        print(f"best f = {res.fun:.3e}, identical to the serial run on every rank")


if __name__ == "__main__":
    if "PMI_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ:
        try:
            main()
        except KeyboardInterrupt:  # mpiexec passes Ctrl-C on to every rank: end quietly
            sys.exit(130)
    else:  # a single process: start the example again on 2 ranks
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent))
        mpiexec = mpiexec or shutil.which("mpiexec")
        if mpiexec is None:
            raise SystemExit("mpiexec not found: install the mpi extra (pip install .[mpi])")
        cmd = [mpiexec, "-n", "2", sys.executable, str(Path(__file__).resolve())]
        # mpiexec runs in a process group of its own, so Ctrl-C reaches this process alone,
        # which ends mpiexec (and mpiexec its ranks) before it exits.
        with subprocess.Popen(cmd, process_group=0) as run:
            try:
                sys.exit(run.wait())
            except KeyboardInterrupt:
                run.terminate()
                run.wait()
                print("interrupted", file=sys.stderr)
                sys.exit(130)  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)
