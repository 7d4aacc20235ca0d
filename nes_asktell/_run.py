"""A strategy's run: its record, the stopping test, the result and the ask/evaluate/tell loop.

:class:`RunLoop` gives :class:`~nes_asktell.Strategy` the record of the run (the counters, the
best-so-far and the recent best values, updated by every ``tell``), ``stop`` and ``result``,
which read that record, and ``optimize``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
from scipy.optimize import OptimizeResult

from . import _stopping
from ._typing import FloatArray

if TYPE_CHECKING:
    from ._base import Strategy


def make_result(**fields: object) -> OptimizeResult:
    """Return ``scipy.optimize.OptimizeResult(**fields)`` (the stubs do not declare keywords)."""
    return OptimizeResult(**fields)


class RunLoop:
    """The record, ``stop``, ``result`` and ``optimize`` of a strategy: a mixin of Strategy.

    Strategy's constructor calls :meth:`_start_record` and every tell calls :meth:`_record`.
    """

    # Set by Strategy and by the methods below; declared here for the type checker.
    _dim: int
    _popsize: int
    _mean: FloatArray
    _crit: _stopping.Criteria
    _generation: int
    _nfev: int
    _best_x: FloatArray
    _best_f: float
    _fhist: list[float]
    _last_range: float
    _since_improvement: int
    _callback_stop: bool
    _t0: float

    if TYPE_CHECKING:  # defined by Strategy

        def ask(self) -> FloatArray: ...
        def _tell(self, solutions: object, fitness: object, n_evaluated: int) -> None: ...
        def _stds(self) -> FloatArray: ...
        def _sigma_value(self) -> float | FloatArray: ...

    def _start_record(self, best_x: FloatArray) -> None:
        """Start an empty record: generation 0, no evaluation, `best_x` the best (fitness inf)."""
        self._generation = 0
        self._nfev = 0
        self._best_x = best_x
        self._best_f = math.inf
        self._fhist = []
        self._last_range = math.inf
        self._since_improvement = 0
        self._callback_stop = False
        self._t0 = time.monotonic()

    @property
    def generation(self) -> int:
        """Number of completed tells."""
        return self._generation

    @property
    def nfev(self) -> int:
        """Number of fitness values evaluated and told so far."""
        return self._nfev

    @property
    def best(self) -> tuple[FloatArray, float]:
        """The best candidate told so far and its raw fitness (inf before any finite value)."""
        return self._best_x.copy(), self._best_f

    def _record(self, f: FloatArray, finite: np.ndarray, X: FloatArray) -> None:
        """Record a told generation (fitness `f` of the rows `X`): best-so-far and history."""
        if not finite.any():
            # A generation without a finite value is no improvement: tolstagnation still counts,
            # so a run whose objective only returns NaN ends instead of looping forever.
            self._since_improvement += 1
            return
        i = int(np.argmin(np.where(finite, f, np.inf)))
        fmin = float(f[i])
        if fmin < self._best_f:
            self._best_f = fmin
            self._best_x = X[i].copy()
            self._since_improvement = 0
        else:
            self._since_improvement += 1
        self._fhist.append(fmin)
        del self._fhist[: -_stopping.history_length(self._dim, self._popsize)]
        self._last_range = float(np.ptp(f[finite]))

    def stop(self) -> dict[str, float]:
        """Return the termination criteria that hold, each with its threshold (empty if none)."""
        full = len(self._fhist) >= _stopping.history_length(self._dim, self._popsize)
        fun_range = (
            max(max(self._fhist) - min(self._fhist), self._last_range) if full else math.inf
        )
        out = _stopping.holds(
            self._crit,
            nfev=self._nfev,
            generation=self._generation,
            best_f=self._best_f,
            fun_range=fun_range,
            stds=self._stds(),
            mean=self._mean,
            since_improvement=self._since_improvement,
            history_full=full,
            elapsed=time.monotonic() - self._t0,
        )
        if self._callback_stop:
            out["callback"] = 1.0
        return out

    @property
    def result(self) -> OptimizeResult:
        """The outcome so far as a ``scipy.optimize.OptimizeResult``.

        Fields: ``x`` and ``fun`` (best so far), ``nfev``, ``nit`` (generations), ``status``,
        ``success``, ``message`` (scipy's wording), ``stop`` (the criteria that hold), ``mean``
        and ``sigma``.
        """
        stop = self.stop()
        order = (
            "callback",
            "ftarget",
            "tolfun",
            "tolx",
            "maxfev",
            "maxiter",
            "timeout",
            "tolstagnation",
            "sigma",
        )
        status = next((_stopping.STATUS[k] for k in order if k in stop), -1)
        return make_result(
            x=self._best_x.copy(),
            fun=self._best_f,
            nfev=self._nfev,
            nit=self._generation,
            status=status,
            success=status == 0,
            message=_stopping.MESSAGES[status],
            stop=stop,
            mean=self._mean.copy(),
            sigma=copy.copy(self._sigma_value()),
        )

    def optimize(
        self,
        fun: Callable[..., float],
        *,
        args: Sequence[object] = (),
        maxfev: int | None = None,
        maxiter: int | None = None,
        workers: object = None,
        callback: Callable[[OptimizeResult], object] | None = None,
        disp: bool = False,
    ) -> OptimizeResult:
        """Run ask/evaluate/tell until :meth:`stop` holds, and return :attr:`result`.

        Parameters
        ----------
        fun : callable
            ``fun(x, *args) -> float`` to minimise.
        args : tuple
            Extra arguments of `fun`.
        maxfev, maxiter : int, optional
            Totals (counted from the start of the run) after which to stop. The last generation
            evaluates only what the budget allows, so ``nfev`` never exceeds `maxfev`.
        workers : None, int, map-like callable or Executor
            How to evaluate a population (see :func:`nes_asktell.evaluate`).
        callback : callable, optional
            Called after each generation with the current :attr:`result`; returning True or
            raising StopIteration stops the run (status 99).
        disp : bool
            Print a progress line every few generations.
        """
        from ._evaluate import Evaluator

        changes = {
            k: val for k, val in (("maxfev", maxfev), ("maxiter", maxiter)) if val is not None
        }
        crit = self._crit.updated(**changes)
        evaluator = Evaluator(workers)
        es = cast("Strategy", self)  # RunLoop is a mixin of Strategy only
        self._crit = crit
        self._callback_stop = False
        with evaluator:
            while not self.stop():
                X = self.ask()
                n = self._popsize
                if crit.maxfev is not None:
                    n = min(n, crit.maxfev - self._nfev)
                f = np.full(self._popsize, np.nan)
                f[:n] = evaluator.evaluate(fun, X[:n], args, strategy=es)
                self._tell(X, f, n)
                if disp and _report_now(self._generation):
                    self._print_progress()
                if callback is not None:
                    try:
                        if callback(self.result) is True:
                            self._callback_stop = True
                    except StopIteration:
                        self._callback_stop = True
        if disp:
            self._print_progress()
        return self.result

    def _print_progress(self) -> None:
        print(
            f"{type(self).__name__} gen {self._generation:6d}  nfev {self._nfev:9d}  "
            f"best {self._best_f: .6e}  std {float(np.max(self._stds())):.3e}"
        )


def _report_now(gen: int) -> bool:
    return gen < 10 or gen % (10 ** int(math.log10(gen))) == 0
