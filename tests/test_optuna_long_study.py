"""NESSampler in long studies: what it keeps per trial does not grow with the study.

The chain of states is kept up to date as carriers arrive (``_storage.Chain``) instead of being
recomputed from every carrier on each trial; the index of the trials reads only the new and the
unfinished ones; the trials sampled independently are forgotten once they finish. These tests
check that each of them gives what the from-scratch computation gives, and that the sampled
values do not change. Speed is measured by ``python -m benchmarks optuna --speed``, not here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

optuna = pytest.importorskip("optuna")

from nes_asktell.integrations.optuna import _assign  # noqa: E402
from nes_asktell.integrations.optuna import _sampler as sm  # noqa: E402
from nes_asktell.integrations.optuna import _storage as ch  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from nes_asktell import NESSampler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


# ---------------------------------------------------------------------- the chain, alone
def _forest(draw: st.DrawFn) -> list[ch.Carrier]:
    """Draw carriers of two searches: trees with forks, copies, orphans and bad generations."""
    n = draw(st.integers(1, 40))
    nodes: list[tuple[str, str | None, int, str]] = []  # digest, parent, generation, key
    for i in range(n):
        key = draw(st.sampled_from(["k1", "k1", "k1", "k2"]))
        kind = draw(st.sampled_from(["root", "child", "child", "child", "orphan", "skew"]))
        same_key = [j for j, node in enumerate(nodes) if node[3] == key]
        if kind == "root" or not same_key:
            nodes.append((f"d{i}", None, 0, key))
            continue
        p = nodes[draw(st.sampled_from(same_key))]
        if kind == "child":
            nodes.append((f"d{i}", p[0], p[2] + 1, key))
        elif kind == "orphan":  # a parent no carrier holds
            nodes.append((f"d{i}", f"missing{i}", p[2] + 1, key))
        else:  # a generation that does not follow its parent's
            nodes.append((f"d{i}", p[0], p[2] + draw(st.sampled_from([0, 2])), key))
    carriers = []
    for digest, parent, generation, key in nodes:
        for _ in range(draw(st.integers(1, 3))):  # a state stored on one trial or several
            carriers.append((digest, parent, generation, key))
    numbers = draw(st.permutations(range(len(carriers))))
    out = [
        ch.Carrier(number, number + 1000, d, k, g, p, 1, ())
        for number, (d, p, g, k) in zip(numbers, carriers, strict=True)
    ]
    return draw(st.permutations(out))  # the order in which the carriers are seen


@st.composite
def _arrivals(draw: st.DrawFn) -> tuple[list[ch.Carrier], list[int], list[int]]:
    carriers = _forest(draw)
    # after how many carriers each read of the chain happens, and which carriers turn bad then
    reads = sorted(draw(st.lists(st.integers(0, len(carriers)), min_size=1, max_size=12)))
    bad = draw(st.lists(st.integers(0, len(carriers) - 1), max_size=4))
    return carriers, reads, bad


@given(_arrivals())
def test_incremental_chain_equals_longest_chain_of_all_carriers(
    arrival: tuple[list[ch.Carrier], list[int], list[int]],
) -> None:
    carriers, reads, bad = arrival
    ix = ch.Index()
    records = ch.Records()
    for step, seen in enumerate([*reads, len(carriers)]):
        ix.log[:] = carriers[:seen]
        if step < len(bad) and bad[step] < seen:  # a state found bad when loaded
            c = carriers[bad[step]]
            ix.bad.add((c.number, c.digest))
        for key in ("k1", "k2"):
            good = [c for c in ix.log if c.key == key and (c.number, c.digest) not in ix.bad]
            expected = ch.longest_chain(good)
            assert records.chain(ix, key) == expected
            assert records.tip(ix, key) == (expected[-1] if expected else None)


def test_chain_of_one_search_grows_without_recomputing() -> None:
    """A carrier that extends the chain (the only case of a one-process study) is O(1)."""
    calls = 0
    real = ch.longest_chain

    def counting(carriers: list[ch.Carrier]) -> list[ch.Carrier]:
        nonlocal calls
        calls += 1
        return real(carriers)

    ix, records = ch.Index(), ch.Records()
    parent = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ch, "longest_chain", counting)
        for g in range(500):
            digest = f"s{g}"
            ix.log.append(ch.Carrier(3 * g + 1, g, digest, "k", g, parent, 1, ()))
            if g % 7 == 0:  # the same state stored again on a later trial
                ix.log.append(ch.Carrier(3 * g + 2, g, digest, "k", g, parent, 1, ()))
            parent = digest
            # (of two copies of a state, the one on the lower-numbered trial)
            assert records.tip(ix, "k") == (ix.log[-2] if g % 7 == 0 else ix.log[-1])
    assert calls == 0
    assert [c.generation for c in records.chain(ix, "k")] == list(range(500))


# ---------------------------------------------------------------------- studies
def _reference_assigner(mp: pytest.MonkeyPatch) -> None:
    """Make the sampler compute what it keeps incrementally from scratch, as it used to.

    The chain from every carrier (``longest_chain``) on each call, the records a choice saw
    as a copy of every record of the study, and the running trials by a scan of all trials.
    """

    def chain(self: ch.Records, ix: ch.Index, key: str) -> list[ch.Carrier]:
        return ch.longest_chain(
            [c for c in ix.log if c.key == key and (c.number, c.digest) not in ix.bad]
        )

    def tip(self: ch.Records, ix: ch.Index, key: str) -> ch.Carrier | None:
        found = chain(self, ix, key)
        return found[-1] if found else None

    mp.setattr(ch.Records, "chain", chain)
    mp.setattr(ch.Records, "tip", tip)
    mp.setattr(_assign.Assigner, "_known", staticmethod(lambda ix, digest: dict(ix.candidates)))
    mp.setattr(ch.Index, "unfinished", lambda self, trials: list(trials))


def _hostile_study(dim: int, n_trials: int, seed: int) -> list[tuple[str, dict[str, float]]]:
    """Run a seeded study with failing, pruned and NaN trials, a trial left RUNNING for good
    and a restart (a fresh sampler on the same storage); return each trial's state and values.
    """
    storage = optuna.storages.InMemoryStorage()

    def objective(trial: optuna.Trial) -> float:
        x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(dim)])
        if trial.number % 7 == 3:
            raise RuntimeError("a failing trial")
        f = float(np.sum((x - 1.0) ** 2))
        if trial.number % 11 == 5:
            trial.report(f, 1)
            raise optuna.TrialPruned()
        return math.nan if trial.number % 13 == 4 else f

    def check(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # the chain kept as the trials came equals the one computed from all the carriers
        trials = study.get_trials(deepcopy=False)
        carriers = [c for c in map(ch.parse_carrier, trials) if c is not None]
        if not carriers:  # the startup trial
            return
        # (one search: every carrier has its key)
        records = study.sampler._assigner.records
        ix = records.update(study, trials)
        assert not ix.bad
        assert records.chain(ix, carriers[0].key) == ch.longest_chain(carriers)

    for part in range(2):
        study = optuna.create_study(
            study_name="long",
            storage=storage,
            sampler=NESSampler(seed=seed, popsize=6),
            load_if_exists=True,
        )
        if part == 1:
            study.ask()  # a trial left RUNNING for good, as by a process that died
        study.optimize(objective, n_trials=n_trials // 2, catch=(RuntimeError,), callbacks=[check])
    return [(t.state.name, t.params) for t in study.get_trials(deepcopy=False)]


@pytest.mark.slow
@pytest.mark.parametrize(("dim", "seed"), [(2, 0), (5, 1)])
def test_seeded_values_are_those_of_the_from_scratch_computation(dim: int, seed: int) -> None:
    got = _hostile_study(dim, 300, seed)
    with pytest.MonkeyPatch.context() as mp:
        _reference_assigner(mp)
        expected = _hostile_study(dim, 300, seed)
    assert got == expected  # bit for bit (floats compared exactly)
    states = {s for s, _ in got}
    assert {"COMPLETE", "FAIL", "PRUNED", "RUNNING"} <= states


def test_index_reads_only_new_and_unfinished_trials() -> None:
    """A trial left RUNNING early does not make every later trial read the study again."""
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.ask()  # RUNNING for good
    study.optimize(lambda t: t.suggest_float("x", -1.0, 1.0) ** 2, n_trials=60)
    trials = study.get_trials(deepcopy=False)
    ix = sampler._assigner.records.update(study, trials)
    assert ix.scanned == len(trials)
    assert ix.pending == [0]
    assert [t.number for t in ix.unfinished(trials)] == [0]
    records = ch._RECORDS[study._storage][study._study_id]
    assert records.scanned <= len(trials)
    # (the trial left RUNNING, and the one that was running at the last read)
    assert records.pending == [0, records.scanned - 1]


# ---------------------------------------------------------------------- the fallback set
def _two_parameters(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0) ** 2 + trial.suggest_float("y", 0.0, 1.0) ** 2


def test_fallback_entries_go_when_their_trials_finish() -> None:
    """Trials sampled independently on purpose are remembered only while they run."""
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_two_parameters, n_trials=3)
    for i in range(100):  # enqueued with a value of a searched parameter: no candidate
        study.enqueue_trial({"x": (i % 10) / 10.0})
    study.optimize(_two_parameters, n_trials=100)
    trials = study.get_trials(deepcopy=False)[3:]
    assert all(ch.CANDIDATE in t.system_attrs for t in trials)
    assert all(ch.parse_candidate(t) is None for t in trials)
    assert sampler._fallback == {}


def test_fallback_is_bounded_for_trials_never_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sm, "_MAX_STARTED", 8)
    sampler = NESSampler(seed=0, popsize=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_two_parameters, n_trials=5)
    asked = []
    for i in range(30):  # asked and never told (a process that died, say)
        study.enqueue_trial({"x": i / 30.0})
        trial = study.ask()
        _two_parameters(trial)
        asked.append(trial.number)
    assert len(sampler._fallback) == 8
    assert [number for _, number in sampler._fallback] == asked[-8:]
    assert all(
        t.state == TrialState.RUNNING
        for t in study.get_trials(deepcopy=False)
        if t.number in asked
    )
