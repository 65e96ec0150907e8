"""The shared fixtures folder (``../shared`` or ``$CLEF_SDK_SHARED``): every file's SHA-256, recorded in
``tests/shared-fixtures.sha256`` so that a contributor can check a copy they assembled.

    python scripts/shared_fixtures.py --check    # compare the folder with the list (exit 1 on a difference)
    python scripts/shared_fixtures.py --write    # record the folder as it is (after adding a fixture)

Each folder's README (``data/*/README.md``, ``conformance/README.md``, ``score2/README.md``) names its public
source: repository, commit and license; ``docs/development.md`` lists them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from clef_sdk.files import atomic_write_text, sha256_file

REPO = Path(__file__).resolve().parents[1]
LIST = REPO / "tests" / "shared-fixtures.sha256"
FOLDERS = ("conformance", "data", "score2")


def shared_folder() -> Path:
    return Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")


def digests(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under the fixture folders of ``folder``."""
    found = {}
    for name in FOLDERS:
        for path in sorted((folder / name).rglob("*")):
            if path.is_file():
                found[path.relative_to(folder).as_posix()] = sha256_file(path)
    return found


def recorded() -> dict[str, str]:
    lines = [line.split("  ", 1) for line in LIST.read_text().splitlines() if line.strip()]
    return {name: digest for digest, name in lines}


def differences(folder: Path) -> list[str]:
    have, want = digests(folder), recorded()
    problems = [f"missing: {name}" for name in sorted(set(want) - set(have))]
    problems += [f"not in the list: {name}" for name in sorted(set(have) - set(want))]
    problems += [f"differs: {name}" for name in sorted(set(have) & set(want)) if have[name] != want[name]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true")
    action.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    folder = shared_folder()
    if not (folder / "data").is_dir():
        print(f"{folder} holds no data/: set CLEF_SDK_SHARED to the shared fixtures folder", file=sys.stderr)
        return 1
    if args.write:
        atomic_write_text(LIST, "".join(f"{digest}  {name}\n" for name, digest in digests(folder).items()))
        print(f"wrote {LIST} ({len(recorded())} files)")
        return 0
    problems = differences(folder)
    for problem in problems:
        print(problem)
    print(f"{folder}: {'differs from' if problems else 'matches'} {LIST.name} ({len(recorded())} files)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
