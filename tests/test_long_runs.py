"""Long runs: the checkpoint of any reachable state loads and continues bit-identically.

Each run goes 5,000 generations on a cheap 2-d problem, far past convergence (the stopping
criteria are not consulted), through a JSON checkpoint every 500 generations: the copy must
load, ask the same batch and, after one more generation, hold the same state.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nes_asktell import BIPOP, IPOP, Strategy, resolve_strategy

GENERATIONS = 5000
EVERY = 500


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.25) ** 2))


CONFIGS = [
    ("xnes", {}),
    ("xnes", {"csa": False, "adaptation_sampling": False, "bounds": [(-1, 1), (-1, 1)]}),
    ("xnes", {"rank_one": True}),
    ("xnes", {"rank_one": True, "csa": False, "bounds": [(-1, 1), (-1, 1)]}),
    # the optimum (0.25, 0.25) beyond the corner (0.5, 0.5): B reaches its conditioning limit
    ("xnes", {"rank_one": True, "mirrored": False, "popsize": 3, "bounds": [(0.5, 1)] * 2}),
    ("snes", {}),
    ("openes", {}),
    ("openes", {"learning_rate_decay": 0.5}),
    ("openes", {"sigma_decay": 0.5}),
    ("openes", {"optimizer": "momentum", "sigma_decay": 0.9, "learning_rate_decay": 0.9}),
    ("dxnesic", {}),
    ("dxnesic", {"implicit_constraints": True, "bounds": [(-1, 1), (-1, 1)]}),
    ("crfmnes", {}),
    ("crfmnes", {"implicit_constraints": True, "bounds": [(-1, 1), (-1, 1)]}),
    ("dxnesic", {"bounds": [(-1, 1), (0.25, 0.25)]}),  # a coordinate fixed by its bounds
    ("crfmnes", {"bounds": [(-1, 1), (0.25, 0.25)]}),
]


def _step(es: Strategy) -> None:
    X = es.ask()
    es.tell(X, [sphere(x) for x in X])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_checkpoints_of_a_long_run_load_and_continue_identically(
    name: str, kw: dict[str, object]
) -> None:
    es = resolve_strategy(name)(np.full(2, 0.9), 0.3, rng=11, **kw)  # type: ignore[arg-type]
    for g in range(1, GENERATIONS + 1):
        _step(es)
        if g % EVERY == 0:
            state = json.loads(json.dumps(es.state_dict()))
            copy = Strategy.from_state(state)
            assert np.array_equal(copy.ask(), es.ask())
            _step(es)
            _step(copy)
            assert json.dumps(copy.state_dict()) == json.dumps(es.state_dict())
            es = copy  # the run goes on from the checkpoint
    assert np.all(np.isfinite(es.mean))


@pytest.mark.slow
@pytest.mark.parametrize("cls", [IPOP, BIPOP])
@pytest.mark.parametrize(
    ("name", "kw"), [("xnes", {}), ("xnes", {"rank_one": True}), ("snes", {}), ("crfmnes", {})]
)
def test_checkpoints_of_a_long_restart_sequence_load_and_continue_identically(
    cls: type[IPOP], name: str, kw: dict[str, bool]
) -> None:
    # Restarts draw their initial means in the box; the generations add up over the runs, and
    # a checkpoint comes every 100 of them, mid-run and across restarts.
    bounds = [(-1, 1), (-1, 1)]
    opt = cls(name, np.full(2, 0.9), 0.3, bounds=bounds, rng=3, max_restarts=6, **kw)
    g = 0
    while not opt.stop():
        _step(opt)  # type: ignore[arg-type]
        g += 1
        if g % 100 == 0:
            copy = cls.from_state(json.loads(json.dumps(opt.state_dict())))
            assert np.array_equal(copy.ask(), opt.ask())
            _step(opt)  # type: ignore[arg-type]
            _step(copy)  # type: ignore[arg-type]
            assert json.dumps(copy.state_dict()) == json.dumps(opt.state_dict())
            opt = copy
    assert g >= 500
    assert opt.restarts >= 4
