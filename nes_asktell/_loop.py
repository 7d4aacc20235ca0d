"""The one ask/evaluate/tell loop, behind ``Strategy.optimize`` and ``IPOP.optimize``.

:func:`run` drives anything that has the ask/tell protocol (:class:`Runnable`): it asks, has an
:class:`~nes_asktell.Evaluator` evaluate the batch of the strategy that asked it, tells, reports
progress and calls the callback, until the object's own ``stop()`` holds or the budgets of the
call are spent. The result is the object's own, with the reasons that ended the call added.

What a run says goes three ways. Progress lines go to the :mod:`logging` logger ``nes_asktell``:
INFO for a line every few generations and the last line, DEBUG for the other generations.
With `disp` they are printed on stdout instead (1: the INFO lines, 2: every generation), as
scipy's methods print theirs. An optional progress bar (tqdm, the ``progress`` extra)
shows generations, evaluations and the best value. The library's warnings of a run
(:class:`~nes_asktell.NESWarning`: skipped updates, failed evaluations) are counted: the first
of each kind is shown, pointing at the code that called ``optimize`` (or ``minimize``), and a
last line says how many there were.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

import numpy as np
from scipy.optimize import OptimizeResult

from . import _stopping, _warn
from . import _validate as v
from ._evaluate import Evaluator, Keyed, WorkersLike
from ._history import History, Recordable
from ._typing import JSON, ArrayLike, FloatArray

#: the logger of the library's messages.
LOGGER = logging.getLogger("nes_asktell")
#: disp=1 prints a line at least this often (seconds), whatever the generation.
LINE_EVERY_S = 10.0
#: the numbers that mark the log records of each run (``extra={"nes_asktell_run": n}``).
_RUN_IDS = itertools.count(1)
PROGRESS_HINT = "`progress` needs tqdm: pip install 'nes_asktell[progress]'"
#: what `disp` accepts: False/0 (silent), True/1 (a line every few generations), 2 (each one).
DispLike = bool | int


class Runnable(Recordable, Protocol):
    """What the loop needs of the object it runs (a strategy, or IPOP).

    The counters and the distribution a History records (:class:`Recordable`), and the protocol.
    """

    @property
    def criteria(self) -> JSON: ...

    @property
    def result(self) -> OptimizeResult: ...

    def ask(self) -> FloatArray: ...

    def tell(
        self, solutions: ArrayLike, fitness: ArrayLike, *, evaluated: int | None = None
    ) -> None: ...

    def stop(self) -> dict[str, float]: ...


def run(
    opt: Runnable,
    source: Callable[[], Keyed],
    fun: Callable[..., float],
    *,
    args: Sequence[object] = (),
    maxfev: int | None = None,
    maxiter: int | None = None,
    workers: WorkersLike = None,
    callback: Callable[[OptimizeResult], object] | None = None,
    disp: DispLike = False,
    progress: bool = False,
    vectorized: bool = False,
    agree: Callable[[dict[str, float]], dict[str, float]] | None = None,
) -> OptimizeResult:
    """Run `opt` until its ``stop()`` holds or a budget of this call is spent; return the result.

    `source` returns the strategy whose batch ``opt.ask()`` returned (`opt` itself, or the
    current run of IPOP), so that workers may rebuild its rows from keys. `maxfev` and
    `maxiter` are totals counted from the start of the run, for this call only (they are not
    stored: a later call without them runs on under `opt`'s own criteria); `opt`'s own
    ``maxfev`` is honoured as well, and the last generation evaluates only what the budgets
    allow. A :class:`~nes_asktell.History` as `callback` records `opt` itself, with the
    fitness values of each generation. `disp` is a verbosity level (0, 1 or 2; False and
    True are 0 and 1); `progress` shows a progress bar (tqdm). `vectorized` evaluates each
    task's candidates in one call ``fun(X.T, *args)`` (an Evaluator passed as `workers`
    keeps its own setting unless `vectorized` is True). `agree` maps the criteria that hold
    here to those the run stops on, at the same points of every generation: an SPMD run
    (:func:`~nes_asktell.mpi_optimize`) makes the ranks agree on a wall-clock ``timeout``.
    """
    call_fev = v.optional_integer("maxfev", maxfev, minimum=0)
    call_it = v.optional_integer("maxiter", maxiter, minimum=0)
    args = v.extra_args(args)
    level = disp_level(disp)
    show_bar = v.flag("progress", progress)
    whole = v.flag("vectorized", vectorized)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None, but got {v.short(callback)}.")
    evaluator = Evaluator(workers, vectorized=True) if whole else Evaluator(workers)
    bar = None
    ended: dict[str, float] = {}
    name = type(opt).__name__
    clock = _Clock(opt.nfev)
    counted = _RunWarnings()
    try:
        with _display(level) as own, evaluator:
            # (before the first ask: a `fun` the workers cannot take leaves `opt` as it was)
            evaluator.check_call(fun, args, source())
            bar = _progress_bar(opt, call_it) if show_bar else None
            # The criteria after a generation (read once: the next check reuses them). A
            # generation that ends the run gets no line of its own: the last line, with the
            # criteria that stopped the run, is its line (printed once).
            after: dict[str, float] | None = None
            while True:
                if call_fev is not None and opt.nfev >= call_fev:
                    ended["maxfev"] = call_fev
                if call_it is not None and opt.generation >= call_it:
                    ended["maxiter"] = call_it
                if ended or (_held(opt, agree) if after is None else after):
                    break
                with counted:
                    X = opt.ask()
                    n = _evaluations_allowed(opt, call_fev)
                    f = np.full(opt.popsize, np.nan)
                    f[:n] = evaluator.evaluate(fun, X[:n], args, strategy=source())
                    opt.tell(X, f, evaluated=n)
                counted.show_new()
                after = _held(opt, agree)
                last = bool(after) or (
                    (call_fev is not None and opt.nfev >= call_fev)
                    or (call_it is not None and opt.generation >= call_it)
                )
                due = level >= 2 or clock.line_due(opt.generation)
                line = logging.INFO if due else logging.DEBUG
                if not last and LOGGER.isEnabledFor(line):
                    LOGGER.log(line, "%s", _progress_line(name, opt, clock), extra=own)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(nfev=str(opt.nfev), best=f"{opt.best[1]:.6e}", refresh=False)
                if callback is not None:
                    try:
                        if isinstance(callback, History):
                            callback.record(opt, fitness=f[:n])
                            stop_now = False
                        else:
                            said = callback(opt.result)  # True or np.True_ stop the run
                            stop_now = isinstance(said, (bool, np.bool_)) and bool(said)
                    except StopIteration:
                        stop_now = True
                    if stop_now:
                        ended["callback"] = 1.0
                        break
            res = opt.result
            res = _stopping.with_stop(res, ended) if ended else res
            if LOGGER.isEnabledFor(logging.INFO):
                LOGGER.info(
                    "%s; stops: %s",
                    _progress_line(name, opt, clock),
                    ", ".join(sorted(res.stop)) or "none",
                    extra=own,
                )
    finally:
        if bar is not None:
            bar.close()
    counted.summarise()
    return res


def _held(
    opt: Runnable, agree: Callable[[dict[str, float]], dict[str, float]] | None
) -> dict[str, float]:
    """Return the criteria that hold for `opt` (as `agree` makes them, when given)."""
    held = opt.stop()
    return held if agree is None else agree(held)


def disp_level(disp: object) -> int:
    """Return `disp` as a verbosity level 0, 1 or 2, or raise naming ``disp``."""
    if isinstance(disp, (bool, np.bool_)):
        return int(disp)
    if isinstance(disp, (int, np.integer)) and 0 <= disp <= 2:
        return int(disp)
    if isinstance(disp, (int, np.integer)):
        raise ValueError(f"`disp` must be 0, 1, 2, True or False, but got {v.short(disp)}.")
    raise TypeError(f"`disp` must be 0, 1, 2, True or False, but got {v.short(disp)}.")


def _evaluations_allowed(opt: Runnable, call_fev: int | None) -> int:
    """Return how many rows of the next batch the budgets allow (the whole batch at most)."""
    limits = [n for n in (opt.criteria.get("maxfev"), call_fev) if isinstance(n, int)]
    return max(min([opt.popsize, *(n - opt.nfev for n in limits)]), 0)


class _Clock:
    """The time of a run, and when the next progress line is due."""

    def __init__(self, nfev0: int) -> None:
        self.t0 = time.monotonic()
        self.nfev0 = nfev0
        self.last_line = self.t0

    def line_due(self, gen: int) -> bool:
        """Whether generation `gen` gets a line of ``disp=1``.

        Generations 1-9, then every 10th up to 100, then every 100th; and any generation when
        the last line is older than :data:`LINE_EVERY_S` seconds.
        """
        now = time.monotonic()
        step = 10 ** min(int(math.log10(gen)), 2) if gen >= 1 else 1
        if gen < 10 or gen % step == 0 or now - self.last_line >= LINE_EVERY_S:
            self.last_line = now
            return True
        return False

    def rate(self, nfev: int) -> tuple[float, float]:
        """Return the elapsed seconds and the evaluations per second of this call."""
        elapsed = time.monotonic() - self.t0
        return elapsed, (nfev - self.nfev0) / elapsed if elapsed > 0 else math.inf


def _progress_line(name: str, opt: Runnable, clock: _Clock) -> str:
    elapsed, rate = clock.rate(opt.nfev)
    return (
        f"{name} gen {opt.generation:6d}  nfev {opt.nfev:9d}  best {opt.best[1]: .6e}  "
        f"sigma {float(np.max(opt.sigma)):.3e}  {elapsed:8.2f} s  {rate:9.3g} fev/s"
    )


@contextmanager
def _display(level: int) -> Iterator[dict[str, object]]:
    """Yield the `extra` that marks the records of this run; with `level` >= 1, print them.

    With `level` >= 1, a handler on stdout is added to the logger for the run, the logger's
    level lowered to INFO if it would hide them, and propagation to the parent loggers turned
    off (so that a logging configuration does not show the lines twice); all is undone at the
    end (of the last such run, when several overlap: :class:`_Displays`). The handler prints
    the INFO records of this run only: not those of a run nested in the objective, nor of a run
    in another thread, which have their own `disp`.
    """
    run_id = next(_RUN_IDS)
    own: dict[str, object] = {"nes_asktell_run": run_id}
    if not level:
        yield own
        return
    stream: TextIO = sys.stdout
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    handler.addFilter(lambda record: getattr(record, "nes_asktell_run", None) == run_id)
    _DISPLAYS.start(handler)
    try:
        yield own
    finally:
        _DISPLAYS.end(handler)


class _Displays:
    """The logger's set-up for the runs that print their lines, however they overlap in time.

    The first run with `disp` to start lowers the logger's level to INFO if it would hide the
    lines and turns propagation off; the last to end restores both. (Each run saving and
    restoring them itself broke with runs in two threads ending out of order: the first to end
    silenced the other's lines, and the other then left the logger at INFO, cut off from the
    logging configuration, for good.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._saved = (logging.NOTSET, True)

    def start(self, handler: logging.Handler) -> None:
        """Add `handler` to the logger, set for printing while a run with `disp` goes on."""
        with self._lock:
            if not self._runs:
                self._saved = (LOGGER.level, LOGGER.propagate)
                if LOGGER.getEffectiveLevel() > logging.INFO:
                    LOGGER.setLevel(logging.INFO)
                LOGGER.propagate = False
            LOGGER.addHandler(handler)
            self._runs += 1

    def end(self, handler: logging.Handler) -> None:
        """Remove `handler`; the last run to end restores the logger's level and propagation."""
        with self._lock:
            LOGGER.removeHandler(handler)
            self._runs -= 1
            if not self._runs:
                LOGGER.setLevel(self._saved[0])
                LOGGER.propagate = self._saved[1]


_DISPLAYS = _Displays()


def _progress_bar(opt: Runnable, call_it: int | None) -> Any:
    """Return a tqdm bar of generations, or raise ImportError with the install hint."""
    try:
        from tqdm.auto import tqdm
    except ModuleNotFoundError as exc:
        raise ImportError(PROGRESS_HINT) from exc
    own = opt.criteria.get("maxiter")
    total = call_it if call_it is not None else own if isinstance(own, int) else None
    return tqdm(total=total, initial=opt.generation, unit="gen", desc=type(opt).__name__)


class _RunWarnings:
    """Counts the library's warnings of a run; shows the first of each kind at the caller.

    Used as a context around each generation: inside, every :class:`NESWarning` the library
    raises in the run's thread is counted by where it was raised, whatever the filters (see
    :mod:`nes_asktell._warn`: nothing process-wide changes, so runs in several threads keep
    their own); other warnings pass through untouched. :meth:`show_new` then re-issues the
    first warning of each new kind from the caller's frame (the user's filters decide what
    happens to it; a run that called this one counts it in turn), and :meth:`summarise` adds
    a line per kind that occurred more than once.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[type[Warning], _warn.Where], list[Any]] = {}
        self._new: list[tuple[type[Warning], _warn.Where]] = []

    def __enter__(self) -> None:
        _warn.push(self)

    def __exit__(self, *exc: object) -> None:
        _warn.pop(self)

    def count(self, message: str, category: type[Warning], where: _warn.Where) -> None:
        """Count one :class:`NESWarning` of the run, by its kind: its category and `where`."""
        key = (category, where)
        if key in self._counts:
            self._counts[key][1] += 1
        else:
            self._counts[key] = [message, 1]
            self._new.append(key)

    def show_new(self) -> None:
        """Re-issue the first warning of each kind seen since the last call."""
        if not self._new:
            return
        new, self._new = self._new, []
        for key in new:
            _warn_at_caller(self._counts[key][0], key[0])

    def summarise(self) -> None:
        """Issue one line per kind of warning that occurred more than once in the run."""
        self.show_new()
        for (category, _), (text, count) in self._counts.items():
            if count > 1:
                _warn_at_caller(
                    f"this run raised {count} warnings like this one (only the first was "
                    f"shown): {text}",
                    category,
                )


def _warn_at_caller(text: str, category: type[Warning]) -> None:
    """Warn from the first frame outside the library (and scipy.optimize, which calls it)."""
    frame = inspect.currentframe()
    level = 1
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if not (module == "nes_asktell" or module.startswith(("nes_asktell.", "scipy.optimize"))):
            break
        frame = frame.f_back
        level += 1
    del frame
    _warn.warn(text, stacklevel=level, category=category)
