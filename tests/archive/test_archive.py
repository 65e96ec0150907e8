"""``clef.embed_archive`` on real LUDB records: the table equals ``clef.embed``, parts are deterministic and written
atomically, kills resume, ranks split the work, and bad records are reported, never silently embedded."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from archive_helpers import GOOD, reference

import clef_sdk as clef
from clef_sdk.archive import rank_from_environment

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

LEADS = ["I", "II", "V7"]  # V7 is in no LUDB record: every record reports it missing
# clef.embed of one record vs the same record embedded in a batch of others: 1.2e-7 at most (measured, small
# random-init network, float32 windows batched differently)
ATOL = 1e-5


def parts_digest(output: Path) -> dict[str, str]:
    """SHA-256 of every part file (data and report)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(output.glob("part-*"))}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clef_sdk", "embed-archive", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def single(archive: Path, small_safetensors: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    run = clef.embed_archive(archive, out, model=small_safetensors, leads=LEADS, shard_size=3, progress=False)
    assert run.complete and run.computed == [0, 1, 2, 3] and run.rank == 0
    return out


def test_table_equals_clef_embed_per_record_and_lead(single: Path, archive: Path, encoder: clef.ClefEncoder) -> None:
    table, embeddings = clef.read_embeddings(single)
    assert embeddings.shape == (len(GOOD) * 2, 256) and embeddings.dtype == np.float32
    assert list(table.columns) == ["record", "lead", "n_windows", "n_used", "fs"]
    records = sorted(f"p{i % 3}/s{r}/{r}" for i, r in enumerate(GOOD))
    assert table["record"].tolist() == [r for r in records for _ in (0, 1)]  # sorted by record, then lead
    assert table["lead"].tolist() == ["I", "II"] * len(GOOD)
    assert (table["n_windows"] == 1).all() and (table["fs"] == 500.0).all()
    for row, values in zip(table.itertuples(), embeddings):
        expected = reference(archive / row.record, row.lead, encoder)
        np.testing.assert_allclose(values, expected, rtol=0, atol=ATOL)


def test_skipped_records_are_reported_with_their_reasons(single: Path) -> None:
    report = pd.read_csv(single / "_skipped.csv")
    reasons = {(r.record, r.lead): r.reason for r in report.itertuples()}
    assert all(reasons[(f"p{i % 3}/s{r}/{r}", "V7")] == "no such lead" for i, r in enumerate(GOOD))
    assert reasons[("short/9", "I")].startswith("too short: 6.0 s")
    assert reasons[("broken/10", "*")].startswith("unreadable") and reasons[("broken/11", "*")].startswith("unreadable")
    manifest = json.loads((single / "_manifest.json").read_text())
    assert manifest["n_skipped"] == len(report) and len(manifest["parts"]) == 4


def test_schema_as_pandas_polars_pyarrow_and_duckdb_read_it(single: Path) -> None:
    part = sorted(single.glob("part-*.parquet"))[0]
    schema = pq.read_schema(part)
    assert schema.field("embedding").type == pa.list_(pa.float32(), 256) and not schema.field("embedding").nullable
    assert schema.field("record").type == pa.string() and schema.field("n_used").type == pa.int32()
    metadata = json.loads(schema.metadata[b"clef_sdk"])
    assert metadata["model"]["embed_dim"] == 256 and metadata["options"]["pooling"] == "mean"
    assert "weights_sha256" in metadata["model"] and metadata["clef_sdk"] == clef.__version__
    frame = pd.read_parquet(single)
    assert len(frame) == len(GOOD) * 2 and len(frame["embedding"].iloc[0]) == 256
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(single / "*.parquet").height == len(GOOD) * 2
    duckdb = pytest.importorskip("duckdb")
    count, dim = duckdb.sql(f"SELECT count(*), max(len(embedding)) FROM '{single}/*.parquet'").fetchall()[0]
    assert (count, dim) == (len(GOOD) * 2, 256)


def test_rerun_skips_finished_parts_and_other_jobs_are_refused(
    single: Path, archive: Path, small_safetensors: Path, tmp_path
) -> None:
    before = parts_digest(single)
    again = clef.embed_archive(archive, single, model=small_safetensors, leads=LEADS, shard_size=3, progress=False)
    assert again.computed == [] and again.already_done == [0, 1, 2, 3] and parts_digest(single) == before
    with pytest.raises(clef.errors.OutputError, match="another job.*shard_size"):
        clef.embed_archive(archive, single, model=small_safetensors, leads=LEADS, shard_size=4, progress=False)
    with pytest.raises(clef.errors.OutputError, match="another job.*model"):
        clef.embed_archive(archive, single, model=clef.build("small", seed=1), leads=LEADS, shard_size=3)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(clef.errors.OutputError, match="not empty"):
        clef.embed_archive(archive, tmp_path, model=small_safetensors, leads=LEADS)


def test_per_window_quality_float16_and_npy(
    archive: Path, encoder: clef.ClefEncoder, single: Path, small_safetensors: Path, tmp_path
) -> None:
    windows = clef.embed_archive(archive / "p0", tmp_path / "w", model=encoder, leads=["II"], per_window=True,
                                 quality="drop", progress=False)  # fmt: skip
    table, values = clef.read_embeddings(windows.output)
    assert list(table.columns) == ["record", "lead", "n_windows", "n_used", "fs", "window", "start_s", "usable"]
    first = table["record"].iloc[0]
    expected, quality = clef.embed(clef.WfdbSignal(archive / "p0" / first, "ii"), model=encoder, pooling=None,
                                   quality="return")  # fmt: skip
    rows = (table["record"] == first).to_numpy()
    np.testing.assert_allclose(values[rows], expected, rtol=0, atol=ATOL)
    assert table.loc[rows, "usable"].tolist() == list(quality.usable)
    assert table.loc[rows, "n_used"].iloc[0] == int(np.sum(quality.usable))

    npy = clef.embed_archive(archive, tmp_path / "n", model=small_safetensors, leads=LEADS, shard_size=3, format="npy",
                             dtype="float16", progress=False)  # fmt: skip
    table16, values16 = clef.read_embeddings(npy.output)
    reference_table, reference_values = clef.read_embeddings(single)
    pd.testing.assert_frame_equal(table16, reference_table)
    assert values16.dtype == np.float16
    np.testing.assert_array_equal(values16, reference_values.astype(np.float16))  # the same floats, rounded


def test_rank_variables_of_each_launcher() -> None:
    assert rank_from_environment({}) == (0, 1, "single process")
    assert rank_from_environment({"RANK": "1", "WORLD_SIZE": "4"})[:2] == (1, 4)
    array = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert rank_from_environment(array)[:2] == (2, 3)
    assert rank_from_environment({"SLURM_PROCID": "3", "SLURM_NTASKS": "8"})[:2] == (3, 8)
    with pytest.raises(ValueError, match="not an integer"):
        rank_from_environment({"RANK": "x", "WORLD_SIZE": "2"})


def test_unfinished_jobs_are_not_read_as_complete(archive: Path, small_safetensors: Path, tmp_path: Path) -> None:
    run = clef.embed_archive(archive, tmp_path / "o", model=small_safetensors, leads=LEADS, shard_size=3, rank=1,
                             world_size=2, progress=False)  # fmt: skip
    assert run.computed == [1, 3] and not run.complete
    with pytest.raises(clef.errors.OutputError, match="unfinished"):
        clef.read_embeddings(run.output)
    table, _ = clef.read_embeddings(run.output, allow_incomplete=True)
    assert 0 < len(table) < len(GOOD) * 2
    from clef_sdk.archive.status import archive_status

    status = archive_status(run.output)
    assert (status["parts_done"], status["n_parts"], status["complete"]) == (2, 4, False)
    rest = clef.embed_archive(archive, tmp_path / "o", model=small_safetensors, leads=LEADS, shard_size=3, rank=0,
                              world_size=2, progress=False)  # fmt: skip
    assert rest.computed == [0, 2] and rest.complete


def test_two_devices_give_the_bytes_of_one_process(
    single: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    run = clef.embed_archive(archive, tmp_path / "d", model=small_safetensors, leads=LEADS, shard_size=3, devices=["cpu", "cpu"],
                             progress=False)  # fmt: skip
    assert run.complete and sorted(run.computed) == [0, 1, 2, 3]
    assert parts_digest(run.output) == parts_digest(single)


def test_a_model_that_cannot_be_loaded_writes_nothing(archive: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    with pytest.raises(clef.errors.CheckpointError):
        clef.embed_archive(archive, tmp_path / "out", model=tmp_path / "bad.safetensors")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="shard_size"):
        clef.embed_archive(archive, tmp_path / "out", shard_size=0)
    with pytest.raises(FileNotFoundError, match="archive source not found"):
        clef.embed_archive(tmp_path / "absent", tmp_path / "out")


def test_dask_local_cluster_gives_the_same_parts(
    single: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    """The parts as tasks of a real local Dask cluster (two worker processes). Dask's nanny starts workers with
    OMP_NUM_THREADS=1, and torch's CPU kernels round differently with another thread count (measured: 2.4e-7), so
    the workers get this process's thread count: then the bytes are the same."""
    distributed = pytest.importorskip("distributed")
    import dask
    import torch

    from clef_sdk.archive.dask import embed_archive_dask

    threads = {"OMP_NUM_THREADS": str(torch.get_num_threads())}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": threads}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
            with distributed.Client(cluster) as client:
                run = embed_archive_dask(
                    client, archive, tmp_path / "k", model=small_safetensors, leads=LEADS, shard_size=3
                )
    assert run.complete and sorted(run.computed) == [0, 1, 2, 3]
    assert parts_digest(run.output) == parts_digest(single)
