"""The command line: ``nes-asktell`` and ``python -m nes_asktell``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nes_asktell import XNES, History, __version__
from nes_asktell import __main__ as cli
from nes_asktell._history import MAGIC

SCRIPT = Path(sys.executable).parent / "nes-asktell"


def call(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    head = [sys.executable, "-m", "nes_asktell"] if module else [str(SCRIPT)]
    return subprocess.run([*head, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the nes-asktell script is not installed")
def test_the_script_names_itself_in_usage_and_version() -> None:
    out = call("--version")
    assert (out.returncode, out.stdout) == (0, f"nes-asktell {__version__}\n")
    out = call("--help")
    assert out.returncode == 0
    assert out.stdout.startswith("usage: nes-asktell [-h] [--version] command ...")
    assert "python -m" not in out.stdout
    assert "``" not in out.stdout
    for command in ("demo", "plot"):
        assert f"    {command} " in out.stdout


def test_the_module_names_itself_in_usage() -> None:
    out = call("--help", module=True)
    assert out.returncode == 0
    assert out.stdout.startswith("usage: python -m nes_asktell [-h] [--version] command ...")
    assert "python -m nes_asktell plot run.csv -o run.png" in out.stdout
    out = call(module=True)
    assert out.returncode == 2
    assert "the following arguments are required: command" in out.stderr


def test_the_help_of_plot_says_that_the_suffix_chooses_the_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the command list said "as a PNG of four panels", while `plot run.csv -o run.svg` writes
    # an SVG (docs/watching.rst: the suffix after -o chooses the format)
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "as a PNG" not in text
    assert "plot draw a run saved by History.save (a CSV file) as an image of four panels" in text


def saved_run(path: Path, generations: int = 3) -> None:
    """Save the History of a short XNES run on the sphere to `path`."""
    history = History()
    sphere = lambda x: float(x @ x)  # noqa: E731
    XNES(np.ones(2), 0.5, rng=0).optimize(sphere, maxiter=generations, callback=history)
    history.save(path)


def test_plot_writes_a_png_of_a_saved_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    saved_run(tmp_path / "run.csv", 20)
    assert cli.main(["plot", str(tmp_path / "run.csv"), "-o", str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "20 generations of" in capsys.readouterr().out
    # without -o, the image goes beside the CSV file
    assert cli.main(["plot", str(tmp_path / "run.csv")]) == 0
    assert (tmp_path / "run.png").is_file()


@pytest.mark.skipif(shutil.which("xelatex") is not None, reason="LaTeX writes .pgf here")
def test_plot_to_pgf_without_latex_is_a_usage_error_before_drawing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # .pgf is a suffix matplotlib writes only with its TeX system: without it savefig raised
    # RuntimeError after drawing (at first as a traceback of 98 lines), and .pgf was listed
    mpl = pytest.importorskip("matplotlib")
    if shutil.which(mpl.rcParams["pgf.texsystem"]):
        pytest.skip("a TeX system is installed: .pgf can be written")
    saved_run(tmp_path / "run.csv", 3)
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "run.csv"), "-o", str(tmp_path / "run.pgf")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "`--output` must end in a suffix matplotlib can write" in err
    assert ".pgf" not in err.split("write (")[1].split(";")[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "run.csv"]


def test_plot_refuses_a_device_or_pipe_as_output_and_needs_one_for_a_pipe_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # -o /dev/stdout wrote the message into the image (or failed on a pipe), and a RUN.csv
    # read from /dev/stdin without -o wrote /dev/stdin.png
    saved_run(tmp_path / "run.csv", 3)
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "run.csv"), "-o", os.devnull])
    assert info.value.code == 2
    assert f"`--output` must be a regular file (or a new one), but got {os.devnull!r}" in (
        capsys.readouterr().err
    )
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(fifo)])
    assert info.value.code == 2
    assert "`--output` must be given when RUN.csv is not a regular file" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "run.csv"]


def test_plot_caps_a_step_size_or_condition_no_axis_can_draw(tmp_path: Path) -> None:
    # a file with step sizes from 1e-300 to 1e240 made matplotlib's log locator overflow: a
    # traceback (the fitness panel was capped at 1e200, the others not)
    pytest.importorskip("matplotlib")
    path = tmp_path / "run.csv"
    saved_run(path, 10)
    lines = path.read_text().splitlines()
    cols = lines[1].split(",")
    for i, value in ((2, "1e-300"), (3, "1e240")):
        row = lines[i].split(",")
        for name in ("sigma_min", "sigma_median", "sigma_max", "condition"):
            row[cols.index(name)] = value
        lines[i] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")
    assert cli.main(["plot", str(path), "-o", str(tmp_path / "run.png")]) == 0
    fig = History.load(path).plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert "step size (above 1e200 drawn at 1e200)" in titles
    assert "condition (longest / shortest axis), above 1e200 at 1e200" in titles


def test_plot_reports_a_missing_or_foreign_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "missing.csv")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "No such file" in err
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "other.csv")])
    assert info.value.code == 2
    assert "must be a CSV file written by History.save" in capsys.readouterr().err
    assert not (tmp_path / "other.png").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            None,
            r"`RUN.csv` must be a readable file, but got '{run}' \(No such file or directory\)\.",
        ),
        (
            "",
            r"`RUN.csv` must be a CSV file written by History.save .*, but '{run}' has no line "
            r"but blank ones\.",
        ),
        (
            MAGIC + "\n",
            r"`RUN.csv` must have the header generation,.*, but the file ends after line 1 "
            r"in '{run}'\.",
        ),
        ("corrupt", r"`RUN.csv` line 3 must hold 15 numbers, but got 'x,1' in '{run}'\."),
    ],
)
def test_plot_errors_name_the_argument_as_typed_with_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, message: str
) -> None:
    # the errors named the Python parameter `path` of History.load, a missing file gave
    # "[Errno 2] ..." without naming the argument, and they exited 1 instead of as usage errors
    run = tmp_path / "run.csv"
    if text == "corrupt":
        saved_run(run)
        lines = run.read_text().splitlines()
        run.write_text("\n".join([*lines[:2], "x,1", *lines[3:]]) + "\n")
    elif text is not None:
        run.write_text(text)
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(run)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    (line,) = [ln for ln in err.splitlines() if "error:" in ln]
    assert re.fullmatch(r".* plot: error: " + message.format(run=re.escape(str(run))), line)
    assert "`path`" not in err
    assert not (tmp_path / "run.png").exists()


def test_plot_refuses_a_default_output_that_is_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_run(tmp_path / "run.csv")
    out = tmp_path / "run.png"
    out.mkdir()  # the default output, beside the CSV file, is a directory
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "run.csv")])
    assert info.value.code == 2
    assert f"`--output` must be a file, but got the directory {str(out)!r}." in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("run", [".", "/", ".."])
def test_plot_of_a_directory_without_a_name_is_an_error_not_a_traceback(
    run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `nes-asktell plot .` raised "ValueError: PosixPath('.') has an empty name" from
    # pathlib, with a traceback, while making the default name of the image.
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", run])
    assert info.value.code == 2
    assert f"`RUN.csv` must be a file, but got the directory {run!r}" in capsys.readouterr().err


def test_the_benchmark_runner_lists_its_benchmarks_and_no_empty_choice() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "[]" not in out.stdout
    assert "bbob, scipy, optuna, scale" in " ".join(out.stdout.split())
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    assert out.returncode == 2
    assert "invalid choice: 'nope'" in out.stderr


def test_plot_without_matplotlib_says_which_extra_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    history = History()
    XNES(np.ones(2), 0.5, rng=0).optimize(lambda x: float(x @ x), maxiter=2, callback=history)
    history.save(tmp_path / "run.csv")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert cli.main(["plot", str(tmp_path / "run.csv")]) == 1
    assert "pip install 'nes_asktell[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "run.png").exists()


def test_plot_writes_exactly_the_file_named_by_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    history = History()
    XNES(np.ones(2), 0.5, rng=0).optimize(lambda x: float(x @ x), maxiter=3, callback=history)
    history.save(tmp_path / "run.csv")
    # a name without a suffix: a PNG under that very name, and the message says where
    assert cli.main(["plot", str(tmp_path / "run.csv"), "-o", str(tmp_path / "picture")]) == 0
    assert (tmp_path / "picture").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "picture.png").exists()
    assert capsys.readouterr().out.endswith(f"drawn in {tmp_path / 'picture'}\n")
    # a directory: an error, and nothing written beside it
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "run.csv"), "-o", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "`--output` must be a file, but got the directory" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "run.xyz",
            r"`--output` must end in a suffix matplotlib can write \(.*\.png.*; none: PNG\)",
        ),
        ("missing/run.png", r"`--output` must be in a directory that exists"),
    ],
)
def test_plot_refuses_an_output_it_cannot_write_before_reading_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    # an unknown image format was found by matplotlib only after the run was read and drawn,
    # in a message that named no option ("Format 'xyz' is not supported"), exit code 1
    pytest.importorskip("matplotlib")
    saved_run(tmp_path / "run.csv")
    out = tmp_path / name
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(tmp_path / "run.csv"), "-o", str(out)])
    assert info.value.code == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert re.search(message + rf", but got {re.escape(repr(str(out)))}\.$", line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]


@pytest.mark.parametrize("output", [None, "run.png"])
def test_plot_never_writes_the_image_over_the_run_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str | None
) -> None:
    # a saved run named run.png: the default output (the same name with the suffix .png) was
    # the run itself, and the image replaced the only copy of the History
    run = tmp_path / "run.png"
    saved_run(run)
    before = run.read_bytes()
    args = [] if output is None else ["-o", str(tmp_path / "." / output)]
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", str(run), *args])
    assert info.value.code == 2
    assert "`--output` must not be RUN.csv itself" in capsys.readouterr().err
    assert run.read_bytes() == before


@pytest.mark.parametrize(
    ("command", "unbuffered"),
    [(["demo", "--no-plot"], True), (["plot", "run.csv"], False), (["--help"], False)],
)
def test_output_into_a_pipe_whose_reader_is_gone_stops_quietly(
    tmp_path: Path, command: list[str], unbuffered: bool
) -> None:
    # `nes-asktell demo | head -1` ended in a BrokenPipeError traceback (or, with buffered
    # output, "Exception ignored ... BrokenPipeError" at the exit)
    if command[0] == "plot":
        pytest.importorskip("matplotlib")
        saved_run(tmp_path / "run.csv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "nes_asktell", *command],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (1, "")


def test_plot_with_stdout_closed_draws_and_exits_quietly(tmp_path: Path) -> None:
    # started with stdout closed (`nes-asktell plot run.csv >&-`), sys.stdout is None: print
    # writes nothing, and the flush of the output must not fail on it
    pytest.importorskip("matplotlib")
    saved_run(tmp_path / "run.csv")
    proc = subprocess.run(
        [sys.executable, "-m", "nes_asktell", "plot", "run.csv"],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        cwd=tmp_path,
        preexec_fn=lambda: os.close(1),
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (tmp_path / "run.png").is_file()


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (["plot", "{long}"], "RUN.csv"),
        (["plot", "{run}", "-o", "{long}"], "--output"),
        (["demo", "--plot", "{long}"], "--plot"),
        (["demo", "--plot", "{long}/demo.png"], "--plot"),
    ],
)
def test_a_path_the_system_refuses_is_a_usage_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], argument: str
) -> None:
    # pathlib's is_dir() raises on a name too long (ENAMETOOLONG), a folder without
    # permission (EACCES) or a loop of symbolic links: a traceback, before any check ran
    saved_run(tmp_path / "run.csv")
    long = str(tmp_path / ("a" * 300))  # longer than any file system's longest name
    filled = [a.format(long=long, run=tmp_path / "run.csv") for a in args]
    with pytest.raises(SystemExit) as info:
        cli.main(filled)
    assert info.value.code == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert re.search(
        rf"`{argument}` must be a path this system can look at, but got "
        rf"'{tmp_path}/a{{300}}(/demo.png)?' \(File name too long\)\.$",
        line,
    )


@pytest.mark.parametrize("args", [["plot", ""], ["plot", "run.csv", "-o", ""]])
def test_plot_refuses_an_empty_name_as_typed(args: list[str]) -> None:
    # Path("") is ".": the error named the directory '.', not what was typed
    out = call(*args, module=True)
    assert out.returncode == 2
    assert "must name a file, but got ''" in out.stderr
    assert "'.'" not in out.stderr


@pytest.mark.parametrize(
    ("argv", "usage"),
    [(["demo", "foo"], " demo [-h]"), (["plot", "a.csv", "b.csv"], " plot [-h]")],
)
def test_an_extra_argument_is_refused_under_the_commands_own_usage_line(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse reported it under the top-level usage line, which names no command's options
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert usage in captured.err.splitlines()[0]
    assert f"error: unrecognized arguments: {argv[-1]}" in captured.err
    assert captured.out == ""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is sent with send_signal")
def test_ctrl_c_mid_demo_says_interrupted_and_exits_130_without_a_traceback() -> None:
    # Ctrl-C ended the command with a KeyboardInterrupt traceback
    proc = subprocess.Popen(
        [sys.executable, "-m", "nes_asktell", "demo", "--no-plot"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the demo has begun (it runs for seconds more)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert first.startswith("== 1.")
    assert (proc.returncode, err) == (130, "python -m nes_asktell: interrupted\n")


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_demo_refuses_a_device_or_pipe_as_plot_before_the_runs(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --plot /dev/stdout wrote the PNG's bytes into the demo's own output (a file given as
    # stdout was left holding the image alone), as plot's --output refuses to
    if kind == "device":
        target = os.devnull
    else:
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--plot", target])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the runs
    assert f"argument --plot: cannot write an image to {target!r} (a device or a pipe)" in (
        captured.err
    )


#: the child lets itself write files of at most this many bytes: past it a write fails with
#: EFBIG (File too large), as on a full disk (SIGXFSZ, which would end it instead, is ignored)
LIMIT_WRITES = (
    "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
)

IMAGE_WRITERS = {
    # the plot command, and the demo's plot (its runs replaced by a short made-up one)
    "plot": "from nes_asktell.__main__ import main; raise SystemExit(main(['plot', {run!r}, "
    "'-o', {out!r}]))",
    "demo": "from nes_asktell._demo import Run, plot_runs; "
    "plot_runs([Run('r', [1, 2, 3], [1.0, 0.1, 0.01], [1.0, 0.1, 0.01])], {out!r})",
}


@pytest.mark.skipif(sys.platform == "win32", reason="file size limits are POSIX")
@pytest.mark.parametrize("writer", list(IMAGE_WRITERS))
def test_an_image_write_that_fails_midway_leaves_the_earlier_image_as_it_was(
    writer: str, tmp_path: Path
) -> None:
    # the image was written in place: a write cut short (a full disk, here a file size
    # limit) left a truncated image where a whole one drawn earlier had been
    saved_run(tmp_path / "run.csv", 3)
    out = tmp_path / "run.png"
    earlier = b"\x89PNG an image drawn earlier " * 1000
    out.write_bytes(earlier)
    code = LIMIT_WRITES.format(limit=len(earlier) // 2) + IMAGE_WRITERS[writer].format(
        run=str(tmp_path / "run.csv"), out=str(out)
    )  # (a whole image is far larger than the limit)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "File too large" in proc.stderr
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv", "run.png"]


@pytest.mark.parametrize("command", ["plot", "demo"])
def test_an_image_name_ending_in_a_separator_is_refused_not_written_as_a_file(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Path("results/") is Path("results"): -o results/ (a folder not made yet) wrote a PNG
    # file named results, where writing to the name as typed fails (it names a folder)
    saved_run(tmp_path / "run.csv", 3)
    typed = str(tmp_path / "results") + os.sep
    argv = ["plot", str(tmp_path / "run.csv"), "-o", typed]
    with pytest.raises(SystemExit) as info:
        cli.main(argv if command == "plot" else ["demo", "--plot", typed])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert f"must name a file, but got {typed!r} (a name ending in {os.sep!r} names a folder)" in (
        captured.err
    )
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]
