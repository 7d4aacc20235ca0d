"""The NES family with restarts on the whole BBOB suite against pycma and cmaes, run by run.

Every run (method, function, dimension, instance) is cached as one JSON file under ``--cache``,
so the suite can be built up in parts: a later call runs only the runs that are missing, those
of ``--rerun`` methods, and those recorded with another version of their method (for the
library's strategies, a hash of the sources of ``nes_asktell/``; for pycma and cmaes, the
package's version). It then prints, per dimension, the expected running time (ERT) to
f - f_opt <= 1e-8 of every method with its ratio to each ``--reference``, and with ``--out``
writes the tables, every run and the runtime ECDF plot::

    python -m benchmarks.nes_family --methods XNES+IPOP pycma+IPOP pycma+BIPOP \
        --functions 1 2 8 10 --dims 5 10 20 --instances 1-5 --reference pycma+IPOP pycma+BIPOP
    python -m benchmarks.nes_family --methods XNES+IPOP pycma+BIPOP --functions 1-24 \
        --dims 2 3 5 10 --instances 1-5 --reference pycma+BIPOP --out docs/_static/bench

Problems, start points and seeds are those of ``benchmarks/bbob.py`` (``x0`` uniform in
[-4, 4]^d, sigma0 = 2, one integer seed per problem shared by every method). The budget is
``--budget`` times d evaluations per run, restarts included. ERT = evaluations of all runs /
successes (COCO's definition: a failed run is charged what it spent).

The ECDF is the runtime distribution of COCO's aggregated plots, computed here (COCO's
``cocopp`` is not a dependency): for each run, the first evaluation at which f - f_opt falls
below each of the 51 targets 10^2, 10^1.8, ..., 10^-8, and for each number of evaluations the
fraction of (function, instance, target) triples reached by then. It is the fraction of
(function, target) pairs reached, averaged over the instances, without COCO's simulated
restarts (bootstrapping) of the runs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._bbob_methods import (
    TARGET,
    Objective,
    _StopRunError,
    run_cmaes,
    run_cmaes_class,
    run_pycma,
)
from ._bbob_plots import suite_ecdf_plot
from ._bbob_runs import SIGMA0, load_problem, seed_problem, start
from ._common import fmt_count, fmt_ratio, simple_table, write_text

Runner = Callable[[Objective, np.ndarray, int, float], str]
ROOT = Path(__file__).resolve().parent.parent


def _ask_tell(opt: object, obj: Objective) -> str:
    while not (stop := opt.stop()):  # type: ignore[attr-defined]
        X = opt.ask()  # type: ignore[attr-defined]
        opt.tell(X, [obj(x) for x in X])  # type: ignore[attr-defined]
    return "+".join(stop)


def _nes(name: str) -> Runner:
    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        from nes_asktell import resolve_strategy

        return _ask_tell(resolve_strategy(name)(x0, sigma0, rng=seed), obj)

    return runner


def _restarted(kind: str, name: str) -> Runner:
    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        from nes_asktell import BIPOP, IPOP

        cls = BIPOP if kind == "bipop" else IPOP
        return _ask_tell(cls(name, x0, sigma0, maxfev=obj.budget, rng=seed), obj)

    return runner


def run_pycma_bipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma's own BIPOP (``cma.fmin2(..., restarts=9, bipop=True)``)."""
    import cma

    opts = {"verbose": -9, "seed": seed, "maxfevals": obj.budget, "ftarget": obj.fopt + TARGET}
    cma.fmin2(obj, x0, sigma0, opts, restarts=9, bipop=True)
    return "fmin2"


def run_pycma_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma's own IPOP (``cma.fmin2(..., restarts=9, incpopsize=2)``)."""
    import cma

    opts = {"verbose": -9, "seed": seed, "maxfevals": obj.budget, "ftarget": obj.fopt + TARGET}
    cma.fmin2(obj, x0, sigma0, opts, restarts=9, incpopsize=2)
    return "fmin2"


def _cmaes(cls_name: str) -> Runner:
    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        return run_cmaes_class(cls_name, obj, x0, seed, sigma0)

    return runner


NES_NAMES = ("XNES", "SNES", "DXNESIC", "CRFMNES")
METHODS: dict[str, Runner] = {}
for _name in NES_NAMES:
    METHODS[_name] = _nes(_name.lower())
    METHODS[f"{_name}+IPOP"] = _restarted("ipop", _name.lower())
    METHODS[f"{_name}+BIPOP"] = _restarted("bipop", _name.lower())
METHODS.update(
    {
        "pycma": run_pycma,
        "pycma+IPOP": run_pycma_ipop,
        "pycma+BIPOP": run_pycma_bipop,
        "cmaes": run_cmaes,
        "cmaes-SepCMA": _cmaes("SepCMA"),
        "cmaes-DXNESIC": _cmaes("DXNESIC"),
    }
)

_VERSIONS: dict[str, str] = {}


def method_version(method: str) -> str:
    """Return what a cached run of `method` must have been run with to be reused.

    The library's strategies: a hash of the sources under ``nes_asktell/`` (any change of the
    library reruns them); pycma and cmaes: the package's version.
    """
    package = "cma" if method.startswith("pycma") else "cmaes" if method[:5] == "cmaes" else ""
    if package not in _VERSIONS:
        if package:
            _VERSIONS[package] = f"{package} {__import__(package).__version__}"
        else:
            digest = hashlib.sha256()
            for path in sorted((ROOT / "nes_asktell").rglob("*.py")):
                digest.update(path.relative_to(ROOT).as_posix().encode())
                digest.update(path.read_bytes())
            _VERSIONS[package] = f"nes_asktell sources {digest.hexdigest()[:12]}"
    return _VERSIONS[package]


def run_cached(
    cache: Path,
    method: str,
    function: int,
    dim: int,
    index: int,
    budget: int,
    rerun: bool,
    cached_only: bool = False,
) -> dict[str, object] | None:
    """Return the record of one run, from `cache` or by running it (then stored).

    A cached record is reused only if it holds the target hits and was run with the current
    :func:`method_version`. With `cached_only`, a run that is not in the cache is not run:
    None is returned.
    """
    path = cache / f"{method}_f{function}_d{dim}_i{index}_b{budget}.json"
    version = method_version(method)
    if path.exists() and not rerun:
        out: dict[str, object] = json.loads(path.read_text())
        if "hits" in out and out.get("version") == version:
            return out
    if cached_only:
        return None
    problem, fopt, instance = load_problem(function, dim, index)
    obj = Objective(problem, fopt, budget * dim)
    x0, seed = start(function, dim, index)
    t0 = time.perf_counter()
    error = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            METHODS[method](obj, x0, seed, SIGMA0)
        except _StopRunError:
            pass
        except Exception as exc:  # a broken method must not end the benchmark
            error = f"{type(exc).__name__}: {exc}"
    record: dict[str, object] = {
        "method": method,
        "function": function,
        "dim": dim,
        "instance": instance,
        "evals": obj.evals,
        "success": obj.solved,
        "seconds": time.perf_counter() - t0,
        "error": error,
        "version": version,
        # first evaluation reaching each ECDF target (None: never)
        "hits": [int(h) if math.isfinite(h) else None for h in obj.hits],
    }
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def ert(records: Sequence[dict[str, object]]) -> tuple[float, int]:
    """Return the ERT (evaluations of all runs / successes; inf without one) and the successes."""
    n_ok = sum(bool(r["success"]) for r in records)
    total = sum(int(r["evals"]) for r in records)  # type: ignore[call-overload]
    return (total / n_ok if n_ok else math.inf), n_ok


def table(
    records: list[dict[str, object]], methods: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> str:
    """Return a simple table per cell (f, d): ERT (successes/runs), then the ratios `pairs`.

    A ratio column ``M/R`` is given for each pair (M, R) of `pairs`: ERT of M / ERT of R; it is
    empty where R never succeeded, inf where only M never did.
    """
    cells = sorted({(int(r["dim"]), int(r["function"])) for r in records})  # type: ignore[call-overload]
    headers = ["f", "d", *methods, *(f"{m}/{r}" for m, r in pairs)]
    rows = []
    for d, f in cells:
        here = [r for r in records if r["function"] == f and r["dim"] == d]
        erts = {m: ert([r for r in here if r["method"] == m]) for m in methods}
        counts = {m: sum(r["method"] == m for r in here) for m in methods}
        row = [f"f{f}", str(d)]
        row += [
            f"{fmt_count(erts[m][0])} ({erts[m][1]}/{counts[m]})" if counts[m] else ""
            for m in methods
        ]
        for m, ref in pairs:
            a, b = erts[m][0], erts[ref][0]
            ran = counts[m] and counts[ref]
            row.append(fmt_ratio(a / b if ran and math.isfinite(b) else math.nan))
        rows.append(row)
    return simple_table(headers, rows)


def hits_by(records: Sequence[dict[str, object]]) -> dict[tuple[str, int], np.ndarray]:
    """Return {(method, dim): (runs, targets) array of first hits, inf where never reached}."""
    out: dict[tuple[str, int], list[list[float]]] = {}
    for r in records:
        hits = [math.inf if h is None else float(h) for h in r["hits"]]  # type: ignore[attr-defined]
        out.setdefault((str(r["method"]), int(r["dim"])), []).append(hits)  # type: ignore[call-overload]
    return {k: np.array(v) for k, v in out.items()}


def ecdf_at(hits: np.ndarray, evals: float) -> float:
    """Return the fraction of (run, target) pairs of `hits` reached within `evals` evaluations."""
    return float((hits <= evals).mean())


def ecdf_summary(
    records: Sequence[dict[str, object]], methods: Sequence[str], multiples: Sequence[float]
) -> str:
    """Return a simple table: per dimension and method, the ECDF at `multiples` x d evaluations."""
    hits = hits_by(records)
    dims = sorted({d for _, d in hits})
    headers = ["d", "method", *(f"{m:g} d" for m in multiples)]
    rows = []
    for d in dims:
        for m in methods:
            if (m, d) in hits:
                h = hits[(m, d)]
                rows.append([str(d), m, *(f"{ecdf_at(h, k * d):.3f}" for k in multiples)])
    return simple_table(headers, rows)


def ecdf_margin(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Return the smallest ECDF(a) - ECDF(b) over evaluations in [lo, hi], and where it is.

    Both ECDFs are step functions that change only at a hit, so checking `lo` and every hit
    in (lo, hi] checks every budget of the interval.
    """
    steps = np.concatenate([a.ravel(), b.ravel()])
    points = np.unique(np.concatenate([[lo], steps[(steps > lo) & (steps <= hi)]]))
    margins = [ecdf_at(a, x) - ecdf_at(b, x) for x in points]
    k = int(np.argmin(margins))
    return float(margins[k]), float(points[k])


def _int_list(text: str) -> list[int]:
    """Parse ``5`` or ``1-24`` into a list of ints."""
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing runs of the selection, print its tables and write them with ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["DXNESIC", "CRFMNES", "XNES", "pycma"])
    p.add_argument("--functions", nargs="+", type=_int_list, default=[[1], [2], [8], [10]])
    p.add_argument("--dims", nargs="+", type=int, default=[5, 10])
    p.add_argument("--instances", nargs="+", type=_int_list, default=[[1, 2, 3]])
    p.add_argument("--budget", type=int, default=10_000, help="evaluations per dimension")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "nes_asktell_bench")
    p.add_argument("--reference", nargs="+", default=["pycma"])
    p.add_argument(
        "--ratios",
        nargs="+",
        metavar="M/R",
        help="the ratio columns (default: every method that is not a reference to each one)",
    )
    p.add_argument(
        "--ecdf-check",
        nargs="+",
        default=[],
        metavar="M/R",
        help="print the smallest ECDF of M minus that of R from --ecdf-from x d to the budget",
    )
    p.add_argument("--ecdf-from", type=float, default=1000.0, metavar="K")
    p.add_argument("--rerun", nargs="*", default=[], help="methods to run again")
    p.add_argument("--out", type=Path, help="folder for the tables, the runs and the ECDF plot")
    p.add_argument("--name", default="nes_family", help="file name prefix of the outputs")
    p.add_argument("--progress", action="store_true", help="print a line per run")
    p.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing: use the problems every method has in the cache, leave out the rest",
    )
    p.add_argument(
        "--seed-problem",
        type=int,
        default=0,
        metavar="N",
        help="instead of BBOB: the methods on the seed's 3-d problem with seeds 0 .. N-1",
    )
    args = p.parse_args(argv)
    if args.seed_problem:
        results = seed_problem(args.methods, args.seed_problem, runners=METHODS)
        text = simple_table(
            ["method", "median evaluations to 1e-8", "solved"],
            [[m, fmt_count(med), f"{k}/{n}"] for m, (med, k, n) in results.items()],
        )
        print(text)
        if args.out is not None:
            write_text(args.out / f"{args.name}_seed_problem.rst", text)
        return
    functions = [f for chunk in args.functions for f in chunk]
    instances = [i for chunk in args.instances for i in chunk]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; the methods are {sorted(METHODS)}")
    references = [r for r in args.reference if r in args.methods]
    records = []
    t0 = time.perf_counter()
    for d in args.dims:
        for f in functions:
            for i in instances:
                problem = []
                for m in args.methods:
                    rerun = m in args.rerun
                    r = run_cached(args.cache, m, f, d, i, args.budget, rerun, args.cached_only)
                    if r is None:
                        continue
                    problem.append(r)
                    if args.progress:
                        print(
                            f"{time.perf_counter() - t0:7.0f} s  {m} f{f} d{d} i{i}: "
                            f"{r['evals']} evaluations, success {r['success']}",
                            flush=True,
                        )
                # with --cached-only, a problem counts only if every method has run it
                if len(problem) == len(args.methods) or not args.cached_only:
                    records.extend(problem)
    if not records:
        print("no runs in the selection (with --cached-only: none cached for every method)")
        return
    for r in records:
        if r["error"]:
            print(f"error: {r['method']} f{r['function']} d{r['dim']}: {r['error']}")
    if args.ratios:
        pairs = [tuple(item.split("/", 1)) for item in args.ratios]
        bad = [m for pair in pairs for m in pair if m not in args.methods]
        if bad or any(len(pair) != 2 for pair in pairs):
            p.error(f"`--ratios` takes M/R pairs of the methods, but got {args.ratios}")
    else:
        pairs = [(m, r) for r in references for m in args.methods if m not in references]
    text = table(records, args.methods, pairs)
    multiples = [10**k for k in range(1, int(math.log10(args.budget)) + 1)]
    summary = ecdf_summary(records, args.methods, multiples)
    print(text)
    print("ECDF: fraction of (function, instance, target) triples reached within k x d")
    print(summary)
    hits = hits_by(records)
    checks = []
    for item in args.ecdf_check:
        m, _, ref = item.partition("/")
        for d in args.dims:
            if (m, d) in hits and (ref, d) in hits:
                lo, hi = args.ecdf_from * d, float(args.budget * d)
                margin, at = ecdf_margin(hits[(m, d)], hits[(ref, d)], lo, hi)
                checks.append([m, ref, str(d), f"{margin:+.3f}", f"{at / d:,.0f} d", f"{at:,.0f}"])
    check_text = ""
    if checks:
        headers = ["M", "R", "d", "min ECDF(M) - ECDF(R)", "at evals / d", "at evals"]
        check_text = simple_table(headers, checks)
        print(f"ECDF of M minus ECDF of R, smallest from {args.ecdf_from:g} d to the budget")
        print(check_text)
    if args.out is not None:
        write_text(args.out / f"{args.name}_ert.rst", text)
        write_text(args.out / f"{args.name}_ecdf.rst", summary)
        if check_text:
            write_text(args.out / f"{args.name}_ecdf_check.rst", check_text)
        keys = ["method", "function", "dim", "instance", "evals", "success", "seconds", "error"]
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / f"{args.name}_runs.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*keys, "version"])
            for r in records:
                writer.writerow([*(r[k] for k in keys), r["version"]])
        contiguous = functions == list(range(functions[0], functions[0] + len(functions)))
        names = (
            f"f{functions[0]}-f{functions[-1]}"
            if contiguous and len(functions) > 2
            else ", ".join(f"f{f}" for f in functions)
        )
        title = f"BBOB {names}, instances {instances[0]}-{instances[-1]}, budget {args.budget:g} d"
        png = args.out / f"{args.name}_ecdf.png"
        path = suite_ecdf_plot(hits, args.methods, args.budget, title, png)
        print(f"written: {args.out}/{args.name}_* ({path})")


if __name__ == "__main__":
    main()
