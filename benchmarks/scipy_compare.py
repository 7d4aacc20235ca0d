"""``minimize(method=nes)`` against scipy's own derivative-free methods, on the same problems.

Run with ``python -m benchmarks scipy`` (``--quick`` for a smoke run). For each problem and method,
over several seeds (the seed draws x0 where the problem says so, and seeds the stochastic
methods), it records every call of the objective and reports medians of:

* the evaluations until the first value within 1e-8 of the optimum (and in how many runs that
  happened at all),
* the evaluations the method spent before it stopped by itself (or at the cap),
* the final value it returned (f - f_opt).

Every method runs with its defaults except a common cap on evaluations. Nelder-Mead and Powell
are deterministic, so their spread comes from x0 only. differential_evolution needs bounds: it
gets [-5, 5]^d where the problem has none (and polishes with L-BFGS-B, whose finite-difference
evaluations are counted). Writes ``docs/_static/bench/scipy_compare.{rst,csv,png}``.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, OptimizeResult, differential_evolution, minimize, rosen

from nes_asktell import nes

OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "_static" / "bench"
TARGET = 1e-8

Array = np.ndarray


# ---------------------------------------------------------------------- problems
SHIFT = np.array([1.0, -2.0, 0.5, 3.0, -1.0])  # as in tests/test_scipy_adapter.py


def shifted_sphere(x: Array) -> float:
    return float(np.sum((x - SHIFT) ** 2))


def ellipsoid(x: Array) -> float:
    """Separable ellipsoid, condition number 1e6, optimum at 1."""
    w = 10.0 ** (6.0 * np.arange(x.size) / (x.size - 1))
    return float(np.sum(w * (x - 1.0) ** 2))


def rastrigin(x: Array) -> float:
    return float(10.0 * x.size + np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x)))


def rotation(d: int) -> Array:
    """A fixed random orthogonal matrix (the same in every run)."""
    q, r = np.linalg.qr(np.random.default_rng(20171).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def rotated(fun: Callable[[Array], float], d: int, center: float) -> Callable[[Array], float]:
    """``x -> fun(center + R (x - center))``: the same optimum, no longer separable."""
    R = rotation(d)

    def f(x: Array) -> float:
        return fun(center + R @ (x - center))

    return f


@dataclass(frozen=True)
class Problem:
    name: str
    dim: int
    fun: Callable[[Array], float]
    x0: Callable[[np.random.Generator, int], Array]
    bounds: tuple[float, float] | None = None  # a box given to every method
    cap: int = 20_000


PROBLEMS = [
    Problem("sphere-5 (shifted)", 5, shifted_sphere, lambda g, d: np.zeros(d)),
    Problem("rosenbrock-2", 2, rosen, lambda g, d: np.array([-1.2, 1.0])),
    Problem("ellipsoid-10", 10, ellipsoid, lambda g, d: g.uniform(-3, 3, d), cap=40_000),
    Problem(
        "ellipsoid-10 rotated",
        10,
        rotated(ellipsoid, 10, 1.0),
        lambda g, d: g.uniform(-3, 3, d),
        cap=40_000,
    ),
    Problem("rosenbrock-10", 10, rosen, lambda g, d: g.uniform(-2, 2, d), cap=40_000),
    Problem(
        "rastrigin-5 (box)", 5, rastrigin, lambda g, d: g.uniform(-4, 4, d), (-5.12, 5.12), 50_000
    ),
    Problem(
        "rastrigin-5 rotated (box)",
        5,
        rotated(rastrigin, 5, 0.0),
        lambda g, d: g.uniform(-4, 4, d),
        (-5.12, 5.12),
        50_000,
    ),
]


class Recorder:
    """Count the calls of `fun` and note the first call whose value is within TARGET."""

    def __init__(self, fun: Callable[[Array], float]) -> None:
        self.fun = fun
        self.calls = 0
        self.hit: int | None = None

    def __call__(self, x: Array) -> float:
        self.calls += 1
        y = self.fun(x)
        if self.hit is None and y <= TARGET:
            self.hit = self.calls
        return y


# ---------------------------------------------------------------------- methods
def run_nes(**options: object) -> Callable[[Problem, Recorder, Array, int], OptimizeResult]:
    def run(p: Problem, f: Recorder, x0: Array, seed: int) -> OptimizeResult:
        bounds = None if p.bounds is None else Bounds(*p.bounds)
        opts = {"rng": seed, "maxfev": p.cap, **options}
        return minimize(f, x0, method=nes, bounds=bounds, options=opts)

    return run


def run_scipy(method: str) -> Callable[[Problem, Recorder, Array, int], OptimizeResult]:
    def run(p: Problem, f: Recorder, x0: Array, seed: int) -> OptimizeResult:
        bounds = None if p.bounds is None else Bounds(*p.bounds)
        key = "maxfev" if method in ("Nelder-Mead", "Powell") else "maxfun"
        return minimize(f, x0, method=method, bounds=bounds, options={key: p.cap})

    return run


def run_de(p: Problem, f: Recorder, x0: Array, seed: int) -> OptimizeResult:
    lo, hi = p.bounds if p.bounds is not None else (-5.0, 5.0)
    popsize = 15  # scipy's default: 15 * d individuals
    maxiter = max(1, p.cap // (popsize * p.dim) - 1)
    return differential_evolution(f, [(lo, hi)] * p.dim, rng=seed, maxiter=maxiter)


METHODS: dict[str, Callable[[Problem, Recorder, Array, int], OptimizeResult]] = {
    "nes (xnes)": run_nes(),
    "nes (snes)": run_nes(strategy="snes"),
    "nes (xnes, 4 IPOP restarts)": run_nes(restarts=4),
    "Nelder-Mead": run_scipy("Nelder-Mead"),
    "Powell": run_scipy("Powell"),
    "differential_evolution": run_de,
}


# ---------------------------------------------------------------------- the run
@dataclass
class Cell:
    hits: list[int | None]
    spent: list[int]
    final: list[float]
    seconds: float

    @property
    def solved(self) -> int:
        return sum(h is not None for h in self.hits)

    def median_hit(self) -> float:
        # failures count as +inf: the median is finite only if at least half the runs solved
        return statistics.median([math.inf if h is None else h for h in self.hits])


def measure(p: Problem, method: str, seeds: list[int]) -> Cell:
    hits: list[int | None] = []
    spent: list[int] = []
    final: list[float] = []
    t0 = time.perf_counter()
    for seed in seeds:
        x0 = p.x0(np.random.default_rng(seed), p.dim)
        f = Recorder(p.fun)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = METHODS[method](p, f, x0, seed)
        hits.append(f.hit)
        spent.append(f.calls)
        final.append(float(res.fun))
    return Cell(hits, spent, final, time.perf_counter() - t0)


def fmt_count(x: float) -> str:
    return "-" if math.isinf(x) else f"{x:,.0f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A reStructuredText simple table, readable on a terminal too."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([rule, line(headers), rule, *(line(r) for r in rows), rule]) + "\n"


def main(quick: bool = False) -> None:
    seeds = list(range(3 if quick else 11))
    problems = PROBLEMS[:2] if quick else PROBLEMS
    headers = [
        "problem",
        "method",
        "evals to 1e-8",
        "solved",
        "ratio",
        "evals spent",
        "final f",
        "seconds",
    ]
    rows: list[list[str]] = []
    csv_rows: list[list[object]] = []
    results: dict[tuple[str, str], Cell] = {}
    for p in problems:
        ref = None
        for method in METHODS:
            cell = measure(p, method, seeds)
            results[p.name, method] = cell
            hit = cell.median_hit()
            if ref is None:
                ref = hit
            ratio = hit / ref if math.isfinite(hit) and ref and math.isfinite(ref) else math.inf
            rows.append(
                [
                    p.name,
                    method,
                    fmt_count(hit),
                    f"{cell.solved}/{len(seeds)}",
                    "-" if math.isinf(ratio) else f"{ratio:.2f}",
                    fmt_count(statistics.median(cell.spent)),
                    f"{statistics.median(cell.final):.1e}",
                    f"{cell.seconds / len(seeds):.2f}",
                ]
            )
            csv_rows.append(
                [
                    p.name,
                    method,
                    hit,
                    cell.solved,
                    len(seeds),
                    statistics.median(cell.spent),
                    statistics.median(cell.final),
                    cell.seconds / len(seeds),
                ]
            )
            print("  ".join(rows[-1]), flush=True)
    text = table(headers, rows)
    print()
    print(text)
    if quick:  # a smoke run: the docs keep the full tables
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    suffix = ""
    (OUT_DIR / f"scipy_compare{suffix}.rst").write_text(text)
    with open(OUT_DIR / f"scipy_compare{suffix}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "problem",
                "method",
                "median_evals_to_1e-8",
                "solved",
                "runs",
                "median_evals_spent",
                "median_final_f",
                "seconds_per_run",
            ]
        )
        w.writerows(csv_rows)
    plot(results, problems, len(seeds), OUT_DIR / f"scipy_compare{suffix}.png")


def plot(
    results: dict[tuple[str, str], Cell], problems: list[Problem], runs: int, path: Path
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the `plot` extra is optional
        return
    methods = list(METHODS)
    fig, ax = plt.subplots(figsize=(9, 4.6))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        xs, ys, missing = [], [], []
        for i, p in enumerate(problems):
            hit = results[p.name, method].median_hit()
            x = i + (j - (len(methods) - 1) / 2) * width
            if math.isfinite(hit):
                xs.append(x)
                ys.append(hit)
            else:
                missing.append(x)
        color = f"C{j}"
        ax.bar(xs, ys, width, label=method, color=color)
        # a run that did not reach the target in at least half the seeds: an x at the top
        ax.plot(
            missing,
            [0.96] * len(missing),
            "x",
            color=color,
            ms=6,
            transform=ax.get_xaxis_transform(),
        )
    ax.set_yscale("log")
    labels = [p.name.replace(" (", "\n(").replace(" rotated", "\nrotated") for p in problems]
    ax.set_xticks(range(len(problems)), labels, fontsize=8)
    ax.set_ylabel("median evaluations to f - f_opt <= 1e-8")
    ax.set_title(
        f"minimize(method=nes) vs scipy's methods ({runs} seeds; x = median not reached)",
        fontsize=9,
    )
    ax.legend(fontsize=7, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scipy_compare")
    parser.add_argument("--quick", action="store_true", help="a smoke run; the docs are kept")
    main(quick=parser.parse_args().quick)
