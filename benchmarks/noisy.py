"""Noise handling on noisy objectives: BBOB's noisy suite and a noisy policy search.

Two measurements, each side by side in one run, with and without uncertainty handling
(:class:`nes_asktell.NoiseHandler`, after Hansen et al. 2009) against pycma with and without
its own ``cma.NoiseHandler`` (the step size only, ``maxevals=[1, 1, 1]``, the same rule)::

    python -m benchmarks.noisy                       # both parts, d = 5, instances 1-3
    python -m benchmarks.noisy --part bbob --dims 5 10 --instances 1 2 3 4 5
    python -m benchmarks.noisy --part policy --seeds 5

``bbob``: the 30 functions of COCO's ``bbob-noisy`` suite (f101-f130), ``--budget`` x d
evaluations per run, every method restarted with a doubled population (IPOP) when it stops
before the budget. The measure is COCO's own: the best *noise-free* f - f_opt of the points
evaluated, read from the log of a COCO observer on each run (the ``.dat`` file's third
column), so a method is judged by where it searched, not by its luckiest noisy draw. Each run
is cached as a JSON file under ``--cache``.

``policy``: a linear feedback policy for a noisy linear system (a chain of 4 masses and
springs, 8 states, 2 inputs, random initial states and disturbances, 50 steps): the return of
one episode is noisy, the policy's true value is its mean return, estimated on 2,000 fixed
episodes. Each method gets ``--episodes`` episodes; the table gives the true value of the
final mean (what a user of a noisy problem takes) per seed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks._bbob_runs import check_selection
from benchmarks._common import read_record, write_record

#: ECDF targets on the noise-free f - f_opt: 10^2 ... 10^-8, five per decade (COCO's).
TARGETS = 10.0 ** (np.arange(10, -41, -1) / 5)
METHODS = ("XNES+IPOP", "XNES+IPOP+UH", "pycma+IPOP", "pycma+IPOP+UH")
SIGMA0 = 2.0


class _BudgetSpentError(Exception):
    """Raised by the objective once the budget is spent."""


class Budgeted:
    """`fun` that counts evaluations and raises :class:`_BudgetSpentError` past `budget`."""

    def __init__(self, fun: Callable[[np.ndarray], float], budget: int) -> None:
        self.fun, self.budget, self.evals = fun, budget, 0

    def __call__(self, x: np.ndarray) -> float:
        if self.evals >= self.budget:
            raise _BudgetSpentError
        self.evals += 1
        return float(self.fun(np.asarray(x, dtype=float)))


# ------------------------------------------------------------------------------ the methods
def run_nes_ipop(
    obj: Budgeted, x0: np.ndarray, seed: int, handled: bool, restarts: bool = True
) -> np.ndarray:
    """XNES (restarted from `x0` with a doubled population until the budget is spent).

    Return the mean of the last run (the point a user of a noisy problem takes).
    """
    from nes_asktell import XNES, NoiseHandler

    popsize = XNES(x0, SIGMA0).popsize
    mean = x0
    k = 0
    try:
        while k == 0 or restarts:
            opt = XNES(x0, SIGMA0, popsize, rng=seed + 1000 * k)
            run: XNES | NoiseHandler = NoiseHandler(opt) if handled else opt
            while not run.stop():
                X = run.ask()
                run.tell(X, [obj(x) for x in X])
                es = run.strategy if isinstance(run, NoiseHandler) else run
                mean = es.mean
            popsize *= 2
            k += 1
    except _BudgetSpentError:
        pass
    return np.asarray(mean, dtype=float)


def run_pycma_ipop(
    obj: Budgeted, x0: np.ndarray, seed: int, handled: bool, restarts: bool = True
) -> np.ndarray:
    """pycma (restarted from `x0` with a doubled population until the budget is spent).

    With `handled`, ``cma.NoiseHandler`` (step size only) after each generation, as pycma's
    documentation shows for ask/tell loops. Return the mean of the last run.
    """
    import cma

    popsize = 4 + math.floor(3 * math.log(x0.size))
    mean = x0
    k = 0
    try:
        while k == 0 or restarts:
            opts = {"verbose": -9, "seed": seed + 1000 * k, "popsize": popsize}
            es = cma.CMAEvolutionStrategy(x0, SIGMA0, opts)
            nh = cma.NoiseHandler(es.N, maxevals=[1, 1, 1]) if handled else None
            while not es.stop():
                if nh is None:
                    X = es.ask()
                    es.tell(X, [obj(x) for x in X])
                else:
                    X, fit = es.ask_and_eval(obj, evaluations=nh.evaluations)
                    es.tell(X, fit)
                    es.sigma *= nh(X, fit, obj, es.ask)
                mean = np.array(es.mean)
            popsize *= 2
            k += 1
    except _BudgetSpentError:
        pass
    return np.asarray(mean, dtype=float)


def run_method(
    method: str, obj: Budgeted, x0: np.ndarray, seed: int, restarts: bool = True
) -> np.ndarray:
    handled = method.endswith("+UH")
    if method.startswith("XNES"):
        return run_nes_ipop(obj, x0, seed, handled, restarts)
    return run_pycma_ipop(obj, x0, seed, handled, restarts)


# ------------------------------------------------------------------------------ bbob-noisy
def _noise_free_trace(folder: Path) -> list[tuple[int, float]]:
    """Return the (evaluations, best noise-free f - f_opt) rows of the ``.dat`` in `folder`."""
    (dat,) = folder.rglob("*.dat")
    rows = []
    for line in dat.read_text().splitlines():
        if line.startswith("%") or not line.strip():
            continue
        parts = line.split()
        rows.append((int(parts[0]), float(parts[2])))
    return rows


def run_bbob(method: str, function: int, dim: int, index: int, budget: int) -> dict[str, object]:
    """Run `method` on bbob-noisy problem (function index 1-30, dim, instance index)."""
    import cocoex

    check_selection(function, dim, index, "bbob-noisy")
    options = f"dimensions:{dim} instance_indices:{index} function_indices:{function}"
    suite = cocoex.Suite("bbob-noisy", "", options)  # kept alive while its problem is used
    problem = suite.get_problem(0)
    folder = Path(tempfile.mkdtemp(prefix="nes_noisy_"))
    try:
        with contextlib.chdir(folder):  # COCO writes under ./exdata/
            observer = cocoex.Observer("bbob", "result_folder: r algorithm_name: m")
            problem.observe_with(observer)
        x0 = np.random.default_rng([function, dim, index]).uniform(-4.0, 4.0, dim)
        seed = 10_000 * function + 100 * dim + index
        obj = Budgeted(problem, budget * dim)
        t0 = time.perf_counter()
        with warnings.catch_warnings(), contextlib.chdir(folder):
            warnings.simplefilter("ignore")
            run_method(method, obj, x0, seed)
            seconds = time.perf_counter() - t0
            name = problem.id
            problem.free()
            del observer, suite
        trace = _noise_free_trace(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "method": method,
        "problem": name,
        "function": 100 + function,
        "dim": dim,
        "instance_index": index,
        "evals": obj.evals,
        "seconds": seconds,
        "best": trace[-1][1] if trace else math.inf,
        "trace": trace,
    }


def cached_bbob(
    cache: Path, method: str, function: int, dim: int, index: int, budget: int
) -> dict[str, object]:
    path = cache / f"{method}_f{100 + function}_d{dim}_i{index}_b{budget}.json"
    if path.exists() and (cached := read_record(path)):
        return cached
    record = run_bbob(method, function, dim, index, budget)
    write_record(path, record)
    return record


def reached(record: dict[str, object], budget_evals: float) -> float:
    """Fraction of :data:`TARGETS` reached (noise-free) within `budget_evals` evaluations."""
    trace: list[list[float]] = record["trace"]  # type: ignore[assignment]
    best = min((f for e, f in trace if e <= budget_evals), default=math.inf)
    return float(np.mean(best <= TARGETS))


def bbob_tables(records: list[dict[str, object]], methods: Sequence[str]) -> str:
    """Median best noise-free f - f_opt per function and method, and the target fractions."""
    by: dict[tuple[str, int, int], list[float]] = {}
    for r in records:
        key = (str(r["method"]), int(r["function"]), int(r["dim"]))  # type: ignore[call-overload]
        by.setdefault(key, []).append(float(r["best"]))  # type: ignore[arg-type]
    dims = sorted({k[2] for k in by})
    functions = sorted({k[1] for k in by})
    lines = []
    for d in dims:
        lines.append(f"\nd = {d}: median best noise-free f - f_opt (lower is better)\n")
        lines.append(f"{'f':>5} " + " ".join(f"{m:>15}" for m in methods) + "   UH helps")
        helps = {"XNES": 0, "pycma": 0}
        for f in functions:
            meds = {m: float(np.median(by.get((m, f, d), [math.nan]))) for m in methods}
            cells = " ".join(f"{meds[m]:>15.3e}" for m in methods)
            marks = []
            for base in ("XNES", "pycma"):
                a, b = meds.get(f"{base}+IPOP", math.nan), meds.get(f"{base}+IPOP+UH", math.nan)
                if b < a:
                    helps[base] += 1
                    marks.append(base)
            lines.append(f"{f:>5} {cells}   {', '.join(marks)}")
        lines.append(
            f"  uncertainty handling lowers the median on {helps['XNES']} of {len(functions)} "
            f"functions for XNES, {helps['pycma']} for pycma"
        )
        for m in methods:
            rs = [r for r in records if r["method"] == m and r["dim"] == d]
            if rs:
                frac = np.mean([reached(r, float(r["evals"])) for r in rs])  # type: ignore[arg-type]
                lines.append(f"  {m:>15}: {frac:.3f} of (run, target) pairs reached at the budget")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ policy search
class SpringChain:
    """A noisy linear system: 4 unit masses on springs, forces on the first and last mass.

    State s = (positions, velocities) in R^8, input u in R^2, Euler steps of dt = 0.1 with
    Gaussian disturbances; cost per step s'Qs + 0.1 u'u; a policy is a 2 x 8 gain matrix K
    (u = -K s), 16 parameters. An episode starts from s0 ~ N(0, I) and lasts 50 steps; its
    return is minus the summed cost (clipped at -1e6 when the closed loop blows up).
    """

    def __init__(self) -> None:
        n, dt = 4, 0.1
        stiffness = 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
        A = np.zeros((2 * n, 2 * n))
        A[:n, n:] = np.eye(n)
        A[n:, :n] = -stiffness
        self.A = np.eye(2 * n) + dt * A
        self.Bu = np.zeros((2 * n, 2))
        self.Bu[n, 0] = self.Bu[2 * n - 1, 1] = dt
        self.dim = 2 * 2 * n
        self.steps = 50
        self.noise = 0.05

    def returns(self, theta: np.ndarray, rng: np.random.Generator, episodes: int) -> np.ndarray:
        """Return the returns of `episodes` episodes of the policy `theta` (vectorised)."""
        K = np.asarray(theta, dtype=float).reshape(2, -1)
        s = rng.standard_normal((episodes, self.A.shape[0]))
        total = np.zeros(episodes)
        closed = self.A - self.Bu @ K
        for _ in range(self.steps):
            u = -s @ K.T
            total += np.einsum("ij,ij->i", s, s) + 0.1 * np.einsum("ij,ij->i", u, u)
            s = s @ closed.T + self.noise * rng.standard_normal(s.shape)
            s = np.clip(s, -1e3, 1e3)
        return -np.minimum(total, 1e6)


def run_policy(method: str, seed: int, episodes: int) -> dict[str, object]:
    """Train a policy with `method` on one episode per evaluation; return its true value.

    One run (no restarts: a restart late in the budget would leave a fresh mean), until the
    budget is spent or the method stops by itself; the final mean is the policy.
    """
    task = SpringChain()
    rng = np.random.default_rng([7, seed])
    obj = Budgeted(lambda th: -float(task.returns(th, rng, 1)[0]), episodes)
    x0 = np.zeros(task.dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean = run_method(method, obj, x0, 100 + seed, restarts=False)
    value = float(np.mean(task.returns(mean, np.random.default_rng(12345), 2000)))
    return {
        "method": method.replace("+IPOP", ""),
        "seed": seed,
        "episodes": obj.evals,
        "true_return": value,
    }


def policy_table(records: list[dict[str, object]], methods: Sequence[str]) -> str:
    lines = [
        "\nnoisy policy search: true mean return of the final mean (higher is better), one "
        "run each\n"
    ]
    seeds = sorted({int(r["seed"]) for r in records})  # type: ignore[call-overload]
    lines.append(
        f"{'method':>15} " + " ".join(f"{'seed ' + str(s):>10}" for s in seeds) + "    median"
    )
    for m in methods:
        vals = [
            float(r["true_return"])  # type: ignore[arg-type]
            for s in seeds
            for r in records
            if r["method"] == m.replace("+IPOP", "") and r["seed"] == s
        ]
        cells = " ".join(f"{x:>10.2f}" for x in vals)
        lines.append(f"{m.replace('+IPOP', ''):>15} {cells} {float(np.median(vals)):>9.2f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def main(
    quick: bool = False,
    argv: Sequence[str] | None = None,
    prog: str = "python -m benchmarks.noisy",
) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--part", choices=("bbob", "policy", "both"), default="both")
    parser.add_argument("--dims", type=int, nargs="+", default=[5])
    parser.add_argument(
        "--functions",
        type=int,
        nargs="+",
        default=list(range(1, 31)),
        help="bbob-noisy function indices 1-30 (f101-f130)",
    )
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=5000, help="evaluations per dimension")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "nes_asktell_bench" / "noisy"
    )
    args = parser.parse_args([] if argv is None and quick else argv)
    for name in ("budget", "seeds", "episodes"):
        if getattr(args, name) < 1:
            parser.error(f"`--{name}` must be at least 1, but got {getattr(args, name)}")
    if quick:
        args.functions, args.instances, args.dims = [1, 7], [1], [2]
        args.budget, args.seeds, args.episodes = 200, 1, 400
        args.cache = Path(tempfile.mkdtemp(prefix="nes_noisy_quick_"))
    if args.part in ("bbob", "both"):
        records = []
        for d in args.dims:
            for f in args.functions:
                for i in args.instances:
                    for m in args.methods:
                        records.append(cached_bbob(args.cache, m, f, d, i, args.budget))
        print(
            f"bbob-noisy, budget {args.budget} x d, instances {args.instances}, "
            f"x0 uniform in [-4, 4]^d, sigma0 = {SIGMA0}"
        )
        print(bbob_tables(records, args.methods), flush=True)
    if args.part in ("policy", "both"):
        recs = []
        for s in range(args.seeds):
            for m in args.methods:
                path = args.cache / f"policy1_{m}_s{s}_e{args.episodes}.json"
                if path.exists() and (cached := read_record(path)):
                    recs.append(cached)
                    continue
                rec = run_policy(m, s, args.episodes)
                write_record(path, rec)
                recs.append(rec)
        task = SpringChain()
        zero = float(np.mean(task.returns(np.zeros(task.dim), np.random.default_rng(12345), 2000)))
        print(f"{args.episodes} episodes per run, {args.seeds} seeds; the zero gain: {zero:.2f}")
        print(policy_table(recs, args.methods), flush=True)


if __name__ == "__main__":
    main()
