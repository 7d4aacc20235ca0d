"""DX-NES-IC, CR-FM-NES and BIPOP on BBOB against pycma and cmaes, built up run by run.

Every run (method, function, dimension, instance) is cached as one JSON file under ``--cache``,
so the table can be built in parts: a later call runs only the runs that are missing (or those
of ``--rerun`` methods) and then prints the expected running time (ERT) to f - f_opt <= 1e-8
of every method and its ratio to pycma's::

    python -m benchmarks.nes_family --functions 1 2 8 10 --dims 5 10 --instances 1 2 3
    python -m benchmarks.nes_family --methods DXNESIC+BIPOP pycma+BIPOP --functions 15 --dims 10

Problems, start points and seeds are those of ``benchmarks/bbob.py`` (``x0`` uniform in
[-4, 4]^d, sigma0 = 2, one integer seed per problem shared by every method). The budget is
``--budget`` times d evaluations per run, restarts included.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._bbob_methods import Objective, _StopRunError, run_cmaes, run_pycma
from ._bbob_runs import SIGMA0, load_problem, start

Runner = Callable[[Objective, np.ndarray, int, float], str]


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

    opts = {"verbose": -9, "seed": seed, "maxfevals": obj.budget, "ftarget": obj.fopt + 1e-8}
    cma.fmin2(obj, x0, sigma0, opts, restarts=9, bipop=True)
    return "fmin2"


def run_pycma_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma's own IPOP (``cma.fmin2(..., restarts=9, incpopsize=2)``)."""
    import cma

    opts = {"verbose": -9, "seed": seed, "maxfevals": obj.budget, "ftarget": obj.fopt + 1e-8}
    cma.fmin2(obj, x0, sigma0, opts, restarts=9, incpopsize=2)
    return "fmin2"


def run_cmaes_sep(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """The cmaes package's SepCMA with default settings."""
    from cmaes import SepCMA

    opt = SepCMA(mean=x0.copy(), sigma=sigma0, seed=seed)
    while not opt.should_stop():
        pairs = []
        for _ in range(opt.population_size):
            x = opt.ask()
            pairs.append((x, obj(x)))
        opt.tell(pairs)
    return "should_stop"


METHODS: dict[str, Runner] = {
    "XNES": _nes("xnes"),
    "DXNESIC": _nes("dxnesic"),
    "CRFMNES": _nes("crfmnes"),
    "XNES+IPOP": _restarted("ipop", "xnes"),
    "XNES+BIPOP": _restarted("bipop", "xnes"),
    "DXNESIC+BIPOP": _restarted("bipop", "dxnesic"),
    "CRFMNES+BIPOP": _restarted("bipop", "crfmnes"),
    "pycma": run_pycma,
    "pycma+IPOP": run_pycma_ipop,
    "pycma+BIPOP": run_pycma_bipop,
    "cmaes": run_cmaes,
    "cmaes-SepCMA": run_cmaes_sep,
}


def run_cached(
    cache: Path, method: str, function: int, dim: int, index: int, budget: int, rerun: bool
) -> dict[str, object]:
    """Return the record of one run, from `cache` or by running it (then stored)."""
    path = cache / f"{method}_f{function}_d{dim}_i{index}_b{budget}.json"
    if path.exists() and not rerun:
        out: dict[str, object] = json.loads(path.read_text())
        return out
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
    }
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def ert(records: Sequence[dict[str, object]]) -> tuple[float, int]:
    """Return the ERT (evaluations of all runs / successes; inf without one) and the successes."""
    n_ok = sum(bool(r["success"]) for r in records)
    total = sum(int(r["evals"]) for r in records)  # type: ignore[call-overload]
    return (total / n_ok if n_ok else math.inf), n_ok


def table(records: list[dict[str, object]], methods: Sequence[str], reference: str) -> str:
    """Return a plain-text table: ERT (successes/runs) and the ratio to `reference`."""
    cells = sorted({(int(r["function"]), int(r["dim"])) for r in records})  # type: ignore[call-overload]
    lines = ["f   d   " + "".join(f"{m:>26}" for m in methods)]
    for f, d in cells:
        row = [r for r in records if r["function"] == f and r["dim"] == d]
        ref, _ = ert([r for r in row if r["method"] == reference])
        out = f"f{f:<3}{d:<4}"
        for m in methods:
            runs = [r for r in row if r["method"] == m]
            e, n_ok = ert(runs)
            ratio = e / ref if math.isfinite(ref) and math.isfinite(e) else math.inf
            text = f"{e:.0f} ({n_ok}/{len(runs)}) {ratio:.2f}x" if runs else "-"
            out += f"{text:>26}"
        lines.append(out)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing runs of the selection and print its ERT table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["DXNESIC", "CRFMNES", "XNES", "pycma"])
    p.add_argument("--functions", nargs="+", type=int, default=[1, 2, 8, 10])
    p.add_argument("--dims", nargs="+", type=int, default=[5, 10])
    p.add_argument("--instances", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--budget", type=int, default=10_000, help="evaluations per dimension")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "nes_asktell_bench")
    p.add_argument("--reference", default="pycma")
    p.add_argument("--rerun", nargs="*", default=[], help="methods to run again")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; the methods are {sorted(METHODS)}")
    records = [
        run_cached(args.cache, m, f, d, i, args.budget, m in args.rerun)
        for f in args.functions
        for d in args.dims
        for i in args.instances
        for m in args.methods
    ]
    errors = [r for r in records if r["error"]]
    for r in errors:
        print(f"error: {r['method']} f{r['function']} d{r['dim']}: {r['error']}")
    print(table(records, args.methods, args.reference))


if __name__ == "__main__":
    main()
