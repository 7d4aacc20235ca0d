"""The strategy side of :class:`~nes_asktell.NESSampler`: states, candidates and tells.

A state (plain JSON) holds the strategy's ``state_dict`` at the start of a generation, with the
search key, the generation, the parent digest, the restart count and the seed entropy (not the
numbers of the trials told: two processes that tell the same values from different copies of a
candidate must write the same state). Everything here is a deterministic function of a state
and of the told values, so every process computes the same candidates and the same next state.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from nes_asktell import _validate as v
from nes_asktell._base import NESWarning, Strategy, default_popsize
from nes_asktell._bounds import Box
from nes_asktell._typing import FloatArray

from . import _optuna_chain as ch
from ._optuna_space import UnitSpace

STRATEGIES = {
    "xnes": ("nes_asktell._xnes", "XNES"),
    "snes": ("nes_asktell._snes", "SNES"),
    "openes": ("nes_asktell._openes", "OpenES"),
}


def strategy_class(strategy: object) -> type[Strategy]:
    """Return the Strategy subclass named or given by `strategy`, or raise ValueError."""
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    if isinstance(strategy, str) and strategy in STRATEGIES:
        module, name = STRATEGIES[strategy]
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):  # pragma: no cover
            raise RuntimeError(f"{module}.{name} is not a Strategy")
        return cls
    raise ValueError(
        f"`strategy` must be one of {sorted(STRATEGIES)} or a Strategy subclass, "
        f"but got {strategy!r}."
    )


@dataclass
class Loaded:
    """A state read from the storage, with the candidates of its generation in the unit cube.

    `extra` holds further samples of the same distribution (candidates ``popsize, popsize + 1,
    ...``), computed on first use; None when the strategy cannot draw them reproducibly.
    """

    state: dict[str, object]
    X: FloatArray
    extra: FloatArray | None = None


@dataclass
class Search:
    """The settings that define a search; they make its key."""

    cls: type[Strategy]
    sigma0: float
    popsize: int | None
    restarts: int
    options: dict[str, object]
    seed: int | None

    def key(self, space: UnitSpace) -> str:
        """Return the identity of the search of `space` with these settings."""
        return ch.key_of(
            {
                "space": space.signature,
                "strategy": self.cls.name,
                "popsize": self.popsize,
                "sigma0": self.sigma0,
                "restarts": self.restarts,
                "options": self.options,
            }
        )

    def _popsize(self, dim: int) -> int:
        return self.popsize or default_popsize(max(dim, 1))

    def new_strategy(
        self, dim: int, entropy: int, restart: int, x0: FloatArray | None = None
    ) -> Strategy:
        """Return the strategy of restart `restart`: IPOP doubles the population each time."""
        seq = np.random.SeedSequence(entropy, spawn_key=(restart,))
        words = seq.generate_state(2, np.uint64)
        rng = int(words[0]) << 64 | int(words[1])
        if x0 is None:
            x0 = (
                np.full(dim, 0.5)
                if restart == 0
                else np.random.default_rng(seq.spawn(1)[0]).uniform(0.0, 1.0, dim)
            )
        lam = self._popsize(dim) * 2**restart
        lam += lam % 2 if self.options.get("mirrored", self.cls._default_mirrored) else 0
        return self.cls(x0, self.sigma0, lam, rng=rng, **self.options)

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
        if len(points) < self._popsize(space.dim):
            return None
        return min(points, key=lambda p: (p[0], p[1]))[2]

    def rebuild(self, state: dict[str, object], dim: int) -> Loaded:
        """Check a stored state and return it with its candidates; raise ValueError."""
        sd = state["strategy"]
        if not isinstance(sd, dict) or sd.get("strategy") != self.cls.name:
            raise ValueError(f"the state is not a {self.cls.__name__} state")
        es = self.cls.from_state(sd)
        restart, entropy = state["restart"], state["entropy"]
        v.integer("restart", restart, minimum=0)
        if not isinstance(entropy, str) or not entropy.isdigit():
            raise ValueError(f"`entropy` is malformed: {entropy!r:.60}")
        if es.bounds is not None or es.dim != dim:
            raise ValueError(f"the state does not describe an unbounded {dim}-d search")
        # The strategy searches R^d; its candidates are reflected into the unit cube, so the
        # update sees the unbounded perturbations (as with the strategies' own `bounds`).
        X = Box(np.zeros(dim), np.ones(dim)).reflect(es.ask().copy())
        return Loaded(state, X)

    def extra_rows(self, loaded: Loaded) -> FloatArray | None:
        """Return `popsize` more samples of the generation's distribution, or None.

        With counter-based noise and no mirroring, candidate ``k`` has its own noise stream, so
        the same state with a doubled population draws the same first ``popsize`` candidates and
        then new ones; that is checked, and anything else gives None.
        """
        if loaded.extra is not None:
            return loaded.extra
        sd = loaded.state["strategy"]
        assert isinstance(sd, dict)
        noise = sd.get("noise")
        if sd.get("mirrored") or not isinstance(noise, dict) or noise.get("kind") != "counter":
            return None
        lam, dim = loaded.X.shape
        try:
            X = self.cls.from_state({**sd, "popsize": 2 * lam}).ask()
        except (ValueError, TypeError):  # pragma: no cover - a strategy that rejects it
            return None
        Y = Box(np.zeros(dim), np.ones(dim)).reflect(X.copy())
        if not np.array_equal(Y[:lam], loaded.X):
            return None
        loaded.extra = Y[lam:]
        return loaded.extra

    def first_state(
        self, space: UnitSpace, key: str, trials: list[FrozenTrial], sign: float
    ) -> dict[str, object]:
        """Return the state of generation 0 (seeded by `seed`, or fresh entropy)."""
        entropy = self.seed if self.seed is not None else np.random.SeedSequence().entropy
        assert isinstance(entropy, int)
        x0 = self.warm_start(space, trials, sign)
        es = self.new_strategy(space.dim, entropy, 0, x0)
        return {
            "format": ch.FORMAT,
            "key": key,
            "generation": 0,
            "parent": None,
            "restart": 0,
            "entropy": str(entropy),
            "strategy": es.state_dict(),
        }

    def next_state(
        self, tip: ch.Carrier, loaded: Loaded, told: list[FrozenTrial], sign: float
    ) -> dict[str, object]:
        """Return the state after telling generation `tip` the values of `told` (slot order)."""
        f = np.array([sign * float(t.value) for t in told])  # type: ignore[arg-type]
        es = self.cls.from_state(loaded.state["strategy"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NESWarning)  # all non-finite: the update is skipped
            es.tell(es.ask(), f)
        restart = int(str(loaded.state["restart"]))
        entropy = int(str(loaded.state["entropy"]))
        if restart < self.restarts and es.stop():
            restart += 1
            es = self.new_strategy(es.dim, entropy, restart)
        return {
            "format": ch.FORMAT,
            "key": tip.key,
            "generation": tip.generation + 1,
            "parent": tip.digest,
            "restart": restart,
            "entropy": str(entropy),
            "strategy": es.state_dict(),
        }


def plan(
    trials: list[FrozenTrial],
    numbers: list[int],
    candidates: dict[int, ch.Candidate],
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
        held = ch.find(trials, n)
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
