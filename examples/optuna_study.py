"""Optuna studies driven by NESSampler: one process, a mixed search space, two processes sharing
a journal file, and resuming the search with a fresh sampler.

Run: ``python examples/optuna_study.py`` (about five to ten seconds; files go to a temporary
folder). It needs the ``optuna`` extra: ``pip install 'nes_asktell[optuna]'``.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
import tempfile
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nes_asktell import NESSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    """A hyperparameter-like problem: a float, a log-scale float and an int."""
    x = trial.suggest_float("x", -5.0, 5.0)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8)
    return (x - 1.0) ** 2 + math.log10(lr / 3e-3) ** 2 + 0.1 * (layers - 4) ** 2


def mixed(trial: optuna.Trial) -> float:
    """A categorical choice with a conditional parameter: those go to the independent sampler."""
    kind = trial.suggest_categorical("kind", ["adam", "sgd"])
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    batch = trial.suggest_int("batch", 16, 256, step=16)
    momentum = trial.suggest_float("momentum", 0.0, 0.99) if kind == "sgd" else 0.9
    return math.log10(lr / 1e-3) ** 2 + ((batch - 128) / 64) ** 2 + (momentum - 0.9) ** 2


def fragile(trial: optuna.Trial) -> float:
    """Fail where x + y > 3 and report steps to a pruner (each trial still informs the search)."""
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    if x + y > 3.0:
        raise RuntimeError("the simulator crashed")
    f = (x - 1.0) ** 2 + (y - 1.0) ** 2
    for step in range(3):
        trial.report(f * (3 - step), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return f


def storage_at(path: str) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def worker(path: str, n_trials: int) -> None:
    """One process of a distributed study: load the study and optimise."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="shared", storage=storage_at(path), sampler=NESSampler())
    study.optimize(objective, n_trials=n_trials)


def main() -> None:
    # 1. A study in a few lines.
    study = optuna.create_study(sampler=NESSampler(seed=0))
    study.optimize(objective, n_trials=100)
    print(f"1. one process:   best {study.best_value:.2e} at {study.best_params}")

    # 2. A mixed search space: numeric parameters searched by NES, the rest sampled independently.
    study = optuna.create_study(sampler=NESSampler(seed=0, warn_independent_sampling=False))
    study.optimize(mixed, n_trials=100)
    print(f"2. mixed space:   best {study.best_value:.2e} at {study.best_params}")

    # 3. Failures and a pruner: failed and pruned trials rank below every complete one, and no
    #    point is tried twice; constraints (x >= 0.5 here) rank infeasible trials by violation.
    study = optuna.create_study(
        sampler=NESSampler(seed=0, constraints_func=lambda t: [0.5 - t.params["x"]]),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no line per failed trial
    study.optimize(fragile, n_trials=150, catch=(RuntimeError,))
    optuna.logging.set_verbosity(verbosity)
    distinct = len({tuple(sorted(t.params.items())) for t in study.trials})
    states = {s.name: sum(t.state == s for t in study.trials) for s in TrialState}
    print(
        f"3. faults:        {distinct} distinct points of {len(study.trials)}, "
        f"{states['FAIL']} failed, {states['PRUNED']} pruned, best {study.best_value:.2e}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        # 4. Two processes on one journal file (SQLite works the same way with an RDB URL).
        path = str(Path(tmp) / "study.log")
        optuna.create_study(study_name="shared", storage=storage_at(path))
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=worker, args=(path, 40)) for _ in range(2)]
        # Ctrl-C is this process's to handle: the workers start with SIGINT ignored (they keep
        # it), and an interrupted wait below stops them before their folder is removed.
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for p in procs:
                p.start()
        finally:
            signal.signal(signal.SIGINT, handler)
        try:
            for p in procs:
                p.join()
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join()
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
        study = optuna.load_study(study_name="shared", storage=storage_at(path))
        sampler = NESSampler()
        n_gen = len(sampler.generations(study))
        print(
            f"4. two processes: {len(study.trials)} trials, {n_gen} generations, "
            f"best {study.best_value:.2e}"
        )

        # 5. Resume: a fresh sampler (any process) continues the stored search.
        study = optuna.load_study(study_name="shared", storage=storage_at(path), sampler=sampler)
        study.optimize(objective, n_trials=40)
        print(
            f"5. resumed:       {len(study.trials)} trials, "
            f"{len(sampler.generations(study))} generations, best {study.best_value:.2e}"
        )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)
