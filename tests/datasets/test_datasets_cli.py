"""``clef datasets list | info | download | split`` through ``clef_sdk.cli.main``, on real LUDB recordings.

``info`` and ``split`` read a small LUDB-layout folder (eight real records and a ``ludb.csv`` of just those);
``download`` fetches it from ``physionet_server.PhysioNetServer`` on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest

from clef_sdk.cli import main
from clef_sdk.datasets.base import available_datasets
from clef_sdk.datasets.splits import read_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from physionet_server import PhysioNetServer, ludb_files, publish_project

PROJECT = "ludb/1.0.1"
RECORDS = [str(n) for n in range(1, 9)]
HAS_LUDB_READER = importlib.util.find_spec("clef_sdk.datasets.ludb") is not None
needs_ludb = pytest.mark.skipif(not HAS_LUDB_READER, reason="clef_sdk/datasets/ludb.py (the LUDB reader) is not there")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A PhysioNet files index whose ``ludb/1.0.1`` is a small LUDB: eight real records."""
    root = tmp_path_factory.mktemp("physionet")
    publish_project(root, PROJECT, ludb_files(data_dir / "ludb", RECORDS))
    return root


@pytest.fixture(scope="module")
def small_ludb(served: Path) -> Path:
    return served / PROJECT


def test_list_names_every_dataset_with_its_tasks_split_and_project(capsys):
    code, out, err = run_cli(capsys, "datasets", "list")
    assert (code, err) == (0, "")
    starts = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert starts == available_datasets()
    if HAS_LUDB_READER:
        lines = out.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("ludb "))
        assert lines[at].split(None, 1)[1] == "LUDB (Lobachevsky University Electrocardiography Database)"
        assert lines[at + 1].strip() == "tasks: af (binary), sex (binary), age (regression)"
        assert lines[at + 2].strip() == "split: pinned; download: PhysioNet ludb/1.0.1"


@needs_ludb
def test_info_counts_records_patients_splits_and_classes(capsys, small_ludb):
    import clef_sdk as clef

    code, out, err = run_cli(capsys, "datasets", "info", "ludb", str(small_ludb))
    assert (code, err) == (0, "")
    table = clef.datasets.open("ludb", small_ludb).table
    splits = table["split"].value_counts()
    assert f"records:  {len(RECORDS)} from {len(RECORDS)} patients; fs 500 Hz" in out
    assert (
        f"split (pinned): train {splits.get('train', 0)}, val {splits.get('val', 0)}, test {splits.get('test', 0)}"
        in out
    )
    csv = pd.read_csv(small_ludb / "ludb.csv", dtype=str, keep_default_na=False)  # the sexes as published
    sexes = csv["Sex"].str.strip().value_counts()
    section = out.split("sex (binary", 1)[1].split("age (regression", 1)[0]
    assert f"): {len(RECORDS)} examples" in section
    for sex in ("F", "M"):
        if sex in sexes:
            assert f"      {sex}: {sexes[sex]} (" in section
    ages = pd.to_numeric(csv["Age"].str.strip(), errors="coerce")
    assert f"range {ages.min():g} to {ages.max():g}" in out


@needs_ludb
def test_info_of_a_folder_that_is_not_the_dataset_is_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "datasets", "info", "ludb", str(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("clef: error: LUDB") and "ludb.csv not found" in err and len(err.splitlines()) == 1


@needs_ludb
def test_info_at_a_rate_the_dataset_is_not_published_at_is_an_error(capsys, small_ludb):
    code, _, err = run_cli(capsys, "datasets", "info", "ludb", str(small_ludb), "--fs", "250")
    assert code == 1 and "is published at 500 Hz, not fs=250" in err


@needs_ludb
def test_split_writes_a_file_that_read_split_reads_back(capsys, small_ludb, tmp_path):
    import clef_sdk as clef

    output = tmp_path / "ludb-split.csv"
    code, out, err = run_cli(capsys, "datasets", "split", "ludb", str(small_ludb), "-o", str(output))
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {output}: {len(RECORDS)} records (train ")
    split = read_split(output)
    table = clef.datasets.open("ludb", small_ludb).table
    assert list(split.index) == list(table["record"])
    assert list(split) == list(table["split"])


@needs_ludb
def test_download_then_info_on_what_it_fetched(capsys, served, tmp_path):
    target = tmp_path / "ludb"
    with PhysioNetServer(served) as server:
        code, out, err = run_cli(
            capsys, "datasets", "download", "ludb", str(target), "--index-url", server.index_url, "--no-progress"
        )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"LUDB (Lobachevsky University Electrocardiography Database): {target} (PhysioNet {PROJECT}, every file verified)",
        f"open it with: clef.datasets.open('ludb', {str(target)!r})",
    ]
    assert (target / ".clef-download" / "complete.json").is_file()
    code, out, _ = run_cli(capsys, "datasets", "info", "ludb", str(target))
    assert code == 0 and f"records:  {len(RECORDS)} from {len(RECORDS)} patients" in out


def test_download_with_no_server_is_one_line_and_a_nonzero_status(capsys, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/files/"
    code, out, err = run_cli(capsys, "datasets", "download", "mitdb", str(tmp_path / "m"), "--index-url", url)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"clef: error: cannot download {url}mitdb/1.0.0/SHA256SUMS.txt: ConnectionError")


def test_download_of_an_unknown_dataset_lists_the_known_ones(capsys, tmp_path):
    code, _, err = run_cli(capsys, "datasets", "download", "nosuch", str(tmp_path))
    assert code == 1
    assert err.strip() == f"clef: error: unknown dataset 'nosuch'; known: {', '.join(available_datasets())}"
