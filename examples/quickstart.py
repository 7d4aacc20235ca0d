"""Quickstart: the ask/tell loop, the optimize() shortcut, and the result.

Run: ``python examples/quickstart.py`` (a second or two, most of it importing the package).
"""

from __future__ import annotations

import numpy as np

from nes_asktell import XNES, OpenES


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def main() -> None:
    # 1. The ask/tell loop: you own the evaluation (serial here; batch it any way you like).
    es = XNES(np.zeros(4), sigma0=0.5, rng=0)  # rng=0: the run is reproducible
    while not es.stop():
        X = es.ask()  # (popsize, d) candidates, read-only
        es.tell(X, [rosenbrock(x) for x in X])  # lower is better; rows in any order
    res = es.result  # a scipy.optimize.OptimizeResult
    print(f"XNES ask/tell: f = {res.fun:.2e} at x = {np.round(res.x, 4)}")
    print(f"  {res.nfev} evaluations, {res.nit} generations, stopped by {sorted(res.stop)}")

    # 2. The same loop in one call, with a budget.
    res = XNES(np.zeros(4), sigma0=0.5, rng=0).optimize(rosenbrock, maxfev=1000)
    print(f"XNES optimize(maxfev=1000): f = {res.fun:.2e}, nfev = {res.nfev}")

    # 3. OpenES, the fixed-sigma strategy for large, noisy problems (e.g. policy search):
    #    mirrored sampling, centered ranks and Adam by default.
    es = OpenES(np.zeros(100), sigma0=0.1, popsize=50, rng=0, learning_rate=0.05)
    res = es.optimize(lambda x: float(np.sum((x - 1.0) ** 2)), maxiter=300)
    print(f"OpenES, d = 100, 300 generations: f = {res.fun:.3f} (from f = 100)")


if __name__ == "__main__":
    main()
