"""nes_asktell: Natural Evolution Strategies with an ask/tell interface.

The strategies (:class:`XNES`, :class:`SNES`, :class:`OpenES`) share one protocol::

    es = XNES(x0, sigma0=0.5, rng=0)
    while not es.stop():
        X = es.ask()
        es.tell(X, [f(x) for x in X])
    print(es.result)

:class:`IPOP` restarts any of them; :func:`nes` is a method of ``scipy.optimize.minimize`` and
:class:`NESSampler` an Optuna sampler (both loaded on first use, so that optuna is imported only
when asked for).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._backends import shutdown_pools
from ._evaluate import Evaluator, evaluate
from ._openes import OpenES, estimate_gradient
from ._restarts import IPOP
from ._shaping import centered_ranks, nes_utilities, nes_weights, raw, zscore
from ._snes import SNES
from ._strategy import Strategy, resolve_strategy, strategy_names
from ._typing import NESWarning
from ._xnes import XNES

if TYPE_CHECKING:  # the lazy names, for type checkers
    from .integrations.optuna import NESSampler
    from .integrations.scipy import nes

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
    "resolve_strategy",
    "shutdown_pools",
    "strategy_names",
    "zscore",
]

#: Names loaded on first use: the integrations import optuna only when asked for.
_LAZY: dict[str, str] = {"NESSampler": ".integrations.optuna", "nes": ".integrations.scipy"}


def __getattr__(name: str) -> object:
    """Load the optional integrations lazily."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nes_asktell' has no attribute {name!r}")
