"""A toy strategy, as a contributor would add one: this module and nothing else.

Fixed-sigma NES with plain gradient steps, ``mu <- mu + sigma * sum_k u_k s_k``. Defining the
class registers its name, so the contract suite (tests/test_contract.py), IPOP, the scipy method
and the Optuna sampler all accept ``"toy"`` from then on.
"""

from __future__ import annotations

from typing import Unpack

import numpy as np

from nes_asktell import Strategy
from nes_asktell import _validate as v
from nes_asktell._typing import (
    JSON,
    ArrayLike,
    BoundsLike,
    CommonOptions,
    FloatArray,
    RngLike,
    ShapingLike,
)


class ToyES(Strategy):
    """Fixed-sigma NES: the mean follows the rank-weighted sum of the perturbations."""

    name = "toy"

    def __init__(
        self,
        x0: ArrayLike,
        sigma0: float,
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: RngLike = None,
        mirrored: bool | None = None,
        shaping: ShapingLike | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(
            x0,
            sigma0,
            popsize,
            bounds=bounds,
            rng=rng,
            mirrored=mirrored,
            shaping=shaping,
            **common,
        )
        self._sigma = float(self._sigma0)  # type: ignore[arg-type]

    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        np.multiply(Zh, self._sigma, out=out)

    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        return {"_mean": self._mean + self._sigma * self._noise_sum(Zh, u)}

    def _stds(self) -> FloatArray:
        return np.full(self._dim, self._sigma)

    def _sigma_value(self) -> float:
        return self._sigma

    # sigma is fixed by the update but not by Strategy.scale_sigma: it is state
    def _algo_state(self) -> JSON:
        return {"sigma": self._sigma}

    def _load_algo_state(self, state: JSON) -> None:
        self._sigma = v.step_size("sigma", state["sigma"])
