"""Engines: bytes moved and seconds per generation for every way of evaluating a population.

OpenES, 32 candidates, ``fun = np.linalg.norm`` (as cheap as a function gets, so what is
measured is the engine), an integer seed, at d = 1e4 and d = 1e6, all on this machine with 2
workers: serial; a process pool (``workers=2``) in vectors and seeds mode; a dask
``LocalCluster`` (2 worker processes) and a local Ray cluster (``ray.init(num_cpus=2)``: 2
actors) in vectors, seeds and replay mode; and an SPMD run under ``mpiexec -n 2``
(:func:`nes_asktell.mpi_optimize`, started as a subprocess that runs this module with
``--spmd D``). Each row: the median over the measured generations of the wall time of one
generation (ask, evaluate, tell) and of ``Evaluator.last_bytes`` (the pickled size of what
was sent to and received from the workers; a broadcast counted once per dask worker, once per
Ray node), after one warm-up generation, whose bytes are shown apart (replay ships the
strategy's state there). For SPMD the bytes are what the ranks receive from one another.

``python -m benchmarks engines`` writes ``docs/_static/bench/engines.rst``; ``--quick`` runs
d = 1e4 only, with fewer generations, and writes to a temporary folder.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import simple_table, write_text
from nes_asktell import Evaluator, OpenES, SPMDMap

POPSIZE = 32
Row = tuple[str, int, float, float, float]  # engine, d, s/gen, bytes/gen, first-gen bytes


def _measure(label: str, d: int, workers: Any, mode: str, repeats: int) -> Row:
    """Run 1 + `repeats` generations on `workers`; return the medians of the measured ones."""
    es = OpenES(np.zeros(d), 0.1, POPSIZE, rng=0)
    secs, sent = [], []
    first = 0.0
    with Evaluator(workers, mode=mode) as ev:
        for r in range(repeats + 1):
            t0 = time.perf_counter()
            X = es.ask()
            f = ev.evaluate(np.linalg.norm, X, strategy=es)
            es.tell(X, f)
            del X
            if r:
                secs.append(time.perf_counter() - t0)
                sent.append(float(ev.last_bytes))
            else:
                first = float(ev.last_bytes)
    row = (label, d, statistics.median(secs), statistics.median(sent), first)
    print(f"{label:22s} d={d:>9,d}  {row[2]:8.3f} s  {row[3]:14,.0f} B  first {first:,.0f} B")
    del es
    gc.collect()
    return row


def _spmd_child(d: int, repeats: int) -> None:
    """Run under mpiexec: time SPMD generations; rank 0 prints a JSON line of the medians."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    es = OpenES(np.zeros(d), 0.1, POPSIZE, rng=0)
    spmd = SPMDMap(comm, es, check_every=10)
    secs, received = [], []
    with Evaluator(spmd) as ev:
        for r in range(repeats + 1):
            comm.Barrier()
            t0 = time.perf_counter()
            X = es.ask()
            f = ev.evaluate(np.linalg.norm, X)
            es.tell(X, f)
            del X
            dt = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            got = comm.allreduce(spmd.last_bytes)  # what all ranks received
            if r:
                secs.append(dt)
                received.append(got)
            else:
                first = got
    if comm.Get_rank() == 0:
        print(json.dumps([statistics.median(secs), statistics.median(received), first]))


def _spmd(d: int, repeats: int) -> Row | None:
    """Run the SPMD child under ``mpiexec -n 2``; None when MPI is not installed."""
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    if mpiexec is None:
        print("MPI SPMD: no mpiexec (the mpi extra): skipped")
        return None
    cmd = [mpiexec, "-n", "2", sys.executable, "-m", "benchmarks.engines", "--spmd", str(d)]
    cmd += [str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
    secs, received, first = json.loads(out.stdout.strip().splitlines()[-1])
    row = ("MPI SPMD (2 ranks)", d, float(secs), float(received), float(first))
    print(f"{row[0]:22s} d={d:>9,d}  {secs:8.3f} s  {received:14,.0f} B")
    return row


def run(dims: list[int], repeats: dict[int, int]) -> list[Row]:
    """Measure every engine at every dimension; return the rows."""
    rows: list[Row] = []
    for d in dims:
        n = repeats[d]
        rows.append(_measure("serial", d, None, "auto", n))
        rows.append(_measure("pool, vectors", d, 2, "vectors", n))
        rows.append(_measure("pool, seeds", d, 2, "seeds", n))
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("dask: not installed (the dask extra): skipped")
        else:
            with (
                LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                Client(cluster) as client,
            ):
                for mode in ("vectors", "seeds", "replay"):
                    rows.append(_measure(f"dask, {mode}", d, client, mode, n))
        try:
            import ray
        except ImportError:
            print("Ray: not installed (the ray extra): skipped")
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                for mode in ("vectors", "seeds", "replay"):
                    rows.append(_measure(f"Ray, {mode}", d, ray, mode, n))
            finally:
                ray.shutdown()
        spmd = _spmd(d, n)
        if spmd is not None:
            rows.append(spmd)
    return rows


def table(rows: list[Row]) -> str:
    """Format the rows as a reStructuredText table."""
    return simple_table(
        ["engine", "d", "s / generation", "bytes / generation", "first generation bytes"],
        [[e, f"{d:.0e}", f"{s:.3f}", f"{b:,.0f}", f"{f:,.0f}"] for e, d, s, b, f in rows],
    )


def main(quick: bool) -> None:
    dims = [10_000] if quick else [10_000, 1_000_000]
    repeats = {10_000: 3 if quick else 10, 1_000_000: 5}
    text = table(run(dims, repeats))
    print(text)
    docs = Path(__file__).resolve().parents[1] / "docs" / "_static" / "bench"
    out = Path(tempfile.gettempdir()) / "nes_asktell_bench" if quick else docs
    print(f"written: {write_text(out / 'engines.rst', text)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--spmd":
        _spmd_child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.engines")
        parser.add_argument("--quick", action="store_true", help="d = 1e4 only, fewer repeats")
        main(quick=parser.parse_args().quick)
