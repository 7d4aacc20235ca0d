"""Reproducibility: same seed same asks; state_dict (through JSON) and pickle round trips, at
any point of the ask/tell cycle and for every kind of noise; a resumed run is bit-identical to
one that never stopped."""

from __future__ import annotations

import copy
import json
import pickle
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nes_asktell import IPOP, XNES, OpenES, Strategy, resolve_strategy, strategy_names

SOLUTION = np.array([0.5, 0.1, -0.3, 0.2])


def f(x: np.ndarray) -> float:
    return float(np.sum((x - np.resize(SOLUTION, x.size)) ** 2) + np.sin(7 * x[0]))


def make_rng(kind: str, seed: int) -> object:
    if kind == "int":
        return seed
    if kind == "seedsequence":
        return np.random.SeedSequence(seed)
    if kind == "generator":
        return np.random.default_rng(seed)
    if kind == "pcg64dxsm":
        return np.random.Generator(np.random.PCG64DXSM(seed))
    if kind == "randomstate":
        return np.random.RandomState(seed)
    raise AssertionError(kind)


RNG_KINDS = ["int", "seedsequence", "generator", "pcg64dxsm", "randomstate"]

OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"optimizer": "sgd", "learning_rate": 0.05, "shaping": "zscore", "mirrored": False},
    {"optimizer": "momentum", "weight_decay": 0.01, "shaping": "nes", "sigma_decay": 0.99},
    {"bounds": (-0.2, 0.4), "learning_rate_decay": 0.9, "learning_rate_limit": 1e-3},
]


def make(kind: str, seed: int, d: int = 3, **options: Any) -> OpenES:
    return OpenES(np.linspace(-1, 1, d), 0.3, rng=make_rng(kind, seed), **options)


def steps(es: OpenES, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        X = es.ask()
        out.append(X.copy())
        es.tell(X, [f(x) for x in X])
    return out


def json_round_trip(es: OpenES) -> OpenES:
    return OpenES.from_state(json.loads(json.dumps(es.state_dict())))


def pickle_round_trip(es: OpenES) -> OpenES:
    return pickle.loads(pickle.dumps(es))  # type: ignore[no-any-return]


ROUND_TRIPS: dict[str, Callable[[OpenES], OpenES]] = {
    "state_dict+json": json_round_trip,
    "pickle": pickle_round_trip,
}


def assert_same_run(a: OpenES, b: OpenES, generations: int = 4) -> None:
    for Xa, Xb in zip(steps(a, generations), steps(b, generations), strict=True):
        np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.sigma == b.sigma
    assert a.best[1] == b.best[1]
    np.testing.assert_array_equal(a.best[0], b.best[0])
    assert (a.generation, a.nfev) == (b.generation, b.nfev)


class InterruptedOnce(OpenES):
    """OpenES whose next batch is interrupted once (a Ctrl-C), after its noise was drawn."""

    interrupt = False

    def _perturb_into(self, Zh: np.ndarray, out: np.ndarray) -> None:
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        super()._perturb_into(Zh, out)


@pytest.mark.parametrize("kind", RNG_KINDS)
def test_an_interrupted_ask_changes_nothing(kind: str) -> None:
    # a RandomState drawn from in sequence kept the draws of the interrupted ask: the state
    # had moved on, and the ask asked again drew other rows than an uninterrupted run's
    es = InterruptedOnce(np.linspace(-1, 1, 3), 0.3, rng=make_rng(kind, 4))
    ref = make(kind, 4)
    steps(es, 2)
    steps(ref, 2)
    before = json.dumps(es.state_dict())
    es.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        es.ask()
    assert json.dumps(es.state_dict()) == before
    assert_same_run(es, ref)


@pytest.mark.parametrize("kind", RNG_KINDS)
def test_changing_a_state_dict_changes_nothing(kind: str) -> None:
    # between ask and tell, a RandomState run handed out the noise state it kept since the
    # ask: an edit of the dict returned reached every later checkpoint
    es = make(kind, 3)
    steps(es, 2)
    es.ask()
    state = es.state_dict()
    text = json.dumps(state)
    state["noise"].clear()
    assert json.dumps(es.state_dict()) == text


def interleaved(a: Strategy, b: Strategy, rounds: int = 3) -> list[np.ndarray]:
    """Run `a` on f and `b` on another function, `a` a generation ahead; return their asks."""
    out = []
    for _ in range(rounds):
        X = a.ask()
        out.append(X.copy())
        a.tell(X, [f(x) for x in X])
        out.append(a.ask().copy())  # pending while b goes on
        Y = b.ask()
        out.append(Y.copy())
        b.tell(Y, [f(-y) for y in Y])
    return out


@pytest.mark.parametrize("pending", [False, True])
@pytest.mark.parametrize(
    "name", [*strategy_names(), "openes-randomstate"], ids=[*strategy_names(), "randomstate"]
)
def test_a_shallow_copy_goes_on_independently_as_a_deep_one(name: str, pending: bool) -> None:
    """copy.copy(es) is a twin as independent as copy.deepcopy(es): what the original does
    in place (the noise rows of its next ask, its RandomState's stream) never reaches the
    twin, nor the twin's the original (they shared both; the twin's tell then read the noise
    of the original's next generation, a wrong update without a word)."""
    if name == "openes-randomstate":
        es: Strategy = make("randomstate", 5, d=4)
    else:
        es = resolve_strategy(name)(np.linspace(-1, 1, 4), 0.3, rng=5)
    steps(es, 2)  # type: ignore[arg-type]
    if pending:
        es.ask()
    ref = interleaved(copy.deepcopy(es), copy.deepcopy(es))
    for got, want in zip(interleaved(es, copy.copy(es)), ref, strict=True):
        np.testing.assert_array_equal(got, want)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**63), kind=st.sampled_from(RNG_KINDS), opts=st.integers(0, 3))
def test_same_seed_same_asks(seed: int, kind: str, opts: int) -> None:
    if kind == "randomstate":
        seed %= 2**32
    assert_same_run(make(kind, seed, **OPTION_SETS[opts]), make(kind, seed, **OPTION_SETS[opts]))


@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(RNG_KINDS),
    opts=st.integers(0, 3),
    before=st.integers(0, 4),
    pending=st.booleans(),
    trip=st.sampled_from(sorted(ROUND_TRIPS)),
)
def test_round_trip_continues_bit_identically(
    seed: int, kind: str, opts: int, before: int, pending: bool, trip: str
) -> None:
    """Stop after `before` generations (between ask and tell when `pending`), round-trip,
    continue: the copy asks exactly what the original asks."""
    es = make(kind, seed, **OPTION_SETS[opts])
    steps(es, before)
    if pending:
        X = es.ask().copy()
    copy = ROUND_TRIPS[trip](es)
    if pending:
        np.testing.assert_array_equal(copy.ask(), X)
        for s in (es, copy):
            s.tell(X, [f(x) for x in X])
    assert_same_run(es, copy)


@pytest.mark.parametrize("kind", RNG_KINDS)
@pytest.mark.parametrize("trip", sorted(ROUND_TRIPS))
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(kind: str, trip: str) -> None:
    """Checkpoint every few generations, in and out of the ask/tell cycle, through a fresh
    object each time: the final state equals the uninterrupted run's state exactly."""
    ref = make(kind, 2024, d=4)
    ref_asks = steps(ref, 12)
    es = make(kind, 2024, d=4)
    asks = []
    for g in range(12):
        if g % 3 == 0:
            es = ROUND_TRIPS[trip](es)
        X = es.ask()
        asks.append(X.copy())
        if g % 3 == 1:
            es = ROUND_TRIPS[trip](es)  # between ask and tell
            assert es.ask() is not X
            np.testing.assert_array_equal(es.ask(), X)
            X = es.ask()
        es.tell(X, [f(x) for x in X])
    for a, b in zip(asks, ref_asks, strict=True):
        np.testing.assert_array_equal(a, b)
    sa, sb = es.state_dict(), ref.state_dict()
    # the elapsed time is not part of the state; everything else must agree to the last bit
    assert json.dumps(sa, sort_keys=True) == json.dumps(sb, sort_keys=True)


def test_state_dict_is_plain_json_data() -> None:
    es = make("randomstate", 3, bounds=[(None, 1.0), (-1.0, None), (-2.0, 2.0)])
    steps(es, 2)
    es.ask()
    state = es.state_dict()
    text = json.dumps(state, allow_nan=False)  # no NaN or inf smuggled in either
    assert json.loads(text) == state


def test_from_state_accepts_its_own_output_twice() -> None:
    es = make("int", 4)
    steps(es, 2)
    state = es.state_dict()
    a, b = OpenES.from_state(state), OpenES.from_state(state)
    assert_same_run(a, b)
    assert state == es.state_dict()  # loading did not modify the dict


def test_asking_twice_before_tell_returns_the_same_batch() -> None:
    es = make("generator", 5)
    X = es.ask()
    assert es.ask() is X
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 1.0


def test_a_shared_generator_is_drawn_in_sequence() -> None:
    # a Generator passed as rng is drawn from in sequence: two strategies sharing one generator
    # interleave, so the second one's asks differ from a fresh strategy's.
    g = np.random.default_rng(6)
    a, b = OpenES(np.zeros(3), 0.1, rng=g), OpenES(np.zeros(3), 0.1, rng=g)
    Xa = a.ask().copy()
    Xb = b.ask().copy()
    fresh = OpenES(np.zeros(3), 0.1, rng=np.random.default_rng(6)).ask()
    np.testing.assert_array_equal(Xa, fresh)
    assert not np.array_equal(Xb, fresh)


def test_counter_noise_depends_only_on_the_seed_generation_and_row() -> None:
    # row k of generation g is rebuilt from (seed, g, k) alone, whatever came before
    from nes_asktell._noise import CounterNoise, counter_row

    es = OpenES(np.zeros(5), 1.0, 6, rng=123, mirrored=False)
    steps(es, 3)
    X = es.ask()
    entropy = int(es.state_dict()["noise"]["entropy"])  # type: ignore[index]
    assert isinstance(es._noise, CounterNoise)
    z = np.empty(5)
    counter_row(entropy, 3, 4, z)
    np.testing.assert_array_equal(X[4], es.mean + 1.0 * z)


def test_threads_do_not_change_the_noise() -> None:
    d = 5000  # above the size where rows are drawn by several threads
    a = OpenES(np.zeros(d), 0.1, 8, rng=8, threads=1).ask()
    b = OpenES(np.zeros(d), 0.1, 8, rng=8, threads=2).ask()
    np.testing.assert_array_equal(a, b)


def test_strategy_from_state_of_another_kind_of_state_says_what_it_needs() -> None:
    state = IPOP("xnes", np.ones(2), 0.5, rng=0).state_dict()
    with pytest.raises(
        ValueError,
        match=r"^`state` must come from a strategy's state_dict\(\) \(version 2\), but got "
        r"strategy='ipop', version=2\.$",
    ):
        Strategy.from_state(state)


def test_a_subclass_without_a_name_of_its_own_reads_its_state_back_as_itself() -> None:
    # A subclass inherits its parent's name, so its state names the parent; reading it back
    # with the subclass raised "`state` must come from Mine.state_dict()", and so every
    # NESSampler(strategy=Mine) trial after the first crashed.
    from nes_asktell import SNES, XNES

    class Mine(XNES):
        pass

    def sphere(X: np.ndarray) -> np.ndarray:
        return np.sum(X**2, axis=1)

    es = Mine(np.ones(3), 0.5, rng=0)
    for _ in range(5):
        X = es.ask()
        es.tell(X, sphere(X))
    state = json.loads(json.dumps(es.state_dict()))
    assert state["strategy"] == "xnes"
    back = Mine.from_state(state)
    assert type(back) is Mine
    assert type(Strategy.from_state(state)) is XNES  # the class the state names
    with pytest.raises(ValueError, match=r"must come from SNES\.state_dict\(\)"):
        SNES.from_state(state)
    for _ in range(5):
        X, Y = es.ask(), back.ask()
        np.testing.assert_array_equal(X, Y)
        es.tell(X, sphere(X))
        back.tell(Y, sphere(Y))
    assert es.digest() == back.digest()


@pytest.mark.parametrize("field", ["mean", "best_x"])
def test_a_crafted_long_list_is_refused_before_it_is_read(field: str) -> None:
    # A state with a 10**6-long `best_x` (IPOP) or `mean` (XNES at d = 2) walked the list
    # element by element (a tuple pushed per element) and converted it before its length was
    # compared: at 10**7 elements 7 s and 690 MB, against the docs' "sizes are checked
    # before anything is allocated"
    if field == "best_x":
        cls: Any = IPOP
        state = json.loads(json.dumps(IPOP("xnes", np.zeros(2), 1.0, rng=0).state_dict()))
        want = r"`best_x` must have length 2, but got length 1000000"
    else:
        cls = XNES
        state = json.loads(json.dumps(XNES(np.zeros(2), 1.0, rng=0).state_dict()))
        want = r"dim 2 does not match the mean"
    state[field] = [0.5] * 10**6  # (8 MB of pointers, made before tracing)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=want):
            cls.from_state(state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak  # (before: over 64 MB of tuples, then an 8 MB array)


# ---------------------------------------------------------------- states no run can write
def _rastrigin(X: np.ndarray) -> np.ndarray:
    return 10 * X.shape[1] + np.sum(X**2 - 10 * np.cos(2 * np.pi * X), axis=1)


def _restarted(cls: Any, restarts: int, **kw: Any) -> Any:
    es = cls("xnes", np.full(3, 2.0), 1.0, rng=0, bounds=[(-5, 5)] * 3, max_restarts=20, **kw)
    while es.restarts < restarts:
        X = es.ask()
        es.tell(X, _rastrigin(X))
    X = es.ask()
    es.tell(X, _rastrigin(X))
    return es


@pytest.mark.parametrize("cls_name", ["XNES", "SNES", "OpenES", "DXNESIC", "CRFMNES"])
def test_a_best_point_outside_the_bounds_is_refused(cls_name: str) -> None:
    # from_state took a record whose best point lay outside the state's own bounds, and
    # result.x (documented "inside the bounds") was then outside the box
    import nes_asktell

    cls = getattr(nes_asktell, cls_name)
    es = cls(np.zeros(3), 1.0, rng=0, bounds=[(-1, 1)] * 3)
    X = es.ask()
    es.tell(X, np.sum(X**2, axis=1))
    state = json.loads(json.dumps(es.state_dict()))
    cls.from_state(json.loads(json.dumps(state)))  # as written: loads
    state["record"]["best_x"] = [9.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"`best_x` must lie in the bounds"):
        cls.from_state(state)
    state = json.loads(json.dumps(es.state_dict()))
    state["record"]["last_range"] = -1.0
    with pytest.raises(ValueError, match=r"`last_range` must be a non-negative"):
        cls.from_state(state)


@pytest.mark.parametrize("which", ["IPOP", "BIPOP"])
@pytest.mark.parametrize("kw", [{}, {"popsize_factor": 1.5, "mirrored": False}])
def test_a_restart_sequence_refuses_a_history_no_run_wrote(which: str, kw: dict) -> None:
    import nes_asktell

    cls = getattr(nes_asktell, which)
    es = _restarted(cls, 6, **kw)
    state = json.loads(json.dumps(es.state_dict()))
    if which == "BIPOP":  # both regimes are in the history checked below
        assert {h["regime"] for h in state["history"]} == {"large", "small"}
    again = cls.from_state(json.loads(json.dumps(state)))  # as written: loads
    assert again.history == es.history

    def refused(edit: Callable[[dict], None], match: str) -> None:
        crafted = json.loads(json.dumps(state))
        edit(crafted)
        with pytest.raises(ValueError, match=match):
            cls.from_state(crafted)

    def best_x_out(s: dict) -> None:
        s["best_x"] = [9.0, 9.0, 9.0]

    def record_below_best(s: dict) -> None:
        s["history"][0]["best_f"] = s["best_f"] - 5.0

    def best_f_raised(s: dict) -> None:
        s["best_f"] = s["best_f"] + 1.0

    refused(best_x_out, r"`best_x` must lie in the bounds")
    refused(record_below_best, r"`best_f` must be the least of the runs' best values")
    refused(best_f_raised, r"`best_f` must be the least of the runs' best values")
    for r in range(len(state["history"])):

        def popsize_changed(s: dict, r: int = r) -> None:
            s["history"][r]["popsize"] += 1

        refused(popsize_changed, rf"`history\[{r}\]\['popsize'\]` must be ")


@pytest.mark.parametrize("cls_name", ["XNES", "SNES", "OpenES", "DXNESIC", "CRFMNES", "IPOP"])
def test_a_crafted_long_sigma0_is_refused_before_it_is_read(cls_name: str) -> None:
    # a 10**7-long sigma0 was read into an array before its shape was checked (160 MB)
    import nes_asktell

    cls = getattr(nes_asktell, cls_name)
    made = cls("xnes", np.zeros(3), 1.0, rng=0) if cls_name == "IPOP" else cls(np.zeros(3), 1.0)
    state = json.loads(json.dumps(made.state_dict()))
    state["sigma0"] = [0.5] * 10**6
    tracemalloc.start()
    try:
        want = r"`sigma0` must have shape \(3,\), but got shape \(1000000,\)"
        with pytest.raises(ValueError, match=want):
            cls.from_state(state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak


@pytest.mark.parametrize("upper", [0.1, 0.1 + 1e-12])
@pytest.mark.parametrize("cls_name", ["XNES", "SNES", "OpenES", "DXNESIC", "CRFMNES", "IPOP"])
def test_a_float32_run_in_a_box_no_float32_value_lies_in_loads_its_state(
    cls_name: str, upper: float
) -> None:
    # Its candidates are the nearest float32 value, just outside the box (as documented), and
    # the check that the best point lies in the bounds refused every state such a run wrote
    import nes_asktell

    cls = getattr(nes_asktell, cls_name)
    bounds = [(0.1, upper), (-1.0, 1.0), (-1.0, 1.0)]
    kw: dict[str, Any] = {"rng": 0, "bounds": bounds, "dtype": "float32"}
    es = cls("xnes", np.zeros(3), 0.5, **kw) if cls_name == "IPOP" else cls(np.zeros(3), 0.5, **kw)
    for _ in range(3):
        X = es.ask()
        es.tell(X, np.sum(np.asarray(X, dtype=float) ** 2, axis=1))
    state = json.loads(json.dumps(es.state_dict()))
    again = cls.from_state(state)
    np.testing.assert_array_equal(again.ask(), es.ask())
    if cls_name == "IPOP":  # beyond any float32 value near the box
        state["best_x"] = [0.2, 0.0, 0.0]
    else:
        state["record"]["best_x"] = [0.2, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"`best_x` must lie in the bounds"):
        cls.from_state(state)
