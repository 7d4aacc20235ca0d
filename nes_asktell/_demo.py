"""The demo: the 2017 seed run, then the same problem solved by the library's defaults.

``python -m nes_asktell demo`` replays the seed example (fixed-sigma NES, popsize 50, sigma 0.1,
learning rate 0.001, z-scored rewards, ``np.random.seed(0)``) and checks its printed trace line for
line, continues it to the evaluation budget, and then solves the same problem with the default
OpenES, XNES and SNES from ``x0 ~ N(0, I)`` with ``sigma0 = 1``. Every run is measured the way the
seed measures itself: the objective at the mean of the search distribution, against the number of
fitness evaluations told so far. The convergence plot (log-scale f against evaluations) is written
when matplotlib is installed.
"""

from __future__ import annotations

import functools
import importlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ._history import write_whole
from ._openes import OpenES
from ._snes import SNES
from ._strategy import Strategy
from ._typing import FloatArray
from ._xnes import XNES

SOLUTION = np.array([0.5, 0.1, -0.3])
#: the objective value a run must reach, at its mean.
TARGET = 1e-8
#: evaluations each run may spend.
BUDGET = 20_000
#: the seed of the demo's starting points and noise (every run is deterministic).
SEED = 0


def seed_problem(w: FloatArray) -> float:
    """Return the seed's objective ``|w - [0.5, 0.1, -0.3]|^2`` (its reward is minus this)."""
    return float(np.sum((w - SOLUTION) ** 2))


@dataclass
class Run:
    """The curves of one run, after each generation: evaluations, f at the mean, best f told."""

    label: str
    nfev: list[int] = field(default_factory=list)
    fmean: list[float] = field(default_factory=list)
    fbest: list[float] = field(default_factory=list)

    def record(self, es: Strategy) -> None:
        """Append the current point of `es` to the curves."""
        self.nfev.append(es.nfev)
        self.fmean.append(seed_problem(es.mean))
        self.fbest.append(es.best[1])

    def _first(self, curve: list[float]) -> int | None:
        return next((n for n, f in zip(self.nfev, curve, strict=True) if f < TARGET), None)

    @property
    def hit(self) -> int | None:
        """Evaluations when the mean first reached ``f < TARGET`` (None: never)."""
        return self._first(self.fmean)

    @property
    def hit_best(self) -> int | None:
        """Evaluations when a told candidate first had ``f < TARGET`` (None: never)."""
        return self._first(self.fbest)

    @property
    def done(self) -> bool:
        """Whether both the mean and a told candidate have reached the target."""
        return bool(self.fmean) and self.fmean[-1] < TARGET and self.fbest[-1] < TARGET

    def outcome(self) -> str:
        """One line: the evaluations to the target, or where the run stalled."""
        cells = [f"{n:>8d}" if n is not None else f"{'-':>8}" for n in (self.hit, self.hit_best)]
        tail = self.fmean[len(self.fmean) // 2 :]
        note = (
            ""
            if self.hit is not None
            else f"   stalls: f(mean) hovers around {float(np.median(tail)):.1e}"
        )
        return f"  {self.label:<7} {cells[0]}   {cells[1]}{note}"


def replay_seed(es: OpenES, run: Run) -> bool:
    """Run the seed's 300 iterations, print its trace, and return whether it matches 2017."""
    expected_text = resources.files("nes_asktell").joinpath("data/seed_trace.txt").read_text()
    expected = [line for line in expected_text.splitlines() if line]
    lines = []
    for i in range(300):
        run.record(es)
        f = run.fmean[-1]
        if i % 20 == 0:
            lines.append(f"{i} {-f:f}")
            print(lines[-1])
        X = es.ask()
        es.tell(X, [seed_problem(x) for x in X])
    return lines == expected


def solve(es: Strategy, run: Run, *, every: int) -> None:
    """Continue `es` until its mean and a candidate reach the target, or the budget is spent.

    Prints a progress line every `every` generations and at the end.
    """

    def line() -> None:
        best = es.best[1]
        print(
            f"  {run.label:<7} gen {es.generation:5d}  nfev {es.nfev:6d}  "
            f"f(mean) {run.fmean[-1]:.3e}  best {best:.3e}  "
            f"sigma {float(np.max(es.sigma)):.2e}"
        )

    if not run.nfev:
        run.record(es)
    while not run.done and es.nfev < BUDGET:
        X = es.ask()
        es.tell(X, [seed_problem(x) for x in X])
        run.record(es)
        if es.generation % every == 0:
            line()
    if es.generation % every:
        line()


def default_strategies() -> list[tuple[str, Callable[[FloatArray], Strategy]]]:
    """Return the defaults to compare: OpenES, XNES and SNES, each from ``sigma0 = 1``."""
    return [(cls.__name__, functools.partial(_make, cls)) for cls in (OpenES, XNES, SNES)]


def _make(cls: type[Strategy], x0: FloatArray) -> Strategy:
    return cls(x0, sigma0=1.0, rng=SEED)


def plot_runs(runs: list[Run], path: str) -> bool:
    """Write the convergence plot to `path`, whole or not at all; False: no matplotlib."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return False
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for run in runs:
        n = np.maximum(run.nfev, 1)
        (curve,) = ax.loglog(n, np.maximum(run.fmean, 1e-300), label=f"{run.label}: f(mean)")
        ax.loglog(
            n,
            np.maximum(run.fbest, 1e-300),
            color=curve.get_color(),
            linestyle="--",
            linewidth=0.8,
            label=f"{run.label}: best told",
        )
    ax.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("fitness evaluations")
    ax.set_ylabel("f = |w - w*|^2")
    ax.set_title("The 2017 seed problem (d = 3)")
    ax.set_xlim(1, BUDGET)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    # drawn whole first, then written whole or not at all: a write that fails (a full disk,
    # Ctrl-C) leaves a plot written earlier under that name as it was
    image = io.BytesIO()
    try:
        # matplotlib would add ".png" to a name without a suffix: write the very file named
        fig.savefig(image, dpi=110, format=Path(path).suffix[1:].lower() or "png")
    finally:
        plt.close(fig)
    write_whole(path, image.getvalue())
    return True


def run_demo(plot: str | None, prog: str = "nes-asktell demo") -> int:
    """Print the seed trace and the comparison; write a plot when matplotlib is available.

    Returns 0 when the seed trace matches the 2017 one, 1 otherwise or when the plot cannot
    be written (the error is printed on stderr).
    """
    print("== 1. The 2017 seed: fixed-sigma NES, popsize 50, sigma 0.1, lr 0.001 ==")
    seed = Run("seed")
    es = OpenES.seed_configuration()
    same = replay_seed(es, seed)
    print(f"matches the 2017 trace line for line: {same}")
    print(f"after {es.nfev} evaluations: f = {seed.fmean[-1]:.3e}; continuing to the budget")
    solve(es, seed, every=50)

    print(f"\n== 2. The defaults, x0 ~ N(0, I) (seed {SEED}), sigma0 = 1 ==")
    x0 = np.random.default_rng(SEED).standard_normal(3)
    runs = [seed]
    for label, make in default_strategies():
        strategy = make(x0)
        print(f"{label}: popsize {strategy.popsize}")
        run = Run(label)
        solve(strategy, run, every=500 if label == "OpenES" else 10)
        runs.append(run)

    print(f"\n== Evaluations until f < {TARGET:g} (budget {BUDGET}; - : not reached) ==")
    print(f"  {'run':<7} {'f(mean)':>8}   {'best':>8}")
    for run in runs:
        print(run.outcome())
    if plot is not None:
        try:
            written = plot_runs(runs, plot)
        except (OSError, ValueError) as exc:  # not writable, an unknown image format
            print(f"{prog}: error: `--plot` could not be written: {exc}", file=sys.stderr)
            return 1
        if written:
            print(f"\nconvergence plot written to {plot}")
        else:
            print("\nmatplotlib is not installed: no plot (pip install 'nes_asktell[plot]')")
    return 0 if same else 1
