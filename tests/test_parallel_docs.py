"""The process-pool snippets of docs/parallel.rst, run as the script they make together."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_process_pool_snippets_run_as_a_script(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "parallel.rst").read_text()
    section = text.split("One machine: processes\n----------------------", 1)[1]
    section = section.split("\n----", 1)[0]
    blocks = [
        textwrap.dedent(b)
        for b in re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    ]
    assert len(blocks) == 2  # the second continues the first, as on the page
    script = "\n".join(blocks)
    # what the page says of them: the same run with a pool as without one
    script += textwrap.dedent(
        """
        if __name__ == "__main__":
            serial = SNES(np.zeros(50), 0.5, rng=0).optimize(fun, maxfev=20_000)
            assert res.nfev == serial.nfev, (res.nfev, serial.nfev)
            assert np.array_equal(res.x, serial.x)
            assert np.array_equal(es.mean, SNES(np.zeros(50), 0.5, rng=0, maxfev=20_000)
                                  .optimize(fun).mean)
            print("same")
        """
    )
    (tmp_path / "pool.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "pool.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["same"]
