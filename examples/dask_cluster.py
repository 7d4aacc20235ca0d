"""Evaluate populations on a dask cluster, shipping noise keys instead of candidates.

Run: ``python examples/dask_cluster.py`` (a few seconds; needs the ``[dask]`` extra). A local
cluster stands in for a real one: pass ``Client("tcp://scheduler:8786")`` instead.

With an integer ``rng``, each worker rebuilds its candidates from the keys of its candidates. In
seeds mode the mean is broadcast once per generation; in replay mode (the default on a dask
Client) each worker keeps a replica of the strategy and replays the client's updates, so after
the first generation a generation moves a few KB. Every run is bit-identical to a serial one.
"""

from __future__ import annotations

import numpy as np
from distributed import Client, LocalCluster

from nes_asktell import Evaluator, OpenES


def objective(x: np.ndarray) -> float:
    """A stand-in for a policy's loss: the squared distance to 0.5 in every coordinate."""
    return float(np.sum((x - 0.5) ** 2))


def run(workers: object, mode: str) -> tuple[float, list[int]]:
    """Return f(mean) after 8 generations and the bytes sent in each generation."""
    es = OpenES(np.zeros(20_000), sigma0=0.05, popsize=16, learning_rate=0.01, rng=0)
    sent = []
    with Evaluator(workers, mode=mode) as evaluator:
        for _ in range(8):
            X = es.ask()
            es.tell(X, evaluator.evaluate(objective, X, strategy=es))
            sent.append(evaluator.last_bytes)
    return objective(es.mean), sent


def main() -> None:
    serial, _ = run(None, "auto")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        seeds, seeds_bytes = run(client, "seeds")
        vectors, vectors_bytes = run(client, "vectors")
        replay, replay_bytes = run(client, "auto")  # "auto" on a Client: replay
        # any Executor works too, e.g. dask's own: the rows travel as vectors
        res = OpenES(np.zeros(5), sigma0=0.5, rng=0).optimize(
            objective, maxiter=30, workers=client.get_executor()
        )
    start = objective(np.zeros(20_000))
    print(f"f(mean): {start:.2f} at the start, after 8 generations: serial {serial:.6f}, ")
    print(f"  seeds on dask {seeds:.6f}, vectors {vectors:.6f}, replay {replay:.6f}")
    print(f"bit-identical: {serial == seeds == vectors == replay}")
    print(
        f"bytes sent in 8 generations: vectors {sum(vectors_bytes) / 1e6:.1f} MB, seeds "
        f"{sum(seeds_bytes) / 1e6:.2f} MB, replay {sum(replay_bytes) / 1e6:.2f} MB "
        f"({replay_bytes[0] / 1e6:.2f} MB of state in the first generation, then "
        f"{max(replay_bytes[1:]) / 1e3:.1f} KB at most per generation)"
    )
    print(f"optimize(workers=client.get_executor()): f = {res.fun:.3e} after {res.nfev} evals")
    if not serial == seeds == vectors == replay:
        raise SystemExit("the runs differ: they must be bit-identical")


if __name__ == "__main__":
    main()
