"""The other archive sources: a manifest CSV (``.npy``, CSV and WFDB rows) and a dataset of clef_sdk.datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef
from clef_sdk.archive import ManifestSource, open_source

pytest.importorskip("pyarrow")
ATOL = 1e-5  # clef.embed alone vs in a batch of others: 1.2e-7 at most (measured; see test_archive.py)


@pytest.fixture(scope="module")
def manifest(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MIT-BIH record 100's first minute as .npy (360 Hz) and as a CSV column, and LUDB record 1 (WFDB, two leads)."""
    folder = tmp_path_factory.mktemp("manifest")
    ecg = np.load(data_dir / "mitdb-tpcp" / "100.npz")["ecg"][: 60 * 360].astype(np.float64)
    np.save(folder / "a.npy", ecg)
    pd.DataFrame({"time": np.arange(len(ecg)) / 360, "mlii": ecg}).to_csv(folder / "b.csv", index=False)
    ludb = data_dir / "ludb" / "data" / "1"
    rows = [
        {"record": "mitdb-100", "path": "a.npy", "fs": "360", "lead": "II", "column": ""},
        {"record": "mitdb-100-csv", "path": "b.csv", "fs": "360", "lead": "II", "column": "mlii"},
        {"record": "ludb-1", "path": str(ludb), "fs": "", "lead": "i", "column": ""},
        {"record": "ludb-1", "path": str(ludb), "fs": "", "lead": "avf", "column": ""},
        {"record": "no-rate", "path": "a.npy", "fs": "", "lead": "II", "column": ""},
        {"record": "absent", "path": "absent.npy", "fs": "360", "lead": "II", "column": ""},
    ]
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def test_manifest_rows_equal_clef_embed(
    manifest: Path, data_dir: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    source = open_source(manifest)
    assert isinstance(source, ManifestSource) and source.default_leads == ("I", "II", "aVF")
    run = clef.embed_archive(manifest, tmp_path / "out", model=small_safetensors, progress=False)
    table, values = clef.read_embeddings(run.output)
    encoder = clef.load(small_safetensors, device="cpu")
    ecg = np.load(manifest.parent / "a.npy")
    got = {(r.record, r.lead): v for r, v in zip(table.itertuples(), values)}
    assert set(got) == {("mitdb-100", "II"), ("mitdb-100-csv", "II"), ("ludb-1", "I"), ("ludb-1", "aVF")}
    np.testing.assert_allclose(got[("mitdb-100", "II")], clef.embed(ecg, fs=360, model=encoder), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(got[("mitdb-100-csv", "II")], got[("mitdb-100", "II")])  # the same samples
    lead = clef.embed(clef.WfdbSignal(data_dir / "ludb" / "data" / "1", "avf"), model=encoder)
    np.testing.assert_allclose(got[("ludb-1", "aVF")], lead, rtol=0, atol=ATOL)
    skipped = pd.read_csv(run.output / "_skipped.csv")
    reasons = dict(zip(skipped["record"], skipped["reason"]))
    assert reasons["no-rate"].startswith("no sampling rate") and reasons["absent"].startswith("unreadable")


def test_a_dataset_is_a_source(data_dir: Path, small_safetensors: Path, tmp_path: Path) -> None:
    ludb = clef.datasets.open("ludb", data_dir / "ludb")
    run = clef.embed_archive(
        ludb, tmp_path / "out", model=small_safetensors, leads=["II"], shard_size=100, progress=False
    )
    table, values = clef.read_embeddings(run.output)
    assert len(table) == 200 and table["record"].tolist() == sorted(ludb.table["record"])
    encoder = clef.load(small_safetensors, device="cpu")
    signal, fs = ludb.signal("77", "II")
    row = table.index[table["record"] == "77"][0]
    np.testing.assert_allclose(values[row], clef.embed(signal, fs=fs, model=encoder), rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match="columns record and path"):
        bad = tmp_path / "bad.csv"
        bad.write_text("id,file\n1,a.npy\n")
        open_source(bad)


def test_window_starts_follow_the_stride_and_the_tail(manifest: Path, small_safetensors: Path, tmp_path: Path) -> None:
    """60 s at a 7 s stride with tail='last': windows at 0, 7, ..., 49 s and one aligned with the end, at 50 s."""
    run = clef.embed_archive(manifest, tmp_path / "w", model=small_safetensors, leads=["II"], per_window=True,
                             stride_seconds=7.0, tail="last", progress=False)  # fmt: skip
    table, values = clef.read_embeddings(run.output)
    rows = (table["record"] == "mitdb-100").to_numpy()
    assert table.loc[rows, "start_s"].tolist() == [0.0, 7.0, 14.0, 21.0, 28.0, 35.0, 42.0, 49.0, 50.0]
    expected = clef.embed(np.load(manifest.parent / "a.npy"), fs=360, model=clef.load(small_safetensors, device="cpu"),
                          pooling=None, stride_seconds=7.0, tail="last")  # fmt: skip
    np.testing.assert_allclose(values[rows], expected, rtol=0, atol=ATOL)
