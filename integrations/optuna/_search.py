"""The strategy side of :class:`~nes_asktell.NESSampler`: states, candidates and tells.

A state (plain JSON) holds the strategy's ``state_dict`` at the start of a generation (``"run"``),
with the search key, the generation, the parent digest, the restart count and the seed entropy
(not the numbers of the trials told: two processes that tell the same values from different
copies of a candidate must write the same state). Everything here is a deterministic function of
a state and of the told values, so every process computes the same candidates and the same next
state. Restarts start where IPOP's would (the shared helpers of ``nes_asktell._restarts``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from nes_asktell import _validate as v
from nes_asktell._bounds import Box
from nes_asktell._restarts import restart_popsize, restart_x0, run_seed
from nes_asktell._strategy import Strategy, check_popsize
from nes_asktell._typing import FloatArray, NESWarning, OptionValue

from . import _storage as st
from ._space import UnitSpace


def _unit_box(dim: int) -> Box:
    return Box(np.zeros(dim), np.ones(dim))


@dataclass
class Loaded:
    """A state of the storage as a live strategy (its batch asked), with its unit-cube rows.

    `extra` holds further samples of the same distribution (candidates ``popsize, popsize + 1,
    ...``), computed on first use; None when the strategy cannot draw them reproducibly.
    """

    state: dict[str, object]
    es: Strategy
    X: FloatArray
    extra: FloatArray | None = None

    @classmethod
    def of(cls, state: dict[str, object], es: Strategy) -> Loaded:
        """Return the loaded state of `es` (asking its batch)."""
        # The strategy searches R^d; its candidates are reflected into the unit cube, so the
        # update sees the unbounded perturbations (as with the strategies' own `bounds`).
        return cls(state, es, _unit_box(es.dim).reflect(es.ask().copy()))


@dataclass
class Search:
    """The settings that define a search; they make its key."""

    cls: type[Strategy]
    sigma0: float
    popsize: int | None
    restarts: int
    options: dict[str, OptionValue]
    seed: int | None

    def key(self, space: UnitSpace) -> str:
        """Return the identity of the search of `space` with these settings."""
        return st.key_of(
            {
                "space": space.signature,
                "strategy": self.cls.name,
                "popsize": self.popsize,
                "sigma0": self.sigma0,
                "restarts": self.restarts,
                "options": self.options,
            }
        )

    def _mirrored(self) -> bool:
        return bool(self.options.get("mirrored", self.cls.default_mirrored))

    def _popsize0(self, dim: int) -> int:
        return check_popsize(self.popsize, max(dim, 1), self._mirrored())

    def new_strategy(
        self, dim: int, entropy: int, restart: int, x0: FloatArray | None = None
    ) -> Strategy:
        """Return the strategy of restart `restart`, seeded and placed as IPOP's would be.

        Run 0 starts at `x0` (the centre of the cube by default) with the seed itself; restart
        ``r`` starts uniformly in the cube with a seed derived from ``(seed, r)``, and a
        population doubled ``r`` times.
        """
        if restart == 0:
            start = np.full(dim, 0.5) if x0 is None else x0
        else:
            start = restart_x0(np.full(dim, 0.5), _unit_box(dim), entropy, restart)
        lam = restart_popsize(self._popsize0(dim), 2.0, restart, self._mirrored())
        rng = run_seed(entropy, restart)
        return self.cls(start, self.sigma0, lam, rng=rng, **self.options)  # type: ignore[arg-type]

    def warm_start(
        self, space: UnitSpace, trials: list[FrozenTrial], sign: float
    ) -> FloatArray | None:
        """Return the best COMPLETE trial's point if at least a population of them fits `space`."""
        points = []
        for t in trials:
            if t.state != TrialState.COMPLETE or t.value is None or not np.isfinite(t.value):
                continue
            if any(
                t.distributions.get(n) != d for n, d in zip(space.names, space.dists, strict=True)
            ):
                continue
            u = space.to_unit(t.params)
            if u is not None:
                points.append((sign * t.value, t.number, u))
        if len(points) < self._popsize0(space.dim):
            return None
        return min(points, key=lambda p: (p[0], p[1]))[2]

    def load(self, state: dict[str, object], dim: int) -> Loaded:
        """Check a stored state and return it as a live strategy; raise ValueError."""
        run = state["run"]
        if not isinstance(run, dict) or run.get("strategy") != self.cls.name:
            raise ValueError(f"the state is not a {self.cls.__name__} state")
        v.integer("restart", state["restart"], minimum=0)
        entropy = state["entropy"]
        if not isinstance(entropy, str) or not entropy.isdigit():
            raise ValueError(f"`entropy` is malformed: {v.short(entropy)}")
        es = self.cls.from_state(run)
        if es.bounds is not None or es.dim != dim:
            raise ValueError(f"the state does not describe an unbounded {dim}-d search")
        return Loaded.of(state, es)

    def extra_rows(self, loaded: Loaded) -> FloatArray | None:
        """Return `popsize` more samples of the generation's distribution, or None."""
        if loaded.extra is None:
            X = loaded.es.extra_samples(loaded.X.shape[0])
            if X is not None:
                loaded.extra = _unit_box(loaded.es.dim).reflect(X)
        return loaded.extra

    def first_state(
        self, space: UnitSpace, key: str, trials: list[FrozenTrial], sign: float
    ) -> Loaded:
        """Return the state of generation 0 (seeded by `seed`, or fresh entropy)."""
        entropy = self.seed if self.seed is not None else np.random.SeedSequence().entropy
        assert isinstance(entropy, int)
        x0 = self.warm_start(space, trials, sign)
        es = self.new_strategy(space.dim, entropy, 0, x0)
        state: dict[str, object] = {
            "format": st.FORMAT,
            "key": key,
            "generation": 0,
            "parent": None,
            "restart": 0,
            "entropy": str(entropy),
            "run": es.state_dict(),
        }
        return Loaded.of(state, es)

    def next_state(
        self, tip: st.Carrier, loaded: Loaded, told: list[FrozenTrial], sign: float
    ) -> Loaded:
        """Return the state after telling generation `tip` the values of `told` (slot order)."""
        f = np.array([sign * float(t.value) for t in told])  # type: ignore[arg-type]
        es = copy.deepcopy(loaded.es)  # the loaded strategy stays that of its digest
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NESWarning)  # all non-finite: the update is skipped
            es.tell(es.ask(), f)
        restart = int(str(loaded.state["restart"]))
        entropy = int(str(loaded.state["entropy"]))
        if restart < self.restarts and es.stop():
            restart += 1
            es = self.new_strategy(es.dim, entropy, restart)
        state: dict[str, object] = {
            "format": st.FORMAT,
            "key": tip.key,
            "generation": tip.generation + 1,
            "parent": tip.digest,
            "restart": restart,
            "entropy": str(entropy),
            "run": es.state_dict(),
        }
        return Loaded.of(state, es)


def plan(
    trials: list[FrozenTrial],
    numbers: list[int],
    candidates: dict[int, st.Candidate],
    lam: int,
    number: int,
    can_extra: Callable[[], bool],
) -> tuple[list[FrozenTrial] | None, int]:
    """Decide what trial `number` does in a generation of `lam` candidates.

    `numbers` are the trials holding candidates of the generation (sorted), `candidates` their
    records. Returns ``(told, -1)`` when every candidate has a COMPLETE trial (`told`: the
    lowest-numbered one of each, in candidate order), else ``(None, k)``: the candidate to
    evaluate, ``k >= lam`` for an extra sample.
    """
    done: dict[int, FrozenTrial] = {}
    live: dict[int, list[int]] = {}  # candidate -> numbers of its RUNNING/WAITING trials
    completed: list[int] = []  # numbers of the generation's COMPLETE trials, extras too
    n_extra = 0
    for n in numbers:
        held = st.find(trials, n)
        if held is None:
            continue
        k = candidates[n].index
        n_extra += k >= lam
        if held.state == TrialState.COMPLETE:
            completed.append(n)
            if k < lam and k not in done:
                done[k] = held
        elif k < lam and held.state in (TrialState.RUNNING, TrialState.WAITING):
            live.setdefault(k, []).append(n)
    if len(done) == lam:
        return [done[k] for k in range(lam)], -1
    live = {k: nums for k, nums in live.items() if k not in done}
    free = [k for k in range(lam) if k not in done and k not in live]
    if free:
        # Spread concurrent samplers over the free candidates (by trial number), so that two
        # processes reading the storage at the same moment rarely take the same one.
        return None, free[number % len(free)]
    # Every candidate is taken. A candidate whose trials have all been overtaken by a
    # population of COMPLETE trials is probably abandoned: back it up. Otherwise draw an
    # extra sample of the same distribution (not told, but a new point, unlike a copy).
    stale = [k for k, nums in live.items() if sum(n > max(nums) for n in completed) >= lam]
    if not stale and n_extra < lam and can_extra():
        return None, lam + n_extra
    return None, min(stale or live, key=lambda k: (len(live[k]), k))
