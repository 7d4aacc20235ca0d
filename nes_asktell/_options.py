"""The options every strategy shares: population size, dtype and the stopping keywords.

The constructor of :class:`~nes_asktell.Strategy` checks `popsize` and `dtype` here; the
subclasses reject keywords that are neither their own options nor a stopping criterion with
:func:`check_option_names`.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate as v

#: the stopping criteria every strategy accepts as keywords.
CRITERIA = ("maxfev", "maxiter", "ftarget", "tolfun", "tolx", "tolstagnation", "timeout")


def default_popsize(dim: int) -> int:
    """Return ``4 + floor(3 ln d)`` (Wierstra et al. 2014, Table 1)."""
    return 4 + math.floor(3 * math.log(dim))


def check_popsize(popsize: object, dim: int, mirrored: bool) -> int:
    """Return `popsize` checked, or the default for `dim` (made even with `mirrored` sampling)."""
    if popsize is None:
        lam = default_popsize(dim)
        lam += lam % 2 if mirrored else 0
    else:
        lam = v.integer("popsize", popsize, minimum=2)
        if mirrored and lam % 2:
            raise ValueError(f"`popsize` must be even with mirrored sampling, but got {lam}.")
    return lam


def check_dtype(dtype: object) -> type[np.floating]:
    """Return np.float64 (the default) or np.float32, or raise naming `dtype`."""
    try:
        name = np.dtype("float64" if dtype is None else dtype).name  # type: ignore[call-overload]
    except TypeError:
        name = ""
    if name not in ("float64", "float32"):
        raise ValueError(f"`dtype` must be 'float64' or 'float32', but got {dtype!r}.")
    return np.float64 if name == "float64" else np.float32


def check_option_names(criteria: dict[str, object]) -> None:
    """Raise TypeError naming the first keyword that is not a stopping criterion."""
    unknown = sorted(set(criteria) - set(CRITERIA) - {"dtype"})
    if unknown:
        raise TypeError(
            f"unknown option `{unknown[0]}` = {criteria[unknown[0]]!r}; the options are the "
            f"documented keywords and the stopping criteria {list(CRITERIA)}."
        )
