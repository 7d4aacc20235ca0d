"""The strategy base class: the ask/tell protocol shared by every NES variant.

The record of a run, ``stop``, ``result`` and ``optimize`` come from the mixin ``_run.RunLoop``;
the row blocks, buffers and noise sums of a batch are in ``_batch``, the checks of the shared
options in ``_options``. The names imported ``as`` themselves are re-exported: other modules
import them from here.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar, TypeVar

import numpy as np

from . import _batch, _noise, _shaping, _state, _stopping
from . import _validate as v
from ._bounds import Box, make_box
from ._options import CRITERIA as CRITERIA
from ._options import check_dtype, check_popsize
from ._options import check_option_names as check_option_names
from ._options import default_popsize as default_popsize
from ._run import RunLoop
from ._run import make_result as make_result
from ._typing import JSON, FloatArray

S = TypeVar("S", bound="Strategy")


class NESWarning(UserWarning):
    """Warning category for recoverable events during a run (e.g. a skipped update)."""


class Strategy(RunLoop, ABC):
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
        lam = check_popsize(popsize, dim, self._mirrored)
        self._threads = v.integer("threads", threads, minimum=1)
        self._dtype = check_dtype(dtype)
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
        self._start_record(mean.copy() if self._box is None else self._box.clip(mean))
        # The pending batch: the noise of the latest ask and its candidates.
        self._Zh: FloatArray | None = None
        self._X: FloatArray | None = None
        self._noise_before_ask: JSON | None = None
        # Batches told and possibly free for reuse (see _batch.take_buffer).
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
    def mirrored(self) -> bool:
        """Whether perturbations come in antithetic pairs (z, -z)."""
        return self._mirrored

    @property
    def bounds(self) -> tuple[FloatArray, FloatArray] | None:
        """The (lower, upper) box, or None."""
        return None if self._box is None else (self._box.lower.copy(), self._box.upper.copy())

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
        # A told batch nothing else holds, or new memory (see _batch.take_buffer).
        X = _batch.take_buffer(self._spare, (self._popsize, d), self._dtype)
        noise, mean, box = self._noise, self._mean, self._box
        _batch.fill(
            X, Zh, gen, noise, self._perturb_into, mean, box, self._mirrored, self._threads
        )
        X.flags.writeable = False
        self._X = X
        self._noise_before_ask = snapshot
        return X

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
        perm = _batch.match_rows(self._X, solutions)
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
        else:
            self._update(u)
        self._record(f, finite, X)
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
        assert self._Zh is not None
        return _batch.noise_sum(self._Zh, u, self._mirrored)

    def _noise_sq_sum(self, w: FloatArray) -> FloatArray:
        """Return ``sum_j w_j Zh_j**2`` (element-wise squares) for weights `w` over the noise rows.

        Computed in column blocks, so no (rows, d) temporary is made; the blocks are fixed,
        so the result does not depend on the thread count. Use with :meth:`_even_weights`.
        """
        assert self._Zh is not None
        return _batch.noise_sq_sum(self._Zh, w, self._noise, self._threads)

    def _even_weights(self, u: FloatArray) -> FloatArray:
        """Weights w with ``sum_k u_k h(z_k) = sum_j w_j h(Zh_j)`` for every even function h."""
        m = self._n_noise
        return u[:m] + u[m:] if self._mirrored else u

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


#: how many applied updates a strategy keeps for the replicas of dask workers to replay.
APPLIED_KEPT = 4
