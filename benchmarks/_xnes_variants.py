"""Variants of XNES that need more than an option: benchmarks of ideas, not library code."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np

from nes_asktell import _xnes
from nes_asktell._shaping import nes_weights, ranks
from nes_asktell._typing import FloatArray
from nes_asktell._xnes import XNES


class DecayingXNES(XNES):
    """XNES whose step-size rate starts at 1 and is then left to adaptation sampling.

    The rate relaxes towards its initial value (the paper's, or `eta_sigma`) and is raised (up
    to 1) when a larger one would have made the better samples more likely: rate 1 for the
    first generations, a smaller one once the step size has settled. Build it with
    ``adaptation_sampling=True`` (XNES's default, off in the Optuna sampler's options).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._eta_sigma = 1.0

    def _adapted_eta_sigma(self, u: FloatArray, Zh: FloatArray) -> float:
        with _cap(1.0):
            return super()._adapted_eta_sigma(u, Zh)


@contextlib.contextmanager
def _cap(value: float) -> Iterator[None]:
    """Set XNES's upper limit of the adapted step-size rate for a moment (one thread)."""
    old = _xnes.ETA_SIGMA_MAX
    _xnes.ETA_SIGMA_MAX = value
    try:
        yield
    finally:
        _xnes.ETA_SIGMA_MAX = old


class FirstRunDecayingXNES(DecayingXNES):
    """:class:`DecayingXNES` in a run with the default population, XNES otherwise.

    Under IPOP or BIPOP the first run (no `popsize` given) starts its step-size rate at 1;
    the restarts, which are given their population, are the default XNES.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        popsize = args[2] if len(args) > 2 else kwargs.get("popsize")
        self._fast = popsize is None
        if not self._fast:
            self._eta_sigma = self._eta_sigma0

    def _adapted_eta_sigma(self, u: FloatArray, Zh: FloatArray) -> float:
        if self._fast:
            return super()._adapted_eta_sigma(u, Zh)
        return XNES._adapted_eta_sigma(self, u, Zh)


class ActiveShapeXNES(XNES):
    """XNES whose shape update weights the worse half by rank, as active CMA-ES does.

    XNES's utilities give every sample of the worse half the same weight ``-1/popsize``. Here
    the shape gradient ``G_B`` uses zero-sum weights of the same mass on each side: the better
    half XNES's positive weights, the worse half CMA-ES's negative log-rank weights
    ``ln((popsize + 1) / 2) - ln(rank)``, so the worst samples weigh most. The ranks are those
    of the fitness values told (the utilities tie the worse half); a non-finite value ranks
    worst. The mean and the step size are updated as by XNES. Independent samples only.
    """

    _shape_only = False
    #: the mass of the negative weights, as a multiple of the positive ones' (1: zero-sum)
    negative_mass = 1.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self._mirrored:
            raise ValueError("`mirrored` must be False for ActiveShapeXNES")
        shape_fn = self._shape_fn
        self._told_f: FloatArray = np.zeros(0)

        def recorded(f: FloatArray) -> FloatArray:
            self._told_f = f.copy()
            return shape_fn(f)

        self._shape_fn = recorded

    def _even_weights(self, u: FloatArray) -> FloatArray:
        w = super()._even_weights(u)
        if not self._shape_only:
            return w
        mass = float(np.sum(np.maximum(w, 0.0)))  # that of the utilities' positive part
        return active_weights(self._told_f, mass, self.negative_mass)

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        plain = super()._updated(u, Zh)
        self._shape_only = True
        try:
            active = super()._updated(u, Zh)
        finally:
            self._shape_only = False
        return {**plain, **{k: active[k] for k in ("_B", "_BT", "_cond_memo")}}


class ActiveShapeXNES2(ActiveShapeXNES):
    """:class:`ActiveShapeXNES` with twice the mass on the worse half."""

    negative_mass = 2.0


def active_weights(f: FloatArray, mass: float, negative_mass: float = 1.0) -> FloatArray:
    """Return weights of fitness values `f` by rank, as active CMA-ES weights its samples.

    The better half gets XNES's positive weights, the worse half CMA-ES's negative log-rank
    weights ``ln((n + 1) / 2) - ln(rank)``, the worst the most; the positive side has the
    total `mass`, the negative side `negative_mass` times it (1: zero-sum).
    Ranks as :func:`~nes_asktell._shaping.ranks` gives them: a non-finite value ranks worst,
    ties by position.
    """
    n = f.size
    k = ranks(f) + 1.0  # 1 = best
    pos = np.maximum(0.0, math.log(n / 2 + 1) - np.log(k))
    neg = np.minimum(0.0, math.log((n + 1) / 2) - np.log(k))
    out: FloatArray = mass * (pos / pos.sum() + negative_mass * neg / -neg.sum())
    return out


def active_utilities(f: FloatArray) -> FloatArray:
    """Return :func:`active_weights` of `f` as utilities (for every update, not the shape's).

    Each side has the mass of XNES's positive utilities.
    """
    return active_weights(f, float(np.sum(np.maximum(nes_weights(f.size), 0.0))))
