"""The Python snippets of the algorithm, restart and reproducibility pages run as written.

Each page's snippets run in turn in one namespace, as a reader copies them down the page (a
later snippet may use what an earlier one defined). The pages with snippets of their own tests
(quickstart, scipy, optuna, parallel) are run by those.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [*sorted((DOCS / "algorithms").glob("*.rst")), DOCS / "restarts.rst"]
PAGES.append(DOCS / "reproducibility.rst")


def snippets(page: Path) -> list[str]:
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", page.read_text())
    return [textwrap.dedent(b) for b in blocks]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_the_snippets_of_a_page_run_in_turn(page: Path) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    blocks = snippets(page)
    assert blocks
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in blocks:
        exec(compile(block, page.name, "exec"), namespace)
