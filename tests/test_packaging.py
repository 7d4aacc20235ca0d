"""The package as users get it: a wheel, installed, type-checked from a user's script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, installed into a folder of its own (not the editable one)."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp / "dist"),
        str(ROOT),
    ]
    subprocess.run(build, check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("nes_asktell-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True
    )
    return tmp / "site"


def mypy(site: Path, tmp: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp / "user_script.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
    )


@pytest.mark.slow
def test_the_wheel_holds_every_module(installed: Path) -> None:
    pkg = installed / "nes_asktell"
    for rel in (
        "py.typed",
        "data/seed_trace.txt",
        "integrations/scipy.py",
        "integrations/optuna/_sampler.py",
    ):
        assert (pkg / rel).is_file(), rel


@pytest.mark.slow
def test_mypy_strict_accepts_a_correct_user_script(installed: Path, tmp_path: Path) -> None:
    out = mypy(
        installed,
        tmp_path,
        """
        import numpy as np
        from scipy.optimize import minimize

        from nes_asktell import IPOP, XNES, NESSampler, nes

        def sphere(x: np.ndarray) -> float:
            return float(x @ x)

        sampler = NESSampler(seed=0)
        es = XNES(np.zeros(3), sigma0=0.5, rng=0, maxfev=100)
        res = es.optimize(sphere)
        opt = IPOP("snes", [0.0, 1.0], 0.3, bounds=[(-1.0, 1.0), (None, 2.0)])
        res2 = minimize(sphere, np.zeros(2), method=nes, options={"maxfev": 100})
        """,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_mypy_strict_flags_wrong_argument_types(installed: Path, tmp_path: Path) -> None:
    out = mypy(
        installed,
        tmp_path,
        """
        from nes_asktell import XNES, NESSampler

        XNES("a", sigma0="b")
        NESSampler(seed="zero")
        """,
    )
    assert out.returncode == 1
    assert (
        'Argument "sigma0" to "XNES" has incompatible type "str"; expected "float | ' in out.stdout
    )
    assert 'Argument "seed" to "NESSampler" has incompatible type "str"' in out.stdout


def test_mypy_checks_the_oldest_python_the_package_supports() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["requires-python"] == f">={meta['tool']['mypy']['python_version']}"
    assert meta["tool"]["ruff"]["target-version"] == "py" + meta["tool"]["mypy"][
        "python_version"
    ].replace(".", "")


def test_the_quickstart_names_every_extra() -> None:
    import re
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    text = (ROOT / "docs" / "quickstart.rst").read_text()
    sentence = " ".join(text.split("The extras: ", 1)[1].split(". A feature", 1)[0].split())
    named = set(re.findall(r"``(\w+)``", sentence))
    assert named == set(extras)
