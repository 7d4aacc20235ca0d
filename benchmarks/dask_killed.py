"""Does a dask ``LocalCluster`` outlive a candidate that kills its worker, on a loaded machine?

One run: a ``LocalCluster`` of one worker with two threads evaluates two candidates as two
tasks; the first calls ``os._exit`` (it kills the worker on every start), the second sleeps 2 s
and is innocent. dask runs a task on up to ``allowed-failures`` + 1 workers, and the evaluator
runs lost candidates again, so the worker restarts again and again. A ``LocalCluster`` closes for
good a worker still absent when ``distributed.deploy.lost-worker-timeout`` (15 s) has passed
since it left: when that happens to the only worker, the evaluation waits for ever (the run is
killed at ``--timeout`` and counted as hung).

Each run is a fresh subprocess, while ``--load`` busy processes hold the cores (as a CI machine
running other jobs does). Printed per dask setting: runs that ended with only the culprit NaN,
runs that hung, and the median seconds of those that ended::

    python -m benchmarks.dask_killed --runs 5 --load 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np

#: the dask settings compared: dask's defaults, the one docs/parallel.rst advises, a long timer
SETTINGS: dict[str, dict[str, object]] = {
    "dask defaults": {},
    "allowed-failures 0": {"distributed.scheduler.allowed-failures": 0},
    "lost-worker-timeout 600s": {"distributed.deploy.lost-worker-timeout": "600s"},
}


def culprit_or_innocent(x: np.ndarray) -> float:
    """Kill the worker for the first candidate; the others take 2 s."""
    if x[0] == 0:
        os._exit(3)
    time.sleep(2.0)
    return float(np.sum(x**2))


def one(setting: str, generations: int) -> None:
    """Run the scenario `generations` times on one cluster under `setting`; print JSON."""
    import warnings

    import dask
    import distributed

    from nes_asktell import Evaluator

    X = np.array([[0.0, 1.0], [1.0, 2.0]])
    with (
        dask.config.set(SETTINGS[setting]),
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        Evaluator(client, tasks=2) as ev,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        start = time.monotonic()
        only_culprit, values = True, []
        for _ in range(generations):  # a run whose every generation has a culprit
            f = ev.evaluate(culprit_or_innocent, X)
            values.append([None if np.isnan(v) else float(v) for v in f])
            only_culprit = only_culprit and bool(np.isnan(f[0]) and f[1] == 5.0)
        seconds = time.monotonic() - start
    print(json.dumps({"only_culprit": only_culprit, "seconds": seconds, "values": values}))


def busy(seconds: float) -> None:
    """Keep one core busy for `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def trial(setting: str, generations: int, timeout: float) -> dict[str, object] | None:
    """Run :func:`one` in a fresh process group; None if it did not end within `timeout`."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.dask_killed",
            "--one",
            setting,
            "--generations",
            str(generations),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        outcome: dict[str, object] = json.loads(lines[-1])
        if not outcome.get("only_culprit"):
            print(f"  a run of {setting!r} gave: {outcome.get('values')}", flush=True)
        return outcome
    tail = "\n    ".join(err.strip().splitlines()[-6:])
    print(f"  a run of {setting!r} failed (exit code {proc.returncode}):\n    {tail}", flush=True)
    return {"only_culprit": False}


def main(
    quick: bool = False,
    argv: Sequence[str] | None = None,
    prog: str = "python -m benchmarks.dask_killed",
) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per setting")
    parser.add_argument("--load", type=int, default=2, help="busy processes while it runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before 'hung'")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument(
        "--generations", type=int, default=1, help="evaluations per run, each with a culprit"
    )
    parser.add_argument("--one", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None and quick else argv)
    for name, least in (("runs", 1), ("generations", 1), ("load", 0)):
        if getattr(args, name) < least:
            parser.error(f"`--{name}` must be at least {least}, but got {getattr(args, name)}")
    if not 0 < args.timeout < math.inf:  # (NaN too)
        parser.error(f"`--timeout` must be a positive number of seconds, but got {args.timeout}")
    if quick:
        args.runs, args.load = 1, 0
    if args.one:
        one(args.one, args.generations)
        return
    import multiprocessing

    hogs = [
        multiprocessing.Process(target=busy, args=(10**6,), daemon=True) for _ in range(args.load)
    ]
    for h in hogs:
        h.start()
    try:
        print(
            f"{args.runs} runs per setting of {args.generations} evaluation(s) each, "
            f"{args.load} busy processes, hung after {args.timeout:.0f} s"
        )
        print(f"{'dask setting':<26} {'ended, only culprit NaN':>24} {'hung':>5} {'median s':>9}")
        for setting in args.settings:
            outcomes = [trial(setting, args.generations, args.timeout) for _ in range(args.runs)]
            ended = [o for o in outcomes if o is not None]
            good = [o for o in ended if o.get("only_culprit")]
            secs = [float(o["seconds"]) for o in good]  # type: ignore[arg-type]
            median = f"{statistics.median(secs):.0f}" if secs else "-"
            print(f"{setting:<26} {len(good):>24} {len(outcomes) - len(ended):>5} {median:>9}")
    finally:
        for h in hogs:
            h.terminate()


if __name__ == "__main__":
    main()
