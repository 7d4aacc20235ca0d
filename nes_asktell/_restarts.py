"""IPOP and BIPOP: restarts with an increasing population around any strategy, on a shared budget.

:class:`IPOP` is whole here: its constructor, the runs it starts, the ask/tell protocol,
``stop``/``result``, ``optimize`` (through the one run loop) and ``state_dict``/``from_state``.
The helpers that say where restart ``r`` starts (:func:`run_seed`, :func:`restart_x0`,
:func:`restart_popsize`) are shared with the Optuna sampler, so both restart alike.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
from scipy.optimize import OptimizeResult

from . import _noise, _stopping
from . import _validate as v
from ._bounds import Box, parse_bounds
from ._evaluate import WorkersLike
from ._loop import DispLike, run
from ._strategy import (
    CONFIGURATION,
    MAX_COUNT,
    MAX_POPSIZE,
    STATE_VERSION,
    Strategy,
    _check_dtype,
    _entries,
    even_popsize,
    no_batch_error,
    resolve_strategy,
)
from ._typing import (
    JSON,
    ArrayLike,
    BoundsLike,
    FloatArray,
    OptionValue,
    RngLike,
)

#: Criteria that end the whole run; any other criterion of the inner strategy triggers a restart.
GLOBAL = ("maxfev", "maxiter", "ftarget", "timeout", "callback")


def seed_of(rng: RngLike) -> int | None:
    """Turn an `rng` argument into the integer seed of a whole restart sequence.

    An int is its own seed and a SeedSequence gives its entropy (``default_rng(seed)`` is
    then the generator the strategy draws from, SPEC 7); a Generator has no seed to give
    (None): the sequence then takes the entropy that run 0 drew from it.
    """
    if isinstance(rng, np.random.RandomState):
        raise TypeError(
            "`rng` must be None, an int, a SeedSequence or a Generator, but got RandomState."
        )
    if isinstance(rng, np.random.Generator):
        return None
    if isinstance(rng, np.random.SeedSequence) and not rng.spawn_key:
        return int(rng.entropy) if isinstance(rng.entropy, int) else None
    if rng is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and int(rng) >= 0:
        return int(rng)
    _noise.make_noise(rng, allow_legacy=False)  # raises the error that names `rng`
    return None


def sequence_entropy(seed: int) -> int:
    """Return the 128-bit entropy that run 0 draws when seeded by `seed` (SPEC 7).

    An int, ``SeedSequence(seed)`` and ``default_rng(seed)`` all give this entropy, so the
    restarts, which follow from it, are the same for each form.
    """
    return _noise.drawn_entropy(np.random.default_rng(seed))


def restart_seed(entropy: int, r: int) -> int:
    """Return the 128-bit seed of restart `r` >= 1 of the sequence whose run 0 drew `entropy`."""
    words = np.random.SeedSequence(entropy, spawn_key=(r,)).generate_state(2, np.uint64)
    return int(words[0]) << 64 | int(words[1])


def run_seed(seed: int, r: int) -> int:
    """Return the seed of run `r`: `seed` itself for run 0, then restart seeds.

    Restart ``r`` gets :func:`restart_seed` of the entropy run 0 drew
    (:func:`sequence_entropy`), as IPOP's restarts do whatever the form of its `rng`.
    """
    return seed if not r else restart_seed(sequence_entropy(seed), r)


def restart_x0(x0: FloatArray, box: Box | None, seed: int, r: int) -> FloatArray:
    """Return the initial mean of restart `r` of the sequence seeded by `seed`.

    Uniform in `box` where both bounds are finite and a step size spans them (see
    :func:`entropy_restart_x0`).
    """
    return entropy_restart_x0(x0, box, sequence_entropy(seed), r)


def entropy_restart_x0(x0: FloatArray, box: Box | None, entropy: int, r: int) -> FloatArray:
    """Return the initial mean of restart `r` of the sequence whose run 0 drew `entropy`.

    Uniform in `box` where both bounds are finite, `x0` elsewhere, and where the box is wider
    than any step size spans (``Box.spanned``: a start drawn in [-1e200, 1e200] would lie
    ~1e199 away, where the objective often overflows).
    """
    x0 = x0.copy()
    if box is not None:
        finite = box.spanned
        if finite.any():
            seq = np.random.SeedSequence(entropy, spawn_key=(r,)).spawn(1)[0]
            u = np.random.default_rng(seq).uniform(0.0, 1.0, x0.size)
            lo, hi = box.lower[finite], box.upper[finite]
            x0[finite] = lo + u[finite] * (hi - lo)
    return x0


#: the largest factor by which IPOP grows the population at each restart.
MAX_POPSIZE_FACTOR = 100.0


def restart_popsize(popsize0: int, factor: float, r: int, mirrored: bool, dim: int = 1) -> int:
    """Return the population of run `r`: ``popsize0 * factor**r``, even when `mirrored`.

    It stops growing at the largest population a strategy of `dim` dimensions accepts
    (``MAX_POPSIZE``, and ``dim * popsize`` numbers at most ``MAX_ELEMENTS``): at d = 1e6 the
    doubling past 2,147 raised ValueError inside ``tell``, after the finished run's update.
    """
    limit = min(MAX_POPSIZE, v.MAX_ELEMENTS // max(dim, 1))
    limit -= limit % 2 if mirrored else 0
    log_lam = math.log(popsize0) + r * math.log(factor)
    lam = limit if log_lam >= math.log(limit) else round(popsize0 * factor**r)
    return min(max(even_popsize(lam, mirrored), 2), limit)


def run_record(es: Strategy, stop: dict[str, float]) -> JSON:
    """Return the record of the run `es` (its criteria `stop`): an entry of ``IPOP.history``."""
    return {
        "popsize": es.popsize,
        "nfev": es.nfev,
        "generations": es.generation,
        "best_f": None if math.isinf(es.best[1]) else es.best[1],
        "stop": sorted(stop),
    }


#: the keys of a run's state that the sequence sets (the rest is where the run has got to)
RUN_CONFIGURATION = (*CONFIGURATION, "sigma0")


def _difference(got: object, want: object, path: str) -> tuple[str, object, object] | None:
    """Return the first place where the plain data `got` differs from `want`, or None.

    Numbers compare by value (1 and 1.0 agree), NaN agrees with NaN; the place is `path`
    extended by the keys (``criteria.ftarget``) and the indices (``sigma0[1]``) to it.
    """
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return path, got, want
        for key in want:
            where = _difference(got[key], want[key], f"{path}.{key}")
            if where is not None:
                return where
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return path, got, want
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            where = _difference(a, b, f"{path}[{i}]")
            if where is not None:
                return where
        return None
    if isinstance(want, bool) or isinstance(got, bool):
        return None if got is want else (path, got, want)
    if isinstance(want, numbers.Real) and isinstance(got, numbers.Real):
        same = got == want or (math.isnan(got) and math.isnan(want))
        return None if same else (path, got, want)
    return None if type(got) is type(want) and got == want else (path, got, want)


def _registered(name: str) -> type[Strategy] | None:
    """Return the registered strategy class `name` names, or None if there is none."""
    try:
        return resolve_strategy(name)
    except ValueError:
        return None


class IPOP:
    r"""Restart a strategy with a doubled population whenever it converges (IPOP).

    Parameters
    ----------
    strategy : str or Strategy subclass
        The strategy class (:class:`XNES`, :class:`SNES`, :class:`OpenES`, ...) or its
        registered name, in any case (``"xnes"``, ``"SNES"``).
    x0 : array_like of shape (d,)
        Initial mean of the first run, and of every restart in unbounded coordinates.
    sigma0 : float or array_like
        Initial step size of every run.
    popsize : int, optional
        Population of the first run (the strategy's default when omitted); run ``r`` uses
        ``popsize * popsize_factor**r``.
    bounds : optional
        Box constraints, passed to every run. A restart draws its initial mean uniformly in
        the box in the coordinates where both bounds are finite and the box is at most 4e100
        wide (``Box.spanned``), and uses `x0` elsewhere.
    rng : None, int, SeedSequence or Generator
        Seed of the whole sequence. Run 0 uses it exactly as the strategy would (an int or a
        SeedSequence gives the same run as ``strategy(x0, sigma0, rng=rng)``); restart ``r``
        uses a seed derived from ``(entropy, r)``, where entropy is the 128-bit number run 0
        drew from `rng` (SPEC 7): ``rng=42`` and ``rng=np.random.default_rng(42)`` give the
        same whole sequence, restarts included. A Generator is drawn from once.
    maxfev, maxiter : int, optional
        Evaluations and generations over all runs together.
    ftarget : float, optional
        Stop everything once a value this low is found.
    timeout : float, optional
        Seconds, for the whole sequence: since its construction or its load by
        :meth:`from_state` (as a strategy's; a pickle keeps the time elapsed).
    max_restarts : int
        How many restarts at most (default 9).
    popsize_factor : float
        Growth of the population at each restart (default 2).
    **options
        Options of the strategy (``eta_B=...``, ``mirrored=...``) and its local stopping
        criteria (`tolfun`, `tolx`, `tolstagnation`, `tolflatfitness`, `tolconditioncov`),
        passed to every run.

    Raises
    ------
    TypeError
        If an argument is of the wrong kind (a `strategy` that is neither a name nor a
        Strategy subclass, a `max_restarts` that is not an integer, ...), or an option is
        unknown to the strategy.
    ValueError
        If an argument has a bad value: an unregistered `strategy` name, a budget below 1, a
        negative `max_restarts`, a `popsize_factor` outside [1, 100], or what the strategy's
        own constructor rejects (its Raises), which is checked by building the first run.

    Notes
    -----
    A run ends when its ``stop()`` holds after a generation (one that holds before the
    first, a step size that starts at its limit, say, lets the run evaluate one generation
    first). If any criterion in ``maxfev``, ``maxiter``,
    ``ftarget``, ``timeout`` (or a callback's stop) holds, the whole sequence ends; otherwise
    (``tolfun``, ``tolx``, ``tolstagnation``, ``tolflatfitness``, ``conditioncov``,
    ``degenerate``, ``sigma``) the next run starts, unless
    `max_restarts` runs have been started already. Every run receives the remaining evaluation
    budget as its ``maxfev``, so the total never exceeds `maxfev` in :meth:`optimize` (which
    evaluates only what the budget allows in the last generation).

    In a loop of your own, :meth:`ask` returns a whole generation of the current run, as a
    strategy's ``ask`` does, and a run started with a few evaluations left asks as many rows
    as its population (which doubles at each restart): evaluating every row passes `maxfev`
    by up to a generation less one. That is the protocol, the same for a single strategy. To
    keep within the budget exactly as :meth:`optimize` does, evaluate only the rows it allows
    and tell the others NaN with ``evaluated`` (see the second example).

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

    A loop of your own that keeps within `maxfev` as :meth:`optimize` does (the last
    generation, of 64 candidates, has 25 evaluations left):

    >>> opt = IPOP(XNES, np.full(3, 3.0), 2.0, maxfev=7_777, rng=1)
    >>> while not opt.stop():
    ...     X = opt.ask()
    ...     n = min(len(X), opt.criteria["maxfev"] - opt.nfev)
    ...     f = np.full(len(X), np.nan)  # NaN: not evaluated
    ...     f[:n] = [rastrigin(x) for x in X[:n]]
    ...     opt.tell(X, f, evaluated=n)
    >>> opt.nfev, opt.popsize, opt.result.fun == IPOP(
    ...     XNES, np.full(3, 3.0), 2.0, maxfev=7_777, rng=1
    ... ).optimize(rastrigin).fun
    (7777, 64, True)
    """

    #: the name in ``state_dict()['strategy']``.
    name: ClassVar[str] = "ipop"

    def __init__(
        self,
        strategy: str | type[Strategy],
        x0: ArrayLike,
        sigma0: float | ArrayLike,
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: RngLike = None,
        maxfev: int | None = None,
        maxiter: int | None = None,
        ftarget: float | None = None,
        timeout: float | None = None,
        max_restarts: int = 9,
        popsize_factor: float = 2,
        **options: OptionValue,
    ) -> None:
        cls = resolve_strategy(strategy)
        crit = _stopping.check_criteria(
            maxfev=maxfev, maxiter=maxiter, ftarget=ftarget, timeout=timeout
        )
        self._max_restarts = v.integer(
            "max_restarts", max_restarts, minimum=0, maximum=_stopping.MAX_CRITERION_COUNT
        )
        factor = v.positive_float("popsize_factor", popsize_factor)
        if not 1.0 <= factor <= MAX_POPSIZE_FACTOR:
            raise ValueError(
                f"`popsize_factor` must be a number in [1, {MAX_POPSIZE_FACTOR:g}], "
                f"but got {factor}."
            )
        self._factor = factor
        seed = seed_of(rng)
        self._seed = 0 if seed is None else seed
        self._cls = cls
        # as given, for the first run to check (its errors quote the values received)
        self._options: dict[str, object] = dict(options)
        self._crit = _stopping.Criteria(tolfun=None, tolx=None, **crit)  # type: ignore[arg-type]
        # The first run validates x0, sigma0, popsize, bounds and the options.
        self._x0 = v.as_vector("x0", x0)
        # checked, as a float or a new array: the caller may change its array later (x0 is
        # copied by as_vector)
        self._sigma0 = v.step_sizes("sigma0", sigma0, self._x0.size)
        self._box = parse_bounds(bounds, self._x0.size)
        self._restarts = 0
        self._nfev_done = 0
        self._generation_done = 0
        self._history: list[JSON] = []
        self._t0 = time.monotonic()
        # The evaluations and generations the current optimize() call may reach (None outside
        # a call): no run starts at that point, since the call ends there.
        self._call_limit: int | None = None
        self._call_it_limit: int | None = None
        # The run and generation whose restart check decided (see _restart_if_due); derived.
        self._settled: tuple[Strategy, int] | None = None
        # Run 0 draws from `rng` itself, so that it is the run the strategy would make.
        self._inner = self._make_run(0, self._x0, popsize, rng=rng)
        # checked: now plain values, so that state_dict() is plain data (JSON)
        self._options = {k: plain_option(k, x) for k, x in options.items()}
        # SPEC 7: every form of `rng` reaches run 0 as the 128-bit entropy it drew (an int and
        # default_rng of that int draw the same), and the restarts follow from that entropy,
        # so rng=42 and rng=np.random.default_rng(42) give the same whole sequence (and the
        # same as the Optuna sampler's with seed=42, whose helpers derive the same entropy).
        self._seed = self._run_entropy(self._inner)
        self._popsize0 = self._inner.popsize
        self._best_x, self._best_f = self._inner.best

    # ------------------------------------------------------------------ runs
    @staticmethod
    def _run_entropy(es: Strategy) -> int:
        """Return the 128-bit entropy of the counter-based noise of the run `es`."""
        noise = es.replica_state()["noise"]
        return int(str(noise["entropy"]))  # type: ignore[index]

    def _make_run(
        self,
        r: int,
        x0: FloatArray,
        popsize: int | None,
        *,
        sigma0: float | ArrayLike | None = None,
        rng: RngLike = None,
    ) -> Strategy:
        """Return run `r` at `x0` with `popsize` and `sigma0` (default the first run's).

        Its seed is :func:`restart_seed` of the sequence's entropy and `r` unless `rng` is
        given.
        """
        # The budget of a run is what the sequence has left after the runs before it (the
        # current one included when it is a restart); the budget of an optimize() call is the
        # loop's, so that it does not stick to the run.
        done = self.nfev if r else 0
        remaining = None if self._crit.maxfev is None else self._crit.maxfev - done
        return self._cls(
            x0,
            self._sigma0 if sigma0 is None else sigma0,
            popsize,
            bounds=None if self._box is None else self._box.to_bounds(),
            rng=rng if rng is not None else self._seed if not r else restart_seed(self._seed, r),
            maxfev=remaining,
            ftarget=self._crit.ftarget,
            **self._options,  # type: ignore[arg-type]
        )

    def _next_run(self, r: int) -> tuple[int, float | ArrayLike, str] | None:
        """Return the population, step size and regime of restart `r`, or None if none."""
        if self._restarts >= self._max_restarts:
            return None
        lam = restart_popsize(self._popsize0, self._factor, r, self._inner.mirrored, self.dim)
        return lam, self._sigma0, "large"

    def _current_plan(self, mirrored: bool) -> tuple[int, float | ArrayLike]:
        """Return the population and step size the current run (restart ``restarts``) began with.

        What :meth:`_next_run` gave it when it started, from the counters as they are now.
        """
        r = self._restarts
        if not r:
            return self._popsize0, self._sigma0
        return restart_popsize(
            self._popsize0, self._factor, r, mirrored, self._x0.size
        ), self._sigma0

    def _check_run(self, run_: JSON) -> None:
        """Raise ValueError unless `run_` (a run's state) is the current run of this sequence.

        Its dimension, population, initial step size, bounds, budget, ``ftarget``, dtype,
        strategy options and criteria must be those the sequence gives restart ``restarts``:
        the state of that run, made afresh, says what they are.
        """
        r = self._restarts
        lam, sigma0 = self._current_plan(self._inner.mirrored)
        # self.nfev is nfev_done here (the constructor's run has evaluated nothing), the
        # evaluations before the current run, as when it was made
        want = self._make_run(r, self._x0, lam, sigma0=sigma0).state_dict()
        for key in RUN_CONFIGURATION:
            where = _difference(run_[key], want[key], key)
            if where is not None:
                path, got, expected = where
                raise ValueError(
                    f"the current run's `{path}` must be {v.short(expected)} as in run {r} of "
                    f"the sequence, but got {v.short(got)}"
                )

    def _commit_restart(self, record: JSON, run_: Strategy, regime: str) -> None:
        """Make `run_` the current run; `record` is the finished run's (nothing here raises)."""
        self._history.append(record)
        self._nfev_done += self._inner.nfev
        self._generation_done += self._inner.generation
        self._restarts += 1
        self._inner = run_

    def _after_tell(self) -> None:
        x, f = self._inner.best
        if f < self._best_f:
            self._best_x, self._best_f = x, f
        self._restart_if_due()

    def _restart_if_due(self) -> None:
        """Start the next run if the current one has stopped by a local criterion.

        After a tell; and before an ask, for a restart that the end of an optimize() call
        deferred (the call's budget ended where the run stopped). A check that decides
        anything but such a deferral is remembered as ``_settled`` (the run and its
        generation): the ask that follows need not compute the run's ``stop()`` again.
        """
        inner_stop = self._inner.stop()
        settled = (self._inner, self._inner.generation)
        if (
            not inner_stop
            or any(k in GLOBAL for k in inner_stop)
            or self._global_stop()
            or not self._inner.generation  # a run is restarted after its first generation only
        ):
            self._settled = settled
            return
        if (self._call_limit is not None and self.nfev >= self._call_limit) or (
            self._call_it_limit is not None and self.generation >= self._call_it_limit
        ):
            return  # the optimize() call ends here: no run to start
        r = self._restarts + 1
        plan = self._next_run(r)
        if plan is None:
            self._settled = settled
            return
        lam, sigma0, regime = plan
        x0 = entropy_restart_x0(self._x0, self._box, self._seed, r)
        run_ = self._make_run(r, x0, lam, sigma0=sigma0)
        # The new run exists: commit it in one step.
        self._commit_restart(run_record(self._inner, inner_stop), run_, regime)

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
        """One record per finished run: popsize, nfev, generations, best_f, stop (copies)."""
        # (each record's `stop` list too: one changed by the caller changed the state)
        return [
            {k: list(x) if isinstance(x, list) else x for k, x in h.items()} for h in self._history
        ]

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
    def criteria(self) -> JSON:
        """The thresholds that end the whole sequence, by name (None: off)."""
        return self._crit.state_dict()

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
        """Return the current run's candidates (see :meth:`Strategy.ask`).

        A run that has stopped is first replaced by the next one, if a restart is due.
        """
        run_, settled = self._inner, self._settled
        if settled is None or settled[0] is not run_ or settled[1] != run_.generation:
            self._restart_if_due()
        return self._inner.ask()

    def tell(
        self, solutions: ArrayLike, fitness: ArrayLike, *, evaluated: int | None = None
    ) -> None:
        """Tell the current run (see :meth:`Strategy.tell`); start the next run if it ends."""
        if not self._inner.pending:
            # a run that a tell just started is at its generation 0: count the whole sequence's
            raise no_batch_error(self.generation)
        self._inner.tell(solutions, fitness, evaluated=evaluated)
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
        return out

    @property
    def result(self) -> OptimizeResult:
        """The outcome as an OptimizeResult: :attr:`Strategy.result`'s fields over all runs.

        Two more fields: ``restarts`` and ``history`` (one record per run, the current one last).
        """
        res = self._inner.result
        return _stopping.make_result(
            x=self._best_x.copy(),
            fun=self._best_f,
            nfev=self.nfev,
            nit=self.generation,
            stop=self.stop(),
            mean=res.mean,
            sigma=res.sigma,
            restarts=self._restarts,
            history=[*self.history, run_record(self._inner, self._inner.stop())],
        )

    def optimize(
        self,
        fun: Callable[..., float],
        *,
        args: Sequence[object] = (),
        maxfev: int | float | None = None,
        maxiter: int | float | None = None,
        workers: WorkersLike = None,
        callback: Callable[[OptimizeResult], object] | None = None,
        disp: DispLike = False,
        progress: bool = False,
        vectorized: bool = False,
    ) -> OptimizeResult:
        """Run all restarts until :meth:`stop` holds (see :meth:`Strategy.optimize`).

        `maxfev` and `maxiter` are totals over all runs, for this call only (None or
        ``float("inf")``: no limit of this call).
        """
        call_fev = v.budget("maxfev", maxfev)
        call_it = v.budget("maxiter", maxiter)
        # a call made from this call's callback ends with the outer call's limits in place
        outer = self._call_limit, self._call_it_limit
        self._call_limit, self._call_it_limit = call_fev, call_it
        try:
            return run(
                self,
                lambda: self._inner,
                fun,
                args=args,
                maxfev=call_fev,
                maxiter=call_it,
                workers=workers,
                callback=callback,
                disp=disp,
                progress=progress,
                vectorized=vectorized,
            )
        finally:
            self._call_limit, self._call_it_limit = outer

    # ------------------------------------------------------------------ state
    def state_dict(self) -> JSON:
        """Return the complete state as JSON-serialisable plain data."""
        return {
            "strategy": self.name,
            "version": STATE_VERSION,
            "inner_strategy": self._cls.name,
            "x0": self._x0.tolist(),
            "sigma0": np.asarray(self._sigma0, dtype=float).tolist(),
            "popsize0": self._popsize0,
            "bounds": None if self._box is None else self._box.state_dict(),
            "seed": str(self._seed),
            "criteria": {
                "maxfev": self._crit.maxfev,
                "maxiter": self._crit.maxiter,
                "ftarget": self._crit.ftarget,
                "timeout": self._crit.timeout,
            },
            "max_restarts": self._max_restarts,
            "popsize_factor": self._factor,
            "options": dict(self._options),
            "restarts": self._restarts,
            "nfev_done": self._nfev_done,
            "generation_done": self._generation_done,
            "history": self.history,
            "best_x": self._best_x.tolist(),
            "best_f": None if math.isinf(self._best_f) else self._best_f,
            "run": self._inner.state_dict(),
        }

    @classmethod
    def from_state(cls, state: JSON, *, strategy: type[Strategy] | None = None) -> IPOP:
        """Rebuild an IPOP sequence from :meth:`state_dict` output.

        Parameters
        ----------
        state : dict
            What :meth:`state_dict` returned (after a JSON round trip, if you like).
        strategy : Strategy subclass, optional
            The class of the runs. The state names the strategy by its registered name, so a
            subclass without a ``name`` of its own is stored under its parent's; pass it here
            to rebuild the current run and every later restart as that subclass (as
            ``Subclass.from_state`` does for a single strategy). Default: the class the state
            names.

        Raises
        ------
        TypeError
            If `strategy` is not a Strategy subclass.
        ValueError
            If `state` is malformed, or `strategy` is not the class the state names or a
            subclass that inherits its name, or the current run (``state["run"]``) is not the
            run the sequence makes at that restart: another strategy, dimension, population,
            initial step size, bounds, budget, ``ftarget``, dtype, option or criterion (the
            message names the first that differs).
        """
        if strategy is not None and not (
            isinstance(strategy, type) and issubclass(strategy, Strategy)
        ):
            raise TypeError(
                f"`strategy` must be a Strategy subclass or None, but got {v.short(strategy)}."
            )
        state = v.saved_state(state, cls.name, STATE_VERSION, f"{cls.__name__}.state_dict()")
        if strategy is not None:
            named = state.get("inner_strategy")
            parent = _registered(named) if isinstance(named, str) else None
            if parent is None or not issubclass(strategy, parent) or strategy.name != parent.name:
                raise ValueError(
                    f"`strategy` must be the class the state's runs were made of, "
                    f"{v.short(named)}, or a subclass of it without a name of its own, but got "
                    f"{strategy.__name__} (name {strategy.name!r})."
                )
        try:
            inner_cls = strategy or resolve_strategy(str(state["inner_strategy"]))
            bounds = state["bounds"]
            sigma0 = state["sigma0"]
            obj = cls(
                inner_cls,
                state["x0"],  # type: ignore[arg-type]
                sigma0,  # type: ignore[arg-type]
                state["popsize0"],  # type: ignore[arg-type]
                bounds=None if bounds is None else Box.from_state(bounds).to_bounds(),
                rng=_stored_seed(state["seed"]),
                max_restarts=state["max_restarts"],  # type: ignore[arg-type]
                popsize_factor=state["popsize_factor"],  # type: ignore[arg-type]
                **_entries("criteria", state["criteria"]),  # type: ignore[arg-type]
                **_entries("options", state["options"]),  # type: ignore[arg-type]
            )
            # The constructor drew run 0 from the stored seed; the sequence's seed is the
            # stored one itself (the entropy the original run 0 drew).
            obj._seed = _stored_seed(state["seed"])
            obj._restarts = v.integer(
                "restarts", state["restarts"], minimum=0, maximum=obj._restart_bound()
            )
            obj._nfev_done = v.integer("nfev_done", state["nfev_done"], minimum=0)
            obj._generation_done = v.integer(
                "generation_done", state["generation_done"], minimum=0
            )
            obj._history = _checked_history(
                state["history"], obj._restarts, regime=cls is not IPOP
            )
            # the counters of the finished runs add up to their records
            for name, key in (("nfev_done", "nfev"), ("generation_done", "generations")):
                total = sum(int(h[key]) for h in obj._history)  # type: ignore[call-overload]
                if int(state[name]) != total:  # type: ignore[call-overload]
                    raise ValueError(
                        f"`{name}` must be the sum of the runs' `{key}` in `history` ({total}), "
                        f"but got {v.short(state[name])}"
                    )
            obj._best_x = v.as_vector("best_x", state["best_x"], obj.dim)
            best_f = state["best_f"]
            obj._best_f = math.inf if best_f is None else v.real("best_f", best_f)
            obj._load_extra(state)
            obj._check_popsizes()
            run_ = inner_cls.from_state(state["run"])  # type: ignore[arg-type]
            # as loaded (its configuration is that of its replica state): a state saved before
            # an option existed has it at its old value
            obj._check_run(run_.replica_state())
            obj._inner = run_
            obj._check_best()
        except KeyError as exc:
            raise ValueError(f"`state` is malformed: the key {exc} is missing.") from exc
        except (TypeError, ValueError, IndexError, OverflowError) as exc:
            raise ValueError(f"`state` is malformed: {exc}") from exc
        return obj

    def _load_extra(self, state: JSON) -> None:
        """Load what a subclass adds to the state (BIPOP: its regimes); raise if malformed."""
        return None

    def _run_popsizes(self) -> list[int]:
        """Return the population each finished run of the history began with, as planned."""
        mirrored, d = self._inner.mirrored, self.dim
        return [
            restart_popsize(self._popsize0, self._factor, r, mirrored, d) if r else self._popsize0
            for r in range(len(self._history))
        ]

    def _check_popsizes(self) -> None:
        """Raise ValueError unless each record of the history has its run's planned population."""
        for r, (h, lam) in enumerate(zip(self._history, self._run_popsizes(), strict=True)):
            if h["popsize"] != lam:
                raise ValueError(
                    f"`history[{r}]['popsize']` must be {lam}, the population of run {r} of "
                    f"the sequence, but got {v.short(h['popsize'])}"
                )

    def _check_best(self) -> None:
        """Raise ValueError unless the best point and value are those of the runs.

        The best value is the least of the runs' (the finished ones' records and the current
        run's), and the best point lies in the box.
        """
        bests = [h["best_f"] for h in self._history]
        least = min([math.inf if f is None else float(f) for f in bests], default=math.inf)  # type: ignore[arg-type]
        least = min(least, self._inner.best[1])
        if self._best_f != least:
            raise ValueError(
                f"`best_f` must be the least of the runs' best values ({least!r}), but got "
                f"{self._best_f!r}"
            )
        # (with float32, a box no float32 value lies in has its candidates just outside it)
        if self._box is not None and not self._box.holds(self._best_x, self._inner.dtype):
            raise ValueError("`best_x` must lie in the bounds, but it does not")

    def _restart_bound(self) -> int:
        """Return the most restarts the sequence can have made (IPOP: `max_restarts`)."""
        return self._max_restarts

    def __getstate__(self) -> dict[str, object]:
        d = self.__dict__.copy()
        d["_t0"] = time.monotonic() - self._t0
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        self.__dict__.update(d)
        self.__dict__.setdefault("_call_it_limit", None)  # (pickled before it existed)
        self._settled = None  # derived: checked again at the next ask
        self._t0 = time.monotonic() - float(d["_t0"])  # type: ignore[arg-type]

    def __copy__(self) -> IPOP:
        # A shallow copy would share the run and the records, which the original changes in
        # place (the copy told its batches to the original's run): they are copied, so that
        # the two go on independently, as a strategy's copy does
        twin = type(self).__new__(type(self))
        twin.__setstate__(self.__getstate__())
        twin._inner = copy.copy(self._inner)
        twin._history = copy.deepcopy(self._history)
        return twin

    def __repr__(self) -> str:
        return (
            f"IPOP({self._cls.__name__}, dim={self.dim}, restarts={self._restarts}, "
            f"popsize={self.popsize}, nfev={self.nfev}, best_f={self._best_f:.6g})"
        )


#: the two regimes of BIPOP
REGIMES = ("large", "small")


def _checked_history(records: object, restarts: int, *, regime: bool) -> list[JSON]:
    """Return the stored ``history``: one record of :func:`run_record` per restart.

    With `regime` (BIPOP), each record also names its regime. Raises TypeError or ValueError.
    """
    if not isinstance(records, list) or len(records) != restarts:
        raise ValueError(
            f"`history` must hold one record per restart ({restarts}), but got "
            f"{len(records) if isinstance(records, list) else v.short(records)}"
        )
    keys = {"popsize", "nfev", "generations", "best_f", "stop"} | ({"regime"} if regime else set())
    out: list[JSON] = []
    for i, h in enumerate(records):
        if not isinstance(h, dict):
            raise TypeError(f"`history[{i}]` must be a dict, but got {v.short(h)}")
        if set(h) != keys:
            raise ValueError(
                f"`history[{i}]` must have the keys {sorted(keys)}, but got {sorted(h)}"
            )
        h = {
            **h,
            "popsize": v.integer("popsize", h["popsize"], minimum=2, maximum=MAX_POPSIZE),
            "nfev": v.integer("nfev", h["nfev"], minimum=0, maximum=MAX_COUNT),
            "generations": v.integer(
                "generations", h["generations"], minimum=0, maximum=MAX_COUNT
            ),
        }
        if h["best_f"] is not None:
            v.real("best_f", h["best_f"])
        stop = h["stop"]
        if not isinstance(stop, list) or not all(isinstance(k, str) for k in stop):
            raise TypeError(f"`stop` must be a list of criteria, but got {v.short(stop)}")
        if regime and h["regime"] not in REGIMES:
            raise ValueError(
                f"`regime` must be one of {list(REGIMES)}, but got {v.short(h['regime'])}"
            )
        out.append(dict(h))
    return out


def small_regime_draws(seed: int, r: int) -> tuple[float, float]:
    """Return the two uniform numbers of small-regime restart `r` of the sequence `seed`.

    The sampler's form of :func:`entropy_small_regime_draws`, from the study's seed.
    """
    return entropy_small_regime_draws(sequence_entropy(seed), r)


def plain_option(name: str, x: OptionValue) -> OptionValue:
    """Return strategy option `x` as plain data, for a ``state_dict()`` or a sampler's JSON.

    numpy scalars and other real numbers (a Fraction) as Python ones, a `dtype` as its name;
    anything else as it is, and so a real number no float holds (a Fraction(10**400, 3)),
    which the strategy refuses, naming it. Raises ValueError naming `dtype` for a dtype that
    is neither float64 nor float32.
    """
    if name == "dtype" and x is not None:
        return np.dtype(_check_dtype(x)).name  # (read as the strategies read it)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    try:
        return float(x)
    except OverflowError:
        return x


def entropy_small_regime_draws(entropy: int, r: int) -> tuple[float, float]:
    """Return the two uniform numbers in [0, 1) of small-regime restart `r` of `entropy`.

    `entropy` is what run 0 of the sequence drew. The numbers come from their own stream
    (the second child of ``SeedSequence(entropy, (r,))``; the first one draws the initial mean
    of :func:`entropy_restart_x0`), so the run is reproducible.
    """
    seq = np.random.SeedSequence(entropy, spawn_key=(r,)).spawn(2)[1]
    u = np.random.default_rng(seq).uniform(0.0, 1.0, 2)
    return float(u[0]), float(u[1])


def small_popsize(popsize0: int, popsize_large: int, u: float, mirrored: bool) -> int:
    r"""Return :math:`\lfloor\lambda_0 (\lambda_l / (2 \lambda_0))^{u^2}\rfloor` (Hansen 2009).

    `popsize_large` is the population :math:`\lambda_l` of the next large-regime run, so the
    result lies in :math:`[\lambda_0, \lambda_l / 2]`; made even when `mirrored`. With a
    `popsize_factor` below 2, :math:`\lambda_l / 2` can be below :math:`\lambda_0`: the result
    is then :math:`\lambda_0` (not a smaller population, which the first run's strategy may
    reject: DXNESIC and CRFMNES do 2, and so would a restart after the tell that ended a run).
    """
    lam = math.floor(popsize0 * (0.5 * popsize_large / popsize0) ** (u * u))
    return even_popsize(max(lam, popsize0), mirrored)


class BIPOP(IPOP):
    r"""Restarts in two interleaved regimes, large and small populations (BIPOP).

    Takes the arguments of :class:`IPOP`, with one difference: `max_restarts` (default 9)
    counts the restarts of the large regime only; the small-regime runs come between them.

    Raises
    ------
    TypeError, ValueError
        As :class:`IPOP`.

    Notes
    -----
    The first run uses `popsize` (:math:`\lambda_0`, the strategy's default when omitted) and
    `sigma0`, and counts in the large regime. Whenever a run ends by a local criterion
    (as in :class:`IPOP`), the next run is of the regime that has used fewer evaluations so
    far (Hansen 2009, Section 2): the small regime runs while its budget is below the large
    regime's.

    * Large regime, its :math:`i`-th restart: :math:`\lambda_l = \lambda_0 f^i`
      (`popsize_factor` :math:`f = 2`) and `sigma0`, as IPOP.
    * Small regime: :math:`\lambda_s = \lfloor \lambda_0 (\lambda_l / (2\lambda_0))^{U_1^2}
      \rfloor \in [\lambda_0, \lambda_l / 2]` with :math:`\lambda_l` the population of the
      next large run, and :math:`\sigma_s = \sigma_0 \cdot 10^{-2 U_2}`, with
      :math:`U_1, U_2` uniform in [0, 1] drawn from the seed and the restart number
      (:math:`\sigma_s` at least 1e-100, the smallest step size).

    Every restart draws its initial mean as IPOP does. The sequence ends when a global
    criterion holds (`maxfev`, `maxiter`, `ftarget`, `timeout`, a callback) or when the next
    run would be a large one and `max_restarts` large restarts have been made
    (``max_restarts=0``: no restart at all). ``history`` records each run's ``regime``. In a
    loop of your own, evaluate only the rows `maxfev` allows to keep within it, as for
    :class:`IPOP` (whose second example shows the loop).

    References
    ----------
    N. Hansen. Benchmarking a BI-Population CMA-ES on the BBOB-2009 Function Testbed.
    GECCO 2009 workshop on black-box optimization benchmarking.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import BIPOP
    >>> def rastrigin(x):
    ...     return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))
    >>> opt = BIPOP("xnes", np.full(3, 3.0), 2.0, maxfev=20_000, ftarget=1e-8, rng=1)
    >>> res = opt.optimize(rastrigin)
    >>> bool(res.nfev <= 20_000), {h["regime"] for h in res.history} <= {"large", "small"}
    (True, True)
    """

    name: ClassVar[str] = "bipop"

    def __init__(
        self,
        strategy: str | type[Strategy],
        x0: ArrayLike,
        sigma0: float | ArrayLike,
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: RngLike = None,
        maxfev: int | None = None,
        maxiter: int | None = None,
        ftarget: float | None = None,
        timeout: float | None = None,
        max_restarts: int = 9,
        popsize_factor: float = 2,
        **options: OptionValue,
    ) -> None:
        super().__init__(
            strategy,
            x0,
            sigma0,
            popsize,
            bounds=bounds,
            rng=rng,
            maxfev=maxfev,
            maxiter=maxiter,
            ftarget=ftarget,
            timeout=timeout,
            max_restarts=max_restarts,
            popsize_factor=popsize_factor,
            **options,
        )
        self._regime = "large"  # of the current run
        self._large_restarts = 0
        self._budget_large = 0  # evaluations of the finished runs of each regime
        self._budget_small = 0

    # ------------------------------------------------------------------ regimes
    @property
    def regime(self) -> str:
        """The regime of the current run: ``"large"`` or ``"small"``."""
        return self._regime

    @property
    def budgets(self) -> dict[str, int]:
        """Evaluations used by each regime so far, the current run included."""
        large, small = self._budget_large, self._budget_small
        if self._regime == "large":
            large += self._inner.nfev
        else:
            small += self._inner.nfev
        return {"large": large, "small": small}

    def _next_regime(self) -> str | None:
        """Return the regime of the run after the current one, or None if there is none."""
        if self._max_restarts == 0:
            return None
        b = self.budgets
        if b["small"] < b["large"]:
            return "small"
        return "large" if self._large_restarts < self._max_restarts else None

    def _next_run(self, r: int) -> tuple[int, float | ArrayLike, str] | None:
        regime = self._next_regime()
        if regime is None:
            return None
        mirrored = self._inner.mirrored
        # the population of the next large run (Hansen 2009, lambda_l)
        lam_l = restart_popsize(
            self._popsize0, self._factor, self._large_restarts + 1, mirrored, self.dim
        )
        if regime == "large":
            return lam_l, self._sigma0, regime
        return *self._small_run(r, lam_l, mirrored), regime

    def _small_run(self, r: int, lam_l: int, mirrored: bool) -> tuple[int, float | ArrayLike]:
        """Return the population and step size of small-regime restart `r` (`lam_l`: see above)."""
        u1, u2 = entropy_small_regime_draws(self._seed, r)
        lam = small_popsize(self._popsize0, lam_l, u1, mirrored)
        # no smaller than the smallest step size a strategy takes (sigma0 may be near it)
        sigma0 = np.maximum(
            np.asarray(self._sigma0, dtype=np.float64) * 10.0 ** (-2.0 * u2), v.SIGMA_MIN
        )
        return lam, float(sigma0) if sigma0.ndim == 0 else sigma0

    def _current_plan(self, mirrored: bool) -> tuple[int, float | ArrayLike]:
        r, large, d = self._restarts, self._large_restarts, self._x0.size
        if not r:
            return self._popsize0, self._sigma0
        if self._regime == "large":  # its commit counted it among the large restarts
            return restart_popsize(self._popsize0, self._factor, large, mirrored, d), self._sigma0
        lam_l = restart_popsize(self._popsize0, self._factor, large + 1, mirrored, d)
        return self._small_run(r, lam_l, mirrored)

    def _commit_restart(self, record: JSON, run_: Strategy, regime: str) -> None:
        budgets = self.budgets
        record["regime"] = self._regime
        super()._commit_restart(record, run_, regime)
        self._budget_large, self._budget_small = budgets["large"], budgets["small"]
        if regime == "large":
            self._large_restarts += 1
        self._regime = regime

    def stop(self) -> dict[str, float]:
        """Return the criteria that end the whole sequence (empty while it goes on)."""
        out = self._global_stop()
        inner = self._inner.stop()
        if inner and (self._next_regime() is None or any(k in GLOBAL for k in inner)):
            for key, value in inner.items():
                out.setdefault(key, value)
        return out

    @property
    def result(self) -> OptimizeResult:
        """The outcome as :attr:`IPOP.result`; each ``history`` record also has ``regime``."""
        res = super().result
        res.history[-1]["regime"] = self._regime
        return res

    # ------------------------------------------------------------------ state
    def state_dict(self) -> JSON:
        """Return the complete state as JSON-serialisable plain data."""
        state = super().state_dict()
        state["bipop"] = {
            "regime": self._regime,
            "large_restarts": self._large_restarts,
            "budget_large": self._budget_large,
            "budget_small": self._budget_small,
        }
        return state

    @classmethod
    def from_state(cls, state: JSON, *, strategy: type[Strategy] | None = None) -> BIPOP:
        """Rebuild a BIPOP sequence from :meth:`state_dict` output.

        `strategy` is the class of the runs, for a subclass without a ``name`` of its own
        (see :meth:`IPOP.from_state`).

        Raises
        ------
        TypeError
            If `strategy` is not a Strategy subclass.
        ValueError
            If `state` is malformed, `strategy` is not the class of its runs, or its current
            run is not the one the sequence makes at that restart, in that regime (see
            :meth:`IPOP.from_state`).
        """
        obj = super().from_state(state, strategy=strategy)
        if not isinstance(obj, BIPOP):  # pragma: no cover - super() builds cls
            raise ValueError("`state` must come from BIPOP.state_dict().")
        return obj

    def _restart_bound(self) -> int:
        # small-regime runs come between the large ones, as many as the budgets make
        return MAX_COUNT

    def _run_popsizes(self) -> list[int]:
        mirrored, d = self._inner.mirrored, self.dim
        out, large = [self._popsize0], 0
        for r, h in enumerate(self._history[1:], start=1):
            lam_l = restart_popsize(self._popsize0, self._factor, large + 1, mirrored, d)
            if h["regime"] == "large":
                out.append(lam_l)
                large += 1
            else:
                out.append(self._small_run(r, lam_l, mirrored)[0])
        return out[: len(self._history)]

    def _load_extra(self, state: JSON) -> None:
        extra = _entries("bipop", state["bipop"])
        regime = extra["regime"]
        if regime not in REGIMES:
            raise ValueError(f"`regime` must be one of {list(REGIMES)}, but got {v.short(regime)}")
        large = v.integer(
            "large_restarts", extra["large_restarts"], minimum=0, maximum=self._max_restarts
        )
        if large > self._restarts:
            raise ValueError(f"`large_restarts` {large} exceeds `restarts` {self._restarts}")
        b_large = v.integer("budget_large", extra["budget_large"], minimum=0)
        b_small = v.integer("budget_small", extra["budget_small"], minimum=0)
        # the budgets and the count of large restarts are those of the finished runs' records
        # (the first run counts in the large regime, and is no restart)
        runs = [*(str(h["regime"]) for h in self._history), str(regime)]
        told = {"large": 0, "small": 0}
        for h in self._history:
            told[str(h["regime"])] += int(h["nfev"])  # type: ignore[call-overload]
        for name, got, want, what in (
            ("budget_large", b_large, told["large"], "the sum of `nfev` of the large runs"),
            ("budget_small", b_small, told["small"], "the sum of `nfev` of the small runs"),
            ("large_restarts", large, runs.count("large") - 1, "the number of large runs"),
        ):
            if got != want:
                raise ValueError(
                    f"`{name}` must be {what} in `history` and the current run after the "
                    f"first ({want}), but got {got}"
                    if name == "large_restarts"
                    else f"`{name}` must be {what} in `history` ({want}), but got {got}"
                )
        self._regime = str(regime)
        self._large_restarts = large
        self._budget_large, self._budget_small = b_large, b_small

    def __repr__(self) -> str:
        return (
            f"BIPOP({self._cls.__name__}, dim={self.dim}, restarts={self._restarts}, "
            f"regime={self._regime}, popsize={self.popsize}, nfev={self.nfev}, "
            f"best_f={self._best_f:.6g})"
        )


#: the restart strategies by name: the `restart_strategy` that the scipy method and the Optuna
#: sampler accept, next to their `restarts`
RESTART_STRATEGIES: dict[str, type[IPOP]] = {IPOP.name: IPOP, BIPOP.name: BIPOP}


def resolve_restart_strategy(name: object) -> str:
    """Return the registered restart strategy `name` (in any case) as its lower-case name.

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If `name` is not a key of :data:`RESTART_STRATEGIES`.
    """
    known = ", ".join(repr(k) for k in RESTART_STRATEGIES)
    if not isinstance(name, str):
        raise TypeError(
            f"`restart_strategy` must be a string, one of {known}, but got {v.short(name)}."
        )
    key = name.lower()
    if key not in RESTART_STRATEGIES:
        raise ValueError(f"`restart_strategy` must be one of {known}, but got {v.short(name)}.")
    return key


def restart_count(value: object, maximum: int | None = None) -> int:
    """Return the number of restarts `value` as an int >= 0 (at most `maximum`), or raise.

    A string names a scheme, not a count (``restarts="bipop"`` is a natural slip for users of
    pycma's ``bipop=True``): the TypeError then names ``restart_strategy``.
    """
    if isinstance(value, str):
        raise TypeError(
            f"`restarts` must be an integer, the number of restarts, but got {v.short(value)}; "
            "the scheme is chosen by `restart_strategy` (for example restarts=9, "
            'restart_strategy="bipop").'
        )
    return v.integer("restarts", value, minimum=0, maximum=maximum)


def _stored_seed(value: object) -> int:
    """Return a state's `seed`, or raise ValueError naming it.

    An int in [0, 2**128), stored as its decimal digits (or as an int).
    """
    if isinstance(value, str) and 0 < len(value) <= 39 and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"`seed` must be an integer in [0, 2**128) or its decimal digits, but got "
            f"{v.short(value)}."
        )
    return v.integer("seed", value, minimum=0, maximum=2**128 - 1)
