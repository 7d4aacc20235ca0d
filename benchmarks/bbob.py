"""BBOB benchmark: evaluations to reach f - f_opt <= 1e-8 (ERT), ours vs pycma and cmaes.

Run it with ``python -m benchmarks bbob`` (``make bench`` runs every benchmark); ``--quick`` runs a
small configuration and writes its output to a temporary folder instead of the docs.

Protocol (issue 3): BBOB functions f1, f2, f7, f8, f10, f15, f21 from the COCO ``bbob`` suite at
d = 2, 5, 10, 20, instances 1-5; x0 uniform in [-4, 4]^d (seeded by function, dimension and
instance: every method starts from the same point) and sigma0 = 2. Each method runs with its
default settings until the target f - f_opt <= 1e-8 is hit (counted exactly: the run stops at
the evaluation that hits it, even within a generation), until it stops by its own criteria, or
until the budget of 1e4 * d evaluations is spent. ERT = (evaluations of the successful runs +
budget * failures) / successes, infinite when no run succeeds.

A second table times one generation (ask + tell, without the function evaluations) against d.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np

from benchmarks._common import OUT_DIR, fmt_count, fmt_ratio, simple_table, write_csv, write_text

FUNCTIONS = (1, 2, 7, 8, 10, 15, 21)
DIMS = (2, 5, 10, 20)
INSTANCES = (1, 2, 3, 4, 5)
METHODS = ("XNES", "SNES", "OpenES", "seed", "pycma", "cmaes")
#: Restart variants, run on these functions only.
EXTRA = {15: ("XNES+IPOP", "pycma+IPOP")}
TARGET = 1e-8
SIGMA0 = 2.0
BUDGET_PER_DIM = 10_000
#: ECDF targets on f - f_opt: 10^2 ... 10^-8, five per decade (as in COCO's plots).
ECDF_TARGETS = 10.0 ** (np.arange(10, -41, -1) / 5)
OVERHEAD_METHODS = ("XNES", "SNES", "OpenES", "pycma", "cmaes")
NAMES = {"1": "sphere", "2": "ellipsoid", "7": "step ellipsoid", "8": "Rosenbrock"}
NAMES.update({"10": "rot. ellipsoid", "15": "Rastrigin", "21": "Gallagher 101"})


#: {(dim, function, method): (ERT, successes, runs)}
ErtTable = dict[tuple[int, int, str], tuple[float, int, int]]


@dataclass(frozen=True)
class Config:
    """What to run: functions, dimensions, instance indices, methods, budget, processes."""

    functions: tuple[int, ...] = FUNCTIONS
    dims: tuple[int, ...] = DIMS
    instances: tuple[int, ...] = INSTANCES
    methods: tuple[str, ...] = METHODS
    extra: dict[int, tuple[str, ...]] = field(default_factory=lambda: dict(EXTRA))
    budget_per_dim: int = BUDGET_PER_DIM
    processes: int = 2
    overhead_dims: tuple[int, ...] = (2, 5, 10, 20, 50, 100)
    overhead_generations: int = 21
    seed_problem_runs: int = 25


QUICK = Config(functions=(1, 2, 8, 15), dims=(2, 5), instances=(1, 2), overhead_dims=(2, 10, 50))


@dataclass(frozen=True)
class Run:
    """One run: evaluations used, success, first evaluation reaching each ECDF target."""

    method: str
    function: int
    dim: int
    instance: int
    evals: int
    success: bool
    hits: tuple[float, ...]
    seconds: float
    stop: str = ""
    error: str = ""


# ---------------------------------------------------------------------------- the objective
class _StopRunError(Exception):
    """Raised by the objective when the target is hit or the budget is spent."""


class Objective:
    """A BBOB problem that counts evaluations, records target hits and stops the run."""

    def __init__(self, problem: Callable[[np.ndarray], float], fopt: float, budget: int) -> None:
        self.problem, self.fopt, self.budget = problem, fopt, budget
        self.evals = 0
        self.solved = False
        self.hits = np.full(ECDF_TARGETS.size, np.inf)
        self._next = 0  # index of the first target not reached yet

    def __call__(self, x: np.ndarray) -> float:
        if self.solved or self.evals >= self.budget:
            raise _StopRunError
        f = float(self.problem(np.asarray(x, dtype=float)))
        self.evals += 1
        delta = f - self.fopt
        while self._next < ECDF_TARGETS.size and delta <= ECDF_TARGETS[self._next]:
            self.hits[self._next] = self.evals
            self._next += 1
        if delta <= TARGET:
            self.solved = True
            raise _StopRunError
        return f


def load_problem(function: int, dim: int, index: int) -> tuple[Callable[..., float], float, int]:
    """Return the COCO problem ``(function, dim, instance index)``, its f_opt and instance id."""
    import cocoex

    options = f"dimensions:{dim} instance_indices:{index} function_indices:{function}"
    problem = cocoex.Suite("bbob", "", options).get_problem(0)
    bare = cocoex.BareProblem("bbob", function, dim, problem.id_instance)
    x = np.linspace(-1.0, 1.0, dim)
    if bare(x) != problem(x):  # the bare problem gives f_opt; check it is the same function
        raise RuntimeError(f"f_opt lookup mismatch for {problem.id}")
    return problem, float(bare.best_value()), int(problem.id_instance)


def start(function: int, dim: int, index: int) -> tuple[np.ndarray, int]:
    """Return x0 (uniform in [-4, 4]^d) and the integer seed shared by every method."""
    x0 = np.random.default_rng([function, dim, index]).uniform(-4.0, 4.0, dim)
    return x0, 10_000 * function + 100 * dim + index


# ---------------------------------------------------------------------------- the methods
def nes_class(name: str) -> type:
    """Return the strategy class `name` (``XNES``, ``SNES``, ``OpenES``) or raise ImportError."""
    import nes_asktell

    modules = {"XNES": "_xnes", "SNES": "_snes", "OpenES": "_openes"}
    try:
        return getattr(nes_asktell, name)  # type: ignore[no-any-return]
    except AttributeError:
        import importlib

        mod = importlib.import_module(f"nes_asktell.{modules[name]}")
        return getattr(mod, name)  # type: ignore[no-any-return]


def _ask_tell(es: object, obj: Objective) -> str:
    while not (stop := es.stop()):  # type: ignore[attr-defined]
        X = es.ask()  # type: ignore[attr-defined]
        es.tell(X, [obj(x) for x in X])  # type: ignore[attr-defined]
    return "+".join(stop)


def run_nes(name: str, obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """XNES, SNES or OpenES with default settings; return why it stopped."""
    return _ask_tell(nes_class(name)(x0, sigma0, rng=seed), obj)


def run_seed(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """The 2017 seed configuration: fixed sigma 0.1 (not `sigma0`), popsize 50, SGD, lr 0.001."""
    es = nes_class("OpenES")(
        x0,
        sigma0=0.1,
        popsize=50,
        optimizer="sgd",
        learning_rate=0.001,
        shaping="zscore",
        mirrored=False,
        rng=np.random.RandomState(seed),  # noise in sequence, as in the 2017 seed
    )
    return _ask_tell(es, obj)


def run_pycma(
    obj: Objective, x0: np.ndarray, seed: int, sigma0: float, popsize: int | None = None
) -> str:
    """pycma's CMAEvolutionStrategy with default options (display and logging off)."""
    import cma

    opts: dict[str, object] = {"verbose": -9, "seed": seed, "maxfevals": obj.budget}
    opts["ftarget"] = obj.fopt + TARGET
    if popsize is not None:
        opts["popsize"] = popsize
    es = cma.CMAEvolutionStrategy(x0, sigma0, opts)
    while not (stop := es.stop()):
        X = es.ask()
        es.tell(X, [obj(x) for x in X])
    return "+".join(stop)


def run_cmaes(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """The cmaes package's CMA with default settings."""
    from cmaes import CMA

    opt = CMA(mean=x0.copy(), sigma=sigma0, seed=seed)
    while not opt.should_stop():
        pairs = []
        for _ in range(opt.population_size):
            x = opt.ask()
            pairs.append((x, obj(x)))
        opt.tell(pairs)
    return "should_stop"


def run_xnes_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """XNES inside the library's IPOP restarts (default settings, the whole budget)."""
    from nes_asktell._restarts import IPOP

    ipop = IPOP(nes_class("XNES"), x0, sigma0, maxfev=obj.budget, rng=seed)
    return _ask_tell(ipop, obj)


def run_pycma_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma restarted from x0 with a doubled popsize, 9 restarts at most (IPOP).

    The same schedule as the library's IPOP defaults; the budget is shared by all runs.
    """
    popsize = 4 + math.floor(3 * math.log(x0.size))
    stops = []
    for k in range(10):
        stops.append(run_pycma(obj, x0, seed + 1000 * k, sigma0, popsize))
        popsize *= 2
    return f"{len(stops)} runs, last: {stops[-1]}"


#: method -> runner(objective, x0, seed, sigma0), returning why the method stopped by itself.
RUNNERS: dict[str, Callable[[Objective, np.ndarray, int, float], str]] = {
    "XNES": lambda o, x, s, sig: run_nes("XNES", o, x, s, sig),
    "SNES": lambda o, x, s, sig: run_nes("SNES", o, x, s, sig),
    "OpenES": lambda o, x, s, sig: run_nes("OpenES", o, x, s, sig),
    "seed": run_seed,
    "pycma": run_pycma,
    "cmaes": run_cmaes,
    "XNES+IPOP": run_xnes_ipop,
    "pycma+IPOP": run_pycma_ipop,
}


def run_one(task: tuple[str, int, int, int, int]) -> Run:
    """Run a method on one problem and return its :class:`Run` (errors are recorded)."""
    method, function, dim, index, budget_per_dim = task
    problem, fopt, instance = load_problem(function, dim, index)
    obj = Objective(problem, fopt, budget_per_dim * dim)
    x0, seed = start(function, dim, index)
    error = ""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            stop = RUNNERS[method](obj, x0, seed, SIGMA0)
        except _StopRunError:
            stop = "target" if obj.solved else "budget"
        except Exception as exc:  # a broken method must not end the whole benchmark
            stop, error = "error", f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    hits = tuple(float(h) for h in obj.hits)
    return Run(method, function, dim, instance, obj.evals, obj.solved, hits, seconds, stop, error)


def available(methods: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Split `methods` into the importable ones and the missing ones (with the reason)."""
    ok, missing = [], {}
    for m in methods:
        try:
            if m in ("XNES", "SNES", "OpenES"):
                nes_class(m)
            elif m == "XNES+IPOP":
                nes_class("XNES")
                from nes_asktell._restarts import IPOP  # noqa: F401
            elif m.startswith("pycma"):
                import cma  # noqa: F401
            elif m == "cmaes":
                import cmaes  # noqa: F401
            ok.append(m)
        except ImportError as exc:
            missing[m] = str(exc)
    return ok, missing


def _progress(results: Iterable[Run], total: int) -> list[Run]:
    """Collect `results`, printing a line at every tenth of the runs."""
    runs: list[Run] = []
    t0 = time.perf_counter()
    for r in results:
        runs.append(r)
        if len(runs) * 10 // total > (len(runs) - 1) * 10 // total:
            print(f"  {len(runs)}/{total} runs, {time.perf_counter() - t0:.0f} s", flush=True)
    return runs


def run_all(config: Config) -> tuple[list[Run], float, dict[str, str]]:
    """Run every (method, function, dim, instance) in a pool; return runs, wall time, missing."""
    tasks = []
    names = list(config.methods) + sorted(
        {m for f in config.functions for m in config.extra.get(f, ())}
    )
    methods, missing = available(names)
    for f in config.functions:
        for d in config.dims:
            for m in methods:
                if m in config.methods or m in config.extra.get(f, ()):
                    tasks += [(m, f, d, i, config.budget_per_dim) for i in config.instances]
    # Longest first, so that the two workers finish together: budget times a rough cost factor.
    slow = {"OpenES": 3, "seed": 4, "pycma+IPOP": 3, "XNES+IPOP": 3}
    tasks.sort(key=lambda t: -t[2] * slow.get(t[0], 1) * (1 + (t[1] in (15, 21))))
    t0 = time.perf_counter()
    if config.processes > 1:
        with _pool(config.processes) as pool:
            runs = _progress(pool.imap_unordered(run_one, tasks, chunksize=1), len(tasks))
    else:
        runs = _progress(map(run_one, tasks), len(tasks))
    return runs, time.perf_counter() - t0, missing


@contextlib.contextmanager
def _pool(processes: int) -> Iterator[Pool]:
    """A pool of fresh ("spawn") processes with one BLAS thread each.

    The pool provides the parallelism; a multithreaded BLAS in each worker would only fight
    for the cores (and numpy reads the thread count when it is imported, hence "spawn").
    """
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            yield pool
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
        for k in (k for k, v in saved.items() if v is None):
            os.environ.pop(k, None)


# ---------------------------------------------------------------------------- aggregation
def ert(runs: Sequence[Run], budget: int) -> tuple[float, int]:
    """Return (ERT, successes): failures are charged `budget`; ERT is inf without success."""
    succ = sum(r.success for r in runs)
    total = sum(r.evals if r.success else budget for r in runs)
    return (total / succ if succ else math.inf), succ


def ert_table(runs: Sequence[Run], config: Config) -> ErtTable:
    """Return {(dim, function, method): (ERT, successes, runs)}."""
    groups: dict[tuple[int, int, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dim, r.function, r.method), []).append(r)
    out = {}
    for (d, f, m), rs in groups.items():
        e, s = ert(rs, config.budget_per_dim * d)
        out[(d, f, m)] = (e, s, len(rs))
    return out


def _ratio(a: float, b: float) -> float:
    if math.isinf(b):
        return math.nan
    return a / b


def dim_tables(table: ErtTable, config: Config) -> dict[int, str]:
    """Return one simple table per dimension: ERT (successes/runs) and ratios to pycma."""
    methods = [
        m
        for m in [*config.methods, *sorted({m for v in config.extra.values() for m in v})]
        if any(k[2] == m for k in table)
    ]
    ratios = [m for m in ("XNES", "SNES") if m in methods and "pycma" in methods]
    headers = ["f", *methods, *(f"{m}/pycma" for m in ratios)]
    out = {}
    for d in config.dims:
        rows = []
        for f in config.functions:
            row = [f"f{f} {NAMES.get(str(f), '')}".strip()]
            for m in methods:
                cell = table.get((d, f, m))
                row.append("" if cell is None else f"{fmt_count(cell[0])} ({cell[1]}/{cell[2]})")
            pyc = table.get((d, f, "pycma"), (math.inf, 0, 0))[0]
            for m in ratios:
                row.append(fmt_ratio(_ratio(table.get((d, f, m), (math.inf, 0, 0))[0], pyc)))
            rows.append(row)
        out[d] = simple_table(headers, rows)
    return out


def target_checks(
    table: ErtTable, seed: SeedResults | None = None
) -> list[tuple[str, str, bool | None]]:
    """Evaluate the issue's targets: (target, measured evidence, met or None if not run).

    `table` holds the BBOB ERTs, `seed` the results on the seed's 3-d problem.
    """
    checks: list[tuple[str, str, bool | None]] = []
    for name, m, fs, ds, limit in (
        (
            "XNES ERT <= 1.5x pycma on f1, f2, f8, f10 at d = 5, 10, 20",
            "XNES",
            (1, 2, 8, 10),
            (5, 10, 20),
            1.5,
        ),
        (
            "goal: XNES ERT <= 1.0x pycma on the same cells",
            "XNES",
            (1, 2, 8, 10),
            (5, 10, 20),
            1.0,
        ),
        ("SNES ERT <= pycma on f1, f2 at d >= 10", "SNES", (1, 2), (10, 20), 1.0),
    ):
        cells = [(f, d) for f in fs for d in ds]
        if any((d, f, k) not in table for f, d in cells for k in (m, "pycma")):
            checks.append((name, "not run", None))
            continue
        ratios = {(f, d): _ratio(table[(d, f, m)][0], table[(d, f, "pycma")][0]) for f, d in cells}
        # nan: pycma never succeeded; the cell then counts as met only if ours did succeed
        above = [
            f"f{f} d={d}: {fmt_ratio(r)}"
            for (f, d), r in ratios.items()
            if (r > limit) or (math.isnan(r) and math.isinf(table[(d, f, m)][0]))
        ]
        worst = max(ratios.values(), key=lambda r: -1.0 if math.isnan(r) else r)
        evidence = f"worst ratio {fmt_ratio(worst)}; {len(above)} of {len(cells)} cells above"
        if above:
            evidence += ": " + ", ".join(above[:3]) + (", ..." if len(above) > 3 else "")
        checks.append((name, evidence, not above))
    name = "XNES+IPOP solves f15 at d = 5 in >= 4 of 5 instances"
    cell = table.get((5, 15, "XNES+IPOP"))
    if cell is None:
        checks.append((name, "not run", None))
    else:
        evidence = f"{cell[1]}/{cell[2]} solved, ERT {fmt_count(cell[0])}"
        if cell[2] != 5:
            checks.append((name, evidence + " (the target is about 5 instances)", None))
        else:
            checks.append((name, evidence, cell[1] >= 4))
    name = "XNES and SNES solve the seed's 3-d problem in a median of <= 600 evaluations"
    if seed is None or any(m not in seed for m in ("XNES", "SNES")):
        checks.append((name, "not run", None))
    else:
        medians = {m: seed[m][0] for m in ("XNES", "SNES")}
        evidence = ", ".join(f"{m} {fmt_count(v)}" for m, v in medians.items())
        checks.append((name, evidence, max(medians.values()) <= 600))
    return checks


# ---------------------------------------------------------------------------- seed problem
#: {method: (median evaluations, successes, runs)}
SeedResults = dict[str, tuple[float, int, int]]
SEED_SOLUTION = np.array([0.5, 0.1, -0.3])


def seed_problem(methods: Sequence[str], n_seeds: int, budget: int = 10_000) -> SeedResults:
    """Evaluations to f < 1e-8 on the seed's problem ``|w - [0.5, 0.1, -0.3]|^2`` (issue 3).

    x0 ~ N(0, I) and sigma0 = 1, seeds 0 .. n_seeds - 1; a run that fails counts as `budget`
    in the median. The count is that of the first told candidate below 1e-8.
    """
    out: SeedResults = {}
    for m in methods:
        counts = []
        for seed in range(n_seeds):
            x0 = np.random.default_rng(seed).standard_normal(3)
            obj = Objective(lambda w: float(np.sum((w - SEED_SOLUTION) ** 2)), 0.0, budget)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with contextlib.suppress(_StopRunError):
                    RUNNERS[m](obj, x0, seed + 1, 1.0)
            counts.append(obj.evals if obj.solved else budget)
        solved = sum(c < budget for c in counts)
        out[m] = (float(statistics.median(counts)), solved, n_seeds)
    return out


# ---------------------------------------------------------------------------- ECDF plot
def ecdf_plot(runs: Sequence[Run], config: Config, path: Path) -> Path | None:
    """Plot, per dimension, the fraction of (run, target) pairs reached vs evaluations / d."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    methods = [m for m in config.methods if any(r.method == m for r in runs)]
    n = len(config.dims)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False, sharey=True
    )
    grid = np.linspace(0.0, math.log10(config.budget_per_dim), 401)
    styles = {
        "XNES": "C0-",
        "SNES": "C1-",
        "OpenES": "C2:",
        "seed": "C7:",
        "pycma": "C3--",
        "cmaes": "C4--",
    }
    for ax, d in zip(axes.ravel(), config.dims, strict=False):
        for m in methods:
            hits = np.array([r.hits for r in runs if r.method == m and r.dim == d])
            if hits.size == 0:
                continue
            x = np.log10(hits / d)
            frac = [(x <= g).mean() for g in grid]
            ax.plot(grid, frac, styles.get(m, "-"), label=m, lw=1.6)
        ax.set_title(
            f"d = {d}: {len(config.functions)} functions x {len(config.instances)} instances"
        )
        ax.set_xlabel("log10(evaluations / d)")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of (run, target) pairs")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        "BBOB runtime ECDF, targets 1e2..1e-8 on f - f_opt; functions "
        + ", ".join(f"f{f}" for f in config.functions),
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ratio_plot(table: ErtTable, config: Config, path: Path) -> Path | None:
    """Plot ERT / pycma's ERT against d, one panel per function (missing points: no success)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator
    except ImportError:
        return None
    methods = [m for m in ("XNES", "SNES", "cmaes") if any(k[2] == m for k in table)]
    n = len(config.functions)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False)
    marks = {"XNES": "C0o-", "SNES": "C1s-", "cmaes": "C4^--"}
    for ax, f in zip(axes.ravel(), config.functions, strict=False):
        for m in methods:
            pts = [
                (d, _ratio(table[(d, f, m)][0], table[(d, f, "pycma")][0]))
                for d in config.dims
                if (d, f, m) in table and (d, f, "pycma") in table
            ]
            pts = [(d, r) for d, r in pts if math.isfinite(r)]
            if pts:
                ax.plot(*zip(*pts, strict=True), marks.get(m, "o-"), label=m, ms=4)
        ax.axhline(1.0, color="C3", lw=1.0, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 0.4), max(hi, 2.5))  # at least 0.5, 1 and 2 on the axis
        ax.set_xlim(min(config.dims) / 1.2, max(config.dims) * 1.2)
        ax.set_xticks(config.dims, [str(d) for d in config.dims])
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.minorticks_off()
        ax.set_title(f"f{f} {NAMES.get(str(f), '')}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel("d")
    for ax in axes[:, 0]:
        ax.set_ylabel("ERT / ERT of pycma")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("ERT relative to pycma (dashed line; below: fewer evaluations)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- overhead
def _generation_timer(method: str, d: int) -> Callable[[], float]:
    """Return a function that runs one generation on the sphere and returns its ask+tell time."""
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
    """Time ask+tell per generation vs d; return headers, rows and CSV rows (microseconds).

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


# ---------------------------------------------------------------------------- main
def _git_commit() -> str:
    """Return the short commit of the working tree, flagging uncommitted library changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "nes_asktell"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return head + (f" (with uncommitted changes in {', '.join(changed)})" if changed else "")


def versions() -> str:
    """Return the versions of the compared packages."""
    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    out.append(f"nes_asktell at commit {_git_commit()}")
    for mod in ("cma", "cmaes", "cocoex"):
        try:
            out.append(f"{mod} {getattr(__import__(mod), '__version__', '?')}")
        except ImportError:
            out.append(f"{mod} missing")
    return ", ".join(out)


def write_outputs(
    runs: Sequence[Run],
    config: Config,
    wall: float,
    missing: dict[str, str],
    out: Path,
    seed: SeedResults | None = None,
    versions_text: str | None = None,
) -> dict[int, str]:
    """Print and write the ERT tables, per-run CSV, targets, ECDF plot and run notes."""
    table = ert_table(runs, config)
    if seed is not None:
        stext = simple_table(
            ["method", "median evaluations", "solved"],
            [[m, fmt_count(med), f"{k}/{n}"] for m, (med, k, n) in seed.items()],
        )
        print("\nThe seed's 3-d problem: evaluations to f <= 1e-8 (x0 ~ N(0, I), sigma0 = 1)")
        print(stext)
        write_text(out / "bbob_seed_problem.rst", stext)
    tables = dim_tables(table, config)
    rst = []
    for d, text in tables.items():
        print(
            f"\nERT to f - f_opt <= 1e-8 (successes/runs), d = {d}, "
            f"budget {config.budget_per_dim * d:,}"
        )
        print(text)
        rst.append(
            f".. rubric:: d = {d} (budget {config.budget_per_dim * d:,} evaluations)\n\n{text}"
        )
    write_text(out / "bbob_ert.rst", "\n".join(rst))
    write_csv(
        out / "bbob_ert.csv",
        ["dim", "function", "method", "ert", "successes", "runs"],
        [[d, f, m, e, s, n] for (d, f, m), (e, s, n) in sorted(table.items())],
    )
    write_csv(
        out / "bbob_runs.csv",
        ["method", "function", "dim", "instance", "evals", "success", "stop", "seconds", "error"],
        [
            [
                r.method,
                r.function,
                r.dim,
                r.instance,
                r.evals,
                int(r.success),
                r.stop,
                round(r.seconds, 3),
                r.error,
            ]
            for r in sorted(runs, key=lambda r: (r.dim, r.function, r.method, r.instance))
        ],
    )
    checks = target_checks(table, seed)
    lines = ["Target", "met", "measured"]
    trows = [[name, {True: "yes", False: "no", None: "n/a"}[ok], ev] for name, ev, ok in checks]
    ttext = simple_table(lines, trows)
    print("\nIssue targets (from this run)\n" + ttext)
    write_text(out / "bbob_targets.rst", ttext)
    errors = sorted({f"{r.method}: {r.error}" for r in runs if r.error})
    cpu = sum(r.seconds for r in runs)
    notes = [
        f"Run on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with {config.processes} "
        f"worker processes: {len(runs)} runs, wall time {wall / 60:.1f} min "
        f"({cpu / 60:.1f} min of run time in the workers); load average of the machine at "
        f"the end: {os.getloadavg()[2]:.1f} over 15 min.",
        f"Versions: {versions_text or versions()}.",
    ]
    notes += [f"Not run ({m}): {why}" for m, why in missing.items()]
    notes += [f"Error in {e}" for e in errors]
    print("\n" + "\n".join(notes))
    write_text(out / "bbob_meta.rst", "\n\n".join(notes) + "\n")
    path = ecdf_plot(runs, config, out / "bbob_ecdf.png")
    print(f"ECDF plot: {path}")
    path = ratio_plot(table, config, out / "bbob_ratio.png")
    print(f"ERT ratio plot: {path}")
    return tables


def run_overhead(config: Config, out: Path) -> str:
    """Print and write the overhead table."""
    # In a fresh process with one BLAS thread, like the runs (a multithreaded BLAS on a busy
    # machine makes small matrix products erratic).
    with _pool(1) as pool:
        headers, rows, csv_rows = pool.apply(overhead, (config,))
    text = simple_table(headers, rows)
    print("\nOverhead per generation (ask + tell, without evaluations), median microseconds")
    print(text)
    write_text(out / "bbob_overhead.rst", text)
    write_csv(
        out / "bbob_overhead.csv",
        [h if h in ("d", "lambda") else f"{h}_us" for h in headers],
        csv_rows,
    )
    return text


def main(quick: bool) -> None:
    """Run the BBOB benchmark (``quick``: a small configuration written to a temporary folder)."""
    t0 = time.perf_counter()
    config = QUICK if quick else Config()
    out = Path(tempfile.gettempdir()) / "nes_asktell_bench_quick" if quick else OUT_DIR
    print(
        f"BBOB: functions {config.functions}, d {config.dims}, instances {config.instances}, "
        f"{config.processes} processes; output in {out}",
        flush=True,
    )
    at_start = versions()  # the workers import the library as it is now
    runs, wall, missing = run_all(config)
    if versions() != at_start:
        at_start += f"; the working tree changed during the run, to {_git_commit()}"
    seed_methods = available(["XNES", "SNES", "pycma", "cmaes"])[0]
    seed = seed_problem(seed_methods, config.seed_problem_runs)
    write_outputs(runs, config, wall, missing, out, seed, at_start)
    run_overhead(config, out)
    total = (
        f"The whole benchmark (the runs, the seed's problem and the overhead table) took "
        f"{(time.perf_counter() - t0) / 60:.1f} min."
    )
    print(total)
    with (out / "bbob_meta.rst").open("a", encoding="utf-8") as fh:
        fh.write(f"\n{total}\n")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
