"""Reading the arguments of :func:`nes_asktell.nes` the way scipy's own methods do."""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from scipy.optimize import Bounds, OptimizeWarning

from nes_asktell._base import CRITERIA, Strategy
from nes_asktell._typing import FloatArray
from nes_asktell._validate import short

#: strategy names and where their classes live (imported on first use).
STRATEGIES: dict[str, tuple[str, str]] = {
    "xnes": ("nes_asktell._xnes", "XNES"),
    "snes": ("nes_asktell._snes", "SNES"),
    "openes": ("nes_asktell._openes", "OpenES"),
}

#: constructor arguments the adapter sets itself (they are not passed-through options).
_OWN = frozenset({"self", "x0", "sigma0", "popsize", "bounds", "rng", "maxfev", "maxiter"})


def check_constraints(constraints: object) -> None:
    """Accept None or an empty sequence; raise ValueError for anything else."""
    if constraints is None:
        return
    if isinstance(constraints, (list, tuple)) and len(constraints) == 0:
        return
    raise ValueError(
        "`constraints` must be empty: method nes handles bounds but no general constraints "
        f"(use a penalty in `fun`, or method 'trust-constr' or 'COBYQA'), but got "
        f"{short(constraints)}."
    )


def bounds_of(bounds: object, d: int) -> tuple[FloatArray, FloatArray]:
    """Return (lower, upper) arrays from every form of bounds scipy accepts."""
    if bounds is None:
        return np.full(d, -np.inf), np.full(d, np.inf)
    if isinstance(bounds, Bounds):
        lb: object = bounds.lb
        ub: object = bounds.ub
    elif isinstance(bounds, (Sequence, np.ndarray)) and not isinstance(bounds, (str, bytes)):
        pairs = list(bounds)
        if len(pairs) != d or not all(
            isinstance(p, (Sequence, np.ndarray)) and len(p) == 2 for p in pairs
        ):
            raise ValueError(
                f"`bounds` must be {d} (low, high) pairs or scipy.optimize.Bounds, "
                f"but got {short(bounds)}."
            )
        lb = [-np.inf if p[0] is None else p[0] for p in pairs]
        ub = [np.inf if p[1] is None else p[1] for p in pairs]
    else:
        raise TypeError(
            "`bounds` must be None, a sequence of (low, high) pairs or scipy.optimize.Bounds, "
            f"but got {short(bounds)}."
        )
    try:
        lower = np.broadcast_to(np.asarray(lb, dtype=np.float64), (d,)).copy()
        upper = np.broadcast_to(np.asarray(ub, dtype=np.float64), (d,)).copy()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"`bounds` must hold {d} lower and {d} upper numbers, but got {short(bounds)}."
        ) from exc
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError(f"`bounds` must not contain NaN, but got {short(bounds)}.")
    if np.any(lower > upper):
        i = int(np.flatnonzero(lower > upper)[0])
        raise ValueError(
            f"`bounds` must have low <= high, but got low={lower[i]} > high={upper[i]} "
            f"at index {i}."
        )
    if np.any(lower == np.inf) or np.any(upper == -np.inf):
        raise ValueError(f"`bounds` must not have low=+inf or high=-inf, but got {bounds!r}.")
    return lower, upper


def resolve_strategy(strategy: object) -> type[Strategy]:
    """Return the strategy class for a name or a Strategy subclass."""
    if isinstance(strategy, str):
        key = strategy.lower()
        if key not in STRATEGIES:
            raise ValueError(
                f"`strategy` must be one of {sorted(STRATEGIES)} or a Strategy subclass, "
                f"but got {strategy!r}."
            )
        module, name = STRATEGIES[key]
        cls: type[Strategy] = getattr(importlib.import_module(module), name)
        return cls
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    raise TypeError(
        f"`strategy` must be one of {sorted(STRATEGIES)} or a Strategy subclass, "
        f"but got {short(strategy)}."
    )


def budget(name: str, value: object) -> int | None:
    """Return a budget as an int (floats rounded down; None and inf mean no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number >= 1 or None, but got {short(value)}.")
    number = float(value)
    if number == math.inf:
        return None
    if not number >= 1:  # also catches NaN
        raise ValueError(f"`{name}` must be a number >= 1 or None, but got {short(value)}.")
    return int(value) if isinstance(value, numbers.Integral) else math.floor(number)


def strategy_options(cls: type[Strategy], options: dict[str, object]) -> dict[str, object]:
    """Keep the options `cls` accepts; warn about the others as scipy does."""
    accepted = set(CRITERIA) - {"maxfev", "maxiter"}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                accepted.add(p.name)
    accepted -= _OWN
    unknown = [k for k in options if k not in accepted]
    if unknown:
        warnings.warn(
            f"Unknown solver options: {', '.join(unknown)}", OptimizeWarning, stacklevel=4
        )
    return {k: val for k, val in options.items() if k in accepted}


def default_sigma0(
    x: FloatArray, lower: FloatArray, upper: FloatArray, *, per_coordinate: bool
) -> float | FloatArray:
    """Return a quarter of the box width, or ``max(1, |x0_i|) / 2`` where a bound is missing."""
    width = upper - lower
    finite = np.isfinite(width)
    scale = np.where(finite, width / 4.0, np.maximum(1.0, np.abs(x)) / 2.0)
    positive = scale[scale > 0]
    fallback = float(np.median(positive)) if positive.size else 1.0
    if per_coordinate:
        return np.where(scale > 0, scale, fallback)
    return fallback
