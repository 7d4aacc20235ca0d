"""Citations of Wierstra et al. (2014, JMLR 15) name the right algorithm of the paper.

Algorithm 4 is adaptation sampling, Algorithm 5 the XNES update, Algorithm 6 the SNES update;
issue 14 found adaptation sampling cited as "Algorithm 6" in the code and the docs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [
        *(ROOT / "nes_asktell").glob("*.py"),
        *(ROOT / "integrations").rglob("*.py"),
        *(ROOT / "docs").glob("*.rst"),
        *(ROOT / "docs" / "algorithms").glob("*.rst"),
    ]
)
#: each algorithm of the paper by what it is
NUMBER = {"adaptation sampling": 4, "xnes": 5, "snes": 6}
#: the forms a citation takes: (what, number) in the groups `what` and `n`
PATTERNS = [
    # "adaptation sampling ... (Wierstra et al. 2014, Algorithm 4)", the first one after it
    r"(?P<what>adaptation sampling)\b.{0,100}?Algorithm (?P<n>\d+)",
    # "**SNES** (Wierstra et al. 2014, Algorithm 6", "Algorithm 6 (SNES)"
    r"\b(?P<what>[SX]NES)\b\W{0,4}\(Wierstra et al\. 2014, Algorithm (?P<n>\d+)",
    r"Algorithm (?P<n>\d+) \((?P<what>[SX]NES)\)",
    # "their Algorithm 5 is the XNES update and Algorithm 6 the SNES update"
    r"Algorithm (?P<n>\d+) (?:is )?the (?P<what>[SX]NES) update",
]


def cited(text: str) -> list[tuple[str, int]]:
    """Return every (what, number) that `text` cites in one of the PATTERNS."""
    flat = " ".join(text.split())
    out = []
    for pattern in PATTERNS:
        for m in re.finditer(pattern, flat, flags=re.IGNORECASE):
            out.append((m.group("what").lower(), int(m.group("n"))))
    return out


def test_the_patterns_recognise_right_and_wrong_citations() -> None:
    wrong = "Adapt `eta_sigma` by adaptation sampling (Wierstra et al. 2014, Algorithm 6);"
    assert cited(wrong) == [("adaptation sampling", 6)]
    assert cited("**SNES** (Wierstra et al. 2014, Algorithm 6; Schaul") == [("snes", 6)]
    assert cited("# Wierstra 2014, Algorithm 6 (SNES): the") == [("snes", 6)]


def test_every_algorithm_of_the_paper_is_cited() -> None:
    found = {c for path in SOURCES for c in cited(path.read_text())}
    assert {what for what, _ in found} == set(NUMBER)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_citation_names_the_right_algorithm(path: Path) -> None:
    for what, n in cited(path.read_text()):
        assert n == NUMBER[what], f"{what} cited as Algorithm {n} in {path.name}"
