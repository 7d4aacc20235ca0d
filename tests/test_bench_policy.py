"""Tests of benchmarks/policy.py: ARS's update, the normalisation, episode counting, the cache.

They check the harness on tiny budgets (a toy environment, and a few Box2D episodes when
gymnasium and Box2D are installed), never the speed or the ranking of the methods.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import policy  # noqa: E402


class ToyEnv:
    """A gymnasium-like task: 3 steps, observation from the reset seed, reward -|a - 0.5|^2."""

    def __init__(self) -> None:
        self.observation_space = SimpleNamespace(shape=(2,))
        self.action_space = SimpleNamespace(shape=(1,))
        self.resets: list[int] = []
        self.steps = 0

    def reset(self, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        self.resets.append(seed)
        self.t = 0
        self.obs = np.random.default_rng(seed).standard_normal(2).astype(np.float32)
        return self.obs, {}

    def step(self, a: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        self.steps += 1
        return self.obs, -float(np.sum((a - 0.5) ** 2)), False, self.t >= 3, {}


def test_ars_step_is_the_papers_formula_on_a_quadratic_return() -> None:
    c = np.array([1.0, -2.0, 0.5])
    x0 = np.array([0.3, 0.1, -0.2])
    n, b, alpha, nu = 5, 3, 0.02, 0.1
    ars = policy.ARS(x0, n, b, alpha, nu, seed=4)
    X = ars.ask()
    returns = [-float(np.sum((x - c) ** 2)) for x in X]
    ars.tell(returns)
    # By hand, Algorithm 2 of Mania et al. (2018): delta_k from the asked pairs M +- nu delta_k,
    # the b directions with the largest max(r+, r-), sigma_R the std of their 2b returns.
    delta = (X[0::2] - x0) / nu
    assert np.allclose(X[1::2], x0 - nu * delta)
    r_plus = np.array(returns[0::2])
    r_minus = np.array(returns[1::2])
    order = sorted(range(n), key=lambda k: -max(r_plus[k], r_minus[k]))[:b]
    sigma_r = np.std([*r_plus[order], *r_minus[order]])
    step = sum((r_plus[k] - r_minus[k]) * delta[k] for k in order)
    assert np.allclose(ars.mean, x0 + alpha / (b * sigma_r) * step, rtol=1e-12, atol=0)
    # and on this quadratic the difference r+ - r- is exact: -4 nu (x0 - c) . delta
    assert np.allclose(r_plus - r_minus, -4 * nu * (delta @ (x0 - c)))
    with pytest.raises(RuntimeError, match="before `ask`"):
        ars.tell(returns)


def test_running_stat_matches_the_pooled_mean_and_std() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (k, 4)) for k in (1, 7, 30)]
    stat = policy.RunningStat(4)
    for batch in batches:
        stat.update(batch)
    pooled = np.concatenate(batches)
    assert stat.n == 38
    assert np.allclose(stat.mean, pooled.mean(axis=0))
    assert np.allclose(stat.std, pooled.std(axis=0))


def test_policy_shapes_and_clipping() -> None:
    lin = policy.Policy("linear", 8, 2)
    mlp = policy.Policy("mlp", 8, 2, hidden=16)
    assert lin.dim == 16
    assert mlp.dim == 16 * 8 + 16 + 2 * 16 + 2
    assert np.all(lin.x0(0) == 0)
    assert np.array_equal(mlp.x0(3), mlp.x0(3))
    a = lin.act(np.full(16, 10.0), np.ones(8))
    assert np.array_equal(a, [1.0, 1.0])
    with pytest.raises(ValueError, match="`policy` must be"):
        policy.Policy("rnn", 8, 2)


def _toy_config(**kw: Any) -> policy.Config:
    base = {
        "task": "lunar",
        "policy": "linear",
        "threshold": 1e9,  # never reached
        "budget": 30,
        "test_every": 8,
        "test_episodes": 2,
        "ars": (3, 2, 0.02, 0.03),
        "validation_episodes": 4,
    }
    base.update(kw)
    return policy.Config(**base)  # type: ignore[arg-type]


def test_episode_counting_on_a_toy_task() -> None:
    env = ToyEnv()
    cfg = _toy_config()
    rec = policy.run("ARS", 0, cfg, env=env)
    # ARS with N = 3 runs 6 episodes per iteration: 5 iterations fit in 30, the 6th does not
    # start. Tests after iterations 2 (12 >= 8), 3 (18 >= 16), 4 (24), 5 (30 >= 24 + 8? no:
    # the next test is due at 32), so 3 tests of 2 episodes each.
    assert rec["spent"] == 30
    assert rec["episodes"] is None
    assert [e for e, _ in rec["trace"]] == [12, 18, 24]
    assert rec["tests"] == 6
    assert len(env.resets) == 30 + 6 + 4  # training, test, validation of the final policy
    assert env.resets.count(policy.TEST_SEED0) == 3  # the same test episodes each time
    assert env.resets[-4:] == [policy.VALIDATION_SEED0 + k for k in range(4)]
    assert rec["steps"] == 3 * 30  # training steps only


def test_threshold_reached_reports_the_training_episodes_at_that_test() -> None:
    unreached = policy.run("ARS", 0, _toy_config(budget=100), env=ToyEnv())
    trace = unreached["trace"]
    assert len(trace) >= 3
    threshold = sorted(v for _, v in trace)[-2]  # reached at some test, not at the first
    first = next(e for e, v in trace if v >= threshold)
    rec = policy.run("ARS", 0, _toy_config(threshold=threshold, budget=100), env=ToyEnv())
    # the same run up to the first test at or above the threshold, where it stops
    assert rec["episodes"] == first == rec["spent"]
    assert rec["trace"] == [t for t in trace if t[0] <= first]


@pytest.mark.parametrize("method", ["ARS", "XNES", "pycma"])
def test_a_run_is_deterministic_given_its_seed(method: str) -> None:
    if method == "pycma":
        pytest.importorskip("cma")
    cfg = _toy_config(budget=40)
    a = policy.run(method, 0, cfg, env=ToyEnv())  # seed 0 too (pycma reads 0 as the clock)
    b = policy.run(method, 0, cfg, env=ToyEnv())
    c = policy.run(method, 4, cfg, env=ToyEnv())
    for rec in (a, b, c):
        del rec["seconds"]
    assert a == b
    assert a["trace"] != c["trace"]


def test_runs_are_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run(method: str, seed: int, cfg: policy.Config, env: Any = None) -> dict[str, Any]:
        calls.append((method, seed))
        return {"method": method, "seed": seed, "episodes": 7, "spent": 7, "tests": 0}

    monkeypatch.setattr(policy, "run", fake_run)
    cfg = _toy_config()
    first = policy.run_cached(tmp_path, "ARS", 1, cfg)
    second = policy.run_cached(tmp_path, "ARS", 1, cfg)
    assert calls == [("ARS", 1)]
    assert first == second
    (path,) = tmp_path.iterdir()
    assert json.loads(path.read_text())["version"] == policy.method_version("ARS")
    policy.run_cached(tmp_path, "ARS", 1, _toy_config(budget=31))  # another setting: a new run
    assert len(calls) == 2


def test_a_cached_record_cut_short_is_a_run_not_cached(tmp_path: Path) -> None:
    cfg = _toy_config()
    path = tmp_path / policy.cache_key("ARS", 1, cfg)
    path.write_text('{"method": "ARS", "seed": 1, "epis')  # a run killed while writing it
    assert policy.run_cached(tmp_path, "ARS", 1, cfg, cached_only=True) is None


def test_median_counts_budget_exceeded_runs_as_infinite() -> None:
    recs = [{"episodes": e} for e in (100, None, 300, None, None)]
    assert policy.median_episodes(recs) == float("inf")
    assert policy.fmt_median(policy.median_episodes(recs), 3000) == ">3,000"
    assert policy.median_episodes(recs[:3]) == 300


def test_missing_gymnasium_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # import gymnasium raises ImportError
    with pytest.raises(SystemExit, match="box2d"):
        policy.make_env(policy.TASKS["lunar"])


def test_lunar_lander_runs_are_deterministic_and_counted() -> None:
    pytest.importorskip("gymnasium")
    pytest.importorskip("Box2D")
    pytest.importorskip("pygame")  # gymnasium's Box2D module imports it
    cfg = _toy_config(budget=12, test_every=6, test_episodes=1)
    a = policy.run("ARS", 0, cfg)
    b = policy.run("ARS", 0, cfg)
    for rec in (a, b):
        del rec["seconds"]
    assert a == b
    assert a["spent"] == 12
    assert a["tests"] == 2
    assert a["steps"] > 12  # every episode lasts more than one step


@pytest.mark.parametrize(
    ("option", "value", "least"),
    [
        ("--budget", "0", 1),
        ("--test-every", "0", 1),
        ("--test-episodes", "-2", 1),
        ("--hidden", "0", 1),
        ("--validation-episodes", "-3", 0),
        ("--seeds", "0", 1),
    ],
)
def test_a_count_below_its_least_is_refused_not_taken_for_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, least: int
) -> None:
    # --budget 0 ran the task's default budget of 3,000 episodes, --hidden 0 an MLP without
    # hidden units, --validation-episodes -3 a validation of nan
    with pytest.raises(SystemExit) as exc:
        policy.main(argv=[option, value, "--cached-only", "--cache", str(tmp_path)])
    assert exc.value.code == 2
    assert f"argument {option}: must be at least {least}, but got {value}" in (
        capsys.readouterr().err
    )
