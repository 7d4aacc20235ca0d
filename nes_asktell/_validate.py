"""Argument checks that raise errors naming the argument and the value received."""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray


def short(value: object) -> str:
    """Return ``repr(value)``, cut to 80 characters for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def flag(name: str, value: object) -> bool:
    """Return `value` as a bool, or raise TypeError naming `name`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, but got {short(value)}.")
    return bool(value)


def as_vector(name: str, value: object, dim: int | None = None) -> FloatArray:
    """Return `value` as a new finite 1-d float64 array, or raise naming `name`."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a 1-d array of numbers, but got {short(value)}.")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be a 1-d array of numbers, but got {short(value)}."
        ) from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-d, but got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, but got {short(value)}.")
    if dim is not None and arr.size != dim:
        raise ValueError(f"`{name}` must have length {dim}, but got length {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite, but got {short(value)}.")
    return arr


def positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return `value` as a positive finite float, or raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a positive finite number, but got {short(value)}.")
    out = float(value)
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be a {kind} finite number, but got {short(value)}.")
    return out


def fraction(name: str, value: object, *, closed: bool = False) -> float:
    """Return `value` as a float in [0, 1) (or [0, 1] when `closed`), or raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in [0, 1), but got {short(value)}.")
    out = float(value)
    upper_ok = out <= 1.0 if closed else out < 1.0
    if not (math.isfinite(out) and out >= 0.0 and upper_ok):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"`{name}` must be a number in {interval}, but got {short(value)}.")
    return out


def integer(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """Return `value` as an int in [`minimum`, `maximum`], or raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"`{name}` must be an integer, but got {short(value)}.")
    out = int(value)
    if out < minimum or (maximum is not None and out > maximum):
        limits = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be an integer {limits}, but got {short(out)}.")
    return out


def optional_integer(name: str, value: object, *, minimum: int) -> int | None:
    """Like :func:`integer`, but None passes through."""
    return None if value is None else integer(name, value, minimum=minimum)


def optional_float(name: str, value: object, *, allow_zero: bool = True) -> float | None:
    """Like :func:`positive_float`, but None passes through."""
    return None if value is None else positive_float(name, value, allow_zero=allow_zero)


def real(name: str, value: object) -> float:
    """Return `value` as a finite float (any sign), or raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a finite number, but got {short(value)}.")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be a finite number, but got {short(value)}.")
    return out


def fitness_vector(value: object, n: int) -> FloatArray:
    """Return told fitness values as a float64 (n,) array; non-finite values are allowed."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`fitness` must be a sequence of {n} numbers, but got {short(value)}.")
    try:
        arr: npt.NDArray[np.generic] = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`fitness` must be a sequence of {n} numbers, but got {short(value)}."
        ) from exc
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"`fitness` must be a sequence of {n} numbers, but got {short(value)}."
            ) from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`fitness` must be a sequence of {n} real numbers, but got dtype {arr.dtype}."
        )
    out = np.array(arr, dtype=np.float64).reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    out = np.array(out, dtype=np.float64)
    if out.ndim != 1 or out.size != n:
        raise ValueError(
            f"`fitness` must have shape ({n},), one value per candidate, "
            f"but got shape {arr.shape}."
        )
    return out
