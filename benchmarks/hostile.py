"""Hostile: try to break the core and count what it survives (issue 12's totals table).

``python -m benchmarks.hostile`` tries, for every strategy:

* bad inputs (constructors, ``tell``, ``optimize``, the scipy method): handled when the call
  raises TypeError or ValueError whose message names an argument in backticks, and a rejected
  ``tell`` leaves the strategy exactly as it was;
* corrupted states (every field of a state deleted, or replaced by a value of another type,
  a huge or absurd number, a deeply nested list): rejected cleanly when ``from_state`` raises
  ValueError or TypeError within a second, or the state loads and asks a finite batch;
* numerical edge cases (absurd learning rates, decays to nothing, thousands of generations past
  convergence): handled when ``tell`` either updates to a finite state or raises
  FloatingPointError leaving the strategy unchanged, and ``stop()`` never misses a degenerate
  distribution;
* resumes (JSON and pickle, between and inside ask/tell, every rng kind, with and without
  bounds): identical when the resumed run asks exactly the batches of the uninterrupted one.

The faults of parallel evaluation are counted by the evaluation benchmarks, not here.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import pickle
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import Bounds, minimize

from nes_asktell import BIPOP, IPOP, Strategy, nes, resolve_strategy

NAMES = ("xnes", "snes", "openes", "dxnesic", "crfmnes")
NAMED = re.compile(r"`[A-Za-z_][A-Za-z_0-9\[\]'\"]*`")


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.25) ** 2))


def _frozen(es: Strategy) -> str:
    return json.dumps(es.state_dict(), sort_keys=True)


def _nested(depth: int) -> object:
    out: object = 0.0
    for _ in range(depth):
        out = [out]
    return out


# ---------------------------------------------------------------------- bad inputs
BAD_VALUES: list[object] = [
    None,
    True,
    "1.5",
    "abc",
    1.5 + 2j,
    -1.0,
    0.0,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    1e-320,
    10**400,
    [],
    [[1.0]],
    {},
    object(),
    np.array([1.0 + 1j, 2.0]),
    np.array([True, False]),
    np.array(["1", "2"]),
]


def bad_input_cases() -> list[tuple[str, Callable[[], object], Strategy | None]]:
    cases: list[tuple[str, Callable[[], object], Strategy | None]] = []
    for name in NAMES:
        cls = resolve_strategy(name)
        for value in BAD_VALUES:
            cases.append(
                (f"{name} x0={value!r:.20}", lambda c=cls, x=value: c(x, 0.3, rng=0), None)
            )
            if not isinstance(value, (list, np.ndarray)) and value != 1e-320:
                cases.append(
                    (
                        f"{name} sigma0={value!r:.20}",
                        lambda c=cls, s=value: c(np.zeros(2), s, rng=0),
                        None,
                    )
                )
            if value is not None:
                cases.append(
                    (
                        f"{name} popsize={value!r:.20}",
                        lambda c=cls, p=value: c(np.zeros(2), 0.3, p, rng=0),
                        None,
                    )
                )
            cases.append(
                (
                    f"{name} rng={value!r:.20}",
                    lambda c=cls, r=value: c(np.zeros(2), 0.3, rng=r),
                    None,
                )
            )
            cases.append(
                (
                    f"{name} bounds={value!r:.20}",
                    lambda c=cls, b=value: (
                        c(np.zeros(2), 0.3, bounds=b, rng=0)
                        if b is not None
                        else c(np.zeros(2), 0.3, bounds=([1.0, 1.0], [0.0, 0.0]), rng=0)
                    ),
                    None,
                )
            )
            for crit in ("maxfev", "maxiter", "tolx", "tolconditioncov"):
                if value is None:
                    continue
                cases.append(
                    (
                        f"{name} {crit}={value!r:.20}",
                        lambda c=cls, k=crit, x=value: c(np.zeros(2), 0.3, rng=0, **{k: x}),
                        None,
                    )
                )
        cases.append(("popsize 10**12", lambda c=cls: c(np.zeros(2), 0.3, 10**12, rng=0), None))
        for big in ("xnes", "dxnesic"):
            cases.append(
                (
                    f"dim 10**5 {big}",
                    lambda b=big: resolve_strategy(b)(np.zeros(10**5), 0.3),
                    None,
                )
            )
        # tell: a live strategy, checked unchanged after the rejected call
        non_real = [
            x for x in BAD_VALUES if not isinstance(x, (int, float)) or isinstance(x, bool)
        ]
        for value in [*non_real, "wrong length"]:
            es = cls(np.zeros(3), 0.3, rng=0)
            X = es.ask()
            if isinstance(value, str) and value == "wrong length":
                fit: object = [1.0] * (len(X) - 1)
            elif isinstance(value, (list, np.ndarray)):
                fit = value
            else:
                fit = [value] + [1.0] * (len(X) - 1)
            cases.append(
                (f"{name} tell fitness {value!r:.20}", lambda e=es, X=X, f=fit: e.tell(X, f), es)
            )
        for what in ("complex", "edited row", "bool", "shape"):
            es = cls(np.zeros(3), 0.3, rng=0)
            X = es.ask()
            if what == "complex":
                sol: object = X + 0j
            elif what == "edited row":
                sol = X.copy()
                sol[0] += 1.0  # type: ignore[index]
            elif what == "bool":
                sol = X > 0
            else:
                sol = X[:, :2]
            cases.append(
                (
                    f"{name} tell solutions {what}",
                    lambda e=es, s=sol, X=X: e.tell(s, [1.0] * len(X)),
                    es,
                )
            )
        for value in ("1.5", None, 1 + 1j, True):
            es = cls(np.zeros(3), 0.3, rng=0, maxiter=2)
            cases.append(
                (
                    f"{name} fun returns {value!r}",
                    lambda e=es, y=value: e.optimize(lambda x: y),
                    None,
                )
            )
        for kw in ({"maxfev": -1}, {"maxiter": "10"}, {"maxfev": math.nan}):
            es = cls(np.zeros(3), 0.3, rng=0)
            cases.append(
                (f"{name} optimize {kw}", lambda e=es, k=kw: e.optimize(sphere, **k), None)
            )
    for opts in (
        {"maxiter": -1},
        {"popsize": 1},
        {"sigma0": -1.0},
        {"strategy": "cma"},
        {"tol": -1},
    ):
        cases.append(
            (
                f"minimize {opts}",
                lambda o=opts: minimize(sphere, np.zeros(2), method=nes, options=o),
                None,
            )
        )
    cases.append(
        (
            "minimize NaN bounds",
            lambda: minimize(
                sphere, np.zeros(2), method=nes, bounds=Bounds([math.nan, 0], [1, 1])
            ),
            None,
        )
    )
    cases.append(
        (
            "IPOP popsize_factor=1e300",
            lambda: IPOP("xnes", np.zeros(2), 0.3, popsize_factor=1e300),
            None,
        )
    )
    return cases


def count_bad_inputs() -> tuple[int, int, list[str]]:
    handled, failures = 0, []
    cases = bad_input_cases()
    for label, call, es in cases:
        before = _frozen(es) if es is not None else None
        ok = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                call()
            except (TypeError, ValueError) as exc:
                ok = bool(NAMED.search(str(exc)))
            except Exception as exc:  # counted as not handled
                label = f"{label}: {type(exc).__name__}: {exc}"
            else:
                ok = _accepted_is_valid(label)  # accepted: fine only where the input is valid
        if es is not None and _frozen(es) != before:
            ok = False
            label += " (changed the strategy)"
        handled += ok
        if not ok:
            failures.append(label)
    return handled, len(cases), failures


def _accepted_is_valid(label: str) -> bool:
    """Whether a call that was accepted had valid input after all (e.g. ``rng=None``)."""
    valid = (
        "x0=-1.0",
        "x0=0.0",
        "x0=1e+308",
        "x0=1e-320",
        "tolx=1e-320",
        "tolconditioncov=1e-320",
        "rng=10000000000000000000",  # 10**400: a valid (huge) seed
        "maxfev=10000000000000000000",  # 10**400: a budget that never ends
        "maxiter=10000000000000000000",
        "rng=None",
        "tolx=0.0",
        "tolx=1e+308",
        "maxfev=1e+308",
        "maxiter=1e+308",
        "tolconditioncov=1e+308",
    )
    return label.endswith(valid)


# ---------------------------------------------------------------------- corrupt states
REPLACEMENTS: list[object] = [
    None,
    True,
    "-5",
    "abc",
    -1,
    0,
    1e308,
    -1e308,
    2**200,
    10**400,
    1e6,
    [],
    [1.0],
    {},
    "1e400",
]


def _paths(obj: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list) and obj and not isinstance(obj[0], (int, float)):
        out.append((*prefix, 0))
        out.extend(_paths(obj[0], (*prefix, 0)))
    elif isinstance(obj, list) and obj:
        out.append((*prefix, 0))
    return out


def _states() -> list[tuple[type[Any], dict[str, Any]]]:
    out: list[tuple[type[Any], dict[str, Any]]] = []
    for name in NAMES:
        es = resolve_strategy(name)(
            np.full(3, 0.5), np.array([0.3, 0.2, 0.1]), bounds=(-1, 1), rng=1
        )
        for _ in range(3):
            X = es.ask()
            es.tell(X, [sphere(x) for x in X])
        es.ask()
        out.append((Strategy, json.loads(json.dumps(es.state_dict()))))
    ipop = IPOP("snes", np.full(2, 0.5), 0.3, rng=1)
    out.append((IPOP, json.loads(json.dumps(ipop.state_dict()))))
    bipop = BIPOP("xnes", np.full(2, 0.5), 0.3, rng=1)
    out.append((BIPOP, json.loads(json.dumps(bipop.state_dict()))))
    return out


def count_corrupt_states() -> tuple[int, int, list[str]]:
    clean, total, failures = 0, 0, []
    for cls, state in _states():
        for path in _paths(state):
            for action in ["delete", *range(len(REPLACEMENTS)), "nested"]:
                bad = copy.deepcopy(state)
                parent: Any = bad
                for key in path[:-1]:
                    parent = parent[key]
                if action == "delete":
                    if not isinstance(parent, dict):
                        continue
                    del parent[path[-1]]
                elif action == "nested":
                    parent[path[-1]] = _nested(100_000)
                else:
                    parent[path[-1]] = REPLACEMENTS[action]  # type: ignore[index]
                total += 1
                t0 = time.monotonic()
                ok = True
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        obj = cls.from_state(bad)
                        ok = bool(np.all(np.isfinite(obj.ask())))
                        if not ok:
                            failures.append(f"{state.get('strategy')} {path} {action}: asks NaN")
                    except (ValueError, TypeError):
                        pass
                    except Exception as exc:
                        ok = False
                        failures.append(
                            f"{state.get('strategy')} {path} {action}: {type(exc).__name__}"
                        )
                seconds = time.monotonic() - t0
                if ok and seconds >= 1.0:
                    ok = False
                    failures.append(f"{state.get('strategy')} {path} {action}: {seconds:.1f} s")
                clean += ok
    return clean, total, failures


# ---------------------------------------------------------------------- numerical edge cases
def edge_cases() -> list[tuple[str, Callable[[], Strategy], int]]:
    x0 = np.full(3, 0.5)
    return [
        ("xnes eta_sigma=1e6", lambda: resolve_strategy("xnes")(x0, 0.3, eta_sigma=1e6, rng=0), 3),
        ("snes eta_sigma=1e6", lambda: resolve_strategy("snes")(x0, 0.3, eta_sigma=1e6, rng=0), 3),
        ("xnes eta_B=1e300", lambda: resolve_strategy("xnes")(x0, 0.3, eta_B=1e300, rng=0), 3),
        ("xnes eta_mu=1e300", lambda: resolve_strategy("xnes")(x0, 0.3, eta_mu=1e300, rng=0), 3),
        ("snes eta_mu=1e300", lambda: resolve_strategy("snes")(x0, 0.3, eta_mu=1e300, rng=0), 3),
        (
            "openes lr decay 0.5",
            lambda: resolve_strategy("openes")(x0, 0.3, learning_rate_decay=0.5, rng=0),
            1500,
        ),
        (
            "openes sigma decay 0.5",
            lambda: resolve_strategy("openes")(x0, 0.3, sigma_decay=0.5, rng=0),
            1500,
        ),
        (
            "openes lr=1e300",
            lambda: resolve_strategy("openes")(x0, 0.3, learning_rate=1e300, rng=0),
            20,
        ),
        ("xnes sigma0=1e-100", lambda: resolve_strategy("xnes")(x0, 1e-100, rng=0), 20),
        ("snes sigma0=1e100", lambda: resolve_strategy("snes")(x0, 1e100, rng=0), 20),
        ("xnes 3000 generations", lambda: resolve_strategy("xnes")(x0, 0.3, rng=0), 3000),
        ("snes 3000 generations", lambda: resolve_strategy("snes")(x0, 0.3, rng=0), 3000),
        (
            "xnes ill-conditioned",
            lambda: resolve_strategy("xnes")(x0, [1.0, 1e-6, 1e-9], rng=0),
            300,
        ),
        ("dxnesic 3000 generations", lambda: resolve_strategy("dxnesic")(x0, 0.3, rng=0), 3000),
        ("crfmnes 3000 generations", lambda: resolve_strategy("crfmnes")(x0, 0.3, rng=0), 3000),
        ("dxnesic sigma0=1e-100", lambda: resolve_strategy("dxnesic")(x0, 1e-100, rng=0), 20),
        ("crfmnes sigma0=1e100", lambda: resolve_strategy("crfmnes")(x0, 1e100, rng=0), 20),
        (
            "dxnesic ill-conditioned",
            lambda: resolve_strategy("dxnesic")(x0, [1.0, 1e-6, 1e-9], rng=0),
            300,
        ),
        (
            "crfmnes ill-conditioned",
            lambda: resolve_strategy("crfmnes")(x0, [1.0, 1e-6, 1e-9], rng=0),
            300,
        ),
        ("crfmnes all-NaN objective", lambda: resolve_strategy("crfmnes")(x0, 0.3, rng=0), -50),
        ("xnes all-NaN objective", lambda: resolve_strategy("xnes")(x0, 0.3, rng=0), -50),
        (
            "snes huge fitness",
            lambda: resolve_strategy("snes")(x0, 0.3, rng=0, shaping="raw"),
            -51,
        ),
    ]


def count_edge_cases() -> tuple[int, int, list[str]]:
    handled, failures = 0, []
    cases = edge_cases()
    for label, make, generations in cases:
        es = make()
        ok = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(abs(generations)):
                X = es.ask()
                if generations == -50:
                    f = [math.nan] * len(X)
                elif generations == -51:
                    f = [1e300 * (1 + i) for i in range(len(X))]
                else:
                    f = [sphere(x) for x in X]
                before = _frozen(es)
                try:
                    es.tell(X, f)
                except FloatingPointError as exc:
                    ok = "`tell`" in str(exc) and _frozen(es) == before
                    break
                except Exception as exc:
                    ok = False
                    label += f": {type(exc).__name__}: {exc}"
                    break
                finite = np.all(np.isfinite(es.mean)) and np.all(np.isfinite(es.sigma))
                if not finite and "degenerate" not in es.stop():
                    ok = False
                    break
            try:
                Strategy.from_state(json.loads(json.dumps(es.state_dict())))
            except ValueError as exc:
                ok = False
                label += f": checkpoint does not load: {exc}"
        handled += ok
        if not ok:
            failures.append(label)
    return handled, len(cases), failures


# ---------------------------------------------------------------------- resumes
def count_resumes() -> tuple[int, int, list[str]]:
    identical, total, failures = 0, 0, []
    for name in NAMES:
        cls = resolve_strategy(name)
        rngs: list[Callable[[], object]] = [
            lambda: 5,
            lambda: np.random.default_rng(5),
            lambda: np.random.SeedSequence(5),
        ]
        if name == "openes":
            rngs.append(lambda: np.random.RandomState(5))
        for make_rng in rngs:
            for bounds in (None, (-1.0, 1.0)):
                for how in ("json", "pickle"):
                    for pending in (False, True):
                        for at in (0, 7, 40):
                            total += 1
                            ref = cls(np.full(3, 0.5), 0.3, bounds=bounds, rng=make_rng())
                            es = cls(np.full(3, 0.5), 0.3, bounds=bounds, rng=make_rng())
                            ref_asks = []
                            for _ in range(at + 10):
                                X = ref.ask()
                                ref_asks.append(X.copy())
                                ref.tell(X, [sphere(x) for x in X])
                            for _ in range(at):
                                X = es.ask()
                                es.tell(X, [sphere(x) for x in X])
                            if pending:
                                es.ask()
                            if how == "json":
                                es = Strategy.from_state(json.loads(json.dumps(es.state_dict())))
                            else:
                                es = pickle.loads(pickle.dumps(es))
                            same = True
                            for k in range(10):
                                X = es.ask()
                                same = same and np.array_equal(X, ref_asks[at + k])
                                es.tell(X, [sphere(x) for x in X])
                            identical += same
                            if not same:
                                failures.append(
                                    f"{name} {make_rng()!r:.30} {bounds} {how} {pending} {at}"
                                )
    return identical, total, failures


def main(quick: bool = False) -> None:
    t0 = time.monotonic()
    rows = [
        ("bad inputs handled", count_bad_inputs()),
        ("corrupt states rejected cleanly", count_corrupt_states()),
        ("numerical edge cases handled", count_edge_cases()),
        ("resumes identical", count_resumes()),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  handled / total")
    for label, (ok, total, _) in rows:
        print(f"{label:{width}}  {ok:>7} / {total}")
    print(f"({time.monotonic() - t0:.0f} s)")
    for label, (_, _, failures) in rows:
        for failure in failures[:20]:
            print(f"  not handled ({label}): {failure}")


if __name__ == "__main__":
    argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__).parse_args()
    main()
