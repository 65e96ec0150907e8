"""``clef train finetune`` on a folder of real LUDB records and a labels CSV keyed by record: validation and test
splits from a split column, the test report, clear errors for rows without a record or a missing column, and 2 DDP
processes (gloo) giving the model of one process with the whole batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("wfdb")

from ludb_helpers import LUDB_RECORDS, link_ludb

import clef_sdk as clef


def _sex(header: Path) -> str:
    for line in header.read_text().splitlines():
        if line.startswith("#<sex>:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no sex in {header}")


@pytest.fixture(scope="module")
def labelled(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """24 LUDB records (10 s, 500 Hz) in their own layout, and a CSV: record, sex (from the headers), patient and
    a fold 0-3 (fold 3 for testing, fold 2 for validation)."""
    root = link_ludb(data_dir, tmp_path_factory.mktemp("ludb-labelled"))
    table = pd.DataFrame(
        [
            {"record": f"data/{n}", "sex": _sex(data_dir / "ludb" / "data" / f"{n}.hea"), "patient": n}
            for n in LUDB_RECORDS
        ]
    )
    table["fold"] = table.groupby("sex").cumcount() % 4  # stratified by sex
    assert set(table.groupby("fold")["sex"].nunique()) == {2}  # both sexes in every fold
    labels = root / "labels.csv"
    table.to_csv(labels, index=False)
    return root, labels


@pytest.fixture(scope="module")
def checkpoint(conformance_dir: Path) -> Path:
    """CLEF-small after 2 pretraining steps (real weights, weak features)."""
    return conformance_dir / "clef_small_lightning.ckpt"


def _command(root: Path, labels: Path, model: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "clef_sdk", "train", "finetune", str(root), "--labels", str(labels), "--label", "sex",
        "--group-column", "patient", "--split-column", "fold", "--validation-split", "2", "--lead", "ii",
        "--model", str(model),
        "--max-epochs", "2", "--accelerator", "cpu", "--no-progress", "-o", str(output), *extra,
    ]  # fmt: skip


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900)


def test_finetune_command_trains_validates_and_tests(labelled, checkpoint: Path, tmp_path: Path) -> None:
    root, labels = labelled
    done = _run(_command(root, labels, checkpoint, tmp_path / "run", "--test-split", "3", "--batch-size", "8"))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["task"] == "binary" and summary["classes"] == ["F", "M"] and summary["epochs"] == 2
    model = clef.load_task_model(summary["model"])
    info = model.training_info
    folds = pd.read_csv(labels)["fold"]
    # folds 0-1 train, fold 2 validates, fold 3 tests
    assert (info["n_train"], info["n_validation"]) == (int((folds < 2).sum()), int((folds == 2).sum()))
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert set(metrics) == {"auroc", "auprc", "balanced_accuracy"} and 0 <= metrics["auroc"]["estimate"] <= 1
    assert summary["test"]["auroc"] == metrics["auroc"]["estimate"]
    assert f"test ({int((folds == 3).sum())} records)" in done.stderr


def test_finetune_command_errors(labelled, checkpoint: Path, tmp_path: Path) -> None:
    root, labels = labelled
    table = pd.read_csv(labels)
    table.loc[0, "record"] = "data/9999"
    broken = tmp_path / "broken.csv"
    table.to_csv(broken, index=False)
    missing = _run(_command(root, broken, checkpoint, tmp_path / "a"))
    assert missing.returncode != 0 and "1 record(s) not found" in missing.stderr and "data/9999" in missing.stderr
    no_column = _run(
        [*_command(root, labels, checkpoint, tmp_path / "b")[:-2], "--label", "age", "-o", str(tmp_path / "b")]
    )
    assert no_column.returncode != 0 and "no column(s) ['age']" in no_column.stderr
    no_split = _run(_command(root, labels, checkpoint, tmp_path / "c", "--test-split", "7"))
    assert no_split.returncode != 0 and "no row has split value '7'" in no_split.stderr


@pytest.mark.xdist_group("distributed")  # with --dist loadgroup: one process group at a time
def test_two_ddp_processes_equal_one_process_with_the_whole_batch(labelled, checkpoint: Path, tmp_path: Path) -> None:
    """`--devices 2` (DDP over gloo, 2 x 3 recordings per step) against `--devices 1` (6 per step): the same
    crops and the same averaged gradients, so the same weights up to float32 sums, and the same validation
    history (gathered from both processes)."""
    root, labels = labelled
    for name, devices, batch in (("one", "1", "6"), ("two", "2", "3")):
        done = _run(_command(root, labels, checkpoint, tmp_path / name, "--devices", devices, "--batch-size", batch))
        assert done.returncode == 0, done.stderr[-3000:]
    one = clef.load_task_model(tmp_path / "one" / "model.safetensors")
    two = clef.load_task_model(tmp_path / "two" / "model.safetensors")
    assert two.training_info["world_size"] == 2 and one.training_info["world_size"] == 1
    initial = clef.load(checkpoint)
    moved = max(
        float((a - b).abs().max()) for a, b in zip(one.encoder.state_dict().values(), initial.state_dict().values())
    )
    assert moved > 1e-5
    difference = max(float((a - b).abs().max()) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    assert difference <= 3e-5  # measured 7.3e-6: gradients summed in another order, amplified by Adam
    for a, b in zip(one.training_info["history"], two.training_info["history"]):
        assert a.keys() == b.keys()
        assert np.allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-4, atol=1e-6)
    assert torch.equal(torch.tensor(one.training_info["steps"]), torch.tensor(two.training_info["steps"]))


def test_finetune_command_over_a_prepared_store(labelled, ludb_store: Path, checkpoint: Path, tmp_path: Path) -> None:
    """The same labels CSV over the store prepared from the same 24 records (one band-passed float16 window
    each): the store's windows, z-scored, are clef.preprocess's up to float16, so the trained model scores the raw
    records as it scored the store's."""
    from clef_sdk.train.finetune_data import StoreRecordings
    from clef_sdk.train.finetuning import outputs_of

    root, labels = labelled
    argv = _command(root, labels, checkpoint, tmp_path / "run", "--test-split", "3", "--batch-size", "8")
    argv[argv.index(str(root))] = "--store"
    argv.insert(argv.index("--store") + 1, str(ludb_store))
    done = _run(argv)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    model = clef.load_task_model(summary["model"])
    assert model.training_info["sampling_rates_hz"] == [500.0]
    table = pd.read_csv(labels)
    store = StoreRecordings(ludb_store, table["record"].tolist(), "II")
    assert np.array_equal(store.n_windows, np.ones(24, int))
    raw = np.stack([clef.WfdbSignal(root / record, "ii")[:5000] for record in table["record"]])
    windows = np.concatenate([store.windows(i) for i in range(len(store))])
    # float16 storage of the band-passed windows: measured max 2.8e-3 after the z-score (unit variance)
    assert np.abs(windows - clef.preprocess(raw, 500)[:, 0]).max() < 2e-2
    from_store = outputs_of(model, store)
    from_raw = model.predict_proba(raw, 500)
    assert np.abs(from_store - from_raw).max() < 1e-2  # measured 1.6e-4 (probabilities 0.25-0.99, a scaled head)
    with pytest.raises(ValueError, match="no lead 'X9'"):
        StoreRecordings(ludb_store, table["record"].tolist(), "X9")
    with pytest.raises(ValueError, match="not in the store"):
        StoreRecordings(ludb_store, ["data/999"], "II")
