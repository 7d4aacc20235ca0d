"""Termination criteria, checked by :meth:`Strategy.stop`, and the outcome they give.

Each criterion that holds appears in the dict returned by ``stop()`` with its threshold as the
value, as in pycma: ``{'maxfev': 1000}``. :func:`make_result` is the one builder of the
``OptimizeResult`` of a strategy, of IPOP and of a run, with scipy's status codes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeResult

from . import _validate as v
from ._typing import JSON, FloatArray

#: scipy's wording for the outcomes (``scipy.optimize._optimize._status_message``).
MESSAGES = {
    0: "Optimization terminated successfully.",
    1: "Maximum number of function evaluations has been exceeded.",
    2: "Maximum number of iterations has been exceeded.",
    3: "The search stagnated: no further progress is possible.",
    4: "The time limit was reached.",
    5: "The search distribution degenerated (a non-finite value or a step size at its limit).",
    99: "`callback` raised `StopIteration`.",
    -1: "The optimization is still running.",
}

#: status code of each criterion (0 means converged).
STATUS = {
    "ftarget": 0,
    "tolfun": 0,
    "tolx": 0,
    "maxfev": 1,
    "maxiter": 2,
    "tolstagnation": 3,
    "tolflatfitness": 0,  # as tolfun: the values stopped differing
    "sigma": 3,
    "conditioncov": 3,
    "timeout": 4,
    "degenerate": 5,
    "callback": 99,
}


#: the criteria in the order that decides the status when several hold.
PRECEDENCE = (
    "callback",
    "degenerate",
    "ftarget",
    "tolfun",
    "tolflatfitness",
    "tolx",
    "maxfev",
    "maxiter",
    "timeout",
    "tolstagnation",
    "conditioncov",
    "sigma",
)


def make_result(
    *, x: FloatArray, fun: float, nfev: int, nit: int, stop: dict[str, float], **extra: object
) -> OptimizeResult:
    """Return the OptimizeResult of a run: the fields, ``stop`` and the status it implies.

    ``status`` is that of the first criterion of :data:`PRECEDENCE` in `stop` (-1 when none
    holds: the run goes on), ``success`` is ``status == 0`` and ``message`` scipy's wording.
    """
    status = next((STATUS[k] for k in PRECEDENCE if k in stop), -1)
    fields: dict[str, Any] = {
        "x": x,
        "fun": fun,
        "nfev": nfev,
        "nit": nit,
        "status": status,
        "success": status == 0,
        "message": MESSAGES[status],
        "stop": stop,
        **extra,
    }
    return Result(**fields)


class Result(OptimizeResult):
    """scipy's OptimizeResult, whose text shows a field that is an empty dict as ``{}``.

    scipy formats a field that is a dict as a nested block, and raised ValueError on an empty
    one: ``print(es.result)`` while no criterion held (``stop`` is ``{}``), and so
    ``optimize(..., callback=print)``, failed.
    """

    def __repr__(self) -> str:
        return repr(OptimizeResult(**{k: _shown(x) for k, x in self.items()}))


def _shown(x: object) -> object:
    """Return `x` with the text ``{}`` for every empty dict in it (see :class:`Result`).

    Nested too: scipy formats a dict within a dict (a result kept in a result) as a block
    as well, and raised the same ValueError on an empty one there.
    """
    if not isinstance(x, dict):
        return x
    return {k: _shown(y) for k, y in x.items()} if x else "{}"


def with_stop(res: OptimizeResult, stop: dict[str, float]) -> OptimizeResult:
    """Return a copy of `res` whose ``stop`` also holds `stop` (status and message follow)."""
    fields = {k: res[k] for k in res if k not in ("status", "success", "message", "stop")}
    merged = {**stop, **res.stop}
    return make_result(**fields, stop=merged)


@dataclass(frozen=True)
class Criteria:
    """The thresholds; None switches a criterion off."""

    maxfev: int | None = None
    maxiter: int | None = None
    ftarget: float | None = None
    tolfun: float | None = 1e-12
    tolx: float | None = 1e-12
    tolstagnation: int | None = None
    timeout: float | None = None
    tolconditioncov: float | None = 1e14
    tolflatfitness: int | None = None

    def state_dict(self) -> JSON:
        """Return the thresholds as plain data."""
        return asdict(self)

    def updated(self, **changes: object) -> Criteria:
        """Return a copy with `changes` applied after validating each of them."""
        return replace(self, **check_criteria(**changes))  # type: ignore[arg-type]


#: the largest count a criterion may have (``maxfev``, ``maxiter``, ``tolstagnation``,
#: ``tolflatfitness``): beyond any run, and within what a state's JSON writes (an int past
#: Python's limit on digits cannot be written)
MAX_CRITERION_COUNT = 2**63 - 1


def _count(name: str, value: object, minimum: int) -> int | None:
    """Return the count criterion `value` checked (None: off)."""
    if value is None:
        return None
    out = v.integer(name, value, minimum=minimum)
    if out > MAX_CRITERION_COUNT:
        raise ValueError(
            f"`{name}` must be an integer <= {MAX_CRITERION_COUNT}, but got {v.short(value)}."
        )
    return out


def _condition_limit(name: str, value: object) -> float:
    """Return `value` as a finite number above 1 (a condition number is at least 1), or raise.

    One message for every value refused: a limit of 0.5, a positive finite number, is no
    more a condition number than 0, NaN or inf is.
    """
    want = (
        f"`{name}` must be a number above 1 (a condition number is at least 1) or None, "
        f"but got {v.short(value)}."
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(want)
    cond = v.float_or_inf(value)
    if not 1.0 < cond < math.inf:  # (also NaN)
        raise ValueError(want)
    return cond


def check_criteria(**kw: object) -> dict[str, object]:
    """Validate stopping keywords; raise TypeError/ValueError naming the bad one."""
    out: dict[str, object] = {}
    for name, value in kw.items():
        if name in ("maxfev", "maxiter", "tolstagnation"):
            out[name] = _count(name, value, 1)
        elif name == "ftarget":
            out[name] = None if value is None else v.real(name, value)
        elif name in ("tolfun", "tolx", "timeout"):
            out[name] = v.optional_float(name, value, allow_zero=True)
        elif name == "tolconditioncov":
            out[name] = None if value is None else _condition_limit(name, value)
        elif name == "tolflatfitness":
            out[name] = _count(name, value, 0)
        else:
            raise TypeError(f"unknown stopping criterion `{name}`")
    return out


#: the flat generations in a row that a strategy adapting its step sizes tolerates by default
#: (``tolflatfitness``; pycma's default without integer variables)
FLAT_GENERATIONS = 3


def is_flat(f: FloatArray) -> bool:
    """Return whether a generation's fitness `f` is flat, as pycma counts it.

    Flat: the best value is finite and at least the best 75% (and one) of the population share
    it: the sorted values at 0 and at ``int(0.75 n)`` are equal. Non-finite values sort last.
    """
    s = np.sort(np.where(np.isfinite(f), f, np.inf))
    return bool(np.isfinite(s[0]) and s[0] == s[int(0.75 * s.size)])


def default_stagnation(dim: int, popsize: int) -> int:
    """Return the generations without a new best after which ``tolstagnation`` holds."""
    return int(100 + 100 * dim**1.5 / popsize)


def history_length(dim: int, popsize: int) -> int:
    """Return how many generations of best values ``tolfun`` looks back over (as pycma)."""
    return 10 + math.ceil(30 * dim / popsize)


def holds(
    crit: Criteria,
    *,
    nfev: int,
    generation: int,
    best_f: float,
    fun_range: float,
    stds: FloatArray,
    mean: FloatArray,
    since_improvement: int,
    history_full: bool,
    elapsed: float,
    condition: float = 1.0,
    degenerate: bool = False,
    flat_generations: int = 0,
    dtype: type = np.float64,
) -> dict[str, float]:
    """Return the criteria that hold, each with its threshold.

    `flat_generations` counts the latest generations in a row whose fitness was flat
    (:func:`is_flat`); ``tolflatfitness`` holds when more than its threshold were.

    `condition` is the condition number of the covariance (``conditioncov`` holds above
    ``tolconditioncov``, as in pycma, from the first generation on, as the other criteria
    on the search distribution); `degenerate` says that the distribution is not usable
    (a non-finite mean or step size, or a step size at its limit), which holds at once.
    ``sigma`` holds when a step of every standard deviation no longer moves the mean in the
    candidates' `dtype` (float32 samples collapse long before float64 ones would).
    """
    out: dict[str, float] = {}
    if degenerate or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(stds))):
        out["degenerate"] = float(np.min(stds)) if stds.size else math.nan
    if crit.maxfev is not None and nfev >= crit.maxfev:
        out["maxfev"] = crit.maxfev
    if crit.maxiter is not None and generation >= crit.maxiter:
        out["maxiter"] = crit.maxiter
    if crit.ftarget is not None and best_f <= crit.ftarget:
        out["ftarget"] = crit.ftarget
    if generation == 0:
        # the criteria on the search distribution judge what the updates made of it, so a
        # run evaluates its first generation whatever its start (CR-FM-NES's covariance
        # starts at condition 1 + |v|^2, with its random v)
        return out
    if crit.tolconditioncov is not None and not condition <= crit.tolconditioncov:
        out["conditioncov"] = crit.tolconditioncov
    if crit.tolfun is not None and history_full and fun_range < crit.tolfun:
        out["tolfun"] = crit.tolfun
    if crit.tolx is not None and float(np.max(stds)) < crit.tolx:
        out["tolx"] = crit.tolx
    if crit.tolstagnation is not None and since_improvement >= crit.tolstagnation:
        out["tolstagnation"] = crit.tolstagnation
    if crit.tolflatfitness is not None and flat_generations > crit.tolflatfitness:
        out["tolflatfitness"] = crit.tolflatfitness
    if crit.timeout is not None and elapsed >= crit.timeout:
        out["timeout"] = crit.timeout
    with np.errstate(invalid="ignore", over="ignore"):
        m: npt.NDArray[np.floating[Any]] = mean
        step: npt.NDArray[np.floating[Any]] = stds
        if dtype is not np.float64:
            m, step = mean.astype(dtype), stds.astype(dtype)
            if not np.all(np.isfinite(m)):  # (a mean beyond the dtype's range: in float64)
                m, step = mean, stds
        collapsed = bool(np.all(m + step == m))
    if collapsed:
        out["sigma"] = float(np.max(stds))
    return out
