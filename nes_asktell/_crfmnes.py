"""CR-FM-NES: cost-reduced fast-moving NES with the covariance D(I + v v^T)D (Nomura, Ono 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Unpack

import numpy as np

from . import _validate as v
from ._dxnesic import (
    Phases,
    check_phase,
    eta_sigma_of,
    feasible_count,
    rank_weights,
)
from ._strategy import Strategy, check_not_one_pair
from ._typing import JSON, ArrayLike, BoundsLike, CommonOptions, FloatArray, RngLike, ShapingLike
from ._xnes import COND_B_MAX, rank_one_rate, split_step_sizes

#: the counter-noise generation key of the initial v (no generation of candidates reaches it)
V_KEY = 2**63 - 1


def vd_increments(exY: FloatArray, v_: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""Return the per-row increments :math:`(t, s)` of v and D (Nomura and Ono 2022, Alg. 2).

    `exY` holds the rows :math:`y_k` (and the scaled path :math:`p_c / D`) in the coordinates
    of :math:`I + v v^T`; `v_` is the current v. The caller combines the rows with the weights:
    :math:`v \leftarrow v + \sum_k w_k t_k / \lVert v \rVert` and
    :math:`D \leftarrow D \odot (1 + \sum_k w_k s_k)` (the natural gradient of the VD model of
    Akimoto et al. 2014, O(d) per row).
    """
    nv2 = float(v_ @ v_)
    nv4 = nv2 * nv2
    vb = v_ / math.sqrt(nv2)
    vbb = vb * vb
    gv = 1.0 + nv2
    ip = exY @ vb
    alpha = min(1.0, float(np.sqrt(nv4 + (2.0 * gv - math.sqrt(gv)) / vbb.max()) / (2.0 + nv2)))
    t = exY * ip[:, None] - 0.5 * np.outer(ip * ip + gv, vb)
    b = -(1.0 - alpha * alpha) * nv4 / gv + 2.0 * alpha * alpha
    invH = 1.0 / (2.0 - (b + 2.0 * alpha * alpha) * vbb)
    s1 = exY * exY - (nv2 / gv) * (exY * vb) * ip[:, None] - 1.0
    s2 = s1 - (alpha / gv) * ((2.0 + nv2) * (t * vb) - nv2 * np.outer(t @ vb, vbb))
    ivb = invH * vbb
    s = s2 * invH - (np.float64(b) / (1.0 + b * (vbb @ ivb))) * np.outer(s2 @ ivb, ivb)
    t = t - alpha * ((2.0 + nv2) * (s * vb) - np.outer(s @ vbb, vb))
    return t, s


def rank_one_condition(D: FloatArray, v_: FloatArray) -> float:
    r"""Return the condition number of :math:`D (I + v v^T) D`, O(d) per bisection step.

    The matrix is :math:`\operatorname{diag}(a) + w w^T` with :math:`a = D^2`,
    :math:`w = D v` (D scaled to a largest entry of 1 first, which leaves the ratio as it is).
    Its smallest eigenvalue lies in :math:`[a_{(1)}, \min(a_{(2)}, a_{(1)} + \lVert w
    \rVert^2)]`, its largest in :math:`[a_{(d)}, a_{(d)} + \lVert w \rVert^2]` (Weyl);
    bisection finds each, counting the eigenvalues below :math:`\lambda` by Sylvester's law
    of inertia: :math:`\#\{a_i < \lambda\} - 1` plus 1 where the secular function
    :math:`1 + \sum_i w_i^2 / (a_i - \lambda)` is positive (Golub 1973). inf when the
    ratio leaves the float range.
    """
    s = D / np.max(D)
    a = s * s
    w2 = (s * v_) ** 2
    keep = w2 > 0.0  # an entry with w_i = 0 adds the eigenvalue a_i and nothing to the sum
    aw, ww = a[keep], w2[keep]
    srt = np.sort(a)
    W = float(np.sum(ww))
    if not srt[0] > 0.0:
        return math.inf
    if W == 0.0:
        return float(srt[-1] / srt[0])

    def below(lam: float) -> int:  # the number of eigenvalues < lam
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            f = 1.0 + float(np.sum(ww / (aw - lam)))
        return int(np.count_nonzero(a < lam)) + int(f > 0.0) - 1

    def boundary(k: int, lo: float, hi: float) -> float:
        """Return the k-th smallest eigenvalue, given below(lo) < k <= below(hi)."""
        for _ in range(2200):  # from 1e-308 .. 1e308 to one ulp: about 1100 halvings at most
            mid = math.sqrt(lo) * math.sqrt(hi) if hi > 2.0 * lo else lo + 0.5 * (hi - lo)
            if mid in aw:  # a pole of the secular function: step off it
                mid = float(np.nextafter(mid, hi))
            if not lo < mid < hi:
                break
            if below(mid) >= k:
                hi = mid
            else:
                lo = mid
        return hi

    n = a.size
    top = boundary(n, float(srt[-1]), float(np.nextafter(srt[-1] + W, math.inf)))
    cap = srt[0] + W if n == 1 else min(srt[1], srt[0] + W)
    bottom = boundary(1, float(srt[0]), float(np.nextafter(cap, math.inf)))
    with np.errstate(over="ignore"):
        return float(np.float64(top) / np.float64(bottom))


def half_log_det(D: FloatArray, v_: FloatArray) -> float:
    r"""Return half the log-determinant of the shape :math:`D (I + v v^T) D`.

    :math:`\ln \det(D (I + v v^T) D) / 2 = \sum_i \ln D_i + \ln(1 + \lVert v \rVert^2) / 2`:
    zero for a normalised shape; ``D / exp(half_log_det(D, v) / d)`` normalises it.
    """
    return float(np.sum(np.log(D))) + 0.5 * math.log1p(float(v_ @ v_))


def check_normalised(D: FloatArray, v_: FloatArray) -> None:
    r"""Raise ValueError unless `D` is normalised as the strategy leaves it, to rounding.

    Every update (and every shrink in a box) re-normalises D to
    :math:`\det(D (I + v v^T) D) = 1` (:func:`half_log_det` zero); before the first, D is
    the paper's :math:`D = 1` (or the scales of a per-coordinate `sigma0`), with
    :math:`\det D = 1`. Either holds to rounding: ``d`` logarithms of entries up to
    ``max |ln D_i|``, each to ``eps`` relative.
    """
    d = D.size
    log_D = np.log(D)
    sum_log_D = float(np.sum(log_D))
    log_det = half_log_det(D, v_)
    eps = float(np.finfo(np.float64).eps)
    tol = 1e-6 + 8.0 * d * eps * (1.0 + float(np.max(np.abs(log_D))))
    if not (abs(log_det) <= tol or abs(sum_log_D) <= tol):
        raise ValueError(
            "`D` must be normalised, sum(ln D) + ln(1 + |v|^2) / 2 = 0 as every update leaves "
            f"it (or sum(ln D) = 0 as the constructor sets it), to within {tol:.3g}, but got "
            f"sum(ln D) = {sum_log_D:.6g} and ln(1 + |v|^2) / 2 = {log_det - sum_log_D:.6g} "
            f"for D = {v.short(D.tolist())}"
        )


def within_ratio(D: FloatArray) -> bool:
    """Return whether the largest entry of `D` is at most ``COND_B_MAX`` times the smallest.

    The one test of the bound on D, written without a division (a zero or NaN fails it), so
    that the constructor, the update, the shrink in a box and ``from_state`` agree to the last
    bit. The same bound as XNES's on B: the condition number of ``D (I + v v^T) D`` is at
    least ``(max D / min D)**2 / (1 + v_i**2)`` (i the smallest entry), so with `v` of the
    size the updates give it, ``stop()`` reports ``conditioncov`` (1e14 by default) long
    before D reaches it.
    """
    return bool(np.min(D) * COND_B_MAX >= np.max(D))


def check_ratio(D: FloatArray) -> None:
    """Raise ValueError unless `D` is within the ratio :func:`within_ratio` tests."""
    if not within_ratio(D):
        ratio = float(np.max(D) / np.min(D)) if np.min(D) > 0.0 else math.inf
        raise ValueError(
            f"`D` must have a ratio of largest to smallest entry of at most {COND_B_MAX:g}, "
            f"the bound every update and the constructor keep, but got {ratio:g}"
        )


def default_c1(dim: int, mueff: float) -> float:
    r"""Return CR-FM-NES's rank-one rate: :math:`c_1 (d - 5) / 6`, but not below 0.

    :math:`c_1` is CMA-ES's (:func:`~nes_asktell._xnes.rank_one_rate`). Nomura and Ono (2022)
    publish the product for every d, negative below d = 5; a negative rate pushes the shape
    away from the direction the mean has been moving in. At d = 2 and 3 it kept CR-FM-NES from
    learning a separable ellipsoid (condition 1e6: 0 and 3 of 10 seeds reached 1e-8 within
    20,000 evaluations, against 10 of 10 with the rate at 0; see the algorithm page), so
    the rate is 0 there.
    """
    return max(0.0, rank_one_rate(dim, mueff) * (dim - 5.0) / 6.0)


class CRFMNES(Strategy):
    r"""CR-FM-NES: fast-moving NES with a diagonal-plus-rank-one covariance, O(d) per sample.

    Parameters
    ----------
    x0 : array_like of shape (d,)
        Initial mean.
    sigma0 : float or array_like of shape (d,)
        Initial global step size, or one per coordinate: then sigma starts at their geometric
        mean and D at ``sigma0 / sigma``; the largest may be at most 1e10 times the smallest.
    popsize : int, optional
        Candidates per generation; default ``4 + floor(3 ln d)``, rounded up to even (the
        paper samples mirrored pairs). At least 4 when mirrored: from a single pair
        ``(z, -z)`` the step size learns nothing (the two weights sum to 0 and its term is even
        in z), so 2 is rejected.
    bounds : optional
        Box constraints: None, ``(lower, upper)``, a sequence of ``(low, high)`` pairs, or
        ``scipy.optimize.Bounds``. Candidates are reflected into the box.
    rng : None, int, SeedSequence or Generator
        Source of the noise (see :class:`OpenES`); the initial v is drawn from it too.
    implicit_constraints : bool
        Count non-finite fitness values as infeasible candidates, as the paper does: the
        distance weights and the step-size rate :math:`\eta_\sigma` then use the number
        :math:`\lambda_F` of finite values; default False (see :class:`DXNESIC`).
    mirrored : bool
        Antithetic pairs ``(z, -z)``; default True, as in the paper.
    shaping : str or callable
        Only the order of the utilities counts (default ``"nes"``): the update uses the
        paper's own rank weights.
    **common
        ``threads``, ``dtype`` and the stopping thresholds (see :class:`Strategy`).

    Raises
    ------
    TypeError
        If an argument is of the wrong kind: `x0` or `sigma0` not real numbers, a `popsize`
        that is not an integer, a `mirrored` that is not a bool, an unknown keyword, a legacy
        RandomState as `rng`.
    ValueError
        If an argument has a bad value: `x0` empty or not finite; `sigma0` not positive and
        finite; a `popsize` below 2, above 2**18 or odd with mirrored sampling, 2 with mirrored
        sampling; a per-coordinate `sigma0` whose largest entry is more than ``COND_B_MAX``
        times its smallest; `bounds` with a low above its high; an unknown `shaping` name.

    Notes
    -----
    The covariance is :math:`\sigma^2 D (I + v v^T) D` with :math:`D` diagonal, normalised by
    every update so that :math:`\det(D (I + v v^T) D) = 1` (before the first,
    :math:`\det D = 1`). Candidates are :math:`x_k = m + \sigma D y_k`,
    :math:`y_k = z_k + (\sqrt{1 + \lVert v \rVert^2} - 1) (\bar v^T z_k) \bar v`,
    :math:`\bar v = v / \lVert v \rVert`, :math:`z_k \sim N(0, I)` mirrored. With the rank
    weights, :math:`\mu_{eff}`, :math:`c_\sigma`, :math:`\chi_d`, the phases, the distance
    weights and :math:`\eta_\sigma` of DX-NES-IC (see :class:`DXNESIC`), each generation
    (Nomura and Ono 2022, Algorithm 1):

    .. math::

        p_\sigma &\leftarrow (1 - c_\sigma) p_\sigma
            + \sqrt{c_\sigma (2 - c_\sigma) \mu_{eff}} \textstyle\sum_k w^{rank}_k z_k \\
        p_c &\leftarrow (1 - c_c) p_c
            + \sqrt{c_c (2 - c_c) \mu_{eff}} \textstyle\sum_k w_k (x_k - m) / \sigma \\
        m &\leftarrow m + \eta_m \textstyle\sum_k w_k (x_k - m) \\
        v &\leftarrow v + \big(\eta_B \textstyle\sum_k w_k t_k + c_1 t_{p_c}\big)
            / \lVert v \rVert, \quad
        D \leftarrow D \odot \big(1 + \eta_B \textstyle\sum_k w_k s_k + c_1 s_{p_c}\big) \\
        D &\leftarrow D / \det(D (I + v v^T) D)^{1/(2d)}, \quad
        \sigma \leftarrow \sigma \exp\Big(\frac{\eta_\sigma}{2 d}
            \textstyle\sum_k w_k (\lVert z_k \rVert^2 - d)\Big)

    with :math:`t_k, s_k` of :func:`vd_increments` (from :math:`y_k`, and from
    :math:`p_c / D` for the rank-one term), :math:`\eta_m = 1`,
    :math:`c_c = (4 + \mu_{eff}/d) / (d + 4 + 2 \mu_{eff}/d)`,
    :math:`c_1 = \max(0, 2 (d - 5) / (6 ((d + 1.3)^2 + \mu_{eff})))` (the paper's rate
    is negative below d = 5; see :func:`default_c1`) and
    :math:`\eta_B = \tanh((\min(0.02 \lambda, 3 \ln d) + 5) / (0.23 d + 25))`. The initial
    :math:`v` is :math:`N(0, I/d)`, :math:`D = 1`, the paths zero. When a step would make an
    entry of :math:`D` non-positive (possible only under extreme weights), v and D keep
    their values for that generation; so they do when the increments are not finite (a
    degenerate :math:`v`, seen on rotated ill-conditioned problems at small d), and when the
    step would take the ratio of the largest to the smallest entry of :math:`D` past
    ``COND_B_MAX`` = 1e10, the bound XNES keeps on B (:math:`D` is held at its bound;
    ``stop()`` reports ``conditioncov`` long before). ``from_state`` accepts a D only if it is
    normalised in one of these two ways, to rounding (see :func:`check_normalised`), and
    within that ratio (see :func:`within_ratio`): every state a run reaches loads, and none
    beyond.

    References
    ----------
    M. Nomura, I. Ono. Fast Moving Natural Evolution Strategy for High-Dimensional Problems.
    IEEE CEC 2022 (arXiv:2201.11422).

    Y. Akimoto, A. Auger, N. Hansen. Comparison-Based Natural Gradient Optimization in High
    Dimension. GECCO 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import CRFMNES
    >>> es = CRFMNES(np.zeros(8), sigma0=1.0, rng=0, ftarget=1e-8)
    >>> res = es.optimize(lambda x: float(np.sum((x - 0.3) ** 2)))
    >>> bool(res.fun < 1e-8)
    True
    """

    name = "crfmnes"
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
        implicit_constraints: bool = False,
        mirrored: bool | None = None,
        shaping: ShapingLike | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        v.flag("implicit_constraints", implicit_constraints)
        check_not_one_pair(popsize, mirrored, self.default_mirrored, "CRFMNES")
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
        d, lam = self._dim, self._popsize
        self._implicit = bool(implicit_constraints)
        self._phases = Phases(d, lam)
        mueff = self._phases.mueff
        self._c_c = (4.0 + mueff / d) / (d + 4.0 + 2.0 * mueff / d)
        self._c1 = default_c1(d, mueff)
        self._eta_B = math.tanh((min(0.02 * lam, 3.0 * math.log(d)) + 5.0) / (0.23 * d + 25.0))
        # Dynamic state: v ~ N(0, I/d) from the strategy's own noise, D = 1, zero paths.
        z = np.empty((1, d))
        self._noise.draw(V_KEY, z)
        self._v: FloatArray = z[0] / math.sqrt(d)
        self._sigma, self._D = split_step_sizes(self._sigma0, d, shape_matrix=False)
        self._p_sigma: FloatArray = np.zeros(d)
        self._p_c: FloatArray = np.zeros(d)
        self._phase = "move"

    # ------------------------------------------------------------------ public read-only views
    @property
    def v(self) -> FloatArray:
        """A copy of the rank-one direction v of the covariance ``sigma**2 D (I + v v^T) D``."""
        return self._v.copy()

    @property
    def D(self) -> FloatArray:
        """A copy of the diagonal D of the covariance ``sigma**2 D (I + v v^T) D``."""
        return self._D.copy()

    @property
    def phase(self) -> str:
        """The phase of the latest update: ``"move"``, ``"stag"`` or ``"conv"``."""
        return self._phase

    # ------------------------------------------------------------------ protocol
    # ------------------------------------------------------------------ strategy hooks
    def _check_sigma0(self, sigma0: object, dim: int) -> FloatArray | float:
        # the ratio of the step sizes too, before the base constructor draws from `rng`
        checked = super()._check_sigma0(sigma0, dim)
        _, D = split_step_sizes(checked, dim, shape_matrix=False)
        if not within_ratio(D):
            ratio = float(np.max(checked) / np.min(checked))
            raise ValueError(
                "`sigma0` must have a ratio of largest to smallest step size of at most "
                f"{COND_B_MAX:g} (the ratio D may have), but got {ratio:g}."
            )
        return checked

    def _y_of(self, Z: FloatArray) -> FloatArray:
        """Return ``y = z + (sqrt(1 + |v|^2) - 1) (vbar . z) vbar`` for the rows `Z`."""
        nv2 = float(self._v @ self._v)
        vb = (self._v / math.sqrt(nv2)).astype(Z.dtype)
        coef = (math.sqrt(1.0 + nv2) - 1.0) * (Z @ vb)
        out: FloatArray = Z + np.outer(coef, vb).astype(Z.dtype)
        return out

    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        out[...] = self._y_of(Zh)
        out *= (self._sigma * self._D).astype(out.dtype)

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        # lambda_F: the finite values told, with implicit_constraints (else every candidate)
        d, lam_f = self._dim, feasible_count(self._finite_told, self._popsize, self._implicit)
        Z = Zh.astype(np.float64)
        if self._mirrored:
            Z = np.concatenate([Z, -Z])
        w_hat, w_rank = rank_weights(u)
        p_sigma = self._phases.path(self._p_sigma, w_rank @ Z)
        sq = np.einsum("ij,ij->i", Z, Z)
        phase, w = self._phases.weights(p_sigma, w_hat, w_rank, lambda: np.sqrt(sq), lam_f)
        eta_sigma = eta_sigma_of(phase, d, lam_f)
        # Nomura and Ono 2022, Algorithm 1: the mean and the path p_c.
        Y = self._y_of(Z)
        step = self._sigma * self._D * (w @ Y)  # sum_k w_k (x_k - m)
        cc = self._c_c
        p_c = (1.0 - cc) * self._p_c + math.sqrt(cc * (2.0 - cc) * self._phases.mueff) * (
            step / self._sigma
        )
        mean = self._mean + step
        # The VD natural gradient (Algorithm 2), with the rank-one row p_c / D.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # a degenerate v (|v| huge, so H or the Sherman-Morrison denominator vanish) gives
            # non-finite increments, and v and D are then kept below
            t, s = vd_increments(np.vstack([Y, p_c / self._D]), self._v)
        exw = np.append(self._eta_B * w, self._c1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v_new = self._v + (exw @ t) / math.sqrt(float(self._v @ self._v))
            D_new = self._D * (1.0 + exw @ s)
            # det(D (I + v v^T) D)^(1/(2d)), in logarithms
            D_new = D_new / math.exp(half_log_det(D_new, v_new) / d)
        ok = np.all(np.isfinite(v_new)) and np.all(np.isfinite(D_new)) and np.all(D_new > 0.0)
        if not ok or not float(v_new @ v_new) > 0.0 or not within_ratio(D_new):
            v_new, D_new = self._v, self._D
        G_s = float(w @ (sq - d)) / d
        return {
            "_mean": mean,
            "_sigma": self._sigma * math.exp(eta_sigma / 2.0 * G_s),
            "_v": v_new,
            "_D": D_new,
            "_p_sigma": p_sigma,
            "_p_c": p_c,
            "_phase": phase,
        }

    def _stds(self) -> FloatArray:
        out: FloatArray = self._sigma * self._D * np.sqrt(1.0 + self._v * self._v)
        return out

    def _sigma_value(self) -> float:
        return self._sigma

    def _condition(self, scale: FloatArray | None = None) -> float:
        # sigma**2 D (I + v v^T) D has the condition number of D (I + v v^T) D; of the
        # coordinates the box leaves free, the same form of their rows of D and v (a principal
        # submatrix, whose condition number is at most the whole's: the bound below holds);
        # in the units `scale`, D / scale in D's place
        D = self._D if scale is None else self._D / scale
        free = self._free()
        if free is not None:
            return rank_one_condition(D[free], self._v[free])
        return rank_one_condition(D, self._v)

    def _condition_at_most(self, limit: float) -> bool:
        # D^2 <= D (I + v v^T) D <= (1 + |v|^2) D^2 (Loewner order): the condition number is at
        # most (1 + |v|^2) (max D / min D)^2; half the limit is room for rounding
        ratio = float(np.max(self._D) / np.min(self._D))
        with np.errstate(over="ignore"):
            bound = (1.0 + float(self._v @ self._v)) * ratio * ratio
        return bound <= 0.5 * limit

    def _shrink_coordinates(self, excess: FloatArray) -> dict[str, object]:
        by = self._shared_divisors(excess)
        # D <- D / by scales row and column i of D (I + v v^T) D, so coordinate i's standard
        # deviation is divided by by[i] and the correlations are kept; then det = 1 again as
        # in the update, with the factor moved into sigma. A common divisor scales sigma alone.
        common = float(np.min(by))
        if not np.any(by > common):
            return {"_sigma": max(self._sigma / common, v.SIGMA_MIN)}
        D = self._D / (by / common)
        root = math.exp(half_log_det(D, self._v) / self._dim)
        D = D / root
        if not within_ratio(D):  # D held at its bound: sigma alone, as for equal divisors
            return {"_sigma": max(self._sigma / common, v.SIGMA_MIN)}
        return {"_D": D, "_sigma": max(self._sigma * root / common, v.SIGMA_MIN)}

    # ------------------------------------------------------------------ state
    def _options(self) -> JSON:
        return {"implicit_constraints": self._implicit}

    def _algo_state(self) -> JSON:
        return {
            "sigma": self._sigma,
            "v": self._v.tolist(),
            "D": self._D.tolist(),
            "p_sigma": self._p_sigma.tolist(),
            "p_c": self._p_c.tolist(),
            "phase": self._phase,
        }

    def _load_algo_state(self, state: JSON) -> None:
        d = self._dim
        sigma = v.step_size("sigma", state["sigma"])
        v_ = v.as_vector("v", state["v"], d)
        with np.errstate(over="ignore"):
            nv2 = float(v_ @ v_)
        if not 0.0 < nv2 < math.inf:  # an update never makes |v|^2 overflow: it keeps v then
            raise ValueError(
                f"`v` must be nonzero with a finite |v|^2, but got {v.short(v_.tolist())}"
            )
        D = v.as_vector("D", state["D"], d)
        if not np.all(D > 0.0):
            raise ValueError(f"`D` must be positive, but got {v.short(D.tolist())}")
        check_normalised(D, v_)  # det(D (I + v v^T) D) = 1, which every update keeps
        check_ratio(D)  # max D / min D <= COND_B_MAX, which every update keeps
        p_sigma = v.as_vector("p_sigma", state["p_sigma"], d)
        p_c = v.as_vector("p_c", state["p_c"], d)
        phase = check_phase(state["phase"])
        self._sigma, self._v, self._D = sigma, v_, D
        self._p_sigma, self._p_c, self._phase = p_sigma, p_c, phase
