"""BBOB benchmark: evaluations to reach f - f_opt <= 1e-8 (ERT), ours vs pycma and cmaes.

Run it with ``python -m benchmarks bbob`` (``make bench`` runs every benchmark); ``--quick`` runs a
small configuration and writes its output to a temporary folder instead of the docs.

Protocol: BBOB functions f1, f2, f7, f8, f10, f15, f21 from the COCO ``bbob`` suite at
d = 2, 5, 10, 20, instances 1-5; x0 uniform in [-4, 4]^d (seeded by function, dimension and
instance: every method starts from the same point) and sigma0 = 2. Each method runs with its
default settings until the target f - f_opt <= 1e-8 is hit (counted exactly: the run stops at
the evaluation that hits it, even within a generation), until it stops by its own criteria, or
until the budget of 1e4 * d evaluations is spent. ERT = (evaluations of the successful runs +
budget * failures) / successes, infinite when no run succeeds.

A second table times one generation (ask + tell, without the function evaluations) against d.

The benchmark is split by concept: ``_bbob_methods`` (the objective and the methods),
``_bbob_runs`` (the protocol, the runs and the seed's problem), ``_bbob_tables`` (ERT and the
targets), ``_bbob_plots`` (figures) and ``_bbob_overhead`` (the timing table). This module runs
them in order (:func:`main`), writes the outputs and re-exports their names.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks._bbob_methods import (
    ECDF_TARGETS,
    RUNNERS,
    TARGET,
    Objective,
    _StopRunError,
    available,
    nes_class,
    run_cmaes,
    run_nes,
    run_pycma,
    run_pycma_ipop,
    run_seed,
    run_xnes_ipop,
)
from benchmarks._bbob_overhead import OVERHEAD_METHODS, overhead, run_overhead
from benchmarks._bbob_plots import ecdf_plot, ratio_plot
from benchmarks._bbob_runs import (
    BUDGET_PER_DIM,
    DIMS,
    EXTRA,
    FUNCTIONS,
    INSTANCES,
    METHODS,
    NAMES,
    QUICK,
    SEED_SOLUTION,
    SIGMA0,
    Config,
    Run,
    SeedResults,
    load_problem,
    run_all,
    run_one,
    seed_problem,
    start,
)
from benchmarks._bbob_tables import ErtTable, dim_tables, ert, ert_table, target_checks
from benchmarks._common import OUT_DIR, fmt_count, simple_table, write_csv, write_text

__all__ = [
    "BUDGET_PER_DIM",
    "DIMS",
    "ECDF_TARGETS",
    "EXTRA",
    "FUNCTIONS",
    "INSTANCES",
    "METHODS",
    "NAMES",
    "OVERHEAD_METHODS",
    "QUICK",
    "RUNNERS",
    "SEED_SOLUTION",
    "SIGMA0",
    "TARGET",
    "Config",
    "ErtTable",
    "Objective",
    "Run",
    "SeedResults",
    "_StopRunError",
    "available",
    "dim_tables",
    "ecdf_plot",
    "ert",
    "ert_table",
    "load_problem",
    "main",
    "nes_class",
    "overhead",
    "ratio_plot",
    "run_all",
    "run_cmaes",
    "run_nes",
    "run_one",
    "run_overhead",
    "run_pycma",
    "run_pycma_ipop",
    "run_seed",
    "run_xnes_ipop",
    "seed_problem",
    "start",
    "target_checks",
    "versions",
    "write_outputs",
]


def _git_commit() -> str:
    """Return the short commit of the working tree, flagging uncommitted library changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "nes_asktell"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return head + (f" (with uncommitted changes in {', '.join(changed)})" if changed else "")


def versions() -> str:
    """Return the versions of the compared packages."""
    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    out.append(f"nes_asktell at commit {_git_commit()}")
    for mod in ("cma", "cmaes", "cocoex"):
        try:
            out.append(f"{mod} {getattr(__import__(mod), '__version__', '?')}")
        except ImportError:
            out.append(f"{mod} missing")
    return ", ".join(out)


def write_outputs(
    runs: Sequence[Run],
    config: Config,
    wall: float,
    missing: dict[str, str],
    out: Path,
    seed: SeedResults | None = None,
    versions_text: str | None = None,
) -> dict[int, str]:
    """Print and write the ERT tables, per-run CSV, targets, ECDF plot and run notes."""
    table = ert_table(runs, config)
    if seed is not None:
        stext = simple_table(
            ["method", "median evaluations", "solved"],
            [[m, fmt_count(med), f"{k}/{n}"] for m, (med, k, n) in seed.items()],
        )
        print("\nThe seed's 3-d problem: evaluations to f <= 1e-8 (x0 ~ N(0, I), sigma0 = 1)")
        print(stext)
        write_text(out / "bbob_seed_problem.rst", stext)
    tables = dim_tables(table, config)
    rst = []
    for d, text in tables.items():
        print(
            f"\nERT to f - f_opt <= 1e-8 (successes/runs), d = {d}, "
            f"budget {config.budget_per_dim * d:,}"
        )
        print(text)
        rst.append(
            f".. rubric:: d = {d} (budget {config.budget_per_dim * d:,} evaluations)\n\n{text}"
        )
    write_text(out / "bbob_ert.rst", "\n".join(rst))
    write_csv(
        out / "bbob_ert.csv",
        ["dim", "function", "method", "ert", "successes", "runs"],
        [[d, f, m, e, s, n] for (d, f, m), (e, s, n) in sorted(table.items())],
    )
    write_csv(
        out / "bbob_runs.csv",
        ["method", "function", "dim", "instance", "evals", "success", "stop", "seconds", "error"],
        [
            [
                r.method,
                r.function,
                r.dim,
                r.instance,
                r.evals,
                int(r.success),
                r.stop,
                round(r.seconds, 3),
                r.error,
            ]
            for r in sorted(runs, key=lambda r: (r.dim, r.function, r.method, r.instance))
        ],
    )
    checks = target_checks(table, seed)
    lines = ["Target", "met", "measured"]
    trows = [[name, {True: "yes", False: "no", None: "n/a"}[ok], ev] for name, ev, ok in checks]
    ttext = simple_table(lines, trows)
    print("\nTargets of the defaults against pycma (from this run)\n" + ttext)
    write_text(out / "bbob_targets.rst", ttext)
    errors = sorted({f"{r.method}: {r.error}" for r in runs if r.error})
    cpu = sum(r.seconds for r in runs)
    notes = [
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with {config.processes} "
        f"worker processes: {len(runs)} runs, wall time {wall / 60:.1f} min "
        f"({cpu / 60:.1f} min of run time in the workers); load average of the machine at "
        f"the end: {os.getloadavg()[2]:.1f} over 15 min.",
        f"Versions: {versions_text or versions()}.",
    ]
    notes += [f"Not run ({m}): {why}" for m, why in missing.items()]
    notes += [f"Error in {e}" for e in errors]
    print("\n" + "\n".join(notes))
    write_text(out / "bbob_meta.rst", "\n\n".join(notes) + "\n")
    path = ecdf_plot(runs, config, out / "bbob_ecdf.png")
    print(f"ECDF plot: {path}")
    path = ratio_plot(table, config, out / "bbob_ratio.png")
    print(f"ERT ratio plot: {path}")
    return tables


def main(quick: bool, overhead_only: bool = False) -> None:
    """Run the BBOB benchmark (``quick``: a small configuration written to a temporary folder).

    With `overhead_only`, only the overhead table is made (``--overhead-only``).
    """
    t0 = time.perf_counter()
    config = QUICK if quick else Config()
    out = Path(tempfile.gettempdir()) / "nes_asktell_bench_quick" if quick else OUT_DIR
    if overhead_only:
        run_overhead(config, out)
        return
    print(
        f"BBOB: functions {config.functions}, d {config.dims}, instances {config.instances}, "
        f"{config.processes} processes; output in {out}",
        flush=True,
    )
    at_start = versions()  # the workers import the library as it is now
    runs, wall, missing = run_all(config)
    if versions() != at_start:
        at_start += f"; the working tree changed during the run, to {_git_commit()}"
    seed_methods = available(["XNES", "SNES", "pycma", "cmaes"])[0]
    seed = seed_problem(seed_methods, config.seed_problem_runs)
    write_outputs(runs, config, wall, missing, out, seed, at_start)
    run_overhead(config, out)
    total = (
        f"The whole benchmark (the runs, the seed's problem and the overhead table) took "
        f"{(time.perf_counter() - t0) / 60:.1f} min."
    )
    print(total)
    with (out / "bbob_meta.rst").open("a", encoding="utf-8") as fh:
        fh.write(f"\n{total}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bbob", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="a small run, to a temporary folder")
    parser.add_argument("--overhead-only", action="store_true", help="the overhead table alone")
    args = parser.parse_args()
    main(quick=args.quick, overhead_only=args.overhead_only)
