"""Fuzz ``from_state`` over random corruptions: every case loads or raises ValueError/TypeError.

Corruptions: a key deleted, a value replaced by random JSON of a random type (deeply nested
lists, huge integers, strings of digits, NaN-free floats of any size), at any depth of the state.
Each case must end quickly: no allocation is sized by the corrupted state before it is checked.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nes_asktell import BIPOP, IPOP, Strategy, resolve_strategy

#: (the class whose from_state loads it, a state), for every strategy and both restart wrappers
STATES: list[tuple[type[Any], dict[str, Any]]] = []
for _name, _kw in [
    ("xnes", {}),
    ("snes", {"bounds": (-1, 1)}),
    ("openes", {}),
    ("dxnesic", {"implicit_constraints": True}),
    ("crfmnes", {"bounds": (-1, 1)}),
]:
    _es = resolve_strategy(_name)(np.full(3, 0.5), 0.3, rng=1, **_kw)
    for _ in range(2):
        _X = _es.ask()
        _es.tell(_X, [float(x @ x) for x in _X])
    _es.ask()  # pending: the state holds the batch's noise too
    STATES.append((Strategy, json.loads(json.dumps(_es.state_dict()))))
for _wrapper in (IPOP, BIPOP):
    STATES.append(
        (
            _wrapper,
            json.loads(json.dumps(_wrapper("xnes", np.full(2, 0.5), 0.3, rng=1).state_dict())),
        )
    )


def _paths(obj: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:4]):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _nested(depth: int) -> object:
    out: object = 1.0
    for _ in range(depth):
        out = [out]
    return out


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["-5", "1e400", "0", "nan", "inf", "99999999999999999999999999999999999999999"]
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.mark.slow
@settings(max_examples=300)
@given(
    which=st.integers(min_value=0, max_value=len(STATES) - 1),
    pick=st.integers(min_value=0, max_value=10**6),
    delete=st.booleans(),
    value=json_values,
    depth=st.none() | st.integers(min_value=500, max_value=50_000),
)
def test_from_state_loads_or_rejects_cleanly(
    which: int, pick: int, delete: bool, value: object, depth: int | None
) -> None:
    if depth is not None:
        value = _nested(depth)  # built here: hypothesis could not print it
    cls, state = STATES[which]
    state = copy.deepcopy(state)
    paths = _paths(state)
    path = paths[pick % len(paths)]
    parent: Any = state
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    t0 = time.monotonic()
    try:
        obj: Any = cls.from_state(state)
    except (ValueError, TypeError):
        obj = None
    assert time.monotonic() - t0 < 5.0  # no allocation sized by the corrupted state
    if obj is not None:  # what loads works: it asks a finite batch, not only to fail later
        assert isinstance(obj, cls)
        assert np.all(np.isfinite(obj.ask()))
