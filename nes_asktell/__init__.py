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
import importlib.util
from typing import TYPE_CHECKING

from ._backends import shutdown_pools
from ._crfmnes import CRFMNES
from ._dxnesic import DXNESIC
from ._evaluate import Evaluator, evaluate
from ._history import History
from ._mpi import SPMDMap, mpi_optimize
from ._openes import OpenES, estimate_gradient
from ._restarts import BIPOP, IPOP
from ._shaping import centered_ranks, nes_utilities, nes_weights, raw, zscore
from ._snes import SNES
from ._strategy import Strategy, resolve_strategy, strategy_names
from ._typing import NESWarning
from ._uncertainty import NoiseHandler
from ._xnes import XNES

if TYPE_CHECKING:  # the lazy names, for type checkers
    from .integrations.optuna import NESSampler
    from .integrations.scipy import nes

__version__ = "0.1.0"

__all__ = [
    "BIPOP",
    "CRFMNES",
    "DXNESIC",
    "IPOP",
    "SNES",
    "XNES",
    "Evaluator",
    "History",
    "NESWarning",
    "NoiseHandler",
    "OpenES",
    "SPMDMap",
    "Strategy",
    "__version__",
    "centered_ranks",
    "estimate_gradient",
    "evaluate",
    "mpi_optimize",
    "nes",
    "nes_utilities",
    "nes_weights",
    "raw",
    "resolve_strategy",
    "shutdown_pools",
    "strategy_names",
    "zscore",
]


def _installed(module: str) -> bool:
    """Return whether `module` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ``from nes_asktell import *`` imports every name of __all__: the sampler only with optuna
if _installed("optuna"):
    __all__ += ["NESSampler"]

#: Names loaded on first use: the integrations import optuna only when asked for.
_LAZY: dict[str, str] = {"NESSampler": ".integrations.optuna", "nes": ".integrations.scipy"}
#: the extra that installs what a lazy name needs, by the module it needs.
_EXTRAS: dict[str, str] = {"optuna": "optuna"}


def __getattr__(name: str) -> object:
    """Load the optional integrations lazily."""
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name], __name__)
        except ModuleNotFoundError as exc:
            extra = _EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            raise ImportError(
                f"`{name}` needs {exc.name}, which is not installed: "
                f"pip install 'nes_asktell[{extra}]'"
            ) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nes_asktell' has no attribute {name!r}")
