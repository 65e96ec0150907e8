"""docs/cli.md holds the reference the ``clef`` parser generates (committed, so that it reads on GitHub too)."""

from __future__ import annotations

from pathlib import Path

from script_modules import load_script

cli_reference = load_script("scripts/cli_reference.py")


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
