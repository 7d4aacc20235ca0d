"""BIPOP: the schedule of its two regimes, the budget they share, and the IPOP protocol."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from nes_asktell import BIPOP, IPOP, resolve_strategy, strategy_names
from nes_asktell._restarts import small_popsize


def sphere(x: np.ndarray) -> float:
    return float(x @ x)


def rastrigin(x: np.ndarray) -> float:
    return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


def drive(opt: BIPOP, f, n_gen: int) -> list[tuple[str, int, float, dict[str, int]]]:
    """Ask/tell `n_gen` generations; at every restart record (regime, popsize, sigma, and the
    budgets when the previous run ended)."""
    starts = []
    for _ in range(n_gen):
        if opt.stop():
            break
        restarts, regime, budgets = opt.restarts, opt.regime, opt.budgets
        X = opt.ask()
        opt.tell(X, [f(x) for x in X])
        budgets[regime] += len(X)  # the last generation of the run counts in its regime
        if opt.restarts != restarts:
            starts.append((opt.regime, opt.popsize, float(np.max(opt.sigma)), budgets))
    return starts


def test_the_regimes_follow_the_budgets_and_the_paper() -> None:
    # tolfun ends each run early: many restarts on a multimodal function
    opt = BIPOP("xnes", np.full(4, 3.0), 2.0, rng=5, tolfun=1e-2, max_restarts=4)
    lam0 = opt.popsize
    starts = drive(opt, rastrigin, 5000)
    regimes = [s[0] for s in starts]
    assert "small" in regimes
    assert regimes.count("large") == 4  # max_restarts counts the large regime only
    n_large = 0
    for regime, lam, sigma, budgets in starts:
        # the regime with fewer evaluations runs next (the finished run included)
        assert regime == ("small" if budgets["small"] < budgets["large"] else "large")
        if regime == "large":
            n_large += 1
            assert lam == lam0 * 2**n_large
            assert sigma == 2.0
        else:
            lam_l = lam0 * 2 ** (n_large + 1)
            assert lam0 <= lam <= lam_l // 2
            assert 2.0 / 100 <= sigma <= 2.0
    assert opt.stop()  # no large restart left and the small regime has caught up
    b = opt.budgets
    assert b["large"] + b["small"] == opt.nfev
    hist = opt.result.history
    assert [h["regime"] for h in hist[1:]] == regimes
    assert hist[0]["regime"] == "large"


def test_small_popsize_spans_its_range() -> None:
    assert small_popsize(8, 64, 0.0, mirrored=True) == 8
    assert small_popsize(8, 64, 1.0, mirrored=True) == 32
    assert small_popsize(7, 56, 1.0, mirrored=False) == 28
    assert small_popsize(7, 14, 0.5, mirrored=True) == 8  # floor(7), made even


@pytest.mark.parametrize("name", ["crfmnes", "dxnesic", "xnes"])
def test_a_popsize_factor_below_two_never_gives_a_small_run_below_the_first(name: str) -> None:
    # With popsize_factor 1 the small regime drew populations in [lambda_0 / 2, lambda_0]:
    # 2 at d = 1 (lambda_0 = 4), which CRFMNES and DXNESIC reject with mirrored sampling. The
    # restart is made after the tell that ended a run had committed it, so that tell raised
    # and every later ask raised again: the run was stuck for good (XNES got one pair).
    assert small_popsize(4, 4, 1.0, mirrored=True) == 4  # 2 before
    assert small_popsize(7, 7, 1.0, mirrored=False) == 7  # 3 before
    opt = BIPOP(name, [1.0], 0.5, popsize_factor=1, rng=0, max_restarts=3)
    res = opt.optimize(lambda x: float(x @ x), maxfev=3000)
    assert opt.restarts >= 2
    assert res.fun < 1e-8
    assert min(h["popsize"] for h in res.history) >= 4


def test_no_restart_with_max_restarts_zero() -> None:
    opt = BIPOP("snes", np.full(3, 3.0), 2.0, rng=0, tolfun=1e-2, max_restarts=0)
    res = opt.optimize(rastrigin, maxfev=5000)
    assert res.restarts == 0
    assert res.nfev < 5000  # it stopped with its first run


def test_the_budget_is_shared_and_never_exceeded() -> None:
    opt = BIPOP("xnes", np.full(3, 3.0), 2.0, rng=2, tolfun=1e-3, maxfev=3000)
    res = opt.optimize(rastrigin)
    assert res.nfev == 3000
    assert sum(h["nfev"] for h in res.history) == 3000
    assert res.restarts >= 2


@pytest.mark.parametrize("name", [n for n in strategy_names() if n != "toy"])
def test_bipop_runs_every_strategy(name: str) -> None:
    cls = resolve_strategy(name)
    opt = BIPOP(cls, np.full(3, 2.0), 0.5, rng=1, maxfev=600, tolfun=1e-2)
    res = opt.optimize(sphere)
    assert res.nfev <= 600
    assert res.fun < sphere(np.full(3, 2.0))


def test_a_resumed_bipop_equals_an_uninterrupted_one() -> None:
    def make() -> BIPOP:
        return BIPOP("snes", np.full(3, 3.0), 2.0, rng=7, tolfun=1e-2, maxfev=4000)

    whole = make().optimize(rastrigin)
    first = make()
    while first.restarts < 2:  # whole generations, then a checkpoint between ask and tell
        X = first.ask()
        first.tell(X, [rastrigin(x) for x in X])
    first.ask()
    state = json.loads(json.dumps(first.state_dict()))
    assert state["strategy"] == "bipop"
    for resumed in (BIPOP.from_state(state), pickle.loads(pickle.dumps(first))):
        res = resumed.optimize(rastrigin)
        np.testing.assert_array_equal(res.x, whole.x)
        assert (res.nfev, res.restarts) == (whole.nfev, whole.restarts)
        assert [h["regime"] for h in res.history] == [h["regime"] for h in whole.history]


def test_from_state_rejects_a_bad_regime_and_ipop_state() -> None:
    opt = BIPOP("xnes", np.zeros(2), 1.0, rng=0)
    state = json.loads(json.dumps(opt.state_dict()))
    state["bipop"]["regime"] = "medium"
    with pytest.raises(ValueError, match="`regime` must be one of"):
        BIPOP.from_state(state)
    ipop_state = IPOP("xnes", np.zeros(2), 1.0, rng=0).state_dict()
    with pytest.raises(ValueError, match=r"`state` must come from"):
        BIPOP.from_state(ipop_state)
    del state["bipop"]
    with pytest.raises(ValueError, match="malformed"):
        BIPOP.from_state(state)


@pytest.mark.parametrize("cls", [IPOP, BIPOP])
def test_each_run_gets_what_the_sequence_has_left(cls: type[IPOP]) -> None:
    # A restart's own `maxfev` is the sequence's budget minus every evaluation before it,
    # the run that just ended included (BIPOP used to leave that run out).
    opt = cls("xnes", np.full(3, 3.0), 2.0, rng=2, tolfun=1e-1, maxfev=20_000)
    assert opt.strategy.criteria["maxfev"] == 20_000
    seen = 0
    while not opt.stop() and seen < 3:
        restarts = opt.restarts
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
        if opt.restarts != restarts:
            seen += 1
            assert opt.strategy.nfev == 0
            assert opt.strategy.criteria["maxfev"] == 20_000 - opt.nfev
    assert seen == 3


def test_from_state_rejects_a_history_record_without_its_regime() -> None:
    first = BIPOP("xnes", np.full(2, 3.0), 1.0, rng=3, tolfun=1e-4, tolx=1e-4)
    first.optimize(lambda x: float(x @ x), maxfev=3000)
    assert first.restarts >= 1
    state = first.state_dict()
    BIPOP.from_state(json.loads(json.dumps(state)))  # loads as it is
    state["history"][0]["regime"] = "medium"
    with pytest.raises(ValueError, match=r"`regime` must be one of \['large', 'small'\], but got"):
        BIPOP.from_state(state)
    del state["history"][0]["regime"]
    with pytest.raises(ValueError, match=r"`history\[0\]` must have the keys .*regime"):
        BIPOP.from_state(state)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"budget_small": 10**15}, r"`budget_small` must be the sum of `nfev` of the small runs"),
        ({"budget_large": 0}, r"`budget_large` must be the sum of `nfev` of the large runs"),
        ({"budget_large": 0, "budget_small": 0}, r"`budget_large` must be the sum"),
    ],
)
def test_from_state_rejects_budgets_that_disagree_with_the_history(
    edit: dict[str, int], match: str
) -> None:
    # The budgets decide the regime of every later run; budgets unrelated to the runs in
    # `history` loaded, and the resumed sequence then ran another schedule (budget_small =
    # 1e15: large runs only).
    opt = BIPOP("xnes", np.full(2, 3.0), 1.0, rng=3, tolfun=1e-4, tolx=1e-4, maxfev=20_000)
    while opt.restarts < 3:
        X = opt.ask()
        opt.tell(X, [rastrigin(x) for x in X])
    state = json.loads(json.dumps(opt.state_dict()))
    assert {h["regime"] for h in state["history"]} == {"large", "small"}
    assert BIPOP.from_state(state).state_dict() == state  # as written, it loads
    state["bipop"].update(edit)
    with pytest.raises(ValueError, match=match):
        BIPOP.from_state(state)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_small_regime_sigma0_stays_a_step_size_the_strategy_takes(seed: int) -> None:
    # sigma0 * 10**(-2 U2) fell below the smallest step size (1e-100) for sigma0 = 1e-99, and
    # the restart inside tell() raised "`sigma0` must be a number in [1e-100, 1e+100]"
    opt = BIPOP("xnes", np.ones(2), 1e-99, rng=seed, max_restarts=3)
    res = opt.optimize(sphere, maxfev=20_000)
    regimes = [h["regime"] for h in res.history]
    assert "small" in regimes
    assert res.nfev <= 20_000
