"""Run as ``mpiexec -n 2 python -m mpi4py.futures pool_run.py``: MPIPoolExecutor as `workers`.

Rank 0 runs this script with one worker rank; each mode of the generic Executor path must give
the run a serial evaluation gives, bit for bit. A failed check raises (non-zero exit).
"""

from __future__ import annotations

import numpy as np
from mpi4py.futures import MPIPoolExecutor

from nes_asktell import SNES, XNES, Evaluator, OpenES


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.5) ** 2))


def main() -> None:
    with MPIPoolExecutor() as pool:
        for cls, d, mode in [
            (OpenES, 12_000, "vectors"),
            (OpenES, 12_000, "seeds"),
            (SNES, 12_000, "seeds"),
            (XNES, 6, "vectors"),
        ]:
            es, ref = cls(np.zeros(d), 0.3, rng=4), cls(np.zeros(d), 0.3, rng=4)
            with Evaluator(pool, mode=mode) as ev:
                for _ in range(4):
                    X = es.ask()
                    es.tell(X, ev.evaluate(sphere, X, strategy=es))
                    Y = ref.ask()
                    ref.tell(Y, [sphere(y) for y in Y])
            np.testing.assert_array_equal(es.mean, ref.mean)
            print(f"{cls.__name__} {mode}: identical to serial", flush=True)
        res = XNES(np.ones(5), 0.5, rng=2).optimize(sphere, maxiter=20, workers=pool)
        want = XNES(np.ones(5), 0.5, rng=2).optimize(sphere, maxiter=20)
        np.testing.assert_array_equal(res.x, want.x)
        print("optimize(workers=MPIPoolExecutor): identical to serial", flush=True)


if __name__ == "__main__":
    main()
