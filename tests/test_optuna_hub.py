"""The registry package folder ``optunahub/samplers/nes_sampler``, loaded as the registry would."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import mdformat
import pytest

optuna = pytest.importorskip("optuna")
optunahub = pytest.importorskip("optunahub")

from nes_asktell import NESSampler  # noqa: E402

REGISTRY = Path(__file__).resolve().parent.parent / "optunahub"
PACKAGE = "samplers/nes_sampler"
FOLDER = REGISTRY / PACKAGE


def test_the_package_has_the_registry_layout() -> None:
    names = {p.name for p in FOLDER.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert {"__init__.py", "README.md", "LICENSE", "requirements.txt", "example.py"} <= names
    readme = (FOLDER / "README.md").read_text()
    match = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match is not None
    front = dict(line.split(": ", 1) for line in match.group(1).splitlines())
    assert set(front) == {"author", "title", "description", "tags", "optuna_versions", "license"}
    assert "sampler" in front["tags"]  # a package under samplers/ must carry the tag
    assert optuna.__version__ in front["optuna_versions"]
    # The registry's template: Abstract, APIs and Example, with Installation and Others where
    # there is something to say, in that order (the README had "Class or Function Names", the
    # heading of an older template, where the APIs documentation belongs).
    headings = re.findall(r"^## (.*)$", readme, re.MULTILINE)
    assert headings == ["Abstract", "APIs", "Installation", "Example", "Others"]
    assert "nes_asktell" in (FOLDER / "requirements.txt").read_text()


def test_the_readme_is_as_the_registry_formats_it() -> None:
    # The registry's checks run mdformat (with mdformat-myst) on every package README and fail
    # on any change; the README had a code span broken across two lines, which mdformat joins.
    readme = (FOLDER / "README.md").read_text()
    assert mdformat.text(readme, extensions={"myst"}) == readme


def test_the_readme_apis_document_the_signature_and_every_argument() -> None:
    readme = (FOLDER / "README.md").read_text()
    apis = readme.split("## APIs\n", 1)[1].split("\n## ", 1)[0]
    (signature,) = re.findall(r"^- `NESSampler(\(.*\))`$", apis, re.MULTILINE)
    parameters = inspect.signature(NESSampler).parameters.values()
    written = ", ".join(f"{p.name}: {p.annotation} = {p.default!r}" for p in parameters)
    assert signature == f"(*, {written})"  # the annotations are strings (postponed evaluation)
    described = re.findall(r"^  - `(\w+)`: \S", apis, re.MULTILINE)
    assert described == [p.name for p in parameters]


def test_load_local_module_gives_the_sampler_and_runs_a_study() -> None:
    module = optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY))
    assert module.NESSampler is NESSampler
    study = optuna.create_study(sampler=module.NESSampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=40)
    assert study.best_value < 1e-2


def test_the_example_runs_as_is_from_any_folder(tmp_path: Path) -> None:
    # The example ran only once the package was published: it called optunahub.load_module,
    # which fetches the registry over the network, so run as-is it died in a git fetch error.
    proc = subprocess.run(
        [sys.executable, str(FOLDER / "example.py")],
        cwd=tmp_path,  # not the repository's top folder
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    best = float(proc.stdout.split()[-1])
    assert best < 0.05


def test_the_readme_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def local(package: str, **kwargs: object) -> object:
        return optunahub.load_local_module(package=package, registry_root=str(REGISTRY))

    readme = (FOLDER / "README.md").read_text()
    (snippet,) = re.findall(r"## Example\n\n```python\n(.*?)```", readme, re.DOTALL)
    monkeypatch.setattr(optunahub, "load_module", local)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    study = namespace["study"]
    assert isinstance(study, optuna.Study)
    assert len(study.trials) == 200
    assert study.best_value < 0.05
