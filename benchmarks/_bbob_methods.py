"""The BBOB benchmark's methods and the objective they run on.

:class:`Objective` wraps a problem: it counts evaluations, records the first evaluation reaching
each ECDF target and stops the run (raising ``_StopRunError``) at the target or the budget.
``RUNNERS`` maps each method's name (ours with default settings, the 2017 seed configuration,
pycma, cmaes, the IPOP variants) to a function that runs it on an objective.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

TARGET = 1e-8
#: ECDF targets on f - f_opt: 10^2 ... 10^-8, five per decade (as in COCO's plots).
ECDF_TARGETS = 10.0 ** (np.arange(10, -41, -1) / 5)


# ---------------------------------------------------------------------------- the objective
class _StopRunError(Exception):
    """Raised by the objective when the target is hit or the budget is spent."""


class Objective:
    """A BBOB problem that counts evaluations, records target hits and stops the run.

    It also keeps the best f - f_opt seen (``best``) and the seconds spent inside the problem
    (``fseconds``), so that a run's time can be split into the objective's and the method's.
    """

    def __init__(self, problem: Callable[[np.ndarray], float], fopt: float, budget: int) -> None:
        self.problem, self.fopt, self.budget = problem, fopt, budget
        self.evals = 0
        self.solved = False
        self.hits = np.full(ECDF_TARGETS.size, np.inf)
        self._next = 0  # index of the first target not reached yet
        self.best = math.inf
        self.fseconds = 0.0

    def __call__(self, x: np.ndarray) -> float:
        if self.solved or self.evals >= self.budget:
            raise _StopRunError
        t0 = time.perf_counter()
        f = float(self.problem(np.asarray(x, dtype=float)))
        self.fseconds += time.perf_counter() - t0
        self.evals += 1
        delta = f - self.fopt
        if delta < self.best:
            self.best = delta
        while self._next < ECDF_TARGETS.size and delta <= ECDF_TARGETS[self._next]:
            self.hits[self._next] = self.evals
            self._next += 1
        if delta <= TARGET:
            self.solved = True
            raise _StopRunError
        return f


# ---------------------------------------------------------------------------- the methods
def nes_class(name: str) -> type:
    """Return the strategy class `name` (any case: ``XNES``, ``snes``) from the registry."""
    from nes_asktell import resolve_strategy

    return resolve_strategy(name)


def _ask_tell(es: object, obj: Objective) -> str:
    while not (stop := es.stop()):  # type: ignore[attr-defined]
        X = es.ask()  # type: ignore[attr-defined]
        es.tell(X, [obj(x) for x in X])  # type: ignore[attr-defined]
    return "+".join(stop)


def run_nes(name: str, obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """XNES, SNES or OpenES with default settings; return why it stopped."""
    return _ask_tell(nes_class(name)(x0, sigma0, rng=seed), obj)


def run_seed(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """The 2017 seed configuration: fixed sigma 0.1 (not `sigma0`), popsize 50, SGD, lr 0.001."""
    from nes_asktell import OpenES

    return _ask_tell(OpenES.seed_configuration(x0, seed=seed), obj)


def run_pycma(
    obj: Objective, x0: np.ndarray, seed: int, sigma0: float, popsize: int | None = None
) -> str:
    """pycma's CMAEvolutionStrategy with default options (display and logging off)."""
    import cma

    opts: dict[str, object] = {"verbose": -9, "seed": seed, "maxfevals": obj.budget}
    opts["ftarget"] = obj.fopt + TARGET
    if popsize is not None:
        opts["popsize"] = popsize
    es = cma.CMAEvolutionStrategy(x0, sigma0, opts)
    while not (stop := es.stop()):
        X = es.ask()
        es.tell(X, [obj(x) for x in X])
    return "+".join(stop)


def run_cmaes(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """The cmaes package's CMA with default settings."""
    return run_cmaes_class("CMA", obj, x0, seed, sigma0)


def _scalar_sqrt(x: Any) -> float:
    """``math.sqrt`` of a number or of an array holding one number."""
    return math.sqrt(float(np.ravel(x)[0]) if isinstance(x, np.ndarray) else x)


def cmaes_numpy2_math() -> Any:
    """Return a stand-in for the ``math`` module whose ``sqrt`` also takes a size-1 array.

    cmaes 0.13.1's DX-NES-IC passes a 1 x 1 array to ``math.sqrt`` in its ``tell``, which NumPy
    2.4 refuses (``TypeError: only 0-dimensional arrays can be converted to Python scalars``, at
    the first ``tell``). Its module is given this stand-in, so the algorithm runs unchanged:
    the one value of the array is what older NumPy passed on.
    """
    names = {k: getattr(math, k) for k in dir(math) if not k.startswith("_")}
    return type("math", (), {**names, "sqrt": staticmethod(_scalar_sqrt)})


def run_cmaes_class(
    cls_name: str, obj: Objective, x0: np.ndarray, seed: int, sigma0: float
) -> str:
    """The cmaes package's optimizer `cls_name` (CMA, SepCMA, DXNESIC) with default settings.

    For DXNESIC the module's ``math`` is :func:`cmaes_numpy2_math` (a NumPy 2.4 fix only).
    """
    import cmaes

    if cls_name == "DXNESIC":
        import cmaes._dxnesic

        cmaes._dxnesic.math = cmaes_numpy2_math()  # type: ignore[attr-defined]
    run_cmaes_until_stop(getattr(cmaes, cls_name)(mean=x0.copy(), sigma=sigma0, seed=seed), obj)
    return "should_stop"


def run_cmaes_until_stop(opt: Any, obj: Objective) -> None:
    """Ask and tell a cmaes optimizer one population at a time until ``should_stop()``."""
    while not opt.should_stop():
        pairs = []
        for _ in range(opt.population_size):
            x = opt.ask()
            pairs.append((x, obj(x)))
        opt.tell(pairs)


def run_xnes_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """XNES inside the library's IPOP restarts (default settings, the whole budget)."""
    from nes_asktell import IPOP

    ipop = IPOP("xnes", x0, sigma0, maxfev=obj.budget, rng=seed)
    return _ask_tell(ipop, obj)


def run_pycma_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma restarted from x0 with a doubled popsize, 9 restarts at most (IPOP).

    The same schedule as the library's IPOP defaults; the budget is shared by all runs.
    """
    popsize = 4 + math.floor(3 * math.log(x0.size))
    stops = []
    for k in range(10):
        stops.append(run_pycma(obj, x0, seed + 1000 * k, sigma0, popsize))
        popsize *= 2
    return f"{len(stops)} runs, last: {stops[-1]}"


#: method -> runner(objective, x0, seed, sigma0), returning why the method stopped by itself.
RUNNERS: dict[str, Callable[[Objective, np.ndarray, int, float], str]] = {
    "XNES": lambda o, x, s, sig: run_nes("XNES", o, x, s, sig),
    "SNES": lambda o, x, s, sig: run_nes("SNES", o, x, s, sig),
    "OpenES": lambda o, x, s, sig: run_nes("OpenES", o, x, s, sig),
    "seed": run_seed,
    "pycma": run_pycma,
    "cmaes": run_cmaes,
    "XNES+IPOP": run_xnes_ipop,
    "pycma+IPOP": run_pycma_ipop,
}


def available(methods: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Split `methods` into the importable ones and the missing ones (with the reason)."""
    ok, missing = [], {}
    for m in methods:
        try:
            if m in ("XNES", "SNES", "OpenES"):
                nes_class(m)
            elif m == "XNES+IPOP":
                nes_class("XNES")
            elif m.startswith("pycma"):
                import cma  # noqa: F401
            elif m == "cmaes":
                import cmaes  # noqa: F401
            ok.append(m)
        except ImportError as exc:
            missing[m] = str(exc)
    return ok, missing
