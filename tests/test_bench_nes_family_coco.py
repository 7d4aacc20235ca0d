"""COCO's observer on benchmarks/nes_family.py's runs (``--coco-out``) and ``cocopp`` on its data.

The observer must log every evaluation of a run, in COCO's own files, and leave the run as it
is: the same evaluations, success and target hits as the run without it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

for _module in ("cocoex", "cma", "cmaes"):  # the `bench` extra
    pytest.importorskip(_module)
from benchmarks import nes_family  # noqa: E402

#: (method, function, instance index): runs that stop at the budget and one that hits 1e-8
RUNS = [("XNES+IPOP", 1, 1), ("XNES+IPOP", 15, 2), ("pycma+BIPOP", 15, 1), ("pycma+BIPOP", 1, 2)]
DIM, BUDGET = 2, 300


def _last_evaluations(path: Path) -> list[int]:
    """Return the first column of the last data line of each run's block in a .dat/.tdat file."""
    out: list[int] = []
    last = None
    for line in path.read_text().splitlines():
        if line.startswith("%"):
            if last is not None:
                out.append(last)
            last = None
        elif line.strip():
            last = int(line.split()[0])
    if last is not None:
        out.append(last)
    return out


def test_observer_logs_every_evaluation_and_leaves_the_runs_unchanged(tmp_path: Path) -> None:
    plain, observed = {}, {}
    coco = nes_family.CocoLog(tmp_path / "coco")
    for method, function, index in RUNS:
        args = (method, function, DIM, index, BUDGET, False)
        plain[method, function, index] = nes_family.run_cached(tmp_path / "a", *args)
        observed[method, function, index] = nes_family.run_cached(tmp_path / "b", *args, coco=coco)
    # a run that hits 1e-8 within the budget is among them, and one that does not
    assert {bool(r["success"]) for r in plain.values()} == {True, False}  # type: ignore[index]
    for key, a in plain.items():
        b = observed[key]
        assert a is not None
        assert b is not None
        assert (b["evals"], b["success"], b["hits"]) == (a["evals"], a["success"], a["hits"])
        assert b["best"] == a["best"]

    folders = coco.folders()
    assert [f.name for f in folders] == ["XNES+IPOP", "pycma+BIPOP"]
    for folder in folders:
        runs = {(f, i): observed[m, f, i] for m, f, i in RUNS if m == folder.name}
        for function in (1, 15):
            (info,) = folder.glob(f"*_f{function}.info")
            text = info.read_text()
            assert f"algId = '{folder.name}'" in text
            # one "instance:evaluations|best f - f_opt" entry per run of the function
            entries = re.findall(r"(\d+):(\d+)\|([-+.e\d]+)", text)
            index = 1 if (function, 1) in runs else 2
            record = runs[function, index]
            (entry,) = entries
            assert int(entry[0]) == record["instance"]
            assert int(entry[1]) == record["evals"]
            # COCO writes the best f - f_opt with two digits (%.1e)
            assert float(entry[2]) == pytest.approx(float(record["best"]), rel=0.05)
            dat = folder / f"data_f{function}" / f"bbobexp_f{function}_DIM{DIM}.dat"
            tdat = dat.with_suffix(".tdat")
            assert _last_evaluations(dat) == [record["evals"]]
            assert _last_evaluations(tdat) == [record["evals"]]

    # the observed runs are cached like the others, and the cache is written, not read
    cached = json.loads((tmp_path / "b" / f"XNES+IPOP_f1_d{DIM}_i1_b{BUDGET}.json").read_text())
    assert cached["evals"] == observed["XNES+IPOP", 1, 1]["evals"]  # type: ignore[index]


def test_observed_run_that_differs_from_the_cache_is_reported(tmp_path: Path) -> None:
    args = ("pycma+BIPOP", 1, DIM, 1, BUDGET, False)
    record = nes_family.run_cached(tmp_path, *args)
    assert record is not None
    path = tmp_path / f"pycma+BIPOP_f1_d{DIM}_i1_b{BUDGET}.json"
    path.write_text(json.dumps({**record, "evals": 7}))
    with pytest.warns(RuntimeWarning, match="differs from the cached one"):
        nes_family.run_cached(tmp_path, *args, coco=nes_family.CocoLog(tmp_path / "coco"))
    assert json.loads(path.read_text())["evals"] == record["evals"]


def test_coco_options_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    base = ["--methods", "pycma", "--functions", "1", "--dims", "2", "--cache", str(tmp_path)]
    with pytest.raises(SystemExit):
        nes_family.main([*base, "--coco-out", str(tmp_path / "c"), "--cached-only"])
    with pytest.raises(SystemExit):
        nes_family.main([*base, "--cocopp-out", str(tmp_path / "pp")])
    with pytest.raises(SystemExit):
        nes_family.main(["--cocopp", str(tmp_path)])
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_cocopp_post_processes_the_observed_data(tmp_path: Path) -> None:
    pytest.importorskip("cocopp")
    argv = ["--methods", "XNES+IPOP", "pycma+BIPOP", "--functions", "1", "--dims", "2"]
    argv += ["--instances", "1", "--budget", "100", "--cache", str(tmp_path / "cache")]
    nes_family.main([*argv, "--coco-out", str(tmp_path / "coco")])
    folders = sorted((tmp_path / "coco" / "exdata").iterdir())
    nes_family.main(["--cocopp", *map(str, folders), "--cocopp-out", str(tmp_path / "pp")])
    assert (tmp_path / "pp" / "index.html").exists()
    # the aggregated runtime ECDF of the comparison, in d = 2
    assert list((tmp_path / "pp").rglob("pprldmany_02D_noiselessall.png"))


def test_cocopp_figures_keep_their_labels(tmp_path: Path) -> None:
    # cocopp's runtime ECDFs: names written right of the axes, beyond the figure's edge, and
    # unclipped markers far outside, which matplotlib's "tight" box would take in
    plt = pytest.importorskip("matplotlib.pyplot")
    from PIL import Image

    def draw(name: str) -> tuple[int, int]:
        fig = plt.figure(figsize=(4.0, 3.0))
        ax = fig.add_subplot()
        ax.set_xlim(0, 1)
        ax.text(1.05, 0.5, "CRFMNES+IPOP with a long name", transform=ax.transAxes)
        ax.plot([-500.0], [0.0], "o", clip_on=False)
        with nes_family._labels_kept():
            plt.savefig(tmp_path / name, dpi=50)
            plt.savefig(tmp_path / f"kept_{name}", dpi=50, bbox_inches=None)
        plt.close(fig)
        with Image.open(tmp_path / name) as a, Image.open(tmp_path / f"kept_{name}") as b:
            assert a.size == b.size
            return a.size

    width, height = draw("fig.png")
    # the text ends about 1.9 inches right of the 4-inch figure; the marker is not taken in
    assert 4.5 * 50 < width < 8 * 50
    assert height <= 3.5 * 50
    assert plt.savefig.__module__ == "matplotlib.pyplot"  # restored
