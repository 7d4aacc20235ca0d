"""The map between Optuna's numeric distributions and the unit cube the strategies search.

Every relative parameter becomes one coordinate in ``[0, 1]``:

* a float on a linear scale: ``u = (x - low) / (high - low)``;
* a float on a log scale: the same in ``ln x``;
* a float with a ``step`` or an int (any ``step``): the ``n`` grid values ``low, low + step, ...``
  split ``[0, 1]`` into ``n`` cells of equal width, and cell ``i`` maps to value ``i`` (so every
  value has the same share of the cube; on a float grid finer than the floats can resolve, the
  nearest cell whose float Optuna accepts as a grid value; on an int grid past 2**53, the
  nearest cell whose value Optuna takes as it is, see :func:`_nearest_accepted_int`);
* an int on a log scale: the continuous interval ``[ln(low - 1/2), ln(high + 1/2)]``, rounded to
  the nearest int.

Coordinates outside ``[0, 1]`` are clipped, so every returned value lies in its distribution.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from nes_asktell._typing import FloatArray

from ._storage import accepts

#: kinds of coordinates
_LINEAR, _LOG, _GRID, _LOGINT = "linear", "log", "grid", "logint"


def is_relative(dist: BaseDistribution) -> bool:
    """Return whether the sampler searches `dist` itself.

    It does when `dist` is numeric, has more than one value, and its bounds and its number of
    grid values are finite floats (an infinite bound, or an int beyond the float range, is left
    to the independent sampler).
    """
    if not isinstance(dist, (FloatDistribution, IntDistribution)) or dist.single():
        return False
    try:
        low, high = float(dist.low), float(dist.high)
        if isinstance(dist, IntDistribution):
            count = float((dist.high - dist.low) // dist.step)
        else:
            count = 0.0 if dist.step is None else _steps(low, high, float(dist.step))
    except OverflowError:
        return False
    return math.isfinite(low) and math.isfinite(high) and math.isfinite(count)


def _between(a: float, b: float, u: float) -> float:
    """Return ``a + u (b - a)``, also when ``b - a`` overflows."""
    if math.isfinite(b - a):
        return a + u * (b - a)
    return 2.0 * (a / 2.0 + u * (b / 2.0 - a / 2.0))


def _fraction(a: float, b: float, x: float) -> float:
    """Return ``(x - a) / (b - a)``, also when ``b - a`` overflows."""
    if math.isfinite(b - a):
        return (x - a) / (b - a)
    return (x / 2.0 - a / 2.0) / (b / 2.0 - a / 2.0)


def _steps(low: float, x: float, step: float) -> float:
    """Return ``(x - low) / step``, also when ``x - low`` overflows."""
    if math.isfinite(x - low):
        return (x - low) / step
    return x / step - low / step


#: how many grid cells on either side of its own a float grid value may move to find a float
#: that Optuna accepts as a grid value (see :func:`_nearest_accepted`)
GRID_SEARCH = 64


def _grid_value(dist: FloatDistribution | IntDistribution, idx: int) -> float:
    """Return ``low + idx * step``, also when ``idx * step`` overflows (ints are exact)."""
    step = dist.step
    assert step is not None
    value: float = dist.low + idx * step
    if not math.isfinite(value):
        value = 2.0 * (dist.low / 2.0 + idx * (step / 2.0))
    return value


def _nearest_accepted(dist: FloatDistribution, idx: int, n: int, value: float) -> float:
    """Return the value of the grid cell nearest to `idx` whose float Optuna accepts.

    On a grid finer than the floats near its bounds can resolve (``step=1e-4`` in
    ``[5e4, 6e4]``: 1e8 values, floats 7.3e-12 apart) ``low + idx * step`` often misses
    Optuna's tolerance for a grid value, and a trial given such a value is silently given an
    independent draw instead, while the strategy would be told its value as the candidate's.
    A neighbouring cell (1/n of the coordinate away) whose float is accepted, or its float
    one spacing up or down, is taken instead; if none within ``GRID_SEARCH`` cells is (a grid
    far finer than the floats: ``step`` below about 1e-8 of their spacing), `value` itself, and
    Optuna draws that parameter for the trial.
    """
    for j in range(GRID_SEARCH + 1):
        for k in (idx - j, idx + j) if j else (idx,):
            if 0 <= k < n:
                x = _grid_value(dist, k)
                for y in (x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)):
                    if accepts(dist, y):
                        return y
    return value


#: ints of at most this magnitude are floats exactly, so Optuna's check of a grid value (in
#: float) takes every int grid value within it
EXACT_INT = 2**53


#: the largest step by which :func:`_nearest_accepted_int` widens its search over floats
MAX_INT_STEP_SEARCH = 4096


def _nearest_accepted_int(dist: IntDistribution, idx: int, n: int) -> int | None:
    """Return an int near the grid value of cell `idx` that Optuna takes as it is, or None.

    Optuna checks an int in float (``(float(k) - low) % step == 0``, the subtraction rounded)
    and stores ``int(float(k))``: past 2**53 a grid value is often not a float (a multiple of
    7 near 4e17 is not one; floats there are 64 apart), fails that check or is stored as
    another int, and a trial given it silently gets an independent draw instead, while the
    strategy would be told its value as the candidate's. Taken is the nearest cell whose
    value is a float that Optuna accepts (for a step above 1; within ``GRID_SEARCH`` cells and
    twice the floats' spacing, at most ``2 MAX_INT_STEP_SEARCH``), else the nearest float
    (within ``GRID_SEARCH`` and twice `step`, at most ``2 MAX_INT_STEP_SEARCH``, floats either
    side) whose int lies in the range and is accepted (Optuna's own test of a value, against
    ``float(low)``: where `low` is no float, that test takes about one float in `step`, none of
    them on the range's own grid). If none is, None (the trial gets Optuna's own draw).
    """
    # (a grid value is a float at least every `spacing` cells: the floats' spacing at the
    # range's largest value, 2048 at 2**64; wider ranges search as far as MAX_INT_STEP_SEARCH)
    spacing = min(math.ulp(float(max(abs(dist.low), abs(dist.high)))), MAX_INT_STEP_SEARCH)
    # (with step 1 every int is a grid value: the floats below come first)
    for j in range(GRID_SEARCH + 2 * int(spacing) + 1 if dist.step > 1 else 0):
        for k in (idx - j, idx + j) if j else (idx,):
            if 0 <= k < n:
                x = dist.low + k * dist.step
                if float(x) == x and accepts(dist, x):
                    return x
    up = down = float(dist.low + idx * dist.step)
    for j in range(GRID_SEARCH + 2 * min(dist.step, MAX_INT_STEP_SEARCH) + 1):
        for y in (up, down) if j else (up,):
            if dist.low <= y <= dist.high and accepts(dist, int(y)):
                return int(y)
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
    return None


class UnitSpace:
    """The numeric parameters of a search space, mapped to ``[0, 1]^d``.

    Parameters
    ----------
    space : dict of str to FloatDistribution or IntDistribution
        The parameters, each with more than one value. They are kept in sorted name order.
    """

    def __init__(self, space: dict[str, BaseDistribution]) -> None:
        self.names = sorted(space)
        self.dists: list[FloatDistribution | IntDistribution] = []
        self._kind: list[str] = []
        self._a: list[float] = []  # start of the coordinate's interval (value or log value)
        self._b: list[float] = []  # end of the interval
        self._n: list[int] = []  # grid points (grid kind only)
        for name in self.names:
            dist = space[name]
            if not is_relative(dist):
                raise ValueError(f"`space[{name!r}]` is not a numeric range: {dist!r}.")
            assert isinstance(dist, (FloatDistribution, IntDistribution))
            self.dists.append(dist)
            low, high = float(dist.low), float(dist.high)
            step = dist.step
            if isinstance(dist, IntDistribution) and dist.log:
                kind, a, b = _LOGINT, math.log(low - 0.5), math.log(high + 0.5)
            elif dist.log:
                kind, a, b = _LOG, math.log(low), math.log(high)
            elif step is not None:
                kind, a, b = _GRID, low, high
            else:
                kind, a, b = _LINEAR, low, high
            self._kind.append(kind)
            self._a.append(a)
            self._b.append(b)
            n = 0
            if kind == _GRID and isinstance(dist, IntDistribution):
                n = (dist.high - dist.low) // dist.step + 1  # exact
            elif kind == _GRID and step:
                n = round(_steps(low, high, float(step))) + 1
            self._n.append(n)
        self.dim = len(self.names)
        # (int grids with values past EXACT_INT: see _nearest_accepted_int)
        self._past_exact = [
            isinstance(d, IntDistribution) and max(abs(d.low), abs(d.high)) > EXACT_INT
            for d in self.dists
        ]
        self._logint = np.flatnonzero([kind == _LOGINT for kind in self._kind])
        #: the number of values of each grid coordinate (0 for the others)
        self.cells = tuple(self._n)
        text = json.dumps(
            [[name, distribution_to_json(space[name])] for name in self.names],
            separators=(",", ":"),
        )
        #: a short digest that identifies the space (names and distributions)
        self.signature = hashlib.sha256(text.encode()).hexdigest()[:16]

    def cell_counts(self, u: FloatArray) -> FloatArray:
        """Return, per coordinate, how many cells as wide as the one holding `u` span ``[0, 1]``.

        A grid's ``n`` cells are alike: ``n``. An int on a log scale takes the value ``v`` on
        ``[ln(v - 1/2), ln(v + 1/2)]``, a cell the narrower the larger ``v``: the width of the
        coordinate's interval over that of the cell of the value at `u`. 0 for a continuous
        coordinate. (The margin of a generation, ``_search.Loaded``, keeps a spread of a fraction
        of the cell around its mean.)
        """
        out = np.array(self._n, dtype=float)  # (0 but for the grids)
        i = self._logint
        if i.size:
            a, b = np.array(self._a)[i], np.array(self._b)[i]
            low = np.array([float(self.dists[j].low) for j in i])
            high = np.array([float(self.dists[j].high) for j in i])
            ui = np.clip(np.asarray(u, dtype=float)[i], 0.0, 1.0)
            v = np.round(np.clip(np.exp(a + ui * (b - a)), low, high))  # as `from_unit` rounds
            # ln(v + 1/2) - ln(v - 1/2); inf where the count passes the floats (v near 1e308:
            # a cell about 1/v wide), which the margin reads as a cell of width 0, as it is
            with np.errstate(over="ignore"):
                out[i] = (b - a) / np.log1p(1.0 / (v - 0.5))
        return out

    def as_evaluated(self, U: FloatArray) -> FloatArray:
        """Return the unit-cube points at which the rows of `U` are evaluated.

        A row's parameters are ``from_unit(row)``: in a discrete coordinate (a grid, an int on
        a log scale) the value of its cell, which ``to_unit`` reads back as the cell's point.
        The continuous coordinates are the rows' own. (The surrogate is fitted to the points
        of evaluated trials, ``to_unit(params)``; it predicts a row's value at the same kind of
        point, since within a cell the objective does not change.)
        """
        discrete = [i for i, kind in enumerate(self._kind) if kind in (_GRID, _LOGINT)]
        if not discrete:
            return U
        out = np.array(U, dtype=float, copy=True)
        for r in range(out.shape[0]):
            params: dict[str, object] = dict(self.from_unit(out[r]))
            u = self.to_unit(params)
            if u is not None:
                out[r, discrete] = u[discrete]
        return out

    def edge_gaps(self, u: FloatArray) -> FloatArray:
        """Return, per coordinate, how far `u` is from its cell's one exit at an end of the range.

        A grid or log-scaled int coordinate whose `u` lies in the cell of its lowest (highest)
        value can leave that cell only upwards (downwards): below 0 (above 1) a point is
        reflected back into the same cell. The distance from `u` to that cell's inner boundary,
        in the unit coordinate; 0 for a cell with neighbours on both sides and for a
        continuous coordinate.
        """
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        out = np.zeros(self.dim)
        for i, kind in enumerate(self._kind):
            if kind == _GRID:
                n = self._n[i]
                idx = min(int(u[i] * n), n - 1)
                if idx == 0:
                    out[i] = 1.0 / n - u[i]
                elif idx == n - 1:
                    out[i] = u[i] - (n - 1) / n
            elif kind == _LOGINT:
                dist = self.dists[i]
                a, b = self._a[i], self._b[i]
                low, high = float(dist.low), float(dist.high)
                v = round(min(max(math.exp(a + u[i] * (b - a)), low), high))  # as from_unit
                if v == low:
                    out[i] = (math.log(low + 0.5) - a) / (b - a) - u[i]
                elif v == high:
                    out[i] = u[i] - (math.log(high - 0.5) - a) / (b - a)
        return np.maximum(out, 0.0)

    def from_unit(self, u: FloatArray) -> dict[str, int | float]:
        """Return the parameter values (plain int and float) of the unit-cube point `u`."""
        out: dict[str, int | float] = {}
        for i, name in enumerate(self.names):
            dist = self.dists[i]
            ui = min(max(float(u[i]), 0.0), 1.0)
            kind, a, b = self._kind[i], self._a[i], self._b[i]
            if kind == _GRID:
                n = self._n[i]
                idx = min(int(ui * n), n - 1)
                value: float = _grid_value(dist, idx)
                if isinstance(dist, FloatDistribution) and not accepts(dist, value):
                    value = _nearest_accepted(dist, idx, n, value)
                elif isinstance(dist, IntDistribution) and self._past_exact[i]:
                    found = _nearest_accepted_int(dist, idx, n)
                    value = value if found is None else found
            elif kind == _LINEAR:
                value = _between(a, b, ui)
            else:
                value = math.exp(a + ui * (b - a))
            value = min(max(value, dist.low), dist.high)
            if isinstance(dist, IntDistribution):
                out[name] = round(value)
            else:
                out[name] = float(value)
        return out

    def to_unit(self, params: dict[str, object]) -> FloatArray | None:
        """Return the unit-cube point of `params` (cell centres for grids), or None if outside."""
        u = np.empty(self.dim)
        for i, name in enumerate(self.names):
            value = params.get(name)
            # (numpy numbers too: trials made with create_trial may hold them)
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                return None
            dist = self.dists[i]
            if not dist.low <= value <= dist.high:
                return None
            x = float(value)
            if not dist.low <= x <= dist.high:
                return None
            kind, a, b = self._kind[i], self._a[i], self._b[i]
            if kind == _GRID:
                step = dist.step
                assert step is not None
                if isinstance(dist, IntDistribution) and not math.isfinite(x - dist.low):
                    idx = (2 * (int(value) - dist.low) + step) // (2 * step)  # exact
                else:
                    idx = round(_steps(dist.low, x, step))
                idx = min(max(idx, 0), self._n[i] - 1)
                u[i] = (idx + 0.5) / self._n[i]
            elif kind == _LINEAR:
                u[i] = _fraction(a, b, x)
            else:
                u[i] = (math.log(x) - a) / (b - a)
        return u
