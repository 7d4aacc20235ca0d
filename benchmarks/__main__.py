"""Run the benchmarks: ``python -m benchmarks`` runs them all, or name some of them.

Each benchmark is a module of this package with a ``main(quick: bool) -> None`` function that
prints its tables and writes its figures and tables under ``docs/_static/bench``.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "bbob": "benchmarks.bbob",  # SNES/XNES/OpenES vs pycma and cmaes on BBOB (ERT)
    "scipy": "benchmarks.scipy_compare",  # minimize(method=nes) vs scipy's methods
    "optuna": "benchmarks.optuna_bench",  # NESSampler vs TPE and CmaEsSampler
    "scale": "benchmarks.scale",  # ask+tell at d up to 1e6, workers, bytes moved
    "faults": "benchmarks.faults",  # injected faults in parallel evaluation, survived or not
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], default=[])
    parser.add_argument("--quick", action="store_true", help="a smaller run, for smoke tests")
    args = parser.parse_args()
    for name in args.names or list(BENCHMARKS):
        print(f"\n##### benchmark: {name}\n", flush=True)
        importlib.import_module(BENCHMARKS[name]).main(quick=args.quick)


if __name__ == "__main__":
    main()
