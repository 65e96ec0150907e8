"""``prepare`` and the store: real LUDB and MIT-BIH records through the inference pipeline minus the z-score,
SCORE2 from headers or a CSV, bad records skipped and reported, any folder layout and lead order, .mat files,
and interrupted jobs (an exception, a SIGKILL) resumed to the same bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
wfdb = pytest.importorskip("wfdb")

from ludb_helpers import LUDB_RECORDS, link_ludb

import clef_sdk as clef
from clef_sdk.files import current_umask
from clef_sdk.io import STANDARD_LEADS
from clef_sdk.preprocessing import filter_windows, zscore
from clef_sdk.resampling import resample_to_target
from clef_sdk.train import data as data_module
from clef_sdk.train.data import PretrainingStore, prepare
from clef_sdk.train.score2 import score2

# float16 keeps 11 significant bits: a stored value is within 2**-11 (4.9e-4) of the float64 one, relative
FLOAT16_RTOL = 2.0**-11


def _ludb(data_dir: Path, record: int) -> wfdb.Record:
    return wfdb.rdrecord(str(data_dir / "ludb" / "data" / str(record)))


def test_store_holds_the_inference_windows_before_the_z_score(ludb_store: Path, data_dir: Path) -> None:
    store = PretrainingStore(ludb_store)
    assert len(store) == 24 and store.windows.shape == (24, 12, 5000) and store.windows.dtype == np.float16
    assert store.leads == STANDARD_LEADS and store.available.all()
    table = store.table
    assert table["path"].tolist() == sorted(f"data/{r}" for r in LUDB_RECORDS)
    row = table.index[table["path"] == "data/1"][0]
    record = _ludb(data_dir, 1)
    for lead in ("I", "aVL", "aVF", "V6"):
        raw = record.p_signal[:, [n.lower() for n in record.sig_name].index(lead.lower())]
        stored = store.windows[row, STANDARD_LEADS.index(lead)].astype(np.float64)
        expected = filter_windows(raw)
        assert np.abs(stored - expected).max() <= FLOAT16_RTOL * np.abs(expected).max()
        # after the z-score, what the model sees without augmentation is clef.preprocess of the same lead
        # (float16 storage: measured 4.6e-3 at most over all 288 lead-windows of the store)
        assert np.abs(zscore(stored) - clef.preprocess(raw, 500)[0]).max() <= 1e-2


def test_store_table_and_score2_from_headers(ludb_store: Path, data_dir: Path) -> None:
    store = PretrainingStore(ludb_store)
    table = store.table.set_index("path")
    for record in (1, 2, 17):
        age = float(next(c for c in _ludb(data_dir, record).comments if c.startswith("<age>")).split(":")[1])
        assert table.loc[f"data/{record}", "age"] == age
    assert table.loc["data/1", "sex"] == "female"
    expected, missing = score2(
        table["age"], table["sex"], np.nan, np.nan, np.nan, np.nan, region="moderate", impute=True, out_of_range="clip"
    )
    np.testing.assert_allclose(store.risk, expected.astype(np.float32))
    np.testing.assert_allclose(store.missing_rate, 4 / 6)  # smoker, sbp, cholesterols imputed
    assert np.isfinite(store.risk).all()
    assert store.info["n_skipped"] == 0 and store.info["risk_available"] == 24
    assert pd.read_csv(ludb_store / "skipped.csv").empty
    assert "24 windows of 24 records" in store.describe()


def _write(
    folder: Path, name: str, signal: np.ndarray, fs: float, names: list[str], comments: list[str] | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(names),
        sig_name=names,
        p_signal=signal,
        fmt=["16"] * len(names),
        adc_gain=[200.0] * len(names),
        baseline=[0] * len(names),
        write_dir=str(folder),
        comments=comments or [],
    )


def test_bad_records_are_skipped_and_listed(data_dir: Path, tmp_path: Path) -> None:
    source = link_ludb(data_dir, tmp_path / "source", records=(1,))
    record = _ludb(data_dir, 1)
    leads = list(STANDARD_LEADS)
    _write(source / "bad", "short", record.p_signal[:2500], 500, leads)
    _write(source / "bad", "flat", np.full((5000, 12), 0.5), 500, leads)
    _write(source / "bad", "nan", np.full((5000, 12), np.nan), 500, leads)
    _write(source / "bad", "nolead", record.p_signal[:, :1], 500, ["ECG"])
    one_flat = record.p_signal.copy()
    one_flat[:, 3] = 0.2  # aVR constant: kept, that lead marked unavailable
    _write(source / "ok", "one_flat_lead", one_flat, 500, leads)
    shutil.copy(source / "data" / "1.hea", source / "bad" / "corrupt.hea")
    (source / "bad" / "corrupt.hea").write_text(
        (source / "bad" / "corrupt.hea").read_text().replace("1.dat", "corrupt.dat")
    )
    (source / "bad" / "corrupt.dat").write_bytes(b"\x00" * 100)
    (source / "bad" / "garbage.hea").write_text("this is not a header\n")

    store = prepare(source, tmp_path / "store", workers=1, progress=False)
    assert store.table["path"].tolist() == ["data/1", "ok/one_flat_lead"]
    assert store.available[1].tolist() == [lead != "aVR" for lead in STANDARD_LEADS]
    assert np.isnan(store.windows[1, 3].astype(float)).all()  # never zero-filled
    assert np.isfinite(store.windows[1, [0, 1, 2, 4]].astype(float)).all()
    skipped = pd.read_csv(tmp_path / "store" / "skipped.csv").set_index("path")["reason"]
    assert set(skipped.index) == {"bad/short", "bad/flat", "bad/nan", "bad/nolead", "bad/corrupt", "bad/garbage"}
    assert skipped["bad/short"] == "too short: 5.00 s, a window needs 10 s"
    assert skipped["bad/flat"] == skipped["bad/nan"] == "flat or NaN-only in every requested lead"
    assert skipped["bad/nolead"].startswith("none of the requested leads") and skipped["bad/nolead"].endswith(
        "(the record has ECG)"
    )
    assert skipped["bad/corrupt"].startswith("unreadable: ")
    assert skipped["bad/garbage"].startswith("unreadable: ")
    assert store.info["n_skipped"] == 6


def test_any_layout_lead_order_and_mat_files(data_dir: Path, tmp_path: Path) -> None:
    """MIMIC-IV-ECG's folders and lead order (aVF before aVL), and a .mat signal file: leads matched by name."""
    record = _ludb(data_dir, 3)
    by_name = {n.lower(): record.p_signal[:, i] for i, n in enumerate(record.sig_name)}
    mimic_order = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
    folder = tmp_path / "source" / "files" / "p1000" / "p10000032" / "s40689238"
    _write(folder, "40689238", np.stack([by_name[n.lower()] for n in mimic_order], axis=1), 500, mimic_order)
    mat_folder = tmp_path / "source" / "challenge"
    mat_folder.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(data_dir / "ludb" / "data" / f"3{suffix}", mat_folder / f"3{suffix}")
    cwd = os.getcwd()
    os.chdir(mat_folder)
    try:
        from wfdb.io.convert.matlab import wfdb_to_mat

        wfdb_to_mat("3")  # writes 3m.mat and 3m.hea
    finally:
        os.chdir(cwd)
    for suffix in (".hea", ".dat"):
        (mat_folder / f"3{suffix}").unlink()
    store = prepare(tmp_path / "source", tmp_path / "store", leads="aVL,aVF", workers=1, progress=False)
    assert store.table["path"].tolist() == ["challenge/3m", "files/p1000/p10000032/s40689238/40689238"]
    for lead_index, lead in enumerate(("avl", "avf")):
        expected = filter_windows(by_name[lead])
        for row in range(2):
            stored = store.windows[row, lead_index].astype(np.float64)
            # float16 storage plus the 1/200 mV quantisation of the rewritten file
            assert np.abs(stored - expected).max() <= 0.01 * np.abs(expected).max()


def test_all_windows_of_a_long_record_at_another_rate(data_dir: Path, tmp_path: Path) -> None:
    """MIT-BIH record 100 (360 Hz, 30 min, MLII and V5): 180 windows, resampled as in inference."""
    source = tmp_path / "source"
    source.mkdir()
    for suffix in (".hea", ".dat"):
        os.symlink(data_dir / "wfdb-sample" / f"100{suffix}", source / f"100{suffix}")
    store = prepare(
        source, tmp_path / "store", leads="II,V5", windows="all", dtype="float32", workers=1, progress=False
    )
    assert store.windows.shape == (180, 2, 5000) and store.windows.dtype == np.float32
    assert store.table["window"].tolist() == list(range(180))
    np.testing.assert_allclose(store.table["start_s"], np.arange(180) * 10.0)
    assert (store.table["fs"] == 360).all()
    mlii = wfdb.rdrecord(str(source / "100"), channels=[0]).p_signal[:, 0]
    expected = filter_windows(resample_to_target(mlii, 360.0)[: 180 * 5000].reshape(180, 5000))
    np.testing.assert_allclose(store.windows[:, 0], expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    # MIT-BIH headers carry no age and sex: no SCORE2, full missing rate
    assert np.isnan(store.risk).all() and (store.missing_rate == 1).all()


def test_metadata_csv_in_the_authors_schema(ludb_source: Path, tmp_path: Path) -> None:
    csv = tmp_path / "meta.csv"
    pd.DataFrame(
        {
            "path": ["data/1", "data/2.hea", "data/99"],
            "score2_risk": [7.5, 12.0, 1.0],
            "rate_meta": [0.1, None, 0.0],
            "gender": ["F", "M", "M"],
            "age": [51, 63, 40],
        }
    ).to_csv(csv, index=False)
    store = prepare(ludb_source, tmp_path / "store", metadata=csv, workers=1, progress=False)
    table = store.table.set_index("path")
    assert table.loc["data/1", "score2_risk"] == 7.5 and table.loc["data/1", "missing_rate"] == pytest.approx(0.1)
    assert table.loc["data/2", "score2_risk"] == 12.0 and table.loc["data/2", "missing_rate"] == 0.0  # no rate: 0
    assert np.isnan(table.loc["data/3", "score2_risk"]) and table.loc["data/3", "missing_rate"] == 1.0
    assert table.loc["data/2", "gender"] == "M"
    assert table.loc["data/1", "csv_age"] == 51 and table.loc["data/1", "age"] == 51  # header age kept beside
    assert store.info["risk_available"] == 2
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"path": ["data/1"], "risk": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="has no 'score2_risk' column"):
        prepare(ludb_source, tmp_path / "store-bad", metadata=bad, workers=1, progress=False)


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert (
        names
        == sorted(p.name for p in b.iterdir())
        == ["available.npy", "fingerprint.json", "records.csv", "skipped.csv", "store.json", "windows.npy"]
    )
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_interrupted_job_resumes_to_the_same_bytes(
    ludb_source: Path, ludb_store: Path, tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "store"
    original = data_module._run_shard
    calls = []

    def interrupted(job, records, work, index):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(index)
        return original(job, records, work, index)

    monkeypatch.setattr(data_module, "_run_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(ludb_source, target, workers=1, shard_size=8, progress=False)
    assert sorted(p.name for p in (target / ".work").glob("shard_*.npz")) == ["shard_000000.npz", "shard_000001.npz"]
    with pytest.raises(FileNotFoundError, match="unfinished job"):
        PretrainingStore(target)
    monkeypatch.setattr(data_module, "_run_shard", original)
    done = []
    monkeypatch.setattr(
        data_module,
        "_run_shard",
        lambda job, records, work, index: done.append(index) or original(job, records, work, index),
    )
    prepare(ludb_source, target, workers=1, shard_size=8, progress=False)
    assert done == [2]  # only the missing shard was processed
    _same_files(target, ludb_store)
    with pytest.raises(FileExistsError, match="other inputs or options"):
        prepare(ludb_source, target, dtype="float32", workers=1, shard_size=8, progress=False)
    assert len(prepare(ludb_source, target, workers=1, shard_size=8, progress=False)) == 24  # done: nothing to do


def test_killed_job_resumes_to_the_same_bytes(ludb_source: Path, ludb_store: Path, tmp_path: Path) -> None:
    """A job killed with SIGKILL after its first shard: the rerun (now with 2 worker processes) completes it
    identically."""
    target = tmp_path / "store"
    script = f"""
import os, signal
from clef_sdk.train import data
original = data._run_shard
def run_then_die(job, records, work, index):
    original(job, records, work, index)
    os.kill(os.getpid(), signal.SIGKILL)  # right after the first shard is written
data._run_shard = run_then_die
data.prepare({str(ludb_source)!r}, {str(target)!r}, workers=1, shard_size=8, progress=False)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == -9, result.stderr.decode()
    assert (target / ".work" / "shard_000000.npz").is_file() and not (target / "store.json").exists()
    prepare(ludb_source, target, workers=2, shard_size=8, progress=False)
    _same_files(target, ludb_store)


def test_unfinished_job_with_other_options_is_refused(ludb_source: Path, tmp_path: Path) -> None:
    work = tmp_path / "store" / ".work"
    work.mkdir(parents=True)
    (work / "job.json").write_text(json.dumps({"job": {"source": "elsewhere"}, "options": {}}))
    with pytest.raises(FileExistsError, match="unfinished job with other inputs"):
        prepare(ludb_source, tmp_path / "store", workers=1, progress=False)


# -- reruns on a changed source: the store's fingerprint of its records ----------------------------------------


def _copy_ludb(data_dir: Path, source: Path, records: tuple[int, ...]) -> Path:
    """Writable copies (not links) of LUDB records in ``source/data``, for tests that change them."""
    folder = source / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        for suffix in (".hea", ".dat"):
            shutil.copyfile(data_dir / "ludb" / "data" / f"{record}{suffix}", folder / f"{record}{suffix}")
    return source


def _put_ludb_as(data_dir: Path, folder: Path, record: int, name: str) -> None:
    """LUDB ``record``'s files written as record ``name`` (the header's record and signal file names rewritten):
    the same file sizes, other content."""
    lines = (data_dir / "ludb" / "data" / f"{record}.hea").read_text().splitlines(keepends=True)
    lines[0] = f"{name}{lines[0][len(str(record)) :]}"
    text = "".join(lines).replace(f"{record}.dat ", f"{name}.dat ")
    (folder / f"{name}.hea").write_text(text)
    shutil.copyfile(data_dir / "ludb" / "data" / f"{record}.dat", folder / f"{name}.dat")


def _must_not_run(*args, **kwargs):
    raise AssertionError("no shard should be processed")


def test_finished_store_refuses_a_modified_record(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The fuzz campaign's case: record 3's files replaced by record 4's (same count, same file sizes); the
    rerun used to return the stale store because only the number of records was compared."""
    source = _copy_ludb(data_dir, tmp_path / "source", (1, 2, 3, 5, 6))
    target = tmp_path / "store"
    first = prepare(source, target, workers=1, shard_size=2, progress=False)
    files = {p.name: p.read_bytes() for p in target.iterdir()}

    # an identical source: the finished store comes back as it is, nothing processed or written
    with monkeypatch.context() as patch:
        patch.setattr(data_module, "_run_shard", _must_not_run)
        assert prepare(source, target, workers=1, shard_size=2, progress=False).info == first.info

    _put_ludb_as(data_dir, source / "data", 4, "3")
    assert (source / "data" / "3.dat").stat().st_size == (data_dir / "ludb" / "data" / "3.dat").stat().st_size
    with pytest.raises(FileExistsError, match="other inputs or options") as raised:
        prepare(source, target, workers=1, shard_size=2, progress=False)
    message = str(raised.value)
    assert "1 record(s) modified: data/3" in message
    assert "added" not in message and "removed" not in message
    assert str(target) in message and "new output folder" in message and "delete" in message
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files  # the store is left alone
    for name in files:  # written through clef_sdk.files.atomic_path: the permissions of a new file
        assert (target / name).stat().st_mode & 0o777 == 0o666 & ~current_umask(), name

    # a new folder gets record 4's signal under record 3's name: what the stale store would have hidden
    fresh = prepare(source, tmp_path / "fresh", workers=1, shard_size=2, progress=False)
    row = fresh.table.index[fresh.table["path"] == "data/3"][0]
    expected = filter_windows(_ludb(data_dir, 4).p_signal[:, 0])
    assert np.abs(fresh.windows[row, 0].astype(np.float64) - expected).max() <= FLOAT16_RTOL * np.abs(expected).max()
    assert fresh.table.set_index("path").loc["data/3", "age"] == 56  # record 4's header
    fingerprint = json.loads(files["fingerprint.json"])["records"]
    assert sorted(fingerprint) == ["data/1", "data/2", "data/3", "data/5", "data/6"]
    assert fingerprint["data/1"][1] == [["1.dat", 120000, os.stat(source / "data" / "1.dat").st_mtime_ns]]


def test_finished_store_refuses_a_header_edit_that_keeps_size_and_mtime(data_dir: Path, tmp_path: Path) -> None:
    """Headers are compared by content: an edit of the same length with the modification time put back (as
    ``cp -p``, ``rsync -a`` or an archive's extraction would leave it) is still seen."""
    source = _copy_ludb(data_dir, tmp_path / "source", (1, 2))
    target = tmp_path / "store"
    prepare(source, target, workers=1, progress=False)
    header = source / "data" / "1.hea"
    before = header.stat()
    header.write_text(header.read_text().replace("#<sex>: F", "#<sex>: M"))
    os.utime(header, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert header.stat().st_size == before.st_size and header.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(FileExistsError, match=r"1 record\(s\) modified: data/1"):
        prepare(source, target, workers=1, progress=False)


def test_finished_store_refuses_records_added_and_removed_at_the_same_count(data_dir: Path, tmp_path: Path) -> None:
    source = _copy_ludb(data_dir, tmp_path / "source", (1, 2, 3, 5, 6))
    target = tmp_path / "store"
    prepare(source, target, workers=1, shard_size=2, progress=False)
    for suffix in (".hea", ".dat"):
        (source / "data" / f"2{suffix}").unlink()
    _copy_ludb(data_dir, source, (7,))
    with pytest.raises(FileExistsError, match="other inputs or options") as raised:
        prepare(source, target, workers=1, shard_size=2, progress=False)
    message = str(raised.value)
    assert "1 record(s) added: data/7" in message and "1 record(s) removed: data/2" in message
    assert "modified" not in message
    # many changes: a few are named, the rest counted
    _copy_ludb(data_dir, source, tuple(range(8, 20)))
    with pytest.raises(FileExistsError, match=r"13 record\(s\) added: data/10, data/11, data/12, .* and 8 more"):
        prepare(source, target, workers=1, shard_size=2, progress=False)


def test_finished_store_refuses_a_changed_metadata_csv(data_dir: Path, tmp_path: Path) -> None:
    source = _copy_ludb(data_dir, tmp_path / "source", (1, 2))
    csv = tmp_path / "meta.csv"
    pd.DataFrame({"path": ["data/1", "data/2"], "score2_risk": [7.5, 12.0]}).to_csv(csv, index=False)
    prepare(source, tmp_path / "store", metadata=csv, workers=1, progress=False)
    assert len(prepare(source, tmp_path / "store", metadata=csv, workers=1, progress=False)) == 2
    pd.DataFrame({"path": ["data/1", "data/2"], "score2_risk": [7.5, 13.0]}).to_csv(csv, index=False)
    with pytest.raises(FileExistsError, match="the metadata CSV .*meta.csv changed"):
        prepare(source, tmp_path / "store", metadata=csv, workers=1, progress=False)


def test_store_without_a_fingerprint_is_refused(ludb_source: Path, ludb_store: Path, tmp_path: Path) -> None:
    """A store from before source fingerprints cannot be checked against the records: refused, not trusted."""
    old = tmp_path / "old"
    shutil.copytree(ludb_store, old)
    (old / "fingerprint.json").unlink()
    info = json.loads((old / "store.json").read_text())
    del info["job"]["source_fingerprint"]
    (old / "store.json").write_text(json.dumps(info))
    with pytest.raises(FileExistsError, match="cannot tell whether the records changed"):
        prepare(ludb_source, old, workers=1, shard_size=8, progress=False)


def test_unfinished_job_refuses_changed_records_and_resumes_once_restored(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Shards of a partial store are never mixed with those of another source: a record modified, or one
    removed and another added (same count), is refused; with the files put back as they were, it resumes to the
    bytes of an uninterrupted run."""
    source = _copy_ludb(data_dir, tmp_path / "source", (1, 2, 3, 5, 6, 7))
    data = source / "data"
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("5.hea", "5.dat", "6.hea", "6.dat"):
        shutil.copy2(data / name, backup / name)  # content and modification time
    target = tmp_path / "store"
    original = data_module._run_shard

    def interrupted(job, records, work, index):
        if index == 1:
            raise KeyboardInterrupt
        return original(job, records, work, index)

    monkeypatch.setattr(data_module, "_run_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(source, target, workers=1, shard_size=2, progress=False)
    work = target / ".work"
    shards = {p.name: p.read_bytes() for p in work.iterdir()}
    assert sorted(shards) == ["job.json", "shard_000000.json", "shard_000000.npz"]
    assert "fingerprint" in json.loads((work / "job.json").read_text())

    monkeypatch.setattr(data_module, "_run_shard", _must_not_run)
    _put_ludb_as(data_dir, data, 4, "5")
    with pytest.raises(FileExistsError, match="unfinished job with other inputs") as raised:
        prepare(source, target, workers=1, shard_size=2, progress=False)
    assert "1 record(s) modified: data/5" in str(raised.value) and str(work) in str(raised.value)
    for name in ("5.hea", "5.dat"):
        shutil.copy2(backup / name, data / name)
    for suffix in (".hea", ".dat"):
        (data / f"6{suffix}").unlink()
    _copy_ludb(data_dir, source, (8,))
    with pytest.raises(FileExistsError, match="unfinished job with other inputs") as raised:
        prepare(source, target, workers=1, shard_size=2, progress=False)
    assert "1 record(s) added: data/8" in str(raised.value) and "1 record(s) removed: data/6" in str(raised.value)
    assert {p.name: p.read_bytes() for p in work.iterdir()} == shards  # nothing written, nothing mixed

    for suffix in (".hea", ".dat"):
        (data / f"8{suffix}").unlink()
    (target / ".windows.npy.killed.tmp").write_bytes(b"left by a _finalize killed midway")  # removed: see below
    for name in ("6.hea", "6.dat"):
        shutil.copy2(backup / name, data / name)
    done: list[int] = []

    def counted(job, records, work, index):
        done.append(index)
        return original(job, records, work, index)

    monkeypatch.setattr(data_module, "_run_shard", counted)
    prepare(source, target, workers=1, shard_size=2, progress=False)
    assert done == [1, 2]
    monkeypatch.setattr(data_module, "_run_shard", original)
    whole = tmp_path / "whole"
    prepare(source, whole, workers=1, shard_size=2, progress=False)
    _same_files(target, whole)


def test_records_changed_while_being_prepared_are_refused(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """A record changed after the job started (and so maybe after its shard was made) is not finalized."""
    source = _copy_ludb(data_dir, tmp_path / "source", (1, 2, 3))
    original = data_module._run_shard

    def change_then_run(job, records, work, index):
        if index == 1:
            _put_ludb_as(data_dir, source / "data", 4, "1")  # shard 0 (record 1) is already done
        return original(job, records, work, index)

    monkeypatch.setattr(data_module, "_run_shard", change_then_run)
    with pytest.raises(RuntimeError, match=r"changed while .* 1 record\(s\) modified: data/1"):
        prepare(source, tmp_path / "store", workers=1, shard_size=1, progress=False)
    assert not (tmp_path / "store" / "store.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float64"}, "dtype must be"),
        ({"windows": "some"}, "windows must be"),
        ({"region": "europe"}, "region must be"),
        ({"age_policy": "raise"}, "age_policy must be"),
    ],
)
def test_bad_options(ludb_source: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare(ludb_source, tmp_path / "store", **kwargs)


def test_empty_source_and_damaged_store(tmp_path: Path, ludb_store: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no WFDB records \(.hea files\)"):
        prepare(tmp_path / "empty", tmp_path / "store")
    with pytest.raises(FileNotFoundError, match="not a pretraining store"):
        PretrainingStore(tmp_path / "empty")
    damaged = tmp_path / "damaged"
    shutil.copytree(ludb_store, damaged)
    with open(damaged / "windows.npy", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(ValueError, match="the store is damaged"):
        PretrainingStore(damaged)
    (damaged / "store.json").write_text("{")
    with pytest.raises(ValueError, match="store.json is corrupt"):
        PretrainingStore(damaged)


def test_a_damaged_store_json_is_a_clear_error(ludb_store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(ludb_store, copy)
    for damage in (b"[]", b"\xff\xfe not utf-8", b"[" * 100_000):  # not an object, undecodable, too deep
        (copy / "store.json").write_bytes(damage)
        with pytest.raises(ValueError, match="store.json is corrupt"):
            PretrainingStore(copy)
