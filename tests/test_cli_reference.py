"""docs/cli.md holds the reference the ``clef`` parser generates (committed, so that it reads on GitHub too)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("cli_reference", REPO / "scripts" / "cli_reference.py")
assert spec is not None and spec.loader is not None
cli_reference = importlib.util.module_from_spec(spec)
sys.modules["cli_reference"] = cli_reference
spec.loader.exec_module(cli_reference)


def test_the_committed_reference_is_current() -> None:
    page = cli_reference.PAGE.read_text()
    assert page == cli_reference.page_with_reference(page), (
        "docs/cli.md is not current: python scripts/cli_reference.py"
    )
    assert "## `clef download`" in page and "--from PATH" in page  # generated, not empty


def test_a_stale_reference_is_found(monkeypatch, tmp_path: Path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(cli_reference.PAGE.read_text().replace("--from PATH", "--from FILE"))
    monkeypatch.setattr(cli_reference, "PAGE", stale)
    assert cli_reference.main(["--check"]) == 1
    assert cli_reference.main([]) == 0 and cli_reference.main(["--check"]) == 0
