"""Sources of standard-normal perturbations.

Two kinds exist:

* :class:`CounterNoise` (``None``, an integer seed, a ``Generator`` or a ``SeedSequence``):
  row ``k`` of generation ``g`` comes from its own stream ``SeedSequence(entropy, spawn_key=(g,
  k))`` driving an ``SFC64`` bit generator. The entropy is drawn once from the Generator
  (``np.random.default_rng(rng)`` for None or an int, SPEC 7), so ``rng=42`` and
  ``rng=np.random.default_rng(42)`` give the same run.
  Any process can rebuild a perturbation from ``(entropy, g, k)`` alone, and rows can be
  filled by several threads with identical results.
* :class:`SequentialNoise` (a legacy ``RandomState``, for the 2017 seed configuration; and
  Generator states of older checkpoints): rows are drawn in sequence from the generator.
"""

from __future__ import annotations

import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from ._typing import JSON, LegacyRngLike
from ._validate import short

#: entropy is a non-negative integer below 2**128 (what a strategy draws; see make_noise).
ENTROPY_BITS = 128


def counter_row(entropy: int, generation: int, index: int, out: npt.NDArray[np.floating]) -> None:
    """Fill `out` with the perturbation of row `index` in `generation` (in place).

    `out` may be float64 or float32; the two precisions draw different (each reproducible)
    numbers.
    """
    seq = np.random.SeedSequence(entropy, spawn_key=(generation, index))
    np.random.Generator(np.random.SFC64(seq)).standard_normal(out=out, dtype=out.dtype)


#: the key of the check value: a worker that draws other numbers for it cannot rebuild candidates.
_CHECK_KEY = (0x5EED_C0DE, 0, 0)


def check_value(dtype: npt.DTypeLike = np.float64) -> bytes:
    """Return the bytes of a fixed 16-number counter draw (compared on first contact)."""
    out = np.empty(16, dtype=dtype)
    counter_row(*_CHECK_KEY, out)
    return out.tobytes()


class CounterNoise:
    """Counter-based noise: perturbation ``(g, k)`` has its own reproducible stream."""

    kind = "counter"

    def __init__(self, entropy: int, threads: int = 1) -> None:
        self.entropy = int(entropy)
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        """Return the thread pool of this source (created on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="nes_asktell")
        return self._pool

    def fill(self, generation: int, out: npt.NDArray[np.floating], start: int = 0) -> None:
        """Fill the rows of `out` with perturbations ``start, start + 1, ...`` in this thread."""
        for k in range(out.shape[0]):
            counter_row(self.entropy, generation, start + k, out[k])

    def draw(
        self, generation: int, out: npt.NDArray[np.floating], start: int = 0
    ) -> npt.NDArray[np.floating]:
        """Fill the rows of `out` with perturbations ``start, start + 1, ...`` of `generation`.

        Each row has its own stream, so the result does not depend on the number of threads.
        """
        n = out.shape[0]
        if self.threads > 1 and n > 1 and out.shape[1] >= 4096:
            bounds = np.linspace(0, n, min(self.threads, n) + 1).astype(int)

            def fill(i: int) -> None:
                a, b = int(bounds[i]), int(bounds[i + 1])
                self.fill(generation, out[a:b], start + a)

            list(self.pool().map(fill, range(bounds.size - 1)))
        else:
            self.fill(generation, out, start)
        return out

    def state_dict(self) -> JSON:
        """Return the plain-data state (the entropy: nothing else changes)."""
        return {"kind": self.kind, "entropy": str(self.entropy)}

    def __getstate__(self) -> dict[str, object]:
        return {"entropy": self.entropy, "threads": self.threads}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(int(state["entropy"]), int(state["threads"]))  # type: ignore[misc,call-overload]


class SequentialNoise:
    """Noise drawn in sequence from a ``Generator`` or a legacy ``RandomState``."""

    kind = "sequential"

    def __init__(self, rng: np.random.Generator | np.random.RandomState) -> None:
        self.rng = rng

    def draw(
        self, generation: int, out: npt.NDArray[np.floating], start: int = 0
    ) -> npt.NDArray[np.floating]:
        """Fill `out` with the next normals of the generator (`generation` is not used)."""
        if isinstance(self.rng, np.random.RandomState):
            out[...] = self.rng.standard_normal(out.shape)
        else:
            self.rng.standard_normal(out=out, dtype=out.dtype)
        return out

    def restore(self, state: JSON) -> None:
        """Set the generator back to `state`, what :meth:`state_dict` returned, in place.

        In place: a legacy RandomState is the caller's own (the seed configuration draws its
        ``x0`` from it too), which goes on drawing from where the strategy left it.
        """
        rng = getattr(from_state(state), "rng", None)
        if isinstance(self.rng, np.random.RandomState) and isinstance(rng, np.random.RandomState):
            self.rng.set_state(rng.get_state())
        elif isinstance(self.rng, np.random.Generator) and isinstance(rng, np.random.Generator):
            self.rng.bit_generator.state = rng.bit_generator.state

    def state_dict(self) -> JSON:
        """Return the generator's state as plain data."""
        if isinstance(self.rng, np.random.RandomState):
            st = self.rng.get_state(legacy=False)
            inner = dict(st["state"])
            inner["key"] = [int(v) for v in inner["key"]]
            return {"kind": self.kind, "legacy": True, "state": _plain({**st, "state": inner})}
        return {"kind": self.kind, "legacy": False, "state": _plain(self.rng.bit_generator.state)}


def _plain(obj: object) -> object:
    """Convert numpy scalars and arrays inside `obj` to JSON-serialisable data."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    return obj


def from_state(noise: object, threads: int = 1) -> CounterNoise | SequentialNoise:
    """Rebuild a noise source from its ``state_dict()`` output; raise ValueError if malformed."""
    try:
        if not isinstance(noise, dict):
            raise TypeError("not a mapping")
        if noise["kind"] == "counter":
            return CounterNoise(_entropy_from_text(noise["entropy"]), threads)
        if noise["kind"] != "sequential":
            raise ValueError(f"unknown kind {short(noise['kind'])}")
        state = noise["state"]
        if noise["legacy"]:
            rs = np.random.RandomState()
            inner = dict(state["state"])
            inner["key"] = np.asarray(inner["key"], dtype=np.uint32)
            rs.set_state({**state, "state": inner})
            return SequentialNoise(rs)
        bitgen_cls = getattr(np.random, str(state["bit_generator"]), None)
        if not (isinstance(bitgen_cls, type) and issubclass(bitgen_cls, np.random.BitGenerator)):
            raise ValueError(f"unknown bit generator {short(state['bit_generator'])}")
        bitgen = bitgen_cls()
        bitgen.state = state
        return SequentialNoise(np.random.Generator(bitgen))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise ValueError(f"`state['noise']` is malformed: {exc}.") from exc


def _entropy_from_text(text: object) -> int:
    """Return the entropy stored as decimal text, or raise ValueError naming `entropy`."""
    if not (isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 39):
        raise ValueError(
            f"`entropy` must be the decimal text of an integer in [0, 2**{ENTROPY_BITS}), "
            f"but got {text!r:.80}"
        )
    value = int(text)
    if value >= 2**ENTROPY_BITS:
        raise ValueError(f"`entropy` must be below 2**{ENTROPY_BITS}, but got {value}")
    return value


def make_noise(
    rng: LegacyRngLike, *, allow_legacy: bool, threads: int = 1
) -> CounterNoise | SequentialNoise:
    """Turn an `rng` argument (SPEC 7) into a noise source, or raise TypeError naming `rng`.

    None, an int, a SeedSequence or a Generator: the Generator (``np.random.default_rng(rng)``
    unless `rng` is one) is drawn from once, for a 128-bit entropy, so ``rng=42`` and
    ``rng=np.random.default_rng(42)`` give the same noise. All of these give counter-based
    noise; only a legacy RandomState (the seed configuration) is drawn from in sequence.
    """
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        if rng is not None and int(rng) < 0:
            raise ValueError(f"`rng` must be a non-negative integer seed, but got {rng}.")
        return CounterNoise(drawn_entropy(np.random.default_rng(rng)), threads)
    if isinstance(rng, np.random.SeedSequence):
        if rng.spawn_key:
            raise ValueError(
                "`rng` must be a SeedSequence without a spawn key (pass the entropy of "
                f"the parent), but got spawn_key={rng.spawn_key}."
            )
        return CounterNoise(drawn_entropy(np.random.default_rng(rng)), threads)
    if isinstance(rng, np.random.Generator):
        return CounterNoise(drawn_entropy(rng), threads)
    if isinstance(rng, np.random.RandomState):
        if not allow_legacy:
            raise TypeError(
                "`rng` must be None, an int, a SeedSequence or a Generator (a legacy "
                "RandomState is accepted by OpenES only), but got RandomState."
            )
        return SequentialNoise(rng)
    raise TypeError(
        "`rng` must be None, an int, a SeedSequence or a numpy Generator, "
        f"but got {type(rng).__name__}: {short(rng)}."
    )


def drawn_entropy(rng: np.random.Generator) -> int:
    """Draw a 128-bit entropy from `rng` (two 64-bit words, the first the high one)."""
    hi, lo = rng.integers(0, 2**64, size=2, dtype=np.uint64)
    return int(hi) << 64 | int(lo)
