"""The process-pool snippets of docs/parallel.rst, run as the script they make together."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from doc_scripts import page_section, python_blocks, run_script


@pytest.mark.slow
def test_the_process_pool_snippets_run_as_a_script(tmp_path: Path) -> None:
    blocks = python_blocks(page_section("parallel.rst", "One machine: processes"))
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
    assert run_script(tmp_path, "pool.py", script).split() == ["same"]
