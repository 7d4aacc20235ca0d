"""OpenES: fixed-sigma NES (Salimans et al. 2017), the 2017 seed's algorithm grown up."""

from __future__ import annotations

import numpy as np

from . import _validate as v
from ._base import Strategy, check_option_names
from ._optimizers import make_optimizer
from ._typing import JSON, FloatArray


class OpenES(Strategy):
    r"""Fixed-sigma NES with mirrored sampling, fitness shaping and a gradient optimizer.

    Parameters
    ----------
    x0 : array_like of shape (d,)
        Initial mean.
    sigma0 : float
        Standard deviation of the perturbations (fixed, or scheduled by `sigma_decay`).
    popsize : int, optional
        Candidates per generation; default ``4 + floor(3 ln d)`` rounded up to even.
    bounds : optional
        Box constraints: None, ``(lower, upper)``, a sequence of ``(low, high)`` pairs, or
        ``scipy.optimize.Bounds``. Candidates are reflected into the box.
    rng : None, int, SeedSequence, Generator or RandomState
        Source of the noise. An int or SeedSequence gives counter-based noise (perturbation k of
        generation g can be rebuilt anywhere from the seed); a Generator or legacy RandomState is
        drawn from in sequence.
    optimizer : {"adam", "sgd", "momentum"}
        How the gradient estimate moves the mean.
    learning_rate : float
        Step size of the optimizer.
    weight_decay : float
        L2 coefficient c: the optimizer receives ``g + c * mu``.
    sigma_decay, sigma_limit : float
        After each generation ``sigma <- max(sigma * sigma_decay, sigma_limit)``.
    learning_rate_decay, learning_rate_limit : float
        The same schedule for the learning rate.
    mirrored : bool
        Antithetic pairs ``(z, -z)``; default True.
    shaping : str or callable
        Fitness shaping, default ``"centered_ranks"``.
    threads : int
        Threads drawing counter-based noise (results are identical for any count).
    **criteria
        Stopping thresholds: `maxfev`, `maxiter`, `ftarget`, `tolfun`, `tolx`, `tolstagnation`,
        `timeout`.

    Notes
    -----
    With perturbations :math:`z_k \sim N(0, I)`, candidates :math:`x_k = \mu + \sigma z_k` and
    utilities :math:`u_k` from the shaping (higher is better), the gradient of the objective is
    estimated by

    .. math:: g = -\frac{1}{n \sigma} \sum_k u_k z_k + c\,\mu

    and the mean moves by the optimizer's step, :math:`\mu \leftarrow \mu + \mathrm{step}(g)`
    (SGD: :math:`-\eta g`). With raw shaping (:math:`u_k = -f(x_k)`) the first term is the
    Monte-Carlo estimate of :math:`\nabla_\mu E[f(\mu + \sigma z)]` computed by
    :func:`nes_asktell.estimate_gradient`.

    The 2017 seed example is the configuration ``OpenES(rs.randn(3), sigma0=0.1, popsize=50,
    optimizer="sgd", learning_rate=0.001, shaping="zscore", mirrored=False, rng=rs)`` with
    ``rs = np.random.RandomState(0)``.

    References
    ----------
    T. Salimans, J. Ho, X. Chen, S. Sidor, I. Sutskever. Evolution Strategies as a Scalable
    Alternative to Reinforcement Learning. arXiv:1703.03864, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from nes_asktell import OpenES
    >>> es = OpenES(np.zeros(3), sigma0=0.1, rng=0)
    >>> X = es.ask()
    >>> es.tell(X, [float(np.sum((x - 1.0) ** 2)) for x in X])
    >>> es.generation, X.shape
    (1, (8, 3))
    """

    name = "openes"
    _allow_legacy_rng = True
    _default_mirrored = True
    _default_shaping = "centered_ranks"

    def __init__(
        self,
        x0: object,
        sigma0: object,
        popsize: object = None,
        *,
        bounds: object = None,
        rng: object = None,
        optimizer: object = "adam",
        learning_rate: object = 0.01,
        weight_decay: object = 0.0,
        sigma_decay: object = 1.0,
        sigma_limit: object = 0.0,
        learning_rate_decay: object = 1.0,
        learning_rate_limit: object = 0.0,
        mirrored: object = None,
        shaping: object = None,
        threads: object = 1,
        **criteria: object,
    ) -> None:
        lr = v.positive_float("learning_rate", learning_rate)
        wd = v.positive_float("weight_decay", weight_decay, allow_zero=True)
        sdecay = _decay("sigma_decay", sigma_decay)
        slimit = v.positive_float("sigma_limit", sigma_limit, allow_zero=True)
        ldecay = _decay("learning_rate_decay", learning_rate_decay)
        llimit = v.positive_float("learning_rate_limit", learning_rate_limit, allow_zero=True)
        check_option_names(criteria)
        super().__init__(
            x0,
            sigma0,
            popsize,
            bounds=bounds,
            rng=rng,
            mirrored=mirrored,
            shaping=shaping,
            threads=threads,
            **criteria,
        )
        self._opt = make_optimizer(optimizer, self._dim, lr)
        self._weight_decay = wd
        self._sigma_decay, self._sigma_limit = sdecay, slimit
        self._lr_decay, self._lr_limit = ldecay, llimit
        self._sigma = float(self._sigma0)

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate."""
        return self._opt.learning_rate

    def _perturb_into(self, Zh: FloatArray, out: FloatArray) -> None:
        np.multiply(Zh, self._sigma, out=out)

    def gradient(self, u: FloatArray) -> FloatArray:
        """Return the objective-gradient estimate ``-1/(n sigma) sum_k u_k z_k`` for the batch.

        `u` holds the utilities of the pending batch in ask order (higher is better).
        """
        return self._noise_sum(u) / (-self._popsize * self._sigma)

    def _update(self, u: FloatArray) -> None:
        g = self.gradient(u)
        if self._weight_decay:
            g = g + self._weight_decay * self._mean
        self._mean = self._mean + self._opt.step(g)
        self._sigma = max(self._sigma * self._sigma_decay, self._sigma_limit)
        self._opt.learning_rate = max(self._opt.learning_rate * self._lr_decay, self._lr_limit)

    def _stds(self) -> FloatArray:
        return np.full(self._dim, self._sigma)

    def _sigma_value(self) -> float:
        return self._sigma

    def _options(self) -> JSON:
        return {
            "optimizer": self._opt.name,
            "learning_rate": self._opt.learning_rate,
            "weight_decay": self._weight_decay,
            "sigma_decay": self._sigma_decay,
            "sigma_limit": self._sigma_limit,
            "learning_rate_decay": self._lr_decay,
            "learning_rate_limit": self._lr_limit,
        }

    def _algo_state(self) -> JSON:
        return {"sigma": self._sigma, "optimizer": self._opt.state()}

    def _load_algo_state(self, state: JSON) -> None:
        self._sigma = v.positive_float("sigma", state["sigma"])
        opt = dict(state["optimizer"])  # type: ignore[call-overload]
        for key in ("m", "v"):
            if key in opt:
                v.as_vector(key, opt[key], self._dim)
        v.integer("t", opt["t"], minimum=0)
        self._opt.load(opt)


def _decay(name: str, value: object) -> float:
    """Return a decay factor in (0, 1], or raise naming `name` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"`{name}` must be a number in (0, 1], but got {value!r}.")
    out = float(value)
    if not 0.0 < out <= 1.0:
        raise ValueError(f"`{name}` must be a number in (0, 1], but got {value!r}.")
    return out
