"""NESSampler's search replayed by ask/tell, for paired comparisons of its strategy options.

The sampler adds nothing of its own to the search on the BBOB suite (docs/optuna.rst, *Why
NESSampler trails at d = 5*): this replays it without Optuna, so that hundreds of paired runs
take minutes instead of hours. Each run drives the strategy as the sampler does: one startup
point drawn uniformly from the cube, then XNES from the centre of the unit cube with
``sigma0 = 0.2`` and the sampler's default population, its candidates reflected into the cube
(the update sees the unreflected ones), and the sampler's IPOP restarts (its ``Search``: a
doubled population, a new start and seed, when the strategy stops, its spread passes
``MAX_SPREAD`` or it has had no finite value in ``history_length`` generations: its
``should_restart``). Every parameter is ``x = -5 + 10 u`` and the value ``f(x) - f_opt``.

Variants are the options the sampler sets for their strategy (``COMMON_OPTIONS`` and the
strategy's ``DEFAULT_OPTIONS``: XNES's unless a variant names another class) updated with
:data:`VARIANTS`' options (and some a population or class of their own). The comparison of
a variant with the default is paired: the same function, instance and seed, so the same
startup point and the same first noise. Per budget (200 and 1,000 evaluations) it counts the
runs where the variant's best is below, above or equal to the default's (values below 1e-8
count as equal) and gives the two-sided sign test p-value over the unequal ones.

With ``--against-cma`` the same runs are also made by Optuna's ``CmaEsSampler`` replayed the
same way (:func:`run_cma`: its startup trial, then ``cmaes.CMA`` from the centre of the unit
cube with ``sigma0 = 1/6``, bounded, never restarted, as Optuna 4.4 and later run it), and for
the default and each variant it counts the functions on which the median of its runs is within
10% of the better of its own and CMA-ES's medians: the BBOB benchmark's target counted on 12
runs per function instead of 3 studies, in minutes.

With ``--fault fail`` the objective fails in ``optuna_bbob``'s failing region
(``x_0 + x_1 > 3``): the sampler's strategy is told inf there, which it ranks worst, and
CMA-ES leaves the trial out, as ``CmaEsSampler`` does (a generation is told once it has its
population of COMPLETE trials). For both, trials are startup trials until one completes. The
variant ``fail-ignored`` gives a failed row no weight instead (:func:`finite_rows_only`).

With ``--baseline V`` the variants are paired with variant ``V`` instead of the default
(``--baseline lq --variants lq-weighted``: a change to the surrogate against the surrogate).
Variants may also set the sampler's ``restart_strategy`` (``bipop``, ``lq-bipop``) and
``sigma0``. With ``--cma-unbounded`` CMA-ES runs without its bounds (an experiment: the
objective is evaluated wherever its candidates fall, BBOB's penalty outside the box included).

Run: ``python -m benchmarks optuna_replay --dims 5 --variants r1 r1-es05``
(``--instances 7 8 9 --seeds 4`` by default: 288 runs per d and variant; run ``k`` of an
instance has the seed ``10000 f + 100 d + instance + 1000000 k``).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from nes_asktell.integrations.optuna._sampler import (
    COMMON_OPTIONS,
    DEFAULT_OPTIONS,
    DEFAULT_RESTARTS,
    DEFAULT_SIGMA0,
)
from nes_asktell.integrations.optuna._search import Search, _unit_box, mirrored_up_to
from scipy.stats import binomtest

from benchmarks._bbob_runs import load_problem
from benchmarks._xnes_variants import (
    ActiveShapeXNES2,
    DecayingXNES,
    active_utilities,
)
from benchmarks.optuna_bbob import in_failing_region
from nes_asktell import _surrogate as sg
from nes_asktell._batch import unseal
from nes_asktell._crfmnes import CRFMNES
from nes_asktell._dxnesic import DXNESIC
from nes_asktell._shaping import nes_utilities
from nes_asktell._strategy import Strategy, default_popsize
from nes_asktell._typing import FloatArray, OptionValue
from nes_asktell._xnes import XNES, paper_eta_B


@dataclass(frozen=True)
class Variant:
    """Strategy options over the sampler's defaults, and a population or class other than its."""

    options: dict[str, OptionValue] = field(default_factory=dict)
    popsize: int | None = None  # None: the sampler's default, 4 + 3 ln d
    popsize_factor: int | None = None  # the population as this multiple of the default at d
    cls: type[Strategy] = XNES
    shape_rate_factor: float | None = None  # eta_B as this multiple of the paper's at each d
    surrogate: bool = False  # NESSampler(surrogate=True)
    # with the surrogate: the model fitted as the sampler fits it ("recent") or as lq-CMA-ES's
    # implementation does ("weighted", :func:`weighted_fit`); the rows given the model's values
    # once it is accepted: those not evaluated (the sampler's) or every row ("all")
    regression: str = "recent"
    model_rows: str = "unevaluated"
    restart_strategy: str = "ipop"  # the sampler's `restart_strategy`
    sigma0: float = DEFAULT_SIGMA0  # the sampler's `sigma0`
    # with the surrogate: XNES's eta_sigma for a generation whose rows were all evaluated (the
    # model was not accepted); None: the same rate for every generation
    eta_sigma_rejected: float | None = None
    # with the surrogate: double the population in place (the same mean, step size and
    # shape) once the model was accepted in at most a fifth of the last `grow_window`
    # generations of the run (a rugged function), up to 8 times the first population
    grow_window: int | None = None
    # boundary handling as CMA-ES's (``cmaes.CMA`` with bounds): a candidate outside the cube is
    # drawn again from the same distribution, up to ``10 d`` times (then reflected), and the
    # update sees the candidate drawn last (:func:`resampled`); else reflected, as the sampler
    resample: bool = False
    # the update sees the reflected candidates (the points evaluated) instead of the drawn ones,
    # as ``cmaes.CMA`` is told its repaired (clipped) candidates (:func:`told_reflected`)
    tell_reflected: bool = False

    def popsize_at(self, dim: int) -> int | None:
        """The population at dimension `dim` (None: the sampler's default)."""
        if self.popsize_factor is not None:
            return self.popsize_factor * default_popsize(dim)
        return self.popsize

    def options_at(self, dim: int) -> dict[str, OptionValue]:
        """The options at dimension `dim` (with ``eta_B`` set if `shape_rate_factor` is)."""
        if self.shape_rate_factor is None:
            return self.options
        return {**self.options, "eta_B": self.shape_rate_factor * paper_eta_B(dim)}


def finite_rows_only(f: FloatArray) -> FloatArray:
    """NES utilities of the finite values among themselves; 0 for NaN and inf.

    A shaping under which a failed evaluation teaches nothing: it neither pushes the mean away
    nor shrinks the step size or the shape, and the others are weighted as a population of
    their number (the sampler ranks a failed trial worst instead, as issue 11 asks).
    """
    finite = np.isfinite(f)
    u = np.zeros(f.shape[0])
    if finite.any():
        u[finite] = nes_utilities(f[finite])
    return u


#: the variants by name (``"default"`` is the sampler as it is, without the rank-one term;
#: ``"no-r1"`` sets that explicitly)
VARIANTS: dict[str, Variant] = {
    "default": Variant(),
    "no-r1": Variant({"rank_one": False}),
    "r1": Variant({"rank_one": True}),
    "r1-es07": Variant({"rank_one": True, "eta_sigma": 0.7}),
    "r1-es05": Variant({"rank_one": True, "eta_sigma": 0.5}),
    "r1-es03": Variant({"rank_one": True, "eta_sigma": 0.3}),
    "r1-paper": Variant({"rank_one": True, "eta_sigma": None}),
    "r1-paper-as": Variant({"rank_one": True, "eta_sigma": None, "adaptation_sampling": True}),
    "core": Variant(
        {"rank_one": None, "eta_sigma": None, "adaptation_sampling": True, "mirrored": True}
    ),
    "es05": Variant({"eta_sigma": 0.5}),
    "tolx8": Variant({"tolx": 1e-8}),
    "tolx10": Variant({"tolx": 1e-10}),
    "r1-tolx8": Variant({"rank_one": True, "tolx": 1e-8}),
    "csa-only": Variant({"eta_sigma": 1e-9}),
    "r1-csa-only": Variant({"rank_one": True, "eta_sigma": 1e-9}),
    "decay": Variant({"eta_sigma": None, "adaptation_sampling": True}, cls=DecayingXNES),
    "r1-decay": Variant(
        {"rank_one": True, "eta_sigma": None, "adaptation_sampling": True}, cls=DecayingXNES
    ),
    "pop6": Variant(popsize=6),
    "r1-pop6": Variant({"rank_one": True}, popsize=6),
    "pop12": Variant(popsize=12),
    # the sampler's other full-covariance strategies, with the options it sets for them
    "dxnesic": Variant(cls=DXNESIC),
    "crfmnes": Variant(cls=CRFMNES),
    # a smaller shape rate than the paper's (the sampler's default at d = 5 and 10)
    "eb05": Variant(shape_rate_factor=0.5),
    "eb07": Variant(shape_rate_factor=0.7),
    "r1-eb05": Variant({"rank_one": True}, shape_rate_factor=0.5),
    # a larger shape rate than the paper's
    "eb15": Variant(shape_rate_factor=1.5),
    "eb20": Variant(shape_rate_factor=2.0),
    "eb30": Variant(shape_rate_factor=3.0),
    # the shape's worse half weighted by rank (active CMA-ES's negative weights)
    "active": Variant({"active": True}),
    "r1-active": Variant({"rank_one": True, "active": True}),
    "r1-active2": Variant({"rank_one": True}, cls=ActiveShapeXNES2),
    # the same weights as utilities: for the mean and the step size too
    "r1-active-all": Variant({"rank_one": True, "shaping": active_utilities}),
    # the sampler's linear-quadratic surrogate (NESSampler(surrogate=True))
    "lq": Variant(surrogate=True),
    # the surrogate with lq-CMA-ES's regression (the best 3/4 of the points, weighted by rank),
    # with the model's values for every row once it is accepted, and with both
    "lq-weighted": Variant(surrogate=True, regression="weighted"),
    "lq-model-all": Variant(surrogate=True, model_rows="all"),
    "lq-weighted-model-all": Variant(surrogate=True, regression="weighted", model_rows="all"),
    # the surrogate with earlier stops (a converged run restarts sooner) or a smaller step-size
    # rate
    "lq-tolx8": Variant({"tolx": 1e-8}, surrogate=True),
    "lq-tolx6": Variant({"tolx": 1e-6}, surrogate=True),
    "lq-tolfun8": Variant({"tolfun": 1e-8}, surrogate=True),
    "lq-es05": Variant({"eta_sigma": 0.5}, surrogate=True),
    "lq-es07": Variant({"eta_sigma": 0.7}, surrogate=True),
    "lq-es03": Variant({"eta_sigma": 0.3}, surrogate=True),
    # the step-size rate 0.3 for a generation the model did not fill in, 1 for the others
    "lq-es03-rejected": Variant(surrogate=True, eta_sigma_rejected=0.3),
    "lq-es05-rejected": Variant(surrogate=True, eta_sigma_rejected=0.5),
    # the surrogate with BIPOP restarts, a larger first step size, the rank-one term
    "lq-bipop": Variant(surrogate=True, restart_strategy="bipop"),
    "lq-sigma03": Variant(surrogate=True, sigma0=0.3),
    "lq-r1": Variant({"rank_one": True}, surrogate=True),
    # the surrogate with the rank-one term and the active shape weights (``r1-active``)
    "lq-r1-active": Variant({"rank_one": True, "active": True}, surrogate=True),
    "lq-active": Variant({"active": True}, surrogate=True),
    "bipop": Variant(restart_strategy="bipop"),
    # the surrogate with a larger first population (the model fills in the rows it ranks)
    "lq-pop12": Variant(surrogate=True, popsize=12),
    # twice the default population at any d (16 at d = 5, 20 at d = 10)
    "lq-pop2x": Variant(surrogate=True, popsize_factor=2),
    "lq-pop16": Variant(surrogate=True, popsize=16),
    # the population doubled where the model keeps failing
    "lq-grow10": Variant(surrogate=True, grow_window=10),
    "lq-grow20": Variant(surrogate=True, grow_window=20),
    "lq-resample": Variant(surrogate=True, resample=True),
    "tell-reflected": Variant(tell_reflected=True),
    "lq-tell-reflected": Variant(surrogate=True, tell_reflected=True),
    "lq-es05-pop12": Variant({"eta_sigma": 0.5}, surrogate=True, popsize=12),
    # a failed evaluation ignored instead of ranked worst (meaningful with --fault fail)
    "fail-ignored": Variant({"shaping": finite_rows_only}),
    # mirrored sampling (the default at d <= 2), independent sampling (the default at d >= 3,
    # and at every d before); XNES without cumulative step-size adaptation
    "mirrored": Variant({"mirrored": True}),
    "independent": Variant({"mirrored": False}),
    "no-csa": Variant({"csa": False}),
}
BUDGETS = (200, 1000)
FLOOR = 1e-8
#: the faults a replay can add (``--fault``): none, or the failing region of ``optuna_bbob``
FAULTS = ("none", "fail")


def unit_objective(
    function: int, dim: int, instance: int, fault: str
) -> Callable[[FloatArray], float]:
    """Return ``u -> f(-5 + 10 u) - f_opt``, inf in the failing region if `fault` is ``"fail"``."""
    problem, fopt, _ = load_problem(function, dim, instance)

    def evaluate(u: FloatArray) -> float:
        x = -5.0 + 10.0 * u
        return math.inf if fault == "fail" and in_failing_region(x) else float(problem(x)) - fopt

    return evaluate


def startup_values(
    evaluate: Callable[[FloatArray], float], dim: int, seed: int, n: int
) -> list[float]:
    """Return the values of the startup trials: uniform points until one completes (at most n)."""
    startup = np.random.default_rng(seed)
    values = [evaluate(startup.uniform(size=dim))]
    while values[-1] == math.inf and len(values) < n:
        values.append(evaluate(startup.uniform(size=dim)))
    return values


def run(
    options: dict[str, OptionValue],
    function: int,
    dim: int,
    instance: int,
    seed: int,
    n: int,
    *,
    popsize: int | None = None,
    cls: type[Strategy] = XNES,
    fault: str = "none",
    surrogate: bool = False,
    rounds: list[int] | None = None,
    regression: str = "recent",
    model_rows: str = "unevaluated",
    restart_strategy: str = "ipop",
    sigma0: float = DEFAULT_SIGMA0,
    eta_sigma_rejected: float | None = None,
    grow_window: int | None = None,
    resample: bool = False,
    tell_reflected: bool = False,
) -> list[float]:
    """Return the ``f - f_opt`` of the first `n` evaluations of one replayed study.

    With `surrogate` the sampler's rounds (``NESSampler(surrogate=True)`` in one process, see
    :func:`surrogate_generation`), each round's size appended to `rounds`; `regression`,
    `model_rows`, `eta_sigma_rejected`, `grow_window` and `resample` as :class:`Variant` has
    them. `restart_strategy` and `sigma0` are the sampler's arguments (a BIPOP regime's budget
    counts the evaluations of its runs, as the sampler's does without startup trials).

    With `fault` ``"fail"`` an evaluation in the failing region of ``optuna_bbob`` is inf,
    what the sampler tells the strategy for a failed trial, and the startup trials go on until
    one completes, as the sampler's do.
    """
    evaluate = unit_objective(function, dim, instance, fault)
    merged = {**COMMON_OPTIONS, **DEFAULT_OPTIONS.get(cls.name, {}), **options}
    auto = mirrored_up_to(cls, dict(options), popsize)  # as the sampler decides
    search = Search(cls, sigma0, popsize, DEFAULT_RESTARTS, merged, seed, restart_strategy, auto)
    box = _unit_box(dim)
    values = startup_values(evaluate, dim, seed, n)
    restart = 0
    bipop = search.first_bipop()
    es = search.new_strategy(dim, seed, restart, bipop=bipop)
    started = len(values)  # the evaluations before the run (a BIPOP budget counts its own)
    archive = Archive(dim, regression)
    accepted: list[bool] = []  # per generation of the run: whether the model filled a row
    lam_first = es.popsize
    redraws = np.random.default_rng([seed, 1])  # (the draws of `resample`)
    with np.errstate(all="ignore"):
        while len(values) < n:
            if resample:
                resampled(es, redraws, 10 * dim)
            Y = es.ask()
            X = box.reflect(Y.copy())
            if tell_reflected:
                told_reflected(es, X)
                Y = es.ask()
            if surrogate:
                before = len(values)
                f = surrogate_generation(X, evaluate, values, archive, rounds, model_rows)
                accepted.append(len(values) - before < len(f))  # the model filled a row
                if eta_sigma_rejected is not None:
                    if not isinstance(es, XNES):
                        raise ValueError("`eta_sigma_rejected` needs XNES")
                    # the rate of this generation's tell: all rows evaluated, the model rejected
                    es._eta_sigma = es._eta_sigma0 if accepted[-1] else eta_sigma_rejected
            else:
                f = np.array([evaluate(x) for x in X])
                values.extend(f.tolist())
            es.tell(Y, f)
            bigger = grown(es, accepted, grow_window, lam_first)
            if bigger is not None:
                es, accepted = bigger, []
            if search.should_restart(es):
                restart += 1
                if bipop is not None:
                    bipop = search.next_bipop(bipop, len(values) - started)
                started = len(values)
                es = search.new_strategy(dim, seed, restart, bipop=bipop)
                archive = Archive(dim, regression)  # (the model starts afresh on a restart)
                accepted, lam_first = [], es.popsize
    return values[:n]


def resampled(es: Strategy, rng: np.random.Generator, tries: int) -> None:
    """Draw again, in place, the candidates of `es`'s pending batch outside the unit cube.

    Each such row is drawn anew from the search distribution, ``mean + sigma B z`` with
    ``z ~ N(0, I)`` from `rng`, until it lies in the cube, at most `tries` times (then it keeps
    its first draw, which the caller reflects). The batch and the noise rows the update reads
    are the strategy's own (XNES's, unmirrored), so its ``tell`` sees the candidates drawn last.
    """
    if not isinstance(es, XNES) or es.mirrored:
        raise ValueError("`resample` needs XNES without mirrored sampling")
    Y = es.ask()
    outside = np.flatnonzero(((Y < 0.0) | (Y > 1.0)).any(axis=1))
    if outside.size == 0:
        return
    X, Z = es._X, es._Zh
    assert X is not None
    assert Z is not None
    X = unseal(X)  # the strategy's own buffer of the batch (what it tells against)
    for row in outside:
        for _ in range(tries):
            z = rng.standard_normal(es.dim)
            y = es.mean + es.sigma * (es.B @ z)
            if np.all((y >= 0.0) & (y <= 1.0)):
                Z[row], X[row] = z, y
                break
    es._X_view = None  # (the next ask returns a view of the batch as it is now)


def told_reflected(es: Strategy, X: FloatArray) -> None:
    """Make the reflected rows `X` the candidates of `es`'s pending batch, in place.

    The noise rows the update reads become ``B^-1 (x - mean) / sigma`` of the reflected rows
    (XNES's, unmirrored), so its ``tell`` sees the points evaluated, as ``cmaes.CMA`` sees its
    repaired ones.
    """
    if not isinstance(es, XNES) or es.mirrored:
        raise ValueError("`tell_reflected` needs XNES without mirrored sampling")
    es.ask()
    B, Z = es._X, es._Zh
    assert B is not None
    assert Z is not None
    B = unseal(B)  # the strategy's own buffer of the batch (what it tells against)
    Zr = np.linalg.solve(es.B, ((X - es.mean) / es.sigma).T).T
    # a row keeps its drawn candidate where the reflected one lies further out in the
    # distribution's own metric (a thin shape near an edge): z of the reflection can be huge
    nearer = np.einsum("ij,ij->i", Zr, Zr) <= np.einsum("ij,ij->i", Z, Z)
    B[nearer], Z[nearer] = X[nearer], Zr[nearer]
    es._X_view = None


def grown(
    es: Strategy, accepted: list[bool], window: int | None, lam_first: int
) -> Strategy | None:
    """Return `es` with twice its population (the same state otherwise), or None.

    A variant's ``grow_window``: the population doubles once the model was accepted (filled
    some rows) in at most a fifth of the last `window` generations of the run, up to 8 times
    the run's first population `lam_first`.
    """
    if window is None or len(accepted) < window or es.popsize >= 8 * lam_first:
        return None
    if sum(accepted[-window:]) > window // 5:
        return None
    state = es.state_dict()
    state["popsize"] = 2 * es.popsize
    return type(es).from_state(state)


@dataclass
class Archive:
    """The points and values the surrogate's model fits (the most recent ``sg.max_points``)."""

    dim: int
    regression: str = "recent"  # how the model is fitted (see Variant)
    X: list[FloatArray] = field(default_factory=list)
    f: list[float] = field(default_factory=list)

    def add(self, x: FloatArray, value: float) -> None:
        if math.isfinite(value):
            # the point as the sampler reads it back: x = -5 + 10 u as a parameter, to unit
            self.X.append((-5.0 + 10.0 * x + 5.0) / 10.0)
            self.f.append(value)
            del self.X[: -sg.max_points(self.dim)], self.f[: -sg.max_points(self.dim)]

    def model(self) -> tuple[sg.Model | None, FloatArray, FloatArray]:
        X = np.array(self.X).reshape(-1, self.dim)
        f = np.array(self.f)
        fit = weighted_fit if self.regression == "weighted" else sg.fit
        return (fit(X, f) if f.size else None), X, f


#: lq-CMA-ES's regression (Hansen 2019, as its implementation in pycma fits it): the share of
#: the points kept, the best by value, and the weight of the best of them (the worst has 1)
KEPT_SHARE = 0.75
MAX_WEIGHT = 20.0


def weighted_fit(X: FloatArray, f: FloatArray) -> sg.Model | None:
    """Return the model of `X` and `f` fitted as lq-CMA-ES's implementation fits it, or None.

    Of the most recent ``sg.max_points`` points only the best `KEPT_SHARE` (at least the
    model's coefficients plus two) enter the least squares, each row weighted by its rank,
    linearly from `MAX_WEIGHT` for the best to 1 for the worst kept; the model kind is the
    richest the kept points can fit. The sampler fits every recent point with equal weights
    (``sg.fit``).
    """
    n, dim = X.shape
    if n == 0 or not np.all(np.isfinite(f)) or not np.all(np.isfinite(X)):
        return None
    m = min(n, sg.max_points(dim))
    Xm, fm = X[n - m :], f[n - m :]
    kind = sg.kind_for(int(KEPT_SHARE * m), dim)
    if kind is None:
        return None
    k = max(int(KEPT_SHARE * m), min(m, sg.n_coefficients(dim, kind) + 2))
    keep = np.argsort(fm, kind="stable")[:k]
    Xk, fk = Xm[keep], fm[keep]
    w = np.linspace(MAX_WEIGHT, 1.0, k)
    center = Xk.mean(axis=0)
    scale = Xk.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    A = sg.features((Xk - center) / scale, kind)
    with np.errstate(all="ignore"):
        coef, *_ = np.linalg.lstsq(A * w[:, None], fk * w, rcond=None)
    if not np.all(np.isfinite(coef)):
        return None
    return sg.Model(kind, center, scale, np.asarray(coef, dtype=np.float64))


def surrogate_generation(
    X: FloatArray,
    evaluate: Callable[[FloatArray], float],
    values: list[float],
    archive: Archive,
    rounds: list[int] | None = None,
    model_rows: str = "unevaluated",
) -> FloatArray:
    """Return the fitness the sampler with ``surrogate=True`` tells for the rows `X`.

    Its rounds in one process (``Search.surrogate_round``): the rows in the order of the
    archive's model, ``sg.first_batch`` first, then as many more as were evaluated, until the
    model refitted to the archive agrees (``sg.TAU_THRESHOLD``) or every row is evaluated;
    a non-finite value makes the next round take every row left. The evaluations are appended
    to `values`, and each round's size to `rounds`.

    The rows not evaluated get the model's values shifted so that the best of the evaluated
    rows' model values falls on their best true value, and never below it; with `model_rows`
    ``"all"`` every row gets the model's value shifted so that its best falls there (as
    lq-CMA-ES's implementation tells them), the evaluated rows too.
    """
    lam = X.shape[0]
    model, _, _ = archive.model()
    order = list(range(lam))
    k = lam
    if model is not None:
        order = [int(i) for i in np.argsort(model.predict(X), kind="stable")]
        k = sg.first_batch(lam)
    f = np.full(lam, np.nan)
    done: list[int] = []
    while True:
        for i in order[len(done) : len(done) + k]:
            f[i] = evaluate(X[i])
            values.append(float(f[i]))
            archive.add(X[i], float(f[i]))
            done.append(i)
        if rounds is not None:
            rounds.append(min(k, lam))
        left = lam - len(done)
        if not left:
            return f
        if not np.all(np.isfinite(f[done])):
            k = left
            continue
        model, A, F = archive.model()
        if model is None:
            k = left
            continue
        n_tau = sg.tau_points(len(done), lam)
        if sg.rank_agreement(model, A[-n_tau:], F[-n_tau:]) < sg.TAU_THRESHOLD:
            k = min(len(done), left)
            continue
        pred = model.predict(X)
        rest = [i for i in range(lam) if i not in done]
        best = f[done].min()
        if model_rows == "all":
            return pred - pred.min() + best
        f[rest] = np.maximum(pred[rest] + best - pred[done].min(), best)
        return f


def run_cma(
    function: int,
    dim: int,
    instance: int,
    seed: int,
    n: int,
    *,
    fault: str = "none",
    bounded: bool = True,
) -> list[float]:
    """Return the ``f - f_opt`` of the first `n` trials of ``CmaEsSampler(seed=seed)``, replayed.

    Its startup trial (a uniform point; not told to CMA-ES, so drawn here from this replay's
    own generator), then ``cmaes.CMA`` as Optuna 4.4 and later run it for a space of floats:
    mean at the centre of the unit cube, ``sigma0 = 1/6``, bounds ``[0, 1]^d``,
    ``n_max_resampling = 10 d``, no restart; one ``ask`` per trial with the generator reseeded
    by ``randint(1, 2**16) + trial number`` from ``RandomState(seed)``, and a ``tell`` at the
    first trial of the next generation. Until a COMPLETE trial holds a told optimizer each
    trial builds the optimizer afresh, which draws one ``randint(1, 2**31 - 2)`` for its seed
    first.

    With `fault` ``"fail"`` a trial in the failing region of ``optuna_bbob`` fails (inf here):
    the sampler leaves it out, so a generation is told once it has its population of COMPLETE
    trials, and until one trial completes the trials are startup trials.

    A run whose search collapses (a candidate that is not finite, or cmaes's overflow check in
    ``tell``) ends there, as the real study stops with an error: the rest of its values are inf.

    With `bounded` False, CMA-ES runs without bounds (``--cma-unbounded``, an experiment: the
    objective is evaluated where the candidate lies, BBOB's penalty outside the box included).
    """
    import cmaes

    evaluate = unit_objective(function, dim, instance, fault)
    values = startup_values(evaluate, dim, seed, n)
    draws = np.random.RandomState(seed)
    es = cmaes.CMA(
        mean=np.full(dim, 0.5),
        sigma=1.0 / 6.0,
        bounds=np.tile([0.0, 1.0], (dim, 1)) if bounded else None,
        n_max_resampling=10 * dim,
    )
    lam = es.population_size
    told: list[tuple[FloatArray, float]] = []
    stored = False  # whether a COMPLETE trial holds a told optimizer
    for trial in range(len(values), n):
        if not stored:
            draws.randint(1, 2**31 - 2)  # the seed of an optimizer built afresh
        if len(told) == lam:
            try:
                es.tell(told)
            except AssertionError:  # cmaes's overflow check, after a collapse: the study stops
                return (values + [math.inf] * n)[:n]
            told = []
        es._rng.seed(draws.randint(1, 2**16) + trial)
        u = es.ask()
        if not np.all(np.isfinite(u)):  # a collapsed search: Optuna refuses NaN, the study stops
            return (values + [math.inf] * n)[:n]
        values.append(evaluate(u))
        if values[-1] != math.inf:
            told.append((u, values[-1]))
            # until one is stored, every trial after the first tell tells it again and stores it
            stored = stored or es.generation > 0
    return values[:n]


def within_cma(
    bests: dict[str, dict[tuple[int, int, int], list[float]]], v: str, functions: list[int]
) -> None:
    """Print on how many functions `v`'s median is within 10% of the better of it and CMA's."""
    for j, b in enumerate(BUDGETS):
        ratios = {}
        for f in functions:
            mine = float(np.median([x[j] for k, x in bests[v].items() if k[0] == f]))
            cma = float(np.median([x[j] for k, x in bests["CMA"].items() if k[0] == f]))
            ratios[f] = mine / cma
        ok = sum(r <= 1.1 for r in ratios.values())
        cma_ok = sum(r >= 1 / 1.1 for r in ratios.values())
        print(
            f"  {v:12s} {b:5d} evaluations: within 10% of the better of it and CMA-ES on "
            f"{ok} of {len(functions)} functions (CMA-ES on {cma_ok})"
        )
        print("    median over CMA-ES's: " + " ".join(f"f{f}:{r:.2g}" for f, r in ratios.items()))
        counts = resampled_counts(bests, v, functions, j)
        lo, mid, hi = np.percentile(counts, [5, 50, 95])
        print(
            f"    the same count from {TABLE_RUNS} runs per function, as the tables have it "
            f"({len(counts)} draws): median {mid:.0f}, 5-95% {lo:.0f} to {hi:.0f}, "
            f"at least 2/3 of them in {np.mean(counts >= 2 * len(functions) / 3):.0%}"
        )


#: the runs per function and sampler of the BBOB tables (instances 1, 2, 3)
TABLE_RUNS = 3
#: the draws of :func:`resampled_counts`
DRAWS = 2000


def resampled_counts(
    bests: dict[str, dict[tuple[int, int, int], list[float]]],
    v: str,
    functions: list[int],
    j: int,
) -> np.ndarray:
    """Return :func:`within_cma`'s count for `v` at budget `j` from `TABLE_RUNS` runs each.

    Each of `DRAWS` draws takes `TABLE_RUNS` of a function's runs (without replacement) for
    `v` and as many for CMA-ES, independently, and counts the functions on which the median
    of `v`'s is within 10% of the better of the two medians: the spread of the tables' count
    (3 studies per function and sampler) if the runs are typical of the tables' instances.
    """
    rng = np.random.default_rng(0)
    per_f = {
        f: (
            np.array([x[j] for k, x in bests[v].items() if k[0] == f]),
            np.array([x[j] for k, x in bests["CMA"].items() if k[0] == f]),
        )
        for f in functions
    }
    counts = np.zeros(DRAWS, dtype=np.int64)
    for t in range(DRAWS):
        for mine, cma in per_f.values():
            a = np.median(rng.choice(mine, TABLE_RUNS, replace=False))
            c = np.median(rng.choice(cma, TABLE_RUNS, replace=False))
            counts[t] += a <= 1.1 * min(a, c)
    return counts


def show_runs(
    bests: dict[str, dict[tuple[int, int, int], list[float]]], functions: list[int]
) -> None:
    """Print every run's best on `functions`, sorted, for each variant (and CMA) and budget."""
    for f in functions:
        for v, runs in bests.items():
            for j, b in enumerate(BUDGETS):
                values = sorted(x[j] for k, x in runs.items() if k[0] == f)
                print(
                    f"  f{f} {v:12s} {b:5d} evaluations: " + " ".join(f"{x:.1e}" for x in values)
                )


#: how many whole generations failed in a row count as a run stuck in the failing region
STUCK = 10


def lam_of(v: str, dim: int) -> int:
    """The population of variant `v` (CMA-ES's is also the default) at dimension `dim`."""
    w = VARIANTS.get(v)
    lam = w.popsize_at(dim) if w is not None else None
    return lam or default_popsize(dim)


def failures(values: Sequence[float], lam: int) -> tuple[int, bool]:
    """Return how many of `values` failed (inf), and whether `STUCK` * `lam` did in a row."""
    count = longest = run_length = 0
    for x in values:
        run_length = run_length + 1 if x == math.inf else 0
        count += x == math.inf
        longest = max(longest, run_length)
    return count, longest >= STUCK * lam


def best(values: Sequence[float], n: int) -> float:
    return max(min(values[:n]), FLOOR)


def ratio_of_medians(
    bests: dict[str, dict[tuple[int, int, int], list[float]]],
    v: str,
    f: int,
    j: int,
    baseline: str = "default",
) -> float:
    """Return the median over `f`'s runs of variant `v`'s best over `baseline`'s (budget j)."""
    logs = [math.log(b[j] / bests[baseline][k][j]) for k, b in bests[v].items() if k[0] == f]
    return math.exp(float(np.median(logs)))


def compare(
    bests: dict[str, dict[tuple[int, int, int], list[float]]],
    v: str,
    functions: list[int],
    baseline: str = "default",
) -> None:
    """Print the paired comparison of variant `v` with `baseline` at each budget."""
    for j, b in enumerate(BUDGETS):
        better = worse = 0
        per_f = {f: [0, 0] for f in functions}
        for key, vb in bests[v].items():
            x, y = vb[j], bests[baseline][key][j]
            better += x < y
            worse += x > y
            per_f[key[0]][0] += x < y
            per_f[key[0]][1] += x > y
        total = better + worse
        p = binomtest(better, total).pvalue if total else 1.0
        print(f"  {v:12s} {b:5d} evaluations: better {better:3d} worse {worse:3d} p={p:.2g}")
        print(
            "    better/worse per function: "
            + " ".join(f"f{f}:{a}/{c}" for f, (a, c) in per_f.items())
        )
        print(
            f"    median ratio to {'the default' if baseline == 'default' else baseline}: "
            + " ".join(
                f"f{f}:{ratio_of_medians(bests, v, f, j, baseline):.2g}" for f in functions
            ),
            flush=True,
        )


def main(
    quick: bool = False,
    argv: list[str] | None = None,
    prog: str = "python -m benchmarks.optuna_replay",
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--dims", nargs="*", type=int, default=[5, 10])
    parser.add_argument("--functions", nargs="*", type=int, default=list(range(1, 25)))
    parser.add_argument("--instances", nargs="*", type=int, default=[7, 8, 9])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=["r1"])
    parser.add_argument(
        "--baseline",
        choices=VARIANTS,
        default="default",
        help="the variant the others are paired with (default: the sampler as it is)",
    )
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default="none",
        help="fail where x0 + x1 > 3, as optuna_bbob --fault fail (default: none)",
    )
    parser.add_argument(
        "--against-cma",
        action="store_true",
        help="also replay CmaEsSampler and count the functions within 10%% of it",
    )
    parser.add_argument(
        "--cma-unbounded",
        action="store_true",
        help="replay CMA-ES without its bounds (an experiment: CmaEsSampler has them)",
    )
    parser.add_argument(
        "--show-runs",
        nargs="*",
        type=int,
        default=[],
        metavar="F",
        help="also print every run's best on these functions, sorted, per variant and budget",
    )
    args = parser.parse_args(argv)
    if quick:
        args.dims, args.functions, args.instances, args.seeds = [2], [1, 8], [1], 1
    n = max(BUDGETS)
    names = list(dict.fromkeys(["default", args.baseline, *args.variants]))
    if args.against_cma:
        names.append("CMA")
    for d in args.dims:
        bests: dict[str, dict[tuple[int, int, int], list[float]]] = {v: {} for v in names}
        failed: dict[str, list[tuple[int, bool]]] = {v: [] for v in names}
        t0 = time.perf_counter()
        for f in args.functions:
            for i in args.instances:
                for k in range(args.seeds):
                    seed = 10_000 * f + 100 * d + i + 1_000_000 * k
                    for v in names:
                        if v == "CMA":
                            vals = run_cma(
                                f, d, i, seed, n, fault=args.fault, bounded=not args.cma_unbounded
                            )
                        else:
                            w = VARIANTS[v]
                            vals = run(
                                w.options_at(d),
                                f,
                                d,
                                i,
                                seed,
                                n,
                                popsize=w.popsize_at(d),
                                cls=w.cls,
                                fault=args.fault,
                                surrogate=w.surrogate,
                                regression=w.regression,
                                model_rows=w.model_rows,
                                restart_strategy=w.restart_strategy,
                                sigma0=w.sigma0,
                                eta_sigma_rejected=w.eta_sigma_rejected,
                                grow_window=w.grow_window,
                                resample=w.resample,
                                tell_reflected=w.tell_reflected,
                            )
                        bests[v][(f, i, k)] = [best(vals, b) for b in BUDGETS]
                        failed[v].append(failures(vals, lam_of(v, d)))
        seconds = time.perf_counter() - t0
        print(f"d = {d}: {len(bests['default'])} paired runs per variant ({seconds:.0f} s)")
        for v in names:
            if v not in ("CMA", args.baseline):
                compare(bests, v, args.functions, args.baseline)
        if args.against_cma:
            for v in names[:-1]:
                within_cma(bests, v, args.functions)
        show_runs(bests, [f for f in args.show_runs if f in args.functions])
        if args.fault != "none":
            for v in names:
                share = sum(c for c, _ in failed[v]) / (n * len(failed[v]))
                stuck = sum(s for _, s in failed[v])
                print(
                    f"  {v:12s} failed evaluations: {share:.1%}; runs with {STUCK} whole "
                    f"generations failed in a row: {stuck} of {len(failed[v])}"
                )


if __name__ == "__main__":
    main()
