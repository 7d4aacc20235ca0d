"""The generations of a :class:`~nes_asktell.NESSampler` search, kept in the trials of a study.

This is the only module that touches Optuna's internals (``study._storage``, a trial's
``_trial_id``, ``study._study_id``; and, in :func:`in_optimize` and :func:`accepts`, a study's
thread-local flag and a distribution's own check of a value): everything the sampler reads and
writes goes through it.

Storage layout (trial system attributes, all JSON, never pickle):

* ``nes_asktell:candidate`` on every trial the sampler drew: ``{"state": D, "generation": g,
  "index": k}``, candidate ``k`` of the state whose digest is ``D`` (JSON null: a trial that
  holds none, drawn by the independent sampler).
* ``nes_asktell:closing`` = ``D`` on a trial waiting to tell the generation of state ``D`` (it
  takes no extra sample of it, so others need not wait for it).
* ``nes_asktell:state:0``, ``nes_asktell:state:1``, ... on a *carrier* trial: the JSON text of a
  state (chunks of at most ``CHUNK`` characters), then ``nes_asktell:state``: ``{"digest": D,
  "key": K, "generation": g, "parent": P, "chunks": n, "told": [...]}``, written last, so a
  reader never sees a half-written state. ``D`` is the SHA-256 of the text, ``K`` identifies the
  search (search space and sampler settings), ``P`` is the digest of the state it was told from
  (None for the first) and ``told`` the numbers of the trials whose values were told.

The states form a tree under their parent links. Every process follows the same rule: the current
search is the *longest* chain, ties going to the chain whose first differing state sits on the
lowest trial number. Telling a generation is a deterministic function of its state and of the
values of its slots (slot ``k``: the COMPLETE trial of candidate ``k`` with the lowest number), so
processes that tell the same generation at the same time write the same state (same digest) and
nothing forks. A fork needs two COMPLETE trials of one slot with different values (a replaced trial
that finished after all) seen differently by two processes within the moment of the tell; then
both branches are stored, every process picks the same one, and the trials drawn on the other are
simply not used: no generation is lost or told twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import json
import math
import re
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._rdb.storage import _create_scoped_session as _rdb_session
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from nes_asktell import _warn
from nes_asktell._validate import short

PREFIX = "nes_asktell:"
CANDIDATE = PREFIX + "candidate"
STATE = PREFIX + "state"
CLOSING = PREFIX + "closing"
FORMAT = "nes_asktell.NESSampler/2"
CHUNK = 60_000
MAX_CHUNKS = 1_000
#: the most trials a stored summary may list as told (a generation's population at most)
MAX_TOLD = 1 << 16
#: the most studies whose trials a sampler keeps indexed (and whose search spaces it keeps)
MAX_STUDIES = 16
_DIGEST_LEN = 20


def digest_of(text: str) -> str:
    """Return the digest stored with a state's JSON text."""
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_LEN]


def in_optimize(study: object) -> bool:
    """Return whether the calling thread runs `study.optimize` (Optuna's thread-local flag).

    False when the flag is missing (another Optuna version): trials are then judged as if
    started by ``study.ask()``.
    """
    return getattr(getattr(study, "_thread_local", None), "in_optimize_loop", False) is True


def accepts(dist: object, value: float) -> bool:
    """Return whether Optuna takes `value` as a value of `dist` (else it draws another).

    Optuna's own check (``_contains``); True where a distribution has none, or where that check
    overflows (grids as wide as the floats).
    """
    contains = getattr(dist, "_contains", None)
    to_internal = getattr(dist, "to_internal_repr", None)
    if contains is None or to_internal is None:
        return True
    try:
        return bool(contains(to_internal(value)))
    except (OverflowError, ValueError):
        return True


def dumps(state: dict[str, object]) -> str:
    """Return the canonical JSON text of a state (sorted keys, no NaN)."""
    return json.dumps(state, sort_keys=True, separators=(",", ":"), allow_nan=False)


def key_of(parts: dict[str, object]) -> str:
    """Return the identity of a search from its defining settings."""
    return digest_of(dumps(parts))[:16]


def chunked(text: str) -> list[str]:
    """Split a state's text into the pieces stored as separate attributes."""
    return [text[i : i + CHUNK] for i in range(0, max(len(text), 1), CHUNK)]


@dataclass(frozen=True)
class Carrier:
    """A stored state, as announced by its summary attribute on a trial."""

    number: int
    trial_id: int
    digest: str
    key: str
    generation: int
    parent: str | None
    chunks: int
    told: tuple[int, ...]


@dataclass(frozen=True)
class Candidate:
    """The candidate a trial evaluates: index `index` of the state with digest `state`."""

    state: str
    generation: int
    index: int


_DIGEST_RE = re.compile(f"[0-9a-f]{{{_DIGEST_LEN}}}")


def _is_digest(x: object) -> bool:
    return isinstance(x, str) and _DIGEST_RE.fullmatch(x) is not None


def _is_count(x: object, lo: int, hi: float = math.inf) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi


_SUMMARY_KEYS = {"digest", "key", "generation", "parent", "chunks", "told"}


def parse_carrier(trial: FrozenTrial) -> Carrier | None:
    """Return the trial's state summary, None if it has none; raise ValueError if malformed."""
    raw = trial.system_attrs.get(STATE)
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != len(_SUMMARY_KEYS) or set(raw) != _SUMMARY_KEYS:
        raise ValueError(f"`{STATE}` of trial {trial.number} is malformed: {short(raw)}")
    parent = raw["parent"]
    ok = (
        _is_digest(raw["digest"])
        and isinstance(raw["key"], str)
        and len(raw["key"]) <= 64
        and _is_count(raw["generation"], 0)
        and _is_count(raw["chunks"], 1, MAX_CHUNKS)
        and (parent is None or _is_digest(parent))
        and (parent is None) == (raw["generation"] == 0)
        and isinstance(raw["told"], list)
        and len(raw["told"]) <= MAX_TOLD
        and all(_is_count(n, -1) for n in raw["told"])
    )
    if not ok:
        raise ValueError(f"`{STATE}` of trial {trial.number} is malformed: {short(raw)}")
    return Carrier(
        trial.number,
        trial._trial_id,
        raw["digest"],
        raw["key"],
        raw["generation"],
        parent,
        raw["chunks"],
        tuple(raw["told"]),
    )


def parse_candidate(trial: FrozenTrial) -> Candidate | None:
    """Return the trial's candidate record, None if it has none; raise ValueError if malformed."""
    raw = trial.system_attrs.get(CANDIDATE)
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or len(raw) != 3
        or set(raw) != {"state", "generation", "index"}
        or not _is_digest(raw["state"])
        or not _is_count(raw["generation"], 0)
        or not _is_count(raw["index"], 0)
    ):
        raise ValueError(f"`{CANDIDATE}` of trial {trial.number} is malformed: {short(raw)}")
    return Candidate(raw["state"], raw["generation"], raw["index"])


def stored_state(
    trial: FrozenTrial, carrier: Carrier, max_chars: int = CHUNK * MAX_CHUNKS
) -> dict[str, object]:
    """Return the state stored on `trial`, checked against its summary; raise ValueError.

    A text longer than `max_chars` is rejected before it is joined or parsed.
    """
    if carrier.chunks > max_chars // CHUNK + 1:
        raise ValueError(f"the state stored on trial {trial.number} has too many chunks")
    parts = [trial.system_attrs.get(f"{STATE}:{i}") for i in range(carrier.chunks)]
    if not all(isinstance(p, str) for p in parts):
        raise ValueError(f"the state stored on trial {trial.number} is incomplete")
    size = sum(len(p) for p in parts if isinstance(p, str))
    if size > max_chars:
        raise ValueError(
            f"the state stored on trial {trial.number} has {size} characters, more than the "
            f"{max_chars} a state of this search can have"
        )
    text = "".join(p for p in parts if isinstance(p, str))
    if digest_of(text) != carrier.digest:
        raise ValueError(f"the state stored on trial {trial.number} does not match its digest")
    state = json.loads(text)
    if not isinstance(state, dict):
        raise ValueError(f"the state stored on trial {trial.number} is not a JSON object")
    expected = {
        "format": FORMAT,
        "key": carrier.key,
        "generation": carrier.generation,
        "parent": carrier.parent,
    }
    for name, value in expected.items():
        if state.get(name) != value:
            raise ValueError(
                f"the state stored on trial {trial.number} has {name}={short(state.get(name))}, "
                f"but its summary says {short(value)}"
            )
    return state


def longest_chain(carriers: list[Carrier]) -> list[Carrier]:
    """Return the current chain of states, first to last (empty when there is none).

    The chain is the longest path from a first state (generation 0) down the parent links; ties
    go to the lowest carrier trial number at the first state where paths differ. Each digest is
    represented by its lowest-numbered carrier (so the carriers given must say the same of it:
    :meth:`Records.update` notes a false copy of a state bad as soon as it reads it).
    """
    by_digest: dict[str, Carrier] = {}
    for c in sorted(carriers, key=lambda c: c.number):
        by_digest.setdefault(c.digest, c)
    children: dict[str | None, list[Carrier]] = {}
    for c in by_digest.values():
        parent = by_digest.get(c.parent) if c.parent is not None else None
        if c.parent is not None and (parent is None or parent.generation + 1 != c.generation):
            continue  # an orphan (its parent is unknown or inconsistent): never on the chain
        children.setdefault(c.parent, []).append(c)
    depth: dict[str, int] = {}
    # Deepest generations first, so that children are done before their parents.
    for c in sorted(by_digest.values(), key=lambda c: -c.generation):
        kids = children.get(c.digest, [])
        depth[c.digest] = 1 + max((depth.get(k.digest, 0) for k in kids), default=0)
    chain: list[Carrier] = []
    level = children.get(None, [])
    while level:
        best = min(level, key=lambda c: (-depth[c.digest], c.number))
        chain.append(best)
        level = children.get(best.digest, [])
    return chain


def study_token(study: Study) -> tuple[object, int, str]:
    """Return what identifies `study` for a cache: its storage, study id and name.

    The storage is referenced weakly where it can be: a token of a storage that is gone then
    equals no other, even when a new storage reuses its address and study id (in-memory
    storages all number their first study 0).
    """
    storage = study._storage
    try:
        ref: object = weakref.ref(storage)
    except TypeError:  # a storage that cannot be referenced weakly
        ref = id(storage)
    return ref, study._study_id, study.study_name


def all_trials(study: Study) -> list[FrozenTrial]:
    """Return every trial of the study, sorted by number (not deep-copied).

    The study a sampler is given may show only some trials (``HyperbandPruner`` shows those of
    the sampled trial's bracket); the search lives in all of them.
    """
    return study._storage.get_all_trials(study._study_id, deepcopy=False)


def fixed_names(trial: FrozenTrial) -> set[str]:
    """Return the names of the parameters fixed by ``study.enqueue_trial`` on `trial`."""
    fixed = trial.system_attrs.get("fixed_params")
    return {name for name in fixed if isinstance(name, str)} if isinstance(fixed, dict) else set()


def clear_candidate(study: Study, trial: FrozenTrial) -> None:
    """Record on the RUNNING `trial` that it evaluates no candidate (JSON null)."""
    study._storage.set_trial_system_attr(trial._trial_id, CANDIDATE, None)


def mark_closing(study: Study, trial: FrozenTrial, digest: str) -> None:
    """Record on the RUNNING `trial` that it waits to tell the generation of state `digest`.

    Such a trial takes no extra sample of that generation, so the others need not wait for it.
    """
    study._storage.set_trial_system_attr(trial._trial_id, CLOSING, digest)


def record_candidate(study: Study, trial: FrozenTrial, candidate: Candidate) -> None:
    """Record on the RUNNING `trial` which candidate it evaluates."""
    record: dict[str, str | int] = {
        "state": candidate.state,
        "generation": candidate.generation,
        "index": candidate.index,
    }
    study._storage.set_trial_system_attr(trial._trial_id, CANDIDATE, record)


@dataclass
class _Records:
    """The candidate records of one study's finished trials, indexed once.

    ``trials[:scanned]`` have been read; those among them that were unfinished at their last
    read are at the positions `pending` (read again each call), the others are finished and
    their records are in `by_state`. A finished trial's system attributes cannot change
    (Optuna refuses to set them).
    """

    scanned: int = 0
    pending: list[int] = field(default_factory=list)
    by_state: dict[str, dict[int, Candidate]] = field(default_factory=dict)


#: per storage and study id, the finished trials' records. Without it every assignment parsed
#: every trial's record again, so a trial's cost grew with the study (36 ms at trial 3,000 of a
#: 10-d study); with it a call reads the unfinished trials and the new ones only. Per storage,
#: the `MAX_STUDIES` studies used last (a study forgotten is indexed anew if it returns), so
#: that a loop over many studies of one storage holds bounded memory.
_RECORDS: weakref.WeakKeyDictionary[BaseStorage, OrderedDict[int, _Records]] = (
    weakref.WeakKeyDictionary()
)
#: held while an index of `_RECORDS` is read and advanced (samplers in several threads may share
#: a storage: an index written half by one and half by another could lose an unfinished trial)
_RECORDS_LOCK = threading.Lock()
#: held while the warning filters are replaced to read a trial's constraints
_FILTERS_LOCK = threading.Lock()


def candidate_records(study: Study, state: str) -> dict[int, Candidate]:
    """Return the trials whose candidate record is of `state`, by number.

    Finished trials count too: a rival that took the same candidate may already be done. The
    records of unfinished trials are read afresh each call (a running trial may change its
    record), those of finished ones once; malformed records hold nothing.
    """
    trials = all_trials(study)
    with _RECORDS_LOCK:
        try:
            per_study = _RECORDS.setdefault(study._storage, OrderedDict())
        except TypeError:  # a storage that cannot be referenced weakly: index afresh each time
            per_study = OrderedDict()
        sid = study._study_id
        ix = per_study.get(sid)
        if ix is None or ix.scanned > len(trials):
            ix = per_study[sid] = _Records()
            while len(per_study) > MAX_STUDIES:
                per_study.popitem(last=False)
        per_study.move_to_end(sid)
        out = dict(ix.by_state.get(state, {}))
        still: list[int] = []
        # (a trial left RUNNING for good, by a process that died, is read on each call, and the
        # finished trials after it only once: the work is that of the new and unfinished ones)
        for pos in itertools.chain(ix.pending, range(ix.scanned, len(trials))):
            t = trials[pos]
            try:
                cand = parse_candidate(t)
            except Exception:  # untrusted records: a malformed one holds nothing
                cand = None
            if cand is not None and cand.state == state:
                out[t.number] = cand
            if not t.state.is_finished():
                still.append(pos)
            elif cand is not None:
                ix.by_state.setdefault(cand.state, {})[t.number] = cand
        ix.pending, ix.scanned = still, len(trials)
    return out


def heartbeat_enabled(study: Study) -> bool:
    """Return whether the study's storage records heartbeats (Optuna then fails dead trials)."""
    get = getattr(study._storage, "get_heartbeat_interval", None)
    try:
        return callable(get) and get() is not None
    except Exception:  # a storage that cannot say: no heartbeat
        return False


def heartbeat_trials(study: Study) -> frozenset[int] | None:
    """Return the numbers of the RUNNING trials of `study` that record a heartbeat.

    Optuna fails such a trial itself once its heartbeat stops. A trial started by
    ``study.ask()`` (or added RUNNING, or copied) records none and is never failed by Optuna.
    Read from an ``RDBStorage`` (the storage that records heartbeats), also behind Optuna's
    cache; None when the storage cannot say (then every RUNNING trial counts as recording one).
    """
    storage = getattr(study._storage, "_backend", study._storage)
    if not isinstance(storage, RDBStorage):
        return None
    try:
        # Optuna's table models import SQLAlchemy, which Optuna itself loads only for an
        # RDBStorage: loaded here, where one exists, so that importing the sampler stays light.
        _rdb_models = importlib.import_module("optuna.storages._rdb.models")
        with _rdb_session(storage.scoped_session) as session:
            rows = (
                session.query(_rdb_models.TrialModel.number)
                .join(
                    _rdb_models.TrialHeartbeatModel,
                    _rdb_models.TrialHeartbeatModel.trial_id == _rdb_models.TrialModel.trial_id,
                )
                .filter(_rdb_models.TrialModel.study_id == study._study_id)
                .filter(_rdb_models.TrialModel.state == TrialState.RUNNING)
                .all()
            )
        return frozenset(int(row[0]) for row in rows)
    except Exception:  # a schema this module does not know: trust the heartbeat
        return None


def store_state(
    study: Study, trial: FrozenTrial, state: dict[str, object], told: list[int]
) -> str:
    """Store `state`, told from trials `told`, on the RUNNING `trial`; return its digest.

    The text goes first and the summary last. The told trial numbers are in the summary, not
    in the digested text. A text of more than `MAX_CHUNKS` chunks raises ValueError and writes
    nothing.
    """
    storage: BaseStorage = study._storage
    trial_id = trial._trial_id
    text = dumps(state)
    digest = digest_of(text)
    parts = chunked(text)
    if len(parts) > MAX_CHUNKS:
        # No reader would accept it: every trial would store another and the search would
        # never get past it. Nothing is written.
        run = state.get("run")
        name = run.get("strategy") if isinstance(run, dict) else None
        dim = run.get("dim") if isinstance(run, dict) else None
        raise ValueError(
            f"`strategy` {name!r} has a state too large to store for {dim} parameters "
            f"({len(text):,} characters; a stored state has at most {CHUNK * MAX_CHUNKS:,}): "
            "use a strategy whose state grows linearly with the dimension, such as 'snes'."
        )
    for i, part in enumerate(parts):
        storage.set_trial_system_attr(trial_id, f"{STATE}:{i}", part)
    key, generation, parent = state["key"], state["generation"], state["parent"]
    if not (isinstance(key, str) and isinstance(generation, int)):  # pragma: no cover
        raise TypeError("a state needs a str key and an int generation")
    summary: dict[str, str | int | list[int] | None] = {
        "digest": digest,
        "key": key,
        "generation": generation,
        "parent": parent if isinstance(parent, str) else None,
        "chunks": len(parts),
        "told": told,
    }
    storage.set_trial_system_attr(trial_id, STATE, summary)
    return digest


#: the longest list a constraint record may hold (more counts as an infinite violation)
MAX_CONSTRAINTS = 10_000
#: where Optuna's samplers keep a ``constraints_func``'s values (one list; Optuna 5 reads it as
#: the constraints ``"0"``, ``"1"``, ... of ``FrozenTrial.constraints``), and the prefix of the
#: keyed form, one attribute ``"constraints:<key>"`` per value, that ``trial.set_constraint``
#: writes (Optuna 5; the sampler wrote its values so before, and reads them still)
_CONSTRAINTS = "constraints"
_KEYED = f"{_CONSTRAINTS}:"


def store_constraints(
    constraints_func: Callable[[FrozenTrial], object],
    study: Study,
    trial: FrozenTrial,
    state: TrialState,
) -> None:
    """Evaluate `constraints_func` on a finished trial and store its values as Optuna does.

    As Optuna's samplers do: only for COMPLETE and PRUNED trials, and a NaN value raises
    ``ValueError``. The values are stored as Optuna's samplers store them, one list under
    ``"constraints"`` (one storage write, however many values), so every reader of
    ``FrozenTrial.constraints`` (Optuna's samplers, its plots, ``study.best_trial``) sees them
    as the constraints ``"0"``, ``"1"``, ...; this replaces Optuna's private helper
    ``_process_constraints_after_trial``. Where the trial has set a constraint of such a key
    itself (``trial.set_constraint("0", ...)``), its own value is kept, with a warning, and the
    other values are stored one attribute each, as ``trial.set_constraint(str(i), value)``
    would store them: the list would name the trial's keys too, and Optuna warns at every
    reading of such a record. ``after_trial`` runs while the trial is still RUNNING, so they
    can be written.
    """
    if state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return
    raw = constraints_func(trial)
    values: list[float] = []
    items: list[object] = [None]  # (anything but a flat sequence is refused below)
    text = isinstance(raw, (str, bytes, bytearray, memoryview))  # (sequences, not of numbers)
    if (isinstance(raw, Sequence) and not text) or (isinstance(raw, np.ndarray) and raw.ndim == 1):
        items = list(raw)
    for c in items:
        # real numbers only (a bool, numpy's too, counts as an int, as for Optuna's samplers)
        if not isinstance(c, (int, float, np.integer, np.floating, np.bool_)):
            raise TypeError(
                "`constraints_func` must return a sequence of real numbers, but got "
                f"{short(raw)} for trial {trial.number}."
            )
        try:
            values.append(float(c))
        except OverflowError:  # an int beyond the floats
            raise ValueError(
                "`constraints_func` must return real numbers a float can hold, but got "
                f"{short(raw)} for trial {trial.number}."
            ) from None
    if any(math.isnan(c) for c in values):
        raise ValueError(
            f"Constraint values cannot be NaN, but `constraints_func` returned {short(raw)} "
            f"for trial {trial.number}."
        )
    # A constraint the objective set itself (``trial.set_constraint``) keeps its value, as
    # Optuna keeps the first value of a key (and as its samplers' list form leaves it): the
    # value of `constraints_func` for that key is ignored, with a warning.
    own = {key[len(_KEYED) :] for key in trial.system_attrs if key.startswith(_KEYED)}
    kept = [str(i) for i in range(len(values)) if str(i) in own]
    storage, trial_id = study._storage, trial._trial_id
    if not kept:
        storage.set_trial_system_attr(trial_id, _CONSTRAINTS, values)
    else:
        for i, c in enumerate(values):
            if str(i) not in own:
                storage.set_trial_system_attr(trial_id, f"{_KEYED}{i}", c)
        _warn.warn(
            f"`constraints_func` returned values for constraints that trial {trial.number} has "
            f"set already ({short(kept)}): the trial's own values are kept, as Optuna keeps the "
            "first value of a constraint.",
            stacklevel=3,
        )


@contextlib.contextmanager
def _without_warnings() -> Iterator[None]:
    """Ignore every warning within the block (Optuna's, when both forms name one key).

    The filters are process-wide (every thread's warnings pass them), so :func:`violation`
    replaces them only for such a record, and the lock keeps samplers in several threads from
    restoring them over each other.
    """
    with _FILTERS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _forms_clash(attrs: dict[str, object]) -> bool:
    """Whether both of Optuna's forms of constraints name one key (Optuna then warns).

    The list form names its values ``"0"``, ``"1"``, ...; the keyed form is one attribute
    ``"constraints:<key>"`` per value. A list form without a length counts as a clash.
    """
    keyed = {k[len(_KEYED) :] for k in attrs if k.startswith(_KEYED)}
    listed = attrs.get(_CONSTRAINTS)
    if not keyed or listed is None:
        return False
    try:
        n = len(listed)  # type: ignore[arg-type]
    except TypeError:
        return True
    return any(_index(k) < n for k in keyed)


def _index(key: str) -> float:
    """Return the list index that `key` names as Optuna writes it (``str(i)``), else inf."""
    if key.isascii() and key.isdigit() and len(key) < 20 and str(int(key)) == key:
        return int(key)
    return math.inf


def violation(trial: FrozenTrial) -> float | None:
    """Return the total constraint violation of `trial` (None when it has no constraints).

    Read through the public ``FrozenTrial.constraints`` (Optuna 5), which holds both forms
    Optuna stores: a sampler's ``constraints_func`` values and ``trial.set_constraint(key,
    value)``. A value may be a numpy number: Optuna's own samplers keep what a
    ``constraints_func`` returns (``np.int64``, ``np.float32``) in an in-memory study, and count
    it as Optuna does; so is a bool, Python's or numpy's (kept as such in a database's JSON
    too), which counts as an int, as for Optuna's samplers: True a violation of 1, False
    satisfied. The attributes are untrusted: a list longer than `MAX_CONSTRAINTS` among
    them (or more keyed values), a list form that is no list, a record Optuna cannot read or a
    value that is not a real number counts as an infinite violation, and an int beyond the
    floats as an infinite value of its sign.
    """
    attrs = trial.system_attrs
    if any(isinstance(v, (list, tuple)) and len(v) > MAX_CONSTRAINTS for v in attrs.values()):
        return math.inf
    listed = attrs.get(_CONSTRAINTS)
    if listed is not None and not isinstance(listed, (list, tuple)):
        # (Optuna reads a string or a dict as one value per character or entry: a 5 MB
        # string took seconds and 440 MB)
        return math.inf
    if sum(1 for k in attrs if k.startswith(_KEYED)) > MAX_CONSTRAINTS:
        return math.inf
    try:
        if hasattr(type(trial), "constraints"):
            with _without_warnings() if _forms_clash(attrs) else contextlib.nullcontext():
                found = list(trial.constraints.values())
        else:  # Optuna 4
            raw = attrs.get(_CONSTRAINTS)
            found = [] if raw is None else list(raw)
    except Exception:  # a malformed record, whatever Optuna raises on it
        return math.inf
    if not found:
        return None
    total = 0.0
    for c in found:
        # real numbers only (a bool, numpy's too, counts as an int, as for Optuna's samplers)
        if not isinstance(c, (int, float, np.integer, np.floating, np.bool_)):
            return math.inf
        try:
            x = float(c)
        except OverflowError:  # an int beyond the floats (JSON keeps any int): +-inf
            x = math.inf if c > 0 else -math.inf
        if math.isnan(x):
            return math.inf
        total += max(x, 0.0)
    return total


def find(trials: list[FrozenTrial], number: int) -> FrozenTrial | None:
    """Return the trial numbered `number` (trials come sorted by number, from 0)."""
    if 0 <= number < len(trials) and trials[number].number == number:
        return trials[number]
    return next((t for t in trials if t.number == number), None)


def _claims(c: Carrier) -> tuple[str, int, str | None, int]:
    """Return what `c`'s summary says of its state's text (the same for every true copy)."""
    return c.key, c.generation, c.parent, c.chunks


class Chain:
    """The current chain of one search's states, kept up to date as carriers arrive.

    Equal at every moment to :func:`longest_chain` of the search's carriers less the bad ones,
    without recomputing it each time: a carrier that extends the chain's last state, one that
    repeats a stored state on a later trial, and one that starts a branch shorter than the
    chain (or sits out of reach of a first state) are taken in constant time; anything else (a
    branch as long as the chain, a state that arrives after its child, a copy of a state on an
    earlier trial, a carrier found bad) recomputes the chain from all the carriers. In a study
    those are forks and out-of-order arrivals from other processes, and bad states: rare, so a
    trial's work stays that of the new carriers.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        #: how many carriers of the index's log, and of its bad ones, this chain has seen
        self.seen = 0
        self.bad_seen = 0
        self._carriers: list[Carrier] = []  # every carrier of the search, bad ones included
        self._rep: dict[str, Carrier] = {}  # digest -> its lowest-numbered good carrier
        self._depth: dict[str, int] = {}  # digest -> its place on a path from a first state
        self._parents: set[str] = set()  # the parent digests the representatives name
        self._tip: Carrier | None = None
        self._length = 0

    @property
    def tip(self) -> Carrier | None:
        """The last state of the chain (None when there is none)."""
        return self._tip

    def carrier(self, digest: str) -> Carrier | None:
        """Return the lowest-numbered good carrier of state `digest` (None when none)."""
        return self._rep.get(digest)

    def states(self) -> list[Carrier]:
        """Return the chain, first state to last."""
        out: list[Carrier] = []
        c = self._tip
        while c is not None:
            out.append(c)
            c = None if c.parent is None else self._rep[c.parent]
        return out[::-1]

    def add(self, new: list[Carrier], bad: set[tuple[int, str]]) -> None:
        """Take the carriers `new` of this search, with `bad` the carriers found bad so far."""
        self._carriers.extend(new)
        rebuild = len(bad) != self.bad_seen
        for c in new:
            if rebuild:
                break
            if (c.number, c.digest) not in bad:
                rebuild = not self._extend(c)
        if rebuild:
            self.bad_seen = len(bad)
            self._rebuild(bad)

    def _extend(self, c: Carrier) -> bool:
        """Take carrier `c` in constant time; return False when the chain must be rebuilt."""
        known = self._rep.get(c.digest)
        if known is not None:  # a copy of a stored state: only an earlier one changes anything
            return c.number > known.number
        if c.digest in self._parents:  # a state that arrives after its child
            return False
        self._rep[c.digest] = c
        if c.parent is None:
            depth = 1
        else:
            self._parents.add(c.parent)
            parent = self._rep.get(c.parent)
            if parent is None or parent.generation + 1 != c.generation:
                return True  # an orphan: on no chain (until its parent comes, see above)
            if parent.digest not in self._depth:
                return True  # below an orphan: out of reach of a first state
            depth = self._depth[parent.digest] + 1
        self._depth[c.digest] = depth
        if self._tip is None or c.parent == self._tip.digest:
            # The chain's next state (or its first: with no chain, no first state was known,
            # so `c` is one)
            self._tip, self._length = c, depth
            return True
        # A branch shorter than the chain leaves it as it is; one as long (a tie) or longer
        # (below another state as deep as the chain's last) is decided from scratch.
        return depth < self._length

    def _rebuild(self, bad: set[tuple[int, str]]) -> None:
        good = [c for c in self._carriers if (c.number, c.digest) not in bad]
        chain = longest_chain(good)
        self._rep = {}
        for c in sorted(good, key=lambda c: c.number):
            self._rep.setdefault(c.digest, c)
        self._parents = {c.parent for c in self._rep.values() if c.parent is not None}
        children: dict[str | None, list[Carrier]] = {}
        for c in self._rep.values():
            parent = self._rep.get(c.parent) if c.parent is not None else None
            if c.parent is None or (parent is not None and parent.generation + 1 == c.generation):
                children.setdefault(c.parent, []).append(c)
        self._depth = {}
        level, depth = children.get(None, []), 1
        while level:
            for c in level:
                self._depth[c.digest] = depth
            level = [k for c in level for k in children.get(c.digest, [])]
            depth += 1
        self._tip = chain[-1] if chain else None
        self._length = len(chain)


@dataclass
class Index:
    """What the sampler knows about one study's trials, updated incrementally.

    ``trials[:scanned]`` have been read; those that were unfinished at their last read are at
    the positions `pending` and are read again on each update, the others are finished and
    indexed for good (a finished trial never changes).
    """

    scanned: int = 0
    pending: list[int] = field(default_factory=list)
    carriers: dict[int, Carrier] = field(default_factory=dict)
    #: the carriers in the order they were indexed (each search's chain reads the new ones)
    log: list[Carrier] = field(default_factory=list)
    #: the COMPLETE trials among those read finished (a finished trial never changes)
    complete: int = 0
    candidates: dict[int, Candidate] = field(default_factory=dict)
    by_state: dict[str, list[int]] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    #: the carriers (trial number, digest) whose stored state failed to load: a carrier, not a
    #: digest, since another trial may hold a good copy of the same state
    bad: set[tuple[int, str]] = field(default_factory=set)
    #: per digest, the carrier the other carriers of that state are compared with, and whether
    #: its summary was checked against its stored text (see :meth:`Records.update`)
    copies: dict[str, tuple[Carrier, bool]] = field(default_factory=dict)
    #: per (kind, trial number) of an unfinished trial, its record that failed to parse (the
    #: very object read: the same object is not parsed again, a rewritten record is)
    failed: dict[tuple[str, int], object] = field(default_factory=dict)

    def unfinished(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Return the trials of `trials` (as last indexed) that were not finished then."""
        return [trials[pos] for pos in self.pending if pos < len(trials)]


class Records:
    """The parsed records of each study's trials.

    Malformed records are ignored with one :class:`~nes_asktell.NESWarning` each, and so are
    the carriers whose summary is false to their state's text, among copies of one state whose
    summaries disagree (see :meth:`_compare_copies`).
    """

    def __init__(self) -> None:
        # the most recent `MAX_STUDIES` studies (one forgotten is indexed again if it returns)
        self._studies: OrderedDict[tuple[object, int, str], Index] = OrderedDict()
        self._warned: set[object] = set()

    def warn_once(self, tag: object, message: str) -> None:
        """Warn with `message` unless a warning with `tag` was given before."""
        if tag not in self._warned:
            self._warned.add(tag)
            _warn.warn(message, stacklevel=5)

    def update(self, study: Study, trials: list[FrozenTrial]) -> Index:
        """Index the new and the unfinished trials; return the study's index.

        A trial left RUNNING for good (by a process that died) is read on each update, the
        finished trials after it once: an update's work is that of the new and unfinished
        trials, however long the study.
        """
        sid = study_token(study)
        ix = self._studies.get(sid)
        if ix is None or ix.scanned > len(trials):
            ix = self._studies[sid] = Index()
            while len(self._studies) > MAX_STUDIES:
                self._studies.popitem(last=False)
        self._studies.move_to_end(sid)
        still: list[int] = []
        for pos in itertools.chain(ix.pending, range(ix.scanned, len(trials))):
            t = trials[pos]
            n = t.number
            if n not in ix.carriers and STATE in t.system_attrs:
                c = self._parse(ix, parse_carrier, t, "carrier", STATE)
                if isinstance(c, Carrier):
                    ix.carriers[n] = c
                    ix.log.append(c)
                    self._compare_copies(ix, c, trials)
            # A RUNNING trial may still change its record (it yields a candidate that another
            # trial took at the same moment), so unfinished records are read again each time.
            # (Read again when it has finished too: it may have changed after the last read.)
            raw = t.system_attrs.get(CANDIDATE)
            old = ix.candidates.get(n)
            if raw is not None:
                cand = self._parse(ix, parse_candidate, t, "candidate", CANDIDATE)
                if cand != old:
                    self._drop(ix, n)
                    if isinstance(cand, Candidate):
                        ix.candidates[n] = cand
                        ix.by_state.setdefault(cand.state, []).append(n)
            elif raw is None and old is not None:
                self._drop(ix, n)
            if not t.state.is_finished():
                still.append(pos)
                continue
            if ix.failed:  # (a finished trial is not read again)
                ix.failed.pop(("carrier", n), None)
                ix.failed.pop(("candidate", n), None)
            if t.state == TrialState.COMPLETE:
                ix.complete += 1
        ix.pending, ix.scanned = still, len(trials)
        return ix

    def _compare_copies(self, ix: Index, c: Carrier, trials: list[FrozenTrial]) -> None:
        """Find the false summaries among the carriers of `c`'s state when they disagree.

        A state's text holds its key, generation and parent, so every true copy of it has the
        same summary (its number of chunks too). When `c`'s summary says otherwise than that
        of the state's first carrier, at most one of them is true: each is checked against its
        stored text (once) and a false one is bad, with one warning. Unchecked, a false copy
        on a lower trial number than the true one would represent the state on the chain and,
        out of reach of a first state, never be loaded: the true state would be hidden.
        """
        known = ix.copies.get(c.digest)
        if known is None or (known[0].number, c.digest) in ix.bad:
            ix.copies[c.digest] = (c, False)
            return
        first, checked = known
        if _claims(first) == _claims(c):
            return
        if checked or self._check(ix, first, trials):
            ix.copies[c.digest] = (first, True)
            self._check(ix, c, trials)  # (false: the text says what `first` says)
        else:
            ix.copies[c.digest] = (c, self._check(ix, c, trials))

    def _check(self, ix: Index, c: Carrier, trials: list[FrozenTrial]) -> bool:
        """Return whether `c`'s stored text is that of its summary; else note it bad and warn."""
        trial = find(trials, c.number)
        try:
            if trial is None:
                raise ValueError(f"trial {c.number} is missing")
            stored_state(trial, c)
        except Exception as exc:  # an untrusted state: whatever it raises, it is skipped
            ix.bad.add((c.number, c.digest))
            self.warn_once(
                ("state", c.number, c.trial_id, c.digest),
                f"NESSampler ignores the search state stored on trial {c.number}: {exc}",
            )
            return False
        return True

    @staticmethod
    def _drop(ix: Index, n: int) -> None:
        old = ix.candidates.pop(n, None)
        if old is not None:
            ix.by_state[old.state].remove(n)

    def _parse(
        self,
        ix: Index,
        parse: Callable[[FrozenTrial], object],
        t: FrozenTrial,
        kind: str,
        attr: str,
    ) -> object:
        # A RUNNING trial's record may be rewritten, malformed or not, so it is parsed on each
        # read unless it is the very object that failed at the last one (a crafted record
        # would otherwise cost its whole parse on every read, for as long as its trial runs: a
        # storage that hands out the stored object, as in memory, reads it in constant time;
        # one that builds it anew on each read, such as a database, has read all of it already).
        # Only the warning is given once.
        raw = t.system_attrs.get(attr)
        tag = (kind, t.number)
        if tag in ix.failed and ix.failed[tag] is raw:
            return None
        try:
            return parse(t)
        except Exception as exc:  # untrusted records: whatever they raise, they are skipped
            if not t.state.is_finished():
                ix.failed[tag] = raw
            self.warn_once((kind, t.number, t._trial_id), f"{exc}; it is ignored.")
            return None

    def _chain(self, ix: Index, key: str) -> Chain:
        chain = ix.chains.get(key)
        if chain is None:
            chain = ix.chains[key] = Chain(key)
        new = [c for c in itertools.islice(ix.log, chain.seen, None) if c.key == key]
        chain.seen = len(ix.log)
        chain.add(new, ix.bad)
        return chain

    def tip(self, ix: Index, key: str) -> Carrier | None:
        """Return the last state of the current chain of search `key` (None when none)."""
        return self._chain(ix, key).tip

    def carrier(self, ix: Index, key: str, digest: str) -> Carrier | None:
        """Return a good carrier of state `digest` of search `key` (None when none)."""
        return self._chain(ix, key).carrier(digest)

    def parent(self, ix: Index, key: str, c: Carrier) -> Carrier | None:
        """Return the carrier of the parent state of `c` on search `key`'s chain, or None.

        As the chain was last read: carriers found bad since are not taken into account, so
        that walking up a chain costs no recomputation of it. None at a first state, and
        unless the parent is one generation before `c` (as on a chain), so a walk up ends
        within `c`'s generation steps, whatever crafted summaries claim.
        """
        chain = ix.chains.get(key)
        if chain is None or c.parent is None:
            return None
        up = chain.carrier(c.parent)
        return up if up is not None and up.generation == c.generation - 1 else None

    def chain(self, ix: Index, key: str) -> list[Carrier]:
        """Return the current chain of search `key` (see :func:`longest_chain`).

        Carriers whose state failed to load (``ix.bad``) are left out. Kept up to date as
        carriers arrive (see :class:`Chain`), so that a call costs the new carriers only (and
        the length of the chain it returns).
        """
        return self._chain(ix, key).states()
