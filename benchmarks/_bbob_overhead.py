"""The BBOB benchmark's overhead table: ask + tell + stop per generation against d, no evaluations.

Ours, pycma and cmaes take turns on the sphere, beside the physical floor (drawing the noise and
one matrix product), in a fresh process with one BLAS thread.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks._bbob_methods import available, nes_class
from benchmarks._bbob_runs import Config, _pool
from benchmarks._common import simple_table, write_csv, write_text

OVERHEAD_METHODS = ("XNES", "SNES", "OpenES", "pycma", "cmaes")


def _generation_timer(method: str, d: int) -> Callable[[], float]:
    """Return a function that runs one generation on the sphere and returns its own time.

    A generation is what a run's loop does besides evaluating: ask, tell and the stopping test.
    """
    x0 = np.ones(d)
    if method in ("XNES", "SNES", "OpenES"):
        es = nes_class(method)(x0, 1.0, rng=1)

        def gen() -> float:
            t0 = time.perf_counter()
            X = es.ask()
            t1 = time.perf_counter()
            f = np.sum(X * X, axis=1)
            t2 = time.perf_counter()
            es.tell(X, f)
            es.stop()
            return t1 - t0 + time.perf_counter() - t2

        return gen
    if method == "pycma":
        import cma

        ces = cma.CMAEvolutionStrategy(x0, 1.0, {"verbose": -9, "seed": 1})

        def gen_cma() -> float:
            t0 = time.perf_counter()
            X = ces.ask()
            t1 = time.perf_counter()
            f = [float(np.sum(x * x)) for x in X]
            t2 = time.perf_counter()
            ces.tell(X, f)
            ces.stop()
            return t1 - t0 + time.perf_counter() - t2

        return gen_cma
    if method == "cmaes":
        from cmaes import CMA

        opt = CMA(mean=x0, sigma=1.0, seed=1)

        def gen_cmaes() -> float:
            t0 = time.perf_counter()
            X = [opt.ask() for _ in range(opt.population_size)]
            t1 = time.perf_counter()
            pairs = [(x, float(np.sum(x * x))) for x in X]
            t2 = time.perf_counter()
            opt.tell(pairs)
            opt.should_stop()
            return t1 - t0 + time.perf_counter() - t2

        return gen_cmaes
    raise ValueError(f"unknown method {method!r}")


def _floor_timer(d: int) -> Callable[[], float]:
    """The physical floor: draw lambda x d normals and multiply them by a d x d matrix."""
    rng = np.random.default_rng(1)
    lam = 4 + math.floor(3 * math.log(d))
    B = np.eye(d)

    def gen() -> float:
        t0 = time.perf_counter()
        Z = rng.standard_normal((lam, d))
        Z @ B
        return time.perf_counter() - t0

    return gen


def overhead(config: Config) -> tuple[list[str], list[list[str]], list[list[object]]]:
    """Time a generation vs d; return headers, rows and CSV rows (microseconds).

    The methods take turns generation by generation, so that a busy machine slows them alike;
    each cell is the median over `config.overhead_generations` generations after a warm-up.
    """
    methods, _ = available(OVERHEAD_METHODS)
    headers = ["d", "lambda", *methods, "floor"]
    rows: list[list[str]] = []
    csv_rows: list[list[object]] = []
    for d in config.overhead_dims:
        names = [*methods, "floor"]
        gens = [_floor_timer(d) if m == "floor" else _generation_timer(m, d) for m in names]
        times: list[list[float]] = [[] for _ in names]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for g in range(3 + config.overhead_generations):
                for gen, ts in zip(gens, times, strict=True):
                    t = gen()
                    if g >= 3:  # after the warm-up
                        ts.append(t)
        cells = [statistics.median(ts) * 1e6 for ts in times]
        lam = 4 + math.floor(3 * math.log(d))
        rows.append([str(d), str(lam), *(f"{c:,.0f}" for c in cells)])
        csv_rows.append([d, lam, *(round(c, 1) for c in cells)])
    return headers, rows, csv_rows


def run_overhead(config: Config, out: Path) -> str:
    """Print and write the overhead table."""
    # In a fresh process with one BLAS thread, like the runs (a multithreaded BLAS on a busy
    # machine makes small matrix products erratic).
    with _pool(1) as pool:
        headers, rows, csv_rows = pool.apply(overhead, (config,))
    text = simple_table(headers, rows)
    print("\nOverhead per generation (ask + tell + stop, no evaluations), median microseconds")
    print(text)
    write_text(out / "bbob_overhead.rst", text)
    write_csv(
        out / "bbob_overhead.csv",
        [h if h in ("d", "lambda") else f"{h}_us" for h in headers],
        csv_rows,
    )
    return text
