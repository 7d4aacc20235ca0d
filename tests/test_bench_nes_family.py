"""Smoke test of benchmarks/nes_family.py: runs are cached per run and the table is read back.

It checks the harness (one file per run, a cached run is not run again, the ERT formula), not
the speed or the ranking of the methods.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

for _module in ("cocoex", "cma", "cmaes"):  # the `bench` extra
    pytest.importorskip(_module)
from benchmarks import nes_family  # noqa: E402


def test_runs_are_cached_one_file_each_and_reused(tmp_path: Path, capsys) -> None:
    argv = ["--methods", "DXNESIC", "CRFMNES+BIPOP", "pycma", "--functions", "1", "--dims", "2"]
    argv += ["--instances", "1", "--budget", "300", "--cache", str(tmp_path)]
    nes_family.main(argv)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "CRFMNES+BIPOP_f1_d2_i1_b300.json",
        "DXNESIC_f1_d2_i1_b300.json",
        "pycma_f1_d2_i1_b300.json",
    ]
    first = capsys.readouterr().out
    for name in files:
        record = json.loads((tmp_path / name).read_text())
        assert record["error"] == ""
        assert 0 < record["evals"] <= 600
    # a cached run is read back, not run again: a doctored record shows in the table
    path = tmp_path / "DXNESIC_f1_d2_i1_b300.json"
    record = json.loads(path.read_text())
    record.update(evals=123, success=True)
    path.write_text(json.dumps(record))
    nes_family.main(argv)
    second = capsys.readouterr().out
    assert "123 (1/1)" in second
    assert "123 (1/1)" not in first


def test_ert_is_total_evaluations_over_successes() -> None:
    runs = [{"evals": 100, "success": True}, {"evals": 300, "success": False}]
    assert nes_family.ert(runs) == (400.0, 1)
    assert nes_family.ert([{"evals": 5, "success": False}]) == (math.inf, 0)


def test_record_holds_hits_and_a_stale_version_is_rerun(tmp_path: Path, capsys) -> None:
    argv = ["--methods", "XNES+IPOP", "pycma+BIPOP", "--functions", "1", "--dims", "2"]
    argv += ["--instances", "1", "--budget", "500", "--cache", str(tmp_path)]
    argv += ["--reference", "pycma+BIPOP", "--out", str(tmp_path / "out")]
    nes_family.main(argv)
    path = tmp_path / "XNES+IPOP_f1_d2_i1_b500.json"
    record = json.loads(path.read_text())
    assert record["version"] == nes_family.method_version("XNES+IPOP")
    hits = [math.inf if h is None else h for h in record["hits"]]
    assert len(hits) == 51
    assert hits == sorted(hits)  # a lower target is never reached before a higher one
    if record["success"]:
        assert hits[-1] == record["evals"]  # the run stops at the evaluation that hits 1e-8
    # a record of another version of the method is not reused
    record.update(version="old", evals=7)
    path.write_text(json.dumps(record))
    nes_family.main(argv)
    assert json.loads(path.read_text())["evals"] != 7
    # nor is a record of a run that raised: the error may have been the machine's, not the run's
    record = json.loads(path.read_text())
    record.update(error="MemoryError: ", evals=7)
    path.write_text(json.dumps(record))
    nes_family.main(argv)
    rerun = json.loads(path.read_text())
    assert rerun["error"] == ""
    assert rerun["evals"] != 7
    out = capsys.readouterr().out
    assert "XNES+IPOP/pycma+BIPOP" in out
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "nes_family_ecdf.png",
        "nes_family_ecdf.rst",
        "nes_family_ert.rst",
        "nes_family_runs.csv",
    ]


def test_ecdf_counts_run_target_pairs() -> None:
    inf = None
    records = [
        {"method": "m", "dim": 2, "hits": [10, 20, inf, inf]},
        {"method": "m", "dim": 2, "hits": [5, inf, inf, inf]},
    ]
    hits = nes_family.hits_by(records)[("m", 2)]
    assert nes_family.ecdf_at(hits, 4) == 0.0
    assert nes_family.ecdf_at(hits, 10) == 2 / 8
    assert nes_family.ecdf_at(hits, 1e9) == 3 / 8


def test_ecdf_margin_finds_the_worst_budget() -> None:
    a = np.array([[10.0, 40.0]])
    b = np.array([[20.0, 30.0]])
    # ECDF(a) - ECDF(b): +0.5 on [10, 20), 0 on [20, 30), -0.5 on [30, 40), 0 from 40
    assert nes_family.ecdf_margin(a, b, 10.0, 100.0) == (-0.5, 30.0)
    assert nes_family.ecdf_margin(a, b, 10.0, 25.0) == (0.0, 20.0)
    assert nes_family.ecdf_margin(a, b, 40.0, 100.0) == (0.0, 40.0)


def test_cached_only_runs_nothing_and_keeps_complete_problems(tmp_path: Path, capsys) -> None:
    base = ["--functions", "1", "--dims", "2", "--instances", "1", "--budget", "300"]
    base += ["--cache", str(tmp_path)]
    nes_family.main(["--methods", "pycma", *base])
    nes_family.main(["--methods", "pycma", "XNES", "--cached-only", *base])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pycma_f1_d2_i1_b300.json"]
    assert "no runs in the selection" in capsys.readouterr().out


def test_compare_ties_within_ten_percent_and_counts_evaluations_at_the_target() -> None:
    t = nes_family.TARGET
    assert nes_family.compare((1.0, math.inf), (1.05, math.inf)) == 0
    assert nes_family.compare((1.0, math.inf), (1.2, math.inf)) == 1
    assert nes_family.compare((1.2, math.inf), (1.0, math.inf)) == -1
    assert nes_family.compare((t, 1000.0), (t, 1050.0)) == 0  # both reached 1e-8: evaluations
    assert nes_family.compare((t, 1000.0), (t, 2000.0)) == 1
    assert nes_family.compare((t, 5000.0), (1e-6, math.inf)) == 1


def test_largescale_suite_runs_are_cached_apart_and_tabled(tmp_path: Path, capsys) -> None:
    argv = ["--suite", "bbob-largescale", "--methods", "SNES+IPOP", "pycma-sep+IPOP"]
    argv += ["--functions", "1", "--dims", "20", "--instances", "1", "--budget", "20"]
    nes_family.main([*argv, "--cache", str(tmp_path), "--out", str(tmp_path / "out")])
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == [
        "bbob-largescale_SNES+IPOP_f1_d20_i1_b20.json",
        "bbob-largescale_pycma-sep+IPOP_f1_d20_i1_b20.json",
    ]
    for name in files:
        record = json.loads((tmp_path / name).read_text())
        assert record["evals"] == 400
        assert record["error"] == ""
        assert 0 < record["best"] < math.inf  # f - f_opt: f_opt is the suite's (positive gap)
        assert 0 < record["fseconds"] < record["seconds"]
    out = capsys.readouterr().out
    assert "NES vs pycma" in out
    assert "own us/eval" in out
    assert (tmp_path / "out" / "nes_family_best.rst").exists()


def test_cmaes_dxnesic_runs_to_the_target_under_numpy2(tmp_path: Path) -> None:
    # cmaes 0.13.1's DXNESIC gives math.sqrt a 1 x 1 array in tell, which NumPy 2.4 refuses;
    # the runner hands its module a math whose sqrt takes the array's one value.
    argv = ["--methods", "cmaes-DXNESIC", "--functions", "1", "--dims", "2", "--instances", "1"]
    nes_family.main([*argv, "--budget", "2000", "--cache", str(tmp_path)])
    record = json.loads((tmp_path / "cmaes-DXNESIC_f1_d2_i1_b2000.json").read_text())
    assert record["error"] == ""
    assert record["success"] is True
    assert record["evals"] > 100  # many generations, not one that ended in an error


def test_cmaes_numpy2_math_takes_a_size_one_array_and_keeps_the_rest() -> None:
    from benchmarks._bbob_methods import cmaes_numpy2_math

    fixed = cmaes_numpy2_math()
    assert fixed.sqrt(np.array([[6.25]])) == 2.5
    assert fixed.sqrt(2.0) == math.sqrt(2.0)
    assert fixed.exp(1.0) == math.exp(1.0)
    assert fixed.floor(2.5) == 2
    with pytest.raises(ValueError, match="math domain error"):
        fixed.sqrt(-1.0)


@pytest.mark.parametrize(("option", "value"), [("--instances", "16"), ("--instances", "0")])
def test_an_instance_index_outside_the_suite_is_refused_before_any_run(
    tmp_path: Path, capsys, option: str, value: str
) -> None:
    # cocoex drops an index it does not have and returns its whole suite, whose first problem
    # is instance 1: index 16 ran instance 1 from the start point and seed of index 16
    argv = ["--methods", "XNES", "--functions", "1", "--dims", "2", "--budget", "10"]
    argv += [option, value, "--cache", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        nes_family.main(argv)
    assert exc.value.code == 2
    assert f"`{option}` must be instance indices of the bbob suite, 1 to 15, but got {value}." in (
        capsys.readouterr().err
    )
    assert not list(tmp_path.iterdir())


def test_a_function_or_dimension_outside_the_suite_is_refused() -> None:
    from benchmarks._bbob_runs import check_selection

    check_selection(24, 40, 15)
    check_selection(30, 2, 15, "bbob-noisy")
    with pytest.raises(ValueError, match=r"`--functions` must be .* 1 to 24, but got 25\."):
        check_selection(25, 2, 1)  # cocoex itself ends the process here
    with pytest.raises(ValueError, match=r"`--dims` must be .*\[2, 3, 5, 10, 20, 40\], but got 4"):
        check_selection(1, 4, 1)
    with pytest.raises(ValueError, match=r"`--dims` must be .* but got 2\."):
        check_selection(1, 2, 1, "bbob-largescale")


def test_a_cached_record_cut_short_is_run_again(tmp_path: Path, capsys) -> None:
    argv = ["--methods", "XNES", "--functions", "1", "--dims", "2", "--instances", "1"]
    argv += ["--budget", "100", "--cache", str(tmp_path)]
    nes_family.main(argv)
    path = tmp_path / "XNES_f1_d2_i1_b100.json"
    whole = json.loads(path.read_text())
    for text in (path.read_text()[:40], "\xff not text", "[1, 2]"):  # a run killed while writing
        path.write_bytes(text.encode("latin-1"))
        nes_family.main(argv)
        assert json.loads(path.read_text())["evals"] == whole["evals"]
    assert "run again" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed-problem", "2", "--methods", "FOO"], "unknown methods ['FOO']"),  # a KeyError
        (["--seed-problem", "-1"], "`--seed-problem` must be a number of seeds, but got -1"),
        (["--budget", "0"], "`--budget` must be at least 1 evaluation per dimension, but got 0"),
        # an --ecdf-check that named no pair of the methods printed nothing, and one from
        # beyond the budget the ECDFs at its start, outside every run
        (["--ecdf-check", "XNES"], "`--ecdf-check` takes M/R pairs of the methods"),
        (["--ecdf-check", "XNES/pycma+BIPOP"], "but got ['XNES/pycma+BIPOP']"),
        (
            ["--ecdf-check", "XNES/pycma", "--budget", "100"],
            "`--ecdf-from` must be within 0 and the budget (100 evaluations per dimension)",
        ),
    ],
)
def test_bad_options_are_refused_before_any_run(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    # --budget 0 ran and cached the runs, then ended in a math domain error
    methods = ["--methods", "XNES", "pycma"] if "--ecdf-check" in argv else []
    with pytest.raises(SystemExit) as exc:
        nes_family.main(
            [*argv, *methods, "--functions", "1", "--dims", "2", "--cache", str(tmp_path)]
        )
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_cache_that_cannot_be_a_folder_is_refused_before_any_run(tmp_path: Path, capsys) -> None:
    cache = tmp_path / "file"
    cache.write_text("")
    argv = ["--methods", "XNES", "--functions", "1", "--dims", "2", "--instances", "1"]
    with pytest.raises(SystemExit) as exc:
        nes_family.main([*argv, "--budget", "50", "--cache", str(cache)])
    assert exc.value.code == 2
    assert f"`--cache` must be a folder that can be written, but got {cache}" in (
        capsys.readouterr().err
    )


def test_a_variant_the_benchmark_defines_is_versioned_by_its_source_too() -> None:
    # XNES-decay is defined in benchmarks/_xnes_variants.py: a change there reran nothing, and
    # the runs of the old variant were reported as the new one's
    library = nes_family.method_version("XNES")
    for method in ("XNES-decay", "XNES-decay1+IPOP", "CRFMNES-paperc1+BIPOP"):
        version = nes_family.method_version(method)
        assert version.startswith(f"{library}, benchmark variants ")
        assert version != library
    assert nes_family.method_version("XNES-r1+IPOP") == library  # options of the library only
