"""Smoke tests of the BBOB benchmark harness (benchmarks/bbob.py) on a tiny configuration.

These check the harness (exact evaluation counting, the ERT formula, well-formed tables and
files), never the speed or the ranking of the methods: benchmarks are not timed tests.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` run without `python -m` does not put the root on the path
    sys.path.insert(0, str(ROOT))

for _module in ("cocoex", "cma", "cmaes"):  # the `bench` extra
    pytest.importorskip(_module)
from benchmarks import bbob  # noqa: E402
from benchmarks._common import simple_table  # noqa: E402


def _table_shape(text: str) -> tuple[int, int]:
    """Check a reStructuredText simple table; return (columns, body rows).

    Well formed: three rules of ``=`` runs (top, below the header, bottom), identical, and no text
    in the gaps between the column runs, so that every line splits into the same columns.
    """
    lines = text.rstrip("\n").split("\n")
    rules = [i for i, line in enumerate(lines) if set(line) <= {"=", " "} and line]
    assert rules == [0, 2, len(lines) - 1]
    rule = lines[0]
    assert lines[2] == rule
    assert lines[-1] == rule
    gaps = [i for i, c in enumerate(rule) if c == " "]
    for line in lines:
        assert len(line) <= len(rule)
        assert all(i >= len(line) or line[i] == " " for i in gaps), line
    body = lines[3:-1]
    assert all(line.split(" ")[0] for line in body)  # a first cell in every row
    return len(rule.split()), len(body)


def _run(evals: int, success: bool) -> bbob.Run:
    return bbob.Run("m", 1, 2, 1, evals, success, (), 0.0)


def test_ert_charges_failures_the_full_budget() -> None:
    runs = [_run(100, True), _run(300, True), _run(50, False)]
    # (100 + 300 + budget 1000 for the failure) / 2 successes, exactly
    assert bbob.ert(runs, 1000) == (700.0, 2)
    assert bbob.ert([_run(10, False)], 1000) == (math.inf, 0)


def test_objective_counts_exactly_and_stops_at_target_or_budget() -> None:
    fopt = 5.0
    obj = bbob.Objective(lambda x: float(np.sum(x**2)) + fopt, fopt, budget=4)
    assert obj(np.array([1.0, 0.0])) == 6.0  # delta 1: reaches the ECDF targets 1e2 .. 1e0
    reached = bbob.ECDF_TARGETS >= 1.0
    assert np.all(obj.hits[reached] == 1)
    assert np.all(np.isinf(obj.hits[~reached]))
    with pytest.raises(bbob._StopRunError):
        obj(np.array([1e-5, 0.0]))  # delta 1e-10 <= 1e-8: solved at evaluation 2
    assert (obj.evals, obj.solved, obj.hits[-1]) == (2, True, 2.0)
    with pytest.raises(bbob._StopRunError):
        obj(np.zeros(2))  # nothing is evaluated after the target
    assert obj.evals == 2

    capped = bbob.Objective(lambda x: 1.0, 0.0, budget=2)
    capped(np.zeros(1))
    capped(np.zeros(1))
    with pytest.raises(bbob._StopRunError):
        capped(np.zeros(1))  # the budget is never exceeded
    assert (capped.evals, capped.solved) == (2, False)


def test_simple_table_is_valid_rst() -> None:
    text = simple_table(["f", "A", "B"], [["f1 sphere", "1,200 (5/5)", ""], ["f2", "inf", "3"]])
    assert _table_shape(text) == (3, 2)
    bad = text.replace("f1 sphere", "f1 sphere, much too long")  # text runs into the gap
    with pytest.raises(AssertionError):
        _table_shape(bad)


def test_start_points_are_shared_and_in_the_box() -> None:
    x0, seed = bbob.start(15, 5, 3)
    x1, seed1 = bbob.start(15, 5, 3)
    assert np.array_equal(x0, x1)
    assert seed == seed1
    assert np.all(np.abs(x0) <= 4.0)
    assert not np.array_equal(x0, bbob.start(15, 5, 4)[0])


@pytest.mark.slow  # about 1.5 s on an idle machine, more on a busy one (it starts a process)
def test_tiny_benchmark_writes_well_formed_tables(tmp_path: Path) -> None:
    config = bbob.Config(
        functions=(1,),
        dims=(2,),
        instances=(1,),
        methods=("OpenES", "pycma", "cmaes"),
        extra={},
        budget_per_dim=500,
        processes=1,
        overhead_dims=(2,),
        overhead_generations=3,
    )
    runs, wall, missing = bbob.run_all(config)
    assert wall > 0
    assert missing == {}
    assert sorted(r.method for r in runs) == ["OpenES", "cmaes", "pycma"]
    assert all(r.error == "" and 0 < r.evals <= 1000 for r in runs)
    # the CMA-ES peers solve the 2-d sphere within 1000 evaluations (deterministic seeds)
    assert all(r.success for r in runs if r.method != "OpenES")
    seed = bbob.seed_problem(["pycma", "cmaes"], n_seeds=2)
    assert all(k == 2 for _, k, _ in seed.values())  # 3-d quadratic, deterministic seeds
    tables = bbob.write_outputs(runs, config, wall, missing, tmp_path, seed)
    assert _table_shape((tmp_path / "bbob_seed_problem.rst").read_text()) == (3, 2)
    # columns: f, 3 methods (no ratio column without XNES and SNES); one row per function
    assert _table_shape(tables[2]) == (4, 1)
    assert _table_shape((tmp_path / "bbob_ert.rst").read_text().split("\n\n", 1)[1]) == (4, 1)
    with (tmp_path / "bbob_runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    with (tmp_path / "bbob_ert.csv").open() as fh:
        erts = {r["method"]: r for r in csv.DictReader(fh)}
    for r in runs:  # one run per method: ERT is its count if solved, else inf
        assert float(erts[r.method]["ert"]) == (r.evals if r.success else math.inf)
    assert _table_shape((tmp_path / "bbob_targets.rst").read_text())[1] == 5
    assert (tmp_path / "bbob_meta.rst").read_text().startswith("Run on")
    assert (tmp_path / "bbob_ecdf.png").stat().st_size > 1000
    assert (tmp_path / "bbob_ratio.png").stat().st_size > 1000

    text = bbob.run_overhead(config, tmp_path)
    cols, nrows = _table_shape(text)
    assert nrows == 1
    assert cols == 3 + len(bbob.available(bbob.OVERHEAD_METHODS)[0])  # d, lambda, ..., floor


def test_target_checks_read_the_ratios_to_pycma() -> None:
    table: bbob.ErtTable = {}
    for d in (5, 10, 20):
        for f in (1, 2, 8, 10):
            table[(d, f, "pycma")] = (1000.0, 5, 5)
            table[(d, f, "XNES")] = (1200.0, 5, 5)  # ratio 1.2: within 1.5x, above the 1.0 goal
            table[(d, f, "SNES")] = (900.0, 5, 5)
    table[(20, 8, "pycma")] = (math.inf, 0, 5)  # pycma fails, XNES succeeds: met
    table[(5, 15, "XNES+IPOP")] = (20_000.0, 3, 5)
    seed = {"XNES": (450.0, 25, 25), "SNES": (601.0, 25, 25)}
    met = {name: ok for name, _, ok in bbob.target_checks(table, seed)}
    assert list(met.values()) == [True, False, True, False, False]
    assert bbob.target_checks(table, {"XNES": (450.0, 25, 25)})[4][2] is None
    table[(5, 15, "XNES+IPOP")] = (2_000.0, 2, 2)  # a quick run: 2 instances only
    assert bbob.target_checks(table)[3][2] is None
    table[(10, 1, "XNES")] = (math.inf, 0, 5)
    assert bbob.target_checks(table)[0][2] is False
    del table[(10, 2, "SNES")]
    assert bbob.target_checks(table)[2] == (
        "SNES ERT <= pycma on f1, f2 at d >= 10",
        "not run",
        None,
    )


def test_noisy_bbob_reads_the_noise_free_values_from_cocos_log() -> None:
    from benchmarks import noisy

    rec = noisy.run_bbob("XNES+IPOP", 1, 2, 1, 100)  # f101: the sphere with Gaussian noise
    assert rec["evals"] == 200  # the whole budget (restarts), never more
    trace = rec["trace"]
    assert isinstance(trace, list)
    assert trace
    evals = [e for e, _ in trace]
    best = [b for _, b in trace]
    assert evals == sorted(evals)
    assert evals[-1] <= 200
    assert best == sorted(best, reverse=True)  # the best noise-free value never gets worse
    assert 0.0 <= rec["best"] == best[-1] < best[0]
    assert noisy.reached(rec, 200) >= noisy.reached(rec, evals[0])


def test_noisy_bbob_runs_a_cached_record_cut_short_again(tmp_path: Path) -> None:
    from benchmarks import noisy

    first = noisy.cached_bbob(tmp_path, "XNES+IPOP", 1, 2, 1, 50)
    (path,) = tmp_path.iterdir()
    path.write_text(path.read_text()[:30])  # a run killed while writing it
    assert noisy.cached_bbob(tmp_path, "XNES+IPOP", 1, 2, 1, 50)["evals"] == first["evals"]
    assert json.loads(path.read_text())["evals"] == first["evals"]


@pytest.mark.parametrize("option", ["--budget", "--seeds", "--episodes"])
def test_noisy_refuses_a_count_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    from benchmarks import noisy

    # --budget 0 ended in "not enough values to unpack", from COCO's empty log
    with pytest.raises(SystemExit) as exc:
        noisy.main(argv=[option, "0", "--cache", str(tmp_path)])
    assert exc.value.code == 2
    assert f"`{option}` must be at least 1, but got 0" in capsys.readouterr().err


def test_noisy_policy_task_is_noisy_and_ranks_a_stabilising_gain_first() -> None:
    from benchmarks.noisy import SpringChain

    task = SpringChain()
    zero = task.returns(np.zeros(task.dim), np.random.default_rng(0), 400)
    assert zero.std() > 0  # an episode's return is a noisy measure of the policy
    K = np.zeros((2, task.dim // 2))
    K[0, 4], K[1, 7] = 2.0, 2.0  # damping on the two actuated masses
    damped = task.returns(K.ravel(), np.random.default_rng(0), 400)
    # on the same 400 episodes (same initial states and disturbances) damping costs less
    assert damped.mean() > zero.mean()
