"""Every script in examples/ runs in a fresh interpreter; the quickstart snippets run too."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
#: each example must finish well within this (seconds); they are written to take a few.
TIMEOUT = 120


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.py", "checkpoint_resume.py"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,  # nothing is written into the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"


def test_the_readme_quickstart_runs_and_its_result_is_as_the_text_says() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (snippet,) = re.findall(r"## Quickstart\n\n```python\n(.*?)```", readme, re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    es, state = namespace["es"], namespace["state"]
    res = es.result  # type: ignore[attr-defined]
    # "`x` is the best point evaluated so far and `fun` its value (`es.best` is the pair)"
    x, fun = es.best  # type: ignore[attr-defined]
    assert np.array_equal(x, res.x)
    assert fun == res.fun
    assert np.array_equal(res.mean, es.mean)  # type: ignore[attr-defined]
    # "XNES.from_state(state) resumes bit-identically"
    copy = type(es).from_state(json.loads(json.dumps(state)))
    assert np.array_equal(copy.ask(), es.ask())  # type: ignore[attr-defined]


def test_the_quickstart_page_snippets_run_and_the_result_has_the_fields_it_lists() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "quickstart.rst").read_text()
    section = text.split("The ask/tell loop\n", 1)[1].split("\nWhich strategy?", 1)[0]
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    assert len(blocks) == 2
    namespace: dict[str, object] = {}
    for block in blocks:  # the second continues the first, as on the page
        exec(compile(textwrap.dedent(block), "quickstart.rst", "exec"), namespace)
    es = namespace["es"]
    bullet = section.split("* ``result`` is a", 1)[1].split("\n* ", 1)[0]
    listed = set(re.findall(r"``(\w+)``", bullet))
    assert set(es.result) == listed  # type: ignore[attr-defined]


def _processes(sid: int, script: Path) -> list[int]:
    """The live processes of session `sid`, and those running `script` from any session (as
    mpiexec's ranks do). Zombies are gone for good."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and (int(fields[3]) == sid or bytes(script) in command):
                alive.append(int(entry.name))
    return alive


def _command(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _interrupt(
    script: str, tmp_path: Path, after: str, ready: Callable[[Path, int], bool], whole_group: bool
) -> tuple[int, str]:
    """Run an example in its own session, its temporary files in `tmp_path`; once it printed
    a line starting with `after` and `ready(tmp_path, pid)` holds, send SIGINT (to the whole group,
    as Ctrl-C in a terminal does, or to the script alone). Return its exit code and stderr,
    after checking that it left no process behind."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    path = Path(__file__).resolve().parents[1] / "examples" / script
    with subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        if after:
            for line in proc.stdout:
                if line.startswith(after):
                    break
        _wait_for(lambda: ready(tmp_path, proc.pid), f"{script} ready to be interrupted")
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=TIMEOUT)
            # What the script started may still be on its way out (the resource tracker reads
            # the end of its pipe); one still there after TIMEOUT (a hang guard on a loaded
            # machine, not a speed limit) was left running.
            deadline = time.monotonic() + TIMEOUT
            while _processes(proc.pid, path) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            left = _processes(proc.pid, path)
            commands = [_command(pid) for pid in left]
            for pid in left:
                os.kill(pid, signal.SIGKILL)
    assert left == [], f"{script} left processes behind: {commands}\n{err}"
    return proc.returncode, err


def _journal_has_trials(tmp_path: Path, sid: int) -> bool:
    """The workers of optuna_study.py have started trials in their journal file."""
    return any(len(p.read_bytes().splitlines()) > 8 for p in tmp_path.glob("*/study.log"))


def _two_ranks_run(tmp_path: Path, sid: int) -> bool:
    """mpi_run.py runs on two ranks: it and mpiexec name the script, and so does each rank."""
    script = Path(__file__).resolve().parents[1] / "examples" / "mpi_run.py"
    return len(_processes(sid, script)) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c", "sigint-to-script"])
@pytest.mark.parametrize(
    ("script", "after", "ready"),
    [
        ("optuna_study.py", "3.", _journal_has_trials),  # two worker processes
        ("mpi_run.py", "", _two_ranks_run),  # the script, mpiexec and two ranks
    ],
    ids=["optuna_study-workers", "mpi_run"],
)
def test_an_interrupted_example_ends_cleanly(
    script: str, after: str, ready: Callable[[Path, int], bool], whole_group: bool, tmp_path: Path
) -> None:
    # Interrupted while its worker processes ran, optuna_study.py removed the study's folder
    # under them and printed a traceback from each process (FileNotFoundError, KeyboardInterrupt
    # in a half-imported worker), and the workers went on after the script had ended.
    # mpi_run.py printed a traceback from each rank and from itself, and interrupted alone it
    # left mpiexec and the ranks running.
    returncode, err = _interrupt(script, tmp_path, after, ready, whole_group)
    assert returncode == 130
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted"
