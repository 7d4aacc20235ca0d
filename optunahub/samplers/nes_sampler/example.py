"""A study with the NES sampler loaded as a registry package.

This runs as it is, from any folder: ``test_local = True`` loads this package folder with
``optunahub.load_local_module``, its registry root being the folder two levels above this file
(``optunahub/`` in the nes_asktell repository, ``package/`` in the registry). Set
``test_local = False`` to load the published package with ``optunahub.load_module`` (this
fetches the registry, so it needs network access).
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna

import optunahub


def objective(trial: optuna.Trial) -> float:
    """Return a quadratic in a float, a log-scaled float and an int, searched jointly."""
    x = trial.suggest_float("x", -5.0, 5.0)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8)
    return (x - 1.0) ** 2 + (math.log10(lr) + 2.5) ** 2 + 0.1 * (layers - 4) ** 2


package_name = "samplers/nes_sampler"
test_local = True

if __name__ == "__main__":
    if test_local:
        # This file is <registry root>/samplers/nes_sampler/example.py.
        registry_root = Path(__file__).resolve().parents[2]
        module = optunahub.load_local_module(
            package=package_name, registry_root=str(registry_root)
        )
    else:
        module = optunahub.load_module(package=package_name)
    study = optuna.create_study(sampler=module.NESSampler(seed=0))
    study.optimize(objective, n_trials=200)
    print(study.best_params, study.best_value)
