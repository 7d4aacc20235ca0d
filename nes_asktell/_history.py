"""History: a record of a run, one row per generation, saved as CSV and drawn as four panels.

:class:`History` reads only the public properties of what it records (``generation``, ``nfev``,
``popsize``, ``best``, ``mean``, ``sigma``, ``axis_ratio``; ``strategy`` and ``restarts`` of
IPOP), so it records
any strategy, IPOP, or the ``OptimizeResult`` a callback receives. Nothing is recorded, written
or drawn unless asked for.
"""

from __future__ import annotations

import csv
import errno
import inspect
import io
import math
import os
import re
import secrets
import stat
import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from scipy.optimize import OptimizeResult

from . import _validate as v
from ._typing import ArrayLike, FloatArray

if TYPE_CHECKING:  # matplotlib is the `plot` extra, imported where it is used
    from matplotlib.figure import Figure

#: columns every history has, in order; ``mean_0``, ``mean_1``, ... follow them.
BASE_COLUMNS = (
    "generation",
    "nfev",
    "elapsed",
    "popsize",
    "restarts",
    "f_best_gen",
    "f_median_gen",
    "f_best",
    "sigma_min",
    "sigma_median",
    "sigma_max",
    "condition",
    "mean_norm",
)
#: the first line of a saved history.
MAGIC = "# nes_asktell History v2"
#: the first line of a history saved by the versions before ``restarts`` was recorded, and
#: their columns (they load with ``restarts`` NaN)
MAGIC_V1 = "# nes_asktell History v1"
V1_COLUMNS = tuple(c for c in BASE_COLUMNS if c != "restarts")
#: the largest CSV file :meth:`History.load` reads (a saved history of 10**6 generations with
#: 10 coordinates is about 250 MB).
MAX_BYTES = 1 << 30
#: the bytes :meth:`History.load` reads at a time from a pipe or a device (or a growing file)
READ_BLOCK = 1 << 20
#: the bytes :meth:`History.load` reads first, to check the first line before reading on
HEAD_BYTES = 1 << 16
PLOT_HINT = "History.plot needs matplotlib: pip install 'nes_asktell[plot]'"
#: the highest fitness History.plot draws as it is: matplotlib's log axes overflow (and fall
#: back to limits of 1 to 10, hiding every curve) when values reach about 1e240.
PLOT_CEILING = 1e200


class Recordable(Protocol):
    """What :meth:`History.record` reads: the public counters of a strategy or IPOP."""

    @property
    def generation(self) -> int: ...

    @property
    def nfev(self) -> int: ...

    @property
    def popsize(self) -> int: ...

    @property
    def best(self) -> tuple[FloatArray, float]: ...

    @property
    def mean(self) -> FloatArray: ...

    @property
    def sigma(self) -> float | FloatArray: ...


def _result_number(res: OptimizeResult, key: str, default: float) -> float:
    """Return the field `key` of `res` as a float (`default` when absent), or raise naming it.

    An int beyond the float range is +-inf, as ``tell`` reads such a fitness.
    """
    value = res.get(key)
    if value is None:
        return default
    if not v.is_real_number(value):
        raise TypeError(
            f"`intermediate_result.{key}` must be a real number, but got {v.short(value)}."
        )
    return v.float_or_inf(value)


def _result_vector(res: OptimizeResult, key: str) -> FloatArray | None:
    """Return the field `key` of `res` as a 1-d float array (None when absent), or raise."""
    value = res.get(key)
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RecursionError):  # ragged
        arr = np.asarray(None)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0:
        raise TypeError(
            f"`intermediate_result.{key}` must be a number or a 1-d array of real numbers, "
            f"but got {v.short(value)}."
        )
    return arr.astype(np.float64).ravel()


def _is_point(value: object) -> bool:
    """Return whether `value` is a point passed alone: a 1-d array, or a list or tuple of reals.

    TNC passes a callback its current point as an array, ``direct`` as a list of floats.
    """
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(v.is_real_number(e) for e in value)
    )


def _point_and_value(x: object, rest: tuple[Any, ...]) -> OptimizeResult:
    """Return the ``OptimizeResult`` of a ``callback(x, f, extra)`` call, or raise naming it.

    ``dual_annealing`` calls ``callback(x, f, context)`` and ``basinhopping``
    ``callback(x, f, accept)``: `x` is recorded as the mean and `f` as ``fun``.
    """
    if len(rest) != 2:
        raise TypeError(
            "A History is called as callback(intermediate_result), callback(xk), "
            "callback(x, f, context) or callback(x, f, accept), but got "
            f"{len(rest) + 1} values."
        )
    f = rest[0]
    if not v.is_real_number(f):
        raise TypeError(f"`f` must be a real number, but got {v.short(f)}.")
    try:
        point = np.asarray(x)
    except (TypeError, ValueError, RecursionError):  # ragged
        point = np.asarray(None)
    if point.dtype.kind not in "iuf" or point.ndim != 1 or point.size == 0:
        raise TypeError(f"`x` must be a 1-d array of real numbers, but got {v.short(x)}.")
    res = OptimizeResult()
    res["x"], res["fun"] = point, f
    return res


def _median(x: FloatArray) -> float:
    """Return the median of the non-empty `x`, finite for finite values however large.

    ``np.median`` adds the two middle values before halving them: a fitness near the largest
    float (a penalty ``sys.float_info.max`` for infeasible points) gave inf and an overflow
    warning. Halving each first gives the same value otherwise.
    """
    s = np.sort(x, axis=None)  # NaN last: NaN when there is one, as np.median
    m = s.size // 2
    if np.isnan(s[-1]):
        return math.nan
    return float(s[m]) if s.size % 2 else float(s[m - 1] / 2 + s[m] / 2)


#: the columns of a row that describe the state of a run: all but ``elapsed`` and the
#: fitness of the generation (known to one record of a generation and not to another).
STATE_COLUMNS = [
    i for i, c in enumerate(BASE_COLUMNS) if c not in {"elapsed", "f_best_gen", "f_median_gen"}
]


#: a line and the break that ends it, as ``str.splitlines`` breaks lines
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE = re.compile(f"([^{_BREAKS}]*)(?:\r\n|[{_BREAKS}])?")


class _Lines:
    """The lines of a text as ``str.splitlines`` gives them, one at a time, blank ones left out.

    `number` is the number (from 1) of the line given last, for messages, and `first` that of
    the first line given since it was last set to None (a row's first line: a stray quote makes
    the csv reader read on to the end of the file). Unlike ``splitlines``, no list of every
    line is made: a file's lines take no memory beyond the text's.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self.number = 0
        self.first: int | None = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        text = self._text
        while self._pos < len(text):
            # (the pattern matches at every position, if only the empty string)
            m = cast("re.Match[str]", _LINE.match(text, self._pos))
            self._pos = m.end()
            self.number += 1
            if not m.group(1).isspace() and m.group(1):
                if self.first is None:
                    self.first = self.number
                return m.group(1)
        self._text = ""  # let the text go
        raise StopIteration


#: the first line of a saved history of any version of the format (group 1: the version)
_ANY_MAGIC = re.compile(r"# nes_asktell History (v\d+)")


def _not_a_history(argument: str, p: Path, line: int, text: str = "") -> ValueError:
    """Return the error of a file that is no History, or one of another version of the format.

    `line` is the number of its first line that is not blank (0: none), and `text` that line.
    """
    other = _ANY_MAGIC.fullmatch(_unpadded_line(text))
    if other is not None:
        return ValueError(
            f"`{argument}` must be a History of format {MAGIC_V1.split()[-1]} or "
            f"{MAGIC.split()[-1]}, the formats this version of nes_asktell reads, but "
            f"{str(p)!r} is of format {other.group(1)} (written by another version)."
        )
    return ValueError(
        f"`{argument}` must be a CSV file written by History.save (first line {MAGIC!r}), but "
        + (
            f"line {line} of {str(p)!r} is not that line."
            if line
            else f"{str(p)!r} has no line but blank ones."
        )
    )


def _check_head(head: bytes, whole: bool, p: Path, argument: str) -> None:
    """Raise ValueError if the first bytes of a file (`whole`: all of it) show it is no History.

    Its first line that is not blank must be :data:`MAGIC` (padded by a spreadsheet, perhaps);
    a first line longer than `head` is not. Blank lines alone may be followed by anything.
    """
    # (a character cut in two at the end of the head is not the file's fault)
    text = _text_of(head if whole else head[: max(len(head) - 3, 0)], argument, p)
    lines = _Lines(text)
    first = next(lines, None)
    if first is None:
        return
    complete = whole or lines._pos < len(text) or text.endswith(tuple(_BREAKS))
    if not complete or not _is_magic(first):
        raise _not_a_history(argument, p, lines.number, first if complete else "")


def _text_of(data: bytes | bytearray, argument: str, p: Path) -> str:
    """Return the bytes of file `p` as text, or raise ValueError naming the first bad byte.

    utf-8-sig: a byte order mark, as some editors write, is not part of the text.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"`{argument}` must be a CSV file written by History.save (UTF-8 text), but byte "
            f"{exc.start} of {str(p)!r} is not UTF-8 ({exc.reason})."
        ) from None


def _unpadded_line(line: str) -> str:
    """Return `line` without the blanks around it and a spreadsheet's commas at its end."""
    return line.strip().rstrip(",").rstrip()


def _is_magic(line: str) -> bool:
    """Return whether `line` is the first line of a History, of either format (perhaps padded).

    That is :data:`MAGIC` or :data:`MAGIC_V1`, perhaps padded by a spreadsheet.
    """
    return _unpadded_line(line) in (MAGIC, MAGIC_V1)


def _unpadded(row: list[str]) -> list[str]:
    """Return `row` without the empty (or blank) fields at its end."""
    n = len(row)
    while n and not row[n - 1].strip():
        n -= 1
    return row[:n]


def _same_state(a: Sequence[float], b: Sequence[float]) -> bool:
    """Return whether the rows `a` and `b` record the same state (NaN equal to NaN).

    Generation numbers alone do not tell: two strategies recorded in turn in one History
    have the same generation numbers, and the rows of the second were dropped.
    """
    cols = STATE_COLUMNS + list(range(len(BASE_COLUMNS), len(a)))
    return bool(np.array_equal(np.take(a, cols), np.take(b, cols), equal_nan=True))


def _norm(x: FloatArray) -> float:
    """Return the Euclidean norm of `x`, scaled so that squares of large entries cannot overflow.

    ``np.linalg.norm`` squares the entries: beyond about 1.3e154 it returned inf (with a
    RuntimeWarning) for a norm well within the float range.
    """
    big = float(np.max(np.abs(x))) if x.size else 0.0
    if not (big > 0.0 and math.isfinite(big)):
        return big  # 0, inf or NaN
    return big * float(np.linalg.norm(x / big))


class History:
    """A run's history, one row per generation, to look at, save as CSV and plot.

    Use it as the `callback` of :meth:`Strategy.optimize <nes_asktell.Strategy.optimize>`,
    :meth:`IPOP.optimize <nes_asktell.IPOP.optimize>` or ``scipy.optimize.minimize(...,
    method=nes)``, or call :meth:`record` after each ``tell`` of a hand-written loop.

    Parameters
    ----------
    coordinates : int
        How many coordinates of the mean to record (the first ones; all when d is smaller).
    every : int
        Record one generation in `every` (those whose number is a multiple of it; through
        an ``OptimizeResult``, its ``nit``, or its rank when it has none): the
        ``axis_ratio`` of XNES and DXNESIC costs a singular value decomposition, O(d^3), per
        recorded generation.

    Raises
    ------
    TypeError, ValueError
        If `coordinates` is not an integer >= 0 or `every` not an integer >= 1.

    Notes
    -----
    The columns, for generation g (after its ``tell``):

    - ``generation``, ``nfev``, ``popsize``; ``elapsed``: seconds since the history was made
      (a loaded one counts on from its last row's: the time between save and load is left
      out; an unpickled one from the time elapsed when it was pickled);
    - ``restarts``: the restarts of IPOP or BIPOP begun by then (0 for a strategy alone; for
      an ``OptimizeResult``, its ``restarts``, NaN without one; NaN in a file saved before the
      column was recorded, format v1, which still loads). The tell that ends a run begins
      the next, so the row of a run's last generation holds the next run's ``restarts``,
      ``popsize``, mean and step size, with its own fitness values: the first row with a new
      ``restarts`` is the last generation of the run before;
    - ``f_best_gen`` and ``f_median_gen``: the best and the median fitness told in generation
      g (NaN when not known: :meth:`record` without `fitness`, or called with another
      optimiser's ``OptimizeResult``);
      ``f_best``: the best told so far (called with another optimiser's ``OptimizeResult``,
      the smallest ``fun`` received in the run: SLSQP's, say, is its current point's value);
    - ``sigma_min``, ``sigma_median``, ``sigma_max``: of the step size (equal for a scalar
      step size; SNES has one per coordinate);
    - ``condition``: the condition number of the scale of the search distribution (the ratio
      of its longest to its shortest axis), the strategy's
      :attr:`~nes_asktell.Strategy.axis_ratio`: ``cond(B)`` for XNES and DXNESIC, the square
      root of the condition number of ``D (I + v v^T) D`` for CRFMNES,
      ``max(sigma) / min(sigma)`` for per-coordinate step sizes, 1 for a scalar step size
      (for an ``OptimizeResult``: ``max(sigma) / min(sigma)`` of its ``sigma``, NaN without
      one);
    - ``mean_norm`` and ``mean_0``, ``mean_1``, ...: the Euclidean norm and the first
      coordinates of the mean.

    As the callback of ``scipy.optimize.minimize(..., method=nes)`` it receives the strategy
    itself each generation, as with ``optimize``, and records every column. Called with an
    ``OptimizeResult`` instead (as the callback of scipy's other methods), it records the
    fields it finds there (``nit``, ``nfev``, ``fun``, and ``mean``, ``sigma``, ``popsize``,
    ``restarts`` when present) and NaN for the others. It takes the other call forms of scipy's
    optimisers as well: a point alone (TNC's array, ``direct``'s list) is recorded as the
    mean, and ``callback(x, f, context)`` of ``dual_annealing`` and ``callback(x, f,
    accept)`` of ``basinhopping`` record ``x`` as the mean and ``f`` as ``fun``.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import XNES, History
    >>> history = History()
    >>> es = XNES(np.ones(3), sigma0=0.5, rng=0)
    >>> res = es.optimize(lambda x: float(x @ x), maxiter=30, callback=history)
    >>> len(history), history.columns[:3]
    (30, ('generation', 'nfev', 'elapsed'))
    >>> bool(history["f_best"][-1] == res.fun)
    True

    In a hand-written loop:

    >>> history = History()
    >>> es = XNES(np.ones(3), sigma0=0.5, rng=0)
    >>> for _ in range(5):
    ...     X = es.ask()
    ...     f = [float(x @ x) for x in X]
    ...     es.tell(X, f)
    ...     history.record(es, fitness=f)
    >>> history["generation"].tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0]
    """

    def __init__(self, *, coordinates: int = 10, every: int = 1) -> None:
        self._k = v.integer("coordinates", coordinates, minimum=0)
        self._every = v.integer("every", every, minimum=1)
        # the rows one after another, len(columns) values each, in one array of doubles:
        # 8 bytes a value (a list of Python floats a row took 32, and 80 more a row)
        self._flat: array[float] = array("d")
        self._columns: tuple[str, ...] | None = None
        self._t0 = time.monotonic()
        #: the number a result without ``nit`` gets: the generation after the last one seen
        self._next_nit = 1
        #: the smallest ``fun`` of the results received by ``__call__`` in the current run
        self._call_best = math.inf

    def __getstate__(self) -> dict[str, object]:
        d = self.__dict__.copy()
        # the seconds elapsed, not a reading of the monotonic clock, which means nothing in
        # another process (another machine, after a reboot): the time until the load is left
        # out, as between save() and load()
        d["_t0"] = time.monotonic() - self._t0
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        self.__dict__.update(d)
        self._t0 = time.monotonic() - float(d["_t0"])  # type: ignore[arg-type]
        old = self._columns
        if old is not None and old[: len(V1_COLUMNS)] == V1_COLUMNS:
            # pickled before `restarts` was recorded: its column, NaN, goes in each row
            table = np.asarray(self._flat, dtype=np.float64).reshape(-1, len(old))
            table = np.insert(table, BASE_COLUMNS.index("restarts"), math.nan, axis=1)
            self._flat = array("d", table.tobytes())
            self._columns = BASE_COLUMNS + old[len(V1_COLUMNS) :]

    def __copy__(self) -> History:
        # rows of its own: a shallow copy shared the array the original records into
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._flat = array("d", self._flat)
        return twin

    # ------------------------------------------------------------------ views
    @property
    def columns(self) -> tuple[str, ...]:
        """The column names (the base columns, then ``mean_0``, ``mean_1``, ...)."""
        return self._columns if self._columns is not None else BASE_COLUMNS

    def __len__(self) -> int:
        return len(self._flat) // len(self.columns)

    def _row(self, i: int) -> array[float]:
        """Return row `i` (negative: from the end) as a new array."""
        w = len(self.columns)
        i = i % len(self) if i < 0 else i
        return self._flat[i * w : (i + 1) * w]

    def __getitem__(self, name: str) -> FloatArray:
        """Return the column `name` as a float array (one value per recorded generation)."""
        if not isinstance(name, str) or name not in self.columns:
            raise KeyError(
                f"`name` must be one of the columns {list(self.columns)}, but got {v.short(name)}."
            )
        j = self.columns.index(name)
        return np.array(self._flat[j :: len(self.columns)], dtype=np.float64)

    def __iter__(self) -> Iterator[dict[str, float]]:
        """Iterate over the rows, each a dict of column name to value."""
        for i in range(len(self)):
            yield dict(zip(self.columns, self._row(i), strict=True))

    def __repr__(self) -> str:
        return f"History({len(self)} generations, columns={list(self.columns)})"

    # ------------------------------------------------------------------ recording
    def __call__(self, intermediate_result: OptimizeResult, *x_f_extra: Any) -> None:
        """Record a generation from the ``OptimizeResult`` a callback receives.

        The run loop of ``optimize`` (and ``minimize(..., method=nes)``, which hands the
        History to it) records the strategy itself instead, with the fitness of the
        generation; this form serves scipy's other methods, whose ``intermediate_result``
        holds ``x`` and ``fun`` and, for some of them, ``nfev`` and ``nit``; ``x`` is recorded
        as the mean when the result holds none. The other call forms of scipy's optimisers
        are taken too: a current point alone (a 1-d array, as TNC passes it, or a list, as
        ``direct`` does) is recorded as the mean, with the generation; ``callback(x, f,
        context)`` of ``dual_annealing`` and ``callback(x, f, accept)`` of ``basinhopping``
        record ``x`` as the mean and ``f`` as ``fun`` (the third value is not recorded).
        To scipy (``inspect.signature``) the one parameter is ``intermediate_result``, so
        that ``minimize`` and ``differential_evolution`` pass an ``OptimizeResult``.

        Raises
        ------
        TypeError
            If the call is none of these forms, or a field or value is not a real number
            (or a 1-d array of them, for a point).
        ValueError
            If ``intermediate_result.nit`` is not finite.
        """
        res = intermediate_result
        if x_f_extra:  # dual_annealing's callback(x, f, context), basinhopping's (x, f, accept)
            res = _point_and_value(intermediate_result, x_f_extra)
        elif _is_point(res):  # TNC's array or direct's list: the point alone
            point, res = res, OptimizeResult()
            res["x"] = res["mean"] = point
        if not isinstance(res, OptimizeResult):
            raise TypeError(
                "`intermediate_result` must be a scipy.optimize.OptimizeResult, but got "
                f"{v.short(res)}."
            )
        nit = _result_number(res, "nit", self._next_nit)
        if not math.isfinite(nit):
            raise ValueError(
                f"`intermediate_result.nit` must be a finite number, but got {v.short(nit)}."
            )
        # every field is checked, also in a generation that `every` leaves out
        nfev = _result_number(res, "nfev", math.nan)
        popsize = _result_number(res, "popsize", math.nan)
        restarts = _result_number(res, "restarts", math.nan)
        fun = _result_number(res, "fun", math.nan)
        sigma = _result_vector(res, "sigma")
        mean = _result_vector(res, "mean")
        if mean is None:  # another method's current point: where it searches (TNC's too)
            mean = _result_vector(res, "x")
        # ``fun`` of another method may be its current point's value (SLSQP's): f_best is the
        # smallest received in this run, a run being a sequence of increasing generation
        # numbers
        if int(nit) < self._next_nit:
            self._call_best = math.inf
        if fun < self._call_best:  # (never a NaN)
            self._call_best = fun
        f_best = self._call_best if self._call_best < math.inf else fun
        self._next_nit = int(nit) + 1
        if int(nit) % self._every and int(nit) != 0:
            return  # as record(): one generation in `every`
        self._append(
            generation=int(nit),
            nfev=nfev,
            popsize=popsize,
            restarts=restarts,
            fitness=None,
            f_best=f_best,
            sigma=sigma,
            condition=None,
            mean=mean,
        )

    # scipy passes an OptimizeResult to a callback whose one parameter is named
    # intermediate_result (inspect.signature); the values of the (x, f, extra) form are
    # accepted as well, but are not part of what scipy must see
    __call__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("intermediate_result", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ]
    )

    def record(self, es: Recordable, fitness: ArrayLike | None = None) -> None:
        """Record the current generation of `es` (a strategy or IPOP), after its ``tell``.

        Parameters
        ----------
        es : Strategy or IPOP
            Read through its public properties only.
        fitness : array_like, optional
            The fitness values told in this generation, for ``f_best_gen`` and
            ``f_median_gen`` (NaN when omitted), read as ``tell`` reads them (any number of
            values, 1-d; a masked entry is NaN, an int beyond the float range +-inf).
            Non-finite values are left out. Recording the same state again (twice, or after
            a ``tell`` that failed) adds no row; another strategy's generation of the same
            number does.

        Raises
        ------
        TypeError
            If `es` lacks one of the properties read, or `fitness` holds something other than
            real numbers (a string, a bool, None).
        ValueError
            If `fitness` is not 1-d (a row or a column of a 2-d array is read as 1-d).
        """
        for name in ("generation", "nfev", "popsize", "best", "mean", "sigma"):
            if not hasattr(es, name):
                raise TypeError(
                    f"`es` must be a strategy or IPOP (with a `{name}` property), but got "
                    f"{v.short(es)}."
                )
        # as tell() reads fitness (any number of values): masked entries are NaN, an int
        # beyond the float range is +-inf, and bool, None or a string is no fitness
        try:
            f = None if fitness is None else v.fitness_vector(fitness, None)
        except TypeError:
            raise TypeError(
                f"`fitness` must be an array of numbers or None, but got {v.short(fitness)}."
            ) from None
        if es.generation % self._every and es.generation != 0:
            return
        inner = getattr(es, "strategy", es)  # IPOP: the current run
        ratio = getattr(inner, "axis_ratio", None)
        restarts = getattr(es, "restarts", 0)  # IPOP's; a strategy alone is one run
        self._append(
            generation=es.generation,
            nfev=es.nfev,
            popsize=float(es.popsize),
            restarts=float(restarts) if v.is_real_number(restarts) else math.nan,
            fitness=f,
            f_best=float(es.best[1]),
            sigma=np.asarray(es.sigma, dtype=np.float64),
            condition=v.float_or_inf(ratio) if v.is_real_number(ratio) else None,
            mean=np.asarray(es.mean, dtype=np.float64),
        )

    def _append(
        self,
        *,
        generation: int,
        nfev: float,
        popsize: float,
        restarts: float,
        fitness: FloatArray | None,
        f_best: float,
        sigma: FloatArray | None,
        condition: float | None,
        mean: FloatArray | None,
    ) -> None:
        finite = None if fitness is None else fitness[np.isfinite(fitness)]
        nan = math.nan
        if sigma is None:
            s_min = s_med = s_max = cond = nan
        else:
            s_min, s_med, s_max = (
                float(np.min(sigma)),
                _median(sigma),
                float(np.max(sigma)),
            )
            cond = s_max / s_min if s_min > 0 else math.inf
        if condition is not None:
            cond = condition
        if self._columns is None:
            k = self._k if mean is None else min(self._k, mean.size)
            self._columns = BASE_COLUMNS + tuple(f"mean_{i}" for i in range(k))
        k = len(self._columns) - len(BASE_COLUMNS)
        coords = [nan] * k if mean is None else [float(x) for x in mean[:k]]
        coords += [nan] * (k - len(coords))
        row = [
            float(generation),
            float(nfev),
            time.monotonic() - self._t0,
            popsize,
            restarts,
            nan if finite is None or not finite.size else float(np.min(finite)),
            nan if finite is None or not finite.size else _median(finite),
            f_best,
            s_min,
            s_med,
            s_max,
            cond,
            nan if mean is None else _norm(mean),
            *coords,
        ]
        if len(self) and _same_state(self._row(-1), row):
            return  # the same generation recorded again (twice, or after a failed tell)
        self._flat.extend(row)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the history to `path` as CSV (a comment line, a header, one row a generation).

        Values are written with ``repr``, so :meth:`load` reads back exactly what was recorded.
        The file is written whole or not at all: a save that fails (a full disk, Ctrl-C)
        leaves a file saved earlier under the same name as it was. (That needs a new file
        beside it, renamed over it; in a folder that takes no new file, a file there that may
        be written is written in place, as ``open`` would, and then not whole or not at all.)

        Raises
        ------
        TypeError
            If `path` is not a file path (a string or an ``os.PathLike``).
        ValueError
            If `path` is empty.
        OSError
            If the file cannot be written, as ``open`` would raise it (PermissionError for a
            read-only file, which is not replaced).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`path` must be a file path, but got {v.short(path)}.")
        if not os.fspath(path):  # (as a Path, the directory "."; the error named that)
            raise ValueError("`path` must name a file, but got ''.")
        buf = io.StringIO()
        buf.write(MAGIC + "\n")
        writer = csv.writer(buf, lineterminator="\n")
        # before its first generation, the columns it may record: the most coordinates of the
        # mean it records (the first generation sets how many it does), so that it loads as
        # the History it is
        writer.writerow(
            self.columns
            if self._columns is not None
            else BASE_COLUMNS + tuple(f"mean_{i}" for i in range(self._k))
        )
        writer.writerows([repr(x) for x in self._row(i)] for i in range(len(self)))
        write_whole(path, buf.getvalue().encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, every: int = 1) -> History:
        """Read a history written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            The file.
        every : int
            Record one generation in `every` from now on, as ``History(every=...)``: the
            file does not hold it, so a run resumed from a checkpoint into the History of a
            run that recorded one generation in k records as it did when given k again.

        Raises
        ------
        TypeError
            If `path` is not a path, or `every` not an integer.
        ValueError
            If `every` is below 1, `path` is empty, or the file is larger than 1 GiB or is
            not a saved history (the message names the line), or one of another version of
            the format (the message names both).
        OSError
            If the file cannot be read, as ``open`` raises it (FileNotFoundError,
            IsADirectoryError, PermissionError).

        Notes
        -----
        Blank lines (anywhere), a leading byte order mark and empty fields at the end of a
        line (a spreadsheet pads its rows so) are ignored, so a file edited by hand or in a
        spreadsheet still loads. The rows take 8 bytes a value in memory; while loading,
        the file's text too. Rows recorded after the load count ``elapsed`` on from the last
        row's (the time between save and load is left out). A history saved before its first
        generation loads as the new History it was, and records the same columns.
        """
        every = v.integer("every", every, minimum=1)
        history = cls._load(path, "path")
        history._every = every
        return history

    @classmethod
    def _load(cls, path: str | os.PathLike[str], argument: str) -> History:
        """Return the history saved in `path`; the errors name it `argument`."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`{argument}` must be a file path, but got {v.short(path)}.")
        if not os.fspath(path):  # (as a Path, the directory "."; the error named that)
            raise ValueError(f"`{argument}` must name a file, but got ''.")
        p = Path(path)
        # read at most one byte more than allowed: a device or a pipe (/dev/zero) has no size
        # to check beforehand, and would be read without end. In blocks: read(n) at once
        # would allocate all n bytes (1 GiB) for every file, however small.
        with p.open("rb") as fh:
            info = os.fstat(fh.fileno())
            # the first line is checked before the rest is read: /dev/zero or a large file of
            # anything else is refused after HEAD_BYTES, not after a gigabyte
            data = bytearray(fh.read(HEAD_BYTES))
            _check_head(bytes(data), len(data) < HEAD_BYTES, p, argument)
            # a file's own size, and a byte more to see whether it grew; else blocks
            want = (
                max(info.st_size + 1 - len(data), 1) if stat.S_ISREG(info.st_mode) else READ_BLOCK
            )
            at_end = len(data) < HEAD_BYTES  # (a buffered read is short only at the end)
            while not at_end and len(data) <= MAX_BYTES:
                block = fh.read(min(want, MAX_BYTES + 1 - len(data)))
                if not block:
                    break
                data += block
                want = READ_BLOCK
        if len(data) > MAX_BYTES:
            raise ValueError(
                f"`{argument}` must be a saved History of at most {MAX_BYTES} bytes, but got "
                f"more in {str(p)!r}."
            )
        text = _text_of(data, argument, p)
        del data  # (each copy of the file is let go as soon as the next one is made)
        lines = _Lines(text)
        del text  # (the lines hold it until the last one is read)
        first = next(lines, None)  # (None: no line but blank ones)
        if first is None or not _is_magic(first):
            raise _not_a_history(argument, p, 0 if first is None else lines.number, first or "")
        base = V1_COLUMNS if _unpadded_line(first) == MAGIC_V1 else BASE_COLUMNS
        try:
            return cls._read_rows(csv.reader(lines), lines, p, argument, base)
        except csv.Error as exc:  # a field longer than the csv module's limit, say
            raise ValueError(
                f"`{argument}` line {lines.number} is not a row of numbers ({exc}) in {str(p)!r}."
            ) from exc

    @classmethod
    def _read_rows(
        cls,
        reader: Iterator[list[str]],
        lines: _Lines,
        p: Path,
        argument: str,
        base: tuple[str, ...],
    ) -> History:
        """Return the history of the header and the rows of `reader` (the lines after MAGIC).

        `base` are the columns before the mean's of the file's format: :data:`V1_COLUMNS`
        (then ``restarts`` is NaN) or :data:`BASE_COLUMNS`. Empty fields at the end of a line
        (a spreadsheet pads its rows so) are dropped.
        """
        got = next(reader, None)
        header = tuple(x.strip() for x in _unpadded(got or []))
        k = len(header) - len(base)
        if header[: len(base)] != base or header[len(base) :] != tuple(
            f"mean_{i}" for i in range(max(k, 0))
        ):
            raise ValueError(
                f"`{argument}` must have the header {','.join(base)},mean_0,..., but "
                + (
                    f"line {lines.number} is {v.short(','.join(header))}"
                    if got is not None
                    else f"the file ends after line {lines.number}"
                )
                + f" in {str(p)!r}."
            )
        out = cls(coordinates=k)
        out._columns = BASE_COLUMNS + header[len(base) :]
        restarts = None if base == BASE_COLUMNS else BASE_COLUMNS.index("restarts")
        while True:
            lines.first = None
            got = next(reader, None)
            if got is None:
                break
            row = _unpadded(got)
            if not row:
                continue  # a line of empty fields
            try:
                values = [float(x) for x in row]
            except ValueError:
                values = []
            if len(values) != len(header):
                at = lines.number if lines.first is None else lines.first
                spans = "" if at == lines.number else f" (read on to line {lines.number})"
                raise ValueError(
                    f"`{argument}` line {at} must hold {len(header)} numbers, but got "
                    f"{v.short(','.join(row))}{spans} in {str(p)!r}."
                )
            if restarts is not None:  # not recorded by the format of the file
                values.insert(restarts, math.nan)
            out._flat.extend(values)
        if not len(out):  # saved before its first generation: it records as a new History
            out._columns = None
        if len(out) and math.isfinite(out._flat[-len(out.columns)]):
            last = out._row(-1)
            out._next_nit = int(last[0]) + 1
            best = last[BASE_COLUMNS.index("f_best")]
            out._call_best = best if best < math.inf else math.inf
            out._t0 -= _seconds(last[BASE_COLUMNS.index("elapsed")])
        return out

    # ------------------------------------------------------------------ plot
    def plot(self) -> Figure:
        """Draw the history as a matplotlib Figure of four panels, against evaluations.

        Against the generations when the evaluations were not recorded (a History as the
        callback of most of scipy's methods, whose ``intermediate_result`` has no ``nfev``).

        Fitness (best so far, best and median of each generation; log scale, shifted by the
        lowest value when some are not positive), step size (min, median and max), the
        recorded coordinates of the mean, and the condition number of the scale; dotted vertical
        lines mark the restarts of IPOP and BIPOP (where ``restarts`` or the population size
        changes: a run of BIPOP may keep the population of the one before) and where a run
        recorded after another begins (its generations start again: it is drawn after the
        one before, its evaluations added to theirs); a history of one
        generation is drawn as points, fitness values above 1e200 (penalties) at 1e200, and
        infinite ones (the best so far is inf until a finite value is told) not at all. A
        panel without a curve says "not recorded" (its columns are NaN) or "no finite value"
        (they hold infinities: a run whose every value failed). The Figure is made without
        pyplot: save it with ``fig.savefig(path)``.

        Raises
        ------
        ImportError
            If matplotlib is missing (``pip install 'nes_asktell[plot]'``).
        """
        try:
            from matplotlib.collections import LineCollection
            from matplotlib.figure import Figure
        except ModuleNotFoundError as exc:
            raise ImportError(PLOT_HINT) from exc
        fig = Figure(figsize=(10, 7), layout="constrained")
        ax_f, ax_s, ax_m, ax_c = fig.subplots(2, 2, sharex=True).ravel()
        n = self["nfev"] if len(self) else np.zeros(0)
        # most of scipy's methods pass no nfev to a callback: drawn against the generations
        counted = bool(np.isfinite(n).all())
        n = n if counted else self["generation"]
        # runs recorded one after another (their generations start again): each drawn after
        # the one before, as IPOP's restarts are, and marked as they are
        gen = self["generation"] if len(self) else np.zeros(0)
        new_run = np.concatenate([[False], gen[1:] <= gen[:-1]]) if len(self) else gen > 0
        if new_run.any():
            run_of = np.cumsum(new_run)
            ends = n[:-1][new_run[1:]]  # the last x of each run but the last
            n = n + np.concatenate([[0.0], np.cumsum(ends)])[run_of]
        x_scale = _axis_scale([n])  # (a file made by hand may span the floats)
        n = n / x_scale
        # a line through one point draws nothing: a history of one generation gets markers
        dots = {"marker": "o"} if len(self) == 1 else {}
        curves = {
            "best so far": self["f_best"],
            "best of generation": self["f_best_gen"],
            "median of generation": self["f_median_gen"],
        }
        values = np.concatenate([c[np.isfinite(c)] for c in curves.values()])
        shift, tiny, label = 0.0, 0.0, "f"
        if values.size and np.min(values) <= 0:  # a log scale needs positive values
            shift = float(np.min(values))
            tiny = 1e-12 * max(1.0, abs(shift))
            label = "f (0 drawn at 1e-12)" if shift == 0 else f"f - ({shift:.6g})"
        with np.errstate(over="ignore"):  # (a span beyond the floats: capped just below)
            drawn = {name: c - shift + tiny for name, c in curves.items()}
        # a value that is not finite is no value (inf is the best so far before the first
        # finite one): not drawn, and not drawn as a penalty either
        drawn = {
            name: np.where(np.isfinite(curves[name]), c, math.nan) for name, c in drawn.items()
        }
        if any(np.any(c > PLOT_CEILING) for c in drawn.values()):  # penalties of 1e300, say
            drawn = {name: np.minimum(c, PLOT_CEILING) for name, c in drawn.items()}
            label += " (above 1e200 drawn at 1e200)"
        for name, c in drawn.items():
            if np.isfinite(c).any():
                _with_lone_points(ax_f.semilogy(n, c, label=name, **dots), n, c)
        ax_f.set_title("fitness")
        ax_f.set_ylabel(label)
        spread = self["sigma_max"] != self["sigma_min"]
        names = ("sigma_max", "sigma_median", "sigma_min") if spread.any() else ("sigma_max",)
        sigmas, capped = _capped([self[name] for name in names])
        for name, c in zip(names, sigmas, strict=True):
            if np.isfinite(c).any():
                label = name.replace("_", " ") if spread.any() else "sigma"
                _with_lone_points(ax_s.semilogy(n, c, label=label, **dots), n, c)
        ax_s.set_title("step size" + (" (above 1e200 drawn at 1e200)" if capped else ""))
        mean_cols = [
            c
            for c in self.columns
            if c.startswith("mean_") and c != "mean_norm" and np.isfinite(self[c]).any()
        ]
        coords = [self[name] for name in mean_cols]
        scale = _axis_scale(coords)
        for name, c in zip(mean_cols, coords, strict=True):
            if np.isfinite(c).any():
                lines = ax_m.plot(n, c / scale, lw=1, label=name.replace("mean_", "x"), **dots)
                _with_lone_points(lines, n, c / scale)
        ax_m.set_title(f"mean, first {len(mean_cols)} coordinates" if mean_cols else "mean")
        if scale != 1.0:
            ax_m.set_ylabel(f"x / {scale:.0e}")
        (condition,), capped = _capped([self["condition"]])
        if np.isfinite(condition).any():
            _with_lone_points(ax_c.semilogy(n, condition, **dots), n, condition)
        ax_c.set_title(
            "condition (longest / shortest axis)" + (", above 1e200 at 1e200" if capped else "")
        )
        # a restart: a new run of IPOP or BIPOP (one that keeps the population too), a new
        # population (a file of the first format, or of another tool, records no runs)
        changed = np.zeros(max(len(self) - 1, 0), dtype=bool)
        for name in ("restarts", "popsize"):
            c = self[name]
            changed |= (c[1:] != c[:-1]) & np.isfinite(c[1:]) & np.isfinite(c[:-1])
        restarts = n[1:][changed | new_run[1:]]
        # whether a panel has a curve, before the marks of the restarts are added to it
        curved = {ax: ax.has_data() for ax in (ax_f, ax_s, ax_m, ax_c)}
        # a panel without one: its columns hold NaN only (not recorded), or infinities too
        # (recorded, none finite: a run whose every value failed has a best so far of inf)
        columns_of = {
            ax_f: ("f_best", "f_best_gen", "f_median_gen"),
            ax_s: ("sigma_min", "sigma_median", "sigma_max"),
            ax_m: tuple(c for c in self.columns if c.startswith("mean_") and c != "mean_norm"),
            ax_c: ("condition",),
        }
        for ax in (ax_f, ax_s, ax_m, ax_c):
            ax.grid(True, which="major", alpha=0.4)
            if restarts.size:  # a restart of IPOP or BIPOP
                # one collection, not a line each: thousands of changes (BIPOP's regimes, a
                # file of another tool) took a minute and a GB as lines
                ax.add_collection(
                    LineCollection(
                        [[(x, 0.0), (x, 1.0)] for x in restarts],
                        colors="0.5",
                        linestyles=":",
                        linewidths=1,
                        transform=ax.get_xaxis_transform(),
                    ),
                    autolim=False,
                )
            if not curved[ax]:
                recorded = any(not np.isnan(self[c]).all() for c in columns_of[ax])
                ax.text(
                    0.5,
                    0.5,
                    "no finite value" if recorded else "not recorded",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
        for ax in (ax_f, ax_s):
            if curved[ax]:
                ax.legend(fontsize="small")
        if 0 < len(mean_cols) <= 10 and curved[ax_m]:
            ax_m.legend(fontsize="small", ncols=2)
        for ax in (ax_m, ax_c):
            x_label = "evaluations" if counted else "generations"
            ax.set_xlabel(x_label if x_scale == 1.0 else f"{x_label} / {x_scale:.0e}")
        return fig


def _capped(curves: list[FloatArray]) -> tuple[list[FloatArray], bool]:
    """Return `curves` with values above :data:`PLOT_CEILING` at it, and whether any was.

    (matplotlib's log axes overflow when a curve reaches about 1e240; a step size or a
    condition number there is no state a run reaches, but a file made by hand may hold it.)
    """
    if not any(np.any(c > PLOT_CEILING) for c in curves):
        return curves, False
    return [np.minimum(c, PLOT_CEILING) for c in curves], True


def _with_lone_points(lines: list[Any], n: FloatArray, c: FloatArray) -> None:
    """Mark the finite values of `c` with no finite neighbour: a line draws nothing of them.

    (A run where most evaluations fail: its best of a generation is finite here and there.)
    """
    finite = np.isfinite(c)
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    lone = finite & ~before & ~after
    if lone.any() and len(c) > 1:
        line = lines[0]
        line.axes.plot(n[lone], c[lone], ls="none", marker=".", color=line.get_color())


def _axis_scale(curves: list[FloatArray]) -> float:
    """Return 1, or a power of ten to divide `curves` by when their span is beyond the floats.

    A linear axis from -1e308 to 1e308 spans inf, and matplotlib cannot place its ticks
    ("arange: cannot compute length"); divided by 1e308 the curves span 2.
    """
    finite = [c[np.isfinite(c)] for c in curves]
    values = np.concatenate(finite) if finite else np.zeros(0)
    if not values.size:
        return 1.0
    with np.errstate(over="ignore"):
        span = float(np.max(values)) - float(np.min(values))
    if span < 1e300:
        return 1.0
    return 10.0 ** math.floor(math.log10(float(np.max(np.abs(values)))))


def _seconds(elapsed: float) -> float:
    """Return the seconds a loaded history's rows span.

    That is its last row's `elapsed` when it is a time (finite and at least 0; a hand-edited
    file may hold anything), else 0.
    """
    return elapsed if 0.0 <= elapsed < math.inf else 0.0


def write_whole(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to the file `path`, whole or not at all.

    A write that fails (a full disk, a file size limit, Ctrl-C) leaves a file written earlier
    under the same name as it was: `data` goes to a new file beside it, renamed over it. A
    device or a pipe (``/dev/stdout``) is written in place, and so is a file that may be
    written in a folder that takes no new file (then not whole or not at all). A symbolic link
    is written through, to the file it names; a file replaced keeps its permissions.

    Raises
    ------
    OSError
        If the file cannot be written, as ``open`` would raise it, naming `path`
        (PermissionError for a read-only file, which is not replaced; IsADirectoryError for
        a name ending in a separator, which names a folder).
    """
    name = os.fspath(path)
    if name.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        # it names a folder, as open reads it (realpath would drop the separator)
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    target = Path(os.path.realpath(path))  # through a symbolic link, to the file it names
    if target.exists() and not target.is_file():  # a device or a pipe (/dev/stdout)
        target.write_bytes(data)
        return
    # a new file beside it, then renamed over it: a write that fails (a full disk, Ctrl-C)
    # leaves the file as it was (the new file's name cut short, in bytes: the longest name a
    # file may have, 255 bytes, stays one for `path`, whatever its characters)
    if target.is_file() and not os.access(target, os.W_OK):
        # as writing it in place would: a file made read-only is not replaced
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    tmp = target.with_name(f".{_cut(target.name, 64)}.{secrets.token_hex(4)}.tmp")
    try:
        fh = tmp.open("xb")
    except OSError as exc:
        if isinstance(exc, PermissionError) and target.is_file():
            # a folder that takes no new file: the file in place, as open would write it
            target.write_bytes(data)
            return
        if exc.errno is None:
            raise
        # name the file asked for, as writing it in place would, not the new file
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    try:
        with fh:
            fh.write(data)
        if target.is_file():  # the file keeps its permissions
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename == str(tmp) and exc.errno is not None:
            # name the file asked for, as writing it in place would, not the new file
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cut(name: str, size: int) -> str:
    """Return the longest start of the file name `name` of at most `size` bytes on this system.

    (A character may take up to 4 bytes: 64 characters may be 256 bytes.)
    """
    end = min(len(name), size)
    while len(os.fsencode(name[:end])) > size:
        end -= 1
    return name[:end]


def load_argument(path: str | os.PathLike[str], argument: str) -> History:
    """Return ``History.load(path)``, its errors naming `argument` instead of ``path``.

    The command line reads its ``RUN.csv`` so, for messages that name what the user typed.
    """
    return History._load(path, argument)
