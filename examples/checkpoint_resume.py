"""Checkpoint a run to JSON, stop, resume it later: the result is bit-identical.

Run: ``python examples/checkpoint_resume.py`` (well under a second).
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import numpy as np

from nes_asktell import SNES


def f(x: np.ndarray) -> float:
    return float(np.sum(np.arange(1, x.size + 1) * x**2))


def run(es: SNES, generations: int) -> None:
    for _ in range(generations):
        X = es.ask()
        es.tell(X, [f(x) for x in X])


def main() -> None:
    # The run nobody interrupted.
    reference = SNES(np.ones(6), sigma0=0.5, rng=42)
    run(reference, 60)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.json"

        # Run 25 generations, then ask for a batch and save *before* telling it: the batch is
        # part of the checkpoint (its evaluation may have been lost with the process).
        es = SNES(np.ones(6), sigma0=0.5, rng=42)
        run(es, 25)
        pending = es.ask()
        path.write_text(json.dumps(es.state_dict()))  # plain JSON: numbers, lists, strings
        del es

        # ... later, in another process: rebuild the strategy and carry on.
        es = SNES.from_state(json.loads(path.read_text()))
        X = es.ask()  # the same batch as before the checkpoint
        assert np.array_equal(X, pending)
        es.tell(X, [f(x) for x in X])
        run(es, 34)

    same = np.array_equal(es.mean, reference.mean) and np.array_equal(es.sigma, reference.sigma)
    print(f"resumed from JSON, 60 generations: f = {es.best[1]:.3e}; bit-identical: {same}")

    # pickle works too (for example to hand a strategy to another process).
    copy = pickle.loads(pickle.dumps(reference))
    run(copy, 5)
    run(reference, 5)
    print(f"pickled copy continues identically: {np.array_equal(copy.mean, reference.mean)}")
    if not same:
        raise SystemExit("the resumed run differs from the reference")


if __name__ == "__main__":
    main()
