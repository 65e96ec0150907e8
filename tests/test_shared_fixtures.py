"""The shared fixtures are the files their list records (tests/shared-fixtures.sha256, scripts/shared_fixtures.py):
a contributor's copy of ../shared can be checked, file by file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from script_modules import load_script

shared_fixtures = load_script("scripts/shared_fixtures.py")


def test_the_folder_matches_its_list(data_dir: Path) -> None:
    assert shared_fixtures.differences(data_dir.parent) == []


def test_a_changed_or_missing_file_is_named(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "shared"
    for name in shared_fixtures.FOLDERS:
        shutil.copytree(data_dir.parent / name, copy / name)
    (copy / "score2" / "README.md").write_text("edited\n")
    (copy / "data" / "ludb" / "LICENSE.txt").unlink()
    (copy / "data" / "extra.csv").write_text("x\n")
    assert shared_fixtures.differences(copy) == [
        "missing: data/ludb/LICENSE.txt",
        "not in the list: data/extra.csv",
        "differs: score2/README.md",
    ]
    monkeypatch.setenv("CLEF_SDK_SHARED", str(copy))
    assert shared_fixtures.main(["--check"]) == 1
