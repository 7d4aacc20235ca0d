"""A long NESSampler study that runs to the end and resumes in a fresh process.

``python -m benchmarks.optuna_long`` runs, for a 2-d sphere and a 10-d Rosenbrock function in
``[-5, 5]^d``, a study of ``--trials`` trials (default 20,000) on a journal file with the
default NESSampler, then starts a fresh Python process that opens the same storage with a new
sampler and runs ``--resume`` more trials. It reports, per study: the trials run and their
states, the best value, the distinct points, the sampler's warnings, the generations in the
stored chain (the populations double on IPOP restarts), the wall time per trial at the start
and at the end of the study, and what the fresh process saw. Results are cached under
``--cache`` (one JSON per study).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import read_record, write_record

ROOT = Path(__file__).resolve().parent.parent

PROBLEMS = {"sphere": 2, "rosenbrock": 10}

RESUME = """
import json, sys, warnings
import optuna
from nes_asktell import NESSampler, NESWarning
from benchmarks.optuna_long import objective
optuna.logging.set_verbosity(optuna.logging.ERROR)
path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
sampler = NESSampler(seed=1)
study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
before = len(study.trials)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", NESWarning)
    study.optimize(objective(name), n_trials=n)
trials = study.trials[before:]
print(json.dumps({
    "resumed_trials": len(trials),
    "resumed_complete": sum(t.state.name == "COMPLETE" for t in trials),
    "resumed_generations": len(sampler.generations(study)),
    "resumed_warnings": len(caught),
    "resumed_best": min(t.value for t in trials if t.value is not None),
}))
"""


def objective(name: str):  # type: ignore[no-untyped-def]
    d = PROBLEMS[name]

    def fun(trial) -> float:  # type: ignore[no-untyped-def]
        x = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(d)]
        if name == "sphere":
            return float(sum((xi - 1.0) ** 2 for xi in x))
        return float(
            sum(100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2 for i in range(d - 1))
        )

    return fun


def run_study(name: str, n_trials: int, n_resume: int) -> dict[str, object]:
    import optuna

    from nes_asktell import NESSampler, NESWarning

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "study.log")
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
        sampler = NESSampler(seed=0)
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler)
        fun = objective(name)
        stamps: list[float] = []
        t0 = time.perf_counter()

        def stamp(study: object, trial: object) -> None:
            stamps.append(time.perf_counter() - t0)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NESWarning)
            study.optimize(fun, n_trials=n_trials, callbacks=[stamp])
        seconds = time.perf_counter() - t0
        trials = study.trials
        states: dict[str, int] = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        chain = sampler.generations(study)
        distinct = len({tuple(sorted(t.params.items())) for t in trials})
        best = study.best_value  # before the fresh process adds its trials
        window = min(500, n_trials // 4)
        first = stamps[window - 1] / window
        last = (stamps[-1] - stamps[-window - 1]) / window
        resumed = subprocess.run(
            [sys.executable, "-c", RESUME, path, name, str(n_resume)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if resumed.returncode != 0:
            after: dict[str, object] = {"resume_error": resumed.stderr[-2000:]}
        else:
            after = json.loads(resumed.stdout.strip().splitlines()[-1])
    return {
        "problem": name,
        "dim": PROBLEMS[name],
        "trials": len(trials),
        "states": states,
        "best": best,
        "distinct": distinct,
        "warnings": len(caught),
        "warning_kinds": sorted({str(w.message)[:80] for w in caught})[:5],
        "generations": len(chain),
        "seconds": seconds,
        "ms_per_trial_first": 1e3 * first,
        "ms_per_trial_last": 1e3 * last,
        **after,
    }


def main(
    quick: bool = False,
    argv: Sequence[str] | None = None,
    prog: str = "python -m benchmarks.optuna_long",
) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--resume", type=int, default=200)
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "nes_asktell_bench" / "optuna_long"
    )
    args = parser.parse_args([] if argv is None and quick else argv)
    if args.trials < 4:  # the first and the last quarter of the study are timed
        parser.error(f"`--trials` must be at least 4, but got {args.trials}")
    if args.resume < 1:
        parser.error(f"`--resume` must be at least 1, but got {args.resume}")
    if quick:
        args.trials, args.resume = 400, 20
        args.cache = Path(tempfile.mkdtemp(prefix="nes_long_quick_"))
    for name in args.problems:
        path = args.cache / f"{name}_{args.trials}_{args.resume}.json"
        rec = read_record(path) if path.exists() else {}
        if not rec or "resume_error" in rec:  # a failed resume may have been the machine's
            rec = run_study(name, args.trials, args.resume)
            write_record(path, rec)
        print(json.dumps(rec, indent=1), flush=True)


if __name__ == "__main__":
    main()
