"""The signatures the README and the docs show are the code's: every parameter named exists, with the default
shown, and a signature shown without "..." lists every parameter (checked against inspect.signature)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import clef_sdk as clef

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `clef.NAME(PARAMETERS)` at the start of a table cell: the reference rows
DOCUMENTED = re.compile(r"^\| `clef\.(\w+)\((.*?)\)`", re.MULTILINE)


def documented_signatures() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for match in DOCUMENTED.finditer(page.read_text()):
            found.append((page.relative_to(REPO).as_posix(), match.group(1), match.group(2)))
    return found


def parse(parameters: str) -> tuple[list[str], dict[str, object], bool]:
    """(names, literal defaults, whether the list is marked partial with "...") of a documented parameter list."""
    partial = bool(re.search(r"(^|,)\s*\.\.\.\s*(,|$)", parameters))
    text = re.sub(r"(^|,)\s*\.\.\.\s*(?=,|$)", r"\1", parameters).strip(", ")
    function = ast.parse(f"def f({text}): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    defaults: dict[str, object] = {}
    positional = arguments.posonlyargs + arguments.args
    for argument, default in zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults):
        defaults[argument.arg] = default
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        if default is not None:
            defaults[argument.arg] = default
    literal = {}
    for name, node in defaults.items():
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            continue  # "model=..." shows the parameter, not its default
        literal[name] = ast.literal_eval(node)
    return names, literal, partial


SIGNATURES = documented_signatures()


def test_the_reference_rows_are_found() -> None:
    names = {name for _, name, _ in SIGNATURES}
    assert {"embed", "load", "signal_quality", "fit_probe", "preprocess"} <= names, names


@pytest.mark.parametrize(("page", "name", "parameters"), SIGNATURES, ids=[f"{p}:{n}" for p, n, _ in SIGNATURES])
def test_documented_signature_is_the_codes(page: str, name: str, parameters: str) -> None:
    actual = inspect.signature(getattr(clef, name)).parameters
    names, defaults, partial = parse(parameters)
    unknown = [n for n in names if n not in actual]
    assert not unknown, f"{page} shows clef.{name}({parameters}) with parameters the code lacks: {unknown}"
    for parameter, default in defaults.items():
        assert actual[parameter].default == default, (
            f"{page}: clef.{name}'s {parameter} defaults to {actual[parameter].default!r}, documented {default!r}"
        )
    if not partial:
        missing = [n for n, p in actual.items() if n not in names and p.kind is not p.VAR_KEYWORD]
        assert not missing, f"{page} shows clef.{name}(...) without {missing}: add them, or end the list with ..."
