"""The tasks sent to workers: the row loop, candidates rebuilt from keys, payload helpers.

With counter-based noise (an integer seed), candidate ``k`` of generation ``g`` is a function of
the mean, the step sizes, the bounds and the key ``(entropy, g, k mod m)`` with its mirrored sign.
:func:`seed_plan` checks, on the client, that :func:`rebuild_row` reproduces the asked rows bit
for bit; :func:`seeds_task` runs on a worker, checks on first contact that its numpy draws the
same noise (:func:`nes_asktell._noise.check_value`), rebuilds its rows and evaluates them.

:func:`replay_task` is the dask variant that moves no mean at all (the OpenAI-ES way): each
worker process keeps a replica of the strategy per run (keyed by a token) and brings it to the
asked generation by replaying the updates the client applied: for each missed generation it
redraws that generation's noise from the keys and calls the replica's own ``_update(u)`` with
the utilities the client used, then checks a digest of the mean and step sizes. A worker without
a replica in step raises :class:`ReplicaMissingError`, and the client resends the task with the
strategy's state (:func:`pack_replica`).
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
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


class ReplicaMissingError(RuntimeError):
    """A worker has no replica of the strategy in step with the client's: send the state."""


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


def _check(spec: SeedSpec) -> None:
    """On first contact, check that this process draws the client's noise."""
    if spec.dtype not in _CHECKED:
        if _noise.check_value(spec.dtype) != spec.check:
            raise NoiseMismatchError(f"numpy {np.__version__} draws other {spec.dtype} noise")
        _CHECKED.add(spec.dtype)


def seeds_task(
    fun: Callable[..., object],
    args: Sequence[object],
    spec: SeedSpec,
    mean: FloatArray,
    scale: float | FloatArray,
    bounds: tuple[FloatArray, FloatArray] | None,
    keys: Sequence[int],
) -> Result:
    """Rebuild the rows of `keys` from the mean and the step sizes, and evaluate them."""
    _check(spec)
    box = None if bounds is None else Box(*bounds)
    return eval_rows(fun, args, [rebuild_row(spec, mean, scale, box, k) for k in keys])


@dataclass(frozen=True)
class Replay:
    """What a worker needs to bring its replica to the asked generation (a few KB)."""

    token: str
    #: (generation, utilities or None for a skipped update) of the latest tells.
    applied: tuple[tuple[int, FloatArray | None], ...]
    digest: bytes


def digest(strategy: Strategy) -> bytes:
    """Return a hash of what the candidates depend on: generation, mean and step sizes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(int(strategy._generation).to_bytes(8, "little"))
    h.update(np.ascontiguousarray(strategy._mean).data)
    h.update(np.ascontiguousarray(strategy._sigma_value(), dtype=np.float64).data)
    return h.digest()


def pack_replica(strategy: Strategy) -> bytes:
    """Return the strategy pickled without its buffers, best-so-far and history (a replica)."""
    d = strategy.__getstate__()
    d.update(
        _X=None,
        _Zh=None,
        _spare=[],
        _applied=[],
        _best_x=None,
        _fhist=[],
        _noise_before_ask=None,
        _shape_fn=None,  # the replica is told the utilities, it never shapes fitness
        _sigma0=None,
        _threads=1,
        _noise=_noise.CounterNoise(strategy._noise.entropy),  # type: ignore[union-attr]
    )
    return pickle.dumps((type(strategy), d), protocol=5)


def _unpack_replica(blob: bytes) -> Strategy:
    cls, d = pickle.loads(blob)
    es: Strategy = cls.__new__(cls)
    es.__setstate__(d)
    return es


class _Replica:
    """A worker's replica of one run's strategy, with the digest of its generation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.strategy: Strategy | None = None
        self.digest = b""


#: replicas held by this worker process, most recently used last (at most KEPT_RUNS).
_REPLICAS: OrderedDict[str, _Replica] = OrderedDict()
_REPLICAS_LOCK = threading.Lock()
KEPT_RUNS = 2


def _replica(token: str) -> _Replica:
    with _REPLICAS_LOCK:
        rep = _REPLICAS.get(token)
        if rep is None:
            rep = _REPLICAS[token] = _Replica()
            while len(_REPLICAS) > KEPT_RUNS:
                _REPLICAS.popitem(last=False)
        else:
            _REPLICAS.move_to_end(token)
        return rep


def drop_replicas(token: str | None = None) -> None:
    """Free this worker's replica of run `token` (all replicas when None)."""
    with _REPLICAS_LOCK:
        if token is None:
            _REPLICAS.clear()
        else:
            _REPLICAS.pop(token, None)


def _bring_forward(rep: _Replica, target: int, replay: Replay) -> bool:
    """Replay the missed updates on the replica; return whether it now matches the digest."""
    es = rep.strategy
    if es is None or es._generation > target:
        return False
    if es._generation < target:
        recipes = dict(replay.applied)
        if any(h not in recipes for h in range(es._generation, target)):
            return False
        shape = (es._n_noise, es._dim)
        for h in range(es._generation, target):
            u = recipes[h]
            if u is not None:  # a skipped update (no finite fitness) changed nothing
                if es._Zh is None or es._Zh.shape != shape or es._Zh.dtype != es._dtype:
                    es._Zh = np.empty(shape, dtype=es._dtype)
                es._noise.fill(h, es._Zh)  # type: ignore[union-attr]  # as ask() draws it
                es._update(u)
            es._generation = h + 1
        rep.digest = digest(es)
    if rep.digest != replay.digest:
        rep.strategy = None  # diverged (another BLAS, a changed strategy): reinstall
        return False
    return True


def replay_task(
    fun: Callable[..., object],
    args: Sequence[object],
    spec: SeedSpec,
    replay: Replay,
    state: bytes | None,
    keys: Sequence[int],
) -> Result:
    """Bring this worker's replica to ``spec.generation``, rebuild the rows and evaluate them.

    Raises :class:`ReplicaMissingError` when the replica is missing, too far behind or
    diverged and no `state` came with the task.
    """
    _check(spec)
    rep = _replica(replay.token)
    with rep.lock:
        if not _bring_forward(rep, spec.generation, replay):
            if state is None:
                raise ReplicaMissingError(f"no replica of run {replay.token[:8]} in step")
            es = _unpack_replica(state)
            rep.strategy, rep.digest = es, digest(es)
            if es._generation != spec.generation or rep.digest != replay.digest:
                rep.strategy = None
                raise RuntimeError("the strategy's state does not match its digest")
        held = rep.strategy
        assert held is not None
        mean, scale, box = held._mean, held._sigma_value(), held._box
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
