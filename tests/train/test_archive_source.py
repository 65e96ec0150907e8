"""A prepared pretraining store as an archive source: the store's records and leads embedded from its windows
equal the folder's own embeddings up to the store's float32 rounding."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")
pytest.importorskip("pyarrow")

import clef_sdk as clef
from clef_sdk.train import StoreSource, prepare


@pytest.fixture(scope="module")
def folder(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("records")
    for record in ("1", "2", "3", "4", "5"):
        for suffix in (".hea", ".dat"):
            shutil.copy(data_dir / "ludb" / "data" / f"{record}{suffix}", root)
    return root


def test_store_source_equals_the_folder_it_was_prepared_from(
    folder: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    store = prepare(folder, tmp_path / "store", leads="I,II", dtype="float32", workers=1, progress=False)
    from_store = clef.embed_archive(StoreSource(store.path), tmp_path / "a", model=small_safetensors, progress=False)
    from_folder = clef.embed_archive(folder, tmp_path / "b", model=small_safetensors, leads=["I", "II"], progress=False)
    assert from_store.complete and from_folder.complete
    table_store, store_values = clef.read_embeddings(from_store.output)
    table_folder, folder_values = clef.read_embeddings(from_folder.output)
    assert table_store[["record", "lead"]].equals(table_folder[["record", "lead"]])
    # the store keeps the band-passed windows in float32: 3.6e-7 apart at most here (measured), round-off
    np.testing.assert_allclose(store_values, folder_values, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="quality='drop' needs the raw signal"):
        clef.embed_archive(StoreSource(store.path), tmp_path / "c", model=small_safetensors, quality="drop")
    done = subprocess.run(
        [sys.executable, "-m", "clef_sdk", "embed-archive", str(store.path), "-o", str(tmp_path / "d"), "--model",
         str(small_safetensors), "-q"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(clef.read_embeddings(tmp_path / "d")[1], store_values)
