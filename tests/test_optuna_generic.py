"""Optuna's own sampler contract (optuna.testing.pytest_samplers), applied to NESSampler."""

from __future__ import annotations

from collections.abc import Callable

import pytest

optuna = pytest.importorskip("optuna")

from optuna.samplers import BaseSampler  # noqa: E402
from optuna.testing.pytest_samplers import (  # noqa: E402
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from nes_asktell import NESSampler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


class _NES:
    @pytest.fixture(params=["xnes", "snes"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return lambda: NESSampler(strategy=request.param, seed=0)


class TestBasic(_NES, BasicSamplerTestCase):
    pass


class TestRelative(_NES, RelativeSamplerTestCase):
    pass


class TestSingleOnly(_NES, SingleOnlySamplerTestCase):
    pass
