"""The process-local side of a :class:`~nes_asktell.NESSampler`: which candidate a trial gets.

An :class:`Assigner` caches what this process read from the study (the parsed records of the
trials, the loaded states with their candidates, the unit spaces and their search keys) and
assigns a trial its candidate: it follows the chain of stored states to its tip, tells the
generation when its slots are complete (storing the next state on the trial) and otherwise picks
the candidate the trial evaluates (see ``_optuna_search.plan``), recording it on the trial.
Everything it decides is a function of the study's storage; the caches only save work.
"""

from __future__ import annotations

import datetime
import time
from collections import OrderedDict
from typing import TypeVar

from optuna.distributions import BaseDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial

from nes_asktell._typing import FloatArray
from nes_asktell._validate import short

from . import _storage as ch
from ._search import (
    EXHAUSTED,
    NOTHING_RUNNING,
    WAIT,
    Loaded,
    Running,
    Search,
    closing,
    exhaustion,
    plan,
)
from ._space import UnitSpace, is_relative

_K = TypeVar("_K")
_V = TypeVar("_V")
_CACHE_SIZE = 16
#: the most trials of each kind whose bookkeeping an Assigner keeps
_MAX_TRIALS = 1024

#: a trial of a study: the study's token (``_storage.study_token``) and the trial's number
TrialKey = tuple[tuple[object, int, str], int]


def _bound(entries: dict[_K, _V]) -> None:
    """Drop the oldest of `entries` past `_MAX_TRIALS` (trials long finished or abandoned)."""
    while len(entries) > _MAX_TRIALS:
        del entries[next(iter(entries))]


#: how long the lowest-numbered of trials that took one candidate at once waits for the others
#: to move on before it moves on too (seconds)
_YIELD_WAIT = 0.5
#: how often a trial crowded off its candidates by rivals chooses again from a fresh read
_RETRIES = 4


class Pending(Exception):  # noqa: N818  (a signal, not an error)
    """Raised by :meth:`Assigner.sample` when the trial should wait `seconds` and sample again.

    The generation's candidates all have outcomes, but extra samples that will be told with it
    are still in flight (see ``_search.closing``); the caller releases its lock while waiting.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class Assigner:
    """Assign the candidates of a search to trials, with this process's caches.

    Parameters
    ----------
    search : Search
        The settings of the search (strategy, step size, population, restarts, options, seed).
    n_startup_trials : int
        COMPLETE trials needed before the strategy samples.
    source_trials : list of FrozenTrial
        Trials of other studies the first state starts from (with the study's own).
    """

    def __init__(
        self, search: Search, n_startup_trials: int, source_trials: list[FrozenTrial]
    ) -> None:
        self.search = search
        self.source_trials = source_trials
        self.n_startup_trials = n_startup_trials
        self.loaded: OrderedDict[str, Loaded] = OrderedDict()
        self.records = ch.Records()
        # Each trial is known by its study and number (a sampler may serve several studies,
        # whose trials have the same numbers), the oldest going first past 1024 entries:
        # the trials left to the independent sampler on purpose,
        self.fallback: dict[TrialKey, None] = {}
        # the times each trial chose again after rivals,
        self.retries: dict[TrialKey, int] = {}
        # and (trial, state) waiting to tell: since when
        self.marked: dict[tuple[TrialKey, str], float] = {}
        self.spaces: dict[tuple[tuple[str, BaseDistribution], ...], tuple[UnitSpace, str]] = {}

    def generations(
        self,
        study: Study,
        trials: list[FrozenTrial],
        search_space: dict[str, BaseDistribution],
    ) -> list[dict[str, object]]:
        """Return the chain of stored states (see ``NESSampler.generations``)."""
        ix = self.records.update(study, trials)
        numeric = {name: d for name, d in search_space.items() if is_relative(d)}
        if not numeric:
            return []
        unit, key = self.unit_space(numeric)
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        out: list[dict[str, object]] = []
        for c in self.records.chain(ix, key):
            loaded = self.load(c, trials, unit, ix, sign)
            if loaded is None:
                break
            out.append(
                {
                    "generation": c.generation,
                    "state": c.digest,
                    "trial": c.number,
                    "told": list(c.told) if self._told_here(ix, c) else None,
                }
            )
        return out

    @staticmethod
    def _told_here(ix: ch.Index, c: ch.Carrier) -> bool:
        """Return whether the told numbers of `c` name trials of this study.

        Each must name a distinct trial holding a candidate of `c`'s parent state (-1: a dead
        candidate). A state copied in from another study (``study.add_trials``, as
        ``optuna.copy_study`` does) keeps the numbers the trials had there: once renumbered, they
        name other trials.
        """
        named = [n for n in c.told if n >= 0]
        if len(set(named)) != len(named):
            return False
        for n in named:
            cand = ix.candidates.get(n)
            if cand is None or cand.state != c.parent:
                return False
        return True

    def load(
        self,
        c: ch.Carrier,
        trials: list[FrozenTrial],
        space: UnitSpace,
        ix: ch.Index,
        sign: float = 1.0,
    ) -> Loaded | None:
        """Return the state of carrier `c` with its candidates, or None (and warn) if invalid.

        `sign` is the study's direction (-1 when maximising). An invalid carrier is noted in
        ``ix.bad`` (the chain then leaves it out).
        """
        hit = self.loaded.get(c.digest)
        if hit is not None:
            self.loaded.move_to_end(c.digest)
            return hit
        trial = ch.find(trials, c.number)
        try:
            if trial is None:
                raise ValueError(f"trial {c.number} is missing")
            state = ch.stored_state(trial, c, self.search.max_chars(space.dim))
            loaded = self.search.load(state, space.dim, space, sign)
        except Exception as exc:  # an untrusted state: whatever it raises, it is skipped
            ix.bad.add((c.number, c.digest))
            self.records.warn_once(
                ("state", c.number, c.trial_id, c.digest),
                f"NESSampler ignores the search state stored on trial {c.number}: {exc}",
            )
            return None
        self.loaded[c.digest] = loaded
        while len(self.loaded) > _CACHE_SIZE:
            self.loaded.popitem(last=False)
        return loaded

    def _fall_back(self, study: Study, number: int) -> None:
        """Note that trial `number` of `study` is left to the independent sampler on purpose."""
        self.fallback[(ch.study_token(study), number)] = None
        _bound(self.fallback)

    def n_complete(self, study: Study) -> int:
        """Return the number of COMPLETE trials of `study` (read incrementally)."""
        return self.records.update(study, ch.all_trials(study)).complete

    def sampled_independently(self, study: Study, number: int) -> bool:
        """Return whether trial `number` of `study` was left to the independent sampler."""
        return (ch.study_token(study), number) in self.fallback

    def unit_space(self, numeric: dict[str, BaseDistribution]) -> tuple[UnitSpace, str]:
        """Return the unit space of the numeric parameters `numeric` and its search key."""
        sig = tuple(sorted(numeric.items()))
        hit = self.spaces.get(sig)
        if hit is None:
            unit = UnitSpace(numeric)
            hit = self.spaces[sig] = (unit, self.search.key(unit))
            while len(self.spaces) > _CACHE_SIZE:
                del self.spaces[next(iter(self.spaces))]
        return hit

    def sample(
        self,
        study: Study,
        trial: FrozenTrial,
        space: UnitSpace,
        key: str,
        running: Running = NOTHING_RUNNING,
    ) -> dict[str, int | float] | None:
        """Return the values of `trial`'s candidate (None during the startup trials).

        The first trial of a search stores the first state; a trial sampled once every slot of
        the current generation has a value tells it and stores the next state; either then
        takes a candidate of the state it stored. `running` says what this process knows of
        the study's other unfinished trials (see ``_search.Running``): which are never waited
        for, which never presumed dead, and which are handed out again at once.
        """
        read_at = datetime.datetime.now()  # (before the read: see `_search.plan`)
        trials = ch.all_trials(study)
        ix = self.records.update(study, trials)
        if ix.complete < self.n_startup_trials:
            self._fall_back(study, trial.number)  # a startup trial
            return None
        if ch.fixed_names(trial) & set(space.names):
            # Enqueued with values of its own for searched parameters: it evaluates no
            # candidate (its value would be told as that of a point it did not evaluate).
            ch.clear_candidate(study, trial)
            self._fall_back(study, trial.number)
            return None
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        # Values the trial has already (a trial sampled twice; Optuna's retry of a trial whose
        # worker died, which copies the parameters it had suggested and its candidate record)
        preset = {name: trial.params[name] for name in space.names if name in trial.params}
        mine = ix.candidates.get(trial.number)
        if mine is not None:  # it keeps its candidate if that is the point it evaluates
            held = self.loaded.get(mine.state)
            if held is None:  # (loaded in another process, or gone from the cache)
                stored = self.records.carrier(ix, key, mine.state)
                held = None if stored is None else self.load(stored, trials, space, ix, sign)
            if held is not None and held.state.get("key") == key:
                row = self._row(held, mine.index)
                if row is None and not preset:
                    return None
                values = None if row is None else space.from_unit(row)
                if values is not None and all(values[n] == x for n, x in preset.items()):
                    return values
        if preset:
            # As an enqueued trial: it evaluates the values it has, not a candidate's.
            ch.clear_candidate(study, trial)
            self._fall_back(study, trial.number)
            return None
        while True:
            tip = self.records.tip(ix, key)
            if tip is None:
                start = self.search.warm_start(space, [*self.source_trials, *trials], sign)
                if start is None and self.source_trials:
                    lam = self.search.popsize_of(space.dim, 0)
                    self.records.warn_once(
                        ("source_trials", key),
                        f"`source_trials`: fewer than a population ({lam}) of them and of the "
                        "study's trials are COMPLETE, feasible and fit the search space "
                        f"{short(list(space.names))}, so the search starts from the centre "
                        "of the box with `sigma0`, as without `source_trials`.",
                    )
                first = self.search.first_state(space, key, start, sign)
                return self._store_and_assign(study, trial, space, first, [], ix)
            loaded = self.load(tip, trials, space, ix, sign)
            if loaded is not None:
                break
            # A bad state is often one of a run (summaries crafted each below the last): its
            # ancestors are tried now, up to the first that loads, so the chain is recomputed
            # once for the run instead of once per state (quadratic in the run's length).
            above = self.records.parent(ix, key, tip)
            while above is not None and self.load(above, trials, space, ix, sign) is None:
                above = self.records.parent(ix, key, above)
        lam = loaded.X.shape[0]
        extra = self.search.extra_rows(loaded)
        numbers = sorted(ix.by_state.get(tip.digest, ()))
        heartbeat = ch.heartbeat_enabled(study)
        n_extra = 0 if extra is None else extra.shape[0]
        give_up = exhaustion(trials, numbers, ix.candidates, lam, n_extra, read_at)
        told, k = plan(
            trials,
            numbers,
            ix.candidates,
            lam,
            trial.number,
            n_extra,
            heartbeat,
            running,
            read_at,
            ch.heartbeat_trials(study) if heartbeat else None,
            give_up,
        )
        if told is not None:
            # The extra samples handed out before the generation closed are told with it
            # (see `closing`); until its deadline, wait for those still in flight.
            carrier = ch.find(trials, tip.number)
            close = closing(
                trials,
                numbers,
                ix.candidates,
                told,
                lam,
                None if carrier is None else carrier.datetime_start,
                trial.number,
                datetime.datetime.now(),
                tip.digest,
                running,
                ix.unfinished(trials),
                give_up if k == EXHAUSTED else None,
                loaded.es.mirrored and loaded.order is None,  # (a surrogate's round: rows)
            )
            fill = (
                close.gaps
                and ((ch.study_token(study), trial.number), tip.digest) not in self.marked
                and trial.datetime_start is not None
                and close.cutoff is not None
                and (trial.datetime_start < close.cutoff or close.mirror is not None)
            )
            if fill:
                # A gap among the extra samples (two trials that took one index at once both
                # moved on) would cut off the extras after it: a trial that could have taken an
                # extra sample anyway (it started before the generation closed) fills it. So
                # does a later one the mirror of an unpaired extra still running: it would
                # wait for that extra idle, and the pair is told.
                known = self._known(ix, tip.digest)
                used = {ix.candidates[n].index for n in numbers}
                return self._assign(
                    study,
                    trial,
                    space,
                    tip.digest,
                    tip.generation,
                    close.gaps[0],
                    loaded,
                    known,
                    used,
                )
            mark = ((ch.study_token(study), trial.number), tip.digest)
            # However the clocks of the processes differ, a trial waits at most one window.
            waited = time.monotonic() - self.marked.get(mark, time.monotonic())
            if close.wait > 0 and waited < close.window:
                if mark not in self.marked:
                    ch.mark_closing(study, trial, tip.digest)  # others need not wait for it
                    self.marked[mark] = time.monotonic()
                    _bound(self.marked)
                raise Pending(close.wait)
            extras = close.extras
            holders: dict[int, int] = {}  # with a surrogate: index -> first trial holding it
            for n in numbers if self.search.surrogate else ():
                holders.setdefault(ix.candidates[n].index, n)
            after, refused, n_told = self.search.next_state(
                tip, loaded, told, sign, extras, trials, holders
            )
            if refused is not None:
                self.records.warn_once(
                    ("refused", tip.digest),
                    f"NESSampler refused to tell generation {tip.generation} (stored on trial "
                    f"{tip.number}): {refused}; the search goes on from a fresh state at its "
                    "last mean.",
                )
            numbers = [-1 if t is None else t.number for t in told]
            numbers += [t.number for t in extras[:n_told]]  # (the ones told)
            return self._store_and_assign(study, trial, space, after, numbers, ix)
        if k == WAIT:  # the extra samples are used up and a live candidate holds the generation
            raise Pending(0.25)
        if k is None:  # the extra samples are used up: an independent sample, not a copy
            ch.clear_candidate(study, trial)  # a record that it holds none
            self._fall_back(study, trial.number)
            return None
        known = self._known(ix, tip.digest)
        used = {ix.candidates[n].index for n in ix.by_state.get(tip.digest, ())}
        return self._assign(
            study, trial, space, tip.digest, tip.generation, k, loaded, known, used
        )

    def _assign(
        self,
        study: Study,
        trial: FrozenTrial,
        space: UnitSpace,
        digest: str,
        generation: int,
        k: int,
        loaded: Loaded,
        known: dict[int, ch.Candidate] | None = None,
        used: set[int] | None = None,
    ) -> dict[str, int | float] | None:
        """Record candidate `k` on `trial` and return its values (None: sample independently).

        With `known` (the records the choice of `k` saw), the record is checked afresh
        against every trial's record, finished trials included: when a trial took the same
        candidate and the choice did not see it holding it (two processes sampling at one
        moment; the other may even have finished already), this trial takes an extra sample
        nobody holds instead, so no live point is evaluated twice. (Both write, then both
        read: at least the one that read last sees the other. A trial that sees a rival with a
        lower number yields, to a free extra by its rank among the rivals; the lowest keeps the
        candidate once every rival has moved on, see `_rivals_yield`, else it yields too.) A
        trial that ends up with no candidate records none.
        """
        lam = loaded.X.shape[0]
        taken = set(used or ())
        recorded = False
        for _ in range(4):
            row = self._row(loaded, k)
            if row is None:
                break
            cand = ch.Candidate(digest, generation, k)
            ch.record_candidate(study, trial, cand)
            recorded = True
            if known is None:
                return space.from_unit(row)
            held = ch.candidate_records(study, digest)
            rivals = [
                n
                for n, c in held.items()
                if c == cand and n != trial.number and known.get(n) != cand
            ]
            if not rivals and self._told_meanwhile(study, loaded, k, digest):
                # A row of a surrogate's round that was told without this record: the next
                # round may hand the same row out again, so this trial samples afresh.
                ch.clear_candidate(study, trial)
                raise Pending(0.01)
            if not rivals:
                return space.from_unit(row)
            if all(n > trial.number for n in rivals) and self._rivals_yield(study, rivals, cand):
                # Each rival saw this trial and moved on (a higher number yields): keep it, so
                # the contested index is not left as a gap among the extra samples.
                return space.from_unit(row)
            taken |= {c.index for c in held.values()}
            rank = sum(n < trial.number for n in rivals)
            free = [j for j in range(lam, lam + len(taken) + rank + 1) if j not in taken]
            k = free[rank]
        if recorded:  # the trial holds no candidate (for now)
            ch.clear_candidate(study, trial)
        me = (ch.study_token(study), trial.number)
        retries = self.retries.get(me, 0)
        if row is not None and retries < _RETRIES:
            # Crowded by rivals: read the storage afresh and choose again, rather than draw a
            # point the search would not use.
            self.retries[me] = retries + 1
            _bound(self.retries)
            raise Pending(0.01)
        self._fall_back(study, trial.number)
        return None

    def _told_meanwhile(self, study: Study, loaded: Loaded, k: int, digest: str) -> bool:
        """Return whether extra `k` of a surrogate's round is a row and the round was told.

        The rounds of one generation share its rows (see ``Search.surrogate_round``): a row
        taken as an extra sample of a round that another process told before it saw the
        record would be handed out again by the next round. Read afresh after recording.
        """
        order = loaded.order
        lam = loaded.X.shape[0]
        if order is None or not lam <= k < len(order):
            return False
        ix = self.records.update(study, ch.all_trials(study))
        return any(c.parent == digest for c in ix.carriers.values())

    @staticmethod
    def _known(ix: ch.Index, digest: str) -> dict[int, ch.Candidate]:
        """Return the records of state `digest` in `ix`, by trial (what a choice saw of them).

        `_assign` compares them with the records of `digest` it reads afresh; a trial whose
        record was of another state (or none) compares alike whether it is here or not, so the
        records of the other states (the whole study) need not be copied.
        """
        return {n: ix.candidates[n] for n in ix.by_state.get(digest, ())}

    @staticmethod
    def _rivals_yield(study: Study, rivals: list[int], cand: ch.Candidate) -> bool:
        """Return whether every one of `rivals` records another candidate than `cand` soon.

        A rival with a higher number that saw this trial's record yields at once; one that did
        not (it read before this trial wrote) keeps `cand`, and then this trial must yield.
        Polled for at most `_YIELD_WAIT` seconds.
        """
        deadline = time.monotonic() + _YIELD_WAIT
        delay = 0.005
        while True:
            held = ch.candidate_records(study, cand.state)
            if all(held.get(n) != cand for n in rivals):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def _row(self, loaded: Loaded, k: int) -> FloatArray | None:
        lam = loaded.X.shape[0]
        extra = self.search.extra_rows(loaded) if k >= lam else None
        if k >= lam and (extra is None or k - lam >= extra.shape[0]):
            return None
        row: FloatArray = loaded.X[k] if extra is None else extra[k - lam]
        return row

    def _store_and_assign(
        self,
        study: Study,
        trial: FrozenTrial,
        space: UnitSpace,
        loaded: Loaded,
        told: list[int],
        ix: ch.Index,
    ) -> dict[str, int | float] | None:
        # The live strategy is the one every other process rebuilds from the stored text (a
        # JSON round trip of plain data is exact).
        digest = ch.store_state(study, trial, loaded.state, told)
        self.loaded[digest] = loaded
        generation = loaded.state["generation"]
        assert isinstance(generation, int)
        # Another process may have stored the same state (same digest) and handed out some of
        # its candidates already: take a free one, spread by trial number as in `plan`.
        lam = loaded.X.shape[0]
        used = {ix.candidates[n].index for n in ix.by_state.get(digest, ())}
        free = [k for k in range(lam) if k not in used]
        k = (
            free[trial.number % len(free)]
            if free
            else next(j for j in range(lam, 1 << 62) if j not in used)
        )
        return self._assign(
            study, trial, space, digest, generation, k, loaded, self._known(ix, digest), used
        )
