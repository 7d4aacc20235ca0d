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
    "engines": "benchmarks.engines",  # bytes and seconds per generation of every engine
    "faults": "benchmarks.faults",  # injected faults in parallel evaluation, survived or not
    "dask_killed": "benchmarks.dask_killed",  # a LocalCluster whose worker a candidate kills
    "hostile": "benchmarks.hostile",  # bad inputs, corrupted states, edge cases, resumes
    "noisy": "benchmarks.noisy",  # noise handling on bbob-noisy and a noisy policy search
    "optuna_faults": "benchmarks.optuna_faults",  # NESSampler in faulty and shared studies
    "optuna_long": "benchmarks.optuna_long",  # a 20,000-trial study that resumes elsewhere
    "optuna_bbob": "benchmarks.optuna_bbob",  # NESSampler vs Optuna's samplers, BBOB 24 functions
    "optuna_replay": "benchmarks.optuna_replay",  # NESSampler's options, paired, by ask/tell
    "optuna_sklearn": "benchmarks.optuna_sklearn",  # tuning a scikit-learn model, with a pruner
    "policy": "benchmarks.policy",  # policy search on Box2D tasks: NES vs pycma and ARS
}

#: benchmarks whose ``main`` also takes ``argv``, their own options after the name, and ``prog``,
#: the command that started them (``python -m benchmarks NAME``; their own module's command
#: when started as ``python -m benchmarks.MODULE``)
WITH_OPTIONS = (
    "dask_killed",
    "optuna",
    "optuna_bbob",
    "optuna_replay",
    "optuna_sklearn",
    "noisy",
    "optuna_long",
    "policy",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmarks: all of them, or the ones named.",
        add_help=False,
    )
    parser.add_argument(
        "-h",
        "--help",
        action="store_true",
        help=f"show this help, or after one of {', '.join(WITH_OPTIONS)}, its own options",
    )
    # No `choices=`: with nargs="*" argparse would list the empty default among them.
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"the benchmarks to run, of {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, for smoke tests")
    args, rest = parser.parse_known_args(argv)
    if args.help:
        if len(args.names) == 1 and args.names[0] in WITH_OPTIONS:
            name = args.names[0]
            module = importlib.import_module(BENCHMARKS[name])
            # prints its options and exits
            module.main(quick=args.quick, argv=["--help"], prog=f"{parser.prog} {name}")
        parser.print_help()
        parser.exit()
    if rest and (len(args.names) != 1 or args.names[0] not in WITH_OPTIONS):
        parser.error(
            f"unrecognized arguments: {' '.join(rest)} (options after a name are taken only by "
            f"one of {', '.join(WITH_OPTIONS)}, named alone)"
        )
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"argument NAME: invalid choice: {unknown[0]!r} (choose from {', '.join(BENCHMARKS)})"
        )
    for name in args.names or list(BENCHMARKS):
        print(f"\n##### benchmark: {name}\n", flush=True)
        module = importlib.import_module(BENCHMARKS[name])
        if name in WITH_OPTIONS:
            module.main(quick=args.quick, argv=rest, prog=f"{parser.prog} {name}")
        else:
            module.main(quick=args.quick)


if __name__ == "__main__":
    main()
