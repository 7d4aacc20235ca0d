"""MPI and loky: SPMD runs under a real ``mpiexec -n 2``, MPIPoolExecutor and loky as Executors.

The MPI scripts run in a subprocess (``tests/mpi/``): each rank checks its run against a serial
run of the same strategy, bit for bit, and prints one line per check that passed; a failed
check raises, and mpiexec then exits non-zero.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from raising import raise_no_text_right_of_one

from nes_asktell import SNES, XNES, Evaluator, NESWarning, OpenES, SPMDMap, mpi_optimize

HERE = Path(__file__).resolve().parent / "mpi"
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpi4py and mpiexec (the mpi extra)",
)


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.5) ** 2))


def mpiexec(*argv: str) -> list[str]:
    """Run ``mpiexec -n 2 python *argv``; return its output lines (it must exit with 0)."""
    assert MPIEXEC is not None
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"mpiexec failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.splitlines()


@pytest.mark.slow
@needs_mpi
def test_spmd_runs_on_two_ranks_are_bit_identical_to_serial() -> None:
    # the two ranks write to one pipe: their lines may interleave, so search the whole text
    text = "\n".join(mpiexec(str(HERE / "spmd_run.py")))
    for rank in (0, 1):
        for name in ("XNES", "SNES", "OpenES"):
            assert f"rank {rank}: {name} identical to serial" in text
        assert f"rank {rank}: raising candidates ranked worst, warned on rank 1 only" in text
        assert f"rank {rank}: divergence detected" in text
        assert f"rank {rank}: a timeout stops every rank in the same generation" in text
        assert f"rank {rank}: Ctrl-C stops the run" in text


@pytest.mark.slow
@needs_mpi
def test_mpi_pool_executor_is_bit_identical_to_serial() -> None:
    lines = mpiexec("-m", "mpi4py.futures", str(HERE / "pool_run.py"))
    assert lines == [
        "OpenES vectors: identical to serial",
        "OpenES seeds: identical to serial",
        "SNES seeds: identical to serial",
        "XNES vectors: identical to serial",
        "optimize(workers=MPIPoolExecutor): identical to serial",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cls", "d", "mode"),
    [(OpenES, 12_000, "vectors"), (SNES, 12_000, "seeds"), (XNES, 6, "auto")],
)
def test_loky_reusable_executor_is_bit_identical_to_serial(cls: type, d: int, mode: str) -> None:
    loky = pytest.importorskip("loky")
    pool = loky.get_reusable_executor(max_workers=2)
    es, ref = cls(np.zeros(d), 0.3, rng=6), cls(np.zeros(d), 0.3, rng=6)
    with Evaluator(pool, mode=mode) as ev:
        for _ in range(4):
            X, Y = es.ask(), ref.ask()
            f = ev.evaluate(sphere, X, strategy=es)
            np.testing.assert_array_equal(f, [sphere(y) for y in Y])
            es.tell(X, f)
            ref.tell(Y, f)
    np.testing.assert_array_equal(es.mean, ref.mean)


def test_mpi_optimize_rejects_bad_arguments() -> None:
    es = SNES(np.zeros(3), 0.5, rng=0)
    with pytest.raises(TypeError, match=r"`es` must be a Strategy .*, but got 'sphere'"):
        mpi_optimize("sphere", sphere)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`check_every`.* got 0"):
        mpi_optimize(es, sphere, comm=object(), check_every=0)
    with pytest.raises(TypeError, match=r"`comm` must be an mpi4py communicator .*got 7"):
        mpi_optimize(es, sphere, comm=7)
    with pytest.raises(TypeError, match=r"`disp` must be 0, 1, 2, True or False, but got 'yes'"):
        mpi_optimize(es, sphere, comm=object(), disp="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`disp` must be 0, 1, 2, True or False, but got 5"):
        mpi_optimize(es, sphere, comm=object(), disp=5)
    assert es.generation == 0  # a rejected call changes nothing


class _OneRank:
    """The methods of a communicator that SPMDMap uses, for a single rank (no MPI started)."""

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return 1

    def allgather(self, x: object) -> list[object]:
        return [x]

    def Allgatherv(self, send: object, recv: object) -> None:
        raise AssertionError("not called by these tests")


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((_OneRank(), "es"), TypeError, r"`strategy` must be a Strategy .*, but got 'es'"),
        ((7, None), TypeError, r"`comm` must be an mpi4py communicator .*got 7"),
        ((_OneRank(), None, 0), ValueError, r"`check_every` must be an integer >= 1, but got 0"),
        ((_OneRank(), None, -1), ValueError, r"`check_every` .* got -1"),
        ((_OneRank(), None, 2.5), TypeError, r"`check_every` must be an integer, but got 2.5"),
    ],
)
def test_spmd_map_rejects_bad_arguments_when_made(args: tuple, exc: type, match: str) -> None:
    # check_every=0 used to raise ZeroDivisionError at the first call, -1 and 2.5 were taken
    es = SNES(np.zeros(3), 0.5, rng=0)
    args = tuple(es if a is None else a for a in args)
    with pytest.raises(exc, match=match):
        SPMDMap(*args)


@needs_mpi
def test_mpi_optimize_disp_2_shows_every_generation_as_optimize_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a single process is a communicator of one rank, rank 0, which shows the progress
    SNES(np.zeros(3), 0.5, rng=0).optimize(sphere, maxiter=12, disp=2)
    want = [line.split()[2] for line in capsys.readouterr().out.splitlines()]
    mpi_optimize(SNES(np.zeros(3), 0.5, rng=0), sphere, maxiter=12, disp=2)
    got = [line.split()[2] for line in capsys.readouterr().out.splitlines()]
    assert "11" in want  # level 1 skips generation 11, level 2 shows it
    assert got == want


@needs_mpi
def test_an_exception_whose_text_fails_costs_its_candidate_not_the_rank() -> None:
    # The error line called str() on it inside the handler: the ValueError escaped eval_rows
    # and ended the rank, and under mpiexec the other ranks waited for its values for ever.
    es = SNES(np.ones(3), 0.5, rng=1)
    with pytest.warns(
        NESWarning, match=r"NoTextError: <str\(\) of the exception raised ValueError>"
    ):
        res = mpi_optimize(es, raise_no_text_right_of_one, maxiter=3)
    assert res.nit == 3
