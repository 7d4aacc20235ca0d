"""The behaviour matrix: hashes of every asked batch and every result over many configurations.

Run ``python -m benchmarks.behaviour_matrix`` to print the matrix as JSON, ``--write FILE`` to
store it, and ``--check FILE`` to compare the current code with a stored matrix (exit code 1 and
the differing rows when they differ). A change of layout must leave the matrix identical; a
change of behaviour shows exactly which configurations it touched.

The rows: every strategy x rng kind x bounds or not x mirrored or not (ask/tell by hand, with a
JSON round trip between ask and tell); engines (serial, process pool, a thread Executor in seeds
mode, dask vectors, seeds and replay) under ``optimize``; IPOP; the scipy method; the Optuna
sampler on SQLite. Only behaviour is hashed (candidates, fitness values, results), never the
layout of a state.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def _h(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def ellipsoid(x: np.ndarray) -> float:
    d = x.size
    w = 10.0 ** (3.0 * np.arange(d) / max(d - 1, 1))
    return float(np.sum(w * (x - 0.3) ** 2))


def rastrigin(x: np.ndarray) -> float:
    return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


def _result_hash(res: Any) -> str:
    sigma = np.atleast_1d(np.asarray(res.sigma, dtype=float))
    return _h(res.x, [res.fun, res.nfev, res.nit, res.status], res.mean, sigma)


def _rng(kind: str, seed: int) -> Any:
    if kind == "int":
        return seed
    if kind == "seedseq":
        return np.random.SeedSequence(seed)
    if kind == "generator":
        return np.random.default_rng(seed)
    return np.random.RandomState(seed)


def protocol_rows() -> dict[str, str]:
    import nes_asktell as nes

    out: dict[str, str] = {}
    classes = {"xnes": nes.XNES, "snes": nes.SNES, "openes": nes.OpenES}
    d = 5
    for name, cls in classes.items():
        kinds = ["int", "seedseq", "generator"] + (["randomstate"] if name == "openes" else [])
        for kind in kinds:
            for bounded in (False, True):
                for mirrored in (True, False):
                    bounds = (np.full(d, -0.5), np.full(d, 0.6)) if bounded else None
                    es = cls(
                        np.full(d, 0.2),
                        0.4,
                        bounds=bounds,
                        rng=_rng(kind, 7),
                        mirrored=mirrored,
                    )
                    parts = []
                    for g in range(8):
                        X = es.ask()
                        if g == 3:  # a checkpoint between ask and tell, through JSON
                            es = cls.from_state(json.loads(json.dumps(es.state_dict())))
                            X = es.ask()
                        f = [ellipsoid(x) for x in X]
                        parts += [X, f]
                        es.tell(X[::-1], f[::-1])
                    parts += [es.mean, np.atleast_1d(es.sigma), [es.best[1]]]
                    out[f"protocol/{name}/{kind}/bounds={bounded}/mirrored={mirrored}"] = _h(
                        *parts
                    )
    return out


def engine_rows(client: Any) -> dict[str, str]:
    import nes_asktell as nes

    out: dict[str, str] = {}
    classes = {"xnes": nes.XNES, "snes": nes.SNES, "openes": nes.OpenES}
    d = 12
    for name, cls in classes.items():
        engines: dict[str, Callable[[], Any]] = {
            "serial": lambda: None,
            "pool": lambda: 2,
            "threads-seeds": lambda: nes.Evaluator(ThreadPoolExecutor(2), mode="seeds"),
        }
        if client is not None:
            engines["dask-vectors"] = lambda: nes.Evaluator(client, mode="vectors")
            engines["dask-seeds"] = lambda: nes.Evaluator(client, mode="seeds")
            engines["dask-replay"] = lambda: nes.Evaluator(client, mode="replay")
        for engine, make in engines.items():
            if name == "xnes" and engine in ("threads-seeds", "dask-seeds", "dask-replay"):
                continue  # XNES ships vectors
            for bounded in (False, True):
                bounds = (np.full(d, -0.5), np.full(d, 0.6)) if bounded else None
                es = cls(np.full(d, 0.2), 0.3, bounds=bounds, rng=11)
                workers = make()
                res = es.optimize(ellipsoid, maxiter=12, workers=workers)
                if isinstance(workers, nes.Evaluator):
                    workers.close()
                out[f"engine/{name}/{engine}/bounds={bounded}"] = _result_hash(res)
    return out


def ipop_rows() -> dict[str, str]:
    import nes_asktell as nes

    out: dict[str, str] = {}
    for name in ("xnes", "snes"):
        for kind in ("int", "generator"):
            for bounded in (False, True):
                bounds = (np.full(3, -5.0), np.full(3, 5.0)) if bounded else None
                opt = nes.IPOP(
                    name,
                    np.full(3, 3.0),
                    2.0,
                    bounds=bounds,
                    rng=_rng(kind, 3),
                    maxfev=4000,
                    ftarget=1e-8,
                )
                res = opt.optimize(rastrigin)
                runs = [(h["popsize"], h["nfev"], h["generations"]) for h in res.history]
                out[f"ipop/{name}/{kind}/bounds={bounded}"] = _h(
                    np.ravel(runs), [res.restarts]
                ) + _result_hash(res)
    return out


def scipy_rows() -> dict[str, str]:
    from scipy.optimize import Bounds, minimize, rosen

    from nes_asktell import nes as nes_method

    out: dict[str, str] = {}
    x0 = np.full(4, -1.0)
    cases: dict[str, dict[str, Any]] = {
        "xnes": {"options": {"rng": 0, "maxfev": 3000}},
        "snes": {"options": {"rng": 0, "maxfev": 3000, "strategy": "snes"}},
        "openes": {"options": {"rng": 0, "maxfev": 3000, "strategy": "openes"}},
        "xnes-bounds": {"bounds": Bounds(-2, 2), "options": {"rng": 0, "maxfev": 3000}},
        "snes-pairs": {
            "bounds": [(-2, 2), (None, 1), (-3, None), (None, None)],
            "options": {"rng": 1, "maxfev": 2000, "strategy": "snes"},
        },
        "restarts": {"options": {"rng": 0, "maxfev": 6000, "restarts": 3}},
        "vectorized": {"options": {"rng": 0, "maxfev": 2000, "vectorized": True}},
        "tol0": {"options": {"rng": 0, "maxiter": 50, "tol": 0}},
    }
    for label, kw in cases.items():
        fun = rosen
        if kw["options"].get("vectorized"):

            def fun(X: np.ndarray) -> np.ndarray:
                return np.asarray(rosen(X))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(fun, x0, method=nes_method, **kw)
        out[f"scipy/{label}"] = _result_hash(res)
    return out


def sampler_rows() -> dict[str, str]:
    import optuna

    from nes_asktell import NESSampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out: dict[str, str] = {}

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", 1e-3, 10.0, log=True)
        n = trial.suggest_int("n", 0, 10)
        return (x - 1.0) ** 2 + np.log10(y) ** 2 + (n - 3) ** 2

    for name in ("xnes", "snes", "openes"):
        with tempfile.TemporaryDirectory() as tmp:
            storage = f"sqlite:///{Path(tmp) / 'study.db'}"
            study = optuna.create_study(storage=storage, sampler=NESSampler(strategy=name, seed=0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study.optimize(objective, n_trials=60)
            rows = [[t.params["x"], t.params["y"], t.params["n"], t.value] for t in study.trials]
            out[f"sampler/{name}/sqlite"] = _h(np.ravel(rows))
    return out


def matrix(with_dask: bool = True) -> dict[str, str]:
    out = protocol_rows()
    out.update(ipop_rows())
    out.update(scipy_rows())
    out.update(sampler_rows())
    if with_dask:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            out.update(engine_rows(client))
    else:
        out.update(engine_rows(None))
    return out


def differences(
    stored: dict[str, str], now: dict[str, str], with_dask: bool = True
) -> tuple[list[str], list[str]]:
    """Return the rows of `stored` and `now` that differ, and the stored rows not computed.

    Without dask, the stored rows of the dask engines are not computed: they are skipped, not
    counted as differences.
    """
    skipped = sorted(k for k in set(stored) - set(now) if not with_dask and "/dask-" in k)
    rows = (set(stored) | set(now)) - set(skipped)
    return sorted(k for k in rows if stored.get(k) != now.get(k)), skipped


def _read_matrix(parser: argparse.ArgumentParser, path: str) -> dict[str, str]:
    """Return the matrix stored in `path`, or end with a usage error that names it."""
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        parser.error(f"`--check` must be a stored matrix, but got {path}: {exc}")
    if not isinstance(stored, dict):
        parser.error(f"`--check` must be a stored matrix (a JSON object), but got {path}")
    return stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.behaviour_matrix")
    parser.add_argument("--write", help="store the matrix in this JSON file")
    parser.add_argument("--check", help="compare with the matrix stored in this JSON file")
    parser.add_argument("--no-dask", action="store_true", help="skip the dask engines")
    args = parser.parse_args(argv)
    stored = _read_matrix(parser, args.check) if args.check else None  # before the matrix's time
    m = matrix(with_dask=not args.no_dask)
    text = json.dumps(m, indent=1, sort_keys=True)
    if args.write:
        Path(args.write).write_text(text + "\n")
    if stored is not None:
        diff, skipped = differences(stored, m, with_dask=not args.no_dask)
        for k in diff:
            print(f"DIFFERS {k}: stored {stored.get(k)} now {m.get(k)}")
        note = f" ({len(skipped)} stored rows of dask skipped)" if skipped else ""
        print(f"{len(m)} rows, {len(diff)} differ{note}")
        return 1 if diff else 0
    if not args.write:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
