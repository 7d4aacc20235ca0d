"""NESSampler: search spaces, generations, failures, state in the storage, several processes.

Every run below uses a fixed seed, so each convergence or equality check is an exact regression
check of a deterministic run, not a statistical one.
"""

from __future__ import annotations

import cProfile
import datetime
import gc
import itertools
import json
import logging
import math
import os
import pickle
import pstats
import signal
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

optuna = pytest.importorskip("optuna")

from nes_asktell.integrations.optuna import _storage as ch  # noqa: E402
from nes_asktell.integrations.optuna._space import GRID_SEARCH, UnitSpace, is_relative  # noqa: E402
from optuna.distributions import (  # noqa: E402
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState  # noqa: E402
from optuna_probes import sampler_lines  # noqa: E402

from nes_asktell import NESSampler, NESWarning  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
ROOT = Path(__file__).resolve().parent.parent


def new_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    trial_id = study._storage.create_new_trial(study._study_id)
    return study._storage.get_trial(trial_id)


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", 1e-3, 10.0, log=True)
    n = trial.suggest_int("n", 0, 10)
    return (x - 1.0) ** 2 + math.log10(y) ** 2 + (n - 3) ** 2


def quadratic_2d(trial: optuna.Trial) -> float:
    x, y = trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5)
    return (x - 1) ** 2 + (y + 1) ** 2


def stored_state(trial: optuna.trial.FrozenTrial) -> dict[str, object]:
    carrier = ch.parse_carrier(trial)
    assert carrier is not None
    return ch.stored_state(trial, carrier)


def check_chain(study: optuna.Study, sampler: NESSampler) -> list[dict[str, object]]:
    """Check the stored chain of generations from the storage alone; return it.

    Generation g + 1 must be told from exactly one finished trial per candidate index of
    generation g (COMPLETE, PRUNED or FAIL; -1 for a candidate whose trials died), drawn from
    generation g's state; no trial is told twice; parents link up.
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    chain = sampler.generations(study)
    assert chain, "no generation stored"
    used: set[int] = set()
    for g, entry in enumerate(chain):
        assert entry["generation"] == g
        carrier = ch.parse_carrier(trials[entry["trial"]])
        assert carrier is not None
        assert carrier.digest == entry["state"]
        if g == 0:
            assert carrier.parent is None
            assert entry["told"] == []
            continue
        prev = chain[g - 1]
        assert carrier.parent == prev["state"]
        prev_state = stored_state(trials[prev["trial"]])
        popsize = prev_state["run"]["popsize"]  # type: ignore[index]
        sur = prev_state.get("surrogate")
        if isinstance(sur, dict) and (sur["done"] or sur["k"] < len(sur["order"])):
            popsize = sur["k"]  # a round of a surrogate-assisted generation: its k candidates
        told = entry["told"]
        assert isinstance(told, list)
        assert len(told) >= popsize  # the candidates, then any extra samples told with them
        indices = []
        for k, number in enumerate(told):
            if number == -1:
                indices.append(k)
                continue
            t = trials[number]
            assert t.state.is_finished()
            cand = ch.parse_candidate(t)
            assert cand is not None
            assert cand.state == prev["state"]
            assert cand.generation == g - 1
            indices.append(cand.index)
        assert indices == list(range(len(told)))
        assert not used & (set(told) - {-1}), "a trial was told twice"
        used |= set(told) - {-1}
    return chain


# ---------------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strategy": "cma"}, ValueError, r"`strategy` must be one of .*but got 'cma'"),
        ({"sigma0": -1.0}, ValueError, r"`sigma0` must be a positive finite number, but got -1.0"),
        (
            {"sigma0": "big"},
            TypeError,
            r"`sigma0` must be a positive finite number, but got 'big'",
        ),
        ({"popsize": 1}, ValueError, r"`popsize` must be an integer >= 2, but got 1"),
        # A population the strategy refuses with its own mirrored sampling was laid to
        # `strategy_options`, which was not given: "`strategy_options` of CRFMNES: `popsize`
        # must be even ..."
        (
            {"strategy": "crfmnes", "popsize": 3},
            ValueError,
            r"^`popsize` must be even with mirrored sampling, but got 3\.$",
        ),
        (
            {"strategy": "openes", "popsize": 5, "strategy_options": {"tolx": 1e-9}},
            ValueError,
            r"^`popsize` must be even with mirrored sampling, but got 5\.$",
        ),
        # (mirrored sampling set by `strategy_options`: there it is, as is its absence below)
        (
            {"popsize": 3, "strategy_options": {"mirrored": True}},
            ValueError,
            r"^`strategy_options` of XNES: `popsize` must be even with mirrored sampling, "
            r"but got 3\.$",
        ),
        ({"n_startup_trials": -1}, ValueError, r"`n_startup_trials` must be an integer >= 0"),
        ({"independent_sampler": 3}, TypeError, r"`independent_sampler` must be an optuna"),
        ({"warn_independent_sampling": 1}, TypeError, r"`warn_independent_sampling` must be"),
        ({"restarts": -2}, ValueError, r"`restarts` must be an integer in \[0, 100\], but got -2"),
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
            {"restart_strategy": 2},
            TypeError,
            r"`restart_strategy` must be a string, one of 'ipop', 'bipop', but got 2",
        ),
        ({"seed": -1}, ValueError, r"`seed` must be an integer >= 0, but got -1"),
        ({"seed": 2**128}, ValueError, r"`seed` must be an integer in \[0, 2\*\*128\), but got"),
        ({"seed": 1.5}, TypeError, r"`seed` must be an integer, but got 1.5"),
        # a whole float past the limit, quoted as given (not as the 309 digits of its int)
        ({"seed": 1e308}, ValueError, r"`seed` must be .* \[0, 2\*\*128\), but got 1e\+308\.$"),
        ({"popsize": 1e308}, ValueError, r"`popsize` must be at most 65536, but got 1e\+308\.$"),
        ({"strategy_options": [1]}, TypeError, r"`strategy_options` must be a dict"),
        (
            {"strategy_options": {"eta_mu": -1.0}},
            ValueError,
            r"^`strategy_options` of XNES: `eta_mu` must be a positive",
        ),
        (
            {"strategy_options": {"nope": 1}},
            TypeError,
            r"^`strategy_options` of XNES: unknown option `nope` = 1; the options are "
            r"\['eta_mu', 'eta_sigma', 'eta_B', 'csa', 'adaptation_sampling', 'rank_one', "
            r"'active', 'mirrored', 'shaping', 'maxfev', 'maxiter', 'ftarget', 'tolfun', 'tolx', "
            r"'tolstagnation', 'tolconditioncov', 'tolflatfitness', 'threads', 'dtype'\]\.$",
        ),
        # the list named `timeout`, which the sampler refuses, and not the options a strategy
        # of another name has (SNES has no eta_B)
        (
            {"strategy": "snes", "strategy_options": {"eta_B": 1.0}},
            TypeError,
            r"^`strategy_options` of SNES: unknown option `eta_B` = 1.0; the options are "
            r"\['eta_mu', 'eta_sigma', 'csa', 'mirrored', 'shaping', 'maxfev',",
        ),
        # measured failures of issue 11, point 4: each crashed a later trial
        (
            {"strategy_options": {"popsize": 4}},
            ValueError,
            r"`strategy_options` must not set `popsize`.*but got popsize=4",
        ),
        (
            {"strategy_options": {"bounds": [(0, 1), (0, 1)]}},
            ValueError,
            r"`strategy_options` must not set `bounds`",
        ),
        (
            {"strategy_options": {"eta_sigma": 1e6}},
            ValueError,
            r"`strategy_options\['eta_sigma'\]` must be at most 10.0, but got 1000000.0",
        ),
        ({"popsize": 10**12}, ValueError, r"`popsize` must be at most 65536, but got 10+"),
        (
            {"popsize": 3, "strategy_options": {"mirrored": True}},
            ValueError,
            r"`popsize` must be even with mirrored sampling, but got 3",
        ),
        ({"constraints_func": 3}, TypeError, r"`constraints_func` must be callable or None"),
        ({"source_trials": [3]}, TypeError, r"`source_trials` must be a sequence of optuna"),
        (  # list() of it raised "'int' object is not iterable", which named no argument
            {"source_trials": 3},
            TypeError,
            r"`source_trials` must be a sequence of optuna.trial.FrozenTrial or None, but got 3",
        ),
        ({"sigma0": 1e300}, ValueError, r"`sigma0` must be at most 10 .*, but got 1e\+300"),
        # Below the default `tolx` every run stopped after its first generation, and below
        # about 1e-16 a generation's candidates were one point: with sigma0=1e-60, 60 trials
        # evaluated 5 distinct points.
        ({"sigma0": 1e-60}, ValueError, r"`sigma0` must be at least 1e-12 .*, but got 1e-60"),
        ({"sigma0": 9e-13}, ValueError, r"`sigma0` must be at least 1e-12 .*, but got 9e-13"),
        # A wall-clock limit made the state told depend on how long the generation's trials
        # took in the telling process (a seeded study of 16 trials took other points from
        # trial 5 on when the objective slept 0.1 s): the search must be a function of the
        # storage, so the option is refused.
        (
            {"strategy_options": {"timeout": 0.3}},
            ValueError,
            r"`strategy_options` must not set `timeout` .*study\.optimize.*but got timeout=0\.3",
        ),
    ],
)
def test_constructor_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        NESSampler(**kwargs)  # type: ignore[arg-type]


def test_a_population_refused_mirrored_is_taken_with_mirrored_sampling_off() -> None:
    sampler = NESSampler(
        strategy="crfmnes", popsize=3, strategy_options={"mirrored": False}, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic_2d, n_trials=10)
    assert len(check_chain(study, sampler)) == 3  # the startup trial, then 3 trials apiece


@pytest.mark.parametrize("independent", [False, True])
def test_a_seed_of_up_to_128_bits_seeds_a_study(independent: bool) -> None:
    # A seed of 2**32 or more raised numpy's "Seed must be between 0 and 2**32 - 1" (naming no
    # argument) from the default independent sampler; with another independent sampler, a seed
    # of 10**40 or more made a first state that failed its own check in every trial (it is now
    # refused by the constructor, see test_constructor_rejects_bad_arguments).
    for seed in (2**32, 2**100, 2**128 - 1):
        other = optuna.samplers.RandomSampler(seed=0) if independent else None
        sampler = NESSampler(seed=seed, popsize=4, independent_sampler=other)
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=9)
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
        assert len(sampler.generations(study)) == 2
        again = optuna.create_study(
            sampler=NESSampler(seed=seed, popsize=4, independent_sampler=other)
        )
        again.optimize(objective, n_trials=9)
        if not independent:  # the same seed, the same trials
            assert [t.params for t in again.trials] == [t.params for t in study.trials]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        # each raised AttributeError ("'int' object has no attribute 'directions'", "... no
        # attribute 'items'"), naming no argument
        ((None,), TypeError, r"`study` must be an optuna.Study, but got None"),
        (("study",), TypeError, r"`study` must be an optuna.Study, but got 'study'"),
        (
            (..., 5),
            TypeError,
            r"`search_space` must be a dict of distributions or None, but got 5\.",
        ),
        (
            (..., [("x", 1)]),
            TypeError,
            r"`search_space` must be a dict of distributions or None, but got \[\('x', 1\)\]",
        ),
        (
            (..., {"x": "a"}),
            TypeError,
            r"`search_space` must be a dict of distributions or None, but got \{'x': 'a'\}",
        ),
        # a name that is no str raised "'<' not supported between instances of 'str' and
        # 'int'" (or, alone, gave an empty chain), naming no argument
        (
            (..., {1: FloatDistribution(0, 1), "x": FloatDistribution(0, 1)}),
            TypeError,
            r"`search_space` must be a dict of distributions by parameter name \(str\) or None, "
            r"but got a name 1\.",
        ),
        (
            (..., {1: FloatDistribution(0, 1)}),
            TypeError,
            r"`search_space` must be a dict of distributions by parameter name \(str\) or None, "
            r"but got a name 1\.",
        ),
    ],
)
def test_generations_rejects_bad_arguments(
    args: tuple[object, ...], error: type[Exception], match: str
) -> None:
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    with pytest.raises(error, match=match):
        sampler.generations(*(study if a is ... else a for a in args))  # type: ignore[arg-type]
    assert len(sampler.generations(study)) == 2


def told_as_missing(chain: list[dict[str, object]], cand: ch.Candidate) -> bool | None:
    """Return whether candidate `cand` was told as missing (-1) by the next generation.

    None when its generation is not told in `chain` (the last one, or not on the chain).
    """
    for g, entry in enumerate(chain[:-1]):
        if entry["state"] == cand.state:
            told = chain[g + 1]["told"]
            assert isinstance(told, list)
            return bool(told[cand.index] == -1)
    return None


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError, match="positional"):
        NESSampler("xnes")  # type: ignore[misc]


def test_multi_objective_is_rejected() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=NESSampler())
    with pytest.raises(ValueError, match=r"`study` must be single-objective .* 2 objectives"):
        study.sampler.sample_relative(study, new_trial(study), {"x": FloatDistribution(0, 1)})


# ---------------------------------------------------------------------- the transform
DISTRIBUTIONS = [
    FloatDistribution(-1.0, 1.0),
    FloatDistribution(1e-7, 1.0, log=True),
    FloatDistribution(-10.0, 10.0, step=0.5),
    FloatDistribution(-10.2, 10.2, step=0.1),
    IntDistribution(3, 10),
    IntDistribution(1, 100, log=True),
    IntDistribution(3, 9, step=2),
    IntDistribution(-9, 0, step=3),
]


@given(seed=st.integers(0, 2**32 - 1))
def test_unit_space_values_lie_in_their_distributions(seed: int) -> None:
    space = UnitSpace({f"p{i}": d for i, d in enumerate(DISTRIBUTIONS)})
    rng = np.random.default_rng(seed)
    u = rng.uniform(-0.5, 1.5, space.dim)  # outside the cube too: values are clipped
    values = space.from_unit(u)
    for name, dist in zip(space.names, space.dists, strict=True):
        value = values[name]
        assert type(value) is (int if isinstance(dist, IntDistribution) else float)
        assert dist._contains(dist.to_internal_repr(value))
    # The cell centre of each value maps back to the same value.
    back = space.to_unit(values)
    assert back is not None
    assert space.from_unit(back) == values


def test_unit_space_grid_gives_each_value_an_equal_cell() -> None:
    space = UnitSpace({"k": IntDistribution(3, 9, step=2)})  # values 3, 5, 7, 9
    edges = [0.0, 0.2499, 0.2501, 0.4999, 0.5001, 0.7499, 0.7501, 1.0]
    got = [space.from_unit(np.array([u]))["k"] for u in edges]
    assert got == [3, 3, 5, 5, 7, 7, 9, 9]
    log_int = UnitSpace({"n": IntDistribution(1, 100, log=True)})
    assert log_int.from_unit(np.array([0.0]))["n"] == 1
    assert log_int.from_unit(np.array([1.0]))["n"] == 100


@given(u=st.floats(0.0, 1.0))
def test_a_value_of_a_grid_finer_than_its_floats_is_one_optuna_accepts(u: float) -> None:
    # 1e8 values 1e-4 apart in [5e4, 6e4], where floats are 7.3e-12 apart: low + i * step
    # often misses Optuna's tolerance for a grid value (|k - round(k)| < 1e-8), and Optuna
    # then silently drew another value for the trial, which was told as the candidate's.
    dist = FloatDistribution(5e4, 6e4, step=1e-4)
    space = UnitSpace({"x": dist})
    value = space.from_unit(np.array([u]))["x"]
    assert dist._contains(dist.to_internal_repr(value))
    assert abs(value - (5e4 + u * 1e4)) <= (GRID_SEARCH + 1) * 1e-4


class Recording(NESSampler):
    """NESSampler that records what it proposes for each trial in `proposed`."""

    def __init__(self, proposed: dict[int, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proposed = proposed

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        out = super().sample_relative(study, trial, search_space)
        self.proposed[trial.number] = out
        return out


def test_a_study_on_a_grid_finer_than_its_floats_evaluates_the_candidates() -> None:
    proposed: dict[int, dict[str, Any]] = {}
    study = optuna.create_study(sampler=Recording(proposed, seed=0))
    study.optimize(
        lambda t: (
            (t.suggest_float("x", 5e4, 6e4, step=1e-4) - 55000.0) ** 2
            + t.suggest_float("y", -1.0, 1.0) ** 2
        ),
        n_trials=40,
    )
    relative = [t for t in study.trials if proposed.get(t.number)]
    assert len(relative) >= 30
    assert all(t.params == proposed[t.number] for t in relative)


INT_GRIDS_PAST_FLOATS = [
    IntDistribution(0, 7 * 10**17, step=7),
    IntDistribution(-(10**18), 10**18, step=3),
    IntDistribution(2**53 - 3, 2**53 + 3),  # (float(2**53 + 3) is 2**53 + 4, past `high`)
    IntDistribution(2**60, 2**61, step=1),
    IntDistribution(10**17, 10**17 + 1001 * 10**9, step=1001),
    # (low is no float: Optuna takes ints 1e17 + 1001 m, none on the grid 1e17 + 1 + 1001 m)
    IntDistribution(10**17 + 1, 10**17 + 1 + 1001 * 10**9, step=1001),
    IntDistribution(-(2**62), 2**62, step=1000),
    IntDistribution(2**63 - 2**30, 2**63 - 2**30 + 1001 * 10**6, step=1001),
]


@pytest.mark.parametrize("dist", INT_GRIDS_PAST_FLOATS, ids=str)
@given(u=st.floats(0.0, 1.0))
def test_an_int_grid_past_the_floats_gives_values_optuna_takes_as_they_are(
    dist: IntDistribution, u: float
) -> None:
    # Optuna checks an int in float ((float(k) - low) % step == 0) and stores int(float(k)):
    # past 2**53 most grid values failed that check (an exact multiple of 7 near 4e17 is not
    # one as a float), and Optuna silently drew another value for the trial
    space = UnitSpace({"k": dist})
    value = space.from_unit(np.array([u]))["k"]
    assert type(value) is int
    assert dist.low <= value <= dist.high
    assert dist._contains(dist.to_internal_repr(value))
    assert dist.to_external_repr(dist.to_internal_repr(value)) == value  # stored as it is
    cells = (dist.high - dist.low) // dist.step + 1
    idx = min(int(u * cells), cells - 1)
    # (within the cells or floats _nearest_accepted_int searches)
    sp = math.ulp(float(max(abs(dist.low), abs(dist.high))))
    near = max((GRID_SEARCH + 2 * sp) * dist.step, (GRID_SEARCH + 2 * dist.step + 1) * sp)
    assert abs(value - (dist.low + idx * dist.step)) <= near


@pytest.mark.parametrize("surrogate", [False, True])
def test_a_study_on_an_int_grid_past_the_floats_evaluates_the_candidates(
    surrogate: bool,
) -> None:
    # 84 of 99 trials were given an independent draw of `k` and told as their candidates';
    # with the surrogate, the round's check took them for a crafted state and the search
    # restarted from a fresh state about every 9 generations, with a warning each time
    proposed: dict[int, dict[str, Any]] = {}
    study = optuna.create_study(sampler=Recording(proposed, seed=0, surrogate=surrogate))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NESWarning)
        study.optimize(
            lambda t: (
                t.suggest_float("x", -1.0, 1.0) ** 2
                + abs(t.suggest_int("k", 0, 7 * 10**17, step=7) - 2 * 10**17) / 1e17
            ),
            n_trials=100,
        )
    relative = [t for t in study.trials if proposed.get(t.number)]
    assert len(relative) >= 90
    assert all(t.params == proposed[t.number] for t in relative)


#: ranges at the edge of the float range (their widths overflow, their grids have huge counts)
WIDE = [
    FloatDistribution(-1e308, 1e308),
    FloatDistribution(-1.7976931348623157e308, 1.7976931348623157e308),
    FloatDistribution(-1e308, 1e308, step=1e307),
    FloatDistribution(5e-324, 1.7976931348623157e308, log=True),
    IntDistribution(-(10**307), 10**307),
    IntDistribution(-(2**63), 2**63, step=3),
    IntDistribution(1, 10**308, log=True),
]


@given(seed=st.integers(0, 2**32 - 1))
def test_unit_space_spans_ranges_as_wide_as_the_floats(seed: int) -> None:
    space = UnitSpace({f"p{i}": d for i, d in enumerate(WIDE)})
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.01, 0.99, space.dim)
    values = space.from_unit(u)
    for name, dist in zip(space.names, space.dists, strict=True):
        value = values[name]
        assert type(value) is (int if isinstance(dist, IntDistribution) else float)
        assert dist.low <= value <= dist.high  # (Optuna's own check overflows on some)
    back = space.to_unit(values)
    assert back is not None
    # Each value maps back to its point of the cube (a grid value to its cell's centre, half a
    # cell away at most): the range is spanned, not cut at its ends. Grids of up to 2**53
    # values, whose cells a float tells apart, give back the same values.
    cells = np.array(space.cells, dtype=float)
    tol = np.where(cells > 0, 0.5 / np.maximum(cells, 1.0), 0.0) + 1e-9
    for i, (name, dist) in enumerate(zip(space.names, space.dists, strict=True)):
        if isinstance(dist, IntDistribution) and dist.log:
            # rounded to the nearest int v: the point lay in [v - 1/2, v + 1/2], at most
            # ln(v / (v - 1/2)) from ln v, on an interval [ln(low - 1/2), ln(high + 1/2)]
            v = values[name]
            width = math.log(dist.high + 0.5) - math.log(dist.low - 0.5)
            tol[i] += -math.log1p(-0.5 / v) / width
    assert np.all(np.abs(back - u) <= tol)
    again = space.from_unit(back)
    for name, n in zip(space.names, space.cells, strict=True):
        if n <= 2**53:
            assert again[name] == values[name]


def test_ranges_the_floats_cannot_span_are_left_to_the_independent_sampler() -> None:
    for dist in [
        FloatDistribution(0.0, math.inf),
        FloatDistribution(-math.inf, 0.0),
        FloatDistribution(1.0, math.inf, log=True),
        IntDistribution(0, 10**400),
        IntDistribution(-(10**308), 10**308),  # 2e308 values
        IntDistribution(-(10**400), 0, step=10**90),
    ]:
        assert not is_relative(dist)
    assert all(is_relative(d) for d in [*DISTRIBUTIONS, *WIDE])


def test_a_study_over_the_whole_float_range_searches_inside_it() -> None:
    # The width 2e308 overflows: every candidate was the upper bound.
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=6))
    study.enqueue_trial({"x": 1.0})  # Optuna's RandomSampler cannot draw from this range
    study.optimize(lambda t: abs(t.suggest_float("x", -1e308, 1e308)) / 1e308, n_trials=13)
    xs = [t.params["x"] for t in study.trials[1:]]
    assert all(abs(x) < 1e308 for x in xs)
    assert len(set(xs)) == len(xs)


@pytest.mark.parametrize("strategy", ["xnes", "snes", "openes"])
def test_sample_relative_returns_plain_values_inside_the_distributions(strategy: str) -> None:
    space = {f"p{i}": d for i, d in enumerate(DISTRIBUTIONS)}
    sampler = NESSampler(strategy=strategy, seed=1, n_startup_trials=0)
    study = optuna.create_study(sampler=sampler)
    for _ in range(30):  # no before_trial: sample_relative works on its own
        params = sampler.sample_relative(study, new_trial(study), space)
        assert set(params) == set(space)
        for name, dist in space.items():
            value = params[name]
            assert type(value) is (int if isinstance(dist, IntDistribution) else float)
            assert dist._contains(dist.to_internal_repr(value))


# ---------------------------------------------------------------------- search spaces
def test_mixed_conditional_and_single_value_parameters(caplog: pytest.LogCaptureFixture) -> None:
    def mixed(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b"])
        x = trial.suggest_float("x", -3.0, 3.0)
        k = trial.suggest_int("k", 0, 20, step=5)
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        c = trial.suggest_float("c", 2.0, 2.0)  # low == high
        extra = trial.suggest_float("extra", 0.0, 1.0) if kind == "a" else 0.5
        return x**2 + (k - 10) ** 2 + math.log10(lr / 1e-3) ** 2 + c + extra

    sampler = NESSampler(seed=3)
    study = optuna.create_study(sampler=sampler)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING, logger="optuna"):
            study.optimize(mixed, n_trials=40)
    finally:
        optuna.logging.disable_propagation()
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert all(t.params["c"] == 2.0 for t in study.trials)
    # the relative space is the numeric ranges common to all trials
    space = sampler.infer_relative_search_space(study, study.trials[-1])
    assert sorted(space) == ["k", "lr", "x"]
    nes_trials = [t for t in study.trials if ch.CANDIDATE in t.system_attrs]
    assert len(nes_trials) == 39  # every trial after the startup trial
    # the categorical is drawn independently, with the warning, once (not once per trial)
    # (the message names the trial, so a warning in each trial would give distinct messages)
    assert len({r.getMessage() for r in caplog.records if "`kind`" in r.getMessage()}) == 1
    assert "`c`" not in caplog.text  # a single value is no loss: no warning
    check_chain(study, sampler)


@pytest.mark.parametrize("n_startup_trials", [0, 1, 2])
def test_a_trial_drawn_independently_in_the_startup_warns_nothing(
    n_startup_trials: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Two trials started together (study.optimize(n_jobs=2) starts every study so): the second
    # one's later parameters are drawn once the first has completed, and each study warned
    # that `y`, a parameter the strategy searches, "is sampled independently ... instead of
    # NESSampler (categorical, conditional and changing parameters are not searched ...)",
    # the trial being noted as drawn independently on purpose only past the startup. With
    # n_startup_trials=0 the first trial (no search space yet) warned so of `x` and `y`.
    # Each warning also used up the one warning of its parameter.
    def objective(t: optuna.Trial) -> float:
        return t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1)

    sampler = NESSampler(seed=0, popsize=4, n_startup_trials=n_startup_trials)
    study = optuna.create_study(sampler=sampler)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING, logger="optuna"):
            study.optimize(objective, n_trials=max(n_startup_trials - 1, 0))
            first, second = study.ask(), study.ask()
            first.suggest_float("x", 0, 1)
            second.suggest_float("x", 0, 1)
            study.tell(first, objective(first))  # the startup ends
            study.tell(second, objective(second))
            study.optimize(objective, n_trials=8)
    finally:
        optuna.logging.disable_propagation()
    assert "sampled independently" not in caplog.text
    assert len(sampler.generations(study)) == 2  # the search went on
    # a parameter drawn independently past the startup still warns, once
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna"):
        optuna.logging.enable_propagation()
        try:
            study.optimize(lambda t: objective(t) + t.suggest_float("z", 0, 1), n_trials=2)
        finally:
            optuna.logging.disable_propagation()
    # (a set: with propagation on, a record may reach the capture twice)
    warned = {r.getMessage() for r in caplog.records if "independently" in r.getMessage()}
    assert len(warned) == 1
    assert "`z`" in warned.pop()


def test_the_logger_sits_under_optunas_so_set_verbosity_governs_it() -> None:
    logger = logging.getLogger("optuna.nes_asktell")
    before = optuna.logging.get_verbosity()
    try:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        assert not logger.isEnabledFor(logging.WARNING)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        assert logger.isEnabledFor(logging.WARNING)
    finally:
        optuna.logging.set_verbosity(before)


def test_changing_search_space_starts_a_new_search() -> None:
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), 20)
    first = sampler.generations(study)
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 0, 5), 20)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    space = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
    assert sampler.generations(study, space) == first  # the first search is kept as it was


def test_a_trial_enqueued_with_some_searched_values_takes_no_candidate() -> None:
    # `study.enqueue_trial({"x": ...})` fixes x and leaves y to the sampler. The trial then
    # evaluates the enqueued x, not a candidate's: were it to hold a candidate, its value would
    # be told as that candidate's (a point it did not evaluate).
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=10)
    study.enqueue_trial({"x": 4.9})
    study.optimize(objective, n_trials=10)
    enqueued = study.trials[10]
    assert enqueued.params["x"] == 4.9
    assert enqueued.system_attrs[ch.CANDIDATE] is None  # a record that it holds none
    assert all(ch.parse_candidate(t) is not None for t in study.trials[11:])
    told = {n for e in check_chain(study, sampler) for n in e["told"]}  # type: ignore[attr-defined]
    assert enqueued.number not in told


def candidate_values(
    sampler: NESSampler,
    study: optuna.Study,
    space: dict[str, optuna.distributions.BaseDistribution],
    trial: optuna.trial.FrozenTrial,
) -> dict[str, int | float] | None:
    """Return the values of the candidate `trial` records, computed from the stored state."""
    cand = ch.parse_candidate(trial)
    if cand is None:
        return None
    assigner = sampler._assigner
    unit, _ = assigner.unit_space(space)
    trials = study.get_trials(deepcopy=False)
    ix = assigner.records.update(study, trials)
    carrier = next(c for c in ix.carriers.values() if c.digest == cand.state)
    loaded = assigner.load(carrier, trials, unit, ix)
    assert loaded is not None
    row = assigner._row(loaded, cand.index)
    assert row is not None
    return unit.from_unit(row)


def test_a_retried_trial_evaluates_the_candidate_it_records() -> None:
    # Optuna retries a trial whose worker died (RetryHeartbeatStaleTrialCallback) by adding a
    # WAITING copy with the parameters it had suggested and all its system attributes, the
    # candidate record included. Run by another process (a fresh sampler), the copy kept the
    # dead trial's x, took y from another candidate and recorded that one: the strategy was
    # told its value as that of a point it did not evaluate.
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, sampler=NESSampler(seed=0, popsize=4))
    study.optimize(objective, n_trials=10)
    trial = study.ask()
    trial.suggest_float("x", -5.0, 5.0)  # the worker dies here, before y and n
    study.tell(trial, state=TrialState.FAIL)  # as Optuna fails a trial whose heartbeat stopped
    dead = study.trials[-1]
    assert ch.parse_candidate(dead) is not None
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    (retry or optuna.storages.RetryFailedTrialCallback)()(study, dead)  # (before Optuna 4.9)
    sampler = NESSampler(seed=0, popsize=4)
    other = optuna.load_study(study_name=study.study_name, storage=storage, sampler=sampler)
    other.optimize(objective, n_trials=20)
    retried = other.trials[dead.number + 1]
    assert retried.system_attrs["failed_trial"] == dead.number
    assert retried.state == TrialState.COMPLETE
    assert retried.params["x"] == dead.params["x"]
    space = other.trials[0].distributions
    for t in other.trials:
        if t.state == TrialState.COMPLETE:
            values = candidate_values(NESSampler(seed=0, popsize=4), other, space, t)
            assert values is None or values == t.params, t.number
    check_chain(other, sampler)


def test_a_trial_added_waiting_with_some_searched_values_takes_no_candidate() -> None:
    # A WAITING trial added with parameters (as Optuna's retry callbacks add them, but without
    # a candidate record) evaluates those values: it took a candidate for the rest and was
    # told as that candidate, whose x it did not evaluate.
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=10)
    added = optuna.trial.create_trial(
        state=TrialState.WAITING,
        params={"x": 4.9},
        distributions={"x": FloatDistribution(-5.0, 5.0)},
    )
    study.add_trial(added)
    study.optimize(objective, n_trials=10)
    trial = study.trials[10]
    assert trial.state == TrialState.COMPLETE
    assert trial.params["x"] == 4.9
    assert trial.system_attrs[ch.CANDIDATE] is None  # a record that it holds none
    assert all(ch.parse_candidate(t) is not None for t in study.trials[11:])
    told = {n for e in check_chain(study, sampler) for n in e["told"]}  # type: ignore[attr-defined]
    assert trial.number not in told


def test_a_log_scaled_int_up_to_the_largest_floats_samples_without_numpy_warnings() -> None:
    # The cells of a log-scaled int near 1e308 are about 1e-308 wide in the log: their count
    # over the range passes the floats, and numpy warned "overflow encountered in divide" to
    # the user on each generation (the count, inf, is right: the margin reads a cell of width
    # 0). A search that drives the int to its top meets it.
    study = optuna.create_study(sampler=NESSampler(seed=0))
    study.enqueue_trial({"n": 1, "y": 0.5})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(
            lambda t: (
                -math.log(t.suggest_int("n", 1, 2**1023, log=True)) + t.suggest_float("y", 0, 1)
            ),
            n_trials=150,
        )
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert study.best_value < -700.0  # (-ln(2**1023) = -709.1: the top is reached)


def test_a_trial_suggesting_a_parameter_in_another_range_gives_up_its_candidate() -> None:
    # A trial that suggests x in a narrower range than the one searched, where its candidate's
    # x lies outside it, gets x from the independent sampler (Optuna refuses the candidate's
    # value). Pruned, so x stays in the search space, it kept its candidate record, and the
    # search was told its outcome as that of the candidate, a point it did not evaluate (11
    # of 60 trials were). Now it holds none, and the candidate goes to another trial.
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)

    def narrowing(trial: optuna.Trial) -> float:
        narrow = trial.number % 4 == 2
        x = trial.suggest_float("x", -0.5 if narrow else -5.0, 0.5 if narrow else 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        if narrow:
            raise optuna.TrialPruned()
        return (x - 1.0) ** 2 + (y - 1.0) ** 2

    study.optimize(narrowing, n_trials=60)
    space = study.trials[0].distributions
    told = {n for e in check_chain(study, sampler) for n in e["told"]}  # type: ignore[attr-defined]
    for t in study.trials:
        if t.number in told:
            assert candidate_values(NESSampler(seed=0), study, space, t) == t.params, t.number
    gave_up = [t for t in study.trials if t.system_attrs.get(ch.CANDIDATE, 0) is None]
    assert gave_up  # (the narrowed trials whose candidate's x was outside their range)
    assert all(t.number % 4 == 2 and t.number not in told for t in gave_up)


def calls_of(run: Callable[[], None], module: str, function: str) -> int:
    """Return how many times `run` calls `function` of Optuna's `module` (work, not time)."""
    profile = cProfile.Profile()
    profile.runcall(run)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return sum(
        calls[1]
        for (path, _, name), calls in stats.items()
        if name == function and path.endswith(os.path.join("optuna", *module.split("/")))
    )


def distribution_comparisons(run: Callable[[], None]) -> int:
    """Return how many times `run` compares two Optuna distributions (work, not time)."""
    return calls_of(run, "distributions.py", "__eq__")


def test_studies_sampled_in_turn_are_not_read_anew_on_each_trial() -> None:
    # One sampler given to two studies that take turns trial by trial recomputed a study's
    # search space from all its trials on every trial (Optuna's calculator serves one study,
    # and it was replaced at each switch): at 4,000 trials a study, 25.6 ms per trial against
    # 0.63 ms for one study alone. Counted here in distribution comparisons (the calculator's
    # work per trial read), which do not depend on the machine: those of 20 rounds late in the
    # studies must not exceed those of 20 early rounds by half (they were 5.8 times as many).
    sampler = NESSampler(seed=0, popsize=4)
    studies = [optuna.create_study(sampler=sampler) for _ in range(2)]

    def rounds(n: int) -> None:
        for _ in range(n):
            for study in studies:
                trial = study.ask()
                study.tell(trial, objective(trial))

    rounds(40)
    early = distribution_comparisons(lambda: rounds(20))
    rounds(220)
    late = distribution_comparisons(lambda: rounds(20))
    assert late <= 1.5 * early, (early, late)
    for study in studies:
        assert len(sampler.generations(study)) > 50


@given(st.integers(0, 2**32 - 1))
def test_the_search_space_is_optunas_intersection_search_space(seed: int) -> None:
    # The sampler reads the search space incrementally (see the test below); it must be the
    # one Optuna's IntersectionSearchSpace computes, whatever the trials' states and spaces.
    rng = np.random.default_rng(seed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sampler = NESSampler(seed=0)
    choices = [
        {"x": FloatDistribution(0, 1)},
        {"x": FloatDistribution(0, 2)},
        {"n": IntDistribution(0, 5)},
        {"x": FloatDistribution(0, 1), "n": IntDistribution(0, 5)},
        {"x": FloatDistribution(0, 1), "n": IntDistribution(0, 5), "y": FloatDistribution(1, 2)},
    ]
    open_trials: list[optuna.Trial] = []
    for _ in range(30):
        action = rng.integers(0, 4)
        if action == 0 or not open_trials:  # ask and suggest some parameters
            trial = study.ask()
            for name, dist in choices[rng.integers(0, len(choices))].items():
                trial._suggest(name, dist)
            open_trials.append(trial)
        else:  # finish an unfinished trial, in any order
            trial = open_trials.pop(int(rng.integers(0, len(open_trials))))
            state = [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED][action - 1]
            study.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
        expected = optuna.search_space.IntersectionSearchSpace().calculate(study)
        assert sampler._search_space(study) == expected
        assert list(sampler._search_space(study)) == list(expected)


def test_trials_never_told_do_not_make_each_trial_read_the_whole_study() -> None:
    # Optuna's search-space calculator reads every trial after the first unfinished one on each
    # call: with every fifth trial asked and never told, a trial at trial 5,000 took 30.8 ms
    # against 0.5 ms when all are told. Counted in distribution comparisons (machine-free):
    # 20 trials late in the study must not cost half as much again as 20 early ones (they cost
    # 6.5 times as much at these sizes).
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)

    def trials(n: int) -> None:
        for i in range(n):
            trial = study.ask()
            value = objective(trial)
            if i % 5 != 4:
                study.tell(trial, value)

    trials(40)
    early = distribution_comparisons(lambda: trials(20))
    trials(240)
    late = distribution_comparisons(lambda: trials(20))
    assert late <= 1.5 * early, (early, late)


def test_a_long_startup_does_not_make_each_trial_read_the_whole_study() -> None:
    # Until `n_startup_trials` trials were COMPLETE, each trial counted the COMPLETE trials of
    # the whole study, twice with a parameter drawn independently: with n_startup_trials=100000
    # a trial at trial 6,000 took 4.6 ms against 0.34 ms for Optuna's RandomSampler. Counted in
    # lines of the sampler's code run (machine-free): 20 trials late in the startup must not
    # cost half as much again as 20 early ones.
    study = optuna.create_study(sampler=NESSampler(seed=0, n_startup_trials=100_000))

    def trials(n: int) -> None:
        for _ in range(n):
            trial = study.ask()
            trial.suggest_categorical("c", ["a", "b"])
            study.tell(trial, objective(trial))

    trials(40)
    early = sampler_lines(lambda: trials(20))
    trials(240)
    late = sampler_lines(lambda: trials(20))
    assert late <= 1.5 * early, (early, late)


@pytest.mark.slow
def test_a_loop_over_many_studies_with_one_sampler_holds_bounded_memory() -> None:
    # The sampler kept its index of the trials of every study it had sampled, for good: a
    # loop over problems with one NESSampler grew by about 16 kB a study of 60 trials (6.6 MB
    # after 400 such studies), however long gone the studies were. Here 40 studies grew it by
    # 438 kB before, 18 kB with at most 16 studies indexed.
    sampler = NESSampler(seed=0, popsize=4)

    def studies(n: int) -> None:
        for _ in range(n):
            study = optuna.create_study(sampler=sampler)
            study.optimize(objective, n_trials=30)

    tracemalloc.start()  # (it sees what is allocated after it starts)
    try:
        studies(20)  # past the bounds of the caches
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        studies(40)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown


def test_a_loop_over_many_studies_of_one_storage_indexes_at_most_16_of_them() -> None:
    # Besides the sampler's own caches, an index of the candidate records per storage and
    # study (kept across samplers) held every study of the storage for as long as it lived:
    # one sampler looping over 200 studies of one storage held 200 studies' indexes, 11,600
    # records. It keeps the 16 studies used last, and a study that comes back is indexed anew.
    storage = optuna.storages.InMemoryStorage()
    sampler = NESSampler(seed=0, popsize=4)
    studies = []
    for _ in range(ch.MAX_STUDIES + 4):
        study = optuna.create_study(storage=storage, sampler=sampler)
        study.optimize(objective, n_trials=12)
        studies.append(study)
    indexed = ch._RECORDS[storage]
    assert len(indexed) == ch.MAX_STUDIES
    assert studies[0]._study_id not in indexed
    assert studies[-1]._study_id in indexed
    first = studies[0]
    before = len(sampler.generations(first))
    for _ in range(2):  # read anew after it was forgotten, then incrementally
        for tip in sampler.generations(first):
            expected = {
                t.number: cand
                for t in first.get_trials(deepcopy=False)
                if (cand := ch.parse_candidate(t)) is not None and cand.state == tip["state"]
            }
            assert expected
            assert ch.candidate_records(first, tip["state"]) == expected
        first.optimize(objective, n_trials=12)
    assert first._study_id in indexed
    assert studies[4]._study_id not in indexed  # (the least recently used went instead)
    assert len(indexed) == ch.MAX_STUDIES
    assert len(sampler.generations(first)) >= before + 4  # 24 trials in generations of 4


def test_with_hyperband_every_trial_follows_the_search_of_the_whole_study() -> None:
    # HyperbandPruner shows the sampler only the trials of the sampled trial's bracket. The
    # search lives in all the study's trials: seen bracket by bracket, the chain of states and
    # the candidates held in the other brackets were invisible (in 150 trials one generation
    # was told, 110 trials were drawn by the independent sampler, a point was evaluated twice).
    sampler = NESSampler(seed=0, popsize=4)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9)
    study = optuna.create_study(sampler=sampler, pruner=pruner)

    def stepped(trial: optuna.Trial) -> float:
        value = objective(trial)
        for step in range(9):
            trial.report(value + 1.0 / (step + 1), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(stepped, n_trials=60)
    assert sum(t.state == TrialState.PRUNED for t in study.trials) > 10
    assert all(ch.parse_candidate(t) is not None for t in study.trials[1:])
    chain = check_chain(study, sampler)
    assert len(chain) >= 10  # 59 trials of generations of 4, a few of them extras
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(set(points)) == len(points)


def test_a_sampler_used_for_a_second_study_searches_it() -> None:
    # Optuna accepts one sampler for several in-memory studies (each has study id 0). The
    # search space inferred for the first study (x) was kept and intersected with the second's
    # (u, v): empty for good, so every trial of the second study was drawn independently.
    sampler = NESSampler(seed=0, popsize=4)
    first = optuna.create_study(sampler=sampler)
    first.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=20)
    second = optuna.create_study(sampler=sampler)
    second.optimize(lambda t: t.suggest_float("u", 0, 1) + t.suggest_float("v", 0, 1), 20)
    assert all(ch.parse_candidate(t) is not None for t in second.trials[1:])
    assert len(check_chain(second, sampler)) >= 4
    first.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=8)  # and back
    assert all(ch.parse_candidate(t) is not None for t in first.trials[1:])


def test_a_trial_of_another_study_with_the_same_number_leaves_the_warning_as_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The trials sampled independently on purpose were remembered by number alone: trial 1 of
    # one study, enqueued with a searched value, silenced the warning of trial 1 of another
    # study that shares the sampler, which holds a candidate and draws a categorical
    # independently.
    def objective(t: optuna.Trial) -> float:
        return t.suggest_float("x", 0, 1) + len(t.suggest_categorical("c", ["a", "bb"]))

    def other_objective(t: optuna.Trial) -> float:
        return t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1)

    def warned(enqueued_in_other: bool) -> bool:
        sampler = NESSampler(seed=0, popsize=4)
        other = optuna.create_study(sampler=sampler)
        study = optuna.create_study(sampler=sampler)
        other.optimize(other_objective, n_trials=1)
        study.optimize(objective, n_trials=1)
        if enqueued_in_other:
            other.enqueue_trial({"x": 0.5})
        held = other.ask()  # trial 1 of `other`: sampled independently on purpose if enqueued
        other_objective(held)
        caplog.clear()
        optuna.logging.enable_propagation()
        try:
            with caplog.at_level(logging.WARNING, logger="optuna"):
                trial = study.ask()  # trial 1 of `study`: it takes a candidate
                assert trial.number == held.number
                objective(trial)
        finally:
            optuna.logging.disable_propagation()
        assert ch.parse_candidate(study.trials[-1]) is not None
        return "`c` in trial 1 is sampled independently" in caplog.text

    assert warned(enqueued_in_other=False)
    assert warned(enqueued_in_other=True)


# ---------------------------------------------------------------------- generations
def test_generation_is_told_once_popsize_trials_complete() -> None:
    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=1 + 6 * 5)
    chain = check_chain(study, sampler)
    assert len(chain) == 5  # the startup trial, then generations 0..4 of 6 trials each
    # the trial that tells generation g draws a candidate of generation g + 1 (the one its
    # number picks, so that two processes telling at once usually draw different ones)
    for entry in chain:
        number = entry["trial"]
        cand = ch.parse_candidate(study.trials[number])  # type: ignore[index]
        expected = ch.Candidate(entry["state"], entry["generation"], number % 6)  # type: ignore[arg-type,operator]
        assert cand == expected


def test_failed_pruned_and_nan_trials_are_told_and_only_abandoned_ones_handed_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nes_asktell.integrations.optuna import _search

    # A trial is presumed dead only after MIN_GRACE seconds (5 s: a live process may stall on a
    # busy machine); none here, so that the abandoned trials are handed out within the run.
    monkeypatch.setattr(_search, "MIN_GRACE", 0.0)
    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.create_study(sampler=sampler)
    count = {"n": 0}

    def flaky(trial: optuna.Trial) -> float:
        value = objective(trial)
        count["n"] += 1
        if count["n"] % 7 == 2:
            trial.report(value, 0)
            raise optuna.TrialPruned()
        if count["n"] % 7 == 4:
            raise RuntimeError("the simulator crashed")
        if count["n"] % 7 == 5:
            return math.nan  # Optuna records a FAIL
        return value

    study.optimize(flaky, n_trials=10, catch=(RuntimeError,))
    abandoned = [study.ask() for _ in range(3)]  # RUNNING for ever
    for t in abandoned:
        t.suggest_float("x", -5.0, 5.0)
    study.optimize(flaky, n_trials=60, catch=(RuntimeError,))
    states = {s: sum(t.state == s for t in study.trials) for s in TrialState}
    assert states[TrialState.PRUNED] > 0
    assert states[TrialState.FAIL] > 0
    assert states[TrialState.RUNNING] == 3
    chain = check_chain(study, sampler)
    told = {n for e in chain for n in e["told"]}  # type: ignore[attr-defined]
    # every finished trial is an outcome: FAIL and PRUNED trials are told, not handed out again
    for t in study.trials:
        cand = ch.parse_candidate(t)
        if cand is None or not t.state.is_finished():
            continue
        copies = [u for u in study.trials if ch.parse_candidate(u) == cand]
        finished = [u.number for u in copies if u.state.is_finished()]
        assert finished == [t.number], f"trial {t.number}'s candidate was evaluated twice"
        # a copy is handed out only after an abandoned (RUNNING) first trial
        assert all(u.state == TrialState.RUNNING for u in copies if u.number < t.number)
        if cand.index < 6 and cand.generation < len(chain) - 1:
            assert t.number in told
    assert any(study.trials[n].state == TrialState.FAIL for n in told)
    assert any(study.trials[n].state == TrialState.PRUNED for n in told)
    # An abandoned candidate is handed out again once (and only once) when a population of
    # trials has finished after it.
    held = [ch.parse_candidate(study.trials[t.number]) for t in abandoned]
    backed_up = 0
    for cand in held:
        assert cand is not None
        copies = [u for u in study.trials if ch.parse_candidate(u) == cand]
        assert len(copies) <= 2
        backed_up += len(copies) == 2
    assert backed_up == sum(c is not None and c.index < 6 for c in held)


def test_infinite_values_are_told_and_rank_worst() -> None:
    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: math.inf if t.suggest_float("x", -5, 5) > 0.5 else (t.params["x"] + 1) ** 2, 60
    )
    assert any(t.value == math.inf for t in study.trials)
    chain = check_chain(study, sampler)
    told_inf = [
        n
        for e in chain
        for n in e["told"]
        if study.trials[n].value == math.inf  # type: ignore[attr-defined]
    ]
    assert told_inf
    assert study.best_value < 0.01


def test_maximize_mirrors_minimize_exactly() -> None:
    runs = []
    for direction, sign in (("minimize", 1.0), ("maximize", -1.0)):
        study = optuna.create_study(direction=direction, sampler=NESSampler(seed=5))
        study.optimize(lambda t, s=sign: s * objective(t), n_trials=50)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_same_seed_same_trials_and_another_seed_differs() -> None:
    def params(seed: int) -> list[dict[str, object]]:
        study = optuna.create_study(sampler=NESSampler(seed=seed))
        study.optimize(objective, n_trials=30)
        return [t.params for t in study.trials]

    assert params(7) == params(7)
    assert params(7) != params(8)


def test_one_seeded_sampler_runs_the_same_search_in_each_study() -> None:
    # as docs/optuna.rst says: the search is a function of the seed and the study's trials,
    # not a stream carried on from one study to the next
    sampler = NESSampler(seed=7)
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=30)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_pickled_sampler_continues_the_same_search() -> None:
    sampler = NESSampler(seed=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=25)
    copy = pickle.loads(pickle.dumps(sampler))
    reference = optuna.create_study(sampler=NESSampler(seed=2))
    reference.optimize(objective, n_trials=50)
    study.sampler = copy
    study.optimize(objective, n_trials=25)
    assert [t.params for t in study.trials] == [t.params for t in reference.trials]


def test_threads_share_one_sampler() -> None:
    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=80, n_jobs=4)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(check_chain(study, sampler)) >= 5


def test_reseed_rng_reseeds_only_the_independent_sampler() -> None:
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=10)
    before = sampler.generations(study)
    sampler.reseed_rng()
    assert sampler.generations(study) == before
    study.optimize(objective, n_trials=10)
    assert sampler.generations(study)[: len(before)] == before


def test_warm_start_from_existing_trials() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=30)
    best = study.best_trial
    sampler = NESSampler(seed=0)
    study.sampler = sampler
    study.optimize(objective, n_trials=1)
    first = study.trials[-1]
    state = stored_state(first)
    space = UnitSpace(sampler.infer_relative_search_space(study, first))
    mean = np.array(state["run"]["mean"])  # type: ignore[index]
    assert space.from_unit(mean) == {k: best.params[k] for k in space.names}


# ---------------------------------------------------------------------- the stored state
def test_state_is_small_json_without_pickle() -> None:
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    for t in study.trials:
        for key, value in t.system_attrs.items():
            if key.startswith(ch.PREFIX):
                text = json.dumps(value)
                assert len(text) < 8000
                assert "pickle" not in text
    state = stored_state(study.trials[sampler.generations(study)[-1]["trial"]])  # type: ignore[index]
    assert state["run"]["strategy"] == "xnes"  # type: ignore[index]


def test_a_state_too_large_to_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # XNES keeps a d x d matrix: from about 1,650 parameters its state passes the 60 MB a
    # stored state may have (emulated here: 10 chunks, 600,000 characters, at d = 200). No
    # reader accepted it, so every trial told generation 0 again and stored another copy, with
    # a warning each: the search never got past its first generation and the storage grew by a
    # state per trial.
    monkeypatch.setattr(ch, "MAX_CHUNKS", 10)

    def wide(t: optuna.Trial) -> float:
        return sum((t.suggest_float(f"x{i}", -1, 1) - 0.1) ** 2 for i in range(200))

    study = optuna.create_study(sampler=NESSampler(seed=0))
    with pytest.raises(
        ValueError,
        match=r"`strategy` 'xnes' has a state too large to store for 200 parameters .* 'snes'",
    ):
        study.optimize(wide, n_trials=60)  # raised by the trial that tells generation 0
    carriers = [t for t in study.trials if ch.STATE in t.system_attrs]
    assert len(carriers) == 1  # generation 0 (its matrix is the identity: a short text)
    assert study.trials[-1].state == TrialState.FAIL
    assert not any(k.startswith(ch.STATE) for k in study.trials[-1].system_attrs)
    sampler = NESSampler(seed=0, strategy="snes")  # its state grows linearly with d
    snes = optuna.create_study(sampler=sampler)
    snes.optimize(wide, n_trials=40)
    assert len(sampler.generations(snes)) >= 2


@pytest.mark.parametrize(
    "damage",
    ["summary", "text", "digest-ok-bad-content", "candidate"],
)
def test_malformed_state_is_ignored_with_a_warning(damage: str) -> None:
    sampler = NESSampler(seed=0, popsize=6)
    source = optuna.create_study(sampler=sampler)
    source.optimize(objective, n_trials=14)
    victim = sampler.generations(source)[-1]["trial"]
    # Copy the trials into a new study, damaging what the victim stores (as a buggy or hostile
    # writer to a shared database could).
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=6))
    for t in source.trials:
        attrs = dict(t.system_attrs)
        if t.number == victim:
            if damage == "summary":
                attrs[ch.STATE] = {"digest": "0" * 20, "chunks": "many"}
            elif damage == "text":
                attrs[f"{ch.STATE}:0"] = '{"format": "hacked"}'
            elif damage == "digest-ok-bad-content":
                state = stored_state(t)
                state["run"]["algo"]["B"] = [[2.0] * 3] * 3  # type: ignore[index]
                text = ch.dumps(state)
                attrs[f"{ch.STATE}:0"] = text
                attrs[ch.STATE] = {**attrs[ch.STATE], "digest": ch.digest_of(text)}
            else:
                attrs[ch.CANDIDATE] = "__import__('os').system('echo pwned')"
        study.add_trial(
            optuna.trial.create_trial(
                params=t.params,
                distributions=t.distributions,
                value=t.value,
                system_attrs=attrs,
            )
        )
    with pytest.warns(NESWarning, match=r"ignore"):
        study.optimize(objective, n_trials=20)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    check_chain(study, study.sampler)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- real processes
#: the start of a worker script: `kind`, `where` and `n_trials` from its arguments, `storage`
OPEN_STORAGE = textwrap.dedent(
    """
    import json, math, os, signal, sys
    import optuna
    from nes_asktell import NESSampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    kind, where, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "sqlite":
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{where}", engine_kwargs={"connect_args": {"timeout": 60}}
        )
    else:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(where))
    """
)
WORKER = OPEN_STORAGE + textwrap.dedent(
    """
    settings = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", 1e-3, 10.0, log=True)
        n = trial.suggest_int("n", 0, 10)
        return (x - 1.0) ** 2 + math.log10(y) ** 2 + (n - 3) ** 2

    sampler = NESSampler(seed=0, popsize=6, **settings)
    study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    """
)


def make_storage(kind: str, tmp_path: Path) -> tuple[object, str]:
    if kind == "sqlite":
        where = str(tmp_path / "study.db")
        return optuna.storages.RDBStorage(f"sqlite:///{where}"), where
    where = str(tmp_path / "study.log")
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(where)), where


def run_workers(
    tmp_path: Path,
    kind: str,
    where: str,
    counts: list[int],
    settings: str = "{}",
    worker: str = WORKER,
) -> None:
    """Run one process per count, each `count` trials of the script `worker` (by default
    ``NESSampler(seed=0, popsize=6, **json.loads(settings))``)."""
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), kind, where, str(n), settings],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in counts
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "settings"),
    [("sqlite", "{}"), ("journal", "{}"), ("sqlite", '{"surrogate": true}')],
)
def test_resume_in_a_fresh_process_continues_the_same_search(
    tmp_path: Path, kind: str, settings: str
) -> None:
    storage, where = make_storage(kind, tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    run_workers(tmp_path, kind, where, [20], settings)
    run_workers(tmp_path, kind, where, [25], settings)  # a fresh process and a fresh sampler
    resumed = optuna.load_study(study_name="s", storage=storage)
    # The same search without the interruption, in this process and in memory.
    reference = optuna.create_study(sampler=NESSampler(seed=0, popsize=6, **json.loads(settings)))

    def objective_ref(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", 1e-3, 10.0, log=True)
        n = trial.suggest_int("n", 0, 10)
        return (x - 1.0) ** 2 + math.log10(y) ** 2 + (n - 3) ** 2

    reference.optimize(objective_ref, n_trials=45)
    assert [t.params for t in resumed.trials] == [t.params for t in reference.trials]
    chain = check_chain(resumed, NESSampler(seed=0, popsize=6, **json.loads(settings)))
    if "surrogate" in settings:  # the resumed search went on in rounds of the model's choice
        assert any(0 < len(e["told"]) < 6 for e in chain)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "n_procs", "settings"),
    [
        ("sqlite", 3, "{}"),
        ("journal", 3, "{}"),
        ("sqlite", 3, '{"surrogate": true}'),
        ("journal", 3, '{"surrogate": true}'),
    ],
)
def test_concurrent_processes_share_one_search(
    tmp_path: Path, kind: str, n_procs: int, settings: str
) -> None:
    storage, where = make_storage(kind, tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    run_workers(tmp_path, kind, where, [30] * n_procs, settings)
    study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 30 * n_procs
    assert all(t.state == TrialState.COMPLETE for t in trials)
    chain = check_chain(study, NESSampler(seed=0, popsize=6, **json.loads(settings)))
    assert len(chain) >= 5
    # The objective is deterministic, so processes that told the same generation wrote the same
    # state: one digest per generation, no fork.
    carriers = [ch.parse_carrier(t) for t in trials if ch.STATE in t.system_attrs]
    assert {(c.generation, c.digest) for c in carriers if c is not None} == {
        (e["generation"], e["state"]) for e in chain
    }
    # no point evaluated twice: no trial died, so no candidate was handed out again, and
    # trials that took one candidate at the same moment were separated
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(points)) == len(points)
    # joint progress: the told trials came from more than one process
    pids = {trials[n].user_attrs["pid"] for e in chain for n in e["told"]}  # type: ignore[attr-defined]
    assert len(pids) > 1
    assert len({t.user_attrs["pid"] for t in trials}) == n_procs


SLOW_WORKER = OPEN_STORAGE + textwrap.dedent(
    """
    import time
    from optuna.trial import TrialState

    def finished_after(trial):
        done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return sum(t.number > trial.number for t in done)

    def slow(trial):
        # 1.5 s at least and, before trial 60, until 12 later trials have finished (at most
        # 60 s): its generation's extras finish while it runs, however loaded the machine.
        start = time.monotonic()
        while time.monotonic() - start < 1.5 or (
            trial.number < 60 and finished_after(trial) < 12 and time.monotonic() - start < 60
        ):
            time.sleep(0.1)

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        if trial.number % 10 == 3:  # one trial in ten is slow
            slow(trial)
        else:
            time.sleep(0.02)
        return (x - 1.0) ** 2 + (y + 2.0) ** 2

    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_processes_agree_on_a_generation_that_gives_up_on_a_slow_trial(
    tmp_path: Path, kind: str
) -> None:
    """Three processes; one trial in ten takes 75 times as long as the others or more (until
    12 later trials have finished). A generation gives up on such a candidate once its extras
    have finished (told as missing), which every process decides from the storage's times
    alone: whenever each reads, all tell the same state, so the chain never forks, and no
    point is evaluated twice."""
    storage, where = make_storage(kind, tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    run_workers(tmp_path, kind, where, [30] * 3, worker=SLOW_WORKER)
    study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 90
    assert all(t.state == TrialState.COMPLETE for t in trials)
    chain = check_chain(study, NESSampler(seed=0, popsize=6))
    carriers = [ch.parse_carrier(t) for t in trials if ch.STATE in t.system_attrs]
    assert {(c.generation, c.digest) for c in carriers if c is not None} == {
        (e["generation"], e["state"]) for e in chain
    }
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(points)) == len(points)
    # the rule was exercised: some generation gave up on a candidate
    assert any(n == -1 for e in chain for n in e["told"])  # type: ignore[attr-defined]


CRASHING_WORKER = OPEN_STORAGE + textwrap.dedent(
    """
    exits, segfaults = {7, 19, 33}, {12, 26}

    def objective(trial):
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        if trial.number in exits:
            os._exit(3)  # the process ends mid-trial: the trial stays RUNNING for good
        if trial.number in segfaults:
            os.kill(os.getpid(), signal.SIGSEGV)
        return (x - 1.0) ** 2 + (y + 2.0) ** 2

    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is sent with os.kill")
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_processes_that_die_mid_trial_cost_their_trials_only(tmp_path: Path, kind: str) -> None:
    """Two workers at a time; five trials end their process (``os._exit`` and a segfault),
    and a fresh worker takes the dead one's place. The study goes on: the dead trials stay
    RUNNING, no point is evaluated twice, a dead candidate is told as missing once its
    generation's extra samples are used up, and the stored chain holds."""
    storage, where = make_storage(kind, tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    script = tmp_path / "worker.py"
    script.write_text(CRASHING_WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    target, ended = 60, []

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(script), kind, where, "10"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def n_trials() -> int:
        return len(optuna.load_study(study_name="s", storage=storage).trials)

    running, started = [spawn(), spawn()], 2
    while running:
        p = running.pop(0)
        _, err = p.communicate(timeout=300)
        ended.append(p.returncode)
        assert p.returncode in (0, 3, -signal.SIGSEGV), err.decode()
        if n_trials() < target and started < 40:  # (a guard: about 10 workers are needed)
            running.append(spawn())
            started += 1
    study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials(deepcopy=False)
    dead = {t.number for t in trials if t.state == TrialState.RUNNING}
    assert dead == {7, 12, 19, 26, 33}
    assert ended.count(3) == 3
    assert ended.count(-signal.SIGSEGV) == 2
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number not in dead)
    by_point: dict[tuple[object, ...], list[int]] = {}
    for t in trials:
        by_point.setdefault(tuple(sorted(t.params.items())), []).append(t.number)
    assert all(len(numbers) == 1 for numbers in by_point.values())  # never handed out again
    # The search went on through the deaths: the chain holds, and generations were told from
    # trials after the last one. (How many generations depends on the timing: trials that
    # arrive while a generation waits for a dead candidate are told with it as extra rows.)
    chain = check_chain(study, NESSampler(seed=0, popsize=6))
    told = [n for e in chain for n in e["told"]]  # type: ignore[attr-defined]
    assert max(told) > max(dead)
    for n in dead:  # a dead candidate whose generation was told was told as missing
        cand = ch.parse_candidate(trials[n])
        assert cand is not None
        assert cand.index >= 6 or told_as_missing(chain, cand) in (True, None)


def test_default_and_given_strategy_options_are_stored() -> None:
    for options, expected in ((None, 1.0), ({"eta_sigma": 0.5}, 0.5)):
        sampler = NESSampler(seed=0, strategy_options=options)
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=3)
        state = stored_state(study.trials[sampler.generations(study)[0]["trial"]])  # type: ignore[index]
        assert state["run"]["options"]["eta_sigma"] == expected  # type: ignore[index]


@pytest.mark.parametrize(
    ("options", "stored_options", "stored_criteria"),
    [
        # np.True_, np.float32 and np.int64 passed the constructor, then the first relative
        # sample crashed the study: "Object of type bool is not JSON serializable"
        (
            {"mirrored": np.True_, "eta_sigma": np.float32(0.5), "tolstagnation": np.int64(50)},
            {"eta_sigma": 0.5},
            {"tolstagnation": 50},
        ),
        # A Fraction passed the constructor (the strategy takes any real number), then every
        # relative sample crashed the study: "Object of type Fraction is not JSON serializable"
        (
            {"eta_sigma": Fraction(1, 2), "tolx": Fraction(1, 1000)},
            {"eta_sigma": 0.5},
            {"tolx": 0.001},
        ),
    ],
    ids=["numpy scalars", "fractions"],
)
def test_strategy_options_of_other_number_types_are_stored_as_numbers(
    options: dict[str, object],
    stored_options: dict[str, object],
    stored_criteria: dict[str, object],
) -> None:
    sampler = NESSampler(seed=0, popsize=4, strategy_options=options)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=6)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    state = stored_state(study.trials[sampler.generations(study)[0]["trial"]])  # type: ignore[index]
    stored = state["run"]  # type: ignore[index]
    if "mirrored" in options:
        assert stored["mirrored"] is True  # type: ignore[index]
    for key, value in stored_options.items():
        assert stored["options"][key] == value  # type: ignore[index]
    for key, value in stored_criteria.items():
        assert stored["criteria"][key] == value  # type: ignore[index]


@pytest.mark.parametrize(
    ("argument", "want"),
    [
        ("strategy_options", "a dict of keyword arguments or None"),
        ("independent_sampler", "an optuna.samplers.BaseSampler or None"),
        ("constraints_func", "callable or None"),
    ],
)
def test_a_refused_argument_is_quoted_short(argument: str, want: str) -> None:
    # the message printed the whole repr of what it got: a list of a million numbers made
    # a message of 7.9 million characters
    with pytest.raises(TypeError) as info:
        NESSampler(**{argument: list(range(10**6))})  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"`{argument}` must be {want}, but got [0, 1, 2, 3, ")
    assert message.endswith("....")
    assert len(message) < 200


@pytest.mark.parametrize(
    ("value", "match"),
    [(Fraction(10**400, 3), r"Fraction\(10000"), (Fraction(1, 10**400), r"Fraction\(1, 10000")],
)
def test_a_fraction_option_no_float_holds_is_refused_naming_it(value: object, match: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"`strategy_options` of XNES: `eta_mu` must be a positive finite number, but got "
        + match,
    ):
        NESSampler(strategy_options={"eta_mu": value})  # type: ignore[dict-item]


def test_restarts_double_the_population() -> None:
    # maxiter=3: each strategy stops after 3 generations, then restarts with twice the population.
    sampler = NESSampler(seed=0, popsize=6, restarts=2, strategy_options={"maxiter": 3})
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=150)
    trials = study.trials
    chain = check_chain(study, sampler)
    states = [stored_state(trials[e["trial"]]) for e in chain]  # type: ignore[index]
    restarts = [s["restart"] for s in states]
    popsizes = [s["run"]["popsize"] for s in states]  # type: ignore[index]
    assert restarts[:7] == [0, 0, 0, 1, 1, 1, 2]
    # after `restarts` doublings a converged search restarts with the same population
    assert max(restarts) > 2  # type: ignore[type-var]
    assert popsizes == [6 * 2 ** min(r, 2) for r in restarts]  # type: ignore[operator,type-var]


def test_runs_are_seeded_and_placed_as_ipop_seeds_and_places_them() -> None:
    # One restart-seeding helper for IPOP and the sampler: run 0 is the strategy IPOP's run 0
    # would be (x0 the centre of the cube, the seed itself), and restart r starts where IPOP's
    # restart r starts in the unit box, with IPOP's seed and population.
    from nes_asktell.integrations.optuna._sampler import COMMON_OPTIONS, DEFAULT_OPTIONS

    from nes_asktell import IPOP, XNES
    from nes_asktell._restarts import run_seed

    # tolx=1 holds once sigma0 = 0.2 is told: every run stops after its first generation
    sampler = NESSampler(seed=7, popsize=6, restarts=1, strategy_options={"tolx": 1.0})
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + t.suggest_float("y", 0, 1), 20)
    chain = sampler.generations(study)
    states = [stored_state(study.trials[e["trial"]]) for e in chain]  # type: ignore[index]
    # (with two parameters the sampler's XNES is mirrored: docs/optuna.rst)
    options = {**COMMON_OPTIONS, **DEFAULT_OPTIONS["xnes"], "tolx": 1.0, "mirrored": True}
    first = next(s for s in states if s["restart"] == 0)
    run0 = XNES(np.full(2, 0.5), 0.2, 6, rng=7, **options)  # type: ignore[arg-type]
    assert first["run"] == run0.state_dict()
    second = next(s for s in states if s["restart"] == 1)
    ipop = IPOP("xnes", np.full(2, 0.5), 0.2, 6, bounds=(0, 1), rng=7, max_restarts=1, **options)
    X = ipop.ask()
    ipop.tell(X, [float(x @ x) for x in X])
    assert ipop.restarts == 1
    assert second["run"]["mean"] == ipop.mean.tolist()  # type: ignore[index]
    assert second["run"]["popsize"] == ipop.popsize == 12  # type: ignore[index]
    # SPEC 7: the run seeded by run_seed(7, 1) has the entropy drawn from default_rng(that seed)
    seeded = XNES(np.full(2, 0.5), 0.2, 12, rng=run_seed(7, 1), **options)  # type: ignore[arg-type]
    assert second["run"]["noise"] == seeded.state_dict()["noise"]  # type: ignore[index]


def test_the_sampler_runs_xnes_without_the_rank_one_term_that_the_core_has() -> None:
    # The core's XNES has the rank-one term by default; the sampler sets it off (its BBOB
    # benchmark at d = 5 is worse with it), and strategy_options may turn it on.
    from nes_asktell import XNES

    assert XNES(np.zeros(2), 1.0).state_dict()["options"]["rank_one"] is True  # type: ignore[index]
    for options, expected in ((None, False), ({"rank_one": True}, True)):
        sampler = NESSampler(seed=3, strategy_options=options)
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), 12)
        states = [stored_state(t) for t in study.trials if ch.STATE in t.system_attrs]
        assert states
        for state in states:
            assert state["run"]["options"]["rank_one"] is expected  # type: ignore[index]


# ---------------------------------------------------------------------- BIPOP restarts
#: a BIPOP search whose runs end after 3 generations, so that a few hundred trials restart often
BIPOP_SETTINGS = {"restarts": 2, "restart_strategy": "bipop", "strategy_options": {"maxiter": 3}}


def bipop_states(study: optuna.Study, sampler: NESSampler) -> list[dict[str, object]]:
    """Return the first stored state of each run of the chain, in order."""
    chain = check_chain(study, sampler)
    states = [stored_state(study.trials[e["trial"]]) for e in chain]  # type: ignore[index]
    firsts = [
        s for i, s in enumerate(states) if i == 0 or s["restart"] != states[i - 1]["restart"]
    ]
    assert [s["restart"] for s in firsts] == list(range(len(firsts)))
    return firsts


def test_bipop_restarts_interleave_the_regimes_on_the_trial_budget() -> None:
    from nes_asktell._restarts import small_popsize, small_regime_draws

    sampler = NESSampler(seed=0, popsize=6, **BIPOP_SETTINGS)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=300)
    runs = bipop_states(study, sampler)
    regimes = [r["bipop"]["regime"] for r in runs]  # type: ignore[index]
    assert regimes[0] == "large"
    assert regimes.count("small") >= 3
    assert regimes.count("large") >= 3
    budget = {"large": 0, "small": 0}
    for prev, run in itertools.pairwise(runs):
        entry = run["bipop"]
        # the finished run's told trials (3 generations of its population) count in its regime
        budget[prev["bipop"]["regime"]] += 3 * prev["run"]["popsize"]  # type: ignore[index]
        assert {k: entry[f"budget_{k}"] for k in budget} == budget  # type: ignore[index]
        # the regime that has used fewer trials runs next (Hansen 2009)
        assert entry["regime"] == ("small" if budget["small"] < budget["large"] else "large")  # type: ignore[index]
    for run in runs:
        entry, lam = run["bipop"], run["run"]["popsize"]  # type: ignore[index]
        sigma = run["run"]["algo"]["sigma"]  # type: ignore[index]
        large = 6 * 2 ** min(entry["large"], 2)  # type: ignore[index,operator]
        if entry["regime"] == "large":  # type: ignore[index]
            assert (lam, sigma) == (large, 0.2)
        else:  # BIPOP's own draws, from the seed and the restart number
            lam_l = 6 * 2 ** min(entry["large"] + 1, 2)  # type: ignore[index,operator]
            u1, u2 = small_regime_draws(0, run["restart"])  # type: ignore[arg-type]
            assert lam == small_popsize(6, lam_l, u1, mirrored=False)
            assert sigma == pytest.approx(0.2 * 10.0 ** (-2.0 * u2), rel=1e-12)
    # `restarts` bounds the doublings, not the search: it goes on after the last doubling
    assert max(r["bipop"]["large"] for r in runs) > 2  # type: ignore[index]


def test_bipop_and_ipop_searches_are_distinct_and_ipop_keys_are_unchanged() -> None:
    from nes_asktell.integrations.optuna._search import Search

    from nes_asktell import XNES

    space = UnitSpace({"x": FloatDistribution(0.0, 1.0)})
    ipop = Search(XNES, 0.2, None, 9, {}, 0)
    assert ipop.key(space) == Search(XNES, 0.2, None, 9, {}, 0, "ipop").key(space)
    assert ipop.key(space) != Search(XNES, 0.2, None, 9, {}, 0, "bipop").key(space)
    # docs/optuna.rst, Resuming: the seed is not part of what identifies a search
    assert ipop.key(space) == Search(XNES, 0.2, None, 9, {}, 1).key(space)


def test_settings_that_mean_the_same_share_one_search() -> None:
    # Bug: a worker with ``popsize=8`` (the default at d = 5) or ``strategy_options=
    # {"eta_sigma": 1}`` (the sampler's 1.0) started a search of its own in a shared study,
    # and each search got only its share of the trials.
    def five(trial: optuna.Trial) -> float:
        return sum((trial.suggest_float(f"x{i}", -5.0, 5.0) - 1.0) ** 2 for i in range(5))

    same = [
        {"popsize": 8},
        {"strategy_options": {"eta_sigma": 1}},
        {"strategy_options": {"eta_mu": 1, "eta_B": None}},  # XNES's own defaults, restated
    ]
    for settings in same:
        first = NESSampler(seed=0)
        study = optuna.create_study(sampler=first)
        study.optimize(five, n_trials=25)
        study.sampler = NESSampler(seed=0, **settings)  # type: ignore[arg-type]
        study.optimize(five, n_trials=25)
        chain = first.generations(study)
        assert len({e["state"] for e in chain}) == len(chain)
        told = [n for e in chain for n in e["told"]]
        # one chain: the second sampler's trials (25-49) are told to the same search
        assert max(told) >= 40, settings
        assert len(told) == len(set(told))
    # and settings that differ still start searches of their own
    for other in [{"popsize": 10}, {"strategy_options": {"eta_sigma": 0.5}}]:
        first = NESSampler(seed=0)
        study = optuna.create_study(sampler=first)
        study.optimize(five, n_trials=25)
        before = len(first.generations(study))
        study.sampler = NESSampler(seed=0, **other)  # type: ignore[arg-type]
        study.optimize(five, n_trials=25)
        assert len(first.generations(study)) == before, other


def mirrored_runs(sampler: NESSampler, dim: int, n_trials: int = 40) -> set[bool]:
    """Run a `dim`-d study with `sampler`; return the ``mirrored`` flags of its stored states."""
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: sum((t.suggest_float(f"x{i}", -5.0, 5.0) - 1.0) ** 2 for i in range(dim)),
        n_trials=n_trials,
    )
    trials = study.get_trials(deepcopy=False)
    chain = check_chain(study, sampler)
    return {bool(stored_state(trials[e["trial"]])["run"]["mirrored"]) for e in chain}  # type: ignore[index]


def test_xnes_runs_mirrored_with_one_or_two_parameters_only() -> None:
    # docs/optuna.rst, One and two parameters: mirrored sampling is measurably better at d <= 2
    assert mirrored_runs(NESSampler(seed=0), 1) == {True}
    assert mirrored_runs(NESSampler(seed=0), 2) == {True}
    assert mirrored_runs(NESSampler(seed=0), 3) == {False}
    # unless told otherwise, with a population it cannot mirror, or another strategy
    no = {"strategy_options": {"mirrored": False}}
    assert mirrored_runs(NESSampler(seed=0, **no), 2) == {False}  # type: ignore[arg-type]
    assert mirrored_runs(NESSampler(seed=0, popsize=5), 2) == {False}
    assert mirrored_runs(NESSampler(seed=0, popsize=2), 2) == {False}  # (one pair: no sigma)
    assert mirrored_runs(NESSampler(seed=0, popsize=8), 2) == {True}
    assert mirrored_runs(NESSampler(seed=0, strategy="snes"), 2) == {False}
    yes = {"strategy_options": {"mirrored": True}}
    assert mirrored_runs(NESSampler(seed=0, **yes), 3) == {True}  # type: ignore[arg-type]
    # the default's key at d = 2 is that of the same search written out; at d = 3 unchanged
    two = UnitSpace({"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)})
    default = NESSampler()._search
    assert default.key(two) == NESSampler(strategy_options={"mirrored": True})._search.key(two)
    assert default.key(two) != NESSampler(strategy_options={"mirrored": False})._search.key(two)


def test_the_default_settings_keep_their_search_key() -> None:
    # The keys of stored searches (docs/optuna.rst, Resuming): a new version that changed them
    # would start every stored study's search afresh. Values computed by the version before
    # settings written differently were made to share one key.
    space = UnitSpace(
        {
            "x": FloatDistribution(0.0, 1.0),
            "y": FloatDistribution(-5.0, 5.0),
            "n": IntDistribution(0, 10),
        }
    )
    assert NESSampler()._search.key(space) == "1904ed2c1700f373"
    assert NESSampler(strategy="snes")._search.key(space) == "fe00bb6ccd342874"
    assert NESSampler(strategy_options={"eta_sigma": 0.5})._search.key(space) == "355c8690d41310d8"
    assert NESSampler(popsize=12)._search.key(space) == "c03c7a16d41f55f1"


@pytest.mark.parametrize(
    ("damage", "value"),
    [
        ("regime", "medium"),
        ("large", 10**6),
        ("large", -1),
        ("budget_small", 1.5),
        ("budget_large", 2**60),
        ("extra", 1),
        ("missing", None),
    ],
)
def test_a_crafted_bipop_entry_is_refused(damage: str, value: object) -> None:
    sampler = NESSampler(seed=0, popsize=6, **BIPOP_SETTINGS)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    state = bipop_states(study, sampler)[-1]
    search = sampler._search
    search.load(state, 3)  # the stored state itself loads
    bad = json.loads(json.dumps(state))
    if damage == "missing":
        del bad["bipop"]
    elif damage == "extra":
        bad["bipop"]["extra"] = value
    else:
        bad["bipop"][damage] = value
    with pytest.raises((ValueError, TypeError), match=r"bipop|keys"):
        search.load(bad, 3)
    ipop_state = {k: val for k, val in state.items() if k != "bipop"}
    with pytest.raises(ValueError, match="keys"):
        search.load(ipop_state, 3)


@pytest.mark.slow
def test_a_bipop_search_resumes_in_a_fresh_process(tmp_path: Path) -> None:
    storage, where = make_storage("sqlite", tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    settings = json.dumps(BIPOP_SETTINGS)
    run_workers(tmp_path, "sqlite", where, [40], settings)  # ends inside a small run
    run_workers(tmp_path, "sqlite", where, [50], settings)  # a fresh process and sampler
    resumed = optuna.load_study(study_name="s", storage=storage)
    reference = optuna.create_study(sampler=NESSampler(seed=0, popsize=6, **BIPOP_SETTINGS))  # type: ignore[arg-type]
    reference.optimize(objective, n_trials=90)
    assert [t.params for t in resumed.trials] == [t.params for t in reference.trials]
    runs = bipop_states(resumed, NESSampler(seed=0, popsize=6, **BIPOP_SETTINGS))  # type: ignore[arg-type]
    regimes = [r["bipop"]["regime"] for r in runs]  # type: ignore[index]
    assert "small" in regimes
    assert regimes.count("large") >= 2
    # the first process stopped with a BIPOP run under way, the second one went on from it
    first = [
        e
        for e in NESSampler(seed=0, popsize=6, **BIPOP_SETTINGS).generations(resumed)
        if e["trial"] < 40
    ]  # type: ignore[arg-type,operator]
    last_of_first = stored_state(resumed.trials[first[-1]["trial"]])  # type: ignore[index]
    assert last_of_first["restart"] >= 1
    assert runs[-1]["restart"] > last_of_first["restart"]  # type: ignore[operator]


def test_a_stored_state_becomes_a_live_strategy_at_most_once(monkeypatch) -> None:
    # A process turns each state it reads from the storage into a strategy once (telling a
    # generation copies the live one); a state it stores is rebuilt once from its JSON text
    # (the check before it is written) and never parsed back after.
    from nes_asktell import XNES

    calls = []
    real = XNES.from_state.__func__  # type: ignore[attr-defined]

    def counted(cls, state, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(cls, state, **kw)

    # (the constructors check once that the class reads back its own state: not counted)
    sampler = NESSampler(seed=0, popsize=4)
    fresh = NESSampler(seed=0, popsize=4)  # another process, in effect: it reads them all
    monkeypatch.setattr(XNES, "from_state", classmethod(counted))
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=41)
    assert len(sampler.generations(study)) == 10
    assert len(calls) == 10  # this process stored every state, each checked once
    study.sampler = fresh
    study.optimize(objective, n_trials=4)
    n_states = len(fresh.generations(study))
    assert 11 <= len(calls) <= 10 + n_states


def test_an_extra_sample_in_flight_when_the_generation_closes_is_told_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time

    from nes_asktell.integrations.optuna import _search

    # The generation waits for its extras until max(4 median durations, MIN_WAIT) after its last
    # candidate; a long MIN_WAIT here so that no stall of a busy machine ends the wait early
    # (the wait ends as soon as the extra finishes, so the test is not slower for it).
    monkeypatch.setattr(_search, "MIN_WAIT", 120.0)
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=1)  # the startup trial

    def asked() -> optuna.Trial:
        t = study.ask()
        objective(t)  # suggests the parameters: the trial takes its candidate
        return t

    held = [asked() for _ in range(4)]  # the 4 candidates of generation 0
    # an extra sample, still running when the last candidate finishes; started by another
    # thread (as by another process: the trials of the sampling thread are not waited for)
    box: list[optuna.Trial] = []
    starter = threading.Thread(target=lambda: box.append(asked()))
    starter.start()
    starter.join()
    (extra,) = box
    assert ch.parse_candidate(study._storage.get_trial(extra._trial_id)).index == 4  # type: ignore[union-attr]
    for t in held:
        study.tell(t, objective(t))
    closer = study.ask()

    def finish_the_extra_once_the_closer_waits() -> None:
        limit = time.monotonic() + 60.0
        while ch.CLOSING not in study._storage.get_trial(closer._trial_id).system_attrs:
            assert time.monotonic() < limit
            time.sleep(0.001)
        study.tell(extra, objective(extra))

    helper = threading.Thread(target=finish_the_extra_once_the_closer_waits)
    helper.start()
    objective(closer)  # samples: waits for the extra, then tells generation 0
    helper.join()
    chain = check_chain(study, sampler)
    assert chain[1]["trial"] == closer.number
    assert chain[1]["told"][4:] == [extra.number]  # told as the fifth row of generation 0
    state = stored_state(study.trials[closer.number])
    assert state["run"]["nfev"] == 5  # type: ignore[index]
    assert state["run"]["popsize"] == 4  # type: ignore[index]
    assert study.trials[closer.number].system_attrs[ch.CLOSING] == chain[0]["state"]


@pytest.mark.slow
def test_a_study_whose_other_running_trials_are_dead_does_not_wait_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from nes_asktell.integrations.optuna import _search

    # A copy of a study (or a study resumed after its workers were killed) holds RUNNING trials
    # nobody runs. Once the extra samples were used up, the only process waited for them to be
    # presumed dead, judged by the storage's times alone: with nothing left to finish those
    # stood still, and it waited for ever. Now the generation closes a short wait after its
    # last extra sample was handed out, telling the dead candidates as missing.
    monkeypatch.setattr(_search, "MIN_WAIT", 0.2)  # the wait for the extras in flight (2 s)
    source = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    source.optimize(objective, n_trials=9)
    for _ in range(3):
        objective(source.ask())  # RUNNING, holding candidates of generation 2
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    study.add_trials(source.trials)
    dead = [t for t in study.trials if t.state == TrialState.RUNNING]
    assert all(ch.parse_candidate(t) is not None for t in dead)
    run = threading.Thread(target=study.optimize, args=(objective, 30), daemon=True)
    run.start()
    run.join(timeout=60.0)  # a guard: it takes about the grace period
    assert not run.is_alive(), "the study waited for ever for its dead trials"
    chain = check_chain(study, study.sampler)  # type: ignore[arg-type]
    assert len(chain) >= 5
    for t in dead:  # each dead candidate told as missing, never handed out again
        cand = ch.parse_candidate(t)
        assert cand is not None
        assert [u.number for u in study.trials if ch.parse_candidate(u) == cand] == [t.number]
        assert told_as_missing(chain, cand) is True


def test_generations_list_no_stale_told_numbers_of_states_copied_into_a_study() -> None:
    # States copied by study.add_trials into a study that already had trials (as
    # optuna.copy_study or a user merging studies does) keep the told numbers of their first
    # study, where the trials were numbered otherwise: the listing showed [4, 1, 3, 2] for
    # generation 1, and trial 1 of the copy is a trial of the random sampler. Now a told list
    # whose numbers do not name trials of the parent state's candidates is listed as None.
    source = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    source.optimize(quadratic_2d, n_trials=13)
    assert check_chain(source, source.sampler)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(quadratic_2d, n_trials=3)
    study.add_trials(source.trials)
    sampler = NESSampler(seed=0, popsize=4)
    copied = sampler.generations(study)
    assert [g["generation"] for g in copied] == [0, 1, 2]
    assert [g["told"] for g in copied] == [[], None, None]
    study.sampler = sampler
    study.optimize(quadratic_2d, n_trials=8)  # the search goes on from the copied chain
    chain = sampler.generations(study)
    assert [g["state"] for g in chain[:3]] == [g["state"] for g in copied]
    assert len(chain) >= 4
    candidate_of = {t.number: ch.parse_candidate(t) for t in study.trials}
    for prev, entry in itertools.pairwise(chain[2:]):  # the states told in this study
        told = entry["told"]
        assert isinstance(told, list)
        assert len(told) >= 4
        for n in told:
            cand = candidate_of[n]
            assert cand is not None
            assert cand.state == prev["state"]


def _resumed_after_a_dead_batch(n_dead: int) -> tuple[optuna.Study, list[int]]:
    """Return a study whose worker died with `n_dead` asked trials (popsize 4), resumed.

    The resumed study has a fresh sampler, as a new process would; the second item holds the
    numbers of the dead trials (RUNNING for ever, each holding a candidate or extra sample).
    """
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(
        storage=storage, study_name="s", sampler=NESSampler(seed=0, popsize=4)
    )
    study.optimize(objective, n_trials=5)
    for _ in range(n_dead):  # the batch of a worker that then died
        objective(study.ask())
    dead = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    held = [ch.parse_candidate(study.trials[n]) for n in dead]
    assert sorted(c.index for c in held if c is not None) == list(range(n_dead))
    resumed = optuna.load_study(
        storage=storage, study_name="s", sampler=NESSampler(seed=0, popsize=4)
    )
    return resumed, dead


def test_a_study_resumed_after_its_batch_of_trials_died_does_not_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from nes_asktell.integrations.optuna import _search

    # A worker died with 20 trials in flight (popsize 4): they held every candidate and every
    # extra sample. Resumed, each new trial waited for the dead ones to be presumed dead, which
    # needs `popsize` trials numbered after them finished: none ever finished, and the first
    # new trial waited for ever. Trials not yet overtaken are not waited for: the first
    # `popsize` new trials are drawn independently, then the dead candidates are handed out.
    monkeypatch.setattr(_search, "MIN_GRACE", 0.2)  # the grace period (5 s by default)
    monkeypatch.setattr(_search, "MIN_WAIT", 0.2)  # the wait for the extras in flight (2 s)
    study, dead = _resumed_after_a_dead_batch(20)
    run = threading.Thread(target=study.optimize, args=(objective, 12), daemon=True)
    run.start()
    run.join(timeout=30.0)  # a guard: it takes about a second
    assert not run.is_alive(), "the resumed study waited for ever for its dead trials"
    new = study.trials[dead[-1] + 1 :]
    assert len(new) == 12
    assert all(t.state == TrialState.COMPLETE for t in new)
    assert all(t.system_attrs.get(ch.CANDIDATE, 0) is None for t in new[:4])  # independent
    for n in dead:  # each dead candidate handed out once more, each extra sample never
        cand = ch.parse_candidate(study.trials[n])
        assert cand is not None
        copies = [t for t in study.trials if ch.parse_candidate(t) == cand]
        assert len(copies) == (2 if cand.index < 4 else 1)
    assert len(check_chain(study, study.sampler)) >= 3  # type: ignore[arg-type]


def test_a_batch_asked_after_a_dead_batch_does_not_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from nes_asktell.integrations.optuna import _search

    # Batch ask-and-tell resumed after a dispatcher died with 8 trials in flight (popsize 4):
    # once the new batch had taken the other 12 extra samples, study.ask() waited for the dead
    # trials, which no trial of the batch (told only after it is asked) could ever overtake.
    # The generation does not close while the batch's own trials are in flight (they would be
    # lost): the rest of the batch is drawn independently, and the next trial after the batch
    # closes it, the dead candidates told as missing.
    monkeypatch.setattr(_search, "MIN_GRACE", 0.2)  # the grace period (5 s by default)
    study, dead = _resumed_after_a_dead_batch(8)
    batch: list[optuna.Trial] = []

    def ask() -> None:
        for _ in range(16):
            trial = study.ask()
            objective(trial)
            batch.append(trial)

    run = threading.Thread(target=ask, daemon=True)
    run.start()
    run.join(timeout=30.0)  # a guard: it takes a fraction of a second
    assert not run.is_alive(), f"study.ask() of batch trial {len(batch)} never returned"
    held = [ch.parse_candidate(study.trials[t.number]) for t in batch]
    assert [c.index for c in held[:12] if c is not None] == list(range(8, 20))  # the extras
    assert all(study.trials[t.number].system_attrs[ch.CANDIDATE] is None for t in batch[12:])
    for t in batch:
        study.tell(t, objective(t))
    study.optimize(objective, n_trials=6)
    chain = check_chain(study, study.sampler)  # type: ignore[arg-type]
    assert len(chain) >= 2
    for n in dead:  # never handed out again; each candidate told as missing
        cand = ch.parse_candidate(study.trials[n])
        assert cand is not None
        assert [t.number for t in study.trials if ch.parse_candidate(t) == cand] == [n]
        assert cand.index >= 4 or told_as_missing(chain, cand) is True
    assert all(ch.parse_candidate(t) is not None for t in study.trials[-6:])
    points = [tuple(t.params.values()) for t in study.trials if t.number not in dead]
    assert len(set(points)) == len(points)


def study_with_a_held_candidate() -> tuple[optuna.Study, optuna.Study, optuna.Trial, float]:
    """Return a study (popsize 2, its startup trial done), another worker's view of it (its own
    sampler) and that worker's RUNNING trial holding a candidate, with its value (not told)."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, sampler=NESSampler(seed=0, popsize=2))
    study.optimize(objective, n_trials=1)
    other = optuna.load_study(
        study_name=study.study_name, storage=storage, sampler=NESSampler(seed=0, popsize=2)
    )
    held = other.ask()
    return study, other, held, objective(held)


def test_a_long_wait_polls_at_most_every_quarter_second_and_never_overflows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time
    import types

    from nes_asktell.integrations.optuna import _sampler, _search

    # A trial waiting for a live candidate backs off its polls to 0.25 s; the back-off was
    # computed as 0.01 * 1.5**attempt, a float overflow (OverflowError) at attempt ~1750,
    # about 7.3 minutes into the wait. Here the sleeps return at once and the held trial is
    # told after 3000 of them.
    monkeypatch.setattr(_search, "MIN_GRACE", 3600.0)  # never presumed dead within the test
    monkeypatch.setattr(_search, "MIN_LATE", 3600.0)  # never given up within the test
    study, other, held, value = study_with_a_held_candidate()
    delays: list[float] = []
    me = threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() != me:  # (a thread left behind by another test)
            time.sleep(seconds)
            return
        delays.append(seconds)
        if len(delays) == 3000:
            other.tell(held, value)

    monkeypatch.setattr(_sampler, "time", types.SimpleNamespace(sleep=sleep))
    # the other candidate and the 8 extra samples, then a trial that waits for `held`
    study.optimize(objective, n_trials=10)
    assert len(delays) == 3000
    assert delays[:3] == pytest.approx([0.01, 0.015, 0.0225])
    assert max(delays) == 0.25
    assert delays[-1] == 0.25
    chain = check_chain(study, study.sampler)  # type: ignore[arg-type]
    assert chain[1]["trial"] == study.trials[-1].number  # the waiting trial told it
    assert held.number in chain[1]["told"]  # type: ignore[operator]


def test_a_trial_that_study_optimize_runs_in_another_thread_is_never_handed_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time

    from nes_asktell.integrations.optuna import _search

    # With study.optimize(n_jobs=2), a slow trial of one thread had its candidate handed out
    # again by the other once the grace period was over: one point, two live trials. The
    # sampler then knew such a trial was alive, and once its 8 extra samples were used up the
    # other thread's trials were drawn by the independent sampler (random points the search
    # never used) until it finished. Now its generation gives up on it once the extras have
    # finished (told as missing), and the search goes on beside it.
    monkeypatch.setattr(_search, "MIN_GRACE", 0.2)  # it would be presumed dead at once
    sampler = NESSampler(seed=0, popsize=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=1)
    released = threading.Event()

    def slow_once(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.number == 1:  # alive until the other thread has finished 40 trials
            deadline = time.monotonic() + 60.0  # a guard
            while time.monotonic() < deadline:
                trials = study.get_trials(deepcopy=False)
                if sum(t.state.is_finished() for t in trials) >= 41:
                    released.set()
                    break
                time.sleep(0.01)
        return value

    study.optimize(slow_once, n_trials=50, n_jobs=2)
    assert released.is_set()
    end = study.trials[1].datetime_complete
    assert end is not None
    during = [
        t for t in study.trials[2:] if t.datetime_start is not None and t.datetime_start < end
    ]
    assert len(during) >= 40
    # every trial beside the slow one evaluated a candidate of the search, none independently
    assert all(ch.parse_candidate(t) is not None for t in during)
    cand = ch.parse_candidate(study.trials[1])
    assert cand is not None
    assert cand.index < 2
    assert [t.number for t in study.trials if ch.parse_candidate(t) == cand] == [1]
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(set(points)) == len(points)
    # its generation closed without it, and the search went on beside it
    chain = check_chain(study, sampler)
    assert told_as_missing(chain, cand) is True
    assert len(chain) >= 4


def test_trials_asked_in_a_batch_and_told_later_never_wait_for_each_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    from nes_asktell.integrations.optuna import _sampler

    # Optuna's batch ask-and-tell: one thread asks several trials, suggests their parameters,
    # then tells them. The trials in flight cannot finish while that thread waits, so waiting
    # for them (for the extras in flight when a generation closes, or for a live candidate once
    # the extras are used up: 2 + 8 here, fewer than 12) would stall it, for ever in the second.
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"a trial waited {seconds} s for a trial of its own thread")

    monkeypatch.setattr(_sampler, "time", types.SimpleNamespace(sleep=no_sleep))
    sampler = NESSampler(seed=0, popsize=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=1)
    for _ in range(4):
        batch = [study.ask() for _ in range(12)]
        values = [objective(t) for t in batch]
        for t, value in zip(batch, values, strict=True):
            study.tell(t, value)
    chain = check_chain(study, sampler)
    assert len(chain) == 4  # a generation stored by the first trial of each batch
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(set(points)) == len(points)


def test_a_trial_asked_and_never_told_before_optimize_does_not_hold_the_search() -> None:
    # User code raised between study.ask() and study.tell(): the trial stays RUNNING, started
    # by this thread. Its candidate held the generation: the trials of the next optimize took
    # the extra samples, then drew independent points until its grace period of 5 s ended,
    # which a quick study never reaches (the search stopped at generation 4: 18 of 321 trials
    # told, best 2.8e-3 against 3.5e-12 without the stray trial). While this thread runs
    # optimize, that trial cannot finish: it is presumed dead at once, and its candidate is
    # handed out again once the extra samples are used up.
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic_2d, n_trials=20)
    stray = study.ask()
    quadratic_2d(stray)
    study.optimize(quadratic_2d, n_trials=300)
    cand = ch.parse_candidate(study.trials[stray.number])
    assert cand is not None
    copies = [t.number for t in study.trials if ch.parse_candidate(t) == cand]
    assert copies[0] == stray.number
    assert len(copies) == 2  # handed out again, once
    chain = check_chain(study, NESSampler(seed=0))
    assert told_as_missing(chain, cand) is False  # the copy's value is told
    assert len(chain) >= 30  # (4 before)
    fallback = [t for t in study.trials[21:] if ch.parse_candidate(t) is None]
    assert not fallback  # every trial of the second optimize evaluated a candidate
    assert study.best_value < 1e-6


def test_a_trial_asked_and_never_told_in_an_ask_and_tell_loop_does_not_hold_the_search() -> None:
    # The same stray trial in a loop of study.ask() and study.tell() (no optimize): it was one
    # of the thread's own trials in flight, so its generation stayed open; the loop took the
    # extra samples, then drew independent points until the 5 s grace period ended, which a
    # quick loop never reaches (300 trials: 251 drawn independently, best 0.35, against 1 and
    # 8.7e-5 without the stray trial). The thread has told trials it asked after it, so it is
    # not part of a batch in flight: it is judged as another process's, late once the extras
    # are used up and 4 median durations (0.5 s at least) have passed since it started, and
    # its generation closes without it (it is not handed out again: it may still be told).
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    stray = None
    for i in range(150):
        trial = study.ask()
        value = quadratic_2d(trial)
        if i == 10:
            stray = trial
            continue
        study.tell(trial, value)
    assert stray is not None
    assert study.trials[stray.number].state == TrialState.RUNNING
    cand = ch.parse_candidate(study.trials[stray.number])
    assert cand is not None
    assert [t.number for t in study.trials if ch.parse_candidate(t) == cand] == [stray.number]
    chain = check_chain(study, NESSampler(seed=0))
    assert told_as_missing(chain, cand) is True
    assert len(chain) >= 15  # (3 before)
    fallback = [t.number for t in study.trials[1:] if ch.parse_candidate(t) is None]
    assert not fallback  # (after the startup trial, 100 of 149 before)
    study.tell(stray, quadratic_2d(stray))  # told late: accepted, and the search goes on
    study.optimize(quadratic_2d, n_trials=20)
    check_chain(study, NESSampler(seed=0))


@pytest.mark.parametrize(("seed_b", "distinct"), [(0, 32), (1, 40)])
def test_searches_of_other_settings_with_the_same_seed_start_with_the_same_points(
    seed_b: int, distinct: int
) -> None:
    # docs/optuna.rst, Several processes: the seed, not the settings, sets the noise, so two
    # searches started together from the centre with one seed draw the same first
    # candidates (generation 0 and one of generation 1 here); other seeds, no repeats.
    def f(t: optuna.Trial) -> float:
        return sum((t.suggest_float(f"x{i}", -5, 5) - 1) ** 2 for i in range(3))

    a, b = NESSampler(seed=0), NESSampler(seed=seed_b, surrogate=True)
    study = optuna.create_study()
    for i in range(40):
        study.sampler = a if i % 2 else b
        study.optimize(f, n_trials=1)
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(set(points)) == distinct


def long_waits_fail(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make a generation's wait for its extras last 30 s at least (MIN_WAIT), and fail a test
    once the sampler has slept 10 s in all (at once, rather than after 30 s, then 120 s, ...).

    Returns the list of the sampler's sleeps.
    """
    import time as real_time
    import types

    from nes_asktell.integrations.optuna import _sampler, _search

    monkeypatch.setattr(_search, "MIN_WAIT", 30.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if sum(slept) >= 10.0:
            raise AssertionError(f"the sampler waited {sum(slept):.1f} s in all")
        real_time.sleep(seconds)

    monkeypatch.setattr(_sampler, "time", types.SimpleNamespace(sleep=sleep))
    return slept


def test_trials_asked_ahead_and_sampled_in_a_thread_pool_are_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Batches asked in the main thread, suggested and evaluated by a pool of 2 threads, told by
    # the main thread. A pool thread about to tell a generation waited for the batch's other
    # trials (RUNNING, with no record yet, queued behind the waiting threads) until the
    # deadline, max(4 x the median trial duration, MIN_WAIT): the rounds took 0.1, 0.1, 2.1,
    # 8.3, 33.5 and 133.9 s, as the durations came to include the waits. A trial started in
    # the sampler's own process samples after it under its lock: it is not waited for. With
    # MIN_WAIT at 30 s, one such wait would last 30 s or more.
    slept = long_waits_fail(monkeypatch)

    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(7):
            batch = [study.ask() for _ in range(12)]
            values = list(pool.map(quadratic_2d, batch))
            for t, value in zip(batch, values, strict=True):
                study.tell(t, value)
    # (waits for extras in flight in the other pool thread remain: a trial's time, at most)
    assert sum(slept) < 10.0
    assert len(check_chain(study, sampler)) >= 5  # a generation or more per round


def test_trials_told_out_of_order_from_a_thread_pool_are_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time as real_time
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    # The main thread asks, a pool of 4 threads evaluates (a slow trial now and then), and the
    # main thread tells each trial as it completes: a trial it moved past (a later one was
    # told first) is `passed`, so its generation may close without it once it is late, but
    # its tell needs the main thread: it is never waited for. A first version of that rule
    # judged such a trial as another process's, and a generation about to close waited for
    # it until the deadline (MIN_WAIT): 300 trials took 25-27 s instead of 1.2-1.4 s.
    slept = long_waits_fail(monkeypatch)

    durations = np.random.default_rng(0).choice([0.005, 0.005, 0.005, 0.05], size=400)

    def slow_now_and_then(number: int, x: list[float]) -> float:
        real_time.sleep(float(durations[number]))
        return sum((xi - 1) ** 2 for xi in x)

    def start(pool: ThreadPoolExecutor) -> None:
        t = study.ask()  # sampled in the main thread, evaluated in the pool
        x = [t.suggest_float(f"x{i}", -5, 5) for i in range(3)]
        running[pool.submit(slow_now_and_then, t.number, x)] = t

    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    running: dict[Future[float], optuna.Trial] = {}
    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            start(pool)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                study.tell(running.pop(future), future.result())
                if len(study.trials) < 300:
                    start(pool)
    assert sum(slept) < 10.0
    assert len(check_chain(study, sampler)) >= 10
    fallback = [t.number for t in study.trials[1:] if ch.parse_candidate(t) is None]
    assert len(fallback) <= 5


WORKER_ASKING_AHEAD = OPEN_STORAGE + textwrap.dedent(
    """
    import time
    signal.alarm(120)  # (a worker still running then ends, and the test fails)
    study = optuna.load_study(study_name="s", storage=storage, sampler=NESSampler(seed=0))

    def f(trial):
        value = sum((trial.suggest_float(f"x{i}", -5, 5) - 1) ** 2 for i in range(3))
        time.sleep(0.01)  # (an objective that takes time)
        return value

    rounds = []
    for _ in range(n_trials // 8):
        start = time.monotonic()
        batch = [study.ask() for _ in range(8)]
        for t in batch:
            study.tell(t, f(t))
        rounds.append(time.monotonic() - start)
    print(json.dumps(rounds))
    """
)


@pytest.mark.slow
def test_processes_asking_ahead_do_not_wait_longer_each_round(tmp_path: Path) -> None:
    # Two processes on one journal file, each asking 8 trials, then suggesting, evaluating and
    # telling them one by one. Each waited for the other's asked trials (RUNNING, no record
    # yet) until the deadline, and the deadlines grew with durations that included the
    # waits: rounds of 2.1 s, then 42.3 s, then more than 355 s. A trial with no record that
    # started MIN_WAIT (2 s) or more ago is not about to sample: it is not waited for.
    storage, where = make_storage("journal", tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    script = tmp_path / "ahead.py"
    script.write_text(WORKER_ASKING_AHEAD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "journal", where, "64"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    rounds: list[float] = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
        rounds += json.loads(out.decode().strip().splitlines()[-1])
    assert len(rounds) == 16
    # a round waits at most about MIN_WAIT for the other process's trials (2.1 s measured)
    assert max(rounds) < 30.0, rounds
    study = optuna.load_study(study_name="s", storage=storage)
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 128


@pytest.mark.slow
def test_with_a_heartbeat_a_running_candidate_is_never_handed_out_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from nes_asktell.integrations.optuna import _search

    monkeypatch.setattr(_search, "MIN_GRACE", 0.2)  # it would be presumed dead at once
    monkeypatch.setattr(_search, "MIN_WAIT", 0.2)  # the wait for the extras in flight (2 s)
    url = f"sqlite:///{tmp_path / 'hb.db'}"

    def storage() -> optuna.storages.BaseStorage:
        return optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=60)

    study = optuna.create_study(storage=storage(), sampler=NESSampler(seed=0, popsize=2))
    assert ch.heartbeat_enabled(study)
    study.optimize(objective, n_trials=1)
    # A slow trial of another worker (its own storage and sampler), run by study.optimize: it
    # records a heartbeat, so Optuna, not the sampler, decides whether it died.
    other = optuna.load_study(
        study_name=study.study_name, storage=storage(), sampler=NESSampler(seed=0, popsize=2)
    )
    release = threading.Event()

    def slow(trial: optuna.Trial) -> float:
        value = objective(trial)
        release.wait(timeout=120.0)
        return value

    worker = threading.Thread(target=other.optimize, args=(slow, 1), daemon=True)
    worker.start()
    for _ in range(6000):  # a guard: until its candidate and heartbeat are stored
        watched = ch.heartbeat_trials(study)
        if watched and ch.parse_candidate(study.trials[-1]) is not None:
            break
        threading.Event().wait(0.01)
    assert watched == frozenset({1})
    study.optimize(objective, n_trials=14)
    release.set()
    worker.join(timeout=120.0)
    assert not worker.is_alive()
    cand = ch.parse_candidate(study.trials[1])
    assert cand is not None
    assert cand.index < 2
    copies = [t.number for t in study.trials if ch.parse_candidate(t) == cand]
    assert copies == [1]
    # its generation closed without it once the other candidate and the 8 extra samples were
    # handed out (it is told as missing), and every later trial took a candidate of the next
    chain = check_chain(study, NESSampler(seed=0, popsize=2))
    assert told_as_missing(chain, cand) is True
    assert all(ch.parse_candidate(t) is not None for t in study.trials[1:])


HANGING_WORKER = OPEN_STORAGE.replace(
    'f"sqlite:///{where}", ', 'f"sqlite:///{where}", heartbeat_interval=1, grace_period=2, '
) + textwrap.dedent(
    """
    import threading

    def objective(trial):
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", 1e-3, 10.0, log=True)
        n = trial.suggest_int("n", 0, 10)
        if trial.number == n_trials:
            print(trial.number, flush=True)  # the parent kills this process now
            threading.Event().wait()
        return (x - 1.0) ** 2 + math.log10(y) ** 2 + (n - 3) ** 2

    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    study.optimize(objective)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("retry", [False, True])
def test_with_a_heartbeat_a_worker_killed_mid_trial_is_failed_and_the_search_goes_on(
    tmp_path: Path, retry: bool
) -> None:
    import threading

    # A worker process of an RDBStorage study with a heartbeat is killed (SIGKILL) in the
    # middle of a trial holding a candidate; another worker goes on. Optuna fails the dead
    # trial once its heartbeat is older than the grace period (fail_stale_trials, run before
    # each trial of study.optimize); meanwhile the sampler neither waits for it for ever nor
    # hands its candidate out again, and the generation is told without it. With Optuna's
    # retry callback the failed trial comes back once as a WAITING copy, which evaluates the
    # same candidate (its record and parameters are copied): the only copy of it.
    where = str(tmp_path / "study.db")
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    callback = "heartbeat_stale_trial_callback" if retry_cls else "failed_trial_callback"
    retry_cls = retry_cls or optuna.storages.RetryFailedTrialCallback  # (before Optuna 4.9)
    retried = {callback: retry_cls(max_retry=1)} if retry else {}

    def storage() -> optuna.storages.BaseStorage:
        return optuna.storages.RDBStorage(
            f"sqlite:///{where}",
            heartbeat_interval=1,
            grace_period=2,
            engine_kwargs={"connect_args": {"timeout": 60}},
            **retried,
        )

    study = optuna.create_study(
        study_name="s", storage=storage(), sampler=NESSampler(seed=0, popsize=4)
    )
    study.optimize(objective, n_trials=2)  # the startup trial and a candidate of generation 0
    script = tmp_path / "worker.py"
    script.write_text(HANGING_WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    victim = 3  # a candidate of generation 0, asked after two others
    worker = subprocess.Popen(
        [sys.executable, str(script), "sqlite", where, str(victim)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # blocks until the victim trial has suggested
        assert line.strip() == str(victim).encode(), worker.stderr.read().decode()  # type: ignore[union-attr]
        for _ in range(6000):  # a guard: until its heartbeat is stored (at once, in practice)
            if victim in ch.heartbeat_trials(study):
                break
            threading.Event().wait(0.01)
        assert victim in ch.heartbeat_trials(study)
    finally:
        worker.kill()  # SIGKILL
        worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    dead = study.trials[victim]
    assert dead.state == TrialState.RUNNING
    cand = ch.parse_candidate(dead)
    assert cand is not None
    assert cand.generation == 0

    sampler = NESSampler(seed=0, popsize=4)
    other = optuna.load_study(study_name="s", storage=storage(), sampler=sampler)

    def until_failed_and_told(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # (the dead trial fails at least 2 s after the kill: trials go on until then)
        if study.trials[victim].state == TrialState.FAIL and len(sampler.generations(study)) >= 6:
            study.stop()

    other.optimize(objective, timeout=120, callbacks=[until_failed_and_told])  # (a guard)
    trials = other.trials
    assert trials[victim].state == TrialState.FAIL
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != victim)
    copies = [t.number for t in trials if ch.parse_candidate(t) == cand]
    if retry:  # Optuna's copy of the failed trial, run once, the candidate's only copy
        assert len(copies) == 2
        assert copies[0] == victim
        assert trials[copies[1]].system_attrs["failed_trial"] == victim
        assert trials[copies[1]].params == dead.params
    else:
        assert copies == [victim]  # never handed out again (its trial records a heartbeat)
    chain = check_chain(other, NESSampler(seed=0, popsize=4))
    assert len(chain) >= 6
    # told as missing, or as the outcome of a copy (the FAIL, or the retry) that was there
    # before the generation closed: which one depends on the timing, not the search
    told = chain[1]["told"]
    assert isinstance(told, list)
    assert told[cand.index] in (-1, *copies)
    # no generation stuck: every trial after the kill took a candidate or an extra sample
    assert all(ch.parse_candidate(t) is not None for t in trials[victim + 1 :])


@pytest.mark.slow
def test_with_a_heartbeat_an_asked_trial_that_records_none_is_handed_out_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nes_asktell.integrations.optuna import _search

    # A trial started by study.ask() records no heartbeat, so Optuna never fails it. The
    # sampler trusted Optuna with it all the same: the candidate it held was never handed out
    # again, its generation was never told, and the rest of the study was drawn by the
    # independent sampler.
    monkeypatch.setattr(_search, "MIN_GRACE", 0.2)  # the grace period (5 s by default)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=60, grace_period=120
    )
    sampler = NESSampler(seed=0, popsize=2)
    study = optuna.create_study(storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=1)
    abandoned = study.ask()  # RUNNING for ever, as if its process had died
    objective(abandoned)
    assert ch.heartbeat_trials(study) == frozenset()
    study.optimize(objective, n_trials=30)
    cand = ch.parse_candidate(study.trials[abandoned.number])
    assert cand is not None
    copies = [t for t in study.trials if ch.parse_candidate(t) == cand]
    assert copies[0].number == abandoned.number
    assert len(copies) == 2
    assert copies[1].state == TrialState.COMPLETE
    # the search goes on: every trial after the copy holds a candidate
    after = [t for t in study.trials if t.number > copies[1].number]
    assert after
    assert all(ch.parse_candidate(t) is not None for t in after)
    assert len(sampler.generations(study)) >= 4


def test_candidate_records_read_running_trials_afresh_and_finished_ones_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A running trial may change its record (it yields a contested candidate); a finished one
    # cannot, so its parsed record is indexed once per storage and study. Two storages with the
    # same trial ids keep their own records.
    a, b = ch.Candidate(ch.digest_of("a"), 0, 1), ch.Candidate(ch.digest_of("b"), 0, 2)
    studies = [optuna.create_study(), optuna.create_study()]
    trials = [s.ask() for s in studies]
    assert trials[0]._trial_id == trials[1]._trial_id  # fresh in-memory storages
    for study, trial, cand in zip(studies, trials, (a, b), strict=True):
        ch.record_candidate(study, study._storage.get_trial(trial._trial_id), cand)
    assert ch.candidate_records(studies[0], a.state) == {0: a}
    assert ch.candidate_records(studies[0], b.state) == {}
    assert ch.candidate_records(studies[1], b.state) == {0: b}
    ch.record_candidate(studies[0], studies[0]._storage.get_trial(trials[0]._trial_id), b)
    assert ch.candidate_records(studies[0], a.state) == {}  # running: read again
    assert ch.candidate_records(studies[0], b.state) == {0: b}
    studies[0].tell(trials[0], 1.0)
    studies[1].tell(trials[1], 1.0)
    assert ch.candidate_records(studies[0], b.state) == {0: b}
    assert ch.candidate_records(studies[1], b.state) == {0: b}
    fresh = studies[0].ask()
    ch.record_candidate(studies[0], studies[0]._storage.get_trial(fresh._trial_id), b)
    parsed: list[int] = []
    parse = ch.parse_candidate
    monkeypatch.setattr(ch, "parse_candidate", lambda t: parsed.append(t.number) or parse(t))
    assert ch.candidate_records(studies[0], b.state) == {0: b, 1: b}
    assert ch.candidate_records(studies[0], b.state) == {0: b, 1: b}
    assert parsed == [1, 1]  # the running trial 1 is read each time, the finished 0 never


def test_a_strategy_subclass_without_a_name_of_its_own_samples_every_trial() -> None:
    # its state names the parent; every trial after the first used to crash reading it back
    from nes_asktell import XNES

    class Mine(XNES):
        pass

    study = optuna.create_study(sampler=NESSampler(strategy=Mine, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study.optimize(
            lambda t: t.suggest_float("x", -5, 5) ** 2 + t.suggest_float("y", -5, 5) ** 2,
            n_trials=20,
        )
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 20
    assert study.best_value < 1.0


def test_a_strategy_that_cannot_read_back_its_own_state_is_refused_by_the_constructor() -> None:
    from nes_asktell import XNES

    class Forgetful(XNES):  # (no name of its own: registering one would outlive the test)
        @classmethod
        def from_state(cls, state, *, shaping=None):
            raise ValueError("`state` is malformed: nothing is kept")

    with pytest.raises(TypeError, match="`strategy` Forgetful cannot read back its own state"):
        NESSampler(strategy=Forgetful, seed=0)


def test_startup_trials_count_complete_trials_as_documented() -> None:
    # docs/optuna.rst: the independent sampler draws every trial until `n_startup_trials`
    # trials are COMPLETE; failed startup trials do not count
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=NESSampler(seed=0, n_startup_trials=2))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number < 3:
            raise RuntimeError("a failing startup trial")
        return x

    study.optimize(objective, n_trials=8, catch=(RuntimeError,))
    searched = [ch.CANDIDATE in t.system_attrs for t in study.trials]
    assert searched == [False] * 5 + [True] * 3


def test_a_parameter_name_with_a_lone_surrogate_is_drawn_as_any_other() -> None:
    # Any str is a parameter name for Optuna, one from os.fsdecode of a file name that is no
    # UTF-8 too ("layer_\udcff"). With a seed, the independent draws are seeded from the
    # name's bytes, and encoding such a name raised UnicodeEncodeError in the first trial
    # (Optuna's own samplers run the study). Every other name keeps its seed.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    odd = os.fsdecode(b"layer_\xff")
    assert odd == "layer_\udcff"
    studies = {}
    for name in (odd, "layer"):
        study = optuna.create_study(sampler=NESSampler(seed=0))
        study.optimize(
            lambda t, n=name: t.suggest_float(n, -1.0, 1.0) ** 2 + t.suggest_float("x", 0.0, 1.0),
            n_trials=12,
        )
        studies[name] = study
    assert all(t.state == TrialState.COMPLETE for t in studies[odd].trials)
    assert studies[odd].trials[0].params["x"] == studies["layer"].trials[0].params["x"]
    assert ch.CANDIDATE in studies[odd].trials[-1].system_attrs  # searched after the startup


def test_a_candidate_finished_after_its_generation_gave_up_on_it_stays_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nes_asktell.integrations.optuna import _search

    # The rule for a late candidate reads only the storage's times, so a process that reads
    # after the late trial has finished tells the generation as one that read before it did.
    monkeypatch.setattr(_search, "MIN_LATE", 0.0)  # late after 4 median durations
    study, other, held, value = study_with_a_held_candidate()
    study.optimize(objective, n_trials=3)  # the other candidate, then two extra samples
    trials = study.get_trials(deepcopy=False)
    cand = ch.parse_candidate(trials[held.number])
    assert cand is not None
    rows = [ch.parse_candidate(t) for t in trials[2:5]]
    assert [None if c is None else c.index for c in rows] == [1 - cand.index, 2, 3]
    records = {t.number: c for t in trials if (c := ch.parse_candidate(t)) is not None}
    numbers = sorted(n for n, c in records.items() if c.state == cand.state)
    give_up = _search.exhaustion(trials, numbers, records, 2, 8)
    assert give_up is not None
    extras = [trials[n] for n in numbers if records[n].index >= 2]
    first = max(t.datetime_complete for t in extras if t.datetime_complete is not None)
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in trials
        if t.number in numbers and t.datetime_complete is not None and t.datetime_start
    ]
    began = trials[held.number].datetime_start
    assert began is not None
    expected = max(first, began + datetime.timedelta(seconds=4.0 * float(np.median(durations))))
    assert give_up == expected
    while datetime.datetime.now() <= give_up:  # (a guard: at most 4 median durations)
        pass
    other.tell(held, value)  # it finishes after its generation gave up on it
    study.optimize(objective, n_trials=1)  # this trial tells the generation
    chain = check_chain(study, study.sampler)  # type: ignore[arg-type]
    assert len(chain) == 2
    assert told_as_missing(chain, cand) is True
    assert chain[1]["told"][2:] == [t.number for t in extras]


def test_a_running_trial_with_a_crafted_start_does_not_hold_its_generation() -> None:
    import copy
    import threading

    # A trial's start time is storage data like any other: a RUNNING trial added with a start
    # in 2100, holding a candidate, made the generation wait for it (once its extras were used
    # up) until 2100 plus the late time. Its start counts as at most the time the extras had
    # finished.
    source = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    source.optimize(objective, n_trials=9)
    for _ in range(3):
        objective(source.ask())  # RUNNING, holding candidates of generation 2
    crafted = []
    for t in source.trials:
        t = copy.deepcopy(t)
        if t.state == TrialState.RUNNING:
            t.datetime_start = datetime.datetime(2100, 1, 1)
        crafted.append(t)
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    study.add_trials(crafted)
    held = [t for t in study.trials if t.state == TrialState.RUNNING]
    assert [t.datetime_start for t in held] == [datetime.datetime(2100, 1, 1)] * 3
    run = threading.Thread(target=study.optimize, args=(objective, 30), daemon=True)
    run.start()
    run.join(timeout=60.0)  # a guard: it takes about a second
    assert not run.is_alive(), "the study waited for a trial that starts in 2100"
    chain = check_chain(study, study.sampler)  # type: ignore[arg-type]
    for t in held:  # each told as missing, never handed out again
        cand = ch.parse_candidate(t)
        assert cand is not None
        assert [u.number for u in study.trials if ch.parse_candidate(u) == cand] == [t.number]
        assert told_as_missing(chain, cand) is True


def test_extra_samples_with_crafted_completions_do_not_hold_their_generation() -> None:
    import copy
    import threading

    # Every extra sample of a generation held by a trial added as COMPLETE with a completion
    # in 2100, and a candidate RUNNING: the generation's time to give up on the candidate was
    # counted from 2100, and each new trial waited for it. A completion later than the time
    # the storage was read is not counted.
    source = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    source.optimize(objective, n_trials=9)
    asked = [source.ask() for _ in range(20)]  # the 4 candidates of generation 2, 16 extras
    for t in asked:
        objective(t)
    for t in asked[4:]:
        source.tell(t, 1.0)
    held = [ch.parse_candidate(source.trials[t.number]) for t in asked]
    assert sorted(c.index for c in held if c is not None) == list(range(20))
    crafted = []
    for t in source.trials:
        t = copy.deepcopy(t)
        if t.number in {u.number for u in asked[4:]}:
            t.datetime_start = datetime.datetime(2100, 1, 1)
            t.datetime_complete = datetime.datetime(2100, 1, 1, 0, 0, 1)
        crafted.append(t)
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    study.add_trials(crafted)
    run = threading.Thread(target=study.optimize, args=(objective, 8), daemon=True)
    run.start()
    run.join(timeout=60.0)  # a guard: it takes a fraction of a second
    assert not run.is_alive(), "the study waited for extra samples that finish in 2100"
    assert all(t.state == TrialState.COMPLETE for t in study.trials[len(crafted) :])
