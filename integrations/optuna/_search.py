"""The strategy side of :class:`~nes_asktell.NESSampler`: states, candidates and tells.

A state (plain JSON) holds the strategy's ``state_dict`` at the start of a generation (``"run"``),
with the search key, the generation, the parent digest, the restart count and the seed entropy
(not the numbers of the trials told: two processes that tell the same values from different
copies of a candidate must write the same state), and under BIPOP its regime and budgets
(``"bipop"``), ``"ranked": true`` once the run has been told ranks (see
:meth:`Search.should_restart`), and with a surrogate the round of its generation
(``"surrogate"``: the trials its model fits, the rows evaluated so far and the order of the
others; see :meth:`Search.surrogate_round`). Everything here is a deterministic function of a
state and of the told outcomes (and, with a surrogate, of the trials its state names that had
finished by the latest completion among those told: see :func:`finished_by`), so every process
computes the same candidates and the same next state, whenever it reads the storage. (A
surrogate's state names trials, so two processes that tell one round from different copies of a
candidate write different states: a fork, which the longest chain resolves as any other.)
Restarts start where IPOP's and BIPOP's would (the shared helpers of ``nes_asktell._restarts``).

Every stored state is untrusted: :meth:`Search.load` bounds its size before it is parsed, checks
its configuration against the search's own (dimension, population, options) and the range of
every number, and :meth:`Search.next_state` checks the state it computes the same way before it
is stored; a tell that fails or would produce a bad state is refused and the search restarts
from a fresh state at the last mean instead.
"""

from __future__ import annotations

import bisect
import copy
import datetime
import json
import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np
from optuna.trial import FrozenTrial, TrialState
from scipy.special import ndtri

from nes_asktell import _surrogate as sg
from nes_asktell import _validate as v
from nes_asktell import _warn
from nes_asktell._bounds import Box
from nes_asktell._restarts import (
    REGIMES,
    restart_popsize,
    restart_x0,
    run_seed,
    small_popsize,
    small_regime_draws,
)
from nes_asktell._stopping import history_length
from nes_asktell._strategy import CONFIGURATION, Strategy, check_popsize
from nes_asktell._typing import FloatArray, OptionValue

from . import _storage as st
from ._space import UnitSpace

#: the largest population a search may use (a generation of more trials is not a study)
MAX_POPSIZE = 1 << 16
#: the most restarts a stored state may count
MAX_RESTART = 10**6
#: extra samples a generation may hand out, as a multiple of its population
EXTRA_FACTOR = 4
#: finished extra samples, as a multiple of the population, after which a generation may close
#: without a candidate still running (see :func:`exhaustion`)
CLOSE_FACTOR = 1
#: the least time (seconds) a candidate runs before its generation may close without it
MIN_LATE = 0.5
#: the widest step size (in unit-cube widths) and the farthest mean a stored state may hold
MAX_SIGMA = 1e3
MAX_MEAN = 1e6
#: the widest spread (root mean square deviation of a generation's rows from the mean, in
#: unit-cube widths, times max(1, sigma0)) a search may reach before it restarts as on
#: convergence. Reflected into the cube, a coordinate of a normal distribution wider than one
#: width is uniform (the density of the reflected normal varies by exp(-pi^2 s^2 / 2) for a
#: width s, 7e-3 at s = 1): its candidates are random points and its updates noise, and its step
#: size and mean drift until they fail the state's own bounds. Ten widths leave a search that
#: could still recover alone.
MAX_SPREAD = 10.0
#: the longest history of best values a stored state may keep
MAX_HISTORY = 100_000
#: the largest learning rate (an option or state entry ``eta_*``) a search may use: with more,
#: one generation changes the step size by more than ``exp(eta / 2 * d)`` and soon overflows
MAX_LEARNING_RATE = 10.0
_ENTROPY_RE = re.compile(r"[0-9]{1,40}")
_STATE_KEYS = {"format", "key", "generation", "parent", "restart", "entropy", "run"}
#: the entry of a state whose run has been told ranks that rank some outcome (``"ranked":
#: true``; absent otherwise, as in the states written before it; see `Search.should_restart`)
_RANKED = "ranked"
#: the entries of a search's ``"surrogate"`` (see :meth:`Search.surrogate_round`): the trials
#: whose points fit the model, the generation's rows evaluated so far (row, trial) and the
#: order of the others, and how many of those this round hands out
_SURROGATE_KEYS = {"archive", "done", "order", "k"}
#: the largest trial number a stored state may name
MAX_TRIAL = 1 << 53
#: the entries of a BIPOP search's ``"bipop"``: the regime of the run, the large restarts made
#: and the trials told to the finished runs of each regime
_BIPOP_KEYS = {"regime", "large", "budget_large", "budget_small"}
#: the largest budget a stored BIPOP state may count (trials)
MAX_BUDGET = 1 << 53
#: the entries of a strategy's state that the search's settings fix
_CONFIG = ("strategy", "version", *CONFIGURATION)


def _unit_box(dim: int) -> Box:
    return Box(np.zeros(dim), np.ones(dim))


def _check_shape(x: object, ref: object, path: str) -> None:
    """Check that `x` has the structure of `ref`: same keys, same list lengths, plain leaves."""
    if isinstance(ref, dict):
        if not isinstance(x, dict) or set(x) != set(ref):
            raise ValueError(f"`{path}` does not have the keys of this search's states")
        for name, sub in ref.items():
            _check_shape(x[name], sub, f"{path}.{name}")
    elif isinstance(ref, list):
        limit = MAX_HISTORY if path.endswith(".fhist") else len(ref)
        if not isinstance(x, list) or (len(x) != len(ref) and not path.endswith(".fhist")):
            raise ValueError(f"`{path}` does not have the shape of this search's states")
        if len(x) > limit:
            raise ValueError(f"`{path}` is longer than {limit}")
        item = ref[0] if ref else 0.0
        for i, sub in enumerate(x):
            _check_shape(sub, ref[i] if i < len(ref) else item, f"{path}[{i}]")
    elif isinstance(x, (dict, list)):
        raise ValueError(f"`{path}` does not have the shape of this search's states")
    elif isinstance(x, str) and len(x) > 64:
        raise ValueError(f"`{path}` is too long")
    elif isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"`{path}` is not finite")


def outcome_key(t: FrozenTrial | None, sign: float) -> tuple[int, float, float]:
    """Return the rank key of a told trial (lower is better).

    COMPLETE and feasible by value; COMPLETE and infeasible by total violation, then value;
    PRUNED below every COMPLETE, the later pruned first, then by the last reported value; FAIL,
    NaN and a candidate whose trials died (None) last.
    """
    worst = (3, 0.0, 0.0)
    if t is None or t.state == TrialState.FAIL:
        return worst
    if t.state == TrialState.COMPLETE:
        if t.value is None or math.isnan(t.value):
            return worst
        f = sign * float(t.value)
        viol = st.violation(t)
        return (0, 0.0, f) if not viol else (1, viol, f)
    if t.state == TrialState.PRUNED:
        steps = t.intermediate_values
        if not steps:
            return (2, 1.0, math.inf)
        last = max(steps)
        value = sign * float(steps[last])
        return (2, -float(last), math.inf if math.isnan(value) else value)
    return worst


def told_fitness(told: list[FrozenTrial | None], sign: float) -> FloatArray:
    """Return the fitness told for the outcomes `told` (lower is better).

    Feasible COMPLETE values are told as themselves, so that value-based shapings see them
    and the strategy's record (its best value, ``ftarget``, ``tolfun``) reads values, never
    ranks. The other outcomes rank below them under :func:`outcome_key`: infeasible and
    PRUNED ones are told the next floats above the worst feasible value, one per distinct
    key, in their order (so they change no range of values the stopping criteria read); FAIL,
    NaN and dead candidates inf. Without a finite feasible value to stand on (none in the
    generation, ``-inf`` or ``inf`` among them beside other outcomes, or too few finite floats
    above the worst of them), the rank of each outcome is told instead (ties share the
    lowest rank), with inf for FAIL, NaN and dead candidates (:func:`_told`; the teller
    then keeps the run's record, see :func:`kept_record`, and notes that the run has been
    ranked, see :meth:`Search.should_restart`). (A strategy ranks a non-finite
    value last, but Optuna takes ``-inf`` when minimising, ``inf`` when maximising, as the
    best value there is: as a rank it comes first.)
    """
    return _told(told, sign)[0]


def _told(told: list[FrozenTrial | None], sign: float) -> tuple[FloatArray, bool]:
    """Return :func:`told_fitness` of `told`, and whether it holds ranks."""
    keys = [outcome_key(t, sign) for t in told]
    if all(k[0] == 0 and k[2] != -math.inf for k in keys):
        return np.array([k[2] for k in keys], dtype=float), False
    feasible = [k[2] for k in keys if k[0] == 0]
    if feasible and all(math.isfinite(v) for v in feasible):
        above = _told_above(keys, max(feasible))
        if above is not None:
            return above, False
    f = np.empty(len(keys))
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    first = 0
    for pos, i in enumerate(order):
        if pos and keys[i] != keys[order[pos - 1]]:
            first = pos
        f[i] = math.inf if keys[i][0] == 3 else float(first)
    return f, True


def _ranked(f: FloatArray, ranks: bool) -> bool:
    """Return whether fitness `f`, ranks if `ranks`, ranks some outcome (is not all inf)."""
    return ranks and bool(np.isfinite(f).any())


def told_values(told: list[FrozenTrial | None], sign: float) -> FloatArray:
    """Return the values of the outcomes `told` for the run's record (lower is better).

    Feasible COMPLETE values as themselves (``-inf`` and ``inf`` too), inf for every other
    outcome: what a strategy told them records (its finite values), whatever the teller
    tells its distribution (see :func:`kept_record`).
    """
    keys = [outcome_key(t, sign) for t in told]
    return np.array([k[2] if k[0] == 0 else math.inf for k in keys], dtype=float)


def kept_record(before: Strategy, after: Strategy, values: FloatArray) -> Strategy:
    """Return `after` with the record `before` keeps when told `values` (:func:`told_values`).

    A generation told ranks (:func:`_told`) moves the distribution, but its ranks are
    no values: in the record (the best value, ``ftarget``, ``tolfun``) the rank 0 became the
    run's best value, also in a run with no value yet (its first generations infeasible),
    where ``ftarget`` then held on the rank 0. The record is the one the strategy keeps when
    told the generation's values (a copy of `before`, whose batch is pending, is told them):
    its finite feasible values, as beside ``-inf`` or ``inf``; without one, one more
    generation without improvement, nothing else.
    """
    recorded = copy.deepcopy(before)
    with _warn.silenced(), np.errstate(all="ignore"):  # all non-finite: update skipped
        recorded.tell(recorded.ask(), values)
    record = recorded.state_dict()["record"]
    state = dict(after.state_dict())
    state["record"] = record
    return type(after).from_state(state)


def _told_above(keys: list[tuple[int, float, float]], worst: float) -> FloatArray | None:
    """Return the fitness of `keys` told above the worst feasible value `worst`.

    Feasible values as themselves, the infeasible and pruned outcomes the next floats above
    `worst` in the order of their keys (ties share one), and inf for the rest. None when
    there are not so many finite floats above `worst` (near 1.8e308: they would be inf, tied
    with the failures).
    """
    f = np.array([k[2] if k[0] == 0 else math.inf for k in keys], dtype=float)
    below = sorted({k for k in keys if k[0] in (1, 2)})
    value = float(worst)
    for key in below:
        if value == sys.float_info.max:
            return None
        value = math.nextafter(value, math.inf)
        f[[i for i, k in enumerate(keys) if k == key]] = value
    return f


@dataclass
class Loaded:
    """A state of the storage as a live strategy (its batch asked), with its unit-cube rows.

    `extra` holds further samples of the same distribution (candidates ``popsize, popsize + 1,
    ...``), computed on first use; None when the strategy cannot draw them reproducibly.
    """

    state: dict[str, object]
    es: Strategy
    X: FloatArray
    space: UnitSpace | None
    margin: FloatArray
    extra: FloatArray | None = None
    #: with a surrogate, in a round that hands out some of the generation's rows only: the
    #: rows not evaluated yet in the order they are handed out (candidates ``0 .. k - 1``,
    #: then the extra samples), and every row of the generation; else None
    order: list[int] | None = None
    rows: FloatArray | None = None

    @classmethod
    def of(cls, state: dict[str, object], es: Strategy, space: UnitSpace | None) -> Loaded:
        """Return the loaded state of `es` (asking its batch).

        `space` is the unit space searched (None: every coordinate continuous). In a
        coordinate of discrete values (ints, log-scaled ones too, and floats with a step) the
        deviations of the batch from the mean are scaled so that the distribution they are
        drawn from has at least the spread of a margin (see below), so an integer parameter
        never freezes (the strategy is told its own rows: the margin only changes which
        values are evaluated).
        """
        Y = es.ask().copy()
        margin = np.ones(es.dim)
        # the cells (see UnitSpace.cell_counts) at the mean, reflected into the cube as a row is
        n = np.zeros(es.dim)
        edge = np.zeros(es.dim)
        if space is not None:
            mu = _unit_box(es.dim).reflect(es.mean[None, :].copy())[0]
            n = space.cell_counts(mu)
            edge = space.edge_gaps(mu)
        if np.any(n > 0):
            dev = Y - es.mean
            std = es.stds
            grid = n > 0
            # Like CMA-ES with margin (Hamano et al. 2022): a sample leaves the mean's cell with
            # probability at least alpha = 1 / (d * popsize) per coordinate. A cell with
            # neighbours on both sides: a standard deviation of half a cell over the normal
            # quantile z(1 - alpha / 2) (the mean anywhere in the cell: at least alpha, the
            # two sides together). The cell of an end value has one exit (beyond the end of
            # the range a row is reflected back into it): the distance to that exit over
            # z(1 - alpha). The deviations are scaled by the ratio to the distribution's
            # standard deviation, not to the batch's: a batch scaled to a spread has no tails
            # (at d = 2, 6 mirrored rows of root mean square s reach at most 1.73 s), and rows
            # left a cell far less often than alpha. alpha is at most 1/4 (d = 1 and the
            # smallest default population, 4): at 1/2 the quantile z(1 - alpha) is 0.
            alpha = min(1.0 / (es.dim * es.popsize), MAX_MARGIN_ALPHA)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                z = float(ndtri(1.0 - alpha / 2.0))
                want = np.where(grid, 0.5 / (z * np.maximum(n, 1.0)), 0.0)
                want = np.maximum(want, edge / float(ndtri(1.0 - alpha)))
                margin = np.where(grid & (std < want), want / np.maximum(std, 1e-300), 1.0)
            margin = np.minimum(margin, 1e12)
            Y = es.mean + dev * margin
        # The strategy searches R^d; its candidates are reflected into the unit cube, so the
        # update sees the unbounded perturbations (as with the strategies' own `bounds`).
        X = _unit_box(es.dim).reflect(Y)
        if not np.isfinite(X).all():
            raise ValueError("the state's candidates are not finite")
        sur = state.get("surrogate")
        if isinstance(sur, dict) and _partial(sur):
            # A round of a surrogate-assisted generation (see `Search.surrogate_round`): its
            # candidates are the next `k` rows in the model's order, its extra samples the
            # rest, then further samples of the distribution (points for the model only).
            order = [int(str(i)) for i in sur["order"]]
            k = int(str(sur["k"]))
            extra = X[order[k:]]
            # Every round of the generation draws other samples: rounds that evaluated more
            # rows (`done` grows by at least one row per round) take later ones.
            n_more = EXTRA_FACTOR * es.popsize
            start = len(sur["done"]) * n_more
            end = start + n_more
            more = es.extra_samples(end) if end <= MAX_ROUND_SAMPLES else None
            if more is not None:
                more = more[start:]
                more = _unit_box(es.dim).reflect(es.mean + (more - es.mean) * margin)
                extra = np.vstack([extra, more])
            return cls(state, es, X[order[:k]], space, margin, extra, order, X)
        return cls(state, es, X, space, margin)


def _as_evaluated(loaded: Loaded, U: FloatArray) -> FloatArray:
    """Return the unit points at which the loaded generation's rows `U` are evaluated.

    An int or a float with a step takes its cell's value (``UnitSpace.as_evaluated``): the
    model, fitted to evaluated points, ranks the rows there, not where they lie in their cells
    (else an int's position within its cell, which changes nothing, outweighs a float's
    effect on the value as the search converges, and the float stops converging).
    """
    return U if loaded.space is None else loaded.space.as_evaluated(U)


def _partial(sur: dict[str, object]) -> bool:
    """Return whether a (checked) surrogate entry hands out only some rows of its generation."""
    order = sur["order"]
    assert isinstance(order, list)
    return bool(sur["done"]) or int(str(sur["k"])) < len(order)


def _fresh_surrogate(lam: int, archive: list[int] | None = None) -> dict[str, object]:
    """Return the surrogate entry of a generation that hands out all its `lam` rows at once."""
    return {"archive": archive or [], "done": [], "order": list(range(lam)), "k": lam}


def _usable(t: FrozenTrial | None, sign: float) -> bool:
    """Return whether `t` is a point the model may fit: COMPLETE, feasible, a finite value."""
    key = outcome_key(t, sign)
    return key[0] == 0 and math.isfinite(key[2])


#: the most samples of a surrogate-assisted generation's distribution its rounds draw (see
#: `Loaded.of`): a round after which more would be needed hands out no further samples
MAX_ROUND_SAMPLES = 1 << 16
#: the largest probability of leaving the mean's cell that the margin asks for (see `Loaded.of`)
MAX_MARGIN_ALPHA = 0.25


def _as_float(x: object) -> object:
    """Return `x` with every int in it (not bool) as the float of the same value, if exact."""
    if isinstance(x, int) and not isinstance(x, bool):
        try:
            f = float(x)
        except OverflowError:
            return x
        return f if f == x else x
    if isinstance(x, (list, tuple)):
        return [_as_float(y) for y in x]
    if isinstance(x, dict):
        return {k: _as_float(y) for k, y in x.items()}
    return x


#: the dimension up to which XNES runs mirrored by default in the sampler (see `mirrored_up_to`)
MIRRORED_UP_TO = 2


def mirrored_up_to(cls: type[Strategy], given: dict[str, object], popsize: int | None) -> int:
    """Return the dimension up to which a search runs mirrored when `given` does not say.

    XNES runs mirrored at d <= `MIRRORED_UP_TO` (one or two parameters), unless the strategy
    options `given` set ``mirrored`` or `popsize` is odd or 2 (mirrored sampling needs an even
    one, and learns no step size from a single pair). There, paired with the sampler's
    independent sampling, it reached the better value in 177 of 288 BBOB runs at d = 2 and
    200 trials and the worse in 110 (``benchmarks/optuna_replay.py``, docs/optuna.rst); at
    d = 3 the two are level.
    """
    odd = popsize is not None and (popsize % 2 == 1 or popsize < 4)
    if cls.name != "xnes" or "mirrored" in given or odd:
        return 0
    return MIRRORED_UP_TO


@dataclass
class Search:
    """The settings that define a search; they make its key."""

    cls: type[Strategy]
    sigma0: float
    popsize: int | None
    restarts: int
    options: dict[str, OptionValue]
    seed: int | None
    restart_strategy: str = "ipop"
    #: the search runs mirrored at this dimension and below (see :func:`mirrored_up_to`)
    mirrored_up_to: int = 0
    #: whether a linear-quadratic model of the told points chooses which rows of a generation
    #: are evaluated and ranks the others (see :meth:`surrogate_round`)
    surrogate: bool = False
    _refs: dict[tuple[int, int, float], dict[str, object]] = field(
        default_factory=dict, repr=False
    )

    def key(self, space: UnitSpace) -> str:
        """Return the identity of the search of `space` with these settings.

        Settings that mean the same give the same key: a number as an int or a float (1 or
        1.0), and a `popsize` equal to the default one at the space's dimension or None.
        """
        popsize = self.popsize
        if popsize == check_popsize(None, max(space.dim, 1), self._mirrored(space.dim)):
            popsize = None
        settings: dict[str, object] = {
            "space": space.signature,
            "strategy": self.cls.name,
            "popsize": popsize,
            "sigma0": self.sigma0,
            "restarts": self.restarts,
            "options": {name: _as_float(x) for name, x in self.options_at(space.dim).items()},
        }
        if self.bipop:  # IPOP searches keep the key they had before BIPOP existed
            settings["restart_strategy"] = self.restart_strategy
        if self.surrogate:  # (and those without a surrogate the key they had before it)
            settings["surrogate"] = True
        return st.key_of(settings)

    @property
    def bipop(self) -> bool:
        """Whether the search restarts as BIPOP (else as IPOP)."""
        return self.restart_strategy == "bipop"

    def options_at(self, dim: int, sign: float = 1.0) -> dict[str, OptionValue]:
        """Return the strategy options of a `dim`-d search: mirrored up to `mirrored_up_to`.

        The strategy minimises the study's values after `sign` (-1 when maximising), so a
        value of the study among them, ``ftarget``, is taken after `sign` too.
        """
        options = dict(self.options)
        if dim <= self.mirrored_up_to:
            options["mirrored"] = True
        target = options.get("ftarget")
        if isinstance(target, (int, float)) and not isinstance(target, bool):
            options["ftarget"] = sign * target
        return options

    def _mirrored(self, dim: int) -> bool:
        return bool(self.options_at(dim).get("mirrored", self.cls.default_mirrored))

    def _large_popsize(self, lam0: int, restart: int, mirrored: bool) -> int:
        """Return `lam0` doubled `restart` times, at most `restarts` times and MAX_POPSIZE."""
        doublings = min(restart, self.restarts)
        lam = restart_popsize(lam0, 2.0, doublings, mirrored)
        while lam > max(MAX_POPSIZE, lam0):
            doublings -= 1
            lam = restart_popsize(lam0, 2.0, doublings, mirrored)
        return lam

    def popsize_of(
        self, dim: int, restart: int, bipop: dict[str, object] | None = None, entropy: int = 0
    ) -> int:
        """Return the population of run `restart`: doubled per restart up to `restarts` times.

        Under BIPOP (`bipop` the run's regime entry): a large run doubles per large restart
        (``bipop["large"]`` of them) up to `restarts` times; a small run draws its population
        in ``[lam0, lam_l / 2]`` from `entropy` and `restart`, as :class:`~nes_asktell.BIPOP`
        does, with ``lam_l`` the population of the next large run.
        """
        mirrored = self._mirrored(dim)
        lam0 = check_popsize(self.popsize, max(dim, 1), mirrored)
        if bipop is None:
            return self._large_popsize(lam0, restart, mirrored)
        large = int(str(bipop["large"]))
        if bipop["regime"] == "large":
            return self._large_popsize(lam0, large, mirrored)
        u1, _ = small_regime_draws(entropy, restart)
        lam_l = self._large_popsize(lam0, large + 1, mirrored)
        return max(min(small_popsize(lam0, lam_l, u1, mirrored), lam_l), lam0)

    def sigma0_of(self, restart: int, bipop: dict[str, object] | None, entropy: int) -> float:
        """Return the initial step size of run `restart`.

        `sigma0`, times ``10**(-2 U_2)`` for a small BIPOP run (``U_2`` drawn from `entropy`
        and `restart`, as :class:`~nes_asktell.BIPOP` does).
        """
        if bipop is None or bipop["regime"] == "large":
            return self.sigma0
        _, u2 = small_regime_draws(entropy, restart)
        return float(self.sigma0 * 10.0 ** (-2.0 * u2))

    def first_bipop(self) -> dict[str, object] | None:
        """Return the regime entry of run 0 (None for an IPOP search)."""
        if not self.bipop:
            return None
        return {"regime": "large", "large": 0, "budget_large": 0, "budget_small": 0}

    @staticmethod
    def next_bipop(bipop: dict[str, object], nfev: int) -> dict[str, object]:
        """Return the regime entry of the run after one of `nfev` told trials ends.

        The finished run's trials count in its regime's budget; the next run is small while
        the small regime has used fewer trials than the large one (Hansen 2009), else large.
        There is no last large restart: after `restarts` doublings the large runs keep their
        population, so the search never stops.
        """
        large = int(str(bipop["large"]))
        budgets = {r: int(str(bipop[f"budget_{r}"])) for r in REGIMES}
        budgets[str(bipop["regime"])] += nfev
        regime = "small" if budgets["small"] < budgets["large"] else "large"
        return {
            "regime": regime,
            "large": min(large + (regime == "large"), MAX_RESTART),
            "budget_large": min(budgets["large"], MAX_BUDGET),
            "budget_small": min(budgets["small"], MAX_BUDGET),
        }

    def new_strategy(
        self,
        dim: int,
        entropy: int,
        restart: int,
        x0: FloatArray | None = None,
        rng: int | None = None,
        sigma0: float | None = None,
        bipop: dict[str, object] | None = None,
        sign: float = 1.0,
    ) -> Strategy:
        """Return the strategy of restart `restart`, seeded and placed as IPOP's would be.

        Run 0 starts at `x0` (the centre of the cube by default) with the seed itself; restart
        ``r`` starts uniformly in the cube with a seed derived from ``(seed, r)``, and a
        population doubled ``min(r, restarts)`` times (under BIPOP, the population and step
        size of its regime entry `bipop`, see :meth:`popsize_of`). `x0` and `rng` override the
        place and the seed (a reset after a refused tell); `sign` is the study's direction
        (see :meth:`options_at`).
        """
        if x0 is not None:
            start = x0
        elif restart == 0:
            start = np.full(dim, 0.5)
        else:
            start = restart_x0(np.full(dim, 0.5), _unit_box(dim), entropy, restart)
        lam = self.popsize_of(dim, restart, bipop, entropy)
        seed = run_seed(entropy, restart) if rng is None else rng
        s0 = self.sigma0_of(restart, bipop, entropy) if sigma0 is None else sigma0
        options = self.options_at(dim, sign)
        return self.cls(start, s0, lam, rng=seed, **options)  # type: ignore[arg-type]

    def reference(
        self,
        dim: int,
        restart: int,
        bipop: dict[str, object] | None = None,
        entropy: int = 0,
        sign: float = 1.0,
    ) -> dict[str, object]:
        """Return the state of a fresh run `restart` in `dim` dimensions (cached)."""
        lam = self.popsize_of(dim, restart, bipop, entropy)
        ref = self._refs.get((dim, lam, sign))
        if ref is None:
            options = self.options_at(dim, sign)
            es = self.cls(np.full(dim, 0.5), self.sigma0, lam, rng=0, **options)  # type: ignore[arg-type]
            ref = self._refs[(dim, lam, sign)] = es.state_dict()
            while len(self._refs) > 64:
                del self._refs[next(iter(self._refs))]
        return ref

    def max_chars(self, dim: int) -> int:
        """Return the longest text a stored state of a `dim`-d search may have."""
        ref = self.reference(dim, MAX_RESTART)
        extra = 0
        if self.surrogate:  # trial numbers, and rows of the largest population
            lam = int(str(ref["popsize"]))
            extra = 24 * (sg.max_points(dim) + 3 * lam) + 256
        return 4 * len(st.dumps(ref)) + 32 * MAX_HISTORY + 4096 + extra

    def warm_start(
        self, space: UnitSpace, trials: list[FrozenTrial], sign: float
    ) -> tuple[FloatArray, float] | None:
        """Return a start (mean, step size) from COMPLETE feasible trials that fit `space`.

        None unless there are at least a population of them. The mean is the best point (as
        Optuna ranks them: ``-inf`` after `sign`, the best value there is, first; ``inf`` and NaN
        are left out); the step size is the root mean square spread of the best population of
        points around it (per coordinate, averaged), between a tenth of `sigma0` and `sigma0`.
        """
        points = []
        for t in trials:
            values = t.values  # (one per objective: `value` raises for several)
            if t.state != TrialState.COMPLETE or values is None or len(values) != 1:
                continue
            value = sign * float(values[0])
            if math.isnan(value) or value == math.inf:
                continue
            if st.violation(t):
                continue
            if any(
                t.distributions.get(n) != d for n, d in zip(space.names, space.dists, strict=True)
            ):
                continue
            u = space.to_unit(t.params)
            if u is not None:
                points.append((value, t.number, u))
        lam = self.popsize_of(space.dim, 0)
        if len(points) < lam:
            return None
        points.sort(key=lambda p: (p[0], p[1]))
        best = points[0][2]
        top = np.array([p[2] for p in points[:lam]])
        spread = float(np.sqrt(np.mean((top - best) ** 2)))
        return best, min(max(spread, 0.1 * self.sigma0), self.sigma0)

    def load(
        self, state: object, dim: int, space: UnitSpace | None = None, sign: float = 1.0
    ) -> Loaded:
        """Check a stored state and return it as a live strategy; raise ValueError.

        The configuration (strategy, dimension, population of its restart, options after the
        study's direction `sign`, see :meth:`options_at`) must be this search's, every list
        must have the length of this search's states, and every number must be finite and in
        range; only then is the strategy built.
        """
        keys = _STATE_KEYS | {"bipop"} if self.bipop else _STATE_KEYS
        if self.surrogate:
            keys = keys | {"surrogate"}
        if not isinstance(state, dict) or set(state) - {_RANKED} != keys:
            raise ValueError("the state does not have the keys of a search state")
        if _RANKED in state and state[_RANKED] is not True:
            raise ValueError(
                f"`{_RANKED}` must be true if present, but got {v.short(state[_RANKED])}"
            )
        restart = v.integer("restart", state["restart"], minimum=0, maximum=MAX_RESTART)
        state = {**state, "restart": restart}  # (a JSON 0.0 is 0: read as an int later)
        entropy = state["entropy"]
        if not isinstance(entropy, str) or _ENTROPY_RE.fullmatch(entropy) is None:
            raise ValueError(f"`entropy` is malformed: {v.short(entropy)}")
        bipop = None
        if self.bipop:
            bipop = self._check_bipop(state["bipop"], restart)
            state = {**state, "bipop": bipop}
        run = state["run"]
        if not isinstance(run, dict):
            raise ValueError(f"the state is not a {self.cls.__name__} state")
        ref = self.reference(dim, restart, bipop, int(entropy), sign)
        for name in _CONFIG:
            if run.get(name) != ref[name]:
                raise ValueError(
                    f"`{name}` is {v.short(run.get(name))}, but this search has "
                    f"{v.short(ref[name])}"
                )
        _check_shape(run, ref, "run")
        algo = run.get("algo")
        for name, value in algo.items() if isinstance(algo, dict) else ():
            rate = isinstance(value, (int, float)) and name.startswith("eta")
            if rate and not 0 < value <= MAX_LEARNING_RATE:
                raise ValueError(f"`{name}` must lie in (0, {MAX_LEARNING_RATE}]")
        es = self.cls.from_state(run)
        if es.bounds is not None or es.dim != dim:
            raise ValueError(f"the state does not describe an unbounded {dim}-d search")
        sigma = np.asarray(es.sigma, dtype=float)
        if not (np.isfinite(sigma).all() and (sigma > 0).all() and (sigma <= MAX_SIGMA).all()):
            raise ValueError(f"`sigma` must lie in (0, {MAX_SIGMA}], but got {v.short(es.sigma)}")
        if not np.all(np.abs(es.mean) <= MAX_MEAN):
            raise ValueError(f"`mean` must be finite and lie within {MAX_MEAN} of the cube")
        if self.surrogate:
            sur = self._check_surrogate(state["surrogate"], es.popsize, dim)
            state = {**state, "surrogate": sur}
        return Loaded.of(state, es, space)

    @staticmethod
    def _check_surrogate(sur: object, lam: int, dim: int) -> dict[str, object]:
        """Return a stored surrogate entry if it is well formed for `lam` rows; raise else.

        The archive names at most `MAX_TRIAL` trials of ``sg.max_points`` (the fit reads
        whatever of them are usable points, see :meth:`surrogate_round`); `done` pairs a row
        with the trial that evaluated it (-1: it died), `order` holds the other rows, each once,
        and `k` is between 1 and their number.
        """
        if not isinstance(sur, dict) or set(sur) != _SURROGATE_KEYS:
            raise ValueError("`surrogate` does not have the keys of a surrogate entry")
        archive, done, order = sur["archive"], sur["done"], sur["order"]
        if not isinstance(archive, list) or len(archive) > sg.max_points(dim):
            raise ValueError("`surrogate.archive` must be a short list of trial numbers")
        if not isinstance(done, list) or not isinstance(order, list):
            raise ValueError("`surrogate.done` and `surrogate.order` must be lists")
        if len(done) + len(order) != lam or not order:
            raise ValueError(f"`surrogate` must account for the {lam} rows of its generation")
        out_archive = [
            v.integer("surrogate.archive[]", n, minimum=0, maximum=MAX_TRIAL) for n in archive
        ]
        out_done: list[list[int]] = []
        for pair in done:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError("`surrogate.done` must hold pairs [row, trial]")
            row = v.integer("surrogate.done[][0]", pair[0], minimum=0, maximum=lam - 1)
            number = v.integer("surrogate.done[][1]", pair[1], minimum=-1, maximum=MAX_TRIAL)
            out_done.append([row, number])
        numbers = [n for _, n in out_done if n >= 0]
        if len(set(numbers)) != len(numbers):
            raise ValueError("`surrogate.done` names a trial for two rows")
        out_order = [v.integer("surrogate.order[]", i, minimum=0, maximum=lam - 1) for i in order]
        if len({*out_order, *(r for r, _ in out_done)}) != lam:
            raise ValueError("`surrogate` names a row of its generation twice")
        k = v.integer("surrogate.k", sur["k"], minimum=1, maximum=len(out_order))
        return {"archive": out_archive, "done": out_done, "order": out_order, "k": k}

    @staticmethod
    def _check_bipop(bipop: object, restart: int) -> dict[str, object]:
        """Return a stored regime entry if it is well formed for run `restart`; raise else."""
        if not isinstance(bipop, dict) or set(bipop) != _BIPOP_KEYS:
            raise ValueError("`bipop` does not have the keys of a BIPOP regime entry")
        regime = bipop["regime"]
        if regime not in REGIMES:
            raise ValueError(
                f"`bipop.regime` must be one of {list(REGIMES)}, but got {v.short(regime)}"
            )
        out: dict[str, object] = {"regime": str(regime)}
        out["large"] = v.integer("bipop.large", bipop["large"], minimum=0, maximum=restart)
        for name in ("budget_large", "budget_small"):
            out[name] = v.integer(f"bipop.{name}", bipop[name], minimum=0, maximum=MAX_BUDGET)
        return out

    def extra_rows(self, loaded: Loaded) -> FloatArray | None:
        """Return `EXTRA_FACTOR * popsize` more samples of the generation's distribution."""
        if loaded.extra is None:
            X = loaded.es.extra_samples(EXTRA_FACTOR * loaded.X.shape[0])
            if X is not None:
                mean = loaded.es.mean
                X = mean + (X - mean) * loaded.margin
                loaded.extra = _unit_box(loaded.es.dim).reflect(X)
        return loaded.extra

    def first_state(
        self,
        space: UnitSpace,
        key: str,
        start: tuple[FloatArray, float] | None = None,
        sign: float = 1.0,
    ) -> Loaded:
        """Return the state of generation 0 (seeded by `seed`, or fresh entropy).

        `start` is a (mean, step size) from :meth:`warm_start`; None: the centre and `sigma0`.
        `sign` is the study's direction (see :meth:`options_at`).
        """
        entropy = self.seed if self.seed is not None else np.random.SeedSequence().entropy
        assert isinstance(entropy, int)
        bipop = self.first_bipop()
        if start is None:
            es = self.new_strategy(space.dim, entropy, 0, bipop=bipop, sign=sign)
        else:
            x0, sigma0 = start
            es = self.new_strategy(
                space.dim, entropy, 0, x0=x0, sigma0=sigma0, bipop=bipop, sign=sign
            )
        state: dict[str, object] = {
            "format": st.FORMAT,
            "key": key,
            "generation": 0,
            "parent": None,
            "restart": 0,
            "entropy": str(entropy),
            "run": es.state_dict(),
        }
        if bipop is not None:
            state["bipop"] = bipop
        if self.surrogate:
            state["surrogate"] = _fresh_surrogate(es.popsize)
        return self.load(json.loads(st.dumps(state)), space.dim, space, sign)

    def _tell(
        self,
        loaded: Loaded,
        told: list[FrozenTrial | None],
        extras: list[FrozenTrial],
        sign: float,
    ) -> tuple[Strategy, int, bool]:
        """Return a copy of the loaded strategy told `told` and, if possible, `extras`.

        `extras` are finished trials of the extra samples ``popsize, popsize + 1, ...`` (in that
        order, without gaps). Extra sample ``j`` is a row of the same state with a population
        larger by ``len(extras)`` (the same counter noise keys; see
        :meth:`~nes_asktell.Strategy.extra_samples`), so the generation is told as one of
        ``popsize + len(extras)`` rows, and the result keeps the search's population. With
        mirrored sampling the extras are told in whole mirrored pairs (an extra whose mirror
        has not finished is not told). If the rows do not match, only `told` is told. Returns
        the strategy, the number of extras told (the first ones of `extras`) and whether it
        was told ranks that rank some outcome (see :meth:`should_restart`).
        """
        lam = loaded.X.shape[0]
        es = copy.deepcopy(loaded.es)  # the loaded strategy stays that of its digest
        if es.mirrored:
            extras = extras[: len(extras) - len(extras) % 2]
        outcomes = [*told, *extras]
        f, keep = _told(outcomes, sign)
        values = told_values(outcomes, sign)
        with _warn.silenced(), np.errstate(all="ignore"):  # all non-finite: update skipped
            if extras:
                try:
                    run = dict(es.state_dict())
                    run["popsize"] = lam + len(extras)
                    run["asked"] = False
                    big = self.cls.from_state(run)
                    Xb = big.ask()
                    X = es.ask()
                    E = es.extra_samples(len(extras))
                    if E is None:
                        raise ValueError("no extra samples")  # (told without them below)
                    if es.mirrored:  # the larger population's order: [+ rows, - rows]
                        m = lam // 2
                        rows = np.vstack([X[:m], E[0::2], X[m:], E[1::2]])
                        n = f.size
                        order = np.concatenate(
                            [
                                np.arange(m),
                                np.arange(lam, n, 2),
                                np.arange(m, lam),
                                np.arange(lam + 1, n, 2),
                            ]
                        )
                    else:
                        rows, order = np.vstack([X, E]), np.arange(f.size)
                    fb = f[order]
                    if np.array_equal(Xb, rows):
                        big_before = copy.deepcopy(big) if keep else big
                        big.tell(Xb, fb)
                        state = dict(big.state_dict())
                        state["popsize"] = lam
                        told_es = self.cls.from_state(state)
                        if keep:
                            told_es = kept_record(big_before, told_es, values[order])
                        return told_es, len(extras), _ranked(fb, keep)
                except Exception:
                    pass
            before = copy.deepcopy(es) if keep else es
            es.tell(es.ask(), f[:lam])
        told_es = kept_record(before, es, values[:lam]) if keep else es
        return told_es, 0, _ranked(f[:lam], keep)

    def _lost(self, es: Strategy) -> bool:
        """Return whether the spread of `es`'s next generation exceeds `MAX_SPREAD` somewhere.

        Measured on the rows it would ask (a copy asks them), so it needs no strategy's
        internals and every process finds the same.
        """
        probe = copy.deepcopy(es)
        with np.errstate(all="ignore"):
            dev = probe.ask() - probe.mean
            spread = np.sqrt(np.mean(dev**2, axis=0))
        return not bool(np.all(spread <= MAX_SPREAD * max(1.0, self.sigma0)))

    def _starved(self, es: Strategy, ranked: bool) -> bool:
        """Return whether `es` has told ``history_length`` generations without a finite outcome.

        Such a run sits where nothing completes (every outcome a FAIL, NaN or dead): with no
        ranking its distribution never changes, so it restarts elsewhere at once instead of
        waiting for ``tolstagnation`` (147 generations at d = 2, 416 at d = 10). A run that has
        had a finite value, or has been `ranked` (told ranks of infeasible or pruned outcomes,
        which move it but leave its record without a value), learns from its failures and goes
        on (see docs/optuna.rst).
        """
        return (
            es.generation >= history_length(es.dim, es.popsize)
            and not math.isfinite(es.best[1])
            and not ranked
        )

    def should_restart(self, es: Strategy, ranked: bool = False) -> bool:
        """Return whether the search restarts after `es`'s latest tell.

        When the strategy has converged (its ``stop()`` holds), has spread past
        `MAX_SPREAD` (:meth:`_lost`) or has told ``history_length`` generations without a
        finite outcome (:meth:`_starved`; `ranked`: the run has been told ranks that rank
        some outcome, stored as ``"ranked": true`` in its states).
        """
        return bool(es.stop()) or self._lost(es) or self._starved(es, ranked)

    def next_state(
        self,
        tip: st.Carrier,
        loaded: Loaded,
        told: list[FrozenTrial | None],
        sign: float,
        extras: list[FrozenTrial] | None = None,
        trials: list[FrozenTrial] | None = None,
        held: dict[int, int] | None = None,
    ) -> tuple[Loaded, str | None, int]:
        """Return the state after telling generation `tip` the outcomes `told` (slot order).

        Finished `extras` (see :meth:`_tell`) are told as further rows of the generation; the
        third item of the result is how many (the first ones of `extras`).
        A converged strategy, one whose spread has grown past `MAX_SPREAD`, or one that has
        never had a finite value in ``history_length`` generations restarts (IPOP:
        a doubled population up to `restarts` times, the same population after; BIPOP: the run
        of the regime that has used fewer trials, see :meth:`next_bipop`). A tell that raises
        or gives a state that does not pass :meth:`load` is refused: the next state is then a
        fresh run at the last mean (of the same restart and regime), and the second item of the
        result says why (None when the tell was accepted).

        With a surrogate, `trials` (the study's, sorted by number) hold the points of its
        archive, `held` maps the candidate indices that trials hold to the first such trial,
        and a round of a generation may lead to another round of the same generation instead
        of a tell (see :meth:`surrogate_round`).
        """
        restart = int(str(loaded.state["restart"]))
        entropy = int(str(loaded.state["entropy"]))
        raw = loaded.state.get("bipop")
        bipop = dict(raw) if isinstance(raw, dict) else None
        trials = trials or []

        def wrap(
            run: dict[str, object],
            restart: int,
            bipop: dict[str, object] | None,
            surrogate: dict[str, object] | None,
            ranked: bool = False,
        ) -> dict[str, object]:
            out: dict[str, object] = {
                "format": st.FORMAT,
                "key": tip.key,
                "generation": tip.generation + 1,
                "parent": tip.digest,
                "restart": restart,
                "entropy": str(entropy),
                "run": run,
            }
            if bipop is not None:
                out["bipop"] = bipop
            if surrogate is not None:
                out["surrogate"] = surrogate
            if ranked:
                out[_RANKED] = True
            return out

        used = 0
        ranked = loaded.state.get(_RANKED) is True
        by = told_by([*told, *(extras or [])])
        try:
            archive: list[int] = []
            if loaded.order is not None:  # a round of a surrogate-assisted generation
                step = self.surrogate_round(loaded, told, extras or [], sign, trials, held)
                archive, used = step.archive, step.used
                if step.fitness is None:  # another round of the same generation
                    run = loaded.state["run"]
                    assert isinstance(run, dict)
                    after = json.loads(
                        st.dumps(wrap(run, restart, bipop, step.next_round, ranked))
                    )
                    return self.load(after, loaded.es.dim, loaded.space, sign), None, used
                es = copy.deepcopy(loaded.es)
                # (the rows the model filled in are no evaluations: a BIPOP search counts its
                # runs' budgets in the strategy's evaluations, ``nfev``, as trials)
                handed_out = step.fitness.size - step.filled
                with _warn.silenced(), np.errstate(all="ignore"):
                    es.tell(es.ask(), step.fitness, evaluated=handed_out)
                if step.ranks:
                    assert step.values is not None  # (a round told ranks holds the values)
                    es = kept_record(loaded.es, es, step.values)
                ranked = ranked or _ranked(step.fitness, step.ranks)
            else:
                es, used, ranks = self._tell(loaded, told, extras or [], sign)
                ranked = ranked or ranks
                if self.surrogate:
                    archive = self._grown_archive(loaded, [*told, *(extras or [])[:used]], sign)
                    # the extra samples not told (still running, or finished after the
                    # deadline) join it too: the fit reads a trial once it has a usable value
                    late = _late_samples(held, loaded.es.popsize, archive, trials, sign, by)
                    archive = [*archive, *late][-sg.max_points(loaded.es.dim) :]
            stopped = self.should_restart(es, ranked)
            after_bipop = bipop
            if stopped:
                restart = min(restart + 1, MAX_RESTART)
                if bipop is not None:
                    after_bipop = self.next_bipop(bipop, es.nfev)
                es = self.new_strategy(es.dim, entropy, restart, bipop=after_bipop, sign=sign)
                archive = []  # (a new run starts elsewhere: its model starts afresh)
                ranked = False
            fresh_sur = _fresh_surrogate(es.popsize, archive) if self.surrogate else None
            after = json.loads(
                st.dumps(wrap(es.state_dict(), restart, after_bipop, fresh_sur, ranked))
            )
            out = self.load(after, es.dim, loaded.space, sign)
            ordered = self._first_round(out, archive, trials, sign, by)
            if ordered is not None:
                after["surrogate"] = ordered
                out = self.load(json.loads(st.dumps(after)), es.dim, loaded.space, sign)
            return out, None, used
        except Exception as exc:  # the tell is refused; the search goes on from a fresh run
            reason = f"{type(exc).__name__}: {exc}"
        dim = loaded.es.dim
        mean = np.clip(np.nan_to_num(loaded.es.mean, nan=0.5), 0.0, 1.0)
        words = np.random.SeedSequence(entropy, spawn_key=(restart, tip.generation + 1))
        seed = int(words.generate_state(2, np.uint64)[0])
        es = self.new_strategy(dim, entropy, restart, x0=mean, rng=seed, bipop=bipop, sign=sign)
        fresh_sur = _fresh_surrogate(es.popsize) if self.surrogate else None
        fresh = self.load(
            json.loads(st.dumps(wrap(es.state_dict(), restart, bipop, fresh_sur))),
            dim,
            loaded.space,
            sign,
        )
        return fresh, reason, used

    # -- the surrogate (lq-CMA-ES's pre-screening, Hansen 2019) -----------------------------

    def _grown_archive(
        self, loaded: Loaded, evaluated: list[FrozenTrial | None], sign: float
    ) -> list[int]:
        """Return the loaded archive with the usable trials of `evaluated`, the latest kept."""
        sur = loaded.state.get("surrogate")
        old = list(sur["archive"]) if isinstance(sur, dict) else []
        new = [t.number for t in evaluated if t is not None and _usable(t, sign)]
        return [*old, *new][-sg.max_points(loaded.es.dim) :]

    @staticmethod
    def _points(
        archive: list[int],
        trials: list[FrozenTrial],
        space: UnitSpace | None,
        sign: float,
        by: datetime.datetime | None,
    ) -> tuple[FloatArray, FloatArray]:
        """Return the points (unit cube) and values (after `sign`) of the usable `archive`.

        Only the trials finished by `by` (see :func:`told_by`) count: one that finished later
        is read as still running, as by a process that read the storage before it finished.
        """
        rows: list[FloatArray] = []
        values: list[float] = []
        for n in archive if space is not None else ():
            t = st.find(trials, n)
            if t is None or not finished_by(t, by) or not _usable(t, sign):
                continue
            u = space.to_unit(t.params)  # type: ignore[union-attr]
            if u is not None and u.shape == (space.dim,):  # type: ignore[union-attr]
                rows.append(u)
                values.append(sign * float(t.values[0]))
        dim = 0 if space is None else space.dim
        return np.array(rows, dtype=float).reshape(-1, dim), np.array(values, dtype=float)

    def _first_round(
        self,
        loaded: Loaded,
        archive: list[int],
        trials: list[FrozenTrial],
        sign: float,
        by: datetime.datetime | None,
    ) -> dict[str, object] | None:
        """Return the surrogate entry of a new generation's first round, or None (no model).

        The model of `archive` (its trials finished by `by`) orders the generation's rows by
        their predicted value, and the first round hands out the best ``sg.first_batch`` of
        them.
        """
        if not self.surrogate or not archive:
            return None
        X, f = self._points(archive, trials, loaded.space, sign, by)
        model = sg.fit(X, f) if f.size else None
        if model is None:
            return None
        with np.errstate(all="ignore"):
            pred = model.predict(_as_evaluated(loaded, loaded.X))
        if not np.all(np.isfinite(pred)):
            return None
        lam = loaded.X.shape[0]
        order = [int(i) for i in np.argsort(pred, kind="stable")]
        return {"archive": archive, "done": [], "order": order, "k": sg.first_batch(lam)}

    @staticmethod
    def _evaluated(loaded: Loaded, row: int, t: FrozenTrial) -> bool:
        """Return whether trial `t` evaluated row `row` of the loaded generation (so far).

        Its parameters are the row's values, each that it has suggested (a trial that failed
        early has fewer; one that suggested none is taken at its record's word).
        """
        if loaded.space is None or loaded.rows is None:
            return True
        values = loaded.space.from_unit(loaded.rows[row])
        return all(t.params[n] == x for n, x in values.items() if n in t.params)

    def surrogate_round(
        self,
        loaded: Loaded,
        told: list[FrozenTrial | None],
        extras: list[FrozenTrial],
        sign: float,
        trials: list[FrozenTrial],
        held: dict[int, int] | None = None,
    ) -> Round:
        """Return what follows a round of a surrogate-assisted generation.

        The generation's rows are handed out in the model's order, ``k`` at a time (``k``
        candidates, the other rows as extra samples): lq-CMA-ES's pre-screening (Hansen 2019).
        `held` maps the candidate indices of the round that trials hold to the first such
        trial: a row handed out but not told with the round (an extra sample still running,
        or finished after the round's deadline) is never handed out again; the round after
        records it with its trial (as ``done``), whose outcome counts once it has one. After a
        round the archive gains its usable points, and

        * when every row has an outcome, the generation is told them, as without a surrogate;
        * when an outcome is not a finite feasible value (pruned, failed, infeasible, dead),
          the next round hands out every row left: the model cannot rank such outcomes;
        * when the model refitted to the archive ranks its most recent points
          (``sg.tau_points``) with a Kendall tau of at least ``sg.TAU_THRESHOLD``, the
          generation is told: the rows evaluated their values, the others the model's,
          shifted by the difference of the best evaluated value and its prediction and never
          below that value (so the best value told is one evaluated);
        * otherwise the next round hands out as many more rows as were evaluated so far.

        When no row is left to hand out but some have no outcome yet (their trials still
        running), the generation is told without waiting for them: the model's values if it
        agrees, else as missing (ranked last, as a dead candidate).
        """
        sur = loaded.state["surrogate"]
        assert isinstance(sur, dict)
        assert loaded.order is not None
        assert loaded.rows is not None
        order, k = loaded.order, int(str(sur["k"]))
        lam = loaded.rows.shape[0]
        by = told_by([*told, *extras])  # (a trial finished later is read as running)
        outcome: dict[int, FrozenTrial | None] = {}  # row -> its finished trial (None: dead)
        pending: dict[int, int] = {}  # row -> the running trial that holds it
        for row, number in sur["done"]:
            t = None if number < 0 else st.find(trials, number)
            if t is not None and not finished_by(t, by):
                pending[row] = number
                continue
            if t is not None and not self._evaluated(loaded, row, t):
                raise ValueError(f"`surrogate.done` names trial {number}, which row {row} is not")
            outcome[row] = t
        # (the extras past the generation's rows are further samples: points for the model)
        rows_told, samples = extras[: len(order) - k], extras[len(order) - k :]
        new = [*zip(order[:k], told, strict=True), *zip(order[k:], rows_told, strict=False)]
        for row, t in new:
            outcome[row] = t
        for index, number in sorted((held or {}).items()):
            if 0 <= index < len(order) and order[index] not in outcome:
                pending.setdefault(order[index], number)
        archive = self._grown_archive(loaded, [*(t for _, t in new), *samples], sign)
        # The trials of rows still running join the archive too: the fit reads a trial once it
        # has a usable value (see `_points`), so such a row enters the model when it finishes,
        # in a later round of its generation or, if the generation is told without it (the
        # model's value, or missing), in the generations after.
        # So do the further samples handed out and not told with the round (still running, or
        # finished after its deadline).
        running = [n for n in pending.values() if n not in archive]
        running += _late_samples(held, len(order), archive, trials, sign, by)
        archive = [*archive, *running][-sg.max_points(loaded.es.dim) :]
        remaining = [i for i in order if i not in outcome and i not in pending]

        def ranked() -> Round:  # (every row has an outcome, or is missing)
            outcomes = [outcome.get(i) for i in range(lam)]
            fitness, ranks = _told(outcomes, sign)
            values = told_values(outcomes, sign)
            return Round(archive, len(extras), fitness, ranks=ranks, values=values)

        def again(count: int) -> Round:
            done = [[row, -1 if t is None else t.number] for row, t in outcome.items()]
            done += [[row, number] for row, number in pending.items()]
            nxt = {"archive": archive, "done": done, "order": remaining, "k": count}
            return Round(archive, len(extras), None, nxt)

        if not remaining and not pending:
            return ranked()
        if not all(_usable(t, sign) for t in outcome.values()):
            return again(len(remaining)) if remaining else ranked()
        X, f = self._points(archive, trials, loaded.space, sign, by)
        model = sg.fit(X, f) if f.size else None
        if model is None:
            return again(len(remaining)) if remaining else ranked()
        n_tau = sg.tau_points(len(outcome), lam)
        if sg.rank_agreement(model, X[-n_tau:], f[-n_tau:]) < sg.TAU_THRESHOLD:
            return again(min(len(outcome), len(remaining))) if remaining else ranked()
        rows = list(outcome)
        rest = [i for i in range(lam) if i not in outcome]
        values = np.array([sign * float(outcome[i].values[0]) for i in rows])  # type: ignore[union-attr]
        with np.errstate(all="ignore"):
            pred = model.predict(_as_evaluated(loaded, loaded.rows))
            shift = values.min() - pred[rows].min()
            fitness = np.empty(lam)
            fitness[rows] = values
            fitness[rest] = np.maximum(pred[rest] + shift, values.min())
        if not np.all(np.isfinite(fitness)):
            return again(len(remaining)) if remaining else ranked()
        return Round(archive, len(extras), fitness, filled=len(remaining))


def _late_samples(
    held: dict[int, int] | None,
    first: int,
    archive: list[int],
    trials: list[FrozenTrial],
    sign: float,
    by: datetime.datetime | None,
) -> list[int]:
    """Return the trials of further samples (`held` indices from `first` on) for the archive.

    Those not in `archive` that are still running (not finished by `by`, see
    :func:`finished_by`) or have a usable point, by index (a trial that finished with no
    usable value would only take an archive's place).
    """
    out: list[int] = []
    for index, n in sorted((held or {}).items()):
        if index < first:
            continue
        t = st.find(trials, n)
        if n in archive or n in out or t is None:
            continue
        if not finished_by(t, by) or _usable(t, sign):
            out.append(n)
    return out


def told_by(told: list[FrozenTrial | None]) -> datetime.datetime | None:
    """Return the latest completion among the trials `told` (None if none has one).

    Every process that tells a generation has read each of its told trials finished, so it
    reads every trial that had finished by then as finished too (as with the extra samples
    told, see :func:`closing`, up to a trial whose completion time is set before its write
    and that is still being written); a trial it reads finished later may still be running
    for another process.
    """
    stamps = [t.datetime_complete for t in told if t is not None]
    return max((d for d in stamps if d is not None), default=None)


def finished_by(t: FrozenTrial, by: datetime.datetime | None) -> bool:
    """Return whether `t` had finished by `by` (see :func:`told_by`; None: as read).

    A surrogate's state depends on which trials of its archive have finished (the model fits
    their points); read as of `by`, every process that tells the generation finds the same,
    whenever it reads. A finished trial without a completion time counts as finished.
    """
    if not t.state.is_finished():
        return False
    done = t.datetime_complete
    return by is None or done is None or done <= by


@dataclass
class Round:
    """What follows a round of a surrogate-assisted generation (see `Search.surrogate_round`).

    `archive` is the archive after it, `used` the extra samples it told; `fitness` the
    generation's values to tell (`filled` of them the model's, for rows never handed out), or
    None when another round follows, with its surrogate entry `next_round`.
    """

    archive: list[int]
    used: int
    fitness: FloatArray | None = None
    next_round: dict[str, object] | None = None
    #: the rows of a told generation that the model filled in (never handed out to a trial)
    filled: int = 0
    #: whether `fitness` holds ranks, no values (see :func:`_told`)
    ranks: bool = False
    #: the values of the outcomes for the run's record, when `fitness` holds ranks (see
    #: :func:`told_values`)
    values: FloatArray | None = None


#: the shortest time a RUNNING trial runs before it may be presumed dead (seconds)
MIN_GRACE = 5.0
#: what :func:`plan` returns for a trial that should wait and sample again
WAIT = -2
#: what :func:`plan` returns with the outcomes when the generation closes on its extra
#: samples while a candidate has no outcome (see :func:`exhaustion`)
EXHAUSTED = -3


def _finished_after(finished: list[int], number: int) -> int:
    return len(finished) - bisect.bisect_right(finished, number)


def _is_stale(
    trials: list[FrozenTrial],
    finished: list[int],
    number: int,
    lam: int,
    now: datetime.datetime | None = None,
) -> bool:
    """Return whether RUNNING trial `number` is presumed dead (the grace period is over).

    It must have been overtaken by `lam` finished trials numbered after it, and have run
    longer than ten times the median duration of those trials and at least `MIN_GRACE`
    seconds (a live process may stall that long on a busy machine; as the storage's timestamps
    say, so that every process decides alike, or, once later than them, the clock `now` of the
    process that would wait for it).
    """
    after = finished[bisect.bisect_right(finished, number) :]
    if len(after) < lam:
        return False
    held = st.find(trials, number)
    start = None if held is None else held.datetime_start
    durations, latest = [], None
    for n in {*after[: 4 * lam], *after[-4 * lam :]}:  # bounded work in a long study
        t = st.find(trials, n)
        if t is None or t.datetime_start is None or t.datetime_complete is None:
            continue
        durations.append((t.datetime_complete - t.datetime_start).total_seconds())
        latest = t.datetime_complete if latest is None else max(latest, t.datetime_complete)
    if start is None or latest is None or not durations:
        return True
    if now is not None:
        # The time of a trial waiting for it counts too: when no other trial is left to finish
        # (a study whose only other RUNNING trials are dead), the storage's times stand still.
        latest = max(latest, now)
    grace = max(10.0 * float(np.median(durations)), MIN_GRACE)
    return (latest - start).total_seconds() > grace


#: the order of a candidate's outcomes: its told trial is the first of the best state
_RANK = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2}


def _outcomes(
    trials: list[FrozenTrial],
    numbers: list[int],
    candidates: dict[int, st.Candidate],
    lam: int,
    by: datetime.datetime | None = None,
) -> dict[int, FrozenTrial]:
    """Return each candidate's outcome among the finished trials of `numbers` (sorted).

    The lowest-numbered COMPLETE trial, else PRUNED, else FAIL; with `by`, among the trials
    finished by then.
    """
    outcome: dict[int, FrozenTrial] = {}
    for n in numbers:
        held = st.find(trials, n)
        k = candidates[n].index
        if held is None or k >= lam or not held.state.is_finished():
            continue
        if by is not None and (held.datetime_complete is None or held.datetime_complete > by):
            continue
        best = outcome.get(k)
        if best is None or _RANK[held.state] < _RANK[best.state]:
            outcome[k] = held
    return outcome


def exhaustion(
    trials: list[FrozenTrial],
    numbers: list[int],
    candidates: dict[int, st.Candidate],
    lam: int,
    n_extra_max: int,
    now: datetime.datetime | None = None,
) -> datetime.datetime | None:
    """Return when the generation gives up on its candidates still running then, or None.

    A generation that closes so tells the outcomes finished by that time; a candidate without
    one counts as missing (see :func:`plan`).

    With *first* the completion of the ``CLOSE_FACTOR * lam``-th finished extra sample and
    *late* = max(`WAIT_FACTOR` x the median duration of the generation's trials finished by
    then, `MIN_LATE` seconds): the latest of *first* and, for each candidate without an
    outcome by *first*, the start of its earliest trial (at most *first*) plus *late*. None
    while fewer extras have finished (or when the generation has fewer: `n_extra_max`).
    `numbers` are the trials holding records of the generation (see :func:`plan`). Everything
    is read from the storage's timestamps, so every process finds the same; a completion later
    than `now` (the time the caller read `trials`) cannot be real, and is not counted.
    """
    need = CLOSE_FACTOR * lam
    if n_extra_max < need or need <= 0:
        return None
    done: list[datetime.datetime] = []
    for n in numbers:
        t = st.find(trials, n)
        if (
            t is not None
            and lam <= candidates[n].index < lam + n_extra_max  # (records are untrusted)
            and t.state.is_finished()
            and t.datetime_complete is not None
            and (now is None or t.datetime_complete <= now)
        ):
            done.append(t.datetime_complete)
    if len(done) < need:
        return None
    first = sorted(done)[need - 1]
    durations: list[float] = []
    start: dict[int, datetime.datetime] = {}  # candidate -> the start of its earliest trial
    answered: set[int] = set()  # candidates with an outcome by `first`
    for n in numbers:
        t = st.find(trials, n)
        if t is None:
            continue
        k = candidates[n].index
        end = t.datetime_complete if t.state.is_finished() else None
        if end is not None and end <= first:
            if t.datetime_start is not None:
                durations.append((end - t.datetime_start).total_seconds())
            answered.add(k)
        if k < lam and t.datetime_start is not None:
            start[k] = min(start.get(k, t.datetime_start), t.datetime_start)
    median = float(np.median(durations)) if durations else 0.0
    late = datetime.timedelta(seconds=max(WAIT_FACTOR * median, MIN_LATE))
    at = first
    for k, began in start.items():
        if k not in answered:
            # (a candidate is handed out before any extra, so its trial started before
            # `first`: a later start is a copy's, or a crafted one, and never delays more)
            at = max(at, min(began, first) + late)
    return at


@dataclass(frozen=True)
class Running:
    """Who runs the unfinished trials of a study, as far as the calling process knows.

    The storage cannot say whether an unfinished trial is still being evaluated; the process
    that started it can. Each field names other unfinished trials than the caller's:

    * `blocked`: started by the caller's thread. They cannot progress while it waits (trials
      asked together with ``study.ask()`` and told later), so they are never waited for.
    * `passed`: those of `blocked` that the thread started before a trial of its own that has
      since finished, outside ``study.optimize`` (an ask never told, or told out of order):
      not a batch in flight, so a generation closes without them once they are late (see
      :func:`plan`), as without another process's late trials.
    * `abandoned`: those of `blocked` that cannot finish at all before the caller's
      ``study.optimize`` returns (a ``study.ask()`` never told, as when user code raised
      between ask and tell). Their candidates are handed out again at once.
    * `alive`: run by ``study.optimize`` in other threads of the caller's process. Optuna
      finishes them whatever the objective does, so they are never presumed dead, however
      long they take.
    * `local`: started in the caller's process. Sampling is serialised there, so one that
      has not sampled yet takes a candidate of whatever state it then reads, and a
      generation does not wait for it to sample.
    """

    blocked: frozenset[int] = frozenset()
    abandoned: frozenset[int] = frozenset()
    alive: frozenset[int] = frozenset()
    local: frozenset[int] = frozenset()
    passed: frozenset[int] = frozenset()


#: what a caller that started no other trial of the study knows of them: nothing
NOTHING_RUNNING = Running()


def plan(
    trials: list[FrozenTrial],
    numbers: list[int],
    candidates: dict[int, st.Candidate],
    lam: int,
    number: int,
    n_extra_max: int,
    heartbeat: bool = False,
    running: Running = NOTHING_RUNNING,
    now: datetime.datetime | None = None,
    watched: frozenset[int] | None = None,
    give_up: datetime.datetime | None = None,
) -> tuple[list[FrozenTrial | None] | None, int | None]:
    """Decide what trial `number` does in a generation of `lam` candidates.

    `numbers` are the trials holding candidates of the generation (sorted), `candidates` their
    records. Every finished trial is an outcome (COMPLETE, PRUNED or FAIL: see
    :func:`outcome_key`). A trial takes a candidate no trial holds, else the first extra
    sample nobody holds (index ``lam`` or more). Once `now` (the time the caller read `trials`)
    is past `give_up` (see :func:`exhaustion`) and a candidate had no outcome by then, the
    generation closes: ``(told, EXHAUSTED)``, each candidate told its outcome finished by
    then, None (missing) if it had none; before then, once the extras are used up, a trial
    waits (`WAIT`). Otherwise, and while a trial ``running.blocked`` (but not ``passed``)
    holds an unfinished row of the generation (see :class:`Running` for what the caller's
    process knows of its trials), the older rule: only when the extra samples are used up is
    a candidate whose RUNNING trial is presumed dead (see :func:`_is_stale`; never one held
    by a trial ``running.alive``; when the storage has a `heartbeat`, only a candidate none
    of whose trials records one, as `watched` (the RUNNING trials that do; None: all) says:
    Optuna fails the others itself) handed out once more,
    and counted as dead (told worst) if that copy dies too. Returns ``(told, -1)`` when
    every candidate has an outcome or is dead (`told`: one trial per candidate, in candidate
    order: the lowest-numbered COMPLETE one, else PRUNED, else FAIL; None for a dead
    candidate), else ``(None, k)``: the candidate to evaluate, ``k >= lam`` for an extra
    sample, `WAIT` when the extra samples are used up and a candidate whose trial has been
    overtaken by `lam` finished trials is still within its grace period (unless only trials
    ``running.blocked`` hold it, which cannot finish while the caller waits), and otherwise
    None: an independent sample. (Waiting only for a trial
    overtaken by `lam` finished ones, whose grace period ends on the caller's clock, bounds
    every wait: a trial that waited for one not yet overtaken could wait for ever, as could
    every other new trial, when that one had died, and then no trial would ever finish to
    overtake it.) A candidate held only by trials ``running.abandoned`` is presumed dead at
    once, without a grace period: handed out again once the extra samples are used up.
    """
    outcome = _outcomes(trials, numbers, candidates, lam)
    live: dict[int, list[int]] = {}  # candidate -> numbers of its RUNNING/WAITING trials
    for n in numbers:
        held = st.find(trials, n)
        k = candidates[n].index
        if (
            held is not None
            and k < lam
            and k not in outcome
            and held.state in (TrialState.RUNNING, TrialState.WAITING)
        ):
            live.setdefault(k, []).append(n)
    # the caller's own trials hold rows of it, as a batch in flight (not trials it moved past)
    mine = any(n in running.blocked and n not in running.passed for n in numbers)
    if give_up is not None and now is not None and now >= give_up and not mine:
        # (the same rule for every reader, whenever it reads: a generation whose every
        # candidate had an outcome by `give_up` closes as usual)
        timely = _outcomes(trials, numbers, candidates, lam, by=give_up)
        if len(timely) < lam:
            return [timely.get(k) for k in range(lam)], EXHAUSTED
    # With a heartbeat, Optuna fails the dead trials that record one (`watched`; None: all);
    # the others (started by `study.ask()`, added, copied) are judged as without a heartbeat.
    # A trial `running.alive` is never judged: it is known to be running.
    unwatched = {
        k: nums
        for k, nums in live.items()
        if not any(n in running.alive for n in nums)
        and (not heartbeat or (watched is not None and not any(n in watched for n in nums)))
    }
    stale: set[int] = set()
    overtaken: set[int] = set()
    if unwatched:
        # The finished trials after the earliest trial judged (all `_is_stale` looks at),
        # sorted by number: the trials before it are not read, however long the study.
        first = min(max(nums) for nums in unwatched.values())
        start = bisect.bisect_right(trials, first, key=lambda t: t.number)
        finished = [
            trials[i].number for i in range(start, len(trials)) if trials[i].state.is_finished()
        ]
        stale = {
            k for k, nums in unwatched.items() if _is_stale(trials, finished, max(nums), lam, now)
        }
        overtaken = {
            k for k, nums in unwatched.items() if _finished_after(finished, max(nums)) >= lam
        }
    # (a trial abandoned by the caller's thread cannot finish before its optimize returns)
    stale |= {k for k, nums in live.items() if all(n in running.abandoned for n in nums)}
    dead = {k for k in stale if len(live[k]) >= 2}  # its one copy died too
    if all(k in outcome or k in dead for k in range(lam)):
        return [outcome.get(k) for k in range(lam)], -1
    free = [k for k in range(lam) if k not in outcome and k not in live]
    if free:
        # Spread concurrent samplers over the free candidates (by trial number), so that two
        # processes reading the storage at the same moment rarely take the same one.
        return None, free[number % len(free)]
    indices = {candidates[n].index for n in numbers}
    extras = [j for j in range(lam, lam + n_extra_max) if j not in indices]
    if extras:
        # The first free one, so that the extras told with the generation have no gaps (two
        # samplers that pick it at the same moment are separated by the check after writing).
        return None, extras[0]
    if give_up is not None and not mine and live:
        # the generation closes without its late candidates at `give_up`: wait for it
        return None, WAIT
    backup = sorted(stale - dead)
    if backup:
        return None, backup[0]
    if any(
        k in overtaken and k not in dead and not all(n in running.blocked for n in nums)
        for k, nums in unwatched.items()
    ):
        # A candidate whose trial is within its grace period holds the generation: wait for
        # it (at most until the grace period ends) rather than draw a point the search would
        # not use. One whose trial is not overtaken yet is not waited for: if it died, only
        # trials finished after it (these independent ones) can make it presumed dead.
        return None, WAIT
    return None, None


#: how long a generation waits for its extra samples in flight, in median trial durations of
#: its told candidates (and at least `MIN_WAIT` seconds), from its last candidate's outcome
WAIT_FACTOR = 4.0
MIN_WAIT = 2.0


@dataclass
class Closing:
    """The extra samples told with a generation, and whether to wait for more first.

    `extras` are finished trials of the extra samples ``lam, lam + 1, ...`` (gap-free);
    `wait` is the number of seconds until the generation's deadline while a trial that may
    still add one is in flight (0: tell now); `gaps` the extra indices below the highest one
    handed out that no trial holds (a trial that started before `cutoff` may fill one).
    `mirror` is the one gap a later trial may fill as well (see :func:`closing`), or None.
    """

    extras: list[FrozenTrial]
    wait: float
    gaps: list[int] = field(default_factory=list)
    cutoff: datetime.datetime | None = None
    window: float = 0.0
    mirror: int | None = None


def closing(
    trials: list[FrozenTrial],
    numbers: list[int],
    candidates: dict[int, st.Candidate],
    told: list[FrozenTrial | None],
    lam: int,
    carrier_start: datetime.datetime | None,
    own: int,
    now: datetime.datetime,
    digest: str,
    running: Running = NOTHING_RUNNING,
    unfinished: list[FrozenTrial] | None = None,
    give_up: datetime.datetime | None = None,
    pairs: bool = False,
) -> Closing:
    """Return the extra samples of a generation whose candidates all have outcomes.

    The rule every process applies alike, from the storage's timestamps: with `cutoff` the
    completion of the last told outcome and `deadline` = cutoff + max(WAIT_FACTOR x the
    median duration of the told trials, MIN_WAIT seconds), the extras told are those finished
    by `deadline`, a gap-free run from index `lam`. The extras handed out before the
    generation closed are thus told even when they finish after its last candidate, which is
    what makes several processes use nearly every trial. Until the deadline, a process that
    would tell waits (`wait` > 0) while a trial may still add an extra sample: a RUNNING trial
    holding a candidate of this generation (`numbers`), or a RUNNING trial with no record yet
    that started after the generation's state was stored (less the wait) and is not `own`. A
    process about to tell the generation of state `digest` records that first (``CLOSING``),
    so the others do not wait for it. Once the last outcome is visible to one process it is
    visible to every later reader, which then tells instead of taking an extra; so after a
    process found nothing to wait for, no extra sample is added (but by a trial created before
    the generation's state was stored, less the wait, that only now samples: a fork, resolved
    by the longest chain). Trials ``running.blocked`` (see :class:`Running`) are not waited
    for: they cannot finish while the caller waits. Nor is a trial with no record yet that
    the caller's process started (``running.local``: its sampling is serialised with the
    caller's by the sampler's lock, so it reads the state the caller stores), or one that started
    `MIN_WAIT` seconds or more before `now` (a trial about to sample does so within moments
    of its start; one asked ahead of its sampling, as in a batch of ``study.ask()``, may not
    sample before the deadline, and waiting for it held every generation of such batches
    until the deadline, whose median durations then included the waits: round times grew
    fourfold each round). `unfinished`, when given, holds every
    trial of `trials` that is not finished (the only ones that can be RUNNING), so that the
    study is not scanned.

    A generation that gives up on a late candidate (`give_up`, see :func:`plan`) tells the
    extras finished by then (its cutoff and deadline) and waits for nothing. With `pairs`
    (mirrored sampling: extras are told in pairs ``lam + 2 i``, ``lam + 2 i + 1``), the mirror
    of the highest extra handed out, if no trial holds it, is a gap too; while that extra is
    still running and no lower gap is left, it is the `mirror`: a trial that starts while the
    generation waits anyway may take it (it would otherwise wait idle, and the unpaired
    extra would not be told).
    """
    if give_up is not None:
        cutoff: datetime.datetime | None = give_up
        window = datetime.timedelta(0)
        deadline = give_up
    else:
        stamps = [t.datetime_complete for t in told if t is not None]
        cutoff = max((d for d in stamps if d is not None), default=None)
        if cutoff is None:
            return Closing([], 0.0)
        durations = [
            (t.datetime_complete - t.datetime_start).total_seconds()
            for t in told
            if t is not None and t.datetime_complete is not None and t.datetime_start is not None
        ]
        median = float(np.median(durations)) if durations else 0.0
        window = datetime.timedelta(seconds=max(WAIT_FACTOR * median, MIN_WAIT))
        deadline = cutoff + window
    finished: dict[int, FrozenTrial] = {}
    pending = False
    in_flight: set[int] = set()  # the indices held by trials still running (not blocked)
    for n in numbers:
        got = st.find(trials, n)
        if got is None:
            continue
        j = candidates[n].index
        if got.state.is_finished():
            done = got.datetime_complete
            if j >= lam and done is not None and done <= deadline:
                finished.setdefault(j, got)
        elif got.state == TrialState.RUNNING and n not in running.blocked:
            pending = True
            in_flight.add(j)
    if give_up is not None:
        pending = False
    elif not pending:
        since = None if carrier_start is None else carrier_start - window
        for t in trials if unfinished is None else unfinished:
            start = t.datetime_start
            if (
                t.state == TrialState.RUNNING
                and t.number != own
                and t.number not in running.blocked
                and t.number not in running.local
                and st.CANDIDATE not in t.system_attrs
                and t.system_attrs.get(st.CLOSING) != digest
                and start is not None
                and (since is None or start >= since)
                and (now - start).total_seconds() < MIN_WAIT
            ):
                pending = True
                break
    extras: list[FrozenTrial] = []
    while lam + len(extras) in finished:
        extras.append(finished[lam + len(extras)])
    # (records are untrusted: an index past the extra samples a generation has is ignored)
    held = {j for j in (candidates[n].index for n in numbers) if j < (1 + EXTRA_FACTOR) * lam}
    end = max(held, default=0)
    unpaired = pairs and end >= lam and (end - lam) % 2 == 0
    if unpaired:
        end += 1  # (an unpaired extra is not told: its mirror is a gap to fill)
    gaps = [j for j in range(lam, end + 1) if j not in held]
    left = (deadline - now).total_seconds()
    waiting = pending and left > 0
    mirror = end if unpaired and waiting and gaps == [end] and end - 1 in in_flight else None
    return Closing(
        extras,
        max(left, 0.0) if pending else 0.0,
        gaps if left > 0 else [],
        cutoff,
        window.total_seconds(),
        mirror,
    )
