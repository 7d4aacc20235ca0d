"""Variants of XNES that need more than an option: benchmarks of ideas, not library code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from nes_asktell import _xnes
from nes_asktell._shaping import active_weights, nes_weights
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


class ActiveShapeXNES2(XNES):
    """XNES with active shape weights (``active=True``) whose worse half has twice the mass.

    :func:`~nes_asktell._shaping.active_weights` gives each side the mass of the utilities'
    positive part; here the negative side gets twice it (the shape shrinks faster where the
    worse samples lie). Its state says ``active=False``: a benchmark of an idea only.
    """

    def _has_shape_weights(self) -> bool:
        return True

    def _shape_weights(self, f: FloatArray, u: FloatArray) -> FloatArray | None:
        w = active_weights(f, float(np.sum(np.maximum(u, 0.0))))
        out: FloatArray = np.where(w < 0.0, 2.0 * w, w)
        return out


def active_utilities(f: FloatArray) -> FloatArray:
    """Return :func:`active_weights` of `f` as utilities (for every update, not the shape's).

    Each side has the mass of XNES's positive utilities.
    """
    return active_weights(f, float(np.sum(np.maximum(nes_weights(f.size), 0.0))))
