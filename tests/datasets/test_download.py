"""PhysioNet downloads (clef_sdk.datasets.download) against a real HTTP server on 127.0.0.1.

``physionet_server.PhysioNetServer`` serves real LUDB recordings laid out as PhysioNet publishes them
(``<project>/<version>/...`` with ``SHA256SUMS.txt``) and speaks HTTP as wfdb's client uses it (HEAD for sizes,
Range requests, keep-alive); its faults drop connections mid-file, serve wrong bytes or answer with an error.
Nothing in the download path is replaced: every byte travels over HTTP through wfdb.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("wfdb")
pytest.importorskip("clef_sdk.datasets.ludb", reason="the LUDB reader (ludb.py) names the project these tests serve")

import wfdb.io.download as wfdb_download

import clef_sdk.datasets.download as download_module
from clef_sdk.datasets.base import Dataset
from clef_sdk.datasets.download import (
    COMPLETE_MARKER,
    INDEX_URL_ENV,
    VERIFIED_RECORD,
    download,
    index_url_setting,
    is_complete,
    parse_checksums,
)
from clef_sdk.errors import ChecksumMismatchError, DatasetError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from physionet_server import PhysioNetServer, ludb_files, publish_project

PROJECT = "ludb/1.0.1"
RECORDS = [str(n) for n in range(1, 9)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A PhysioNet files index holding ``ludb/1.0.1`` as eight real LUDB records (120 files)."""
    root = tmp_path_factory.mktemp("physionet")
    publish_project(root, PROJECT, ludb_files(data_dir / "ludb", RECORDS))
    return root


@pytest.fixture(scope="module")
def sources(served: Path) -> dict[str, bytes]:
    """The served files by path, from the project's own SHA256SUMS.txt."""
    folder = served / PROJECT
    listed = parse_checksums((folder / "SHA256SUMS.txt").read_text())
    return {name: (folder / name).read_bytes() for name in listed}


@pytest.fixture
def server(served: Path):
    with PhysioNetServer(served) as running:
        yield running


def gets(server: PhysioNetServer, name: str | None = None) -> list[str]:
    """The file paths (below the project) of the GET requests logged, optionally only those of ``name``."""
    prefix = f"{PROJECT}/"
    found = [r.path.removeprefix(prefix) for r in server.requests if r.method == "GET"]
    return [path for path in found if name is None or path == name]


def assert_copy(directory: Path, sources: dict[str, bytes]) -> None:
    different = [name for name, data in sources.items() if (directory / name).read_bytes() != data]
    assert different == []


def closed_port_url() -> str:
    with socket.socket() as probe:  # a port that was just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/files/"


# ---------------------------------------------------------------------------------------------------- a whole project


def test_the_ludb_reader_names_the_project_served_here():
    from clef_sdk.datasets.base import reader_class

    assert reader_class("ludb").physionet == PROJECT


def test_full_download_equals_the_published_project_byte_for_byte(tmp_path, data_dir):
    """All 2805 files of LUDB 1.0.1, checked against PhysioNet's own SHA256SUMS.txt."""
    root = tmp_path / "index"
    (root / "ludb").mkdir(parents=True)
    (root / PROJECT).symlink_to(data_dir / "ludb", target_is_directory=True)
    published = parse_checksums((data_dir / "ludb" / "SHA256SUMS.txt").read_text())
    assert len(published) == 2805
    before = wfdb_download.config.db_index_url
    with PhysioNetServer(root) as server:
        result = download("ludb", tmp_path / "ludb", index_url=server.index_url, progress=False)
        requests = server.requests
    assert result == tmp_path / "ludb"
    different = [name for name in published if (result / name).read_bytes() != (data_dir / "ludb" / name).read_bytes()]
    assert different == []
    assert wfdb_download.config.db_index_url == before  # wfdb's process-wide index URL is given back
    assert sorted(r.path for r in requests if r.method == "GET") == sorted(
        [f"{PROJECT}/SHA256SUMS.txt"] + [f"{PROJECT}/{name}" for name in published]
    )
    assert [r for r in requests if r.range] == []  # nothing to resume in a fresh download
    marker = json.loads((result / COMPLETE_MARKER).read_text())
    assert (marker["project"], marker["files"]) == (PROJECT, 2805)
    assert marker["bytes"] == sum((data_dir / "ludb" / name).stat().st_size for name in published)


def test_a_rerun_of_a_complete_download_asks_nothing_of_the_network(tmp_path, server, sources, monkeypatch):
    target = tmp_path / "ludb"
    download("ludb", target, index_url=server.index_url, progress=False)
    assert_copy(target, sources)
    assert is_complete(target)
    server.clear_log()
    calls = []
    real_hash = download_module.sha256_file
    monkeypatch.setattr(download_module, "sha256_file", lambda path: calls.append(path) or real_hash(path))
    download("ludb", target, index_url=server.index_url, progress=False)
    assert server.requests == []
    assert calls == []  # the verified record spares hashing again


def test_a_missing_file_is_all_a_rerun_fetches_and_its_size_is_said_first(tmp_path, server, sources, capsys):
    target = tmp_path / "ludb"
    download("ludb", target, index_url=server.index_url, progress=False)
    (target / "data/3.dat").unlink()
    server.clear_log()
    download("ludb", target, index_url=server.index_url, progress=True)
    assert gets(server) == ["data/3.dat"]  # the list is here already (a HEAD checks its size)
    assert_copy(target, sources)
    assert is_complete(target)
    err = capsys.readouterr().err
    assert f"{len(sources)} files listed in SHA256SUMS.txt; {len(sources) - 1} already verified, 1 to check" in err
    assert f"{len(sources['data/3.dat']) / 1e3:.1f} kB" in err  # from the server's HEAD answer


# ---------------------------------------------------------------------------------------------------- interruptions


def test_a_truncated_local_file_is_resumed_with_a_range_request(tmp_path, server, sources):
    target = tmp_path / "ludb"
    (target / "data").mkdir(parents=True)
    whole = sources["data/1.dat"]
    (target / "data/1.dat").write_bytes(whole[:50_000])
    download("ludb", target, index_url=server.index_url, progress=False)
    assert_copy(target, sources)
    ranges = [r.range for r in server.requests if r.path == f"{PROJECT}/data/1.dat" and r.method == "GET"]
    assert ranges == ["bytes=50000-"]  # only the rest travelled
    assert is_complete(target)


def test_a_connection_dropped_mid_file_is_retried(tmp_path, server, sources):
    server.drop_once[f"{PROJECT}/data/2.dat"] = 30_000
    target = tmp_path / "ludb"
    download("ludb", target, index_url=server.index_url, progress=False)
    assert len(gets(server, "data/2.dat")) == 2
    assert_copy(target, sources)
    assert is_complete(target)


def test_a_connection_that_always_drops_is_a_clear_error_and_a_rerun_resumes(tmp_path, server, sources):
    server.drop_always[f"{PROJECT}/data/5.dat"] = 30_000
    target = tmp_path / "ludb"
    with pytest.raises(DatasetError) as failure:
        download("ludb", target, index_url=server.index_url, progress=False)
    message = str(failure.value)
    assert f"{PROJECT}/data/5.dat (3 attempts)" in message
    assert "run the same command again to resume" in message
    assert not is_complete(target)
    assert len(gets(server, "data/5.dat")) == 3
    record = (target / VERIFIED_RECORD).read_text().splitlines()[1:]
    verified = {line.split("\t")[3] for line in record}
    assert verified and "data/5.dat" not in verified and len(verified) < len(sources)
    assert f"{len(verified)} of {len(sources)} files are verified" in message

    server.drop_always.clear()
    server.clear_log()
    download("ludb", target, index_url=server.index_url, progress=False)
    fetched = set(gets(server)) - {"SHA256SUMS.txt"}
    assert "data/5.dat" in fetched
    assert fetched == set(sources) - verified  # nothing verified before travels again
    assert_copy(target, sources)
    assert is_complete(target)


def test_a_full_disk_is_a_clear_error_and_a_rerun_appends_the_rest(tmp_path, server, sources):
    """A file-size limit (ulimit -f, the same write failure as a full disk) in a real ``clef`` process."""
    import resource

    target = tmp_path / "ludb"
    limit = 60_000  # the .dat files are 120000 bytes
    result = subprocess.run(
        [sys.executable, "-m", "clef_sdk", "datasets", "download", "ludb", str(target), "--index-url",
         server.index_url, "--no-progress"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clef: error: [Errno 27] cannot write")
    assert "Free space" in lines[0] and "run the same command again to resume" in lines[0]
    assert not is_complete(target)
    partial = [p for p in (target / "data").glob("*.dat") if p.stat().st_size == limit]
    assert partial  # what the limit let through stays, to be resumed

    server.clear_log()
    download("ludb", target, index_url=server.index_url, progress=False)
    for path in partial:
        ranges = [r.range for r in server.requests if r.path == f"{PROJECT}/data/{path.name}" and r.method == "GET"]
        assert ranges == [f"bytes={limit}-"]
    assert_copy(target, sources)
    assert is_complete(target)


# ---------------------------------------------------------------------------------------------------- wrong bytes


def test_a_local_file_with_wrong_bytes_of_the_right_size_is_fetched_again(tmp_path, server, sources):
    target = tmp_path / "ludb"
    (target / "data").mkdir(parents=True)
    whole = sources["data/4.dat"]
    (target / "data/4.dat").write_bytes(whole[:-1] + bytes([whole[-1] ^ 0xFF]))
    download("ludb", target, index_url=server.index_url, progress=False)
    assert gets(server, "data/4.dat") == ["data/4.dat"]  # wfdb keeps a file of the right size; the hash did not
    assert_copy(target, sources)
    assert is_complete(target)


def test_a_file_changed_after_a_complete_download_is_checked_and_fetched_again(tmp_path, server, sources):
    target = tmp_path / "ludb"
    download("ludb", target, index_url=server.index_url, progress=False)
    changed = target / "data/6.hea"
    stat = changed.stat()
    changed.write_bytes(b"x" * stat.st_size)
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    server.clear_log()
    download("ludb", target, index_url=server.index_url, progress=False)
    assert set(gets(server)) - {"SHA256SUMS.txt"} == {"data/6.hea"}
    assert_copy(target, sources)
    assert is_complete(target)


def test_a_server_that_keeps_serving_wrong_bytes_is_an_error_naming_the_file(tmp_path, server, sources):
    server.tamper.add(f"{PROJECT}/data/7.dat")
    target = tmp_path / "ludb"
    with pytest.raises(ChecksumMismatchError) as failure:
        download("ludb", target, index_url=server.index_url, progress=False)
    message = str(failure.value)
    assert message.startswith("data/7.dat: the file from ")
    assert hashlib.sha256(sources["data/7.dat"]).hexdigest() in message
    assert "also when fetched again in full; it was deleted" in message
    assert len(gets(server, "data/7.dat")) == 2  # fetched, deleted, fetched once more
    assert not (target / "data/7.dat").exists()
    assert not is_complete(target)


# ---------------------------------------------------------------------------------------------------- errors


def test_no_server_is_a_clear_error_at_once(tmp_path):
    before = wfdb_download.config.db_index_url
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(DatasetError) as failure:
        download("ludb", tmp_path / "ludb", index_url=url, progress=False)
    assert time.monotonic() - started < 10  # not retried: nothing listens there
    message = str(failure.value)
    assert message.startswith(f"cannot download {url}{PROJECT}/SHA256SUMS.txt: ConnectionError")
    assert "Check the network connection and that the mirror" in message
    assert "run the same command again to retry" in message
    assert wfdb_download.config.db_index_url == before
    assert not is_complete(tmp_path / "ludb")


def test_a_mirror_without_the_project_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    with PhysioNetServer(tmp_path / "empty") as server, pytest.raises(DatasetError) as failure:
        download("ludb", tmp_path / "ludb", index_url=server.index_url, progress=False)
    assert "not found (HTTP 404)" in str(failure.value) and f"does not hold {PROJECT}" in str(failure.value)


def test_a_server_error_is_retried_then_reported(tmp_path, server):
    server.status[f"{PROJECT}/data/8.hea"] = 503
    with pytest.raises(DatasetError) as failure:
        download("ludb", tmp_path / "ludb", index_url=server.index_url, progress=False)
    assert f"{PROJECT}/data/8.hea (3 attempts): HTTP 503" in str(failure.value)
    assert len(gets(server, "data/8.hea")) == 3


def test_a_page_that_is_not_a_checksum_list_is_refused_and_not_kept(tmp_path):
    folder = tmp_path / "index" / PROJECT
    folder.mkdir(parents=True)
    (folder / "SHA256SUMS.txt").write_text("<html><body>Please log in</body></html>\n")
    with PhysioNetServer(tmp_path / "index") as server, pytest.raises(DatasetError) as failure:
        download("ludb", tmp_path / "ludb", index_url=server.index_url, progress=False)
    assert "is not a checksum list: line 1 reads '<html>" in str(failure.value)
    assert not (tmp_path / "ludb" / "SHA256SUMS.txt").exists()


@pytest.mark.parametrize("path", ["../outside", "/etc/passwd", "data/../../x", ".clef-download/complete.json"])
def test_paths_that_leave_the_folder_are_refused(path):
    with pytest.raises(DatasetError, match="outside the download folder"):
        parse_checksums(f"{'0' * 64} {path}\n")


def test_checksum_lists_in_sha256sum_format_are_read():
    sums = parse_checksums(f"{'a' * 64}  data/1.hea\n{'B' * 64} *RECORDS\n\n")
    assert sums == {"data/1.hea": "a" * 64, "RECORDS": "b" * 64}


def test_a_folder_holding_another_projects_download_is_refused(tmp_path, server, monkeypatch):
    class Other(Dataset):
        name, title, source, physionet = "other", "Another dataset", "https://example.org/other", "other/2.0"

    target = tmp_path / "ludb"
    download("ludb", target, index_url=server.index_url, progress=False)
    real = download_module.reader_class
    monkeypatch.setattr(download_module, "reader_class", lambda name: Other if name == "other" else real(name))
    server.clear_log()
    with pytest.raises(DatasetError, match=f"holds a download of {PROJECT}, not other/2.0: download other/2.0 into"):
        download("other", target, index_url=server.index_url, progress=False)
    assert server.requests == []


def test_a_dataset_not_on_physionet_says_where_to_get_it(tmp_path, monkeypatch):
    class Elsewhere(Dataset):
        name = "elsewhere"
        title = "A dataset from elsewhere"
        source = "https://example.org/elsewhere (after signing its data use agreement)"

    monkeypatch.setattr(download_module, "reader_class", lambda name: Elsewhere)
    with pytest.raises(DatasetError) as failure:
        download("elsewhere", tmp_path / "x", progress=False)
    assert str(failure.value) == (
        "A dataset from elsewhere is not openly downloadable from PhysioNet. Get it with "
        "https://example.org/elsewhere (after signing its data use agreement), then pass the folder that holds it."
    )
    assert not (tmp_path / "x").exists()


def test_the_index_url_comes_from_the_argument_the_environment_or_physionet(monkeypatch, tmp_path, server, sources):
    monkeypatch.delenv(INDEX_URL_ENV, raising=False)
    assert index_url_setting() == "https://physionet.org/files/"
    assert index_url_setting("http://mirror.example/files") == "http://mirror.example/files/"
    monkeypatch.setenv(INDEX_URL_ENV, server.index_url)
    assert index_url_setting() == server.index_url
    download("ludb", tmp_path / "ludb", progress=False)  # from the environment's mirror
    assert_copy(tmp_path / "ludb", sources)
    monkeypatch.setenv(INDEX_URL_ENV, "physionet.org/files")
    with pytest.raises(DatasetError, match="CLEF_SDK_PHYSIONET_URL 'physionet.org/files' is not a URL"):
        index_url_setting()
