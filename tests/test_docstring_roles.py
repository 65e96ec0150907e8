"""Docstrings use the cross-reference syntax mkdocstrings renders (``[`X`][clef_sdk.module.X]`` or ```X```), not
Sphinx roles, which the site showed as raw text (the docs build fails on one too: docs/hooks.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from script_modules import load_script

REPO = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`[^`]+`")


def test_no_sphinx_role_is_left_in_the_package() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted((REPO / "clef_sdk").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ROLE.search(line)
    ]
    assert not found, "\n".join(found[:20])


def test_the_docs_build_refuses_a_role() -> None:
    pytest.importorskip("mkdocs", reason="the docs extra (CI installs it to build the site, which runs this hook)")
    hooks = load_script("docs/hooks.py")
    page = type("Page", (), {"file": type("File", (), {"src_path": "api.md"})()})()
    assert hooks.on_page_content("<code>clef_sdk.embed</code>", page, None, None).startswith("<code>")
    try:
        hooks.on_page_content("takes a :class:`WfdbSignal` or an array", page, None, None)
    except Exception as exc:  # mkdocs' PluginError
        assert ":class:`WfdbSignal`" in str(exc)
    else:
        raise AssertionError("a leftover role passed")
