"""The "Several processes" snippets of docs/optuna.rst, run as written in real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent


def snippets() -> list[str]:
    text = (ROOT / "docs" / "optuna.rst").read_text()
    section = text.split("Several processes\n-----------------", 1)[1].split("\n----", 1)[0]
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    return [textwrap.dedent(b) for b in blocks]


@pytest.mark.slow
def test_create_once_then_start_the_workers_as_the_docs_say(tmp_path: Path) -> None:
    create, worker = snippets()[:2]
    assert "create_study" in create
    assert "load_study" in worker
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "create.py").write_text(create)
    (tmp_path / "worker.py").write_text(worker)
    done = subprocess.run(
        [sys.executable, "create.py"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    procs = [
        subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 200
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert study.best_value < 0.1


def test_the_worker_snippet_alone_fails_without_the_study(tmp_path: Path) -> None:
    # The reason the docs create the study first: load_study of a missing study raises KeyError.
    worker = snippets()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "worker.py").write_text(worker)
    done = subprocess.run(
        [sys.executable, "worker.py"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode != 0
    assert b"KeyError" in done.stderr
