"""The snippets of docs/scipy.rst that need a script of their own, run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def section_snippets(title: str) -> list[str]:
    text = (ROOT / "docs" / "scipy.rst").read_text()
    section = text.split(f"{title}\n{'-' * len(title)}", 1)[1].split("\n----", 1)[0]
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    return [textwrap.dedent(b) for b in blocks]


@pytest.mark.slow
def test_the_parallel_snippet_runs_as_a_script_and_matches_the_serial_run(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    (snippet,) = section_snippets("Parallel and vectorized evaluation")
    # keep every result instead of the last one, then compare them with the serial run
    lines = snippet.splitlines()
    calls = [i for i, line in enumerate(lines) if line.lstrip().startswith("res = minimize(")]
    assert len(calls) == 3
    for i in calls:
        assert lines[i].endswith(")")
        lines[i] = lines[i].replace("res = minimize(", "results.append(minimize(") + ")"
    script = "\n".join(lines).replace(
        "   x0 = np.zeros(10)\n", "   x0 = np.zeros(10)\n    results = []\n"
    )
    script += textwrap.dedent(
        """
            serial = minimize(rosen, x0, method=nes, options={"rng": 0})
            for r in results:
                assert r.nfev == serial.nfev and np.array_equal(r.x, serial.x), (r, serial)
            print("same", len(results))
        """
    ).replace("\n", "\n    ")
    (tmp_path / "parallel.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "parallel.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "same 3" in done.stdout


@pytest.mark.slow
def test_the_other_snippets_run_in_turn_and_do_what_the_page_says() -> None:
    text = (ROOT / "docs" / "scipy.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text)
    parallel = section_snippets("Parallel and vectorized evaluation")
    blocks = [textwrap.dedent(b) for b in blocks]
    blocks = [b for b in blocks if b not in parallel]
    assert len(blocks) == 5
    namespace: dict[str, object] = {}
    for block in blocks:  # each continues the ones before it, as on the page
        exec(compile(block, "scipy.rst", "exec"), namespace)
        if "def watch(" in block:
            res = namespace["res"]
            # "res.status, res.message        # (99, '`callback` raised `StopIteration`.')"
            assert (res.status, res.message) == (99, "`callback` raised `StopIteration`.")  # type: ignore[attr-defined]
    assert namespace["res"].success  # type: ignore[attr-defined]  # differential_evolution's
