"""Fitness shaping as pure functions.

Every function takes the raw fitness values of one population, ``f`` of shape ``(n,)`` where
lower is better and NaN or inf may occur, and returns utilities of the same shape where higher is
better. Non-finite values always count as the worst: rank-based shapings rank them last, and the
value-based ones (z-score, raw) replace them by the worst finite value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _validate as v
from ._typing import ArrayLike, FloatArray, IntArray

ShapingFn = Callable[[FloatArray], FloatArray]
ShapingLike = str | ShapingFn


def _fitness(f: object) -> FloatArray:
    """Return `f` as a non-empty 1-d float64 array of real numbers (NaN and inf allowed).

    The shaping functions are public: a list, or an array of another real type, is read (a
    Python int beyond the float range as +-inf and a masked entry as NaN, as ``tell`` reads
    them); anything else raises TypeError (not real numbers) or ValueError (not 1-d, empty)
    naming `f`.
    """
    if type(f) is np.ndarray and f.dtype == np.float64 and f.ndim == 1 and f.size:
        return f  # what tell passes
    # a masked value is no value: NaN, the worst, as tell reads it (ranked by the data under
    # the mask, a failed evaluation got the best utility, and zscore returned a masked array)
    f = v.unmasked(f)
    try:
        arr = np.asarray(f)
    except (TypeError, ValueError, RecursionError):  # ragged
        arr = np.asarray(None)
    if arr.dtype.kind == "O" and all(v.is_real_number(x) for x in arr.reshape(-1)):
        # as tell reads them: a Python int beyond the float range is +-inf (astype raised
        # OverflowError)
        arr = np.array([v.float_or_inf(x) for x in arr.reshape(-1)]).reshape(arr.shape)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`f` must be a 1-d array of real numbers, but got {v.short(f)}.")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`f` must be a non-empty 1-d array, but got shape {arr.shape}.")
    return arr.astype(np.float64)


def ranks(f: FloatArray) -> IntArray:
    """Return 0-based ranks, best (lowest) first; non-finite values rank last, ties by index.

    Examples
    --------
    >>> ranks(np.array([3.0, np.nan, 1.0, 2.0])).tolist()
    [2, 3, 0, 1]
    """
    key = np.where(np.isfinite(f), f, np.inf)
    order = np.argsort(key, kind="stable")
    out = np.empty(f.shape[0], dtype=np.int64)
    out[order] = np.arange(f.shape[0])
    return out


def average_ranks(x: FloatArray) -> FloatArray:
    """Return 1-based ranks of the finite `x`, ascending, tied values sharing their mean rank.

    What ``scipy.stats.rankdata(x, method="average")`` returns (to the bit), without its
    per-call overhead, which dominates for a population-sized array.

    Examples
    --------
    >>> average_ranks(np.array([0.5, -1.0, 0.5, 2.0])).tolist()
    [2.5, 1.0, 2.5, 4.0]
    """
    n = x.shape[0]
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.empty(n, dtype=bool)  # where a run of equal values starts, in sorted order
    first[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=first[1:])
    group = np.cumsum(first)  # 1-based group of each sorted position
    edges = np.append(np.flatnonzero(first), n)  # the first position of each group, and n
    # a group of positions a .. b - 1 (0-based) has the ranks a + 1 .. b: their mean
    mean = 0.5 * (edges[group] + edges[group - 1] + 1)
    out: FloatArray = np.empty(n)
    out[order] = mean
    return out


def nes_weights(n: int) -> FloatArray:
    """Return the NES utilities by rank, best first (Wierstra et al. 2014, eq. 21).

    ``u_k = max(0, ln(n/2 + 1) - ln k) / sum_j max(0, ln(n/2 + 1) - ln j) - 1/n`` for
    ``k = 1..n``. They sum to zero and do not increase with k.

    Raises
    ------
    TypeError
        If `n` is not an integer.
    ValueError
        If `n` is below 1 or above 2**31 (the most numbers the library holds in one array).

    Examples
    --------
    >>> w = nes_weights(6)
    >>> bool(abs(w.sum()) < 1e-15 and np.all(np.diff(w) <= 0))
    True
    """
    n = v.integer("n", n, minimum=1, maximum=v.MAX_ELEMENTS)
    k = np.arange(1, n + 1)
    raw = np.maximum(0.0, np.log(n / 2 + 1) - np.log(k))
    out: FloatArray = raw / raw.sum() - 1.0 / n
    return out


def positive_mueff(n: int) -> float:
    """Return ``1 / sum w_k^2`` for the positive part ``w_k`` of the NES utilities of `n` samples.

    ``w = nes_weights(n) + 1/n`` sums to 1 over the better half; this is CMA-ES's variance
    effective selection mass of those weights (Hansen 2016), which sets the rates of the
    evolution paths and of the covariance.
    """
    w = nes_weights(n) + 1.0 / n  # the positive part, summing to 1
    return 1.0 / float(np.sum(w[w > 0] ** 2))


def nes_utilities(f: ArrayLike) -> FloatArray:
    """Rank-based NES utilities: ``u[i] = nes_weights(n)[rank(f[i])]``.

    Raises
    ------
    TypeError
        If `f` is not an array of real numbers.
    ValueError
        If `f` is not a non-empty 1-d array.
    """
    f = _fitness(f)
    return nes_weights(f.shape[0])[ranks(f)]


def active_weights(f: FloatArray, mass: float) -> FloatArray:
    """Return zero-sum weights of fitness values `f` by rank, as active CMA-ES weights them.

    The better half gets the NES weights' positive shape ``ln(n/2 + 1) - ln k``, the worse
    half CMA-ES's negative log-rank weights ``ln((n + 1) / 2) - ln k`` (Hansen 2016, eq. 49;
    the worst sample weighs most), for ranks ``k = 1..n`` as :func:`ranks` gives them (a
    non-finite value ranks worst, ties by position). Each side is scaled to the total
    `mass`, so the weights sum to zero. XNES's utilities give the whole worse half the same
    weight ``-1/n``; with ``active=True`` XNES's shape update uses these instead.

    Examples
    --------
    >>> w = active_weights(np.array([3.0, 1.0, np.nan, 2.0]), 1.0)
    >>> bool(abs(w.sum()) < 1e-15), int(np.argmin(w)), int(np.argmax(w))
    (True, 2, 1)
    """
    n = f.shape[0]
    k = ranks(f) + 1.0
    pos = np.maximum(0.0, np.log(n / 2 + 1) - np.log(k))
    neg = np.minimum(0.0, np.log((n + 1) / 2) - np.log(k))
    out: FloatArray = mass * (pos / pos.sum() + neg / -neg.sum())
    return out


def centered_ranks(f: ArrayLike) -> FloatArray:
    """Centered ranks (Salimans et al. 2017): the best gets 0.5, the worst -0.5.

    Raises
    ------
    TypeError
        If `f` is not an array of real numbers.
    ValueError
        If `f` is not a non-empty 1-d array.

    Examples
    --------
    >>> centered_ranks(np.array([3.0, 1.0, 2.0])).tolist()
    [-0.5, 0.5, 0.0]
    """
    f = _fitness(f)
    n = f.shape[0]
    if n == 1:
        return np.zeros(1)
    out: FloatArray = 0.5 - ranks(f) / (n - 1.0)
    return out


def _finite_or_worst(f: FloatArray) -> FloatArray:
    finite = np.isfinite(f)
    if finite.all():
        return f
    worst = f[finite].max() if finite.any() else 0.0
    return np.where(finite, f, worst)


def zscore(f: ArrayLike) -> FloatArray:
    """Standardised fitness ``(mean(f) - f) / std(f)``, the 2017 seed's shaping.

    When all values are equal the utilities are all zero (no step), never NaN.

    Raises
    ------
    TypeError
        If `f` is not an array of real numbers.
    ValueError
        If `f` is not a non-empty 1-d array.

    Examples
    --------
    >>> zscore(np.array([1.0, 1.0])).tolist()
    [0.0, 0.0]
    >>> zscore(np.array([1e300, -1e300])).tolist()
    [-1.0, 1.0]
    """
    g = _finite_or_worst(_fitness(f))
    if np.all(g == g[0]):
        return np.zeros_like(g)  # exactly equal: no step (the mean may round, the std not 0)
    big = float(np.max(np.abs(g)))
    if not 2.0**-500 < big < 2.0**500:
        # Squares of values this large (small) overflow (underflow): scale by a power of two
        # first, which is exact and leaves the z-score unchanged.
        g = np.ldexp(g, -int(np.frexp(big)[1]))
    std = np.std(g)
    if not std > 0.0:
        return np.zeros_like(g)
    # The seed computes (R - mean(R)) / std(R) with R = -f: the same numbers, bit for bit.
    out: FloatArray = (-g - np.mean(-g)) / np.std(-g)
    if abs(float(np.mean(out))) > 1e-6 or abs(float(np.std(out)) - 1.0) > 1e-6:
        # Values a few ulps apart: their mean rounds onto one of them. Differences from the
        # median are exact there (Sterbenz), and their mean is not rounded away.
        h = g - np.median(g)
        out = (-h - np.mean(-h)) / np.std(-h)
    return out


def raw(f: ArrayLike) -> FloatArray:
    """Raw fitness as utility, ``-f``: the plain Monte-Carlo search gradient.

    Raises
    ------
    TypeError
        If `f` is not an array of real numbers.
    ValueError
        If `f` is not a non-empty 1-d array.
    """
    return -_finite_or_worst(_fitness(f))


SHAPINGS: dict[str, ShapingFn] = {
    "nes": nes_utilities,
    "centered_ranks": centered_ranks,
    "zscore": zscore,
    "raw": raw,
}


def resolve(shaping: object) -> ShapingFn:
    """Return the shaping function for a name or a callable, or raise naming `shaping`."""
    if isinstance(shaping, str):
        try:
            return SHAPINGS[shaping]
        except KeyError:
            raise ValueError(
                f"`shaping` must be one of {sorted(SHAPINGS)} or a callable, "
                f"but got {v.short(shaping)}."
            ) from None
    if callable(shaping):
        return shaping
    raise TypeError(f"`shaping` must be a string or a callable, but got {v.short(shaping)}.")


def apply(fn: ShapingFn, f: FloatArray) -> FloatArray:
    """Call a shaping function and check what it returns (a finite array of shape ``f.shape``)."""
    out = fn(f.copy())
    try:
        raw_u = np.asarray(out)
    except (TypeError, ValueError, RecursionError):  # ragged, too deep
        raw_u = np.asarray(None)
    if raw_u.dtype.kind not in "biuf":  # a string, None, complex values, ...
        raise TypeError(
            f"`shaping` must return {f.shape[0]} finite utilities, but returned {v.short(out)}."
        )
    u = raw_u.astype(np.float64)
    if u.shape != f.shape or not np.all(np.isfinite(u)):
        raise ValueError(
            f"`shaping` must return {f.shape[0]} finite utilities, but returned {v.short(u)}."
        )
    return u
