"""The layout rules of STYLE.md, checked on the source: imports run one way, privates stay home.

Every module of ``nes_asktell/`` and ``integrations/`` (installed as ``nes_asktell.integrations``)
is parsed; every import counts, at module level, inside functions and under ``TYPE_CHECKING``
alike. The package must form no import cycle, import none of its own modules inside a function,
and no module may read an underscore attribute that only another of its modules defines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import nes_asktell

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> installed package name (pyproject's package-dir mapping)
PACKAGES = {ROOT / "nes_asktell": "nes_asktell", ROOT / "integrations": "nes_asktell.integrations"}
#: private attributes of other libraries that one module is allowed to read, and why
FOREIGN = {
    # Optuna's internals are reached from one module only: its storage API through the study
    # and trial objects (`_backend`: the RDBStorage behind Optuna's cache, whose heartbeat table
    # it reads), a study's thread-local flag of study.optimize and a distribution's own check
    # of a value (`_contains`), each read with getattr and a fallback.
    "nes_asktell.integrations.optuna._storage": {
        "_storage",
        "_trial_id",
        "_study_id",
        "_backend",
        "_thread_local",
        "_contains",
    },
}


def modules() -> dict[str, Path]:
    out = {}
    for folder, name in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([name, *parts])] = path
    return out


MODULES = modules()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement of `module` loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    base = module if is_package(module) else module.rsplit(".", 1)[0]
    for _ in range(max(node.level - 1, 0)):
        base = base.rsplit(".", 1)[0]
    target = base if node.level else ""
    if node.module:
        target = f"{target}.{node.module}" if target else node.module
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in MODULES:
            out.append(sub)  # `from package import module`
        elif target in MODULES:
            out.append(target)
    return out


def imports() -> dict[str, list[tuple[str, bool]]]:
    """module -> [(imported package module, whether the import sits inside a function)]."""
    graph: dict[str, list[tuple[str, bool]]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        inner = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(fn)
        }
        graph[name] = [
            (target, id(node) in inner)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in resolve(name, node)
        ]
    return graph


GRAPH = imports()


def test_the_parser_sees_the_layout() -> None:
    # a guard for the checks below: they must see the modules and their imports
    assert "nes_asktell._strategy" in MODULES
    assert "nes_asktell.integrations.optuna._sampler" in MODULES
    assert ("nes_asktell._strategy", False) in GRAPH["nes_asktell._xnes"]
    assert ("nes_asktell._validate", False) in GRAPH["nes_asktell.integrations.scipy"]


def test_no_import_cycle() -> None:
    edges = {m: sorted({t for t, _ in targets if t != m}) for m, targets in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                cycle = [*path[path.index(t) :], t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_no_function_level_import_of_the_package() -> None:
    inner = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() for t, fn in ts if fn)
    assert inner == []


def defined_privates(tree: ast.Module) -> set[str]:
    """Underscore names a module defines: attributes it assigns, functions, classes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, (ast.AnnAssign, ast.Assign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Name):
                    out.add(t.id)
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def literal_private(call: ast.Call) -> str | None:
    """The underscore name that ``getattr(obj, "_name")`` (or hasattr) reads, else None."""
    func = call.func
    if not (isinstance(func, ast.Name) and func.id in ("getattr", "hasattr")):
        return None
    if len(call.args) < 2 or not isinstance(call.args[1], ast.Constant):
        return None
    attr = call.args[1].value
    if isinstance(attr, str) and attr.startswith("_") and not attr.startswith("__"):
        return attr
    return None


def test_literal_private_sees_getattr_with_an_underscore_name() -> None:
    def call(src: str) -> ast.Call:
        node = ast.parse(src, mode="eval").body
        assert isinstance(node, ast.Call)
        return node

    assert literal_private(call('getattr(pool, "_max_workers", 0)')) == "_max_workers"
    assert literal_private(call('hasattr(pool, "_processes")')) == "_processes"
    assert literal_private(call('getattr(fun, "__name__")')) is None
    assert literal_private(call('getattr(ex, "num_workers", None)')) is None


def test_no_module_reads_another_modules_private_attributes() -> None:
    # A class reaches its own members through self or cls (a strategy uses the hooks and
    # helpers of its base class so); any other object's underscore attribute must be one the
    # reading module defines itself.
    bad = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        own = defined_privates(tree) | FOREIGN.get(name, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and literal_private(node) not in own | {None}:
                bad.append(f"{name}:{node.lineno} reads {ast.unparse(node)}")
                continue
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__") or attr in own:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            bad.append(f"{name}:{node.lineno} reads {ast.unparse(node)}")
    assert bad == []


def test_the_api_reference_lists_every_public_name() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    api = (docs / "api.rst").read_text()
    summary = api.split(".. autosummary::", 1)[1].split("\n\n", 2)[1]
    listed = {line.strip() for line in summary.splitlines()}
    public = set(nes_asktell.__all__) - {"__version__"}
    assert listed == public
    assert "``__version__``" in api
    documented = set()
    for page in docs.rglob("*.rst"):
        documented |= set(
            re.findall(r"\.\. auto(?:class|function):: (?:nes_asktell\.)?(\w+)", page.read_text())
        )
    assert public <= documented


def layout_order() -> list[str]:
    """The modules of CONTRIBUTING.md's layout, top first (a subpackage stands for its modules)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("## The layout", 1)[1].split("```\n", 2)[1]
    entries = [line.split()[0] for line in block.splitlines() if line and not line[0].isspace()]
    names = []
    for entry in entries:
        folder, _, rest = entry.partition("/")
        package = PACKAGES[ROOT / folder]
        parts = [p for p in rest.removesuffix(".py").split("/") if p and p != "__init__"]
        names.append(".".join([package, *parts]))
    return names


def test_imports_run_down_the_layout_of_contributing() -> None:
    order = layout_order()

    def place(module: str) -> int:
        if module in order:
            return order.index(module)
        # a module of a subpackage listed whole (not of the top package, listed module by module)
        holders = [n for n in order if n != "nes_asktell" and module.startswith(n + ".")]
        assert holders, f"{module} is missing from CONTRIBUTING.md's layout"
        return order.index(max(holders, key=len))

    for module, targets in GRAPH.items():
        if module == "nes_asktell.integrations":  # the namespace of the integrations
            continue
        for target, _ in targets:
            if place(target) != place(module):
                assert place(target) > place(module), f"{module} imports {target}, above it"
