"""Training with Lightning on the CPU: a run's files and logs, the four methods, a run killed with SIGKILL and
resumed (the same weights as an uninterrupted one), 2 DDP processes (gloo) equal to 1, and the resume guards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

pytest.importorskip("lightning")

from clef_sdk.models import build
from clef_sdk.train.trainer import fit, latest_checkpoint

FIT_OPTIONS = {"batch_size": 8, "num_workers": 0, "accelerator": "cpu", "progress": False}


def _backbone(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_a_run_leaves_checkpoints_logs_and_hyperparameters(trained_run) -> None:
    run_dir = trained_run.run_dir
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step=000000002.ckpt", "step=000000004.ckpt"]
    assert trained_run.checkpoint == run_dir / "checkpoints" / "step=000000004.ckpt"
    metrics = pd.read_csv(run_dir / "logs" / "version_0" / "metrics.csv")
    losses = metrics["train/loss_step"].dropna()
    assert len(losses) == 4 and losses.between(0, 10).all()
    assert (metrics["train/samples_per_s"].dropna() > 0).all()
    assert metrics["lr-AdamW"].dropna().iloc[0] == pytest.approx(1e-4)
    hparams = (run_dir / "hparams.json").read_text()
    assert '"method": "clef"' in hparams and '"size": "small"' in hparams and "24 windows of 24 records" in hparams
    # the weights moved from their seeded initialisation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        initial = build("small").state_dict()
    assert _max_difference(_backbone(trained_run.checkpoint), initial) > 1e-4


@pytest.mark.parametrize("method", ["simclr", "byol", "moco"])
def test_baseline_methods_train(ludb_store: Path, tmp_path: Path, method: str) -> None:
    run = fit(ludb_store, output=tmp_path / method, method=method, max_steps=2, log_every=1, **FIT_OPTIONS)
    losses = pd.read_csv(run.run_dir / "logs" / "version_0" / "metrics.csv")["train/loss_step"].dropna()
    assert len(losses) == 2 and torch.isfinite(torch.tensor(losses.to_numpy())).all()
    objective = run.module.objective
    if method == "moco":
        assert int(objective.queue_position) == 2 * 8  # two batches of 8 keys enqueued
    if method == "byol":
        online, target = run.module.backbone.state_dict(), objective.target.state_dict()
        assert 0 < _max_difference(online, target) < 1e-2  # an exponential moving average of the online weights


KILL_SCRIPT = """
import os, signal, sys
import lightning.pytorch as L
from clef_sdk.train.trainer import fit

class DieAtStep(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 5:  # after the checkpoint of step 4, before the one of step 6
            os.kill(os.getpid(), signal.SIGKILL)

fit(sys.argv[1], output=sys.argv[2], max_steps=7, checkpoint_every=2, callbacks=[DieAtStep()],
    batch_size=8, num_workers=0, accelerator="cpu", progress=False)
"""


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(ludb_store: Path, tmp_path: Path) -> None:
    """24 windows, batch 8: 3 steps per epoch, so the kill falls mid-epoch and the run crosses two epoch ends
    (where the learning-rate scheduler steps). On one machine the resumed run is bit for bit the same."""
    killed = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(ludb_store), str(tmp_path / "resumed")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert latest_checkpoint(tmp_path / "resumed").name == "step=000000004.ckpt"
    resumed = fit(ludb_store, output=tmp_path / "resumed", max_steps=7, checkpoint_every=2, resume=True, **FIT_OPTIONS)
    straight = fit(ludb_store, output=tmp_path / "straight", max_steps=7, checkpoint_every=2, **FIT_OPTIONS)
    assert resumed.checkpoint.name == straight.checkpoint.name == "step=000000007.ckpt"
    assert _max_difference(_backbone(resumed.checkpoint), _backbone(straight.checkpoint)) == 0.0  # measured 0
    resumed_state = torch.load(resumed.checkpoint, map_location="cpu", weights_only=True)
    straight_state = torch.load(straight.checkpoint, map_location="cpu", weights_only=True)
    assert resumed_state["lr_schedulers"] == straight_state["lr_schedulers"]
    assert resumed_state["epoch"] == straight_state["epoch"]
    # the first attempt's logs are kept beside the resumed one's
    assert sorted(p.name for p in (tmp_path / "resumed" / "logs").iterdir()) == ["version_0", "version_1"]


def _fit_command(store: Path, output: Path, batch: int, devices: int) -> list[str]:
    return [
        "-m",
        "clef_sdk",
        "train",
        "fit",
        "--data",
        str(store),
        "--batch-size",
        str(batch),
        "--devices",
        str(devices),
        "--accelerator",
        "cpu",
        "--max-steps",
        "3",
        "--workers",
        "0",
        "--no-progress",
        "--log-every",
        "1",
        "--output",
        str(output),
    ]


def _launch(processes: list[tuple[list[str], dict[str, str]]]) -> str:
    """Run the processes together; returns their standard error, joined."""
    import os

    running = [
        subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv, env in processes
    ]
    errors = []
    for process in running:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        errors.append(err)
    return "\n".join(errors)


@pytest.mark.xdist_group("distributed")  # with --dist loadgroup: one process group at a time
def test_two_ddp_processes_equal_one_process_with_the_whole_batch(ludb_store: Path, tmp_path: Path) -> None:
    """`clef train fit --devices 2` (DDP over gloo, 2 x 4 subjects) against `--devices 1` (8 subjects): the same
    batches, views, gathered negatives and averaged gradients, so the same weights up to float32 sums. The same
    command started by torchrun, and by two processes with the environment srun gives its tasks, runs the same
    job without a change."""
    python = sys.executable
    torchrun = str(Path(python).with_name("torchrun"))
    slurm = {
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NODEID": "0",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "clef",
        "SLURM_NODELIST": "localhost",
        "SLURM_JOB_NUM_NODES": "1",
    }
    _launch([([python, *_fit_command(ludb_store, tmp_path / "one", 8, 1)], {})])
    _launch([([python, *_fit_command(ludb_store, tmp_path / "lightning", 4, 2)], {})])
    _launch([([torchrun, "--nproc_per_node", "2", *_fit_command(ludb_store, tmp_path / "torchrun", 4, 2)], {})])
    srun_log = _launch(
        [
            (
                [python, *_fit_command(ludb_store, tmp_path / "srun", 4, 2)],
                # verbose: Lightning's own lines (kept quiet by default) say whether it took the job for SLURM's
                {**slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r), "CLEF_SDK_VERBOSE": "1"},
            )
            for r in range(2)
        ]
    )
    assert srun_log.count("SLURM auto-requeueing enabled") == 2  # Lightning took the job for a SLURM one
    weights = {
        name: _backbone(tmp_path / name / "checkpoints" / "step=000000003.ckpt")
        for name in ("one", "lightning", "torchrun", "srun")
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        initial = build("small").state_dict()
    # Adam moves each weight by up to ~lr (1e-4) per step: 3 steps moved them by 3e-4; the two runs differ by
    # 3.5e-6 (measured; gradients summed in another order, amplified where Adam divides by a tiny second moment)
    assert _max_difference(weights["one"], initial) > 2e-4
    assert _max_difference(weights["one"], weights["lightning"]) <= 2e-5
    for launcher in ("torchrun", "srun"):  # the same two-process computation: measured 0 difference
        assert _max_difference(weights["lightning"], weights[launcher]) <= 1e-6
    losses = [
        pd.read_csv(tmp_path / name / "logs" / "version_0" / "metrics.csv")["train/loss_step"].dropna().to_numpy()
        for name in ("one", "lightning")
    ]
    assert len(losses[0]) == len(losses[1]) == 3
    assert abs(losses[0] - losses[1]).max() <= 1e-5 * abs(losses[0]).max()  # measured 0 at step 0


def test_resume_guards(trained_run, ludb_store: Path, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="pass --resume to continue it"):
        fit(ludb_store, output=trained_run.run_dir, max_steps=5, **FIT_OPTIONS)
    with pytest.raises(
        ValueError, match="cannot resume .* with other settings .*method: 'clef' in the run, 'simclr' now"
    ):
        fit(ludb_store, output=trained_run.run_dir, method="simclr", max_steps=5, resume=True, **FIT_OPTIONS)
    fresh = fit(ludb_store, output=tmp_path / "fresh", max_steps=1, resume=True, **FIT_OPTIONS)  # nothing to resume
    assert fresh.checkpoint.name == "step=000000001.ckpt"


def test_latest_checkpoint_skips_damaged_files_and_sees_slurm_requeue_checkpoints(trained_run, tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    (run_dir / "checkpoints").mkdir(parents=True)
    for path in (trained_run.run_dir / "checkpoints").iterdir():
        (run_dir / "checkpoints" / path.name).write_bytes(path.read_bytes())
    (run_dir / "checkpoints" / "step=000000006.ckpt").write_bytes(b"truncated")
    assert latest_checkpoint(run_dir).name == "step=000000004.ckpt"
    assert latest_checkpoint(tmp_path / "nothing") is None
    # what Lightning saves when SLURM signals a requeue, further along than the periodic checkpoints
    requeued = torch.load(trained_run.checkpoint, map_location="cpu", weights_only=True)
    requeued["global_step"] = 5
    torch.save(requeued, run_dir / "hpc_ckpt_1.ckpt")
    assert latest_checkpoint(run_dir) == run_dir / "hpc_ckpt_1.ckpt"


def test_fit_rejects_bad_settings(ludb_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size must be one of"):
        fit(ludb_store, output=tmp_path / "a", size="tiny", max_steps=1, **FIT_OPTIONS)
    with pytest.raises(ValueError, match="method must be one of"):
        fit(ludb_store, output=tmp_path / "b", method="mae", max_steps=1, **FIT_OPTIONS)
    with pytest.raises(FileNotFoundError, match="not a pretraining store"):
        fit(tmp_path, output=tmp_path / "c", max_steps=1, **FIT_OPTIONS)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        fit(ludb_store, output=tmp_path / "d", max_steps=1, **{**FIT_OPTIONS, "batch_size": 32})
