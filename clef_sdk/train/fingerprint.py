"""What a pretraining store is made from: a fingerprint of its source records, and the changes between two.

A finished store and an unfinished job record the fingerprint of the records they were made from; a rerun compares
it with the source as it is now, so a changed source is refused with the records named instead of being mixed with
the old windows or returned as the stale store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "FINGERPRINT_FILE",
    "FINGERPRINT_FORMAT",
    "Fingerprint",
    "fingerprint_records",
    "fingerprint_sha256",
    "job_changes",
    "read_fingerprint",
    "record_changes",
    "setting_changes",
    "store_changes",
]

FINGERPRINT_FILE = "fingerprint.json"
FINGERPRINT_FORMAT = "clef-sdk/pretraining-source-fingerprint"
_HEADER_PARSE_BYTES = 1 << 20  # a header's first MiB is searched for signal file names (all of it is hashed)
_MAX_SIGNAL_FILES = 256  # distinct names per header: a garbage .hea cannot make it stat thousands of files
_NAMED = 5  # records named per kind of change in an error message

# Fingerprint: record key -> [header sha256 (first 32 hex digits), [[signal file, size, mtime_ns], ...]]
Fingerprint = dict[str, list[Any]]


def _signal_file_names(header_text: str) -> list[str]:
    """The files a WFDB header names: the first field of each line after the record line (comments skipped).
    For a multi-segment header these are segment names, which are records of their own and so fingerprinted
    under their own keys; a name that is no file is kept with no size, so a file appearing later counts too."""
    lines = [line.split() for line in header_text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    names: list[str] = []
    for fields in lines[1:]:
        if fields[0] != "~" and fields[0] not in names:
            names.append(fields[0])
            if len(names) == _MAX_SIGNAL_FILES:
                break
    return names


def _recordfingerprint_records(source: Path, record: str) -> list[Any]:
    """``[header sha256 (32 hex digits), [[signal file, size, mtime_ns], ...]]`` of one record (see
    `fingerprint_records`)."""
    header = source / f"{record}.hea"
    digest = hashlib.sha256()
    try:
        with open(header, "rb") as handle:
            head = handle.read(_HEADER_PARSE_BYTES)
            digest.update(head)
            while chunk := handle.read(_HEADER_PARSE_BYTES):
                digest.update(chunk)
    except OSError as exc:
        return [f"unreadable: {type(exc).__name__}", []]
    files: list[list[Any]] = []
    for name in _signal_file_names(head.decode("latin-1")):
        try:
            stat = os.stat(header.parent / name)
        except (OSError, ValueError):
            files.append([name, None, None])
        else:
            files.append([name, stat.st_size, stat.st_mtime_ns])
    return [digest.hexdigest()[:32], files]


def fingerprint_records(source: Path, records: Sequence[str]) -> Fingerprint:
    """What the store is made from, record by record: the key (path relative to ``source``), the sha256 of the
    header, and the size and modification time (ns) of each signal file the header names (links followed).

    The header is hashed because it is small (about 1 KB: as cheap to read as to stat) and holds what a change
    of the record touches: the sampling rate, gains, demographics and, when written by WFDB tools, a checksum of
    each signal's samples; a hash sees an edit of the same size whose modification time was put back (``cp -p``,
    ``rsync -a``, an archive's extraction). Signal files are not read (MIMIC-IV-ECG's are ~90 GB: hashing them
    would cost more than a rerun should): their size and modification time are the quick check ``make`` and
    ``rsync`` use, so a rewritten file counts as modified even with the same bytes (a false alarm, never a stale
    store). One open and read per header and one ``stat`` per signal file.
    """
    return {record: _recordfingerprint_records(source, record) for record in records}


def fingerprint_sha256(fingerprint: Fingerprint) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return f"{shown} and {len(names) - _NAMED} more" if len(names) > _NAMED else shown


def _what_changed(old: Any, new: list[Any]) -> list[str]:
    """``["header", "3.dat"]``: the parts of a record's fingerprint entry that differ (``old`` may be malformed:
    it comes from a file)."""
    try:
        old_files = {f[0]: f for f in old[1]}
        what = ["header"] if old[0] != new[0] else []
    except (TypeError, IndexError, KeyError):
        return ["fingerprint"]
    new_files = {f[0]: f for f in new[1]}
    return what + [
        name for name in sorted(old_files.keys() | new_files.keys()) if old_files.get(name) != new_files.get(name)
    ]


def record_changes(old: Fingerprint, new: Fingerprint) -> list[str]:
    """``["2 record(s) added: a, b", "1 record(s) removed: c", "1 record(s) modified: d (header, d.dat)"]``."""
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    modified = []
    for record in sorted(new.keys() & old.keys()):
        if old[record] == new[record]:
            continue
        modified.append(f"{record} ({', '.join(_what_changed(old[record], new[record]))})")
    changes = [
        f"{len(keys)} record(s) {kind}: {_few(keys)}" for kind, keys in (("added", added), ("removed", removed)) if keys
    ]
    if modified:
        changes.append(
            f"{len(modified)} record(s) modified: {_few(modified)}, where modified means that the header's content "
            "or a signal file's size or modification time changed"
        )
    return changes


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    return ",".join(map(str, value)) if isinstance(value, list) else repr(value)


def setting_changes(old: dict[str, Any], new: dict[str, Any], skip: Sequence[str] = ()) -> list[str]:
    keys = [*new, *(k for k in old if k not in new)]
    return [
        f"{key} was {_show(old.get(key))}, now {_show(new.get(key))}"
        for key in keys
        if key not in skip and old.get(key) != new.get(key)
    ]


def read_fingerprint(store_path: Path, sha256: str) -> Fingerprint | None:
    """The store's fingerprint.json if it is the one store.json names (its sha256), else None."""
    try:
        content = json.loads((store_path / FINGERPRINT_FILE).read_text())
        records = content["records"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(records, dict) or content.get("sha256") != sha256 or fingerprint_sha256(records) != sha256:
        return None
    return records


def store_changes(
    stored: dict[str, Any], summary: dict[str, Any], store_path: Path, fingerprint: Fingerprint
) -> list[str]:
    """What differs between a finished store's ``job`` summary and the one of this run."""
    changes = setting_changes(stored, summary, skip=("n_records", "metadata_sha256", "source_fingerprint"))
    if (
        "metadata_sha256" in stored
        and summary["metadata"] is not None
        and stored.get("metadata") == summary["metadata"]
        and stored["metadata_sha256"] != summary["metadata_sha256"]
    ):
        changes.append(f"the metadata CSV {summary['metadata']} changed (another sha256)")
    if "source_fingerprint" not in stored:
        changes.append(
            "the store has no fingerprint of its source records (made by an older clef_sdk), so prepare cannot tell "
            "whether the records changed"
        )
    elif stored["source_fingerprint"] != summary["source_fingerprint"]:
        old = read_fingerprint(store_path, stored["source_fingerprint"])
        changes += (
            record_changes(old, fingerprint)
            if old is not None
            else [f"the source records changed (their list, {store_path / FINGERPRINT_FILE}, is missing or damaged)"]
        )
    return changes or ["the store's summary of its inputs differs"]


def job_changes(saved: Any, state: dict[str, Any]) -> list[str]:
    """What differs between an unfinished job's file and the state of this run."""
    if not isinstance(saved, dict) or not isinstance(saved.get("job"), dict):
        return ["the job file is unreadable"]
    options: dict[str, Any] = saved["options"] if isinstance(saved.get("options"), dict) else {}
    changes = setting_changes({**saved["job"], **options}, {**state["job"], **state["options"]}, skip=("records",))
    if isinstance(saved.get("fingerprint"), dict):
        changes += record_changes(saved["fingerprint"], state["fingerprint"])
    else:
        changes.append(
            "the job file has no fingerprint of its records (started by an older clef_sdk), so prepare cannot tell "
            "whether they changed"
        )
    return changes or ["the job file differs"]
