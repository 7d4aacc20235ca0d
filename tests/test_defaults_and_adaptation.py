"""Every documented default pinned to its formula, every adaptive rule to its direction.

Adaptation sampling (Wierstra et al. 2014, Algorithm 4) raises XNES's eta_sigma when a
larger step would have made the good samples more likely, judged by a one-sided rank test at
level rho = 1/2 - 1/(3 (d + 1)). On an objective that is pure noise the ranks are a random
permutation whatever the weights, so the probability that a generation raises the rate can be
computed exactly, by enumerating the distinct rank arrangements; the test compares the count
of raises with the sum of those probabilities.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import Z
from scipy.special import ndtr
from scipy.stats import rankdata

from nes_asktell import CRFMNES, DXNESIC, SNES, XNES, nes_weights
from nes_asktell._xnes import ETA_SIGMA_MAX

DIMS = [1, 2, 3, 7, 10, 50, 200]


# ---------------------------------------------------------------------- defaults
@pytest.mark.parametrize("d", DIMS)
def test_snes_default_eta_sigma_is_the_papers(d: int) -> None:
    es = SNES(np.zeros(d), 1.0)
    assert es.eta_sigma == pytest.approx((3 + math.log(d)) / (5 * math.sqrt(d)), rel=1e-15)
    opts = es.state_dict()["options"]
    assert opts["eta_mu"] == 1.0
    assert opts["csa"] is True


@pytest.mark.parametrize("d", DIMS)
def test_xnes_default_rates_are_the_papers(d: int) -> None:
    es = XNES(np.zeros(d), 1.0)
    paper = (9 + 3 * math.log(d)) / (5 * d * math.sqrt(d))
    opts = es.state_dict()["options"]
    assert opts["eta_B"] == pytest.approx(paper, rel=1e-15)
    assert opts["eta_sigma"] == pytest.approx(paper, rel=1e-15)
    assert es.eta_sigma == pytest.approx(paper, rel=1e-15)
    assert opts["eta_mu"] == 1.0
    assert opts["csa"] is True
    assert opts["adaptation_sampling"] is True
    # the rank-one term is on with CSA (see the documentation of SNES and XNES)
    assert opts["rank_one"] is True


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("factor", [1, 2, 4, 8, 16, 64])
def test_xnes_default_eta_B_is_cma_rank_mu_rate_when_larger(d: int, factor: int) -> None:
    # Hansen (2016), Table 1: c_mu = min(1 - c_1, 2 (mueff - 2 + 1/mueff) / ((d + 2)^2 +
    # mueff)), c_1 = 2 / ((d + 1.3)^2 + mueff), with mueff of the positive recombination
    # weights, here ln(lambda/2 + 1) - ln k normalised (the positive part of the utilities).
    lam = factor * (4 + math.floor(3 * math.log(d)))
    lam += lam % 2  # mirrored: an even population
    es = XNES(np.zeros(d), 1.0, popsize=lam)
    k = np.arange(1, lam + 1)
    raw = np.maximum(0.0, math.log(lam / 2 + 1) - np.log(k))
    mueff = raw.sum() ** 2 / float(np.sum(raw**2))
    c_1 = 2 / ((d + 1.3) ** 2 + mueff)
    c_mu = min(1 - c_1, 2 * (mueff - 2 + 1 / mueff) / ((d + 2) ** 2 + mueff))
    paper = (9 + 3 * math.log(d)) / (5 * d * math.sqrt(d))
    assert es.state_dict()["options"]["eta_B"] == pytest.approx(max(paper, c_mu), rel=1e-12)
    if factor == 1:  # the default population: the paper's rate
        assert es.state_dict()["options"]["eta_B"] == pytest.approx(paper, rel=1e-15)
    if factor >= 8 and 5 <= d <= 50:  # IPOP's later restarts: CMA-ES's (larger) rate
        assert c_mu > paper
    assert ETA_SIGMA_MAX == 0.5


@pytest.mark.parametrize("cls", [SNES, XNES, DXNESIC, CRFMNES])
@pytest.mark.parametrize("d", [2, 3, 10, 30])
def test_default_population_is_the_papers_made_even(cls, d: int) -> None:
    lam = 4 + math.floor(3 * math.log(d))
    es = cls(np.zeros(d), 1.0)
    assert es.mirrored
    assert es.popsize == lam + lam % 2


# ---------------------------------------------------------------------- adaptation sampling
def raised(before: float, after: float) -> bool:
    """Whether adaptation sampling found the larger step significant (raised, or held the cap)."""
    return after > before or after == ETA_SIGMA_MAX


def exact_raise_probability(es: XNES, X: np.ndarray, arrangements: np.ndarray) -> float:
    """P(the rank test is significant) when the ranks are a uniformly random arrangement.

    The weights are rebuilt from the candidates (z = B^-1 (x - m) / sigma) and the previous
    step, as the paper defines them; the ranks range over every distinct arrangement of the
    mid-ranks of the utilities.
    """
    st = es.state_dict()["algo"]
    d = es.dim
    if st["last_step"] == 0.0:
        return 0.0
    B = np.array(st["B"])
    Zs = np.linalg.solve(B, (X - es.mean).T).T / st["sigma"]
    sq = np.sum(Zs * Zs, axis=1)
    log_r = 0.5 * st["last_step"]
    w = np.exp(-d * log_r - 0.5 * sq * (math.exp(-2 * log_r) - 1))
    rho = 0.5 - 1 / (3 * (d + 1))
    r = arrangements + 0.5
    n = w.size
    dev_w = w - w.mean()
    dev_r = r[0] - r[0].mean()
    sd = math.sqrt((dev_w @ dev_w) * (dev_r @ dev_r) / (n - 1))
    z = (r @ w - w.sum() * r[0].mean()) / sd
    return float(np.mean(1 - ndtr(z) < rho))


def test_adaptation_sampling_on_pure_noise_raises_at_the_tests_level() -> None:
    d, N = 3, 1500
    rng = np.random.default_rng(11)
    # eta_B tiny: B stays near I, so z is recovered from x however long the noise runs
    es = XNES(np.zeros(d), 1.0, rng=11, eta_B=1e-9)
    # the mid-ranks of the NES utilities (the lower half ties), the same for every generation
    mid_ranks = rankdata(nes_weights(es.popsize), method="average") - 1
    arrangements = np.array(sorted(set(itertools.permutations(mid_ranks))))
    count, expected, variance = 0, 0.0, 0.0
    for _ in range(N):
        X = es.ask()
        f = rng.standard_normal(len(X))  # fitness independent of everything
        p = exact_raise_probability(es, X, arrangements)
        before = es.eta_sigma
        es.tell(X, f)
        count += raised(before, es.eta_sigma)
        expected += p
        variance += p * (1 - p)
    # The raises minus their conditional probabilities form a martingale with variance
    # sum p (1 - p): Z = 6.57 standard deviations (alpha 5e-11, conftest). One assertion.
    assert abs(count - expected) <= Z * math.sqrt(variance)
    # The design: raised in about rho of the generations (5/12 at d = 3), never in almost
    # all of them as a two-sample variance made it (93-97%).
    assert expected / N < 0.5


@pytest.mark.parametrize("seed", range(5))
def test_adaptation_sampling_raises_the_rate_where_smaller_steps_win(seed: int) -> None:
    # Centred on the optimum of a sphere, sigma shrinks and a 1.5x larger shrinking step
    # favours the small, good samples: the rate must climb from its initial value to the cap.
    d = 10
    es = XNES(np.zeros(d), 1.0, rng=seed, csa=False)
    eta0 = es.eta_sigma
    top = eta0
    for _ in range(150):
        X = es.ask()
        es.tell(X, np.sum(X * X, axis=1))
        top = max(top, es.eta_sigma)
    assert eta0 < 0.11
    assert top == ETA_SIGMA_MAX


def test_xnes_rank_one_term_follows_csa_unless_given() -> None:
    # Without CSA the rank-one term can stall a run, so by default it goes with CSA; the
    # paper's algorithm, XNES(csa=False, adaptation_sampling=False, mirrored=False), has neither.
    def rank_one(**kw: bool) -> object:
        return XNES(np.zeros(3), 1.0, **kw).state_dict()["options"]["rank_one"]  # type: ignore[index]

    assert rank_one() is True
    assert rank_one(csa=False) is False
    assert rank_one(csa=False, rank_one=True) is True
    assert rank_one(csa=True, rank_one=False) is False
    with pytest.raises(TypeError, match=r"`csa` must be True or False, but got None"):
        XNES(np.zeros(3), 1.0, csa=None)  # type: ignore[arg-type]
