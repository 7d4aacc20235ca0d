"""SNES: separable natural evolution strategies (one step size per coordinate)."""

from __future__ import annotations

import math
from typing import Unpack

import numpy as np

from . import _validate as v
from ._csa import StepSizePath, odd_weights
from ._strategy import Strategy, check_not_one_pair, floored_divisors
from ._typing import JSON, ArrayLike, BoundsLike, CommonOptions, FloatArray, RngLike, ShapingLike


def paper_eta_sigma(dim: int) -> float:
    """Return SNES's learning rate ``(3 + ln d) / (5 sqrt d)`` (Wierstra et al. 2014, Table 1)."""
    return (3.0 + math.log(dim)) / (5.0 * math.sqrt(dim))


class SNES(Strategy):
    r"""Separable NES: a Gaussian search distribution with one step size per coordinate.

    Parameters
    ----------
    x0 : array_like of shape (d,)
        Initial mean.
    sigma0 : float or array_like of shape (d,)
        Initial step size(s).
    popsize : int, optional
        Candidates per generation; default ``4 + floor(3 ln d)``, rounded up to even when
        mirrored. Without `csa`, at least 4 when mirrored: from a single pair ``(z, -z)`` the
        NES step-size update learns nothing (its terms are even in z and the two utilities
        sum to 0), so 2 is rejected.
    bounds : optional
        Box constraints: None, ``(lower, upper)``, a sequence of ``(low, high)`` pairs, or
        ``scipy.optimize.Bounds``. Candidates are reflected into the box.
    rng : None, int, SeedSequence or Generator
        Source of the noise (see :class:`OpenES`).
    eta_mu : float
        Learning rate of the mean; default 1.
    eta_sigma : float, optional
        Learning rate of the step sizes; default ``(3 + ln d) / (5 sqrt d)``.

        Both rates take any positive finite number: as for :class:`XNES`, they multiply
        utilities whose scale is the fitness's own with ``shaping="raw"`` or a callable, so no
        bound on a rate alone holds for every run; a rate too large for its utilities makes
        :meth:`tell` raise ``FloatingPointError``, changing nothing.
    csa : bool
        Multiply all step sizes by the cumulative step-size adaptation factor (an evolution
        path) after the NES update; default True.
    mirrored : bool
        Antithetic pairs ``(s, -s)``; default True (`popsize` must then be even). Measured
        on BBOB as fast or faster than independent samples, and it halves the noise drawn.
    shaping : str or callable
        Fitness shaping, default ``"nes"`` (the rank-based NES utilities).
    **common
        ``threads``, ``dtype`` and the stopping thresholds `maxfev`, `maxiter`, `ftarget`,
        `tolfun`, `tolx`, `tolstagnation`, `tolconditioncov`, `tolflatfitness`, `timeout`
        (see :class:`Strategy`).

    Raises
    ------
    TypeError
        If an argument is of the wrong kind: `x0` or `sigma0` not real numbers, a `popsize`
        that is not an integer, a `mirrored` that is not a bool, an unknown keyword, a legacy
        RandomState as `rng`.
    ValueError
        If an argument has a bad value: `x0` empty or not finite; `sigma0` not positive and
        finite; a `popsize` below 2, above 2**18 or odd with mirrored sampling, 2 with mirrored
        sampling and without `csa`; `bounds` with a low above its high; an unknown `shaping`
        name.

    Notes
    -----
    Candidates are :math:`x_k = \mu + \sigma \odot s_k` with :math:`s_k \sim N(0, I)`. With
    utilities :math:`u_k` (higher is better), Wierstra et al. (2014, Algorithm 6) update

    .. math::

        \mu \leftarrow \mu + \eta_\mu \sigma \odot \sum_k u_k s_k, \quad
        \sigma \leftarrow \sigma \odot \exp\Big(\frac{\eta_\sigma}{2}
        \sum_k u_k (s_k \odot s_k - 1)\Big).

    With `csa`, every :math:`\sigma_i` is also multiplied by the cumulative step-size
    adaptation factor of an evolution path of the mean steps (see the SNES/XNES
    documentation page, which also has the measurements behind the defaults).

    References
    ----------
    T. Schaul, T. Glasmachers, J. Schmidhuber. High Dimensions and Heavy Tails for Natural
    Evolution Strategies. GECCO 2011.

    D. Wierstra, T. Schaul, T. Glasmachers, Y. Sun, J. Peters, J. Schmidhuber. Natural
    Evolution Strategies. JMLR 15:949-980, 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import SNES
    >>> es = SNES(np.zeros(3), sigma0=1.0, rng=0, ftarget=1e-8)
    >>> res = es.optimize(lambda x: float(np.sum((x - [0.5, 0.1, -0.3]) ** 2)))
    >>> bool(res.fun < 1e-8)
    True
    """

    name = "snes"
    diagonal_rows = True
    default_mirrored = True
    default_shaping = "nes"

    def __init__(
        self,
        x0: ArrayLike,
        sigma0: float | ArrayLike,
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: RngLike = None,
        eta_mu: float = 1.0,
        eta_sigma: float | None = None,
        csa: bool = True,
        mirrored: bool | None = None,
        shaping: ShapingLike | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        e_mu = v.positive_float("eta_mu", eta_mu)
        e_sigma = None if eta_sigma is None else v.positive_float("eta_sigma", eta_sigma)
        v.flag("csa", csa)
        if not csa:  # CSA's path is odd in z: it adapts sigma from one pair
            check_not_one_pair(popsize, mirrored, self.default_mirrored, "SNES without CSA")
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
        self._eta_mu = e_mu
        self._eta_sigma = paper_eta_sigma(self._dim) if e_sigma is None else e_sigma
        self._sigma: FloatArray = np.broadcast_to(
            np.asarray(self._sigma0, dtype=np.float64), (self._dim,)
        ).copy()
        self._path = StepSizePath(self._dim, self._popsize) if csa else None
        self._p: FloatArray = np.zeros(self._dim)  # the evolution path (with csa)

    @property
    def eta_sigma(self) -> float:
        """The learning rate of the step sizes."""
        return self._eta_sigma

    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        np.multiply(Zh, self._sigma, out=out)

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        w = self._even_weights(u)
        # Wierstra 2014, Algorithm 6 (SNES): the natural gradients in local coordinates.
        G_mu = self._noise_sum(Zh, u)
        G_sigma = self._noise_sq_sum(Zh, w) - float(w.sum())
        log_step = self._eta_sigma / 2.0 * G_sigma
        p = self._p
        if self._path is not None:
            a = odd_weights(u, self._mirrored)
            p, csa_step = self._path.step(p, G_mu, float(np.sqrt(a @ a)))
            log_step += csa_step
        return {
            "_mean": self._mean + self._eta_mu * self._sigma * G_mu,
            "_sigma": self._sigma * np.exp(log_step),
            "_p": p,
        }

    def _stds(self) -> FloatArray:
        return self._sigma.copy()

    def _shrink_coordinates(self, excess: FloatArray) -> dict[str, object]:
        # Each coordinate's own step size, down to the box's width there, but not below
        # 1 / SHRINK_RATIO of the largest: a box 1e-13 wide beside boxes 10 wide made the
        # ratio of variances 1e28 at the first tell, and `conditioncov` (1e14) ended every
        # run there, far from the optimum (see Strategy._commit).
        fixed = None if self._box is None else self._box.fixed
        by = floored_divisors(self._sigma, np.maximum(excess, 1.0), 1.0, fixed)
        return {"_sigma": np.maximum(self._sigma / by, v.SIGMA_MIN)}

    def _sigma_value(self) -> FloatArray:
        return self._sigma.copy()

    def _options(self) -> JSON:
        return {
            "eta_mu": self._eta_mu,
            "eta_sigma": self._eta_sigma,
            "csa": self._path is not None,
        }

    def _algo_state(self) -> JSON:
        return {
            "sigma": self._sigma.tolist(),
            "path": None if self._path is None else self._p.tolist(),
        }

    def _load_algo_state(self, state: JSON) -> None:
        sigma = v.step_sizes("sigma", v.as_vector("sigma", state["sigma"], self._dim), self._dim)
        if not isinstance(sigma, np.ndarray):
            raise ValueError(f"`sigma` must hold {self._dim} step sizes")
        if self._path is not None:
            self._p = v.as_vector("path", state["path"], self._dim)
        self._sigma = sigma
