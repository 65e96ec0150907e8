"""The house rules of the package layout (docs/development.md), checked on the source: private names stay in
their module, only weights/network.py opens connections, every module says what it is for and what it offers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clef_sdk"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "_bandpass_constants.py")
NETWORK_MODULES = {"socket", "urllib.request", "http.client", "requests", "httpx"}
NETWORK_NAMES = {"hf_hub_download", "HfApi", "create_connection", "urlopen"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    private = [
        f"from {'.' * node.level}{node.module or ''} import {alias.name}"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("clef_sdk"))
        for alias in node.names
        if alias.name.startswith("_")
        and alias.name != "__version__"
        and not (node.module is None and (path.parent / f"{alias.name}.py").is_file())  # a private module itself
    ]
    assert private == []


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_only_the_network_module_opens_connections(path: Path) -> None:
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & NETWORK_MODULES
        elif isinstance(node, ast.ImportFrom):
            found |= {node.module} & NETWORK_MODULES if node.module else set()
            found |= {alias.name for alias in node.names} & NETWORK_NAMES
    if _name(path) == "clef_sdk.weights.network":
        assert found  # the test would pass vacuously if the names above went stale
    else:
        assert found == set(), "network access belongs in clef_sdk/weights/network.py"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_every_module_has_a_docstring_and_all(path: Path) -> None:
    tree = _tree(path)
    assert ast.get_docstring(tree), "say in one line what the module is for"
    if path.name in ("__main__.py", "_version.py"):
        return
    names = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    assert "__all__" in names, "__all__ says what the module offers"


def test_the_core_never_imports_train() -> None:
    core = [p for p in MODULES if "train" not in p.relative_to(PACKAGE).parts and p.name != "cli.py"]
    offenders = [
        _name(path)
        for path in core
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom)
        and ("train" in (node.module or "").split(".") or (node.module or "").startswith("lightning"))
    ]
    assert offenders == []


def test_names_imported_across_modules_are_in_their_all() -> None:
    """What a module offers is what its ``__all__`` says: any name another module imports from it is listed."""
    import importlib

    missing = []
    for path in MODULES:
        package = _name(path) if path.name == "__init__.py" else _name(path).rsplit(".", 1)[0]
        package = package.removesuffix(".__init__")
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.ImportFrom) or not node.level or node.module is None:
                continue
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = importlib.import_module(f"{base}.{node.module}")
            offered = getattr(target, "__all__", None)
            if offered is None:
                continue  # a private module of helpers (_version, _bandpass_constants)
            missing += [f"{_name(path)}: {node.module}.{a.name}" for a in node.names if a.name not in offered]
    assert missing == []
