"""An objective that raises an exception whose text cannot be made (shared by the tests of
evaluation on pools and under MPI)."""

from __future__ import annotations

import numpy as np


class NoTextError(Exception):
    """An exception whose text cannot be made: its ``__str__`` raises."""

    def __str__(self) -> str:
        raise ValueError("no text")


def raise_no_text_right_of_one(x: np.ndarray) -> float:
    """The sphere, raising :class:`NoTextError` where ``x[0] > 1``."""
    if x[0] > 1.0:
        raise NoTextError
    return float(np.sum(np.asarray(x) ** 2))
