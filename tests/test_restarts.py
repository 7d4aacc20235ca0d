"""IPOP restarts: the population doubles, the budget is shared and respected, state resumes."""

from __future__ import annotations

import copy
import json
import math
import pickle
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import OptimizeResult

from nes_asktell import BIPOP, IPOP, SNES, XNES, OpenES, strategy_names


def rastrigin(x: np.ndarray) -> float:
    return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.5) ** 2))


def quick(**kw: object) -> IPOP:
    """An IPOP whose runs converge quickly (loose local tolerances) on Rastrigin."""
    args: dict[str, object] = {"tolfun": 1e-4, "tolx": 1e-4, "rng": 3, "max_restarts": 4}
    args.update(kw)
    return IPOP(XNES, np.full(2, 3.0), 1.0, **args)


def drive(opt: IPOP, fun: object, steps: int | None = None) -> list[np.ndarray]:
    asks = []
    while not opt.stop() and (steps is None or len(asks) < steps):
        X = opt.ask()
        asks.append(X.copy())
        opt.tell(X, [fun(x) for x in X])  # type: ignore[operator]
    return asks


def test_popsize_doubles_at_each_restart() -> None:
    opt = quick()
    res = opt.optimize(rastrigin)
    sizes = [h["popsize"] for h in res.history]
    assert res.restarts == 4
    assert sizes == [6 * 2**r for r in range(5)]  # 4 + floor(3 ln 2) = 6
    assert all(h["stop"] for h in res.history)
    assert sum(int(h["nfev"]) for h in res.history) == res.nfev  # type: ignore[call-overload]


def test_popsize_factor_and_mirrored_keep_popsize_even() -> None:
    opt = quick(popsize=6, popsize_factor=1.5, mirrored=True)
    res = opt.optimize(rastrigin)
    sizes = [h["popsize"] for h in res.history]
    assert sizes == [6, 10, 14, 20, 30]  # 6 * 1.5^r rounded, then up to even


@settings(max_examples=10)
@given(maxfev=st.integers(1, 1500))
def test_optimize_spends_the_budget_exactly(maxfev: int) -> None:
    opt = IPOP(XNES, np.full(2, 3.0), 1.0, maxfev=maxfev, tolfun=1e-3, tolx=1e-3, rng=0)
    res = opt.optimize(rastrigin)
    assert res.nfev == maxfev
    assert "maxfev" in res.stop
    assert res.stop["maxfev"] == maxfev


def test_optimize_maxfev_overrides_the_constructor_budget() -> None:
    opt = quick(max_restarts=50)  # no budget at construction
    res = opt.optimize(rastrigin, maxfev=1234)
    assert res.nfev == 1234
    assert res.restarts >= 1
    res = opt.optimize(rastrigin, maxfev=2000)  # continue with a larger total
    assert res.nfev == 2000


def test_budget_is_shared_and_maxfev_never_triggers_a_restart() -> None:
    calls = []

    def counted(x: np.ndarray) -> float:
        calls.append(1)
        return rastrigin(x)

    opt = quick(maxfev=2500, max_restarts=50)
    res = opt.optimize(counted)
    assert len(calls) == res.nfev == 2500
    assert all("maxfev" not in h["stop"] for h in res.history[:-1])  # type: ignore[operator]
    assert res.status == 1


def test_ftarget_ends_the_whole_sequence() -> None:
    opt = IPOP(XNES, np.full(3, 2.0), 1.0, ftarget=1e-6, maxfev=50_000, rng=2)
    res = opt.optimize(sphere)
    assert res.fun <= 1e-6
    assert res.success
    assert "ftarget" in res.stop
    assert res.restarts == 0


def test_first_run_is_the_plain_strategy() -> None:
    x0 = np.array([1.0, -2.0, 0.5])
    opt = IPOP(SNES, x0, 0.7, rng=42)
    es = SNES(x0, 0.7, rng=42)
    for X in drive(opt, sphere, steps=10):
        Y = es.ask()
        np.testing.assert_array_equal(X, Y)
        es.tell(Y, [sphere(y) for y in Y])


def test_restart_x0_is_the_original_x0_when_unbounded() -> None:
    x0 = np.full(2, 3.0)
    opt = quick()
    seen = 0
    while not opt.stop():
        r = opt.restarts
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
        if opt.restarts > r:  # a fresh run: nothing told yet, its mean is its x0
            np.testing.assert_array_equal(opt.mean, x0)
            seen += 1
    assert seen == 4


@pytest.mark.slow
def test_restart_x0_is_uniform_in_the_box_when_bounded() -> None:
    lower, upper = np.array([-5.0, 0.0]), np.array([5.0, 1.0])
    means = []
    for seed in range(4):
        opt = quick(bounds=(lower, upper), rng=seed, max_restarts=2)
        while not opt.stop():
            r = opt.restarts
            X = opt.ask()
            opt.tell(X, [sphere(x) for x in X])
            if opt.restarts > r:
                means.append(opt.mean)
    M = np.array(means)
    assert M.shape[0] == 8
    assert np.all((lower <= M) & (upper >= M))
    assert len({tuple(m) for m in M}) == M.shape[0]  # every restart draws its own start


@pytest.mark.parametrize("kind", [IPOP, BIPOP])
def test_a_box_no_step_size_spans_restarts_at_x0(kind) -> None:
    # Restarts in [-1e200, 1e200] started ~1e199 away: the sphere overflowed to inf there and
    # every restart of IPOP(xnes, rng=0) ended without a finite value (9 "every fitness value
    # is non-finite" warnings). A box wider than 4e100 (a quarter of it beyond the largest
    # step size) counts as no bound for the start, as for the scipy method's default sigma0;
    # the spanned [-5, 5] still draws its own start.
    lower, upper = [-1e200, -5.0], [1e200, 5.0]
    x0 = np.array([1.0, 1.0])
    opt = kind("xnes", x0, 1.0, bounds=(lower, upper), rng=0, maxfev=6000, max_restarts=3)
    starts = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        while not opt.stop():
            r = opt.restarts
            X = opt.ask()
            opt.tell(X, [float(np.sum((x - 3.0) ** 2)) for x in X])
            if opt.restarts > r:
                starts.append(opt.mean)
    assert len(starts) >= 2
    for m in starts:
        assert m[0] == 1.0  # x0's: the box is no bound for the start
        assert -5.0 <= m[1] <= 5.0
    assert len({m[1] for m in starts}) == len(starts)  # drawn per restart
    assert all(math.isfinite(h["best_f"]) for h in opt.result.history)


def test_partially_bounded_coordinates_keep_x0() -> None:
    opt = quick(bounds=[(-5.0, 5.0), (None, None)])
    while opt.restarts == 0:
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
    assert opt.mean[1] == 3.0


def test_max_restarts_ends_the_sequence_with_the_local_reason() -> None:
    opt = quick(max_restarts=1)
    res = opt.optimize(rastrigin)
    assert res.restarts == 1
    assert {"tolfun", "tolx"} & set(res.stop)
    assert len(res.history) == 2


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_an_ill_conditioned_run_is_restarted_as_the_docs_say(cls: type[IPOP]) -> None:
    # docs/restarts.rst and IPOP's Notes: every criterion but maxfev, maxiter, ftarget, timeout
    # and a callback's stop is local; conditioncov (here after a few generations on an
    # ellipsoid) restarts the sequence instead of ending it.
    def ellipsoid(x: np.ndarray) -> float:
        return float(np.sum(100.0 * 10.0 ** np.arange(x.size) * x**2))

    opt = cls(XNES, np.ones(3), 1.0, maxfev=3000, rng=0, tolconditioncov=10.0, max_restarts=2)
    res = opt.optimize(ellipsoid)
    assert res.restarts >= 2
    assert [list(h["stop"]) for h in res.history[:-1]] == [["conditioncov"]] * res.restarts


def test_callback_stops_everything() -> None:
    opt = quick(maxfev=10_000)
    res = opt.optimize(rastrigin, callback=lambda r: r.nit >= 3)
    assert res.nit == 3
    assert res.status == 99


# ---------------------------------------------------------------------- state and resume
@pytest.mark.parametrize("how", ["json", "pickle"])
@pytest.mark.parametrize("pending", [False, True])
def test_resume_across_restarts_is_bit_exact(how: str, pending: bool) -> None:
    reference = quick(maxfev=3000)
    asks_ref = drive(reference, rastrigin)
    assert reference.restarts >= 2
    opt = quick(maxfev=3000)
    k = 0
    while opt.restarts < 1:  # stop in the middle of the second run
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
        k += 1
    drive(opt, rastrigin, steps=3)
    k += 3
    if pending:
        opt.ask()
    if how == "json":
        opt2 = IPOP.from_state(json.loads(json.dumps(opt.state_dict())))
    else:
        opt2 = pickle.loads(pickle.dumps(opt))
    asks = drive(opt2, rastrigin)
    assert len(asks) == len(asks_ref) - k
    for x, y in zip(asks, asks_ref[k:], strict=True):
        np.testing.assert_array_equal(x, y)
    assert opt2.best[1] == reference.best[1]
    assert opt2.nfev == reference.nfev
    assert opt2.state_dict() == reference.state_dict()


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_options_given_as_numpy_scalars_give_a_json_state(cls: type[IPOP]) -> None:
    # the options were stored as given: np.True_, np.float32 and np.int64 made state_dict()
    # fail in json.dumps
    opts = {"mirrored": np.True_, "eta_sigma": np.float32(0.25), "tolstagnation": np.int64(50)}
    opt = cls(XNES, np.full(2, 3.0), 1.0, maxfev=400, rng=3, **opts)  # type: ignore[arg-type]
    twin = cls(
        XNES, np.full(2, 3.0), 1.0, maxfev=400, rng=3, **{k: x.item() for k, x in opts.items()}
    )
    restored = cls.from_state(json.loads(json.dumps(opt.state_dict())))
    assert restored.state_dict() == twin.state_dict()
    for es in (restored, twin):
        es.optimize(rastrigin)
    assert restored.state_dict() == twin.state_dict()


@pytest.mark.parametrize("cls", [XNES, SNES, OpenES])
def test_every_strategy_can_be_restarted(cls: type) -> None:
    opt = IPOP(cls, np.full(2, 2.0), 0.5, maxfev=3000, tolfun=1e-3, tolx=1e-3, rng=1)
    res = opt.optimize(rastrigin)
    assert res.nfev == 3000
    restored = IPOP.from_state(json.loads(json.dumps(opt.state_dict())))
    assert restored.strategy.name == cls.name
    assert IPOP(cls.name, np.zeros(2), 1.0).strategy.name == cls.name


def test_generator_rng_is_drawn_from_once() -> None:
    a = IPOP(XNES, np.zeros(2), 1.0, rng=np.random.default_rng(5))
    b = IPOP(XNES, np.zeros(2), 1.0, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.ask(), b.ask())


@pytest.mark.parametrize("bounds", [None, [(-5.0, 5.0), (-5.0, 5.0)]])
def test_spec7_an_int_and_its_generator_give_the_same_sequence_restarts_included(bounds) -> None:
    # SPEC 7: rng=42, default_rng(42) and SeedSequence(42) are one seed; the restarts (their
    # seeds, and with a box their initial means) follow from the entropy run 0 drew.
    forms = [42, np.random.default_rng(42), np.random.SeedSequence(42)]
    runs = [quick(rng=rng, bounds=bounds, maxfev=4000) for rng in forms]
    asks = [drive(opt, rastrigin) for opt in runs]
    assert runs[0].restarts >= 2  # the comparison reaches past the first restart
    for opt, got in zip(runs[1:], asks[1:], strict=True):
        assert opt.restarts == runs[0].restarts
        assert len(got) == len(asks[0])
        for x, y in zip(got, asks[0], strict=True):
            np.testing.assert_array_equal(x, y)
    assert len({json.dumps(opt.state_dict()) for opt in runs}) == 1


def test_a_generator_seeded_sequence_resumes_identically_after_a_restart() -> None:
    opt = quick(rng=np.random.default_rng(7), maxfev=4000)
    while opt.restarts < 1:  # into the second run
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
    twin = IPOP.from_state(json.loads(json.dumps(opt.state_dict())))
    a, b = drive(opt, rastrigin), drive(twin, rastrigin)
    assert opt.restarts >= 2  # the resumed sequence restarts again, from the same seed
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_stored_sequence_seed_out_of_range_is_rejected() -> None:
    state = quick().state_dict()
    state["seed"] = str(2**128)
    with pytest.raises(ValueError, match=r"`seed` must be an integer in \[0, .*\], but got"):
        IPOP.from_state(state)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "kw", "exc", "match"),
    [
        ((3,), {}, TypeError, r"`strategy` must be one of .* or a Strategy subclass, but got 3"),
        (
            ("cmaes",),
            {},
            ValueError,
            r"`strategy` must be one of \['crfmnes', 'dxnesic', 'openes', 'snes', .*'xnes'\] "
            r"or a Strategy "
            r"subclass, but got 'cmaes'",
        ),
        (
            (XNES,),
            {"max_restarts": -1},
            ValueError,
            r"`max_restarts` must be an integer in \[0, 9223372036854775807\], but got -1",
        ),
        (
            (XNES,),
            {"popsize_factor": 0.5},
            ValueError,
            r"`popsize_factor` must be a number in \[1,",
        ),
        ((XNES,), {"maxfev": 0}, ValueError, r"`maxfev` must be an integer >= 1, but got 0"),
        ((XNES,), {"eta_B": -1.0}, ValueError, r"`eta_B` must be a positive finite number"),
        (
            (XNES,),
            {"rng": np.random.RandomState(0)},
            TypeError,
            r"`rng` must be None, an int, a SeedSequence or a Generator, but got RandomState",
        ),
    ],
)
def test_bad_arguments(args: tuple, kw: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        IPOP(*args, np.zeros(2), 1.0, **kw)


def test_malformed_state_is_rejected() -> None:
    state = quick().state_dict()
    with pytest.raises(ValueError, match=r"`state` must come from IPOP.state_dict\(\)"):
        IPOP.from_state({"strategy": "xnes"})
    state["inner_strategy"] = "cmaes"
    with pytest.raises(
        ValueError, match=r"`state` is malformed: `strategy` must be one of .*, but got 'cmaes'"
    ):
        IPOP.from_state(state)


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("seed", "1e3", r"`seed` must be an integer in \[0, 2\*\*128\) or its decimal digits"),
        ("seed", None, r"`seed` must be an integer in \[0, 2\*\*128\) or its decimal digits"),
        ("seed", "9" * 5000, r"`seed` must be an integer in \[0, 2\*\*128\) or its decimal"),
        (
            "seed",
            2**128,
            r"`seed` must be an integer in \[0, 340282366920938463463374607431768211455\]",
        ),
        ("criteria", [1, 2], r"`criteria` must be a dict, but got \[1, 2\]"),
        ("options", None, r"`options` must be a dict, but got None"),
        ("options", [["tolx", 1e-3]], r"`options` must be a dict, but got \[\['tolx'"),
    ],
)
def test_malformed_fields_are_named(cls: type[IPOP], key: str, value: object, match: str) -> None:
    # "invalid literal for int() with base 10: '1e3'", "'NoneType' object is not iterable",
    # "cannot convert dictionary update sequence element #0 to a sequence"; a list of pairs
    # as `options` was taken as a dict
    state = json.loads(json.dumps(cls("xnes", np.zeros(2), 1.0, rng=0).state_dict()))
    state[key] = value
    with pytest.raises(ValueError, match=r"^`state` is malformed: " + match):
        cls.from_state(state)
    if cls is BIPOP:
        state = json.loads(json.dumps(cls("xnes", np.zeros(2), 1.0, rng=0).state_dict()))
        state["bipop"] = None
        with pytest.raises(ValueError, match=r"`bipop` must be a dict, but got None"):
            cls.from_state(state)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: IPOP("xnes", np.zeros(3), 1.0, rng=0, max_restarts=10**5000),
            r"`max_restarts` must be an integer in \[0, 9223372036854775807\], but got <int of",
        ),
        (
            lambda: IPOP("xnes", np.zeros(3), 1.0, rng=0, threads=10**5000),
            r"`threads` must be an integer in \[1, 1024\], but got <int of about 5001 digits>",
        ),
        (
            lambda: XNES(np.zeros(3), 1.0, threads=2000),
            r"`threads` must be an integer in \[1, 1024\], but got 2000",
        ),
    ],
)
def test_counts_a_state_could_not_write_are_refused(
    make: Callable[[], object], match: str
) -> None:
    # accepted, then json.dumps(state_dict()) failed on Python's 4300-digit limit
    with pytest.raises(ValueError, match=match):
        make()


def test_result_fields() -> None:
    res = quick(maxfev=500).optimize(rastrigin)
    assert res.nfev == 500
    assert math.isfinite(res.fun)
    assert res.x.shape == (2,)
    assert rastrigin(res.x) == res.fun


def _restarted_state() -> dict:
    opt = quick()
    opt.optimize(rastrigin, maxfev=3000)
    assert opt.restarts >= 1
    return opt.state_dict()


def test_a_state_of_another_version_or_without_one_is_rejected() -> None:
    state = _restarted_state()
    for version in (99, None, "2"):
        state["version"] = version
        with pytest.raises(ValueError, match=r"`state` must come from IPOP.state_dict\(\) \(vers"):
            IPOP.from_state(state)
    del state["version"]
    with pytest.raises(ValueError, match=r"`state` must come from IPOP.state_dict\(\) \(vers"):
        IPOP.from_state(state)


def test_a_state_with_a_missing_key_names_the_key() -> None:
    state = _restarted_state()
    del state["x0"]
    with pytest.raises(ValueError, match=r"`state` is malformed: the key 'x0' is missing"):
        IPOP.from_state(state)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h: h.clear(), r"`history` must hold one record per restart \(\d+\), but got 0"),
        (lambda h: h.append(dict(h[0])), r"`history` must hold one record per restart"),
        (lambda h: h.__setitem__(0, 3), r"`history\[0\]` must be a dict, but got 3"),
        (lambda h: h[0].pop("nfev"), r"`history\[0\]` must have the keys .*, but got"),
        (
            lambda h: h[0].update(popsize=-4),
            r"`popsize` must be an integer in \[2, 262144\], but got -4",
        ),
        (lambda h: h[0].update(nfev=1.5), r"`nfev` must be an integer, but got 1.5"),
        (lambda h: h[0].update(best_f="0"), r"`best_f` must be a finite number, but got '0'"),
        (lambda h: h[0].update(stop="tolx"), r"`stop` must be a list of criteria, but got"),
        (lambda h: h[0].update(stop=[1]), r"`stop` must be a list of criteria, but got \[1\]"),
    ],
)
def test_a_state_with_a_corrupt_history_is_rejected(edit: object, match: str) -> None:
    state = _restarted_state()
    edit(state["history"])  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"`state` is malformed: " + match):
        IPOP.from_state(state)


@pytest.mark.parametrize("name", ["nfev_done", "generation_done"])
def test_a_state_whose_counters_disagree_with_its_history_is_rejected(name: str) -> None:
    state = _restarted_state()
    state[name] += 1
    with pytest.raises(ValueError, match=rf"`{name}` must be the sum of the runs' `"):
        IPOP.from_state(state)
    state[name] = 1e300
    with pytest.raises(ValueError, match=rf"`{name}` must be the sum of the runs' `"):
        IPOP.from_state(state)


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_optimize_takes_infinite_budgets_as_no_limit(cls: type[IPOP]) -> None:
    res = cls("xnes", np.ones(2), 0.5, rng=0).optimize(rastrigin, maxfev=float("inf"), maxiter=20)
    assert (res.nit, res.status) == (20, 2)
    res = cls("xnes", np.ones(2), 0.5, rng=0).optimize(rastrigin, maxiter=math.inf, maxfev=60)
    assert (res.nfev, res.status) == (60, 1)
    with pytest.raises(ValueError, match=r"`maxfev` must be an integer >= 0, but got -1"):
        cls("xnes", np.ones(2), 0.5, rng=0).optimize(rastrigin, maxfev=-1)


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_a_call_that_ends_where_a_run_ends_defers_its_restart_without_losing_it(
    cls: type[IPOP],
) -> None:
    # An optimize() call whose budget ended exactly where a run stopped started no new run
    # (the call ended there); the next call then spent one more generation on the stopped run
    # before restarting (IPOP: the first run's nfev 318 instead of 312, total 2958 instead of
    # 2952). The restart is now made by the next ask(), so the split run is the whole run.
    def make() -> IPOP:
        return cls("xnes", np.ones(2), 1.0, rng=0, tolfun=1e-6, max_restarts=3)

    whole = make()
    ref = whole.optimize(sphere, maxfev=3000)
    first = ref.history[0]["nfev"]
    split = make()
    assert split.optimize(sphere, maxfev=first).restarts == 0
    assert split.strategy.stop()  # the first run has stopped, with its restart due
    state = split.state_dict()
    res = split.optimize(sphere, maxfev=3000)
    assert res.history == ref.history
    assert (res.nfev, res.nit, res.fun) == (ref.nfev, ref.nit, ref.fun)
    assert split.state_dict() == whole.state_dict()
    # by ask/tell, from the stored state: the next ask() is the first of the second run
    stepped = make()
    while stepped.restarts < 1:
        X = stepped.ask()
        stepped.tell(X, [sphere(x) for x in X])
    resumed = cls.from_state(json.loads(json.dumps(state)))
    np.testing.assert_array_equal(resumed.ask(), stepped.ask())
    assert resumed.state_dict() == stepped.state_dict()


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_a_call_ended_by_maxiter_where_a_run_ends_starts_no_empty_run(cls: type[IPOP]) -> None:
    # A call whose maxiter ended where a run stopped started the next run anyway: the result
    # counted a restart that never evaluated anything (restarts 1, a history record with
    # nfev 0 and best_f None, the popsize of that run), while a call ended there by maxfev
    # reported restarts 0. Both now defer the restart to the next ask().
    def make() -> IPOP:
        return cls("xnes", np.ones(2), 1.0, rng=0, tolfun=1e-6, max_restarts=3)

    whole = make()
    ref = whole.optimize(sphere, maxfev=3000)
    by_it = make()
    res = by_it.optimize(sphere, maxiter=ref.history[0]["generations"])
    by_fev = make().optimize(sphere, maxfev=ref.history[0]["nfev"])
    assert res.restarts == by_fev.restarts == 0
    assert res.history == by_fev.history
    assert by_it.popsize == ref.history[0]["popsize"]
    assert by_it.optimize(sphere, maxfev=3000).history == ref.history
    assert by_it.state_dict() == whole.state_dict()


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_a_call_made_from_the_callback_leaves_the_outer_calls_budget_in_place(
    cls: type[IPOP],
) -> None:
    # optimize() called from its own callback (here a call with nothing left to do) cleared
    # the outer call's budget when it returned: the outer call, ending where a run stopped,
    # then started the next run instead of deferring it (restarts 1 and a second history
    # record instead of 0 and one).
    def make() -> IPOP:
        return cls("xnes", np.ones(3), 1.0, rng=0, max_restarts=3)

    first = make().optimize(sphere, maxfev=3000).history[0]["nfev"]
    plain = make()
    ref = plain.optimize(sphere, maxfev=first)
    nested = make()
    calls = []

    def callback(r: OptimizeResult) -> None:
        calls.append(nested.optimize(sphere, maxiter=nested.generation).nit)

    res = nested.optimize(sphere, maxfev=first, callback=callback)
    assert calls == list(range(1, ref.nit + 1))
    assert (res.restarts, res.history, res.nfev) == (0, ref.history, ref.nfev)
    assert nested.state_dict() == plain.state_dict()


@pytest.mark.parametrize("mirrored", [True, False])
def test_restart_populations_stop_at_the_size_a_strategy_of_that_dimension_takes(
    mirrored: bool,
) -> None:
    # at d = 1e6 the doublings of 12 passed 2**31 / d = 2,147 at the 8th restart: the run
    # that restart builds raised ValueError inside tell(), after the finished run's update
    from nes_asktell._restarts import restart_popsize
    from nes_asktell._strategy import MAX_POPSIZE
    from nes_asktell._validate import MAX_ELEMENTS

    d = 10**6
    lams = [restart_popsize(12, 2.0, r, mirrored, d) for r in range(12)]
    assert lams[:8] == [12 * 2**r for r in range(8)]  # 12 .. 1,536
    cap = 2146 if mirrored else 2147
    assert lams[8:] == [cap] * 4
    assert cap * d <= MAX_ELEMENTS < (cap + 2) * d
    # without a large dimension the cap is the largest population, as before
    assert restart_popsize(12, 2.0, 40, mirrored, 3) == MAX_POPSIZE


# ------------------------------------------------- the current run must be the sequence's own
def _sequence_run(**changes: object) -> dict:
    """The state of a run like run 0 of ``cls("xnes", ones(3), 0.5, ftarget=1e-8)``, changed."""
    args: dict[str, object] = {"rng": 0, "ftarget": 1e-8}
    args.update(changes)
    x0 = np.ones(int(args.pop("dim", 3)))  # type: ignore[call-overload]
    return XNES(x0, 0.5, **args).state_dict()  # type: ignore[arg-type]


RUN_MISMATCHES = [
    ("dim", lambda: _sequence_run(dim=5), r"dim"),
    ("popsize", lambda: _sequence_run(popsize=20), r"popsize"),
    ("ftarget", lambda: _sequence_run(ftarget=1e-3), r"ftarget"),
    ("no ftarget", lambda: _sequence_run(ftarget=None), r"ftarget"),
    ("maxfev", lambda: _sequence_run(maxfev=100), r"maxfev"),
    ("dtype", lambda: _sequence_run(dtype="float32"), r"dtype"),
    ("bounds", lambda: _sequence_run(bounds=[(-5, 5)] * 3), r"bounds"),
    ("mirrored", lambda: _sequence_run(mirrored=False), r"mirrored|popsize"),
    ("option", lambda: _sequence_run(eta_sigma=0.3), r"eta_sigma"),
    ("criterion", lambda: _sequence_run(tolfun=1e-3), r"tolfun"),
    ("sigma0", lambda: XNES(np.ones(3), 0.7, rng=0, ftarget=1e-8).state_dict(), r"sigma0"),
    ("strategy", lambda: SNES(np.ones(3), 0.5, rng=0, ftarget=1e-8).state_dict(), r"XNES"),
]


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
@pytest.mark.parametrize(
    ("make_run", "match"),
    [case[1:] for case in RUN_MISMATCHES],
    ids=[case[0] for case in RUN_MISMATCHES],
)
def test_from_state_rejects_a_current_run_that_is_not_the_sequences(
    cls: type[IPOP], make_run: object, match: str
) -> None:
    # A 5-d XNES run inside a 3-d sequence was accepted: optimize() then evaluated 5-d and
    # 3-d points of one problem. So were runs of another popsize, ftarget, dtype, ...
    state = json.loads(json.dumps(cls("xnes", np.ones(3), 0.5, rng=0, ftarget=1e-8).state_dict()))
    good = _sequence_run()
    cls.from_state({**state, "run": good})  # the sequence's own run 0 loads
    bad = {**state, "run": make_run()}  # type: ignore[operator]
    kept = json.loads(json.dumps(bad))
    with pytest.raises(ValueError, match=r"`state` is malformed: .*" + match):
        cls.from_state(bad)
    assert bad == kept


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_from_state_rejects_a_run_with_the_population_of_another_restart(cls: type[IPOP]) -> None:
    opt = cls("xnes", np.full(2, 3.0), 1.0, rng=3, tolfun=1e-4, tolx=1e-4, max_restarts=4)
    popsize0 = opt.popsize
    while opt.popsize == popsize0:  # a restart with another population (BIPOP: maybe later)
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
    state = json.loads(json.dumps(opt.state_dict()))
    cls.from_state(state)
    first = XNES(np.full(2, 3.0), 1.0, rng=3, tolfun=1e-4, tolx=1e-4).state_dict()
    assert first["popsize"] != state["run"]["popsize"]
    first["criteria"]["maxfev"] = state["run"]["criteria"]["maxfev"]
    with pytest.raises(ValueError, match=r"`state` is malformed: .*popsize"):
        cls.from_state({**state, "run": first})


def _every_state(opt: IPOP, fun: object, restarts: int, limit: int) -> list[dict]:
    """States of `opt` (JSON) at generations spread over its runs, one between ask and tell."""
    states = []
    seen = opt.restarts
    k = 0
    while not opt.stop() and opt.restarts < restarts and k < limit:
        X = opt.ask()
        if k == 3:
            states.append(json.loads(json.dumps(opt.state_dict())))  # pending
        opt.tell(X, [fun(x) for x in X])  # type: ignore[operator]
        k += 1
        if k % 7 == 0 or opt.restarts != seen:
            seen = opt.restarts
            states.append(json.loads(json.dumps(opt.state_dict())))
    return states


@pytest.mark.slow
@pytest.mark.parametrize("cls", [IPOP, BIPOP])
@pytest.mark.parametrize("name", strategy_names())
@pytest.mark.parametrize("bounded", [False, True])
def test_every_state_the_library_writes_loads(cls: type[IPOP], name: str, bounded: bool) -> None:
    # the checks of the current run against the sequence refuse none of the sequence's own
    # states: every strategy, with and without bounds, fresh, mid-run, pending and after
    # restarts (BIPOP: of both regimes)
    bounds = [(-4.0, 4.0), (-4.0, 4.0), (None, None)] if bounded else None
    opt = cls(
        name, np.full(3, 2.0), 0.8, rng=1, tolfun=1e-1, tolx=1e-2, bounds=bounds, maxfev=30_000
    )
    states = [json.loads(json.dumps(opt.state_dict()))]
    states += _every_state(opt, rastrigin, restarts=4, limit=1500)
    assert opt.restarts >= 2
    if cls is BIPOP:
        assert {h["regime"] for h in opt.history} == {"large", "small"}
    for state in states:
        assert cls.from_state(state).state_dict() == state


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_a_sequence_with_its_options_reloads(cls: type[IPOP]) -> None:
    # float32, a popsize, per-coordinate sigma0, mirrored sampling, an option and a budget
    opt = cls(
        "snes",
        np.full(3, 2.0),
        [0.5, 1.0, 2],
        6,
        rng=4,
        dtype="float32",
        mirrored=True,
        eta_sigma=0.2,
        tolfun=1e-1,
        maxfev=5000,
        ftarget=-1.0,
        popsize_factor=1.5,
    )
    states = _every_state(opt, rastrigin, restarts=3, limit=800)
    assert opt.restarts >= 2
    for state in states:
        assert cls.from_state(state).state_dict() == state


class _Unnamed(XNES):
    """A user's subclass without a ``name`` of its own: its states name ``"xnes"``."""


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_a_sequence_of_a_subclass_without_a_name_resumes_as_that_subclass(
    cls: type[IPOP],
) -> None:
    # The state names the runs' strategy by its registered name, the parent's; from_state
    # rebuilt the current run and every later restart as XNES, so a resumed sequence left
    # the user's class (as Strategy.from_state does for one strategy, the subclass passed
    # reads it back as itself).
    def make() -> IPOP:
        return cls(_Unnamed, np.full(2, 3.0), 1.0, rng=3, tolfun=1e-4, maxfev=3000)

    reference = make()
    asks_ref = drive(reference, rastrigin)
    opt = make()
    k = 0
    while opt.restarts < 1:
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
        k += 1
    state = json.loads(json.dumps(opt.state_dict()))
    assert state["inner_strategy"] == "xnes"
    back = cls.from_state(state, strategy=_Unnamed)
    assert type(back.strategy) is _Unnamed
    asks = drive(back, rastrigin)
    assert back.restarts >= 2
    assert type(back.strategy) is _Unnamed  # the restarts after the resume too
    assert len(asks) == len(asks_ref) - k
    for x, y in zip(asks, asks_ref[k:], strict=True):
        np.testing.assert_array_equal(x, y)
    assert back.state_dict() == reference.state_dict()
    # without the class, the state names XNES; a class the state does not name is refused
    assert type(cls.from_state(state).strategy) is XNES
    with pytest.raises(ValueError, match=r"`strategy` must be the class .* but got SNES"):
        cls.from_state(state, strategy=SNES)
    with pytest.raises(TypeError, match=r"`strategy` must be a Strategy subclass or None"):
        cls.from_state(state, strategy="xnes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "sigma0"), [(IPOP, 1e-100), (BIPOP, 1e-99)])
def test_no_run_is_restarted_before_it_has_evaluated_anything(
    cls: type[IPOP], sigma0: float
) -> None:
    # A step size at its limit (sigma0 = 1e-100, or BIPOP's small regime floored there) is
    # "degenerate" before the first generation: the run was replaced at its first ask, so
    # every other IPOP run evaluated nothing ([0, 12, 0, 48, 0, 192, 0]) and BIPOP spent 6 of
    # its 18 restarts on runs without an evaluation.
    opt = cls("xnes", np.ones(2), sigma0, rng=0, max_restarts=6)
    res = opt.optimize(sphere, maxfev=20_000)
    assert res.restarts >= 4
    assert all(h["nfev"] > 0 and h["generations"] > 0 for h in res.history[:-1])


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_changing_the_callers_sigma0_array_afterwards_changes_nothing(cls: type[IPOP]) -> None:
    # The sequence kept the caller's array: doubling it afterwards made the state's first run
    # disagree with run 0 ("`sigma0[0]` must be 1.0 as in run 0 of the sequence, but got
    # 0.5"), and the restarts started from the doubled step sizes.
    sig = np.array([0.5, 0.5])
    opt = cls("snes", np.ones(2), sig, rng=0, max_restarts=2)
    sig *= 2
    again = cls.from_state(json.loads(json.dumps(opt.state_dict())))
    assert again.state_dict() == opt.state_dict()
    res = opt.optimize(lambda x: float(x @ x), maxfev=2000)
    ref = cls("snes", np.ones(2), np.array([0.5, 0.5]), rng=0, max_restarts=2)
    assert res.fun == ref.optimize(lambda x: float(x @ x), maxfev=2000).fun


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_changing_the_history_handed_out_changes_nothing(cls: type[IPOP]) -> None:
    # history, result.history and optimize()'s result shared each record's `stop` list with
    # the sequence: a caller's edit of it reached the state (and a checkpoint)
    opt = cls("xnes", np.ones(2), 0.5, rng=0, maxfev=3000, max_restarts=3)
    res = opt.optimize(lambda x: float(x @ x))
    assert res.history[0]["stop"]
    state = opt.state_dict()
    for records in (opt.history, opt.result.history, res.history, state["history"]):
        records[0]["stop"].append("edited")
    assert (
        opt.state_dict() == cls.from_state(json.loads(json.dumps(opt.state_dict()))).state_dict()
    )
    assert "edited" not in opt.history[0]["stop"]
    assert "edited" not in opt.state_dict()["history"][0]["stop"]


@pytest.mark.parametrize(
    "options",
    [
        {"dtype": np.float32},
        {"dtype": np.dtype("float32")},
        {"tolfun": Fraction(1, 1000)},
        {"eta_B": Fraction(1, 10)},
    ],
)
@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_options_of_other_types_are_stored_as_plain_data(
    cls: type[IPOP], options: dict[str, object]
) -> None:
    # The options were stored as given: state_dict() held the type np.float32 (json.dumps
    # raised "Object of type type is not JSON serializable") or a Fraction.
    opt = cls("xnes", np.zeros(2), 0.5, rng=0, **options)  # type: ignore[arg-type]
    for _ in range(3):
        X = opt.ask()
        opt.tell(X, [float(x @ x) for x in X])
    state = json.loads(json.dumps(opt.state_dict()))
    again = cls.from_state(state)
    for _ in range(3):
        X, Y = opt.ask(), again.ask()
        np.testing.assert_array_equal(X, Y)
        opt.tell(X, [float(x @ x) for x in X])
        again.tell(Y, [float(y @ y) for y in Y])
    assert json.dumps(again.state_dict()) == json.dumps(opt.state_dict())


def _ipop_after_three_restarts() -> dict[str, object]:
    opt = IPOP("xnes", np.ones(2), 0.5, rng=3, tolfun=1e-3, tolx=1e-3, max_restarts=5)
    while opt.restarts < 3:
        X = opt.ask()
        opt.tell(X, [float(x @ x) for x in X])
    for _ in range(3):
        X = opt.ask()
        opt.tell(X, [float(x @ x) for x in X])
    return json.loads(json.dumps(opt.state_dict()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.__setitem__("max_restarts", 0), r"`restarts` must be an integer in \[0, 0\]"),
        (
            lambda s: s["history"][0].__setitem__("popsize", 1e308),
            r"`popsize` must be an integer in \[2, 262144\]",
        ),
        (
            lambda s: s["run"]["record"].__setitem__("since_improvement", 10**30),
            r"`since_improvement` must be an integer in \[0, 3\]",
        ),
    ],
)
def test_a_state_whose_counters_disagree_is_refused(change: Any, message: str) -> None:
    # Each was accepted: 3 restarts made of at most 0, a first run of popsize 1e308 (kept as
    # that float in the history), more generations without improvement than the run had.
    state = _ipop_after_three_restarts()
    IPOP.from_state(copy.deepcopy(state))  # as written: accepted
    change(state)
    with pytest.raises(ValueError, match=message):
        IPOP.from_state(state)


def test_a_history_record_read_back_holds_ints() -> None:
    state = _ipop_after_three_restarts()
    state["history"][0]["popsize"] = float(state["history"][0]["popsize"])  # type: ignore[index]
    assert all(isinstance(h["popsize"], int) for h in IPOP.from_state(state).result.history)


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_a_sequence_saved_before_active_weights_loads_and_goes_on(cls: type[IPOP]) -> None:
    # XNES alone resumed such a state with active=False, but the sequence compared the run's
    # options with a fresh run's key by key: "the current run's `options` must be {...}"
    opt = cls(XNES, np.full(3, 3.0), 2.0, rng=5, max_restarts=2)
    opt.optimize(sphere, maxfev=300)
    state = json.loads(json.dumps(opt.state_dict()))
    del state["run"]["options"]["active"]  # as written before the option existed
    back = cls.from_state(state)
    opt.optimize(sphere, maxfev=600)
    back.optimize(sphere, maxfev=600)
    assert back.state_dict() == opt.state_dict()


def test_a_sequence_names_the_option_its_run_lacks_or_differs_in() -> None:
    opt = IPOP(XNES, np.full(3, 3.0), 2.0, rng=5, max_restarts=2, eta_B=0.1)
    opt.optimize(sphere, maxfev=100)
    state = json.loads(json.dumps(opt.state_dict()))
    lacking = copy.deepcopy(state)
    del lacking["run"]["options"]["eta_B"]  # it took the default: not the sequence's 0.1
    with pytest.raises(ValueError, match=r"`options` must hold every option of XNES, but lacks"):
        IPOP.from_state(lacking)
    state["run"]["options"]["eta_B"] = 0.2
    with pytest.raises(ValueError, match=r"`options.eta_B` must be 0.1 as in run 0 .* got 0.2"):
        IPOP.from_state(state)


def _copy_steps(seq: IPOP, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        X = seq.ask()
        seq.tell(X, [float(np.sum((x - 0.3) ** 2)) for x in X])
        out.append(np.array(X))
    return out


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
@pytest.mark.parametrize("pending", [False, True])
def test_a_shallow_copy_of_a_sequence_goes_on_alone(cls: type[IPOP], pending: bool) -> None:
    """copy.copy of IPOP (BIPOP) is a twin as independent as copy.deepcopy: it shared the
    original's run and records, so the twin told its batches to the original's run (after the
    original's 3 generations the twin of 2 generations was at generation 5)."""
    seq = cls(XNES, np.ones(3), 0.5, rng=0)
    _copy_steps(seq, 2)
    if pending:
        seq.ask()
    twin, ref = copy.copy(seq), copy.deepcopy(seq)
    _copy_steps(seq, 3)  # the original goes on first
    for got, want in zip(_copy_steps(twin, 3), _copy_steps(ref, 3), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (twin.nfev, twin.result.nit) == (ref.nfev, ref.result.nit)
    assert twin.history == ref.history


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_telling_the_batch_that_ended_a_run_again_says_the_same_batch_twice(
    cls: type[IPOP],
) -> None:
    # Bug: the tell that ends a run starts the next one at generation 0, so telling the same
    # batch again was refused as "(tell before ask)"; it is the same batch twice.
    opt = cls(XNES, np.full(2, 3.0), 1.0, tolfun=1e-4, tolx=1e-4, rng=3, max_restarts=4)
    while True:
        X = opt.ask().copy()
        f = [rastrigin(x) for x in X]
        opt.tell(X, f)
        if opt.restarts:
            break
    before = json.dumps(opt.state_dict())
    with pytest.raises(RuntimeError, match=r"\(the same batch twice\)"):
        opt.tell(X, f)
    assert not opt.strategy.pending
    assert json.dumps(opt.state_dict()) == before  # the refused tell changed nothing
    fresh = cls(XNES, np.full(2, 3.0), 1.0, rng=3)
    with pytest.raises(RuntimeError, match=r"\(tell before ask\)"):
        fresh.tell(X, f)
    assert not fresh.strategy.pending
    fresh.ask()
    assert fresh.strategy.pending
