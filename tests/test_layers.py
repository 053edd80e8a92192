"""The package's layers: imports point one way (scenario -> negotiation -> outputs -> experiments
-> interfaces) and no module imports itself back through others. Every import counts, also those
inside functions, except imports under `if TYPE_CHECKING:` (they never run)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "model"
LAYERS = ("scenario", "negotiation", "outputs", "experiments", "interfaces")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST):
    """Every import node, skipping the bodies of `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            yield from (n for child in node.orelse for n in _imports_of(child))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST):
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _imports(node)


def imported_modules(path: Path) -> set[str]:
    """The `model` modules that the file at `path` imports (relative imports resolved)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            root = ".".join([*base, *([node.module] if node.module else [])])
            # `from pkg import name` imports the submodule pkg.name when there is one
            names = [root] + [f"{root}.{a.name}" for a in node.names]
        found |= {n for n in names if n == "model" or n.startswith("model.")}
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {n for n in found if n in known and n != me}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def graph() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_sits_in_a_layer():
    assert {p.relative_to(PACKAGE).parts[0] for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE} <= set(LAYERS)
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]


def test_imports_point_down_the_layers():
    against = [f"{importer} imports {imported}" for importer, deps in graph().items() for imported in deps
               if layer(imported) > layer(importer)]
    assert not against, "imports against the layer order:\n" + "\n".join(sorted(against))


def test_no_import_cycles():
    try:
        tuple(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_checker_sees_local_and_relative_imports(tmp_path, monkeypatch):
    """The walker itself: a function-local relative import counts, a TYPE_CHECKING one does not."""
    fake = tmp_path / "model"
    (fake / "outputs").mkdir(parents=True)
    (fake / "experiments").mkdir()
    for name in ("__init__.py", "outputs/__init__.py", "experiments/__init__.py", "experiments/store.py"):
        (fake / name).write_text("")
    (fake / "outputs" / "plots.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..experiments import store\n"
        "def f():\n    from ..experiments.store import OutputFolder\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert imported_modules(fake / "outputs" / "plots.py") == {"model.experiments.store"}
    with pytest.raises(AssertionError, match="model.outputs.plots imports model.experiments.store"):
        test_imports_point_down_the_layers()
    (fake / "experiments" / "store.py").write_text("from . import sweep\n")
    (fake / "experiments" / "sweep.py").write_text("from .store import x\n")
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()


def test_every_package_is_installed():
    """`pip install .` installs the packages pyproject.toml lists: a subpackage missing there would
    be absent from an installed copy (the editable install used in development would hide it)."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
