"""nes_asktell: Natural Evolution Strategies with an ask/tell interface.

The strategies (:class:`OpenES`; see the documentation for the others) share one protocol::

    es = OpenES(x0, sigma0=0.5, rng=0)
    while not es.stop():
        X = es.ask()
        es.tell(X, [f(x) for x in X])
    print(es.result)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import NESWarning, Strategy
from ._evaluate import Evaluator, evaluate
from ._gradient import estimate_gradient
from ._openes import OpenES
from ._restarts import IPOP
from ._shaping import centered_ranks, nes_utilities, nes_weights, raw, zscore
from ._snes import SNES
from ._xnes import XNES

__version__ = "0.1.0"

__all__ = [
    "IPOP",
    "SNES",
    "XNES",
    "Evaluator",
    "NESSampler",
    "NESWarning",
    "OpenES",
    "Strategy",
    "__version__",
    "centered_ranks",
    "estimate_gradient",
    "evaluate",
    "nes",
    "nes_utilities",
    "nes_weights",
    "raw",
    "zscore",
]

if TYPE_CHECKING:  # pragma: no cover
    pass

#: Names loaded on first use: the integrations import optuna or dask only when asked for.
_LAZY: dict[str, str] = {"NESSampler": ".integrations.optuna", "nes": ".integrations.scipy"}


def __getattr__(name: str) -> object:
    """Load the optional integrations lazily."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nes_asktell' has no attribute {name!r}")
