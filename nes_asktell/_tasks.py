"""The tasks sent to workers: the row loop, candidates rebuilt from keys, payload helpers.

With counter-based noise (an integer seed), candidate ``k`` of generation ``g`` is a function of
the mean, the step sizes, the bounds and the key ``(entropy, g, k mod m)`` with its mirrored sign.
:func:`seed_plan` checks, on the client, that :func:`rebuild_row` reproduces the asked rows bit
for bit; :func:`seeds_task` runs on a worker, checks on first contact that its numpy draws the
same noise (:func:`nes_asktell._noise.check_value`), rebuilds its rows and evaluates them.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import _noise
from ._base import Strategy
from ._bounds import Box
from ._typing import FloatArray

Result = tuple[FloatArray, list[str]]


class NoiseMismatchError(RuntimeError):
    """A worker draws other normal numbers than this process (another numpy version)."""


@dataclass(frozen=True)
class SeedSpec:
    """What a worker needs, besides the mean and the step sizes, to rebuild candidates."""

    entropy: int
    generation: int
    n_noise: int
    mirrored: bool
    dtype: str
    check: bytes


def ready() -> None:
    """Do nothing: a process pool runs it once per worker to start them before the clock."""


def as_value(y: object, fun: object) -> float:
    try:
        return float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        arr = np.asarray(y)
        if arr.size == 1 and arr.dtype.kind in "biuf":
            return float(arr.reshape(()))
        raise TypeError(
            f"`fun` must return a real number, but {getattr(fun, '__name__', fun)!r} "
            f"returned {y!r:.80}."
        ) from None


def rebuild_row(
    spec: SeedSpec, mean: FloatArray, scale: float | FloatArray, box: Box | None, k: int
) -> FloatArray:
    """Return candidate `k` of the generation described by `spec`, as ``ask()`` built it."""
    m = spec.n_noise
    out = np.empty(mean.size, dtype=spec.dtype)
    _noise.counter_row(spec.entropy, spec.generation, k % m, out)
    np.multiply(out, scale, out=out)
    if spec.mirrored and k >= m:
        np.subtract(mean, out, out=out)
    else:
        out += mean
    if box is not None:
        box.reflect(out[None, :])
    return out


def eval_rows(
    fun: Callable[..., object], args: Sequence[object], rows: Sequence[FloatArray] | FloatArray
) -> Result:
    """Evaluate each row; a row whose `fun` raises gets NaN and an error line."""
    values = np.full(len(rows), np.nan)
    errors: list[str] = []
    for i, x in enumerate(rows):
        try:
            values[i] = as_value(fun(x, *args), fun)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return values, errors


def vectors_task(fun: Callable[..., object], args: Sequence[object], X: FloatArray) -> Result:
    """Evaluate the rows of `X` (a task of vectors mode)."""
    return eval_rows(fun, args, X)


_CHECKED: set[str] = set()  # precisions whose check value this process has confirmed


def seeds_task(
    fun: Callable[..., object],
    args: Sequence[object],
    spec: SeedSpec,
    mean: FloatArray,
    scale: float | FloatArray,
    bounds: tuple[FloatArray, FloatArray] | None,
    keys: Sequence[int],
) -> Result:
    if spec.dtype not in _CHECKED:
        if _noise.check_value(spec.dtype) != spec.check:
            raise NoiseMismatchError(f"numpy {np.__version__} draws other {spec.dtype} noise")
        _CHECKED.add(spec.dtype)
    box = None if bounds is None else Box(*bounds)
    return eval_rows(fun, args, [rebuild_row(spec, mean, scale, box, k) for k in keys])


def seed_plan(
    strategy: Strategy, X: FloatArray
) -> tuple[SeedSpec, FloatArray, float | FloatArray] | None:
    """Return (spec, mean, scale) if the rows of `X` can be rebuilt from keys, else None.

    `X` must be the first rows of the strategy's pending batch. The rebuild is checked on the
    first and last row, so a strategy whose perturbation is not ``scale * z`` (XNES) ships
    vectors.
    """
    noise, pending = strategy._noise, strategy._X
    if not isinstance(noise, _noise.CounterNoise) or pending is None or X.shape[0] == 0:
        return None
    if not (X is pending or X.base is pending) or X.shape[1] != strategy.dim:
        return None
    scale = strategy._sigma_value()
    if isinstance(scale, np.ndarray) and scale.shape != (strategy.dim,):
        return None
    dtype = np.dtype(strategy._dtype).name
    spec = SeedSpec(
        noise.entropy,
        strategy.generation,
        strategy._n_noise,
        strategy.mirrored,
        dtype,
        _noise.check_value(dtype),
    )
    box = strategy._box
    for k in {0, X.shape[0] - 1}:
        if not np.array_equal(rebuild_row(spec, strategy._mean, scale, box, k), X[k]):
            return None
    return spec, strategy._mean, scale


def is_dask_client(obj: object) -> bool:
    """Return whether `obj` is a dask ``distributed.Client`` (without importing dask)."""
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "scatter")


def nbytes(obj: object) -> int:
    """Return the serialized size of `obj` (pickle protocol 5, buffers counted, not copied)."""
    sizes: list[int] = []
    try:
        head = pickle.dumps(obj, protocol=5, buffer_callback=lambda b: sizes.append(len(b.raw())))
    except Exception:
        return 0
    return len(head) + sum(sizes)


def unpicklable(exc: BaseException) -> bool:
    """Return whether `exc` says that a task could not be pickled or unpickled."""
    text = str(exc)
    return isinstance(exc, pickle.PicklingError) or (
        isinstance(exc, (AttributeError, TypeError))
        and ("pickle" in text or "Can't get attribute" in text)
    )


UNPICKLABLE = (
    "`fun` (and `args`) must be picklable to run in other processes, but {exc}. Define `fun` "
    "at module level in an importable module (not a lambda, a local function or a function "
    "typed into an interactive session), guard the script with `if __name__ == '__main__':`, "
    "or evaluate serially (workers=None), with threads (a ThreadPoolExecutor) or on dask, "
    "which pickles lambdas."
)
