"""NESSampler in hostile studies: failing regions, pruners, NaN, long runs and crafted states.

Every run uses a fixed seed, so each comparison is an exact regression check of a deterministic
run (the figures of issue 11 were measured on these very studies), not a statistical claim.
"""

from __future__ import annotations

import math
import statistics
import sys
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

optuna = pytest.importorskip("optuna")

from nes_asktell.integrations.optuna import _search  # noqa: E402
from nes_asktell.integrations.optuna import _storage as ch  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402
from optuna_probes import copy_trials, sampler_lines, set_entry, tampered, tip_of  # noqa: E402

from nes_asktell import NESSampler, NESWarning  # noqa: E402
from nes_asktell._stopping import default_stagnation, history_length  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def faulty(mode: str) -> Callable[[optuna.Trial], float]:
    """The 2-d study of issue 11, point 1: a sphere whose region x + y > 3 fails."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        f = (x - 1.0) ** 2 + (y - 1.0) ** 2
        bad = x + y > 3.0
        if mode == "prune":
            for step in range(3):
                trial.report(f + (3 - step) * (10.0 if bad else 0.0), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            if bad:
                raise optuna.TrialPruned()
            return f
        if bad:
            if mode == "raise":
                raise RuntimeError("the simulator crashed")
            return math.nan
        return f

    return objective


def run(sampler: optuna.samplers.BaseSampler, mode: str, n_trials: int = 200) -> optuna.Study:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5) if mode == "prune" else None
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(faulty(mode), n_trials=n_trials, catch=(RuntimeError,))
    return study


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["raise", "nan", "prune"])
def test_a_failing_region_does_not_stall_the_search(mode: str) -> None:
    # Before: 194 FAIL of 200, 7 distinct points, best 7.4e-01 (CmaEsSampler: best 1.2e-07).
    study = run(NESSampler(seed=0), mode)
    distinct = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(distinct) >= 0.95 * 200
    assert study.best_value < 1e-3  # the search converges past the failing region


#: the seeds of the 10x comparison: single studies of 200 trials differ by orders of magnitude
#: from seed to seed for every sampler (over seeds 0-19 NESSampler's best spans 2.7e-9 to
#: 2.9e-5 where the region raises, CmaEsSampler's 1.6e-8 to 1.2e-5; with the pruner 2.7e-9 to
#: 1.4e-3 and 3.2e-7 to 2.3e-2), so one seed decides nothing; the
#: medians of 20 are what the benchmark reports (python -m benchmarks.optuna_faults --suite
#: faults --seeds 0 ... 19).
TEN_X_SEEDS = range(20)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["raise", "prune"])
def test_a_failing_region_costs_at_most_10x_against_the_peers(mode: str) -> None:
    # Issue 11: the best value within 10x of the better of CmaEsSampler and TPESampler. Medians
    # over seeds 0-19 (a deterministic regression check, each study seeded): NES 2.1e-06
    # against CmaEsSampler 2.9e-07 (raise: 7.5x) and 2.3e-06 (prune: 0.95x). Returning NaN
    # gives the very studies of raising (Optuna makes both FAIL), checked below for seed 0.
    def median_best(make: Callable[[int], optuna.samplers.BaseSampler]) -> float:
        return statistics.median(run(make(s), mode).best_value for s in TEN_X_SEEDS)

    nes = median_best(lambda s: NESSampler(seed=s))
    cma = median_best(lambda s: optuna.samplers.CmaEsSampler(seed=s))
    tpe = median_best(lambda s: optuna.samplers.TPESampler(seed=s))
    assert nes <= 10 * min(cma, tpe)
    if mode == "raise":
        nan_study = run(NESSampler(seed=0), "nan")
        raise_study = run(NESSampler(seed=0), "raise")
        assert [t.params for t in nan_study.trials] == [t.params for t in raise_study.trials]


def test_a_failing_region_does_not_stall_a_short_study() -> None:
    study = run(NESSampler(seed=0, popsize=6), "raise", n_trials=60)
    distinct = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(distinct) == 60
    assert sum(t.state == TrialState.FAIL for t in study.trials) < 20
    assert study.best_value < 0.05


# ---------------------------------------------------------------------- long runs
def sphere(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -5, 5) - 1) ** 2 + (trial.suggest_float("y", -5, 5) + 2) ** 2


@pytest.mark.slow
def test_a_long_study_without_restarts_runs_to_the_end() -> None:
    # Before: trial 3643 raised "B must have determinant 1" and every later process crashed.
    # Converged runs of XNES drift; the sampler refuses a bad state (one warning) and goes on
    # from a fresh one, so the study never crashes. The full 6,000-trial run is in the report.
    sampler = NESSampler(seed=0, restarts=0)
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        study.optimize(sphere, n_trials=1500)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.best_value < 1e-10
    fresh = NESSampler(seed=0, restarts=0)  # resumes from the storage alone
    study.sampler = fresh
    study.optimize(sphere, n_trials=30)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(fresh.generations(study)) > 200


def test_a_generation_of_failures_is_told_without_a_warning_or_a_filter_change() -> None:
    # Every trial after the first fails: each generation is told all-infinite values, which
    # the strategy skips with a NESWarning. The sampler silences that warning (its outcome is
    # the failures Optuna already reports); it did so by replacing the process-wide warning
    # filters for the tell, which threads sampling at once would restore over each other.
    def objective(t: optuna.Trial) -> float:
        t.suggest_float("x", -1, 1)
        t.suggest_float("y", -1, 1)
        return 1.0 if t.number == 0 else math.nan

    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NESWarning)
        before = list(warnings.filters)
        study.optimize(objective, n_trials=40)
        assert list(warnings.filters) == before
    assert len(sampler.generations(study)) >= 5  # generations of failures were told
    assert len({(t.params["x"], t.params["y"]) for t in study.trials}) == 40


def _every_trial_fails_after(last_complete: int, n_trials: int) -> tuple[NESSampler, optuna.Study]:
    """A 2-d study whose trials after `last_complete` all fail (an exception)."""

    def objective(t: optuna.Trial) -> float:
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        if t.number > last_complete:
            raise RuntimeError("the simulator crashed")
        return x + y

    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return sampler, study


def _stored_states(sampler: NESSampler, study: optuna.Study) -> list[dict[str, object]]:
    out = []
    for g in sampler.generations(study):
        trial = study.trials[g["trial"]]  # type: ignore[index]
        carrier = ch.parse_carrier(trial)
        assert carrier is not None
        out.append({**ch.stored_state(trial, carrier), "told": g["told"]})
    return out


def test_a_search_that_never_completes_a_trial_restarts_elsewhere() -> None:
    # Before: a generation of failures has no ranking and changes nothing, so a search whose
    # every trial after the startup failed drew from the same distribution until tolstagnation
    # held, 147 generations at d = 2 (trial 883; 416 generations at d = 10). In a study where
    # 0.5% of the box completes, that left the sampler behind RandomSampler on some seeds.
    # Now a run without a finite value in history_length generations (20 here) restarts:
    # IPOP's new place and doubled population.
    sampler, study = _every_trial_fails_after(0, 400)
    states = _stored_states(sampler, study)
    patience = history_length(2, 6)
    assert patience == 20
    first, last = states[0], states[patience - 1]
    assert last["restart"] == 0
    for key in ("mean", "algo"):  # the distribution (mean, sigma, B, the paths) never moved
        assert last["run"][key] == first["run"][key]  # type: ignore[index]
    restarted = states[patience]
    assert restarted["restart"] == 1
    assert restarted["run"]["popsize"] == 12  # type: ignore[index]
    assert restarted["run"]["mean"] != first["run"]["mean"]  # type: ignore[index]
    sizes = [len(s["told"]) for s in states]  # type: ignore[arg-type]
    assert sizes[1 : patience + 2] == [6] * patience + [12]
    # the restarted run has no finite value either: it restarts after its own history length
    second = patience + history_length(2, 12)  # 15 generations of 12
    assert [s["restart"] for s in states[patience : second + 1]] == [1] * (second - patience) + [2]


@pytest.mark.slow
def test_a_search_whose_trials_fail_after_a_finite_value_waits_for_tolstagnation() -> None:
    # A run that has told a finite value learns from its failures (they rank worst), so it is
    # not restarted early: with every trial failing after its first generation, the search
    # restarts when tolstagnation holds, 100 + 100 d^1.5 / popsize = 147 generations after
    # its best, as for any run without a new best.
    sampler, study = _every_trial_fails_after(6, 1000)  # the startup and generation 1 complete
    states = _stored_states(sampler, study)
    patience = default_stagnation(2, 6)
    assert patience == 147
    assert [s["restart"] for s in states[: patience + 1]] == [0] * (patience + 1)
    assert states[patience + 1]["restart"] == 1
    # after the best (generation 1), nothing moves the distribution
    assert states[patience]["run"]["mean"] == states[2]["run"]["mean"]  # type: ignore[index]


@pytest.mark.slow
def test_a_search_that_spreads_past_the_cube_restarts() -> None:
    # A small BIPOP run of this study (restart 1, from trial ~530) lost the optimum of its
    # integer coordinate and spread out: once wider than the cube, reflected, its candidates
    # were uniform random points, and its step size and mean drifted (sigma 2.5 at generation
    # 88, 693 at 166, with a mean 5,000 widths away) for 78 generations, 460 of 1,100 trials,
    # until the state failed its own bound on sigma and the tell was refused (a NESWarning).
    def objective(t: optuna.Trial) -> float:
        return (t.suggest_float("x", 0, 1) - 0.3) ** 2 + (t.suggest_int("n", 0, 3) - 1) ** 2

    sampler = NESSampler(seed=1, restart_strategy="bipop")
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NESWarning)  # no tell refused
        study.optimize(objective, n_trials=1100)
    widest = 0.0
    for g in sampler.generations(study):
        trial = study.trials[g["trial"]]  # type: ignore[index]
        carrier = ch.parse_carrier(trial)
        assert carrier is not None
        algo = ch.stored_state(trial, carrier)["run"]["algo"]  # type: ignore[index]
        B = np.array(algo["B"])  # XNES: the coordinate spreads are sigma |B_i.|
        widest = max(widest, float(algo["sigma"] * np.max(np.linalg.norm(B, axis=1))))
    assert widest < 5 * _search.MAX_SPREAD
    assert study.best_value < 1e-8


# ---------------------------------------------------------------------- crafted states
@pytest.fixture(scope="module")
def source() -> list[FrozenTrial]:
    study = optuna.create_study(sampler=NESSampler(seed=0, popsize=6))
    study.optimize(sphere, n_trials=20)
    return study.get_trials()


def copy_study(trials: list[FrozenTrial], attrs_of: dict[int, dict[str, object]]) -> optuna.Study:
    return copy_trials(trials, attrs_of, NESSampler(seed=0, popsize=6))


PAYLOADS = {
    "popsize 10**12": set_entry(("run", "popsize"), 10**12),
    "popsize 10**6": set_entry(("run", "popsize"), 10**6),
    "mean of length 40,000": set_entry(("run", "mean"), [0.5] * 40_000),
    "entropy '²'": set_entry(("entropy",), "²"),
    "sigma 1e308": set_entry(("run", "algo", "sigma"), 1e308),
    "eta 1e300": set_entry(("run", "options", "eta_sigma"), 1e300),
    "algo eta 1e300": set_entry(("run", "algo", "eta_sigma"), 1e300),
    "ranked false": set_entry(("ranked",), False),
    "ranked 'x' * 10**6": set_entry(("ranked",), "x" * 10**6),
}


def test_a_whole_number_float_in_a_stored_state_does_not_crash_the_study(
    source: list[FrozenTrial],
) -> None:
    # "restart": 0.0 passed the check (a whole number) but stayed a float, and the next tell's
    # int(str(0.0)) raised out of study.optimize, in every worker and every fresh sampler
    victim = tip_of(source)
    for sampler in (None, NESSampler(seed=0, popsize=6)):
        study = copy_study(source, {victim.number: tampered(victim, set_entry(("restart",), 0.0))})
        if sampler is not None:
            study.sampler = sampler
        study.optimize(sphere, n_trials=12)
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
        chain = study.sampler.generations(study)  # type: ignore[attr-defined]
        assert victim.number in [e["trial"] for e in chain]  # read as the 0 it is
        assert chain[-1]["generation"] >= 4
        last = study.trials[chain[-1]["trial"]]  # type: ignore[index]
        carrier = ch.parse_carrier(last)
        assert carrier is not None
        assert type(ch.stored_state(last, carrier)["restart"]) is int


def test_a_damaged_copy_of_a_state_does_not_condemn_its_good_copies() -> None:
    # A stored state that failed to load was remembered by its digest, so every other copy of
    # that state was skipped too, even the one the sampler had just stored itself. When the
    # first state cannot change (every trial fails, so there is never a warm start), each
    # later trial stored generation 0 again and the search never moved.
    def failing(t: optuna.Trial) -> float:
        t.suggest_float("x", -5, 5)
        t.suggest_float("y", -5, 5)
        if t.number > 0:
            raise RuntimeError("the simulator is down")
        return 1.0

    source = optuna.create_study(sampler=NESSampler(seed=0, popsize=6))
    source.optimize(failing, n_trials=2, catch=(RuntimeError,))
    first = source.trials[1]
    assert first.system_attrs[ch.STATE]["generation"] == 0
    damaged = dict(first.system_attrs)
    damaged[f"{ch.STATE}:0"] = str(damaged[f"{ch.STATE}:0"]) + " "  # no longer its digest
    sampler = NESSampler(seed=0, popsize=6)
    study = optuna.create_study(sampler=sampler)
    for t in source.trials:
        study.add_trial(
            optuna.trial.create_trial(
                state=t.state,
                value=t.value,
                params=t.params,
                distributions=t.distributions,
                system_attrs=damaged if t.number == first.number else t.system_attrs,
            )
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(failing, n_trials=30, catch=(RuntimeError,))
    nes = [w for w in caught if issubclass(w.category, NESWarning)]
    assert len(nes) == 1, [str(w.message) for w in nes]
    assert "trial 1" in str(nes[0].message)
    firsts = [
        t.number for t in study.trials if t.system_attrs.get(ch.STATE, {}).get("generation") == 0
    ]
    assert firsts == [1, 2]  # the damaged copy and one good one
    chain = sampler.generations(study)
    assert [e["trial"] for e in chain][:1] == [2]
    assert len(chain) >= 5  # about a generation per 6 trials (each told all FAIL)


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_each_crafted_state_is_skipped_with_one_warning(
    source: list[FrozenTrial], payload: str
) -> None:
    victim = tip_of(source)
    study = copy_study(source, {victim.number: tampered(victim, PAYLOADS[payload])})
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study.optimize(sphere, n_trials=12)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nes = [w for w in caught if issubclass(w.category, NESWarning)]
    assert len(nes) == 1, [str(w.message) for w in nes]
    assert f"trial {victim.number}" in str(nes[0].message)
    assert peak < 64 * 2**20  # bounded memory: nothing is allocated from the crafted sizes
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    chain = study.sampler.generations(study)  # type: ignore[attr-defined]
    assert victim.number not in [e["trial"] for e in chain]
    assert chain[-1]["generation"] >= 3  # the search went on from the longest valid chain


def test_a_long_run_of_crafted_summaries_is_skipped_with_a_few_chain_rebuilds(
    source: list[FrozenTrial], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Summaries without a state text, each naming the one before as its parent, form a chain
    # longer than the real one. Each was loaded, found bad and the chain rebuilt from every
    # carrier before the next was tried: 1,000 of them took 1.9 s, 4,000 took 49 s, in every
    # process that read the study. Now the run is found bad in one walk up the chain.
    tip = tip_of(source)
    summary = tip.system_attrs[ch.STATE]
    parent, g = summary["digest"], summary["generation"]
    study = copy_study(source, {})
    crafted = []
    for i in range(300):
        digest = f"{i:020x}"
        g += 1
        crafted.append(
            optuna.trial.create_trial(
                params=tip.params,
                distributions=tip.distributions,
                value=1.0,
                system_attrs={
                    ch.STATE: {**summary, "digest": digest, "generation": g, "parent": parent}
                },
            )
        )
        parent = digest
    study.add_trials(crafted)
    rebuilds = 0
    rebuild = ch.Chain._rebuild

    def counted(self: ch.Chain, bad: set[tuple[int, str]]) -> None:
        nonlocal rebuilds
        rebuilds += 1
        rebuild(self, bad)

    monkeypatch.setattr(ch.Chain, "_rebuild", counted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(sphere, n_trials=12)
    assert rebuilds <= 4, rebuilds  # 300 before: one per crafted summary
    nes = [w for w in caught if issubclass(w.category, NESWarning)]
    assert len(nes) == 300  # one per crafted summary
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    chain = study.sampler.generations(study)  # type: ignore[attr-defined]
    assert chain[-1]["generation"] > summary["generation"]  # the real search went on


def test_a_candidate_record_with_a_huge_index_is_harmless(source: list[FrozenTrial]) -> None:
    # A record is untrusted: one that claims extra sample 10**7 of the current generation made
    # every process list the "gaps" below it (10**7 indices, for ever with 10**15).
    tip = tip_of(source)
    carrier = ch.parse_carrier(tip)
    assert carrier is not None
    study = copy_study(source, {})
    last = source[-1]
    record = {"state": carrier.digest, "generation": carrier.generation, "index": 10**7}
    study.add_trial(
        optuna.trial.create_trial(
            params=last.params,
            distributions=last.distributions,
            value=1.0,
            system_attrs={ch.CANDIDATE: record},
        )
    )
    tracemalloc.start()
    try:
        study.optimize(sphere, n_trials=12)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20  # nothing allocated from the crafted index
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    chain = study.sampler.generations(study)  # type: ignore[attr-defined]
    assert chain[-1]["generation"] > carrier.generation  # the generation was told


def test_a_record_read_malformed_is_read_again_once_rewritten() -> None:
    # A RUNNING trial's record may change (the sampler rewrites it). One read while malformed
    # was taken as malformed for good: the trial's later, valid record was never read, its
    # candidate looked free and then contested, and the generation was never told.
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=7)
    tip = sampler.generations(study)[-1]
    trial = study.ask()
    record = {"state": tip["state"], "generation": tip["generation"], "index": -1}
    study._storage.set_trial_system_attr(trial._trial_id, ch.CANDIDATE, record)
    with pytest.warns(NESWarning, match="is malformed"):
        value = sphere(trial)  # the sampler reads the malformed record, then records its own
    study.tell(trial, value)
    assert ch.parse_candidate(study.trials[trial.number]) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error", NESWarning)  # warned once, not again
        study.optimize(sphere, n_trials=20)
    assert len(sampler.generations(study)) >= 5  # 28 trials in generations of 4


def _lines_and_peak(run: Callable[[], None]) -> tuple[int, int]:
    """Return the lines of the sampler's code that `run` executes, and its peak allocation."""
    count = sampler_lines(run)
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


CRAFTED_RECORDS: dict[str, tuple[str, object]] = {
    "candidate: a million ints": (ch.CANDIDATE, list(range(10**6))),
    "summary: a long told list, bad at its end": (
        ch.STATE,
        {
            "digest": "0" * 20,
            "key": "k",
            "generation": 1,
            "parent": "0" * 20,
            "chunks": 1,
            "told": [0] * (ch.MAX_TOLD - 1) + [-2],
        },
    ),
}


@pytest.mark.parametrize("crafted", sorted(CRAFTED_RECORDS))
def test_a_malformed_record_on_a_running_trial_costs_nothing_after_its_first_read(
    crafted: str,
) -> None:
    # The records of unfinished trials are read on every call (five a trial), and a malformed
    # one was parsed again each time, its message built from the whole value (`{raw!r:.80}`
    # prints it all before cutting it): with a list of a million ints on a trial left RUNNING,
    # each later trial took 164.6 ms against 1.0 ms, for good, after the one warning. Measured
    # here in lines of the sampler's code run and in peak allocation (machine-free), over 10
    # trials after the record's first read, against the same study without the record.
    def study_with(attr: str | None, value: object) -> tuple[optuna.Study, Callable[[], None]]:
        study = optuna.create_study(sampler=NESSampler(seed=0, popsize=4))
        study.optimize(sphere, n_trials=8)
        dead = study.ask()  # left RUNNING for good
        if attr is not None:
            study._storage.set_trial_system_attr(dead._trial_id, attr, value)  # type: ignore[arg-type]
        study.optimize(sphere, n_trials=2)  # the record's first read (and warning)
        return study, lambda: study.optimize(sphere, n_trials=10)

    attr, value = CRAFTED_RECORDS[crafted]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, run = study_with(attr, value)
        lines, peak = _lines_and_peak(run)
    assert len([w for w in caught if issubclass(w.category, NESWarning)]) == 1
    _, plain_run = study_with(None, None)
    plain_lines, plain_peak = _lines_and_peak(plain_run)
    assert lines <= 1.5 * plain_lines, (lines, plain_lines)
    assert peak <= plain_peak + 2**20, (peak, plain_peak)


def _gen1_text_with_a_wrong_summary(carriers: list[FrozenTrial], how: str) -> dict[str, object]:
    """Return the attributes of a copy of generation 1's state, its summary tampered `how`."""
    real = carriers[1]
    attrs: dict[str, object] = {
        k: v for k, v in real.system_attrs.items() if k.startswith(ch.STATE + ":")
    }
    summary = dict(real.system_attrs[ch.STATE])
    if how == "unknown parent":
        summary["parent"] = "0" * 20
    else:  # a real state as its parent, one generation deeper than the chain's last
        deepest = carriers[-1].system_attrs[ch.STATE]
        summary["parent"], summary["generation"] = deepest["digest"], deepest["generation"] + 1
    attrs[ch.STATE] = summary
    return attrs


@pytest.mark.parametrize("how", ["unknown parent", "deeper parent"])
@pytest.mark.parametrize("same_sampler", [False, True])
def test_a_copy_of_a_state_with_a_false_summary_does_not_hide_the_state(
    how: str, same_sampler: bool
) -> None:
    # A trial numbered below a state's carrier held that state's very text (same digest) under
    # a summary with a wrong parent. The chain was built from the summaries, each state
    # represented by its lowest-numbered carrier: the false copy hid the real one and, out of
    # reach of the first state, was never loaded, so never found bad. The chain fell back to
    # generation 0 for good (each later trial told it again) and nothing was said.
    sampler = NESSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=1)
    low = study.ask()  # RUNNING while the search goes on: a number below the carriers
    study.optimize(sphere, n_trials=40)
    carriers = [t for t in study.trials if ch.STATE in t.system_attrs]
    before = len(sampler.generations(study))
    assert before >= 6
    assert carriers[1].number > low.number
    for key, value in _gen1_text_with_a_wrong_summary(carriers, how).items():
        study._storage.set_trial_system_attr(low._trial_id, key, value)  # type: ignore[arg-type]
    study.tell(low, state=TrialState.FAIL)
    if not same_sampler:
        sampler = NESSampler(seed=0)
        study.sampler = sampler
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(sphere, n_trials=30)
    nes = [w for w in caught if issubclass(w.category, NESWarning)]
    assert len(nes) == 1, [str(w.message) for w in nes]
    assert f"trial {low.number}:" in str(nes[0].message)
    chain = sampler.generations(study)
    assert [e["trial"] for e in chain][:before] == [t.number for t in carriers[:before]]
    assert len(chain) >= before + 4  # 30 trials in generations of 6


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(data=st.data())
def test_random_corruptions_of_stored_attributes_never_crash_the_study(
    source: list[FrozenTrial], data: st.DataObject
) -> None:
    victims = [t for t in source if any(k.startswith(ch.PREFIX) for k in t.system_attrs)]
    t = data.draw(st.sampled_from(victims))
    keys = sorted(k for k in t.system_attrs if k.startswith(ch.PREFIX))
    key = data.draw(st.sampled_from(keys))
    attrs = dict(t.system_attrs)
    value = attrs[key]
    how = data.draw(st.sampled_from(["replace", "field", "delete", "flip"]))
    if how == "replace":
        attrs[key] = data.draw(JSON)
    elif how == "field" and isinstance(value, dict):
        attrs[key] = {**value, data.draw(st.sampled_from(sorted(value))): data.draw(JSON)}
    elif how == "flip" and isinstance(value, str) and value:
        i = data.draw(st.integers(0, len(value) - 1))
        attrs[key] = value[:i] + data.draw(st.characters()) + value[i + 1 :]
    else:
        del attrs[key]
    study = copy_study(source, {t.number: attrs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        study.optimize(sphere, n_trials=8)
    assert all(u.state == TrialState.COMPLETE for u in study.trials)
    for u in study.trials[len(source) :]:
        assert all(type(v) is float for v in u.params.values())
        assert all(math.isfinite(v) for v in u.params.values())


# ---------------------------------------------------------------------- the benchmark
def test_the_faults_benchmark_runs_from_python_m_benchmarks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import inspect
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    runner = importlib.import_module("benchmarks.__main__")
    module = importlib.import_module(runner.BENCHMARKS["optuna_faults"])
    assert module.__name__ == "benchmarks.optuna_faults"
    inspect.signature(module.main).bind(quick=True)  # the runner's call fits the real main
    calls: list[bool] = []
    monkeypatch.setattr(module, "main", lambda quick: calls.append(quick))
    runner.main(["optuna_faults", "--quick"])
    assert calls == [True]
    assert "benchmarks.optuna_faults" in sys.modules


def test_the_scarce_suite_completes_only_in_its_corner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    faults = importlib.import_module("benchmarks.optuna_faults")
    monkeypatch.setattr(faults, "CACHE", tmp_path)
    result = faults.run_scarce("random", 0, n_trials=300)
    assert result["trials"] == 300
    states = result["states"]
    # RandomSampler: each trial completes with probability 0.07^2 = 0.0049
    assert states.get("COMPLETE", 0) + states["FAIL"] == 300
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(faults.scarce, n_trials=300, catch=(RuntimeError,))
    for t in study.trials:
        inside = t.params["x"] > faults.SCARCE_CORNER and t.params["y"] > faults.SCARCE_CORNER
        assert (t.state == TrialState.COMPLETE) == inside
    assert (tmp_path / "scarce-random-300-0.json").exists()  # type: ignore[operator]


def _told_records(fail_every: int, n_trials: int, **kw: object) -> list[tuple[int, int, float]]:
    """Run a study of 10 + Rosenbrock (never below 10) whose every `fail_every`-th trial
    fails; return (generation, restart, the strategy's best value) of each stored state."""

    def objective(t: optuna.Trial) -> float:
        x = t.suggest_float("x", -5, 5)
        y = t.suggest_float("y", -5, 5)
        if fail_every and t.number % fail_every == fail_every - 1:
            raise RuntimeError("a failing trial")
        return 10.0 + (x - 1) ** 2 + (y - x * x) ** 2

    study = optuna.create_study(sampler=NESSampler(seed=0, **kw))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    out = []
    for g in study.sampler.generations(study):  # type: ignore[attr-defined]
        t = study.trials[g["trial"]]
        state = ch.stored_state(t, ch.parse_carrier(t))
        assert state is not None
        best = state["run"]["record"]["best_f"]
        out.append((g["generation"], state["restart"], math.inf if best is None else best))
    return out


def test_a_generation_with_a_failed_trial_tells_values_not_ranks() -> None:
    """A generation with a failed (or pruned, or infeasible) trial was told the ranks of its
    outcomes: the strategy's best value became a rank (0 where every value is at least 10),
    so tolfun never held on a collapsed run (it sampled one point for 70 generations more,
    until tolstagnation), and ``ftarget`` ended a run at the first failure."""
    records = _told_records(25, 600)
    # the first run ends by tolfun once it has converged, after about 80 generations (480
    # trials; it lasted 150 generations before, ended by tolstagnation)
    assert len({r for _, r, _ in records}) > 1
    assert min(best for _, _, best in records) >= 10.0
    # with ftarget = 1e-3, which no value reaches, one failed trial restarted the search
    records = _told_records(21, 40, strategy_options={"ftarget": 1e-3})
    assert [r for _, r, _ in records] == [0] * len(records)


def test_a_trial_interrupted_by_keyboardinterrupt_is_told_as_its_candidates_fail() -> None:
    """Ctrl-C in the objective: study.optimize tells the trial FAIL and raises the interrupt
    again; the search goes on from there with that FAIL as the candidate's outcome (ranked
    last), the candidate not handed out again (docs/optuna.rst, *Failures*)."""

    def quadratic(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5)
        if trial.number == 3:
            raise KeyboardInterrupt
        return (x - 1) ** 2 + (y + 1) ** 2

    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(quadratic, n_trials=10)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    cand = ch.parse_candidate(study.trials[3])
    assert cand is not None
    assert cand.generation == 0
    study.optimize(quadratic, n_trials=12)
    assert [t.number for t in study.trials if ch.parse_candidate(t) == cand] == [3]
    chain = sampler.generations(study)
    assert len(chain) >= 3
    told = chain[1]["told"]
    assert isinstance(told, list)
    assert told[cand.index] == 3
