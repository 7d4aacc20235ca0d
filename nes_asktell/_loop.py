"""The one ask/evaluate/tell loop, behind ``Strategy.optimize`` and ``IPOP.optimize``.

:func:`run` drives anything that has the ask/tell protocol (:class:`Runnable`): it asks, has an
:class:`~nes_asktell.Evaluator` evaluate the batch of the strategy that asked it, tells, reports
progress and calls the callback, until the object's own ``stop()`` holds or the budgets of the
call are spent. The result is the object's own, with the reasons that ended the call added.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from scipy.optimize import OptimizeResult

from . import _stopping
from . import _validate as v
from ._evaluate import Evaluator, Keyed, WorkersLike
from ._typing import JSON, ArrayLike, FloatArray


class Runnable(Protocol):
    """What the loop needs of the object it runs (a strategy, or IPOP)."""

    @property
    def popsize(self) -> int: ...

    @property
    def nfev(self) -> int: ...

    @property
    def generation(self) -> int: ...

    @property
    def best(self) -> tuple[FloatArray, float]: ...

    @property
    def sigma(self) -> float | FloatArray: ...

    @property
    def criteria(self) -> JSON: ...

    @property
    def result(self) -> OptimizeResult: ...

    def ask(self) -> FloatArray: ...

    def tell(
        self, solutions: ArrayLike, fitness: ArrayLike, *, evaluated: int | None = None
    ) -> None: ...

    def stop(self) -> dict[str, float]: ...


def run(
    opt: Runnable,
    source: Callable[[], Keyed],
    fun: Callable[..., float],
    *,
    args: Sequence[object] = (),
    maxfev: int | None = None,
    maxiter: int | None = None,
    workers: WorkersLike = None,
    callback: Callable[[OptimizeResult], object] | None = None,
    disp: bool = False,
) -> OptimizeResult:
    """Run `opt` until its ``stop()`` holds or a budget of this call is spent; return the result.

    `source` returns the strategy whose batch ``opt.ask()`` returned (`opt` itself, or the
    current run of IPOP), so that workers may rebuild its rows from keys. `maxfev` and
    `maxiter` are totals counted from the start of the run, for this call only (they are not
    stored: a later call without them runs on under `opt`'s own criteria); `opt`'s own
    ``maxfev`` is honoured as well, and the last generation evaluates only what the budgets
    allow.
    """
    call_fev = v.optional_integer("maxfev", maxfev, minimum=0)
    call_it = v.optional_integer("maxiter", maxiter, minimum=0)
    evaluator = Evaluator(workers)
    ended: dict[str, float] = {}
    with evaluator:
        while True:
            if call_fev is not None and opt.nfev >= call_fev:
                ended["maxfev"] = call_fev
            if call_it is not None and opt.generation >= call_it:
                ended["maxiter"] = call_it
            if ended or opt.stop():
                break
            X = opt.ask()
            n = _evaluations_allowed(opt, call_fev)
            f = np.full(opt.popsize, np.nan)
            f[:n] = evaluator.evaluate(fun, X[:n], args, strategy=source())
            opt.tell(X, f, evaluated=n)
            if disp and _report_now(opt.generation):
                _print_progress(opt)
            if callback is not None:
                try:
                    stop_now = callback(opt.result) is True
                except StopIteration:
                    stop_now = True
                if stop_now:
                    ended["callback"] = 1.0
                    break
    if disp:
        _print_progress(opt)
    res = opt.result
    return _stopping.with_stop(res, ended) if ended else res


def _evaluations_allowed(opt: Runnable, call_fev: int | None) -> int:
    """Return how many rows of the next batch the budgets allow (the whole batch at most)."""
    limits = [n for n in (opt.criteria.get("maxfev"), call_fev) if isinstance(n, int)]
    return max(min([opt.popsize, *(n - opt.nfev for n in limits)]), 0)


def _report_now(gen: int) -> bool:
    return gen < 10 or gen % (10 ** int(math.log10(gen))) == 0


def _print_progress(opt: Runnable) -> None:
    print(
        f"{type(opt).__name__} gen {opt.generation:6d}  nfev {opt.nfev:9d}  "
        f"best {opt.best[1]: .6e}  sigma {float(np.max(opt.sigma)):.3e}"
    )
