"""Faults in parallel evaluation: how many injected faults the evaluation survives.

``python -m benchmarks.faults`` (or ``python -m benchmarks faults``) injects each fault into an
8-candidate population (row 5 faulty, or the odd rows for "half") and evaluates it on a real
process pool of 2 workers, a thread pool of 4 and a dask ``LocalCluster`` of 2 worker
processes. A fault is survived when the evaluation returns, exactly the faulty candidates are
NaN, every healthy candidate has its exact value, and the same evaluator then evaluates a clean
population correctly. Two faults run in subprocesses: Ctrl-C in the parent while a worker is
busy (survived: it ends within 5 s with KeyboardInterrupt and leaves no child process), and a
``fun`` defined in a ``__main__`` read from stdin (survived: the documented TypeError).

Faults that cannot be injected into an engine without killing the benchmark itself (a thread
calling ``os._exit``) are not tried there. ``--quick`` skips dask and the subprocess faults.

The dask cluster is evaluated with ``restart_workers=True`` (an option, off by default): after a
timeout the workers whose threads still run a hung call restart through their nannies, so the
clean evaluation that follows has threads again. The process pool kills its hung workers. On the
thread pool a thread cannot be stopped and a pool passed in is not replaced: in "half the rows
hang" the hanging calls (and the one left hanging by "hang past timeout", which shares the pool)
hold most or all threads of the 4-thread pool, and the evaluator's spare threads (its default
for a ``ThreadPoolExecutor``) run the healthy candidate queued behind them and the clean
evaluation that follows.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks._faulty import (
    RELEASE,
    dies,
    exits,
    half_die,
    half_hang,
    hangs,
    interrupts,
    raises,
    returns_array,
    returns_none,
    returns_text,
    sphere,
)
from nes_asktell import Evaluator, NESWarning, shutdown_pools

TIMEOUT = 2.0


#: name -> (fun, faulty rows, needs a timeout, kills its process)
FAULTS: dict[str, tuple[Callable[[np.ndarray], object], list[int], bool, bool]] = {
    "raise": (raises, [5], False, False),
    "SystemExit": (exits, [5], False, False),
    "KeyboardInterrupt": (interrupts, [5], False, False),
    "return None": (returns_none, [5], False, False),
    "return a string": (returns_text, [5], False, False),
    "return a 1e6 array": (returns_array, [5], False, False),
    "os._exit": (dies, [5], False, True),
    "hang past timeout": (hangs, [5], True, False),
    "half the rows os._exit": (half_die, [1, 3, 5, 7], False, True),
    "half the rows hang": (half_hang, [1, 3, 5, 7], True, False),
}


def population() -> np.ndarray:
    return np.column_stack([np.arange(8.0), np.linspace(-1.0, 1.0, 8)])


def survives(workers: object, name: str, restart_workers: bool = False) -> bool:
    """Inject fault `name` on `workers`; return whether the evaluation survived it."""
    fun, bad, timed, _ = FAULTS[name]
    X = population()
    want = np.array([sphere(x) for x in X])
    want[bad] = np.nan
    timeout = TIMEOUT if timed else None
    restart = restart_workers and timed
    try:
        with Evaluator(workers, timeout=timeout, restart_workers=restart) as ev:  # type: ignore[arg-type]
            ev.evaluate(sphere, X)  # workers running before any clock
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NESWarning)
                f = ev.evaluate(fun, X)
            again = ev.evaluate(sphere, X)
    except Exception as exc:
        print(f"    {name}: {type(exc).__name__}: {exc}")
        return False
    ok = np.array_equal(f, want, equal_nan=True)
    ok = ok and np.array_equal(again, [sphere(x) for x in X])
    if not ok:
        print(f"    {name}: got {f}")
    return ok


CTRL_C = """
import threading
import numpy as np
from nes_asktell import SNES

def hang(x):
    print("busy", flush=True)
    threading.Event().wait(300)
    return 0.0

if __name__ == "__main__":
    SNES(np.zeros(3), 0.5, rng=0).optimize(hang, workers=2)
"""

FROM_STDIN = """
import numpy as np
from nes_asktell import evaluate

def fun(x):
    return float(np.sum(x**2))

try:
    evaluate(np.zeros((4, 2)), fun, 2)
except TypeError as exc:
    print("TypeError:", exc)
"""


def ctrl_c_survived(tmp: str) -> bool:
    """Ctrl-C while a pool worker is busy: a prompt KeyboardInterrupt and no child left."""
    import psutil

    path = os.path.join(tmp, "ctrl_c_run.py")
    with open(path, "w") as fh:
        fh.write(CTRL_C)
    proc = subprocess.Popen(
        [sys.executable, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "busy":
            return False
        kids = psutil.Process(proc.pid).children(recursive=True)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
    except subprocess.TimeoutExpired:
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    _, alive = psutil.wait_procs(kids, timeout=5)
    left = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    return took < 5.0 and "KeyboardInterrupt" in err and not left


def stdin_main_survived() -> bool:
    """A `fun` defined in a __main__ read from stdin, with a process pool: the TypeError."""
    out = subprocess.run(
        [sys.executable, "-"], input=FROM_STDIN, capture_output=True, text=True, timeout=120
    )
    return "must be picklable" in out.stdout and "Traceback" not in out.stderr


def main(quick: bool = False) -> tuple[int, int]:
    """Print each fault's outcome per engine; return (faults tried, faults survived)."""
    import tempfile

    tried = survived = 0

    def record(engine: str, name: str, ok: bool) -> None:
        nonlocal tried, survived
        tried += 1
        survived += ok
        print(f"  {engine:12s} {name:24s} {'survived' if ok else 'NOT survived'}", flush=True)

    for name in FAULTS:
        record("pool(2)", name, survives(2, name))
    shutdown_pools()
    with ThreadPoolExecutor(4) as tp:
        for name, (_, _, _, kills) in FAULTS.items():
            if not kills:
                record("threads(4)", name, survives(tp, name))
        RELEASE.set()
    if not quick:
        try:
            import distributed
        except ImportError:
            distributed = None
        if distributed is not None:
            with (
                distributed.LocalCluster(
                    n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                RELEASE.clear()
                for name, (_, _, _, kills) in FAULTS.items():
                    if not kills:
                        record("dask(2x2)", name, survives(client, name, restart_workers=True))
        with tempfile.TemporaryDirectory() as tmp:
            record("subprocess", "Ctrl-C, busy pool worker", ctrl_c_survived(tmp))
        record("subprocess", "fun from stdin, pool", stdin_main_survived())
    print(f"\nfaults tried {tried}, survived {survived}")
    return tried, survived


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults")
    parser.add_argument("--quick", action="store_true", help="no dask, no subprocesses")
    main(quick=parser.parse_args().quick)
