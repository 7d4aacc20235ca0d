"""Test configuration: hypothesis profiles and shared helpers.

Statistical tests share a false-alarm budget of 1e-6 over the whole suite (STYLE.md). Each
statistical assertion spends ``ALPHA_PER_ASSERTION`` and derives its tolerance from the known
variance with ``Z`` standard deviations (two-sided normal quantile for that alpha, or the
chi-square / binomial quantile written beside the assertion).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from scipy import stats

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "nightly",
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The scripts of tests/mpi run under mpiexec only (test_mpi.py starts them): importing them
#: here, for their doctests, would start MPI inside the test process.
collect_ignore_glob = ["mpi/*.py"]

#: Upper bound on the number of statistical assertions evaluated in one run of the suite
#: (hypothesis examples included: each example's assertion counts once). Raise it when adding
#: statistical tests; the bound, not the exact count, is what the Bonferroni split needs.
MAX_STAT_ASSERTIONS = 20_000
FALSE_ALARM_BUDGET = 1e-6
ALPHA_PER_ASSERTION = FALSE_ALARM_BUDGET / MAX_STAT_ASSERTIONS  # 5e-11
#: two-sided normal quantile for ALPHA_PER_ASSERTION: z = 6.57
Z = float(stats.norm.isf(ALPHA_PER_ASSERTION / 2))


def _unprivileged_prefix() -> list[str]:
    """The command prefix under which file permissions apply (skips where none can be made).

    As root every file may be written: the prefix drops that capability with ``setpriv``.
    """
    if not hasattr(os, "geteuid"):
        pytest.skip("no user ids here")
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root, and no setpriv to drop the right to write any file")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all"]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("root, and setpriv may not drop capabilities here")
    return prefix


@pytest.fixture
def in_read_only_folder() -> Callable[[Path, list[str]], subprocess.CompletedProcess[str]]:
    """Return ``run(folder, argv)``: `argv` run where file permissions apply, `folder` read-only.

    The folder is made writable again afterwards; the output is captured as text.
    """
    prefix = _unprivileged_prefix()

    def run(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
        folder.chmod(0o555)
        try:
            return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=300)
        finally:
            folder.chmod(0o755)

    return run
