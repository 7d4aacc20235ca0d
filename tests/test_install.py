"""Installing: a wheel that builds without a warning, installs, imports, and says what is missing.

The wheel is built from a copy of the package's files in a temporary folder, so the checkout
gets no build folders; it is installed with ``--no-deps --target`` and imported with the
project's own numpy and scipy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = ("nes_asktell", "integrations", "pyproject.toml", "README.md", "LICENSE")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


@pytest.fixture(scope="module")
def wheel_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    src.mkdir()
    for name in FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp / "dist").glob("nes_asktell-*.whl")
    return wheel, out.stdout + out.stderr


@pytest.mark.slow
def test_building_the_wheel_prints_no_warning(wheel_build: tuple[Path, str]) -> None:
    _, output = wheel_build
    assert "warning" not in output.lower(), output


@pytest.mark.slow
def test_the_installed_wheel_imports_and_runs(
    wheel_build: tuple[Path, str], tmp_path: Path
) -> None:
    wheel, _ = wheel_build
    site = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    assert (site / "nes_asktell" / "data" / "seed_trace.txt").is_file()
    (license_file,) = site.glob("nes_asktell-*.dist-info/licenses/LICENSE")
    assert license_file.read_text().startswith("MIT License")
    code = textwrap.dedent(
        """
        import numpy as np
        import nes_asktell
        from nes_asktell import XNES, History
        print(nes_asktell.__file__)
        h = History()
        XNES(np.ones(2), 0.5, rng=0).optimize(lambda x: float(x @ x), maxiter=3, callback=h)
        print(len(h))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split()
    assert Path(first).is_relative_to(site)  # the wheel's copy, not the checkout
    assert second == "3"


def test_license_is_an_spdx_string_with_its_file() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "nes_asktell developers" in (ROOT / "LICENSE").read_text()
    assert "nes_asktell.data" in meta["tool"]["setuptools"]["packages"]
    assert set(meta["project"]["optional-dependencies"]) >= {"optuna", "plot", "progress"}


BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Block())
"""


def without(blocked: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter where `blocked` cannot be imported."""
    script = BLOCKER.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_nessampler_without_optuna_says_which_extra_to_install() -> None:
    out = without(
        "optuna",
        """
        try:
            from nes_asktell import NESSampler
        except ImportError as exc:
            print(type(exc).__name__, "|", exc, "|", type(exc.__cause__).__name__)
        """,
    )
    assert out.returncode == 0, out.stderr
    kind, message, cause = (s.strip() for s in out.stdout.split("|"))
    assert kind == "ImportError"
    assert "pip install 'nes_asktell[optuna]'" in message
    assert cause == "ModuleNotFoundError"


def test_a_star_import_works_with_and_without_optuna() -> None:
    # NESSampler was in __all__ whatever was installed, so `from nes_asktell import *`
    # failed on the core install (numpy and scipy only)
    code = """
        from nes_asktell import *
        print(XNES.__name__, "NESSampler" in dir())
        """
    out = without("optuna", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["XNES", "False"]
    out = without("nothing_blocked", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["XNES", "True"]


def test_mpi_optimize_without_mpi4py_says_which_extra_to_install() -> None:
    out = without(
        "mpi4py",
        """
        import numpy as np
        from nes_asktell import XNES, mpi_optimize
        try:
            mpi_optimize(XNES(np.zeros(2), 1.0), lambda x: 0.0)
        except ImportError as exc:
            print(type(exc).__name__, "|", exc)
        """,
    )
    assert out.returncode == 0, out.stderr
    kind, message = (s.strip() for s in out.stdout.split("|"))
    assert kind == "ImportError"
    assert "pip install 'nes_asktell[mpi]'" in message


def test_the_core_and_the_scipy_method_need_no_extra() -> None:
    out = without(
        "optuna",
        """
        import numpy as np
        from scipy.optimize import minimize
        from nes_asktell import XNES, nes
        print(minimize(lambda x: float(x @ x), np.ones(2), method=nes,
                       options={"rng": 0, "maxiter": 3}).nit)
        for name in ("optuna", "matplotlib", "tqdm", "dask"):
            assert name not in sys.modules, name
        """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


@pytest.mark.parametrize(
    ("blocked", "code", "extra"),
    [
        (
            "matplotlib",
            "from nes_asktell import History\nHistory().plot()",
            "plot",
        ),
        (
            "tqdm",
            "import numpy as np\nfrom nes_asktell import XNES\n"
            "XNES(np.ones(2), 0.5).optimize(sum, maxiter=1, progress=True)",
            "progress",
        ),
    ],
)
def test_each_optional_dependency_has_an_install_hint(blocked: str, code: str, extra: str) -> None:
    out = without(blocked, code)
    assert out.returncode == 1
    assert "ImportError: " in out.stderr
    assert f"pip install 'nes_asktell[{extra}]'" in out.stderr


def test_readme_says_how_to_install_before_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    install = text.index("## Install")
    assert install < text.index("make demo") < text.index("make test")
    assert 'pip install ".[optuna]"' in text
    assert "pip wheel --no-deps -w dist ." in text
    assert "The 2017 seed run is" in text
    # no relative links: they die wherever the README is shown outside the repository
    assert re.findall(r"\]\((?!https?://)[^)]*\)", text) == []
    for path in re.findall(r"`(docs/[\w/]+\.rst)`", text):
        assert (ROOT / path).is_file(), path
