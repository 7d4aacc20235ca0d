"""The hot path at scale: threads, buffer reuse, memory, float32 mode, counter noise.

All comparisons are exact (bit-identical) or exact memory accounting; none is timed.
"""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest

from nes_asktell import CRFMNES, IPOP, SNES, XNES, OpenES, Strategy
from nes_asktell._noise import CounterNoise, check_value, counter_row

D = 100_000  # two rows per block of the fused ask pass: several blocks, so threads share work


def sphere(X: np.ndarray) -> np.ndarray:
    return np.sum((X - 0.5) ** 2, axis=1)


def trajectory(cls: type, threads: int, gens: int = 3, **kw: object) -> list[np.ndarray]:
    es = cls(np.zeros(D), 0.3, 8, rng=5, threads=threads, **kw)
    out = []
    for _ in range(gens):
        X = es.ask()
        out.append(X.copy())
        es.tell(X, sphere(X))
    out.append(es.mean)
    return out


@pytest.mark.parametrize(
    ("cls", "kw"),
    [(OpenES, {}), (OpenES, {"mirrored": False}), (SNES, {}), (SNES, {"bounds": (-0.2, 0.3)})],
)
def test_any_thread_count_gives_bit_identical_runs(cls: type, kw: dict) -> None:
    ref = trajectory(cls, 1, **kw)
    for threads in (2, 3):
        for a, b in zip(trajectory(cls, threads, **kw), ref, strict=True):
            np.testing.assert_array_equal(a, b)


def test_counter_noise_threads_match_the_row_streams() -> None:
    out1, out2 = np.empty((5, 5000)), np.empty((5, 5000))
    CounterNoise(9, threads=1).draw(4, out1, start=3)
    CounterNoise(9, threads=3).draw(4, out2, start=3)
    np.testing.assert_array_equal(out1, out2)
    row = np.empty(5000)
    counter_row(9, 4, 5, row)  # row 2 of the block is key (generation 4, index 5)
    np.testing.assert_array_equal(out1[2], row)


def test_check_value_is_fixed_by_the_key() -> None:
    assert check_value() == check_value()
    assert len(check_value(np.float32)) == 64  # 16 float32 numbers
    assert check_value(np.float32) != check_value()[:64]


def test_a_batch_the_caller_still_holds_is_never_overwritten() -> None:
    es = OpenES(np.zeros(50), 0.3, rng=0)
    held = []
    for _ in range(4):
        X = es.ask()
        held.append((X, X.copy()))
        es.tell(X, sphere(X))
    for X, copy in held:
        np.testing.assert_array_equal(X, copy)
    view = es.ask()[1:3]  # a view alone keeps its batch alive
    kept = view.copy()
    es.tell(es.ask(), sphere(es.ask()))
    for _ in range(3):
        es.tell(es.ask(), sphere(es.ask()))
    np.testing.assert_array_equal(view, kept)


def test_a_released_batch_is_reused() -> None:
    es = OpenES(np.zeros(50), 0.3, rng=0)
    addresses = set()
    for _ in range(6):
        X = es.ask()
        addresses.add(X.__array_interface__["data"][0])
        es.tell(X, sphere(X))
        del X
    assert len(addresses) <= 2  # at most two buffers alternate
    assert not es.ask().flags.writeable


@pytest.mark.parametrize("cls", [OpenES, SNES])
def test_ask_and_tell_make_no_population_sized_copies(cls: type) -> None:
    n, d = 16, 50_000
    es = cls(np.zeros(d), 0.3, n, rng=1, mirrored=False)
    f = np.arange(n, dtype=float)
    for _ in range(2):  # warm up: the buffers exist and a told batch is free for reuse
        X = es.ask()
        es.tell(X, f)
        del X
    tracemalloc.start()
    try:
        X = es.ask()
        es.tell(X, f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a (popsize, d) float64 copy is 8 n d bytes; the row vectors (mean, gradient, sigma,
    # optimizer moments) are a few times 8 d, far below half of it
    assert peak < 8 * n * d / 2, peak


def test_noise_sq_sum_equals_the_direct_formula() -> None:
    for threads, mirrored in [(1, False), (2, False), (1, True), (2, True)]:
        es = SNES(np.zeros(3000), 0.3, 10, rng=2, threads=threads, mirrored=mirrored)
        es.ask()
        Zh = es._Zh
        assert Zh is not None
        assert Zh.shape == (5 if mirrored else 10, 3000)
        w = np.linspace(-1.0, 1.0, Zh.shape[0])
        # the same sums in another order: rounding only, |error| <= 10 terms * eps * max term
        np.testing.assert_allclose(es._noise_sq_sum(Zh, w), w @ (Zh * Zh), rtol=0, atol=1e-12)


def test_float32_mode_halves_the_memory_and_still_optimizes() -> None:
    es64 = SNES(np.zeros(1000), 0.3, rng=0)
    es32 = SNES(np.zeros(1000), 0.3, rng=0, dtype="float32")
    X64, X32 = es64.ask(), es32.ask()
    assert X32.dtype == np.float32
    assert X32.nbytes * 2 == X64.nbytes
    assert es32._Zh.nbytes * 2 == es64._Zh.nbytes
    es32.tell(X32, sphere(X32))
    # a deterministic run (fixed seed): an exact regression check, not a statistical claim
    res = SNES(np.zeros(10), 0.5, rng=0, dtype="float32").optimize(
        lambda x: float(np.sum((x - 0.5) ** 2)), maxfev=3000
    )
    assert res.fun < 1e-6


def test_float32_mode_survives_state_and_pickle() -> None:
    es = OpenES(np.zeros(20), 0.3, rng=0, dtype="float32")
    es.tell(es.ask(), sphere(es.ask()))
    again = OpenES.from_state(es.state_dict())
    np.testing.assert_array_equal(again.ask(), es.ask())
    assert again.ask().dtype == np.float32
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(es)).ask(), es.ask())


def test_told_rows_in_another_order_and_precision_are_matched() -> None:
    es = OpenES(np.zeros(30), 0.3, rng=0, dtype="float32")
    X = es.ask()
    f = sphere(X)
    perm = np.arange(X.shape[0])[::-1]
    ref = OpenES(np.zeros(30), 0.3, rng=0, dtype="float32")
    ref.tell(ref.ask(), f)
    es.tell(X[perm].astype(np.float64), f[perm])
    np.testing.assert_array_equal(es.mean, ref.mean)


@pytest.mark.parametrize(
    "bad",
    [
        "float16",
        "int64",
        object(),
        "1" * 5000,  # SyntaxError from numpy's parser before (the int-to-string limit)
        "10000000000000000000000f8",  # numpy's ValueError naming no argument before
        "(2,3)f8",
        [("a", "f8")],
    ],
)
def test_dtype_must_be_a_float_precision(bad: object) -> None:
    with pytest.raises(ValueError, match="`dtype` must be 'float64' or 'float32', but got"):
        OpenES(np.zeros(3), 0.3, dtype=bad)


@pytest.mark.parametrize("bad", ["1" * 5000, "10000000000000000000000f8"])
def test_from_state_rejects_a_dtype_numpy_cannot_read(bad: str) -> None:
    state = CRFMNES(np.ones(2), 0.5, rng=0).state_dict()
    with pytest.raises(ValueError, match="`dtype` must be 'float64' or 'float32', but got"):
        Strategy.from_state({**state, "dtype": bad})
    seq = IPOP("xnes", np.ones(2), 0.5, rng=0).state_dict()
    with pytest.raises(ValueError, match="`dtype` must be 'float64' or 'float32', but got"):
        IPOP.from_state({**seq, "run": {**seq["run"], "dtype": bad}})


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [
        (None, np.float64),
        ("float64", np.float64),
        ("float32", np.float32),
        (np.float32, np.float32),
        ("f4", np.float32),
        (np.dtype("<f8"), np.float64),
    ],
)
def test_dtype_takes_the_names_numpy_gives_the_two_precisions(dtype: object, kind: type) -> None:
    assert OpenES(np.zeros(3), 0.3, rng=0, dtype=dtype).ask().dtype == kind


def test_xnes_takes_the_dtype_option() -> None:
    es = XNES(np.zeros(4), 0.3, rng=0, dtype="float32")
    assert es.ask().dtype == np.float32
