"""Sequences of calls on the ask/tell objects, checked by a hypothesis state machine.

Every strategy, the IPOP and BIPOP restart sequences and the noise handler are driven through
interleaved asks (again before a tell), tells (right, with non-finite values, with the wrong
number of values or rows, twice), copies (state_dict/from_state through JSON, pickle,
copy.copy, copy.deepcopy), optimize calls and stop queries. The machine keeps replicas: each
copy joins them and is then given every call the original is given; they must answer alike and
hold the same state after each step (a copy continues bit-identically, and independently of
its original). A call that must be refused is made on the first replica only: it must raise
the documented error and change nothing (its state then stays that of the others). No
RuntimeWarning may escape any call.
"""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nes_asktell import (
    BIPOP,
    CRFMNES,
    DXNESIC,
    IPOP,
    SNES,
    XNES,
    NESWarning,
    NoiseHandler,
    OpenES,
    Strategy,
)

pytestmark = pytest.mark.slow  # (60 sequences of up to 30 calls: about 10 s)

#: the most replicas kept at once (the first one and the latest copies)
MAX_REPLICAS = 4

Builder = Callable[[int], Any]

KINDS: dict[str, Builder] = {
    "xnes": lambda s: XNES(np.full(3, 0.5), 0.3, rng=s),
    "xnes-active-box": lambda s: XNES(
        np.zeros(2), 0.5, 6, bounds=(-1.0, 1.0), active=True, mirrored=True, rng=s
    ),
    "snes": lambda s: SNES(np.full(3, 0.5), [0.2, 0.3, 0.4], rng=s),
    "snes-box": lambda s: SNES(np.zeros(2), 2.0, 6, bounds=(-1.0, 1.0), rng=s),
    "openes": lambda s: OpenES(np.full(3, 0.5), 0.1, rng=s),
    "openes-sgd": lambda s: OpenES(
        np.full(2, 0.5), 0.1, 6, optimizer="sgd", shaping="zscore", mirrored=False, rng=s
    ),
    "dxnesic": lambda s: DXNESIC(np.full(3, 0.5), 0.3, rng=s),
    "crfmnes": lambda s: CRFMNES(np.full(3, 0.5), 0.3, bounds=(-1.0, 2.0), rng=s),
    "crfmnes-implicit": lambda s: CRFMNES(np.full(3, 0.5), 0.3, implicit_constraints=True, rng=s),
    "generator": lambda s: XNES(np.full(2, 0.5), 0.3, rng=np.random.default_rng(s)),
    "ipop": lambda s: IPOP(XNES, np.full(2, 0.5), 0.3, rng=s, tolstagnation=3, max_restarts=3),
    "ipop-snes": lambda s: IPOP(SNES, np.full(2, 0.5), 0.3, rng=s, tolfun=1e-3, maxfev=400),
    "bipop": lambda s: BIPOP(OpenES, np.full(2, 0.5), 0.3, rng=s, tolstagnation=2, max_restarts=4),
    "xnes-float32": lambda s: XNES(
        np.full(3, 0.5), 0.3, dtype="float32", threads=2, maxiter=6, rank_one=False, rng=s
    ),
    "snes-nocsa": lambda s: SNES(np.full(3, 0.5), 0.3, csa=False, ftarget=0.05, rng=s),
    "openes-legacy": lambda s: OpenES(
        np.full(3, 0.5),
        0.1,
        10,
        optimizer="sgd",
        learning_rate=0.05,
        shaping="zscore",
        mirrored=False,
        rng=np.random.RandomState(s),
    ),
    "openes-schedule": lambda s: OpenES(
        np.zeros(2),
        [0.1, 0.2],
        bounds=[(-0.5, 0.5), (0.0, 1.0)],
        sigma_decay=0.9,
        sigma_limit=0.01,
        learning_rate_decay=0.9,
        weight_decay=0.01,
        optimizer="momentum",
        rng=s,
    ),
    "dxnesic-float32": lambda s: DXNESIC(
        np.full(2, 0.5), 0.3, bounds=(0.0, 1.0), dtype="float32", tolflatfitness=1, rng=s
    ),
    "bipop-xnes": lambda s: BIPOP(
        XNES, np.full(2, 0.5), 0.3, bounds=(-1.0, 1.0), rng=s, tolfun=1e-2, maxfev=300
    ),
    "ipop-generator": lambda s: IPOP(
        CRFMNES, np.full(3, 0.5), 0.3, rng=np.random.default_rng(s), tolstagnation=2
    ),
    "xnes-huge": lambda s: XNES(np.full(2, 1e307), 1e100, rng=s),
    "snes-tiny": lambda s: SNES(np.full(2, 1e-300), 1e-100, rng=s),
    "crfmnes-float32-huge": lambda s: CRFMNES(np.full(2, 1e37), 1e36, dtype="float32", rng=s),
    "openes-huge": lambda s: OpenES(np.full(2, 1e307), 1e100, learning_rate=1e300, rng=s),
    "xnes-raw": lambda s: XNES(
        np.full(2, 0.5), 0.3, shaping="raw", eta_mu=1e3, eta_sigma=50.0, eta_B=50.0, rng=s
    ),
    "snes-raw": lambda s: SNES(np.full(2, 0.5), 0.3, shaping="raw", csa=False, rng=s),
    "openes-raw": lambda s: OpenES(np.full(2, 0.5), 0.1, shaping="raw", rng=s),
    "crfmnes-centered": lambda s: CRFMNES(
        np.full(2, 0.5), 0.3, 6, shaping="centered_ranks", rng=s
    ),
    "noise": lambda s: NoiseHandler(XNES(np.full(3, 0.5), 0.3, rng=s)),
    "noise-legacy": lambda s: NoiseHandler(
        OpenES(np.full(2, 0.5), 0.1, 6, mirrored=False, rng=np.random.RandomState(s)),
        theta=1.0,
        c_s=1.0,
    ),
    "noise-snes": lambda s: NoiseHandler(SNES(np.full(2, 0.5), 0.3, rng=s), reevaluations=1.0),
}


def objective(x: np.ndarray) -> float:
    with np.errstate(over="ignore"):  # (inf far out: the objective's own overflow)
        return float(np.sum((np.asarray(x, dtype=np.float64) - 0.3) ** 2))


def state_of(obj: Any) -> str:
    """The state of `obj` as JSON text, with its best point."""
    es = obj if isinstance(obj, Strategy) else obj.strategy
    best = obj.best if hasattr(obj, "best") else es.best
    return json.dumps([obj.state_dict(), best[1], best[0].tolist()], sort_keys=True)


def everything_of(obj: Any) -> str:
    """:func:`state_of`, and the updates its strategy keeps for replicas (not state)."""
    es = obj if isinstance(obj, Strategy) else obj.strategy
    updates = [
        (g, None if u is None else u.tolist(), n, None if w is None else w.tolist())
        for g, u, n, w in es.recent_updates()
    ]
    return json.dumps([state_of(obj), updates])


def from_json(obj: Any) -> Any:
    state = json.loads(json.dumps(obj.state_dict()))
    cls = Strategy if isinstance(obj, Strategy) else type(obj)
    return cls.from_state(state)


COPIES: dict[str, Callable[[Any], Any]] = {
    "state_dict": from_json,
    "pickle": lambda obj: pickle.loads(pickle.dumps(obj)),
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """Return ``("ok", value)`` or ``("raised", (type, message))``; fail on a RuntimeWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", call())
        except (ValueError, TypeError, RuntimeError, FloatingPointError) as exc:
            result = ("raised", (type(exc), str(exc)))
    leaked = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not leaked, f"a RuntimeWarning escaped: {leaked[0].message} ({leaked[0].filename})"
    others = [w for w in caught if not issubclass(w.category, NESWarning)]
    assert not others, f"an unexpected warning: {others[0].category.__name__}: {others[0].message}"
    return result


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b, equal_nan=True))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class CallSequences(RuleBasedStateMachine):
    """One object of a kind, its replicas, and the batch pending on them (or None)."""

    def __init__(self) -> None:
        super().__init__()
        self.replicas: list[Any] = []
        self.replicas_of_replay: list[Strategy] = []
        self.pending: np.ndarray | None = None
        self.kind = ""
        self.counters = (0, 0)  # (nfev, generation) of the first replica

    @initialize(kind=st.sampled_from(sorted(KINDS)), seed=st.integers(0, 2**32 - 1))
    def make(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.replicas = [KINDS[kind](seed)]

    # ------------------------------------------------------------------ helpers
    @property
    def first(self) -> Any:
        return self.replicas[0]

    @property
    def wraps(self) -> bool:
        return isinstance(self.first, NoiseHandler)

    def on_all(self, call: Callable[[Any], Any]) -> tuple[str, Any]:
        """Make `call` on every replica; they must answer alike. Return the first's answer."""
        answers = [outcome(lambda r=r: call(r)) for r in self.replicas]
        for i, answer in enumerate(answers[1:], 1):
            message = f"replica {i} answered {answer} where the first answered {answers[0]}"
            assert answer[0] == answers[0][0], message
            assert same(answer[1], answers[0][1]), message
        return answers[0]

    def refused(
        self,
        call: Callable[[Any], Any],
        error: type[Exception] | tuple[type[Exception], ...],
        match: str,
    ) -> None:
        """Make `call` on the first replica: it must raise `error` and change nothing."""
        before = everything_of(self.first)
        kind, value = outcome(lambda: call(self.first))
        assert kind == "raised", f"the call was not refused: it returned {value!r}"
        assert issubclass(value[0], error), f"raised {value[0].__name__}: {value[1]}"
        assert match in value[1], value[1]
        assert everything_of(self.first) == before, "a refused call changed the state"

    @staticmethod
    def generation_of(obj: Any) -> int:
        return int(obj.strategy.generation if isinstance(obj, NoiseHandler) else obj.generation)

    def fitness(self, X: np.ndarray, data: st.DataObject) -> list[float]:
        f = [objective(x) for x in X]
        scale = data.draw(st.sampled_from([1.0, 1e-300, 1e300]), label="scale")
        f = [scale * y for y in f]
        bad = st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e308])
        for i in data.draw(st.sets(st.integers(0, len(f) - 1), max_size=len(f)), label="bad"):
            f[i] = data.draw(bad, label=f"f[{i}]")
        return f

    # ------------------------------------------------------------------ rules
    @rule()
    def ask(self) -> None:
        kind, X = self.on_all(lambda r: np.array(r.ask()))
        assert kind == "ok", X
        if self.pending is not None:  # asking again before tell returns the same batch
            np.testing.assert_array_equal(X, self.pending)
        self.pending = X

    @precondition(lambda self: self.pending is not None)
    @rule(data=st.data(), shuffle=st.booleans())
    def tell(self, data: st.DataObject, shuffle: bool) -> None:
        assert self.pending is not None
        X, f = self.pending, self.fitness(self.pending, data)
        if shuffle and not self.wraps:  # (the handler takes its rows in the order asked)
            order = data.draw(st.permutations(range(len(X))), label="order")
            X, f = X[order], [f[i] for i in order]
        self.told(lambda r: r.tell(X, f))

    def told(self, call: Callable[[Any], Any]) -> None:
        """Make the tell `call` on every replica: it is taken, or refused as an overflow.

        Documented: an update that overflows (raw shaping of huge values, say) raises
        FloatingPointError and changes nothing, the batch still pending.
        """
        before = everything_of(self.first)
        kind, value = self.on_all(call)
        if kind == "raised":
            assert value[0] is FloatingPointError, value
            assert everything_of(self.first) == before, "a refused tell changed the state"
        else:
            self.pending = None

    @precondition(lambda self: self.pending is not None and not self.wraps)
    @rule(data=st.data())
    def tell_some_evaluated(self, data: st.DataObject) -> None:
        assert self.pending is not None
        X = self.pending
        n = data.draw(st.integers(0, len(X)), label="evaluated")
        f = [objective(x) for x in X[:n]] + [np.nan] * (len(X) - n)
        self.told(lambda r: r.tell(X, f, evaluated=n))

    @precondition(lambda self: self.pending is None)
    @rule()
    def tell_without_a_batch(self) -> None:
        # documented: tell before ask, or the same batch twice, raises RuntimeError
        first = self.first
        es = first.strategy if isinstance(first, NoiseHandler) else first
        rows = es.popsize + (first.reevaluations if isinstance(first, NoiseHandler) else 0)
        X = np.zeros((rows, es.dim))
        self.refused(lambda r: r.tell(X, np.zeros(len(X))), RuntimeError, "ask()")

    @precondition(lambda self: self.pending is not None)
    @rule(delta=st.sampled_from([-1, 1, 5]))
    def tell_the_wrong_number_of_values(self, delta: int) -> None:
        assert self.pending is not None
        X = self.pending
        f = [objective(x) for x in X][: max(len(X) + delta, 0)] + [1.0] * max(delta, 0)
        self.refused(lambda r: r.tell(X, f), ValueError, "`fitness`")

    @precondition(lambda self: self.pending is not None)
    @rule(rows=st.sampled_from(["fewer", "moved", "more"]))
    def tell_the_wrong_rows(self, rows: str) -> None:
        assert self.pending is not None
        X = self.pending.copy()
        if rows == "fewer":
            X = X[:-1]
        elif rows == "moved":
            with np.errstate(over="ignore"):  # (the largest float32: inf, as different)
                X[0, 0] = np.nextafter(X[0, 0], np.inf)
        else:
            X = np.concatenate([X, X[:1]])
        f = [objective(x) for x in self.pending]  # the right number of values
        self.refused(lambda r: r.tell(X, f), ValueError, "`solutions`")

    @precondition(lambda self: self.pending is not None)
    @rule(
        bad=st.sampled_from(
            [
                ("fitness", None),
                ("fitness", "abc"),
                ("fitness", "none-inside"),
                ("fitness", "complex"),
                ("fitness", "bool"),
                ("solutions", "strings"),
                ("solutions", None),
                ("evaluated", -1),
                ("evaluated", "popsize+1"),
                ("evaluated", 1.5),
            ]
        )
    )
    def tell_malformed(self, bad: tuple[str, Any]) -> None:
        assert self.pending is not None
        X = self.pending
        f: Any = [objective(x) for x in X]
        what, value = bad
        kwargs: dict[str, Any] = {}
        if what == "fitness":
            f = {"none-inside": [None, *f[1:]], "complex": [1j, *f[1:]], "bool": [True, *f[1:]]}
            f = f.get(value, value) if isinstance(value, str) or value is None else value
        elif what == "solutions":
            X = np.full(X.shape, "x") if value == "strings" else None
        else:
            if self.wraps:
                return  # (the handler takes no `evaluated`)
            kwargs["evaluated"] = len(X) + 1 if value == "popsize+1" else value
        error = (TypeError, ValueError)
        self.refused(lambda r: r.tell(X, f, **kwargs), error, f"`{what}`")

    @precondition(lambda self: self.pending is not None and isinstance(self.first, Strategy))
    @rule()
    def scale_sigma_with_a_batch_pending(self) -> None:
        self.refused(lambda r: r.scale_sigma(2.0), RuntimeError, "pending")

    @precondition(lambda self: self.pending is None and isinstance(self.first, Strategy))
    @rule(factor=st.sampled_from([0.5, 2.0, 1e300]))
    def scale_sigma(self, factor: float) -> None:
        kind, value = self.on_all(lambda r: r.scale_sigma(factor))
        assert kind == "ok", value
        self.replicas_of_replay.clear()  # (no update: replicas cannot replay it)

    @precondition(lambda self: isinstance(self.first, Strategy))
    @rule(n=st.integers(0, 5))
    def extra_samples(self, n: int) -> None:
        before = everything_of(self.first)
        kind, value = self.on_all(lambda r: r.extra_samples(n))
        assert kind == "ok", value
        assert everything_of(self.first) == before, "extra_samples changed the strategy"

    @precondition(lambda self: isinstance(self.first, Strategy))
    @rule()
    def follow_by_replay(self) -> None:
        """A replica made from replica_state() and replaying the updates has the same mean."""
        es = self.first
        try:
            replica = type(es).from_state(es.replica_state())
        except ValueError:
            return  # (a callable shaping: none here)
        self.replicas_of_replay.append(replica)
        del self.replicas_of_replay[:-2]

    @rule()
    def catch_up(self) -> None:
        es = self.first
        if not isinstance(es, Strategy):
            return
        updates = es.recent_updates()
        for replica in self.replicas_of_replay:
            for g, u, n, w in updates:
                if g == replica.generation:
                    kind, value = outcome(lambda r=replica, e=(g, u, n, w): r.replay(*e))
                    if kind == "raised" and "counter-based" in value[1]:
                        break  # (noise drawn in sequence: no replay, as documented)
                    assert kind == "ok", value
            if replica.generation == es.generation:
                assert replica.digest() == es.digest()
                np.testing.assert_array_equal(replica.mean, es.mean)

    @rule(how=st.sampled_from(sorted(COPIES)), data=st.data())
    def copied(self, how: str, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(self.replicas), label="source")
        kind, twin = outcome(lambda: COPIES[how](source))
        assert kind == "ok", twin
        self.replicas.append(twin)
        if len(self.replicas) > MAX_REPLICAS:
            del self.replicas[1]

    @rule(generations=st.integers(1, 3))
    def optimize_a_few(self, generations: int) -> None:
        self.optimize(generations)

    def optimized(self, call: Callable[[Any], Any]) -> None:
        """Make the optimize `call` on every replica; then find the batch pending, if any.

        A call that ends with an error (an update that overflowed, documented as a
        FloatingPointError, or the objective's own) leaves the batch it was in pending:
        asked again, it is the batch the machine knows.
        """
        before = self.generation_of(self.first)
        kind, value = self.on_all(call)
        if kind == "raised" or value == "raised":
            assert kind == "ok" or value[0] is FloatingPointError, value
            self.pending = None
            self.ask()
        elif self.generation_of(self.first) != before:  # (a run that had stopped asks nothing)
            self.pending = None

    def optimize(self, generations: int) -> None:
        def call(r: Any) -> tuple[Any, ...]:
            if isinstance(r, NoiseHandler):
                lam = r.strategy.popsize + r.reevaluations
                res = r.optimize(objective, maxfev=r.nfev + generations * lam)
            else:
                res = r.optimize(objective, maxiter=r.generation + generations)
            return (res.x, res.fun, res.nfev, res.nit)

        self.optimized(call)

    @rule(after=st.integers(0, 20), error=st.sampled_from([ZeroDivisionError, KeyboardInterrupt]))
    def optimize_that_raises(self, after: int, error: type[BaseException]) -> None:
        """An objective that raises after `after` values: the error propagates, and every
        replica is left alike (the values told before it kept, the batch it was in pending)."""

        def call(r: Any) -> Any:
            count = iter(range(after))

            def fun(x: np.ndarray) -> float:
                if next(count, None) is None:
                    raise error("from the objective")
                return objective(x)

            try:
                r.optimize(fun)
            except error:
                return "raised"
            return "returned"

        self.optimized(call)

    @rule(evaluations=st.integers(1, 15), stop_early=st.booleans(), mapped=st.booleans())
    def optimize_a_budget(self, evaluations: int, stop_early: bool, mapped: bool) -> None:
        """optimize() to a budget that may end inside a generation, or by its callback."""

        def call(r: Any) -> tuple[Any, ...]:
            if isinstance(r, NoiseHandler):
                res = r.optimize(objective, maxfev=r.nfev + evaluations)
            else:
                res = r.optimize(
                    objective,
                    maxfev=r.nfev + evaluations,
                    callback=(lambda res: True) if stop_early else None,
                    workers=map if mapped else None,
                )
            return (res.x, res.fun, res.nfev, res.nit, res.status, sorted(res.stop))

        self.optimized(call)

    @rule(generations=st.sampled_from([50, 300]))
    def run_long(self, generations: int) -> None:
        self.optimize(generations)

    @rule()
    def stop(self) -> None:
        kind, value = self.on_all(lambda r: (r.stop(), r.result.nfev, r.result.fun))
        assert kind == "ok", value

    # ------------------------------------------------------------------ invariants
    @invariant()
    def replicas_hold_the_same_state(self) -> None:
        if not self.replicas:
            return
        states = [state_of(r) for r in self.replicas]
        for i, s in enumerate(states[1:], 1):
            assert s == states[0], f"replica {i} diverged from the first"

    @invariant()
    def counters_never_go_back(self) -> None:
        if not self.replicas:
            return
        now = (self.first.nfev, self.generation_of(self.first))  # (IPOP's: over every run)
        message = f"the counters (nfev, generation) went from {self.counters} back to {now}"
        assert now[0] >= self.counters[0], message
        assert now[1] >= self.counters[1], message
        self.counters = now


CallSequences.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCallSequences = CallSequences.TestCase
