"""IPOP: restarts with an increasing population around any strategy, on a shared budget."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
from scipy.optimize import OptimizeResult

from . import _restarts_runs as runs
from . import _restarts_state, _stopping
from . import _validate as v
from ._base import Strategy
from ._bounds import make_box
from ._run import make_result
from ._typing import JSON, FloatArray

#: Criteria that end the whole run; any other criterion of the inner strategy triggers a restart.
GLOBAL = ("maxfev", "maxiter", "ftarget", "timeout", "callback")


class IPOP:
    r"""Restart a strategy with a doubled population whenever it converges (IPOP).

    Parameters
    ----------
    strategy : type or str
        The strategy class (:class:`XNES`, :class:`SNES`, :class:`OpenES`) or its name
        (``"xnes"``, ``"snes"``, ``"openes"``).
    x0 : array_like of shape (d,)
        Initial mean of the first run, and of every restart in unbounded coordinates.
    sigma0 : float or array_like
        Initial step size of every run.
    popsize : int, optional
        Population of the first run (the strategy's default when omitted); run ``r`` uses
        ``popsize * popsize_factor**r``.
    bounds : optional
        Box constraints, passed to every run. A restart draws its initial mean uniformly in
        the box in the coordinates where both bounds are finite, and uses `x0` elsewhere.
    rng : None, int, SeedSequence or Generator
        Seed of the whole sequence. Run 0 uses it exactly as the strategy would (an int or a
        SeedSequence gives the same run as ``strategy(x0, sigma0, rng=rng)``); restart ``r``
        uses a seed derived from ``(seed, r)``. A Generator is drawn from once, for the seed.
    maxfev, maxiter : int, optional
        Evaluations and generations over all runs together.
    ftarget : float, optional
        Stop everything once a value this low is found.
    timeout : float, optional
        Seconds, for the whole sequence.
    max_restarts : int
        How many restarts at most (default 9).
    popsize_factor : float
        Growth of the population at each restart (default 2).
    **options
        Options of the strategy (``eta_B=...``, ``mirrored=...``) and its local stopping
        criteria (`tolfun`, `tolx`, `tolstagnation`), passed to every run.

    Notes
    -----
    A run ends when its ``stop()`` holds. If any criterion in ``maxfev``, ``maxiter``,
    ``ftarget``, ``timeout`` (or a callback's stop) holds, the whole sequence ends; otherwise
    (``tolfun``, ``tolx``, ``tolstagnation``, ``sigma``) the next run starts, unless
    `max_restarts` runs have been started already. Every run receives the remaining evaluation
    budget as its ``maxfev``, so the total never exceeds `maxfev` in :meth:`optimize` (which
    evaluates only what the budget allows in the last generation).

    References
    ----------
    A. Auger, N. Hansen. A Restart CMA Evolution Strategy With Increasing Population Size.
    IEEE CEC 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import IPOP, XNES
    >>> def rastrigin(x):
    ...     return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))
    >>> opt = IPOP(XNES, np.full(3, 3.0), 2.0, maxfev=20_000, ftarget=1e-8, rng=1)
    >>> res = opt.optimize(rastrigin)
    >>> bool(res.nfev <= 20_000), res.restarts >= 0
    (True, True)
    """

    name: ClassVar[str] = "ipop"

    def __init__(
        self,
        strategy: object,
        x0: object,
        sigma0: object,
        popsize: object = None,
        *,
        bounds: object = None,
        rng: object = None,
        maxfev: object = None,
        maxiter: object = None,
        ftarget: object = None,
        timeout: object = None,
        max_restarts: object = 9,
        popsize_factor: object = 2,
        **options: object,
    ) -> None:
        cls = runs.strategy_class(strategy)
        crit = _stopping.check_criteria(
            maxfev=maxfev, maxiter=maxiter, ftarget=ftarget, timeout=timeout
        )
        self._max_restarts = v.integer("max_restarts", max_restarts, minimum=0)
        factor = v.positive_float("popsize_factor", popsize_factor)
        if factor < 1.0:
            raise ValueError(f"`popsize_factor` must be a number >= 1, but got {factor}.")
        self._factor = factor
        self._seed = runs.seed_of(rng)
        self._cls = cls
        self._options = dict(options)
        self._crit = _stopping.Criteria(tolfun=None, tolx=None, **crit)  # type: ignore[arg-type]
        # The first run validates x0, sigma0, popsize, bounds and the options.
        self._x0 = v.as_vector("x0", x0)
        self._sigma0 = sigma0
        self._bounds = bounds
        self._box = make_box(bounds, self._x0.size)
        self._restarts = 0
        self._nfev_done = 0
        self._generation_done = 0
        self._history: list[JSON] = []
        self._callback_stop = False
        self._t0 = time.monotonic()
        self._inner = self._make_run(0, self._x0, popsize)
        self._popsize0 = self._inner.popsize
        self._best_x, self._best_f = self._inner.best

    # ------------------------------------------------------------------ runs
    def _make_run(self, r: int, x0: FloatArray, popsize: object) -> Strategy:
        remaining = None if self._crit.maxfev is None else self._crit.maxfev - self._nfev_done
        return self._cls(
            x0,
            self._sigma0,
            popsize,
            bounds=self._bounds,
            rng=runs.run_seed(self._seed, r),
            maxfev=remaining,
            ftarget=self._crit.ftarget,
            **self._options,
        )

    def _after_tell(self) -> None:
        x, f = self._inner.best
        if f < self._best_f:
            self._best_x, self._best_f = x, f
        inner_stop = self._inner.stop()
        if not inner_stop or any(k in GLOBAL for k in inner_stop) or self._global_stop():
            return
        if self._restarts >= self._max_restarts:
            return
        self._history.append(runs.run_record(self._inner, inner_stop))
        self._nfev_done += self._inner.nfev
        self._generation_done += self._inner.generation
        self._restarts += 1
        r = self._restarts
        x0 = runs.restart_x0(self._x0, self._box, self._seed, r)
        lam = runs.restart_popsize(self._popsize0, self._factor, r, self._inner.mirrored)
        self._inner = self._make_run(r, x0, lam)

    # ------------------------------------------------------------------ protocol
    @property
    def strategy(self) -> Strategy:
        """The strategy of the current run."""
        return self._inner

    @property
    def restarts(self) -> int:
        """Number of restarts so far (0 during the first run)."""
        return self._restarts

    @property
    def history(self) -> list[JSON]:
        """One record per finished run: popsize, nfev, generations, best_f, stop."""
        return [dict(h) for h in self._history]

    @property
    def dim(self) -> int:
        """Number of dimensions d."""
        return self._inner.dim

    @property
    def popsize(self) -> int:
        """Population of the current run."""
        return self._inner.popsize

    @property
    def mean(self) -> FloatArray:
        """Mean of the current run's search distribution."""
        return self._inner.mean

    @property
    def sigma(self) -> float | FloatArray:
        """Step size of the current run."""
        return self._inner.sigma

    @property
    def nfev(self) -> int:
        """Evaluations told over all runs."""
        return self._nfev_done + self._inner.nfev

    @property
    def generation(self) -> int:
        """Generations told over all runs."""
        return self._generation_done + self._inner.generation

    @property
    def best(self) -> tuple[FloatArray, float]:
        """The best candidate told over all runs and its fitness."""
        return self._best_x.copy(), self._best_f

    def ask(self) -> FloatArray:
        """Return the current run's candidates (see :meth:`Strategy.ask`)."""
        return self._inner.ask()

    def tell(self, solutions: object, fitness: object) -> None:
        """Tell the current run (see :meth:`Strategy.tell`); start the next run if it ends."""
        self._inner.tell(solutions, fitness)
        self._after_tell()

    def _global_stop(self) -> dict[str, float]:
        return _stopping.holds(
            self._crit,
            nfev=self.nfev,
            generation=self.generation,
            best_f=self._best_f,
            fun_range=math.inf,
            stds=np.ones(1),
            mean=np.zeros(1),
            since_improvement=0,
            history_full=False,
            elapsed=time.monotonic() - self._t0,
        )

    def stop(self) -> dict[str, float]:
        """Return the criteria that end the whole sequence (empty while it goes on)."""
        out = self._global_stop()
        inner = self._inner.stop()
        if inner and (self._restarts >= self._max_restarts or any(k in GLOBAL for k in inner)):
            for key, value in inner.items():
                out.setdefault(key, value)  # the whole sequence's thresholds come first
        if self._callback_stop:
            out["callback"] = 1.0
        return out

    @property
    def result(self) -> OptimizeResult:
        """The outcome as an OptimizeResult: :attr:`Strategy.result`'s fields over all runs.

        Two more fields: ``restarts`` and ``history`` (one record per run, the current one last).
        """
        res = self._inner.result
        stop = self.stop()
        order: tuple[str, ...] = ("callback", "ftarget", "tolfun", "tolx", "maxfev", "maxiter")
        order += ("timeout", "tolstagnation", "sigma")
        status = next((_stopping.STATUS[k] for k in order if k in stop), -1)
        return make_result(
            x=self._best_x.copy(),
            fun=self._best_f,
            nfev=self.nfev,
            nit=self.generation,
            status=status,
            success=status == 0,
            message=_stopping.MESSAGES[status],
            stop=stop,
            mean=res.mean,
            sigma=res.sigma,
            restarts=self._restarts,
            history=[*self.history, runs.run_record(self._inner, self._inner.stop())],
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
        """Run all restarts until :meth:`stop` holds (see :meth:`Strategy.optimize`)."""
        from ._evaluate import Evaluator

        changes = {k: x for k, x in (("maxfev", maxfev), ("maxiter", maxiter)) if x is not None}
        crit = self._crit.updated(**changes)
        if crit.maxfev is not None and crit.maxfev != self._crit.maxfev:
            # tell the current run about the new budget
            self._inner._crit = self._inner._crit.updated(
                maxfev=max(crit.maxfev - self._nfev_done, 1)
            )
        evaluator = Evaluator(workers)
        self._crit = crit
        self._callback_stop = False
        with evaluator:
            while not self.stop():
                es = self._inner
                X = es.ask()
                n = es.popsize
                if crit.maxfev is not None:
                    n = min(n, crit.maxfev - self.nfev)
                f = np.full(es.popsize, np.nan)
                f[:n] = evaluator.evaluate(fun, X[:n], args, strategy=es)
                es._tell(X, f, n)
                self._after_tell()
                if disp:
                    print(
                        f"IPOP run {self._restarts} popsize {self.popsize:5d} "
                        f"nfev {self.nfev:9d} best {self._best_f: .6e}"
                    )
                if callback is not None:
                    try:
                        if callback(self.result) is True:
                            self._callback_stop = True
                    except StopIteration:
                        self._callback_stop = True
        return self.result

    # ------------------------------------------------------------------ state
    def state_dict(self) -> JSON:
        """Return the complete state as JSON-serialisable plain data."""
        return _restarts_state.dump(self)

    @classmethod
    def from_state(cls, state: object) -> IPOP:
        """Rebuild an IPOP sequence from :meth:`state_dict` output.

        Raises
        ------
        ValueError
            If `state` is malformed.
        """
        return _restarts_state.load(cls, state)

    def __getstate__(self) -> dict[str, object]:
        d = self.__dict__.copy()
        d["_t0"] = time.monotonic() - self._t0
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        self.__dict__.update(d)
        self._t0 = time.monotonic() - float(d["_t0"])  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"IPOP({self._cls.__name__}, dim={self.dim}, restarts={self._restarts}, "
            f"popsize={self.popsize}, nfev={self.nfev}, best_f={self._best_f:.6g})"
        )
