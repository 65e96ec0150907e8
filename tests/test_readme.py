"""The README's Python snippets run as written (the named small model is served by the local Hub server)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def python_snippets(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_python_snippets_run(installed_small) -> None:
    snippets = python_snippets(REPO / "README.md")
    assert snippets, "the README has Python snippets"
    namespace: dict[str, object] = {}
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["embedding"].shape == (256,) and namespace["embedding"].dtype == np.float32
    assert namespace["windows"].shape == (6, 256)
    assert namespace["batch"].shape == (2, 256)
    np.testing.assert_allclose(namespace["batch"][1], namespace["embedding"], rtol=1e-5, atol=1e-6)
