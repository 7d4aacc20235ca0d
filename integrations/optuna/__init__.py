"""The Optuna sampler :class:`NESSampler` (installed as ``nes_asktell.integrations.optuna``)."""

from ._sampler import NESSampler

__all__ = ["NESSampler"]
