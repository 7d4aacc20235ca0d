"""Box constraints by reflection.

Sampling stays in the unbounded space; each candidate ``y`` is mapped into the box by reflecting it
at the walls, periodically where both bounds are finite:

    t = (y - l) mod 2w,   x = l + min(t, 2w - t),   w = u - l

and by a single reflection where only one bound is finite. The map is the identity inside the box,
continuous, and piecewise linear with slope +-1, so the distribution update sees the unbounded
perturbation that produced each candidate and stays consistent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np
from scipy.optimize import Bounds

from ._typing import BoundsLike, FloatArray
from ._validate import SIGMA_MAX, float_or_inf, is_real_number, short


class Box:
    """Lower and upper bounds per coordinate (either may be infinite)."""

    def __init__(self, lower: FloatArray, upper: FloatArray) -> None:
        self.lower = lower
        self.upper = upper
        self._both = np.isfinite(lower) & np.isfinite(upper)
        self._lo_only = np.isfinite(lower) & ~np.isfinite(upper)
        self._hi_only = ~np.isfinite(lower) & np.isfinite(upper)
        self.active = bool(np.any(np.isfinite(lower) | np.isfinite(upper)))
        #: the width of each coordinate bounded on both sides with room (inf elsewhere, and
        #: where lower == upper fixes the coordinate; a box wider than the largest float,
        #: [-1e308, 1e308], is inf too, without numpy's overflow warning)
        with np.errstate(over="ignore"):
            span = upper - lower
            self.widths: FloatArray = np.where(self._both & (upper > lower), span, np.inf)
        #: where a step size can span the box (a quarter of the width at most the largest step
        #: size, 1e100; fixed coordinates included): a wider box counts as no bound where a
        #: start or a default step size is taken from the box
        self.spanned = np.isfinite(span) & (span / 4.0 <= SIGMA_MAX)
        #: whether a wall or a width lies beyond half the float range, where the reflection's
        #: 2 w, 2 lo or 2 hi overflows (see :meth:`reflect`)
        with np.errstate(over="ignore", invalid="ignore"):
            doubled = np.concatenate([2.0 * span[self._both], 2.0 * lower, 2.0 * upper])
        self._huge = bool(
            np.any(np.isinf(doubled) & ~np.isinf(np.concatenate([span[self._both], lower, upper])))
        )
        # The walls as values of a narrower float type (see _walls), by dtype.
        self._walls: dict[np.dtype[np.floating], tuple[FloatArray, FloatArray]] = {}

    def to_bounds(self) -> Bounds:
        """Return the box as ``scipy.optimize.Bounds`` (infinite where unbounded)."""
        return Bounds(self.lower.copy(), self.upper.copy())

    def state_dict(self) -> list[list[float | None]]:
        """Return ``[lower, upper]`` as plain data (None for an infinite bound)."""
        return [_plain(self.lower), _plain(self.upper)]

    @classmethod
    def from_state(cls, state: object) -> Box:
        """Rebuild a box from :meth:`state_dict` output; raise ValueError if malformed."""
        if not (isinstance(state, list) and len(state) == 2):
            raise ValueError(f"`bounds` must be [lower, upper], but got {short(state)}")
        lower, upper = state
        if not (isinstance(lower, list) and isinstance(upper, list)):
            raise ValueError(f"`bounds` must be [lower, upper], but got {short(state)}")
        try:
            lo = np.array([-np.inf if x is None else x for x in lower], dtype=np.float64)
            hi = np.array([np.inf if x is None else x for x in upper], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`bounds` must hold numbers, but got {short(state)}") from exc
        if lo.shape != hi.shape:
            raise ValueError(f"`bounds` must have sides of one length, but got {short(state)}")
        return _checked_box(lo, hi, state)

    def contains(self, x: FloatArray) -> bool:
        """Return whether every coordinate of `x` (any shape ending in d) is inside the box."""
        return bool(np.all((x >= self.lower) & (x <= self.upper)))

    @functools.cached_property
    def fixed(self) -> np.ndarray:
        """The coordinates lower == upper fixes.

        Their candidates are that value, whatever the step size: no step size is fitted to them.
        (Computed once, on first use: a Box pickled before it existed answers it too.)
        """
        out: np.ndarray = np.isfinite(self.lower) & (self.lower == self.upper)
        return out

    def holds(self, x: FloatArray, dtype: type[np.floating] | np.dtype[np.floating]) -> bool:
        """Return whether `x` is a point a batch of `dtype` has in the box.

        Inside it, or (float32) between the walls :meth:`reflect` uses for `dtype`: where no
        float32 value lies in the box, the candidates are the nearest one, just outside.
        """
        if self.contains(x):
            return True
        if np.dtype(dtype) == np.float64:
            return False
        lo, hi = self._walls_of(np.dtype(dtype))
        return bool(np.all((x >= np.minimum(lo, self.lower)) & (x <= np.maximum(hi, self.upper))))

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
        # (a box wider than the largest float, [-1.8e308, 1.8e308], is inf wide: mended below)
        with np.errstate(invalid="ignore", over="ignore"):
            width = hi - lo
            t = np.mod(sub - lo, 2.0 * width)
            both = np.where(width > 0, lo + np.minimum(t, 2.0 * width - t), lo)
            off_lo, off_hi = 2.0 * lo - sub, 2.0 * hi - sub
            if self._huge:
                both, off_lo, off_hi = self._mirrored_once(sub, both, off_lo, off_hi)
        sub = np.where(self._both, both, sub)
        sub = np.where(self._lo_only & (sub < lo), off_lo, sub)
        sub = np.where(self._hi_only & (sub > hi), off_hi, sub)
        # Rounding can leave a value a hair outside: clip it onto the wall (the wall as a value
        # of Y's type, so that storing it in Y does not round it out of the box), and a mirror
        # image past the float range onto the largest float (no wall is beyond it).
        w_lo, w_hi = (lo, hi) if Y.dtype == np.float64 else self._walls_of(Y.dtype)
        sub = np.clip(sub, w_lo, w_hi)
        if self._huge:
            big = np.finfo(Y.dtype).max
            sub = np.clip(sub, -big, big)
        Y[rows] = sub
        return Y

    def _mirrored_once(
        self, sub: FloatArray, both: FloatArray, off_lo: FloatArray, off_hi: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Mend :meth:`reflect`'s images where a wall or a width lies beyond half the float range.

        There 2 w, 2 lo or 2 hi overflows: a candidate below the lower wall of [-1, 1e308]
        became ``mod(negative, inf) = inf`` and then ``min(inf, inf - inf) = NaN``. Where they
        overflow, the candidate is mirrored once off the wall it passed, ``lo + (lo - y)`` or
        ``hi - (y - hi)`` (called under numpy's errstate of :meth:`reflect`).
        """
        lo, hi = self.lower, self.upper
        below, above = lo + (lo - sub), hi - (sub - hi)
        once = np.where(sub < lo, below, np.where(sub > hi, above, sub))
        both = np.where(np.isfinite(2.0 * (hi - lo)), both, once)
        off_lo = np.where(np.isfinite(2.0 * lo), off_lo, below)
        off_hi = np.where(np.isfinite(2.0 * hi), off_hi, above)
        return both, off_lo, off_hi

    def _walls_of(self, dtype: np.dtype[np.floating]) -> tuple[FloatArray, FloatArray]:
        """Return the box's walls as the values of `dtype` nearest to them inside the box.

        float32(0.1) exceeds 0.1: a candidate clipped onto an upper wall of 0.1 and stored as
        float32 would lie outside the box, so the wall steps one float32 spacing inside. Where
        no value of `dtype` lies in the box (a coordinate fixed at a value float32 cannot hold,
        a box beyond the float32 range), the nearest finite value of `dtype` is used.
        """
        if dtype not in self._walls:
            # (cast within the finite range: 1e200 as float32 is inf, which no value reaches)
            big = float(np.finfo(dtype).max)
            lower, upper = np.clip(self.lower, -big, big), np.clip(self.upper, -big, big)
            lo, hi = lower.astype(dtype), upper.astype(dtype)
            # (a step past the largest float32 is inf: a wall of an empty box, replaced below)
            with np.errstate(invalid="ignore", over="ignore"):
                lo = np.where(lo < self.lower, np.nextafter(lo, dtype.type(np.inf)), lo)
                hi = np.where(hi > self.upper, np.nextafter(hi, dtype.type(-np.inf)), hi)
            empty = lo > hi
            nearest = lower.astype(dtype)
            lo, hi = np.where(empty, nearest, lo), np.where(empty, nearest, hi)
            self._walls[dtype] = (lo.astype(np.float64), hi.astype(np.float64))
        return self._walls[dtype]


def _plain(a: FloatArray) -> list[float | None]:
    return [float(x) if np.isfinite(x) else None for x in a]


def _not_pairs(seq: list[object]) -> bool:
    """For d = 2: whether two (low, high) pairs would make no sense, so (lower, upper) is meant.

    That is when a pair has low > high, low = +inf or high = -inf, or when every pair has
    low == high (a box pinning every coordinate).
    """
    try:
        p = np.array(
            [[np.nan if v is None else float_or_inf(v) for v in s] for s in seq],  # type: ignore[attr-defined]
            dtype=np.float64,
        )
    except (TypeError, ValueError):
        return False
    lo, hi = p[:, 0], p[:, 1]
    return bool(
        np.any(lo > hi) or np.any(lo == np.inf) or np.any(hi == -np.inf) or np.all(lo == hi)
    )


def _ndim(s: object) -> int:
    """Return ``np.ndim(s)``; a ragged nesting, which numpy cannot shape, counts as 2."""
    try:
        return int(np.ndim(s))  # type: ignore[arg-type]
    except ValueError:
        return 2


def _is_pair(s: object) -> bool:
    return (
        isinstance(s, (Sequence, np.ndarray))
        and not isinstance(s, (str, bytes))
        and _ndim(s) == 1
        and len(s) == 2
    )


def parse_bounds(bounds: BoundsLike, dim: int, *, as_scipy: bool = False) -> Box | None:
    """Return the box of `bounds`, the one parser of every form the package accepts.

    The forms: None (no box); ``scipy.optimize.Bounds``; ``(lower, upper)`` with scalars or
    arrays of length `dim`; a sequence of `dim` ``(low, high)`` pairs, as scipy takes them;
    an iterator of these (``zip(lower, upper)``, a generator), read as the list of its items,
    as scipy's methods read it.
    None (in a pair) and an infinite value mean no bound on that side; NaN is an error. For
    d = 2 a sequence of two sequences of two numbers is ambiguous: it is read as scipy reads
    it, two (low, high) pairs, unless that reading makes no sense (see :func:`_not_pairs`);
    pass ``scipy.optimize.Bounds(lower, upper)`` to be explicit. With `as_scipy` (the scipy
    method) it is always read as pairs, as scipy's own methods read it: ``[(1, 1), (2, 2)]``
    pins both coordinates, and a pair with low > high is an error.

    Raises
    ------
    TypeError
        If `bounds` is of none of these kinds.
    ValueError
        If it has the wrong length, holds NaN or non-numbers, or a lower bound above its upper.
    """
    if bounds is None:
        return None
    if isinstance(bounds, Iterator):  # zip(lb, ub), a generator of pairs: read once
        bounds = list(bounds)
    lb: object
    ub: object
    if isinstance(bounds, Bounds) or (hasattr(bounds, "lb") and hasattr(bounds, "ub")):
        lb, ub = bounds.lb, bounds.ub  # type: ignore[union-attr]
    elif isinstance(bounds, (Sequence, np.ndarray)) and not (
        isinstance(bounds, (str, bytes)) or (isinstance(bounds, np.ndarray) and bounds.ndim == 0)
    ):
        seq: list[object] = list(bounds)
        if len(seq) == 2 and dim != 2 and all(_ndim(s) <= 1 for s in seq):
            lb, ub = seq
        elif (
            len(seq) == dim
            and all(_is_pair(s) for s in seq)
            and not (dim == 2 and not as_scipy and _not_pairs(seq))
        ):
            lb = [-np.inf if p[0] is None else p[0] for p in seq]  # type: ignore[index]
            ub = [np.inf if p[1] is None else p[1] for p in seq]  # type: ignore[index]
        elif len(seq) == 2:
            lb, ub = seq
        else:
            raise ValueError(
                f"`bounds` must be (lower, upper) or {dim} (low, high) pairs, but got "
                f"{short(bounds)}."
            )
    else:
        raise TypeError(
            "`bounds` must be None, (lower, upper), a sequence of (low, high) pairs or "
            f"scipy.optimize.Bounds, but got {short(bounds)}."
        )
    return _checked_box(_side(lb, dim, bounds, -np.inf), _side(ub, dim, bounds, np.inf), bounds)


def _checked_box(lower: FloatArray, upper: FloatArray, bounds: object) -> Box:
    """Return the box (lower, upper), or raise ValueError naming `bounds`."""
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError(
            "`bounds` must not contain NaN (use None or an infinite value for no bound), "
            f"but got {short(bounds)}."
        )
    if np.any(lower > upper):
        bad = int(np.flatnonzero(lower > upper)[0])
        raise ValueError(
            "`bounds` must have lower <= upper in every coordinate, but got "
            f"lower={lower[bad]} and upper={upper[bad]} at index {bad}."
        )
    if np.any(lower == np.inf) or np.any(upper == -np.inf):
        raise ValueError(
            f"`bounds` must not have lower=+inf or upper=-inf, but got {short(bounds)}."
        )
    return Box(lower, upper)


def _side(value: object, dim: int, bounds: object, missing: float) -> FloatArray:
    """Return one side of the box as a (dim,) float64 array (None means `missing`).

    bool is no bound (numpy reads ``[True, 1.0]`` as floats); a Python number numpy holds as
    an object (a Fraction, an int beyond the float range) is read as its float, such an int
    as +-inf.
    """
    if value is None:
        return np.full(dim, missing)
    if isinstance(value, (Sequence, np.ndarray)) and not (
        isinstance(value, (str, bytes)) or (isinstance(value, np.ndarray) and value.ndim == 0)
    ):  # (a 0-d array is a scalar)
        value = [missing if x is None else x for x in value]
    try:
        if isinstance(value, list) and any(isinstance(x, (bool, np.bool_)) for x in value):
            raise TypeError("bool")
        arr = np.asarray(value)
        if arr.dtype == object and all(map(is_real_number, arr.reshape(-1))):
            arr = np.array([float_or_inf(x) for x in arr.reshape(-1)]).reshape(arr.shape)
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"dtype {arr.dtype}")
        out: FloatArray = np.broadcast_to(arr.astype(np.float64), (dim,)).copy()
        return out
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"`bounds` must hold {dim} lower and {dim} upper numbers, but got {short(bounds)}."
        ) from exc
