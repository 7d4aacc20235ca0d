"""The BBOB benchmark's protocol and its runs: problems, start points, the pool of workers.

:data:`FUNCTIONS`, :data:`DIMS` and :data:`INSTANCES` are the benchmark's protocol (a
:class:`Config` selects from them); :func:`run_all` runs every (method, function, dimension,
instance) in a pool of fresh processes and returns one :class:`Run` each; :func:`seed_problem`
runs the seed's own 3-d problem.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from typing import Any

import numpy as np

from benchmarks._bbob_methods import RUNNERS, Objective, _StopRunError, available

FUNCTIONS = (1, 2, 7, 8, 10, 15, 21)
DIMS = (2, 5, 10, 20)
INSTANCES = (1, 2, 3, 4, 5)
METHODS = ("XNES", "SNES", "OpenES", "seed", "pycma", "cmaes")
#: Restart variants, run on these functions only.
EXTRA = {15: ("XNES+IPOP", "pycma+IPOP")}
SIGMA0 = 2.0
BUDGET_PER_DIM = 10_000
NAMES = {"1": "sphere", "2": "ellipsoid", "7": "step ellipsoid", "8": "Rosenbrock"}
NAMES.update({"10": "rot. ellipsoid", "15": "Rastrigin", "21": "Gallagher 101"})


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
    overhead_dims: tuple[int, ...] = (2, 5, 10, 20, 50, 100, 200)
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


def load_problem(
    function: int, dim: int, index: int, suite: str = "bbob"
) -> tuple[Callable[..., float], float, int]:
    """Return the COCO problem ``(function, dim, instance index)``, its f_opt and instance id.

    `suite` is ``bbob`` or ``bbob-largescale`` (d = 20 ... 640). cocoex has no bare problem of
    the large-scale suite; COCO computes f_opt from the function and instance alone (the same
    ``bbob2009_compute_fopt`` in both suites), so the bbob bare problem of that function and
    instance gives it.
    """
    _, problem, fopt, instance = load_suite_problem(function, dim, index, suite)
    return problem, fopt, instance


def load_suite_problem(
    function: int, dim: int, index: int, suite: str = "bbob"
) -> tuple[Any, Any, float, int]:
    """Return the suite as well as :func:`load_problem`'s problem, f_opt and instance id.

    A problem observed by a ``cocoex.Observer`` reads its suite at every evaluation: the caller
    keeps the suite alive as long as it observes the problem.
    """
    import cocoex

    check_selection(function, dim, index, suite)
    options = f"dimensions:{dim} instance_indices:{index} function_indices:{function}"
    coco_suite = cocoex.Suite(suite, "", options)
    problem = coco_suite.get_problem(0)
    if suite != "bbob":
        bare = cocoex.BareProblem("bbob", function, 2, problem.id_instance)
        return coco_suite, problem, float(bare.best_value()), int(problem.id_instance)
    bare = cocoex.BareProblem("bbob", function, dim, problem.id_instance)
    x = np.linspace(-1.0, 1.0, dim)
    if bare(x) != problem(x):  # the bare problem gives f_opt; check it is the same function
        raise RuntimeError(f"f_opt lookup mismatch for {problem.id}")
    return coco_suite, problem, float(bare.best_value()), int(problem.id_instance)


@functools.cache
def suite_ranges(suite: str) -> tuple[int, tuple[int, ...], int]:
    """Return the function indices, dimensions and instance indices `suite` holds (counts, list).

    That is (number of functions, dimensions, number of instances): the function and instance
    indices of the suite run from 1 to those counts.
    """
    import cocoex

    first = cocoex.Suite(suite, "", "function_indices:1")  # every dimension and instance
    dims = tuple(int(d) for d in first.dimensions)
    functions = len(cocoex.Suite(suite, "", f"dimensions:{dims[0]} instance_indices:1"))
    return functions, dims, len(first) // len(dims)


def check_selection(function: int, dim: int, index: int, suite: str = "bbob") -> None:
    """Raise ValueError unless `suite` has the function, dimension and instance index given.

    cocoex itself refuses none of them: it leaves out an index it does not have and returns the
    whole suite (an instance index beyond the suite's gave its first instance, under the start
    point and the seed of the index asked for), or ends the process (a function index of none
    of its functions).
    """
    functions, dims, instances = suite_ranges(suite)
    if not 1 <= function <= functions:
        raise ValueError(
            f"`--functions` must be function indices of the {suite} suite, 1 to {functions}, "
            f"but got {function}."
        )
    if dim not in dims:
        raise ValueError(
            f"`--dims` must be dimensions of the {suite} suite, {list(dims)}, but got {dim}."
        )
    if not 1 <= index <= instances:
        raise ValueError(
            f"`--instances` must be instance indices of the {suite} suite, 1 to {instances}, "
            f"but got {index}."
        )


def start(function: int, dim: int, index: int) -> tuple[np.ndarray, int]:
    """Return x0 (uniform in [-4, 4]^d) and the integer seed shared by every method."""
    x0 = np.random.default_rng([function, dim, index]).uniform(-4.0, 4.0, dim)
    return x0, 10_000 * function + 100 * dim + index


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


#: {method: (median evaluations, successes, runs)}
SeedResults = dict[str, tuple[float, int, int]]
SEED_SOLUTION = np.array([0.5, 0.1, -0.3])


def seed_problem(
    methods: Sequence[str],
    n_seeds: int,
    budget: int = 10_000,
    runners: Mapping[str, Callable[[Objective, np.ndarray, int, float], str]] = RUNNERS,
) -> SeedResults:
    """Evaluations to f < 1e-8 on the seed's problem ``|w - [0.5, 0.1, -0.3]|^2``.

    x0 ~ N(0, I) and sigma0 = 1, seeds 0 .. n_seeds - 1; a run that fails counts as `budget`
    in the median. The count is that of the first told candidate below 1e-8. `runners` maps
    each name of `methods` to its runner (default: the BBOB benchmark's).
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
                    runners[m](obj, x0, seed + 1, 1.0)
            counts.append(obj.evals if obj.solved else budget)
        solved = sum(c < budget for c in counts)
        out[m] = (float(statistics.median(counts)), solved, n_seeds)
    return out
