"""Reliable at every corner (issue 12): atomic tell, degenerate distributions, hostile input.

One test per reproducer of the issue; each failed before the change it covers.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import warnings
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize

from nes_asktell import (
    IPOP,
    SNES,
    XNES,
    NESWarning,
    OpenES,
    Strategy,
    nes,
    resolve_strategy,
    strategy_names,
)
from nes_asktell._batch import rebuild_row
from nes_asktell._tasks import as_value
from nes_asktell._xnes import COND_B_MAX

NAMES = [n for n in strategy_names() if n in ("xnes", "snes", "openes")]


def sphere(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def frozen(es: Strategy) -> str:
    """The complete state as text (between ask and tell too)."""
    return json.dumps(es.state_dict(), sort_keys=True)


# ---------------------------------------------------------------- 1. atomic tell
@pytest.mark.parametrize(
    ("cls", "kw", "what"),
    [
        (XNES, {"eta_sigma": 1e6}, r"sigma (overflowed to inf|underflowed to 0)"),
        (SNES, {"eta_sigma": 1e6}, r"sigma (overflowed to inf|underflowed to 0)"),
        (XNES, {"eta_B": 1e300}, r"B overflowed to a non-finite value"),
        # Adam's second moments overflowed to inf while the step stayed finite: the tell was
        # committed, and from_state rejected the state_dict() of the strategy
        (
            OpenES,
            {"weight_decay": 1e308},
            r"the optimizer's state overflowed to a non-finite value",
        ),
    ],
)
def test_an_overflowing_update_raises_and_changes_nothing(
    cls: type[Strategy], kw: dict[str, float], what: str
) -> None:
    es = cls(np.full(3, 0.5), 0.3, rng=1, **kw)  # type: ignore[arg-type]
    X = es.ask()
    before = frozen(es)
    name = next(iter(kw))
    with pytest.raises(
        FloatingPointError,
        match=rf"`tell` could not update the distribution: {what} \(.*{name}=",
    ):
        es.tell(X, [sphere(x) for x in X])
    assert frozen(es) == before
    assert es.ask() is X  # the batch is still pending
    assert es.generation == 0
    assert es.nfev == 0


@pytest.mark.parametrize("exc", [MemoryError, KeyboardInterrupt])
@pytest.mark.parametrize("name", NAMES)
def test_an_interrupted_tell_changes_nothing_and_a_retry_applies_once(
    name: str, exc: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = resolve_strategy(name)
    es = cls(np.full(3, 0.5), 0.3, rng=2)
    twin = cls(np.full(3, 0.5), 0.3, rng=2)
    for s in (es, twin):  # a few generations first, so that paths and moments are not zero
        for _ in range(3):
            X = s.ask()
            s.tell(X, [sphere(x) for x in X])
    X = es.ask()
    f = [sphere(x) for x in X]
    before = frozen(es)

    def interrupted(self: Strategy, u: np.ndarray, Zh: np.ndarray) -> dict[str, object]:
        raise exc

    with monkeypatch.context() as m:
        m.setattr(cls, "_updated", interrupted)
        with pytest.raises(exc):
            es.tell(X, f)
    assert frozen(es) == before
    es.tell(X, f)  # the retry applies the update once, as the twin's single tell did
    Y = twin.ask()
    twin.tell(Y, [sphere(y) for y in Y])
    assert frozen(es) == frozen(twin)
    with pytest.raises(RuntimeError, match="tell"):
        es.tell(X, f)


def test_xnes_keeps_det_B_one_without_drift() -> None:
    es = XNES(np.full(4, 2.0), 1.0, rng=3, tolx=0, tolfun=0)
    for _ in range(1500):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
    sign, logdet = np.linalg.slogdet(es.B)
    assert sign == 1.0
    assert abs(logdet) < 1e-12  # re-normalised every generation (was 2.45e-5 by now)


def test_from_state_repairs_small_det_drift_and_rejects_garbage() -> None:
    es = XNES(np.zeros(3), 1.0, rng=0)
    state = es.state_dict()
    state["algo"]["B"] = (np.eye(3) * 1.0000245 ** (1 / 3)).tolist()  # det 1.0000245
    B = XNES.from_state(state).B
    assert abs(np.linalg.det(B) - 1.0) < 1e-14
    state["algo"]["B"] = (np.eye(3) * 2.0).tolist()
    with pytest.raises(ValueError, match=r"`B` must have determinant 1, but got (8|7\.99)"):
        XNES.from_state(state)


def _at_cond(cond: float) -> list[list[float]]:
    """A 3x3 diagonal B with det 1 (to rounding) whose singular values are exactly cond apart."""
    lo = 2.0**-17  # a power of two: lo * COND_B_MAX is exact, as the bound's test computes it
    hi = cond * lo
    return np.diag([hi, lo, 1.0 / (hi * lo)]).tolist()


def test_from_state_takes_b_up_to_the_bound_the_update_holds_and_rejects_beyond() -> None:
    # One bound, COND_B_MAX, for the update (which holds B there) and for from_state.
    state = _state("xnes")
    state["algo"]["B"] = _at_cond(COND_B_MAX)
    es = XNES.from_state(state)
    sv = np.linalg.svd(es.B, compute_uv=False)
    assert sv[0] / sv[-1] == pytest.approx(COND_B_MAX, rel=1e-15)
    state["algo"]["B"] = _at_cond(np.nextafter(COND_B_MAX, np.inf))  # one ulp beyond
    with pytest.raises(
        ValueError, match=r"`B` must have a condition number <= 1e\+10, but got 1e\+10"
    ):
        XNES.from_state(state)
    state["algo"]["B"] = np.diag([1e25, 1e-25, 1.0]).tolist()  # was accepted: unreachable
    with pytest.raises(
        ValueError, match=r"`B` must have a condition number <= 1e\+10, but got 1e\+50"
    ):
        XNES.from_state(state)


def test_a_per_coordinate_sigma0_beyond_the_bound_is_rejected() -> None:
    XNES(np.zeros(2), np.array([1.0, 1.0 / COND_B_MAX]))  # at the bound: a state that loads
    with pytest.raises(
        ValueError,
        match=r"`sigma0` must have a ratio of largest to smallest step size of at most 1e\+10 "
        r"\(the condition number of B\), but got 1e\+11\.",
    ):
        XNES(np.zeros(2), np.array([1.0, 1e-11]))
    # a ratio of exactly 1e10 whose scales round past it said "at most 1e+10 ... got 1e+10"
    with pytest.raises(ValueError, match=r"but got 1e\+10, whose scales of product 1 give B a"):
        XNES(np.zeros(2), np.array([3e-10, 3.0]))


def test_a_state_near_the_conditioning_bound_loads_and_resumes_identically() -> None:
    # An ellipsoid of condition 1e30 drives cond(B) to the bound (1e10, held there); every
    # state on the way is reachable and must load (the update and from_state share the bound).
    def ellipsoid(x: np.ndarray) -> float:
        return float(x[0] ** 2 + 1e30 * x[1] ** 2)

    es = XNES(np.ones(2), 1.0, rng=1, tolx=0, tolfun=0, tolconditioncov=None, maxiter=2000)
    cond = 1.0
    while cond < 0.9 * COND_B_MAX and not es.stop():
        X = es.ask()
        es.tell(X, [ellipsoid(x) for x in X])
        sv = np.linalg.svd(es.B, compute_uv=False)
        cond = sv[0] / sv[-1]
    assert 0.9 * COND_B_MAX <= cond <= COND_B_MAX
    twin = XNES.from_state(json.loads(json.dumps(es.state_dict())))
    for _ in range(50):
        X, Y = es.ask(), twin.ask()
        np.testing.assert_array_equal(X, Y)
        f = [ellipsoid(x) for x in X]
        es.tell(X, f)
        twin.tell(Y, f)


# ---------------------------------------------------------------- 2. stop() at once
def test_stop_reports_a_distribution_at_its_limit_at_once() -> None:
    es = XNES(np.zeros(2), 1.0, rng=0)
    es.tell(X := es.ask(), [sphere(x) for x in X])
    state = es.state_dict()
    state["algo"]["sigma"] = 1e-100  # the floor of the allowed range: a collapsed step size
    es = XNES.from_state(state)
    assert "degenerate" in es.stop()
    assert es.result.status == 5


@pytest.mark.parametrize("name", NAMES)
def test_a_run_that_starts_at_the_limit_evaluates_its_first_generation(name: str) -> None:
    # sigma0 = 1e-100 is allowed (and the default of a box 4e-100 wide), but stop() said
    # "degenerate" before anything was asked: optimize() and minimize() returned nfev = 0,
    # fun = inf, and an x never evaluated
    es = resolve_strategy(name)(np.full(2, 0.5), 1e-100, rng=0)
    assert es.stop() == {}
    res = es.optimize(sphere, maxiter=50)
    assert res.nfev >= es.popsize
    assert res.fun == sphere(res.x)
    for opts in ({"sigma0": 1e-100}, {}):
        bounds = [(0.5, 0.5 + 4e-100)] * 2 if not opts else None
        out = minimize(sphere, [0.5, 0.5], method=nes, bounds=bounds, options={**opts, "rng": 0})
        assert out.nfev > 0
        assert out.fun == sphere(out.x)


@pytest.mark.parametrize("name", NAMES)
def test_stop_reads_the_conditioning_in_the_units_sigma0_states(name: str) -> None:
    # cond(C) = (1 / 1e-8)**2 = 1e16 > 1e14 in absolute terms: every run stopped before its
    # first generation. In the units of sigma0 the covariance starts as the identity (the
    # criterion still holding once the shape is learnt: test_stopping.py).
    es = resolve_strategy(name)(np.zeros(2), np.array([1.0, 1e-8]), rng=0)
    assert "conditioncov" not in es.stop()
    res = es.optimize(sphere, maxiter=5)
    assert res.nfev > 0
    assert "conditioncov" not in res.stop
    relaxed = resolve_strategy(name)(
        np.zeros(2), np.array([1.0, 1e-8]), rng=0, tolconditioncov=None
    )
    assert "conditioncov" not in relaxed.stop()


@pytest.mark.parametrize("name", ["snes", "dxnesic", "crfmnes"])
def test_a_float32_run_stops_before_its_candidates_overflow(name: str) -> None:
    # On a slope the step sizes grow without end: beyond the float32 range (3.4e38) the
    # candidates were +-inf, and the run went on evaluating them (SNES from generation 154)
    seen: list[bool] = []

    def slope(x: np.ndarray) -> float:
        seen.append(bool(np.all(np.isfinite(x))))
        return float(x[0])

    es = resolve_strategy(name)(np.zeros(2), 1.0, rng=3, dtype="float32")
    res = es.optimize(slope, maxiter=2000)
    assert all(seen)
    assert "degenerate" in res.stop
    assert res.status == 5
    # a mean beyond the float32 range is degenerate from the start
    assert "degenerate" in resolve_strategy(name)(np.full(2, 1e39), 1.0, dtype="float32").stop()


@pytest.mark.parametrize("name", ["xnes", "snes", "dxnesic", "crfmnes"])
def test_a_float32_run_asked_past_its_degenerate_stop_gets_finite_candidates(name: str) -> None:
    # Asked on past stop() on a slope, the candidates of a float32 run reached +-inf (XNES
    # at generation 230, 61 generations after `degenerate`; DXNESIC 5 after): now they are
    # clipped to the float32 range, in ask, in extra_samples and where a worker rebuilds them.
    es = resolve_strategy(name)(np.ones(5), 1.0, rng=1, dtype="float32")
    stopped_at = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no overflow warning either
        for g in range(700):
            X = es.ask()
            assert np.all(np.isfinite(X)), g
            if stopped_at is None and "degenerate" in es.stop():
                stopped_at = g
                kb = es.batch_keys(X)  # SNES's rows can be rebuilt from keys
                assert (kb is not None) == (name == "snes")
                for k in range(es.popsize if kb is not None else 0):
                    row = rebuild_row(kb.keys, kb.mean, kb.scale, kb.box, k)
                    assert np.array_equal(row, X[k])
            es.tell(X, np.sum(X.astype(np.float64), axis=1))
        extra = es.extra_samples(4)
    assert stopped_at is not None
    assert stopped_at < 600
    assert extra is not None
    assert np.all(np.isfinite(extra))
    assert np.max(np.abs(X)) == np.finfo(np.float32).max  # far past the range: clipped


@pytest.mark.parametrize("name", ["snes", "openes"])
def test_stop_of_step_sizes_at_the_ends_of_their_range(name: str) -> None:
    # cond(C) = (1e80 / 1e-80)**2 is beyond the float range: (hi / lo) ** 2 raised
    # OverflowError from stop() and result, for step sizes the constructor accepts
    # (the criterion reads the covariance in the units sigma0 states: the identity at first;
    # the absolute ratio is the axis ratio's)
    es = resolve_strategy(name)(np.zeros(2), np.array([1e-80, 1e80]), rng=0)
    assert es.stop() == {}
    assert es.result.status == -1  # (the run goes on)
    assert es.axis_ratio > 1e150  # (inf: its square passes the float range)
    es.tell(es.ask(), np.arange(float(es.popsize)))
    assert "conditioncov" not in es.stop()
    assert es.axis_ratio > 1e150


# ---------------------------------------------------------------- 3. schedules clamp
def test_openes_learning_rate_decay_stops_at_a_positive_floor() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0, learning_rate_decay=0.5, learning_rate_limit=0.0)
    for _ in range(1200):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
    assert es.learning_rate == 1e-100
    copy_ = OpenES.from_state(json.loads(json.dumps(es.state_dict())))
    assert copy_.learning_rate == es.learning_rate


def test_openes_sigma_decay_keeps_adam_finite() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0, sigma_decay=0.5)
    for _ in range(1200):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
    assert es.sigma == 1e-100
    assert np.all(np.isfinite(es.mean))
    assert "degenerate" in es.stop()
    OpenES.from_state(json.loads(json.dumps(es.state_dict())))


# ---------------------------------------------------------------- 4. hostile states
def _state(name: str = "xnes") -> dict[str, Any]:
    es = resolve_strategy(name)(np.zeros(3), 0.5, rng=0)
    X = es.ask()
    es.tell(X, [sphere(x) for x in X])
    return json.loads(json.dumps(es.state_dict()))


def _nested(depth: int) -> object:
    out: object = 0.0
    for _ in range(depth):
        out = [out]
    return out


@pytest.mark.parametrize(
    ("name", "corrupt", "match"),
    [
        ("xnes", lambda s: s.update(mean=_nested(100_000)), r"nested more than 12 levels deep"),
        ("xnes", lambda s: s.update(mean=[0.0] * 10**5, dim=10**5), r"dim\*\*2"),
        ("xnes", lambda s: s["noise"].update(entropy=2**200), r"`entropy`"),
        ("xnes", lambda s: s["noise"].update(entropy="-5"), r"`entropy`"),
        ("xnes", lambda s: s.update(popsize=1e6), r"`popsize` must be an integer <= 262144"),
        ("xnes", lambda s: s["algo"].update(sigma=1e308), r"`sigma` must be a number in"),
        (
            "xnes",
            lambda s: s["algo"].update(B=np.diag([1e150, 1e-150, 1.0]).tolist()),
            r"`B` must have a condition number",
        ),
        ("openes", lambda s: s["algo"]["optimizer"].update(t=10**400), r"`t` must be an integer"),
        ("openes", lambda s: s["algo"]["optimizer"].update(v=[-1.0] * 3), r"`v` \(Adam"),
    ],
)
def test_from_state_rejects_hostile_fields(name: str, corrupt: Any, match: str) -> None:
    state = _state(name)
    corrupt(state)
    with pytest.raises(ValueError, match=r"`state` is (malformed: .*)?" + match):
        Strategy.from_state(state)


def test_ipop_rejects_an_absurd_popsize_factor() -> None:
    with pytest.raises(ValueError, match=r"`popsize_factor` must be a number in \[1, 100\]"):
        IPOP("xnes", np.zeros(2), 0.5, popsize_factor=1e300)


# ---------------------------------------------------------------- 5. values
@pytest.mark.parametrize("bad", [None, True, "1.5", 1.5 + 0j])
def test_tell_accepts_only_real_fitness(bad: object) -> None:
    es = XNES(np.zeros(2), 0.5, rng=0)
    X = es.ask()
    before = frozen(es)
    with pytest.raises(TypeError, match=r"`fitness` must be a sequence of \d+ (real )?numbers"):
        es.tell(X, [bad] + [1.0] * (len(X) - 1))
    assert frozen(es) == before


@pytest.mark.parametrize("bad", [None, True, False, "1.5", 1.5 + 0j, np.array([1.0 + 1j])])
def test_serial_evaluation_accepts_only_real_values(bad: object) -> None:
    with pytest.raises(TypeError, match=r"`fun` must return a real number, but 'f' returned"):
        as_value(bad, type("f", (), {"__name__": "f"}))
    es = OpenES(np.zeros(2), 0.5, rng=0, maxiter=2)
    with pytest.raises(TypeError, match=r"`fun` must return a real number"):
        es.optimize(lambda x: bad)


@pytest.mark.parametrize(
    "good", [1, 1.5, np.float32(1.5), np.int64(3), np.array(2.5), np.array([2.5])]
)
def test_real_values_are_accepted(good: object) -> None:
    assert math.isfinite(as_value(good, "f"))


@pytest.mark.parametrize(
    ("x0", "match"),
    [
        (np.array([1.0 + 2j, 0.0]), r"`x0` must be a 1-d array of numbers"),
        ([True, False], r"`x0` must be a 1-d array of numbers"),
        (["1.0", "2.0"], r"`x0` must be a 1-d array of numbers"),
    ],
)
def test_constructors_reject_non_real_x0(x0: object, match: str) -> None:
    for name in NAMES:
        with pytest.raises(TypeError, match=match):
            resolve_strategy(name)(x0, 0.5, rng=0)


def test_tell_rejects_complex_solutions() -> None:
    es = XNES(np.zeros(2), 0.5, rng=0)
    X = es.ask()
    with pytest.raises(TypeError, match=r"`solutions` must be the real array .* complex"):
        es.tell(X + 0j, [sphere(x) for x in X])
    assert es.generation == 0


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda X: X.astype(str), "string"),  # numpy parsed the digits back: it was accepted
        (lambda X: X.astype(str).astype(object), "non-number"),
        (lambda X: X.astype(bytes).tolist(), "string"),
    ],
)
def test_tell_rejects_solutions_given_as_text(make: Any, what: str) -> None:
    es = XNES(np.zeros(2), 0.5, rng=0)
    X = es.ask()
    f = [sphere(x) for x in X]
    with pytest.raises(TypeError, match=rf"`solutions` must be the real array .* {what} values"):
        es.tell(make(X), f)
    assert es.generation == 0
    es.tell(X.astype(object), f)  # Python floats in an object array are real numbers
    assert es.generation == 1


def test_a_huge_number_of_extra_samples_is_a_value_error_naming_it() -> None:
    # numpy's "Maximum allowed dimension exceeded" (or a MemoryError) named no argument
    es = OpenES(np.zeros(3), 0.5, rng=0)
    with pytest.raises(
        ValueError, match=r"`n` asks for n \* dim = 3000000000000000000000000000000"
    ):
        es.extra_samples(10**30)
    assert es.extra_samples(2).shape == (2, 3)  # type: ignore[union-attr]


@pytest.mark.parametrize("strategy", ["xnes", "snes", "openes"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("n", [1, 4, 5])
def test_extra_samples_are_the_rows_a_larger_population_adds(
    strategy: str, mirrored: bool, n: int
) -> None:
    # With mirrored sampling they were independent draws, which no larger mirrored population
    # holds: the Optuna sampler could not tell them, and its record listed them as told.
    from nes_asktell import resolve_strategy

    cls = resolve_strategy(strategy)
    es = cls(np.arange(3.0), 0.5, popsize=6, rng=7, mirrored=mirrored)  # type: ignore[call-arg]
    X = es.ask().copy()
    E = es.extra_samples(n)
    assert E is not None
    assert E.shape == (n, 3)
    grow = n + n % 2 if mirrored else n
    state = dict(es.state_dict())
    state.update(popsize=6 + grow, asked=False)
    Xb = cls.from_state(state).ask()
    if mirrored:  # the larger population is [+ rows, - rows]; the extras come in pairs
        m, k = 3, grow // 2
        np.testing.assert_array_equal(Xb[:m], X[:m])
        np.testing.assert_array_equal(Xb[m : m + k][: len(E[0::2])], E[0::2])
        np.testing.assert_array_equal(Xb[m + k : 2 * m + k], X[m:])
        np.testing.assert_array_equal(Xb[2 * m + k :][: len(E[1::2])], E[1::2])
        j = len(E[1::2])
        np.testing.assert_allclose(E[0::2][:j] + E[1::2], np.tile(2 * es.mean, (j, 1)))
    else:
        np.testing.assert_array_equal(Xb, np.vstack([X, E]))


def test_a_huge_popsize_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"`popsize` must be an integer <= 262144"):
        XNES(np.zeros(2), 0.5, popsize=10**12)
    with pytest.raises(ValueError, match=r"dim\*\*2"):
        XNES(np.zeros(10**5), 0.5)


# ---------------------------------------------------------------- 6. the batch is ours
def test_an_edited_batch_cannot_make_a_never_sampled_row_best() -> None:
    es = XNES(np.zeros(2), 0.5, rng=0)
    X = es.ask()
    with pytest.raises(ValueError, match="WRITEABLE"):
        X.flags.writeable = True
    Y = X.copy()
    Y[0] = [123.0, 456.0]  # a row never sampled
    with pytest.raises(ValueError, match=r"`solutions` row 0 is not one of the candidates"):
        es.tell(Y, [-1e9] + [1.0] * (len(Y) - 1))
    es.tell(X, [sphere(x) for x in X])
    assert not np.array_equal(es.best[0], [123.0, 456.0])


@pytest.mark.parametrize("how", ["fresh", "pickled"])
def test_no_base_of_the_batch_can_be_made_writeable(how: str) -> None:
    # X.base was the strategy's own copy, which owned its data: made writeable and edited, it
    # made tell accept a row never sampled, outside the bounds, as the best point.
    es = XNES(np.zeros(2), 1.0, rng=0, bounds=[(-1, 1), (-1, 1)])
    es.ask()
    if how == "pickled":
        es = pickle.loads(pickle.dumps(es))
    X = es.ask()
    for arr in (X, X.base, X[1:], X[1:].base, es.ask()):
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.flags.writeable = True
    es.tell(X, [sphere(x) for x in X])
    assert np.all(np.abs(es.best[0]) <= 1.0)


# ---------------------------------------------------------------- 9. per-coordinate sigma0
@pytest.mark.parametrize("name", ["xnes", "dxnesic", "crfmnes"])
@pytest.mark.parametrize("end", [1e-100, 1e100])
def test_a_per_coordinate_sigma0_at_the_ends_of_the_range_gives_a_state_that_loads(
    name: str, end: float
) -> None:
    # Bug: the global step size is the geometric mean of a per-coordinate sigma0, which
    # exp(mean(log)) rounded just outside the range when every entry sat at one of its ends
    # (9.99999999999989e-101 for [1e-100, 1e-100]): the constructor took the run, but its own
    # state_dict() did not load ("`sigma` must be a number in [1e-100, 1e+100]").
    es = resolve_strategy(name)(np.zeros(2), [end, end], rng=0)
    assert 1e-100 <= es.sigma <= 1e100
    X = es.ask()
    loaded = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
    assert np.array_equal(loaded.ask(), X)


def test_xnes_per_coordinate_sigma0() -> None:
    s0 = np.array([1.0, 4.0, 0.25])
    es = XNES(np.zeros(3), s0, rng=0)
    assert es.sigma == pytest.approx(1.0)  # geometric mean
    np.testing.assert_allclose(es.B, np.diag(s0), rtol=1e-15)
    assert np.linalg.det(es.B) == pytest.approx(1.0, rel=1e-15)
    copy_ = XNES.from_state(json.loads(json.dumps(es.state_dict())))
    assert np.array_equal(copy_.ask(), es.ask())


def test_openes_per_coordinate_sigma0() -> None:
    s0 = np.array([1.0, 0.01])
    es = OpenES(np.zeros(2), s0, rng=0)
    X = es.ask()
    unit = OpenES(np.zeros(2), 1.0, rng=0).ask()  # the same noise, scaled by 1
    assert np.array_equal(X, unit * s0)
    assert np.array_equal(es.sigma, s0)
    copy_ = OpenES.from_state(json.loads(json.dumps(es.state_dict())))
    assert np.array_equal(copy_.ask(), X)


def test_strategy_from_state_dispatches_to_the_named_class() -> None:
    for name in NAMES:
        state = _state(name)
        assert type(Strategy.from_state(copy.deepcopy(state))).name == name


# ---------------------------------------------------------------- 8. budgets
def test_optimize_accepts_an_infinite_maxfev() -> None:
    es = XNES(np.zeros(2), 0.5, rng=0)
    res = es.optimize(sphere, maxfev=float("inf"), maxiter=3)
    assert res.nit == 3
    assert res.status == 2


def test_minimize_with_maxiter_zero_returns_like_scipy() -> None:
    from scipy.optimize import minimize

    from nes_asktell import nes

    x0 = np.full(3, 0.5)
    res = minimize(sphere, x0, method=nes, options={"maxiter": 0, "rng": 0})
    ref = minimize(sphere, x0, method="Nelder-Mead", options={"maxiter": 0})
    assert (res.status, res.nit) == (ref.status, 0)
    assert res.fun == sphere(x0)
    assert res.nfev == 1
    assert np.array_equal(res.x, x0)


# ---------------------------------------------------------------- 7. a mean inside the box
def test_minimize_with_bounds_ends_with_the_mean_inside_the_box() -> None:
    from scipy.optimize import Bounds, minimize, rosen

    from nes_asktell import nes

    res = minimize(rosen, np.full(10, -1.5), method=nes, bounds=Bounds(-2, 2), options={"rng": 0})
    assert np.all(res.mean >= -2.0)
    assert np.all(res.mean <= 2.0)


@pytest.mark.parametrize("name", NAMES)
def test_the_mean_stays_in_the_box_every_generation(name: str) -> None:
    es = resolve_strategy(name)(np.full(3, 0.9), 0.5, bounds=(0.5, 1.0), rng=4)
    for _ in range(60):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])  # the optimum (0) lies outside: pushed at the wall
        assert np.all((es.mean >= 0.5) & (es.mean <= 1.0))


# ---------------------------------------------------------------- 8. SPEC 7
@pytest.mark.parametrize("name", NAMES)
def test_an_int_a_seed_sequence_and_a_generator_give_the_same_run(name: str) -> None:
    cls = resolve_strategy(name)
    runs = [
        cls(np.full(3, 0.5), 0.3, rng=rng)
        for rng in (42, np.random.SeedSequence(42), np.random.default_rng(42))
    ]
    for _ in range(5):
        batches = [es.ask() for es in runs]
        for es, X in zip(runs, batches, strict=True):
            assert np.array_equal(X, batches[0])
            es.tell(X, [sphere(x) for x in X])
    assert all(es.batch_keys(es.ask()) is not None or name == "xnes" for es in runs)


def test_ipop_run_zero_is_the_strategy_for_every_rng_kind() -> None:
    ref = XNES(np.full(2, 0.5), 0.3, rng=42).ask()
    for rng in (42, np.random.default_rng(42)):
        assert np.array_equal(IPOP("xnes", np.full(2, 0.5), 0.3, rng=rng).ask(), ref)


def test_a_python_int_beyond_the_float_range_is_a_fitness_of_inf() -> None:
    es = XNES(np.zeros(3), 0.5, rng=0)
    X = es.ask()
    es.tell(X, [10**400] + [sphere(x) for x in X[1:]])  # ranks worst, as inf does
    twin = XNES(np.zeros(3), 0.5, rng=0)
    Y = twin.ask()
    twin.tell(Y, [math.inf] + [sphere(y) for y in Y[1:]])
    assert frozen(es) == frozen(twin)


# ---------------------------------------------------------------- 10. long hostile runs
def test_a_range_of_fitness_values_beyond_the_float_range_warns_nothing() -> None:
    # Values +-1.8e308 a generation: their range (np.ptp) overflowed with a RuntimeWarning
    # inside tell() (OpenES, popsize 3); the range is inf, which is not flat
    top = np.finfo(np.float64).max
    for name in strategy_names():
        es = resolve_strategy(name)(np.zeros(2), 0.5, 3, rng=0, mirrored=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            for _ in range(3):
                X = es.ask()
                es.tell(X, np.where(X[:, 0] > 0, top, -top))
                es.stop()
        assert es.generation == 3


def test_xnes_state_after_a_step_clamped_at_the_sigma_floor_loads() -> None:
    # Raw fitness on a slope: the log-step of sigma reached -592.6 at generation 32 (sigma
    # clamped at its floor), and from_state rejected the state_dict() of the live strategy
    # ("`last_step` must be at most 460.517 in absolute value")
    es = XNES(
        np.full(1, 0.2), 0.3, 2, bounds=(-np.inf, 2.0), rng=7, dtype="float32", shaping="raw"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        for _ in range(33):  # through the state of generation 32
            X = es.ask()
            twin = XNES.from_state(json.loads(json.dumps(es.state_dict())))
            assert np.array_equal(twin.ask(), X)
            es.tell(X, X[:, 0].astype(np.float64))
