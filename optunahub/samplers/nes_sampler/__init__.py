"""The nes_asktell sampler as a registry package: it re-exports :class:`NESSampler`."""

from nes_asktell import NESSampler

__all__ = ["NESSampler"]
