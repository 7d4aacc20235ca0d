"""Policy search on gymnasium's Box2D tasks: training episodes to a return threshold.

The library's strategies (through their ask/tell API) against pycma and against Augmented
Random Search (ARS V2-t, Mania, Guy and Recht 2018, Algorithm 2, implemented below from the
paper), on ``LunarLanderContinuous`` (gymnasium 1.x: ``LunarLander-v3`` with
``continuous=True``) and ``BipedalWalker-v3``, with a linear policy or a small MLP::

    python -m benchmarks.policy --task lunar --policy linear --seeds 5
    python -m benchmarks.policy --task lunar --policy mlp --methods XNES pycma ARS --seeds 5
    python -m benchmarks.policy --task bipedal --policy linear --threshold 100 --budget 6000
    python -m benchmarks policy --quick     # a smoke run: 48 episodes, one seed

Needs gymnasium 1.x with Box2D: ``pip install 'nes_asktell[bench]'`` (or ``pip install
'gymnasium>=1.0' 'box2d>=2.3.10' pygame``; gymnasium's Box2D module imports pygame).

Protocol
--------
* **Policy**: the observation is normalised as in ARS V2, ``(o - mu) / std`` with the running
  mean and standard deviation of every state seen in *training* episodes so far (frozen during a
  generation, updated at its end; a coordinate whose std is still below 1e-6 enters as 0);
  ``linear``: ``a = clip(M z, -1, 1)`` (no bias, as in the paper); ``mlp``: one hidden layer
  of ``--hidden`` tanh units, ``a = clip(W2 tanh(W1 z + b1) + b2, -1, 1)``. Every method uses
  the same policy and the same normalisation, so they differ only in how they search.
* **Start**: the linear policy starts at 0, the MLP at weights drawn N(0, 1/fan_in) (biases
  0) from a generator seeded with the run's seed, the same start for every method.
* **Counting**: every episode a method runs to learn (each candidate's episode, every
  re-evaluation) is a training episode; each draws its own environment seed from a generator
  seeded with (seed, the task's id), so a run is deterministic given its seed.
* **Threshold test**: at the first generation boundary after every ``--test-every`` training
  episodes, the current policy (the search distribution's mean; ARS's M) is run on
  ``--test-episodes`` fixed test episodes (environment seeds 10^6 + k, the same for every
  method and run; the normalisation is frozen and not updated by them). The run has reached
  the threshold when their mean return is at least ``--threshold``; its figure is the number
  of training episodes spent by then. Test episodes are *not* counted as training episodes
  (they are reported apart). A run that has not reached it within ``--budget`` training
  episodes counts as budget-exceeded (as +inf in the median, shown as ``>budget``).
* **Validation**: at the end of a run (threshold reached or budget spent) the final policy is
  run on ``--validation-episodes`` further episodes (seeds 2 x 10^6 + k), counted in neither
  figure: the threshold test passes on a few episodes and is read repeatedly, so it flatters;
  the validation mean says what was learnt.
* **Methods**: a name of the library's registry (``XNES``, ``SNES``, ``CRFMNES``, ...) runs in
  the library's ``IPOP`` (restarts only if the strategy stops by itself before the budget),
  ``x0`` as above, ``sigma0 = --sigma0``, popsize ``--popsize`` or the default; ``pycma`` is
  ``cma.CMAEvolutionStrategy`` with its defaults (``seed`` + 1, since pycma reads 0 as "seed
  from the clock"; ``verbose=-9``, the same
  ``sigma0`` and popsize), restarted from ``x0`` with a doubled population if it stops by
  itself; ``ARS`` is :class:`ARS` with ``--ars N,b,alpha,nu`` (default: the task's, in
  :data:`TASKS`).

Each run is cached as a JSON file under ``--cache`` (reused when its settings and the version
of its method match: a hash of ``nes_asktell/`` for the library, pycma's version, the ARS
protocol version), so the benchmark can be built up in parts. ``--out`` writes the table (rst)
and every run (CSV).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ._common import read_record, simple_table, write_csv, write_record, write_text

ROOT = Path(__file__).resolve().parent.parent
#: bump when the protocol or the ARS implementation changes: cached runs are then rerun
PROTOCOL = 2
#: environment seeds of the test episodes: 10^6 + k
TEST_SEED0 = 1_000_000
#: environment seeds of the validation episodes: 2 x 10^6 + k
VALIDATION_SEED0 = 2_000_000
INSTALL_HINT = (
    "the policy benchmark needs gymnasium 1.x with Box2D: pip install 'nes_asktell[bench]' "
    "(or pip install 'gymnasium>=1.0' 'box2d>=2.3.10' pygame)"
)


@dataclass(frozen=True)
class Task:
    """A gymnasium task: its id, options, default threshold, budget and test schedule."""

    env_id: str
    kwargs: tuple[tuple[str, Any], ...]
    threshold: float
    budget: int
    test_every: int
    test_episodes: int
    ars: tuple[float, float, float, float]


#: ARS's (N, b, alpha, nu) on LunarLander: the best of a grid of 21 settings around the
#: paper's MuJoCo values, on seeds 100 and 101 (not the benchmark's seeds), budget 1,500
TASKS = {
    "lunar": Task(
        "LunarLander-v3", (("continuous", True),), 200.0, 3000, 100, 10, (8, 4, 0.1, 0.5)
    ),
    # a lower threshold than "solved" (300): the budget of 1,000 episodes fits the time at hand
    "bipedal": Task("BipedalWalker-v3", (), 0.0, 1000, 100, 5, (8, 4, 0.1, 0.5)),
}


def make_env(task: Task) -> Any:
    """Return the gymnasium environment of `task`, or raise SystemExit saying what to install."""
    try:
        import gymnasium

        return gymnasium.make(task.env_id, disable_env_checker=True, **dict(task.kwargs))
    except ImportError as exc:
        raise SystemExit(f"{INSTALL_HINT} ({exc})") from exc
    except Exception as exc:  # gymnasium.error.DependencyNotInstalled, without importing it
        if type(exc).__name__ == "DependencyNotInstalled":
            raise SystemExit(f"{INSTALL_HINT} ({exc})") from exc
        raise


# ------------------------------------------------------------------------------ policies
class RunningStat:
    """Running mean and variance of vectors, merged batch by batch (Chan et al. 1979)."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=float).reshape(-1, self.mean.size)
        k = batch.shape[0]
        if k == 0:
            return
        bmean = batch.mean(axis=0)
        bm2 = ((batch - bmean) ** 2).sum(axis=0)
        n = self.n + k
        delta = bmean - self.mean
        self.mean = self.mean + delta * k / n
        self.m2 = self.m2 + bm2 + delta**2 * self.n * k / n
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


class Policy:
    """A linear policy or a one-hidden-layer tanh MLP on normalised observations."""

    def __init__(self, kind: str, obs_dim: int, act_dim: int, hidden: int = 16) -> None:
        if kind not in ("linear", "mlp"):
            raise ValueError(f"`policy` must be 'linear' or 'mlp', but got {kind!r}.")
        self.kind, self.obs_dim, self.act_dim, self.hidden = kind, obs_dim, act_dim, hidden
        if kind == "linear":
            self.dim = act_dim * obs_dim
        else:
            self.dim = hidden * obs_dim + hidden + act_dim * hidden + act_dim

    def x0(self, seed: int) -> np.ndarray:
        """The start: zeros (linear), or N(0, 1/fan_in) weights and zero biases (MLP)."""
        if self.kind == "linear":
            return np.zeros(self.dim)
        rng = np.random.default_rng([seed, 77])
        o, h, a = self.obs_dim, self.hidden, self.act_dim
        w1 = rng.standard_normal(h * o) / math.sqrt(o)
        w2 = rng.standard_normal(a * h) / math.sqrt(h)
        return np.concatenate([w1, np.zeros(h), w2, np.zeros(a)])

    def act(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Return the action for the normalised observation `z`."""
        o, h, a = self.obs_dim, self.hidden, self.act_dim
        if self.kind == "linear":
            out = theta.reshape(a, o) @ z
        else:
            i = h * o
            hid = np.tanh(theta[:i].reshape(h, o) @ z + theta[i : i + h])
            j = i + h + a * h
            out = theta[i + h : j].reshape(a, h) @ hid + theta[j:]
        return np.clip(out, -1.0, 1.0)


class Episodes:
    """Runs and counts episodes of one task for one run (training and test episodes apart).

    The observation normalisation (ARS V2's running mean and std of the states of training
    episodes) is frozen between calls of :meth:`end_generation`, which folds the states of
    the generation's training episodes in.
    """

    def __init__(
        self, task: Task, policy_kind: str, seed: int, hidden: int = 16, env: Any = None
    ) -> None:
        self.env = make_env(task) if env is None else env
        obs_dim = int(np.prod(self.env.observation_space.shape))
        act_dim = int(np.prod(self.env.action_space.shape))
        self.policy = Policy(policy_kind, obs_dim, act_dim, hidden)
        self.stat = RunningStat(obs_dim)
        self.mu = np.zeros(obs_dim)
        self.inv_std = np.ones(obs_dim)
        self._pending: list[np.ndarray] = []
        self._seeds = np.random.default_rng([seed, *task.env_id.encode()])
        self.count = 0  # training episodes
        self.tests = 0  # test episodes
        self.steps = 0  # environment steps of training episodes

    def _episode(self, theta: np.ndarray, env_seed: int, keep: list[np.ndarray] | None) -> float:
        obs, _ = self.env.reset(seed=env_seed)
        total, done = 0.0, False
        while not done:
            o = np.asarray(obs, dtype=float)
            if keep is not None:
                keep.append(o)
            a = self.policy.act(theta, (o - self.mu) * self.inv_std)
            obs, r, terminated, truncated, _ = self.env.step(a.astype(np.float32))
            total += float(r)
            done = terminated or truncated
        return total

    def train(self, theta: np.ndarray) -> float:
        """Run one training episode of `theta` (counted; its states feed the normalisation)."""
        env_seed = int(self._seeds.integers(2**31 - 1))
        states: list[np.ndarray] = []
        ret = self._episode(np.asarray(theta, dtype=float), env_seed, states)
        self.count += 1
        self.steps += len(states)
        self._pending.extend(states)
        return ret

    def end_generation(self) -> None:
        """Fold the states seen since the last call into the normalisation, and freeze it."""
        if self._pending:
            self.stat.update(np.array(self._pending))
            self._pending = []
        std = self.stat.std
        self.mu = self.stat.mean.copy()
        self.inv_std = np.where(std >= 1e-6, 1.0 / np.maximum(std, 1e-6), 0.0)

    def test(self, theta: np.ndarray, k: int) -> float:
        """Mean return of `theta` over the `k` fixed test episodes (not training episodes)."""
        rets = [self._episode(np.asarray(theta, float), TEST_SEED0 + i, None) for i in range(k)]
        self.tests += k
        return float(np.mean(rets))

    def validate(self, theta: np.ndarray, k: int) -> float:
        """Mean return of `theta` over `k` validation episodes (neither test nor training)."""
        seeds = range(VALIDATION_SEED0, VALIDATION_SEED0 + k)
        return float(np.mean([self._episode(np.asarray(theta, float), s, None) for s in seeds]))


# ------------------------------------------------------------------------------ ARS
class ARS:
    r"""Augmented Random Search, V2-t (Mania, Guy and Recht 2018, Algorithm 2).

    Each iteration draws `N` directions :math:`\delta_k \sim N(0, I)` and asks for the
    policies :math:`M \pm \nu \delta_k` (``ask`` returns the 2N rows ``M + nu d_1, M - nu
    d_1, ...``); ``tell`` takes their returns (higher is better), keeps the `b` directions
    with the largest :math:`\max(r(+\delta_k), r(-\delta_k))` and steps

    .. math:: M \leftarrow M + \frac{\alpha}{b\,\sigma_R} \sum_{k \le b}
              \big(r(+\delta_{(k)}) - r(-\delta_{(k)})\big)\, \delta_{(k)}

    where :math:`\sigma_R` is the standard deviation of the 2b returns used (eq. of
    Algorithm 2, line 7). The state normalisation of V2 is the caller's
    (:class:`Episodes`), shared with the other methods.
    """

    def __init__(self, x0: np.ndarray, n: int, b: int, alpha: float, nu: float, seed: int) -> None:
        if not 1 <= b <= n:
            raise ValueError(f"`b` must be in [1, N], but got b = {b}, N = {n}.")
        self.mean = np.asarray(x0, dtype=float).copy()
        self.n, self.b, self.alpha, self.nu = n, b, alpha, nu
        self.rng = np.random.default_rng(seed)
        self._delta: np.ndarray | None = None

    @property
    def popsize(self) -> int:
        return 2 * self.n

    def ask(self) -> np.ndarray:
        delta = self.rng.standard_normal((self.n, self.mean.size))
        self._delta = delta
        X = np.empty((2 * self.n, self.mean.size))
        X[0::2] = self.mean + self.nu * delta
        X[1::2] = self.mean - self.nu * delta
        return X

    def tell(self, returns: Sequence[float]) -> None:
        if self._delta is None:
            raise RuntimeError("`tell` called before `ask`.")
        r = np.asarray(returns, dtype=float).reshape(self.n, 2)
        r_plus, r_minus = r[:, 0], r[:, 1]
        top = np.argsort(-np.maximum(r_plus, r_minus), kind="stable")[: self.b]
        used = np.concatenate([r_plus[top], r_minus[top]])
        sigma_r = float(used.std())
        step = (r_plus[top] - r_minus[top]) @ self._delta[top]
        if sigma_r > 0:
            self.mean = self.mean + self.alpha / (self.b * sigma_r) * step
        self._delta = None

    def stop(self) -> bool:
        return False


# ------------------------------------------------------------------------------ methods
class Searcher(Protocol):
    def ask(self) -> np.ndarray: ...

    def tell(self, returns: Sequence[float]) -> None: ...

    def policy(self) -> np.ndarray: ...


class _NESSearcher:
    """A library strategy in the library's IPOP, told minus the returns."""

    def __init__(
        self, name: str, x0: np.ndarray, sigma0: float, popsize: int | None, seed: int, budget: int
    ) -> None:
        from nes_asktell import IPOP

        self.opt = IPOP(name, x0, sigma0, popsize, maxfev=budget, rng=seed)
        self._X: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        self._X = self.opt.ask()
        return self._X

    def tell(self, returns: Sequence[float]) -> None:
        self.opt.tell(self._X, [-r for r in returns])

    def policy(self) -> np.ndarray:
        return np.asarray(self.opt.mean, dtype=float)


class _PycmaSearcher:
    """pycma with its defaults, restarted from x0 with a doubled population if it stops."""

    def __init__(
        self, x0: np.ndarray, sigma0: float, popsize: int | None, seed: int, budget: int
    ) -> None:
        import cma

        self._cma = cma
        self.x0, self.sigma0, self.seed, self.budget = x0, sigma0, seed, budget
        self.popsize = popsize or 4 + math.floor(3 * math.log(x0.size))
        self.k = 0
        self.es = self._start()
        self._mean = x0.copy()
        self._X: list[np.ndarray] = []

    def _start(self) -> Any:
        # pycma takes seed 0 for "seed from the clock": seed + 1 keeps seed 0 reproducible
        seed = self.seed + 1 + 1000 * self.k
        opts = {"seed": seed, "verbose": -9, "popsize": self.popsize}
        return self._cma.CMAEvolutionStrategy(self.x0, self.sigma0, opts)

    def ask(self) -> np.ndarray:
        if self.es.stop():
            self.k += 1
            self.popsize *= 2
            self.es = self._start()
        self._X = self.es.ask()
        return np.array(self._X)

    def tell(self, returns: Sequence[float]) -> None:
        self.es.tell(self._X, [-r for r in returns])
        self._mean = np.array(self.es.mean, dtype=float)

    def policy(self) -> np.ndarray:
        return self._mean


class _ARSSearcher:
    def __init__(self, x0: np.ndarray, params: Sequence[float], seed: int) -> None:
        n, b, alpha, nu = params
        self.ars = ARS(x0, int(n), int(b), float(alpha), float(nu), seed)

    def ask(self) -> np.ndarray:
        return self.ars.ask()

    def tell(self, returns: Sequence[float]) -> None:
        self.ars.tell(returns)

    def policy(self) -> np.ndarray:
        return self.ars.mean


@dataclass(frozen=True)
class Config:
    """Everything a run depends on besides the method and the seed (part of the cache key)."""

    task: str
    policy: str
    threshold: float
    budget: int
    test_every: int
    test_episodes: int
    sigma0: float = 0.5
    popsize: int | None = None
    hidden: int = 16
    ars: tuple[float, float, float, float] = (8, 4, 0.02, 0.03)
    validation_episodes: int = 100


def make_searcher(method: str, x0: np.ndarray, seed: int, cfg: Config) -> Searcher:
    if method == "ARS":
        return _ARSSearcher(x0, cfg.ars, seed)
    if method == "pycma":
        return _PycmaSearcher(x0, cfg.sigma0, cfg.popsize, seed, cfg.budget)
    return _NESSearcher(method, x0, cfg.sigma0, cfg.popsize, seed, cfg.budget)


def run(method: str, seed: int, cfg: Config, env: Any = None) -> dict[str, Any]:
    """Train with `method` until the threshold test passes or the budget is spent.

    Return the record: ``episodes`` (training episodes when the test passed, or None),
    ``spent`` (training episodes run), ``tests`` (test episodes), ``trace`` (training
    episodes, test return) of every test, ``steps`` and ``seconds``.
    """
    task = TASKS[cfg.task]
    eps = Episodes(task, cfg.policy, seed, cfg.hidden, env)
    x0 = eps.policy.x0(seed)
    t0 = time.perf_counter()
    searcher = make_searcher(method, x0, seed, cfg)
    eps.end_generation()
    trace: list[tuple[int, float]] = []
    reached: int | None = None
    next_test = cfg.test_every
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while eps.count < cfg.budget:
            X = searcher.ask()
            if eps.count + len(X) > cfg.budget:
                break  # the budget does not allow this generation
            searcher.tell([eps.train(x) for x in X])
            eps.end_generation()
            if eps.count >= next_test:
                value = eps.test(searcher.policy(), cfg.test_episodes)
                trace.append((eps.count, value))
                while next_test <= eps.count:
                    next_test += cfg.test_every
                if value >= cfg.threshold:
                    reached = eps.count
                    break
    theta = searcher.policy()
    return {
        "method": method,
        "seed": seed,
        "episodes": reached,
        "validation": eps.validate(theta, cfg.validation_episodes)
        if cfg.validation_episodes
        else None,
        "spent": eps.count,
        "tests": eps.tests,
        "steps": eps.steps,
        "seconds": time.perf_counter() - t0,
        "trace": trace,
        "final_test": trace[-1][1] if trace else None,
        "policy": theta.tolist(),
        "obs_mean": eps.mu.tolist(),
        "obs_inv_std": eps.inv_std.tolist(),
    }


# ------------------------------------------------------------------------------ cache
_VERSIONS: dict[str, str] = {}


def method_version(method: str) -> str:
    """What a cached run of `method` must have been made with to be reused."""
    key = "cma" if method == "pycma" else "ars" if method == "ARS" else "nes"
    if key not in _VERSIONS:
        if key == "cma":
            import cma

            _VERSIONS[key] = f"cma {cma.__version__}, seeded with seed + 1"
        elif key == "ars":
            _VERSIONS[key] = f"ars protocol {PROTOCOL}"
        else:
            digest = hashlib.sha256()
            for path in sorted((ROOT / "nes_asktell").rglob("*.py")):
                digest.update(path.relative_to(ROOT).as_posix().encode())
                digest.update(path.read_bytes())
            _VERSIONS[key] = f"nes_asktell sources {digest.hexdigest()[:12]}"
    try:
        import gymnasium

        gym = gymnasium.__version__
    except ImportError:
        gym = "none"
    return f"{_VERSIONS[key]}; gymnasium {gym}; protocol {PROTOCOL}"


def cache_key(method: str, seed: int, cfg: Config) -> str:
    text = json.dumps([method, seed, cfg.__dict__], default=list, sort_keys=True)
    short = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cfg.task}_{cfg.policy}_{method}_s{seed}_b{cfg.budget}_{short}.json"


def run_cached(
    cache: Path, method: str, seed: int, cfg: Config, cached_only: bool = False
) -> dict[str, Any] | None:
    """Return the record of one run, from `cache` or by running it (then stored).

    With `cached_only`, a run that is not in the cache is not run: None.
    """
    path = cache / cache_key(method, seed, cfg)
    version = method_version(method)
    if path.exists():
        rec = read_record(path)
        if rec.get("version") == version:
            return rec
    if cached_only:
        return None
    rec = run(method, seed, cfg)
    rec["version"] = version
    rec["config"] = json.loads(json.dumps(cfg.__dict__))
    write_record(path, rec)
    return rec


# ------------------------------------------------------------------------------ tables
def median_episodes(records: Sequence[dict[str, Any]]) -> float:
    """Median training episodes to the threshold, a budget-exceeded run counting as +inf."""
    vals = [math.inf if r["episodes"] is None else float(r["episodes"]) for r in records]
    return float(np.median(vals)) if vals else math.nan


def fmt_median(value: float, budget: int) -> str:
    if math.isnan(value):
        return ""
    return f">{budget:,}" if math.isinf(value) else f"{value:,.0f}"


def table(records: Sequence[dict[str, Any]], methods: Sequence[str], cfg: Config) -> str:
    seeds = sorted({int(r["seed"]) for r in records})
    headers = ["method", "median", "reached", *(f"seed {s}" for s in seeds), "test eps"]
    headers.append(f"final ({cfg.validation_episodes} eps)")
    rows = []
    for m in methods:
        rs = sorted((r for r in records if r["method"] == m), key=lambda r: r["seed"])
        if not rs:
            continue
        cells = [
            f">{cfg.budget:,} ({r['final_test']:.0f})"
            if r["episodes"] is None and r["final_test"] is not None
            else fmt_median(math.inf, cfg.budget)
            if r["episodes"] is None
            else f"{r['episodes']:,}"
            for r in rs
        ]
        reached = sum(r["episodes"] is not None for r in rs)
        tests = int(np.median([r["tests"] for r in rs]))
        vals = [r["validation"] for r in rs if r.get("validation") is not None]
        final = f"{np.median(vals):.0f}" if vals else ""
        rows.append(
            [
                m,
                fmt_median(median_episodes(rs), cfg.budget),
                f"{reached}/{len(rs)}",
                *cells,
                str(tests),
                final,
            ]
        )
    return simple_table(headers, rows)


def _count(least: int) -> Callable[[str], int]:
    """Return an argparse type: an int of at least `least` (0 was taken for the default)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, but got {value}")
        return value

    return parse


def _floats4(text: str) -> tuple[float, float, float, float]:
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("--ars takes N,b,alpha,nu, e.g. 8,4,0.02,0.03")
    return (parts[0], parts[1], parts[2], parts[3])


def main(
    quick: bool = False,
    argv: Sequence[str] | None = None,
    prog: str = "python -m benchmarks.policy",
) -> None:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", choices=sorted(TASKS), default="lunar")
    p.add_argument("--policy", choices=("linear", "mlp"), default="linear")
    p.add_argument("--methods", nargs="+", default=["XNES", "pycma", "ARS"])
    p.add_argument("--seeds", type=_count(1), default=5, help="seeds 0 .. SEEDS-1")
    p.add_argument("--seed-list", type=_count(0), nargs="+", help="these seeds instead")
    p.add_argument("--threshold", type=float, help="test return to reach (task default)")
    p.add_argument("--budget", type=_count(1), help="training episodes per run (task default)")
    p.add_argument("--test-every", type=_count(1), help="training episodes between tests")
    p.add_argument("--test-episodes", type=_count(1), help="episodes per test")
    p.add_argument("--sigma0", type=float, default=0.5)
    p.add_argument("--popsize", type=int, help="population of NES and pycma (default theirs)")
    p.add_argument("--hidden", type=_count(1), default=16)
    p.add_argument(
        "--validation-episodes",
        type=_count(0),
        default=100,
        help="episodes of the final policy's validation (0: none)",
    )
    p.add_argument("--ars", type=_floats4, help="N,b,alpha,nu (default: the task's)")
    p.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "nes_asktell_bench" / "policy"
    )
    p.add_argument(
        "--cached-only", action="store_true", help="run nothing: report the cached runs only"
    )
    p.add_argument("--out", type=Path, help="write the table and the runs here")
    p.add_argument("--name", help="file name stem under --out (default policy_TASK_POLICY)")
    args = p.parse_args([] if argv is None and quick else argv)
    task = TASKS[args.task]
    if quick:
        args.seeds, args.seed_list = 1, None
        args.budget, args.test_every, args.test_episodes = 48, 16, 2
        args.ars, args.validation_episodes = (4, 2, 0.02, 0.03), 2
        args.cache = Path(tempfile.mkdtemp(prefix="nes_policy_quick_"))
    cfg = Config(
        task=args.task,
        policy=args.policy,
        threshold=task.threshold if args.threshold is None else args.threshold,
        budget=args.budget or task.budget,
        test_every=args.test_every or task.test_every,
        test_episodes=args.test_episodes or task.test_episodes,
        sigma0=args.sigma0,
        popsize=args.popsize,
        hidden=args.hidden,
        validation_episodes=args.validation_episodes,
        ars=tuple(float(v) for v in args.ars or task.ars),  # type: ignore[arg-type]
    )
    make_env(task).close()  # says what to install before anything runs
    seeds = args.seed_list or list(range(args.seeds))
    records = []
    for s in seeds:
        for m in args.methods:
            rec = run_cached(args.cache, m, s, cfg, args.cached_only)
            if rec is None:
                continue
            status = "reached" if rec["episodes"] is not None else "budget exceeded"
            print(
                f"  {m:>8} seed {s}: {status} at {rec['spent']} episodes "
                f"(last test {rec['final_test']}), {rec['seconds']:.0f} s",
                flush=True,
            )
            records.append(rec)
    dim = Episodes(task, cfg.policy, 0, cfg.hidden).policy.dim
    head = (
        f"{task.env_id}{' ' + str(dict(task.kwargs)) if task.kwargs else ''}, "
        f"{cfg.policy} policy ({dim} parameters), "
        f"threshold {cfg.threshold:g} (mean of {cfg.test_episodes} test episodes every "
        f"{cfg.test_every} training episodes), budget {cfg.budget:,} training episodes, "
        f"sigma0 {cfg.sigma0:g}, ARS (N, b, alpha, nu) = {cfg.ars}"
    )
    text = table(records, args.methods, cfg)
    print(head)
    print(text, flush=True)
    if args.out is not None:
        stem = args.name or f"policy_{cfg.task}_{cfg.policy}"
        write_text(args.out / f"{stem}.rst", text)
        keys = ["method", "seed", "episodes", "spent", "tests", "steps", "seconds", "final_test"]
        keys.append("validation")
        write_csv(
            args.out / f"{stem}_runs.csv",
            [*keys, "version"],
            ([*(r[k] for k in keys), r["version"]] for r in records),
        )


if __name__ == "__main__":
    main()
