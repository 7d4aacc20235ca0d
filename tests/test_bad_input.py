"""Bad input: one test per message; a rejected call leaves everything as it was.

Each case asserts the exception type and its message (the argument in backticks and the value
received). For calls on a strategy (`tell`), the state is compared through ``state_dict()``
before and after, and the run is then continued next to a twin that never saw the bad call: both
must ask exactly the same candidates. For constructors, `from_state` and `estimate_gradient`,
the inputs (arrays, generators, state dicts) must be left untouched.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from scipy.optimize import Bounds

from nes_asktell import (
    IPOP,
    SNES,
    XNES,
    Evaluator,
    History,
    NoiseHandler,
    OpenES,
    estimate_gradient,
    evaluate,
    resolve_strategy,
)

X0 = np.array([0.3, -0.2, 0.1])


def sphere(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def run(es: OpenES, generations: int) -> list[np.ndarray]:
    asks = []
    for _ in range(generations):
        X = es.ask()
        asks.append(X.copy())
        es.tell(X, [sphere(x) for x in X])
    return asks


def snapshot(es: OpenES) -> str:
    return json.dumps(es.state_dict(), sort_keys=True)


def assert_rejected_and_unchanged(
    es: OpenES, call: Callable[[OpenES], object], exc: type[Exception], match: str
) -> None:
    """`call(es)` raises `exc` matching `match`; `es` is unchanged and continues as its twin."""
    twin = type(es).from_state(es.state_dict())
    before = snapshot(es)
    with pytest.raises(exc, match=match):
        call(es)
    assert snapshot(es) == before
    pending = es.state_dict()["asked"]
    if pending:
        X, Y = es.ask(), twin.ask()
        np.testing.assert_array_equal(X, Y)
        es.tell(X, [sphere(x) for x in X])
        twin.tell(Y, [sphere(y) for y in Y])
    for a, b in zip(run(es, 3), run(twin, 3), strict=True):
        np.testing.assert_array_equal(a, b)
    assert snapshot(es) == snapshot(twin)


# ---------------------------------------------------------------- constructor arguments
CONSTRUCTOR_CASES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("x0 2-d", {"x0": np.zeros((2, 2))}, ValueError, r"`x0` must be 1-d, but got shape \(2, 2\)"),
    ("x0 empty", {"x0": []}, ValueError, r"`x0` must not be empty, but got \[\]"),
    ("x0 nan", {"x0": [0.0, np.nan]}, ValueError, r"`x0` must be finite, but got \[0.0, nan\]"),
    ("x0 inf", {"x0": [np.inf, 0.0]}, ValueError, r"`x0` must be finite, but got \[inf, 0.0\]"),
    (
        "maxfev past the limit on digits",  # (accepted: state_dict() then gave no JSON)
        {"maxfev": 10**5000},
        ValueError,
        r"`maxfev` must be an integer <= 9223372036854775807, but got <int of about 5001 digits>",
    ),
    (
        "x0 an int past the float range",  # (a TypeError said it was no number)
        {"x0": [10**400, 0.0]},
        ValueError,
        r"`x0` must be finite, but got \[1000000",
    ),
    ("x0 text", {"x0": "abc"}, TypeError, r"`x0` must be a 1-d array of numbers, but got 'abc'"),
    ("x0 None", {"x0": None}, TypeError, r"`x0` must be a 1-d array of numbers, but got None"),
    (
        # numpy reads a list of a bool and ints as ints: [1, 1, 1]
        "x0 bool among numbers",
        {"x0": [True, 1, 1]},
        TypeError,
        r"`x0` must be a 1-d array of numbers, but got \[True, 1, 1\]",
    ),
    (
        "x0 objects",
        {"x0": [{}]},
        TypeError,
        r"`x0` must be a 1-d array of numbers, but got \[\{\}\]",
    ),
    (
        "sigma0 negative",
        {"sigma0": -1.0},
        ValueError,
        r"`sigma0` must be a positive finite number, but got -1.0\.",
    ),
    (
        "sigma0 zero",
        {"sigma0": 0.0},
        ValueError,
        r"`sigma0` must be a positive finite number, but got 0.0\.",
    ),
    (
        "sigma0 nan",
        {"sigma0": np.nan},
        ValueError,
        r"`sigma0` must be a positive finite number, but got nan\.",
    ),
    (
        "sigma0 inf",
        {"sigma0": np.inf},
        ValueError,
        r"`sigma0` must be a positive finite number, but got inf\.",
    ),
    (
        "sigma0 text",
        {"sigma0": "1"},
        TypeError,
        r"`sigma0` must be a positive finite number, but got '1'\.",
    ),
    (
        "sigma0 array of the wrong length",
        {"sigma0": np.ones(7)},
        ValueError,
        r"`sigma0` must have shape \(3,\), but got shape \(7,\)\.",
    ),
    (  # (numpy read [True, 0.5, 0.5] as the floats [1.0, 0.5, 0.5])
        "sigma0 bool among numbers",
        {"sigma0": [True, 0.5, 0.5]},
        TypeError,
        r"`sigma0` must be a positive number or an array of 3 positive numbers, but got "
        r"\[True, 0.5, 0.5\]\.",
    ),
    (  # (a TypeError said it held no positive numbers)
        "sigma0 an int past the float range",
        {"sigma0": [10**400, 0.5, 0.5]},
        ValueError,
        r"`sigma0` must hold positive finite numbers, but got \[1000",
    ),
    (
        "popsize 1",
        {"popsize": 1, "mirrored": False},
        ValueError,
        r"`popsize` must be an integer >= 2, but got 1\.",
    ),
    ("popsize 0", {"popsize": 0}, ValueError, r"`popsize` must be an integer >= 2, but got 0\."),
    (
        "popsize fraction",
        {"popsize": 2.5},
        TypeError,
        r"`popsize` must be an integer, but got 2.5\.",
    ),
    (
        "popsize past the limit on digits",  # (its message printed the int, which raised)
        {"popsize": 10**5000},
        ValueError,
        r"`popsize` must be an integer <= 262144, but got <int of about 5001 digits>\.",
    ),
    (  # (quoted as the 309 digits of int(1e308), which the caller never wrote)
        "popsize a whole float past the limit",
        {"popsize": 1e308},
        ValueError,
        r"`popsize` must be an integer <= 262144, but got 1e\+308\.",
    ),
    (
        "maxiter a whole float32 below the minimum",
        {"maxiter": np.float32(0.0)},
        ValueError,
        r"`maxiter` must be an integer >= 1, but got np\.float32\(0\.0\)\.",
    ),
    ("popsize text", {"popsize": "8"}, TypeError, r"`popsize` must be an integer, but got '8'\."),
    (
        "popsize bool",
        {"popsize": True},
        TypeError,
        r"`popsize` must be an integer, but got True\.",
    ),
    (
        "popsize odd mirrored",
        {"popsize": 7},
        ValueError,
        r"`popsize` must be even with mirrored sampling, but got 7\.",
    ),
    (
        "rng text",
        {"rng": "abc"},
        TypeError,
        r"`rng` must be None, an int, a SeedSequence or a numpy Generator, but got str: 'abc'\.",
    ),
    ("rng float", {"rng": 1.5}, TypeError, r"`rng` must be .*, but got float: 1.5\."),
    ("rng bool", {"rng": True}, TypeError, r"`rng` must be .*, but got bool: True\."),
    (
        "rng negative",
        {"rng": -1},
        ValueError,
        r"`rng` must be a non-negative integer seed, but got -1\.",
    ),
    (
        "rng spawned",
        {"rng": np.random.SeedSequence(1).spawn(1)[0]},
        ValueError,
        r"`rng` must be a SeedSequence without a spawn key .*, but got spawn_key=\(0,\)\.",
    ),
    (
        "bounds lower > upper",
        {"bounds": ([0, 0, 1], [1, 1, 0])},
        ValueError,
        r"`bounds` must have lower <= upper in every coordinate, "
        r"but got lower=1.0 and upper=0.0 at index 2\.",
    ),
    (
        "bounds Bounds lower > upper",
        {"bounds": Bounds([1, 0, 0], [0, 1, 1])},
        ValueError,
        r"`bounds` must have lower <= upper .* at index 0\.",
    ),
    (
        "bounds wrong length",
        {"bounds": ([0, 0], [1, 1])},
        ValueError,
        r"`bounds` must hold 3 lower and 3 upper numbers, but got \(\[0, 0\], \[1, 1\]\)\.",
    ),
    (
        "bounds pairs wrong length",
        {"bounds": [(0, 1)] * 4},
        ValueError,
        r"`bounds` must be \(lower, upper\) or 3 \(low, high\) pairs, but got \[\(0, 1\), ",
    ),
    (
        "bounds not a sequence",
        {"bounds": 5},
        TypeError,
        r"`bounds` must be None, \(lower, upper\), a sequence of \(low, high\) pairs or "
        r"scipy.optimize.Bounds, but got 5\.",
    ),
    (  # a 0-d array and a ragged nesting raised numpy's errors, which named no argument
        "bounds 0-d array",
        {"bounds": np.array(0.5)},
        TypeError,
        r"`bounds` must be None, \(lower, upper\), a sequence of \(low, high\) pairs or "
        r"scipy.optimize.Bounds, but got array\(0.5\)\.",
    ),
    (
        "bounds ragged pairs",
        {"bounds": [(0, 1), (0, [1, 2]), (0, 1)]},
        ValueError,
        r"`bounds` must be \(lower, upper\) or 3 \(low, high\) pairs, but got \[\(0, 1\), ",
    ),
    (
        "bounds ragged side",
        {"bounds": ([0, 0, [0]], [1, 1, 1])},
        ValueError,
        r"`bounds` must hold 3 lower and 3 upper numbers, but got \(\[0, 0, \[0\]\], ",
    ),
    (  # (numpy read [True, 1, 1] as the floats [1.0, 1.0, 1.0])
        "bounds bool among numbers",
        {"bounds": ([0, 0, 0], [True, 1, 1])},
        ValueError,
        r"`bounds` must hold 3 lower and 3 upper numbers, but got \(\[0, 0, 0\], \[True, 1, 1\]\)",
    ),
    (
        "bounds infinite wrong side",
        {"bounds": (np.inf, np.inf)},
        ValueError,
        r"`bounds` must not have lower=\+inf or upper=-inf, but got \(inf, inf\)\.",
    ),
    (
        "unknown option",
        {"foo": 1},
        TypeError,
        r"unknown option `foo` = 1; OpenES takes the keywords \['bounds', 'rng', 'optimizer', "
        r"'learning_rate', .*'shaping'\], the stopping criteria \['maxfev', .*\], `threads` "
        r"and `dtype`\.$",
    ),
    (
        "optimizer unknown",
        {"optimizer": "rmsprop"},
        ValueError,
        r"`optimizer` must be one of \['adam', 'momentum', 'sgd'\], but got 'rmsprop'\.",
    ),
    ("optimizer type", {"optimizer": 1}, TypeError, r"`optimizer` must be one of .*, but got 1\."),
    (
        "learning_rate zero",
        {"learning_rate": 0},
        ValueError,
        r"`learning_rate` must be a positive finite number, but got 0\.",
    ),
    (
        "learning_rate nan",
        {"learning_rate": np.nan},
        ValueError,
        r"`learning_rate` must be a positive finite number, but got nan\.",
    ),
    (
        "learning_rate text",
        {"learning_rate": "0.1"},
        TypeError,
        r"`learning_rate` must be a positive finite number, but got '0.1'\.",
    ),
    (
        "weight_decay negative",
        {"weight_decay": -1},
        ValueError,
        r"`weight_decay` must be a non-negative finite number, but got -1\.",
    ),
    (
        "sigma_decay zero",
        {"sigma_decay": 0},
        ValueError,
        r"`sigma_decay` must be a number in \(0, 1\], but got 0\.",
    ),
    (
        "sigma_decay above one",
        {"sigma_decay": 1.5},
        ValueError,
        r"`sigma_decay` must be a number in \(0, 1\], but got 1.5\.",
    ),
    (
        "sigma_decay text",
        {"sigma_decay": "1"},
        TypeError,
        r"`sigma_decay` must be a number in \(0, 1\], but got '1'\.",
    ),
    (  # float() of an int beyond the float range raised OverflowError
        "sigma_decay huge int",
        {"sigma_decay": 10**400},
        ValueError,
        r"`sigma_decay` must be a number in \(0, 1\], but got 1000000000",
    ),
    (
        "learning_rate_decay huge int",
        {"learning_rate_decay": -(10**400)},
        ValueError,
        r"`learning_rate_decay` must be a number in \(0, 1\], but got -1000000000",
    ),
    (
        "sigma_limit negative",
        {"sigma_limit": -1},
        ValueError,
        r"`sigma_limit` must be a non-negative finite number, but got -1\.",
    ),
    (
        "learning_rate_decay zero",
        {"learning_rate_decay": 0.0},
        ValueError,
        r"`learning_rate_decay` must be a number in \(0, 1\], but got 0.0\.",
    ),
    (
        "learning_rate_decay above one",
        {"learning_rate_decay": 2},
        ValueError,
        r"`learning_rate_decay` must be a number in \(0, 1\], but got 2\.",
    ),
    (
        "learning_rate_limit negative",
        {"learning_rate_limit": -1},
        ValueError,
        r"`learning_rate_limit` must be a non-negative finite number, but got -1\.",
    ),
    (
        "mirrored text",
        {"mirrored": "yes"},
        TypeError,
        r"`mirrored` must be True or False, but got 'yes'\.",
    ),
    (
        "shaping unknown",
        {"shaping": "foo"},
        ValueError,
        r"`shaping` must be one of \['centered_ranks', 'nes', 'raw', 'zscore'\] or a callable, "
        r"but got 'foo'\.",
    ),
    (
        "shaping type",
        {"shaping": 3},
        TypeError,
        r"`shaping` must be a string or a callable, but got 3\.",
    ),
    (
        "threads zero",
        {"threads": 0},
        ValueError,
        r"`threads` must be an integer in \[1, 1024\], but got 0\.",
    ),
    ("maxfev zero", {"maxfev": 0}, ValueError, r"`maxfev` must be an integer >= 1, but got 0\."),
    ("maxfev fraction", {"maxfev": 1.5}, TypeError, r"`maxfev` must be an integer, but got 1.5\."),
    (
        "maxiter negative",
        {"maxiter": -1},
        ValueError,
        r"`maxiter` must be an integer >= 1, but got -1\.",
    ),
    (
        "ftarget nan",
        {"ftarget": np.nan},
        ValueError,
        r"`ftarget` must be a finite number, but got nan\.",
    ),
    (
        "ftarget text",
        {"ftarget": "a"},
        TypeError,
        r"`ftarget` must be a finite number, but got 'a'\.",
    ),
    (
        "tolfun negative",
        {"tolfun": -1},
        ValueError,
        r"`tolfun` must be a non-negative finite number, but got -1\.",
    ),
    (
        "tolx nan",
        {"tolx": np.nan},
        ValueError,
        r"`tolx` must be a non-negative finite number, but got nan\.",
    ),
    (
        "tolstagnation zero",
        {"tolstagnation": 0},
        ValueError,
        r"`tolstagnation` must be an integer >= 1, but got 0\.",
    ),
    (
        "timeout negative",
        {"timeout": -1},
        ValueError,
        r"`timeout` must be a non-negative finite number, but got -1\.",
    ),
    (
        # a condition number is at least 1: 0.5 was accepted, and every run stopped at
        # generation 0 with nothing evaluated ("the search stagnated", nfev 0, fun inf)
        "tolconditioncov below 1",
        {"tolconditioncov": 0.5},
        ValueError,
        r"`tolconditioncov` must be a number above 1 .* or None, but got 0\.5\.",
    ),
    (
        "tolconditioncov 1",
        {"tolconditioncov": 1},
        ValueError,
        r"`tolconditioncov` must be a number above 1 .* or None, but got 1\.",
    ),
    (  # (said "must be a positive finite number", which 0.5 is, and is refused too)
        "tolconditioncov zero",
        {"tolconditioncov": 0},
        ValueError,
        r"`tolconditioncov` must be a number above 1 .* or None, but got 0\.",
    ),
    (
        "tolconditioncov nan",
        {"tolconditioncov": np.nan},
        ValueError,
        r"`tolconditioncov` must be a number above 1 .* or None, but got nan\.",
    ),
    (
        "tolconditioncov text",
        {"tolconditioncov": "1e14"},
        TypeError,
        r"`tolconditioncov` must be a number above 1 .* or None, but got '1e14'\.",
    ),
]


@pytest.mark.parametrize(
    ("changes", "exc", "match"),
    [case[1:] for case in CONSTRUCTOR_CASES],
    ids=[case[0] for case in CONSTRUCTOR_CASES],
)
def test_constructor_rejects(changes: dict[str, Any], exc: type[Exception], match: str) -> None:
    rs = np.random.RandomState(7)
    kwargs: dict[str, Any] = {"x0": X0.copy(), "sigma0": 0.1, "rng": rs, **changes}
    inputs = copy.deepcopy(kwargs)
    state = rs.get_state(legacy=False)
    with pytest.raises(exc, match=match):
        OpenES(**kwargs)
    # the rejected call changed none of its inputs, and drew nothing from the generator
    if isinstance(kwargs["x0"], np.ndarray):
        np.testing.assert_array_equal(kwargs["x0"], inputs["x0"])
    after = rs.get_state(legacy=False)
    np.testing.assert_array_equal(after["state"]["key"], state["state"]["key"])
    assert after["state"]["pos"] == state["state"]["pos"]


CRITERIA_CASES = [
    ({"tolfun": -1}, r"`tolfun` must be a non-negative finite number, but got -1\."),
    ({"tolx": np.nan}, r"`tolx` must be a non-negative finite number, but got nan\."),
    ({"tolstagnation": 0}, r"`tolstagnation` must be an integer >= 1, but got 0\."),
    # the scipy method reads its budget itself: "a number >= 1 or None"
    ({"maxfev": -1}, r"`maxfev` must be an? (integer|number) >= 1(| or None), but got -1\."),
    ({"timeout": -1}, r"`timeout` must be a non-negative finite number, but got -1\."),
    ({"tolconditioncov": 0.5}, r"`tolconditioncov` must be a number above 1 .*, but got 0\.5\."),
]


@pytest.mark.parametrize("face", ["strategy", "ipop", "minimize"])
@pytest.mark.parametrize(("changes", "match"), CRITERIA_CASES)
def test_a_rejected_stopping_criterion_draws_nothing_from_a_generator(
    face: str, changes: dict[str, Any], match: str
) -> None:
    # The strategy drew its entropy from a Generator before it checked the stopping criteria,
    # so XNES(..., rng=gen, tolfun=-1) raised with `gen` advanced (and IPOP and minimize alike)
    from scipy.optimize import minimize

    from nes_asktell import nes

    calls: dict[str, Callable[[np.random.Generator], object]] = {
        "strategy": lambda gen: XNES(X0, 0.1, rng=gen, **changes),
        "ipop": lambda gen: IPOP("xnes", X0, 0.1, rng=gen, **changes),
        "minimize": lambda gen: minimize(sphere, X0, method=nes, options={"rng": gen, **changes}),
    }
    gen = np.random.default_rng(7)
    state = copy.deepcopy(gen.bit_generator.state)
    with pytest.raises(ValueError, match=match):
        calls[face](gen)
    assert gen.bit_generator.state == state


#: strategy options the restart classes pass on, as the caller gave them, and the message
RESTART_OPTION_CASES: list[tuple[str, object, type[Exception], str]] = [
    (  # (float() of it raised a bare OverflowError: "integer division result too large")
        "eta_mu",
        Fraction(10**400, 3),
        ValueError,
        r"`eta_mu` must be a positive finite number, but got Fraction\(10000",
    ),
    (  # (read as 0.0 first: "must be a positive finite number, but got 0.0")
        "eta_mu",
        Fraction(1, 10**400),
        ValueError,
        r"`eta_mu` must be a positive finite number, but got Fraction\(1, 10000",
    ),
    (  # (quoted as "but got 3", an int the caller never passed)
        "dtype",
        np.int64(3),
        ValueError,
        r"`dtype` must be 'float64' or 'float32', but got np\.int64\(3\)\.",
    ),
    (
        "shaping",
        np.True_,
        TypeError,
        r"`shaping` must be a string or a callable, but got np\.True_\.",
    ),
]


@pytest.mark.parametrize("face", ["ipop", "bipop", "minimize"])
@pytest.mark.parametrize(
    ("option", "value", "exc", "match"),
    RESTART_OPTION_CASES,
    ids=[f"{c[0]}={c[1]!r}"[:40] for c in RESTART_OPTION_CASES],
)
def test_restarts_reject_a_strategy_option_naming_the_value_received(
    face: str, option: str, value: object, exc: type[Exception], match: str
) -> None:
    # IPOP turned its options into plain numbers before the first run checked them, so the
    # message quoted the converted value, and a real number no float holds raised Python's
    # OverflowError, which names no argument
    from scipy.optimize import minimize

    from nes_asktell import BIPOP, nes

    calls: dict[str, Callable[[np.random.Generator], object]] = {
        "ipop": lambda gen: IPOP("xnes", X0, 0.1, rng=gen, **{option: value}),
        "bipop": lambda gen: BIPOP("xnes", X0, 0.1, rng=gen, **{option: value}),
        "minimize": lambda gen: minimize(
            sphere, X0, method=nes, options={"rng": gen, "restarts": 2, option: value}
        ),
    }
    gen = np.random.default_rng(7)
    state = copy.deepcopy(gen.bit_generator.state)
    with pytest.raises(exc, match=match):
        calls[face](gen)
    assert gen.bit_generator.state == state


def test_restarts_take_a_fraction_option_as_its_float() -> None:
    from nes_asktell import BIPOP

    for cls in (IPOP, BIPOP):
        exact = cls("xnes", X0, 0.1, rng=0, eta_mu=Fraction(1, 3))
        floats = cls("xnes", X0, 0.1, rng=0, eta_mu=1 / 3)
        assert json.dumps(exact.state_dict()) == json.dumps(floats.state_dict())


@pytest.mark.parametrize("name", ["xnes", "dxnesic", "crfmnes"])
@pytest.mark.parametrize("face", ["strategy", "ipop", "bipop"])
def test_a_rejected_ratio_of_step_sizes_draws_nothing_from_a_generator(
    name: str, face: str
) -> None:
    # The ratio of the step sizes in `sigma0` (at most 1e10) was checked after the base
    # constructor had drawn its entropy, so XNES(x0, [1e-50, 1e50], rng=gen) raised with `gen`
    # advanced, and a retry on the same Generator gave another run than a fresh one
    from nes_asktell import BIPOP, resolve_strategy

    sigma0 = [1e-50, 1e50]
    calls: dict[str, Callable[[np.random.Generator], object]] = {
        "strategy": lambda gen: resolve_strategy(name)(np.zeros(2), sigma0, rng=gen),
        "ipop": lambda gen: IPOP(name, np.zeros(2), sigma0, rng=gen),
        "bipop": lambda gen: BIPOP(name, np.zeros(2), sigma0, rng=gen),
    }
    gen = np.random.default_rng(7)
    state = copy.deepcopy(gen.bit_generator.state)
    with pytest.raises(ValueError, match=r"`sigma0` must have a ratio .* but got 1e\+100"):
        calls[face](gen)
    assert gen.bit_generator.state == state


@pytest.mark.parametrize(
    ("optimizer", "exc"), [("nesterov", ValueError), (None, TypeError), (1, TypeError)]
)
def test_a_rejected_openes_optimizer_draws_nothing_from_a_generator(
    optimizer: object, exc: type[Exception]
) -> None:
    # OpenES built its optimizer after the base constructor had drawn its entropy, so
    # OpenES(..., rng=gen, optimizer="nesterov") raised with `gen` advanced
    gen = np.random.default_rng(7)
    state = copy.deepcopy(gen.bit_generator.state)
    with pytest.raises(exc, match=r"`optimizer` must be one of \['adam', 'momentum', 'sgd'\]"):
        OpenES(X0, 0.1, rng=gen, optimizer=optimizer)  # type: ignore[arg-type]
    assert gen.bit_generator.state == state


def test_constructor_rejects_a_randomstate_for_strategies_that_do_not_take_it() -> None:
    # only OpenES accepts a legacy RandomState (for the seed configuration); the base class
    # rejects it for every other strategy. Checked through the noise factory they share.
    from nes_asktell import _noise

    with pytest.raises(TypeError, match=r"`rng` must be .* \(a legacy RandomState is accepted"):
        _noise.make_noise(np.random.RandomState(0), allow_legacy=False)


# ---------------------------------------------------------------- tell
def test_tell_before_ask() -> None:
    es = OpenES(X0, 0.1, rng=1)
    assert_rejected_and_unchanged(
        es,
        lambda e: e.tell(np.zeros((8, 3)), np.zeros(8)),
        RuntimeError,
        r"tell\(\) needs the candidates of a pending ask\(\) \(tell before ask\); call ask",
    )


def test_tell_of_the_same_batch_twice() -> None:
    es = OpenES(X0, 0.1, rng=1)
    X = es.ask()
    es.tell(X, [sphere(x) for x in X])
    assert_rejected_and_unchanged(
        es,
        lambda e: e.tell(X, [sphere(x) for x in X]),
        RuntimeError,
        r"tell\(\) needs the candidates of a pending ask\(\) \(the same batch twice\)",
    )


def test_tell_of_a_stale_batch_after_a_new_ask() -> None:
    es = OpenES(X0, 0.1, rng=1)
    old = es.ask().copy()
    es.tell(old, [sphere(x) for x in old])
    es.ask()
    assert_rejected_and_unchanged(
        es,
        lambda e: e.tell(old, [sphere(x) for x in old]),
        ValueError,
        r"`solutions` row 0 is not one of the candidates of the latest ask\(\)",
    )


TELL_FITNESS_CASES: list[tuple[str, object, type[Exception], str]] = [
    (
        "too short",
        np.zeros(5),
        ValueError,
        r"`fitness` must have shape \(8,\), one value per candidate, but got shape \(5,\)\.",
    ),
    (
        "too long",
        np.zeros(9),
        ValueError,
        r"`fitness` must have shape \(8,\), .* but got shape \(9,\)\.",
    ),
    (
        "2-d",
        np.zeros((2, 4)),
        ValueError,
        r"`fitness` must have shape \(8,\), .* but got shape \(2, 4\)\.",
    ),
    (
        "text",
        "abcdefgh",
        TypeError,
        r"`fitness` must be a sequence of 8 numbers, but got 'abcdefgh'\.",
    ),
    ("None", None, TypeError, r"`fitness` must be a sequence of 8 numbers, but got None\."),
    (
        "objects",
        [{}] * 8,
        TypeError,
        r"`fitness` must be a sequence of 8 numbers, but got \[\{\}, ",
    ),
    (
        "strings",
        ["a"] * 8,
        TypeError,
        r"`fitness` must be a sequence of 8 real numbers, but got dtype <U1\.",
    ),
    (
        "complex",
        np.zeros(8) + 1j,
        TypeError,
        r"`fitness` must be a sequence of 8 real numbers, but got dtype complex128\.",
    ),
]


@pytest.mark.parametrize(
    ("fitness", "exc", "match"),
    [case[1:] for case in TELL_FITNESS_CASES],
    ids=[case[0] for case in TELL_FITNESS_CASES],
)
def test_tell_rejects_fitness(fitness: object, exc: type[Exception], match: str) -> None:
    es = OpenES(X0, 0.1, rng=2)
    run(es, 2)
    X = es.ask()
    assert_rejected_and_unchanged(es, lambda e: e.tell(X, fitness), exc, match)


def _shifted(X: np.ndarray) -> np.ndarray:
    Y = X.copy()
    Y[3, 1] += 1e-9
    return Y


TELL_SOLUTIONS_CASES: list[tuple[str, Callable[[np.ndarray], object], type[Exception], str]] = [
    (
        "wrong shape",
        lambda X: X[:3],
        ValueError,
        r"`solutions` must have shape \(8, 3\) \(the rows of the latest ask\), "
        r"but got shape \(3, 3\)\.",
    ),
    (
        "transposed",
        lambda X: X.T,
        ValueError,
        r"`solutions` must have shape \(8, 3\) .* but got shape \(3, 8\)\.",
    ),
    (
        "text",
        lambda X: "abc",
        TypeError,
        r"`solutions` must be the \(8, 3\) array returned by ask\(\), but got str\.",
    ),
    (
        "a row that was not asked",
        _shifted,
        ValueError,
        r"`solutions` row 3 is not one of the candidates of the latest ask\(\)",
    ),
    (
        "a row told twice",
        lambda X: np.vstack([X[:1], X[:-1]]),
        ValueError,
        r"`solutions` row 1 is not one of the candidates",
    ),
    (  # (numpy's bare OverflowError: "int too large to convert to float")
        "an int no float holds",
        lambda X: [[10**400, *X[0, 1:].tolist()], *X[1:].tolist()],
        ValueError,
        r"`solutions` must hold the candidates of the latest ask\(\), but got a number no "
        r"float holds: \[\[1000",
    ),
]


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [case[1:] for case in TELL_SOLUTIONS_CASES],
    ids=[case[0] for case in TELL_SOLUTIONS_CASES],
)
def test_tell_rejects_solutions(
    make: Callable[[np.ndarray], object], exc: type[Exception], match: str
) -> None:
    es = OpenES(X0, 0.1, rng=3)
    run(es, 1)
    X = es.ask()
    assert_rejected_and_unchanged(es, lambda e: e.tell(make(X), np.zeros(8)), exc, match)


def test_tell_rejects_rows_that_only_round_to_the_candidates() -> None:
    # The told rows were converted to the batch's dtype before they were compared, so a
    # float32 batch told as float64 rows each off by a relative 1e-9 (rows ask() never
    # returned) passed
    es = XNES(X0, 0.5, rng=0, dtype="float32")
    X = es.ask()
    edited = X.astype(np.float64) * (1.0 + 1e-9)
    assert np.array_equal(edited.astype(np.float32), X)  # (they round to the candidates)
    assert_rejected_and_unchanged(
        es,
        lambda e: e.tell(edited, np.zeros(e.popsize)),
        ValueError,
        r"`solutions` row 0 is not one of the candidates of the latest ask\(\)",
    )
    as_floats = (es.ask().astype(np.float64) * (1.0 + 1e-9)).tolist()
    assert_rejected_and_unchanged(  # (Python floats alike)
        es,
        lambda e: e.tell(as_floats, np.zeros(e.popsize)),
        ValueError,
        r"`solutions` row 0 is not one of the candidates",
    )
    told = es.generation
    X = es.ask()
    es.tell(X.astype(np.float64)[::-1], np.arange(es.popsize, dtype=float))  # exact: accepted
    Y = es.ask()
    es.tell(Y.tolist(), np.arange(es.popsize, dtype=float))
    assert es.generation == told + 2

    if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps:  # (where longdouble is wider)
        wide = XNES(X0, 0.5, rng=0)
        Y = wide.ask()
        longer = Y.astype(np.longdouble)
        longer[2] += np.longdouble(1e-19) * np.abs(longer[2]).max()
        assert np.array_equal(longer.astype(np.float64), Y)
        assert_rejected_and_unchanged(
            wide,
            lambda e: e.tell(longer, np.zeros(e.popsize)),
            ValueError,
            r"`solutions` row 2 is not one of the candidates",
        )


def test_tell_rejects_a_shaping_callable_that_returns_garbage() -> None:
    def bad(f: np.ndarray) -> np.ndarray:
        return np.full(f.shape, np.nan)

    es = OpenES(X0, 0.1, rng=4, shaping=bad)
    X = es.ask()
    before = es.__getstate__()
    with pytest.raises(
        ValueError, match=r"`shaping` must return 8 finite utilities, but returned"
    ):
        es.tell(X, np.arange(8.0))
    assert es.generation == 0
    assert es.nfev == 0
    np.testing.assert_array_equal(es.mean, before["_mean"])  # type: ignore[arg-type]
    assert es.ask() is X  # the batch is still pending


def test_state_dict_rejects_a_callable_shaping() -> None:
    es = OpenES(X0, 0.1, rng=4, shaping=lambda f: -f)
    with pytest.raises(ValueError, match=r"`shaping` is a callable, which state_dict\(\) cannot"):
        es.state_dict()


# ---------------------------------------------------------------- from_state
def _state() -> dict[str, Any]:
    es = OpenES(X0, 0.1, rng=5)
    run(es, 3)
    return json.loads(json.dumps(es.state_dict()))  # type: ignore[no-any-return]


FROM_STATE_CASES: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("not a dict", lambda s: [1], r"`state` must be a dict from state_dict\(\), but got \[1\]\."),
    (
        "another strategy",
        lambda s: {**s, "strategy": "xnes"},
        r"`state` must come from OpenES.state_dict\(\) \(version 2\), "
        r"but got strategy='xnes', version=2\.",
    ),
    (
        "another version",
        lambda s: {**s, "version": 99},
        r"`state` must come from OpenES.state_dict\(\) .* but got strategy='openes', version=99\.",
    ),
    (
        "missing key",
        lambda s: {k: v for k, v in s.items() if k != "mean"},
        r"`state` is malformed: the key 'mean' is missing\.",
    ),
    (
        "non-finite mean",
        lambda s: {**s, "mean": [0.0, None, 0.0]},
        r"`state` is malformed: `mean` must be a 1-d array of numbers, but got \[0.0, None",
    ),
    (
        "dim mismatch",
        lambda s: {**s, "dim": 4},
        r"`state` is malformed: dim 4 does not match the mean",
    ),
    (
        "negative generation",
        lambda s: {**s, "generation": -1},
        r"`state` is malformed: `generation` must be an integer in \[0, 9007199254740992\], "
        r"but got -1\.",
    ),
    (
        "negative nfev",
        lambda s: {**s, "nfev": -8},
        r"`state` is malformed: `nfev` must be an integer in \[0, 9007199254740992\], "
        r"but got -8\.",
    ),
    (
        "best_x wrong length",
        lambda s: {**s, "record": {**s["record"], "best_x": [0.0, 0.0]}},
        r"`state` is malformed: `best_x` must have length 3, but got length 2\.",
    ),
    (
        "best_f text",
        lambda s: {**s, "record": {**s["record"], "best_f": "a"}},
        r"`state` is malformed: `best_f` must be a finite number, but got 'a'\.",
    ),
    (
        "fhist text",
        lambda s: {**s, "record": {**s["record"], "fhist": "ab"}},
        r"`state` is malformed: `fhist` must be a list of at most 55 best values, but got 'ab'\.",
    ),
    (
        "fhist too long",  # (5,000,000 values were read, in about 5 s)
        lambda s: {**s, "record": {**s["record"], "fhist": [1.0] * 5_000_000}},
        r"`state` is malformed: `fhist` must be a list of at most 55 best values, but got "
        r"5000000 items\.",
    ),
    (
        "fhist not numbers",
        lambda s: {**s, "record": {**s["record"], "fhist": ["a"]}},
        r"`state` is malformed: `fhist` must be a finite number, but got 'a'\.",
    ),
    (
        "asked not a bool",
        lambda s: {**s, "asked": "yes"},
        r"`state` is malformed: `asked` must be True or False, but got 'yes'\.",
    ),
    (
        "noise kind",
        lambda s: {**s, "noise": {"kind": "x"}},
        r"`state` is malformed: `state\['noise'\]` is malformed: unknown kind 'x'\.",
    ),
    (
        "popsize 1",
        lambda s: {**s, "popsize": 1},
        r"`state` is malformed: `popsize` must be an integer >= 2, but got 1\.",
    ),
    (
        "unknown option",
        lambda s: {**s, "options": {**s["options"], "foo": 1}},
        r"`state` is malformed: unknown option `foo` = 1",
    ),
    (
        "optimizer name",
        lambda s: {**s, "options": {**s["options"], "optimizer": "x"}},
        r"`state` is malformed: `optimizer` must be one of .*, but got 'x'\.",
    ),
    (
        "negative sigma",
        lambda s: {**s, "algo": {**s["algo"], "sigma": -1}},
        r"`state` is malformed: `sigma` must be a positive finite number, but got -1\.",
    ),
    (
        "Adam moment wrong length",
        lambda s: {
            **s,
            "algo": {**s["algo"], "optimizer": {**s["algo"]["optimizer"], "m": [1.0]}},
        },
        r"`state` is malformed: `m` must have length 3, but got length 1\.",
    ),
    (
        "bounds lower > upper",
        lambda s: {**s, "bounds": [[1, 1, 1], [0, 0, 0]]},
        r"`state` is malformed: `bounds` must have lower <= upper",
    ),
]


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [case[1:] for case in FROM_STATE_CASES],
    ids=[case[0] for case in FROM_STATE_CASES],
)
def test_from_state_rejects(corrupt: Callable[[dict[str, Any]], object], match: str) -> None:
    state = _state()
    bad = corrupt(copy.deepcopy(state))
    kept = copy.deepcopy(bad)
    with pytest.raises(ValueError, match=match):
        OpenES.from_state(bad)
    assert bad == kept  # the rejected state was not modified
    OpenES.from_state(state)  # and a good one still loads


# ---------------------------------------------------------------- estimate_gradient
GRADIENT_CASES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("fun not callable", {"fun": 3}, TypeError, r"`fun` must be callable, but got 3\."),
    ("x empty", {"x": []}, ValueError, r"`x` must not be empty, but got \[\]\."),
    ("x 2-d", {"x": np.zeros((2, 2))}, ValueError, r"`x` must be 1-d, but got shape \(2, 2\)\."),
    ("x nan", {"x": [np.nan, 0.0]}, ValueError, r"`x` must be finite, but got \[nan, 0.0\]\."),
    (
        "sigma zero",
        {"sigma": 0.0},
        ValueError,
        r"`sigma` must be a positive finite number, but got 0.0\.",
    ),
    (
        "sigma inf",
        {"sigma": np.inf},
        ValueError,
        r"`sigma` must be a positive finite number, but got inf\.",
    ),
    (
        "sigma beyond the step sizes",
        {"sigma": 1e200},
        ValueError,
        r"`sigma` must be a number in \[1e-100, 1e\+100\], but got 1e\+200\.",
    ),
    (
        "sigma text",
        {"sigma": "1"},
        TypeError,
        r"`sigma` must be a positive finite number, but got '1'\.",
    ),
    (
        "popsize odd mirrored",
        {"popsize": 3},
        ValueError,
        r"`popsize` must be even with mirrored sampling, but got 3\.",
    ),
    (
        "popsize 1",
        {"popsize": 1, "mirrored": False},
        ValueError,
        r"`popsize` must be an integer >= 2, but got 1\.",
    ),
    (
        "popsize fraction",
        {"popsize": 2.5},
        TypeError,
        r"`popsize` must be an integer, but got 2.5\.",
    ),
    (
        "mirrored not a bool",
        {"mirrored": 1},
        TypeError,
        r"`mirrored` must be True or False, but got 1\.",
    ),
    (
        "rng unknown",
        {"rng": "a"},
        TypeError,
        r"`rng` must be None, an int, a SeedSequence or a numpy Generator, but got str: 'a'\.",
    ),
    (
        "fun returns nan",
        {"fun": lambda x: np.nan},
        ValueError,
        r"`fun` returned nan at the perturbed point 0; it must be finite\.",
    ),
    (
        "fun returns a vector",
        {"fun": lambda x: x},
        TypeError,
        r"`fun` must return a real number, but '<lambda>' returned array\(\[.* at the perturbed "
        r"point 0\.",
    ),
    (
        "fun returns text",
        {"fun": lambda x: "a"},
        TypeError,
        r"`fun` must return a real number, but '<lambda>' returned 'a' at the perturbed point 0\.",
    ),
]


@pytest.mark.parametrize(
    ("changes", "exc", "match"),
    [case[1:] for case in GRADIENT_CASES],
    ids=[case[0] for case in GRADIENT_CASES],
)
def test_estimate_gradient_rejects(
    changes: dict[str, Any], exc: type[Exception], match: str
) -> None:
    x = np.array([0.5, -1.0])
    kwargs: dict[str, Any] = {"fun": sphere, "x": x, "sigma": 0.1, "popsize": 4, **changes}
    fun, xx, sigma, popsize = (kwargs.pop(k) for k in ("fun", "x", "sigma", "popsize"))
    with pytest.raises(exc, match=match):
        estimate_gradient(fun, xx, sigma, popsize, **kwargs)
    np.testing.assert_array_equal(x, [0.5, -1.0])


def test_estimate_gradient_does_not_let_fun_change_x() -> None:
    x = np.array([0.5, -1.0])

    def scribble(y: np.ndarray) -> float:
        y[:] = 0.0  # a careless objective writing into its argument
        return 1.0

    estimate_gradient(scribble, x, 0.1, 4, rng=0)
    np.testing.assert_array_equal(x, [0.5, -1.0])


@pytest.mark.parametrize("garbage", ["x", None, [1j] * 8, {"a": 1}])
def test_tell_names_shaping_when_its_callable_returns_no_numbers(garbage: object) -> None:
    es = OpenES(X0, 0.1, rng=4, shaping=lambda f: garbage)
    X = es.ask()
    with pytest.raises(TypeError, match=r"`shaping` must return 8 finite utilities, but returned"):
        es.tell(X, np.arange(8.0))
    assert es.generation == 0
    assert es.ask() is X  # the batch is still pending


@pytest.mark.parametrize("args", [1, "ab", None, {"a": 1}])
def test_optimize_rejects_args_that_are_not_a_tuple_of_arguments(args: object) -> None:
    for opt in (
        XNES(X0, 0.5, rng=0),
        IPOP("xnes", X0, 0.5, rng=0),
        NoiseHandler(XNES(X0, 0.5, rng=0)),
    ):
        with pytest.raises(TypeError, match=r"`args` must be a tuple of the extra arguments"):
            opt.optimize(lambda x, *a: float(x @ x), args=args, maxfev=40)  # type: ignore[arg-type]
        assert opt.nfev == 0


def test_optimize_takes_args_as_a_tuple_or_a_list() -> None:
    for args in ((1.0, 2.0), [1.0, 2.0]):
        res = XNES(X0, 0.5, rng=0).optimize(
            lambda x, a, b: float(x @ x) + a + b, args=args, maxiter=2
        )
        assert res.fun >= 3.0


def test_noise_handler_optimize_rejects_a_fun_that_is_not_callable() -> None:
    with pytest.raises(TypeError, match=r"`fun` must be callable, but got 3"):
        NoiseHandler(XNES(X0, 0.5, rng=0)).optimize(3, maxfev=40)  # type: ignore[arg-type]


# -- the value quoted in a message --------------------------------------------------------------


class _Unprintable:
    """An item whose repr must never be asked for (it lies past what a message shows)."""

    def __repr__(self) -> str:
        raise AssertionError("printed an item a message never shows")


@pytest.mark.parametrize(
    "value",
    [
        -1.0,
        float("nan"),
        10**30,
        "a 'quoted' string",
        [1, 2, 3],
        (0.5, None, True),
        {"popsize": 4, "mean": [0.0, 1.0]},
        np.array([1.0, 2.0]),
        [[[[[[[[1]]]]]]]],
    ],
)
def test_short_quotes_a_short_value_as_repr(value: object) -> None:
    from nes_asktell._validate import short

    assert short(value) == repr(value)


def test_short_cuts_a_long_value_after_77_characters_of_its_repr() -> None:
    from nes_asktell._validate import short

    for value in [list(range(1000)), "x" * 500, {i: i for i in range(100)}, 10**200]:
        assert short(value) == repr(value)[:77] + "...", type(value)


def test_short_reads_only_the_head_of_a_huge_untrusted_value() -> None:
    # A state read from outside may hold millions of items: the message shows the first ones
    # and never visits the rest (an item past the 40th would raise if printed).
    from nes_asktell._validate import short

    tail = [_Unprintable()] * 10
    assert short([0] * 40 + tail).startswith("[0, 0, 0")
    assert short(dict(zip(range(40), range(40), strict=True)) | {"x": tail}).startswith("{0: 0")
    assert short((0,) * 40 + tuple(tail)).startswith("(0, 0")
    nested: list[object] = []
    for _ in range(100_000):  # far deeper than repr can go (RecursionError)
        nested = [nested]
    assert short(nested).startswith("[[[[")
    assert short(10**5000) == "<int of about 5001 digits>"
    assert short(-(10**4400)) == "<int of about 4401 digits>"


#: each failure the Raises sections of the strategies' docstrings list, with its exception
RAISES: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ("x0 not real numbers", {"x0": "abc"}, TypeError),
    ("sigma0 not a real number", {"sigma0": "a"}, TypeError),
    ("popsize not an integer", {"popsize": 1.5}, TypeError),
    ("mirrored not a bool", {"mirrored": "y"}, TypeError),
    ("an unknown keyword", {"bogus": 1}, TypeError),
    ("x0 empty", {"x0": []}, ValueError),
    ("x0 not finite", {"x0": [np.nan, 0.0]}, ValueError),
    ("sigma0 not positive", {"sigma0": -1.0}, ValueError),
    ("popsize below 2", {"popsize": 1}, ValueError),
    ("popsize above 2**18", {"popsize": 2**18 + 2}, ValueError),
    ("popsize odd, mirrored", {"popsize": 3, "mirrored": True}, ValueError),
    ("a low above its high", {"bounds": [(1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]}, ValueError),
    ("an unknown shaping", {"shaping": "zzz"}, ValueError),
]


@pytest.mark.parametrize("name", ["xnes", "snes", "openes", "dxnesic", "crfmnes"])
@pytest.mark.parametrize(("what", "change", "exc"), RAISES, ids=[r[0] for r in RAISES])
def test_the_raises_sections_of_the_strategies_hold(
    name: str, what: str, change: dict[str, Any], exc: type[Exception]
) -> None:
    cls = resolve_strategy(name)
    doc = " ".join((cls.__doc__ or "").split())
    assert f"{exc.__name__} If an argument" in doc
    kwargs: dict[str, Any] = {"x0": [0.0, 0.0], "sigma0": 1.0, **change}
    with pytest.raises(exc):
        cls(**kwargs)


@pytest.mark.parametrize("name", ["xnes", "snes", "dxnesic", "crfmnes"])
def test_only_openes_takes_a_legacy_random_state(name: str) -> None:
    with pytest.raises(TypeError, match="RandomState"):
        resolve_strategy(name)([0.0, 0.0], 1.0, rng=np.random.RandomState(0))
    OpenES([0.0, 0.0], 1.0, rng=np.random.RandomState(0))


def test_from_state_names_a_bad_shaping_argument_not_the_state() -> None:
    # from_state(good_state, shaping=3) said "`state` is malformed: `shaping` must be ...":
    # the state was fine, the keyword was not. It now raises what the constructor raises.
    state = XNES(X0, 0.1, rng=0).state_dict()
    before = copy.deepcopy(state)
    with pytest.raises(
        TypeError, match=r"^`shaping` must be a string or a callable, but got 3\.$"
    ):
        XNES.from_state(state, shaping=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^`shaping` must be one of .* but got 'ranks'\.$"):
        XNES.from_state(state, shaping="ranks")
    assert state == before
    assert XNES.from_state(state, shaping="zscore").state_dict()["shaping"] == "zscore"


def test_the_abstract_strategy_class_is_refused_naming_strategy() -> None:
    # strategy=Strategy passed resolve_strategy, then failed with Python's bare "Can't
    # instantiate abstract class", which names neither the argument nor the value
    from scipy.optimize import minimize

    from nes_asktell import NESSampler, Strategy, nes

    want = r"`strategy` must be a Strategy subclass that can be made, but Strategy is abstract"
    with pytest.raises(TypeError, match=want):
        resolve_strategy(Strategy)
    with pytest.raises(TypeError, match=want):
        minimize(lambda x: 0.0, [0.0, 0.0], method=nes, options={"strategy": Strategy})
    with pytest.raises(TypeError, match=want):
        IPOP(Strategy, np.zeros(2), 1.0)
    with pytest.raises(TypeError, match=want):
        NESSampler(strategy=Strategy)


@pytest.mark.parametrize("whole", [8.0, np.float64(8.0), np.float32(8.0), np.float16(8.0)])
def test_a_whole_float_of_any_precision_is_an_integer_option(whole: object) -> None:
    # np.float64(8.0) passed (a float subclass) where np.float32(8.0) raised TypeError
    assert XNES(np.zeros(2), 1.0, popsize=whole).popsize == 8


@pytest.mark.parametrize("bad", [8.5, np.float32(8.5), np.float32(np.nan), np.float16(np.inf)])
def test_a_float_that_is_no_whole_number_is_no_integer_option(bad: object) -> None:
    with pytest.raises(TypeError, match=r"`popsize` must be an integer, but got"):
        XNES(np.zeros(2), 1.0, popsize=bad)


@pytest.mark.parametrize("mode", ["auto", "vectors", "seeds"])
def test_an_empty_population_gives_no_values_on_a_pool_as_serially(mode: str) -> None:
    # evaluate(X[mask], ...) with nothing selected: splitting 0 rows into 0 tasks raised
    # numpy's "number sections must be larger than 0" on a pool, while serial returned []
    X = np.zeros((0, 3))
    with ThreadPoolExecutor(2) as pool:
        f = evaluate(X, lambda x: 1.0, pool, mode="vectors" if mode == "seeds" else mode)
    assert f.shape == (0,)
    assert f.dtype == np.float64
    es = SNES(np.zeros(3), 0.5, rng=0)
    with ThreadPoolExecutor(2) as pool, Evaluator(pool, mode=mode) as ev:
        f = ev.evaluate(lambda x: 1.0, es.ask()[:0], strategy=es)
    assert f.shape == (0,)


#: candidates that are no (n, d) array of real numbers, for Evaluator.evaluate
EVALUATOR_X_CASES: list[tuple[str, object, type[Exception], str]] = [
    ("text", "abc", TypeError, r"`X` must be an \(n, d\) array of real numbers, but got 'abc'\."),
    (
        "1-d",
        [1.0, 2.0],
        ValueError,
        r"`X` must be an \(n, d\) array, but got an array of shape \(2,\)\.",
    ),
    (
        "3-d",
        np.zeros((2, 2, 2)),
        ValueError,
        r"`X` must be an \(n, d\) array, but got an array of shape \(2, 2, 2\)\.",
    ),
    ("a number", 5, ValueError, r"`X` must be an \(n, d\) array, but got an array of shape \(\)"),
    ("None", None, TypeError, r"`X` must be an \(n, d\) array of real numbers, but got"),
    (
        "bool",
        [[True, False]],
        TypeError,
        r"`X` must be an \(n, d\) array of real numbers, but got bool values",
    ),
    (  # (numpy reads [[True, 0.5]] as the floats [[1.0, 0.5]]: taken silently)
        "bool among numbers",
        [[True, 0.5], [0.0, 1.0]],
        TypeError,
        r"`X` must be an \(n, d\) array of real numbers, but got bool values: "
        r"\[\[True, 0.5\], \[0.0, 1.0\]\]\.",
    ),
    (
        "complex",
        np.zeros((2, 2), dtype=complex),
        TypeError,
        r"`X` must be an \(n, d\) array of real numbers, but got complex values",
    ),
    (
        "ragged",
        [[1.0], [2.0, 3.0]],
        TypeError,
        r"`X` must be an \(n, d\) array of real numbers, but got \[\[1.0\], \[2.0, 3.0\]\]\.",
    ),
    (
        "an int no float holds",
        [[10**400, 0.0]],
        ValueError,
        r"`X` must hold numbers a float can hold, but got \[\[1000",
    ),
]


@pytest.mark.parametrize(
    ("X", "exc", "match"),
    [case[1:] for case in EVALUATOR_X_CASES],
    ids=[case[0] for case in EVALUATOR_X_CASES],
)
def test_evaluator_rejects_candidates_that_are_no_array_of_real_rows(
    X: object, exc: type[Exception], match: str
) -> None:
    # Evaluator.evaluate read X as it came: a string was evaluated character by character, a
    # 1-d list number by number, bool, complex and ragged rows were handed to `fun`, and a
    # number raised Python's "object of type 'int' has no len()"
    seen: list[object] = []
    with Evaluator() as ev, pytest.raises(exc, match=match):
        ev.evaluate(lambda x: seen.append(x) or 0.0, X)  # type: ignore[arg-type]
    assert seen == []  # `fun` never ran


def test_evaluate_refuses_bool_among_the_candidates() -> None:
    with pytest.raises(
        TypeError,
        match=r"`strategy_or_candidates` must be a Strategy or an \(n, d\) array of real "
        r"numbers, but got bool values: \[\[0.5, np.True_\]\]\.",
    ):
        evaluate([[0.5, np.True_]], lambda x: 0.0)


def test_evaluate_refuses_an_int_no_float_holds_naming_the_candidates() -> None:
    # (numpy's bare OverflowError: "int too large to convert to float")
    with pytest.raises(
        ValueError,
        match=r"`strategy_or_candidates` must hold numbers a float can hold, but got \[\[1000",
    ):
        evaluate([[10**400, 0.0]], lambda x: 0.0)


def test_evaluator_keeps_the_rows_of_a_float32_batch() -> None:
    es = XNES(X0, 0.5, rng=0, dtype="float32")
    X = es.ask()
    seen: list[np.dtype[Any]] = []
    with Evaluator() as ev:
        f = ev.evaluate(lambda x: seen.append(x.dtype) or float(x @ x), X, strategy=es)
    assert seen == [np.dtype(np.float32)] * es.popsize
    np.testing.assert_array_equal(f, [float(x @ x) for x in X])


def test_noise_handler_tell_refuses_an_int_no_float_holds_and_changes_nothing() -> None:
    # (numpy's bare OverflowError: "int too large to convert to float")
    nh, twin = NoiseHandler(XNES(X0, 0.5, rng=0)), NoiseHandler(XNES(X0, 0.5, rng=0))
    X = nh.ask()
    rows = X.tolist()
    rows[0][0] = 10**400
    before = json.dumps(nh.state_dict(), sort_keys=True)
    with pytest.raises(
        ValueError,
        match=r"`solutions` must be the 10 rows of ask\(\), but got a number no float holds: "
        r"\[\[1000",
    ):
        nh.tell(rows, np.zeros(len(X)))
    assert json.dumps(nh.state_dict(), sort_keys=True) == before
    for _ in range(3):
        A, B = nh.ask(), twin.ask()
        np.testing.assert_array_equal(A, B)
        nh.tell(A, [sphere(a) for a in A])
        twin.tell(B, [sphere(b) for b in B])


@pytest.mark.parametrize(
    "mode",
    [np.array(["auto", "seeds"]), ["auto"], 3, b"auto"],
    ids=["an array of names", "a list", "a number", "bytes"],
)
def test_evaluator_refuses_a_mode_that_is_no_name_naming_it(mode: object) -> None:
    # an array raised numpy's "The truth value of an array with more than one element is
    # ambiguous" from `mode not in MODES`, naming no argument (and a number was a ValueError);
    # None is no such mode: it means "not given" (see test_evaluate.py)
    want = r"`mode` must be one of \('auto', 'vectors', 'seeds', 'replay'\) or None, but got "
    with pytest.raises(TypeError, match=want):
        Evaluator(mode=mode)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=want):
        evaluate(np.zeros((2, 2)), lambda x: 0.0, mode=mode)  # type: ignore[arg-type]
    with Evaluator() as shared, pytest.raises(TypeError, match=want):
        Evaluator(shared, mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("dim", [2, 3])
def test_bounds_read_python_numbers_as_their_floats(dim: int) -> None:
    # A Fraction was refused as "`bounds` must hold 3 lower and 3 upper numbers", and an int
    # beyond the float range raised numpy's bare OverflowError (d = 2) or that same message:
    # they are read as a float is, the int as +-inf (no bound on that side)
    lo, hi = [-1.0, -0.5, 0.0][:dim], [1.0, 1.5, 2.0][:dim]
    exact = [(Fraction(a), Fraction(b)) for a, b in zip(lo, hi, strict=True)]
    floats = list(zip(lo, hi, strict=True))
    for given, want in (
        (exact, floats),
        ([(-(10**400), 10**400)] * dim, [(None, None)] * dim),
        ([(-(10**400), b) for b in hi], [(None, b) for b in hi]),
    ):
        es = XNES(np.zeros(dim), 0.5, bounds=given, rng=0)
        twin = XNES(np.zeros(dim), 0.5, bounds=want, rng=0)
        assert json.dumps(es.state_dict()) == json.dumps(twin.state_dict())


def test_sigma0_reads_python_numbers_as_their_floats() -> None:
    # a list of Fractions (or an array of dtype object) was refused with "`sigma0` must be a
    # positive number or an array of 3 positive numbers", which they are
    want = json.dumps(SNES(X0, [0.5, 0.25, 1.0], rng=0).state_dict())
    for given in ([Fraction(1, 2), Fraction(1, 4), 1], np.array([0.5, 0.25, 1.0], dtype=object)):
        assert json.dumps(SNES(X0, given, rng=0).state_dict()) == want


BIG = list(range(10**6))


@pytest.mark.parametrize(
    ("call", "exc", "start"),
    [
        (lambda: XNES(X0, 0.5, rng=BIG), TypeError, "`rng` must be None, an int, a Seed"),
        (lambda: OpenES(X0, 0.5, optimizer=BIG), TypeError, "`optimizer` must be one of"),
        (lambda: OpenES(X0, 0.5, optimizer="x" * 10**6), ValueError, "`optimizer` must be one"),
        (lambda: History()["x" * 10**6], KeyError, "`name` must be one of the columns"),
    ],
    ids=["rng", "optimizer of another kind", "optimizer unknown", "History column"],
)
def test_a_refused_value_is_quoted_short(
    call: Callable[[], object], exc: type[Exception], start: str
) -> None:
    # these messages printed the whole repr of what they got: a list of a million numbers
    # (or a name of a million characters) made a message of millions of characters
    with pytest.raises(exc) as info:
        call()
    message = str(info.value.args[0])
    assert message.startswith(start)
    assert len(message) < 300


def _crafted(kind: str) -> tuple[type[Any], dict[str, Any]]:
    from nes_asktell import BIPOP

    if kind == "regime":
        state = json.loads(json.dumps(BIPOP("xnes", X0, 0.5, rng=0).state_dict()))
        state["bipop"]["regime"] = "x" * 10**6
        return BIPOP, state
    state = json.loads(json.dumps(XNES(X0, 0.5, rng=0).state_dict()))
    if kind == "noise kind":
        state["noise"] = {"kind": "y" * 10**6}
    else:
        state["noise"] = {
            "kind": "sequential",
            "legacy": False,
            "state": {"bit_generator": "z" * 10**6},
        }
    return XNES, state


@pytest.mark.parametrize("kind", ["regime", "noise kind", "bit generator"])
def test_a_malformed_state_is_quoted_short(kind: str) -> None:
    # a crafted state's name of a million characters was printed whole in the message
    cls, state = _crafted(kind)
    with pytest.raises(ValueError, match=r"^`state` is malformed: ") as info:
        cls.from_state(state)
    assert len(str(info.value)) < 300


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # (np.matrix)
@pytest.mark.parametrize("kind", ["matrix", "masked"])
def test_candidates_of_an_array_subclass_are_handed_on_as_plain_rows(kind: str) -> None:
    # an np.matrix (or a masked array) of candidates is read as its plain array: fun gets
    # 1-d rows, as from any other (n, d) array
    rows = [[1.0, 2.0], [3.0, 4.0]]
    X = np.matrix(rows) if kind == "matrix" else np.ma.masked_array(rows)
    seen: list[tuple[type, tuple[int, ...]]] = []

    def fun(x: np.ndarray) -> float:
        seen.append((type(x), x.shape))
        return 0.0

    evaluate(X, fun)
    with Evaluator() as ev:
        ev.evaluate(fun, X)
    assert seen == [(np.ndarray, (2,))] * 4
