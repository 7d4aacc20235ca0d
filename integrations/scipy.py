"""``nes``: a NES strategy as a method of :func:`scipy.optimize.minimize`.

scipy hands a callable `method` everything raw (``x0`` as given, bounds in the user's form, the
callback unwrapped) and returns its result untouched, so this adapter does what scipy does for its
own methods: it copies ``x0``, reads every form of bounds, wraps the callback, warns about unknown
options and returns an :class:`~scipy.optimize.OptimizeResult` with scipy's status codes.
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy.optimize import OptimizeResult, OptimizeWarning

from nes_asktell import _validate as v
from nes_asktell._backends import check_workers
from nes_asktell._bounds import Box, parse_bounds
from nes_asktell._evaluate import Evaluator, WorkersLike
from nes_asktell._history import History
from nes_asktell._loop import disp_level
from nes_asktell._restarts import (
    IPOP,
    RESTART_STRATEGIES,
    resolve_restart_strategy,
    restart_count,
)
from nes_asktell._stopping import make_result
from nes_asktell._strategy import CRITERIA, Strategy, resolve_strategy
from nes_asktell._tasks import as_value, block_values
from nes_asktell._typing import ArrayLike, BoundsLike, CommonOptions, FloatArray, OptionValue
from nes_asktell._validate import flag, short

if TYPE_CHECKING:  # the flavour of OptimizeResult that scipy's stubs expect of a method
    from scipy.optimize._minimize import OptimizeResult as MinimizeResult

__all__ = ["nes"]


def nes(
    fun: Callable[..., object],
    x0: ArrayLike,
    args: tuple[object, ...] | object = (),
    *,
    jac: object = None,
    hess: object = None,
    hessp: object = None,
    bounds: BoundsLike = None,
    constraints: object = (),
    callback: Callable[..., object] | None = None,
    strategy: str | type[Strategy] = "xnes",
    sigma0: float | ArrayLike | None = None,
    popsize: int | None = None,
    maxfev: float | None = None,
    maxiter: float | None = None,
    tol: float | None = None,
    rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    workers: WorkersLike = None,
    vectorized: bool = False,
    restarts: int | None = 0,
    restart_strategy: str = "ipop",
    disp: bool | int | None = False,
    **options: OptionValue,
) -> MinimizeResult:
    r"""Minimise `fun` with a Natural Evolution Strategy; a `method` for ``scipy.optimize``.

    Pass it as ``scipy.optimize.minimize(fun, x0, method=nes, options={...})``; the keywords
    below after `callback` are the `options`. It may also be called directly, and it serves as
    the local minimiser of :func:`scipy.optimize.basinhopping` and as the `polish` callable of
    :func:`scipy.optimize.differential_evolution`.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float`` with `x` of shape (d,); with `vectorized`,
        ``fun(X, *args) -> (S,)`` with `X` of shape (d, S) (as in
        ``differential_evolution``, shape (S, 1) or (1, S) is taken too). NaN and inf values
        rank worst.
    x0 : array_like of shape (d,)
        Initial mean of the search distribution (never modified). Outside `bounds` it is clipped
        into them with an :class:`~scipy.optimize.OptimizeWarning`.
    args : tuple
        Extra arguments of `fun` (a non-tuple is wrapped in a tuple, as scipy does).
    jac, hess, hessp : optional
        Not used (NES needs no derivatives); ignored with a RuntimeWarning when given.
    bounds : None, sequence of (low, high) pairs or scipy.optimize.Bounds
        Box constraints; None in a pair, or an infinite value, means no bound (NaN is an
        error). An iterator of pairs, such as ``zip(lower, upper)``, is read as scipy's
        methods read it. Every evaluated point and the returned `x` lie inside the box
        (candidates are reflected into it). The package's one parser reads them, so the
        strategies accept the same forms; a sequence of two pairs at d = 2 is always two
        (low, high) pairs here, as in scipy's own methods (the strategies read a pair reading
        that makes no sense, such as ``[(1, 1), (2, 2)]``, as ``(lower, upper)``).
    constraints : empty
        Only an empty list, tuple, dict or array (or None) is accepted: NES handles no general
        constraints.
    callback : callable, optional
        Called after each generation as ``callback(intermediate_result=res)`` when its only
        parameter is named ``intermediate_result`` (``res`` holds ``x``, ``fun``, ``nfev`` and
        ``nit`` of the best point so far), else as ``callback(xk)``, with copies. Raising
        StopIteration or returning True stops the run (status 99). A
        :class:`nes_asktell.History` records the whole strategy each generation (best and
        median fitness, sigma, mean, condition), as with ``optimize``.
    strategy : str or Strategy subclass
        The search strategy, a registered name in any case (``"xnes"``, ``"snes"``,
        ``"openes"``, see :func:`nes_asktell.strategy_names`) or a class; default ``"xnes"``.
    sigma0 : float or array_like, optional
        Initial step size. Default: per coordinate, a quarter of ``high - low`` where both bounds
        are finite and that quarter is at most 1e100, else ``max(1, |x0_i|) / 2``; SNES takes
        these per coordinate, the other strategies their median. A coordinate whose quarter is
        below 1e-100, the smallest step size (``low == high``, say), is left out: SNES gives it
        the median of the others.
    popsize : int, optional
        Candidates per generation; the strategy's default when omitted (with `restarts`, the
        size of the first run).
    maxfev, maxiter : int or float, optional
        Budgets of evaluations (points) and generations, counted over all restarts. A float is
        rounded down; ``inf`` means no limit. ``nfev`` never exceeds `maxfev`.
    tol : float, optional
        Sets the strategy's `tolfun` (range of recent best values) and `tolx` (largest standard
        deviation of the search distribution) unless those are given; 0 disables both; None
        keeps the strategy's defaults.
    rng : None, int, SeedSequence or Generator
        Source of randomness; an int makes the run reproducible.
    workers : None, int, map-like callable, Executor, dask Client, the ray module or Evaluator
        How a population is evaluated, as for :meth:`nes_asktell.Strategy.optimize` (see
        :doc:`/parallel`). Ignored, with a warning, when `vectorized` is True.
    vectorized : bool
        Evaluate each generation in one call ``fun(X, *args)`` with `X` of shape (d, S), a
        writable copy; it returns the S values, as an array of shape (S,), (S, 1) or (1, S),
        exactly as :meth:`nes_asktell.Strategy.optimize` with ``vectorized=True`` takes them.
    restarts : int or None
        Number of restarts (default 0; None is 0): when a run converges or stagnates, a
        new one starts from a point drawn uniformly in the box where both bounds are finite
        (from `x0` elsewhere, and where the box is wider than 4e100), within the shared
        budgets. With ``restart_strategy="ipop"`` each restart doubles the population
        (:class:`nes_asktell.IPOP`); with ``"bipop"`` `restarts` counts the restarts of the
        large-population regime, and small-population runs come between them
        (:class:`nes_asktell.BIPOP`).
    restart_strategy : {"ipop", "bipop"}
        How `restarts` restarts, in any case; default ``"ipop"``. See :doc:`/restarts`.
    disp : bool, {0, 1, 2} or None
        Log progress through the ``nes_asktell`` logger (printed on stdout for the run), as
        the `disp` of :meth:`nes_asktell.Strategy.optimize`: 1 (or True) a line every few
        generations with elapsed time and evaluations per second, 2 a line every generation,
        0 (or False, or None) nothing.
    **options
        The strategy's own keywords (for example ``learning_rate`` of OpenES) and its stopping
        criteria (``ftarget``, ``tolfun``, ``tolx``, ``tolstagnation``, ``timeout``,
        ``tolconditioncov``, ``tolflatfitness``). Unknown
        options are ignored with an :class:`~scipy.optimize.OptimizeWarning`.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x`` (best point, inside the bounds), ``fun``, ``nfev`` (number of points evaluated,
        which is the number of calls of `fun` unless `vectorized`), ``nit`` (generations),
        ``status`` (0 converged, 1 `maxfev` reached, 2 `maxiter` reached, 3 stagnation or
        ill-conditioning, 4 time limit, 5 a degenerate distribution, 99 stopped by the
        callback), ``success`` (status 0), ``message`` (scipy's wording), the final ``mean``
        (inside the bounds) and ``sigma`` of the search distribution, and
        ``restarts`` (how many were made) and ``popsize`` (of the last run). With `restarts`,
        also ``history``: one record per run (``popsize``, ``nfev``, ``generations``,
        ``best_f``, ``stop``; with ``"bipop"`` also its ``regime``, ``"large"`` or ``"small"``),
        the last run last.

    Raises
    ------
    TypeError, ValueError
        If an argument or option is malformed, or `constraints` is not empty; nothing is
        evaluated then.

    Notes
    -----
    The run is :meth:`nes_asktell.Strategy.optimize` (with `restarts`,
    :meth:`nes_asktell.IPOP.optimize` or :meth:`nes_asktell.BIPOP.optimize`) with scipy's
    conventions around it. With
    an integer `rng` the whole call is deterministic: the same call gives the same result, also
    with `workers`, `vectorized` or `restarts`.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize
    >>> from nes_asktell import nes
    >>> def sphere(x):
    ...     return float(np.sum((x - 1.0) ** 2))
    >>> res = minimize(sphere, np.zeros(3), method=nes, options={"rng": 0})
    >>> res.success, res.message, bool(res.fun < 1e-10)
    (True, 'Optimization terminated successfully.', True)
    >>> print(np.round(res.x, 6))
    [1. 1. 1.]

    Bounds in any form scipy accepts, and a budget of evaluations:

    >>> res = minimize(sphere, [0.0, 0.0], method=nes, bounds=[(None, 0.5), (-1, 1)],
    ...                options={"maxfev": 500, "rng": 0})
    >>> print(np.round(res.x, 3), res.nfev <= 500)
    [0.5 1. ] True
    """
    # ---- validate everything before the first evaluation
    if not callable(fun):
        raise TypeError(f"`fun` must be callable, but got {short(fun)}.")
    x = v.as_vector("x0", x0)
    d = x.size
    args = args if isinstance(args, tuple) else (args,)
    _check_constraints(constraints)
    box = parse_bounds(bounds, d, as_scipy=True)
    cls = resolve_strategy(strategy)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None, but got {short(callback)}.")
    budget_fev = _budget("maxfev", maxfev)
    budget_it = _budget("maxiter", maxiter, minimum=0)
    tol_value = v.optional_float("tol", tol, allow_zero=True)
    vec = flag("vectorized", vectorized)
    # None is how scipy users leave an optional option unset: no progress lines, no restarts
    show = 0 if disp is None else disp_level(disp)
    n_restarts = 0 if restarts is None else restart_count(restarts)
    restarter = RESTART_STRATEGIES[resolve_restart_strategy(restart_strategy)]
    kwargs = _strategy_options(cls, options)
    if tol_value is not None:
        kwargs.setdefault("tolfun", tol_value)
        kwargs.setdefault("tolx", tol_value)
    for name, value in (("jac", jac), ("hess", hess), ("hessp", hessp)):
        if value is not None and value is not False:
            warnings.warn(
                f"Method nes does not use derivative information: `{name}` is ignored.",
                RuntimeWarning,
                stacklevel=3,
            )
    if box is not None and not box.active:
        box = None
    if box is not None and not box.contains(x):
        warnings.warn(
            "Initial guess is not within the specified bounds; it is clipped into them.",
            OptimizeWarning,
            stacklevel=3,
        )
        x = box.clip(x)
    if sigma0 is None:
        sigma0 = _default_sigma0(x, box, per_coordinate=cls.name == "snes")
    if vec and workers is not None and workers != 1:
        warnings.warn("`vectorized` is True, so `workers` is ignored.", UserWarning, stacklevel=3)
        workers = None
    if not isinstance(workers, Evaluator):
        check_workers(workers)  # before the strategy draws from a Generator `rng`
    fun = _Copying(fun)

    # ---- run: the strategy's own loop, or IPOP's or BIPOP's around it
    bnds = None if box is None else box.to_bounds()
    opt: Strategy | IPOP
    if n_restarts:
        opt = restarter(
            cls, x, sigma0, popsize, bounds=bnds, rng=rng, max_restarts=n_restarts, **kwargs
        )
    else:
        opt = cls(x, sigma0, popsize, bounds=bnds, rng=rng, **kwargs)
    res = opt.optimize(
        cast("Callable[..., float]", fun),
        args=args,
        maxfev=budget_fev,
        maxiter=budget_it,
        workers=workers,
        callback=None if callback is None else _scipy_callback(callback),
        disp=show,
        vectorized=vec,
    )
    fun_x, nfev = float(res.fun), int(res.nfev)
    if nfev == 0:
        # maxiter=0 (or a run that stopped before its first generation): as scipy's own
        # methods, report the objective at the initial point (its value read as every
        # generation reads one), so that `fun` is always that of `x`
        point = np.copy(res.x)
        if vec:
            fun_x = float(block_values(fun(point[:, None], *args), 1, fun)[0])
        else:
            fun_x = as_value(fun(point, *args), fun)
        if not math.isfinite(fun_x):  # no finite value: what a run reports (as maxiter=1 does)
            fun_x = math.inf
        nfev = 1
    out = make_result(
        x=np.array(res.x, dtype=np.float64),  # the point `fun` was given (float32 runs too)
        fun=fun_x,
        nfev=nfev,
        nit=int(res.nit),
        stop=res.stop,
        mean=res.mean,
        sigma=res.sigma,
        restarts=int(res.get("restarts", 0)),
        popsize=opt.popsize,
        **({"history": res.history} if n_restarts else {}),
    )
    return cast("MinimizeResult", out)


# ---------------------------------------------------------------------- helpers
class _Copying:
    """``fun`` called with a writable copy of each point, as scipy's own methods do."""

    def __init__(self, fun: Callable[..., object]) -> None:
        self.fun = fun
        self.__name__ = getattr(fun, "__name__", type(fun).__name__)
        # what the package's messages name (the user's function, not this wrapper)
        self.__qualname__ = getattr(fun, "__qualname__", self.__name__)

    def __call__(self, x: FloatArray, *args: object) -> object:
        return self.fun(np.array(x, dtype=np.float64), *args)


if sys.version_info >= (3, 14):
    import annotationlib

    def _signature(f: Callable[..., object]) -> inspect.Signature:
        """Return the signature of `f` without evaluating its annotations, as scipy reads it.

        From Python 3.14 annotations are evaluated when asked for; a callback annotated with a
        name imported only for type checkers would raise NameError in ``inspect.signature``.
        """
        return inspect.signature(f, annotation_format=annotationlib.Format.FORWARDREF)

else:
    _signature = inspect.signature


def _scipy_callback(callback: Callable[..., object]) -> Callable[[OptimizeResult], object]:
    """Adapt the user's callback as scipy's own methods do (with copies of what it sees).

    ``callback(intermediate_result=res)`` when its only parameter has that name (scipy's rule,
    ``optimize._optimize._wrap_callback``), else ``callback(xk)``. It sees the best point and
    the evaluations and generations of the whole run (over all restarts). A
    :class:`~nes_asktell.History` is passed on as it is, so it records the whole strategy
    (sigma, mean, the generation's fitness values), as it does as a callback of ``optimize``.
    """
    if isinstance(callback, History):
        return callback
    try:
        params = set(_signature(callback).parameters)
    except (TypeError, ValueError):  # some builtins have no signature
        params = set()
    if params == {"intermediate_result"}:
        return lambda res: callback(
            intermediate_result=_intermediate(
                {
                    "x": np.array(res.x, dtype=np.float64),
                    "fun": float(res.fun),
                    "nfev": res.nfev,
                    "nit": res.nit,
                }
            )
        )
    return lambda res: callback(np.array(res.x, dtype=np.float64))


def _intermediate(fields: dict[str, Any]) -> OptimizeResult:
    return OptimizeResult(**fields)


def _check_constraints(constraints: object) -> None:
    """Accept None or an empty container; raise ValueError for anything else.

    Empty is what scipy's ``minimize`` reads as no constraints (``np.any(constraints)`` is
    False): an empty list, tuple, dict or array.
    """
    if constraints is None:
        return
    if isinstance(constraints, np.ndarray) and constraints.size == 0:
        return
    if isinstance(constraints, (list, tuple, dict)) and len(constraints) == 0:
        return
    raise ValueError(
        "`constraints` must be empty: method nes handles bounds but no general constraints "
        f"(use a penalty in `fun`, or method 'trust-constr' or 'COBYQA'), but got "
        f"{short(constraints)}."
    )


def _budget(name: str, value: object, minimum: int = 1) -> int | None:
    """Return a budget as an int (floats rounded down; None and inf mean no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number >= {minimum} or None, but got {short(value)}.")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range: no limit, or below the minimum
        number = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    if number == math.inf:
        return None
    if not number >= minimum:  # also catches NaN
        raise ValueError(
            f"`{name}` must be a number >= {minimum} or None, but got {short(value)}."
        )
    return int(value) if isinstance(value, numbers.Integral) else math.floor(number)


#: constructor arguments the adapter sets itself (they are not passed-through options).
_OWN = frozenset({"self", "x0", "sigma0", "popsize", "bounds", "rng", "maxfev", "maxiter"})


def _strategy_options(cls: type[Strategy], options: dict[str, OptionValue]) -> dict[str, Any]:
    """Keep the options `cls` accepts; warn about the others as scipy does."""
    accepted = set(CRITERIA) | set(CommonOptions.__optional_keys__)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                accepted.add(p.name)
    accepted -= _OWN
    unknown = [k for k in options if k not in accepted]
    if unknown:
        warnings.warn(
            f"Unknown solver options: {', '.join(unknown)}", OptimizeWarning, stacklevel=4
        )
    return {k: val for k, val in options.items() if k in accepted}


def _default_sigma0(x: FloatArray, box: Box | None, *, per_coordinate: bool) -> float | FloatArray:
    """Return a quarter of the box width, or ``max(1, |x0_i|) / 2`` where a bound is missing.

    A box so wide that a quarter of it exceeds the largest step size (1e100) counts as no
    bound, and one so narrow that a quarter of it is below the smallest (1e-100) as a fixed
    coordinate: neither is a reason to refuse a `sigma0` the user did not pass.

    Raises
    ------
    ValueError
        If `x0` is so large (beyond 2e100) where no bound holds it that no step size can
        move it; the message asks for `sigma0`.
    """
    if box is None:
        finite, quarter = np.zeros(x.size, dtype=bool), np.zeros(x.size)
    else:
        finite = box.spanned
        with np.errstate(over="ignore"):  # [-1e308, 1e308] is wider than the largest float
            quarter = np.where(finite, box.upper - box.lower, 0.0) / 4.0
    scale = np.where(finite, quarter, np.maximum(1.0, np.abs(x)) / 2.0)
    if np.any(scale > v.SIGMA_MAX):
        i = int(np.flatnonzero(scale > v.SIGMA_MAX)[0])
        raise ValueError(
            f"`x0` is too large for a default `sigma0` (x0[{i}] = {float(x[i])!r}, and a step "
            f"size may be at most {v.SIGMA_MAX}); pass `sigma0`."
        )
    scale = np.where(scale >= v.SIGMA_MIN, scale, 0.0)
    positive = scale[scale > 0]
    fallback = float(np.median(positive)) if positive.size else 1.0
    if per_coordinate:
        return np.where(scale > 0, scale, fallback)
    return fallback
