"""DX-NES-IC: distance-weighted exponential NES with emphasis of expansion (Nomura et al. 2021).

Also home of the pieces that CR-FM-NES (``_crfmnes``) takes from DX-NES-IC unchanged: the
root ``h_inv`` of the distance weights, the three phases and their step-size learning rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Unpack

import numpy as np
from scipy.optimize import brentq

from . import _validate as v
from ._shaping import nes_weights
from ._strategy import Strategy, check_not_one_pair
from ._typing import JSON, ArrayLike, BoundsLike, CommonOptions, FloatArray, RngLike, ShapingLike
from ._xnes import (
    COND_B_SURE,
    checked_shape,
    expm_sym_spread,
    shape_condition,
    shrink_rows_within_cond,
    split_step_sizes,
    unit_det,
    within_cond,
)

#: the phases of the search, by the length of the evolution path (Nomura et al. 2021, Sec. 4)
PHASES = ("move", "stag", "conv")


def h_inv(dim: int) -> float:
    r"""Return the root :math:`a > 0` of :math:`(1 + a^2) e^{a^2/2} / 0.24 - 10 - d = 0`.

    It scales the distance weights (Nomura et al. 2021, eq. 17; Nomura and Ono 2022). Solved
    in the logarithmic form :math:`\ln(1 + a^2) + a^2/2 = \ln(0.24 (10 + d))`, which does
    not overflow for any `dim`.

    Examples
    --------
    >>> a = h_inv(10)
    >>> bool(abs((1 + a * a) * math.exp(a * a / 2) / 0.24 - 20) < 1e-9)
    True
    """
    target = math.log(0.24 * (10.0 + dim))  # > 0 for every dim >= 1

    def g(a: float) -> float:
        return math.log1p(a * a) + 0.5 * a * a - target

    return float(brentq(g, 0.0, math.sqrt(2.0 * target) + 1.0, xtol=1e-15, rtol=1e-15))


def phase_of(norm_p: float, chi: float) -> str:
    """Return ``"move"`` if ``|p| >= chi``, ``"stag"`` if ``|p| >= chi / 10``, else ``"conv"``."""
    if norm_p >= chi:
        return "move"
    return "stag" if norm_p >= 0.1 * chi else "conv"


def eta_sigma_of(phase: str, dim: int, n_feasible: int) -> float:
    r"""Return the step-size learning rate of a phase (Nomura et al. 2021, Table 1).

    :math:`\eta_\sigma^{move} = 1`,
    :math:`\eta_\sigma^{stag} = \tanh((0.024 \lambda_F + 0.7 d + 20) / (d + 12))`,
    :math:`\eta_\sigma^{conv} = 2 \tanh((0.025 \lambda_F + 0.75 d + 10) / (d + 4))`, with
    :math:`\lambda_F` the number of feasible candidates.
    """
    if phase == "move":
        return 1.0
    if phase == "stag":
        return math.tanh((0.024 * n_feasible + 0.7 * dim + 20.0) / (dim + 12.0))
    return 2.0 * math.tanh((0.025 * n_feasible + 0.75 * dim + 10.0) / (dim + 4.0))


def distance_weights(w_hat: FloatArray, norms: FloatArray, alpha: float) -> FloatArray:
    r"""Return the distance weights :math:`w^{dist}` (Nomura et al. 2021, eq. 16).

    :math:`w^{dist}_k = \hat w_k e^{\alpha \lVert z_k \rVert} / \sum_j \hat w_j
    e^{\alpha \lVert z_j \rVert} - 1/\lambda`, computed with the largest exponent taken out
    (the ratio is unchanged and nothing overflows). `w_hat` are the non-negative rank weights
    :math:`\max(0, \ln(\lambda/2 + 1) - \ln k)` of the candidates, `norms` their
    :math:`\lVert z_k \rVert`.
    """
    a = alpha * norms
    e = w_hat * np.exp(a - a.max())
    out: FloatArray = e / e.sum() - 1.0 / w_hat.size
    return out


def rank_weights(u: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""Return the rank weights of each candidate from its utility `u` (higher is better).

    Returns :math:`(\hat w, w^{rank})` aligned with `u`: :math:`\hat w` the non-negative
    :math:`\max(0, \ln(\lambda/2 + 1) - \ln k)` of rank :math:`k` and :math:`w^{rank}` the NES
    utilities. Only the order of `u` counts; candidates tied in `u` share the weight zero
    (rank-based shapings tie only below the median).
    """
    lam = u.size
    order = np.argsort(-u, kind="stable")
    rank = np.empty(lam, dtype=np.int64)
    rank[order] = np.arange(lam)
    k = np.arange(1, lam + 1)
    hat = np.maximum(0.0, math.log(lam / 2.0 + 1.0) - np.log(k))
    return hat[rank], nes_weights(lam)[rank]


def feasible_count(n_finite: int, popsize: int, implicit: bool) -> int:
    r"""Return :math:`\lambda_F`: `n_finite` finite values told when `implicit`, at least 1.

    Without `implicit` every candidate counts.
    """
    return max(n_finite, 1) if implicit else popsize


def check_phase(phase: object) -> str:
    """Return a stored phase if it is one of :data:`PHASES`; raise ValueError otherwise."""
    if phase not in PHASES:
        raise ValueError(f"`phase` must be one of {list(PHASES)}, but got {v.short(phase)}")
    return str(phase)


class Phases:
    r"""The constants of DX-NES-IC's evolution path and phases, and the weights of a phase.

    CR-FM-NES takes them unchanged. With the NES utilities :math:`w^{rank}` of the ranks,
    :math:`\mu_{eff} = 1 / \sum_k (w^{rank}_k + 1/\lambda)^2`,
    :math:`c_\sigma = (\mu_{eff} + 2) / (d + \mu_{eff} + 5)`,
    :math:`\chi_d = \sqrt d (1 - 1/(4d) + 1/(21 d^2))` and :math:`h^{-1}(d)` of :func:`h_inv`
    (Nomura et al. 2021, Algorithm 1 and eq. 17).
    """

    def __init__(self, dim: int, popsize: int) -> None:
        self.dim, self.popsize = dim, popsize
        w = nes_weights(popsize) + 1.0 / popsize
        self.mueff = 1.0 / float(w @ w)
        self.c_sigma = (self.mueff + 2.0) / (dim + self.mueff + 5.0)
        self.chi = math.sqrt(dim) * (1.0 - 1.0 / (4.0 * dim) + 1.0 / (21.0 * dim * dim))
        self.h_inv = h_inv(dim)

    def path(self, p: FloatArray, wz: FloatArray) -> FloatArray:
        r"""Return :math:`(1 - c_\sigma) p + \sqrt{c_\sigma (2 - c_\sigma) \mu_{eff}}\, wz`.

        `wz` is :math:`\sum_k w^{rank}_k z_k`; `p` is not changed.
        """
        c = self.c_sigma
        out: FloatArray = (1.0 - c) * p + math.sqrt(c * (2.0 - c) * self.mueff) * wz
        return out

    def weights(
        self,
        p: FloatArray,
        w_hat: FloatArray,
        w_rank: FloatArray,
        norms: Callable[[], FloatArray],
        n_feasible: int,
    ) -> tuple[str, FloatArray]:
        r"""Return the phase of the path `p` and the weights of the update.

        In movement the distance weights (:func:`distance_weights`, with the norms
        :math:`\lVert z_k \rVert` that `norms` returns, called only then) with
        :math:`\alpha = h^{-1}(d) \min(1, \sqrt{\lambda / d}) \sqrt{\lambda_F / \lambda}`;
        otherwise the rank weights `w_rank`.
        """
        phase = phase_of(float(np.linalg.norm(p)), self.chi)
        if phase != "move":
            return phase, w_rank
        d, lam = self.dim, self.popsize
        alpha = self.h_inv * min(1.0, math.sqrt(lam / d)) * math.sqrt(n_feasible / lam)
        return phase, distance_weights(w_hat, norms(), alpha)


class DXNESIC(Strategy):
    r"""DX-NES-IC: XNES with distance weights, phase learning rates and emphasis of expansion.

    Parameters
    ----------
    x0 : array_like of shape (d,)
        Initial mean.
    sigma0 : float or array_like of shape (d,)
        Initial global step size, or one per coordinate: then sigma starts at their geometric
        mean and B at ``diag(sigma0 / sigma)`` (so det B = 1); the largest may be at most 1e10
        times the smallest.
    popsize : int, optional
        Candidates per generation; default ``4 + floor(3 ln d)``, rounded up to even (the
        paper samples mirrored pairs). At least 4 when mirrored: from a single pair
        ``(z, -z)`` the step size learns nothing (the two weights sum to 0 and its term is even
        in z), so 2 is rejected.
    bounds : optional
        Box constraints: None, ``(lower, upper)``, a sequence of ``(low, high)`` pairs, or
        ``scipy.optimize.Bounds``. Candidates are reflected into the box.
    rng : None, int, SeedSequence or Generator
        Source of the noise (see :class:`OpenES`).
    implicit_constraints : bool
        Count a non-finite fitness value as an infeasible candidate, as the paper does: the
        learning rates and the distance weights then use the number :math:`\lambda_F` of
        finite values. Default False: :math:`\lambda_F = \lambda`, so the update depends on
        the ranks only and a non-finite value acts exactly as the worst finite one (the
        library's promise for every strategy).
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
    Candidates are :math:`x_k = m + \sigma B z_k`, :math:`z_k \sim N(0, I)` mirrored,
    :math:`\det B = 1`. With :math:`w^{rank}_k` the NES utilities of the ranks,
    :math:`\mu_{eff} = 1 / \sum_k (w^{rank}_k + 1/\lambda)^2`,
    :math:`c_\sigma = (\mu_{eff} + 2) / (d + \mu_{eff} + 5)` and
    :math:`\chi_d = \sqrt d (1 - 1/(4d) + 1/(21 d^2))`, each generation (Nomura and Ono 2021,
    Algorithm 1):

    .. math::

        p_\sigma \leftarrow (1 - c_\sigma) p_\sigma
            + \sqrt{c_\sigma (2 - c_\sigma) \mu_{eff}} \sum_k w^{rank}_k z_k

    The phase is *movement* if :math:`\lVert p_\sigma \rVert \ge \chi_d`, *stagnation* if
    :math:`\lVert p_\sigma \rVert \ge 0.1 \chi_d`, else *convergence*. In movement the
    weights are the distance weights
    :math:`w_k \propto \hat w_k \exp(\alpha \lVert z_k \rVert)` with
    :math:`\alpha = h^{-1}(d) \min(1, \sqrt{\lambda / d}) \sqrt{\lambda_F / \lambda}`,
    otherwise :math:`w_k = w^{rank}_k`. Then, as in XNES with :math:`\eta_m = 1`,

    .. math::

        G_\delta = \sum_k w_k z_k, \quad G_M = \sum_k w_k (z_k z_k^T - I), \quad
        G_\sigma = \operatorname{tr} G_M / d, \quad G_B = G_M - G_\sigma I,

        m \leftarrow m + \sigma B G_\delta, \quad
        \sigma \leftarrow \sigma e^{\eta_\sigma G_\sigma / 2}, \quad
        B' = B \exp(\eta_B G_B / 2),

    with :math:`\eta_\sigma` from :func:`eta_sigma_of` and
    :math:`\eta_B = c\, d \tanh(0.02 \lambda_F) / (47 d^2 + 6400)`, :math:`c` = 180, 168, 12
    in movement, stagnation, convergence. Emphasis of expansion: with the eigenvectors
    :math:`e_i` of :math:`B B^T`,
    :math:`\tau_i = e_i^T B' B'^T e_i / e_i^T B B^T e_i - 1`,
    :math:`\gamma \leftarrow \max((1 - c_\gamma) \gamma + c_\gamma
    \sqrt{1 + d_\gamma \max_i \tau_i}, 1)`, :math:`c_\gamma = 1 / (3 (d - 1))`,
    :math:`d_\gamma = \min(1, d / \lambda)`; in movement,
    :math:`Q = I + (\gamma - 1) \sum_{\tau_i > 0} e_i e_i^T`,
    :math:`\sigma \leftarrow \sigma \det(Q)^{1/d}` and
    :math:`B \leftarrow Q B' / \det(Q)^{1/d}`. At :math:`d = 1`, :math:`B = 1` never
    changes and :math:`c_\gamma = 1/3`.

    The denominators of :math:`\tau_i` are computed as written,
    :math:`\lVert B^T e_i \rVert^2`, not as the eigenvalues of :math:`B B^T` (which
    rounding spoils for an ill-conditioned B). As in :class:`XNES`, B is re-normalised to
    :math:`\det B = 1` after each update (through ``slogdet``), so rounding does not drift;
    an update that would make the condition number of B exceed ``COND_B_MAX`` = 1e10 leaves
    B unchanged and :math:`\sigma` without the factor :math:`\det(Q)^{1/d}` (the shape is
    held at its conditioning limit), and ``from_state`` accepts no B beyond that bound.

    References
    ----------
    M. Nomura, N. Sakai, N. Fukushima, I. Ono. Distance-weighted Exponential Natural Evolution
    Strategy for Implicitly Constrained Black-Box Function Optimization. IEEE CEC 2021.

    M. Nomura, I. Ono. Natural Evolution Strategy for Unconstrained and Implicitly Constrained
    Problems with Ridge Structure. IEEE SSCI 2021 (arXiv:2108.09455); DX-NES-IC is restated
    there as the base of FM-NES.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import DXNESIC
    >>> es = DXNESIC(np.zeros(3), sigma0=1.0, rng=0, ftarget=1e-8)
    >>> res = es.optimize(lambda x: float(np.sum((x - [0.5, 0.1, -0.3]) ** 2)))
    >>> bool(res.fun < 1e-8)
    True
    """

    name = "dxnesic"
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
        check_not_one_pair(popsize, mirrored, self.default_mirrored, "DXNESIC")
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
        self._c_gamma = 1.0 / (3.0 * max(d - 1.0, 1.0))
        self._d_gamma = min(1.0, d / lam)
        # Dynamic state.
        self._sigma, scales = split_step_sizes(self._sigma0, d)
        self._B: FloatArray = np.diag(scales)
        self._BT: FloatArray = self._B.copy()
        # (B, an estimate of cond(B) from the update): spares stop() an SVD of B while far
        # below its limit (see _condition_at_most)
        self._cond_memo: tuple[FloatArray, float] | None = (
            self._B,
            float(np.max(scales) / np.min(scales)),
        )
        self._p_sigma: FloatArray = np.zeros(d)
        self._gamma = 1.0
        self._phase = "move"
        # The number of feasible candidates of the batch being told (set by tell).

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
    def phase(self) -> str:
        """The phase of the latest update: ``"move"``, ``"stag"`` or ``"conv"``."""
        return self._phase

    @property
    def gamma(self) -> float:
        """The expansion factor gamma (at least 1)."""
        return self._gamma

    # ------------------------------------------------------------------ protocol
    # ------------------------------------------------------------------ strategy hooks
    def _check_sigma0(self, sigma0: object, dim: int) -> FloatArray | float:
        # the ratio of the step sizes too, before the base constructor draws from `rng`
        checked = super()._check_sigma0(sigma0, dim)
        split_step_sizes(checked, dim)
        return checked

    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        BT = self._BT if self._BT.dtype == Zh.dtype else self._BT.astype(Zh.dtype)
        np.matmul(Zh, BT, out=out)
        out *= self._sigma

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        # lambda_F: the finite values told, with implicit_constraints (else every candidate)
        d, lam_f = self._dim, feasible_count(self._finite_told, self._popsize, self._implicit)
        w_hat, w_rank = rank_weights(u)
        # Nomura 2021, Algorithm 1: the evolution path with the rank weights, then the phase.
        p = self._phases.path(self._p_sigma, self._noise_sum(Zh, w_rank))

        def norms() -> FloatArray:
            out = np.sqrt(np.einsum("ij,ij->i", Zh, Zh, dtype=np.float64))
            return np.concatenate([out, out]) if self._mirrored else out

        phase, w = self._phases.weights(p, w_hat, w_rank, norms, lam_f)
        eta_sigma = eta_sigma_of(phase, d, lam_f)
        eta_B = {"move": 180.0, "stag": 168.0, "conv": 12.0}[phase] * (
            d * math.tanh(0.02 * lam_f) / (47.0 * d * d + 6400.0)
        )
        # The XNES natural gradient with the weights w (Nomura 2021, eqs. 5-8).
        we = self._even_weights(w)
        G_delta = self._noise_sum(Zh, w)
        G_M = (Zh.T * we) @ Zh
        G_M[np.diag_indices(d)] -= float(we.sum())
        G_sigma = float(np.trace(G_M)) / d
        G_M[np.diag_indices(d)] -= G_sigma
        mean = self._mean + self._sigma * (self._B @ G_delta)
        sigma = self._sigma * math.exp(eta_sigma / 2.0 * G_sigma)
        E, spread = expm_sym_spread((eta_B / 2.0) * G_M, traceless=True)
        B = self._B @ E
        # Emphasis of expansion (Nomura 2021, eqs. 18-20), with the eigenvectors e_i of B B^T:
        # tau_i = e_i^T B' B'^T e_i / e_i^T B B^T e_i - 1 = |E B^T e_i|^2 / |B^T e_i|^2 - 1. The
        # denominators are taken as written, not as the eigenvalues, which eigh gives to
        # eps * |B|^2 only (garbage, even negative, for the small ones of an ill-conditioned
        # B, and tau unbounded); so each 1 + tau_i lies within the eigenvalues of E^2.
        e, V = np.linalg.eigh(self._B @ self._B.T)
        BV = self._B.T @ V
        EBV = E @ BV
        tau = np.einsum("ij,ij->j", EBV, EBV) / np.einsum("ij,ij->j", BV, BV) - 1.0
        gamma = max(
            (1.0 - self._c_gamma) * self._gamma
            + self._c_gamma * math.sqrt(max(0.0, 1.0 + self._d_gamma * float(tau.max()))),
            1.0,
        )
        root, cond_Q = 1.0, 1.0
        if phase == "move":
            grow = tau > 0.0
            Vp = V[:, grow]
            Q = np.eye(d) + (gamma - 1.0) * (Vp @ Vp.T)
            root = gamma ** (float(np.count_nonzero(grow)) / d)  # det(Q)^(1/d)
            B = (Q @ B) / root
            cond_Q = gamma
        # As in XNES: det B = 1 again (rounding drifts it over long runs), and the shape held
        # at its conditioning limit COND_B_MAX, expansion included (a B singular to working
        # precision, or not finite, is far beyond it). cond(Q B E) <= cond(Q) cond(B) cond(E)
        # with cond(B) from the eigenvalues of B B^T, good to a few digits far below the
        # limit: the singular values are needed only when this bound passes COND_B_SURE.
        bound = (
            cond_Q * float(np.sqrt(e[-1] / e[0])) * math.exp(min(spread, 700.0))
            if e[0] > 0.0
            else math.inf
        )
        if np.all(np.isfinite(B)):
            B = unit_det(B)
        if np.all(np.isfinite(B)) and (
            bound <= COND_B_SURE or within_cond(np.linalg.svd(B, compute_uv=False))
        ):
            sigma *= root
            memo = (B, bound) if math.isfinite(bound) else None
        else:  # held
            B, memo = self._B, None
        return {
            "_mean": mean,
            "_sigma": sigma,
            "_B": B,
            "_cond_memo": memo,
            "_BT": np.ascontiguousarray(B.T),
            "_p_sigma": p,
            "_gamma": gamma,
            "_phase": phase,
        }

    def _stds(self) -> FloatArray:
        out: FloatArray = self._sigma * np.sqrt(np.einsum("ij,ij->i", self._B, self._B))
        return out

    def _sigma_value(self) -> float:
        return self._sigma

    def _condition(self, scale: FloatArray | None = None) -> float:
        # as XNES's: the rows of B in the units `scale`, of the coordinates the box leaves free
        B = self._B if scale is None else self._B / scale[:, None]
        free = self._free()
        return shape_condition(B if free is None else B[free])

    def _condition_at_most(self, limit: float) -> bool:
        # The update's estimate of cond(B) (from the eigenvalues of the previous B B^T, good to
        # a few digits while their ratio is far above the rounding of eigh, d eps): trusted
        # only 100 times below the limit of cond(B B^T) = cond(B)**2, else the SVD decides.
        memo = self._cond_memo
        return memo is not None and memo[0] is self._B and memo[1] * memo[1] <= 0.01 * limit

    def _shrink_coordinates(self, excess: FloatArray) -> dict[str, object]:
        # The rows of B scaled within COND_B_MAX, as in XNES (see shrink_rows_within_cond).
        B, sigma = shrink_rows_within_cond(self._B, self._sigma, self._shared_divisors(excess))
        out: dict[str, object] = {"_sigma": sigma}
        if B is not self._B:
            out.update(_B=B, _BT=np.ascontiguousarray(B.T))
        return out

    # ------------------------------------------------------------------ state
    def _options(self) -> JSON:
        return {"implicit_constraints": self._implicit}

    def _algo_state(self) -> JSON:
        return {
            "sigma": self._sigma,
            "B": self._B.tolist(),
            "p_sigma": self._p_sigma.tolist(),
            "gamma": self._gamma,
            "phase": self._phase,
        }

    def _load_algo_state(self, state: JSON) -> None:
        d = self._dim
        sigma = v.step_size("sigma", state["sigma"])
        B, _ = checked_shape(state["B"], d)  # det 1, condition number within COND_B_MAX
        p = v.as_vector("p_sigma", state["p_sigma"], d)
        gamma = v.real("gamma", state["gamma"])
        if not gamma >= 1.0:
            raise ValueError(f"`gamma` must be at least 1, but got {gamma}")
        phase = check_phase(state["phase"])
        self._sigma, self._B, self._p_sigma, self._gamma = sigma, B, p, gamma
        self._phase = phase
        self._BT = np.ascontiguousarray(B.T)
