"""A linear-quadratic surrogate of the objective, fitted by least squares (Hansen 2019).

The model of lq-CMA-ES: with ``n`` evaluated points in ``d`` dimensions it is the richest of a
linear model (``1 + d`` coefficients), a quadratic one without cross terms (``1 + 2 d``) and a
full quadratic one (``1 + d + d (d + 1) / 2``, up to ``MAX_FULL_DIM``) that has at least
``MIN_DATA_RATIO`` points per coefficient, fitted to the most recent ``MAX_DATA_RATIO`` times
the richest model's coefficients. A search uses it to choose which of a generation's samples
to evaluate first and, once its ranking agrees with the true values (Kendall's tau of at
least ``TAU_THRESHOLD`` on the most recent points), to rank the samples it did not evaluate.

References
----------
N. Hansen, "A global surrogate assisted CMA-ES", GECCO 2019, pp. 664-672.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from ._typing import FloatArray

#: model kinds, from the poorest: linear, quadratic without cross terms, full quadratic
LINEAR, DIAGONAL, FULL = 0, 1, 2
#: the least number of points per coefficient a model kind needs
MIN_DATA_RATIO = 1.1
#: the most recent points a fit uses, per coefficient of the full quadratic model
MAX_DATA_RATIO = 2.0
#: the rank agreement (Kendall's tau) from which the model ranks the samples not evaluated
TAU_THRESHOLD = 0.85
#: the least number of most recent points the rank agreement is measured on
MIN_TAU_POINTS = 15
#: the largest dimension with a full quadratic model: above it the model has no cross terms
#: (a full model has (d + 1)(d + 2) / 2 coefficients, 496 at d = 30, fitted to twice as many
#: points; at d = 100 that least-squares problem is 10,302 x 5,151 and takes minutes)
MAX_FULL_DIM = 30


def n_coefficients(dim: int, kind: int) -> int:
    """Return the number of coefficients of a model of `kind` in `dim` dimensions."""
    if kind == LINEAR:
        return 1 + dim
    if kind == DIAGONAL:
        return 1 + 2 * dim
    return 1 + dim + dim * (dim + 1) // 2


def richest(dim: int) -> int:
    """Return the richest model kind used in `dim` dimensions (see `MAX_FULL_DIM`)."""
    return FULL if dim <= MAX_FULL_DIM else DIAGONAL


def max_points(dim: int) -> int:
    """Return the most points a fit uses (and a search needs to keep) in `dim` dimensions."""
    return int(MAX_DATA_RATIO * n_coefficients(dim, richest(dim)))


def kind_for(n: int, dim: int) -> int | None:
    """Return the richest model kind that `n` points can fit, or None if not even linear."""
    for kind in range(richest(dim), LINEAR - 1, -1):
        if n >= MIN_DATA_RATIO * n_coefficients(dim, kind):
            return kind
    return None


def features(Z: FloatArray, kind: int) -> FloatArray:
    """Return the regressors of rows `Z`: 1, z, then z_i^2, then z_i z_j (i < j), by `kind`."""
    n, d = Z.shape
    cols = [np.ones((n, 1)), Z]
    if kind >= DIAGONAL:
        cols.append(Z * Z)
    if kind >= FULL:
        i, j = np.triu_indices(d, 1)
        cols.append(Z[:, i] * Z[:, j])
    return np.hstack(cols)


@dataclass(frozen=True)
class Model:
    """A fitted model: ``f(x) ~ features((x - center) / scale) @ coef``."""

    kind: int
    center: FloatArray
    scale: FloatArray
    coef: FloatArray

    def predict(self, X: FloatArray) -> FloatArray:
        """Return the model's values at the rows of `X`."""
        Z = (np.atleast_2d(X) - self.center) / self.scale
        out: FloatArray = features(Z, self.kind) @ self.coef
        return out


def fit(X: FloatArray, f: FloatArray) -> Model | None:
    """Return the model of the points `X` (oldest first) with values `f`, or None.

    None when there are too few points for a linear model, or a value is not finite. The
    points are centred and scaled per coordinate (a full quadratic model is the same model in
    any affine coordinates; the scaling only keeps the least squares well conditioned as a
    search converges and its points draw together).
    """
    n, dim = X.shape
    if n == 0 or not np.all(np.isfinite(f)) or not np.all(np.isfinite(X)):
        return None
    m = min(n, max_points(dim))
    kind = kind_for(m, dim)
    if kind is None:
        return None
    Xm, fm = X[n - m :], f[n - m :]
    center = Xm.mean(axis=0)
    scale = Xm.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    A = features((Xm - center) / scale, kind)
    with np.errstate(all="ignore"):
        coef, *_ = np.linalg.lstsq(A, fm, rcond=None)
    if not np.all(np.isfinite(coef)):
        return None
    return Model(kind, center, scale, np.asarray(coef, dtype=np.float64))


def rank_agreement(model: Model, X: FloatArray, f: FloatArray) -> float:
    """Return Kendall's tau between the model's values and `f` at the rows of `X`.

    -1 for fewer than three points, or when tau is undefined (constant values).
    """
    if X.shape[0] < 3:
        return -1.0
    with np.errstate(all="ignore"):
        tau = kendalltau(model.predict(X), f).statistic
    return float(tau) if math.isfinite(tau) else -1.0


def tau_points(n_evaluated: int, popsize: int) -> int:
    """Return how many of the most recent points the rank agreement is measured on.

    ``max(15, min(1.2 n_evaluated, 0.75 popsize))``, as lq-CMA-ES takes them, with
    `n_evaluated` the samples of the current generation evaluated so far.
    """
    return max(MIN_TAU_POINTS, min(int(1.2 * n_evaluated), int(0.75 * popsize)))


def first_batch(popsize: int) -> int:
    """Return how many samples of a generation are evaluated before the model is checked."""
    return max(1, math.ceil(popsize / 10))
