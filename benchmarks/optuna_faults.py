"""NESSampler in faulty and shared studies, side by side with Optuna's samplers.

Suites (each study's result is cached as JSON under ``benchmarks/.cache/optuna_faults``, so the
benchmark can be built up in parts and a rerun only computes what is missing):

* ``faults``: the 2-d study of issue 11 (a sphere in ``[-5, 5]^2`` whose region ``x + y > 3``
  raises, returns NaN, or is pruned by ``MedianPruner(n_startup_trials=5)``), 200 trials:
  distinct points and best value of NESSampler, CmaEsSampler and TPESampler.
* ``integer``: ``sum((k_i - 3)^2)`` over 6 ints in ``[-10, 10]`` and one float, 200 trials:
  NESSampler against CmaEsSampler(with_margin=True) and TPESampler.
* ``int-edge``: ``layers + c`` with ``layers`` an int in ``[1, 2]`` (also on a log scale) and
  ``c`` a float in ``[0, 1]``, whose best int value ends its range, 400 trials: how many of
  the last 200 trials take the other value (a frozen int takes none), NESSampler against
  CmaEsSampler(with_margin=True).
* ``margin``: how often a row leaves the cell of the mean of an int, against the probability
  ``1 / (d popsize)`` the margin asks for (2,000 batches, not cached; ``--seeds`` unused).
* ``procs``: 2 and 4 processes x 60 trials on SQLite and on a journal file: the share of
  COMPLETE trials told to the search and the points evaluated twice.
* ``procs-surrogate``: the ``procs`` study with ``NESSampler(surrogate=True)``; also the
  COMPLETE trials that no generation was told but the model fitted (``surrogate_fitted``).
* ``procs2`` and ``procs2-timed``: the ``procs`` study with two parameters (where XNES runs
  mirrored), with and without mirrored sampling; in ``procs2-timed`` each trial takes 0.05 to
  0.15 s, as a real objective takes time.
* ``speed``: sampler time per trial (inside the sampler's methods) at 1,000 and 5,000 trials,
  against CmaEsSampler.
* ``uneven``: a 5-d sphere in ``[-5, 5]^5`` run by ``study.optimize(n_jobs=4)``, whose trials
  take 0.05 s but one in 25 takes 3 s (a trial as long as 60 others), 300 trials: the trials
  NESSampler drew independently (no candidate of its search), the trials told to its search,
  the generations it told, the best value and the wall time, against CmaEsSampler.
* ``scarce``: a 2-d study in ``[0, 1]^2`` that completes only where ``x, y > 0.93`` (0.49% of
  the box) and raises elsewhere, 1,500 trials: the COMPLETE trials and the best value of
  NESSampler, CmaEsSampler and RandomSampler.

``python -m benchmarks.optuna_faults --suite faults --seeds 0 1 2`` runs one suite;
``python -m benchmarks optuna_faults`` (or ``main``) runs them all with the default seeds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from nes_asktell.integrations.optuna._search import Loaded
from nes_asktell.integrations.optuna._space import UnitSpace
from nes_asktell.integrations.optuna._storage import CANDIDATE, parse_carrier, stored_state
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from nes_asktell import XNES, NESSampler

CACHE = Path(__file__).resolve().parent / ".cache" / "optuna_faults"
ROOT = Path(__file__).resolve().parent.parent


def cached(name: str, compute: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Return the cached result `name`, computing and storing it when missing."""
    path = CACHE / f"{name}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    result = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "nes":
        return NESSampler(seed=seed)
    if name == "nes-independent":  # the sampler's XNES without mirrored sampling at any d
        return NESSampler(seed=seed, strategy_options={"mirrored": False})
    if name == "cma":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "cma-margin":
        return optuna.samplers.CmaEsSampler(seed=seed, with_margin=True)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


def faulty(mode: str) -> Callable[[optuna.Trial], float]:
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


#: where the ``scarce`` study completes: both coordinates above this
SCARCE_CORNER = 0.93


def scarce(trial: optuna.Trial) -> float:
    """The ``scarce`` study's objective: it raises unless ``x, y > SCARCE_CORNER``."""
    x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
    if x <= SCARCE_CORNER or y <= SCARCE_CORNER:
        raise RuntimeError("the simulator crashed")
    return (x - 0.97) ** 2 + (y - 0.96) ** 2


def run_scarce(sampler: str, seed: int, n_trials: int = 1500) -> dict[str, object]:
    def compute() -> dict[str, object]:
        study = optuna.create_study(sampler=make_sampler(sampler, seed))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(scarce, n_trials=n_trials, catch=(RuntimeError,))
        return study_summary(study, time.perf_counter() - t0)

    return cached(f"scarce-{sampler}-{n_trials}-{seed}", compute)


#: the ``uneven`` study's trial durations (seconds): most take UNEVEN_BASE, one in
#: UNEVEN_EVERY takes UNEVEN_SLOW
UNEVEN_BASE, UNEVEN_SLOW, UNEVEN_EVERY = 0.05, 3.0, 25


def uneven(trial: optuna.Trial) -> float:
    """The ``uneven`` study's objective: a sphere whose evaluation time varies by trial."""
    xs = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(5)]
    time.sleep(UNEVEN_SLOW if trial.number % UNEVEN_EVERY == 7 else UNEVEN_BASE)
    return float(sum((x - 1.0) ** 2 for x in xs))


def run_uneven(sampler: str, seed: int, n_trials: int = 300) -> dict[str, object]:
    def compute() -> dict[str, object]:
        made = make_sampler(sampler, seed)
        study = optuna.create_study(sampler=made)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(uneven, n_trials=n_trials, n_jobs=4)
        out = study_summary(study, time.perf_counter() - t0)
        if isinstance(made, NESSampler):
            trials = study.get_trials(deepcopy=False)
            # a trial the search drew no candidate for records None (startup trials none)
            out["independent"] = sum(t.system_attrs.get(CANDIDATE, 0) is None for t in trials)
            chain = made.generations(study)
            out["generations"] = len(chain)
            told = {n for g in chain for n in g["told"] if isinstance(n, int) and n >= 0}
            out["told"] = len(told)
        return out

    return cached(f"uneven-{sampler}-{n_trials}-{seed}", compute)


def _small(trial: optuna.Trial, problem: str) -> float:
    """The ``small`` suite's objectives: one or two parameters, each minimum 0."""
    if problem == "1d-shifted":
        return (trial.suggest_float("x", -5.0, 5.0) - 1.3) ** 2
    if problem == "1d-log":  # a quadratic in y, searched on a log scale
        return (trial.suggest_float("y", 1e-3, 10.0, log=True) - 2.0) ** 2
    if problem == "2d-log":
        return sum((trial.suggest_float(f"y{i}", 1e-3, 10.0, log=True) - 2.0) ** 2 for i in (0, 1))
    if problem == "2d-constrained":  # x^2 + y^2 where x + y >= 1: minimum 1/2 at (1/2, 1/2)
        x, y = (trial.suggest_float(name, -2.0, 2.0) for name in ("x", "y"))
        trial.set_user_attr("c", 1.0 - x - y)
        return x * x + y * y - 0.5
    xs = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in (0, 1)]
    if problem == "2d-sphere":
        return sum((x - 1.0) ** 2 for x in xs)
    if problem == "2d-edge":  # the minimum at 85% of each range
        return sum((x - 3.5) ** 2 for x in xs)
    if problem == "2d-rosenbrock":
        return 100.0 * (xs[1] - xs[0] ** 2) ** 2 + (1.0 - xs[0]) ** 2
    raise ValueError(f"unknown problem {problem!r}")


SMALL_PROBLEMS = (
    "1d-shifted",
    "1d-log",
    "2d-sphere",
    "2d-edge",
    "2d-log",
    "2d-rosenbrock",
    "2d-constrained",
)


def _violation(t: optuna.trial.FrozenTrial) -> list[float]:
    return [float(t.user_attrs["c"])]


def run_small(problem: str, sampler: str, seed: int, n_trials: int = 200) -> dict[str, object]:
    def compute() -> dict[str, object]:
        made = make_sampler(sampler, seed)
        if problem == "2d-constrained":  # with constraints_func; TPESampler for CmaEsSampler
            made = {
                "nes": NESSampler(seed=seed, constraints_func=_violation),
                "nes-independent": NESSampler(
                    seed=seed, constraints_func=_violation, strategy_options={"mirrored": False}
                ),
                "cma": optuna.samplers.TPESampler(seed=seed, constraints_func=_violation),
            }[sampler]
        study = optuna.create_study(sampler=made)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(lambda t: _small(t, problem), n_trials=n_trials)
        out = study_summary(study, time.perf_counter() - t0)
        if problem == "2d-constrained":  # the best feasible value
            feasible = [
                t.value
                for t in study.trials
                if t.value is not None and float(t.user_attrs["c"]) <= 0.0
            ]
            out["best"] = min(feasible, default=math.inf)
        return out

    return cached(f"small-{problem}-{sampler}-{n_trials}-{seed}", compute)


def report_small(seeds: list[int]) -> None:
    print("small: one or two parameters, 200 trials; median best (and per seed); for")
    print("  2d-constrained the best feasible value, and the 'cma' row is TPESampler")
    for problem in SMALL_PROBLEMS:
        for sampler in ("nes", "nes-independent", "cma"):
            bests = [float(run_small(problem, sampler, s)["best"]) for s in seeds]  # type: ignore[arg-type]
            print(
                f"  {problem:14s} {sampler:16s} {statistics.median(bests):.1e}  "
                + " ".join(f"{b:.0e}" for b in bests)
            )


def integer_problem(trial: optuna.Trial) -> float:
    ks = [trial.suggest_int(f"k{i}", -10, 10) for i in range(6)]
    x = trial.suggest_float("x", -5.0, 5.0)
    return float(sum((k - 3) ** 2 for k in ks) + (x - 0.5) ** 2)


def study_summary(study: optuna.Study, seconds: float) -> dict[str, object]:
    trials = study.get_trials(deepcopy=False)
    points = [tuple(sorted(t.params.items())) for t in trials]
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {
        "trials": len(trials),
        "distinct": len(set(points)),
        "states": states,
        "best": min((v for v in complete if v is not None), default=math.inf),
        "seconds": seconds,
    }


def run_fault(mode: str, sampler: str, seed: int) -> dict[str, object]:
    def compute() -> dict[str, object]:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5) if mode == "prune" else None
        study = optuna.create_study(sampler=make_sampler(sampler, seed), pruner=pruner)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(faulty(mode), n_trials=200, catch=(RuntimeError,))
        return study_summary(study, time.perf_counter() - t0)

    return cached(f"fault-{mode}-{sampler}-{seed}", compute)


def run_integer(sampler: str, seed: int) -> dict[str, object]:
    def compute() -> dict[str, object]:
        study = optuna.create_study(sampler=make_sampler(sampler, seed))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(integer_problem, n_trials=200)
        return study_summary(study, time.perf_counter() - t0)

    return cached(f"integer-{sampler}-{seed}", compute)


WORKER = textwrap.dedent(
    """
    import json, random, sys, time, optuna
    from nes_asktell import NESSampler
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    kind, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "sqlite":
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{where}", engine_kwargs={"connect_args": {"timeout": 60}})
    else:
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(where))
    params = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
    slow = json.loads(sys.argv[6]) if len(sys.argv) > 6 else None  # [low, high] seconds
    def objective(trial):
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", 1e-3, 10.0, log=True)
        if slow:
            time.sleep(random.uniform(*slow))
        if params == 2:
            return (x - 1.0) ** 2 + (y - 2.0) ** 2
        k = trial.suggest_int("n", 0, 10)
        return (x - 1.0) ** 2 + (y - 2.0) ** 2 + (k - 3) ** 2
    surrogate = bool(options.pop("surrogate", False)) if options else False
    sampler = NESSampler(seed=0, strategy_options=options or None, surrogate=surrogate)
    study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n)
    """
)


def _entries_in_time(
    chain: list[dict[str, object]], trials: list[FrozenTrial], field: str
) -> set[int]:
    """Return the trials each state's surrogate entry names in `field` that finished before
    the next state's trial started (and so were read by the tell that stored it)."""
    out: set[int] = set()
    for e, after in itertools.pairwise(chain):
        t = trials[e["trial"]]  # type: ignore[index]
        carrier = parse_carrier(t)
        stored_at = trials[after["trial"]].datetime_start  # type: ignore[index]
        if carrier is None or stored_at is None:
            continue
        sur = stored_state(t, carrier).get("surrogate")
        names = sur[field] if isinstance(sur, dict) else []
        for n in (n for _, n in names) if field == "done" else names:
            done = trials[n].datetime_complete if 0 <= n < len(trials) else None
            if done is not None and done <= stored_at:
                out.add(n)
    return out


def surrogate_done(chain: list[dict[str, object]], trials: list[FrozenTrial]) -> set[int]:
    """Return the trials a surrogate's rounds recorded (``done``) and their generation used.

    A row handed out in one round and finished after it is recorded by the next rounds'
    states with its trial, and its outcome is told with the generation if the trial finished
    before the state that tells it was stored (else the row is told as missing). So: the trials
    of each state's ``done`` that finished before the next state's trial started.
    """
    return _entries_in_time(chain, trials, "done")


def surrogate_fitted(chain: list[dict[str, object]], trials: list[FrozenTrial]) -> set[int]:
    """Return the COMPLETE trials a surrogate's model fitted: in a state's archive, in time.

    The tell after a state fits the model to that state's archive (its trials with a usable
    value, see ``Search._points``); a trial in it that finished before the next state's trial
    started was read by that fit. (The trials of rows still running when their generation was
    told join the archive, and are fitted once they have finished, without being told.)
    """
    complete = optuna.trial.TrialState.COMPLETE
    return {n for n in _entries_in_time(chain, trials, "archive") if trials[n].state == complete}


def run_procs(
    kind: str,
    n_procs: int,
    seed: int,
    n_trials: int = 60,
    params: int = 3,
    options: dict[str, object] | None = None,
    slow: tuple[float, float] | None = None,
) -> dict[str, object]:
    def compute() -> dict[str, object]:
        with tempfile.TemporaryDirectory() as tmp:
            where = str(Path(tmp) / ("study.db" if kind == "sqlite" else "study.log"))
            if kind == "sqlite":
                storage: optuna.storages.BaseStorage = optuna.storages.RDBStorage(
                    f"sqlite:///{where}"
                )
            else:
                storage = optuna.storages.JournalStorage(
                    optuna.storages.journal.JournalFileBackend(where)
                )
            optuna.create_study(study_name="s", storage=storage)
            script = Path(tmp) / "worker.py"
            script.write_text(WORKER)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        str(script),
                        kind,
                        where,
                        str(n_trials),
                        str(params),
                        json.dumps(options),
                        json.dumps(slow),
                    ],
                    env=env,
                )
                for _ in range(n_procs)
            ]
            for p in procs:
                p.wait()
            seconds = time.perf_counter() - t0
            study = optuna.load_study(study_name="s", storage=storage)
            rest = {k: x for k, x in (options or {}).items() if k != "surrogate"}
            sampler = NESSampler(
                seed=0,
                strategy_options=rest or None,  # type: ignore[arg-type]
                surrogate=bool((options or {}).get("surrogate", False)),
            )
            chain = sampler.generations(study)
            told = {n for e in chain for n in e["told"]}  # type: ignore[attr-defined]
            trials = study.get_trials(deepcopy=False)
            # With the surrogate, a row handed out in one round and finished after it is
            # recorded by the next round's state (its `done`) and told with its generation.
            told |= surrogate_done(chain, trials)
            complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
            points = [tuple(sorted(t.params.items())) for t in complete]
            out = study_summary(study, seconds)
            out["complete"] = len(complete)
            out["told"] = sum(t.number in told for t in complete)
            # (with the surrogate: the trials its model fitted that no generation was told)
            fitted = surrogate_fitted(chain, trials) - told
            out["model_only"] = sum(t.number in fitted for t in complete)
            # the last generation is not told yet: its trials are not counted as unused
            last = chain[-1]["state"] if chain else None
            pending = sum(
                1
                for t in complete
                if t.number not in told
                and isinstance(t.system_attrs.get("nes_asktell:candidate"), dict)
                and t.system_attrs["nes_asktell:candidate"].get("state") == last
            )
            out["pending"] = pending
            out["startup"] = sum("nes_asktell:candidate" not in t.system_attrs for t in complete)
            out["duplicates"] = len(points) - len(set(points))
            return out

    tag = "" if params == 3 else f"-{params}d"  # (the 3-parameter studies keep their files)
    tag += "" if options is None else "-" + "-".join(f"{k}={v}" for k, v in options.items())
    tag += "" if slow is None else f"-slow={slow[0]}-{slow[1]}"
    return cached(f"procs{tag}-{kind}-{n_procs}-{n_trials}-{seed}", compute)


class _Timed(optuna.samplers.BaseSampler):
    """Wrap a sampler and add up the time spent in its methods."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _time(self, name: str, *args: object) -> object:
        t0 = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += time.perf_counter() - t0

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return self._time("infer_relative_search_space", study, trial)

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return self._time("sample_relative", study, trial, search_space)

    def sample_independent(self, study, trial, name, dist):  # type: ignore[no-untyped-def]
        return self._time("sample_independent", study, trial, name, dist)

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        return self._time("before_trial", study, trial)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        return self._time("after_trial", study, trial, state, values)


def run_speed(sampler: str, n_trials: int, seed: int) -> dict[str, object]:
    def compute() -> dict[str, object]:
        timed = _Timed(make_sampler(sampler, seed))
        study = optuna.create_study(sampler=timed)

        def sphere(trial: optuna.Trial) -> float:
            return sum((trial.suggest_float(f"x{i}", -5, 5) - 0.1 * i) ** 2 for i in range(10))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(sphere, n_trials=n_trials)
        return {"ms_per_trial": 1e3 * timed.seconds / n_trials, "best": study.best_value}

    return cached(f"speed-{sampler}-{n_trials}-{seed}", compute)


def report_faults(seeds: list[int]) -> None:
    print("faults: 2-d sphere, x + y > 3 fails; 200 trials; median over seeds", seeds)
    for mode in ("raise", "nan", "prune"):
        bests: dict[str, list[float]] = {}
        for sampler in ("nes", "cma", "tpe"):
            rs = [run_fault(mode, sampler, s) for s in seeds]
            bests[sampler] = [float(r["best"]) for r in rs]  # type: ignore[arg-type]
            best = statistics.median(bests[sampler])
            distinct = min(int(r["distinct"]) for r in rs)  # type: ignore[call-overload]
            print(f"  {mode:6s} {sampler:4s} min distinct {distinct:4d}  median best {best:.2e}")
        peer = min(statistics.median(bests["cma"]), statistics.median(bests["tpe"]))
        per_seed = sum(
            n <= 10 * min(c, t)
            for n, c, t in zip(bests["nes"], bests["cma"], bests["tpe"], strict=True)
        )
        # The same count for CmaEsSampler against the better of the other two: what a single
        # 200-trial study's spread allows a sampler whose median is level with its peers'.
        cma_per_seed = sum(
            c <= 10 * min(n, t)
            for n, c, t in zip(bests["nes"], bests["cma"], bests["tpe"], strict=True)
        )
        ratio = statistics.median(bests["nes"]) / peer
        print(
            f"  {mode:6s} nes median / better peer's median {ratio:.2f}; "
            f"nes within 10x of the better peer in {per_seed} of {len(seeds)} seeds "
            f"(cma within 10x of the better of nes and tpe in {cma_per_seed})"
        )


def report_integer(seeds: list[int]) -> None:
    print("integer: 6 ints in [-10, 10] and a float, 200 trials; median over seeds", seeds)
    for sampler in ("nes", "cma-margin", "tpe"):
        rs = [run_integer(sampler, s) for s in seeds]
        best = [float(r["best"]) for r in rs]  # type: ignore[arg-type]
        print(f"  {sampler:10s} median best {statistics.median(best):.3g}  all {best}")


def run_int_edge(sampler: str, log: bool, seed: int) -> dict[str, object]:
    def compute() -> dict[str, object]:
        def objective(trial: optuna.Trial) -> float:
            return trial.suggest_int("layers", 1, 2, log=log) + trial.suggest_float("c", 0, 1)

        study = optuna.create_study(sampler=make_sampler(sampler, seed))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(objective, n_trials=400)
        out = study_summary(study, time.perf_counter() - t0)
        out["other_late"] = sum(t.params["layers"] == 2 for t in study.trials[200:])
        return out

    return cached(f"int-edge-{'log-' if log else ''}{sampler}-{seed}", compute)


def report_int_edge(seeds: list[int]) -> None:
    print("int-edge: layers in [1, 2] (1 best) + c in [0, 1], 400 trials; seeds", seeds)
    for log in (False, True):
        for sampler in ("nes", "cma-margin"):
            rs = [run_int_edge(sampler, log, s) for s in seeds]
            late = [r["other_late"] for r in rs]
            best = [float(r["best"]) for r in rs]  # type: ignore[arg-type]
            print(
                f"  {'log' if log else 'linear':6s} {sampler:10s} layers = 2 in the last 200: "
                f"{late}  best - 1: {' '.join(f'{b - 1:.1e}' for b in best)}"
            )


def report_margin(seeds: list[int]) -> None:
    """Print how often a row leaves the cell of the mean of an int, against alpha.

    One int ``k`` in [0, 9] (10 cells of the unit interval) and d - 1 floats; XNES with a
    spread of 1e-6 at the mean, k's coordinate at the centre of the cell of k = 4 (0.45) or
    0.02 from its edge (0.42); 2,000 batches (``rng`` 0-1999), each asked as the sampler asks
    it (``Loaded.of``). alpha = 1 / (d popsize) is what the margin asks for at least.
    """
    del seeds  # (2,000 fixed seeds: not a study)
    print("margin: share of rows leaving the cell of the mean (k in [0, 9], 2,000 batches)")
    for dim, mirrored in ((2, True), (5, False), (10, False)):
        dists = {f"x{i}": FloatDistribution(0, 1) for i in range(1, dim)}
        space = UnitSpace({"k": IntDistribution(0, 9), **dists})
        for at in (0.45, 0.42):
            mean = np.full(dim, 0.5)
            mean[0] = at
            out = tries = 0
            lam = 0
            for seed in range(2000):
                es = XNES(mean, 1e-6, rng=seed, mirrored=mirrored)
                k = Loaded.of({}, es, space).X[:, 0]
                out += int(np.sum((k < 0.4) | (k >= 0.5)))
                tries += k.size
                lam = es.popsize
            print(
                f"  d = {dim:2d} popsize {lam:2d}{' mirrored' if mirrored else '         '} "
                f"k's coordinate {at}: {out / tries:.4f} (alpha {1.0 / (dim * lam):.4f})"
            )


def report_procs(
    seeds: list[int],
    params: int = 3,
    options: dict[str, object] | None = None,
    slow: tuple[float, float] | None = None,
) -> None:
    extra = "" if options is None else f", strategy_options={options}"
    if options == {"surrogate": True}:
        extra = ", surrogate=True"
    extra += "" if slow is None else f", trials take {slow[0]}-{slow[1]} s"
    print(f"procs: n processes x 60 trials, {params} parameters, popsize default{extra}")
    for kind in ("sqlite", "journal"):
        for n in (2, 4):
            for s in seeds:
                r = run_procs(kind, n, s, params=params, options=options, slow=slow)
                complete, told = int(r["complete"]), int(r["told"])  # type: ignore[call-overload]
                model = ""
                if options == {"surrogate": True}:
                    only = int(r.get("model_only", 0))  # type: ignore[call-overload]
                    model = (
                        f", fitted by the model only {only} (told or fitted: "
                        f"{100 * (told + only) / complete:.1f}%)"
                    )
                print(
                    f"  {kind:7s} {n} procs run {s}: complete {complete}, told {told} "
                    f"({100 * told / complete:.1f}%){model}, "
                    f"pending (last generation) {r['pending']}, "
                    f"startup {r['startup']}, duplicates {r['duplicates']}, "
                    f"best {float(r['best']):.2e}, "  # type: ignore[arg-type]
                    f"{float(r['seconds']):.0f} s"  # type: ignore[arg-type]
                )


def report_procs_surrogate(seeds: list[int]) -> None:
    """The procs suite with the sampler's surrogate (``NESSampler(surrogate=True)``)."""
    report_procs(seeds, options={"surrogate": True})


def report_procs2(seeds: list[int]) -> None:
    """The procs suite with two parameters (x and y), where XNES runs mirrored, and without."""
    report_procs(seeds, params=2)
    report_procs(seeds, params=2, options={"mirrored": False})


#: how long a trial of the ``procs2-timed`` suite takes: uniform in this range, in seconds
TIMED = (0.05, 0.15)


def report_procs2_timed(seeds: list[int]) -> None:
    """The procs2 suite with trials that take time (a trial's own time, not the sampler's)."""
    report_procs(seeds, params=2, slow=TIMED)
    report_procs(seeds, params=2, options={"mirrored": False}, slow=TIMED)


def report_scarce(seeds: list[int]) -> None:
    print(f"scarce: 2-d, completes only where x, y > {SCARCE_CORNER}; 1,500 trials")
    for sampler in ("nes", "cma", "random"):
        rs = [run_scarce(sampler, s) for s in seeds]
        complete = [int(r["states"].get("COMPLETE", 0)) for r in rs]  # type: ignore[attr-defined]
        best = [float(r["best"]) for r in rs]  # type: ignore[arg-type]
        print(
            f"  {sampler:6s} COMPLETE per seed {complete}  best per seed "
            + " ".join(f"{b:.2e}" for b in best)
        )


def report_uneven(seeds: list[int]) -> None:
    print(
        f"uneven: 5-d sphere, n_jobs=4, trials take {UNEVEN_BASE} s, one in {UNEVEN_EVERY} "
        f"takes {UNEVEN_SLOW} s; 300 trials"
    )
    for sampler in ("nes", "cma"):
        rs = [run_uneven(sampler, s) for s in seeds]
        best = " ".join(f"{float(r['best']):.2e}" for r in rs)  # type: ignore[arg-type]
        wall = " ".join(f"{float(r['seconds']):.0f}" for r in rs)  # type: ignore[arg-type]
        extra = ""
        if sampler == "nes":
            extra = (
                f"  drawn independently {[r['independent'] for r in rs]}"
                f"  told {[r['told'] for r in rs]}"
                f"  generations {[r['generations'] for r in rs]}"
            )
        print(f"  {sampler:4s} best per seed {best}  wall s {wall}{extra}")


#: the study lengths of the speed suite (``--speed-trials`` overrides them)
SPEED_TRIALS = [1000, 5000]


def report_speed(seeds: list[int]) -> None:
    print("speed: 10-d sphere, sampler ms per trial")
    for n in SPEED_TRIALS:
        for sampler in ("nes", "cma"):
            rs = [run_speed(sampler, n, s) for s in seeds]
            ms = statistics.median(float(r["ms_per_trial"]) for r in rs)  # type: ignore[arg-type]
            print(f"  {n:5d} trials {sampler:4s} {ms:.2f} ms/trial")


SUITES = {
    "faults": report_faults,
    "integer": report_integer,
    "int-edge": report_int_edge,
    "margin": report_margin,
    "procs": report_procs,
    "procs-surrogate": report_procs_surrogate,
    "procs2": report_procs2,
    "procs2-timed": report_procs2_timed,
    "small": report_small,
    "speed": report_speed,
    "scarce": report_scarce,
    "uneven": report_uneven,
}


def main(
    quick: bool = False, suites: list[str] | None = None, seeds: list[int] | None = None
) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    chosen = suites or list(SUITES)
    for name in chosen:
        SUITES[name](seeds or ([0] if quick else [0, 1, 2]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optuna_faults")
    parser.add_argument("--suite", nargs="*", choices=list(SUITES), default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--speed-trials", nargs="*", type=int, default=None)
    args = parser.parse_args()
    if args.speed_trials:
        SPEED_TRIALS[:] = args.speed_trials
    main(quick=args.quick, suites=args.suite, seeds=args.seeds)
