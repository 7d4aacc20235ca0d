"""The demo: ``python -m nes_asktell demo`` replays the seed and compares the defaults."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nes_asktell import OpenES, _demo
from nes_asktell import __main__ as cli


@pytest.mark.slow
def test_demo_replays_the_seed_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "demo.png"
    assert cli.main(["demo", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "matches the 2017 trace line for line: True" in out
    assert "0 -3.323094" in out
    assert "280 -0.000009" in out
    # one summary line per run: evaluations to the target, or where it stalls
    summary = out.split("== Evaluations until")[1].split("\n")
    labels = ["seed"] + [label for label, _ in _demo.default_strategies()]
    assert labels[1:] == ["OpenES", "XNES", "SNES"]
    for label in labels:
        (row,) = [line for line in summary if line.startswith(f"  {label} ")]
        cells = row.split()
        assert cells[1] == "-" or int(cells[1]) <= _demo.BUDGET
        assert (cells[1] == "-") == ("stalls:" in row)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"convergence plot written to {png}" in out
    # the runs are deterministic: the quickstart page shows this very table
    doc = (Path(__file__).resolve().parents[1] / "docs" / "quickstart.rst").read_text()
    shown = doc.split("   == Evaluations until")[1].split("\n\n")[0].splitlines()[1:]
    assert [line.removeprefix("   ") for line in shown] == summary[1 : 1 + len(shown)]


def test_demo_runs_are_deterministic_and_the_defaults_beat_the_seed() -> None:
    # Fixed seeds: every run below is deterministic, so this is an exact regression check of
    # the demo's claim (the defaults reach a lower f at the mean than the seed configuration).
    seed = _demo.Run("seed")
    _demo.solve(OpenES.seed_configuration(), seed, every=10**9)
    x0 = _demo.np.random.default_rng(_demo.SEED).standard_normal(3)
    for label, make in _demo.default_strategies():
        run = _demo.Run(label)
        _demo.solve(make(x0), run, every=10**9)
        assert min(run.fmean) < min(seed.fmean), label
        if label in ("XNES", "SNES"):
            assert run.hit is not None, label
            assert run.hit <= 2000, (label, run.hit)
            assert run.hit_best is not None, label
            assert run.hit_best <= 2000, (label, run.hit_best)


def test_demo_without_plot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_demo, "BUDGET", 1000)
    assert cli.main(["demo", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "convergence plot" not in out
    assert "matches the 2017 trace line for line: True" in out


def test_demo_says_where_it_writes_its_plot_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `demo` (and `make demo`) writes nes_demo.png into the current folder, which neither its
    # --help nor the quickstart said
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0
    assert "default: nes_demo.png, in the current directory" in " ".join(
        capsys.readouterr().out.split()
    )
    quickstart = (Path(__file__).resolve().parent.parent / "docs" / "quickstart.rst").read_text()
    assert "``nes_demo.png``" in quickstart
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(_demo, "BUDGET", 1000)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nes_demo.png"]
    assert "convergence plot written to nes_demo.png" in capsys.readouterr().out


def test_command_line_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "command" in capsys.readouterr().err


def test_demo_refuses_a_plot_path_it_cannot_write_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a_file").write_text("")
    for bad in (tmp_path / "missing" / "demo.png", tmp_path / "a_file" / "demo.png", tmp_path):
        with pytest.raises(SystemExit) as info:
            cli.main(["demo", "--plot", str(bad)])
        assert info.value.code == 2
        captured = capsys.readouterr()
        assert f"argument --plot: cannot write an image to {str(bad)!r}" in captured.err
        assert "== 1." not in captured.out  # refused before the runs


def test_demo_reports_a_failed_plot_write_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_demo, "BUDGET", 1000)

    def denied(runs: object, path: str) -> bool:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_demo, "plot_runs", denied)
    assert cli.main(["demo", "--plot", str(tmp_path / "demo.png")]) == 1
    err = capsys.readouterr().err
    # (the program's name is that of the command that started the test process)
    assert " demo: error: `--plot` could not be written: [Errno 13] Permission denied" in err


def test_demo_refuses_an_empty_plot_name_before_the_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --plot '' was reported as '.', the directory Path("") is
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--plot", ""])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "argument --plot: must name a file, but got ''" in captured.err
    assert captured.out == ""  # no run before the refusal


def test_demo_refuses_a_plot_in_a_folder_it_cannot_write_before_the_runs(
    tmp_path: Path, in_read_only_folder: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    # the whole demo ran, then its plot failed with an error that did not name --plot
    folder = tmp_path / "ro"
    folder.mkdir()
    argv = [sys.executable, "-m", "nes_asktell", "demo", "--plot", str(folder / "demo.png")]
    out = in_read_only_folder(folder, argv)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert "python -m nes_asktell demo: error: argument --plot: cannot write an image to" in (
        out.stderr
    )
    assert "no permission" in out.stderr


def test_demo_writes_a_plot_named_without_a_suffix_to_that_very_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # matplotlib adds ".png" to a name without a suffix: the demo said it wrote `conv` and
    # wrote `conv.png`
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(_demo, "BUDGET", 1000)
    target = tmp_path / "conv"
    assert cli.main(["demo", "--plot", str(target)]) == 0
    assert f"convergence plot written to {target}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv"]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_refuses_an_image_format_matplotlib_cannot_write_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--plot", str(tmp_path / "conv.xyz")])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "argument --plot: matplotlib cannot write '.xyz' images" in captured.err
    assert "== 1." not in captured.out  # refused before the runs


def test_demo_usage_errors_show_the_usage_of_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the errors of --plot showed the usage of the whole command line ("command ...") and
    # "nes-asktell: error:", as if no command had been given
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--plot", str(tmp_path / "missing" / "demo.png")])
    assert info.value.code == 2
    usage, error = capsys.readouterr().err.splitlines()
    assert usage.startswith(f"usage: {cli.program_name()} demo [-h] [--plot PLOT | --no-plot]")
    assert error.startswith(f"{cli.program_name()} demo: error: argument --plot: ")


def test_demo_refuses_a_plot_file_with_no_plot(capsys: pytest.CaptureFixture[str]) -> None:
    # `demo --no-plot --plot a.png` ran the demo and silently wrote no a.png
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--no-plot", "--plot", "a.png"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "argument --plot: not allowed with argument --no-plot" in captured.err
    assert "== 1." not in captured.out  # refused before the runs
