"""The runs of an IPOP sequence: the strategy class, what run r starts from, and its record.

Run 0 uses the seed exactly as the strategy would; restart ``r`` uses a seed derived from
``(seed, r)``, draws its initial mean from the same ``(seed, r)`` inside the box, and grows the
population by ``popsize_factor**r``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _noise
from ._base import Strategy
from ._bounds import Box
from ._typing import JSON, FloatArray


def strategy_classes() -> dict[str, type[Strategy]]:
    """Return the strategy classes by name (``"xnes"``, ``"snes"``, ``"openes"``)."""
    from ._openes import OpenES
    from ._snes import SNES
    from ._xnes import XNES

    return {cls.name: cls for cls in (XNES, SNES, OpenES)}


def strategy_class(strategy: object) -> type[Strategy]:
    """Return the class `strategy` names or is, or raise TypeError/ValueError naming it."""
    classes = strategy_classes()
    if isinstance(strategy, str):
        if strategy.lower() not in classes:
            raise ValueError(
                f"`strategy` must be one of {sorted(classes)} or a Strategy subclass, "
                f"but got {strategy!r}."
            )
        return classes[strategy.lower()]
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    raise TypeError(f"`strategy` must be a Strategy subclass or its name, but got {strategy!r}.")


def seed_of(rng: object) -> int:
    """Turn an `rng` argument into the integer entropy of the whole restart sequence."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    if isinstance(rng, np.random.RandomState):
        raise TypeError(
            "`rng` must be None, an int, a SeedSequence or a Generator, but got RandomState."
        )
    noise = _noise.make_noise(rng, allow_legacy=False)
    assert isinstance(noise, _noise.CounterNoise)
    return noise.entropy


def run_seed(seed: int, r: int) -> int:
    """Return the seed of run `r`: `seed` for run 0, a 128-bit seed from ``(seed, r)`` after."""
    if not r:
        return seed
    words = np.random.SeedSequence(seed, spawn_key=(r,)).generate_state(2, np.uint64)
    return int(words[0]) << 64 | int(words[1])


def restart_x0(x0: FloatArray, box: Box | None, seed: int, r: int) -> FloatArray:
    """Return the initial mean of restart `r`: uniform in `box` where both bounds are finite."""
    x0 = x0.copy()
    if box is not None:
        finite = np.isfinite(box.lower) & np.isfinite(box.upper)
        if finite.any():
            seq = np.random.SeedSequence(seed, spawn_key=(r,)).spawn(1)[0]
            u = np.random.default_rng(seq).uniform(0.0, 1.0, x0.size)
            lo, hi = box.lower[finite], box.upper[finite]
            x0[finite] = lo + u[finite] * (hi - lo)
    return x0


def restart_popsize(popsize0: int, factor: float, r: int, mirrored: bool) -> int:
    """Return the population of run `r`: ``popsize0 * factor**r``, even when `mirrored`."""
    lam = round(popsize0 * factor**r)
    if mirrored:
        lam += lam % 2
    return max(lam, 2)


def run_record(es: Strategy, stop: dict[str, float]) -> JSON:
    """Return the record of the run `es` (its criteria `stop`): an entry of ``IPOP.history``."""
    return {
        "popsize": es.popsize,
        "nfev": es.nfev,
        "generations": es.generation,
        "best_f": None if math.isinf(es.best[1]) else es.best[1],
        "stop": sorted(stop),
    }
