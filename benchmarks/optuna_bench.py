"""NESSampler against Optuna's TPESampler and CmaEsSampler.

Problems (all in [-5, 5]^d, minimised): a shifted 10-d sphere, the 10-d Rosenbrock function and
the 20-d Rastrigin function. Each sampler runs 500 trials with seeds 0-4 on in-memory storage.
Reported per problem and sampler: the median (over seeds) of the best value after 500 trials, and
the median sampler time per trial, i.e. the time spent inside the sampler's methods (measured by a
timing wrapper, so the objective and Optuna's own bookkeeping are excluded).

Speed at long studies: NESSampler and CmaEsSampler (default settings) run 5,000 trials of the
10-d sphere (``--speed-trials``), seeds 0-2 (``--speed-seeds``); the timing wrapper records the
sampler's time trial by trial, and the table gives the median over the seeds of the median
sampler ms per trial in the windows of 100 trials ending at trial 1,000 and at trial 5,000 (both
read from the same study: neither sampler is told the number of trials).

Run: ``python -m benchmarks optuna`` (``--quick``: 60 trials, seed 0, no figures; ``--speed``:
the speed table only). Writes ``docs/_static/bench/optuna_table.rst``, ``optuna_<problem>.png``
and ``optuna_speed.rst``.
"""

from __future__ import annotations

import argparse
import statistics
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


class Timed(BaseSampler):
    """Delegates to a sampler and adds up the wall time spent in its methods."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0
        #: the running total of `seconds` after each trial's ``after_trial``
        self.marks: list[float] = []

    def _timed(self, name: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += time.perf_counter() - t0

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


def make_sampler(name: str, seed: int) -> BaseSampler:
    if name == "NESSampler":
        return NESSampler(seed=seed)
    if name == "CmaEsSampler":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


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
SPEED_SAMPLERS = ("NESSampler", "CmaEsSampler")


def speed_run(sampler_name: str, seed: int, n_trials: int) -> list[float]:
    """Return the sampler's seconds in each trial of a `n_trials` study of the 10-d sphere."""
    sampler = Timed(make_sampler(sampler_name, seed))

    def objective(trial: optuna.Trial) -> float:
        return sphere(np.array([trial.suggest_float(f"x{i:02d}", -5.0, 5.0) for i in range(10)]))

    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=n_trials)
    return list(np.diff([0.0, *sampler.marks]))


def speed(seeds: Sequence[int], n_trials: int, quick: bool) -> str:
    """Print and return the table of sampler ms per trial in windows ending at `SPEED_AT`."""
    at = [n for n in SPEED_AT if n <= n_trials] or [n_trials]
    ms: dict[tuple[str, int], list[float]] = {}
    for seed in seeds:  # samplers interleaved, so that machine load hits them alike
        for name in SPEED_SAMPLERS:
            t0 = time.perf_counter()
            per_trial = speed_run(name, seed, n_trials)
            window_ms = []
            for n in at:
                window = per_trial[max(0, n - SPEED_WINDOW) : n]
                window_ms.append(1e3 * statistics.median(window))
                ms.setdefault((name, n), []).append(window_ms[-1])
            print(
                f"speed {name:13s} seed {seed}: median ms/trial "
                + ", ".join(f"at {n}: {x:.2f}" for n, x in zip(at, window_ms, strict=True))
                + f" ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    headers = ["sampler"] + [f"ms/trial at {n}" for n in at] + [f"ratio at {n}" for n in at]
    rows = []
    for name in SPEED_SAMPLERS:
        meds = [statistics.median(ms[(name, n)]) for n in at]
        refs = [statistics.median(ms[("CmaEsSampler", n)]) for n in at]
        rows.append(
            [name]
            + [f"{m:.2f}" for m in meds]
            + [f"{m / r:.2f}" for m, r in zip(meds, refs, strict=True)]
        )
    text = table(headers, rows)
    print()
    print(text)
    if not quick:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / "optuna_speed.rst").write_text(text)
    return text


def main(quick: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks optuna")
    parser.add_argument("--speed", action="store_true", help="only the speed table")
    parser.add_argument("--speed-trials", type=int, default=SPEED_TRIALS)
    parser.add_argument("--speed-seeds", nargs="*", type=int, default=list(SPEED_SEEDS))
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = quick or args.quick
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.speed:
        for name in SPEED_SAMPLERS:  # warm up, as below
            speed_run(name, 0, 5)
        speed(args.speed_seeds, 300 if quick else args.speed_trials, quick)
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
    speed(
        args.speed_seeds[:1] if quick else args.speed_seeds,
        300 if quick else args.speed_trials,
        quick,
    )


if __name__ == "__main__":
    main()
