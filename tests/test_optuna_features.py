"""NESSampler: how outcomes rank, constraints, integer margins and warm starts."""

from __future__ import annotations

import array
import collections
import itertools
import math
import threading
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from conftest import ALPHA_PER_ASSERTION  # noqa: E402
from nes_asktell.integrations.optuna import _storage as ch  # noqa: E402
from nes_asktell.integrations.optuna._search import (  # noqa: E402
    MAX_MARGIN_ALPHA,
    Loaded,
    Search,
    told_fitness,
)
from nes_asktell.integrations.optuna._space import UnitSpace  # noqa: E402
from nes_asktell.integrations.optuna._storage import violation  # noqa: E402
from optuna.distributions import FloatDistribution, IntDistribution  # noqa: E402
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.special import ndtri  # noqa: E402

from nes_asktell import XNES, NESSampler, NESWarning  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def made(
    state: TrialState,
    value: float | None = None,
    steps: dict[int, float] | None = None,
    constraints: list[float] | None = None,
) -> FrozenTrial:
    attrs = {} if constraints is None else {_CONSTRAINTS_KEY: constraints}
    return optuna.trial.create_trial(
        state=state,
        value=value,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        intermediate_values=steps or {},
        system_attrs=attrs,
    )


def trial_valued(value: object) -> FrozenTrial:
    """Return COMPLETE trial 3 holding `value` as it is (create_trial would check it)."""
    return FrozenTrial(
        number=3,
        state=TrialState.COMPLETE,
        value=value,  # type: ignore[arg-type]
        datetime_start=None,
        datetime_complete=None,
        params={"x": 1.0},
        distributions={"x": FloatDistribution(0.0, 10.0)},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=3,
    )


def test_outcomes_rank_complete_then_infeasible_then_pruned_then_failed() -> None:
    told = [
        made(TrialState.COMPLETE, 5.0),  # feasible
        made(TrialState.COMPLETE, 1.0, constraints=[-1.0, 0.0]),  # feasible
        made(TrialState.COMPLETE, 0.0, constraints=[2.0, -3.0]),  # violation 2
        made(TrialState.COMPLETE, 3.0, constraints=[0.25, 0.25]),  # violation 0.5
        made(TrialState.PRUNED, steps={0: 1.0, 5: 9.0}),  # pruned late
        made(TrialState.PRUNED, steps={1: 0.0}),  # pruned early: below the late ones
        made(TrialState.PRUNED, steps={5: 2.0}),  # late, with a better last value
        made(TrialState.PRUNED),  # pruned before any report: last of the pruned
        made(TrialState.FAIL),
        None,  # a candidate whose trials died
    ]
    # feasible values as themselves, the others the next floats above the worst of them, in
    # the order of their keys (ranks told instead put ranks into the strategy's record)
    a = above(5.0, 6)
    f = told_fitness(told, 1.0)
    assert f.tolist() == [5.0, 1.0, a[1], a[0], a[3], a[4], a[2], a[5], math.inf, math.inf]
    assert np.argsort(f, kind="stable").tolist() == [1, 0, 3, 2, 6, 4, 5, 7, 8, 9]
    # maximising negates the values, and nothing else
    b = above(-1.0, 6)
    g = told_fitness(told, -1.0)
    assert g.tolist() == [-5.0, -1.0, b[1], b[0], b[2], b[4], b[3], b[5], math.inf, math.inf]


def above(worst: float, n: int) -> list[float]:
    """Return the `n` floats next above `worst`, in order."""
    out = [np.nextafter(worst, math.inf)]
    while len(out) < n:
        out.append(np.nextafter(out[-1], math.inf))
    return [float(x) for x in out]


def test_outcomes_without_a_finite_feasible_value_are_told_their_ranks() -> None:
    told = [
        made(TrialState.COMPLETE, 0.0, constraints=[2.0]),
        made(TrialState.PRUNED, steps={3: 1.0}),
        made(TrialState.COMPLETE, 9.0, constraints=[0.5]),
        made(TrialState.FAIL),
    ]
    assert told_fitness(told, 1.0).tolist() == [1, 2, 0, math.inf]


@pytest.mark.parametrize("surrogate", [False, True])
def test_a_wholly_infeasible_generation_leaves_real_values_in_the_record(surrogate: bool) -> None:
    # Some generations of this study have no feasible trial: told their ranks, the run's best
    # value became the rank 0.0 (every value is above 10), so no later generation improved on
    # it (tolstagnation counted on) and ``ftarget`` held at once. The ranks still move the
    # distribution; the record stays as after a generation without a finite value.
    def objective(t: optuna.Trial) -> float:
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        t.set_user_attr("c", 0.9 - x)
        return 10 + (x - 0.9) ** 2 + (y - 0.5) ** 2

    sampler = NESSampler(
        seed=3, surrogate=surrogate, constraints_func=lambda t: [t.user_attrs["c"]]
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=60)
    trials = study.get_trials(deepcopy=False)
    values = {t.value for t in trials}
    wholly_infeasible = 0
    for g in sampler.generations(study)[1:]:
        carrier = ch.parse_carrier(trials[g["trial"]])  # type: ignore[index]
        assert carrier is not None
        record = ch.stored_state(trials[g["trial"]], carrier)["run"]["record"]  # type: ignore[index]
        told = [trials[n] for n in g["told"]]  # type: ignore[attr-defined]
        wholly_infeasible += bool(told) and all(t.user_attrs["c"] > 0 for t in told)
        assert record["best_f"] in values
        assert all(f in values for f in record["fhist"])
    assert wholly_infeasible >= 2


@pytest.mark.parametrize("surrogate", [False, True])
def test_a_run_without_a_feasible_value_yet_records_no_rank_as_its_best_value(
    surrogate: bool,
) -> None:
    # The first generations have no feasible trial (x > 0.95 is rare around the centre): told
    # their ranks, a run with no value yet recorded the rank 0.0 as its best value, so
    # ``ftarget=1`` (every value is above 10) held and the run restarted, generation after
    # generation, doubling its population each time. No value reaches the target: the run
    # goes on, and its record holds values only.
    def objective(t: optuna.Trial) -> float:
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        t.set_user_attr("c", 0.95 - x)
        return 10 + (x - 0.95) ** 2 + (y - 0.5) ** 2

    sampler = NESSampler(
        seed=0,
        surrogate=surrogate,
        constraints_func=lambda t: [t.user_attrs["c"]],
        strategy_options={"ftarget": 1.0},
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=60)
    trials = study.get_trials(deepcopy=False)
    values = {t.value for t in trials}
    generations = sampler.generations(study)
    infeasible_first = 0
    for g in generations:
        carrier = ch.parse_carrier(trials[g["trial"]])  # type: ignore[index]
        assert carrier is not None
        state = ch.stored_state(trials[g["trial"]], carrier)
        assert state["restart"] == 0  # type: ignore[index]
        record = state["run"]["record"]  # type: ignore[index]
        assert record["best_f"] is None or record["best_f"] in values
        assert all(f in values for f in record["fhist"])
        told = [trials[n] for n in g["told"]]  # type: ignore[attr-defined]
        infeasible_first += bool(told) and record["best_f"] is None
    assert infeasible_first >= 1
    assert len(generations) >= 5


def test_a_run_ranked_by_its_violations_alone_does_not_restart_as_starved() -> None:
    # No trial is feasible, so the record never holds a value; the violations rank the
    # outcomes and move the run. It is not a run where nothing completes: it goes on past
    # ``history_length`` (20 generations at d = 2, popsize 6) without restarting.
    def objective(t: optuna.Trial) -> float:
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        t.set_user_attr("c", 1 + (x - 0.3) ** 2 + (y - 0.6) ** 2)
        return x + y

    sampler = NESSampler(seed=0, constraints_func=lambda t: [t.user_attrs["c"]])
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=1 + 6 * 26)
    trials = study.get_trials(deepcopy=False)
    generations = sampler.generations(study)
    assert len(generations) > 22
    for g in generations:
        carrier = ch.parse_carrier(trials[g["trial"]])  # type: ignore[index]
        assert carrier is not None
        state = ch.stored_state(trials[g["trial"]], carrier)
        assert state["restart"] == 0  # type: ignore[index]
        assert state["run"]["record"]["best_f"] is None  # type: ignore[index]


def test_outcomes_above_the_largest_float_are_told_their_ranks() -> None:
    """With the worst feasible value at the largest float (or too near it), the next floats
    above were inf: the pruned and infeasible outcomes were told inf, tied with a failure and
    with each other, and numpy warned 'overflow encountered in nextafter'."""
    top = float(np.finfo(float).max)
    told = [
        made(TrialState.COMPLETE, top),
        made(TrialState.COMPLETE, 1.0),
        made(TrialState.PRUNED, steps={3: 1.0}),
        made(TrialState.PRUNED, steps={1: 1.0}),
        made(TrialState.FAIL),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert told_fitness(told, 1.0).tolist() == [1, 0, 2, 3, math.inf]
        # maximising a study whose worst value is -top: the same
        told[0] = made(TrialState.COMPLETE, -top)
        assert told_fitness(told, -1.0).tolist() == [1, 0, 2, 3, math.inf]
        # one float left above the worst: one outcome told there, two are ranked
        below = float(np.nextafter(top, 0.0))
        told[0] = made(TrialState.COMPLETE, below)
        assert told_fitness(told[:3], 1.0).tolist() == [below, 1.0, top]
        assert told_fitness(told, 1.0).tolist() == [1, 0, 2, 3, math.inf]


def test_reading_constraints_in_several_threads_leaves_the_warning_filters_as_they_were() -> None:
    # Reading a trial's constraints replaces the process-wide filters for a moment (Optuna
    # warns when both of its forms name one key); samplers in several threads restored them
    # over each other, which can leave an "ignore everything" filter behind for good.
    trials = [made(TrialState.COMPLETE, 1.0, constraints=[0.5, -1.0]) for _ in range(50)]
    before = list(warnings.filters)
    barrier = threading.Barrier(4)
    totals: list[float | None] = []

    def read() -> None:
        barrier.wait(30)
        for _ in range(200):
            totals.extend(violation(t) for t in trials)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert list(warnings.filters) == before
    assert totals == [0.5] * (4 * 200 * 50)


def test_reading_constraints_loses_no_warning_of_another_thread() -> None:
    # The filters are process-wide: while a sampler read a trial's constraints under an
    # "ignore everything" filter, a warning raised by any other thread of the process was
    # dropped. They are now replaced only for a record whose two forms name one key.
    trials = [made(TrialState.COMPLETE, 1.0, constraints=[0.5, -1.0]) for _ in range(50)]
    done = threading.Event()
    raised = 0

    def read() -> None:
        for _ in range(400):
            assert [violation(t) for t in trials] == [0.5] * 50
        done.set()

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        reader = threading.Thread(target=read)
        reader.start()
        while not done.is_set() or raised == 0:
            warnings.warn("from another thread", UserWarning, stacklevel=1)
            raised += 1
        reader.join(120)
    assert sum(str(w.message) == "from another thread" for w in seen) == raised


def test_a_record_whose_two_forms_name_one_key_is_read_without_a_warning() -> None:
    trial = made(TrialState.COMPLETE, 1.0, constraints=[0.5, -1.0])
    trial.system_attrs["constraints:1"] = 2.0  # Optuna: the keyed form overwrites, and warns
    before = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert violation(trial) == 2.5
    assert list(warnings.filters) == before


def test_feasible_complete_outcomes_are_told_their_values() -> None:
    told = [made(TrialState.COMPLETE, v) for v in (3.0, -1.0, math.inf)]
    assert told_fitness(told, 1.0).tolist() == [3.0, -1.0, math.inf]
    told = [made(TrialState.COMPLETE, v) for v in (3.0, -1.0, -math.inf)]
    assert told_fitness(told, -1.0).tolist() == [-3.0, 1.0, math.inf]


def test_the_best_infinite_value_ranks_first_as_optuna_ranks_it() -> None:
    # Optuna takes -inf (minimising) or inf (maximising) as the best value a trial can have
    # (study.best_value). Told as a value, the strategy ranked it with NaN, last, and the search
    # left the region where it was found; among outcomes of other kinds it ranked first.
    told = [made(TrialState.COMPLETE, v) for v in (3.0, -math.inf, 1.0, math.inf)]
    assert told_fitness(told, 1.0).tolist() == [2, 0, 1, 3]
    assert told_fitness(told, -1.0).tolist() == [1, 3, 2, 0]
    assert told_fitness([*told, None], 1.0).tolist() == [2, 0, 1, 3, math.inf]


def test_a_region_of_the_best_infinite_value_draws_the_search() -> None:
    def objective(t: optuna.Trial) -> float:
        x = t.suggest_float("x", -5, 5)
        y = t.suggest_float("y", -5, 5)
        return -math.inf if x < -3 else (x - 3) ** 2 + y**2

    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=6))
    study.optimize(objective, n_trials=120)
    assert study.best_value == -math.inf
    last = [t.value for t in study.trials[-30:]]
    assert sum(v == -math.inf for v in last) >= 20  # it stays where the best values are


def test_constraints_set_on_the_trial_count_too() -> None:
    trial = made(TrialState.COMPLETE, 1.0)
    trial.system_attrs[f"{_CONSTRAINTS_KEY}:a"] = 0.5
    trial.system_attrs[f"{_CONSTRAINTS_KEY}:b"] = -2.0
    other = made(TrialState.COMPLETE, 9.0, constraints=[0.25])
    assert told_fitness([trial, other], 1.0).tolist() == [1.0, 0.0]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TPESampler's constraints_func, Optuna 5
def test_constraints_lead_the_search_to_the_feasible_optimum() -> None:
    # minimise x^2 + y^2 subject to x + y >= 1: the optimum is (1/2, 1/2), value 1/2
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        y = trial.suggest_float("y", -2.0, 2.0)
        trial.set_user_attr("c", 1.0 - x - y)
        return x * x + y * y

    def best_feasible(sampler: optuna.samplers.BaseSampler) -> tuple[float, optuna.Study]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=200)
        feasible = [t.value for t in study.trials if t.user_attrs["c"] <= 0]
        return min(v for v in feasible if v is not None), study

    def constraints(t: FrozenTrial) -> list[float]:
        return [t.user_attrs["c"]]

    best, study = best_feasible(NESSampler(seed=0, constraints_func=constraints))
    # stored as Optuna stores them: its public reader sees each trial's value
    assert all(t.constraints == {"0": t.user_attrs["c"]} for t in study.trials)
    # Within 4% of the optimum's value. (The bound was 0.51 before the sampler's XNES became
    # mirrored with two parameters: seed 0 then reached 0.5004, and now 0.5135. On this problem
    # mirrored sampling is the worse: median excess over seeds 0-9 of 1.4e-2, against 5.3e-3
    # with independent samples and 9.4e-3 for TPESampler; docs/optuna.rst reports it.)
    assert best < 0.52
    # as good as Optuna's constrained TPE on the same budget (fixed seeds: a regression check)
    tpe, _ = best_feasible(optuna.samplers.TPESampler(seed=0, constraints_func=constraints))
    assert best <= tpe
    late = study.trials[100:]
    assert sum(t.user_attrs["c"] <= 1e-2 for t in late) > 0.5 * len(late)


def index(t: optuna.trial.FrozenTrial) -> int:
    """The candidate index a trial holds (it must hold one)."""
    c = ch.parse_candidate(t)
    assert c is not None
    return c.index


def test_a_trial_started_before_a_mirrored_generation_closed_takes_an_unpaired_extras_mirror() -> (
    None
):
    # Mirrored extras are told in pairs: an extra whose mirror nobody took would be wasted. A
    # trial that started before the generation's last outcome (so that it could have taken an
    # extra sample anyway) takes the mirror, and the pair is told.

    sampler = NESSampler(seed=0, popsize=6)  # two parameters: mirrored
    study = optuna.create_study(sampler=sampler)

    def sample(t: optuna.Trial) -> float:
        return (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_float("y", -5, 5) ** 2

    study.optimize(sample, n_trials=5)  # the startup trial and candidates 0-3
    held = [study.ask() for _ in range(2)]  # candidates 4 and 5 stay RUNNING
    for t in held:
        sample(t)
    extra = study.ask()
    study.tell(extra, sample(extra))  # extra sample 6, finished; its mirror is 7
    late = study.ask()  # started before the generation's last outcome; samples after it
    for t in held:
        study.tell(t, 1.0)
    study.tell(late, sample(late))
    study.optimize(sample, n_trials=1)  # tells the generation

    trials = study.get_trials(deepcopy=False)
    assert index(trials[extra.number]) == 6
    assert index(trials[late.number]) == 7
    told = sampler.generations(study)[1]["told"]
    assert isinstance(told, list)
    assert [index(trials[n]) for n in told] == list(range(8))  # the pair 6, 7 told


@pytest.mark.parametrize("running", [True, False])
def test_a_trial_started_while_an_unpaired_extra_runs_takes_its_mirror(running: bool) -> None:
    # The generation's last outcome came while extra sample 6 was still running in another
    # worker, and its mirror 7 had no trial. A trial started then used to wait for 6 (idle),
    # and 6 was not told: no pair. It now takes 7, and the pair is told. When 6 had finished
    # by then, nothing is waited for: the trial starts the next generation, 6 untold.
    storage = optuna.storages.InMemoryStorage()
    sampler = NESSampler(seed=0, popsize=6)  # two parameters: mirrored
    study = optuna.create_study(sampler=sampler, storage=storage, study_name="s")

    def sample(t: optuna.Trial) -> float:
        return (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_float("y", -5, 5) ** 2

    study.optimize(sample, n_trials=5)  # the startup trial and candidates 0-3
    held = [study.ask() for _ in range(2)]  # candidates 4 and 5
    for t in held:
        sample(t)
    other = optuna.load_study(
        study_name="s", storage=storage, sampler=NESSampler(seed=0, popsize=6)
    )
    extra = other.ask()  # extra sample 6, in another worker
    value = sample(extra)
    if not running:
        other.tell(extra, value)
    for t in held:
        study.tell(t, 1.0)  # the generation's last outcome
    late = study.ask()
    study.tell(late, sample(late))  # sampled after that outcome
    if running:
        other.tell(extra, value)
    study.optimize(sample, n_trials=1)  # tells the generation (if not told yet)

    trials = study.get_trials(deepcopy=False)
    assert index(trials[extra.number]) == 6
    chain = sampler.generations(study)
    told = chain[1]["told"]
    assert isinstance(told, list)
    if running:
        assert index(trials[late.number]) == 7
        assert [index(trials[n]) for n in told] == list(range(8))  # the pair 6, 7 told
    else:
        assert [index(trials[n]) for n in told] == list(range(6))
        late_record = ch.parse_candidate(trials[late.number])
        assert late_record is not None
        assert late_record.state == chain[1]["state"]  # a candidate of the next generation


def test_integer_parameters_never_freeze() -> None:
    # Six ints: once the strategy's spread is far below one value, a sampler without a margin
    # proposes the same point again and again. With the margin, trials keep differing.
    def objective(trial: optuna.Trial) -> float:
        return float(sum((trial.suggest_int(f"k{i}", -10, 10) - 3) ** 2 for i in range(6)))

    study = optuna.create_study(sampler=NESSampler(seed=0))
    study.optimize(objective, n_trials=300)
    assert study.best_value == 0.0
    last = [tuple(sorted(t.params.items())) for t in study.trials[-100:]]
    assert len(set(last)) >= 10  # still exploring around the optimum


def test_log_scaled_int_parameters_keep_a_margin_too() -> None:
    # The margin widened the grid coordinates only: an int with log=True froze on one value
    # once the strategy's spread fell below its cell (seed 0 below evaluated one point 91
    # times in a row; with the margin 12 at most, as the probability 1 / (d popsize) of
    # leaving the cell in each of 6 coordinates allows).
    space = UnitSpace({"k": IntDistribution(1, 64, log=True), "x": FloatDistribution(0, 1)})
    search = Search(XNES, 1e-6, None, 9, {}, 0)
    loaded = search.first_state(space, search.key(space))
    # the mean (0.5, 0.5) holds k = 6: the cell [ln 5.5, ln 6.5] of [ln 0.5, ln 64.5]
    n = (math.log(64.5) - math.log(0.5)) / (math.log(6.5) - math.log(5.5))
    z = float(ndtri(1.0 - 1.0 / (2 * loaded.es.popsize) / 2.0))  # alpha = 1 / (d popsize)
    spread = loaded.es.stds * loaded.margin  # the standard deviation the rows are drawn with
    assert spread[0] == pytest.approx(0.5 / (z * n), rel=1e-9)  # half a cell over z
    assert spread[1] < 1e-5  # (a continuous coordinate keeps the strategy's own spread)

    def objective(trial: optuna.Trial) -> float:
        return float(sum((trial.suggest_int(f"k{i}", 1, 64, log=True) - 3) ** 2 for i in range(6)))

    study = optuna.create_study(sampler=NESSampler(seed=0))
    study.optimize(objective, n_trials=600)
    points = [tuple(sorted(t.params.items())) for t in study.trials]
    runs = [len(list(g)) for _, g in itertools.groupby(points)]
    assert study.best_value == 0.0
    assert max(runs) <= 20


@pytest.mark.parametrize("log", [False, True])
def test_an_int_whose_best_value_ends_its_range_keeps_leaving_it(log: bool) -> None:
    # The margin gave half a cell over z(1 - alpha / 2) wherever the mean sat. In the cell of
    # the lowest value, with the mean at the low end of the range, a row below 0 is reflected
    # back into the same cell, so the only exit was the far side, a whole cell away: about
    # z sigmas. Seeds 0-3 below evaluated layers = 2 in 0 of the last 200 trials (the mean
    # at u = 0.007, sigma 1e-6); CmaEsSampler(with_margin=True) in 9-23.
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_int("layers", 1, 2, log=log) + trial.suggest_float("c", 0, 1)

    for seed in range(4):
        study = optuna.create_study(sampler=NESSampler(seed=seed))
        study.optimize(objective, n_trials=400)
        assert study.best_value < 1.0 + 1e-6
        # At least alpha = 1 / (d popsize) = 1/12 of the rows leave the cell: about 17 of
        # 200 or more (19-38 measured). P(at most 2 | 200 rows, p = 1/12) = 2e-5 if each row
        # left independently; the test asks only that the value is not frozen.
        assert sum(t.params["layers"] == 2 for t in study.trials[200:]) >= 3


def test_the_margin_of_an_end_cell_reaches_its_one_exit() -> None:
    # With the mean in the cell of an end value, the spread is the distance to that cell's
    # inner boundary over z(1 - alpha): a row leaves the cell with probability alpha.
    space = UnitSpace(
        {
            "a": IntDistribution(1, 4),  # 4 cells: the mean 0.1 is in the first
            "b": IntDistribution(1, 64, log=True),  # the mean 0.999 holds k = 64
            "c": IntDistribution(1, 4),  # 0.4: an inner cell, half a cell over z
            "x": FloatDistribution(0, 1),
        }
    )
    a, b = math.log(0.5), math.log(64.5)
    u_b = 0.999  # in [ln 63.5, ln 64.5], as a unit coordinate from 0.9968
    np.testing.assert_allclose(
        space.edge_gaps(np.array([0.1, u_b, 0.4, 0.5])),
        [0.25 - 0.1, u_b - (math.log(63.5) - a) / (b - a), 0.0, 0.0],
        rtol=1e-12,
    )
    es = XNES(np.array([0.1, u_b, 0.4, 0.5]), 1e-6, rng=1)
    loaded = Loaded.of({}, es, space)
    alpha = 1.0 / (4 * es.popsize)
    spread = es.stds * loaded.margin  # the standard deviation the rows are drawn with
    gaps = space.edge_gaps(es.mean)
    assert spread[0] == pytest.approx(gaps[0] / float(ndtri(1.0 - alpha)), rel=1e-9)
    assert spread[1] == pytest.approx(gaps[1] / float(ndtri(1.0 - alpha)), rel=1e-9)
    assert spread[2] == pytest.approx(0.5 / (4 * float(ndtri(1.0 - alpha / 2.0))), rel=1e-9)
    assert spread[3] < 1e-5


@pytest.mark.parametrize(("dim", "mirrored"), [(5, False), (2, True)])
def test_rows_leave_the_cell_of_the_mean_with_probability_alpha(dim: int, mirrored: bool) -> None:
    # The margin scaled the batch so that its root mean square deviation was the wanted
    # spread. A batch scaled so has no tails: at d = 2 its 3 mirrored pairs of rms s reach at
    # most sqrt(3) s = 1.73 s, and the cell's edge was z(1 - alpha / 2) = 1.73 s away. Rows
    # left the cell with probability 0.011 at d = 5 (alpha 0.025) and 0.0002 at d = 2
    # (alpha 0.083): an int held on a worse value than its neighbour's.
    dists = {
        "k": IntDistribution(0, 9),
        **{f"x{i}": FloatDistribution(0, 1) for i in range(1, dim)},
    }
    space = UnitSpace(dists)
    mean = np.full(dim, 0.5)
    mean[0] = 0.45  # the centre of the cell [0.4, 0.5) of k = 4
    out = tries = 0
    for seed in range(1000):
        es = XNES(mean, 1e-6, rng=seed, mirrored=mirrored)
        k = Loaded.of({}, es, space).X[:, 0]
        if mirrored:  # a pair leaves the centred cell on both sides or not at all
            k = k[: es.popsize // 2]
        out += int(np.sum((k < 0.4) | (k >= 0.5)))
        tries += k.size
    alpha = 1.0 / (dim * es.popsize)
    lo = stats.binom.ppf(ALPHA_PER_ASSERTION / 2, tries, alpha)
    hi = stats.binom.isf(ALPHA_PER_ASSERTION / 2, tries, alpha)
    assert lo <= out <= hi, (out, tries * alpha, lo, hi)


def test_a_population_of_two_with_one_int_keeps_its_margin_finite() -> None:
    # alpha = 1 / (d popsize) was 1/2 at d = 1 and popsize 2: z(1 - alpha) = 0, and the
    # spread of an end cell was divided by 0. A RuntimeWarning reached the user and the
    # margin was its cap, 1e12: the rows were spread over the whole range.
    space = UnitSpace({"n": IntDistribution(0, 9)})
    es = XNES(np.array([0.03]), 1e-6, 2, rng=0)  # in the cell of n = 0, 0.07 from its exit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy
        loaded = Loaded.of({}, es, space)
    assert MAX_MARGIN_ALPHA == 0.25
    spread = es.stds * loaded.margin
    assert spread[0] == pytest.approx(0.07 / float(ndtri(1.0 - 0.25)), rel=1e-9)
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study.optimize(lambda t: t.suggest_int("n", 0, 9), n_trials=100)
    assert study.best_value == 0


def test_source_trials_of_a_multi_objective_study_are_refused_by_name() -> None:
    # They raised "This attribute is not available during multi-objective optimization" from
    # deep inside every trial of the study.
    source = optuna.create_study(directions=["minimize", "maximize"])
    source.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 8)
    with pytest.raises(ValueError, match=r"`source_trials` must be trials of single-objective"):
        NESSampler(source_trials=source.trials)
    # one value each, or none (trials that failed or are running): accepted
    failed = optuna.trial.create_trial(state=TrialState.FAIL)
    NESSampler(source_trials=[failed, made(TrialState.COMPLETE, 1.0)])


@pytest.mark.parametrize(
    "returned",
    [["a"], [None], [1j], np.zeros((2, 2)), np.float64(1.0), [[1.0]], {"a": 1.0}, 1.0],
)
def test_constraints_func_returning_no_real_numbers_is_named(returned: object) -> None:
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: returned)  # type: ignore[arg-type,return-value]
    )
    with pytest.raises(
        TypeError, match=r"`constraints_func` must return a sequence of real numbers, but got"
    ):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


@pytest.mark.parametrize(
    "returned",
    [range(-2, 1), collections.deque([-1.0, 0.5]), array.array("d", [-1.0, 0.5])],
)
def test_constraints_func_may_return_any_sequence_of_real_numbers(returned: object) -> None:
    # The sampler took lists, tuples and 1-d arrays only: any other sequence of real numbers,
    # which the annotation Sequence[float] allows, raised "`constraints_func` must return a
    # sequence of real numbers, but got range(-2, 1)".
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: returned)  # type: ignore[arg-type,return-value]
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    expected = {str(i): float(c) for i, c in enumerate(returned)}  # type: ignore[call-overload]
    assert [t.constraints for t in study.trials] == [expected, expected]


def test_constraint_values_are_stored_in_one_attribute_as_optuna_stores_them() -> None:
    # The sampler wrote one trial system attribute per value ("constraints:0", ...): 200
    # storage writes for 200 constraints (each a round trip to a database). They are one list
    # under "constraints", as Optuna's own samplers store them, and read as before.
    n = 200
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: [t.params["x"] - 0.5] * n)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    for trial in study.trials:
        stored = [k for k in trial.system_attrs if k.startswith(_CONSTRAINTS_KEY)]
        assert stored == [_CONSTRAINTS_KEY]
        c = trial.params["x"] - 0.5
        assert trial.constraints == {str(i): c for i in range(n)}
        assert violation(trial) == pytest.approx(n * max(c, 0.0), rel=1e-12)
    # a study written before, one attribute per value, is read as it was
    old = made(TrialState.COMPLETE, 1.0)
    old.system_attrs.update({f"{_CONSTRAINTS_KEY}:{i}": c for i, c in enumerate([0.5, -1, 2])})
    assert violation(old) == 2.5
    assert told_fitness([old, made(TrialState.COMPLETE, 3.0)], 1.0).tolist() == [
        above(3.0, 1)[0],
        3.0,
    ]


def test_a_constraint_the_trial_set_itself_keeps_its_value() -> None:
    # The values of constraints_func overwrote those the objective set with
    # trial.set_constraint under the same key ("0"), without a word; Optuna's samplers keep
    # the trial's own value.
    def objective(t: optuna.Trial) -> float:
        t.set_constraint("0", 5.0)
        return t.suggest_float("x", 0, 1)

    study = optuna.create_study(sampler=NESSampler(seed=0, constraints_func=lambda t: [-1.0, 2.0]))
    with pytest.warns(NESWarning, match=r"trial 0 has set already \(\['0'\]\)"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].constraints == {"0": 5.0, "1": 2.0}


def test_constraints_func_may_return_numpy_bools_as_optuna_takes_them() -> None:
    # A comparison of arrays (violated or not) raised "`constraints_func` must return a
    # sequence of real numbers, but got array([False, True])": Optuna's samplers take it, and
    # so did the sampler for Python's bools.
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: np.array([0.0, 1.0]) > 0.5)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert study.trials[0].constraints == {"0": 0.0, "1": 1.0}
    assert violation(study.trials[0]) == 1.0


@pytest.mark.parametrize("returned", ["0", b"\x00", bytearray(b"\x00")])
def test_constraints_func_returning_text_is_named(returned: object) -> None:
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: returned)  # type: ignore[arg-type,return-value]
    )
    with pytest.raises(TypeError, match=r"`constraints_func` must return a sequence of real"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


def test_constraints_func_returning_an_int_beyond_the_floats_is_named() -> None:
    # It raised OverflowError "int too large to convert to float", naming nothing.
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: [0.0, 10**400])
    )
    with pytest.raises(
        ValueError,
        match=r"`constraints_func` must return real numbers a float can hold, but got "
        r"\[0\.0, 1000.* for trial 0",
    ):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


def test_constraints_func_returning_nan_is_refused_as_optuna_refuses_it() -> None:
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: [0.0, math.nan])
    )
    with pytest.raises(ValueError, match=r"Constraint values cannot be NaN.*`constraints_func`"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


def test_source_trials_set_the_first_mean_and_spread() -> None:
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(
        lambda t: (t.suggest_float("x", 0, 10) - 7) ** 2 + (t.suggest_float("y", 0, 10) - 2) ** 2,
        n_trials=200,
    )
    sampler = NESSampler(seed=0, source_trials=source.get_trials())
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 10) - 7) ** 2 + (t.suggest_float("y", 0, 10) - 2) ** 2,
        n_trials=8,
    )

    first = study.trials[sampler.generations(study)[0]["trial"]]  # type: ignore[index]
    carrier = ch.parse_carrier(first)
    assert carrier is not None
    run = ch.stored_state(first, carrier)["run"]
    best = source.best_params
    assert np.allclose(run["mean"], [best["x"] / 10, best["y"] / 10])  # type: ignore[index]
    assert run["sigma0"] < 0.2  # type: ignore[index,operator]  # the spread of the best trials


def test_source_trials_that_cannot_start_the_search_are_named_in_one_warning() -> None:
    # Trials of another search space (or too few that fit) were ignored without a word, so a
    # user who meant to warm start got the centre of the box and no sign of why.
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(lambda t: t.suggest_float("a", 0, 10) ** 2, n_trials=50)
    study = optuna.create_study(sampler=NESSampler(seed=0, source_trials=source.trials))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(lambda t: (t.suggest_float("x", 0, 10) - 7) ** 2, n_trials=12)
    said = [str(w.message) for w in caught if issubclass(w.category, NESWarning)]
    assert len(said) == 1, said
    assert said[0].startswith("`source_trials`: fewer than a population (4)")
    assert "['x']" in said[0]

    # Trials that do fit start the search from them, without a warning.
    fit = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    fit.optimize(lambda t: (t.suggest_float("x", 0, 10) - 7) ** 2, n_trials=20)
    study = optuna.create_study(sampler=NESSampler(seed=0, source_trials=fit.trials))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NESWarning)
        study.optimize(lambda t: (t.suggest_float("x", 0, 10) - 7) ** 2, n_trials=12)


def test_source_trials_with_numpy_parameter_values_set_the_first_mean() -> None:
    # Trials made with create_trial from numpy data (an np.int64 for an int parameter passes
    # Optuna's checks) were skipped without a word: the first mean stayed the box's centre.
    rng = np.random.default_rng(0)
    dists = {"x": FloatDistribution(0.0, 10.0), "n": IntDistribution(0, 10)}
    source = [
        optuna.trial.create_trial(
            params={"x": float(x), "n": np.int64(n)}, distributions=dists, value=float(v)
        )
        for x, n, v in zip(
            rng.uniform(0, 10, 40), rng.integers(0, 11, 40), rng.permutation(40), strict=True
        )
    ]
    sampler = NESSampler(seed=0, source_trials=source)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 10) + t.suggest_int("n", 0, 10), 8)
    first = study.trials[sampler.generations(study)[0]["trial"]]  # type: ignore[index]
    carrier = ch.parse_carrier(first)
    assert carrier is not None
    run = ch.stored_state(first, carrier)["run"]
    best = min(source, key=lambda t: t.values[0])
    expected = [(int(best.params["n"]) + 0.5) / 11, best.params["x"] / 10]  # (names sorted)
    assert np.allclose(run["mean"], expected)  # type: ignore[index]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_best_infinite_value_of_source_trials_sets_the_first_mean(direction: str) -> None:
    # Optuna takes -inf (minimising) or inf (maximising) as the best value there is (it is the
    # source study's best_trial), but the warm start left it out with NaN: the first mean was
    # the best finite point.
    sign = 1.0 if direction == "minimize" else -1.0
    dists = {"x": FloatDistribution(0.0, 10.0)}
    source = optuna.create_study(direction=direction)
    for i in range(10):
        params = {"x": float(i)}
        source.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=i))
    best = optuna.trial.create_trial(
        params={"x": 7.5}, distributions=dists, value=-sign * math.inf
    )
    worst = optuna.trial.create_trial(
        params={"x": 2.5}, distributions=dists, value=sign * math.inf
    )
    source.add_trials([best, worst])
    assert source.best_params == {"x": 7.5}
    sampler = NESSampler(seed=0, source_trials=source.trials)
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 10.0), n_trials=2)
    first = study.trials[sampler.generations(study)[0]["trial"]]  # type: ignore[index]
    carrier = ch.parse_carrier(first)
    assert carrier is not None
    assert ch.stored_state(first, carrier)["run"]["mean"] == [0.75]  # type: ignore[index]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TPESampler's constraints_func, Optuna 5
def test_source_trials_with_numpy_constraint_values_count_as_optuna_counts_them() -> None:
    # Optuna's samplers keep what constraints_func returns; in memory a numpy result stays an
    # np.int64, which the sampler counted as an infinite violation: every source trial was
    # infeasible, and the first mean stayed at the centre of the box.
    def constraints(t: FrozenTrial) -> list[np.int64]:
        return [np.int64(t.params["n"]) - 5]  # feasible when n <= 5

    trials, mean, expected = warm_started_by_constrained_source(constraints)
    assert isinstance(trials[0].constraints["0"], np.integer)
    assert np.allclose(mean, expected)
    for value in (np.float32(0.5), np.int64(3), np.float16(-1.0)):
        assert violation(made(TrialState.COMPLETE, 1.0, constraints=[value])) == max(value, 0)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TPESampler's constraints_func, Optuna 5
def test_source_trials_with_bool_constraint_values_count_as_optuna_counts_them() -> None:
    # A constraints_func may return bools (violated or not): the sampler takes them, and
    # Optuna's samplers keep them as they are (True and False, in memory and in a database's
    # JSON alike) and count True as a violation of 1, False as satisfied. The sampler counted
    # every bool as an infinite violation: every source trial was infeasible, the feasible
    # ones too, and the first mean stayed at the centre of the box.
    def constraints(t: FrozenTrial) -> list[bool]:
        return [t.params["n"] > 5]  # feasible when n <= 5

    trials, mean, expected = warm_started_by_constrained_source(constraints)
    assert all(type(t.constraints["0"]) is bool for t in trials)
    infeasible = [t for t in trials if any(c > 0 for c in t.constraints.values())]
    assert {violation(t) for t in infeasible} == {1.0}
    assert np.allclose(mean, expected)
    for value, total in ((True, 1.0), (False, 0.0), (np.True_, 1.0), (np.False_, 0.0)):
        assert violation(made(TrialState.COMPLETE, 1.0, constraints=[value, 0.5])) == total + 0.5


def test_a_constraint_record_holding_an_int_beyond_the_floats_is_an_infinite_value() -> None:
    # A storage keeps any JSON int, and Optuna reads a record back as it is: such a value
    # raised OverflowError "int too large to convert to float" in every later trial of the
    # study (from the warm start, or the tell of the trial's generation).
    big = made(TrialState.COMPLETE, 1.0, constraints=[0.5, 10**400])
    assert violation(big) == math.inf
    assert violation(made(TrialState.COMPLETE, 1.0, constraints=[0.5, -(10**400)])) == 0.5
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
    study.add_trial(big)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 7
    assert len(study.sampler.generations(study)) == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("form", ["string", "dict", "keyed"])
def test_a_constraint_record_that_is_no_list_is_an_infinite_violation_in_bounded_memory(
    form: str,
) -> None:
    # a record that was a string (or a dict) was read by Optuna as one value per character
    # (entry): a 5 MB string in a journal file took seconds and 440 MB per worker, silently
    n = 2_000_000
    if form == "string":
        attrs: dict[str, object] = {_CONSTRAINTS_KEY: "x" * n}
    elif form == "dict":
        attrs = {_CONSTRAINTS_KEY: {str(i): 0.0 for i in range(n // 10)}}
    else:  # more keyed values than a list may hold
        attrs = {f"{_CONSTRAINTS_KEY}:{i}": 0.0 for i in range(20_000)}
    trial = optuna.trial.create_trial(
        state=TrialState.COMPLETE,
        value=1.0,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        system_attrs=attrs,
    )
    tracemalloc.start()
    try:
        assert violation(trial) == math.inf
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak


def test_source_trials_whose_values_are_no_numbers_are_refused_by_name() -> None:
    # A FrozenTrial built with value "0.5" (read from text) passed the constructor; every
    # later trial then raised numpy's "ufunc 'isfinite' not supported for the input types".
    made = trial_valued("0.5")
    with pytest.raises(
        TypeError,
        match=r"`source_trials` must hold real numbers as values, but trial 3 has \['0.5'\]",
    ):
        NESSampler(source_trials=[made])


def test_source_trials_whose_values_are_ints_beyond_the_floats_are_refused_by_name() -> None:
    # Such a value passed the constructor, and every trial once the first state was made
    # raised numpy's "ufunc 'isfinite' not supported for the input types".
    made = trial_valued(10**400)
    with pytest.raises(
        ValueError,
        match=r"`source_trials` must hold real numbers a float can hold as values, but trial 3 "
        r"has \[1000",
    ):
        NESSampler(source_trials=[made])


@pytest.mark.parametrize("mirrored", [False, True])
def test_extra_samples_finished_before_the_tell_are_told_as_further_rows(mirrored: bool) -> None:
    # Bug (mirrored): the extras were handed out and listed as told, but the strategy was told
    # its population alone. Now they are told in whole mirrored pairs, and listed if told.
    sampler = NESSampler(seed=0, popsize=6, strategy_options={"mirrored": mirrored})
    study = optuna.create_study(sampler=sampler)

    def sphere(t: optuna.Trial) -> float:
        return (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_float("y", -5, 5) ** 2

    study.optimize(sphere, n_trials=5)
    held = [study.ask() for _ in range(2)]  # the last two candidates stay RUNNING a while
    for t in held:
        t.suggest_float("x", -5, 5)
        t.suggest_float("y", -5, 5)
    study.optimize(sphere, n_trials=6)  # the other candidates, then extra samples
    for t in held:
        study.tell(t, 1.0)
    study.optimize(sphere, n_trials=3)
    told = sampler.generations(study)[1]["told"]
    assert isinstance(told, list)
    # the 6 candidates, then every extra sample drawn while the two were held (all finished
    # before the held ones, so every process telling the generation would tell them too)
    extras = [t for t in study.trials if (c := ch.parse_candidate(t)) and c.index >= 6]
    assert len(extras) >= 3
    # (mirrored: an extra whose mirror was not drawn is not told)
    assert len(told) == 6 + (len(extras) - len(extras) % 2 if mirrored else len(extras))
    indices = [ch.parse_candidate(study.trials[n]).index for n in told]  # type: ignore[union-attr]
    assert indices == list(range(len(told)))
    carrier_trial = study.trials[sampler.generations(study)[1]["trial"]]  # type: ignore[index]
    carrier = ch.parse_carrier(carrier_trial)
    assert carrier is not None
    run = ch.stored_state(carrier_trial, carrier)["run"]
    assert run["popsize"] == 6  # type: ignore[index]  # the search keeps its population
    assert run["nfev"] == len(told)  # type: ignore[index]  # and its update used every row


def test_generations_under_a_partial_fixed_sampler_take_the_searched_space() -> None:
    # The inferred space holds the fixed parameter too, whose search has no states: the chain
    # is empty unless the searched space is passed (as the docstring says).
    nes = NESSampler(seed=0, popsize=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.PartialFixedSampler({"y": 0.5}, nes)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + t.suggest_float("y", 0, 1), 12)
    assert nes.generations(study) == []
    chain = nes.generations(study, {"x": FloatDistribution(0, 1)})
    assert [g["generation"] for g in chain] == [0, 1, 2]


@pytest.mark.parametrize("surrogate", [False, True])
def test_a_generation_with_the_best_infinite_value_records_its_finite_values(
    surrogate: bool,
) -> None:
    # Half the box returns -inf (Optuna's best value) and a trial in 8 fails. A generation
    # holding -inf beside other outcomes is told ranks, and the run's record was kept as after
    # a generation without a value: its finite values never entered it, so ``ftarget`` and
    # ``tolstagnation`` did not see them (the best value stayed None). The record holds them
    # as the strategy records values told beside -inf: the finite ones.
    def objective(t: optuna.Trial) -> float:
        x, y = t.suggest_float("x", -5, 5), t.suggest_float("y", -5, 5)
        if t.number % 8 == 7:
            raise ValueError("a failing trial")
        return -math.inf if x < 0 else x**2 + y**2

    sampler = NESSampler(seed=0, popsize=6, surrogate=surrogate)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=60, catch=(ValueError,))
    trials = study.get_trials(deepcopy=False)
    best = math.inf
    mixed = 0
    for g in sampler.generations(study)[1:]:
        carrier = ch.parse_carrier(trials[g["trial"]])  # type: ignore[index]
        assert carrier is not None
        state = ch.stored_state(trials[g["trial"]], carrier)
        assert state["restart"] == 0  # type: ignore[index]
        told = [trials[n] for n in g["told"]]  # type: ignore[attr-defined]
        finite = [t.value for t in told if t.value is not None and math.isfinite(t.value)]
        mixed += any(t.value == -math.inf for t in told) and bool(finite)
        best = min([best, *finite])
        record = state["run"]["record"]  # type: ignore[index]
        assert record["best_f"] == (None if best == math.inf else best)
    assert mixed >= 2


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_ftarget_is_a_value_of_the_study_in_its_direction(direction: str) -> None:
    # ``ftarget`` holds when the best value reaches it in the study's direction: at or above it
    # when maximising. A maximised study told the strategy the negated values, and ``ftarget``
    # was read against them: ``ftarget=-1.2`` (values -1 at best) was read as 1.2 and never
    # held. A target no value reaches (``-0.5``) holds in neither direction.
    sign = 1.0 if direction == "minimize" else -1.0

    def objective(t: optuna.Trial) -> float:
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        return sign * (1 + (x - 0.5) ** 2 + (y - 0.5) ** 2)

    restarts = {}
    for target in (1.2, 0.5):  # reached near the centre, and never
        sampler = NESSampler(seed=0, strategy_options={"ftarget": sign * target})
        study = optuna.create_study(sampler=sampler, direction=direction)
        study.optimize(objective, n_trials=40)
        trials = study.get_trials(deepcopy=False)
        last = sampler.generations(study)[-1]
        carrier = ch.parse_carrier(trials[last["trial"]])  # type: ignore[index]
        assert carrier is not None
        restarts[target] = ch.stored_state(trials[last["trial"]], carrier)["restart"]
    assert restarts[1.2] >= 1
    assert restarts[0.5] == 0


def first_mean(study: optuna.Study, sampler: NESSampler) -> list[float]:
    """Return the mean of the first stored state of `study`'s search (its first run)."""
    first = study.trials[sampler.generations(study)[0]["trial"]]  # type: ignore[index]
    carrier = ch.parse_carrier(first)
    assert carrier is not None
    return ch.stored_state(first, carrier)["run"]["mean"]  # type: ignore[index,no-any-return]


def warm_started_by_constrained_source(
    constraints: Callable[[FrozenTrial], list[Any]],
) -> tuple[list[FrozenTrial], list[float], list[float]]:
    """Run a 40-trial TPE source study with `constraints`, then warm-start NESSampler from it.

    Return the source's feasible trials (every constraint at most 0, as Optuna reads them),
    the first mean of the warm-started search and the unit point of the best feasible trial.
    """

    def objective(t: optuna.Trial) -> float:
        return (t.suggest_float("x", 0, 10) - 7) ** 2 + (t.suggest_int("n", 0, 10) - 2) ** 2

    source = optuna.create_study(
        sampler=optuna.samplers.TPESampler(
            seed=0, n_startup_trials=40, constraints_func=constraints
        )
    )
    source.optimize(objective, n_trials=40)
    feasible = [t for t in source.trials if all(c <= 0 for c in t.constraints.values())]
    assert 0 < len(feasible) < 40
    assert [violation(t) for t in feasible] == [0.0] * len(feasible)
    sampler = NESSampler(seed=0, source_trials=source.trials, constraints_func=constraints)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=2)
    best = min(feasible, key=lambda t: t.values[0])
    expected = [(best.params["n"] + 0.5) / 11, best.params["x"] / 10]  # (names sorted)
    return source.trials, first_mean(study, sampler), expected
