"""An Optuna sampler driven by a Natural Evolution Strategy: :class:`NESSampler`.

The sampler holds Optuna's protocol and its arguments; the search (``_search``), the assignment
of candidates to trials (``_assign``), the unit cube (``_space``) and the storage (``_storage``,
the only module that touches Optuna's storage internals) live beside it.
"""

from __future__ import annotations

import inspect
import itertools
import json
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from nes_asktell import _validate as v
from nes_asktell._restarts import plain_option, resolve_restart_strategy, restart_count
from nes_asktell._strategy import CRITERIA, Strategy, keyword_options, resolve_strategy
from nes_asktell._typing import OptionValue

from . import _storage as ch
from ._assign import Assigner, Pending
from ._search import MAX_LEARNING_RATE, MAX_POPSIZE, Running, Search, mirrored_up_to
from ._space import is_relative

__all__ = ["NESSampler"]

#: under Optuna's logger, so that ``optuna.logging.set_verbosity`` governs it
_logger = optuna.logging.get_logger("optuna.nes_asktell")

#: The default initial step size, a fraction of each parameter's range (see the benchmark).
DEFAULT_SIGMA0 = 0.2
#: The smallest initial step size: the strategies' default `tolx` (a run whose spread is below
#: it has converged), and far above the resolution of a double in the cube (about 1e-16).
MIN_SIGMA0 = 1e-12
#: Strategy options the sampler sets unless `strategy_options` says otherwise: XNES adapts its
#: step size with rate 1 instead of the paper's (9 + 3 ln d) / (5 d sqrt d), which is too slow
#: for budgets of a few hundred trials, plus cumulative step-size adaptation (see the benchmark).
#: Adaptation sampling is off: with eta_sigma at its upper limit 1 it changes nothing. Sampling
#: is not mirrored: the sampler's defaults were chosen by its benchmark with independent
#: candidates (a few hundred trials), not by the BBOB runs behind the strategies' own defaults.
#: The rank-one term, on in XNES's own defaults, is off: with it the sampler did worse on its
#: BBOB benchmark at d = 5 (best or within 10% on 8 of 24 functions against 12).
DEFAULT_OPTIONS: dict[str, dict[str, OptionValue]] = {
    "xnes": {
        "eta_sigma": 1.0,
        "csa": True,
        "adaptation_sampling": False,
        "mirrored": False,
        "rank_one": False,
    },
    "snes": {"mirrored": False},
}
#: Options the sampler sets for every strategy unless `strategy_options` says otherwise. The
#: flat-fitness criterion is off: integer, step and categorical parameters tie whole
#: generations of a converging search (pycma raises its limit with integer variables), and
#: the sampler's defaults were measured without it.
COMMON_OPTIONS: dict[str, OptionValue] = {"tolflatfitness": None}
#: the default restart budget: IPOP's population doublings (after them a converged search
#: restarts with the same population); under BIPOP the doublings of its large regime
DEFAULT_RESTARTS = 9
#: arguments of the strategy's constructor that the sampler sets itself
_RESERVED_OPTIONS = ("x0", "sigma0", "popsize", "bounds", "rng")
#: the bound of `seed` (the 128 bits of a SeedSequence's default entropy; stored in the state)
MAX_SEED = 2**128
#: the most unfinished trials whose starting thread the sampler remembers
_MAX_STARTED = 4096
#: the first and the longest pause (seconds) of a trial that waits and samples again
_MIN_POLL = 0.01
_MAX_POLL = 0.25


def _same_value(a: object, b: object) -> bool:
    """Whether option values `a` and `b` are the same: equal, and both bools or neither."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return False


def _defaults_restated(
    cls: type[Strategy], given: dict[str, OptionValue], options: dict[str, OptionValue]
) -> list[str]:
    """Return the options of `given` that restate `cls`'s own default (and no sampler's)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # (a signature Python cannot read)
        return []
    sampler_set = {*COMMON_OPTIONS, *DEFAULT_OPTIONS.get(cls.name, {})}
    out = []
    for name in given:
        p = params.get(name)
        if (
            name not in sampler_set
            and p is not None
            and p.default is not inspect.Parameter.empty
            and _same_value(options.get(name), p.default)
        ):
            out.append(name)
    return out


class _Intersection:
    """The intersection search space of one study, read incrementally.

    The parameters, with their distributions, that every COMPLETE trial has alike: what
    Optuna's ``IntersectionSearchSpace`` computes. That one reads every trial after the first
    unfinished one on each call (a study with trials asked and never told was read whole on
    every trial); this one reads the new trials and those unfinished at the last call, as the
    candidate records are read (``_storage.Records``).
    """

    def __init__(self) -> None:
        self._space: dict[str, BaseDistribution] | None = None  # None: no COMPLETE trial yet
        self._scanned = 0  # trials[:scanned] have been read ...
        self._pending: list[int] = []  # ... and these of them were unfinished then

    def calculate(self, trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
        """Return the search space of `trials` (all the study's, by number), sorted by name."""
        if self._scanned > len(trials):  # (not the study of the last call): read it anew
            self._space, self._scanned, self._pending = None, 0, []
        space, still = self._space, []
        for pos in itertools.chain(self._pending, range(self._scanned, len(trials))):
            t = trials[pos]
            if not t.state.is_finished():
                still.append(pos)
            elif t.state == TrialState.COMPLETE:
                dists = t.distributions
                if space is None:
                    space = dict(dists)
                else:
                    space = {n: d for n, d in space.items() if dists.get(n) == d}
        self._space, self._pending, self._scanned = space, still, len(trials)
        return dict(sorted((space or {}).items()))


class NESSampler(BaseSampler):
    r"""Optuna sampler that searches float and int parameters with a Natural Evolution Strategy.

    The numeric parameters are mapped to the unit cube (log scale, ``step`` and ints included)
    and searched by an NES strategy, one generation of ``popsize`` trials at a time. The search
    state lives in the study's storage as small JSON, so several processes sharing one storage
    (SQLite or another database, a journal file) cooperate on one search, and a fresh sampler in
    any process resumes it.

    Parameters
    ----------
    strategy : str or Strategy subclass
        The strategy that searches the unit cube: a registered name in any case (``"xnes"``,
        ``"snes"``, ``"openes"``, ``"dxnesic"``, ``"crfmnes"``; see
        :func:`nes_asktell.strategy_names`) or a class.
    sigma0 : float, optional
        Initial step size in unit-cube coordinates (each parameter's range has width 1); default
        0.2, at least 1e-12 and at most 10.
    popsize : int, optional
        Trials per generation; default the strategy's (``4 + floor(3 ln d)``); at most 65,536.
    n_startup_trials : int
        Trials sampled by `independent_sampler` until this many trials are COMPLETE.
    independent_sampler : optuna.samplers.BaseSampler, optional
        Samples the parameters the strategy does not search (categorical, conditional and
        single-valued ones) and the startup trials; default a ``RandomSampler`` seeded per
        trial and parameter from `seed`.
    warn_independent_sampling : bool
        Log a warning (once per parameter) when a parameter is sampled independently after the
        startup trials (not of a startup trial whose parameters are drawn once the startup
        has ended, as with ``study.optimize(n_jobs=2)``).
    restarts : int
        Population doublings allowed on restarts when the strategy converges; after them a
        converged search restarts with the same population. Default 9, at most 100. Under
        BIPOP these are the doublings of the large regime.
    restart_strategy : {"ipop", "bipop"}
        How a converged search restarts, in any case. ``"ipop"`` (default): each restart
        doubles the population. ``"bipop"``: runs of two regimes interleave as in
        :class:`~nes_asktell.BIPOP` (Hansen 2009), large ones that double the population and
        small ones with a smaller population and step size, the next run being of the regime
        that has used fewer trials. A regime's budget is the number of trials told to its
        finished runs (the generations' candidates and the extra samples told with them;
        startup trials and independently sampled ones do not count). See :doc:`/restarts`.
    constraints_func : callable, optional
        As for Optuna's samplers: ``constraints_func(trial)`` returns a sequence of floats,
        each ``<= 0`` when satisfied; infeasible trials rank below feasible ones by total
        violation. Constraints set with ``trial.set_constraint`` count too.
    source_trials : sequence of FrozenTrial, optional
        Trials of other studies that, with the study's own, set the first mean and step size
        (at least ``popsize`` of them must fit the search space, else one warning says so and
        the search starts from the centre). Their values are read in this study's direction
        (a trial holds no direction of its own): give the trials of a study of the other
        direction with their values negated.
    seed : int, optional
        Seeds the first state of the search and the default independent sampler; in
        ``[0, 2**128)``.
    strategy_options : dict, optional
        Keyword arguments of the strategy's constructor (plain JSON data: they are stored);
        not ``x0``, ``sigma0``, ``popsize``, ``bounds``, ``rng`` or ``timeout`` (a wall
        clock would make the state depend on the process that tells it), and learning rates
        ``eta_*`` at most 10. For ``"xnes"`` the sampler sets ``eta_sigma=1.0, csa=True,
        adaptation_sampling=False, mirrored=False, rank_one=False`` (``mirrored=True`` with
        one or two searched parameters and the default `popsize` or an even one of at least
        4) and for ``"snes"``
        ``mirrored=False``, and for every strategy ``tolflatfitness=None``, unless given
        here. ``ftarget`` is a value of the study in its direction (reached at or above it
        when maximising).
    surrogate : bool
        Pre-screen each generation with a linear-quadratic model of the evaluated points
        (lq-CMA-ES's surrogate, Hansen 2019): its rows are handed out in the order of their
        predicted values, a few at a time, and once the model ranks the most recent points
        with a Kendall tau of at least 0.85 the rows not evaluated are told the model's
        values. Default False. It pays where trials are expensive and the objective is
        smooth (at d = 5 it reaches ``f - f_opt < 1e-8`` within 1,000 trials on 8 of the 14
        unimodal BBOB functions), at several times the sampler's time per trial; see
        :doc:`/optuna`.

    Raises
    ------
    TypeError, ValueError
        From a bad argument, naming it; from sampling in a multi-objective study.

    Notes
    -----
    Each trial the strategy samples records ``nes_asktell:candidate`` = ``{"state": D,
    "generation": g, "index": k}`` in its system attributes. Candidate ``k`` of a state is
    computed from the stored state alone, so every process rebuilds the same candidates. A
    generation is told once each of its ``popsize`` candidates has an outcome: a finished trial
    (COMPLETE by value; infeasible below feasible by violation; PRUNED below every COMPLETE,
    later steps first; FAIL and NaN last). A failed or pruned candidate is not evaluated again;
    a new trial takes a candidate no trial holds, else an extra sample (told with the
    generation; a trial about to tell waits, up to a deadline from the storage's timestamps,
    for the extras in flight). Once ``popsize`` extras have finished, a candidate still
    running 4 median trial durations (0.5 s at least) after its start is late: the generation
    closes on the outcomes finished by then, and a slow, hung or dead candidate counts as
    missing and is not handed out again (the older rules, in docs/optuna.rst, hold while the
    sampling thread's own batch of asked trials is in flight, or when fewer extras can
    finish; a trial the thread asked before one it has since told is not part of that batch).
    A trial that took the same candidate as another at the same moment moves on, so no live
    point is evaluated twice.
    The told state is validated and stored on the
    trial that told it, with the digest of its parent; processes that tell the same generation
    write the same state, and all processes follow the same (longest) chain of states. Every
    stored state is size-bounded and validated before use; a bad one is skipped with one
    warning. See :doc:`/optuna` for the full argument.

    Examples
    --------
    >>> import optuna
    >>> from nes_asktell import NESSampler
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(sampler=NESSampler(seed=0))
    >>> study.optimize(
    ...     lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_int("n", 0, 9) ** 2,
    ...     n_trials=60,
    ... )
    >>> study.best_value < 1.0
    True
    """

    def __init__(
        self,
        *,
        strategy: str | type[Strategy] = "xnes",
        sigma0: float | None = None,
        popsize: int | None = None,
        n_startup_trials: int = 1,
        independent_sampler: BaseSampler | None = None,
        warn_independent_sampling: bool = True,
        restarts: int = DEFAULT_RESTARTS,
        restart_strategy: str = "ipop",
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
        source_trials: Sequence[FrozenTrial] | None = None,
        seed: int | None = None,
        strategy_options: dict[str, OptionValue] | None = None,
        surrogate: bool = False,
    ) -> None:
        cls = resolve_strategy(strategy)
        options: dict[str, OptionValue] = {**COMMON_OPTIONS, **DEFAULT_OPTIONS.get(cls.name, {})}
        if isinstance(strategy_options, dict) and all(
            isinstance(k, str) for k in strategy_options
        ):
            # numpy scalars and Fractions as Python numbers: the options go into the JSON of
            # the storage (the probe below checks them as given)
            try:
                options.update({k: plain_option(k, x) for k, x in strategy_options.items()})
            except ValueError as exc:  # (a dtype neither float64 nor float32)
                raise ValueError(f"`strategy_options` of {cls.__name__}: {exc}") from exc
            # an option set to the strategy's own default is the same search as one left out
            for k in _defaults_restated(cls, strategy_options, options):
                del options[k]
        elif strategy_options is not None:
            raise TypeError(
                "`strategy_options` must be a dict of keyword arguments or None, "
                f"but got {v.short(strategy_options)}."
            )
        for name in _RESERVED_OPTIONS:
            if strategy_options is not None and name in strategy_options:
                raise ValueError(
                    f"`strategy_options` must not set `{name}` (the sampler sets it"
                    + ("; pass `popsize=` or `sigma0=` to NESSampler" if "s" in name else "")
                    + f"), but got {name}={v.short(strategy_options[name])}."
                )
        if strategy_options is not None and "timeout" in strategy_options:
            # A strategy's wall clock starts when a process loads its state, so a stored state
            # would depend on which process told the generation and how long its trials took.
            raise ValueError(
                "`strategy_options` must not set `timeout` (the search state must depend on "
                "the storage only, not on a process's clock; pass `timeout=` to "
                f"study.optimize), but got timeout={v.short(strategy_options['timeout'])}."
            )
        if strategy_options is not None:
            # the options a sampler's strategy takes: not those the sampler sets, nor timeout
            known = [
                *(k for k in keyword_options(cls) if k not in _RESERVED_OPTIONS),
                *(c for c in CRITERIA if c != "timeout"),
                "threads",
                "dtype",
            ]
            unknown = sorted(set(strategy_options) - set(known))
            if unknown:
                raise TypeError(
                    f"`strategy_options` of {cls.__name__}: unknown option `{unknown[0]}` = "
                    f"{v.short(strategy_options[unknown[0]])}; the options are {known}."
                )
        for name, value in options.items():
            too_big = isinstance(value, (int, float)) and not isinstance(value, bool)
            if name.startswith("eta_") and too_big and value > MAX_LEARNING_RATE:  # type: ignore[operator]
                raise ValueError(
                    f"`strategy_options['{name}']` must be at most {MAX_LEARNING_RATE}, "
                    f"but got {v.short(value)}."
                )
        s0 = DEFAULT_SIGMA0 if sigma0 is None else v.positive_float("sigma0", sigma0)
        if s0 > 10.0:
            raise ValueError(
                f"`sigma0` must be at most 10 (unit-cube widths), but got {v.short(sigma0)}."
            )
        if s0 < MIN_SIGMA0:
            raise ValueError(
                f"`sigma0` must be at least {MIN_SIGMA0:g} (unit-cube widths: below it the "
                "strategy stops after its first generation, and a generation's candidates "
                f"become one point), but got {v.short(sigma0)}."
            )
        lam = v.optional_integer("popsize", popsize, minimum=2)
        if lam is not None and lam > MAX_POPSIZE:
            raise ValueError(
                f"`popsize` must be at most {MAX_POPSIZE}, but got {v.short(popsize)}."
            )
        n_startup = v.integer("n_startup_trials", n_startup_trials, minimum=0)
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise TypeError(
                "`independent_sampler` must be an optuna.samplers.BaseSampler or None, "
                f"but got {v.short(independent_sampler)}."
            )
        v.flag("warn_independent_sampling", warn_independent_sampling)
        n_restarts = restart_count(restarts, maximum=100)
        restarter = resolve_restart_strategy(restart_strategy)
        if constraints_func is not None and not callable(constraints_func):
            raise TypeError(
                "`constraints_func` must be callable or None, but got "
                f"{v.short(constraints_func)}."
            )
        try:
            sources = [] if source_trials is None else list(source_trials)
        except TypeError as exc:  # not iterable
            raise TypeError(
                "`source_trials` must be a sequence of optuna.trial.FrozenTrial or None, "
                f"but got {v.short(source_trials)}."
            ) from exc
        for t in sources:
            if not isinstance(t, FrozenTrial):
                raise TypeError(
                    "`source_trials` must be a sequence of optuna.trial.FrozenTrial, "
                    f"but got an item {v.short(t)}."
                )
            if t.values is not None and len(t.values) != 1:
                raise ValueError(
                    "`source_trials` must be trials of single-objective studies (one value "
                    f"each), but got trial {t.number} with {len(t.values)} values."
                )
            if t.values is not None and not all(
                isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
                for x in t.values
            ):
                raise TypeError(
                    "`source_trials` must hold real numbers as values, but trial "
                    f"{t.number} has {v.short(t.values)}."
                )
            try:
                [float(x) for x in t.values or ()]
            except OverflowError:  # an int beyond the floats
                raise ValueError(
                    "`source_trials` must hold real numbers a float can hold as values, but "
                    f"trial {t.number} has {v.short(t.values)}."
                ) from None
        if seed is not None:
            given, seed = seed, v.integer("seed", seed, minimum=0)
            if seed >= MAX_SEED:
                raise ValueError(
                    f"`seed` must be an integer in [0, 2**128), but got {v.short(given)}."
                )
        # Build one strategy now (with the real population), so that a bad option fails here
        # and not in a trial; the first trial checks them again in the real dimension. It takes
        # the options as given, so that its errors quote the values received.
        try:
            probe = cls(
                np.full(2, 0.5),
                s0,
                lam,
                rng=0,
                **{**options, **(strategy_options or {})},  # type: ignore[arg-type]
            )
        except (TypeError, ValueError) as exc:
            # What fails with the sampler's own options too is `popsize` or `sigma0` itself (a
            # population the strategy's own mirrored sampling refuses): raised as it is.
            own = {**COMMON_OPTIONS, **DEFAULT_OPTIONS.get(cls.name, {})}
            cls(np.full(2, 0.5), s0, lam, rng=0, **own)  # type: ignore[arg-type]
            # the strategy's message names the option alone (`eta_sigma`): say where it is set
            raise type(exc)(f"`strategy_options` of {cls.__name__}: {exc}") from exc
        try:
            text = ch.dumps(probe.state_dict())
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"`strategy_options` must be plain JSON data, but got {v.short(strategy_options)}."
            ) from exc
        try:  # every trial after the first reads the stored state back with `cls`
            cls.from_state(json.loads(text))
        except ValueError as exc:
            raise TypeError(
                f"`strategy` {cls.__name__} cannot read back its own state_dict(): {exc}"
            ) from exc
        auto = mirrored_up_to(cls, dict(strategy_options or {}), lam)
        v.flag("surrogate", surrogate)
        self._search = Search(
            cls, s0, lam, n_restarts, options, seed, restarter, auto, surrogate=surrogate
        )
        self._n_startup_trials = n_startup
        # (with a seed, its draws come from per-trial samplers; see `_independent`)
        self._independent_sampler = independent_sampler or RandomSampler(
            seed=None if seed is None else seed % 2**32
        )
        # With a seed and the default sampler, each trial's independent draws get their own
        # seed from (seed, trial number, parameter): processes that share a study and a seed
        # then draw different startup points instead of the same ones.
        self._per_trial_seed = seed if independent_sampler is None else None
        self._warn_independent_sampling = warn_independent_sampling
        self._constraints_func = constraints_func
        self._source_trials = sources
        self._init_caches()

    def _init_caches(self) -> None:
        self._lock = threading.RLock()
        self._assigner = Assigner(self._search, self._n_startup_trials, self._source_trials)
        # one search space per study (the most recent `ch.MAX_STUDIES`), so that studies
        # sampled in turn are not read anew
        self._space_calculators: OrderedDict[tuple[object, int, str], _Intersection]
        self._space_calculators = OrderedDict()
        self._warned: set[str] = set()  # parameters warned about (once each)
        # (study token, trial number) of the trials sampled independently on purpose, until they
        # finish (in order: the oldest, of trials abandoned unfinished, go first past
        # `_MAX_STARTED`)
        self._fallback: dict[tuple[tuple[object, int, str], int], None] = {}
        # (study token, trial number) -> the thread that started the trial and whether
        # `study.optimize` runs it there, until it finishes
        self._started: dict[tuple[tuple[object, int, str], int], tuple[int, bool]] = {}
        # (study token, thread) -> the highest number of the trials the thread started that
        # have finished: its unfinished trials below it are not a batch in flight
        self._passed: dict[tuple[tuple[object, int, str], int], int] = {}
        # (study token, trial number) -> the searched distributions of the candidate the trial
        # holds, until it finishes (see `sample_independent`)
        self._holds: dict[tuple[tuple[object, int, str], int], dict[str, BaseDistribution]]
        self._holds = {}

    def __getstate__(self) -> dict[str, object]:
        d = self.__dict__.copy()
        for name in (
            "_lock",
            "_assigner",
            "_space_calculators",
            "_warned",
            "_fallback",
            "_started",
            "_passed",
            "_holds",
        ):
            del d[name]
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        self.__dict__.update(d)
        self._init_caches()

    # ------------------------------------------------------------------ Optuna's protocol
    def reseed_rng(self) -> None:
        """Reseed the independent sampler (the search itself lives in the storage)."""
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Return the numeric parameters with more than one value common to the finished trials."""
        self._check_single_objective(study)
        with self._lock:
            space = self._search_space(study)
        return {name: d for name, d in space.items() if is_relative(d)}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Return the trial's candidate for the numeric parameters of `search_space`.

        Parameters of `search_space` that are not numeric ranges are drawn by the independent
        sampler. Returns an empty dict during the startup trials.
        """
        self._check_single_objective(study)
        numeric = {name: d for name, d in search_space.items() if is_relative(d)}
        out: dict[str, Any] = {}
        key = (ch.study_token(study), trial.number)
        if not numeric:
            with self._lock:
                # no trial has completed yet (else the space would hold their numeric
                # parameters), or too few: a startup trial, drawn independently on purpose
                if self._assigner.n_complete(study) < max(self._n_startup_trials, 1):
                    self._note_fallback(key)
        else:
            backoff = _MIN_POLL  # the polls of a long wait back off to `_MAX_POLL` seconds
            while True:
                with self._lock:
                    try:
                        unit = self._assigner.unit_space(numeric)
                        values = self._assigner.sample(
                            study,
                            trial,
                            *unit,
                            self._running(study, trial),
                        )
                    except Pending as pending:  # extra samples of the generation in flight
                        delay = min(pending.seconds, backoff)
                        backoff = min(1.5 * backoff, _MAX_POLL)  # (no power: a wait may be long)
                    else:
                        if values is None and self._assigner.sampled_independently(
                            study, trial.number
                        ):
                            self._note_fallback(key)
                        if values is not None:
                            self._holds[key] = {name: numeric[name] for name in values}
                            while len(self._holds) > _MAX_STARTED:  # trials abandoned unfinished
                                del self._holds[next(iter(self._holds))]
                        break
                time.sleep(delay)  # outside the lock: other threads' trials go on
            if values is None:
                return {}
            out.update(values)
        for name, dist in search_space.items():
            if name not in numeric:
                out[name] = self._independent(trial, name).sample_independent(
                    study, trial, name, dist
                )
        return out

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Draw one parameter with the independent sampler (logging the usual warning).

        A parameter of the trial's candidate is drawn here when the trial suggests it in another
        range than the one searched and the candidate's value lies outside it: the trial then
        evaluates another point than its candidate, so it holds none from now on (its outcome
        would be told as the candidate's), and the candidate goes to another trial.
        """
        self._check_single_objective(study)
        with self._lock:
            key = (ch.study_token(study), trial.number)
            searched = self._holds.get(key, {}).get(param_name)
            if searched is not None and searched != param_distribution:
                del self._holds[key]
                ch.clear_candidate(study, trial)  # a record that it holds none
        if (
            self._warn_independent_sampling
            and not param_distribution.single()
            and param_name not in self._warned
            and (ch.study_token(study), trial.number) not in self._fallback
        ):
            with self._lock:
                n_complete = self._assigner.n_complete(study)
            if n_complete >= self._n_startup_trials:
                self._warned.add(param_name)
                _logger.warning(
                    f"The parameter `{param_name}` in trial {trial.number} is sampled "
                    f"independently by `{type(self._independent_sampler).__name__}` instead "
                    "of `NESSampler` (categorical, conditional and changing parameters are "
                    "not searched by the strategy). This warning is given once per parameter; "
                    "pass `warn_independent_sampling=False` to silence it."
                )
        return self._independent(trial, param_name).sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Note the thread that started the trial and forward to the independent sampler."""
        optimizing = ch.in_optimize(study)
        with self._lock:
            self._started[(ch.study_token(study), trial.number)] = (
                threading.get_ident(),
                optimizing,
            )
            while len(self._started) > _MAX_STARTED:  # trials abandoned unfinished
                del self._started[next(iter(self._started))]
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Store the constraints (if any) and forward to the independent sampler.

        Generations are told while sampling.
        """
        with self._lock:
            token = ch.study_token(study)
            started = self._started.pop((token, trial.number), None)
            if started is not None:
                key = (token, started[0])
                self._passed[key] = max(self._passed.pop(key, -1), trial.number)
                while len(self._passed) > _MAX_STARTED:  # threads of studies long gone
                    del self._passed[next(iter(self._passed))]
            self._fallback.pop((token, trial.number), None)  # (its own parameters ask of it)
            self._holds.pop((token, trial.number), None)
        if self._constraints_func is not None:
            ch.store_constraints(self._constraints_func, study, trial, state)
        self._independent_sampler.after_trial(study, trial, state, values)

    # ------------------------------------------------------------------ inspection
    def generations(
        self, study: Study, search_space: dict[str, BaseDistribution] | None = None
    ) -> list[dict[str, object]]:
        """Return the chain of stored states of the search, first to last.

        Parameters
        ----------
        study : optuna.Study
            The study (any storage).
        search_space : dict, optional
            The relative search space; default the one the sampler infers from the study
            (every parameter all its trials share). Pass it when the search ran on part of
            them: under ``optuna.samplers.PartialFixedSampler``, the parameters not fixed
            (the inferred space includes the fixed ones, whose search has no states: the
            chain is then empty).

        Returns
        -------
        list of dict
            One dict per generation: ``generation``, ``state`` (digest), ``trial`` (the number
            of the trial that stores it) and ``told`` (the numbers of the trials whose values
            produced it, in candidate order; empty for the first; None for a state copied in
            from another study by ``study.add_trials``, as ``optuna.copy_study`` does, whose
            stored numbers name none of this study's trials of its parent's candidates: the
            trials were renumbered).

        Raises
        ------
        TypeError
            If `study` is not a study or `search_space` not a dict of distributions
            by parameter name.
        ValueError
            If `study` is multi-objective.

        Examples
        --------
        >>> import optuna
        >>> from nes_asktell import NESSampler
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> sampler = NESSampler(seed=0, popsize=4)
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=10)
        >>> [(g["generation"], g["trial"], g["told"]) for g in sampler.generations(study)]
        [(0, 1, []), (1, 5, [4, 1, 3, 2]), (2, 9, [6, 5, 8, 7])]
        """
        if not isinstance(study, Study):
            raise TypeError(f"`study` must be an optuna.Study, but got {v.short(study)}.")
        if search_space is not None and not (
            isinstance(search_space, dict)
            and all(isinstance(d, BaseDistribution) for d in search_space.values())
        ):
            raise TypeError(
                "`search_space` must be a dict of distributions or None, "
                f"but got {v.short(search_space)}."
            )
        for name in search_space or {}:
            if not isinstance(name, str):
                raise TypeError(
                    "`search_space` must be a dict of distributions by parameter name (str) "
                    f"or None, but got a name {v.short(name)}."
                )
        self._check_single_objective(study)
        trials = ch.all_trials(study)
        with self._lock:
            if search_space is None:
                search_space = self._search_space(study)
            return self._assigner.generations(study, trials, search_space)

    # ------------------------------------------------------------------ internals
    def _search_space(self, study: Study) -> dict[str, BaseDistribution]:
        """Return the intersection search space of `study` (a new one for another study)."""
        token = ch.study_token(study)
        calculator = self._space_calculators.get(token)
        if calculator is None:
            calculator = self._space_calculators[token] = _Intersection()
            while len(self._space_calculators) > ch.MAX_STUDIES:
                self._space_calculators.popitem(last=False)
        self._space_calculators.move_to_end(token)
        return calculator.calculate(ch.all_trials(study))

    def _note_fallback(self, key: tuple[tuple[object, int, str], int]) -> None:
        """Note that trial `key` (study token, number) is drawn independently on purpose."""
        self._fallback[key] = None
        while len(self._fallback) > _MAX_STARTED:  # (trials abandoned unfinished)
            del self._fallback[next(iter(self._fallback))]

    def _running(self, study: Study, trial: FrozenTrial) -> Running:
        """Return what this process knows of the other unfinished trials of `study`.

        From the trials started here (``before_trial``) and not finished (``after_trial``),
        each with its thread and whether ``study.optimize`` runs it (see ``_search.Running``):

        * those of the caller's thread are `blocked`; while the caller runs `trial` in
          ``study.optimize`` they are also `abandoned` (a ``study.ask()`` never told, as when
          user code raised between ask and tell: it cannot finish before ``optimize``
          returns). Outside ``study.optimize`` (ask and tell), those that the thread started
          before a trial of its own that has since finished are also `passed`: not part of a
          batch asked together and told later, so that a trial asked and never told does not
          hold its generation open while the thread goes on;
        * those ``study.optimize`` runs in other threads are `alive` (a trial started by
          ``study.ask()`` may have been abandoned, whichever thread asked it: it is judged as
          one of another process);
        * all of them are `local`.
        """
        me, token = threading.get_ident(), ch.study_token(study)
        started = self._started.get((token, trial.number))
        optimizing = started is not None and started[1]
        blocked: set[int] = set()
        alive: set[int] = set()
        local: set[int] = set()
        last = -1 if optimizing else self._passed.get((token, me), -1)
        passed: set[int] = set()
        for (of, n), (thread, by_optimize) in self._started.items():
            if of != token or n == trial.number:
                continue
            local.add(n)
            if thread == me:
                blocked.add(n)
                if n < last:
                    passed.add(n)
            elif by_optimize:
                alive.add(n)
        mine = frozenset(blocked)
        return Running(
            blocked=mine,
            abandoned=mine if optimizing else frozenset(),
            alive=frozenset(alive),
            local=frozenset(local),
            passed=frozenset(passed),
        )

    def _independent(self, trial: FrozenTrial, name: str) -> BaseSampler:
        if self._per_trial_seed is None:
            return self._independent_sampler
        # (any str is a name: one holding a lone surrogate, as os.fsdecode makes of a file name
        # that is no UTF-8, has bytes too; every other name keeps its UTF-8 bytes)
        tag = zlib.crc32(name.encode("utf-8", "surrogatepass"))
        seq = np.random.SeedSequence(self._per_trial_seed, spawn_key=(trial.number, tag))
        return RandomSampler(seed=int(seq.generate_state(1)[0]))

    def _check_single_objective(self, study: Study) -> None:
        if len(study.directions) > 1:
            raise ValueError(
                "`study` must be single-objective for NESSampler, but it has "
                f"{len(study.directions)} objectives."
            )
