"""Argument checks that raise errors naming the argument and the value received."""

from __future__ import annotations

import builtins
import itertools
import math
import numbers
import reprlib
from typing import Any

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray

#: the allowed range of a step size sigma (every coordinate of SNES's): the constructors and
#: ``from_state`` reject values outside it, and an update that leaves it is clamped to it
#: (a sigma of 1e-100 has long stopped moving any candidate; one of 1e100 is no search).
SIGMA_MIN, SIGMA_MAX = 1e-100, 1e100
#: the most numbers (dim * popsize candidates, dim**2 for a full covariance) a strategy may hold
#: in one array: 2**31 float64 values are 16 GiB.
MAX_ELEMENTS = 2**31


def is_real_number(value: object) -> bool:
    """Return whether `value` is a real number: int, float, numpy real scalar, 0-d real array.

    bool, None, strings and complex numbers are not.
    """
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.dtype.kind in "iuf"
    return False


def check_size(name: str, n: int, what: str) -> None:
    """Raise ValueError naming `name` if an array of `n` numbers (`what`) exceeds the cap."""
    if n > MAX_ELEMENTS:
        raise ValueError(
            f"`{name}` asks for {what} = {n} numbers, more than the limit {MAX_ELEMENTS} "
            f"(2**31 float64 values, 16 GiB)."
        )


#: log10(2): the decimal digits per bit of an int
LOG10_2 = 0.30102999566398120


class _Short(reprlib.Repr):
    """``reprlib``'s bounded repr, with limits past what fits in a message of 80 characters.

    Every container shows at most its first 40 items and nests at most 20 levels, so the time
    and memory of printing a value are bounded whatever its size; ints and strings print as
    ``repr`` prints them (a string from its first 100 characters), not cut in the middle as
    ``reprlib`` cuts them, so a value whose repr fits in 80 characters prints exactly as
    ``repr``, and a longer one as the first characters of its ``repr``. A dict shows its
    first items as they come (``reprlib`` sorts all the keys to pick them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 20
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = 40
        self.maxset = self.maxfrozenset = self.maxdeque = 40
        self.maxother = 10_000

    def repr_str(self, x: str, level: int) -> str:
        return builtins.repr(x[:100])

    def repr_int(self, x: int, level: int) -> str:
        try:
            return builtins.repr(x)
        except ValueError:  # past Python's limit on digits: its size says enough
            return f"<int of about {int(x.bit_length() * LOG10_2) + 1} digits>"

    def repr_dict(self, x: dict[object, object], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = itertools.islice(x.items(), self.maxdict)
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in items]
        if len(x) > self.maxdict:
            pieces.append("...")
        return "{" + ", ".join(pieces) + "}"


_SHORT = _Short()


def short(value: object) -> str:
    """Return ``repr(value)``, cut to 80 characters for error messages.

    Its time and memory are bounded whatever the size of `value` (a value read from outside
    the process may hold millions of items): containers are printed from their first items
    (see ``_Short``). Never raises: a value too large to print (an int past Python's limit
    on digits) or whose ``repr`` fails is described by its type.
    """
    try:
        text = _SHORT.repr(value)
    except Exception:
        if isinstance(value, int):  # past the limit on digits: its size says enough
            return (
                f"<{type(value).__name__} of about {int(value.bit_length() * LOG10_2) + 1} digits>"
            )
        return f"<{type(value).__name__} that cannot be printed>"
    return text if len(text) <= 80 else text[:77] + "..."


#: how deeply a state (a ``from_state`` dict) may nest: the deepest of ours is 5 levels.
MAX_STATE_DEPTH = 12


def saved_state(state: object, kind: str, version: int, source: str) -> dict[str, object]:
    """Return `state` if it is plain data whose ``strategy`` is `kind` at `version`, or raise.

    `source` names what writes such states (``"IPOP.state_dict()"``) for the message.
    """
    if (
        not isinstance(state, dict)
        or state.get("strategy") != kind
        or state.get("version") != version
    ):
        raise ValueError(
            f"`state` must come from {source} (version {version}), but got {short(state)}."
        )
    plain_state("state", state)
    return state


#: the types of plain data that hold nothing (exactly these: subclasses are checked one by one)
_PLAIN_SCALARS = frozenset({type(None), bool, int, float, str})


def plain_state(name: str, value: object) -> None:
    """Raise ValueError unless `value` is plain data nested at most MAX_STATE_DEPTH deep.

    Plain data: dicts with string keys, lists, None, bool, int, float and str. The walk is
    iterative, so no input can exhaust the recursion limit here (or later, in an error
    message that prints a part of it).
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_STATE_DEPTH:
            raise ValueError(f"`{name}` is nested more than {MAX_STATE_DEPTH} levels deep.")
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ValueError(f"`{name}` holds a dict whose keys are not all strings.")
            stack.extend((x, depth + 1) for x in item.values())
        elif isinstance(item, (list, tuple)):
            # A list of plain numbers (a mean, a matrix row, a history) is checked at C speed
            # and pushes nothing: a crafted list of 10**7 floats cost 5 s and 700 MB here.
            if not set(map(type, item)) <= _PLAIN_SCALARS:
                stack.extend((x, depth + 1) for x in item)
        elif not (item is None or isinstance(item, (bool, int, float, str))):
            raise ValueError(
                f"`{name}` must hold plain data (dicts, lists, numbers, strings, None), "
                f"but holds a {type(item).__name__}."
            )


def real_rows(
    value: object, name: str = "solutions", want: str = "the real array returned by ask()"
) -> None:
    """Raise TypeError unless the told `solutions` hold real numbers (or cannot be read).

    `name` and `want` name the argument and what it must be in the message.

    numpy would read bool as 0 and 1 (also among floats in a list of rows), drop the imaginary
    part of a complex number and parse a string of digits: none of them is a row that ask()
    returned. What numpy cannot read at
    all is left to the caller, which names what it got.
    """
    if isinstance(value, (str, bytes)):
        return
    if isinstance(value, (list, tuple)) and any(
        not _NO_BOOL.isdisjoint(map(type, row))
        if isinstance(row, (list, tuple))
        else type(row) in _NO_BOOL
        for row in value
    ):  # (numpy reads [[True, 0.5]] as the floats [[1.0, 0.5]])
        raise TypeError(f"`{name}` must be {want}, but got bool values: {short(value)}.")
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError, RecursionError):
        return
    kind = arr.dtype.kind
    if kind == "O" and all(is_real_number(x) for x in arr.reshape(-1)):
        return
    if kind not in "iuf":
        what = {"b": "bool", "c": "complex", "U": "string", "S": "string"}.get(kind, "non-number")
        raise TypeError(f"`{name}` must be {want}, but got {what} values: {short(value)}.")


def told_array(solutions: object, dtype: type, want: str) -> npt.NDArray[Any]:
    """Return the told `solutions` as an array of `dtype`, or raise TypeError naming them.

    Not real numbers (:func:`real_rows`), or nothing numpy can shape (text, a ragged
    nesting): TypeError saying that `solutions` must be `want`; an int no float holds:
    ValueError.
    """
    real_rows(solutions)
    try:
        return np.asarray(solutions, dtype=dtype)
    except OverflowError as exc:
        raise ValueError(
            f"`solutions` must be {want}, but got a number no float holds: {short(solutions)}."
        ) from exc
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`solutions` must be {want}, but got {short(solutions)}.") from exc


def flag(name: str, value: object) -> bool:
    """Return `value` as a bool, or raise TypeError naming `name`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, but got {short(value)}.")
    return bool(value)


#: the types numpy would read as numbers that are no numbers here
_NO_BOOL = frozenset({bool, np.bool_})


def as_vector(name: str, value: object, dim: int | None = None) -> FloatArray:
    """Return `value` as a new finite 1-d float64 array of real numbers, or raise naming `name`.

    bool, complex, string and object elements are rejected (TypeError), as is anything nested
    too deeply to convert; a `value` longer than :data:`MAX_ELEMENTS` raises ValueError before
    it is converted.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a 1-d array of numbers, but got {short(value)}.")
    if isinstance(value, (list, tuple)) and len(value) > MAX_ELEMENTS:
        raise ValueError(f"`{name}` is too long: {len(value)} numbers.")
    # (before anything reads the elements: a crafted state's 10**7-long list took seconds)
    if (
        dim is not None
        and isinstance(value, (list, tuple))
        and len(value) != dim
        and all(not isinstance(x, (list, tuple)) for x in value[:1])
    ):
        raise ValueError(f"`{name}` must have length {dim}, but got length {len(value)}.")
    if isinstance(value, (list, tuple)) and not _NO_BOOL.isdisjoint(map(type, value)):
        # (numpy reads [True, 1, 1] as the ints [1, 1, 1]; bool and np.bool_ have no subclasses)
        raise TypeError(f"`{name}` must be a 1-d array of numbers, but got {short(value)}.")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":
            if raw.dtype.kind != "O":
                raise TypeError(f"elements of dtype {raw.dtype}")
            if not all(is_real_number(x) for x in raw.reshape(-1)):
                raise TypeError("elements that are not real numbers")
        arr = np.array(raw, dtype=np.float64)
    except OverflowError as exc:  # (an int past the float range: a number, not finite)
        raise ValueError(f"`{name}` must be finite, but got {short(value)}.") from exc
    except (TypeError, ValueError, RecursionError) as exc:
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
    kind = "non-negative" if allow_zero else "positive"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a {kind} finite number, but got {short(value)}.")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        raise ValueError(f"`{name}` must be a {kind} finite number, but got {short(value)}.")
    return out


def step_size(name: str, value: object) -> float:
    """Return `value` as a step size in [:data:`SIGMA_MIN`, :data:`SIGMA_MAX`], or raise."""
    out = positive_float(name, value)
    if not SIGMA_MIN <= out <= SIGMA_MAX:
        raise ValueError(
            f"`{name}` must be a number in [{SIGMA_MIN:g}, {SIGMA_MAX:g}], but got {short(value)}."
        )
    return out


def step_sizes(name: str, value: object, dim: int) -> float | FloatArray:
    """Return a step size, or one per coordinate (a (dim,) array), each in the allowed range.

    A scalar (or a 0-d array, or a one-element list) gives a float; a list, tuple or array of
    `dim` numbers gives a float64 array. Raise TypeError/ValueError naming `name` otherwise.
    """
    if (
        isinstance(value, (list, tuple))
        and len(value) not in (1, dim)
        and not any(isinstance(x, (list, tuple)) for x in value[:1])
    ):
        # (before the elements are read: a crafted state's 10**7-long list took 160 MB)
        raise ValueError(f"`{name}` must have shape ({dim},), but got shape ({len(value)},).")
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            if isinstance(value, (list, tuple)) and not _NO_BOOL.isdisjoint(map(type, value)):
                raise TypeError("bool")  # (numpy reads [True, 0.5] as the floats [1.0, 0.5])
            arr = np.asarray(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise TypeError(
                f"`{name}` must be a positive number or an array of {dim} positive numbers, "
                f"but got {short(value)}."
            ) from exc
        if arr.ndim == 0:
            return step_size(name, arr.item())
        if arr.dtype == object and all(map(is_real_number, arr.reshape(-1))):
            # Python numbers numpy holds as objects (a Fraction, an int beyond the floats)
            arr = np.array([float_or_inf(x) for x in arr.reshape(-1)]).reshape(arr.shape)
        if arr.dtype.kind not in "iuf":
            raise TypeError(
                f"`{name}` must be a positive number or an array of {dim} positive numbers, "
                f"but got {short(value)}."
            )
        out = np.array(arr, dtype=np.float64)
        if out.shape != (dim,):
            raise ValueError(f"`{name}` must have shape ({dim},), but got shape {out.shape}.")
        if not np.all(np.isfinite(out) & (out > 0)):
            raise ValueError(
                f"`{name}` must hold positive finite numbers, but got {short(value)}."
            )
        if not np.all((out >= SIGMA_MIN) & (out <= SIGMA_MAX)):
            raise ValueError(
                f"`{name}` must hold numbers in [{SIGMA_MIN:g}, {SIGMA_MAX:g}], but got "
                f"{short(value)}."
            )
        return out
    return step_size(name, value)


def fraction(name: str, value: object, *, closed: bool = False, positive: bool = False) -> float:
    """Return `value` as a float in [0, 1), or raise naming `name`.

    With `closed` 1 is taken too, and with `positive` 0 is not: (0, 1), (0, 1] or [0, 1].
    """
    interval = ("(" if positive else "[") + "0, 1" + ("]" if closed else ")")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in {interval}, but got {short(value)}.")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    upper_ok = out <= 1.0 if closed else out < 1.0
    lower_ok = out > 0.0 if positive else out >= 0.0
    if not (math.isfinite(out) and lower_ok and upper_ok):
        raise ValueError(f"`{name}` must be a number in {interval}, but got {short(value)}.")
    return out


def integer(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """Return `value` as an int in [`minimum`, `maximum`], or raise naming `name`.

    A whole float of any precision is taken as its int; a message quotes `value` as given.
    """
    # a whole float of any precision (np.float32(8.0) as np.float64(8.0), a float) is taken
    whole = isinstance(value, (float, np.floating)) and float(value).is_integer()
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)) and not whole:
        raise TypeError(f"`{name}` must be an integer, but got {short(value)}.")
    out: int = int(value)  # type: ignore[call-overload]
    if out < minimum or (maximum is not None and out > maximum):
        limits = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be an integer {limits}, but got {short(value)}.")
    return out


def optional_integer(name: str, value: object, *, minimum: int) -> int | None:
    """Like :func:`integer`, but None passes through."""
    return None if value is None else integer(name, value, minimum=minimum)


def extra_args(value: object) -> tuple[object, ...]:
    """Return the extra arguments of ``fun`` (a tuple or a list) as a tuple, or raise TypeError.

    A string would be spread into its characters and anything else is no sequence of
    arguments: both are refused.
    """
    if isinstance(value, (tuple, list)):
        return tuple(value)
    raise TypeError(
        f"`args` must be a tuple of the extra arguments of `fun`, but got {short(value)}."
    )


def budget(name: str, value: object) -> int | None:
    """Return a budget of a call (``maxfev``, ``maxiter``): None or ``inf`` mean no limit."""
    if isinstance(value, (float, np.floating)) and value == math.inf:
        return None
    return optional_integer(name, value, minimum=0)


def optional_float(name: str, value: object, *, allow_zero: bool = True) -> float | None:
    """Like :func:`positive_float`, but None passes through."""
    return None if value is None else positive_float(name, value, allow_zero=allow_zero)


def real(name: str, value: object) -> float:
    """Return `value` as a finite float (any sign), or raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a finite number, but got {short(value)}.")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be a finite number, but got {short(value)}.")
    return out


def float_or_inf(x: object) -> float:
    """Return the real number `x` as a float: a Python int beyond the float range is +-inf."""
    try:
        return float(x)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if x > 0 else -math.inf  # type: ignore[operator]


def unmasked(value: object) -> object:
    """Return a numeric masked array as float64 with NaN where masked; anything else as is.

    ``np.asarray`` drops the mask and keeps whatever the data holds under it, so a value the
    user masked out (a failed evaluation, say) would be ranked by that data. A masked value is
    no value: it becomes NaN, as numpy makes of the masked constant ``np.ma.masked``.
    """
    if np.ma.isMaskedArray(value) and value.dtype.kind in "iuf":
        return np.ma.filled(value.astype(np.float64), np.nan)
    return value


def fitness_vector(value: object, n: int | None) -> FloatArray:
    """Return told fitness values as a float64 (n,) array; non-finite values are allowed.

    Masked entries of a masked array are NaN (see :func:`unmasked`); a Python int beyond the
    float range is +-inf. With `n` None any number of values is taken (what
    :meth:`History.record <nes_asktell.History.record>` reads).
    """
    count = "" if n is None else f"{n} "
    value = unmasked(value)
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`fitness` must be a sequence of {count}numbers, but got {short(value)}.")
    if isinstance(value, (list, tuple)):
        # bool and None would convert silently in a list of floats; nested rows are checked below
        bad = [x for x in value if isinstance(x, (bool, np.bool_, complex)) or x is None]
        if bad:
            raise TypeError(
                f"`fitness` must be a sequence of {count}numbers, but got {short(value)} "
                f"(not a real number: {short(bad[0])})."
            )
    try:
        arr: npt.NDArray[np.generic] = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`fitness` must be a sequence of {count}numbers, but got {short(value)}."
        ) from exc
    if arr.dtype == object:
        odd = [x for x in arr.reshape(-1) if not is_real_number(x)]
        if odd:
            raise TypeError(
                f"`fitness` must be a sequence of {count}numbers, but got {short(value)} "
                f"(not a real number: {short(odd[0])})."
            )
        # a Python int beyond the float range is a real number too: it becomes +-inf
        arr = np.array([float_or_inf(x) for x in arr.reshape(-1)]).reshape(arr.shape)
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"`fitness` must be a sequence of {count}real numbers, but got dtype {arr.dtype}."
        )
    out = np.array(arr, dtype=np.float64).reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    out = np.array(out, dtype=np.float64)
    if out.ndim != 1 or (n is not None and out.size != n):
        raise ValueError(
            f"`fitness` must have shape ({'n' if n is None else n},), one value per candidate, "
            f"but got shape {arr.shape}."
        )
    return out
