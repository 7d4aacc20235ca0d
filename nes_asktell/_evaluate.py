"""Evaluate a population: serially, or with a map-like callable or an Executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from types import TracebackType

import numpy as np

from ._typing import FloatArray


def _as_value(y: object, fun: object) -> float:
    try:
        return float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        arr = np.asarray(y)
        if arr.size == 1:
            return float(arr.reshape(()))
        raise TypeError(
            f"`fun` must return a real number, but {getattr(fun, '__name__', fun)!r} "
            f"returned {y!r:.80}."
        ) from None


class _Call:
    """A picklable ``x -> fun(x, *args)``."""

    def __init__(self, fun: Callable[..., object], args: Sequence[object]) -> None:
        self.fun = fun
        self.args = tuple(args)

    def __call__(self, x: FloatArray) -> object:
        return self.fun(x, *self.args)


class Evaluator:
    """Evaluate populations with the chosen `workers` (reused across generations)."""

    def __init__(self, workers: object = None) -> None:
        if workers is None or workers == 1:
            self._map: Callable[..., object] | None = None
        elif isinstance(workers, Executor):
            self._map = workers.map
        elif callable(workers):
            self._map = workers
        else:
            raise TypeError(
                "`workers` must be None, 1, a map-like callable or a "
                f"concurrent.futures.Executor, but got {workers!r}."
            )

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def evaluate(
        self, fun: Callable[..., object], X: FloatArray, args: Sequence[object] = ()
    ) -> FloatArray:
        """Return ``[fun(x, *args) for x in X]`` as a float64 array."""
        call = _Call(fun, args)
        rows = [np.array(x) for x in X]
        ys = map(call, rows) if self._map is None else self._map(call, rows)
        return np.array([_as_value(y, fun) for y in ys], dtype=np.float64)  # type: ignore[attr-defined]
