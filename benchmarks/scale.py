"""Scale: ask+tell time against the hardware floor up to d = 1e6, and evaluation on dask.

``--quick`` (d up to 1e5, fewer repeats) writes to a temporary folder, not to the docs.

Part 1, per-generation ask+tell time (popsize 64) for d = 1e2 .. 1e6, measured side by side in one
run (round robin, median of the repeats after a warm-up): OpenES and SNES with their defaults
(mirrored sampling) on 1 and 2 threads, SNES also with ``mirrored=False``, the floor (one call
drawing the (64, d) float64 noise with numpy's default generator plus one matrix-vector
product), the same floor drawing into a buffer reused across generations (no page faults),
pycma's diagonal mode (``CMA_diagonal=True``) and cmaes' ``SepCMA``.

Part 2, d = 1e6, 32 candidates, a dask ``LocalCluster`` with 2 worker processes: wall time per
generation (ask, evaluate, tell) and bytes moved per generation, vectors against seeds (the mean
broadcast every generation) against replay (workers keep replicas of the strategy and replay its
updates; the state travels in the first generation only, which is left out of the median as a
warm-up, and its size is printed). The bytes are the serialized payloads (pickle protocol 5
sizes of what is sent and received, a broadcast counted once per worker) and, as a cross-check,
the loopback interface counter over the generation (all processes on the machine, so an upper
bound).

``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``: on some processors these are set in the
environment and slow numpy's kernels; the run prints them. To benchmark without them, unset both
for this command alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks
scale`` (never in tests).
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks._common import OUT_DIR, simple_table, write_csv, write_text
from nes_asktell import SNES, Evaluator, OpenES

POPSIZE = 64
Step = Callable[[], None]


def _floor(d: int) -> Step:
    rng = np.random.default_rng(1)
    u = rng.standard_normal(POPSIZE)

    def step() -> None:
        Z = rng.standard_normal((POPSIZE, d))
        u @ Z

    return step


def _floor_reused(d: int) -> Step:
    """The floor without page faults: the same draw into a buffer reused across generations."""
    rng = np.random.default_rng(1)
    u = rng.standard_normal(POPSIZE)
    Z = np.empty((POPSIZE, d))

    def step() -> None:
        rng.standard_normal(out=Z)
        u @ Z

    return step


def _nes(cls: type, d: int, threads: int, **options: object) -> Step:
    es = cls(np.zeros(d), 0.1, POPSIZE, rng=0, threads=threads, **options)
    f = np.random.default_rng(2).standard_normal(POPSIZE)

    def step() -> None:
        X = es.ask()
        es.tell(X, f)

    return step


def _pycma(d: int) -> Step:
    import cma

    opts = {"CMA_diagonal": True, "popsize": POPSIZE, "seed": 1, "verbose": -9, "verb_log": 0}
    es = cma.CMAEvolutionStrategy(np.zeros(d), 0.1, opts)
    f = list(np.random.default_rng(2).standard_normal(POPSIZE))

    def step() -> None:
        es.tell(es.ask(), f)

    return step


def _sepcma(d: int) -> Step:
    from cmaes import SepCMA

    es = SepCMA(np.zeros(d), 0.1, population_size=POPSIZE, seed=1)
    f = np.random.default_rng(2).standard_normal(POPSIZE)

    def step() -> None:
        X = [es.ask() for _ in range(POPSIZE)]
        es.tell(list(zip(X, f, strict=True)))

    return step


METHODS: dict[str, Callable[[int], Step]] = {
    "floor": _floor,
    "floor, reused buffer": _floor_reused,
    "OpenES": lambda d: _nes(OpenES, d, 1),
    "OpenES threads=2": lambda d: _nes(OpenES, d, 2),
    "SNES": lambda d: _nes(SNES, d, 1),
    "SNES threads=2": lambda d: _nes(SNES, d, 2),
    "SNES unmirrored": lambda d: _nes(SNES, d, 1, mirrored=False),
    "SNES unmirrored threads=2": lambda d: _nes(SNES, d, 2, mirrored=False),
    "pycma diagonal": _pycma,
    "cmaes SepCMA": _sepcma,
}


def asktell(dims: list[int], repeats: int, max_rounds: int = 50) -> dict[int, dict[str, float]]:
    """Return the median ask+tell seconds per dimension and method."""
    out: dict[int, dict[str, float]] = {}
    for d in dims:
        steps = {name: make(d) for name, make in METHODS.items()}
        times: dict[str, list[float]] = {name: [] for name in steps}
        rounds = max(repeats, min(max_rounds, 2_000_000 // d))  # more where a step is short
        for r in range(rounds + 1):
            for name, step in steps.items():
                gc.collect()
                t0 = time.perf_counter()
                step()
                if r:  # the first round warms up (allocations, thread pools)
                    times[name].append(time.perf_counter() - t0)
        out[d] = {name: statistics.median(t) for name, t in times.items()}
        del steps
        gc.collect()
        row = "  ".join(f"{k} {v:.4f}" for k, v in out[d].items())
        print(f"d={d:>8d}: {row}", flush=True)
    return out


def _loopback_bytes() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    lo = psutil.net_io_counters(pernic=True).get("lo")
    return None if lo is None else int(lo.bytes_sent)


def on_dask(d: int, n: int, repeats: int) -> list[tuple[str, float, float, float | None]]:
    """Return (mode, seconds, payload MB, loopback MB) per generation on a 2-worker cluster.

    Vectors, seeds and replay run twice: with a default ``Client`` (data to the workers goes
    through the scheduler) and with ``Client(direct_to_workers=True)`` (the client sends it
    directly). The first generation (for replay: the one that ships the state) is a warm-up.
    """
    from distributed import Client, LocalCluster

    rows = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        Client(cluster, direct_to_workers=True) as direct,
    ):
        runs: list[tuple[str, object, str]] = [
            ("serial", None, "auto"),
            ("vectors, via the scheduler", client, "vectors"),
            ("seeds, via the scheduler", client, "seeds"),
            ("replay, via the scheduler", client, "replay"),
            ("vectors, direct_to_workers", direct, "vectors"),
            ("seeds, direct_to_workers", direct, "seeds"),
            ("replay, direct_to_workers", direct, "replay"),
        ]
        for label, workers, mode in runs:
            es = OpenES(np.zeros(d), 0.1, n, rng=0)
            secs, payload, loop = [], [], []
            with Evaluator(workers, mode=mode) as ev:
                for r in range(repeats + 1):
                    lo0 = _loopback_bytes()
                    t0 = time.perf_counter()
                    X = es.ask()
                    f = ev.evaluate(np.linalg.norm, X, strategy=es)
                    es.tell(X, f)
                    del X
                    if not r and mode == "replay":
                        print(f"dask {label}: first generation {ev.last_bytes / 1e6:.1f} MB")
                    if r:
                        secs.append(time.perf_counter() - t0)
                        payload.append(ev.last_bytes / 1e6)
                        lo1 = _loopback_bytes()
                        if lo0 is not None and lo1 is not None:
                            loop.append((lo1 - lo0) / 1e6)
            rows.append(
                (
                    label,
                    statistics.median(secs),
                    statistics.median(payload),
                    statistics.median(loop) if loop else None,
                )
            )
            print(f"dask {label}: {rows[-1]}", flush=True)
            del es
            gc.collect()
    return rows


def dask_table(rows: list[tuple[str, float, float, float | None]]) -> str:
    """Format the rows of :func:`on_dask` as a reStructuredText table."""
    return simple_table(
        ["evaluation", "s / generation", "payload MB / generation", "loopback MB / generation"],
        [[m, f"{s:.3f}", f"{p:.3f}", "" if lo is None else f"{lo:.3f}"] for m, s, p, lo in rows],
    )


def _plot(res: dict[int, dict[str, float]], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    dims = sorted(res)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in METHODS:
        style: dict[str, object] = {"marker": "o"}
        if name.startswith("floor"):
            style = {"color": "black" if name == "floor" else "gray", "linestyle": "--"}
        ax.loglog(dims, [res[d][name] for d in dims], label=name, **style)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("seconds per generation (ask + tell)")
    ax.set_title(f"ask + tell, popsize {POPSIZE} (median); floor: draw noise + one mat-vec")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "scale_asktell.png", dpi=110)
    plt.close(fig)


def main(quick: bool) -> None:
    """Run both parts; print the tables and write them (and the plot) to docs/_static/bench."""
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"numpy {np.__version__}, {os.cpu_count()} cores, {env}")
    dims = [100, 10_000, 100_000] if quick else [100, 1_000, 10_000, 100_000, 1_000_000]
    res = asktell(dims, repeats=2 if quick else 5, max_rounds=5 if quick else 50)
    out = Path(tempfile.gettempdir()) / "nes_asktell_bench" if quick else OUT_DIR
    names = list(METHODS)
    headers = ["d", *[f"{n} (s)" for n in names]]
    rows = [[str(d), *[f"{res[d][n]:.4f}" for n in names]] for d in dims]
    ratio_headers = ["d", *[f"{n} / floor" for n in names[1:]]]
    ratio_rows = [
        [str(d), *[f"{res[d][n] / res[d]['floor']:.2f}" for n in names[1:]]] for d in dims
    ]
    t1 = simple_table(headers, rows)
    t2 = simple_table(ratio_headers, ratio_rows)
    print(t1)
    print(t2)
    write_text(out / "scale_asktell.rst", t1)
    write_text(out / "scale_ratios.rst", t2)
    write_csv(out / "scale_asktell.csv", ["d", *names], rows)
    _plot(res, out)
    drows = on_dask(1_000_000, 32, repeats=1 if quick else 5)
    t3 = dask_table(drows)
    print(t3)
    write_text(out / "scale_dask.rst", t3)
    print(f"tables and figure written to {out}")
