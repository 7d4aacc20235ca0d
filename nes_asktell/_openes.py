"""OpenES: fixed-sigma NES (Salimans et al. 2017), the 2017 seed's algorithm grown up.

Beside it, :func:`estimate_gradient`, the public Monte-Carlo gradient estimator, which is
OpenES's estimate with raw shaping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Unpack

import numpy as np

from . import _validate as v
from ._optimizers import optimizer_class
from ._strategy import Strategy
from ._tasks import as_value
from ._typing import (
    JSON,
    ArrayLike,
    BoundsLike,
    CommonOptions,
    FloatArray,
    LegacyRngLike,
    RngLike,
    ShapingLike,
)

#: the floor of the learning rate schedule (`learning_rate_decay`): the rate never reaches 0,
#: whatever `learning_rate_limit` says.
LEARNING_RATE_MIN = 1e-100


class OpenES(Strategy):
    r"""Fixed-sigma NES with mirrored sampling, fitness shaping and a gradient optimizer.

    Parameters
    ----------
    x0 : array_like of shape (d,)
        Initial mean.
    sigma0 : float or array_like of shape (d,)
        Standard deviation of the perturbations (fixed, or scheduled by `sigma_decay`).
    popsize : int, optional
        Candidates per generation; default ``4 + floor(3 ln d)``, rounded up to even with
        mirrored sampling (the default).
    bounds : optional
        Box constraints: None, ``(lower, upper)``, a sequence of ``(low, high)`` pairs, or
        ``scipy.optimize.Bounds``. Candidates are reflected into the box.
    rng : None, int, SeedSequence, Generator or RandomState
        Source of the noise (SPEC 7). None, an int, a SeedSequence or a Generator: an entropy
        is drawn once from ``np.random.default_rng(rng)`` (so ``rng=42`` and
        ``default_rng(42)`` give the same run) and the noise is counter-based (perturbation k
        of generation g can be rebuilt anywhere from the entropy); a legacy RandomState (the
        seed configuration) is drawn from in sequence.
    optimizer : {"adam", "sgd", "momentum"}
        How the gradient estimate moves the mean.
    learning_rate : float
        Step size of the optimizer.
    weight_decay : float
        L2 coefficient c: the optimizer receives ``g + c * mu``.
    sigma_decay, sigma_limit : float
        After each generation ``sigma <- max(sigma * sigma_decay, sigma_limit)``.
    learning_rate_decay, learning_rate_limit : float
        The same schedule for the learning rate.
    mirrored : bool
        Antithetic pairs ``(z, -z)``; default True.
    shaping : str or callable
        Fitness shaping, default ``"centered_ranks"``.
    **common
        ``threads``, ``dtype`` and the stopping thresholds `maxfev`, `maxiter`, `ftarget`,
        `tolfun`, `tolx`, `tolstagnation`, `tolconditioncov`, `tolflatfitness`, `timeout`
        (see :class:`Strategy`).

    Raises
    ------
    TypeError
        If an argument is of the wrong kind: `x0` or `sigma0` not real numbers, a `popsize`
        that is not an integer, a `mirrored` that is not a bool, an unknown keyword.
    ValueError
        If an argument has a bad value: `x0` empty or not finite; `sigma0` not positive and
        finite; a `popsize` below 2, above 2**18 or odd with mirrored sampling; an unknown
        `optimizer`; `bounds` with a low above its high; an unknown `shaping` name.

    Notes
    -----
    With perturbations :math:`z_k \sim N(0, I)`, candidates :math:`x_k = \mu + \sigma z_k` and
    utilities :math:`u_k` from the shaping (higher is better), the gradient of the objective is
    estimated by

    .. math:: g = -\frac{1}{n \sigma} \sum_k u_k z_k + c\,\mu

    and the mean moves by the optimizer's step, :math:`\mu \leftarrow \mu + \mathrm{step}(g)`
    (SGD: :math:`-\eta g`). With raw shaping (:math:`u_k = -f(x_k)`) the first term is the
    Monte-Carlo estimate of :math:`\nabla_\mu E[f(\mu + \sigma z)]` computed by
    :func:`nes_asktell.estimate_gradient`.

    The 2017 seed example is :meth:`seed_configuration`: ``OpenES(rs.randn(3), sigma0=0.1,
    popsize=50, optimizer="sgd", learning_rate=0.001, shaping="zscore", mirrored=False,
    rng=rs)`` with ``rs = np.random.RandomState(0)``.

    References
    ----------
    T. Salimans, J. Ho, X. Chen, S. Sidor, I. Sutskever. Evolution Strategies as a Scalable
    Alternative to Reinforcement Learning. arXiv:1703.03864, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import OpenES
    >>> es = OpenES(np.zeros(3), sigma0=0.1, rng=0)
    >>> X = es.ask()
    >>> es.tell(X, [float(np.sum((x - 1.0) ** 2)) for x in X])
    >>> es.generation, X.shape
    (1, (8, 3))
    """

    name = "openes"
    diagonal_rows = True
    allows_legacy_rng = True
    default_mirrored = True
    default_shaping = "centered_ranks"
    adapts_sigma = False

    def __init__(
        self,
        x0: ArrayLike,
        sigma0: float | FloatArray | Sequence[float],
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: LegacyRngLike = None,
        optimizer: str = "adam",
        learning_rate: float = 0.01,
        weight_decay: float = 0.0,
        sigma_decay: float = 1.0,
        sigma_limit: float = 0.0,
        learning_rate_decay: float = 1.0,
        learning_rate_limit: float = 0.0,
        mirrored: bool | None = None,
        shaping: ShapingLike | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        lr = v.positive_float("learning_rate", learning_rate)
        wd = v.positive_float("weight_decay", weight_decay, allow_zero=True)
        sdecay = v.fraction("sigma_decay", sigma_decay, closed=True, positive=True)
        slimit = v.positive_float("sigma_limit", sigma_limit, allow_zero=True)
        ldecay = v.fraction("learning_rate_decay", learning_rate_decay, closed=True, positive=True)
        llimit = v.positive_float("learning_rate_limit", learning_rate_limit, allow_zero=True)
        opt_cls = optimizer_class(optimizer)  # before the base class draws from `rng`
        super().__init__(
            x0,
            sigma0,
            popsize,
            bounds=bounds,
            rng=rng,
            mirrored=mirrored,
            shaping=shaping,
            **common,
        )
        self._opt = opt_cls(self._dim, lr)
        # the learning rate given (configuration); the optimizer's own follows the schedule
        self._lr0 = lr
        self._weight_decay = wd
        self._sigma_decay, self._sigma_limit = sdecay, slimit
        self._lr_decay, self._lr_limit = ldecay, llimit
        self._sigma: float | FloatArray = (
            self._sigma0.copy() if isinstance(self._sigma0, np.ndarray) else float(self._sigma0)
        )

    @classmethod
    def seed_configuration(cls, x0: ArrayLike | None = None, *, seed: int = 0) -> OpenES:
        """Return the 2017 seed example's configuration, its noise from ``RandomState(seed)``.

        Fixed-sigma NES: population 50, sigma 0.1, SGD with learning rate 0.001 on rewards
        standardised by ``(R - mean) / std``, independent samples, the noise drawn in sequence
        from a legacy RandomState. Without `x0` the initial mean is drawn first from that
        RandomState, as the example did (``np.random.seed(0); w = np.random.randn(3)``); with
        the defaults the run reproduces the trace the example printed, line for line.

        Examples
        --------
        >>> es = OpenES.seed_configuration()
        >>> es.popsize, es.sigma, es.mirrored, es.dim
        (50, 0.1, False, 3)
        """
        rs = np.random.RandomState(v.integer("seed", seed, minimum=0, maximum=2**32 - 1))
        return cls(
            rs.randn(3) if x0 is None else x0,
            sigma0=0.1,
            popsize=50,
            optimizer="sgd",
            learning_rate=0.001,
            shaping="zscore",
            mirrored=False,
            rng=rs,
        )

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate."""
        return self._opt.learning_rate

    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        np.multiply(Zh, self._sigma, out=out)

    def gradient(self, u: FloatArray) -> FloatArray:
        """Return the objective-gradient estimate ``-1/(n sigma) sum_k u_k z_k`` for the batch.

        `u` holds the utilities of the pending batch in ask order (higher is better): an
        array_like of `popsize` finite real numbers.

        Raises
        ------
        RuntimeError
            If no batch is pending.
        TypeError, ValueError
            If `u` is not `popsize` finite real numbers (a list is read as an array; bool,
            complex and string values, NaN and inf are refused).
        FloatingPointError
            If the estimate is beyond the float range (finite `u` of size near 1e308, or
            divided by a tiny sigma): it is never returned as inf or NaN.
        """
        if self._X is None or self._Zh is None:
            raise RuntimeError("gradient() needs the candidates of a pending ask().")
        u = v.as_vector("u", u, self._popsize)
        with np.errstate(over="ignore", invalid="ignore"):
            g = self._gradient(u, self._Zh)
        if not np.all(np.isfinite(g)):
            raise FloatingPointError(
                "the gradient estimate overflowed: -1/(n sigma) sum_k u_k z_k is beyond the "
                f"float range for the largest |u_k| = {float(np.max(np.abs(u))):.6g} and "
                f"sigma = {v.short(self._sigma_value())}."
            )
        return g

    def _gradient(self, u: FloatArray, Zh: FloatArray) -> FloatArray:
        return self._noise_sum(Zh, u) / (-self._popsize * self._sigma)

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        g = self._gradient(u, Zh)
        if self._weight_decay:
            g = g + self._weight_decay * self._mean
        step, opt = self._opt.step(g)
        if not opt.is_finite():  # Adam's second moments, say, while the step is still finite
            raise FloatingPointError("the optimizer's state overflowed to a non-finite value")
        # The schedules clamp at their limits and never reach 0: the learning rate stops at
        # LEARNING_RATE_MIN, sigma at SIGMA_MIN (also when the product underflows to 0, as
        # SIGMA_MIN * 1e-300 does).
        opt.learning_rate = max(
            opt.learning_rate * self._lr_decay, self._lr_limit, LEARNING_RATE_MIN
        )
        sigma = self._sigma * self._sigma_decay
        floor = max(self._sigma_limit, v.SIGMA_MIN)
        return {
            "_mean": self._mean + step,
            "_sigma": np.maximum(sigma, floor)
            if isinstance(sigma, np.ndarray)
            else max(sigma, floor),
            "_opt": opt,
        }

    def _stds(self) -> FloatArray:
        return np.broadcast_to(np.asarray(self._sigma, dtype=np.float64), (self._dim,)).copy()

    def _sigma_value(self) -> float | FloatArray:
        return self._sigma.copy() if isinstance(self._sigma, np.ndarray) else self._sigma

    def _options(self) -> JSON:
        return {
            "optimizer": self._opt.name,
            "learning_rate": self._lr0,
            "weight_decay": self._weight_decay,
            "sigma_decay": self._sigma_decay,
            "sigma_limit": self._sigma_limit,
            "learning_rate_decay": self._lr_decay,
            "learning_rate_limit": self._lr_limit,
        }

    def _algo_state(self) -> JSON:
        sigma = self._sigma.tolist() if isinstance(self._sigma, np.ndarray) else self._sigma
        return {
            "sigma": sigma,
            "optimizer": self._opt.state_dict(),
            "learning_rate": self._opt.learning_rate,
        }

    def _load_algo_state(self, state: JSON) -> None:
        sigma = v.step_sizes("sigma", state["sigma"], self._dim)
        opt = self._opt.from_state(state["optimizer"])
        # the current rate; a state written before it was kept here held it in the options
        # (so the options of a run with a schedule changed from one generation to the next)
        if "learning_rate" in state:
            opt.learning_rate = v.positive_float("learning_rate", state["learning_rate"])
        self._opt = opt
        self._sigma = sigma


def estimate_gradient(
    fun: Callable[[FloatArray], float],
    x: ArrayLike,
    sigma: float,
    popsize: int,
    *,
    mirrored: bool = True,
    rng: RngLike = None,
) -> FloatArray:
    r"""Estimate the gradient of ``E[fun(x + sigma z)]``, z ~ N(0, I), by Monte Carlo.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``.
    x : array_like of shape (d,)
        Where to estimate the gradient.
    sigma : float
        Standard deviation of the perturbations.
    popsize : int
        Number of evaluations n (even when `mirrored`).
    mirrored : bool
        Use antithetic pairs ``(z, -z)``.
    rng : None, int, SeedSequence or Generator
        Noise source, as for the strategies. With the same integer seed the perturbations equal
        those of generation 0 of ``OpenES(x, sigma, popsize, rng=seed, mirrored=mirrored)``.

    Returns
    -------
    g : ndarray of shape (d,)
        :math:`\frac{1}{n\sigma}\sum_k f(x + \sigma z_k) z_k`, or mirrored with
        :math:`m = n/2` pairs :math:`\frac{1}{2m\sigma}\sum_k (f(x + \sigma z_k) -
        f(x - \sigma z_k)) z_k`.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or `fun` returns something that is not a real
        number (a string, bool, None or complex number is not).
    ValueError
        If an argument has an invalid value, or `fun` returns a non-finite value.
    FloatingPointError
        If the estimate is beyond the float range (values of `fun` near 1e308, or a tiny
        `sigma`): it is never returned as inf or NaN.

    Notes
    -----
    For a quadratic :math:`f` with gradient :math:`g` at `x`, the mirrored estimate equals
    :math:`(\frac1m \sum_k z_k z_k^T)\, g` exactly, so its error has covariance
    :math:`(|g|^2 I + g g^T)/m`.

    Examples
    --------
    >>> import numpy as np
    >>> g = estimate_gradient(lambda x: float(x @ x), np.ones(2), 0.1, 2000, rng=0)
    >>> bool(np.allclose(g, [2.0, 2.0], atol=0.5))
    True
    """
    if not callable(fun):
        raise TypeError(f"`fun` must be callable, but got {v.short(fun)}.")
    # Checked here so that the messages name this function's arguments (not OpenES's).
    x = v.as_vector("x", x)
    sigma = v.step_size("sigma", sigma)  # (OpenES named its range check `sigma0`)
    es = OpenES(x, sigma, popsize, mirrored=mirrored, shaping="raw", rng=rng)
    X = es.ask()
    f = np.empty(X.shape[0])
    for k, row in enumerate(X):
        y = fun(row.copy())
        try:
            f[k] = as_value(y, fun)
        except TypeError as exc:
            raise TypeError(f"{str(exc).rstrip('.')} at the perturbed point {k}.") from None
    if not np.all(np.isfinite(f)):
        k = int(np.flatnonzero(~np.isfinite(f))[0])
        raise ValueError(f"`fun` returned {f[k]} at the perturbed point {k}; it must be finite.")
    try:
        return es.gradient(-f)
    except FloatingPointError:
        raise FloatingPointError(
            "the gradient estimate overflowed: 1/(n sigma) sum_k f(x + sigma z_k) z_k is "
            f"beyond the float range for the largest |fun| = {float(np.max(np.abs(f))):.6g} "
            f"and `sigma` = {sigma!r}."
        ) from None
