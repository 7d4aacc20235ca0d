"""NESSampler against Optuna's TPESampler and CmaEsSampler.

Problems (all in [-5, 5]^d, minimised): a shifted 10-d sphere, the 10-d Rosenbrock function and
the 20-d Rastrigin function. Each sampler runs 500 trials with seeds 0-4 on in-memory storage.
Reported per problem and sampler: the median (over seeds) of the best value after 500 trials, and
the median sampler time per trial, i.e. the time spent inside the sampler's methods (measured by a
timing wrapper, so the objective and Optuna's own bookkeeping are excluded).

Speed at long studies: NESSampler and CmaEsSampler (default settings) run 5,000 trials of the
10-d sphere (``--speed-trials``; ``--speed-dims`` for other dimensions, the shift repeated),
seeds 0-2 (``--speed-seeds``); the timing wrapper records the sampler's time trial by trial, a
callback the wall time of each whole trial (sampler, objective, Optuna and its storage), and the
table gives the median over the seeds of the median ms per trial in the windows of 100 trials
ending at trials 1,000 and 5,000 (``--speed-at``; all read from the same study: neither sampler
is told the number of trials), the sampler's own and the whole trial's, with the ratio of the
sampler's own time to CmaEsSampler's.

Run: ``python -m benchmarks optuna`` (``--quick``: 60 trials, seed 0, no figures; ``--speed``:
the speed table only). Writes ``docs/_static/bench/optuna_table.rst``, ``optuna_<problem>.png``
and ``optuna_speed.rst`` (``--speed-out`` names another file for the speed table;
``--speed-samplers`` chooses the samplers, ``--speed-baseline DIR`` times beside them the
NESSampler of another version's ``integrations/optuna`` directory, for before/after figures
from one run, and ``--speed-clock cpu`` times by the process's CPU time instead of wall time,
which other jobs on a loaded machine hardly change).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler

from nes_asktell import NESSampler

OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "_static" / "bench"
SEEDS = (0, 1, 2, 3, 4)
N_TRIALS = 500

#: the optimum of the shifted sphere (fixed, inside the box and away from its centre)
SHIFT = np.array([1.7, -2.9, 0.4, 3.3, -1.2, 2.2, -3.8, 0.9, -0.5, 2.6])


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - SHIFT) ** 2))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rastrigin(x: np.ndarray) -> float:
    return float(10.0 * x.size + np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x)))


PROBLEMS: dict[str, tuple[Callable[[np.ndarray], float], int]] = {
    "sphere-10d": (sphere, 10),
    "rosenbrock-10d": (rosenbrock, 10),
    "rastrigin-20d": (rastrigin, 20),
}


#: the clock of the speed measurements: wall time (default) or, with ``--speed-clock cpu``, the
#: CPU time of this process, which other jobs on a loaded machine hardly change
CLOCK: list[Callable[[], float]] = [time.perf_counter]


class Timed(BaseSampler):
    """Delegates to a sampler and adds up the wall time spent in its methods."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0
        #: the running total of `seconds` after each trial's ``after_trial``
        self.marks: list[float] = []

    def _timed(self, name: str, *args: Any) -> Any:
        t0 = CLOCK[0]()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += CLOCK[0]() - t0

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self._timed("infer_relative_search_space", study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        return self._timed("sample_relative", study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        return self._timed("sample_independent", study, trial, name, dist)

    def before_trial(self, study: Any, trial: Any) -> None:
        self._timed("before_trial", study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._timed("after_trial", study, trial, state, values)
        self.marks.append(self.seconds)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


#: another version of NESSampler to time beside this one (see `load_baseline`)
BASELINE = "NESSampler (baseline)"
_baseline: list[type[BaseSampler]] = []


def load_baseline(path: str) -> None:
    """Import the NESSampler of another copy of ``integrations/optuna`` (a directory).

    For before/after figures in one run: ``git show REV:integrations/optuna/FILE`` of each
    file into a directory, then ``--speed-baseline DIR``. Its modules import the core of the
    installed library (unchanged by a change of the sampler alone) and each other.
    """
    name = "_nes_baseline_optuna"
    spec = importlib.util.spec_from_file_location(
        name, Path(path) / "__init__.py", submodule_search_locations=[str(path)]
    )
    if spec is None or spec.loader is None:
        raise ValueError(f"no package at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _baseline[:] = [module.NESSampler]


def make_sampler(name: str, seed: int) -> BaseSampler:
    if name == BASELINE:
        return _baseline[0](seed=seed)
    if name == "NESSampler":
        return NESSampler(seed=seed)
    if name == "CmaEsSampler":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "TPESampler":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"`sampler_name` must be one of {SAMPLERS}, but got {name!r}.")


SAMPLERS = ("NESSampler", "CmaEsSampler", "TPESampler")


def run(problem: str, sampler_name: str, seed: int, n_trials: int) -> tuple[np.ndarray, float]:
    """Return the best-so-far curve and the sampler seconds per trial of one run."""
    fun, dim = PROBLEMS[problem]
    sampler = Timed(make_sampler(sampler_name, seed))

    def objective(trial: optuna.Trial) -> float:
        x = np.array([trial.suggest_float(f"x{i:02d}", -5.0, 5.0) for i in range(dim)])
        return fun(x)

    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=n_trials)
    values = np.array([t.value for t in study.trials], dtype=float)
    return np.minimum.accumulate(values), sampler.seconds / n_trials


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a reStructuredText simple table."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([rule, line(headers), rule, *(line(r) for r in rows), rule]) + "\n"


def plot(problem: str, curves: dict[str, list[np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, runs in curves.items():
        Y = np.vstack(runs)
        n = np.arange(1, Y.shape[1] + 1)
        lo, med, hi = np.quantile(Y, [0.25, 0.5, 0.75], axis=0)
        ax.plot(n, med, label=name)
        ax.fill_between(n, lo, hi, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("best value so far")
    ax.set_title(f"{problem}: median and quartiles over {len(SEEDS)} seeds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: the study length of the speed table and the trials at whose windows it is read
SPEED_TRIALS = 5000
SPEED_AT = (1000, 5000)
SPEED_WINDOW = 100
SPEED_SEEDS = (0, 1, 2)
SPEED_DIMS = (10,)
SPEED_SAMPLERS = ("NESSampler", "CmaEsSampler")
SPEED_OUT = "optuna_speed.rst"


def speed_run(
    sampler_name: str, seed: int, n_trials: int, dim: int = 10
) -> tuple[list[float], list[float]]:
    """Return the seconds of each trial of a `n_trials` study of the `dim`-d sphere.

    Two lists, trial by trial: the time spent inside the sampler's methods, and the wall time of
    the whole trial (sampler, objective, Optuna and its storage), from the end of the previous
    trial to the end of this one.
    """
    sampler = Timed(make_sampler(sampler_name, seed))
    shift = np.resize(SHIFT, dim)
    ends: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        x = np.array([trial.suggest_float(f"x{i:02d}", -5.0, 5.0) for i in range(dim)])
        return float(np.sum((x - shift) ** 2))

    def mark(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ends.append(CLOCK[0]())

    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = CLOCK[0]()
        study.optimize(objective, n_trials=n_trials, callbacks=[mark])
    return list(np.diff([0.0, *sampler.marks])), list(np.diff([t0, *ends]))


def speed(
    seeds: Sequence[int],
    n_trials: int,
    quick: bool,
    at: Sequence[int] = SPEED_AT,
    dims: Sequence[int] = SPEED_DIMS,
    out: str = SPEED_OUT,
    samplers: Sequence[str] = SPEED_SAMPLERS,
) -> str:
    """Print and return the table of ms per trial in windows ending at the trials `at`.

    Per sampler and dimension: the sampler's own time (inside its methods) and the whole
    trial's, each the median over the seeds of the median over the window; the ratio is the
    sampler's own time to ``CmaEsSampler``'s in the same run (when it is among `samplers`).
    """
    at = [n for n in at if n <= n_trials] or [n_trials]
    own: dict[tuple[str, int, int], list[float]] = {}
    total: dict[tuple[str, int, int], list[float]] = {}
    for dim in dims:
        for seed in seeds:  # samplers interleaved, so that machine load hits them alike
            for name in samplers:
                t0 = time.perf_counter()
                per_trial, wall = speed_run(name, seed, n_trials, dim)
                line = []
                for n in at:
                    lo = max(0, n - SPEED_WINDOW)
                    mine = 1e3 * statistics.median(per_trial[lo:n])
                    whole = 1e3 * statistics.median(wall[lo:n])
                    own.setdefault((name, dim, n), []).append(mine)
                    total.setdefault((name, dim, n), []).append(whole)
                    line.append(f"at {n}: {mine:.2f} / {whole:.2f}")
                print(
                    f"speed {name:13s} d={dim} seed {seed}: median ms/trial, sampler / total, "
                    + ", ".join(line)
                    + f" ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    several = len(dims) > 1
    ratios = "CmaEsSampler" in samplers
    headers = (
        ["sampler"]
        + (["d"] if several else [])
        + [f"ms/trial at {n}" for n in at]
        + ([f"ratio at {n}" for n in at] if ratios else [])
        + [f"total ms at {n}" for n in at]
    )
    rows = []
    for dim in dims:
        for name in samplers:
            meds = [statistics.median(own[(name, dim, n)]) for n in at]
            tots = [statistics.median(total[(name, dim, n)]) for n in at]
            row = [name] + ([str(dim)] if several else []) + [f"{m:.2f}" for m in meds]
            if ratios:
                refs = [statistics.median(own[("CmaEsSampler", dim, n)]) for n in at]
                row += [f"{m / r:.2f}" for m, r in zip(meds, refs, strict=True)]
            rows.append(row + [f"{t:.2f}" for t in tots])
    text = table(headers, rows)
    print()
    print(text)
    if not quick:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / out).write_text(text)
    return text


def main(
    quick: bool = False,
    argv: list[str] | None = None,
    prog: str = "python -m benchmarks.optuna_bench",
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--speed", action="store_true", help="only the speed table")
    parser.add_argument("--speed-trials", type=int, default=SPEED_TRIALS)
    parser.add_argument("--speed-seeds", nargs="*", type=int, default=list(SPEED_SEEDS))
    parser.add_argument(
        "--speed-at", nargs="*", type=int, default=list(SPEED_AT), help="trials of the windows"
    )
    parser.add_argument("--speed-dims", nargs="*", type=int, default=list(SPEED_DIMS))
    parser.add_argument(
        "--speed-out", default=SPEED_OUT, help="file of docs/_static/bench the table goes to"
    )
    parser.add_argument(
        "--speed-samplers", nargs="+", choices=SAMPLERS, default=list(SPEED_SAMPLERS)
    )
    parser.add_argument(
        "--speed-clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time the speed table by wall time or by this process's CPU time",
    )
    parser.add_argument(
        "--speed-baseline",
        default=None,
        help="a copy of another version's integrations/optuna directory, timed beside this one",
    )
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = {"--speed-trials": [args.speed_trials], "--speed-seeds": args.speed_seeds}
    counts.update({"--speed-at": args.speed_at, "--speed-dims": args.speed_dims})
    for name, values in counts.items():
        least = 0 if name == "--speed-seeds" else 1
        if not values or min(values) < least:
            parser.error(f"`{name}` must be one or more integers >= {least}, but got {values}")
    quick = quick or args.quick
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    samplers = list(args.speed_samplers)
    CLOCK[0] = time.process_time if args.speed_clock == "cpu" else time.perf_counter
    if args.speed_baseline is not None:
        load_baseline(args.speed_baseline)
        samplers.insert(0, BASELINE)

    def run_speed(seeds: Sequence[int]) -> None:
        trials = 300 if quick else args.speed_trials
        speed(seeds, trials, quick, args.speed_at, args.speed_dims, args.speed_out, samplers)

    if args.speed:
        for name in samplers:  # warm up, as below
            speed_run(name, 0, 5)
        run_speed(args.speed_seeds)
        return
    seeds = SEEDS[:1] if quick else SEEDS
    n_trials = 60 if quick else N_TRIALS
    for name in SAMPLERS:  # warm up: imports and first-call costs are not sampler time
        run("sphere-10d", name, 0, 5)
    rows = []
    for problem in PROBLEMS:
        curves: dict[str, list[np.ndarray]] = {s: [] for s in SAMPLERS}
        times: dict[str, list[float]] = {s: [] for s in SAMPLERS}
        for seed in seeds:  # samplers interleaved, so that machine load hits them alike
            for name in SAMPLERS:
                curve, sec = run(problem, name, seed, n_trials)
                curves[name].append(curve)
                times[name].append(sec)
                print(
                    f"{problem:15s} {name:13s} seed {seed}: best {curve[-1]:.4g}, "
                    f"{1e3 * sec:.3f} ms/trial",
                    flush=True,
                )
        ref_best = statistics.median(c[-1] for c in curves["CmaEsSampler"])
        ref_time = statistics.median(times["CmaEsSampler"])
        for name in SAMPLERS:
            best = statistics.median(c[-1] for c in curves[name])
            sec = statistics.median(times[name])
            rows.append(
                [
                    problem,
                    name,
                    f"{best:.3g}",
                    f"{best / ref_best:.3g}" if ref_best > 0 else "-",
                    f"{1e3 * sec:.3f}",
                    f"{sec / ref_time:.2f}",
                ]
            )
        if not quick:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            plot(problem, curves, OUT_DIR / f"optuna_{problem}.png")
    headers = [
        "problem",
        "sampler",
        f"median best after {n_trials}",
        "ratio to CMA-ES",
        "sampler ms/trial",
        "time ratio to CMA-ES",
    ]
    text = table(headers, rows)
    print()
    print(text)
    if not quick:
        (OUT_DIR / "optuna_table.rst").write_text(text)
    run_speed(args.speed_seeds[:1] if quick else args.speed_seeds)


if __name__ == "__main__":
    main()
