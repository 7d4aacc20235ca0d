"""The snippets of docs/scipy.rst that need a script of their own, run as written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from doc_scripts import ROOT, page_section, python_blocks, run_script


def section_snippets(title: str) -> list[str]:
    return python_blocks(page_section("scipy.rst", title))


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
    assert "same 3" in run_script(tmp_path, "parallel.py", script)


@pytest.mark.slow
def test_the_other_snippets_run_in_turn_and_do_what_the_page_says() -> None:
    blocks = python_blocks((ROOT / "docs" / "scipy.rst").read_text())
    parallel = section_snippets("Parallel and vectorized evaluation")
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
