"""XNES: exponential natural evolution strategies with a full covariance matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Unpack

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from . import _validate as v
from ._csa import StepSizePath, odd_weights
from ._shaping import active_weights, average_ranks, positive_mueff
from ._strategy import Strategy, check_not_one_pair
from ._typing import JSON, ArrayLike, BoundsLike, CommonOptions, FloatArray, RngLike, ShapingLike

#: Upper limit of eta_sigma under adaptation sampling. Wierstra et al. (2014, Algorithm 4) use
#: 1; 0.5 converges prematurely less often (BBOB f8) and is faster on ill-conditioned problems,
#: for up to 20% more evaluations on the sphere (see the documentation page for the figures).
ETA_SIGMA_MAX = 0.5
#: the largest log-step of sigma (in absolute value) that ``from_state`` accepts as
#: ``last_step``: ln(SIGMA_MAX / SIGMA_MIN), beyond which no step within sigma's range goes;
#: adaptation sampling takes ``exp(-last_step)``, which overflows beyond 709.
LAST_STEP_MAX = math.log(v.SIGMA_MAX / v.SIGMA_MIN)


def paper_eta_B(dim: int) -> float:
    """Return the learning rate ``(9 + 3 ln d) / (5 d sqrt d)`` (Wierstra et al. 2014, Table 1)."""
    return (9.0 + 3.0 * math.log(dim)) / (5.0 * dim * math.sqrt(dim))


def rank_one_rate(dim: int, mueff: float) -> float:
    r"""Return CMA-ES's rank-one rate :math:`c_1 = 2 / ((d + 1.3)^2 + \mu_{\mathrm{eff}})`.

    Hansen (2016), eq. 57 with :math:`\alpha_{\mathrm{cov}} = 2`; `mueff` is the selection mass
    of the positive weights (:func:`~nes_asktell._shaping.positive_mueff`).
    """
    return 2.0 / ((dim + 1.3) ** 2 + mueff)


def rank_mu_rate(dim: int, popsize: int) -> float:
    r"""Return CMA-ES's rank-mu learning rate :math:`c_\mu` for `popsize` (Hansen 2016, Table 1).

    With :math:`\mu_{\mathrm{eff}} = 1 / \sum_k w_k^2` for the positive part :math:`w_k` of the
    NES utilities (as for the evolution paths), :math:`\alpha_{\mathrm{cov}} = 2` and
    :math:`c_1 = 2 / ((d + 1.3)^2 + \mu_{\mathrm{eff}})`,

    .. math::

        c_\mu = \min\Big(1 - c_1, \frac{2 (\mu_{\mathrm{eff}} - 2 + 1 / \mu_{\mathrm{eff}})}
            {(d + 2)^2 + \mu_{\mathrm{eff}}}\Big).

    It grows with the population (a larger sample estimates the covariance better); the
    paper's ``eta_B`` does not.
    """
    mueff = positive_mueff(popsize)
    c_1 = rank_one_rate(dim, mueff)
    return min(1.0 - c_1, 2.0 * (mueff - 2.0 + 1.0 / mueff) / ((dim + 2.0) ** 2 + mueff))


def default_eta_B(dim: int, popsize: int) -> float:
    """Return XNES's default shape learning rate: the paper's, or CMA-ES's c_mu if larger.

    The shape update ``B <- B expm(eta_B / 2 G_B)`` changes ``B B^T`` as CMA-ES's rank-mu
    update changes C (to first order, ``c_mu sum_k w_k (s_k s_k^T - I)``), so ``eta_B`` plays
    the role of :func:`rank_mu_rate`. At the default population the paper's rate is the larger
    (3.4 to 49 times, d = 1 ... 10^4); from 4 to 8 times that population (d = 2 ... 100; the
    restarts of IPOP) c_mu is, and the shape then learns as fast as CMA-ES's does with that
    population. The paper's rate is that of the default population only.
    """
    return max(paper_eta_B(dim), rank_mu_rate(dim, popsize))


def default_eta_sigma(dim: int) -> float:
    """Return XNES's default step-size learning rate (see the documentation for the benchmark)."""
    return paper_eta_B(dim)


#: the largest entry (in absolute value) of a rank-one path that ``from_state`` accepts. A
#: run's path is a weighted mean of steps ``y = B G_delta / |a|``, each at most ``|B| |Zh|_F``
#: long (Cauchy-Schwarz), with ``|B| <= COND_B_MAX`` and normal noise, so no run comes near
#: it; a path this long still gives a finite shape update (``|B^-1 p_c|^2 <= 1e220 d``),
#: which holds B at its conditioning limit.
PATH_C_MAX = 1e100


class ShapePath:
    r"""The constants of the rank-one evolution path :math:`p_c` of the shape update.

    The path itself is part of the strategy's state; :meth:`step` returns the new one. With
    :math:`\mu_{\mathrm{eff}} = 1 / \sum_k w_k^2` for the positive part :math:`w_k` of the NES
    utilities, CMA-ES's rates (Hansen 2016, eqs. 56 and 57, with
    :math:`\alpha_{\mathrm{cov}} = 2`) are

    .. math::

        c_c = \frac{4 + \mu_{\mathrm{eff}} / d}{d + 4 + 2 \mu_{\mathrm{eff}} / d}, \qquad
        c_1 = \frac{2}{(d + 1.3)^2 + \mu_{\mathrm{eff}}} .
    """

    def __init__(self, dim: int, popsize: int) -> None:
        mueff = positive_mueff(popsize)
        self.c_c = (4.0 + mueff / dim) / (dim + 4.0 + 2.0 * mueff / dim)
        self.c_1 = rank_one_rate(dim, mueff)

    def step(self, p_c: FloatArray, y: FloatArray, h_sigma: float) -> FloatArray:
        """Return the path after a mean step `y` (``B G_delta / |a|``, N(0, B B^T) at random).

        `h_sigma` (0 or 1) stalls the path while sigma is growing fast (Hansen 2016, eq. 45).
        """
        c = self.c_c
        out: FloatArray = (1.0 - c) * p_c + (h_sigma * math.sqrt(c * (2.0 - c))) * y
        return out

    def shape_log(self, p_c: FloatArray, B: FloatArray) -> FloatArray:
        r"""Return the trace-free logarithm of CMA-ES's rank-one factor, in local coordinates.

        CMA-ES's rank-one update :math:`C \leftarrow (1 - c_1) C + c_1 p_c p_c^T` is, with
        :math:`C = B B^T` and :math:`q = B^{-1} p_c` (the path in the local coordinates of the
        samples), :math:`C \leftarrow B M B^T` for :math:`M = (1 - c_1) I + c_1 q q^T`. The
        trace-free part of :math:`\log M` is :math:`L (\hat q \hat q^T - I / d)` with
        :math:`L = \ln(1 + c_1 \lVert q \rVert^2 / (1 - c_1))` and :math:`\hat q = q /
        \lVert q \rVert`; to first order in :math:`c_1` it is
        :math:`c_1 (q q^T - \lVert q \rVert^2 I / d)`. Being a logarithm, it grows with
        :math:`\ln \lVert q \rVert^2`, not with :math:`\lVert q \rVert^2`, so a long path in a
        thin direction of B cannot make the exponential of the shape update overflow.
        """
        q = np.linalg.solve(B, p_c)
        qq = float(q @ q)
        d = q.size
        if not qq > 0.0:
            return np.zeros((d, d))
        L = math.log1p(self.c_1 * qq / (1.0 - self.c_1))
        out: FloatArray = (L / qq) * np.outer(q, q)
        out[np.diag_indices(d)] -= L / d
        return out


def expm_sym(S: FloatArray, *, traceless: bool = False) -> FloatArray:
    """Return the matrix exponential of the symmetric matrix `S` by an eigen-decomposition.

    With `traceless`, the eigenvalues are shifted to sum to exactly zero (``trace(S)`` is zero
    in exact arithmetic), so ``det(expm(S)) = 1`` holds to rounding and does not drift.
    """
    return expm_sym_spread(S, traceless=traceless)[0]


def expm_sym_spread(S: FloatArray, *, traceless: bool = False) -> tuple[FloatArray, float]:
    """Return :func:`expm_sym` of `S` and the spread of its eigenvalues, ``ln cond(expm(S))``.

    The spread is free with the eigen-decomposition: ``cond(expm(S)) = exp(max - min)`` of
    the eigenvalues, so ``cond(B expm(S)) <= cond(B) exp(spread)`` bounds the condition of an
    updated shape without a singular value decomposition.
    """
    lam, V = np.linalg.eigh(S)
    if traceless:
        lam -= lam.mean()
    out: FloatArray = (V * np.exp(lam)) @ V.T
    return out, float(lam[-1] - lam[0])


def within_cond(sv: npt.NDArray[np.floating[Any]]) -> bool:
    """Return whether singular values `sv` (descending) have a ratio of at most COND_B_MAX.

    The one test of the bound, written without a division (a zero or NaN fails it), so that
    the update, the constructor and ``from_state`` agree to the last bit.
    """
    return bool(sv[-1] * COND_B_MAX >= sv[0])


#: the largest condition number of B (cond(B B^T) = cond(B)**2), one bound for every way B is
#: set: an update that would pass it leaves B as it is, a per-coordinate `sigma0` may not start
#: beyond it, and ``from_state`` rejects a B beyond it. So every state a run reaches loads, and
#: no state loads that a run could not reach. (The `tolconditioncov` criterion, 1e14 for
#: B B^T, says stop long before: at 1e7 for B.)
COND_B_MAX = 1e10

#: the shape update checks COND_B_MAX by the singular values of B only when the bound
#: ``cond(B) exp(spread)`` of the new B (:func:`expm_sym_spread`) passes this, a thousandth of
#: the limit: the rounding of the products of B (relative ``d eps cond(B)`` a generation) cannot
#: carry a B within it past the limit, so the update holds B exactly when it did with an SVD
#: in every generation.
COND_B_SURE = 1e7


def shape_condition(B: FloatArray) -> float:
    """Return the condition number of ``B B^T``, ``cond(B)**2``, from the singular values of B.

    inf when B is singular or the number leaves the float range.
    """
    sv = np.linalg.svd(B, compute_uv=False)
    ratio = float(sv[0] / sv[-1]) if sv[-1] > 0.0 else math.inf
    return ratio * ratio


def split_step_sizes(
    sigma0: float | FloatArray, dim: int, *, shape_matrix: bool = True
) -> tuple[float, FloatArray]:
    """Return `sigma0` as a global step size and per-coordinate scales of product 1.

    A scalar gives ``(sigma0, ones)``; one step size per coordinate gives their geometric mean
    and ``sigma0 / mean``, so that a shape matrix ``diag(scales)`` has determinant 1. For a
    shape matrix (`shape_matrix`) the scales may span at most a factor of ``COND_B_MAX`` (the
    condition number B may have), tested as ``from_state`` tests B.
    """
    if not isinstance(sigma0, np.ndarray):
        return float(sigma0), np.ones(dim)
    # (the geometric mean of step sizes within the range is within it; exp(mean(log)) may round
    # a hair past an end, 9.99999999999989e-101 for [1e-100, 1e-100], where no state loads)
    sigma = min(max(float(np.exp(np.mean(np.log(sigma0)))), v.SIGMA_MIN), v.SIGMA_MAX)
    scales: FloatArray = sigma0 / sigma
    if shape_matrix and not within_cond(np.linalg.svd(np.diag(scales), compute_uv=False)):
        ratio = float(np.max(sigma0) / np.min(sigma0))
        # (tested on the scales, as from_state tests B: a ratio of 1e10 itself may round past it)
        raise ValueError(
            "`sigma0` must have a ratio of largest to smallest step size of at most "
            f"{COND_B_MAX:g} (the condition number of B), but got {ratio:g}"
            + (
                ", whose scales of product 1 give B a condition number just above it (rounded)."
                if ratio <= COND_B_MAX
                else "."
            )
        )
    return sigma, scales


#: the largest |ln det B| that ``from_state`` repairs (by re-normalising) instead of rejecting.
DET_DRIFT_REPAIRED = 1e-3


def unit_det(B: FloatArray) -> FloatArray:
    """Return ``B / det(B)**(1/d)``: `B` re-normalised to determinant 1 (through slogdet).

    A matrix with a determinant that is not positive and finite is returned unchanged filled
    with NaN, for the caller to report.
    """
    sign, logdet = np.linalg.slogdet(B)
    if sign <= 0 or not math.isfinite(logdet):
        return np.full_like(B, np.nan)
    out: FloatArray = B * math.exp(-logdet / B.shape[0])
    return out


def shrink_rows(B: FloatArray, sigma: float, by: FloatArray) -> tuple[FloatArray, float]:
    """Return `B` and `sigma` with coordinate i of ``sigma B`` divided by ``by[i]``, det B = 1.

    The rows of B are scaled, ``B <- D B`` with ``D = diag(1 / by)``, and the result is
    re-normalised to determinant 1 with the factor moved into sigma, so that
    ``sigma B`` changes by D alone (to rounding) and the covariance ``sigma**2 B B^T`` by
    ``D . D``: the standard deviation of coordinate i is divided by ``by[i]`` and the
    correlations are kept. The common part ``min(by)`` only divides sigma; B is left as it is
    when every divisor is the same. sigma is kept at least ``SIGMA_MIN``.
    """
    common = float(np.min(by))
    if common == math.inf:  # every excess beyond the float range: sigma to its least
        return B, v.SIGMA_MIN
    rest = by / common
    if not np.any(rest > 1.0):
        return B, max(sigma / common, v.SIGMA_MIN)
    DB = B / rest[:, None]
    _, logdet = np.linalg.slogdet(DB)  # det B > 0 and D > 0: positive
    root = math.exp(logdet / B.shape[0])
    out: FloatArray = DB / root
    return out, max(sigma * root / common, v.SIGMA_MIN)


def shrink_rows_within_cond(
    B: FloatArray, sigma: float, by: FloatArray
) -> tuple[FloatArray, float]:
    """Return :func:`shrink_rows` of `B`, `sigma` and `by`, with B kept within COND_B_MAX.

    When the scaled B would pass ``COND_B_MAX``, the shape part of the divisors is taken to
    the largest power t in [0, 1] with cond(D^t) cond(B) (an upper bound of cond(D^t B))
    within half of it, and the common part still divides sigma.
    """

    def fits(M: FloatArray) -> bool:
        return within_cond(np.linalg.svd(M, compute_uv=False))

    out, out_sigma = shrink_rows(B, sigma, by)
    if out is not B and not fits(out):
        common = float(np.min(by))
        span = math.log(float(np.max(by)) / common)
        sv = np.linalg.svd(B, compute_uv=False)
        room = 0.5 * COND_B_MAX * sv[-1] / sv[0]  # half: the SVD's rounding at the bound
        t = math.log(room) / span if room > 1.0 else 0.0
        out, out_sigma = shrink_rows(B, sigma, common * (by / common) ** min(t, 1.0))
        if out is not B and not fits(out):  # rounding at the bound: sigma alone
            out, out_sigma = shrink_rows(B, sigma, np.full_like(by, common))
    return out, out_sigma


def checked_shape(rows: object, d: int) -> tuple[FloatArray, float]:
    """Return a stored shape matrix B, checked, and its condition number.

    B must be a finite (d, d) matrix with a condition number of at most ``COND_B_MAX`` and a
    determinant of 1. ln det B is known to about ``d cond(B) eps``: what lies within is
    rounding, which is kept (bit-identical resumes); a larger drift, up to
    ``DET_DRIFT_REPAIRED`` (of checkpoints saved before the update re-normalised B), is
    repaired by re-normalising. Raises ValueError naming `B` otherwise.
    """
    if not isinstance(rows, list) or len(rows) != d:
        raise ValueError(f"`B` must be a finite ({d}, {d}) matrix, but got {v.short(rows)}")
    B = np.stack([v.as_vector("B", row, d) for row in rows])
    sv = np.linalg.svd(B, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0.0 else math.inf
    if not within_cond(sv):
        raise ValueError(f"`B` must have a condition number <= {COND_B_MAX:g}, but got {cond:g}")
    sign, logdet = np.linalg.slogdet(B)
    tol = 1e-6 + 8.0 * d * cond * np.finfo(np.float64).eps
    if sign <= 0 or not abs(logdet) <= DET_DRIFT_REPAIRED + tol:
        raise ValueError(
            f"`B` must have determinant 1, but got {sign * math.exp(min(logdet, 700.0))}"
        )
    if abs(logdet) > tol:
        B = unit_det(B)
    return B, cond


def weighted_rank_test(u_order: FloatArray, w: FloatArray) -> float:
    r"""Return the normal CDF of the weighted rank statistic under random ranking.

    `u_order` ranks the samples (0 = worst; tied samples share their mean rank), `w` are the
    importance weights of the samples under the hypothetical distribution. The statistic is
    :math:`S = \sum_k w_k (r_k + 1/2)`. The re-weighted sample and the plain one are the
    *same* samples, so :math:`S` is not a two-sample Mann-Whitney statistic: under the null
    hypothesis (fitness independent of the weights) the ranks are a random permutation, with

    .. math::

        E[S] = \bar r \sum_k w_k, \qquad
        \operatorname{Var}[S] = \frac{1}{n - 1} \sum_k (w_k - \bar w)^2
            \sum_k (r_k - \bar r)^2 .

    A value above 1/2 says the re-weighted samples rank better than random ranking would
    make them; equal weights (no evidence either way) give 1/2 and degenerate weights 0.
    """
    n = float(w.size)
    n_w = float(w.sum())
    r = u_order + 0.5
    stat = float(w @ r)
    if not (math.isfinite(n_w) and math.isfinite(stat) and n_w > 0.0 and n > 1.0):
        return 0.0  # degenerate weights: no evidence for a larger rate
    dev_w = w - n_w / n
    dev_r = r - float(r.mean())
    var = float(dev_w @ dev_w) * float(dev_r @ dev_r) / (n - 1.0)
    if not var > 0.0:
        return 0.5
    return float(ndtr((stat - n_w * float(r.mean())) / math.sqrt(var)))


def shape_gradient(Zh: FloatArray, w: FloatArray) -> FloatArray:
    """Return ``G_M = sum_j w_j (z_j z_j^T - I)`` over the noise rows `Zh` (a new array)."""
    G: FloatArray = (Zh.T * w) @ Zh
    G[np.diag_indices(Zh.shape[1])] -= float(w.sum())
    return G


class XNES(Strategy):
    r"""Exponential NES: a Gaussian search distribution with a full covariance matrix.

    Parameters
    ----------
    x0 : array_like of shape (d,)
        Initial mean.
    sigma0 : float or array_like of shape (d,)
        Initial global step size, or one per coordinate: then sigma starts at their geometric
        mean and B at ``diag(sigma0 / sigma)`` (so det B = 1); the largest may be at most
        ``COND_B_MAX`` = 1e10 times the smallest (the condition number B may have).
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
        Initial learning rate of the NES step-size gradient; default the paper's
        ``(9 + 3 ln d) / (5 d sqrt d)``. Adaptation sampling changes it during the run.
    eta_B : float, optional
        Learning rate of the shape matrix; default ``(9 + 3 ln d) / (5 d sqrt d)``, or
        CMA-ES's rank-mu rate ``c_mu`` of the population where that is larger: from 4 to 8
        times the default population (d = 2 ... 100), as in the restarts of IPOP.

        The three rates take any positive finite number. They multiply the utilities, whose
        scale is the fitness's own with ``shaping="raw"`` (``-f``) or a callable: the fitness
        times ``2**-600`` and the rates times ``2**600`` (without `csa` and
        `adaptation_sampling`) make the same run bit for bit, so no bound on a rate alone
        holds for every run. A rate too large for its utilities makes :meth:`tell` raise
        ``FloatingPointError`` naming what overflowed and the rates, changing nothing. (With
        the rank shapings the papers' rates are at most 1; the Optuna sampler, whose
        shaping is fixed and whose states are read from storage, takes ``eta_*`` up to 10.)
    csa : bool
        Add cumulative step-size adaptation (an evolution path) to the NES step-size update;
        default True.
    adaptation_sampling : bool
        Adapt `eta_sigma` by adaptation sampling (Wierstra et al. 2014, Algorithm 4);
        default True.
    rank_one : bool, optional
        Add CMA-ES's rank-one term, from a cumulated evolution path of the mean steps, to the
        shape update; default: on with `csa`, off without it (without CSA nothing lets sigma
        grow while the path stretches B, and a run can stall). On BBOB it learns the shape of
        ill-conditioned problems faster (see the Notes and the documentation for the
        figures). The Optuna sampler runs XNES without it (it does worse there with it).
    active : bool
        Weight the worse half of the samples by rank in the shape update, as active CMA-ES
        does (Hansen 2016, eq. 49; pycma's ``CMA_active``): the worst shrinks the shape most
        along its direction. Default False: XNES's utilities give that whole half the same
        weight. The mean and the step size are updated as without it.
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
        sampling and without `csa`; a per-coordinate `sigma0` whose largest entry is more than
        ``COND_B_MAX`` times its smallest; `bounds` with a low above its high; an unknown
        `shaping` name.

    Notes
    -----
    Candidates are :math:`x_k = \mu + \sigma B s_k` with :math:`s_k \sim N(0, I)` and
    :math:`\det B = 1`. With utilities :math:`u_k` (higher is better), Wierstra et al. (2014,
    Algorithm 5) compute

    .. math::

        G_\delta = \sum_k u_k s_k, \quad
        G_M = \sum_k u_k (s_k s_k^T - I), \quad
        G_\sigma = \operatorname{tr}(G_M) / d, \quad
        G_B = G_M - G_\sigma I

    and update

    .. math::

        \mu \leftarrow \mu + \eta_\mu \sigma B G_\delta, \quad
        \sigma \leftarrow \sigma \exp(\eta_\sigma G_\sigma / 2), \quad
        B \leftarrow B \exp(\eta_B G_B / 2)

    with the matrix exponential of the symmetric :math:`G_B` (trace zero, so
    :math:`\det B` stays 1 and :math:`B B^T` stays symmetric positive definite). Nothing is
    inverted: the update uses the stored :math:`s_k`. After each update B is re-normalised to
    :math:`\det B = 1` (through ``slogdet``), so rounding does not drift; an update that would
    make the condition number of B exceed ``COND_B_MAX`` = 1e10 leaves B unchanged
    (``stop()`` reports ``conditioncov`` when that of :math:`B B^T` exceeds
    `tolconditioncov`, 1e14 by default), and ``from_state`` accepts no B beyond that bound:
    every state a run reaches loads, and nothing loads that a run could not reach.

    With `csa`, :math:`\ln\sigma` also changes by the cumulative step-size adaptation term
    of an evolution path of the mean steps :math:`G_\delta` (Hansen and Ostermeier 2001).
    With `adaptation_sampling` (Wierstra et al. 2014, Algorithm 4; their Algorithm 5 is the
    XNES update above and Algorithm 6 the SNES update), :math:`\eta_\sigma` grows by 10% (up
    to 0.5) when a 1.5 times larger step would have made the new samples more likely to be
    good (a weighted rank test of the same samples, re-weighted by their density ratio,
    against random ranking) and otherwise relaxes towards its initial value. The
    measurements behind these defaults are on the documentation page of SNES and XNES.

    With `rank_one`, an evolution path :math:`p_c` of the mean steps (in the coordinates of
    :math:`x / \sigma`) adds CMA-ES's rank-one update (Hansen and Ostermeier 2001; Hansen
    2016, eqs. 45 and 47) to the shape: with :math:`\lVert a \rVert` normalising the mean
    step :math:`y` as for CSA (mirrored pairs included), :math:`q = B^{-1} p_c` the path in
    local coordinates and :math:`\hat q = q / \lVert q \rVert`,

    .. math::

        p_c \leftarrow (1 - c_c)\, p_c + h_\sigma \sqrt{c_c (2 - c_c)}\,
            \frac{y}{\lVert a \rVert}, \qquad
        B \leftarrow B \exp\Big(\frac{\eta_B}{2} G_B + \frac{L}{2}
            \big(\hat q \hat q^T - \tfrac{1}{d} I\big)\Big), \qquad
        L = \ln\Big(1 + \frac{c_1 \lVert q \rVert^2}{1 - c_1}\Big)

    with CMA-ES's rates (Hansen 2016, eqs. 56 and 57, :math:`\alpha_{\mathrm{cov}} = 2`)
    :math:`c_c = (4 + \mu_{\mathrm{eff}} / d) / (d + 4 + 2 \mu_{\mathrm{eff}} / d)` and
    :math:`c_1 = 2 / ((d + 1.3)^2 + \mu_{\mathrm{eff}})`, :math:`\mu_{\mathrm{eff}}` that of
    the positive part of the utilities, and :math:`h_\sigma` = 0 while the CSA path is
    long (sigma growing fast), else 1. The mean step is :math:`y = B G_\delta`, or in a box
    the step the mean took once clipped to the walls (so pushes against a wall do not pile
    up in the path). CMA-ES's rank-one update :math:`C \leftarrow (1 - c_1) C + c_1 p_c
    p_c^T` is :math:`B B^T \leftarrow B M B^T` with :math:`M = (1 - c_1) I + c_1 q q^T`;
    the term above is the trace-free part of :math:`\log M`, to first order
    :math:`c_1 (q q^T - \lVert q \rVert^2 I / d)`, and it grows only with the logarithm of
    :math:`\lVert q \rVert^2`, so a long path across a thin direction of B cannot overflow
    the exponential. Only the trace-free part enters B, so det B stays 1; the trace part is
    dropped rather than given to sigma: it is a signal of the path's length for the step
    size, which CSA already follows with its own path and damping.

    With `active`, :math:`G_B` is computed as above with other weights :math:`w_k` in place
    of :math:`u_k` (:math:`G_\delta` and :math:`G_\sigma` keep the utilities): for the
    rank :math:`k` of a sample (1 the best; a non-finite value ranks last),
    :math:`w_k \propto \max(0, \ln(\lambda/2 + 1) - \ln k)` on the better half, as the
    utilities, and :math:`w_k \propto \min(0, \ln((\lambda + 1)/2) - \ln k)` on the
    worse half (active CMA-ES's negative weights), each side scaled to the total of the
    utilities' positive part, so the weights sum to zero
    (:func:`nes_asktell._shaping.active_weights`). They are recorded with each update
    (:meth:`recent_updates`), since the utilities, tied over the worse half, do not give
    them. On BBOB through the Optuna sampler's search (the rank-one term on too) it was
    better than the sampler's default in a replay of 288 runs at 1,000 evaluations, but not
    in the sampler's studies of other instances, which keep it off: see the documentation of
    the Optuna sampler.

    References
    ----------
    D. Wierstra, T. Schaul, T. Glasmachers, Y. Sun, J. Peters, J. Schmidhuber. Natural
    Evolution Strategies. JMLR 15:949-980, 2014.

    T. Glasmachers, T. Schaul, Y. Sun, D. Wierstra, J. Schmidhuber. Exponential Natural
    Evolution Strategies. GECCO 2010.

    N. Hansen, A. Ostermeier. Completely Derandomized Self-Adaptation in Evolution
    Strategies. Evolutionary Computation 9(2):159-195, 2001.

    N. Hansen. The CMA Evolution Strategy: A Tutorial. arXiv:1604.00772, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import XNES
    >>> es = XNES(np.zeros(3), sigma0=1.0, rng=0, ftarget=1e-8)
    >>> res = es.optimize(lambda x: float(np.sum((x - [0.5, 0.1, -0.3]) ** 2)))
    >>> bool(res.fun < 1e-8)
    True
    """

    name = "xnes"
    default_mirrored = True
    default_shaping = "nes"

    def __init__(
        self,
        x0: ArrayLike,
        sigma0: float | FloatArray | Sequence[float],
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: RngLike = None,
        eta_mu: float = 1.0,
        eta_sigma: float | None = None,
        eta_B: float | None = None,
        csa: bool = True,
        adaptation_sampling: bool = True,
        rank_one: bool | None = None,
        active: bool = False,
        mirrored: bool | None = None,
        shaping: ShapingLike | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        e_mu = v.positive_float("eta_mu", eta_mu)
        e_sigma = None if eta_sigma is None else v.positive_float("eta_sigma", eta_sigma)
        e_B = None if eta_B is None else v.positive_float("eta_B", eta_B)
        v.flag("csa", csa)
        v.flag("adaptation_sampling", adaptation_sampling)
        if rank_one is None:  # with CSA only: without it the term can stall (see the docs)
            rank_one = csa
        v.flag("rank_one", rank_one)
        v.flag("active", active)
        if not csa:  # CSA's path is odd in z: it adapts sigma from one pair
            check_not_one_pair(popsize, mirrored, self.default_mirrored, "XNES without CSA")
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
        d = self._dim
        self._eta_mu = e_mu
        self._eta_sigma0 = default_eta_sigma(d) if e_sigma is None else e_sigma
        self._eta_B = default_eta_B(d, self._popsize) if e_B is None else e_B
        self._adapt = bool(adaptation_sampling)
        self._path = StepSizePath(d, self._popsize) if csa else None
        self._shape_path = ShapePath(d, self._popsize) if rank_one else None
        self._active = bool(active)
        # Dynamic state.
        self._p: FloatArray = np.zeros(d)  # the evolution path (with csa)
        self._p_c: FloatArray = np.zeros(d)  # the rank-one evolution path (with rank_one)
        self._eta_sigma = self._eta_sigma0
        self._last_step = 0.0
        self._sigma, scales = split_step_sizes(self._sigma0, d)
        self._B: FloatArray = np.diag(scales)
        self._BT: FloatArray = np.ascontiguousarray(self._B.T)  # C-contiguous copy of B^T
        # (B, an upper bound of cond(B)): spares the update and stop() an SVD of B
        cond = float(np.max(scales) / np.min(scales))
        self._cond_memo: tuple[FloatArray, float] | None = (self._B, cond)

    def _check_sigma0(self, sigma0: object, dim: int) -> FloatArray | float:
        # the ratio of the step sizes too, before the base constructor draws from `rng`
        checked = super()._check_sigma0(sigma0, dim)
        split_step_sizes(checked, dim)
        return checked

    @classmethod
    def _check_sizes(cls, dim: int, popsize: int) -> None:
        super()._check_sizes(dim, popsize)
        v.check_size("x0", dim * dim, "dim**2 (the matrix B)")

    # ------------------------------------------------------------------ public read-only views
    @property
    def B(self) -> FloatArray:
        """A copy of the shape matrix B (det B = 1); the covariance is ``sigma**2 B B^T``."""
        return self._B.copy()

    @property
    def eta_sigma(self) -> float:
        """The current learning rate of sigma (changes with adaptation sampling)."""
        return self._eta_sigma

    # ------------------------------------------------------------------ strategy hooks
    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        # rows sigma B s_k; a C-contiguous B^T in the noise's dtype keeps matmul on BLAS
        BT = self._BT if self._BT.dtype == Zh.dtype else self._BT.astype(Zh.dtype)
        np.matmul(Zh, BT, out=out)
        out *= self._sigma

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        d = self._dim
        w = self._even_weights(u)
        # Wierstra 2014, Algorithm 5: the natural gradient in local coordinates.
        G_delta = self._noise_sum(Zh, u)
        step = self._B @ G_delta  # the mean's step in units of sigma
        G_M = shape_gradient(Zh, w)
        G_sigma = float(np.trace(G_M)) / d
        if self._shape_told is not None:  # active: the same gradient with the shape weights
            G_B = shape_gradient(Zh, self._even_weights(self._shape_told))
            G_B[np.diag_indices(d)] -= float(np.trace(G_B)) / d
        else:
            G_B = G_M
            G_B[np.diag_indices(d)] -= G_sigma
        eta_sigma = self._adapted_eta_sigma(u, Zh) if self._adapt else self._eta_sigma
        # Updates (Wierstra 2014, Algorithm 5, last three lines).
        last_step = eta_sigma / 2.0 * G_sigma
        csa_step = 0.0
        p, p_c = self._p, self._p_c
        a_norm = float(np.sqrt((a := odd_weights(u, self._mirrored)) @ a))
        if self._path is not None:
            p, csa_step = self._path.step(p, G_delta, a_norm)
        S = (self._eta_B / 2.0) * G_B
        if self._shape_path is not None:
            # Hansen 2016, eqs. 45 and 47, in XNES's local form: the logarithm of the rank-one
            # factor (1 - c_1) I + c_1 q q^T, q = B^{-1} p_c, joins G_B without its trace.
            y = self._clipped_step(step) / a_norm if a_norm > 0.0 else np.zeros(d)
            p_c = self._shape_path.step(p_c, y, self._h_sigma(p))
            S = S + 0.5 * self._shape_path.shape_log(p_c, self._B)
        B, cond_B = S, None
        if np.all(np.isfinite(S)):
            E, spread = expm_sym_spread(S, traceless=True)
            B, bound = self._B @ E, self._cond_bound()
            cond_B = None if bound is None else bound * math.exp(min(spread, 700.0))
        if np.all(np.isfinite(B)):  # else it overflowed: the caller reports it
            B = unit_det(B)  # NaN if singular to working precision: far beyond the limit
            if not np.all(np.isfinite(B)):
                B, cond_B = self._B, self._cond_bound()  # held
            elif cond_B is None or not cond_B <= COND_B_SURE:
                sv = np.linalg.svd(B, compute_uv=False)
                if within_cond(sv):
                    cond_B = float(sv[0] / sv[-1])
                else:  # held: the shape stops changing at its conditioning limit
                    B, cond_B = self._B, self._cond_bound()
        # exp of a float64, not math.exp: an overflow gives inf, which the caller reports.
        sigma = self._sigma * float(np.exp(np.float64(last_step + csa_step)))
        return {
            "_mean": self._mean + (self._eta_mu * self._sigma) * step,
            "_eta_sigma": eta_sigma,
            # stored within LAST_STEP_MAX, the bound from_state checks: a larger step takes
            # sigma to the end of its range anyway (-592.6 was reached, with raw shaping)
            "_last_step": min(max(last_step, -LAST_STEP_MAX), LAST_STEP_MAX),
            "_p": p,
            "_p_c": p_c,
            "_sigma": sigma,
            "_B": B,
            "_BT": np.ascontiguousarray(B.T),
            "_cond_memo": None if cond_B is None else (B, cond_B),
        }

    def _cond_bound(self) -> float | None:
        """Return an upper bound of cond(B) (to rounding) if one is known for the current B.

        The memo ``(B, bound)`` holds for the B it was made with only, so any other way of
        setting B (coordinates shrunk in a box, a loaded state) leaves no bound, and the next
        update or stop check computes the singular values.
        """
        memo = self._cond_memo
        return memo[1] if memo is not None and memo[0] is self._B else None

    def _condition_at_most(self, limit: float) -> bool:
        # cond(B B^T) = cond(B)**2; half the limit is room for rounding in the bound
        bound = self._cond_bound()
        return bound is not None and bound * bound <= 0.5 * limit

    def _clipped_step(self, step: FloatArray) -> FloatArray:
        """Return the mean's `step` in units of sigma (``B G_delta``) as the box lets it be taken.

        In a box the new mean is clipped to the walls; the path then follows the step the
        mean really took, so pushes against a wall (a corner optimum) do not pile up in it.
        """
        if self._box is None:
            return step
        scale = self._eta_mu * self._sigma
        wanted = self._mean + scale * step
        taken = self._box.clip(wanted)
        if np.array_equal(taken, wanted):
            return step
        out: FloatArray = (taken - self._mean) / scale
        return out

    def _h_sigma(self, p: FloatArray) -> float:
        """Return 0 while the step-size path `p` is long (sigma growing fast), else 1.

        Hansen (2016, eq. 45): ``|p| / sqrt(1 - (1 - c)^(2 (g + 1))) < (1.4 + 2 / (d + 1))
        E|N(0, I)|``; always 1 without `csa`.
        """
        if self._path is None:
            return 1.0
        c, d = self._path.c, self._dim
        norm = float(np.linalg.norm(p)) / math.sqrt(
            1.0 - (1.0 - c) ** (2 * (self._generation + 1))
        )
        return 1.0 if norm < (1.4 + 2.0 / (d + 1.0)) * self._path.chi else 0.0

    def _adapted_eta_sigma(self, u: FloatArray, Zh: FloatArray) -> float:
        """Return eta_sigma after adaptation sampling (Wierstra 2014, Algorithm 4).

        The current samples were drawn with sigma_t = sigma_{t-1} exp(step); would sigma' =
        sigma_{t-1} exp(1.5 step), a 1.5x larger step, have made the good ones more likely?
        The one-sided p-value of :func:`weighted_rank_test` (the same samples, re-weighted
        by their density ratio, against random ranking) must be below rho =
        1/2 - 1/(3 (d + 1)) to raise the rate; otherwise it relaxes towards its initial
        value.
        """
        if self._last_step == 0.0:
            return self._eta_sigma
        d = self._dim
        sq = np.einsum("ij,ij->i", Zh, Zh)
        if self._mirrored:
            sq = np.concatenate([sq, sq])
        log_r = 0.5 * self._last_step  # log(sigma' / sigma_t)
        # density ratio of each candidate under sigma' and sigma_t (same mean and B)
        log_w = -d * log_r - 0.5 * sq * (math.exp(-2.0 * log_r) - 1.0)
        w = np.exp(np.clip(log_w, -700.0, 700.0))
        order = average_ranks(u) - 1.0  # 0 = worst; ties share their mean rank
        c = 0.1
        rho = 0.5 - 1.0 / (3.0 * (d + 1.0))
        p_value = 1.0 - weighted_rank_test(order, w)
        if p_value < rho:
            cap = max(ETA_SIGMA_MAX, self._eta_sigma0)
            return min((1.0 + c) * self._eta_sigma, cap)
        return (1.0 - c) * self._eta_sigma + c * self._eta_sigma0

    def _stds(self) -> FloatArray:
        out: FloatArray = self._sigma * np.sqrt(np.einsum("ij,ij->i", self._B, self._B))
        return out

    def _sigma_value(self) -> float:
        return self._sigma

    def _shrink_coordinates(self, excess: FloatArray) -> dict[str, object]:
        # The rows of B scaled, as the update within COND_B_MAX (see shrink_rows_within_cond).
        B, sigma = shrink_rows_within_cond(self._B, self._sigma, self._shared_divisors(excess))
        out: dict[str, object] = {"_sigma": sigma}
        if B is not self._B:
            out.update(_B=B, _BT=np.ascontiguousarray(B.T))
        return out

    def _condition(self, scale: FloatArray | None = None) -> float:
        # Sigma = sigma^2 B B^T; in the units `scale`, (B / scale) (B / scale)^T, row by row;
        # of the coordinates the box leaves free (see Strategy._free), their rows of B. (A
        # bound of cond(B) bounds that of its rows too: see _condition_at_most.)
        B = self._B if scale is None else self._B / scale[:, None]
        free = self._free()
        return shape_condition(B if free is None else B[free])

    def __setstate__(self, d: dict[str, object]) -> None:
        super().__setstate__(d)
        self.__dict__.setdefault("_active", False)  # (pickled before the option existed)

    def _has_shape_weights(self) -> bool:
        return self._active

    def _shape_weights(self, f: FloatArray, u: FloatArray) -> FloatArray | None:
        if not self._active:
            return None
        # the worse half by rank, each side with the mass of the utilities' positive part
        return active_weights(f, float(np.sum(np.maximum(u, 0.0))))

    # ------------------------------------------------------------------ state
    def _options(self) -> JSON:
        return {
            "eta_mu": self._eta_mu,
            "eta_sigma": self._eta_sigma0,
            "eta_B": self._eta_B,
            "csa": self._path is not None,
            "adaptation_sampling": self._adapt,
            "rank_one": self._shape_path is not None,
            "active": self._active,
        }

    def _algo_state(self) -> JSON:
        return {
            "sigma": self._sigma,
            "B": self._B.tolist(),
            "eta_sigma": self._eta_sigma,
            "last_step": self._last_step,
            "path": None if self._path is None else self._p.tolist(),
            "path_c": None if self._shape_path is None else self._p_c.tolist(),
        }

    @classmethod
    def _from_state(cls, state: JSON, shaping: ShapingLike | None) -> Strategy:
        options = state["options"]
        if isinstance(options, dict) and "rank_one" not in options:
            # saved before the rank-one term existed: the run had none, and resumes without it
            state = {**state, "options": {**options, "rank_one": False}}
            options = state["options"]
        if isinstance(options, dict) and "active" not in options:
            # saved before active shape weights existed: the run had none
            state = {**state, "options": {**options, "active": False}}
        return super()._from_state(state, shaping)

    def _load_algo_state(self, state: JSON) -> None:
        sigma = v.step_size("sigma", state["sigma"])
        d = self._dim
        B, cond = checked_shape(state["B"], d)
        eta = v.positive_float("eta_sigma", state["eta_sigma"])
        if eta > max(ETA_SIGMA_MAX, self._eta_sigma0):
            raise ValueError(
                f"`eta_sigma` must be at most {max(ETA_SIGMA_MAX, self._eta_sigma0)}, "
                f"but got {eta}"
            )
        last = v.real("last_step", state["last_step"])
        if not abs(last) <= LAST_STEP_MAX:  # exp(-last) of adaptation sampling would overflow
            raise ValueError(
                f"`last_step` must be at most {LAST_STEP_MAX:.6g} in absolute value, "
                f"but got {last!r}"
            )
        if self._path is not None:
            self._p = v.as_vector("path", state["path"], d)
        if self._shape_path is not None:
            p_c = v.as_vector("path_c", state["path_c"], d)
            if not float(np.max(np.abs(p_c))) <= PATH_C_MAX:
                raise ValueError(
                    f"`path_c` must have entries of at most {PATH_C_MAX:g} in absolute value, "
                    f"but got {float(np.max(np.abs(p_c))):g}."
                )
            self._p_c = p_c
        self._sigma, self._B, self._eta_sigma, self._last_step = sigma, B, eta, last
        self._BT = np.ascontiguousarray(B.T)
        self._cond_memo = (B, cond)
