"""The NES family with restarts on the whole BBOB suite against pycma and cmaes, run by run.

Every run (method, function, dimension, instance) is cached as one JSON file under ``--cache``,
so the suite can be built up in parts: a later call runs only the runs that are missing, those
of ``--rerun`` methods, and those recorded with another version of their method (for the
library's strategies, a hash of the sources of ``nes_asktell/``; for pycma and cmaes, the
package's version). It then prints, per dimension, the expected running time (ERT) to
f - f_opt <= 1e-8 of every method with its ratio to each ``--reference``, and with ``--out``
writes the tables, every run and the runtime ECDF plot::

    python -m benchmarks.nes_family --methods XNES+IPOP pycma+IPOP pycma+BIPOP \
        --functions 1 2 8 10 --dims 5 10 20 --instances 1-5 --reference pycma+IPOP pycma+BIPOP
    python -m benchmarks.nes_family --methods XNES+IPOP pycma+BIPOP --functions 1-24 \
        --dims 2 3 5 10 --instances 1-5 --reference pycma+BIPOP --out docs/_static/bench

Problems, start points and seeds are those of ``benchmarks/bbob.py`` (``x0`` uniform in
[-4, 4]^d, sigma0 = 2, one integer seed per problem shared by every method). The budget is
``--budget`` times d evaluations per run, restarts included. ERT = evaluations of all runs /
successes (COCO's definition: a failed run is charged what it spent).

The ECDF is the runtime distribution of COCO's aggregated plots, computed here from the cached
runs: for each run, the first evaluation at which f - f_opt falls below each of the 51 targets
10^2, 10^1.8, ..., 10^-8, and for each number of evaluations the fraction of (function,
instance, target) triples reached by then. It is the fraction of (function, target) pairs
reached, averaged over the instances, without COCO's simulated restarts (bootstrapping) of the
runs.

COCO's own post-processing, ``cocopp`` (in the ``bench`` extra), reads the data COCO's observer
writes. ``--coco-out DIR`` runs every run of the selection again (the cache is not read, but
written, and a run whose evaluations differ from its cached record is reported) with a
``cocoex.Observer("bbob", ...)`` on its problem, one result folder per method (``algorithm_name``
the method's name) under ``DIR/exdata``; ``--cocopp-out PP`` then runs ``cocopp`` on those
folders, and ``--cocopp FOLDER ... --cocopp-out PP`` on folders written before, without running
anything::

    python -m benchmarks.nes_family --methods XNES+IPOP pycma+BIPOP --functions 1-24 \
        --dims 2 3 5 10 --instances 1-5 --coco-out ~/.cache/nes_asktell_bench/coco \
        --cocopp-out ~/.cache/nes_asktell_bench/coco/ppdata

``--suite bbob-largescale`` runs COCO's large-scale suite (d = 20 ... 640) instead and prints,
in place of the ERT table, the best f - f_opt of every run, the methods tied for the lowest
(within 10%), how often the better of CRFMNES and SNES is ahead of the best of pycma's
large-scale variants (sep-CMA, VD-CMA, VkD-CMA), the targets reached and each method's own
microseconds per evaluation (the run's time minus the objective's)::

    python -m benchmarks.nes_family --suite bbob-largescale --methods CRFMNES+IPOP SNES+IPOP \
        OpenES+IPOP pycma-sep+IPOP pycma-VD+IPOP pycma-VkD+IPOP cmaes-SepCMA+IPOP \
        --functions 1-24 --dims 320 --instances 1 --budget 150 --out docs/_static/bench \
        --name largescale_d320
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import importlib
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._bbob_methods import (
    ECDF_TARGETS,
    TARGET,
    Objective,
    _StopRunError,
    run_cmaes,
    run_cmaes_class,
    run_cmaes_until_stop,
    run_pycma,
)
from ._bbob_plots import suite_ecdf_plot
from ._bbob_runs import SIGMA0, check_selection, load_suite_problem, seed_problem, start
from ._common import fmt_count, fmt_ratio, read_record, simple_table, write_record, write_text

Runner = Callable[[Objective, np.ndarray, int, float], str]
ROOT = Path(__file__).resolve().parent.parent


class CocoLog:
    """COCO's observer on the runs: one ``cocoex.Observer("bbob", ...)`` per method.

    Each method's data go to the folder ``root/exdata/<method>`` (``algorithm_name`` the
    method's name); COCO numbers a folder that exists already (``<method>-0001``), so nothing is
    overwritten, and :meth:`folders` gives the folders written. The observer only logs: the
    observed problem returns the same values, so a run is the same run with or without it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self._observers: dict[str, Any] = {}

    @contextlib.contextmanager
    def observing(self, problem: Any, method: str) -> Iterator[None]:
        """Attach `method`'s observer to `problem` for the block, then free the problem.

        COCO writes under ``./exdata`` of the working directory, hence the change of directory
        for the block; freeing the problem writes its last line to the ``.info`` file.
        """
        import cocoex

        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.chdir(self.root):
            if method not in self._observers:
                options = f"result_folder: {method} algorithm_name: {method}"
                self._observers[method] = cocoex.Observer("bbob", options)
            problem.observe_with(self._observers[method])
            try:
                yield
            finally:
                problem.free()

    def folders(self) -> list[Path]:
        """Return the result folder of each method observed so far."""
        return [self.root / str(o.result_folder) for o in self._observers.values()]


@contextlib.contextmanager
def _labels_kept() -> Iterator[None]:
    """Save every pyplot figure of the block with its text, where no bounding box is asked for.

    cocopp writes the algorithm names of its runtime ECDFs to the right of the axes, beyond its
    fixed figure size, and saves the figure at that size: the names were cut off at the
    figure's edge. matplotlib's ``bbox_inches="tight"`` does not do here: the
    figures also hold unclipped marker lines placed far outside (hundreds of inches away), and
    a tight box takes them in. Within this block, a ``pyplot.savefig`` call without
    ``bbox_inches`` saves the figure's own area extended to take in its texts (figure and axes
    texts, titles, axis labels), with a margin of 0.1 inch, and nothing else.
    """
    import matplotlib.pyplot as plt
    from matplotlib.transforms import Bbox

    save = plt.savefig

    def savefig(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("bbox_inches") is None:
            fig = plt.gcf()
            renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
            texts = [*fig.texts]
            for ax in fig.axes:
                texts += [*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label]
            boxes = [fig.bbox]
            boxes += [
                t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()
            ]
            box = Bbox.union(boxes).transformed(fig.dpi_scale_trans.inverted())
            kwargs["bbox_inches"] = box.padded(0.1)
        return save(*args, **kwargs)

    plt.savefig = savefig
    try:
        yield
    finally:
        plt.savefig = save


def run_cocopp(folders: Sequence[Path], output: Path) -> Path:
    """Run COCO's post-processing ``cocopp.main`` on `folders`, writing into `output`.

    Non-interactive (matplotlib's Agg backend, no browser); the figures are written as PNG
    and SVG, each with all of its text (see :func:`_labels_kept`), and the runtime ECDFs name
    each algorithm in full (cocopp's default shortens the names to the fewest characters that
    tell them apart, plus two: ``pycma+BIP``). Returns the path of the ``index.html`` of the
    output.
    """
    import matplotlib

    matplotlib.use("Agg")
    import cocopp

    cocopp.genericsettings.figure_file_formats = ["png", "svg"]
    cocopp.genericsettings.len_of_names_in_pprldmany_legend = 99
    output = output.expanduser().resolve()
    argv = ["--no-interactive", "-o", str(output), *(str(f) for f in folders)]
    with warnings.catch_warnings(), _labels_kept():
        warnings.simplefilter("ignore")
        cocopp.main(argv)
    return output / "index.html"


def _ask_tell(opt: object, obj: Objective) -> str:
    while not (stop := opt.stop()):  # type: ignore[attr-defined]
        X = opt.ask()  # type: ignore[attr-defined]
        opt.tell(X, [obj(x) for x in X])  # type: ignore[attr-defined]
    return "+".join(stop)


def _nes(name: str | Callable[[], type], **options: Any) -> Runner:
    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        from nes_asktell import resolve_strategy

        cls = resolve_strategy(name if isinstance(name, str) else name())
        return _ask_tell(cls(x0, sigma0, rng=seed, **options), obj)

    return runner


def _crfmnes_c1(rate: str) -> Callable[[], type]:
    """Return a factory of CRFMNES with another rank-one rate below d = 5 (an ablation).

    ``"paper"``: Nomura and Ono's :math:`c_1 (d - 5) / 6` as published, negative there;
    ``"cma"``: CMA-ES's :math:`c_1` itself there. From d = 5 on the default's rate.
    """

    def factory() -> type:
        from nes_asktell import CRFMNES
        from nes_asktell._xnes import rank_one_rate

        class Variant(CRFMNES):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                d, mueff = self.dim, self._phases.mueff
                if d < 5:
                    c1 = rank_one_rate(d, mueff)
                    self._c1 = c1 * (d - 5.0) / 6.0 if rate == "paper" else c1

        return Variant

    return factory


def _decaying_xnes() -> type:
    """XNES with its step-size rate starting at 1, then adapted (see ``_xnes_variants``)."""
    from benchmarks._xnes_variants import DecayingXNES

    return DecayingXNES


def _first_run_decaying_xnes() -> type:
    """XNES-decay in a run with the default population only (see ``_xnes_variants``)."""
    from benchmarks._xnes_variants import FirstRunDecayingXNES

    return FirstRunDecayingXNES


def _restarted(kind: str, name: str | Callable[[], type], **options: Any) -> Runner:
    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        from nes_asktell import BIPOP, IPOP

        cls = BIPOP if kind == "bipop" else IPOP
        strategy = name if isinstance(name, str) else name()
        return _ask_tell(cls(strategy, x0, sigma0, maxfev=obj.budget, rng=seed, **options), obj)

    return runner


def run_pycma_bipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma's own BIPOP (``cma.fmin2(..., restarts=9, bipop=True)``)."""
    import cma

    opts = {"verbose": -9, "seed": seed, "maxfevals": obj.budget, "ftarget": obj.fopt + TARGET}
    cma.fmin2(obj, x0, sigma0, opts, restarts=9, bipop=True)
    return "fmin2"


def run_pycma_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """pycma's own IPOP (``cma.fmin2(..., restarts=9, incpopsize=2)``)."""
    import cma

    opts = {"verbose": -9, "seed": seed, "maxfevals": obj.budget, "ftarget": obj.fopt + TARGET}
    cma.fmin2(obj, x0, sigma0, opts, restarts=9, incpopsize=2)
    return "fmin2"


def _cmaes(cls_name: str) -> Runner:
    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        return run_cmaes_class(cls_name, obj, x0, seed, sigma0)

    return runner


def _pycma_large(variant: str) -> Runner:
    """pycma's large-scale variants in its own IPOP (``cma.fmin2(..., restarts=9, incpopsize=2)``).

    ``sep``: ``CMA_diagonal=True`` (sep-CMA, a diagonal covariance); ``VD`` and ``VkD``: the
    restricted samplers of ``cma.restricted_gaussian_sampler`` (VD-CMA, Akimoto et al. 2014;
    VkD-CMA, Akimoto and Hansen 2016), set through their ``extend_cma_options``.
    """

    def runner(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
        import cma
        from cma import restricted_gaussian_sampler as rgs

        opts: dict[str, object] = {"verbose": -9, "seed": seed, "maxfevals": obj.budget}
        opts["ftarget"] = obj.fopt + TARGET
        if variant == "sep":
            opts["CMA_diagonal"] = True
        else:
            opts = getattr(rgs, f"Gauss{variant}Sampler").extend_cma_options(opts)
        cma.fmin2(obj, x0, sigma0, opts, restarts=9, incpopsize=2)
        return "fmin2"

    return runner


def run_sepcma_ipop(obj: Objective, x0: np.ndarray, seed: int, sigma0: float) -> str:
    """The cmaes package's SepCMA restarted from x0 with a doubled population (IPOP).

    cmaes has no restart loop of its own; this one is pycma's schedule (the default population
    4 + 3 ln d, doubled at every restart), run until the objective stops it at the budget.
    """
    import cmaes

    popsize = 4 + math.floor(3 * math.log(x0.size))
    for k in range(10):
        opt = cmaes.SepCMA(
            mean=x0.copy(), sigma=sigma0, seed=seed + 1000 * k, population_size=popsize
        )
        run_cmaes_until_stop(opt, obj)
        popsize *= 2
    return "10 runs"


NES_NAMES = ("XNES", "SNES", "DXNESIC", "CRFMNES", "OpenES")
METHODS: dict[str, Runner] = {}
for _name in NES_NAMES:
    METHODS[_name] = _nes(_name.lower())
    METHODS[f"{_name}+IPOP"] = _restarted("ipop", _name.lower())
    METHODS[f"{_name}+BIPOP"] = _restarted("bipop", _name.lower())
#: variants of the library's strategies with options other than the defaults
VARIANTS = {
    "XNES-r1": ("xnes", {"rank_one": True}),
    "XNES-nor1": ("xnes", {"rank_one": False}),
    "XNES-eta1": ("xnes", {"eta_sigma": 1.0}),
    "XNES-eta1-nor1": ("xnes", {"eta_sigma": 1.0, "rank_one": False}),
    "XNES-noas": ("xnes", {"adaptation_sampling": False}),
}
#: variants of the library's strategies with another constant than the defaults
CLASS_VARIANTS = {
    "CRFMNES-paperc1": _crfmnes_c1("paper"),
    "CRFMNES-cmac1": _crfmnes_c1("cma"),
    "XNES-decay": _decaying_xnes,
    "XNES-decay1": _first_run_decaying_xnes,
}
for _name, (_strategy, _options) in VARIANTS.items():
    METHODS[_name] = _nes(_strategy, **_options)
    METHODS[f"{_name}+IPOP"] = _restarted("ipop", _strategy, **_options)
    METHODS[f"{_name}+BIPOP"] = _restarted("bipop", _strategy, **_options)
for _name, _factory in CLASS_VARIANTS.items():
    METHODS[_name] = _nes(_factory)
    METHODS[f"{_name}+IPOP"] = _restarted("ipop", _factory)
    METHODS[f"{_name}+BIPOP"] = _restarted("bipop", _factory)
METHODS.update(
    {
        "pycma": run_pycma,
        "pycma+IPOP": run_pycma_ipop,
        "pycma+BIPOP": run_pycma_bipop,
        "cmaes": run_cmaes,
        "cmaes-SepCMA": _cmaes("SepCMA"),
        "cmaes-DXNESIC": _cmaes("DXNESIC"),
        "cmaes-SepCMA+IPOP": run_sepcma_ipop,
        "pycma-sep+IPOP": _pycma_large("sep"),
        "pycma-VD+IPOP": _pycma_large("VD"),
        "pycma-VkD+IPOP": _pycma_large("VkD"),
    }
)
#: the large-scale variants of pycma, the references of the large-scale comparison
PYCMA_LARGE = ("pycma-sep+IPOP", "pycma-VD+IPOP", "pycma-VkD+IPOP")

_VERSIONS: dict[str, str] = {}
#: the benchmark's own sources of the methods of :data:`CLASS_VARIANTS`
VARIANT_SOURCES = ("benchmarks/_xnes_variants.py", "benchmarks/nes_family.py")


def _digest(paths: Sequence[Path]) -> str:
    """Return a short hash of the files `paths`, with their paths relative to the repository."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def method_version(method: str) -> str:
    """Return what a cached run of `method` must have been run with to be reused.

    The library's strategies: a hash of the sources under ``nes_asktell/`` (any change of the
    library reruns them), and for the variants of :data:`CLASS_VARIANTS`, which the benchmark
    defines, of their sources under ``benchmarks/`` as well; pycma and cmaes: the package's
    version.
    """
    package = "cma" if method.startswith("pycma") else "cmaes" if method[:5] == "cmaes" else ""
    if package not in _VERSIONS:
        if package:
            _VERSIONS[package] = f"{package} {__import__(package).__version__}"
        else:
            sources = _digest(sorted((ROOT / "nes_asktell").rglob("*.py")))
            _VERSIONS[package] = f"nes_asktell sources {sources}"
    if not package and method.split("+")[0] in CLASS_VARIANTS:
        variants = _digest([ROOT / path for path in VARIANT_SOURCES])
        return f"{_VERSIONS[package]}, benchmark variants {variants}"
    return _VERSIONS[package]


def run_cached(
    cache: Path,
    method: str,
    function: int,
    dim: int,
    index: int,
    budget: int,
    rerun: bool,
    cached_only: bool = False,
    suite: str = "bbob",
    coco: CocoLog | None = None,
) -> dict[str, object] | None:
    """Return the record of one run, from `cache` or by running it (then stored).

    A cached record is reused only if it holds the target hits, was run with the current
    :func:`method_version` and ended without an error (a run that raised, say a MemoryError
    while the machine was short of memory, is run again rather than kept as a failure). With
    `cached_only`, a run that is not in the cache is not run: None is returned. A record also
    holds the best f - f_opt reached (``best``) and the seconds spent in the objective
    (``fseconds``); runs of another `suite` than ``bbob`` are cached under their suite's name.
    With `coco`, the run is run (whatever the cache holds) with COCO's observer on its
    problem; if the cache held a record of the same version whose
    evaluations, success or target hits differ, a RuntimeWarning says so.
    """
    prefix = "" if suite == "bbob" else f"{suite}_"
    path = cache / f"{prefix}{method}_f{function}_d{dim}_i{index}_b{budget}.json"
    version = method_version(method)
    cached: dict[str, object] | None = None
    if path.exists() and not rerun:
        out = read_record(path)
        large = suite == "bbob" or "best" in out  # the large-scale tables read "best"
        if "hits" in out and large and out.get("version") == version and not out.get("error"):
            cached = out
    if cached is not None and coco is None:
        return cached
    if cached_only:
        return None
    # the suite stays alive as long as its problem is observed
    coco_suite, problem, fopt, instance = load_suite_problem(function, dim, index, suite)
    obj = Objective(problem, fopt, budget * dim)
    x0, seed = start(function, dim, index)
    t0 = time.perf_counter()
    error = ""
    observing = coco.observing(problem, method) if coco else contextlib.nullcontext()
    with warnings.catch_warnings(), observing:
        warnings.simplefilter("ignore")
        try:
            METHODS[method](obj, x0, seed, SIGMA0)
        except _StopRunError:
            pass
        except Exception as exc:  # a broken method must not end the benchmark
            error = f"{type(exc).__name__}: {exc}"
    del problem, coco_suite
    record: dict[str, object] = {
        "method": method,
        "function": function,
        "dim": dim,
        "instance": instance,
        "evals": obj.evals,
        "success": obj.solved,
        "seconds": time.perf_counter() - t0,
        "fseconds": obj.fseconds,
        "best": obj.best,
        "error": error,
        "version": version,
        # first evaluation reaching each ECDF target (None: never)
        "hits": [int(h) if math.isfinite(h) else None for h in obj.hits],
    }
    if cached is not None and any(cached[k] != record[k] for k in ("evals", "success", "hits")):
        warnings.warn(
            f"{path.name}: the observed run differs from the cached one (evaluations "
            f"{cached['evals']} then {record['evals']}); the cache now holds the observed run",
            RuntimeWarning,
            stacklevel=2,
        )
    write_record(path, record)
    return record


def ert(records: Sequence[dict[str, object]]) -> tuple[float, int]:
    """Return the ERT (evaluations of all runs / successes; inf without one) and the successes."""
    n_ok = sum(bool(r["success"]) for r in records)
    total = sum(int(r["evals"]) for r in records)  # type: ignore[call-overload]
    return (total / n_ok if n_ok else math.inf), n_ok


def table(
    records: list[dict[str, object]], methods: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> str:
    """Return a simple table per cell (f, d): ERT (successes/runs), then the ratios `pairs`.

    A ratio column ``M/R`` is given for each pair (M, R) of `pairs`: ERT of M / ERT of R; it is
    empty where R never succeeded, inf where only M never did.
    """
    cells = sorted({(int(r["dim"]), int(r["function"])) for r in records})  # type: ignore[call-overload]
    headers = ["f", "d", *methods, *(f"{m}/{r}" for m, r in pairs)]
    rows = []
    for d, f in cells:
        here = [r for r in records if r["function"] == f and r["dim"] == d]
        erts = {m: ert([r for r in here if r["method"] == m]) for m in methods}
        counts = {m: sum(r["method"] == m for r in here) for m in methods}
        row = [f"f{f}", str(d)]
        row += [
            f"{fmt_count(erts[m][0])} ({erts[m][1]}/{counts[m]})" if counts[m] else ""
            for m in methods
        ]
        for m, ref in pairs:
            a, b = erts[m][0], erts[ref][0]
            ran = counts[m] and counts[ref]
            row.append(fmt_ratio(a / b if ran and math.isfinite(b) else math.nan))
        rows.append(row)
    return simple_table(headers, rows)


def hits_by(records: Sequence[dict[str, object]]) -> dict[tuple[str, int], np.ndarray]:
    """Return {(method, dim): (runs, targets) array of first hits, inf where never reached}."""
    out: dict[tuple[str, int], list[list[float]]] = {}
    for r in records:
        hits = [math.inf if h is None else float(h) for h in r["hits"]]  # type: ignore[attr-defined]
        out.setdefault((str(r["method"]), int(r["dim"])), []).append(hits)  # type: ignore[call-overload]
    return {k: np.array(v) for k, v in out.items()}


def ecdf_at(hits: np.ndarray, evals: float) -> float:
    """Return the fraction of (run, target) pairs of `hits` reached within `evals` evaluations."""
    return float((hits <= evals).mean())


def ecdf_summary(
    records: Sequence[dict[str, object]], methods: Sequence[str], multiples: Sequence[float]
) -> str:
    """Return a simple table: per dimension and method, the ECDF at `multiples` x d evaluations."""
    hits = hits_by(records)
    dims = sorted({d for _, d in hits})
    headers = ["d", "method", *(f"{m:g} d" for m in multiples)]
    rows = []
    for d in dims:
        for m in methods:
            if (m, d) in hits:
                h = hits[(m, d)]
                rows.append([str(d), m, *(f"{ecdf_at(h, k * d):.3f}" for k in multiples)])
    return simple_table(headers, rows)


def ecdf_margin(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Return the smallest ECDF(a) - ECDF(b) over evaluations in [lo, hi], and where it is.

    Both ECDFs are step functions that change only at a hit, so checking `lo` and every hit
    in (lo, hi] checks every budget of the interval.
    """
    steps = np.concatenate([a.ravel(), b.ravel()])
    points = np.unique(np.concatenate([[lo], steps[(steps > lo) & (steps <= hi)]]))
    margins = [ecdf_at(a, x) - ecdf_at(b, x) for x in points]
    k = int(np.argmin(margins))
    return float(margins[k]), float(points[k])


# ---------------------------------------------------------------- the large-scale comparison
#: methods within this factor of each other (in f - f_opt, or in evaluations when both reached
#: the final target) are tied
TIE = 1.1
#: the library strategies whose lead over pycma's large-scale variants the issue's target counts
NES_LARGE = ("CRFMNES", "SNES")
#: the decade targets of the runs table: 1e2, 1e1, ..., 1e-8 (indices into ECDF_TARGETS)
DECADES = tuple(range(0, 51, 5))


def outcome(records: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """Return (median best f - f_opt, median evaluations to the target) over `records`' runs.

    f - f_opt is clipped at the final target 1e-8 (a run stops there); the evaluations are
    inf unless the median run reached the target.
    """
    best = sorted(max(float(r["best"]), TARGET) for r in records)
    evals = sorted(int(r["evals"]) if r["success"] else math.inf for r in records)
    return float(np.median(best)), float(np.median(evals))


def compare(a: tuple[float, float], b: tuple[float, float]) -> int:
    """Return 1 if outcome `a` is ahead of `b`, -1 if behind, 0 if tied (within :data:`TIE`).

    Lower f - f_opt is ahead; if both reached the final target, fewer evaluations are ahead.
    """
    if a[0] <= TARGET and b[0] <= TARGET:
        x, y = a[1], b[1]
    else:
        x, y = a[0], b[0]
    return 1 if x * TIE < y else -1 if y * TIE < x else 0


def _fmt_outcome(o: tuple[float, float]) -> str:
    return f"1e-8 @ {fmt_count(o[1])}" if o[0] <= TARGET else f"{o[0]:.2e}"


def large_tables(
    records: Sequence[dict[str, Any]], methods: Sequence[str]
) -> tuple[str, str, list[list[str]]]:
    """Return the best-f table, the per-method table and the count rows of each dimension.

    Best-f table: per (d, f), each method's median best f - f_opt within the budget (``1e-8 @ n``:
    the target reached after n evaluations), the methods tied for the lowest, and whether the
    better of :data:`NES_LARGE` is ahead of, tied with or behind the best of :data:`PYCMA_LARGE`.
    Per-method table: per (d, method), the functions reaching each target 1e2, 1e0, ..., 1e-8,
    and the median over functions of the method's own seconds per evaluation (the run's time
    minus the objective's) and of the objective's.
    """
    by: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in records:
        by.setdefault((str(r["method"]), int(r["function"]), int(r["dim"])), []).append(r)
    cells = sorted({(d, f) for _, f, d in by})
    nes = [m for m in methods if m.split("+")[0] in NES_LARGE]
    refs = [m for m in methods if m in PYCMA_LARGE]
    rows: list[list[str]] = []
    counts: dict[int, dict[str, int]] = {}
    for d, f in cells:
        here = {m: outcome(by[(m, f, d)]) for m in methods if (m, f, d) in by}
        top = min(here.values(), key=lambda o: (o[0], o[1]))
        winners = [m for m, o in here.items() if compare(top, o) == 0]
        verdict = ""
        if nes and refs and all(m in here for m in nes + refs):
            a = min((here[m] for m in nes), key=lambda o: (o[0], o[1]))
            b = min((here[m] for m in refs), key=lambda o: (o[0], o[1]))
            verdict = {1: "ahead", 0: "tied", -1: "behind"}[compare(a, b)]
            c = counts.setdefault(d, {"ahead": 0, "tied": 0, "behind": 0})
            c[verdict] += 1
        row = [f"f{f}", str(d), *(_fmt_outcome(here[m]) if m in here else "" for m in methods)]
        rows.append([*row, " ".join(winners), verdict])
    best = simple_table(["f", "d", *methods, "lowest (within 10%)", "NES vs pycma"], rows)
    per = []
    for d in sorted({d for d, _ in cells}):
        for m in methods:
            runs = [r for (mm, _, dd), rs in by.items() if mm == m and dd == d for r in rs]
            if not runs:
                continue
            reached = [
                sum(
                    any(r["hits"][k] is not None for r in by[(m, f, d)])
                    for f in {int(r["function"]) for r in runs}
                )
                for k in DECADES[::2]
            ]
            own = [
                (float(r["seconds"]) - float(r["fseconds"])) / max(int(r["evals"]), 1)
                for r in runs
            ]
            fun = [float(r["fseconds"]) / max(int(r["evals"]), 1) for r in runs]
            per.append(
                [
                    str(d),
                    m,
                    *map(str, reached),
                    f"{np.median(own) * 1e6:.1f}",
                    f"{np.median(fun) * 1e6:.1f}",
                ]
            )
    headers = ["d", "method", *(f"{ECDF_TARGETS[k]:.0e}" for k in DECADES[::2])]
    per_table = simple_table([*headers, "own us/eval", "objective us/eval"], per)
    count_rows = [
        [str(d), str(c["ahead"]), str(c["tied"]), str(c["behind"]), str(sum(c.values()))]
        for d, c in sorted(counts.items())
    ]
    return best, per_table, count_rows


def _int_list(text: str) -> list[int]:
    """Parse ``5`` or ``1-24`` into a list of ints."""
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing runs of the selection, print its tables and write them with ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["DXNESIC", "CRFMNES", "XNES", "pycma"])
    p.add_argument("--functions", nargs="+", type=_int_list, default=[[1], [2], [8], [10]])
    p.add_argument("--dims", nargs="+", type=int, default=[5, 10])
    p.add_argument("--instances", nargs="+", type=_int_list, default=[[1, 2, 3]])
    p.add_argument("--budget", type=int, default=10_000, help="evaluations per dimension")
    p.add_argument(
        "--suite",
        choices=["bbob", "bbob-largescale"],
        default="bbob",
        help="COCO suite; bbob-largescale (d = 20 ... 640) prints the large-scale tables instead "
        "of the ERT table: best f - f_opt, the methods tied for the lowest, CRFMNES/SNES against "
        "pycma's large-scale variants, targets reached and seconds per evaluation",
    )
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "nes_asktell_bench")
    p.add_argument("--reference", nargs="+", default=["pycma"])
    p.add_argument(
        "--ratios",
        nargs="+",
        metavar="M/R",
        help="the ratio columns (default: every method that is not a reference to each one)",
    )
    p.add_argument(
        "--ecdf-check",
        nargs="+",
        default=[],
        metavar="M/R",
        help="print the smallest ECDF of M minus that of R from --ecdf-from x d to the budget",
    )
    p.add_argument("--ecdf-from", type=float, default=1000.0, metavar="K")
    p.add_argument("--rerun", nargs="*", default=[], help="methods to run again")
    p.add_argument("--out", type=Path, help="folder for the tables, the runs and the ECDF plot")
    p.add_argument("--name", default="nes_family", help="file name prefix of the outputs")
    p.add_argument("--progress", action="store_true", help="print a line per run")
    p.add_argument(
        "--coco-out",
        type=Path,
        metavar="DIR",
        help="run every run of the selection again with COCO's observer, one result folder "
        "per method under DIR/exdata (the cache is written, not read)",
    )
    p.add_argument(
        "--cocopp",
        nargs="+",
        type=Path,
        metavar="FOLDER",
        help="run nothing: run COCO's cocopp on these result folders (into --cocopp-out)",
    )
    p.add_argument(
        "--cocopp-out",
        type=Path,
        metavar="PP",
        help="output folder of cocopp, on the folders of --cocopp or of this --coco-out run",
    )
    p.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing: use the problems every method has in the cache, leave out the rest",
    )
    p.add_argument(
        "--seed-problem",
        type=int,
        default=0,
        metavar="N",
        help="instead of BBOB: the methods on the seed's 3-d problem with seeds 0 .. N-1",
    )
    args = p.parse_args(argv)
    if args.budget < 1:
        p.error(f"`--budget` must be at least 1 evaluation per dimension, but got {args.budget}")
    if args.seed_problem < 0:
        p.error(f"`--seed-problem` must be a number of seeds, but got {args.seed_problem}")
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; the methods are {sorted(METHODS)}")
    checks = [item.split("/") for item in args.ecdf_check]
    if any(len(pair) != 2 or not set(pair) <= set(args.methods) for pair in checks):
        p.error(f"`--ecdf-check` takes M/R pairs of the methods, but got {args.ecdf_check}")
    if checks and not 0 <= args.ecdf_from <= args.budget:
        p.error(
            f"`--ecdf-from` must be within 0 and the budget ({args.budget} evaluations per "
            f"dimension) for `--ecdf-check`, but got {args.ecdf_from:g}"
        )
    if not (args.cached_only or args.cocopp or args.seed_problem):
        try:  # before a run is spent, not when its record is written
            args.cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            p.error(f"`--cache` must be a folder that can be written, but got {args.cache}: {exc}")
    if args.cocopp:
        if args.cocopp_out is None:
            p.error("`--cocopp` needs `--cocopp-out`, the folder cocopp writes into")
        print(f"written: {run_cocopp(args.cocopp, args.cocopp_out)}")
        return
    if args.coco_out is not None and (
        args.cached_only or args.suite != "bbob" or args.seed_problem
    ):
        p.error(
            "`--coco-out` runs the runs of the bbob suite: not with --cached-only, --suite or "
            "--seed-problem"
        )
    if args.cocopp_out is not None and args.coco_out is None:
        p.error("`--cocopp-out` needs `--coco-out` (runs to observe) or `--cocopp FOLDER ...`")
    coco = CocoLog(args.coco_out) if args.coco_out is not None else None
    if args.seed_problem:
        results = seed_problem(args.methods, args.seed_problem, runners=METHODS)
        text = simple_table(
            ["method", "median evaluations to 1e-8", "solved"],
            [[m, fmt_count(med), f"{k}/{n}"] for m, (med, k, n) in results.items()],
        )
        print(text)
        if args.out is not None:
            write_text(args.out / f"{args.name}_seed_problem.rst", text)
        return
    functions = [f for chunk in args.functions for f in chunk]
    instances = [i for chunk in args.instances for i in chunk]
    for f, d, i in itertools.product(functions, args.dims, instances):
        try:
            check_selection(f, d, i, args.suite)
        except ValueError as exc:
            p.error(str(exc))
    references = [r for r in args.reference if r in args.methods]
    for module in ("nes_asktell", "cma", "cma.restricted_gaussian_sampler", "cmaes"):
        with contextlib.suppress(ImportError):  # imported now, not in the first run's time
            importlib.import_module(module)
    records = []
    t0 = time.perf_counter()
    for d in args.dims:
        for f in functions:
            for i in instances:
                problem = []
                for m in args.methods:
                    rerun = m in args.rerun
                    r = run_cached(
                        args.cache,
                        m,
                        f,
                        d,
                        i,
                        args.budget,
                        rerun,
                        args.cached_only,
                        args.suite,
                        coco,
                    )
                    if r is None:
                        continue
                    problem.append(r)
                    if args.progress:
                        print(
                            f"{time.perf_counter() - t0:7.0f} s  {m} f{f} d{d} i{i}: "
                            f"{r['evals']} evaluations, best {r['best']:.2e}, "
                            f"{r['seconds']:.1f} s ({r['fseconds']:.1f} s in f)",
                            flush=True,
                        )
                # with --cached-only, a problem counts only if every method has run it
                if len(problem) == len(args.methods) or not args.cached_only:
                    records.extend(problem)
    if not records:
        print("no runs in the selection (with --cached-only: none cached for every method)")
        return
    if coco is not None:
        folders = coco.folders()
        print("COCO data: " + " ".join(str(f) for f in folders))
        if args.cocopp_out is not None:
            print(f"written: {run_cocopp(folders, args.cocopp_out)}")
    for r in records:
        if r["error"]:
            print(f"error: {r['method']} f{r['function']} d{r['dim']}: {r['error']}")
    if args.ratios:
        pairs = [tuple(item.split("/", 1)) for item in args.ratios]
        bad = [m for pair in pairs for m in pair if m not in args.methods]
        if bad or any(len(pair) != 2 for pair in pairs):
            p.error(f"`--ratios` takes M/R pairs of the methods, but got {args.ratios}")
    else:
        pairs = [(m, r) for r in references for m in args.methods if m not in references]
    if args.suite != "bbob":
        _large_main(args, records, functions, instances)
        return
    text = table(records, args.methods, pairs)
    multiples = [10**k for k in range(1, int(math.log10(args.budget)) + 1)]
    summary = ecdf_summary(records, args.methods, multiples)
    print(text)
    print("ECDF: fraction of (function, instance, target) triples reached within k x d")
    print(summary)
    hits = hits_by(records)
    checks = []
    for m, ref in checks:
        for d in args.dims:
            if (m, d) in hits and (ref, d) in hits:
                lo, hi = args.ecdf_from * d, float(args.budget * d)
                margin, at = ecdf_margin(hits[(m, d)], hits[(ref, d)], lo, hi)
                checks.append([m, ref, str(d), f"{margin:+.3f}", f"{at / d:,.0f} d", f"{at:,.0f}"])
    check_text = ""
    if checks:
        headers = ["M", "R", "d", "min ECDF(M) - ECDF(R)", "at evals / d", "at evals"]
        check_text = simple_table(headers, checks)
        print(f"ECDF of M minus ECDF of R, smallest from {args.ecdf_from:g} d to the budget")
        print(check_text)
    if args.out is not None:
        write_text(args.out / f"{args.name}_ert.rst", text)
        write_text(args.out / f"{args.name}_ecdf.rst", summary)
        if check_text:
            write_text(args.out / f"{args.name}_ecdf_check.rst", check_text)
        keys = ["method", "function", "dim", "instance", "evals", "success", "seconds", "error"]
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / f"{args.name}_runs.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*keys, "version"])
            for r in records:
                writer.writerow([*(r[k] for k in keys), r["version"]])
        contiguous = functions == list(range(functions[0], functions[0] + len(functions)))
        names = (
            f"f{functions[0]}-f{functions[-1]}"
            if contiguous and len(functions) > 2
            else ", ".join(f"f{f}" for f in functions)
        )
        title = f"BBOB {names}, instances {instances[0]}-{instances[-1]}, budget {args.budget:g} d"
        png = args.out / f"{args.name}_ecdf.png"
        path = suite_ecdf_plot(hits, args.methods, args.budget, title, png)
        print(f"written: {args.out}/{args.name}_* ({path})")


def _large_main(
    args: argparse.Namespace,
    records: list[dict[str, object]],
    functions: Sequence[int],
    instances: Sequence[int],
) -> None:
    """Print (and with ``--out`` write) the large-scale tables of `records`."""
    best, per, count_rows = large_tables(records, args.methods)
    count_text = simple_table(
        ["d", "CRFMNES/SNES ahead", "tied", "behind", "functions"], count_rows
    )
    multiples = sorted({*(10**k for k in range(1, int(math.log10(args.budget)) + 1)), args.budget})
    summary = ecdf_summary(records, args.methods, multiples)
    print(f"{args.suite}: median best f - f_opt within {args.budget:g} d evaluations")
    print(best)
    print(
        f"better of {'/'.join(NES_LARGE)} against the best of {'/'.join(PYCMA_LARGE)} per function"
    )
    print(count_text)
    print(
        "functions reaching each target; median seconds per evaluation (method's own, objective's)"
    )
    print(per)
    print("ECDF: fraction of (function, instance, target) triples reached within k x d")
    print(summary)
    if args.out is None:
        return
    write_text(args.out / f"{args.name}_best.rst", best)
    write_text(args.out / f"{args.name}_count.rst", count_text)
    write_text(args.out / f"{args.name}_per_method.rst", per)
    write_text(args.out / f"{args.name}_ecdf.rst", summary)
    keys = ["method", "function", "dim", "instance", "evals", "success", "best", "seconds"]
    keys += ["fseconds", "error"]
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"{args.name}_runs.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        targets = [f"evals to {ECDF_TARGETS[k]:.0e}" for k in DECADES]
        writer.writerow([*keys, *targets, "version"])
        for r in records:
            hits = [r["hits"][k] for k in DECADES]  # type: ignore[index]
            writer.writerow(
                [*(r[k] for k in keys), *("" if h is None else h for h in hits), r["version"]]
            )
    title = f"{args.suite} f{functions[0]}-f{functions[-1]}, {len(instances)} instance(s)"
    title += f", budget {args.budget:g} d"
    path = suite_ecdf_plot(
        hits_by(records), args.methods, args.budget, title, args.out / f"{args.name}_ecdf.png"
    )
    print(f"written: {args.out}/{args.name}_* ({path})")


if __name__ == "__main__":
    main()
