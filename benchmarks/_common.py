"""Small helpers shared by the benchmark modules: output folder, timing, medians, tables.

Everything here is plain Python and numpy, so any benchmark module may import it:

* :data:`OUT_DIR` is where tables and figures go (``docs/_static/bench``);
* :func:`median_seconds` times a callable several times and returns the median;
* :func:`simple_table` formats rows as a reStructuredText *simple table*, which reads well on a
  terminal too, so one string is both printed and written to the docs;
* :func:`write_text` and :func:`write_csv` write an output file, creating folders as needed;
* :func:`fmt_count` and :func:`fmt_ratio` format evaluation counts and ratios (inf as ``inf``);
* :func:`read_record` and :func:`write_record` read and write a cached run (a JSON object).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

#: What an empty or undefined table cell shows.
EMPTY = "\u2014"

#: The folder the docs include benchmark results from.
OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "_static" / "bench"


def median_seconds(func: Callable[[], object], repeats: int = 5) -> float:
    """Return the median wall time of ``func()`` over `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def simple_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return `rows` under `headers` as a reStructuredText simple table (left-aligned cells).

    Empty cells are written as an em dash (a lone ``-`` would start a bullet list), so that
    reStructuredText never merges columns.
    """
    body = [[str(c) if str(c) else EMPTY for c in row] for row in rows]
    head = [str(h) for h in headers]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([rule, line(head), rule, *(line(r) for r in body), rule]) + "\n"


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV file with a header line (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def fmt_count(x: float) -> str:
    """Format an evaluation count: ``12,345``, or ``inf``."""
    return "inf" if math.isinf(x) else f"{x:,.0f}"


def fmt_ratio(x: float) -> str:
    """Format a ratio with two decimals (three significant digits below 0.1), inf or nan."""
    if math.isnan(x):
        return EMPTY
    if math.isinf(x):
        return "inf"
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3g}"


def read_record(path: Path) -> dict[str, Any]:
    """Return the JSON object cached in `path`, or an empty dict if the file holds none.

    A file cut short (by a run killed while writing it, before writes were atomic) or edited
    by hand must not end a benchmark: its run is run again, and a line says so.
    """
    try:
        out = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"{path}: not a cached run ({exc}); run again", flush=True)
        return {}
    return out if isinstance(out, dict) else {}


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write `record` as JSON to `path` whole or not at all (a new file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(path)
