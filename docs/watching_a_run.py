"""Make the figure of docs/watching.rst: XNES on the 8-d Rosenbrock function, recorded by History.

Run from the repository's root: ``.venv/bin/python docs/watching_a_run.py``. It writes
``docs/_static/watching/rosenbrock.csv`` (the History) and ``rosenbrock.png`` (its plot, the
figure ``nes-asktell plot docs/_static/watching/rosenbrock.csv`` draws, saved at 80 dpi instead
of 100). The run is deterministic (``rng=1``): on one machine only the ``elapsed`` column changes
from one run to the next; another machine may round the last bits of some values otherwise
(its BLAS picks other kernels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import rosen

from nes_asktell import XNES, History

OUT = Path(__file__).resolve().parent / "_static" / "watching"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    history = History()
    es = XNES(np.full(8, -1.0), sigma0=0.5, rng=1, ftarget=1e-10)
    res = es.optimize(rosen, maxfev=100_000, callback=history, disp=1)
    history.save(OUT / "rosenbrock.csv")
    history.plot().savefig(OUT / "rosenbrock.png", dpi=80)
    print(f"{len(history)} generations, {res.nfev} evaluations, f = {res.fun:.3g}: {res.stop}")


if __name__ == "__main__":
    main()
