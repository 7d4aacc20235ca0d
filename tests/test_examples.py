"""Every script in examples/ runs in a fresh interpreter; the quickstart snippets run too."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
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
