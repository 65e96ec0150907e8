"""``run_benchmark`` and ``clef benchmark`` on real data: LUDB (all 200 records) and a tpcp-layout MIT-BIH folder
cut to the first 3 minutes of five records (real beats and PVCs), with the conformance checkpoint and its
random-init baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, roc_auc_score

import clef_sdk as clef
from clef_sdk.benchmark import run_benchmark
from clef_sdk.benchmark.cache import EmbeddingCache

MITDB_RECORDS = ("100", "105", "200", "106", "116", "119")  # DS2 (test): 100, 105, 200; DS1: one is val
MINUTES = 3


@pytest.fixture(scope="module")
def short_mitdb(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mitdb")
    n = MINUTES * 60 * 360
    for record in MITDB_RECORDS:
        source = data_dir / "mitdb-tpcp"
        np.savez(folder / f"{record}.npz", ecg=np.load(source / f"{record}.npz")["ecg"][:n])
        for kind, column in (("all", "R"), ("pvc", "PVC")):
            table = pd.read_csv(source / f"{record}_{kind}.csv", index_col=0)
            table[table[column] < n].to_csv(folder / f"{record}_{kind}.csv")
    return folder


@pytest.fixture(scope="module")
def bench(small_ckpt: Path, data_dir: Path, short_mitdb: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("bench")
    roots = {"ludb": data_dir / "ludb", "mitdb": short_mitdb}
    tasks = ["mitdb:pvc", "ludb:af", "ludb:age"]
    results = run_benchmark([small_ckpt], tasks, roots, output=output, n_bootstrap=200, progress=False)
    return {"results": results, "output": output, "roots": roots, "tasks": tasks, "ckpt": small_ckpt}


def test_every_model_task_and_metric_with_a_random_init_row(bench: dict) -> None:
    rows = bench["results"].rows
    assert list(dict.fromkeys(rows["model"])) == ["clef_small_lightning.ckpt", "random-init small"]
    headline = rows[rows["metric"].isin(["auroc", "mae"])]
    assert len(headline) == 2 * 3  # two models x three tasks
    assert set(rows.loc[rows["task"] == "ludb:age", "metric"]) == {"mae", "rmse", "r2", "pearson_r"}
    finite = headline[["estimate", "ci_low", "ci_high"]].to_numpy()
    assert np.isfinite(finite).all() and (finite[:, 1] <= finite[:, 0]).all() and (finite[:, 0] <= finite[:, 2]).all()
    # the LUDB test split: 40 subjects (20%), 4 of them AF; MIT-BIH: records 100, 105 and 200, 18 windows each
    n_test = rows.groupby("task")["n_test"].first().to_dict()
    assert n_test == {"ludb:af": 40, "ludb:age": 40, "mitdb:pvc": 3 * MINUTES * 6}
    table = bench["results"].markdown()
    assert table.splitlines()[0] == "| task | protocol | metric | clef_small_lightning.ckpt | random-init small |"
    assert "| mitdb:pvc (n=54) | probe | auroc |" in table


def test_files_and_the_recorded_protocol(bench: dict) -> None:
    output = bench["output"]
    saved = json.loads((output / "results.json").read_text())
    protocol = saved["protocol"]
    model = protocol["models"]["clef_small_lightning.ckpt"]
    assert model["file_sha256"] == clef.files.sha256_file(bench["ckpt"]) and model["size"] == "small"
    baseline = protocol["models"]["random-init small"]
    assert baseline["build"] == "clef.build('small', seed=0)"
    assert baseline["weights_sha256"] == clef.benchmark.weights_digest(clef.build("small", seed=0))
    sizes = protocol["tasks"]["ludb:af"]["sizes"]
    assert sizes == {
        "train": {"examples": 120, "patients": 120},
        "val": {"examples": 40, "patients": 40},
        "test": {"examples": 40, "patients": 40},
    }
    assert protocol["tasks"]["mitdb:pvc"]["lead"] == "II" and protocol["tasks"]["mitdb:pvc"]["split"] == "official"
    assert pd.read_csv(output / "results.csv").shape[0] == len(bench["results"].rows)
    assert (output / "results.md").read_text().strip() == bench["results"].markdown()


def test_metrics_equal_an_independent_computation_from_the_cached_embeddings(bench: dict) -> None:
    """Refit the probe from the cached embeddings by hand and score the test split with scikit-learn."""
    from sklearn.model_selection import PredefinedSplit

    dataset = clef.datasets.open("ludb", bench["roots"]["ludb"])
    rows = bench["results"].rows
    model_key = json.loads((bench["output"] / "results.json").read_text())["protocol"]["models"]
    key = str(model_key["clef_small_lightning.ckpt"]["weights_sha256"])[:16]
    folder = bench["output"] / "embeddings" / key / "ludb-I-500"
    embeddings = EmbeddingCache(folder, json.loads((folder / "manifest.json").read_text())).load()
    for task, metric in (("af", "auroc"), ("age", "mae")):
        X, y, _, split = dataset.task(task)
        E = np.stack([embeddings[i] for i in y.index])
        fit = split.isin(["train", "val"]).to_numpy()
        fold = np.where(split[fit] == "val", 0, -1)
        probe = clef.fit_probe(E[fit], y[fit].to_numpy(), cv=PredefinedSplit(fold), random_state=0)
        test = (split == "test").to_numpy()
        if task == "af":
            expected = roc_auc_score(y[test], probe.predict_proba(E[test])[:, 1])
        else:
            expected = mean_absolute_error(y[test], probe.predict(E[test]))
        got = rows[(rows["task"] == f"ludb:{task}") & (rows["metric"] == metric)].iloc[0]["estimate"]
        # AUROC agreed exactly; the MAE by 3.3e-7 relative (float32 embeddings, summed in another order)
        assert got == pytest.approx(expected, rel=1e-5)


def test_a_rerun_resumes_and_computes_only_what_is_missing(bench: dict, tmp_path: Path) -> None:
    output = tmp_path / "copy"
    shutil.copytree(bench["output"], output)
    cells = sorted((output / "cells").glob("*.json"))
    assert len(cells) == 6
    removed = next(c for c in cells if "ludb-af" in c.name and not c.name.startswith(cells[0].name[:16]))
    removed.unlink()  # as if the run had been killed before this cell
    parts = sorted((output / "embeddings").rglob("part-*.npz"))
    before = {p: p.stat().st_mtime_ns for p in parts}
    rerun = run_benchmark(
        [bench["ckpt"]], bench["tasks"], bench["roots"], output=output, n_bootstrap=200, progress=False
    )
    assert removed.is_file()
    assert {p: p.stat().st_mtime_ns for p in parts} == before  # no embedding was computed again
    pd.testing.assert_frame_equal(
        rerun.rows.drop(columns="seconds"), bench["results"].rows.drop(columns="seconds"), check_exact=True
    )


def test_the_embedding_cache_refuses_another_model_and_damaged_parts(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, {"weights_sha256": "a"})
    signals = [np.zeros(10)] * 3
    values = cache.embeddings(["x", "y", "z"], signals, lambda chunk: np.ones((len(chunk), 4)))
    assert values.shape == (3, 4)
    assert cache.embeddings(["z", "x"], signals[:2], lambda chunk: pytest.fail("recomputed")).shape == (2, 4)
    with pytest.raises(ValueError, match="written for"):
        EmbeddingCache(tmp_path, {"weights_sha256": "b"})
    next(tmp_path.glob("part-*.npz")).write_bytes(b"damaged")
    with pytest.raises(ValueError, match="unreadable"):
        cache.load()
    with pytest.raises(ValueError, match="non-finite"):
        EmbeddingCache(tmp_path / "n", {}).embeddings(["a"], signals[:1], lambda chunk: np.full((1, 4), np.nan))


def test_bad_requests_are_clear(data_dir: Path, small_ckpt: Path, tmp_path: Path) -> None:
    roots = {"ludb": data_dir / "ludb"}
    with pytest.raises(ValueError, match="DATASET:TASK"):
        run_benchmark([small_ckpt], ["ludb"], roots, output=tmp_path)
    with pytest.raises(ValueError, match="no root folder for mitdb"):
        run_benchmark([small_ckpt], ["mitdb:pvc"], roots, output=tmp_path)
    with pytest.raises(clef.DatasetError, match="no task 'afib'"):
        run_benchmark([small_ckpt], ["ludb:afib"], roots, output=tmp_path)
    with pytest.raises(ValueError, match="FineTuneProtocol"):
        run_benchmark([small_ckpt], ["ludb:af"], roots, output=tmp_path, protocols=["finetune"])


def test_command_line(bench: dict, tmp_path: Path) -> None:
    output = tmp_path / "cli"
    shutil.copytree(bench["output"], output)  # the cached cells make this quick
    command = [sys.executable, "-m", "clef_sdk", "benchmark", "--model", str(bench["ckpt"]), "-q", "--bootstrap=200"]
    for task in bench["tasks"]:
        command += ["--task", task]
    for name, root in bench["roots"].items():
        command += ["--root", f"{name}={root}"]
    done = subprocess.run([*command, "-o", str(output)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert bench["results"].markdown() in done.stdout and f"markdown: {output / 'results.md'}" in done.stdout
    bad_root = [*command[:8], "--task", "ludb:af", "--root", "ludb", "-o", str(output)]
    bad = subprocess.run(bad_root, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "NAME=VALUE" in bad.stderr


def test_multilabel_task_on_a_ptbxl_copy(data_dir: Path, small_ckpt: Path, tmp_path: Path) -> None:
    """PTB-XL superdiagnostic on 27 real rows (folds 1-10): macro AUROC and AUPRC over the labels that have positives
    and negatives in every split; the others are dropped and recorded, never scored as undefined."""
    pytest.importorskip("wfdb")
    from ptbxl_layout import write_ptbxl

    (tmp_path / "ptb-xl").mkdir()
    root = write_ptbxl(tmp_path / "ptb-xl", data_dir)
    results = run_benchmark(
        [small_ckpt], ["ptbxl:superdiagnostic"], {"ptbxl": root}, output=tmp_path / "out", lead="I",
        random_baseline=False, n_bootstrap=100, progress=False,
    )  # fmt: skip
    task = results.protocol["tasks"]["ptbxl:superdiagnostic"]
    splits = clef.benchmark.task_splits(clef.datasets.open("ptbxl", root), "superdiagnostic", "I")
    y = clef.datasets.open("ptbxl", root).task("superdiagnostic").y
    for label in task["labels"]:  # kept: positives and negatives in train, val and test
        for part in ("train", "val", "test"):
            column = y.loc[getattr(splits, part).ids, label]
            assert 0 < column.sum() < len(column)
    assert sorted(task["labels"] + task["labels_dropped"]) == sorted(y.columns)
    assert task["labels_dropped"], "this small copy lacks some superclass in a split"
    assert task["sizes"]["test"]["examples"] == 5 and task["lead"] == "I"
    headline = results.rows[results.rows["metric"].isin(["auroc", "auprc"])]
    assert len(headline) == 2 and np.isfinite(headline["estimate"]).all()
    assert "| ptbxl:superdiagnostic (n=5) | probe | auprc |" in results.markdown()
