"""The fine-tuning protocol of ``clef benchmark`` on a LUDB-layout folder of 30 real records (all 18 AF/flutter
records and 12 sinus ones): the cell equals a direct ``finetune`` run with the same settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

pytest.importorskip("lightning")

import clef_sdk as clef
from clef_sdk.benchmark import run_benchmark, task_splits
from clef_sdk.train import FineTuneProtocol, finetune


@pytest.fixture(scope="module")
def small_ludb(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ludb")
    table = pd.read_csv(data_dir / "ludb" / "ludb.csv", dtype=str, keep_default_na=False)
    atrial = table["Rhythms"].str.lower().str.startswith("atrial")
    chosen = pd.concat([table[atrial], table[~atrial].head(12)])
    chosen.to_csv(folder / "ludb.csv", index=False)
    (folder / "data").mkdir()
    for record in chosen["ID"]:
        for suffix in (".hea", ".dat"):
            shutil.copy(data_dir / "ludb" / "data" / f"{record}{suffix}", folder / "data")
    return folder


def test_finetune_cell_equals_a_direct_run(small_ludb: Path, small_ckpt: Path, tmp_path: Path) -> None:
    protocol = FineTuneProtocol(max_epochs=1, batch_size=8)
    results = run_benchmark(
        [small_ckpt],
        ["ludb:af"],
        {"ludb": small_ludb},
        output=tmp_path,
        protocols=[protocol],
        random_baseline=False,
        n_bootstrap=100,
        progress=False,
    )
    row = results.rows[results.rows["metric"] == "auroc"].iloc[0]
    assert row["protocol"] == "finetune" and row["n_test"] == 6  # 4 AF + 2 sinus (20% of each)
    assert results.protocol["protocols"][0]["max_epochs"] == 1

    splits = task_splits(clef.datasets.open("ludb", small_ludb), "af", None)
    model = finetune(
        splits.train.X,
        splits.train.y,
        model=str(small_ckpt),
        task="binary",
        groups=splits.train.groups,
        validation=(splits.val.X, splits.val.y),
        max_epochs=1,
        batch_size=8,
        seed=0,
        progress=False,
    )
    expected = roc_auc_score(splits.test.y, model.predict_proba(splits.test.X)[:, 1])
    # the same seeds on the same CPU: the same model (measured equal to the last bit)
    assert row["estimate"] == pytest.approx(expected, abs=1e-12)
    assert np.isfinite(row[["ci_low", "ci_high"]].to_numpy(dtype=float)).all()
