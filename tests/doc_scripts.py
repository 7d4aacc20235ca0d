"""Helpers of the tests that run a documentation page's snippets as a script of their own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def page_section(page: str, title: str) -> str:
    """Return the text of section `title` (underlined with ``-``) of ``docs/<page>``."""
    text = (ROOT / "docs" / page).read_text()
    return text.split(f"{title}\n{'-' * len(title)}", 1)[1].split("\n----", 1)[0]


def python_blocks(text: str) -> list[str]:
    """Return the ``.. code-block:: python`` blocks of `text`, dedented."""
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text)
    return [textwrap.dedent(b) for b in blocks]


def run_script(folder: Path, name: str, script: str) -> str:
    """Write `script` as `folder`/`name`, run it with the repository's sources; return stdout.

    Fails the calling test (with the script's output) if the script exits with an error.
    """
    (folder / name).write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, name],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
