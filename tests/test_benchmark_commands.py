"""Every ``python -m benchmarks ...`` command the documentation shows exists and takes its options.

Each command is parsed, never run: the parsers of the benchmarks stop at the first
``parse_known_args`` that succeeds, and a benchmark without options of its own stops where the
command line would start it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` run without `python -m` does not put the root on the path
    sys.path.insert(0, str(ROOT))

for _module in ("cocoex", "cma", "cmaes", "optuna"):  # the `bench` extra
    pytest.importorskip(_module)

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.rst"))]
#: the shell variables and substitutions of the commands, as a user would fill them in
FILL = {"$C": "/tmp/coco", "$M": "XNES"}
#: ``$(seq A B)``, as the shell expands it
SEQ = re.compile(r"\$\(seq (\d+) (\d+)\)")
#: benchmarks whose command line reads its flags from sys.argv without a parser
NO_PARSER: dict[str, tuple[str, ...]] = {}


def commands() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for page in PAGES:
        text = re.sub(r"\\\n\s*", " ", page.read_text())  # shell line continuations
        spans = re.findall(r"``(python -m benchmarks[^`]*)``", text)  # rst literals
        spans += re.findall(r"(?<!`)`(python -m benchmarks[^`]*)`(?!`)", text)  # markdown
        spans += re.findall(r"^\s*(?:\.venv/bin/)?(python -m benchmarks[^\n#`]*)", text, re.M)
        for span in spans:
            cmd = " ".join(span.split())
            for key, value in FILL.items():
                cmd = cmd.replace(key, value)
            cmd = SEQ.sub(lambda m: " ".join(map(str, range(int(m[1]), int(m[2]) + 1))), cmd)
            if "NAME" not in cmd.split():
                found.setdefault(cmd, page.name)
    return sorted((page, cmd) for cmd, page in found.items())


class ParsedError(Exception):
    """Raised where a command line was parsed, instead of running the benchmark."""


@pytest.mark.filterwarnings("ignore:'benchmarks.*' found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize(("page", "cmd"), commands())
def test_a_documented_benchmark_command_parses(
    page: str, cmd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    known, strict = argparse.ArgumentParser.parse_known_args, argparse.ArgumentParser.parse_args
    inside: list[bool] = []

    def parse_known_args(self: argparse.ArgumentParser, *a: object, **k: object) -> object:
        parsed = known(self, *a, **k)  # type: ignore[arg-type]
        if not inside and self.prog != "python -m benchmarks":
            raise ParsedError
        return parsed

    def parse_args(self: argparse.ArgumentParser, *a: object, **k: object) -> object:
        inside.append(True)
        try:
            strict(self, *a, **k)  # type: ignore[arg-type]  # exits on an unknown option
        finally:
            inside.pop()
        raise ParsedError

    def started(*a: object, **k: object) -> None:
        raise ParsedError

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_args)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    target, *rest = shlex.split(cmd)[2:]
    out = io.StringIO()
    with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
        if target in NO_PARSER:
            assert set(rest) <= set(NO_PARSER[target]), f"{page}: {cmd}"
            return
        try:
            if target == "benchmarks":
                main = importlib.import_module("benchmarks.__main__")
                names = [a for a in rest if not a.startswith("-")]
                for name in names[:1]:
                    if name in main.BENCHMARKS and name not in main.WITH_OPTIONS:
                        module = importlib.import_module(main.BENCHMARKS[name])
                        monkeypatch.setattr(module, "main", started)
                main.main(rest)
            else:
                monkeypatch.setattr(sys, "argv", [target, *rest])
                runpy.run_module(target, run_name="__main__")
        except ParsedError:
            return
        except SystemExit as exc:
            pytest.fail(f"{page}: {cmd} exits with {exc.code}: {out.getvalue()[-500:]}")
    pytest.fail(f"{page}: {cmd} was run, not parsed")


def test_the_commands_are_found() -> None:
    cmds = [cmd for _, cmd in commands()]
    assert len(cmds) > 50
    assert "python -m benchmarks.behaviour_matrix --check benchmarks/behaviour_matrix.json" in cmds


def test_the_benchmarks_page_names_the_modules_make_bench_does_not_run() -> None:
    # the page said that `make bench` runs every module of benchmarks/, while the runner it
    # starts (python -m benchmarks) knows only those of its list: nes_family and the
    # behaviour matrix are started as modules of their own
    runner = importlib.import_module("benchmarks.__main__")
    intro = (ROOT / "docs" / "benchmarks.rst").read_text().split(".. contents::")[0]
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")}
    run = {module.rsplit(".", 1)[-1] for module in runner.BENCHMARKS.values()}
    assert run <= modules
    for name in sorted(modules - run):
        assert f"``python -m benchmarks.{name}``" in intro, name


def test_help_after_a_benchmark_name_shows_that_benchmarks_own_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main = importlib.import_module("benchmarks.__main__")
    with pytest.raises(SystemExit) as exc:
        main.main(["policy", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m benchmarks policy" in out
    assert "--seed-list" in out
    with pytest.raises(SystemExit) as exc:
        main.main(["bbob", "--help"])  # no options of its own: the runner's help
    assert exc.value.code == 0
    assert "usage: python -m benchmarks [-h]" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:'benchmarks.*' found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("name", importlib.import_module("benchmarks.__main__").WITH_OPTIONS)
def test_a_benchmark_with_options_names_itself_as_it_was_started(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # noisy, optuna_long, dask_killed and policy called themselves `python -m benchmarks.X`
    # when started as `python -m benchmarks X`, the optuna ones `python -m benchmarks X` when
    # started as their own module: the usage line showed a command that was not the one run
    main = importlib.import_module("benchmarks.__main__")
    with pytest.raises(SystemExit) as exc:
        main.main([name, "--no-such-option"])
    assert exc.value.code == 2
    assert f"python -m benchmarks {name}: error: unrecognized arguments" in (
        capsys.readouterr().err
    )
    module = main.BENCHMARKS[name]
    monkeypatch.setattr(sys, "argv", [module, "--no-such-option"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module(module, run_name="__main__")
    assert exc.value.code == 2
    assert f"python -m {module}: error: unrecognized arguments" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:'benchmarks.*' found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize(("flag", "code"), [("--help", 0), ("--quik", 2)])
def test_the_bbob_module_parses_its_options_before_it_runs(
    flag: str, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # it read sys.argv for two flags and ignored the rest: `--help` or a typo ran the whole
    # benchmark, which writes the docs' tables
    from benchmarks import _bbob_overhead, _bbob_runs

    def started(*a: object, **k: object) -> None:
        raise AssertionError("the benchmark started")

    monkeypatch.setattr(_bbob_runs, "run_all", started)
    monkeypatch.setattr(_bbob_overhead, "run_overhead", started)
    monkeypatch.setattr(sys, "argv", ["python -m benchmarks.bbob", flag])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("benchmarks.bbob", run_name="__main__")
    assert exc.value.code == code
    captured = capsys.readouterr()
    assert "[--overhead-only]" in captured.out + captured.err


def test_the_behaviour_matrix_without_dask_skips_the_dask_rows_it_did_not_compute() -> None:
    from benchmarks import behaviour_matrix

    stored = {"engine/xnes/serial/bounds=False": "a", "engine/xnes/dask-seeds/bounds=False": "b"}
    now = {"engine/xnes/serial/bounds=False": "a"}
    # --no-dask --check reported every stored dask row as a difference, with exit code 1
    assert behaviour_matrix.differences(stored, now, with_dask=False) == (
        [],
        ["engine/xnes/dask-seeds/bounds=False"],
    )
    assert behaviour_matrix.differences(stored, now) == (
        ["engine/xnes/dask-seeds/bounds=False"],
        [],
    )
    changed = {"engine/xnes/serial/bounds=False": "c"}
    assert behaviour_matrix.differences(stored, changed, with_dask=False)[0] == [
        "engine/xnes/serial/bounds=False"
    ]


def test_the_behaviour_matrix_refuses_a_missing_stored_matrix_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import behaviour_matrix

    missing = tmp_path / "missing.json"
    with pytest.raises(SystemExit) as exc:
        behaviour_matrix.main(["--no-dask", "--check", str(missing)])
    assert exc.value.code == 2
    assert f"`--check` must be a stored matrix, but got {missing}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runs", "0"], "`--runs` must be at least 1, but got 0"),
        (["--generations", "0"], "`--generations` must be at least 1, but got 0"),
        (["--load", "-1"], "`--load` must be at least 0, but got -1"),
        (["--timeout", "-1"], "`--timeout` must be a positive number of seconds, but got -1.0"),
        (["--timeout", "nan"], "`--timeout` must be a positive number of seconds, but got nan"),
    ],
)
def test_dask_killed_refuses_counts_and_a_timeout_out_of_range_before_it_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --generations 0 counted every run as ended with only the culprit NaN (none was
    # evaluated), --timeout -1 every run as hung, --runs 0 printed a table of nothing
    dask_killed = importlib.import_module("benchmarks.dask_killed")
    with pytest.raises(SystemExit) as exc:
        dask_killed.main(argv=argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # refused before the busy processes and the runs
