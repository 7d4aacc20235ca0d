"""The demo: the 2017 seed run, then the same problem solved by the library's defaults."""

from __future__ import annotations

from importlib import resources

import numpy as np

from ._openes import OpenES
from ._typing import FloatArray

SOLUTION = np.array([0.5, 0.1, -0.3])
TARGET = 1e-8


def seed_problem(w: FloatArray) -> float:
    """Return the seed's objective ``|w - [0.5, 0.1, -0.3]|^2`` (its reward is minus this)."""
    return float(np.sum((w - SOLUTION) ** 2))


def run_demo(plot: str | None) -> int:
    """Print the seed trace and the comparison; write a plot when matplotlib is available."""
    print("== The 2017 seed: fixed-sigma NES, popsize 50, sigma 0.1, lr 0.001 ==")
    rs = np.random.RandomState(0)
    es = OpenES(
        rs.randn(3),
        sigma0=0.1,
        popsize=50,
        optimizer="sgd",
        learning_rate=0.001,
        shaping="zscore",
        mirrored=False,
        rng=rs,
    )
    expected = resources.files("nes_asktell").joinpath("data/seed_trace.txt").read_text().split()
    seed_curve = []
    lines = []
    for i in range(300):
        f = seed_problem(es.mean)
        seed_curve.append((es.nfev, f))
        if i % 20 == 0:
            lines.append(f"{i} {-f:f}")
            print(lines[-1])
        X = es.ask()
        es.tell(X, [seed_problem(x) for x in X])
    same = lines == [" ".join(p) for p in zip(expected[::2], expected[1::2], strict=True)]
    print(f"matches the 2017 trace line for line: {same}")
    print(f"after {es.nfev} evaluations: f = {seed_problem(es.mean):.3e}")
    return 0 if same else 1
