"""Probes of the Optuna sampler's work shared by its test modules (imported by them)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from nes_asktell.integrations.optuna import _storage as ch


def sampler_lines(run: Callable[[], None]) -> int:
    """Return how many lines of the sampler's own code `run` executes (work, not time)."""
    package = os.path.dirname(ch.__file__)
    count = 0

    def local(frame: object, event: str, arg: object) -> object:
        nonlocal count
        count += event == "line"
        return local

    def tracer(frame: Any, event: str, arg: object) -> object:
        return local if frame.f_code.co_filename.startswith(package) else None

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return count
