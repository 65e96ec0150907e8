"""Fine-tuning on real MIT-BIH windows (CPU, CLEF-small): the returned task model and its run folder, the best
epoch restored, early stopping, the protocols (frozen encoder, LP-FT, layer-wise rates, the authors' schedule),
every task, the bad inputs, and a run killed with SIGKILL resumed to the weights of an uninterrupted one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("lightning")

from mitdb_helpers import MITDB_FS, pvc_windows

import clef_sdk as clef
from clef_sdk.train.finetune_module import ClefFineTuning, learning_rate_factors
from clef_sdk.train.finetuning import finetune
from clef_sdk.train.protocols import PROTOCOLS, resolve_protocol

OPTIONS = {"batch_size": 16, "progress": False, "accelerator": "cpu"}


@pytest.fixture(scope="module")
def pvc(data_dir: Path) -> dict[str, np.ndarray]:
    """8 consecutive 10 s windows (360 Hz, mV) of each of 6 records, labelled 1 when a PVC beat falls inside."""
    return pvc_windows(data_dir)


@pytest.fixture(scope="module")
def encoder() -> clef.ClefEncoder:
    return clef.build("small", seed=0)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def run(pvc, encoder, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("finetune") / "run"
    model = finetune(
        pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, groups=pvc["records"], max_epochs=3,
        classes=["normal", "pvc"], output=output, **OPTIONS,
    )  # fmt: skip
    return model, output


def test_finetune_returns_a_task_model_and_leaves_its_run(run, pvc) -> None:
    model, output = run
    assert isinstance(model, clef.TaskModel) and not model.training
    assert model.task == "binary" and model.classes_.tolist() == ["normal", "pvc"]
    info = model.training_info
    assert info["protocol"]["name"] == "full" and info["monitor"] == "auroc"
    # 6 patients: a 5-fold split holds out one or two of them (both classes on each side)
    assert info["n_train"] + info["n_validation"] == len(pvc["labels"]) and info["n_validation"] in (8, 16)
    assert [entry["epoch"] for entry in info["history"]] == [0, 1, 2]
    assert info["best_score"] == max(entry["val/auroc"] for entry in info["history"])
    assert info["steps"] == 3 * int(np.ceil(info["n_train"] / 16))
    checkpoints = sorted((output / "checkpoints").glob("step=*.ckpt"))
    assert len(checkpoints) == 2 and not list((output / "checkpoints").glob("*.partial"))
    metrics = pd.read_csv(output / "logs" / "version_0" / "metrics.csv")
    assert metrics["val/auroc"].dropna().tolist() == pytest.approx([e["val/auroc"] for e in info["history"]])
    loaded = clef.load_task_model(output / "model.safetensors")
    x = pvc["signals"][:6]
    assert np.array_equal(loaded.predict_proba(x, MITDB_FS), model.predict_proba(x, MITDB_FS))
    assert loaded.training_info == info


def test_the_best_epoch_is_restored(pvc, encoder) -> None:
    """Explicit validation data, no early stopping: the returned weights give the smallest validation loss of
    the history, recomputed here from predict_proba on the raw validation recordings."""
    validation = np.isin(pvc["records"], ["200", "100"])
    model = finetune(
        pvc["signals"][~validation], pvc["labels"][~validation], fs=MITDB_FS, model=encoder, max_epochs=4,
        validation=(pvc["signals"][validation], pvc["labels"][validation]), monitor="val_loss", patience=None,
        lr=3e-3, **OPTIONS,
    )  # fmt: skip
    history = [entry["val/loss"] for entry in model.training_info["history"]]
    assert len(history) == 4 and model.training_info["best_epoch"] == int(np.argmin(history))
    p = model.predict_proba(pvc["signals"][validation], MITDB_FS)[:, 1]
    y = pvc["labels"][validation]
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss == pytest.approx(min(history), rel=1e-5)  # float32 logits vs float64 here: measured 2e-7 relative


def test_early_stopping_and_no_validation(pvc, encoder) -> None:
    stopped = finetune(
        pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, groups=pvc["records"], max_epochs=10,
        monitor="val_loss", patience=1, min_delta=10.0, **OPTIONS,
    )  # fmt: skip
    info = stopped.training_info
    assert info["stopped_early"] and info["epochs"] == 2 and len(info["history"]) == 2  # no epoch beats the first by 10
    last = finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, validation=0, max_epochs=2, **OPTIONS)
    info = last.training_info
    assert info["n_validation"] == 0 and info["best_epoch"] is None and info["history"] == []
    assert info["steps"] == 2 * 3  # 48 recordings in batches of 16, every epoch


def test_a_frozen_encoder_stays_frozen_and_lp_ft_unfreezes_it(pvc, encoder, tmp_path: Path) -> None:
    before = _state(encoder)
    linear = finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, protocol="linear", max_epochs=2,
                      validation=0, **OPTIONS)  # fmt: skip
    assert _max_difference(_state(linear.encoder), before) == 0.0
    assert _max_difference(_state(encoder), before) == 0.0  # the caller's encoder is copied, never changed
    lpft = finetune(
        pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, protocol="linear-then-full", linear_epochs=1,
        max_epochs=2, validation=0, output=tmp_path / "lpft", **OPTIONS,
    )  # fmt: skip
    first, second = sorted((tmp_path / "lpft" / "checkpoints").glob("step=*.ckpt"))
    after_linear = torch.load(first, map_location="cpu", weights_only=False)["state_dict"]
    encoder_keys = [k for k in after_linear if k.startswith("model.encoder.")]
    assert max(float((after_linear[k] - before[k[len("model.encoder.") :]]).abs().max()) for k in encoder_keys) == 0.0
    assert _max_difference(_state(lpft.encoder), before) > 1e-5


def test_layer_wise_learning_rates_and_schedules(encoder) -> None:
    model = clef.TaskModel(encoder, "binary", ["a", "b"])
    protocol = resolve_protocol("full", lr=1e-3, encoder_lr_scale=0.5, layer_decay=0.5)
    module = ClefFineTuning(model, protocol, steps_per_epoch=10)
    optimizer = module.configure_optimizers()["optimizer"]
    rates = {
        group["name"]: group["initial_lr"] if "initial_lr" in group else group["lr"] for group in optimizer.param_groups
    }
    top = len(encoder.stage_list)
    assert rates["head"] == 1e-3
    assert rates[f"encoder.{top}"] == pytest.approx(5e-4)
    assert rates["encoder.0"] == pytest.approx(5e-4 * 0.5**top)
    head, body = learning_rate_factors(resolve_protocol("linear-then-full", max_epochs=10, linear_epochs=2), 10)
    assert body(0) == body(19) == 0.0 and body(20) > 0.0  # frozen for 2 epochs of 10 steps
    assert head(0) > 0 and max(head(s) for s in range(100)) == pytest.approx(1.0) and head(99) < 1e-3
    upstream = ClefFineTuning(clef.TaskModel(encoder, "binary", ["a", "b"]), PROTOCOLS["upstream"], 10)
    config = upstream.configure_optimizers()
    scheduler = config["lr_scheduler"]["scheduler"]
    assert isinstance(config["optimizer"], torch.optim.Adam) and not isinstance(config["optimizer"], torch.optim.AdamW)
    assert config["optimizer"].defaults["lr"] == 1e-3 and config["optimizer"].defaults["weight_decay"] == 1e-5
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts)
    assert (scheduler.T_0, scheduler.T_mult, scheduler.eta_min) == (50, 1, 0.0)
    assert config["lr_scheduler"]["interval"] == "epoch"


def test_the_authors_preset() -> None:
    preset = PROTOCOLS["upstream"]
    assert (preset.optimizer, preset.lr, preset.weight_decay, preset.batch_size) == ("adam", 1e-3, 1e-5, 64)
    assert (preset.max_epochs, preset.patience, preset.min_delta, preset.monitor) == (100, 5, 1e-3, "val_loss")
    assert (preset.seed, preset.gpu_precision, preset.train_encoder) == (42, "16-mixed", True)


def test_every_task(pvc, encoder) -> None:
    counts = pvc["n_pvc"]
    names = np.where(counts == 0, "none", np.where(counts < 4, "few", "many"))
    multiclass = finetune(pvc["signals"], names, fs=MITDB_FS, model=encoder, groups=pvc["records"], max_epochs=1,
                          monitor="val_loss", **OPTIONS)  # fmt: skip
    assert multiclass.task == "multiclass" and multiclass.classes_.tolist() == ["few", "many", "none"]
    assert multiclass.predict_proba(pvc["signals"][:3], MITDB_FS).shape == (3, 3)
    labels = pd.DataFrame({"pvc": (counts > 0).astype(int), "many": (counts >= 4).astype(int)})
    multilabel = finetune(pvc["signals"], labels, fs=MITDB_FS, model=encoder, validation=0, max_epochs=1, **OPTIONS)
    assert multilabel.task == "multilabel" and multilabel.classes_.tolist() == ["pvc", "many"]
    rate = pd.Series(60 + counts.astype(float) * 2.5 + np.arange(len(counts)) % 7, name="rate")
    held = pvc["records"] == "100"  # nearly PVC-free: lower rates than the rest
    regression = finetune(pvc["signals"][~held], rate[~held], fs=MITDB_FS, model=encoder, max_epochs=1,
                          validation=(pvc["signals"][held], rate[held].to_numpy()), **OPTIONS)  # fmt: skip
    assert regression.task == "regression" and regression.classes_.tolist() == ["rate"]
    # standardised on the training targets only
    assert regression.target_scaling == pytest.approx((rate[~held].mean(), rate[~held].std(ddof=0)))
    split = finetune(pvc["signals"], rate, fs=MITDB_FS, model=encoder, groups=pvc["records"], max_epochs=1, **OPTIONS)
    assert split.target_scaling != pytest.approx((rate.mean(), rate.std(ddof=0)))
    assert regression.training_info["monitor"] == "mae"
    values = regression.predict(pvc["signals"][:4], MITDB_FS)
    assert values.shape == (4,) and np.all(np.abs(values - rate.mean()) < 10 * rate.std())


def test_balanced_options_run(pvc, encoder) -> None:
    model = finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, validation=0, max_epochs=1,
                     class_weighting="balanced", sampler="balanced", **OPTIONS)  # fmt: skip
    assert model.training_info["protocol"]["sampler"] == "balanced"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y": np.zeros(48, int)}, "only one class"),
        ({"y": np.r_[np.nan, np.ones(47)]}, "missing"),
        ({"y": np.r_[0, 1].repeat(20)}, "40 labels"),
        ({"y": np.full(48, 3.5), "task": "regression"}, "constant"),
        ({"y": np.array(["n", "p"] * 24), "classes": ["n", "x"]}, "not among the classes"),
        ({"y": np.r_[0, 1, 2].repeat(16), "classes": ["a", "b"], "task": "binary"}, "binary"),
        ({"fs": None}, "fs"),
        ({"protocol": "fast"}, "protocol"),
        ({"lr": -1.0}, "lr must be"),
        ({"momentum": 0.9}, "unknown fine-tuning option"),
        ({"resume": True}, "output folder"),
        ({"validation": 1.5}, "validation"),
        ({"sampler": "balanced", "y": np.arange(48.0) / 3, "task": "regression"}, "balanced"),
        ({"monitor": "mae"}, "regression metric"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(pvc, encoder, change: dict, message: str) -> None:
    arguments = {"y": pvc["labels"], "fs": MITDB_FS, "max_epochs": 1, **change}
    y = arguments.pop("y")
    with pytest.raises((ValueError, TypeError), match=message):
        finetune(pvc["signals"], y, model=encoder, **{**OPTIONS, **arguments})


def test_one_recording_and_a_validation_set_without_a_class_are_refused(pvc, encoder) -> None:
    with pytest.raises(ValueError, match="several"):
        finetune(pvc["signals"][0], [1], fs=MITDB_FS, model=encoder, **OPTIONS)
    normal = pvc["labels"] == 0
    with pytest.raises(ValueError, match="validation set lacks"):
        finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, max_epochs=1,
                 validation=(pvc["signals"][normal], pvc["labels"][normal]), **OPTIONS)  # fmt: skip


def test_resume_guards(run, pvc, encoder) -> None:
    _, output = run
    with pytest.raises(FileExistsError, match="resume=True"):
        finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, output=output, **OPTIONS)
    with pytest.raises(ValueError, match="cannot resume"):
        finetune(pvc["signals"][:40], pvc["labels"][:40], fs=MITDB_FS, model=encoder, groups=pvc["records"][:40],
                 classes=["normal", "pvc"], max_epochs=3, output=output, resume=True, **OPTIONS)  # fmt: skip


KILL_SCRIPT = """
import os, signal, sys
import numpy as np
import lightning.pytorch as L
import clef_sdk as clef
from clef_sdk.train.finetuning import finetune

class DieAtStep(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

data = np.load(sys.argv[1])
callbacks = [DieAtStep()] if int(sys.argv[3]) > 0 else []
finetune(data["signals"], data["labels"], fs=360, model=clef.build("small", seed=0), groups=data["records"],
         max_epochs=3, batch_size=16, checkpoint_every=2, output=sys.argv[2], resume=True, callbacks=callbacks,
         progress=False, accelerator="cpu")
"""


def test_a_killed_run_resumes_to_the_model_of_an_uninterrupted_one(pvc, tmp_path: Path) -> None:
    """3 epochs of 2-3 steps, checkpoints every 2 steps and at each epoch end; killed at step 5 (mid-epoch, after
    the epoch-2 and step-4 checkpoints), then resumed: the same weights, bit for bit, and the same history."""
    data = tmp_path / "data.npz"
    np.savez(data, signals=pvc["signals"], labels=pvc["labels"], records=pvc["records"])
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(data), str(tmp_path / "resumed"), "5"],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    for name, kill_at in (("resumed", "0"), ("straight", "0")):
        finished = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(data), str(tmp_path / name), kill_at],
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
        assert finished.returncode == 0, finished.stderr[-3000:]
    resumed = clef.load_task_model(tmp_path / "resumed" / "model.safetensors")
    straight = clef.load_task_model(tmp_path / "straight" / "model.safetensors")
    assert _max_difference(_state(resumed), _state(straight)) == 0.0  # measured 0
    assert resumed.training_info["history"] == straight.training_info["history"]
    assert resumed.training_info["best_epoch"] == straight.training_info["best_epoch"]


def test_the_function_is_not_shadowed_by_its_module() -> None:
    """``clef_sdk.train.finetune`` stays the function once every fine-tuning module has been imported."""
    import importlib

    import clef_sdk.train as train

    for name in ("finetuning", "finetune_data", "finetune_module", "protocols", "task_losses", "labelled_records"):
        importlib.import_module(f"clef_sdk.train.{name}")
    assert callable(train.finetune) and train.finetune is finetune


@pytest.mark.parametrize(("epochs", "steps_per_epoch"), [(1, 1), (2, 3), (100, 7)])
def test_schedule_factors_never_exceed_one(epochs: int, steps_per_epoch: int) -> None:
    """A warm-up shorter than a step (a short run) must not multiply the learning rate."""
    for name in ("full", "linear", "linear-then-full"):
        protocol = resolve_protocol(name, max_epochs=epochs)
        for factor in learning_rate_factors(protocol, steps_per_epoch):
            values = [factor(step) for step in range(epochs * steps_per_epoch)]
            assert max(values) <= 1.0 and min(values) >= 0.0


def test_the_head_sees_standardised_features_on_request(pvc, encoder) -> None:
    """``standardise_features=True`` standardises the pooled embeddings with the training recordings' mean and std
    under the initial encoder; every preset leaves it off."""
    assert not any(preset.standardise_features for preset in PROTOCOLS.values())
    linear = finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, protocol="linear", validation=0,
                      max_epochs=1, standardise_features=True, **OPTIONS)  # fmt: skip
    pooled = clef.embed(pvc["signals"], MITDB_FS, model=encoder)
    assert np.allclose(linear.feature_norm.mean.numpy(), pooled.mean(axis=0), rtol=1e-4, atol=1e-7)
    assert np.allclose(linear.feature_norm.scale.numpy(), pooled.std(axis=0) + 1e-6, rtol=1e-3)  # float32 sums
    upstream = finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, protocol="upstream",
                        validation=0, max_epochs=1, **OPTIONS)  # fmt: skip
    assert not upstream.training_info["protocol"]["standardise_features"]
    assert torch.equal(upstream.feature_norm.mean, torch.zeros(encoder.embed_dim))
    assert torch.equal(upstream.feature_norm.scale, torch.ones(encoder.embed_dim))


@pytest.mark.gpu
def test_bf16_fine_tuning_on_a_gpu(pvc, encoder) -> None:
    """On a GPU the default precision is bf16 mixed; the run trains and its model predicts on the CPU."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = finetune(pvc["signals"], pvc["labels"], fs=MITDB_FS, model=encoder, groups=pvc["records"], max_epochs=2,
                     batch_size=16, progress=False, accelerator="gpu", devices=1)  # fmt: skip
    assert model.training_info["precision"] == "bf16-mixed"
    assert np.isfinite(model.predict_proba(pvc["signals"][:4], MITDB_FS)).all()
