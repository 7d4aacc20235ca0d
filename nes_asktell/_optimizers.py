"""Gradient steps for OpenES: SGD, momentum and Adam.

Each optimizer turns the gradient ``g`` of the objective (to be minimised) into the step added to
the mean, ``mu <- mu + step(g)``. :meth:`Optimizer.step` never changes the optimizer: it returns
the step and the optimizer after it, so a strategy can compute its whole update before
committing any of it.
"""

from __future__ import annotations

import copy

import numpy as np

from . import _validate as v
from ._typing import JSON, FloatArray

#: the largest step count ``t`` a state may hold (exact in float64; Adam's bias corrections
#: ``beta**t`` are 0 long before).
MAX_STEPS = 2**53


class Optimizer:
    """Base class: holds the learning rate and the step counter ``t``."""

    name = "base"

    def __init__(self, dim: int, learning_rate: float) -> None:
        self.dim = dim
        self.learning_rate = learning_rate
        self.t = 0

    def step(self, g: FloatArray) -> tuple[FloatArray, Optimizer]:
        """Return the step for gradient `g` and the optimizer after it (this one is unchanged)."""
        after = copy.copy(self)
        return after._advance(g), after

    def _advance(self, g: FloatArray) -> FloatArray:
        """Return the step for gradient `g`, advancing this optimizer's state."""
        raise NotImplementedError

    def state_dict(self) -> JSON:
        """Return the internal state as plain data."""
        return {"t": self.t}

    def from_state(self, state: object) -> Optimizer:
        """Return a copy with the state of :meth:`state_dict` output; raise on malformed input."""
        if not isinstance(state, dict):
            raise TypeError(f"`optimizer` must be a dict, but got {v.short(state)}")
        out = copy.copy(self)
        out.t = v.integer("t", state["t"], minimum=0, maximum=MAX_STEPS)
        for key in self._vectors:
            setattr(out, key, v.as_vector(key, state[key], self.dim))
        out._check_loaded()
        return out

    def _check_loaded(self) -> None:
        """Raise ValueError if loaded values are out of range (Adam's `v` must be >= 0)."""

    def is_finite(self) -> bool:
        """Return whether every vector of the state is finite (a state `from_state` accepts)."""
        return all(bool(np.all(np.isfinite(getattr(self, key)))) for key in self._vectors)

    #: the names of the vector fields of the state.
    _vectors: tuple[str, ...] = ()


class SGD(Optimizer):
    """Plain gradient descent: ``step = -lr * g``."""

    name = "sgd"

    def _advance(self, g: FloatArray) -> FloatArray:
        self.t += 1
        return -self.learning_rate * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v <- beta v + (1 - beta) g``, ``step = -lr * v``."""

    name = "momentum"
    _vectors = ("v",)

    def __init__(self, dim: int, learning_rate: float, beta: float = 0.9) -> None:
        super().__init__(dim, learning_rate)
        self.beta = beta
        self.v = np.zeros(dim)

    def _advance(self, g: FloatArray) -> FloatArray:
        self.t += 1
        self.v = self.beta * self.v + (1.0 - self.beta) * g
        return -self.learning_rate * self.v

    def state_dict(self) -> JSON:
        return {"t": self.t, "v": self.v.tolist()}


class Adam(Optimizer):
    """Adam with bias correction, in the form of Kingma and Ba (2015, end of Section 2).

    ``step = -lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)``: epsilon is
    added to the uncorrected ``sqrt(v)``, as in the evolution-strategies code of Salimans et al.
    (2017); Algorithm 1 adds it after the bias correction (the two differ only through epsilon).
    """

    name = "adam"
    _vectors = ("m", "v")

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

    def _advance(self, g: FloatArray) -> FloatArray:
        self.t += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * g
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * (g * g)
        a = self.learning_rate * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        out: FloatArray = -a * self.m / (np.sqrt(self.v) + self.epsilon)
        return out

    def state_dict(self) -> JSON:
        return {"t": self.t, "m": self.m.tolist(), "v": self.v.tolist()}

    def _check_loaded(self) -> None:
        if not np.all(self.v >= 0.0):
            raise ValueError(
                f"`v` (Adam's second moments) must be >= 0, but got {v.short(self.v.tolist())}"
            )


OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Momentum, Adam)}


def optimizer_class(name: object) -> type[Optimizer]:
    """Return the optimizer class registered as `name`, or raise naming `optimizer`."""
    if not isinstance(name, str):
        raise TypeError(
            f"`optimizer` must be one of {sorted(OPTIMIZERS)}, but got {v.short(name)}."
        )
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(
            f"`optimizer` must be one of {sorted(OPTIMIZERS)}, but got {v.short(name)}."
        ) from None


def make_optimizer(name: object, dim: int, learning_rate: float) -> Optimizer:
    """Build an optimizer by name, or raise naming `optimizer`."""
    return optimizer_class(name)(dim, learning_rate)
