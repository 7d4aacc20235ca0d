"""Gradient steps for OpenES: SGD, momentum and Adam, each with optional L2 weight decay.

Each optimizer turns the gradient ``g`` of the objective (to be minimised) into the step added to
the mean, ``mu <- mu + step(g)``.
"""

from __future__ import annotations

import numpy as np

from ._typing import JSON, FloatArray


class Optimizer:
    """Base class: holds the learning rate and the step counter ``t``."""

    name = "base"

    def __init__(self, dim: int, learning_rate: float) -> None:
        self.dim = dim
        self.learning_rate = learning_rate
        self.t = 0

    def step(self, g: FloatArray) -> FloatArray:
        """Return the step for gradient `g` and advance the state."""
        raise NotImplementedError

    def state(self) -> JSON:
        """Return the internal state as plain data."""
        return {"t": self.t}

    def load(self, state: JSON) -> None:
        """Restore :meth:`state` output (already validated by the caller)."""
        self.t = int(state["t"])  # type: ignore[call-overload]


class SGD(Optimizer):
    """Plain gradient descent: ``step = -lr * g``."""

    name = "sgd"

    def step(self, g: FloatArray) -> FloatArray:
        self.t += 1
        return -self.learning_rate * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v <- beta v + (1 - beta) g``, ``step = -lr * v``."""

    name = "momentum"

    def __init__(self, dim: int, learning_rate: float, beta: float = 0.9) -> None:
        super().__init__(dim, learning_rate)
        self.beta = beta
        self.v = np.zeros(dim)

    def step(self, g: FloatArray) -> FloatArray:
        self.t += 1
        self.v = self.beta * self.v + (1.0 - self.beta) * g
        return -self.learning_rate * self.v

    def state(self) -> JSON:
        return {"t": self.t, "v": self.v.tolist()}

    def load(self, state: JSON) -> None:
        super().load(state)
        self.v = np.asarray(state["v"], dtype=np.float64)


class Adam(Optimizer):
    """Adam with bias correction, in the form of Kingma and Ba (2015, end of Section 2).

    ``step = -lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)``: epsilon is
    added to the uncorrected ``sqrt(v)``, as in the evolution-strategies code of Salimans et al.
    (2017); Algorithm 1 adds it after the bias correction (the two differ only through epsilon).
    """

    name = "adam"

    def __init__(
        self,
        dim: int,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(dim, learning_rate)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.m = np.zeros(dim)
        self.v = np.zeros(dim)

    def step(self, g: FloatArray) -> FloatArray:
        self.t += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * g
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * (g * g)
        a = self.learning_rate * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        out: FloatArray = -a * self.m / (np.sqrt(self.v) + self.epsilon)
        return out

    def state(self) -> JSON:
        return {"t": self.t, "m": self.m.tolist(), "v": self.v.tolist()}

    def load(self, state: JSON) -> None:
        super().load(state)
        self.m = np.asarray(state["m"], dtype=np.float64)
        self.v = np.asarray(state["v"], dtype=np.float64)


OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Momentum, Adam)}


def make_optimizer(name: object, dim: int, learning_rate: float) -> Optimizer:
    """Build an optimizer by name, or raise naming `optimizer`."""
    if not isinstance(name, str):
        raise TypeError(f"`optimizer` must be one of {sorted(OPTIMIZERS)}, but got {name!r}.")
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(
            f"`optimizer` must be one of {sorted(OPTIMIZERS)}, but got {name!r}."
        ) from None
    return cls(dim, learning_rate)
