"""The faulty objectives of ``benchmarks.faults``, importable by workers (never ``__main__``).

Row 5 of the population is the faulty one (its first coordinate is 5), or the odd rows.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

RELEASE = threading.Event()  # lets hanging threads of a thread pool go at the end


def _hang() -> None:
    RELEASE.wait(60)


def sphere(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def _bad(x: np.ndarray) -> bool:
    return bool(x[0] == 5.0)


def raises(x: np.ndarray) -> float:
    if _bad(x):
        raise ArithmeticError("boom")
    return sphere(x)


def exits(x: np.ndarray) -> float:
    if _bad(x):
        sys.exit(1)
    return sphere(x)


def interrupts(x: np.ndarray) -> float:
    if _bad(x):
        raise KeyboardInterrupt
    return sphere(x)


def dies(x: np.ndarray) -> float:
    if _bad(x):
        os._exit(3)
    return sphere(x)


def hangs(x: np.ndarray) -> float:
    if _bad(x):
        _hang()
    return sphere(x)


def returns_none(x: np.ndarray) -> object:
    return None if _bad(x) else sphere(x)


def returns_text(x: np.ndarray) -> object:
    return "abc" if _bad(x) else sphere(x)


def returns_array(x: np.ndarray) -> object:
    return np.ones(10**6) if _bad(x) else sphere(x)


def half_die(x: np.ndarray) -> float:
    if x[0] % 2 == 1:
        os._exit(4)
    return sphere(x)


def half_hang(x: np.ndarray) -> float:
    if x[0] % 2 == 1:
        _hang()
    return sphere(x)
