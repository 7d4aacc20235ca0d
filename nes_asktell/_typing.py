"""Type aliases of the package's arguments and arrays, and its warning category.

The aliases say what a parameter accepts (``x0: ArrayLike``, ``rng: RngLike``, ``bounds:
BoundsLike``); the runtime checks in ``_validate`` stay, since Python does not enforce them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypedDict

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds


class SupportsArray(Protocol):
    """Anything with an ``__array__()`` method: arrays, tensors, array wrappers."""

    def __array__(self) -> np.ndarray[Any, Any]: ...


#: anything numpy turns into an array: lists and tuples (of mixed Python and numpy numbers
#: too), arrays, objects with ``__array__``, scalars. (Broader than ``numpy.typing.ArrayLike``,
#: so that the scipy method matches what scipy's stubs pass to a method: ``nes`` is one.)
ArrayLike = npt.ArrayLike | SupportsArray | Sequence[float | np.number[Any] | np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: an update a strategy applied, as its replicas replay it: (generation, the utilities or None
#: when the update was skipped, the number of finite fitness values told, the weights of the
#: shape update where they are not the utilities or None).
AppliedUpdate = tuple[int, FloatArray | None, int, FloatArray | None]
#: plain data, as ``state_dict()`` returns it (numbers, strings, lists, dicts, None).
JSON = dict[str, object]

#: SPEC 7: None (fresh entropy), an int seed, a SeedSequence or a Generator.
RngLike = None | int | np.integer | np.random.SeedSequence | np.random.Generator
#: OpenES also takes a legacy RandomState, drawn from in sequence (the 2017 seed configuration).
LegacyRngLike = RngLike | np.random.RandomState

#: None, scipy ``Bounds``, ``(lower, upper)`` (scalars or arrays), or one (low, high) pair per
#: coordinate (a sequence, or an iterator such as ``zip(lower, upper)``), where None means no
#: bound.
BoundsLike = (
    None
    | Bounds
    | tuple[ArrayLike, ArrayLike]
    | Sequence[tuple[float | None, float | None]]
    | Sequence[Sequence[float | None]]
    | Iterator[Sequence[float | None]]
)

#: a fitness shaping: raw fitness of one population (lower is better) to utilities.
ShapingFn = Callable[[FloatArray], FloatArray]
ShapingLike = str | ShapingFn

#: the value of a strategy option passed through IPOP, the scipy method or the sampler.
OptionValue = float | int | bool | str | ShapingFn | None


class CommonOptions(TypedDict, total=False):
    """The keywords every strategy takes besides its own: threads, dtype and stopping criteria.

    ``threads``: threads that draw counter-based noise (results identical for any count;
    None is 1); ``dtype``: ``"float64"`` (default) or ``"float32"`` for the noise and the
    candidates; the stopping criteria are those of :meth:`Strategy.stop`.
    """

    threads: int | None
    dtype: str | type[np.floating] | None
    maxfev: int | None
    maxiter: int | None
    ftarget: float | None
    tolfun: float | None
    tolx: float | None
    tolstagnation: int | None
    timeout: float | None
    tolconditioncov: float | None
    tolflatfitness: int | None


class NESWarning(UserWarning):
    """Warning category for recoverable events during a run (e.g. a skipped update)."""
