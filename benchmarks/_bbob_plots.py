"""The BBOB benchmark's figures: the runtime ECDF and the ERT ratios to pycma."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks._bbob_runs import NAMES, Config, Run
from benchmarks._bbob_tables import ErtTable, _ratio


def ecdf_plot(runs: Sequence[Run], config: Config, path: Path) -> Path | None:
    """Plot, per dimension, the fraction of (run, target) pairs reached vs evaluations / d."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    methods = [m for m in config.methods if any(r.method == m for r in runs)]
    n = len(config.dims)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False, sharey=True
    )
    grid = np.linspace(0.0, math.log10(config.budget_per_dim), 401)
    styles = {
        "XNES": "C0-",
        "SNES": "C1-",
        "OpenES": "C2:",
        "seed": "C7:",
        "pycma": "C3--",
        "cmaes": "C4--",
    }
    for ax, d in zip(axes.ravel(), config.dims, strict=False):
        for m in methods:
            hits = np.array([r.hits for r in runs if r.method == m and r.dim == d])
            if hits.size == 0:
                continue
            x = np.log10(hits / d)
            frac = [(x <= g).mean() for g in grid]
            ax.plot(grid, frac, styles.get(m, "-"), label=m, lw=1.6)
        ax.set_title(
            f"d = {d}: {len(config.functions)} functions x {len(config.instances)} instances"
        )
        ax.set_xlabel("log10(evaluations / d)")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of (run, target) pairs")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        "BBOB runtime ECDF, targets 1e2..1e-8 on f - f_opt; functions "
        + ", ".join(f"f{f}" for f in config.functions),
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def ratio_plot(table: ErtTable, config: Config, path: Path) -> Path | None:
    """Plot ERT / pycma's ERT against d, one panel per function (missing points: no success)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator
    except ImportError:
        return None
    methods = [m for m in ("XNES", "SNES", "cmaes") if any(k[2] == m for k in table)]
    n = len(config.functions)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False)
    marks = {"XNES": "C0o-", "SNES": "C1s-", "cmaes": "C4^--"}
    for ax, f in zip(axes.ravel(), config.functions, strict=False):
        for m in methods:
            pts = [
                (d, _ratio(table[(d, f, m)][0], table[(d, f, "pycma")][0]))
                for d in config.dims
                if (d, f, m) in table and (d, f, "pycma") in table
            ]
            pts = [(d, r) for d, r in pts if math.isfinite(r)]
            if pts:
                ax.plot(*zip(*pts, strict=True), marks.get(m, "o-"), label=m, ms=4)
        ax.axhline(1.0, color="C3", lw=1.0, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 0.4), max(hi, 2.5))  # at least 0.5, 1 and 2 on the axis
        ax.set_xlim(min(config.dims) / 1.2, max(config.dims) * 1.2)
        ax.set_xticks(config.dims, [str(d) for d in config.dims])
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.minorticks_off()
        ax.set_title(f"f{f} {NAMES.get(str(f), '')}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel("d")
    for ax in axes[:, 0]:
        ax.set_ylabel("ERT / ERT of pycma")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("ERT relative to pycma (dashed line; below: fewer evaluations)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def suite_ecdf_plot(
    hits: dict[tuple[str, int], np.ndarray],
    methods: Sequence[str],
    budget_per_dim: int,
    title: str,
    path: Path,
) -> Path | None:
    """Plot, one panel per dimension, the runtime ECDF of each method over a suite.

    `hits` maps (method, d) to a (runs, targets) array of the first evaluation reaching each
    target (inf: never). The curve is the fraction of (run, target) pairs reached within
    x * d evaluations; a cross marks where each method's runs stopped (the budget).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    dims = sorted({d for _, d in hits})
    cols = min(len(dims), 3)
    rows = math.ceil(len(dims) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, 3.7 * rows), squeeze=False, sharey=True
    )
    grid = np.linspace(0.0, math.log10(budget_per_dim), 401)
    for ax, d in zip(axes.ravel(), dims, strict=False):
        for k, m in enumerate(methods):
            if (m, d) not in hits:
                continue
            h = hits[(m, d)]
            with np.errstate(divide="ignore"):
                x = np.log10(h / d)
            frac = [(x <= g).mean() for g in grid]
            style = "--" if m.startswith(("pycma", "cmaes")) else "-"
            ax.plot(grid, frac, style, color=f"C{k}", label=m, lw=1.7)
            ax.plot(grid[-1], frac[-1], "x", color=f"C{k}", ms=7)
        n_runs = max(hits[(m, d)].shape[0] for m in methods if (m, d) in hits)
        ax.set_title(f"d = {d} ({n_runs} runs per method)", fontsize=10)
        ax.set_xlabel("log10(evaluations / d)")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of (function, target) pairs")
    for ax in axes.ravel()[len(dims) :]:
        ax.set_visible(False)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Runtime ECDF, 51 targets 1e2..1e-8\n{title}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
