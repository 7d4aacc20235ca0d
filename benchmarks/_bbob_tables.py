"""The BBOB benchmark's tables: ERT per cell, one table per dimension, the targets.

The targets set for the default strategies against pycma: XNES within 1.5x pycma's ERT on f1,
f2, f8, f10 at d = 5, 10, 20 (1.0x as the goal), SNES at most pycma's ERT on f1 and f2 at
d >= 10, XNES with IPOP solving f15 at d = 5 in at least 4 of 5 instances, and XNES and SNES
solving the seed's 3-d problem in a median of at most 600 evaluations."""

from __future__ import annotations

import math
from collections.abc import Sequence

from benchmarks._bbob_runs import NAMES, Config, Run, SeedResults
from benchmarks._common import fmt_count, fmt_ratio, simple_table

#: {(dim, function, method): (ERT, successes, runs)}
ErtTable = dict[tuple[int, int, str], tuple[float, int, int]]


def ert(runs: Sequence[Run], budget: int) -> tuple[float, int]:
    """Return (ERT, successes): failures are charged `budget`; ERT is inf without success."""
    succ = sum(r.success for r in runs)
    total = sum(r.evals if r.success else budget for r in runs)
    return (total / succ if succ else math.inf), succ


def ert_table(runs: Sequence[Run], config: Config) -> ErtTable:
    """Return {(dim, function, method): (ERT, successes, runs)}."""
    groups: dict[tuple[int, int, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dim, r.function, r.method), []).append(r)
    out = {}
    for (d, f, m), rs in groups.items():
        e, s = ert(rs, config.budget_per_dim * d)
        out[(d, f, m)] = (e, s, len(rs))
    return out


def _ratio(a: float, b: float) -> float:
    if math.isinf(b):
        return math.nan
    return a / b


def dim_tables(table: ErtTable, config: Config) -> dict[int, str]:
    """Return one simple table per dimension: ERT (successes/runs) and ratios to pycma."""
    methods = [
        m
        for m in [*config.methods, *sorted({m for v in config.extra.values() for m in v})]
        if any(k[2] == m for k in table)
    ]
    ratios = [m for m in ("XNES", "SNES") if m in methods and "pycma" in methods]
    headers = ["f", *methods, *(f"{m}/pycma" for m in ratios)]
    out = {}
    for d in config.dims:
        rows = []
        for f in config.functions:
            row = [f"f{f} {NAMES.get(str(f), '')}".strip()]
            for m in methods:
                cell = table.get((d, f, m))
                row.append("" if cell is None else f"{fmt_count(cell[0])} ({cell[1]}/{cell[2]})")
            pyc = table.get((d, f, "pycma"), (math.inf, 0, 0))[0]
            for m in ratios:
                row.append(fmt_ratio(_ratio(table.get((d, f, m), (math.inf, 0, 0))[0], pyc)))
            rows.append(row)
        out[d] = simple_table(headers, rows)
    return out


def target_checks(
    table: ErtTable, seed: SeedResults | None = None
) -> list[tuple[str, str, bool | None]]:
    """Evaluate the targets (module docstring): (target, evidence, met or None if not run).

    `table` holds the BBOB ERTs, `seed` the results on the seed's 3-d problem.
    """
    checks: list[tuple[str, str, bool | None]] = []
    for name, m, fs, ds, limit in (
        (
            "XNES ERT <= 1.5x pycma on f1, f2, f8, f10 at d = 5, 10, 20",
            "XNES",
            (1, 2, 8, 10),
            (5, 10, 20),
            1.5,
        ),
        (
            "goal: XNES ERT <= 1.0x pycma on the same cells",
            "XNES",
            (1, 2, 8, 10),
            (5, 10, 20),
            1.0,
        ),
        ("SNES ERT <= pycma on f1, f2 at d >= 10", "SNES", (1, 2), (10, 20), 1.0),
    ):
        cells = [(f, d) for f in fs for d in ds]
        if any((d, f, k) not in table for f, d in cells for k in (m, "pycma")):
            checks.append((name, "not run", None))
            continue
        ratios = {(f, d): _ratio(table[(d, f, m)][0], table[(d, f, "pycma")][0]) for f, d in cells}
        # nan: pycma never succeeded; the cell then counts as met only if ours did succeed
        above = [
            f"f{f} d={d}: {fmt_ratio(r)}"
            for (f, d), r in ratios.items()
            if (r > limit) or (math.isnan(r) and math.isinf(table[(d, f, m)][0]))
        ]
        worst = max(ratios.values(), key=lambda r: -1.0 if math.isnan(r) else r)
        evidence = f"worst ratio {fmt_ratio(worst)}; {len(above)} of {len(cells)} cells above"
        if above:
            evidence += ": " + ", ".join(above[:3]) + (", ..." if len(above) > 3 else "")
        checks.append((name, evidence, not above))
    name = "XNES+IPOP solves f15 at d = 5 in >= 4 of 5 instances"
    cell = table.get((5, 15, "XNES+IPOP"))
    if cell is None:
        checks.append((name, "not run", None))
    else:
        evidence = f"{cell[1]}/{cell[2]} solved, ERT {fmt_count(cell[0])}"
        if cell[2] != 5:
            checks.append((name, evidence + " (the target is about 5 instances)", None))
        else:
            checks.append((name, evidence, cell[1] >= 4))
    name = "XNES and SNES solve the seed's 3-d problem in a median of <= 600 evaluations"
    if seed is None or any(m not in seed for m in ("XNES", "SNES")):
        checks.append((name, "not run", None))
    else:
        medians = {m: seed[m][0] for m in ("XNES", "SNES")}
        evidence = ", ".join(f"{m} {fmt_count(v)}" for m, v in medians.items())
        checks.append((name, evidence, max(medians.values()) <= 600))
    return checks
