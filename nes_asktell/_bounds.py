"""Box constraints by reflection.

Sampling stays in the unbounded space; each candidate ``y`` is mapped into the box by reflecting it
at the walls, periodically where both bounds are finite:

    t = (y - l) mod 2w,   x = l + min(t, 2w - t),   w = u - l

and by a single reflection where only one bound is finite. The map is the identity inside the box,
continuous, and piecewise linear with slope +-1, so the distribution update sees the unbounded
perturbation that produced each candidate and stays consistent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._typing import FloatArray


class Box:
    """Lower and upper bounds per coordinate (either may be infinite)."""

    def __init__(self, lower: FloatArray, upper: FloatArray) -> None:
        self.lower = lower
        self.upper = upper
        self._both = np.isfinite(lower) & np.isfinite(upper)
        self._lo_only = np.isfinite(lower) & ~np.isfinite(upper)
        self._hi_only = ~np.isfinite(lower) & np.isfinite(upper)
        self.active = bool(np.any(np.isfinite(lower) | np.isfinite(upper)))

    def contains(self, x: FloatArray) -> bool:
        """Return whether every coordinate of `x` (any shape ending in d) is inside the box."""
        return bool(np.all((x >= self.lower) & (x <= self.upper)))

    def clip(self, x: FloatArray) -> FloatArray:
        """Return `x` clipped into the box."""
        return np.clip(x, self.lower, self.upper)

    def reflect(self, Y: FloatArray) -> FloatArray:
        """Map the rows of `Y` into the box in place and return `Y`."""
        if not self.active:
            return Y
        outside = (self.lower > Y) | (self.upper < Y)
        if not outside.any():
            return Y
        rows = np.flatnonzero(outside.any(axis=1))
        sub = Y[rows]
        lo, hi = self.lower, self.upper
        width = hi - lo
        with np.errstate(invalid="ignore"):
            t = np.mod(sub - lo, 2.0 * width)
            both = np.where(width > 0, lo + np.minimum(t, 2.0 * width - t), lo)
        sub = np.where(self._both, both, sub)
        sub = np.where(self._lo_only & (sub < lo), 2.0 * lo - sub, sub)
        sub = np.where(self._hi_only & (sub > hi), 2.0 * hi - sub, sub)
        # Rounding can leave a value a hair outside: clip it onto the wall.
        Y[rows] = np.clip(sub, lo, hi)
        return Y


def _not_pairs(seq: list[object]) -> bool:
    """For d = 2: whether two (low, high) pairs would make no sense, so (lower, upper) is meant.

    That is when a pair has low > high, low = +inf or high = -inf, or when every pair has
    low == high (a box pinning every coordinate).
    """
    try:
        p = np.array([[np.nan if v is None else v for v in s] for s in seq], dtype=np.float64)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
    lo, hi = p[:, 0], p[:, 1]
    return bool(
        np.any(lo > hi) or np.any(lo == np.inf) or np.any(hi == -np.inf) or np.all(lo == hi)
    )


def make_box(bounds: object, dim: int) -> Box | None:
    """Parse `bounds` (None, (lower, upper), a sequence of pairs, or scipy ``Bounds``).

    For d = 2 a sequence of two sequences of two numbers is ambiguous: it is read as scipy
    reads it, two (low, high) pairs, unless that reading makes no sense (see
    :func:`_not_pairs`); pass ``scipy.optimize.Bounds(lower, upper)`` to be explicit.
    """
    if bounds is None:
        return None
    lb: object
    ub: object
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lb, ub = bounds.lb, bounds.ub
    elif isinstance(bounds, (Sequence, np.ndarray)):
        seq = list(bounds)
        if len(seq) == 2 and dim != 2 and all(np.ndim(s) <= 1 for s in seq):
            lb, ub = seq
        elif (
            len(seq) == dim
            and all(np.ndim(s) == 1 and len(s) == 2 for s in seq)
            and not (dim == 2 and _not_pairs(seq))
        ):
            lb = [np.nan if p[0] is None else p[0] for p in seq]
            ub = [np.nan if p[1] is None else p[1] for p in seq]
            lb = [-np.inf if np.isnan(v) else v for v in np.asarray(lb, dtype=float)]
            ub = [np.inf if np.isnan(v) else v for v in np.asarray(ub, dtype=float)]
        elif len(seq) == 2:
            lb, ub = seq
        else:
            raise ValueError(
                f"`bounds` must be (lower, upper) or {dim} (low, high) pairs, but got {bounds!r}."
            )
    else:
        raise TypeError(
            "`bounds` must be None, (lower, upper), a sequence of (low, high) pairs or "
            f"scipy.optimize.Bounds, but got {bounds!r}."
        )
    try:
        lower = np.broadcast_to(np.asarray(lb, dtype=np.float64), (dim,)).copy()
        upper = np.broadcast_to(np.asarray(ub, dtype=np.float64), (dim,)).copy()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"`bounds` must hold {dim} lower and {dim} upper values, but got {bounds!r}."
        ) from exc
    lower[np.isnan(lower)] = -np.inf
    upper[np.isnan(upper)] = np.inf
    if np.any(lower > upper):
        bad = int(np.flatnonzero(lower > upper)[0])
        raise ValueError(
            "`bounds` must have lower <= upper in every coordinate, but got "
            f"lower={lower[bad]} and upper={upper[bad]} at index {bad}."
        )
    if np.any(lower == np.inf) or np.any(upper == -np.inf):
        raise ValueError(f"`bounds` must not have lower=+inf or upper=-inf, but got {bounds!r}.")
    return Box(lower, upper)
