"""The scipy adapter: ``minimize(fun, x0, method=nes)`` behaves like one of scipy's own methods.

Convergence checks use fixed seeds: a seeded run is deterministic, so each is an exact regression
check of that run, not a statistical claim.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.optimize import (
    Bounds,
    NonlinearConstraint,
    OptimizeResult,
    OptimizeWarning,
    basinhopping,
    differential_evolution,
    minimize,
    rosen,
)

import nes_asktell
from nes_asktell import BIPOP, XNES, NESWarning, OpenES, nes

SHIFT = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
#: the fixed seeds of the convergence checks (each seeded run is deterministic)
SEEDS = [0, 1, 2, 3, 4]


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - SHIFT[: x.size]) ** 2))


def popsize_of(d: int) -> int:
    """The default population of the default strategy (XNES) in d dimensions."""
    return XNES(np.zeros(d), 1.0).popsize


class Recorder:
    """An objective that records every point it is called with."""

    def __init__(self, f=sphere):
        self.f = f
        self.points: list[np.ndarray] = []

    def __call__(self, x, *args):
        self.points.append(np.array(x, copy=True))
        return self.f(x, *args)

    @property
    def calls(self) -> int:
        return len(self.points)


# ------------------------------------------------------------------ export and signature
def test_exported_lazily_and_callable_by_scipy():
    assert nes_asktell.nes is nes
    assert "nes" in nes_asktell.__all__
    # scipy calls a callable method with these keywords; all must be accepted.
    params = inspect.signature(nes).parameters
    for name in ("args", "jac", "hess", "hessp", "bounds", "constraints", "callback", "tol"):
        assert name in params


def test_minimize_returns_optimize_result_with_scipy_fields():
    f = Recorder()
    res = minimize(f, np.zeros(3), method=nes, options={"rng": 0})
    assert isinstance(res, OptimizeResult)
    assert res.success is True
    assert res.status == 0
    assert res.message == "Optimization terminated successfully."
    assert res.nfev == f.calls
    assert res.fun == sphere(res.x)
    assert res.fun == min(sphere(p) for p in f.points)
    assert res.nit >= 1
    assert res.x.shape == (3,)
    assert res.mean.shape == (3,)


# ------------------------------------------------------------------ x0
def test_x0_never_mutated_and_list_accepted():
    x0 = np.array([0.3, -0.2, 0.1])
    keep = x0.copy()
    res = minimize(sphere, x0, method=nes, options={"rng": 1, "maxfev": 200})
    np.testing.assert_array_equal(x0, keep)
    assert res.x is not x0
    ro = keep.copy()
    ro.flags.writeable = False
    res_ro = minimize(sphere, ro, method=nes, options={"rng": 1, "maxfev": 200})
    res_list = minimize(sphere, [0.3, -0.2, 0.1], method=nes, options={"rng": 1, "maxfev": 200})
    np.testing.assert_array_equal(res_ro.x, res.x)
    np.testing.assert_array_equal(res_list.x, res.x)
    # called directly too, with a list and a scalar
    assert nes(sphere, [0.3, -0.2, 0.1], rng=1, maxfev=200).fun == res.fun
    assert nes(sphere, 0.5, rng=1, maxfev=100).x.shape == (1,)


def test_x0_outside_bounds_warns_and_is_clipped():
    f = Recorder()
    with pytest.warns(OptimizeWarning, match="not within the specified bounds"):
        res = minimize(f, [5.0, -5.0], method=nes, bounds=[(0, 1), (-1, 0)], options={"rng": 0})
    pts = np.array(f.points)
    assert np.all(pts[:, 0] >= 0)
    assert np.all(pts[:, 0] <= 1)
    assert np.all(pts[:, 1] >= -1)
    assert np.all(pts[:, 1] <= 0)
    np.testing.assert_allclose(res.x, [1.0, -1.0], atol=1e-6)  # the constrained optimum


def test_x0_inside_bounds_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minimize(sphere, [0.5, 0.5], method=nes, bounds=[(0, 1), (0, 1)], options={"rng": 0})


# ------------------------------------------------------------------ bounds
BOUND_FORMS = {
    "pairs": ([(-1.0, 2.0), (None, -2.5), (0.0, None)], [-1.0, -np.inf, 0.0], [2.0, -2.5, np.inf]),
    "pairs_array": (np.array([[-1.0, 2.0], [-3.0, -2.5], [0.0, 1.0]]), [-1, -3, 0], [2, -2.5, 1]),
    "Bounds_scalar": (Bounds(-0.5, 0.25), [-0.5] * 3, [0.25] * 3),
    "Bounds_arrays": (
        Bounds([0.0, -np.inf, 1.0], [0.5, 0.0, np.inf]),
        [0, -np.inf, 1],
        [0.5, 0, np.inf],
    ),
    "Bounds_mixed": (Bounds(0.0, [1.0, 2.0, 3.0]), [0, 0, 0], [1, 2, 3]),
    # 0-d arrays as scalar sides (np.asarray of a scalar): "iteration over a 0-d array"
    "scalar_arrays": ((np.array(-0.5), np.array(0.25)), [-0.5] * 3, [0.25] * 3),
    "scalar_array_and_list": ((np.array(-0.5), [0.5, None, 2.0]), [-0.5] * 3, [0.5, np.inf, 2]),
}


@pytest.mark.parametrize("form", list(BOUND_FORMS))
def test_every_evaluated_point_respects_each_bounds_form(form):
    bounds, lo, hi = BOUND_FORMS[form]
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    f = Recorder()
    x0 = np.clip(np.zeros(3), lo, hi)
    res = minimize(f, x0, method=nes, bounds=bounds, options={"rng": 2, "maxfev": 600})
    pts = np.array(f.points)
    assert pts.shape == (res.nfev, 3)
    assert np.all(pts >= lo)
    assert np.all(pts <= hi)
    assert np.all(res.x >= lo)
    assert np.all(res.x <= hi)
    # the box-constrained optimum of the shifted sphere is the clipped shift
    np.testing.assert_allclose(res.x, np.clip(SHIFT[:3], lo, hi), atol=1e-2)


@pytest.mark.parametrize(
    "iterator",
    [
        lambda: zip([-1.0, None, 0.0], [2.0, -2.5, None], strict=True),
        lambda: ((lo, hi) for lo, hi in [(-1.0, 2.0), (None, -2.5), (0.0, None)]),
    ],
    ids=["zip", "generator"],
)
def test_bounds_as_an_iterator_of_pairs_as_scipy_methods_take_them(iterator):
    # every bounded method of scipy's reads ``bounds=zip(lb, ub)`` (or a generator of
    # pairs); nes refused it with a TypeError
    options = {"rng": 2, "maxfev": 300}
    pairs = [(-1.0, 2.0), (None, -2.5), (0.0, None)]
    x0 = np.array([0.0, -3.0, 0.0])
    f = Recorder()
    res = minimize(f, x0, method=nes, bounds=iterator(), options=options)
    ref = minimize(sphere, x0, method=nes, bounds=pairs, options=options)
    np.testing.assert_array_equal(res.x, ref.x)
    pts = np.array(f.points)
    assert np.all(pts >= [-1.0, -np.inf, 0.0])
    assert np.all(pts <= [2.0, -2.5, np.inf])


def test_no_bounds_forms():
    a = minimize(sphere, np.zeros(2), method=nes, options={"rng": 3, "maxfev": 300})
    b = minimize(sphere, np.zeros(2), method=nes, bounds=None, options={"rng": 3, "maxfev": 300})
    c = minimize(
        sphere,
        np.zeros(2),
        method=nes,
        bounds=[(None, None)] * 2,
        options={"rng": 3, "maxfev": 300},
    )
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)


@pytest.mark.parametrize(
    ("bounds", "exc", "match"),
    [
        ([(0, 1)], ValueError, r"`bounds` must be \(lower, upper\) or 2 \(low, high\) pairs"),
        ([(0, 1, 2), (0, 1)], ValueError, r"`bounds` must hold 2 lower and 2 upper numbers"),
        ([(1, 0), (0, 1)], ValueError, r"`bounds` must have lower <= upper .* lower=1.0"),
        ([(0, np.nan), (0, 1)], ValueError, r"`bounds` must not contain NaN"),
        (Bounds([0, 0, 0], [1, 1, 1]), ValueError, r"`bounds` must hold 2 lower and 2 upper"),
        ("box", TypeError, r"`bounds` must be None, \(lower, upper\), a sequence of \(low, high"),
        (3.0, TypeError, r"`bounds` must be None, .* but got 3.0"),
    ],
)
def test_bad_bounds_rejected_before_any_evaluation(bounds, exc, match):
    f = Recorder()
    with pytest.raises(exc, match=match):
        minimize(f, np.zeros(2), method=nes, bounds=bounds)
    assert f.calls == 0


# ------------------------------------------------------------------ constraints, jac, hess
def test_constraints_rejected_clearly():
    f = Recorder()
    con = NonlinearConstraint(lambda x: x[0], 0, 1)
    with pytest.raises(ValueError, match=r"`constraints` must be empty: method nes handles"):
        minimize(f, np.zeros(2), method=nes, constraints=[con])
    with pytest.raises(ValueError, match=r"`constraints` must be empty.*but got \{"):
        minimize(f, np.zeros(2), method=nes, constraints={"type": "ineq", "fun": lambda x: x})
    assert f.calls == 0
    for empty in ((), [], None):
        nes(sphere, np.zeros(2), constraints=empty, rng=0, maxfev=50)


@pytest.mark.parametrize("empty", [(), [], None, {}, np.array([])], ids=repr)
def test_empty_constraints_of_every_kind_are_no_constraints(empty):
    # scipy's minimize takes any empty container as no constraints (np.any(constraints) is
    # False); nes refused {} and np.array([]) with "`constraints` must be empty ..., but got {}."
    options = {"rng": 0, "maxfev": 50}
    res = minimize(sphere, np.zeros(2), method=nes, constraints=empty, options=options)
    ref = minimize(sphere, np.zeros(2), method=nes, options=options)
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.nfev == ref.nfev == 50


@pytest.mark.parametrize("name", ["jac", "hess", "hessp"])
def test_derivatives_ignored_with_a_warning(name):
    kw = {name: lambda x, *a: np.zeros_like(x)}
    with pytest.warns(RuntimeWarning, match=f"`{name}` is ignored"):
        res = minimize(sphere, np.zeros(2), method=nes, options={"rng": 0, "maxfev": 100}, **kw)
    ref = minimize(sphere, np.zeros(2), method=nes, options={"rng": 0, "maxfev": 100})
    np.testing.assert_array_equal(res.x, ref.x)


def test_jac_true_still_works():
    # with jac=True scipy wraps fun so that calls return the value only
    def fg(x):
        return sphere(x), 2 * (x - SHIFT[:2])

    with pytest.warns(RuntimeWarning, match="`jac` is ignored"):
        res = minimize(fg, np.zeros(2), jac=True, method=nes, options={"rng": 0})
    assert res.fun < 1e-10


# ------------------------------------------------------------------ options
def test_unknown_options_warn_with_optimize_warning():
    with pytest.warns(OptimizeWarning, match="Unknown solver options: maxfun, xatol"):
        res = minimize(
            sphere, np.zeros(2), method=nes, options={"maxfun": 3, "xatol": 1, "maxfev": 60}
        )
    assert res.nfev == 60  # the unknown options were ignored


def test_warnings_point_at_the_callers_line():
    # as scipy's own methods: the warning names the line that called minimize
    with pytest.warns(OptimizeWarning) as record:
        minimize(sphere, np.zeros(2), method=nes, options={"foo": 1, "maxfev": 10})
    assert record[0].filename == __file__
    with pytest.warns(OptimizeWarning, match="not within the specified bounds") as record:
        minimize(sphere, [2.0], method=nes, bounds=[(0, 1)], options={"maxfev": 10})
    assert record[0].filename == __file__
    with pytest.warns(RuntimeWarning, match="`jac` is ignored") as record:
        minimize(sphere, [0.0], jac=np.cos, method=nes, options={"maxfev": 10})
    assert record[0].filename == __file__


def test_strategy_by_name_and_class():
    for strategy in ("xnes", "snes", "openes", "XNES", OpenES, nes_asktell.SNES):
        res = minimize(
            sphere, np.zeros(2), method=nes, options={"strategy": strategy, "rng": 0, "maxfev": 60}
        )
        assert res.nfev == 60
    with pytest.raises(
        ValueError,
        match=r"`strategy` must be one of \['crfmnes', 'dxnesic', 'openes', 'snes', .*'xnes'\] "
        r"or a Strategy "
        r"subclass, but got 'cma'",
    ):
        minimize(sphere, np.zeros(2), method=nes, options={"strategy": "cma"})
    with pytest.raises(TypeError, match=r"`strategy` must be one of .* but got <class 'int'>"):
        minimize(sphere, np.zeros(2), method=nes, options={"strategy": int})


def test_sigma0_and_popsize_reach_the_strategy():
    # OpenES keeps sigma fixed, so the result's sigma is sigma0.
    res = nes(sphere, np.zeros(2), strategy="openes", sigma0=0.125, popsize=10, maxiter=1, rng=0)
    assert res.sigma == 0.125
    assert res.nfev == 10
    with pytest.raises(ValueError, match=r"`sigma0` must be a positive finite number, but got -1"):
        nes(sphere, np.zeros(2), sigma0=-1.0)
    with pytest.raises(ValueError, match=r"`popsize` must be an integer >= 2, but got 1"):
        nes(sphere, np.zeros(2), popsize=1)


def test_default_sigma0_from_bounds_and_x0():
    def sigma_of(x0, bounds, strategy="openes"):
        return nes(sphere, x0, bounds=bounds, strategy=strategy, maxiter=1, rng=0).sigma

    # no bounds: max(1, |x0_i|) / 2, median over coordinates
    assert sigma_of(np.zeros(2), None) == 0.5
    assert sigma_of(np.array([-4.0, 0.0, 8.0]), None) == 2.0
    # both bounds finite: a quarter of the width
    assert sigma_of(np.zeros(3), [(-1, 1), (-2, 2), (-4, 4)]) == 1.0
    # mixed: the unbounded coordinate uses x0; a fixed coordinate (width 0) is skipped
    assert sigma_of(np.zeros(3), [(0, 0), (-1, 1), (None, 0)]) == 0.5
    # SNES gets the scales per coordinate
    sigma = sigma_of(np.zeros(3), [(-1, 1), (-2, 2), (None, None)], strategy="snes")
    assert isinstance(sigma, np.ndarray)
    assert sigma.shape == (3,)


def test_default_sigma0_of_a_huge_or_tiny_box_is_a_step_size_the_strategy_takes():
    # A quarter of a box 2e200 wide (5e199) or 1e-120 narrow was passed on as sigma0 and the
    # call failed with "`sigma0` must be a number in [1e-100, 1e+100], but got 5e+199", about
    # an argument the user never gave. A box that wide counts as no bound, one that narrow as
    # a fixed coordinate, for the default.
    def sigma_of(x0, bounds, strategy="openes"):
        return nes(sphere, x0, bounds=bounds, strategy=strategy, maxiter=0, rng=0).sigma

    assert sigma_of(np.zeros(2), [(-1e200, 1e200)] * 2) == 0.5
    assert sigma_of(np.array([0.0, 8.0]), [(-1e200, 1e200), (None, None)]) == 2.25
    assert sigma_of(np.zeros(2), [(0, 1e-120), (-2, 2)]) == 1.0
    assert sigma_of(np.zeros(2), [(0, 1e-120)] * 2) == 1.0
    np.testing.assert_array_equal(
        sigma_of(np.zeros(2), [(0, 1e-120), (-1e200, 1e200)], strategy="snes"), [0.5, 0.5]
    )
    res = minimize(
        sphere,
        np.zeros(2),
        method=nes,
        bounds=[(-1e200, 1e200)] * 2,
        options={"rng": 0, "maxfev": 300},
    )
    assert res.nfev == 300
    assert res.fun < 1.0  # a run, not a refusal: sphere(x0) = 5, and 0 at the optimum
    # an x0 that no step size can move: the message asks for sigma0
    with pytest.raises(
        ValueError, match=r"`x0` is too large for a default `sigma0` \(x0\[1\] = 1e\+250"
    ):
        nes(sphere, np.array([0.0, 1e250]))


def test_strategy_options_pass_through():
    # a bad value reaches the strategy's own validation
    with pytest.raises(ValueError, match=r"`learning_rate` must be a positive finite number"):
        nes(sphere, np.zeros(2), strategy="openes", learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"`eta_sigma` must be a positive finite number"):
        nes(sphere, np.zeros(2), strategy="xnes", eta_sigma=-1.0)
    # an option of another strategy is unknown to this one
    with pytest.warns(OptimizeWarning, match="Unknown solver options: learning_rate"):
        nes(sphere, np.zeros(2), strategy="xnes", learning_rate=0.1, maxfev=30)
    # stopping criteria pass through: ftarget ends the run as converged
    f = Recorder()
    res = minimize(f, np.zeros(2), method=nes, options={"ftarget": 1e-3, "rng": 0})
    assert res.status == 0
    assert res.fun <= 1e-3
    assert res.nfev == f.calls
    full = minimize(sphere, np.zeros(2), method=nes, options={"rng": 0})
    assert full.nfev > res.nfev


@pytest.mark.parametrize("maxfev", [1, 7, 60, 61, 100.0, 99.9])
def test_maxfev_exact(maxfev):
    f = Recorder()
    res = minimize(f, np.zeros(3), method=nes, options={"maxfev": maxfev, "rng": 0})
    assert res.nfev == f.calls == math.floor(maxfev)
    assert res.status == 1
    assert res.success is False
    assert res.message == "Maximum number of function evaluations has been exceeded."


def test_maxiter_and_unlimited_budgets():
    f = Recorder()
    res = minimize(f, np.zeros(3), method=nes, options={"maxiter": 4, "rng": 0})
    assert res.nit == 4
    assert res.nfev == f.calls == 4 * popsize_of(3)
    assert res.status == 2
    assert res.message == "Maximum number of iterations has been exceeded."
    inf = minimize(sphere, np.zeros(3), method=nes, options={"maxfev": np.inf, "rng": 0})
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 0})
    assert inf.status == 0
    assert inf.nfev == ref.nfev
    # an int beyond the float range is no limit too (float() of it raised OverflowError)
    huge = minimize(sphere, np.zeros(3), method=nes, options={"maxfev": 10**400, "rng": 0})
    assert huge.status == 0
    assert huge.nfev == ref.nfev


def test_tol():
    # the default: the strategy's tolfun = tolx = 1e-12
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 0})
    loose = minimize(sphere, np.zeros(3), method=nes, tol=1e-3, options={"rng": 0})
    assert loose.status == 0
    assert loose.nfev < ref.nfev
    # tol=0 disables both: the run goes on until the budget
    budget = ref.nfev + 50
    off = minimize(sphere, np.zeros(3), method=nes, tol=0, options={"rng": 0, "maxfev": budget})
    assert off.status == 1
    assert off.nfev == budget
    # an explicit tolfun wins over tol
    mixed = nes(sphere, np.zeros(3), tol=0, tolx=1e-3, rng=0)
    assert mixed.status == 0


def test_rng_reproducible():
    a = minimize(sphere, np.zeros(4), method=nes, options={"rng": 7, "maxfev": 300})
    b = minimize(sphere, np.zeros(4), method=nes, options={"rng": 7, "maxfev": 300})
    c = minimize(sphere, np.zeros(4), method=nes, options={"rng": 8, "maxfev": 300})
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun
    assert not np.array_equal(a.x, c.x)
    g = minimize(
        sphere, np.zeros(4), method=nes, options={"rng": np.random.default_rng(7), "maxfev": 300}
    )
    assert g.nfev == 300


def test_args_passed_through():
    def f(x, a, b):
        return float(np.sum((x - a) ** 2) + b)

    res = minimize(
        f, np.zeros(2), args=(np.array([1.0, 2.0]), 5.0), method=nes, options={"rng": 0}
    )
    np.testing.assert_allclose(res.x, [1.0, 2.0], atol=1e-5)
    assert abs(res.fun - 5.0) < 1e-9

    def g(x, a):
        return float(np.sum((x - a) ** 2))

    # a non-tuple `args` is wrapped in a tuple, as scipy does
    one = nes(g, np.zeros(2), args=3.0, rng=0)
    np.testing.assert_allclose(one.x, [3.0, 3.0], atol=1e-5)


def test_disp_prints(capsys):
    nes(sphere, np.zeros(2), disp=True, rng=0, maxiter=3)
    out = capsys.readouterr().out
    assert "gen" in out
    assert "nfev" in out
    nes(sphere, np.zeros(2), rng=0, maxiter=3)
    assert capsys.readouterr().out == ""
    nes(sphere, np.zeros(2), disp=2, rng=0, maxiter=3)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " gen " in ln]
    # level 2: every generation once, the last one's line with the stops
    assert [ln.split()[2] for ln in lines] == ["1", "2", "3"]
    assert lines[-1].endswith("stops: maxiter")


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"maxfev": 0}, ValueError, r"`maxfev` must be a number >= 1 or None, but got 0"),
        ({"maxfev": np.nan}, ValueError, r"`maxfev` must be a number >= 1 or None, but got nan"),
        (
            {"maxiter": -(10**400)},
            ValueError,
            r"`maxiter` must be a number >= 0 or None, but got -1000000",
        ),
        ({"maxiter": "10"}, TypeError, r"`maxiter` must be a number >= 0 or None, but got '10'"),
        ({"maxiter": True}, TypeError, r"`maxiter` must be a number >= 0 or None, but got True"),
        ({"tol": -1.0}, ValueError, r"`tol` must be a non-negative finite number, but got -1.0"),
        # tol=0 is allowed: the TypeError said "a positive finite number"
        (
            {"tol": "1e-3"},
            TypeError,
            r"`tol` must be a non-negative finite number, but got '1e-3'",
        ),
        ({"vectorized": 1}, TypeError, r"`vectorized` must be True or False, but got 1"),
        ({"disp": "yes"}, TypeError, r"`disp` must be 0, 1, 2, True or False, but got 'yes'"),
        ({"disp": 5}, ValueError, r"`disp` must be 0, 1, 2, True or False, but got 5"),
        ({"restarts": -1}, ValueError, r"`restarts` must be an integer >= 0, but got -1"),
        (
            {"restarts": "bipop"},
            TypeError,
            r"`restarts` must be an integer, the number of restarts, but got 'bipop'; the scheme "
            r"is chosen by `restart_strategy`",
        ),
        (
            {"restart_strategy": "cma"},
            ValueError,
            r"`restart_strategy` must be one of 'ipop', 'bipop', but got 'cma'",
        ),
        (
            {"restarts": 2, "restart_strategy": None},
            TypeError,
            r"`restart_strategy` must be a string, one of 'ipop', 'bipop', but got None",
        ),
        ({"callback": 3}, TypeError, r"`callback` must be callable or None, but got 3"),
        ({"workers": "many"}, TypeError, r"`workers` must be"),
        ({"rng": "seed"}, TypeError, r"`rng`"),
    ],
)
def test_bad_options_rejected_before_any_evaluation(kw, exc, match):
    f = Recorder()
    with pytest.raises(exc, match=match):
        nes(f, np.zeros(2), **kw)
    assert f.calls == 0


@pytest.mark.parametrize(
    ("workers", "exc"), [("many", TypeError), (0, ValueError), (-2, ValueError)]
)
@pytest.mark.parametrize("restarts", [0, 2])
def test_bad_workers_draw_nothing_from_a_generator_rng(workers, exc, restarts):
    # `workers` was checked when the run began, after the strategy had drawn its entropy from
    # the Generator: the call raised with `rng` advanced
    gen = np.random.default_rng(3)
    state = gen.bit_generator.state
    f = Recorder()
    with pytest.raises(exc, match=r"`workers` must be"):
        nes(f, np.zeros(2), workers=workers, rng=gen, restarts=restarts)
    assert gen.bit_generator.state == state
    assert f.calls == 0


def test_fun_must_return_a_number():
    def two(x):
        return np.ones(2)

    with pytest.raises(TypeError, match=r"`fun` must return a real number, but 'two' returned"):
        nes(two, np.zeros(2), rng=0)


class _LibraryScalar:
    """A value of another array library (a torch or JAX scalar): it converts by ``__array__``."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda y: [y],
        lambda y: (y,),
        lambda y: np.array([[y]]),
        lambda y: [[y]],
        lambda y: ([y],),
        _LibraryScalar,
        lambda y: _LibraryScalar([y]),
    ],
    ids=[
        "list",
        "tuple",
        "array 1x1",
        "list 1x1",
        "tuple of list",
        "__array__",
        "__array__ of one",
    ],
)
@pytest.mark.parametrize("threads", [False, True])
def test_fun_may_return_what_holds_one_number_as_scipy_reads_it(wrap, threads):
    """scipy's methods read what `fun` returns by ``np.asarray(y).item()``: the same values
    reach the same result here, serially and in tasks (they were refused with TypeError)."""
    with ThreadPoolExecutor(2) as pool:
        workers = pool if threads else None
        wrapped = nes(lambda x: wrap(sphere(x)), np.ones(3), rng=0, maxiter=30, workers=workers)
    plain = nes(sphere, np.ones(3), rng=0, maxiter=30)
    assert wrapped.fun == plain.fun
    np.testing.assert_array_equal(wrapped.x, plain.x)
    assert minimize(lambda x: wrap(sphere(x)), np.ones(3), method="Nelder-Mead").success


def test_a_vectorized_fun_may_return_an_array_of_another_library():
    """A vectorized `fun` returning a torch or JAX array (``__array__``), which scipy's
    differential_evolution reads, was refused with TypeError while a scalar one was read."""

    def block(X):
        return np.sum(X * X, axis=0)

    wrapped = nes(
        lambda X: _LibraryScalar(block(X)), np.ones(3), rng=0, maxiter=30, vectorized=True
    )
    plain = nes(block, np.ones(3), rng=0, maxiter=30, vectorized=True)
    assert wrapped.fun == plain.fun
    np.testing.assert_array_equal(wrapped.x, plain.x)
    with pytest.raises(TypeError, match=r"returned an array of shape \(8,\) and dtype complex"):
        nes(lambda X: _LibraryScalar(block(X) * 1j), np.ones(3), rng=0, vectorized=True)


@pytest.mark.parametrize(
    "y",
    [[1.0, 2.0], [True], [None], _LibraryScalar([1.0, 2.0]), _LibraryScalar(1j)],
    ids=["list of two", "list of bool", "list of None", "__array__ of two", "__array__ complex"],
)
def test_fun_returning_what_holds_no_single_real_number_is_refused_naming_it(y):
    def bad(x):
        return y

    with pytest.raises(TypeError, match=r"`fun` must return a real number, but 'bad' returned"):
        nes(bad, np.zeros(2), rng=0)


def test_bad_fun_and_x0():
    with pytest.raises(TypeError, match=r"`fun` must be callable, but got 3"):
        nes(3, np.zeros(2))
    with pytest.raises(ValueError, match=r"`x0` must be finite"):
        nes(sphere, [0.0, np.inf])
    with pytest.raises(ValueError, match=r"'x0' must only have one dimension"):
        minimize(sphere, np.zeros((2, 2)), method=nes)  # scipy's own check
    with pytest.raises(ValueError, match=r"`x0` must be 1-d, but got shape \(2, 2\)"):
        nes(sphere, np.zeros((2, 2)))


# ------------------------------------------------------------------ callback
def test_callback_intermediate_result():
    seen: list[OptimizeResult] = []

    def cb(intermediate_result):
        assert isinstance(intermediate_result, OptimizeResult)
        seen.append(intermediate_result)
        intermediate_result.x[:] = 1e6  # a copy: must not disturb the run

    f = Recorder()
    res = minimize(f, np.zeros(2), method=nes, callback=cb, options={"rng": 0})
    ref = minimize(sphere, np.zeros(2), method=nes, options={"rng": 0})
    assert len(seen) == res.nit
    np.testing.assert_array_equal(res.x, ref.x)
    assert [r.nit for r in seen] == list(range(1, res.nit + 1))
    assert seen[-1].nfev == res.nfev
    assert seen[-1].fun == res.fun
    assert all(a.fun >= b.fun for a, b in itertools.pairwise(seen))


def test_callback_xk_gets_copies():
    seen: list[np.ndarray] = []

    def cb(xk):
        seen.append(xk.copy())
        xk[:] = 1e6

    res = minimize(sphere, np.zeros(2), method=nes, callback=cb, options={"rng": 0})
    ref = minimize(sphere, np.zeros(2), method=nes, options={"rng": 0})
    assert len(seen) == res.nit
    np.testing.assert_array_equal(seen[-1], res.x)
    np.testing.assert_array_equal(res.x, ref.x)


def test_callback_with_two_parameters_gets_xk():
    # scipy's rule: the keyword form only when `intermediate_result` is the only parameter
    seen = []
    minimize(
        sphere,
        np.zeros(2),
        method=nes,
        callback=lambda xk, extra=None: seen.append(xk),
        options={"rng": 0, "maxiter": 2},
    )
    assert len(seen) == 2
    assert isinstance(seen[0], np.ndarray)


@pytest.mark.skipif(
    sys.version_info < (3, 14), reason="annotations are evaluated lazily from Python 3.14"
)
def test_callback_annotated_with_a_name_not_imported_is_new_style():
    # From 3.14 a def whose annotation names a type imported only for type checkers runs;
    # inspect.signature then raises NameError unless asked for forward references, as scipy
    # asks. (Before 3.14 such a def raises NameError itself, so the case cannot arise.)
    space: dict[str, object] = {}
    source = (
        "def cb(intermediate_result: OnlyForTypeCheckers):\n    seen.append(intermediate_result)\n"
    )
    # (compiled without this module's `from __future__ import annotations`, which would make
    # the annotation a string)
    exec(compile(source, "<callback>", "exec", dont_inherit=True), space)
    seen: list[object] = []
    space["seen"] = seen
    minimize(
        sphere, np.zeros(2), method=nes, callback=space["cb"], options={"rng": 0, "maxiter": 2}
    )
    assert len(seen) == 2
    assert all(isinstance(r, OptimizeResult) for r in seen)


@pytest.mark.parametrize("how", ["raise", "true"])
def test_callback_stop(how):
    calls = []

    def cb(intermediate_result):
        calls.append(intermediate_result.nit)
        if intermediate_result.nit == 3:
            if how == "raise":
                raise StopIteration
            return True
        return None

    f = Recorder()
    res = minimize(f, np.zeros(2), method=nes, callback=cb, options={"rng": 0})
    assert calls == [1, 2, 3]
    assert res.nit == 3
    assert res.status == 99
    assert res.success is False
    assert res.message == "`callback` raised `StopIteration`."
    assert res.nfev == f.calls == 3 * popsize_of(2)


# ------------------------------------------------------------------ non-finite values
@pytest.mark.filterwarnings("ignore::nes_asktell.NESWarning")  # a generation may be all NaN
def test_nan_and_inf_values_rank_worst():
    def f(x):
        if x[0] < 0:
            return np.nan
        if x[1] < 0:
            return np.inf
        return sphere(x)

    res = minimize(f, np.array([0.5, 0.5]), method=nes, options={"rng": 0})
    assert np.isfinite(res.fun)
    np.testing.assert_allclose(res.x, [1.0, 0.0], atol=1e-3)


def test_all_nan_run_ends_after_tolstagnation_generations():
    f = Recorder(lambda x: np.inf)
    with pytest.warns(NESWarning, match="every fitness value is non-finite"):
        res = nes(f, np.zeros(2), tolstagnation=5, rng=0)
    assert res.nit == 5
    assert res.nfev == f.calls == 5 * popsize_of(2)
    assert res.status == 3
    assert res.message == "The search stagnated: no further progress is possible."


def test_all_nan_run_ends():
    f = Recorder(lambda x: np.nan)
    with pytest.warns(NESWarning, match="every fitness value is non-finite"):
        res = minimize(f, np.zeros(2), method=nes, options={"rng": 0})
    assert res.fun == np.inf
    assert res.success is False
    assert res.status == 3  # stagnation
    assert res.nfev == f.calls
    np.testing.assert_array_equal(res.x, np.zeros(2))


# ------------------------------------------------------------------ workers, vectorized
@pytest.mark.slow
def test_process_pool_workers_match_serial():
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 300})
    res = minimize(
        sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 300, "workers": 2}
    )
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.nfev == 300


@pytest.mark.slow
def test_dask_client_workers_match_serial():
    distributed = pytest.importorskip("distributed")
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 300})
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as client:
        res = minimize(
            sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 300, "workers": client}
        )
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.nfev == 300


def test_fun_gets_writable_copies():
    def f(x):
        x[0] += 1e9  # scipy's methods pass copies: writing to x must not disturb the run
        return sphere(x - np.array([1e9, 0.0]))

    res = minimize(f, np.zeros(2), method=nes, options={"rng": 0, "maxfev": 300})
    ref = minimize(sphere, np.zeros(2), method=nes, options={"rng": 0, "maxfev": 300})
    np.testing.assert_array_equal(res.x, ref.x)


def test_workers_map_and_executor_match_serial():
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 400})

    def workers(func, rows):
        return list(map(func, rows))

    with_map = minimize(
        sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 400, "workers": workers}
    )
    with ThreadPoolExecutor(2) as pool:
        with_pool = minimize(
            sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 400, "workers": pool}
        )
    np.testing.assert_array_equal(with_map.x, ref.x)
    np.testing.assert_array_equal(with_pool.x, ref.x)
    assert with_pool.nfev == ref.nfev == 400
    # an Evaluator too, as the docstring of nes and docs/scipy.rst list it
    with ThreadPoolExecutor(2) as pool, nes_asktell.Evaluator(pool) as ev:
        with_evaluator = minimize(
            sphere, np.zeros(3), method=nes, options={"rng": 4, "maxfev": 400, "workers": ev}
        )
    np.testing.assert_array_equal(with_evaluator.x, ref.x)


def test_vectorized():
    shapes: list[tuple[int, ...]] = []

    def fv(X, a):
        shapes.append(X.shape)
        return np.sum((X - SHIFT[:3, None]) ** 2, axis=0) + a

    res = minimize(
        fv,
        np.zeros(3),
        args=(0.0,),
        method=nes,
        options={"vectorized": True, "rng": 5, "maxfev": 400},
    )
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 5, "maxfev": 400})
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.fun == ref.fun
    assert res.nfev == sum(s[1] for s in shapes) == 400
    assert len(shapes) == res.nit
    assert all(s[0] == 3 for s in shapes)
    # the last generation only evaluates what the budget allows
    assert shapes[-1] == (3, 400 % popsize_of(3) or popsize_of(3))


def test_vectorized_agrees_with_the_core_on_what_fun_returns():
    # The method took shapes (S, 1) and (1, S) (as differential_evolution does) while
    # Strategy.optimize(vectorized=True) refused (S, 1), and the two raised different errors
    # for a wrong shape. Both now read the values alike, through the core's vectorized path.
    def column(X):
        return np.sum((X - SHIFT[:3, None]) ** 2, axis=0, keepdims=True).T  # (S, 1)

    kw = {"rng": 5, "maxfev": 200, "vectorized": True}
    res = minimize(column, np.zeros(3), method=nes, options=kw)
    ref = minimize(sphere, np.zeros(3), method=nes, options={"rng": 5, "maxfev": 200})
    np.testing.assert_array_equal(res.x, ref.x)
    core = XNES(np.zeros(3), 0.5, rng=5).optimize(column, maxfev=200, vectorized=True)
    assert core.nfev == 200
    for bad, err in (
        (lambda X: np.zeros((2, X.shape[1])), ValueError),
        (lambda X: "x", TypeError),
    ):
        with pytest.raises(err, match="`fun` must return") as from_method:
            nes(bad, np.zeros(3), vectorized=True, rng=0, sigma0=0.5)
        with pytest.raises(err, match="`fun` must return") as from_core:
            XNES(np.zeros(3), 0.5, rng=0).optimize(bad, vectorized=True)
        assert str(from_method.value) == str(from_core.value)
    # X is a writable copy, as with scipy's own methods
    seen = []
    nes(
        lambda X: seen.append(X.flags.writeable) or np.zeros(X.shape[1]),
        np.zeros(2),
        vectorized=True,
        maxiter=2,
    )
    assert seen == [True, True]
    # maxiter=0 evaluates x0 once, in the same convention
    res = nes(column, np.zeros(3), vectorized=True, maxiter=0)
    assert res.nfev == 1
    assert res.fun == float(np.sum(SHIFT[:3] ** 2))


def test_maxiter_zero_reads_the_value_of_fun_as_every_generation_does():
    # maxiter=0 evaluates x0 itself: it refused a one-element array (TypeError) that a run of
    # one generation takes, and an int beyond the float range raised a bare OverflowError
    def one_element(x):
        return np.array([sphere(x)])

    res = minimize(one_element, np.zeros(3), method=nes, options={"maxiter": 0})
    assert (res.nfev, res.nit, res.fun) == (1, 0, sphere(np.zeros(3)))
    assert isinstance(res.fun, float)
    assert minimize(one_element, np.zeros(3), method=nes, options={"maxiter": 1}).nit == 1
    huge = minimize(lambda x: 10**400, np.zeros(3), method=nes, options={"maxiter": 0})
    assert huge.fun == math.inf
    for bad in (None, True, np.array([1.0, 2.0]), "1"):
        with pytest.raises(TypeError, match=r"`fun` must return a real number, but '<lambda>'"):
            minimize(lambda x, bad=bad: bad, np.zeros(3), method=nes, options={"maxiter": 0})


def test_vectorized_bad_return_and_workers_warning():
    with pytest.raises(
        ValueError,
        match=r"`fun` must return 6 real numbers, .* returned an array of shape \(2, 6\)",
    ):
        nes(lambda X: np.zeros((2, X.shape[1])), np.zeros(2), vectorized=True, rng=0)
    with pytest.warns(UserWarning, match="`workers` is ignored"):
        nes(
            lambda X: np.sum(X**2, axis=0),
            np.zeros(2),
            vectorized=True,
            workers=lambda f, xs: list(map(f, xs)),
            maxfev=12,
        )


# ------------------------------------------------------------------ restarts (IPOP)
def rastrigin(x):
    return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


BOX = Bounds(-5.12, 5.12)


def test_restarts_share_the_budget_and_count_everything():
    f = Recorder(rastrigin)
    seen = []
    res = minimize(
        f,
        np.full(2, 3.0),
        method=nes,
        bounds=BOX,
        callback=lambda intermediate_result: seen.append(intermediate_result),
        options={"restarts": 3, "maxfev": 3000, "rng": 0},
    )
    assert res.nfev == f.calls <= 3000
    assert 1 <= res.restarts <= 3
    assert res.popsize == popsize_of(2) * 2**res.restarts  # popsize doubles at each restart
    # the callback sees the whole run: totals from the start and the best over all restarts
    assert [r.nit for r in seen] == list(range(1, res.nit + 1))
    assert all(a.nfev < b.nfev for a, b in itertools.pairwise(seen))
    assert all(a.fun >= b.fun for a, b in itertools.pairwise(seen))
    assert seen[-1].nfev == res.nfev
    assert res.fun == min(rastrigin(p) for p in f.points)
    assert res.fun == seen[-1].fun
    pts = np.array(f.points)
    assert np.all(np.abs(pts) <= 5.12)
    # only the budget or the last restart ends the loop here
    assert (res.status == 1 and res.nfev == 3000) or res.restarts == 3


def test_restarts_reproducible_and_maxiter_total():
    kw = {"restarts": 2, "maxiter": 150, "rng": 3}
    a = minimize(rastrigin, np.full(2, 3.0), method=nes, bounds=BOX, options=kw)
    b = minimize(rastrigin, np.full(2, 3.0), method=nes, bounds=BOX, options=kw)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.nfev == b.nfev
    assert a.nit <= 150
    g = minimize(
        rastrigin,
        np.full(2, 3.0),
        method=nes,
        bounds=BOX,
        options={"restarts": 2, "maxfev": 2000, "rng": np.random.default_rng(3)},
    )
    assert g.nfev <= 2000


def test_no_restart_after_ftarget_or_callback():
    res = minimize(
        rastrigin,
        np.full(2, 3.0),
        method=nes,
        bounds=BOX,
        options={"restarts": 5, "ftarget": 5.0, "rng": 0},
    )
    assert res.restarts == 0
    assert res.status == 0
    assert res.fun <= 5.0

    def stop(intermediate_result):
        if intermediate_result.nit == 5:
            raise StopIteration

    res = minimize(rastrigin, np.full(2, 3.0), method=nes, callback=stop, options={"restarts": 5})
    assert res.status == 99
    assert res.restarts == 0
    assert res.nit == 5


def test_restarts_vectorized_match_serial():
    def columns(X):
        return 10 * X.shape[0] + np.sum(X**2 - 10 * np.cos(2 * np.pi * X), axis=0)

    kw = {"restarts": 2, "maxfev": 1500, "rng": 5}
    ref = minimize(rastrigin, np.full(2, 3.0), method=nes, bounds=BOX, options=kw)
    vec = minimize(
        columns, np.full(2, 3.0), method=nes, bounds=BOX, options={**kw, "vectorized": True}
    )
    np.testing.assert_array_equal(vec.x, ref.x)
    assert vec.nfev == ref.nfev
    assert vec.restarts == ref.restarts


def test_all_nan_with_restarts_ends():
    f = Recorder(lambda x: np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        res = nes(f, np.zeros(2), restarts=2, rng=0)
    assert res.status == 3  # the guard ends the whole sequence
    assert res.fun == np.inf
    assert res.nfev == f.calls


@pytest.mark.slow
def test_restarts_solve_rastrigin_2d_from_nearly_every_seed():
    # Seeds 0-99, each run deterministic. The claim: with 5 restarts the method solves this
    # Rastrigin to 1e-8 within 20,000 evaluations in at least 90% of runs. Under that claim
    # fewer successes than the binomial's 1e-6 quantile (75 of 100) have probability below
    # 1e-6. Measured: 99 of 100 (seed 3 ends at 0.017), and 100 of 100 before the step sizes
    # were kept within the box's widths (which lowered the median evaluations from 1,989 to
    # 1,728). Without restarts four of seeds 0-4 end in a local minimum.
    solved = 0
    for seed in range(100):
        f = Recorder(rastrigin)
        res = minimize(
            f,
            np.full(2, 3.0),
            method=nes,
            bounds=BOX,
            options={"restarts": 5, "ftarget": 1e-8, "maxfev": 20_000, "rng": seed},
        )
        assert f.calls <= 20_000
        assert (res.status == 0) == (res.fun < 1e-8)
        solved += res.fun < 1e-8
    assert solved >= stats.binom.ppf(1e-6, 100, 0.9)


# ------------------------------------------------------------------ restarts (BIPOP)
def test_bipop_restarts_interleave_the_regimes_on_the_shared_budget():
    f = Recorder(rastrigin)
    kw = {"restarts": 3, "restart_strategy": "bipop", "maxfev": 20_000, "tol": 1e-2, "rng": 4}
    res = minimize(f, np.full(3, 3.0), method=nes, bounds=BOX, options=kw)
    assert res.nfev == f.calls <= 20_000
    assert res.restarts == len(res.history) - 1 >= 1
    assert sum(h["nfev"] for h in res.history) == res.nfev
    regimes = [h["regime"] for h in res.history]
    assert regimes[0] == "large"
    assert "small" in regimes
    # the large runs double the first population, BIPOP's large regime as IPOP's
    lam0 = res.history[0]["popsize"]
    large = [h["popsize"] for h in res.history if h["regime"] == "large"]
    assert large == [lam0 * 2**i for i in range(len(large))]
    assert len(large) <= 1 + 3  # `restarts` counts the large restarts
    # the same call in any case of the name is the same run, and BIPOP's own optimize too
    again = minimize(
        rastrigin,
        np.full(3, 3.0),
        method=nes,
        bounds=BOX,
        options={**kw, "restart_strategy": "BIPOP"},
    )
    np.testing.assert_array_equal(again.x, res.x)
    assert again.history == res.history
    direct = BIPOP(
        "xnes",
        np.full(3, 3.0),
        0.25 * 10.24,
        bounds=BOX,
        rng=4,
        max_restarts=3,
        maxfev=20_000,
        tolfun=1e-2,
        tolx=1e-2,
    ).optimize(rastrigin)
    np.testing.assert_array_equal(direct.x, res.x)
    assert direct.nfev == res.nfev


def test_ipop_is_the_default_restart_strategy():
    kw = {"restarts": 2, "maxfev": 3000, "rng": 0}
    ref = minimize(rastrigin, np.full(2, 3.0), method=nes, bounds=BOX, options=kw)
    ipop = minimize(
        rastrigin,
        np.full(2, 3.0),
        method=nes,
        bounds=BOX,
        options={**kw, "restart_strategy": "ipop"},
    )
    np.testing.assert_array_equal(ipop.x, ref.x)
    assert ipop.history == ref.history
    assert all("regime" not in h for h in ref.history)
    # without restarts the strategy runs alone, whatever the restart strategy
    one = nes(rastrigin, np.full(2, 3.0), restart_strategy="bipop", rng=0, maxfev=500)
    alone = nes(rastrigin, np.full(2, 3.0), rng=0, maxfev=500)
    np.testing.assert_array_equal(one.x, alone.x)
    assert one.restarts == 0
    assert "history" not in one


# ------------------------------------------------------------------ scipy's global methods
def test_basinhopping_local_minimizer():
    def f(x):
        return float(np.sum(x**2) + 0.5 * np.sum(np.cos(3 * x)))

    rec = Recorder(f)
    kw = {"method": nes, "options": {"rng": 0}}
    res = basinhopping(rec, np.array([2.0, -2.0]), niter=3, minimizer_kwargs=kw, rng=0)
    assert res.nfev == rec.calls  # basinhopping adds up our nfev
    assert res.fun == min(f(p) for p in rec.points)
    assert res.lowest_optimization_result.success


def test_differential_evolution_polish_callable():
    calls = []

    def polish(func, x0, **kwds):
        calls.append(kwds)
        return nes(func, x0, sigma0=0.05, rng=0, **kwds)

    bounds = [(-5, 5), (-5, 5)]
    res = differential_evolution(rosen, bounds, polish=polish, maxiter=30, rng=0, tol=0)
    assert "bounds" in calls[0]
    assert "constraints" in calls[0]
    assert np.all(res.x >= -5)
    assert np.all(res.x <= 5)
    assert res.fun < 1e-10
    # nes itself (no partial) is accepted too
    res2 = differential_evolution(rosen, bounds, polish=nes, maxiter=5, rng=0)
    assert np.all(np.abs(res2.x) <= 5)
    direct = functools.partial(nes, rng=1)
    assert differential_evolution(rosen, bounds, polish=direct, maxiter=5, rng=0).fun < 1e-6


# ------------------------------------------------------------------ property: budgets and bounds
@given(
    seed=st.integers(0, 2**31 - 1),
    maxfev=st.integers(1, 200),
    width=st.floats(1e-3, 10.0),
)
def test_property_budget_and_box(seed, maxfev, width):
    f = Recorder()
    lo = SHIFT[:3] + width  # the optimum lies outside the box: points press on the walls
    bounds = Bounds(lo, lo + width)
    res = minimize(f, lo, method=nes, bounds=bounds, options={"rng": seed, "maxfev": maxfev})
    pts = np.array(f.points)
    assert res.nfev == f.calls <= maxfev
    assert np.all(pts >= bounds.lb)
    assert np.all(pts <= bounds.ub)
    assert np.all(res.x >= bounds.lb)
    assert np.all(res.x <= bounds.ub)


# ------------------------------------------------------------------ convergence (fixed seeds)


@pytest.mark.parametrize("seed", SEEDS)
def test_converges_on_shifted_sphere_5d(seed):
    # deterministic for each fixed seed: an exact regression check, not a statistical one
    f = Recorder()
    res = minimize(f, np.zeros(5), method=nes, options={"rng": seed, "maxfev": 6000})
    assert res.fun < 1e-8
    assert f.calls <= 6000


@pytest.mark.parametrize("seed", SEEDS)
def test_converges_on_rosenbrock_2d(seed):
    f = Recorder(rosen)
    res = minimize(f, [-1.2, 1.0], method=nes, options={"rng": seed, "maxfev": 10_000})
    assert res.fun < 1e-6
    assert f.calls <= 10_000
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-2)


# ------------------------------------------------------------------ the comparison benchmark
def test_benchmark_harness_counts_exactly():
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import scipy_compare as bench

    problem = bench.PROBLEMS[1]  # rosenbrock-2 from (-1.2, 1)
    for method in ("nes (xnes)", "Nelder-Mead"):
        cell = bench.measure(problem, method, [0])
        f = Recorder(problem.fun)
        res = bench.METHODS[method](problem, f, problem.x0(np.random.default_rng(0), 2), 0)
        assert cell.spent == [f.calls]
        assert cell.final == [res.fun]
        first = next(i + 1 for i, p in enumerate(f.points) if problem.fun(p) <= bench.TARGET)
        assert cell.hits == [first]
    text = bench.table(["a", "b"], [["1", "22"], ["333", "4"]])
    assert text.splitlines()[0] == "===  =="


def test_none_for_restarts_and_disp_means_their_defaults(capsys):
    # None is how scipy users leave an optional option unset: options={"restarts": None}
    # raised "`restarts` must be an integer, but got None", and disp=None did the same
    kw = {"rng": 4, "maxfev": 400}
    ref = minimize(sphere, np.zeros(3), method=nes, options=kw)
    got = minimize(sphere, np.zeros(3), method=nes, options={**kw, "restarts": None})
    assert got.restarts == 0
    assert "history" not in got
    np.testing.assert_array_equal(got.x, ref.x)
    assert (got.fun, got.nfev, got.nit) == (ref.fun, ref.nfev, ref.nit)
    capsys.readouterr()
    quiet = minimize(sphere, np.zeros(3), method=nes, options={**kw, "disp": None})
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(quiet.x, ref.x)


@pytest.mark.parametrize(
    ("bounds", "pinned"),
    [([(1, 1), (2, 2)], [1.0, 2.0]), ([(0.5, 0.5), (-1, -1)], [0.5, -1.0])],
)
def test_two_pairs_at_d2_pin_the_coordinates_as_in_scipy(bounds, pinned) -> None:
    # The strategies read two pairs that pin every coordinate as (lower, upper); the scipy
    # method read them so too, and returned a point of the box [1, 2]^2 for [(1, 1), (2, 2)]
    # where Nelder-Mead, reading scipy's way, returns [1, 2].
    def f(x):
        return float(np.sum((x - 1.7) ** 2))

    ref = minimize(f, pinned, method="Nelder-Mead", bounds=bounds)
    res = minimize(f, pinned, method=nes, bounds=bounds, options={"rng": 0, "maxfev": 60})
    np.testing.assert_array_equal(ref.x, pinned)
    np.testing.assert_array_equal(res.x, pinned)


def test_an_inverted_pair_at_d2_is_an_error_as_in_scipy() -> None:
    # [(1, 0), (2, 3)] was read as lower (1, 0), upper (2, 3) and ran in that box
    with pytest.raises(ValueError, match="less than"):
        minimize(sphere, [0.5, 2.5], method="Nelder-Mead", bounds=[(1, 0), (2, 3)])
    with pytest.raises(ValueError, match=r"`bounds` must have lower <= upper .* lower=1.0"):
        minimize(sphere, [0.5, 2.5], method=nes, bounds=[(1, 0), (2, 3)])


@pytest.mark.slow
def test_an_unimportable_fun_is_named_in_the_error_of_the_scipy_method() -> None:
    # the documented TypeError named the adapter's wrapper '_Copying', not the user's function
    code = (
        "import numpy as np\n"
        "from scipy.optimize import minimize\n"
        "from nes_asktell import nes\n"
        "def my_objective(x):\n"
        "    return float(np.sum(x**2))\n"
        "try:\n"
        "    opts = {'workers': 2, 'maxfev': 20}\n"
        "    minimize(my_objective, [1.0, 0.0], method=nes, options=opts)\n"
        "except TypeError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'my_objective' is defined in a __main__ module" in out.stdout


@pytest.mark.parametrize("value", [math.nan, -math.inf, math.inf])
@pytest.mark.parametrize("maxiter", [0, 1])
def test_no_finite_value_is_reported_as_inf_whatever_maxiter(value: float, maxiter: int) -> None:
    # maxiter=0 reported the objective at x0 as it came: NaN (maxiter=1 gave inf, as a run
    # with no finite value does), so a non-finite value reached the result.
    res = minimize(lambda x: value, np.zeros(2), method=nes, options={"maxiter": maxiter})
    assert res.fun == math.inf


def test_a_float32_run_reports_the_float64_point_fun_was_given() -> None:
    # res.x came back float32 while fun had been called with its float64 copy, so fun(res.x)
    # was not res.fun (scipy's methods return float64 points)
    def f(x: np.ndarray) -> float:
        assert x.dtype == np.float64
        return float(np.sum((x - 0.1) ** 2))

    seen: list[np.ndarray] = []
    res = minimize(
        f,
        [1.0, 2.0],
        method=nes,
        callback=lambda intermediate_result: seen.append(intermediate_result.x),
        options={"rng": 0, "dtype": "float32", "maxfev": 200},
    )
    assert res.x.dtype == np.float64
    assert f(res.x) == res.fun
    assert seen
    assert all(x.dtype == np.float64 for x in seen)
    plain: list[np.ndarray] = []
    minimize(
        f,
        [1.0, 2.0],
        method=nes,
        callback=plain.append,
        options={"rng": 0, "dtype": "float32", "maxfev": 50},
    )
    assert plain
    assert all(x.dtype == np.float64 for x in plain)
