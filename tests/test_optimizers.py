"""The optimizers against independent re-computations of their recursions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nes_asktell._optimizers import OPTIMIZERS, Optimizer, make_optimizer

seeds = st.integers(0, 2**32 - 1)


def gradients(seed: int, d: int, T: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((T, d)) * 10.0 ** np.random.default_rng(
        seed + 1
    ).integers(-4, 4, size=(1, d))


def run_steps(opt: Optimizer, G: np.ndarray) -> list[np.ndarray]:
    """The steps for the gradients G, each from the optimizer the previous step returned."""
    steps = []
    for g in G:
        step, opt = opt.step(g)
        steps.append(step)
    return steps


@given(seed=seeds, d=st.integers(1, 5), lr=st.sampled_from([1e-3, 0.1, 3.0]))
def test_sgd(seed: int, d: int, lr: float) -> None:
    G = gradients(seed, d, 5)
    for g, step in zip(G, run_steps(make_optimizer("sgd", d, lr), G), strict=True):
        np.testing.assert_array_equal(step, -lr * g)


@given(seed=seeds, d=st.integers(1, 5), lr=st.sampled_from([1e-3, 0.1, 3.0]))
def test_momentum(seed: int, d: int, lr: float) -> None:
    G = gradients(seed, d, 8)
    v = np.zeros(d)
    for g, step in zip(G, run_steps(make_optimizer("momentum", d, lr), G), strict=True):
        v = 0.9 * v + (1.0 - 0.9) * g
        np.testing.assert_allclose(step, -lr * v, rtol=1e-14, atol=0)


@given(seed=seeds, d=st.integers(1, 5), lr=st.sampled_from([1e-3, 0.1, 3.0]))
def test_adam(seed: int, d: int, lr: float) -> None:
    # Kingma and Ba (2015): m, v moving averages; the bias-corrected step with epsilon added
    # to the uncorrected sqrt(v) (end of their Section 2).
    G = gradients(seed, d, 8)
    m, v = np.zeros(d), np.zeros(d)
    steps = run_steps(make_optimizer("adam", d, lr), G)
    for t, (g, step) in enumerate(zip(G, steps, strict=True), start=1):
        m = 0.9 * m + (1.0 - 0.9) * g
        v = 0.999 * v + (1.0 - 0.999) * g**2
        expected = -lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(step, expected, rtol=1e-13, atol=0)


def test_adam_first_step_has_length_learning_rate_per_coordinate() -> None:
    # t = 1: m/(sqrt v) = g/|g| elementwise, so the step is lr * sign(g) (epsilon aside)
    step, _ = make_optimizer("adam", 3, 0.05).step(np.array([3.0, -200.0, 0.5]))
    np.testing.assert_allclose(step, [-0.05, 0.05, -0.05], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_step_leaves_the_optimizer_unchanged(name: str) -> None:
    # A strategy computes its whole update before committing it: step() changes nothing.
    opt = make_optimizer(name, 3, 0.1)
    before = opt.state_dict()
    _, after = opt.step(np.array([1.0, -2.0, 3.0]))
    assert opt.state_dict() == before
    assert after.t == opt.t + 1


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_round_trip_continues_identically(name: str) -> None:
    G = gradients(3, 4, 10)
    a = make_optimizer(name, 4, 0.1)
    for g in G[:5]:
        _, a = a.step(g)
    b = make_optimizer(name, 4, 0.1).from_state(a.state_dict())
    for g in G[5:]:
        sa, a = a.step(g)
        sb, b = b.step(g)
        np.testing.assert_array_equal(sa, sb)
    assert a.t == b.t == 10
