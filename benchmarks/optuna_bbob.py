"""NESSampler against Optuna's samplers on COCO's BBOB suite (all 24 functions).

Protocol
--------
* **Problems**: the 24 functions of ``cocoex.Suite("bbob", ...)`` at d = 5 and 10, instances
  1-3 (f_opt from ``cocoex.BareProblem``, as in ``benchmarks/bbob.py``). Each parameter
  ``x{i}`` is ``trial.suggest_float(..., -5, 5)``, the box of the suite; the value reported is
  ``f(x) - f_opt``.
* **Samplers**, default settings and the seed ``10000 f + 100 d + instance`` (the same for all):
  ``NESSampler``, ``CmaEsSampler``, ``CmaEsSampler(restart_strategy="ipop")`` (the restarts
  Optuna offers), ``TPESampler``, ``RandomSampler``. In-memory storage, one process.
* **Budgets**: each study runs 1,000 trials (``--trials``) once; the result at 200 trials is the
  best of the same study's first 200 trials. That is valid because none of these samplers is told
  the number of trials: Optuna passes ``n_trials`` to ``study.optimize`` only, and no sampler
  reads it (NESSampler's restarts depend on its own stopping criteria, not on a budget).
  ``--tpe-trials`` runs TPESampler with a smaller budget when its growing per-trial cost makes
  1,000 trials too slow; the tables say so.
* **Figures**: for each function, sampler and budget, the median over the instances of the best
  ``f - f_opt``. *Best* is the sampler with the smallest median; a sampler is *within 10% of the
  best* when ``max(m, 1e-8) <= 1.1 * max(m_best, 1e-8)`` for its median ``m`` (values below
  1e-8, COCO's final target, count as solved and tie). A study *stalls* when its distinct points
  are fewer than 95% of its trials.
* **Cache**: each study's result is stored as one JSON file under
  ``~/.cache/nes_asktell_bench/optuna_bbob`` (``--cache``): the suite can be built up in parts,
  and the report reads whatever is there.

Run: ``python -m benchmarks optuna_bbob --dims 5 --functions 1-24`` (then ``--dims 10``),
``--report`` to only print the tables of the cached studies (of the whole suite, it also writes
them to the docs; a part of the suite leaves the docs' files alone), ``--quick`` for a smoke
run (f1 and f8 at d = 2, 60 trials, a temporary cache, nothing written to the docs).
Writes ``docs/_static/bench/optuna_bbob_summary.rst`` and ``optuna_bbob_tables.rst`` (with
``--samplers NES-lq CMA TPE Random``: ``optuna_bbob_surrogate_*.rst``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna

from benchmarks._bbob_runs import load_problem
from benchmarks._common import OUT_DIR, simple_table, write_text
from nes_asktell import NESSampler
from nes_asktell._typing import OptionValue
from nes_asktell._xnes import paper_eta_B

CACHE = Path.home() / ".cache" / "nes_asktell_bench" / "optuna_bbob"
ROOT = Path(__file__).resolve().parent.parent

SAMPLERS = (
    "NES",
    "NES-mirrored",
    "NES-etaB2",
    "NES-etaS07",
    "NES-core",
    "NES-r1",
    "NES-no-r1",
    "NES-r1-etaS05",
    "NES-r1-active",
    "NES-lq",
    "NES-DXNESIC",
    "NES-DXNESIC-IC",
    "NES-CRFMNES",
    "NES-SNES",
    "CMA",
    "CMA-IPOP",
    "TPE",
    "Random",
)
#: NESSampler with another strategy than its default, on request (``--samplers``)
NES_VARIANTS = {"NES-DXNESIC": "dxnesic", "NES-CRFMNES": "crfmnes", "NES-SNES": "snes"}
#: XNES's own defaults (step-size rate, adaptation sampling, mirrored sampling, the rank-one
#: term that follows CSA), which the sampler's defaults (``DEFAULT_OPTIONS``) replace: the
#: strategy as ``XNES(x0, sigma0)`` runs. (Before XNES had the rank-one term these were the first
#: three; the docs' figures of ``NES-core`` from then are of XNES without it.)
CORE_XNES_OPTIONS: dict[str, OptionValue] = {
    "eta_sigma": None,
    "adaptation_sampling": True,
    "mirrored": True,
    "rank_one": None,
}
#: the samplers run by default. CMA-IPOP only on request: from Optuna 4.4 on,
#: ``restart_strategy`` is deprecated and ignored (a FutureWarning says it "falls back to None";
#: the restarts moved to OptunaHub), so with this Optuna it repeats CMA's studies trial by trial.
DEFAULT_SAMPLERS = ("NES", "CMA", "TPE", "Random")
#: the samplers of the surrogate's tables (``optuna_bbob_surrogate_*.rst``)
SURROGATE_SAMPLERS = ["NES-lq", "CMA", "TPE", "Random"]
LABELS = {
    "NES": "NESSampler",
    "NES-mirrored": "NESSampler(mirrored)",
    "NES-etaB2": "NESSampler(2 eta_B)",
    "NES-etaS07": "NESSampler(eta_sigma 0.7)",
    "NES-core": "NESSampler(core XNES)",
    "NES-r1": "NESSampler(rank_one)",
    "NES-no-r1": "NESSampler(no rank_one)",
    "NES-r1-etaS05": "NESSampler(rank_one, eta_sigma 0.5)",
    "NES-r1-active": "NESSampler(rank_one, active)",
    "NES-lq": "NESSampler(surrogate)",
    "NES-DXNESIC": "NESSampler(dxnesic)",
    "NES-DXNESIC-IC": "NESSampler(dxnesic, implicit_constraints)",
    "NES-CRFMNES": "NESSampler(crfmnes)",
    "NES-SNES": "NESSampler(snes)",
    "CMA": "CmaEsSampler",
    "CMA-IPOP": "CmaEsSampler(ipop)",
    "TPE": "TPESampler",
    "Random": "RandomSampler",
}
FUNCTION_NAMES = {
    1: "sphere",
    2: "ellipsoid",
    3: "Rastrigin",
    4: "Bueche-Rastrigin",
    5: "linear slope",
    6: "attractive sector",
    7: "step ellipsoid",
    8: "Rosenbrock",
    9: "Rosenbrock rot.",
    10: "ellipsoid rot.",
    11: "discus",
    12: "bent cigar",
    13: "sharp ridge",
    14: "different powers",
    15: "Rastrigin rot.",
    16: "Weierstrass",
    17: "Schaffers F7",
    18: "Schaffers F7 ill",
    19: "Griewank-Rosenbrock",
    20: "Schwefel",
    21: "Gallagher 101",
    22: "Gallagher 21",
    23: "Katsuura",
    24: "Lunacek bi-Rastrigin",
}
N_TRIALS = 1000
PREFIX = 200
#: f - f_opt below this counts as solved (COCO's final target); it bounds the 10% comparison
FLOOR = 1e-8
#: a study stalls when its distinct points are fewer than this share of its trials
STALL_SHARE = 0.95
WITHIN = 1.1


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "NES":
        return NESSampler(seed=seed)
    if name == "NES-mirrored":
        return NESSampler(seed=seed, strategy_options={"mirrored": True})
    if name == "NES-etaB2":  # twice XNES's default eta_B (paper_eta_B) of the study's d
        dim = (seed // 100) % 100
        return NESSampler(seed=seed, strategy_options={"eta_B": min(2.0 * paper_eta_B(dim), 1.0)})
    if name == "NES-etaS07":  # a smaller step-size rate than the sampler's default 1
        return NESSampler(seed=seed, strategy_options={"eta_sigma": 0.7})
    if name == "NES-core":  # XNES with the core's own defaults instead of the sampler's
        return NESSampler(seed=seed, strategy_options=dict(CORE_XNES_OPTIONS))
    if name == "NES-r1":  # XNES with the rank-one term of the shape update (off by default)
        return NESSampler(seed=seed, strategy_options={"rank_one": True})
    if name == "NES-no-r1":  # rank_one=False given explicitly: the sampler's default XNES
        return NESSampler(seed=seed, strategy_options={"rank_one": False})
    if name == "NES-r1-etaS05":  # the rank-one term with half the sampler's step-size rate
        return NESSampler(seed=seed, strategy_options={"rank_one": True, "eta_sigma": 0.5})
    if name == "NES-r1-active":  # the rank-one term and active CMA-ES's weights for the shape
        return NESSampler(seed=seed, strategy_options={"rank_one": True, "active": True})
    if name == "NES-lq":  # the linear-quadratic surrogate chooses the rows evaluated
        return NESSampler(seed=seed, surrogate=True)
    if name in NES_VARIANTS:
        return NESSampler(seed=seed, strategy=NES_VARIANTS[name])
    if name == "NES-DXNESIC-IC":  # DX-NES-IC counting a failed trial as infeasible (the paper)
        return NESSampler(
            seed=seed, strategy="dxnesic", strategy_options={"implicit_constraints": True}
        )
    if name == "CMA":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "CMA-IPOP":
        return optuna.samplers.CmaEsSampler(seed=seed, restart_strategy="ipop")
    if name == "TPE":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}, expected one of {SAMPLERS}")


def seed_of(function: int, dim: int, instance: int) -> int:
    return 10_000 * function + 100 * dim + instance


#: the faulty variants of the suite (``--fault``): none, a failing region, a pruner
FAULTS = ("none", "fail", "prune")


def cache_path(
    cache: Path, name: str, function: int, dim: int, instance: int, n: int, fault: str = "none"
) -> Path:
    tag = "" if fault == "none" else f"{fault}-"
    return cache / f"{tag}{name}-f{function:02d}-d{dim:02d}-i{instance}-n{n}.json"


def in_failing_region(x: np.ndarray) -> bool:
    """Whether `x` lies where the faulty studies fail: ``x_0 + x_1 > 3`` (24.5% of the box)."""
    return bool(x[0] + x[1] > 3.0)


def reports(value: float) -> list[float]:
    """The intermediate values a pruned study reports at steps 0, 1, 2: ``f (1 + (3 - s) / 10)``.

    They fall towards the final value, so ``MedianPruner`` compares trials by their values.
    """
    return [value * (1.0 + (3 - step) / 10.0) for step in range(3)]


def run_study(
    name: str, function: int, dim: int, instance: int, n_trials: int, fault: str = "none"
) -> dict[str, object]:
    """Run one study; return its record (the f - f_opt of every trial, distinct points, time).

    With `fault` ``"fail"`` the objective raises in :func:`in_failing_region`; with
    ``"prune"`` it reports :func:`reports` under ``MedianPruner(n_startup_trials=5)``.
    """
    problem, fopt, instance_id = load_problem(function, dim, instance)

    def objective(trial: optuna.Trial) -> float:
        x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(dim)])
        if fault == "fail" and in_failing_region(x):
            raise RuntimeError("the objective fails here")
        value = float(problem(x)) - fopt
        if fault == "prune":
            for step, reported in enumerate(reports(value)):
                trial.report(reported, step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return value

    seed = seed_of(function, dim, instance)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5) if fault == "prune" else None
    study = optuna.create_study(sampler=make_sampler(name, seed), pruner=pruner)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    seconds = time.perf_counter() - t0
    trials = study.get_trials(deepcopy=False)
    points = [tuple(t.params[f"x{i}"] for i in range(dim)) for t in trials]
    values = [
        t.value if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None else None
        for t in trials
    ]
    return {
        "sampler": name,
        "function": function,
        "dim": dim,
        "instance": instance,
        "instance_id": instance_id,
        "fault": fault,
        "seed": seed,
        "n_trials": n_trials,
        "fopt": fopt,
        "values": values,
        "distinct": len(set(points)),
        "distinct_prefix": len(set(points[:PREFIX])),
        "seconds": seconds,
        "optuna": optuna.__version__,
        "commit": commit(),
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def cached_study(
    cache: Path,
    name: str,
    function: int,
    dim: int,
    instance: int,
    n_trials: int,
    compute: bool,
    fault: str = "none",
) -> dict[str, object] | None:
    """Return the cached record of a study, running and storing it first if `compute`."""
    path = cache_path(cache, name, function, dim, instance, n_trials, fault)
    if path.exists():
        return dict(json.loads(path.read_text()))
    if not compute:
        return None
    record = run_study(name, function, dim, instance, n_trials, fault)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)  # a study interrupted while writing leaves no half file
    return record


def best_of(record: dict[str, object], n: int) -> float:
    values = [v for v in record["values"][:n] if v is not None]  # type: ignore[index]
    return min(values, default=math.inf)


def within(m: float, best: float) -> bool:
    return max(m, FLOOR) <= WITHIN * max(best, FLOOR)


def fmt(x: float) -> str:
    if math.isinf(x):
        return "inf"
    return "<1e-8" if x < FLOOR else f"{x:.2e}"


class Report:
    """The medians, winners and stalls of the cached studies."""

    def __init__(
        self,
        cache: Path,
        samplers: Sequence[str],
        functions: Sequence[int],
        dims: Sequence[int],
        instances: Sequence[int],
        budgets: dict[str, list[int]],
        ns: tuple[int, ...],
        fault: str = "none",
    ) -> None:
        self.ns = ns
        self.fault = fault
        self.samplers = list(samplers)
        self.functions = list(functions)
        self.dims = list(dims)
        self.instances = list(instances)
        #: the budget each sampler's studies ran with at each d: the largest of its candidate
        #: budgets that covers the most functions
        self.budgets: dict[tuple[str, int], int] = {}
        self.records: dict[tuple[str, int, int], list[dict[str, object]]] = {}
        for d in dims:
            for s in samplers:
                found: dict[int, dict[int, list[dict[str, object]]]] = {}
                for n in sorted(set(budgets[s]), reverse=True):
                    for f in functions:
                        recs = [
                            cached_study(cache, s, f, d, i, n, compute=False, fault=fault)
                            for i in instances
                        ]
                        if all(r is not None for r in recs):
                            found.setdefault(n, {})[f] = recs  # type: ignore[assignment]
                if not found:
                    continue
                n = max(found, key=lambda k: (len(found[k]), k))
                self.budgets[(s, d)] = n
                for f, recs in found[n].items():
                    self.records[(s, f, d)] = recs

    def commits(self) -> str:
        """Return a line naming the library commits the reported studies were run with.

        A cached study is keyed by sampler, problem and trials only, not by the library's
        code: a study run before a change of the library is reported as it was then.
        """
        found: dict[str, set[str]] = {}
        for (s, _, _), recs in self.records.items():
            found.setdefault(s, set()).update(str(r.get("commit", "unknown")) for r in recs)
        parts = [f"{s} {', '.join(sorted(found[s]))}" for s in self.samplers if s in found]
        return (
            f"studies run at library commits: {'; '.join(parts) or 'none'} "
            f"(the code now: {commit()})"
        )

    def complete(self, d: int) -> list[int]:
        """Functions at `d` with every sampler's studies on every instance."""
        return [f for f in self.functions if all((s, f, d) in self.records for s in self.samplers)]

    def whole(self) -> bool:
        """Whether every sampler's studies of every function, d and instance are in the cache."""
        return all(self.complete(d) == self.functions for d in self.dims)

    def median(self, s: str, f: int, d: int, n: int) -> float:
        return statistics.median(
            best_of(r, min(n, self.budgets[(s, d)])) for r in self.records[(s, f, d)]
        )

    def table(self, d: int, n: int) -> tuple[str, dict[str, list[int]]]:
        """The table of medians at budget `n` and, per sampler, [best, within 10%] counts."""
        counts = {s: [0, 0] for s in self.samplers}
        rows = []
        for f in self.complete(d):
            meds = {s: self.median(s, f, d, n) for s in self.samplers}
            best = min(max(m, FLOOR) for m in meds.values())
            row = [f"f{f} {FUNCTION_NAMES[f]}"]
            for s in self.samplers:
                m = meds[s]
                is_best = max(m, FLOOR) == best
                ok = within(m, best)
                counts[s][0] += is_best
                counts[s][1] += ok
                row.append(fmt(m) + ("*" if is_best else "+" if ok else ""))
            if self.with_ratio:
                row.append(f"{max(meds['NES'], FLOOR) / max(meds['CMA'], FLOOR):.3g}")
            rows.append(row)
        headers = ["function"] + [self.label(s, d, n) for s in self.samplers]
        if self.with_ratio:
            headers.append("NES / CMA")
        return simple_table(headers, rows), counts

    def within_10x(self, d: int, n: int) -> tuple[int, int] | None:
        """Functions where NESSampler's median is at most 10x the better of CMA's and TPE's.

        Returns (count, functions compared), or None without those three samplers. Medians
        below 1e-8 count as 1e-8 (solved).
        """
        if not {"NES", "CMA", "TPE"} <= set(self.samplers):
            return None
        done = self.complete(d)
        ok = 0
        for f in done:
            peer = min(max(self.median(s, f, d, n), FLOOR) for s in ("CMA", "TPE"))
            ok += max(self.median("NES", f, d, n), FLOOR) <= 10.0 * peer
        return ok, len(done)

    @property
    def with_ratio(self) -> bool:
        """Whether the tables show NESSampler's median divided by CmaEsSampler's."""
        return "NES" in self.samplers and "CMA" in self.samplers

    def label(self, s: str, d: int, n: int) -> str:
        """The sampler's name, with its budget when it ran fewer than `n` trials."""
        budget = self.budgets[(s, d)]
        return LABELS[s] + (f" ({budget} trials)" if budget < n else "")

    def stalls(self, d: int) -> list[str]:
        """One row per sampler: the smallest share of distinct points and the stalled studies."""
        rows = []
        for s in self.samplers:
            recs = [r for f in self.complete(d) for r in self.records[(s, f, d)]]
            if not recs:
                continue
            shares = [int(r["distinct"]) / int(r["n_trials"]) for r in recs]  # type: ignore[call-overload]
            stalled = sum(x < STALL_SHARE for x in shares)
            secs = statistics.median(float(r["seconds"]) for r in recs)  # type: ignore[arg-type]
            rows.append(
                [LABELS[s], f"{min(shares):.3f}", f"{stalled} of {len(recs)}", f"{secs:.1f}"]
            )
        return rows

    def text(self) -> tuple[str, str]:
        """The summary (winners and stalls) and the tables per function."""
        parts = []
        summary_rows = []
        for d in self.dims:
            done = self.complete(d)
            if not done:
                continue
            for n in self.ns:
                table, counts = self.table(d, n)
                parts.append(
                    f"d = {d}, best f - f_opt after {n} trials, median over instances "
                    f"{', '.join(map(str, self.instances))} (* best, + within 10% of the best; "
                    "NES / CMA: the ratio of the medians, each at least 1e-8):"
                    f"\n\n{table}"
                )
                for s in self.samplers:
                    b, w = counts[s]
                    summary_rows.append(
                        [
                            str(d),
                            str(n),
                            self.label(s, d, n),
                            f"{b} of {len(done)}",
                            f"{w} of {len(done)}",
                        ]
                    )
        summary = simple_table(
            ["d", "trials", "sampler", "best", "best or within 10%"], summary_rows
        )
        ten = [
            [str(d), str(n), f"{r[0]} of {r[1]}"]
            for d in self.dims
            if self.complete(d)
            for n in self.ns
            if (r := self.within_10x(d, n)) is not None
        ]
        stall_rows = [[str(d), *row] for d in self.dims for row in self.stalls(d)]
        stalls = simple_table(
            ["d", "sampler", "min distinct share", "stalled (< 95%)", "median s/study"],
            stall_rows,
        )
        head = "\n\n".join(
            [
                "Summary (how often each sampler is best, or within 10% of the best):\n\n"
                + summary,
                "Distinct points per study (a study stalls below 95% of its trials):\n\n" + stalls,
            ]
            + (
                [
                    "Functions where NESSampler's median is at most 10x the better of "
                    "CmaEsSampler's and TPESampler's:\n\n"
                    + simple_table(["d", "trials", "NESSampler within 10x"], ten)
                ]
                if ten
                else []
            )
        )
        return head, "\n\n".join(parts)


def parse_range(text: Sequence[str]) -> list[int]:
    out: list[int] = []
    for item in text:
        for part in item.split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def docs_stem(
    fault: str,
    dims: Sequence[int],
    functions: Sequence[int],
    instances: Sequence[int],
    samplers: Sequence[str],
) -> str | None:
    """Return the stem of the docs' files a run (or ``--report``) writes, None for a part.

    The docs' files are written for a whole suite only, never for a part of it (which would
    leave the docs with that part only): all 24 functions at d = 5 and 10, on instances 1-3
    with the four samplers, or with a fault on instances 1-3 or 1-15 (five times the studies
    per median, which tells a sampler's lead from the luck of three instances on the
    multimodal functions) with NESSampler, CmaEsSampler and TPESampler; and without a fault
    on instances 1-3 with ``NES-lq`` (``surrogate=True``) in the place of ``NES``.
    """
    if list(dims) != [5, 10] or list(functions) != list(range(1, 25)):
        return None
    if fault == "none":
        if list(instances) != [1, 2, 3]:
            return None
        if list(samplers) == list(DEFAULT_SAMPLERS):
            return "optuna_bbob"
        # the same tables with the surrogate in NESSampler's place
        return "optuna_bbob_surrogate" if list(samplers) == SURROGATE_SAMPLERS else None
    part = {(1, 2, 3): "", tuple(range(1, 16)): "_i15"}.get(tuple(instances))
    if part is None or list(samplers) != ["NES", "CMA", "TPE"]:
        return None
    return f"optuna_bbob_{fault}{part}"


def main(
    quick: bool = False,
    argv: list[str] | None = None,
    prog: str = "python -m benchmarks.optuna_bbob",
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--dims", nargs="*", type=int, default=[5, 10])
    parser.add_argument("--functions", nargs="*", default=["1-24"], help="e.g. 1-24 or 1,8,15")
    parser.add_argument("--instances", nargs="*", type=int, default=[1, 2, 3])
    parser.add_argument("--samplers", nargs="*", choices=SAMPLERS, default=list(DEFAULT_SAMPLERS))
    parser.add_argument("--trials", type=int, default=N_TRIALS)
    parser.add_argument("--tpe-trials", type=int, default=None, help="TPESampler's budget")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--report", action="store_true", help="only report the cached studies")
    parser.add_argument(
        "--report-samplers",
        nargs="*",
        choices=SAMPLERS,
        default=None,
        help="the samplers of the tables (default: those of --samplers)",
    )
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default="none",
        help="fail where x0 + x1 > 3, or report to a MedianPruner (default: none)",
    )
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = quick or args.quick
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    functions = parse_range(args.functions)
    for name, value in (("--trials", args.trials), ("--tpe-trials", args.tpe_trials)):
        if value is not None and value < 1:
            parser.error(f"`{name}` must be at least 1, but got {value}")
    given = {"--dims": args.dims, "--instances": args.instances, "--samplers": args.samplers}
    for name, values in given.items():
        if not values:
            parser.error(f"`{name}` must name at least one, but got none")
    if not functions:
        parser.error(f"`--functions` must name at least one, but got {' '.join(args.functions)!r}")
    tmp = None
    if quick:
        tmp = tempfile.TemporaryDirectory()
        args.cache, args.dims, functions, args.instances = Path(tmp.name), [2], [1, 8], [1]
        args.trials = 60
    budgets = {s: args.trials for s in SAMPLERS}
    if args.tpe_trials:
        budgets["TPE"] = args.tpe_trials
    prefix = min(PREFIX, args.trials)
    if not args.report:
        for d in args.dims:  # samplers interleaved study by study: machine load hits them alike
            for f in functions:
                for i in args.instances:
                    for s in args.samplers:
                        path = cache_path(args.cache, s, f, d, i, budgets[s], args.fault)
                        if path.exists():
                            continue
                        r = cached_study(
                            args.cache, s, f, d, i, budgets[s], compute=True, fault=args.fault
                        )
                        assert r is not None
                        print(
                            f"d={d:2d} f{f:02d} i{i} {s:8s} best@{prefix} "
                            f"{fmt(best_of(r, prefix))} best@{budgets[s]} "
                            f"{fmt(best_of(r, budgets[s]))} distinct {r['distinct']} "
                            f"{float(r['seconds']):.1f} s",  # type: ignore[arg-type]
                            flush=True,
                        )
    samplers = args.report_samplers or args.samplers
    report = Report(
        args.cache,
        samplers,
        functions,
        args.dims,
        args.instances,
        {s: [args.trials, *([budgets[s]] if budgets[s] != args.trials else [])] for s in SAMPLERS},
        (prefix, args.trials) if prefix < args.trials else (args.trials,),
        args.fault,
    )
    summary, tables = report.text()
    print(summary)
    print(tables)
    print(report.commits())
    stem = docs_stem(args.fault, args.dims, functions, args.instances, samplers)
    if not quick and stem is not None:
        if report.whole():
            write_text(OUT_DIR / f"{stem}_summary.rst", summary)
            write_text(OUT_DIR / f"{stem}_tables.rst", tables)
        else:  # the tables of a part of the suite would replace the docs' whole ones
            print(f"not written to the docs: the cache {args.cache} lacks studies of the suite")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
