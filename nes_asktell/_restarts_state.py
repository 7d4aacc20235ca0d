"""IPOP state as plain data: ``IPOP.state_dict()`` and ``IPOP.from_state()``.

The state holds the constructor's arguments, the counters of the finished runs, their history,
the best-so-far and the current run's own ``state_dict()``. ``load`` rebuilds the sequence
through the constructor, so every argument is validated again, then restores the rest.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import _validate as v
from ._restarts_runs import strategy_classes
from ._state import STATE_VERSION
from ._typing import JSON

if TYPE_CHECKING:
    from ._restarts import IPOP


def dump(opt: IPOP) -> JSON:
    """Return the complete state of `opt` as plain data (see :meth:`IPOP.state_dict`)."""
    sigma0 = opt._sigma0
    return {
        "strategy": opt.name,
        "version": STATE_VERSION,
        "inner_strategy": opt._cls.name,
        "x0": opt._x0.tolist(),
        "sigma0": np.asarray(sigma0, dtype=float).tolist(),
        "popsize0": opt._popsize0,
        "bounds": None
        if opt._box is None
        else [
            [None if not math.isfinite(a) else float(a) for a in opt._box.lower],
            [None if not math.isfinite(a) else float(a) for a in opt._box.upper],
        ],
        "seed": str(opt._seed),
        "criteria": {
            "maxfev": opt._crit.maxfev,
            "maxiter": opt._crit.maxiter,
            "ftarget": opt._crit.ftarget,
            "timeout": opt._crit.timeout,
        },
        "max_restarts": opt._max_restarts,
        "popsize_factor": opt._factor,
        "options": dict(opt._options),
        "restarts": opt._restarts,
        "nfev_done": opt._nfev_done,
        "generation_done": opt._generation_done,
        "history": opt.history,
        "best_x": opt._best_x.tolist(),
        "best_f": None if math.isinf(opt._best_f) else opt._best_f,
        "inner": opt._inner.state_dict(),
    }


def load(cls: type[IPOP], state: object) -> IPOP:
    """Rebuild an IPOP sequence from :func:`dump` output; raise ValueError when malformed."""
    if not isinstance(state, dict) or state.get("strategy") != cls.name:
        raise ValueError(f"`state` must come from IPOP.state_dict(), but got {state!r:.80}.")
    try:
        classes = strategy_classes()
        inner_cls = classes[str(state["inner_strategy"])]
        bounds = state["bounds"]
        box = None
        if bounds is not None:
            box = (
                [-math.inf if a is None else float(a) for a in bounds[0]],
                [math.inf if a is None else float(a) for a in bounds[1]],
            )
        sigma0 = state["sigma0"]
        obj = cls(
            inner_cls,
            state["x0"],
            np.asarray(sigma0) if isinstance(sigma0, list) else sigma0,
            state["popsize0"],
            bounds=box,
            rng=int(state["seed"]),
            max_restarts=state["max_restarts"],
            popsize_factor=state["popsize_factor"],
            **dict(state["criteria"]),
            **dict(state["options"]),
        )
        obj._restarts = v.integer("restarts", state["restarts"], minimum=0)
        obj._nfev_done = v.integer("nfev_done", state["nfev_done"], minimum=0)
        obj._generation_done = v.integer("generation_done", state["generation_done"], minimum=0)
        obj._history = [dict(h) for h in state["history"]]
        obj._best_x = v.as_vector("best_x", state["best_x"], obj.dim)
        best_f = state["best_f"]
        obj._best_f = math.inf if best_f is None else v.real("best_f", best_f)
        obj._inner = inner_cls.from_state(state["inner"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"`state` is malformed: {exc}") from exc
    return obj
