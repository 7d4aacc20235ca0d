"""The ask/tell protocol: shapes, read-only results, properties, result, optimize()."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

from nes_asktell import OpenES, Strategy


def sphere(x: np.ndarray, shift: float = 0.0) -> float:
    return float(np.sum((x - shift) ** 2))


def test_ask_shape_dtype_and_read_only() -> None:
    es = OpenES(np.zeros(5), 0.1, 6, rng=0)
    X = es.ask()
    assert X.shape == (6, 5)
    assert X.dtype == np.float64
    assert not X.flags.writeable
    assert es.ask() is X  # asking again before tell: the same batch


def test_properties() -> None:
    x0 = np.array([1.0, 2.0, 3.0])
    es = OpenES(x0, 0.25, 4, rng=0, bounds=(-5, 5))
    assert isinstance(es, Strategy)
    assert (es.dim, es.popsize, es.sigma, es.generation, es.nfev) == (3, 4, 0.25, 0, 0)
    assert es.mirrored
    lo, hi = es.bounds  # type: ignore[misc]
    np.testing.assert_array_equal(lo, [-5, -5, -5])
    np.testing.assert_array_equal(hi, [5, 5, 5])
    x0[0] = 100.0  # the strategy copied x0
    np.testing.assert_array_equal(es.mean, [1.0, 2.0, 3.0])
    es.mean[0] = 100.0  # and hands out copies
    es.best[0][0] = 100.0
    lo[0] = 100.0
    np.testing.assert_array_equal(es.mean, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(es.best[0], [1.0, 2.0, 3.0])
    assert es.bounds[0][0] == -5  # type: ignore[index]
    for name in ("dim", "popsize", "mean", "sigma", "generation", "nfev", "best"):
        with pytest.raises(AttributeError):
            setattr(es, name, 1)


def test_counters_advance_per_tell() -> None:
    es = OpenES(np.zeros(2), 0.1, 4, rng=0)
    for g in range(1, 4):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
        assert (es.generation, es.nfev) == (g, 4 * g)


def test_result_fields() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0, maxiter=3)
    res = es.optimize(sphere)
    assert isinstance(res, OptimizeResult)
    for key in ("x", "fun", "nfev", "nit", "status", "success", "message", "stop", "mean"):
        assert key in res
    assert res.fun == sphere(res.x)
    assert res.nit == 3
    assert res.sigma == 0.1
    res.x[0] = 99.0  # a copy
    assert es.best[0][0] != 99.0


def test_result_while_running() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0)
    assert es.result.status == -1
    assert not es.result.success


def test_optimize_passes_args_and_reaches_the_optimum() -> None:
    # fixed seed: a deterministic regression check
    es = OpenES(np.zeros(3), 0.05, rng=1, learning_rate=0.05)
    res = es.optimize(sphere, args=(0.5,), maxfev=6000)
    assert res.fun < 0.01


def test_optimize_with_workers_gives_the_same_run() -> None:
    a = OpenES(np.ones(3), 0.1, rng=2).optimize(sphere, maxiter=5)
    with ThreadPoolExecutor(2) as pool:
        b = OpenES(np.ones(3), 0.1, rng=2).optimize(sphere, maxiter=5, workers=pool)
    c = OpenES(np.ones(3), 0.1, rng=2).optimize(
        sphere, maxiter=5, workers=lambda f, xs: list(map(f, xs))
    )
    for r in (b, c):
        np.testing.assert_array_equal(r.x, a.x)
        np.testing.assert_array_equal(r.mean, a.mean)


def test_optimize_disp_prints_progress(capsys: pytest.CaptureFixture[str]) -> None:
    OpenES(np.ones(2), 0.1, rng=0).optimize(sphere, maxiter=3, disp=True)
    out = capsys.readouterr().out
    assert "OpenES gen      3  nfev        18" in out  # popsize 6 for d = 2


def test_optimize_rejects_bad_limits_and_leaves_the_strategy_unchanged() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0)
    before = es.state_dict()
    with pytest.raises(ValueError, match=r"`maxfev` must be an integer >= 0, but got -1\."):
        es.optimize(sphere, maxfev=-1)
    with pytest.raises(TypeError, match=r"`maxiter` must be an integer, but got 2.5\."):
        es.optimize(sphere, maxiter=2.5)  # type: ignore[arg-type]
    assert es.state_dict() == before


def test_zero_budgets_return_at_once_as_scipy_does() -> None:
    calls = []
    es = OpenES(np.ones(2), 0.1, rng=0)
    for budget in ({"maxiter": 0}, {"maxfev": 0}):
        res = es.optimize(lambda x: calls.append(x) or sphere(x), **budget)  # type: ignore[arg-type, func-returns-value]
        assert (res.nit, res.nfev, calls) == (0, 0, [])
        assert res.status == (2 if "maxiter" in budget else 1)


def test_budgets_of_optimize_do_not_stick() -> None:
    # optimize(maxfev=...) ends that call; a later call without it runs on under the
    # strategy's own criteria (here maxiter=9).
    es = OpenES(np.ones(2), 0.1, rng=0, maxiter=9)
    res = es.optimize(sphere, maxfev=12)
    assert (res.nfev, res.status) == (12, 1)
    res = es.optimize(sphere)
    assert (res.nit, res.status) == (9, 2)
    assert es.criteria["maxfev"] is None


def test_repr() -> None:
    es = OpenES(np.ones(2), 0.1, rng=0)
    assert repr(es) == "OpenES(dim=2, popsize=6, generation=0, nfev=0, best_f=inf)"


def test_one_dimensional() -> None:
    es = OpenES([0.5], 0.1, rng=0)
    assert es.popsize == 4  # 4 + floor(3 ln 1) = 4
    X = es.ask()
    assert X.shape == (4, 1)
    es.tell(X, [sphere(x) for x in X])
