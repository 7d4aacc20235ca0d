"""Cumulative step-size adaptation: the evolution path that SNES and XNES add to sigma.

The NES gradient for sigma is a local, one-generation signal; with the paper's small learning
rates it shrinks sigma slowly on easy problems, and with larger rates it makes XNES diverge on
ill-conditioned ones (see the SNES/XNES documentation for the measurements). The evolution path
of Hansen and Ostermeier (2001) adds the missing signal: it accumulates the normalised mean steps
and lengthens sigma when successive steps agree, shortens it when they cancel out.
"""

from __future__ import annotations

import math

import numpy as np

from ._shaping import positive_mueff
from ._typing import FloatArray


class StepSizePath:
    r"""The constants of the evolution path :math:`p` and the log step-size change it implies.

    The path itself is part of the strategy's state; :meth:`step` returns the new one.

    With :math:`\mu_{\mathrm{eff}} = 1 / \sum_k w_k^2` for the positive part :math:`w_k` of the
    NES utilities, :math:`c = (\mu_{\mathrm{eff}} + 2) / (d + \mu_{\mathrm{eff}} + 5)` and
    :math:`d_\sigma = 1 + 2 \max(0, \sqrt{(\mu_{\mathrm{eff}} - 1) / (d + 1)} - 1) + c`
    (Hansen 2016, Table 1), each generation

    .. math::

        p \leftarrow (1 - c)\, p + \sqrt{c (2 - c)}\, \frac{G_\delta}{\lVert a \rVert}, \qquad
        \Delta \ln\sigma = \min\Big(1, \frac{c}{d_\sigma}
            \Big(\frac{\lVert p \rVert}{E\lVert N(0, I) \rVert} - 1\Big)\Big)

    where :math:`G_\delta = \sum_k a_k s_k` is the mean step in local coordinates and
    :math:`\lVert a \rVert` normalises it to :math:`N(0, I)` under random selection.
    """

    def __init__(self, dim: int, popsize: int) -> None:
        mueff = positive_mueff(popsize)
        self.c = (mueff + 2.0) / (dim + mueff + 5.0)
        self.damping = 1.0 + 2.0 * max(0.0, math.sqrt((mueff - 1.0) / (dim + 1.0)) - 1.0) + self.c
        self.chi = math.sqrt(dim) * (1.0 - 1.0 / (4.0 * dim) + 1.0 / (21.0 * dim * dim))

    def step(self, p: FloatArray, G_delta: FloatArray, norm: float) -> tuple[FloatArray, float]:
        """Return the path after a mean step and the change of ``ln(sigma)`` it implies.

        `p` is the current path (not changed), `G_delta` is ``sum_k a_k s_k`` in local
        coordinates and `norm` is ``|a|``.
        """
        c = self.c
        if norm > 0.0:
            p = (1.0 - c) * p + (math.sqrt(c * (2.0 - c)) / norm) * G_delta
        else:
            p = (1.0 - c) * p
        return p, min(1.0, c / self.damping * (float(np.linalg.norm(p)) / self.chi - 1.0))


def odd_weights(u: FloatArray, mirrored: bool) -> FloatArray:
    """Weights a with ``sum_k u_k z_k = sum_j a_j Zh_j`` (mirrored: ``a = u[:m] - u[m:]``)."""
    if mirrored:
        m = u.size // 2
        out: FloatArray = u[:m] - u[m:]
        return out
    return u
