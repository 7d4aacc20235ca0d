"""How the library raises :class:`NESWarning`: to the run in progress in this thread, or as usual.

A run (:func:`nes_asktell._loop.run`) counts the library's warnings and shows the first of each
kind (the library's line that raised it) at the line that called it. It does so here, at the
source, not by a hook on ``warnings.showwarning`` or by changing the warning filters: those are
process-wide, and runs in several threads at once (a nested run on a thread pool, a user's own
threads) would save and restore them over each other, so that a run ending after a
later-started one restores a hook of a run that has ended and loses every later warning. Here
each thread has its own stack of runs in progress, and nothing global changes.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

from ._typing import NESWarning

#: the library's line that raised a warning and the line ``warnings.warn`` would name
#: (``(file, line, file, line)``): what makes two warnings of a run the same kind
Where = tuple[str, int, str, int]


class Counter(Protocol):
    """What takes the library's warnings during a run (``_loop``'s per-run counter)."""

    def count(self, message: str, category: type[Warning], where: Where) -> None:
        """Count one warning raised where `where` says (see :func:`warn`)."""


_LOCAL = threading.local()


def _runs() -> list[Counter]:
    runs: list[Counter] | None = getattr(_LOCAL, "runs", None)
    if runs is None:
        runs = _LOCAL.runs = []
    return runs


def warn(message: str, *, stacklevel: int = 1, category: type[Warning] = NESWarning) -> None:
    """Raise a library warning as ``warnings.warn(message, category, stacklevel)`` would.

    While a run is in progress in this thread, its counter takes the warning instead (whatever
    the filters), keyed by the library's line that raised it and the place ``warnings.warn``
    would have named. Both: the warnings of one library function, raised at different lines
    with the same `stacklevel` (an evaluation's failed candidates and what the engine did
    about them), name the same line of their caller and are different kinds all the same.
    """
    runs = _runs()
    if not runs:
        warnings.warn(message, category, stacklevel=stacklevel + 1)
        return
    here = inspect.currentframe()
    raiser = None if here is None else here.f_back  # the library's line that raised it
    frame = raiser
    for _ in range(stacklevel - 1):  # on to the frame warnings.warn(..., stacklevel) would name
        if frame is None or frame.f_back is None:
            break
        frame = frame.f_back
    where = (*_place(raiser), *_place(frame))
    del here, raiser, frame
    runs[-1].count(message, category, where)


def _place(frame: FrameType | None) -> tuple[str, int]:
    """Return the file and line that `frame` runs (as ``warnings`` names a missing one)."""
    return ("sys", 1) if frame is None else (frame.f_code.co_filename, frame.f_lineno)


def push(counter: Counter) -> None:
    """From now on, the library's warnings raised in this thread go to `counter`."""
    _runs().append(counter)


def pop(counter: Counter) -> None:
    """Undo :func:`push` of `counter` (the innermost one, if pushed more than once)."""
    runs = _runs()
    for i in range(len(runs) - 1, -1, -1):
        if runs[i] is counter:
            del runs[i]
            return


class _Dropped:
    def count(self, message: str, category: type[Warning], where: Where) -> None:
        """Drop the warning."""


@contextmanager
def silenced() -> Iterator[None]:
    """Within the block, the library's warnings raised in this thread are dropped."""
    dropped = _Dropped()
    push(dropped)
    try:
        yield
    finally:
        pop(dropped)
