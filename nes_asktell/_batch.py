"""The batch of one generation: building its candidates, its memory, its told rows, its sums.

``ask`` fills a batch in blocks of rows small enough to stay in cache (draw, scale, mirror,
shift, reflect in one pass) and reuses the memory of a told batch that nothing refers to any
more; ``tell`` maps the rows it receives back to the rows asked; the updates reduce the noise
through :func:`noise_sum` and :func:`noise_sq_sum`. Every block depends only on the shape, so
the results are the same for any thread count.

With counter-based noise a candidate is also a function of its :class:`Keys` (the seed
entropy, the generation, the row and its mirrored sign) and of the mean, the per-coordinate
scale and the box: :func:`rebuild_row` builds it exactly as ``ask`` did, anywhere.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._bounds import Box
from ._noise import CounterNoise, SequentialNoise, check_value, counter_row
from ._typing import FloatArray
from ._validate import short

#: elements per block of the fused ask pass and of the column blocks in noise_sq_sum.
BLOCK = 1 << 18


#: the largest finite float32; a float32 candidate beyond it is clipped to it (:func:`finite32`)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite32(X: FloatArray) -> None:
    """Clip the rows `X` of a float32 batch to the finite float32 range, in place.

    A float32 distribution that grew past that range (``stop()`` reports ``degenerate``) would
    otherwise give infinite candidates to a caller who goes on asking; like a reflection into
    the box, the clip changes the candidate and not its noise row, which the update reads.
    A float64 batch is left as it is (its step sizes stop at 1e100).
    """
    if X.dtype == np.float32 and not np.isfinite(X).all():
        np.clip(X, -FLOAT32_MAX, FLOAT32_MAX, out=X)


def row_blocks(m: int, d: int) -> list[tuple[int, int]]:
    """Split ``m`` rows of length ``d`` into blocks of about `BLOCK` elements (at least a row)."""
    step = max(1, BLOCK // max(d, 1))
    return [(a, min(a + step, m)) for a in range(0, m, step)]


def fill(
    X: FloatArray,
    Zh: FloatArray,
    generation: int,
    noise: CounterNoise | SequentialNoise,
    perturb_into: Callable[[FloatArray, FloatArray], None],
    mean: FloatArray,
    box: Box | None,
    mirrored: bool,
    threads: int,
) -> None:
    """Draw the noise rows `Zh` of `generation` and write the candidates into `X`.

    `perturb_into` scales the noise rows; with `mirrored`, row ``m + k`` of `X` mirrors row
    ``k`` (``m`` noise rows); `box` reflects the candidates into the bounds.
    """
    m, d = Zh.shape
    counter = noise if isinstance(noise, CounterNoise) else None
    if counter is None:
        noise.draw(generation, Zh)  # a sequential stream: one call, in order

    def fill_rows(a: int, b: int) -> None:
        if X.dtype == np.float32:  # beyond its range a candidate is clipped (see finite32)
            with np.errstate(over="ignore", invalid="ignore"):
                fill_block(a, b)
        else:
            fill_block(a, b)

    def fill_block(a: int, b: int) -> None:
        # One pass over a block of rows while it is in cache: draw, scale, mirror, shift.
        # The blocks depend only on (m, d), so the result is the same for any thread count.
        if counter is not None:
            counter.fill(generation, Zh[a:b], a)
        perturb_into(Zh[a:b], X[a:b])
        if mirrored:
            np.subtract(mean, X[a:b], out=X[m + a : m + b])
        X[a:b] += mean
        finite32(X[a:b])
        if mirrored:
            finite32(X[m + a : m + b])
        if box is not None:
            box.reflect(X[a:b])
            if mirrored:
                box.reflect(X[m + a : m + b])

    blocks = row_blocks(m, d)
    if counter is not None and threads > 1 and len(blocks) > 1:
        pool = counter.pool()
        for fut in [pool.submit(fill_rows, a, b) for a, b in blocks]:
            fut.result()
    else:
        for a, b in blocks:
            fill_rows(a, b)


@dataclass(frozen=True)
class Keys:
    """What rebuilds the candidates of one generation, besides the mean, scale and box.

    Candidate ``k`` is ``mean + scale * z`` with ``z`` the counter draw ``(entropy, generation,
    k mod n_noise)``, negated for the mirrored half (``k >= n_noise``), reflected into the box.
    `check` holds the bytes of a fixed draw, which a worker compares with its own on first
    contact (another numpy could draw other numbers).
    """

    entropy: int
    generation: int
    n_noise: int
    mirrored: bool
    dtype: str
    check: bytes

    @classmethod
    def of(cls, entropy: int, generation: int, n_noise: int, mirrored: bool, dtype: str) -> Keys:
        """Return the keys of a generation, with the check bytes of this process's numpy."""
        return cls(entropy, generation, n_noise, mirrored, dtype, check_value(dtype))


@dataclass(frozen=True)
class KeyedBatch:
    """Rows of a pending batch as keys: what a worker needs to rebuild them (``batch_keys``)."""

    keys: Keys
    mean: FloatArray
    scale: float | FloatArray
    box: Box | None


def digest(generation: int, mean: FloatArray, scale: float | FloatArray) -> bytes:
    """Return a hash of what a generation's candidates depend on: generation, mean, scale."""
    h = hashlib.blake2b(digest_size=16)
    h.update(int(generation).to_bytes(8, "little"))
    h.update(np.ascontiguousarray(mean, dtype=np.float64).data)
    h.update(np.ascontiguousarray(scale, dtype=np.float64).data)
    return h.digest()


def rebuild_row(
    keys: Keys, mean: FloatArray, scale: float | FloatArray, box: Box | None, k: int
) -> FloatArray:
    """Return candidate `k` of the generation of `keys`, as ``ask()`` built it."""
    m = keys.n_noise
    out = np.empty(mean.size, dtype=keys.dtype)
    counter_row(keys.entropy, keys.generation, k % m, out)
    with np.errstate(over="ignore", invalid="ignore"):  # float32: clipped by finite32
        np.multiply(out, scale, out=out)
        if keys.mirrored and k >= m:
            np.subtract(mean, out, out=out)
        else:
            out += mean
    finite32(out)
    if box is not None:
        box.reflect(out[None, :])
    return out


def take_buffer(
    spare: list[FloatArray], shape: tuple[int, int], dtype: type[np.floating]
) -> FloatArray:
    """Return a `shape` array for a new batch: a told batch of `spare` nothing else holds, or new.

    Reusing the memory of an earlier batch avoids page-faulting the whole array again each
    generation (about a fifth of the ask time at d = 1e6). A batch is reused only when no
    reference to it (or to a view of it) exists outside the strategy, so an ``X`` the
    caller still holds never changes.
    """
    for i in range(len(spare)):
        if _unshared(spare, i) and spare[i].shape == shape and spare[i].dtype == dtype:
            return spare.pop(i)
    return np.empty(shape, dtype=dtype)


def seal(X: FloatArray) -> FloatArray:
    """Return a read-only twin of the batch `X`: the same memory, and no flag makes it writeable.

    The twin and every view of it rest on a read-only buffer of `X`, so
    ``flags.writeable = True`` fails on them and on their ``base`` alike: a caller cannot edit
    the copy ``tell`` checks its rows against. `X` itself, the strategy's buffer, stays
    writable for reuse (:func:`unseal` returns it); it is referenced while any view exists.
    """
    flat = np.frombuffer(memoryview(X).toreadonly(), dtype=X.dtype)  # type: ignore[arg-type]
    return flat.reshape(X.shape)


def unseal(sealed: FloatArray) -> FloatArray:
    """Return the writable buffer of a batch :func:`seal` returned."""
    flat = sealed.base  # the flat read-only array, then its read-only memoryview
    assert flat is not None
    buffer = flat.base
    assert isinstance(buffer, memoryview)
    assert isinstance(buffer.obj, np.ndarray)
    return buffer.obj


def same_batch(X: FloatArray, sealed: FloatArray) -> bool:
    """Return whether `X` is the sealed batch or a view of it (what ``ask`` returned)."""
    return X is sealed or (X.base is not None and X.base is sealed.base)


def match_rows(X: FloatArray, solutions: object) -> np.ndarray | None:
    """Return the index in the asked batch `X` of each told row (None: same order)."""
    if solutions is X:
        return None
    try:
        if not isinstance(solutions, np.ndarray) and X.dtype != np.float64:
            # (numbers that are not arrays are float64 at most: read once, checked below)
            solutions = np.asarray(solutions, dtype=np.float64)
        S = np.asarray(solutions, dtype=X.dtype)
    except OverflowError as exc:  # (an int beyond the float range: no candidate)
        raise ValueError(
            "`solutions` must hold the candidates of the latest ask(), but got a number no "
            f"float holds: {short(solutions)}."
        ) from exc
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`solutions` must be the ({X.shape[0]}, {X.shape[1]}) array returned by "
            f"ask(), but got {type(solutions).__name__}."
        ) from exc
    if S.shape != X.shape:
        raise ValueError(
            f"`solutions` must have shape {X.shape} (the rows of the latest ask), "
            f"but got shape {S.shape}."
        )
    _check_not_rounded(solutions, S)
    if all(np.array_equal(S[a:b], X[a:b]) for a, b in row_blocks(X.shape[0], X.shape[1])):
        return None  # compared block by block: no (popsize, d) temporary
    # rows by their bytes, with -0.0 as 0.0 (x + 0.0), which compare equal
    where: dict[bytes, list[int]] = {}
    for k in range(X.shape[0]):
        where.setdefault((X[k] + 0.0).tobytes(), []).append(k)
    perm = np.empty(X.shape[0], dtype=np.int64)
    for i in range(S.shape[0]):
        slots = where.get(np.ascontiguousarray(S[i] + 0.0).tobytes())
        if not slots:
            raise ValueError(
                f"`solutions` row {i} is not one of the candidates of the latest ask(); "
                "tell the rows that ask() returned, in any order."
            )
        perm[i] = slots.pop()
    return perm


def _check_not_rounded(solutions: object, S: FloatArray) -> None:
    """Raise ValueError if told float rows of another dtype are not exactly their rows `S`.

    A row of a wider float type (float64 told for a float32 batch, longdouble for float64)
    that only rounds to a candidate is not one, however close.
    """
    if not isinstance(solutions, np.ndarray):
        return  # (numbers that are not arrays are float64 at most: exact for a float64 batch)
    if solutions.dtype.kind != "f" or solutions.dtype == S.dtype:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        same = (S.astype(solutions.dtype) == solutions) | (np.isnan(S) & np.isnan(solutions))
    bad = np.flatnonzero(~same.all(axis=1))
    if bad.size:
        raise ValueError(
            f"`solutions` row {int(bad[0])} is not one of the candidates of the latest ask(); "
            f"tell the rows that ask() returned, in any order (as {S.dtype}: rows of "
            f"{solutions.dtype} that only round to them are not)."
        )


def noise_sum(Zh: FloatArray, u: FloatArray, mirrored: bool) -> FloatArray:
    """Return ``sum_k u_k z_k`` over the asked rows (z_k are the unscaled perturbations)."""
    m = Zh.shape[0]
    w = u[:m] - u[m:] if mirrored else u
    # One matrix-vector product in the precision of Zh (no converted copy of Zh).
    out: FloatArray = (w.astype(Zh.dtype, copy=False) @ Zh).astype(np.float64, copy=False)
    return out


def noise_sq_sum(
    Zh: FloatArray, w: FloatArray, noise: CounterNoise | SequentialNoise, threads: int
) -> FloatArray:
    """Return ``sum_j w_j Zh_j**2`` (element-wise squares) for weights `w` over the noise rows.

    Computed in column blocks, so no (rows, d) temporary is made; the blocks are fixed,
    so the result does not depend on the thread count.
    """
    m, d = Zh.shape
    out = np.empty(d)
    wz = w.astype(Zh.dtype, copy=False)
    step = max(1, BLOCK // max(m, 1))

    def part(a: int) -> None:
        blk = Zh[:, a : a + step]
        out[a : a + step] = wz @ (blk * blk)

    starts = range(0, d, step)
    if threads > 1 and len(starts) > 1 and isinstance(noise, CounterNoise):
        list(noise.pool().map(part, starts))
    else:
        for a in starts:
            part(a)
    return out


def _refs(seq: list[FloatArray], i: int) -> int:
    return sys.getrefcount(seq[i])


#: the reference count of an array that only a list holds, measured the way _unshared does.
_BASELINE_REFS = _refs([np.empty(0)], 0) if hasattr(sys, "getrefcount") else -1


def _unshared(seq: list[FloatArray], i: int) -> bool:
    """Return whether nothing but `seq` refers to ``seq[i]`` (no caller's variable, no view)."""
    return _BASELINE_REFS > 0 and _refs(seq, i) <= _BASELINE_REFS
