"""The strategy base class, whole: the ask/tell protocol shared by every NES variant.

:class:`Strategy` holds the constructor of the shared options, ``ask`` and ``tell``, the record
of the run (counters, best-so-far, recent best values), ``stop`` and ``result``, ``optimize``
(through the one run loop of ``_loop``), ``state_dict``/``from_state``, and the narrow methods
that evaluation on other processes needs (:meth:`~Strategy.batch_keys`,
:meth:`~Strategy.replica_state`, :meth:`~Strategy.replay`, :meth:`~Strategy.digest`).

A subclass is one module: it sets ``name`` (which registers it, see :func:`resolve_strategy`),
checks its own options and implements the hooks :meth:`~Strategy._perturb_into`,
:meth:`~Strategy._updated`, :meth:`~Strategy._stds` and :meth:`~Strategy._sigma_value`, plus
its options and state.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar, Unpack

import numpy as np
from scipy.optimize import OptimizeResult

from . import _batch, _noise, _shaping, _stopping, _warn
from . import _validate as v
from ._batch import KeyedBatch, Keys
from ._bounds import Box, parse_bounds
from ._evaluate import WorkersLike
from ._loop import DispLike, run
from ._typing import (
    JSON,
    AppliedUpdate,
    ArrayLike,
    BoundsLike,
    CommonOptions,
    FloatArray,
    LegacyRngLike,
    ShapingLike,
)

S = TypeVar("S", bound="Strategy")

#: the stopping criteria every strategy accepts as keywords.
CRITERIA = (
    "maxfev",
    "maxiter",
    "ftarget",
    "tolfun",
    "tolx",
    "tolstagnation",
    "timeout",
    "tolconditioncov",
    "tolflatfitness",
)


def keyword_options(cls: type[Strategy]) -> list[str]:
    """Return the keyword-only arguments of `cls`'s constructor (``bounds``, ``rng``, ...).

    The stopping criteria (`CRITERIA`), ``threads`` and ``dtype``, which every strategy takes
    through ``**common``, are not among them.
    """
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


#: the most threads a strategy draws its noise with (the `threads` keyword)
MAX_THREADS = 1024
#: the largest population a strategy accepts (from a constructor or a state).
MAX_POPSIZE = 2**18
#: the largest generation and nfev a state may hold (exact in float64: the rates that decay
#: with the generation, such as XNES's ``(1 - c) ** (2 g)``, take it as a float).
MAX_COUNT = 2**53
#: how many standard deviations from the mean a float32 candidate may lie (the largest of 2**31
#: normal draws is about 6.3): a distribution that reaches beyond the float32 range within this
#: many is degenerate (see Strategy._degenerate).
FLOAT32_REACH = 10.0
#: the version of the layout of ``state_dict()``.
STATE_VERSION = 2
#: the entries of a strategy's state that its constructor's arguments set (the rest is where
#: the run has got to, and ``sigma0``, which a restart sets)
CONFIGURATION = (
    "dim",
    "popsize",
    "mirrored",
    "shaping",
    "threads",
    "dtype",
    "bounds",
    "criteria",
    "options",
)
#: with bounds, a box at most 1 / NARROW_RATIO of the widest is narrow: XNES, DXNESIC and CRFMNES
#: shrink its coordinate alone, while the others share one sigma (see Strategy._commit); a
#: strategy with one sigma and no shape keeps the widest box's coordinates at least
#: 1 / NARROW_RATIO of its width (see Strategy._shrink_coordinates).
NARROW_RATIO = 10.0
#: how many applied updates a strategy keeps for the replicas of workers to replay.
APPLIED_KEPT = 4

#: with bounds, a coordinate whose box is narrow beside the others is not shrunk below
#: 1 / SHRINK_RATIO of the largest standard deviation (see Strategy._shared_divisors).
SHRINK_RATIO = 1e4


def floored_divisors(
    stds: FloatArray, by: FloatArray, shared: float, fixed: np.ndarray | None = None
) -> FloatArray:
    """Return the divisors `by` of the standard deviations `stds`, each above `shared` held.

    A coordinate divided by more than `shared` (the divisor of the others, at least 1) is
    not taken below ``1 / SHRINK_RATIO`` of the largest standard deviation left, ``max(stds /
    by)``, nor grown: its divisor becomes ``min(by, max(stds / floor, shared))``. The
    coordinates `fixed` by the box (lower == upper) do not count for the largest: no step size
    is fitted to them, so theirs may grow without end (a fixed coordinate beside boxes of width
    1 let SNES's others grow to 3e13 under ``scale_sigma``).
    """
    if not np.any(by > shared):
        return by
    left = stds / by
    if fixed is not None and not np.all(fixed):
        left = left[~fixed]
    floor = float(np.max(left)) / SHRINK_RATIO
    # A floor that underflowed to 0, or a quotient beyond the float range, bounds nothing: inf
    with np.errstate(divide="ignore", over="ignore"):
        most = stds / floor
    out: FloatArray = np.where(by > shared, np.minimum(by, np.maximum(most, shared)), by)
    return out


#: marks an attribute that did not exist before a commit (see _commit).
_ABSENT = object()
#: every strategy class by its ``name``, filled as the classes are defined.
_REGISTRY: dict[str, type[Strategy]] = {}


def strategy_names() -> list[str]:
    """Return the names of the registered strategies, sorted (``["openes", "snes", ...]``)."""
    return sorted(_REGISTRY)


def resolve_strategy(strategy: str | type[Strategy]) -> type[Strategy]:
    """Return the strategy class that `strategy` names (any case) or is.

    This is the one way every face of the package (IPOP, the scipy method, the Optuna sampler,
    ``Strategy.from_state``, the benchmarks) turns a name into a class.

    Raises
    ------
    ValueError
        If no registered strategy has that name.
    TypeError
        If `strategy` is neither a string nor a Strategy subclass, or is an abstract one.

    Examples
    --------
    >>> from nes_asktell import XNES, resolve_strategy
    >>> resolve_strategy("XNES") is XNES
    True
    """
    if isinstance(strategy, str):
        cls = _REGISTRY.get(strategy.lower())
        if cls is None:
            raise ValueError(
                f"`strategy` must be one of {strategy_names()} or a Strategy subclass, "
                f"but got {v.short(strategy)}."
            )
        return cls
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        if inspect.isabstract(strategy):
            missing = sorted(getattr(strategy, "__abstractmethods__", ()))
            raise TypeError(
                f"`strategy` must be a Strategy subclass that can be made, but "
                f"{strategy.__name__} is abstract (it lacks {', '.join(missing)})."
            )
        return strategy
    raise TypeError(
        f"`strategy` must be one of {strategy_names()} or a Strategy subclass, "
        f"but got {v.short(strategy)}."
    )


def no_batch_error(generation: int) -> RuntimeError:
    """Return the error of a tell without a pending batch, after `generation` tells."""
    what = "the same batch twice" if generation else "tell before ask"
    return RuntimeError(
        f"tell() needs the candidates of a pending ask() ({what}); call ask() first."
    )


def default_popsize(dim: int) -> int:
    """Return ``4 + floor(3 ln d)`` (Wierstra et al. 2014, Table 1)."""
    return 4 + math.floor(3 * math.log(dim))


def check_popsize(popsize: object, dim: int, mirrored: bool) -> int:
    """Return `popsize` checked, or the default for `dim` (made even with `mirrored` sampling).

    This is the one place where a population is made even for mirrored sampling.
    """
    if popsize is None:
        lam = default_popsize(dim)
        return lam + lam % 2 if mirrored else lam
    lam = v.integer("popsize", popsize, minimum=2)
    if lam > MAX_POPSIZE:
        raise ValueError(
            f"`popsize` must be an integer <= {MAX_POPSIZE}, but got {v.short(popsize)}."
        )
    if mirrored and lam % 2:
        raise ValueError(f"`popsize` must be even with mirrored sampling, but got {lam}.")
    return lam


def check_not_one_pair(popsize: object, mirrored: object, default: bool, what: str) -> None:
    """Raise ValueError if the population is a single mirrored pair (`popsize` 2, mirrored).

    For a strategy whose step-size and shape updates are sums of ``u_k h(z_k)`` with ``h``
    even (DXNESIC, CRFMNES, XNES and SNES without CSA): over the pair ``(z, -z)`` the two utilities
    sum to 0, so those updates are exactly 0 and sigma would stay at sigma0 for ever. `what`
    names the strategy; `default` is its ``default_mirrored``. Called before anything is
    drawn; a malformed `popsize` or `mirrored` is left to the usual checks.
    """
    pair = default if mirrored is None else mirrored
    if not (isinstance(pair, (bool, np.bool_)) and bool(pair)):
        return
    if isinstance(popsize, numbers.Real) and not isinstance(popsize, bool) and popsize == 2:
        raise ValueError(
            f"`popsize` must be at least 4 with mirrored sampling in {what}: its step size "
            "learns nothing from a single mirrored pair (z, -z), so sigma would stay at "
            "sigma0 for ever; use popsize >= 4 or mirrored=False, but got 2."
        )


def even_popsize(popsize: int, mirrored: bool) -> int:
    """Return `popsize` rounded up to even when `mirrored` (a grown IPOP population, say)."""
    return popsize + popsize % 2 if mirrored else popsize


def _check_dtype(dtype: object) -> type[np.floating]:
    """Return np.float64 (the default) or np.float32, or raise naming `dtype`.

    Anything numpy reads as one of the two is taken (``"f4"``, ``np.float32``, ...); whatever
    numpy fails to read, however it fails (TypeError, ValueError, SyntaxError from a string of
    too many digits, ...), raises the ValueError naming `dtype`.
    """
    try:
        name = np.dtype("float64" if dtype is None else dtype).name  # type: ignore[call-overload]
    except Exception:  # numpy's parser raises many kinds, none naming the argument
        name = ""
    if name not in ("float64", "float32"):
        raise ValueError(f"`dtype` must be 'float64' or 'float32', but got {v.short(dtype)}.")
    return np.float64 if name == "float64" else np.float32


class Strategy(ABC):
    """Base class of the NES strategies: ask/tell, the record of a run, stopping, state.

    Subclasses implement how a perturbation is scaled (:meth:`_perturb_into`), the update of
    the search distribution from the utilities (:meth:`_updated`, which returns the new values
    and changes nothing), and the extra state they carry.

    Every strategy also takes the keywords ``threads`` (threads that draw counter-based noise
    and build the candidates; the results are bit-identical for any count; default 1, as
    None; at most 1,024) and ``dtype``
    (``"float64"``, the default, or ``"float32"``, which halves the memory of the noise and of
    the candidates; the mean and the step sizes stay float64; any other spelling numpy reads as
    one of the two, such as ``np.float32`` or ``"f4"``, is taken too, and anything else raises
    a ValueError naming ``dtype``).

    The stopping criteria are keywords too; :meth:`stop` returns those that hold, each with
    its threshold, and None switches one off: ``maxfev``, ``maxiter``, ``ftarget`` and
    ``timeout`` (seconds since the construction or the load; all four off by default),
    ``tolfun`` (the range of the recent best values; default 1e-12), ``tolx`` (the largest
    standard deviation of the search distribution; default 1e-12), ``tolstagnation``
    (generations without a new best; default ``100 + 100 d**1.5 / popsize``),
    ``tolconditioncov`` (the condition number of the covariance, above 1, from the first
    generation on: CR-FM-NES's starts at ``1 + |v|**2``, about 2; default 1e14) and
    ``tolflatfitness`` (more than that many flat generations in a row, whose best value ties
    with the value at rank ``3 popsize / 4``; default 3, off for OpenES, whose step size does
    not adapt); the counts (``maxfev``, ``maxiter``, ``tolstagnation``, ``tolflatfitness``)
    are at most ``2**63 - 1``, so a state stays JSON. ``stop()`` also reports ``degenerate``
    (a non-finite distribution, or a step size an update took to its limit 1e-100 or 1e100: a
    run that starts there runs its first generation) and ``sigma`` (the step size no longer
    changes the mean), which have no threshold to set. A coordinate the bounds fix (lower ==
    upper) is left out of ``tolx``, ``sigma`` and ``tolconditioncov`` (and of
    :attr:`axis_ratio`): its candidates are its value, whatever its step size.

    Examples
    --------
    The protocol, shown with :class:`~nes_asktell.OpenES` (every strategy behaves alike):

    >>> import json
    >>> import numpy as np
    >>> from nes_asktell import OpenES, Strategy
    >>> def f(x):
    ...     return float(np.sum(x**2))
    >>> es = OpenES(np.ones(3), sigma0=0.1, rng=0, maxiter=5)
    >>> while not es.stop():
    ...     X = es.ask()
    ...     es.tell(X[::-1], [f(x) for x in X[::-1]])  # rows in any order
    >>> es.stop(), es.generation, es.nfev
    ({'maxiter': 5}, 5, 40)
    >>> X = es.ask()  # checkpoint between ask and tell, through JSON
    >>> copy = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
    >>> type(copy).__name__, bool(np.array_equal(copy.ask(), X))
    ('OpenES', True)
    """

    #: the registry name, also ``state_dict()['strategy']``; setting it registers the class.
    name: ClassVar[str] = ""
    #: whether `rng` may be a legacy RandomState (OpenES, for the 2017 seed configuration).
    allows_legacy_rng: ClassVar[bool] = False
    #: whether perturbations come in mirrored pairs unless `mirrored` says otherwise.
    default_mirrored: ClassVar[bool] = False
    #: the fitness shaping unless `shaping` says otherwise.
    default_shaping: ClassVar[str] = "nes"
    #: whether the update adapts the step sizes (then, with bounds, they are kept within the
    #: box's widths; see :meth:`_commit`); OpenES follows its own schedule instead.
    adapts_sigma: ClassVar[bool] = True
    #: whether every candidate is ``mean + scale * z`` for a diagonal scale (OpenES, SNES), so
    #: that workers can rebuild it from its noise key (:meth:`batch_keys`); a full or low-rank
    #: shape (XNES, DX-NES-IC, CR-FM-NES) is not, even where it is still the identity.
    diagonal_rows: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return
        if not isinstance(name, str) or name != name.lower():
            raise TypeError(f"`{cls.__name__}.name` must be a lower-case string, not {name!r}.")
        held = _REGISTRY.get(name)
        if held is not None and (held.__module__, held.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ValueError(
                f"the strategy name {name!r} of {cls.__qualname__} is taken by "
                f"{held.__module__}.{held.__qualname__}."
            )
        _REGISTRY[name] = cls

    def __init__(
        self,
        x0: ArrayLike,
        sigma0: float | ArrayLike,
        popsize: int | None = None,
        *,
        bounds: BoundsLike = None,
        rng: LegacyRngLike = None,
        mirrored: bool | None = None,
        shaping: ShapingLike | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        unknown = sorted(set(common) - {*CRITERIA, "threads", "dtype"})
        if unknown:
            raise TypeError(
                f"unknown option `{unknown[0]}` = {v.short(common[unknown[0]])}; "  # type: ignore[literal-required]
                f"{type(self).__name__} takes the keywords {keyword_options(type(self))}, "
                f"the stopping criteria {list(CRITERIA)}, `threads` and `dtype`."
            )
        mean = v.as_vector("x0", x0)
        dim = mean.size
        self._sigma0 = self._check_sigma0(sigma0, dim)
        self._mirrored = v.flag(
            "mirrored", self.default_mirrored if mirrored is None else mirrored
        )
        lam = check_popsize(popsize, dim, self._mirrored)
        self._check_sizes(dim, lam)
        threads = common.get("threads")
        self._threads = (
            1 if threads is None else v.integer("threads", threads, minimum=1, maximum=MAX_THREADS)
        )
        self._dtype = _check_dtype(common.get("dtype"))
        self._box: Box | None = parse_bounds(bounds, dim)
        self._shaping_spec: ShapingLike = self.default_shaping if shaping is None else shaping
        self._shape_fn = _shaping.resolve(self._shaping_spec)
        crit = _stopping.check_criteria(
            **{k: common[k] for k in CRITERIA if k in common}  # type: ignore[literal-required]
        )
        # after the checks: it draws from a Generator `rng`, which a rejected call leaves intact
        self._noise = _noise.make_noise(
            rng, allow_legacy=self.allows_legacy_rng, threads=self._threads
        )
        crit.setdefault("tolfun", 1e-12)
        crit.setdefault("tolx", 1e-12)
        if "tolstagnation" not in crit:  # (None given: off, as for every criterion)
            crit["tolstagnation"] = _stopping.default_stagnation(dim, lam)
        if "tolflatfitness" not in crit and self.adapts_sigma:
            crit["tolflatfitness"] = _stopping.FLAT_GENERATIONS
        self._crit = _stopping.Criteria(**crit)  # type: ignore[arg-type]
        self._dim = dim
        self._popsize = lam
        self._mean = mean if self._box is None else self._box.clip(mean)
        self._start_record(self._mean.copy())
        # The pending batch: the noise of the latest ask and its candidates.
        self._Zh: FloatArray | None = None
        self._X: FloatArray | None = None
        # The read-only view of it that ask() hands out (the same object until tell).
        self._X_view: FloatArray | None = None
        self._noise_before_ask: JSON | None = None
        # Batches told and possibly free for reuse (see _batch.take_buffer).
        self._spare: list[FloatArray] = []
        # The latest applied updates, (generation, u or None when skipped, finite values): the
        # replicas of workers replay them (see recent_updates). Not state.
        self._applied: list[AppliedUpdate] = []
        # the number of finite fitness values of the update being computed (see _checked_update)
        self._finite_told = lam
        # the shape weights of the update being computed, or None (see _shape_weights)
        self._shape_told: FloatArray | None = None

    # ------------------------------------------------------------------ hooks for subclasses
    def _check_sigma0(self, sigma0: object, dim: int) -> FloatArray | float:
        """Return `sigma0` checked: a step size, or one per coordinate (a (d,) array).

        Each must lie in [``SIGMA_MIN``, ``SIGMA_MAX``] = [1e-100, 1e100] (see ``_validate``).
        """
        return v.step_sizes("sigma0", sigma0, dim)

    @classmethod
    def _check_sizes(cls, dim: int, popsize: int) -> None:
        """Raise ValueError if the arrays of a (`dim`, `popsize`) strategy would be too large.

        Called before anything of that size is allocated; a subclass that holds more (XNES's
        (d, d) matrix) extends it.
        """
        v.check_size("popsize", dim * popsize, "dim * popsize")

    @abstractmethod
    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        """Write the scaled perturbations of the noise rows `Zh` into `out` (same shape)."""

    @abstractmethod
    def _updated(self, u: FloatArray, Zh: FloatArray) -> dict[str, object]:
        """Return the attributes the update from utilities `u` changes, with their new values.

        `u` is aligned with the asked rows, `Zh` holds the noise rows they were built from.
        Nothing is changed here: the caller commits the returned values at once.
        """

    @abstractmethod
    def _stds(self) -> FloatArray:
        """Return the standard deviation of the search distribution along each coordinate."""

    @abstractmethod
    def _sigma_value(self) -> float | FloatArray:
        """Return the public ``sigma``."""

    def _options(self) -> JSON:
        """Return the subclass's constructor keywords (plain data) for ``state_dict``."""
        return {}

    def _algo_state(self) -> JSON:
        """Return the subclass's dynamic state as plain data."""
        return {}

    def _load_algo_state(self, state: JSON) -> None:
        """Restore :meth:`_algo_state` output; raise KeyError/TypeError/ValueError if malformed."""
        return None

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Number of dimensions d."""
        return self._dim

    @property
    def popsize(self) -> int:
        """Number of candidates per generation (lambda)."""
        return self._popsize

    @property
    def mean(self) -> FloatArray:
        """A copy of the mean of the search distribution.

        With bounds it lies in the box: after each update it is projected onto the box
        (clipped), and the candidates around it are reflected into the box (the step sizes
        of a strategy that adapts them stay within the box's widths, see :meth:`_commit`).
        On a noisy problem it is the better estimate of the optimum; ``best`` is the best
        candidate evaluated, and its value may be lucky noise.
        """
        return self._mean.copy()

    @property
    def sigma(self) -> float | FloatArray:
        """The global step size (SNES: the per-coordinate step sizes, a copy)."""
        return self._sigma_value()

    @property
    def stds(self) -> FloatArray:
        """The standard deviation of the search distribution along each coordinate (a copy).

        The square roots of the diagonal of its covariance: ``sigma * |row i of B|`` for XNES,
        ``sigma`` for SNES. Candidates of a box are reflected into it, so their spread may be
        smaller than this near a wall.
        """
        return np.array(self._stds(), dtype=np.float64)

    @property
    def mirrored(self) -> bool:
        """Whether perturbations come in antithetic pairs (z, -z)."""
        return self._mirrored

    @property
    def bounds(self) -> tuple[FloatArray, FloatArray] | None:
        """The (lower, upper) box, or None."""
        return None if self._box is None else (self._box.lower.copy(), self._box.upper.copy())

    @property
    def dtype(self) -> np.dtype[np.floating]:
        """The dtype of the candidates: float64, or float32 with ``dtype="float32"``."""
        return np.dtype(self._dtype)

    @property
    def criteria(self) -> JSON:
        """The stopping thresholds by name (None: that criterion is off)."""
        return self._crit.state_dict()

    @property
    def axis_ratio(self) -> float:
        """The ratio of the longest to the shortest axis of the search distribution.

        The square root of the condition number of its covariance (the number
        ``tolconditioncov`` bounds): ``cond(B)`` for XNES and DXNESIC, that of
        ``D (I + v v^T) D`` for CRFMNES, ``max(sigma) / min(sigma)`` for SNES and per-coordinate
        step sizes of OpenES, 1 for a scalar step size; inf beyond the float range. XNES and
        DXNESIC compute it by a singular value decomposition, O(d^3); CRFMNES in O(d).
        """
        return math.sqrt(self._condition())

    @property
    def generation(self) -> int:
        """Number of completed tells."""
        return self._generation

    @property
    def pending(self) -> bool:
        """Whether a batch is asked and not yet told: what :meth:`tell` needs."""
        return self._X is not None and self._Zh is not None

    @property
    def nfev(self) -> int:
        """Number of fitness values evaluated and told so far."""
        return self._nfev

    @property
    def best(self) -> tuple[FloatArray, float]:
        """The best candidate told so far and its raw fitness (inf before any finite value)."""
        return self._best_x.copy(), self._best_f

    # ------------------------------------------------------------------ ask / tell
    @property
    def _n_noise(self) -> int:
        return self._popsize // 2 if self._mirrored else self._popsize

    def ask(self) -> FloatArray:
        """Sample a population.

        Returns
        -------
        X : ndarray of shape (popsize, dim)
            The candidates, a read-only view (copy it to change it), float64 (float32 with
            ``dtype="float32"``). Asking again before ``tell`` returns the same candidates.

        Notes
        -----
        The strategy keeps its own read-only copy of the batch, and ``tell`` checks the rows
        it is told against that copy: neither the view returned nor its ``base`` can be made
        writeable, and a row that ``ask`` did not return is rejected, whatever was done to the
        array.

        A later ``ask`` may reuse the memory of a told batch, but only once nothing refers to
        it any more (no variable, no view): a batch you hold never changes.

        An ``ask`` that fails (a KeyboardInterrupt while a large batch is built, a
        MemoryError) changes nothing: asked again, it returns the batch it would have.
        """
        if self._X is not None:
            if self._X_view is None:
                self._X_view = self._X.view()
            return self._X_view
        noise_state = self._noise.state_dict() if self._noise.kind == "sequential" else None
        Zh = self._noise_buffer()
        # A told batch nothing else holds, or new memory (see _batch.take_buffer).
        X = _batch.take_buffer(self._spare, (self._popsize, self._dim), self._dtype)
        try:
            _batch.fill(
                X,
                Zh,
                self._generation,
                self._noise,
                self._perturb_into,
                self._mean,
                self._box,
                self._mirrored,
                self._threads,
            )
        except BaseException:
            # An ask that fails (Ctrl-C while a large batch is built) changes nothing: a stream
            # drawn in sequence goes back to where it was, so that the ask asked again draws
            # the same rows (the run then went on from other numbers than an uninterrupted one)
            if noise_state is not None and isinstance(self._noise, _noise.SequentialNoise):
                self._noise.restore(noise_state)
            raise
        self._X = _batch.seal(X)
        self._noise_before_ask = noise_state
        self._X_view = self._X.view()
        return self._X_view

    def _noise_buffer(self) -> FloatArray:
        """Return the buffer of the noise rows, (re)allocated to the current shape and dtype."""
        shape = (self._n_noise, self._dim)
        if self._Zh is None or self._Zh.shape != shape or self._Zh.dtype != self._dtype:
            self._Zh = np.empty(shape, dtype=self._dtype)
        return self._Zh

    def tell(
        self, solutions: ArrayLike, fitness: ArrayLike, *, evaluated: int | None = None
    ) -> None:
        """Update the search distribution from the fitness of the latest candidates.

        Parameters
        ----------
        solutions : array_like of shape (popsize, dim)
            The rows returned by the latest :meth:`ask`, in any order.
        fitness : array_like of shape (popsize,)
            Their fitness values, lower is better. NaN and inf rank worst; when every value is
            non-finite the update is skipped with a :class:`NESWarning`.
        evaluated : int, optional
            How many of the values were evaluated, counted in :attr:`nfev`; default all. A run
            whose budget ends inside a generation tells NaN for the rest.

        Raises
        ------
        RuntimeError
            If there is no batch to tell (:attr:`pending` is False: tell before ask, or the
            same batch twice).
        TypeError, ValueError
            If `solutions` or `fitness` is malformed: a row that is not one of the candidates
            of the latest ``ask`` (the rows are checked against the strategy's own copy of the
            batch, whatever was done to the array ``ask`` returned; rows of a wider float type,
            float64 told for a float32 batch, must equal the candidates exactly, not only round
            to them), or a value that is not a real number (None, bool, a string, a complex
            number).
        FloatingPointError
            If the update overflows or is not finite (absurd learning rates, say); the message
            names what overflowed and the learning rates.

        Notes
        -----
        A failing ``tell`` changes nothing, whatever the cause (the errors above, MemoryError,
        KeyboardInterrupt): the update and the record are computed first and committed at
        once, and the batch stays pending, so the same ``tell`` can be retried.
        """
        if self._X is None or self._Zh is None:  # (not pending)
            raise no_batch_error(self._generation)
        n_evaluated = (
            self._popsize
            if evaluated is None
            else v.integer("evaluated", evaluated, minimum=0, maximum=self._popsize)
        )
        f_told = v.fitness_vector(fitness, self._popsize)
        v.real_rows(solutions)
        perm = _batch.match_rows(self._X, solutions)
        f = f_told if perm is None else np.empty_like(f_told)
        if perm is not None:
            f[perm] = f_told
        finite = np.isfinite(f)
        u = _shaping.apply(self._shape_fn, f) if finite.any() else None
        # Everything the tell changes is computed in locals and checked, then committed in one
        # step: a failure anywhere before (bad input, an overflow, MemoryError,
        # KeyboardInterrupt) leaves the strategy as it was, with the batch still pending.
        n_finite = int(finite.sum())
        w_shape = None if u is None else self._shape_weights(f, u)
        new = None if u is None else self._checked_update(u, self._Zh, n_finite, w_shape)
        X = self._X
        if new is None:
            _warn.warn(
                f"generation {self._generation}: every fitness value is non-finite; "
                "the update is skipped.",
                stacklevel=2,
            )
            new = {}
        kept = self._applied[-(APPLIED_KEPT - 1) :]
        new.update(self._recorded(f, finite, X))
        new.update(
            {
                "_nfev": self._nfev + n_evaluated,
                "_applied": [
                    *kept,
                    (self._generation, None if u is None else u.copy(), n_finite, w_shape),
                ],
                "_generation": self._generation + 1,
                "_X": None,
                "_X_view": None,
                "_noise_before_ask": None,
                # Keep the told batch for reuse by a later ask (at most two: the caller's
                # latest one and one that is free again).
                "_spare": [*self._spare[-1:], _batch.unseal(X)],
            }
        )
        self._commit(new)

    def _commit(self, new: dict[str, object]) -> None:
        """Commit an update's checked values at once, then fit the step sizes to the box.

        With bounds, the step sizes may not outgrow the box (:meth:`_shrink_coordinates`):
        SNES scales each coordinate's own down to the box's width there, but not below
        1 / ``SHRINK_RATIO`` of the largest (see below). XNES, DXNESIC and
        CRFMNES (one sigma and a shape) scale sigma down by the largest excess over its width
        of a coordinate whose box is wider than 1 / ``NARROW_RATIO`` of the widest (so with
        equal widths only sigma changes, as before), and shrink a coordinate with a narrower
        box alone, down to its width: XNES and DXNESIC scale the rows of B (``B <- D B``,
        D diagonal, then det B = 1 again with the factor moved into sigma), CRFMNES its
        diagonal D the same way; the correlations are kept. Beyond the widths the reflected
        candidates fill the box almost uniformly, so the ranking says next to nothing, while
        the unbounded search space holds a mirror image of the box every two widths: a
        search that grew past it drifted among the images, and its mean, projected onto the
        box, landed on walls far from the optimum (on [0, 1]^2 with the optimum in a corner,
        9 of 20 XNES runs from the opposite corner stalled with sigma at 14 to 3e5).

        A narrow coordinate is shrunk alone so that it neither freezes the others nor stays
        far wider than its box. Scaling sigma by its excess held every coordinate's standard
        deviation below the narrow width (a box of width 1e-6 in one coordinate and 10 in two
        others: XNES, DXNESIC and CRFMNES stalled far from the optimum). Scaling sigma by at
        most ten times the widest box's excess (the rule before this one) left the narrow
        coordinate hundreds of times wider than its box: its candidates landed at random in
        it, its term of the objective ranked them with noise, and the shape thinned the wrong
        coordinate (width 1e-3, the objective scaled to the box: 40 of 40 XNES runs ended by
        ``conditioncov`` at f = 10 to 50; now 5). A narrow coordinate is not shrunk below
        1 / ``SHRINK_RATIO`` of the largest standard deviation, so the box alone does not
        make the covariance ill-conditioned before the others have converged (nor, for XNES,
        does B pass ``COND_B_MAX``). Without bounds, and while no coordinate bounded on both
        sides exceeds its width, nothing is changed.

        A failure while fitting (MemoryError, KeyboardInterrupt) restores the strategy as it
        was: the commit is whole or nothing.
        """
        before = {key: self.__dict__.get(key, _ABSENT) for key in new}
        self.__dict__.update(new)
        try:
            fitted = self._fitted_to_box()
        except BaseException:
            for key, value in before.items():
                if value is _ABSENT:
                    self.__dict__.pop(key, None)
                else:
                    self.__dict__[key] = value
            raise
        self.__dict__.update(fitted)

    def _fitted_to_box(self) -> dict[str, object]:
        """Return the values that keep each coordinate's standard deviation within the box.

        Empty without bounds, for a strategy that does not adapt its step sizes, and when no
        coordinate bounded on both sides exceeds its width; otherwise what
        :meth:`_shrink_coordinates` returns for the excesses.
        """
        excess = self._excess() if self.adapts_sigma else None
        if excess is None or not float(np.max(excess)) > 1.0:  # a NaN: never (checked update)
            return {}
        return self._shrink_coordinates(excess)

    def _shrink_coordinates(self, excess: FloatArray) -> dict[str, object]:
        """Return the new values that fit the standard deviations to the box.

        `excess` holds each coordinate's standard deviation over its box's width (0 where a
        bound is missing), at least one above 1. Nothing is changed here: :meth:`_commit`
        stores the values returned. This default is for a strategy whose only step size is
        one sigma: it scales sigma down by the largest excess, but not so far that the
        coordinates of the widest box keep a standard deviation below 1 / ``NARROW_RATIO`` of
        its width. A strategy that can shrink coordinates alone overrides it (SNES by its
        own rule, those with a shape through :meth:`_shared_divisors`).
        """
        if self._box is None:  # never reached: called with bounds only
            return {}
        width = self._box.widths
        bounded = width < math.inf
        widest = bounded & (width == np.max(width[bounded]))
        factor = min(float(np.max(excess)), NARROW_RATIO * float(np.max(excess[widest])))
        if not factor > 1.0:
            return {}
        return {"_sigma": max(float(self.__dict__["_sigma"]) / factor, v.SIGMA_MIN)}

    def _shared_divisors(self, excess: FloatArray) -> FloatArray:
        """Return by how much to divide each coordinate's standard deviation (each at least 1).

        For a strategy with one sigma and a shape (see :meth:`_commit`): the coordinates whose
        box is wider than 1 / ``NARROW_RATIO`` of the widest, and those not bounded on both
        sides, share one divisor, the largest of their excesses (at least 1: sigma alone is
        scaled and the shape is kept); a coordinate with a narrower box is divided by its own
        excess if that is larger, but not below ``1 / SHRINK_RATIO`` of the largest standard
        deviation left (nor below what it already is): until the others have converged so
        far, the box alone would make the covariance ill-conditioned.
        """
        if self._box is None:  # never reached: called with bounds only
            return np.ones_like(excess)
        width = self._box.widths
        bounded = width < math.inf
        # (divided, not multiplied: a finite width past 1.8e307 times 10 would overflow)
        narrow = bounded & (width <= np.max(width[bounded]) / NARROW_RATIO)
        shared = max(1.0, float(np.max(excess[~narrow])))  # the widest box is never narrow
        by = np.where(narrow, np.maximum(excess, shared), shared)
        return floored_divisors(self._stds(), by, shared, self._box.fixed)

    def _checked_update(
        self,
        u: FloatArray,
        Zh: FloatArray,
        n_finite: int,
        w_shape: FloatArray | None = None,
    ) -> dict[str, object]:
        """Return :meth:`_updated`'s new values, checked: finite, `_sigma` clamped to its range.

        With bounds, the new mean is projected onto the box (clipped). `n_finite`, the number
        of finite fitness values told, is ``_finite_told`` while :meth:`_updated` runs (the
        number of feasible candidates of DXNESIC and CRFMNES with `implicit_constraints`),
        and `w_shape`, the weights of :meth:`_shape_weights`, is ``_shape_told``.

        Raises
        ------
        FloatingPointError
            If the update overflows or is not finite, naming `tell`, what failed and the
            learning rates; nothing is changed.
        """
        self._finite_told, self._shape_told = n_finite, w_shape
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                new = self._updated(u, Zh)
        except (OverflowError, FloatingPointError, np.linalg.LinAlgError) as exc:
            raise FloatingPointError(
                f"`tell` could not update the distribution: {exc}{self._rates()}."
            ) from exc
        finally:  # (meaningful during an update only)
            self._finite_told, self._shape_told = self._popsize, None
        if self._box is not None and isinstance(new.get("_mean"), np.ndarray):
            # The mean stays in the box: projected onto it (a projected gradient step; a
            # reflection would bounce a mean that the gradient pushes against a wall).
            new["_mean"] = self._box.clip(np.asarray(new["_mean"], dtype=np.float64))
        for key, value in new.items():
            if key == "_sigma":
                new[key] = self._clamped_sigma(value)
            elif isinstance(value, (float, np.ndarray)) and not np.all(np.isfinite(value)):
                raise FloatingPointError(
                    f"`tell` could not update the distribution: {key.lstrip('_')} "
                    f"overflowed to a non-finite value{self._rates()}."
                )
        return new

    def _clamped_sigma(self, value: object) -> object:
        """Return the new sigma clipped to [SIGMA_MIN, SIGMA_MAX]; raise if it is not finite."""
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr) & (arr > 0.0)):
            what = "inf" if np.any(arr == np.inf) else ("0" if np.any(arr == 0.0) else "nan")
            verb = "underflowed" if what == "0" else "overflowed"
            raise FloatingPointError(
                f"`tell` could not update the distribution: sigma {verb} to {what}{self._rates()}."
            )
        out = np.clip(arr, v.SIGMA_MIN, v.SIGMA_MAX)
        return out if isinstance(value, np.ndarray) else float(out)

    def _rates(self) -> str:
        """Return the numeric options (learning rates and the like) as `` (name=value, ...)``.

        Empty for a strategy without numeric options (DXNESIC, CRFMNES).
        """
        opts = self._options()
        text = ", ".join(
            f"{k}={val!r}"
            for k, val in opts.items()
            if isinstance(val, (int, float)) and not isinstance(val, bool)
        )
        return f" ({text})" if text else ""

    # ------------------------------------------------------------------ helpers for updates
    def _noise_sum(self, Zh: FloatArray, u: FloatArray) -> FloatArray:
        """Return ``sum_k u_k z_k`` over the asked rows (z_k are the unscaled perturbations)."""
        return _batch.noise_sum(Zh, u, self._mirrored)

    def _noise_sq_sum(self, Zh: FloatArray, w: FloatArray) -> FloatArray:
        """Return ``sum_j w_j Zh_j**2`` (element-wise squares) for weights `w` over the noise rows.

        Computed in column blocks, so no (rows, d) temporary is made; the blocks are fixed,
        so the result does not depend on the thread count. Use with :meth:`_even_weights`.
        """
        return _batch.noise_sq_sum(Zh, w, self._noise, self._threads)

    def _has_shape_weights(self) -> bool:
        """Return whether :meth:`_shape_weights` gives weights (XNES with `active`)."""
        return False

    def _shape_weights(self, f: FloatArray, u: FloatArray) -> FloatArray | None:
        """Return per-sample weights of the shape update other than the utilities `u`, or None.

        `f` holds the fitness values told, in row order. None (the default): the shape is
        updated from `u`, as everything else. XNES with `active` weights the worse half by
        rank, which the utilities (tied there) do not tell; the weights are recorded with the
        update (:meth:`recent_updates`) so that replicas replay it.
        """
        return None

    def _even_weights(self, u: FloatArray) -> FloatArray:
        """Weights w with ``sum_k u_k h(z_k) = sum_j w_j h(Zh_j)`` for every even function h."""
        m = self._n_noise
        return u[:m] + u[m:] if self._mirrored else u

    # ------------------------------------------------------------------ the record of a run
    def _start_record(self, best_x: FloatArray) -> None:
        """Start an empty record: generation 0, no evaluation, `best_x` the best (fitness inf)."""
        self._generation = 0
        self._nfev = 0
        self._best_x = best_x
        self._best_f = math.inf
        self._fhist: list[float] = []
        self._last_range = math.inf
        self._since_improvement = 0
        self._flat_generations = 0
        self._t0 = time.monotonic()

    def _recorded(self, f: FloatArray, finite: np.ndarray, X: FloatArray) -> dict[str, object]:
        """Return the record after a told generation (fitness `f` of the rows `X`).

        The values are returned, not stored: ``tell`` commits them with the update.
        """
        if not finite.any():
            # A generation without a finite value is no improvement: tolstagnation still counts,
            # so a run whose objective only returns NaN ends instead of looping forever.
            return {"_since_improvement": self._since_improvement + 1, "_flat_generations": 0}
        i = int(np.argmin(np.where(finite, f, np.inf)))
        fmin = float(f[i])
        out: dict[str, object] = {}
        if fmin < self._best_f:
            out.update(_best_f=fmin, _best_x=X[i].copy(), _since_improvement=0)
        else:
            out["_since_improvement"] = self._since_improvement + 1
        keep = _stopping.history_length(self._dim, self._popsize)
        out["_fhist"] = [*self._fhist, fmin][-keep:]
        with np.errstate(over="ignore"):  # values +-1.8e308 apart: the range is inf
            out["_last_range"] = float(np.ptp(f[finite]))
        out["_flat_generations"] = self._flat_generations + 1 if _stopping.is_flat(f) else 0
        return out

    def scale_sigma(self, factor: float) -> None:
        """Multiply the step size (every coordinate's, for a diagonal one) by `factor`.

        For rules outside the update that raise or lower the spread, such as uncertainty
        handling (:class:`~nes_asktell.NoiseHandler`) or pycma's ``es.sigma *= factor``. The
        result is clipped to the range every update keeps sigma in. With bounds, a raise does
        not take the spread past the box: a strategy that adapts its step sizes fits them to
        the box's widths as after each :meth:`tell` (see :meth:`_commit`), and OpenES raises
        sigma only until a coordinate's standard deviation reaches its box's width (one that
        is already past it is not raised). Call it between :meth:`tell` and the next
        :meth:`ask`.

        Raises
        ------
        TypeError, ValueError
            If `factor` is not a positive finite number.
        RuntimeError
            If a batch is pending (its candidates were drawn with the old step size); nothing
            is changed.
        """
        f = v.positive_float("factor", factor)
        if self._X is not None:
            raise RuntimeError(
                "scale_sigma() changes the distribution the pending batch was drawn from; call "
                "it after tell() and before the next ask()."
            )
        excess = self._excess() if f > 1.0 and not self.adapts_sigma else None
        if excess is not None and (largest := float(np.max(excess))) > 0.0:
            f = min(f, max(1.0, 1.0 / largest))
        sigma = self.__dict__["_sigma"]
        with np.errstate(over="ignore", under="ignore"):
            scaled = np.asarray(sigma, dtype=np.float64) * f
        scaled = np.clip(np.nan_to_num(scaled, posinf=v.SIGMA_MAX), v.SIGMA_MIN, v.SIGMA_MAX)
        # set through __dict__: each subclass declares `_sigma` with its own type
        self._commit({"_sigma": scaled if isinstance(sigma, np.ndarray) else float(scaled)})

    def _excess(self) -> FloatArray | None:
        """Return each coordinate's standard deviation over its box's width.

        0 where a bound is missing; None without bounds or without a coordinate bounded on
        both sides.
        """
        if self._box is None:
            return None
        width = self._box.widths
        bounded = width < math.inf
        if not np.any(bounded):
            return None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out: FloatArray = np.where(bounded, self._stds() / width, 0.0)
        return out

    def stop(self) -> dict[str, float]:
        """Return the termination criteria that hold, each with its threshold (empty if none)."""
        tol = self._crit.tolconditioncov
        full = len(self._fhist) >= _stopping.history_length(self._dim, self._popsize)
        fun_range = (
            max(max(self._fhist) - min(self._fhist), self._last_range) if full else math.inf
        )
        # (a coordinate fixed by the box has no spread, whatever its step size says)
        free = self._free()
        stds, mean = self._stds(), self._mean
        if free is not None:
            stds, mean = stds[free], mean[free]
        return _stopping.holds(
            self._crit,
            nfev=self._nfev,
            generation=self._generation,
            best_f=self._best_f,
            fun_range=fun_range,
            stds=stds,
            mean=mean,
            since_improvement=self._since_improvement,
            history_full=full,
            elapsed=time.monotonic() - self._t0,
            condition=self._relative_condition(tol),
            degenerate=self._degenerate(),
            flat_generations=self._flat_generations,
            dtype=self._dtype,
        )

    def _relative_condition(self, tol: float | None) -> float:
        """Return the condition number the ``conditioncov`` criterion reads (1.0 when off).

        That of the covariance C; with a per-coordinate `sigma0`, which states the scales of
        the coordinates (their units, as pycma's ``CMA_stds``), the smaller of it and that of
        the covariance in those units, ``diag(sigma0)^-1 C diag(sigma0)^-1``: the criterion
        holds when both pass `tol`. (Read in absolute terms only, a `sigma0` whose largest
        entry was 1e7 times its smallest passed the default ``tolconditioncov`` before the
        first generation, and every run stopped having evaluated nothing; in its units only,
        one far too small along a coordinate stopped a run whose covariance was of
        condition 28.) 1.0 also when the condition is surely below `tol`.
        """
        if tol is None or self._condition_at_most(tol):
            return 1.0
        absolute = self._condition()
        scale = self._sigma0
        if isinstance(scale, np.ndarray) and np.any(scale != scale[0]) and absolute > tol:
            return min(absolute, self._condition(scale))
        return absolute

    def _free(self) -> np.ndarray | None:
        """Return the coordinates the box leaves free, or None when it fixes none.

        A fixed coordinate's candidates are its value, whatever its step size, which no
        selection acts on (and no box fits): the stopping criteria on the spread leave it out
        (a 4-d sphere with one fixed coordinate never met ``tolx`` under SNES, and its step
        size alone made ``conditioncov`` end the run).
        """
        if self._box is None:
            return None
        fixed = self._box.fixed
        if not fixed.any() or fixed.all():  # (every coordinate fixed: the criteria read all)
            return None
        free: np.ndarray = ~fixed
        return free

    def _condition(self, scale: FloatArray | None = None) -> float:
        """Return the condition number of the covariance (here diagonal: the ratio of variances).

        Of the coordinates the box leaves free (see :meth:`_free`); with `scale` (one number
        per coordinate), of the covariance in those units, ``diag(scale)^-1 C
        diag(scale)^-1``. Strategies whose covariance is not diagonal override it.
        """
        stds = self._stds() if scale is None else self._stds() / scale
        free = self._free()
        if free is not None:
            stds = stds[free]
        lo, hi = float(np.min(stds)), float(np.max(stds))
        ratio = hi / lo if lo > 0.0 else math.inf
        return ratio * ratio  # inf beyond the float range (** raised OverflowError)

    def _condition_at_most(self, limit: float) -> bool:
        """Return whether the condition number is surely at most `limit` without computing it.

        False when that is not known cheaply (then :meth:`_condition` is computed); XNES keeps
        a bound of it through its updates.
        """
        return False

    def _degenerate(self) -> bool:
        """Return whether the distribution is unusable: non-finite, or sigma at its limits.

        (At its limits after an update: a run that starts there runs its first generation.)

        With ``dtype="float32"`` also when it reaches beyond the float32 range (3.4e38): its
        candidates would be infinite.
        """
        sigma = np.asarray(self._sigma_value())
        stds = self._stds()
        if self._dtype is np.float32:
            with np.errstate(over="ignore", invalid="ignore"):
                reach = np.abs(self._mean) + FLOAT32_REACH * stds
            if not np.all(reach < float(np.finfo(np.float32).max)):
                return True
        # A step size at its limit is one an update was clamped to: a run may start there
        # (`sigma0` may be 1e-100, or a box's width over four), and evaluates its first batch.
        inside = bool(np.all((sigma > v.SIGMA_MIN) & (sigma < v.SIGMA_MAX)))
        return not (
            np.all(np.isfinite(self._mean))
            and np.all(np.isfinite(stds))
            and np.all(stds > 0.0)
            and (inside or self._generation == 0)
        )

    @property
    def result(self) -> OptimizeResult:
        """The outcome so far as a ``scipy.optimize.OptimizeResult``.

        Fields: ``x`` and ``fun`` (the best point evaluated so far and its value), ``nfev``,
        ``nit`` (generations), ``status``, ``success``, ``message`` (scipy's wording), ``stop``
        (the criteria that hold), ``mean`` (the mean of the search distribution, inside the
        box with bounds: on a noisy problem the better estimate of the optimum) and ``sigma``.
        """
        sigma = self._sigma_value()
        return _stopping.make_result(
            x=self._best_x.copy(),
            fun=self._best_f,
            nfev=self._nfev,
            nit=self._generation,
            stop=self.stop(),
            mean=self._mean.copy(),
            sigma=sigma.copy() if isinstance(sigma, np.ndarray) else sigma,
        )

    def optimize(
        self,
        fun: Callable[..., float],
        *,
        args: Sequence[object] = (),
        maxfev: int | float | None = None,
        maxiter: int | float | None = None,
        workers: WorkersLike = None,
        callback: Callable[[OptimizeResult], object] | None = None,
        disp: DispLike = False,
        progress: bool = False,
        vectorized: bool = False,
    ) -> OptimizeResult:
        """Run ask/evaluate/tell until :meth:`stop` holds or a budget is spent; return the result.

        Parameters
        ----------
        fun : callable
            ``fun(x, *args) -> float`` to minimise.
        args : tuple
            Extra arguments of `fun`.
        maxfev, maxiter : int, optional
            Totals (counted from the start of the run) after which this call stops (None or
            ``float("inf")``: no limit of this call); they are
            not stored, so a later call without them runs on under the strategy's own
            criteria. The last generation evaluates only what the budget allows, so ``nfev``
            never exceeds `maxfev`.
        workers : None, int, map-like callable, Executor, dask Client, the ray module or Evaluator
            How to evaluate a population (see :func:`nes_asktell.evaluate`).
        callback : callable, optional
            Called after each generation with the current :attr:`result`; returning True or
            raising StopIteration stops the run (status 99).
        disp : bool or {0, 1, 2}
            Log progress through the ``nes_asktell`` logger (printed on stdout for the run):
            1 (or True) a line at generations 1-9, every 10th up to 100, then every 100th and
            at least every few seconds, with elapsed time and evaluations per second; 2 a line
            every generation; 0 (or False) nothing.
        progress : bool
            Show a progress bar (generations, nfev, best) with tqdm (the ``progress`` extra).
        vectorized : bool
            Evaluate the whole population (or each worker's share of it) in one call
            ``fun(X, *args) -> (S,)`` with `X` of shape (d, S), as scipy's ``vectorized``
            convention; for users who evaluate on their own GPU or with numpy.
        """
        return run(
            self,
            lambda: self,
            fun,
            args=args,
            maxfev=v.budget("maxfev", maxfev),
            maxiter=v.budget("maxiter", maxiter),
            workers=workers,
            callback=callback,
            disp=disp,
            progress=progress,
            vectorized=vectorized,
        )

    # ------------------------------------------------------------------ for evaluation
    @property
    def rows_from_keys(self) -> bool:
        """Whether workers can rebuild the candidates from their noise keys.

        True when the noise is counter-based (an integer seed, a SeedSequence or a Generator
        `rng`) and every candidate is ``mean + scale * z`` (:attr:`diagonal_rows`: OpenES,
        SNES): what ``mode="seeds"`` and ``mode="replay"`` of :func:`nes_asktell.evaluate`
        need. False for a full or low-rank shape (XNES, DX-NES-IC, CR-FM-NES) and for a legacy
        RandomState, whose candidates travel as vectors.
        """
        return type(self).diagonal_rows and isinstance(self._noise, _noise.CounterNoise)

    def batch_keys(self, X: FloatArray) -> KeyedBatch | None:
        """Return what rebuilds the rows `X` of the pending batch from keys, or None.

        `X` must be the first rows of the pending batch (the array :meth:`ask` returned, or a
        slice of it); anything else (a copy, a list, a single row) gets None, as rows that
        must travel as vectors. Rows can be rebuilt when :attr:`rows_from_keys` holds; that
        is also checked on the first and the last row. Any other strategy (XNES)
        gets None and ships vectors, in every generation (its first rows, with the identity
        shape, could be rebuilt, and ``mode="seeds"`` then failed from the second generation
        on).
        """
        pending = self._X
        # (rows_from_keys, spelt out so that the type of the noise is known below)
        if not type(self).diagonal_rows or not isinstance(self._noise, _noise.CounterNoise):
            return None
        if pending is None or not isinstance(X, np.ndarray) or X.ndim != 2 or not len(X):
            return None  # (a list raised AttributeError, a row IndexError)
        if not _batch.same_batch(X, pending) or X.shape[1] != self._dim:
            return None
        scale = self._sigma_value()
        if isinstance(scale, np.ndarray) and scale.shape != (self._dim,):
            return None
        dtype = np.dtype(self._dtype).name
        keys = Keys.of(self._noise.entropy, self._generation, self._n_noise, self._mirrored, dtype)
        for k in {0, X.shape[0] - 1}:
            if not np.array_equal(_batch.rebuild_row(keys, self._mean, scale, self._box, k), X[k]):
                return None
        return KeyedBatch(keys, self._mean, scale, self._box)

    def extra_samples(self, n: int) -> FloatArray | None:
        """Return `n` further samples of this generation's distribution (None: not possible).

        Sample ``j`` is built from the counter noise key ``(generation, n_noise + j)``, which no
        candidate of the batch uses, so the samples are reproducible anywhere and differ from
        the batch's: they are the rows that a population larger by `n` would add. With mirrored
        sampling they come in mirrored pairs, as such a population's would: samples ``2 i`` and
        ``2 i + 1`` are ``mean + p`` and ``mean - p`` for the perturbation ``p`` of the key
        ``(generation, n_noise + i)``. They are never told, and the strategy does not change.
        With noise drawn in sequence (a legacy RandomState `rng`, or a Generator's in a state
        saved by an older version) there are none.
        """
        n = v.integer("n", n, minimum=0)
        v.check_size("n", n * self._dim, "n * dim")  # before anything is allocated
        if not isinstance(self._noise, _noise.CounterNoise):
            return None
        keys = (n + 1) // 2 if self._mirrored else n
        Zh = np.empty((keys, self._dim), dtype=self._dtype)
        self._noise.draw(self._generation, Zh, start=self._n_noise)
        P = np.empty_like(Zh)
        X = np.empty((n, self._dim), dtype=self._dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # float32: clipped by finite32
            self._perturb_into(Zh, P)
            if self._mirrored:
                np.add(P[: (n + 1) // 2], self._mean, out=X[0::2])
                np.subtract(self._mean, P[: n // 2], out=X[1::2])
            else:
                np.add(P, self._mean, out=X)
        _batch.finite32(X)
        if self._box is not None:
            self._box.reflect(X)
        return X

    def recent_updates(self) -> tuple[AppliedUpdate, ...]:
        """Return the latest applied updates, ``(generation, utilities, n_finite, w_shape)``.

        The utilities are None for an update that was skipped; `n_finite` is the number of
        finite fitness values told; `w_shape` the weights of the shape update where they are
        not the utilities (XNES with ``active=True``), else None. A replica at one of these
        generations catches up with :meth:`replay`, which takes an entry as its arguments.
        The arrays are copies: changing them changes nothing here.
        """
        return tuple(
            (g, None if u is None else u.copy(), n, None if w is None else w.copy())
            for g, u, n, w in self._applied
        )

    def replica_state(self) -> JSON:
        """Return the state a worker's replica starts from: :meth:`state_dict` without the batch.

        The replica never shapes fitness (it is told utilities), so a callable `shaping` is
        stored as ``"raw"``; nor does it keep the record of the run.
        """
        return self._state(asked=False, record=False)

    def replay(
        self,
        generation: int,
        u: FloatArray | None,
        n_finite: int | None = None,
        w_shape: FloatArray | None = None,
    ) -> None:
        """Apply the update of `generation` from its utilities `u` (None: it was skipped).

        The replica of a worker calls this to follow the updates of the strategy it copies:
        the noise of `generation` is drawn again (counter-based noise only) and the update
        applied, exactly as ``tell`` applied it. `n_finite` is the number of finite fitness
        values of that tell (an entry of :meth:`recent_updates` holds it), which DXNESIC and
        CRFMNES with `implicit_constraints` count as feasible; None: all of them. `w_shape`
        holds the weights of the shape update of XNES with ``active=True`` (the entry's
        last item), and must be None for every other strategy.

        Raises
        ------
        RuntimeError
            If the strategy is not at `generation`, has a pending batch, or draws its noise
            in sequence.
        TypeError, ValueError
            If `generation` is not an integer, `u` not None or `popsize` finite numbers,
            `n_finite` not an integer from 0 to `popsize`, or `w_shape` is given to a
            strategy that takes none, missing for one that needs it, or not `popsize`
            finite numbers; nothing is changed.
        """
        generation = v.integer("generation", generation, minimum=0, maximum=MAX_COUNT)
        if u is not None:  # (a short one broadcast against the pairs' weights)
            u = v.as_vector("u", u, self._popsize)
        if generation != self._generation or self._X is not None:
            raise RuntimeError(
                f"replay() of generation {generation} needs a strategy at that generation "
                f"with no pending batch, but it is at {self._generation}."
            )
        if not isinstance(self._noise, _noise.CounterNoise):
            raise RuntimeError(
                "replay() needs counter-based noise (any `rng` but a legacy RandomState)."
            )
        told = (
            self._popsize
            if n_finite is None
            else v.integer("n_finite", n_finite, minimum=0, maximum=self._popsize)
        )
        needs = self._has_shape_weights()
        if w_shape is not None and not needs:
            raise ValueError(
                f"`w_shape` must be None for this strategy ({self.name} without active shape "
                "weights), but got an array."
            )
        if u is not None and w_shape is None and needs:
            raise ValueError(
                "`w_shape` must be given for XNES with `active=True` (the last item of an "
                "entry of recent_updates()), but got None."
            )
        if w_shape is not None:
            w_shape = v.as_vector("w_shape", w_shape, self._popsize)
        if u is not None:
            Zh = self._noise_buffer()
            self._noise.draw(generation, Zh)  # the rows ask() drew
            self._commit(self._checked_update(u, Zh, told, w_shape))
        self._generation = generation + 1

    def digest(self) -> bytes:
        """Return a hash of what the candidates depend on: generation, mean and step sizes."""
        return _batch.digest(self._generation, self._mean, self._sigma_value())

    # ------------------------------------------------------------------ state
    def state_dict(self) -> JSON:
        """Return the complete state as JSON-serialisable plain data.

        ``Strategy.from_state(state)`` rebuilds a strategy that continues bit-identically,
        also between ``ask`` and ``tell``.

        Raises
        ------
        ValueError
            If `shaping` is a callable, which plain data cannot hold: use pickle, which
            keeps it.
        """
        if not isinstance(self._shaping_spec, str):
            raise ValueError(
                "`shaping` is a callable, which state_dict() cannot store as plain data; use "
                "pickle, which keeps it (and continues bit-identically)."
            )
        return self._state(asked=self._X is not None, record=True)

    def _state(self, *, asked: bool, record: bool) -> JSON:
        # Between ask and tell: the noise state that ask started from.
        noise = self._noise_before_ask if asked else None
        return {
            "strategy": self.name,
            "version": STATE_VERSION,
            "dim": self._dim,
            "popsize": self._popsize,
            "sigma0": _plain(self._sigma0),
            "mirrored": self._mirrored,
            "shaping": self._shaping_spec if isinstance(self._shaping_spec, str) else "raw",
            "threads": self._threads,
            "dtype": np.dtype(self._dtype).name,
            "bounds": None if self._box is None else self._box.state_dict(),
            "criteria": self._crit.state_dict(),
            "options": self._options(),
            "mean": self._mean.tolist(),
            "generation": self._generation,
            "nfev": self._nfev,
            "record": self._record_state() if record else None,
            "asked": asked,
            # (a copy of the state kept since the ask: the caller may change what it gets)
            "noise": copy.deepcopy(noise) if noise is not None else self._noise.state_dict(),
            "algo": self._algo_state(),
        }

    def _record_state(self) -> JSON:
        return {
            "best_x": self._best_x.tolist(),
            "best_f": None if math.isinf(self._best_f) else self._best_f,
            "fhist": list(self._fhist),
            "last_range": None if math.isinf(self._last_range) else self._last_range,
            "since_improvement": self._since_improvement,
            "flat_generations": self._flat_generations,
        }

    @classmethod
    def from_state(cls: type[S], state: JSON, *, shaping: ShapingLike | None = None) -> S:
        """Rebuild a strategy from :meth:`state_dict` output.

        Called on :class:`Strategy`, it builds the class the state names; called on a
        subclass, the state must name that class. A subclass without a ``name`` of its own
        writes the name it inherits, and reads it back as itself.

        Parameters
        ----------
        state : dict
            What :meth:`state_dict` returned (after a JSON round trip, if you like).
        shaping : str or callable, optional
            A fitness shaping to use instead of the one the state names.

        Raises
        ------
        TypeError
            If `shaping` is neither a name nor a callable.
        ValueError
            If `state` is malformed or belongs to another strategy, or `shaping` names no
            shaping.
        """
        if not isinstance(state, dict):
            raise ValueError(
                f"`state` must be a dict from state_dict(), but got {v.short(state)}."
            )
        v.plain_state("state", state)
        name = state.get("strategy")
        target = _REGISTRY.get(name) if isinstance(name, str) else None
        if target is not None and issubclass(cls, target) and cls.name == name:
            target = cls  # a subclass that inherits the name (and so the format) of `target`
        if target is None or not issubclass(target, cls) or state.get("version") != STATE_VERSION:
            expected = "a strategy's " if cls is Strategy else f"{cls.__name__}."
            raise ValueError(
                f"`state` must come from {expected}state_dict() (version {STATE_VERSION}), "
                f"but got strategy={v.short(name)}, version={v.short(state.get('version'))}."
            )
        if shaping is not None:
            _shaping.resolve(shaping)  # a bad argument is named as such, not as the state
        try:
            obj = target._from_state(state, shaping)
        except KeyError as exc:
            raise ValueError(f"`state` is malformed: the key {exc} is missing.") from exc
        except (TypeError, ValueError, IndexError, OverflowError) as exc:
            raise ValueError(f"`state` is malformed: {exc}") from exc
        return obj  # type: ignore[return-value]

    @classmethod
    def _from_state(cls, state: JSON, shaping: ShapingLike | None) -> Strategy:
        """Rebuild through the constructor (which validates every option), then the rest."""
        bounds = state["bounds"]
        sigma0 = state["sigma0"]
        options, criteria = (
            _entries("options", state["options"]),
            _entries("criteria", state["criteria"]),
        )
        dim = state["dim"]
        mean = state["mean"]
        if isinstance(dim, int) and isinstance(mean, list) and len(mean) != dim:
            # (before the mean is read: a crafted 10**7-long mean took a second and 240 MB)
            raise ValueError(f"dim {v.short(dim)} does not match the mean")
        obj = cls(
            v.as_vector("mean", mean),
            sigma0,  # type: ignore[arg-type]
            state["popsize"],  # type: ignore[arg-type]
            bounds=None if bounds is None else Box.from_state(bounds).to_bounds(),
            rng=0,
            mirrored=state["mirrored"],  # type: ignore[arg-type]
            shaping=state["shaping"] if shaping is None else shaping,  # type: ignore[arg-type]
            threads=v.integer("threads", state["threads"], minimum=1, maximum=MAX_THREADS),
            dtype=str(state["dtype"]),
            **criteria,  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )
        # every option as saved (one missing took its default: another run than the saved)
        lacking = [name for name in obj._options() if name not in options]
        if lacking:
            raise ValueError(
                f"`options` must hold every option of {cls.__name__}, but lacks {lacking}."
            )
        if obj._dim != state["dim"]:
            raise ValueError(f"dim {v.short(state['dim'])} does not match the mean")
        obj._noise = _noise.from_state(state["noise"], obj._threads)
        obj._generation = v.integer(
            "generation", state["generation"], minimum=0, maximum=MAX_COUNT
        )
        obj._nfev = v.integer("nfev", state["nfev"], minimum=0, maximum=MAX_COUNT)
        record = state["record"]
        if record is not None:
            obj._load_record(dict(record))  # type: ignore[call-overload]
        obj._load_algo_state(dict(state["algo"]))  # type: ignore[call-overload]
        asked = state["asked"]
        if not isinstance(asked, bool):
            raise TypeError(f"`asked` must be True or False, but got {v.short(asked)}.")
        if asked:
            obj.ask()
        return obj

    def _load_record(self, record: JSON) -> None:
        self._best_x = v.as_vector("best_x", record["best_x"], self._dim)
        if self._box is not None and not self._box.holds(self._best_x, self._dtype):
            raise ValueError(
                "`best_x` must lie in the bounds (it is a point evaluated), but it does not."
            )
        best_f = record["best_f"]
        self._best_f = math.inf if best_f is None else v.real("best_f", best_f)
        fhist = record["fhist"]
        # (the longest history any population keeps in this dimension, checked before a value
        # is read; a longer one is no state a run writes and would take unbounded time)
        longest = _stopping.history_length(self._dim, 2)
        if not isinstance(fhist, list) or len(fhist) > longest:
            raise ValueError(
                f"`fhist` must be a list of at most {longest} best values, but got "
                f"{v.short(fhist) if not isinstance(fhist, list) else f'{len(fhist)} items'}."
            )
        keep = _stopping.history_length(self._dim, self._popsize)
        self._fhist = [v.real("fhist", x) for x in fhist[-keep:]]
        last = record["last_range"]
        self._last_range = (
            math.inf if last is None else v.positive_float("last_range", last, allow_zero=True)
        )
        # (one more each generation at most, from 0 at the start of the run)
        self._since_improvement = v.integer(
            "since_improvement", record["since_improvement"], minimum=0, maximum=self._generation
        )
        # (absent from the states written before the criterion: none counted)
        self._flat_generations = v.integer(
            "flat_generations", record.get("flat_generations", 0), minimum=0, maximum=MAX_COUNT
        )

    def __getstate__(self) -> dict[str, object]:
        d = self.__dict__.copy()
        d["_t0"] = time.monotonic() - self._t0  # elapsed, restored relative to the new clock
        d["_spare"] = []  # buffers for reuse, not state
        d["_X_view"] = None  # rebuilt by ask() as a view of the restored batch
        if self._X is None:  # the noise buffer holds nothing until the next ask fills it
            d["_Zh"] = None
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        self.__dict__.update(d)
        self.__dict__.setdefault("_X_view", None)
        self.__dict__.setdefault("_flat_generations", 0)  # (pickled before tolflatfitness)
        self.__dict__.setdefault("_shape_told", None)  # (pickled before shape weights existed)
        # an applied update of a strategy pickled then had no shape weights
        self._applied = [(*e, None) if len(e) == 3 else e for e in self._applied]
        self._t0 = time.monotonic() - float(d["_t0"])  # type: ignore[arg-type]
        # A shallow copy (copy.copy) gets d as the original holds it: what the original
        # changes in place must be copied, so that the two go on independently.
        if self._X is not None:  # a copy of the pickled batch, sealed again
            self._X = _batch.seal(np.array(self._X, order="C"))
            # and of its noise rows, which the original's next ask overwrote in place (the
            # copy's tell then read another generation's noise)
            self._Zh = np.array(self._Zh)
        if isinstance(self._noise, _noise.SequentialNoise):
            # a generator of its own (the copy drew from the original's stream)
            self._noise = copy.deepcopy(self._noise)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dim={self._dim}, popsize={self._popsize}, "
            f"generation={self._generation}, nfev={self._nfev}, best_f={self._best_f:.6g})"
        )


def _entries(name: str, value: object) -> dict[str, object]:
    """Return the dict `value` of a state's entry `name`, or raise TypeError naming it.

    (``dict(value)`` took a list of pairs, and ``[]`` as no options at all: the defaults.)
    """
    if not isinstance(value, dict):
        raise TypeError(f"`{name}` must be a dict, but got {v.short(value)}.")
    return value


def _plain(x: float | FloatArray) -> float | list[float]:
    return x.tolist() if isinstance(x, np.ndarray) else float(x)
