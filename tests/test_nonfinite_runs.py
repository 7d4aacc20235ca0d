"""A run whose objective never returns a finite value ends (no endless loop)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nes_asktell import SNES, XNES, NESWarning, OpenES


@pytest.mark.parametrize("cls", [OpenES, SNES, XNES])
def test_an_all_nan_objective_stops_by_stagnation(cls: type) -> None:
    es = cls(np.zeros(2), 0.5, rng=0, tolstagnation=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NESWarning)
        res = es.optimize(lambda x: float("nan"))
    assert "tolstagnation" in res.stop
    assert res.nit == 5
    assert res.status == 3
    assert not res.success
    assert res.fun == np.inf
