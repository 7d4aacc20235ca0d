"""Uncertainty handling: detect rank changes under re-evaluation and raise sigma (UH-ES).

:class:`NoiseHandler` wraps any strategy. Each generation it asks for a few candidates twice,
measures how much their re-evaluation changes the ranking (Hansen et al. 2009), and when the
smoothed measure says the noise dominates the ranking it raises the step size, which restores
the signal-to-noise ratio of the ranking.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeResult

from . import _shaping, _stopping
from . import _validate as v
from ._loop import _RunWarnings
from ._strategy import STATE_VERSION, Strategy
from ._tasks import as_value
from ._typing import JSON, ArrayLike, FloatArray, ShapingLike


def rank_change(f_old: FloatArray, f_new: FloatArray, theta: float) -> float:
    r"""Return the uncertainty measure :math:`s` of one generation (Hansen et al. 2009, eq. 3).

    `f_old` holds the :math:`\lambda` fitness values of the generation, of which the first
    :math:`\lambda_r` were evaluated again, giving `f_new`. In the joint ranking of the
    :math:`L = \lambda + \lambda_r` values (1 = best; equal values by candidate, a re-evaluation
    right after its candidate's first value),

    .. math::

        s = \frac{1}{\lambda_r} \sum_{i=1}^{\lambda_r} \Big( 2 |\Delta_i|
            - \Delta^\theta_{lim}(R^{new}_i - [f^{new}_i > f^{old}_i])
            - \Delta^\theta_{lim}(R^{old}_i - [f^{old}_i > f^{new}_i]) \Big),

    with :math:`\Delta_i = R^{new}_i - R^{old}_i - \operatorname{sign}(R^{new}_i -
    R^{old}_i)` the rank change of candidate :math:`i` (its own other value not counted) and
    :math:`\Delta^\theta_{lim}(R)` the :math:`50\theta`-th percentile of
    :math:`\{|1 - R|, \ldots, |L - 1 - R|\}`, the rank changes to expect when the value at
    rank :math:`R` moved to a uniformly random place. :math:`s > 0` says the ranking is
    dominated by noise. Without noise (``f_new == f_old``) every :math:`\Delta_i = 0`, so
    :math:`s \le 0`.

    Examples
    --------
    >>> f = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    >>> bool(rank_change(f, f[:2].copy(), 0.2) <= 0)
    True
    """
    lam_r = f_new.size
    joint = np.concatenate([f_old, f_new])
    key = np.where(np.isfinite(joint), joint, np.inf)
    # ties: by candidate, and a re-evaluation right after its own first evaluation
    cand = np.concatenate([np.arange(f_old.size), np.arange(lam_r)])
    second = np.concatenate([np.zeros(f_old.size), np.ones(lam_r)])
    order = np.lexsort((second, cand, key))
    rank = np.empty(joint.size, dtype=np.int64)
    rank[order] = np.arange(1, joint.size + 1)
    L = joint.size
    r_old, r_new = rank[:lam_r], rank[f_old.size :]
    diff = r_new - r_old
    delta = diff - np.sign(diff)
    f_o, f_n = key[:lam_r], key[f_old.size :]
    s = (
        2.0 * np.abs(delta)
        - distance_percentile(r_new - (f_n > f_o), L, 50.0 * theta)
        - distance_percentile(r_old - (f_o > f_n), L, 50.0 * theta)
    )
    return float(np.mean(s))


def distance_percentile(R: npt.NDArray[np.int64], L: int, q: float) -> FloatArray:
    """Return, for each rank in `R`, the `q`-th percentile of ``{|k - R| : k = 1, ..., L - 1}``.

    What ``np.percentile(np.abs(ks[None, :] - R[:, None]), q, axis=1)`` returns for ``ks =
    arange(1, L)`` (linear interpolation), without the ``len(R) x (L - 1)`` matrix, which took
    gigabytes at populations of a few thousand: the distances are integers, and the number of
    them at most ``v`` is ``min(L - 1, R + v) - max(1, R - v) + 1``, so each order statistic
    is found by a bisection on ``v``.
    """
    n = L - 1
    pos = q / 100.0 * (n - 1)
    j = min(math.floor(pos), n - 1)
    t = pos - j
    a = _order_statistic(R, j, L)
    b = _order_statistic(R, min(j + 1, n - 1), L)
    diff = b - a
    out: FloatArray = np.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)
    return out


def _order_statistic(R: npt.NDArray[np.int64], j: int, L: int) -> FloatArray:
    """Return the `j`-th smallest (0-based) of ``{|k - R| : k = 1, ..., L - 1}`` for each R."""
    R = np.asarray(R, dtype=np.int64)
    lo = np.zeros(R.shape, dtype=np.int64)  # the answer v is the least with count(v) > j
    hi = np.full(R.shape, L, dtype=np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        count = np.minimum(L - 1, R + mid) - np.maximum(1, R - mid) + 1
        above = count > j
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid + 1)
    return lo.astype(np.float64)


def reevaluation_count(r: float, lam: int) -> int:
    r"""Return :math:`\lambda_r = \lceil r \lambda \rceil`, at least 1 and at most `lam`.

    A product that rounding put just past an integer is that integer: ``0.07 * 100`` is
    ``7.000000000000001`` in floating point, and 7 of 100 candidates are re-evaluated, not 8.
    """
    x = r * lam
    k = round(x)
    n = k if abs(x - k) <= 2.0 * math.ulp(k) else math.ceil(x)
    return min(max(1, n), lam)


class NoiseHandler:
    r"""Uncertainty handling around any strategy: re-evaluate, measure, raise sigma.

    Parameters
    ----------
    strategy : Strategy
        The strategy to drive (its step size is raised with :meth:`Strategy.scale_sigma`).
    reevaluations : float, optional
        The fraction :math:`r_\lambda` in [0, 1] of the population evaluated twice each
        generation (1: every candidate); default :math:`\max(0.1, 2/\lambda)`. At least one
        candidate is.
    theta : float
        The percentile parameter :math:`\theta` in [0, 1] of the rank-change limit (default
        0.2; 1 takes the median).
    c_s : float
        The smoothing of the measure, in (0, 1] (default 0.3; 1 takes each generation's
        measure as it is, and 0, which would never move the smoothed measure from 0, is
        rejected).
    alpha_sigma : float, optional
        The factor applied to sigma when the smoothed measure is positive; default
        :math:`1 + 2 / (d + 10)`.

    Raises
    ------
    TypeError
        If `strategy` is not a :class:`~nes_asktell.Strategy` or an option is not a number.
    ValueError
        If an option is out of its range: `reevaluations` and `theta` in [0, 1], `c_s` in
        (0, 1], `alpha_sigma` at least 1.

    Notes
    -----
    Protocol: :meth:`ask` returns the :math:`\lambda` candidates followed by the
    :math:`\lambda_r` first ones again; :meth:`tell` takes the fitness of all of those rows
    (evaluated independently: the noise of the second evaluation must be fresh). The strategy
    is told the first :math:`\lambda` values. With :math:`s` of :func:`rank_change`,
    :math:`\bar s \leftarrow (1 - c_s) \bar s + c_s s`, and if :math:`\bar s > 0` every step
    size is multiplied by :math:`\alpha_\sigma` (Hansen et al. 2009, Section III).
    Re-evaluations count in :attr:`nfev`. A candidate whose first value or re-evaluation is
    not finite (a failed evaluation, which says nothing about the noise) is left out of the
    measure, which is then taken over the other pairs; a generation without a finite pair
    measures nothing, and leaves :math:`\bar s` and sigma as they are.

    References
    ----------
    N. Hansen, A. S. P. Niederberger, L. Guzzella, P. Koumoutsakos. A Method for Handling
    Uncertainty in Evolutionary Optimization With an Application to Feedback Control of
    Combustion. IEEE Transactions on Evolutionary Computation 13(1):180-197, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import XNES, NoiseHandler
    >>> nh = NoiseHandler(XNES(np.zeros(3), 1.0, rng=0))
    >>> X = nh.ask()
    >>> X.shape[0] == nh.strategy.popsize + nh.reevaluations
    True
    >>> nh.tell(X, [float(x @ x) for x in X])
    >>> nh.raises
    0
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        reevaluations: float | None = None,
        theta: float = 0.2,
        c_s: float = 0.3,
        alpha_sigma: float | None = None,
    ) -> None:
        if not isinstance(strategy, Strategy):
            raise TypeError(f"`strategy` must be a Strategy, but got {v.short(strategy)}.")
        lam = strategy.popsize
        r = (
            max(0.1, 2.0 / lam)
            if reevaluations is None
            else v.fraction("reevaluations", reevaluations, closed=True)
        )
        th = v.fraction("theta", theta, closed=True)
        cs = v.fraction("c_s", c_s, closed=True, positive=True)
        a = (
            1.0 + 2.0 / (strategy.dim + 10.0)
            if alpha_sigma is None
            else v.positive_float("alpha_sigma", alpha_sigma)
        )
        if a < 1.0:
            raise ValueError(f"`alpha_sigma` must be a number >= 1, but got {a}.")
        self._es = strategy
        self._n_reev = reevaluation_count(r, lam)
        self._theta, self._c_s, self._alpha = th, cs, a
        self._s_bar = 0.0
        self._s = 0.0
        self._raises = 0
        self._nfev_extra = 0

    @property
    def strategy(self) -> Strategy:
        """The strategy driven."""
        return self._es

    @property
    def reevaluations(self) -> int:
        r"""The number :math:`\lambda_r` of candidates evaluated twice per generation."""
        return self._n_reev

    @property
    def measure(self) -> float:
        r"""The smoothed uncertainty measure :math:`\bar s`."""
        return self._s_bar

    @property
    def last_measure(self) -> float:
        """The measure :math:`s` of the latest generation that measured one (before smoothing)."""
        return self._s

    @property
    def raises(self) -> int:
        """How many generations raised sigma.

        Those in which the smoothed measure was positive and the raise widened the search
        distribution along at least one coordinate; a raise that the limits of
        :meth:`Strategy.scale_sigma` held back entirely (a spread already at the box's
        widths, a step size at its largest) is not counted.
        """
        return self._raises

    @property
    def nfev(self) -> int:
        """Evaluations, re-evaluations included."""
        return self._es.nfev + self._nfev_extra

    def ask(self) -> FloatArray:
        """Return the candidates, then the first :attr:`reevaluations` of them again.

        Read-only, as the strategy's own ``ask`` returns them (copy the array to change it):
        an objective that changed its point in place (a projection with ``out=x``, say) made
        the rows told differ from the candidates, and ``tell`` refused `solutions` the caller
        of :meth:`optimize` never passed.
        """
        X = self._es.ask()
        out = np.concatenate([X, X[: self._n_reev]])
        out.flags.writeable = False
        return out

    def tell(self, solutions: ArrayLike, fitness: ArrayLike) -> None:
        """Tell the rows of :meth:`ask` (in its order) and their fitness; raise sigma if noisy."""
        lam = self._es.popsize
        f = v.fitness_vector(fitness, lam + self._n_reev)
        X = v.told_array(solutions, np.float64, f"the {lam + self._n_reev} rows of ask()")
        if X.shape != (lam + self._n_reev, self._es.dim):
            raise ValueError(
                f"`solutions` must be the {lam + self._n_reev} rows of ask(), but got shape "
                f"{X.shape}."
            )
        if not np.array_equal(X[lam:], X[: self._n_reev]):
            raise ValueError(
                f"`solutions` must repeat the first {self._n_reev} rows of ask() at its end, "
                f"but its last {self._n_reev} rows differ from them."
            )
        # A pair with a non-finite value (a failed evaluation) says nothing about the noise:
        # it is left out of the measure, its candidate's first value ranked with the others.
        f_old, f_new = f[:lam], f[lam:]
        pair = np.isfinite(f_old[: self._n_reev]) & np.isfinite(f_new)
        s = None
        if pair.any():
            first = np.concatenate(
                [np.flatnonzero(pair), np.flatnonzero(~pair), np.arange(self._n_reev, lam)]
            )
            s = rank_change(f_old[first], f_new[pair], self._theta)
        self._es.tell(X[:lam], f[:lam])
        self._nfev_extra += self._n_reev
        if s is None:  # no finite pair: nothing measured, the measure and sigma stay
            return
        self._s = s
        self._s_bar = (1.0 - self._c_s) * self._s_bar + self._c_s * s
        if self._s_bar > 0.0:
            before = self._es.stds
            self._es.scale_sigma(self._alpha)
            # a raise the limits held back entirely (the box's widths, sigma's range) is none
            self._raises += bool(np.any(self._es.stds > before))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> JSON:
        """Return the complete state, the strategy's included, as JSON-serialisable plain data.

        :meth:`from_state` rebuilds it; a resumed run is bit-identical to one never stopped.
        """
        return {
            "strategy": "noise_handler",
            "version": STATE_VERSION,
            "reevaluations": self._n_reev,
            "theta": self._theta,
            "c_s": self._c_s,
            "alpha_sigma": self._alpha,
            "measure": self._s_bar,
            "last_measure": self._s,
            "raises": self._raises,
            "nfev_extra": self._nfev_extra,
            "run": self._es.state_dict(),
        }

    @classmethod
    def from_state(
        cls,
        state: JSON,
        *,
        shaping: ShapingLike | None = None,
        strategy: type[Strategy] | None = None,
    ) -> NoiseHandler:
        """Rebuild a NoiseHandler (and its strategy) from :meth:`state_dict` output.

        Parameters
        ----------
        state : dict
            What :meth:`state_dict` returned (after a JSON round trip, if you like).
        shaping : str or callable, optional
            A fitness shaping for the strategy instead of the one the state names.
        strategy : Strategy subclass, optional
            The class of the strategy: the state names it by its registered name, so a
            subclass without a ``name`` of its own is stored under its parent's; pass it here
            to rebuild the strategy as that subclass (``strategy.from_state`` reads it).
            Default: the class the state names.

        Raises
        ------
        TypeError
            If `strategy` is not a Strategy subclass, or `shaping` neither a name nor a
            callable.
        ValueError
            If `state` is malformed, or its strategy's state is not one `strategy` reads, or
            `shaping` names no shaping.
        """
        if strategy is not None and not (
            isinstance(strategy, type) and issubclass(strategy, Strategy)
        ):
            raise TypeError(
                f"`strategy` must be a Strategy subclass or None, but got {v.short(strategy)}."
            )
        if shaping is not None:
            _shaping.resolve(shaping)  # a bad argument is the caller's, not the state's
        state = v.saved_state(state, "noise_handler", STATE_VERSION, "NoiseHandler.state_dict()")
        try:
            run = state["run"]
            es = (strategy or Strategy).from_state(run, shaping=shaping)  # type: ignore[arg-type]
            stored = {k: state[k] for k in ("theta", "c_s", "alpha_sigma")}
            for k, x in stored.items():
                if x is None:  # (the constructor's default: another run than the one saved)
                    raise ValueError(f"`{k}` must be a number, but got None.")
            obj = cls(es, **stored)  # type: ignore[arg-type]
            n_reev = v.integer(
                "reevaluations", state["reevaluations"], minimum=1, maximum=es.popsize
            )
            s_bar = v.real("measure", state["measure"])
            s = v.real("last_measure", state["last_measure"])
            raises = v.integer("raises", state["raises"], minimum=0, maximum=es.generation)
            extra = v.integer(
                "nfev_extra", state["nfev_extra"], minimum=0, maximum=n_reev * es.generation
            )
        except KeyError as exc:
            raise ValueError(f"`state` is malformed: the key {exc} is missing.") from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`state` is malformed: {exc}") from exc
        obj._n_reev, obj._s_bar, obj._s = n_reev, s_bar, s
        obj._raises, obj._nfev_extra = raises, extra
        return obj

    def __copy__(self) -> NoiseHandler:
        # A shallow copy would share the strategy, which the handler's tell changes in place
        # (the copy told the original's batch): it gets a copy of its own, so that the two go
        # on independently, as a strategy's copy (and IPOP's) does
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._es = copy.copy(self._es)
        return twin

    def stop(self) -> dict[str, float]:
        """Return the strategy's stopping criteria that hold.

        The strategy's ``maxfev`` counts the re-evaluations too, as :attr:`nfev` does.
        """
        out = self._es.stop()
        own = self._es.criteria.get("maxfev")
        if isinstance(own, int) and self.nfev >= own:
            out.setdefault("maxfev", own)
        return out

    @property
    def result(self) -> OptimizeResult:
        """The outcome so far, as the strategy's ``result`` but counted as this handler counts.

        ``nfev`` includes the re-evaluations (:attr:`nfev`), ``stop`` holds the criteria of
        :meth:`stop` (the strategy's ``maxfev`` reached with the re-evaluations, too), with the
        status and message they imply, and ``raises`` is :attr:`raises`: in a hand-written
        ask/tell loop, the result :meth:`optimize` would return. (The strategy's own
        ``result`` counts its candidates only, and says a run ended by :meth:`stop` is still
        running.)
        """
        res = self._es.result
        stop = self.stop()
        if stop.keys() - res.stop.keys():
            res = _stopping.with_stop(res, stop)
        res["nfev"] = self.nfev
        res["raises"] = self._raises
        return res

    def optimize(
        self,
        fun: Callable[..., float],
        *,
        args: Sequence[object] = (),
        maxfev: int | float | None = None,
    ) -> OptimizeResult:
        """Run ask/evaluate/tell serially until :meth:`stop` holds or `maxfev` is spent.

        `fun` must return a real number (int, float, a numpy real scalar or a one-element
        real array). Only whole generations are evaluated: the run ends before one that
        would exceed `maxfev` (None or ``float("inf")``: no limit) or the strategy's own
        ``maxfev``, both counting the re-evaluations as :attr:`nfev` does, and the result then
        reports ``maxfev`` as its stopping reason.
        """
        if not callable(fun):
            raise TypeError(f"`fun` must be callable, but got {v.short(fun)}.")
        extra = v.extra_args(args)
        own = self._es.criteria.get("maxfev")
        limits = [n for n in (v.budget("maxfev", maxfev), own) if isinstance(n, int)]
        limit = min(limits) if limits else None
        spent: int | None = None  # the budget, once it ends the run
        # the library's warnings once per kind at the caller's line, and a summary (as the
        # strategies' own optimize shows them: see docs/watching.rst)
        counted = _RunWarnings()
        while not self.stop():
            if limit is not None and self.nfev + self._es.popsize + self._n_reev > limit:
                spent = limit
                break
            with counted:
                X = self.ask()
                self.tell(X, [as_value(fun(x, *extra), fun) for x in X])
            counted.show_new()
        counted.summarise()
        res = self.result  # (the strategy's maxfev, reached with re-evaluations, included)
        if spent is not None:
            res = _stopping.with_stop(res, {"maxfev": spent})
        return res
