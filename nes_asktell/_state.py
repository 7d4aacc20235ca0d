"""Strategy state as plain data: ``state_dict()`` and ``from_state()`` of every strategy.

The state is JSON-serialisable (numbers, lists, strings, None for infinities): the constructor
options, the counters, the search distribution, the best-so-far, the stopping history and the
noise source. ``load`` rebuilds the strategy through its constructor, so every option is validated
again, then validates and restores the dynamic state; between ``ask`` and ``tell`` it re-asks,
which redraws the same batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from . import _noise
from . import _validate as v
from ._typing import JSON, FloatArray

if TYPE_CHECKING:
    from ._base import Strategy

S = TypeVar("S", bound="Strategy")

STATE_VERSION = 1


def dump(es: Strategy) -> JSON:
    """Return the complete state of `es` as plain data (see :meth:`Strategy.state_dict`)."""
    if not isinstance(es._shaping_spec, str):
        raise ValueError(
            "`shaping` is a callable, which state_dict() cannot store; use pickle, or "
            "pass it again to from_state(state, shaping=...)."
        )
    noise = es._noise_before_ask  # between ask and tell: the noise state that ask started from
    return {
        "strategy": es.name,
        "version": STATE_VERSION,
        "dim": es._dim,
        "popsize": es._popsize,
        "sigma0": _to_plain(es._sigma0),
        "mirrored": es._mirrored,
        "shaping": es._shaping_spec,
        "threads": es._threads,
        "dtype": np.dtype(es._dtype).name,
        "bounds": None if es._box is None else [_floats(es._box.lower), _floats(es._box.upper)],
        "criteria": es._crit.to_json(),
        "options": es._options(),
        "mean": es._mean.tolist(),
        "generation": es._generation,
        "nfev": es._nfev,
        "best_x": es._best_x.tolist(),
        "best_f": None if math.isinf(es._best_f) else es._best_f,
        "fhist": list(es._fhist),
        "last_range": None if math.isinf(es._last_range) else es._last_range,
        "since_improvement": es._since_improvement,
        "asked": es._X is not None,
        "noise": noise if noise is not None else es._noise.snapshot(),
        "algo": es._algo_state(),
    }


def load(cls: type[S], state: object, shaping: object) -> S:
    """Rebuild a `cls` strategy from :func:`dump` output; raise ValueError when malformed."""
    if not isinstance(state, dict):
        raise ValueError(f"`state` must be a dict from state_dict(), but got {state!r:.80}.")
    if state.get("strategy") != cls.name or state.get("version") != STATE_VERSION:
        raise ValueError(
            f"`state` must come from {cls.__name__}.state_dict() (version {STATE_VERSION}), "
            f"but got strategy={state.get('strategy')!r}, version={state.get('version')!r}."
        )
    try:
        bounds = state["bounds"]
        crit = dict(state["criteria"])
        options = dict(state["options"])
        obj = cls(
            v.as_vector("mean", state["mean"]),
            np.asarray(state["sigma0"]) if isinstance(state["sigma0"], list) else state["sigma0"],
            state["popsize"],
            bounds=None if bounds is None else (_unfloats(bounds[0]), _unfloats(bounds[1])),
            rng=0,
            mirrored=state["mirrored"],
            shaping=state["shaping"] if shaping is None else shaping,
            threads=state["threads"],
            dtype=state.get("dtype", "float64"),
            **crit,
            **options,
        )
        if obj._dim != state["dim"]:
            raise ValueError(f"dim {state['dim']} does not match the mean")
        obj._noise = _noise.restore(state["noise"], obj._threads)
        obj._generation = v.integer("generation", state["generation"], minimum=0)
        obj._nfev = v.integer("nfev", state["nfev"], minimum=0)
        obj._best_x = v.as_vector("best_x", state["best_x"], obj._dim)
        best_f = state["best_f"]
        obj._best_f = math.inf if best_f is None else v.real("best_f", best_f)
        obj._fhist = [v.real("fhist", x) for x in state["fhist"]]
        last = state["last_range"]
        obj._last_range = math.inf if last is None else v.real("last_range", last)
        obj._since_improvement = v.integer(
            "since_improvement", state["since_improvement"], minimum=0
        )
        obj._load_algo_state(dict(state["algo"]))
        asked = state["asked"]
        if not isinstance(asked, bool):
            raise TypeError(f"`asked` must be True or False, but got {asked!r}.")
    except KeyError as exc:
        raise ValueError(f"`state` is malformed: the key {exc} is missing.") from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"`state` is malformed: {exc}") from exc
    if asked:
        obj.ask()
    return obj


def _floats(a: FloatArray) -> list[float | None]:
    return [None if not math.isfinite(x) else float(x) for x in a]


def _unfloats(a: Sequence[float | None]) -> list[float]:
    return [math.nan if x is None else float(x) for x in a]


def _to_plain(x: float | FloatArray) -> float | list[float]:
    return x.tolist() if isinstance(x, np.ndarray) else float(x)
