"""The strategy base class: the ask/tell protocol shared by every NES variant."""

from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

import numpy as np
from scipy.optimize import OptimizeResult

from . import _noise, _shaping, _state, _stopping
from . import _validate as v
from ._bounds import Box, make_box
from ._typing import JSON, FloatArray

S = TypeVar("S", bound="Strategy")


class NESWarning(UserWarning):
    """Warning category for recoverable events during a run (e.g. a skipped update)."""


def make_result(**fields: object) -> OptimizeResult:
    """Return ``scipy.optimize.OptimizeResult(**fields)`` (the stubs do not declare keywords)."""
    return OptimizeResult(**fields)


def default_popsize(dim: int) -> int:
    """Return ``4 + floor(3 ln d)`` (Wierstra et al. 2014, Table 1)."""
    return 4 + math.floor(3 * math.log(dim))


class Strategy(ABC):
    """Base class of the NES strategies: ask/tell, counters, best-so-far, stopping, state.

    Subclasses implement how a perturbation is scaled (:meth:`_perturb_into`), how the search
    distribution is updated from the utilities (:meth:`_update`), and the extra state they carry.

    Every strategy also takes the keywords ``threads`` (threads that draw counter-based noise
    and build the candidates; the results are bit-identical for any count) and ``dtype``
    (``"float64"``, the default, or ``"float32"``, which halves the memory of the noise and of
    the candidates; the mean and the step sizes stay float64).

    Examples
    --------
    The protocol, shown with :class:`~nes_asktell.OpenES` (every strategy behaves alike):

    >>> import json
    >>> import numpy as np
    >>> from nes_asktell import OpenES
    >>> def f(x):
    ...     return float(np.sum(x**2))
    >>> es = OpenES(np.ones(3), sigma0=0.1, rng=0, maxiter=5)
    >>> while not es.stop():
    ...     X = es.ask()
    ...     es.tell(X[::-1], [f(x) for x in X[::-1]])  # rows in any order
    >>> es.stop(), es.generation, es.nfev
    ({'maxiter': 5}, 5, 40)
    >>> X = es.ask()  # checkpoint between ask and tell, through JSON
    >>> copy = OpenES.from_state(json.loads(json.dumps(es.state_dict())))
    >>> bool(np.array_equal(copy.ask(), X))
    True
    """

    #: the name used in ``state_dict()['strategy']``.
    name: ClassVar[str] = "strategy"
    _allow_legacy_rng: ClassVar[bool] = False
    _default_mirrored: ClassVar[bool] = False
    _default_shaping: ClassVar[str] = "nes"

    def __init__(
        self,
        x0: object,
        sigma0: object,
        popsize: object = None,
        *,
        bounds: object = None,
        rng: object = None,
        mirrored: object = None,
        shaping: object = None,
        threads: object = 1,
        maxfev: object = None,
        maxiter: object = None,
        ftarget: object = None,
        tolfun: object = 1e-12,
        tolx: object = 1e-12,
        tolstagnation: object = None,
        timeout: object = None,
        dtype: object = None,
    ) -> None:
        mean = v.as_vector("x0", x0)
        dim = mean.size
        self._sigma0 = self._check_sigma0(sigma0, dim)
        if mirrored is None:
            mirrored = self._default_mirrored
        self._mirrored = v.flag("mirrored", mirrored)
        if popsize is None:
            lam = default_popsize(dim)
            lam += lam % 2 if self._mirrored else 0
        else:
            lam = v.integer("popsize", popsize, minimum=2)
            if self._mirrored and lam % 2:
                raise ValueError(f"`popsize` must be even with mirrored sampling, but got {lam}.")
        self._threads = v.integer("threads", threads, minimum=1)
        self._dtype = _check_dtype(dtype)
        self._box: Box | None = make_box(bounds, dim)
        self._shaping_spec = self._default_shaping if shaping is None else shaping
        self._shape_fn = _shaping.resolve(self._shaping_spec)
        self._noise = _noise.make_noise(
            rng, allow_legacy=self._allow_legacy_rng, threads=self._threads
        )
        crit = _stopping.check_criteria(
            maxfev=maxfev,
            maxiter=maxiter,
            ftarget=ftarget,
            tolfun=tolfun,
            tolx=tolx,
            tolstagnation=tolstagnation,
            timeout=timeout,
        )
        if crit["tolstagnation"] is None:
            crit["tolstagnation"] = _stopping.default_stagnation(dim, lam)
        self._crit = _stopping.Criteria(**crit)  # type: ignore[arg-type]
        self._dim = dim
        self._popsize = lam
        self._mean = mean
        self._generation = 0
        self._nfev = 0
        self._best_x = mean.copy() if self._box is None else self._box.clip(mean)
        self._best_f = math.inf
        self._fhist: list[float] = []
        self._last_range = math.inf
        self._since_improvement = 0
        self._callback_stop = False
        self._t0 = time.monotonic()
        # The pending batch: the noise of the latest ask and its candidates.
        self._Zh: FloatArray | None = None
        self._X: FloatArray | None = None
        self._noise_before_ask: JSON | None = None
        # Batches told and possibly free for reuse (see _take_buffer).
        self._spare: list[FloatArray] = []
        # The utilities applied by the latest tells, (generation, u or None when skipped): dask
        # workers replay them to keep their replicas in step (see _tasks). Not state.
        self._applied: list[tuple[int, FloatArray | None]] = []

    # ------------------------------------------------------------------ hooks for subclasses
    def _check_sigma0(self, sigma0: object, dim: int) -> FloatArray | float:
        return v.positive_float("sigma0", sigma0)

    @abstractmethod
    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        """Write the scaled perturbations of the noise rows `Zh` into `out` (same shape)."""

    @abstractmethod
    def _update(self, u: FloatArray) -> None:
        """Update the search distribution from utilities `u` (aligned with the asked rows)."""

    @abstractmethod
    def _stds(self) -> FloatArray:
        """Return the standard deviation of the search distribution along each coordinate."""

    @abstractmethod
    def _sigma_value(self) -> float | FloatArray:
        """Return the public ``sigma``."""

    def _options(self) -> JSON:
        """Return the subclass's constructor keywords (plain data) for ``state_dict``."""
        return {}

    def _algo_state(self) -> JSON:
        """Return the subclass's dynamic state as plain data."""
        return {}

    def _load_algo_state(self, state: JSON) -> None:
        """Restore :meth:`_algo_state` output; raise KeyError/TypeError/ValueError if malformed."""
        return None

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Number of dimensions d."""
        return self._dim

    @property
    def popsize(self) -> int:
        """Number of candidates per generation (lambda)."""
        return self._popsize

    @property
    def mean(self) -> FloatArray:
        """A copy of the mean of the search distribution (in the unbounded space)."""
        return self._mean.copy()

    @property
    def sigma(self) -> float | FloatArray:
        """The global step size (SNES: the per-coordinate step sizes, a copy)."""
        return self._sigma_value()

    @property
    def generation(self) -> int:
        """Number of completed tells."""
        return self._generation

    @property
    def nfev(self) -> int:
        """Number of fitness values evaluated and told so far."""
        return self._nfev

    @property
    def mirrored(self) -> bool:
        """Whether perturbations come in antithetic pairs (z, -z)."""
        return self._mirrored

    @property
    def bounds(self) -> tuple[FloatArray, FloatArray] | None:
        """The (lower, upper) box, or None."""
        return None if self._box is None else (self._box.lower.copy(), self._box.upper.copy())

    @property
    def best(self) -> tuple[FloatArray, float]:
        """The best candidate told so far and its raw fitness (inf before any finite value)."""
        return self._best_x.copy(), self._best_f

    # ------------------------------------------------------------------ ask / tell
    @property
    def _n_noise(self) -> int:
        return self._popsize // 2 if self._mirrored else self._popsize

    def ask(self) -> FloatArray:
        """Sample a population.

        Returns
        -------
        X : ndarray of shape (popsize, dim)
            The candidates, read-only (copy it to change it), float64 (float32 with
            ``dtype="float32"``). Asking again before ``tell`` returns the same candidates.

        Notes
        -----
        A later ``ask`` may reuse the memory of a told batch, but only once nothing refers to
        it any more (no variable, no view): a batch you hold never changes.
        """
        if self._X is not None:
            return self._X
        snapshot = self._noise.snapshot() if self._noise.kind == "sequential" else None
        m, d, gen = self._n_noise, self._dim, self._generation
        if self._Zh is None or self._Zh.shape != (m, d) or self._Zh.dtype != self._dtype:
            self._Zh = np.empty((m, d), dtype=self._dtype)
        Zh = self._Zh
        X = self._take_buffer()
        noise, mean, box = self._noise, self._mean, self._box
        counter = noise if isinstance(noise, _noise.CounterNoise) else None
        if counter is None:
            noise.draw(gen, Zh)  # a sequential stream: one call, in order

        def fill(a: int, b: int) -> None:
            # One pass over a block of rows while it is in cache: draw, scale, mirror, shift.
            # The blocks depend only on (m, d), so the result is the same for any thread count.
            if counter is not None:
                counter.fill(gen, Zh[a:b], a)
            self._perturb_into(Zh[a:b], X[a:b])
            if self._mirrored:
                np.subtract(mean, X[a:b], out=X[m + a : m + b])
            X[a:b] += mean
            if box is not None:
                box.reflect(X[a:b])
                if self._mirrored:
                    box.reflect(X[m + a : m + b])

        blocks = _row_blocks(m, d)
        if counter is not None and self._threads > 1 and len(blocks) > 1:
            pool = counter.pool()
            for fut in [pool.submit(fill, a, b) for a, b in blocks]:
                fut.result()
        else:
            for a, b in blocks:
                fill(a, b)
        X.flags.writeable = False
        self._X = X
        self._noise_before_ask = snapshot
        return X

    def _take_buffer(self) -> FloatArray:
        """Return a (popsize, d) array for a new batch: a told batch nothing else holds, or new.

        Reusing the memory of an earlier batch avoids page-faulting the whole array again each
        generation (about a fifth of the ask time at d = 1e6). A batch is reused only when no
        reference to it (or to a view of it) exists outside the strategy, so an ``X`` the
        caller still holds never changes.
        """
        shape = (self._popsize, self._dim)
        spare = self._spare
        for i in range(len(spare)):
            if _unshared(spare, i) and spare[i].shape == shape and spare[i].dtype == self._dtype:
                X = spare.pop(i)
                X.flags.writeable = True
                return X
        return np.empty(shape, dtype=self._dtype)

    def _match_rows(self, solutions: object) -> np.ndarray | None:
        """Return the index in the asked batch of each told row (None: same order)."""
        X = self._X
        assert X is not None
        if solutions is X:
            return None
        try:
            S = np.asarray(solutions, dtype=X.dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"`solutions` must be the ({self._popsize}, {self._dim}) array returned by "
                f"ask(), but got {type(solutions).__name__}."
            ) from exc
        if S.shape != X.shape:
            raise ValueError(
                f"`solutions` must have shape {X.shape} (the rows of the latest ask), "
                f"but got shape {S.shape}."
            )
        if all(np.array_equal(S[a:b], X[a:b]) for a, b in _row_blocks(X.shape[0], X.shape[1])):
            return None  # compared block by block: no (popsize, d) temporary
        where: dict[bytes, list[int]] = {}
        for k in range(X.shape[0]):
            where.setdefault(X[k].tobytes(), []).append(k)
        perm = np.empty(X.shape[0], dtype=np.int64)
        for i in range(S.shape[0]):
            slots = where.get(np.ascontiguousarray(S[i]).tobytes())
            if not slots:
                raise ValueError(
                    f"`solutions` row {i} is not one of the candidates of the latest ask(); "
                    "tell the rows that ask() returned, in any order."
                )
            perm[i] = slots.pop()
        return perm

    def tell(self, solutions: object, fitness: object) -> None:
        """Update the search distribution from the fitness of the latest candidates.

        Parameters
        ----------
        solutions : array_like of shape (popsize, dim)
            The rows returned by the latest :meth:`ask`, in any order.
        fitness : array_like of shape (popsize,)
            Their fitness values, lower is better. NaN and inf rank worst; when every value is
            non-finite the update is skipped with a :class:`NESWarning`.

        Raises
        ------
        RuntimeError
            If there is no batch to tell (tell before ask, or the same batch twice).
        TypeError, ValueError
            If `solutions` or `fitness` is malformed; the strategy is then left unchanged.
        """
        self._tell(solutions, fitness, self._popsize)

    def _tell(self, solutions: object, fitness: object, n_evaluated: int) -> None:
        if self._X is None:
            what = "the same batch twice" if self._generation else "tell before ask"
            raise RuntimeError(
                f"tell() needs the candidates of a pending ask() ({what}); call ask() first."
            )
        f_told = v.fitness_vector(fitness, self._popsize)
        perm = self._match_rows(solutions)
        f = f_told if perm is None else np.empty_like(f_told)
        if perm is not None:
            f[perm] = f_told
        finite = np.isfinite(f)
        u = _shaping.apply(self._shape_fn, f) if finite.any() else None
        # Nothing below raises: the state changes only from here on.
        X = self._X
        if u is None:
            warnings.warn(
                f"generation {self._generation}: every fitness value is non-finite; "
                "the update is skipped.",
                NESWarning,
                stacklevel=3,
            )
            # A generation without a finite value is no improvement: tolstagnation still counts,
            # so a run whose objective only returns NaN ends instead of looping forever.
            self._since_improvement += 1
        else:
            self._update(u)
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
        self._nfev += n_evaluated
        kept = self._applied[-(APPLIED_KEPT - 1) :]
        self._applied = [*kept, (self._generation, None if u is None else u.copy())]
        self._generation += 1
        self._X = None
        self._noise_before_ask = None
        # Keep the told batch for reuse by a later ask (at most two: the caller's latest one
        # and one that is free again).
        self._spare = [*self._spare[-1:], X]

    # ------------------------------------------------------------------ helpers for updates
    def _noise_sum(self, u: FloatArray) -> FloatArray:
        """Return ``sum_k u_k z_k`` over the asked rows (z_k are the unscaled perturbations)."""
        Zh = self._Zh
        assert Zh is not None
        m = self._n_noise
        w = u[:m] - u[m:] if self._mirrored else u
        # One matrix-vector product in the precision of Zh (no converted copy of Zh).
        out: FloatArray = (w.astype(Zh.dtype, copy=False) @ Zh).astype(np.float64, copy=False)
        return out

    def _noise_sq_sum(self, w: FloatArray) -> FloatArray:
        """Return ``sum_j w_j Zh_j**2`` (element-wise squares) for weights `w` over the noise rows.

        Computed in column blocks, so no (rows, d) temporary is made; the blocks are fixed,
        so the result does not depend on the thread count. Use with :meth:`_even_weights`.
        """
        Zh = self._Zh
        assert Zh is not None
        m, d = Zh.shape
        out = np.empty(d)
        wz = w.astype(Zh.dtype, copy=False)
        step = max(1, _BLOCK // max(m, 1))

        def part(a: int) -> None:
            blk = Zh[:, a : a + step]
            out[a : a + step] = wz @ (blk * blk)

        starts = range(0, d, step)
        if self._threads > 1 and len(starts) > 1 and isinstance(self._noise, _noise.CounterNoise):
            list(self._noise.pool().map(part, starts))
        else:
            for a in starts:
                part(a)
        return out

    def _even_weights(self, u: FloatArray) -> FloatArray:
        """Weights w with ``sum_k u_k h(z_k) = sum_j w_j h(Zh_j)`` for every even function h."""
        m = self._n_noise
        return u[:m] + u[m:] if self._mirrored else u

    # ------------------------------------------------------------------ stopping and results
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
        self._crit = crit
        self._callback_stop = False
        with evaluator:
            while not self.stop():
                X = self.ask()
                n = self._popsize
                if crit.maxfev is not None:
                    n = min(n, crit.maxfev - self._nfev)
                f = np.full(self._popsize, np.nan)
                f[:n] = evaluator.evaluate(fun, X[:n], args, strategy=self)
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

    # ------------------------------------------------------------------ state
    def state_dict(self) -> JSON:
        """Return the complete state as JSON-serialisable plain data.

        ``type(self).from_state(state)`` rebuilds a strategy that continues bit-identically,
        also between ``ask`` and ``tell``.
        """
        return _state.dump(self)

    @classmethod
    def from_state(cls: type[S], state: object, *, shaping: object = None) -> S:
        """Rebuild a strategy from :meth:`state_dict` output.

        Raises
        ------
        ValueError
            If `state` is malformed or belongs to another strategy.
        """
        return _state.load(cls, state, shaping)

    def __getstate__(self) -> dict[str, object]:
        d = self.__dict__.copy()
        d["_t0"] = time.monotonic() - self._t0  # elapsed, restored relative to the new clock
        d["_spare"] = []  # buffers for reuse, not state
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        self.__dict__.update(d)
        self._t0 = time.monotonic() - float(d["_t0"])  # type: ignore[arg-type]
        if self._X is not None:
            self._X.flags.writeable = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dim={self._dim}, popsize={self._popsize}, "
            f"generation={self._generation}, nfev={self._nfev}, best_f={self._best_f:.6g})"
        )


CRITERIA = ("maxfev", "maxiter", "ftarget", "tolfun", "tolx", "tolstagnation", "timeout")


def check_option_names(criteria: dict[str, object]) -> None:
    """Raise TypeError naming the first keyword that is not a stopping criterion."""
    unknown = sorted(set(criteria) - set(CRITERIA) - {"dtype"})
    if unknown:
        raise TypeError(
            f"unknown option `{unknown[0]}` = {criteria[unknown[0]]!r}; the options are the "
            f"documented keywords and the stopping criteria {list(CRITERIA)}."
        )


#: how many applied updates a strategy keeps for the replicas of dask workers to replay.
APPLIED_KEPT = 4

#: elements per block of the fused ask pass and of the column blocks in _noise_sq_sum.
_BLOCK = 1 << 18


def _row_blocks(m: int, d: int) -> list[tuple[int, int]]:
    """Split ``m`` rows of length ``d`` into blocks of about `_BLOCK` elements (at least a row)."""
    step = max(1, _BLOCK // max(d, 1))
    return [(a, min(a + step, m)) for a in range(0, m, step)]


def _refs(seq: list[FloatArray], i: int) -> int:
    return sys.getrefcount(seq[i])


#: the reference count of an array that only a list holds, measured the way _unshared does.
_BASELINE_REFS = _refs([np.empty(0)], 0) if hasattr(sys, "getrefcount") else -1


def _unshared(seq: list[FloatArray], i: int) -> bool:
    """Return whether nothing but `seq` refers to ``seq[i]`` (no caller's variable, no view)."""
    return _BASELINE_REFS > 0 and _refs(seq, i) <= _BASELINE_REFS


def _check_dtype(dtype: object) -> type[np.floating]:
    """Return np.float64 (the default) or np.float32, or raise naming `dtype`."""
    try:
        name = np.dtype("float64" if dtype is None else dtype).name  # type: ignore[call-overload]
    except TypeError:
        name = ""
    if name not in ("float64", "float32"):
        raise ValueError(f"`dtype` must be 'float64' or 'float32', but got {dtype!r}.")
    return np.float64 if name == "float64" else np.float32


def _report_now(gen: int) -> bool:
    return gen < 10 or gen % (10 ** int(math.log10(gen))) == 0
