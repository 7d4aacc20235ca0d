"""A real tuning task: NESSampler, CmaEsSampler and TPESampler tune a gradient-boosting model.

Protocol
--------
* **Data**: scikit-learn's bundled breast cancer dataset (569 samples, 30 features, no
  download), split once into 70% training and 30% validation (stratified, ``random_state=0``).
* **Model**: ``HistGradientBoostingClassifier`` without early stopping, ``random_state=0``,
  one thread (``threadpoolctl``), so the fits of all samplers cost alike.
* **Search space** (7 hyperparameters): ``learning_rate`` float in [1e-3, 1] log,
  ``max_leaf_nodes`` int in [4, 64] log, ``max_depth`` int in [2, 12], ``min_samples_leaf`` int
  in [2, 100] log, ``l2_regularization`` float in [1e-6, 10] log, ``max_features`` float in
  [0.3, 1], ``max_bins`` int in [16, 255].
* **Pruning on staged iterations**: the model grows by ``warm_start`` in 5 stages of 10
  boosting iterations (50 in all); after each stage the trial reports the validation log loss
  and ``MedianPruner(n_startup_trials=5)`` may prune it, so a pruned trial really saves its
  remaining fits.
* **Study**: minimise the validation log loss of the finished model, 100 trials, seeds 0, 1, 2,
  default samplers with ``seed`` set, in-memory storage; samplers interleaved seed by seed.
* **Reported**, median over the seeds: the best validation log loss (and the accuracy of that
  trial), the study's wall time (fits included), pruned trials, distinct points.

Each study is cached as JSON under ``~/.cache/nes_asktell_bench/optuna_sklearn`` (``--cache``).
Run: ``python -m benchmarks optuna_sklearn`` (``--quick``: 8 trials, seed 0, a temporary cache,
nothing written to the docs). Writes ``docs/_static/bench/optuna_sklearn.rst``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from benchmarks._common import OUT_DIR, simple_table, write_text
from nes_asktell import NESSampler

CACHE = Path.home() / ".cache" / "nes_asktell_bench" / "optuna_sklearn"
SAMPLERS = ("NESSampler", "CmaEsSampler", "TPESampler")
SEEDS = (0, 1, 2)
N_TRIALS = 100
STAGES = 5
STAGE_ITER = 10


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "NESSampler":
        return NESSampler(seed=seed)
    if name == "CmaEsSampler":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "TPESampler":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}, expected one of {SAMPLERS}")


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    return X_tr, X_va, y_tr, y_va


def objective_for(
    X_tr: np.ndarray, X_va: np.ndarray, y_tr: np.ndarray, y_va: np.ndarray
) -> optuna.study.study.ObjectiveFuncType:
    def objective(trial: optuna.Trial) -> float:
        model = HistGradientBoostingClassifier(
            learning_rate=trial.suggest_float("learning_rate", 1e-3, 1.0, log=True),
            max_leaf_nodes=trial.suggest_int("max_leaf_nodes", 4, 64, log=True),
            max_depth=trial.suggest_int("max_depth", 2, 12),
            min_samples_leaf=trial.suggest_int("min_samples_leaf", 2, 100, log=True),
            l2_regularization=trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
            max_features=trial.suggest_float("max_features", 0.3, 1.0),
            max_bins=trial.suggest_int("max_bins", 16, 255),
            early_stopping=False,
            warm_start=True,
            random_state=0,
        )
        loss = float("nan")
        for stage in range(1, STAGES + 1):
            model.set_params(max_iter=stage * STAGE_ITER)
            model.fit(X_tr, y_tr)  # warm start: adds STAGE_ITER iterations
            proba = model.predict_proba(X_va)
            loss = float(log_loss(y_va, proba))
            trial.report(loss, stage * STAGE_ITER)
            if stage < STAGES and trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("accuracy", float(accuracy_score(y_va, model.predict(X_va))))
        return loss

    return objective


def run_study(name: str, seed: int, n_trials: int) -> dict[str, object]:
    split = data()
    study = optuna.create_study(
        sampler=make_sampler(name, seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    t0 = time.perf_counter()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective_for(*split), n_trials=n_trials)
    seconds = time.perf_counter() - t0
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(complete, key=lambda t: float(t.value))  # type: ignore[arg-type]
    return {
        "sampler": name,
        "seed": seed,
        "n_trials": n_trials,
        "best": best.value,
        "best_accuracy": best.user_attrs["accuracy"],
        "best_params": best.params,
        "complete": len(complete),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "distinct": len({tuple(sorted(t.params.items())) for t in trials}),
        "seconds": seconds,
        "optuna": optuna.__version__,
    }


def cached_study(cache: Path, name: str, seed: int, n_trials: int) -> dict[str, object]:
    path = cache / f"{name}-s{seed}-n{n_trials}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    record = run_study(name, seed, n_trials)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return record


def main(
    quick: bool = False,
    argv: list[str] | None = None,
    prog: str = "python -m benchmarks.optuna_sklearn",
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--trials", type=int, default=N_TRIALS)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.seeds:
        parser.error("`--seeds` must name at least one seed, but got none")
    if args.trials < 1:
        parser.error(f"`--trials` must be at least 1, but got {args.trials}")
    quick = quick or args.quick
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = None
    if quick:
        tmp = tempfile.TemporaryDirectory()
        args.cache, args.seeds, args.trials = Path(tmp.name), [0], 8
    results: dict[str, list[dict[str, object]]] = {s: [] for s in SAMPLERS}
    for seed in args.seeds:  # samplers interleaved seed by seed: machine load hits them alike
        for name in SAMPLERS:
            r = cached_study(args.cache, name, seed, args.trials)
            results[name].append(r)
            print(
                f"{name:13s} seed {seed}: best log loss {float(r['best']):.4f} "  # type: ignore[arg-type]
                f"(accuracy {float(r['best_accuracy']):.4f}), pruned {r['pruned']}, "  # type: ignore[arg-type]
                f"distinct {r['distinct']}, {float(r['seconds']):.1f} s",  # type: ignore[arg-type]
                flush=True,
            )
    ref_time = statistics.median(float(r["seconds"]) for r in results["CmaEsSampler"])  # type: ignore[arg-type]
    rows = []
    for name in SAMPLERS:
        rs = results[name]
        losses = [float(r["best"]) for r in rs]  # type: ignore[arg-type]
        secs = statistics.median(float(r["seconds"]) for r in rs)  # type: ignore[arg-type]
        rows.append(
            [
                name,
                f"{statistics.median(losses):.4f}",
                ", ".join(f"{x:.4f}" for x in losses),
                f"{statistics.median(float(r['best_accuracy']) for r in rs):.4f}",  # type: ignore[arg-type]
                f"{statistics.median(int(r['pruned']) for r in rs):.0f}",  # type: ignore[call-overload]
                f"{min(int(r['distinct']) for r in rs)}",  # type: ignore[call-overload]
                f"{secs:.1f}",
                f"{secs / ref_time:.2f}",
            ]
        )
    headers = [
        "sampler",
        "median best log loss",
        "per seed",
        "its accuracy",
        "pruned",
        "min distinct",
        "wall s",
        "time ratio to CMA-ES",
    ]
    text = simple_table(headers, rows)
    print()
    print(
        f"{args.trials} trials, seeds {', '.join(map(str, args.seeds))}; medians over the seeds\n"
    )
    print(text)
    protocol = list(args.seeds) == list(SEEDS) and args.trials == N_TRIALS
    if not quick and protocol:
        write_text(OUT_DIR / "optuna_sklearn.rst", text)
    elif not quick:  # the docs' table, which names neither, is of the protocol's seeds and trials
        print(f"not written to the docs: they show {N_TRIALS} trials, seeds {list(SEEDS)}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
