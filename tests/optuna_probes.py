"""Probes of the Optuna sampler's work shared by its test modules (imported by them)."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable
from typing import Any

import optuna
from nes_asktell.integrations.optuna import _storage as ch
from optuna.trial import FrozenTrial


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


def tampered(t: FrozenTrial, change: Callable[[dict[str, object]], None]) -> dict[str, object]:
    """Return `t`'s attributes with its state changed by `change` (with a matching digest)."""
    carrier = ch.parse_carrier(t)
    assert carrier is not None
    state = copy.deepcopy(ch.stored_state(t, carrier))
    change(state)
    text = ch.dumps(state)
    attrs = {k: v for k, v in t.system_attrs.items() if not k.startswith(ch.STATE + ":")}
    parts = ch.chunked(text)
    for i, part in enumerate(parts):
        attrs[f"{ch.STATE}:{i}"] = part
    summary = dict(t.system_attrs[ch.STATE])
    attrs[ch.STATE] = {**summary, "digest": ch.digest_of(text), "chunks": len(parts)}
    return attrs


def set_entry(path: tuple[str, ...], value: object) -> Callable[[dict[str, object]], None]:
    def change(state: dict[str, object]) -> None:
        d: dict[str, object] = state
        for key in path[:-1]:
            d = d[key]  # type: ignore[assignment]
        d[path[-1]] = value

    return change


def tip_of(trials: list[FrozenTrial]) -> FrozenTrial:
    """Return the trial that stores the latest generation's state among `trials`."""
    carriers = [t for t in trials if ch.STATE in t.system_attrs]
    return max(carriers, key=lambda t: t.system_attrs[ch.STATE]["generation"])


def copy_trials(
    trials: list[FrozenTrial],
    attrs_of: dict[int, dict[str, object]],
    sampler: optuna.samplers.BaseSampler,
) -> optuna.Study:
    """Return a new in-memory study of `sampler` holding `trials`, some with other attributes."""
    study = optuna.create_study(sampler=sampler)
    for t in trials:
        study.add_trial(
            optuna.trial.create_trial(
                params=t.params,
                distributions=t.distributions,
                value=t.value,
                system_attrs=attrs_of.get(t.number, t.system_attrs),
            )
        )
    return study
