"""The public Monte-Carlo gradient estimator (the one OpenES uses with raw shaping)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _validate as v
from ._typing import FloatArray


def estimate_gradient(
    fun: Callable[[FloatArray], float],
    x: object,
    sigma: float,
    popsize: int,
    *,
    mirrored: bool = True,
    rng: object = None,
) -> FloatArray:
    r"""Estimate the gradient of ``E[fun(x + sigma z)]``, z ~ N(0, I), by Monte Carlo.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``.
    x : array_like of shape (d,)
        Where to estimate the gradient.
    sigma : float
        Standard deviation of the perturbations.
    popsize : int
        Number of evaluations n (even when `mirrored`).
    mirrored : bool
        Use antithetic pairs ``(z, -z)``.
    rng : None, int, SeedSequence or Generator
        Noise source, as for the strategies. With the same integer seed the perturbations equal
        those of generation 0 of ``OpenES(x, sigma, popsize, rng=seed, mirrored=mirrored)``.

    Returns
    -------
    g : ndarray of shape (d,)
        :math:`\frac{1}{n\sigma}\sum_k f(x + \sigma z_k) z_k`, or mirrored with
        :math:`m = n/2` pairs :math:`\frac{1}{2m\sigma}\sum_k (f(x + \sigma z_k) -
        f(x - \sigma z_k)) z_k`.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or `fun` returns something that is not a number.
    ValueError
        If an argument has an invalid value, or `fun` returns a non-finite value.

    Notes
    -----
    For a quadratic :math:`f` with gradient :math:`g` at `x`, the mirrored estimate equals
    :math:`(\frac1m \sum_k z_k z_k^T)\, g` exactly, so its error has covariance
    :math:`(|g|^2 I + g g^T)/m`.

    Examples
    --------
    >>> import numpy as np
    >>> g = estimate_gradient(lambda x: float(x @ x), np.ones(2), 0.1, 2000, rng=0)
    >>> bool(np.allclose(g, [2.0, 2.0], atol=0.5))
    True
    """
    from ._openes import OpenES

    if not callable(fun):
        raise TypeError(f"`fun` must be callable, but got {fun!r}.")
    # Checked here so that the messages name this function's arguments (not OpenES's).
    x = v.as_vector("x", x)
    sigma = v.positive_float("sigma", sigma)
    es = OpenES(x, sigma, popsize, mirrored=mirrored, shaping="raw", rng=rng)
    X = es.ask()
    f = np.empty(X.shape[0])
    for k, row in enumerate(X):
        y = fun(row.copy())
        try:
            f[k] = float(y)
        except (TypeError, ValueError):
            raise TypeError(
                f"`fun` must return a real number, but returned {y!r:.80} at the perturbed "
                f"point {k}."
            ) from None
    if not np.all(np.isfinite(f)):
        k = int(np.flatnonzero(~np.isfinite(f))[0])
        raise ValueError(f"`fun` returned {f[k]} at the perturbed point {k}; it must be finite.")
    return es.gradient(-f)


__all__ = ["estimate_gradient"]
