"""A study with the NES sampler loaded as a registry package.

``optunahub.load_module`` fetches the package from the registry, so this runs once the package
is published there (and with network access). Before that, load this folder instead:
``optunahub.load_local_module(package="samplers/nes_sampler", registry_root="optunahub")``
from the repository's top folder, as ``tests/test_optuna_hub.py`` does.
"""

from __future__ import annotations

import math

import optuna

import optunahub


def objective(trial: optuna.Trial) -> float:
    """Return a quadratic in a float, a log-scaled float and an int, searched jointly."""
    x = trial.suggest_float("x", -5.0, 5.0)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8)
    return (x - 1.0) ** 2 + (math.log10(lr) + 2.5) ** 2 + 0.1 * (layers - 4) ** 2


if __name__ == "__main__":
    module = optunahub.load_module(package="samplers/nes_sampler")
    study = optuna.create_study(sampler=module.NESSampler(seed=0))
    study.optimize(objective, n_trials=200)
    print(study.best_params, study.best_value)
