"""How the suite meets a contributor: a run keeps only failed tests' temporary folders, and skips are grouped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_passing_run_leaves_no_temporary_folders(tmp_path: Path) -> None:
    """The suite's own settings (pyproject.toml) on two tests that each write 1 MB into tmp_path: the passing
    one's folder is gone after the run, the failing one's is kept for inspection."""
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_sizes.py").write_text(
        "def test_passes(tmp_path):\n    (tmp_path / 'big').write_bytes(b'x' * 2**20)\n\n"
        "def test_fails(tmp_path):\n    (tmp_path / 'big').write_bytes(b'x' * 2**20)\n    assert False\n"
    )
    temproot = tmp_path / "temproot"
    temproot.mkdir()
    env = {**os.environ, "PYTEST_DEBUG_TEMPROOT": str(temproot)}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-c", str(REPO / "pyproject.toml"),
         "--rootdir", str(tests), str(tests)],
        capture_output=True, text=True, env=env, cwd=tests, timeout=120,
    )  # fmt: skip
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr
    kept = sorted(p.name for p in temproot.rglob("test_*") if p.is_dir() and not p.is_symlink())
    assert kept == ["test_fails0"], kept


def test_a_bare_clone_gets_one_line_for_the_tests_that_need_the_shared_folder(tmp_path: Path) -> None:
    env = {**os.environ, "CLEF_SDK_SHARED": str(tmp_path / "absent")}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "tests/test_files.py"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "skipped" in line.lower()]
    assert (
        lines[0] == "3 skipped: the shared fixtures folder is absent: set CLEF_SDK_SHARED to the shared fixtures "
        "folder (conformance/, data/) to run this test (docs/development.md says where they come from)"
    ), lines
    assert "SKIPPED" not in done.stdout  # no line per test
