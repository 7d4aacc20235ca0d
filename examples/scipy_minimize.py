"""Use a Natural Evolution Strategy as a method of ``scipy.optimize.minimize``.

Run: ``python examples/scipy_minimize.py`` (a second or two).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, minimize, rosen

from nes_asktell import nes


def main() -> None:
    # 1. Rosenbrock from the classic start, reproducible with an integer seed.
    res = minimize(rosen, [-1.2, 1.0], method=nes, options={"rng": 0})
    print(f"nes (xnes), rosenbrock: f = {res.fun:.2e} after {res.nfev} evaluations")

    # 2. Box bounds, a budget and a callback that watches the progress.
    trace: list[float] = []

    def watch(intermediate_result: object) -> None:
        trace.append(intermediate_result.fun)  # type: ignore[attr-defined]

    res = minimize(
        rosen,
        np.zeros(5),
        method=nes,
        bounds=Bounds(-2.0, 0.5),
        callback=watch,
        options={"maxfev": 4000, "rng": 1},
    )
    print(
        f"nes (xnes), bounded 5-d rosenbrock: f = {res.fun:.4f} at x = {np.round(res.x, 3)}, "
        f"{len(trace)} generations, status {res.status}: {res.message}"
    )

    # 3. A vectorized objective: one call per generation with X of shape (d, popsize).
    def sphere_columns(X: np.ndarray) -> np.ndarray:
        return np.sum((X - 1.0) ** 2, axis=0)

    res = minimize(
        sphere_columns, np.zeros(10), method=nes, options={"vectorized": True, "rng": 2}
    )
    print(f"nes (xnes), vectorized 10-d sphere: f = {res.fun:.2e} in {res.nit} calls")


if __name__ == "__main__":
    main()
