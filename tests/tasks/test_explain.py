"""clef_sdk.tasks.explain: integrated-gradients attributions of a TaskModel on real ECG: the time axis of the input
(its rate and length), completeness against the model's own outputs, the target of every task, the flat baseline's
path (the z-score would make the raw straight path degenerate), the input checks shared with clef.embed, a 30 min
recording in bounded memory, and the figure."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import clef_sdk as clef
from clef_sdk.tasks import TaskModel

pytest.importorskip("captum", reason="explain needs captum: pip install 'clef-sdk[explain]'")

from clef_sdk.tasks.explain import Attribution, explain, plot_attribution

# Completeness, sum(values) - (output - baseline_output), measured on CLEF-small seed 0 with a head drawn after
# torch.manual_seed(1), on the bundled mitdb-100 (first 10 s and 25 s) and ludb-1, every task, mean and max pooling:
# at n_steps=16 the largest |delta| was 2.1e-5 (probabilities; changes of output 0.0004-0.066) and 3.9e-4 for
# regression (target units, std 10, changes of 2.2-2.7); at 256 steps the floor of float32 encoder gradients,
# 6.1e-7 and 2.4e-5. Tolerances: the 16-step values times 5.
N_STEPS = 16
DELTA_ATOL = {"binary": 1e-4, "multiclass": 1e-4, "multilabel": 1e-4, "regression": 2e-3}
# output against predict_proba (the numpy preprocessing; the torch path in float64 matches it to 1e-6 and the
# encoder runs in float32 in both): FORWARD_ATOL of tests/tasks/test_model.py.
OUTPUT_ATOL = 1e-5

CLASSES = {
    "binary": ["normal", "pvc"],
    "multiclass": ["sinus", "af", "other"],
    "multilabel": ["af", "lbbb", "rbbb", "pvc"],
    "regression": ["age"],
}


def make(task: str = "binary", pooling: str = "mean") -> TaskModel:
    torch.manual_seed(1)
    kwargs = {"target_scaling": (50.0, 10.0)} if task == "regression" else {}
    return TaskModel(clef.build("small", seed=0), task, CLASSES[task], pooling=pooling, **kwargs).eval()


@pytest.fixture(scope="module")
def mitdb() -> tuple[np.ndarray, float]:
    """MIT-BIH record 100 (MLII), first 60 s at 360 Hz, bundled with the package."""
    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    return signal, fs


@pytest.fixture(scope="module")
def ludb() -> tuple[np.ndarray, float]:
    signal, fs, _ = clef.datasets.load_example("ludb-1")
    return signal, fs


@pytest.fixture(scope="module")
def binary() -> TaskModel:
    return make("binary")


@pytest.fixture(scope="module")
def binary_attribution(binary, mitdb) -> Attribution:
    signal, fs = mitdb
    return explain(binary, signal[:5400], fs, n_steps=N_STEPS)  # 15 s: one 10 s window, the rest dropped


# ---- time axis, completeness, outputs ------------------------------------------------------------------------


def test_attributions_lie_on_the_inputs_own_time_axis(binary_attribution, mitdb) -> None:
    attribution = binary_attribution
    assert isinstance(attribution, Attribution)
    assert attribution.values.shape == (5400,) and attribution.values.dtype == np.float64
    assert attribution.fs == 360.0 and attribution.seconds[-1] == pytest.approx(5399 / 360)
    assert not attribution.values.flags.writeable
    assert attribution.target == "pvc" and attribution.method == "integrated_gradients"
    assert attribution.n_steps == N_STEPS and attribution.baseline == "flat"
    # tail="drop": the model sees 0-10 s; past the resampling filter's reach (a few ms at 360 Hz) the samples only
    # move the recording's mean, which the band-pass removes: no attribution there (measured 1.8e-8 of the largest,
    # the band-pass's float64 residual on a constant), and plenty before
    values, seconds = attribution.values, attribution.seconds
    assert np.abs(values[seconds > 10.1]).max() <= 1e-6 * np.abs(values).max()
    assert np.abs(values[seconds < 9.9]).mean() > 100 * np.abs(values[seconds > 10.1]).mean()


def test_rates_and_lengths_follow_each_recording(binary, mitdb, ludb) -> None:
    (m, fs_m), (u, fs_u) = mitdb, ludb
    results = explain(binary, [m[:3600], u], [fs_m, fs_u], n_steps=2)
    assert [r.values.shape for r in results] == [(3600,), (5000,)]
    assert [r.fs for r in results] == [360.0, 500.0]
    stacked = explain(binary, np.stack([m[:3600], m[3600:7200]]), fs_m, n_steps=2)
    assert isinstance(stacked, list) and [r.values.shape for r in stacked] == [(3600,), (3600,)]


@pytest.mark.parametrize("pooling", ["mean", "max"])
@pytest.mark.parametrize("task", list(CLASSES))
def test_completeness_and_outputs_for_every_task(task, pooling, mitdb) -> None:
    signal, fs = mitdb
    model = make(task, pooling)
    target = "rbbb" if task == "multilabel" else None
    x = signal[:9000]  # 25 s: two windows pooled, and a dropped tail
    attribution = explain(model, x, fs, target=target, n_steps=N_STEPS)
    assert abs(attribution.delta) <= DELTA_ATOL[task]
    assert attribution.delta == pytest.approx(
        attribution.values.sum() - (attribution.output - attribution.baseline_output), abs=1e-12
    )
    assert abs(attribution.output - attribution.baseline_output) > 10 * DELTA_ATOL[task]  # not vacuous
    if task == "regression":
        assert attribution.target is None
        assert attribution.output == pytest.approx(float(model.predict(x, fs)), abs=1e-3)
    else:
        column = list(model.classes_).index(attribution.target)
        assert attribution.output == pytest.approx(model.predict_proba(x, fs)[column], abs=OUTPUT_ATOL)
    # the baseline is a flat line: all-zero windows, whatever its level
    zeros = torch.zeros(1, 1, 5000)
    with torch.no_grad():
        logits = model(zeros).double()
        expected = model.values_from_logits(logits) if task == "regression" else model.proba_from_logits(logits)
    value = float(expected[0]) if task == "regression" else float(expected[0, column])
    assert attribution.baseline_output == pytest.approx(value, abs=1e-9)


PLACEMENTS = {  # rate, seconds, window options: identity, "conv" and "grouped" polyphase resampling; every tail
    "360 Hz, tail=pad": (360.0, 25.0, {"tail": "pad"}),
    "360 Hz, tail=last, stride 5 s": (360.0, 25.0, {"tail": "last", "stride_seconds": 5.0}),
    "500 Hz, tail=pad": (500.0, 14.0, {"tail": "pad"}),
    "257.3 Hz, tail=last": (257.3, 21.0, {"tail": "last"}),
}


@pytest.mark.parametrize("case", list(PLACEMENTS))
def test_the_paths_preprocessing_is_the_models_on_the_recording(case, binary, mitdb, ludb) -> None:
    """The flat baseline's path holds each window's z-score scale; on the recording itself it is the
    preprocessing, for every rate and window placement (measured: equal to the last bit)."""
    from scipy.signal import resample_poly

    from clef_sdk.tasks.explain import _FrozenScale

    fs, seconds, options = PLACEMENTS[case]
    signal, own = ludb if fs == 500.0 else mitdb
    if fs == 257.3:
        signal = resample_poly(signal, 2573, 3600)
    x = torch.as_tensor(signal[: round(seconds * fs)])[None]
    preprocessor = clef.Preprocessor(fs, **options)
    held = _FrozenScale(preprocessor, x)
    with torch.no_grad():
        windows = preprocessor(x)
        np.testing.assert_array_equal(held(x).numpy(), windows.numpy())
        flat = x.mean()
        np.testing.assert_allclose(held(flat + 0.3 * (x - flat)).numpy(), 0.3 * windows.numpy(), atol=1e-12)
        assert held(torch.full_like(x, 5.0)).abs().max() < 1e-12
    # and completeness holds there: measured |delta| <= 3.0e-5 at 8 steps
    attribution = explain(binary, x[0].numpy(), fs, n_steps=8, **options)
    assert attribution.values.shape == (x.shape[1],)
    assert abs(attribution.delta) <= 2e-4


def test_a_flat_baseline_at_any_level_gives_the_same_outputs(binary, mitdb) -> None:
    signal, fs = mitdb
    x = signal[:3600]
    at_mean = explain(binary, x, fs, n_steps=4)
    at_zero = explain(binary, x, fs, n_steps=4, baseline=0.0)
    as_array = explain(binary, x, fs, n_steps=4, baseline=np.full(3600, 0.0))
    assert at_zero.baseline_output == at_mean.baseline_output
    assert at_zero.values.sum() == pytest.approx(at_mean.values.sum(), abs=1e-6)
    np.testing.assert_allclose(as_array.values, at_zero.values, atol=1e-12)
    # the level multiplies the gradient: a DC offset of the recording (ADC counts) leaves the default unchanged
    offset = explain(binary, x + 1024.0, fs, n_steps=4)
    np.testing.assert_allclose(offset.values, at_mean.values, atol=1e-6 * np.abs(at_mean.values).max())


def test_a_signal_baseline_goes_through_the_real_preprocessing(binary, mitdb) -> None:
    signal, fs = mitdb
    x, other = signal[:3600], signal[7200:10800]
    attribution = explain(binary, x, fs, n_steps=N_STEPS, baseline=other)
    assert attribution.baseline == "signal"
    assert attribution.baseline_output == pytest.approx(binary.predict_proba(other, fs)[1], abs=OUTPUT_ATOL)
    # |delta| measured 7.7e-4, 1.8e-4 and 1.1e-4 at 8, 16 and 64 steps (of a change of 0.005): the path between two
    # recordings through the unmodified z-score converges more slowly than the flat baseline's straight one
    assert abs(attribution.delta) <= 1e-3


def test_the_raw_straight_path_from_a_flat_line_is_degenerate_under_the_z_score(binary, mitdb) -> None:
    """Why the flat baseline's path holds the z-score scale: through the unmodified preprocessing, every point of
    the raw straight path from a flat line but the first 1e-6 or so gives the encoder the recording's own windows
    (the z-score undoes the scaling), so the whole change of output happens where no quadrature looks."""
    signal, fs = mitdb
    x = torch.as_tensor(signal[:3600])[None]
    flat = x.mean()
    preprocessor = clef.Preprocessor(fs)
    with torch.no_grad():

        def p(alpha: float) -> float:
            return float(binary.proba_from_logits(binary(preprocessor(flat + alpha * (x - flat)).float()))[0, 1])

        change = p(1.0) - p(0.0)
        assert abs(change) > 0.01
        for alpha in (1e-4, 1e-2, 0.5):
            assert abs(p(alpha) - p(1.0)) < 1e-3 * abs(change)
        assert abs(p(1e-8) - p(0.0)) > 0.05 * abs(change)  # already under way at 1e-8 (measured 9%)


def test_the_negative_class_explains_one_minus_p(binary, binary_attribution, mitdb) -> None:
    signal, fs = mitdb
    negative = explain(binary, signal[:5400], fs, target="normal", n_steps=N_STEPS)
    assert negative.target == "normal"
    assert negative.output == pytest.approx(1 - binary_attribution.output, abs=1e-12)
    np.testing.assert_allclose(negative.values, -binary_attribution.values, atol=1e-9)


def test_multiclass_defaults_to_the_predicted_class(mitdb) -> None:
    signal, fs = mitdb
    model = make("multiclass")
    x = signal[:3600]
    attribution = explain(model, x, fs, n_steps=2)
    assert attribution.target == model.predict(x, fs)
    chosen = explain(model, x, fs, target="other", n_steps=2)
    assert chosen.target == "other"
    assert chosen.output == pytest.approx(model.predict_proba(x, fs)[2], abs=OUTPUT_ATOL)


def test_target_errors(mitdb) -> None:
    signal, fs = mitdb
    x = signal[:3600]
    with pytest.raises(ValueError, match=r"multilabel.*target=.*\['af', 'lbbb', 'rbbb', 'pvc'\]"):
        explain(make("multilabel"), x, fs, n_steps=2)
    with pytest.raises(ValueError, match=r"unknown target 'PVC'.*\['normal', 'pvc'\]"):
        explain(make("binary"), x, fs, target="PVC", n_steps=2)
    with pytest.raises(ValueError, match=r"unknown target 1"):
        explain(make("binary"), x, fs, target=1, n_steps=2)  # label names, never column indices
    with pytest.raises(TypeError, match="bool"):
        explain(make("binary"), x, fs, target=True, n_steps=2)
    regression = make("regression")
    assert explain(regression, x, fs, target="age", n_steps=2).target is None
    with pytest.raises(ValueError, match=r"unknown target 'sex'.*\['age'\]"):
        explain(regression, x, fs, target="sex", n_steps=2)


# ---- input checks -----------------------------------------------------------------------------------------------


def _bad_inputs(signal: np.ndarray) -> dict[str, tuple[object, object]]:
    with_inf = signal[:3600].copy()
    with_inf[100] = np.inf
    return {
        "inf": (with_inf, 360),
        "empty": (np.array([]), 360),
        "too short for a window": (signal[:1800], 360),
        "only a few samples": (signal[:10], 360),
        "missing fs": (signal[:3600], None),
        "fs in kHz": (signal[:3600], 0.36),
        "2-D of one lead": (signal[:3600, None], 360),
        "3-D": (signal[:3600].reshape(1, 1, 3600), 360),
        "flat": (np.zeros(3600), 360),
        "a path": ("record.npy", 360),
    }


@pytest.mark.parametrize("case", list(_bad_inputs(np.zeros(3600))))
def test_input_errors_are_those_of_embed(case, binary, mitdb) -> None:
    signal, _ = mitdb
    bad, fs = _bad_inputs(signal)[case]
    with pytest.raises((TypeError, ValueError)) as from_embed:
        clef.embed(bad, fs, model=binary.encoder)
    with pytest.raises(type(from_embed.value)) as from_explain:
        explain(binary, bad, fs, n_steps=2)
    assert str(from_explain.value) == str(from_embed.value)


def test_nan_gaps_are_refused_with_a_way_out(binary, mitdb) -> None:
    signal, fs = mitdb
    gappy = signal[:3600].copy()
    gappy[1000:1010] = np.nan
    with pytest.raises(ValueError, match=r"10 NaN sample\(s\) \(the first at index 1000\).*fill them first"):
        explain(binary, gappy, fs)
    with pytest.raises(ValueError, match=r"recording 1 has 10 NaN"):
        explain(binary, [signal[:3600], gappy], fs)


def test_option_errors(binary, mitdb) -> None:
    signal, fs = mitdb
    x = signal[:3600]
    with pytest.raises(ValueError, match="method must be one of"):
        explain(binary, x, fs, method="saliency")
    with pytest.raises(ValueError, match="n_steps must be between 1 and"):
        explain(binary, x, fs, n_steps=0)
    with pytest.raises(TypeError, match="n_steps must be an integer"):
        explain(binary, x, fs, n_steps=2.5)
    with pytest.raises(ValueError, match=r"baseline has shape \(100,\).*\(3600,\)"):
        explain(binary, x, fs, baseline=np.zeros(100))
    with pytest.raises(ValueError, match="baseline must be one of"):
        explain(binary, x, fs, baseline="zeros")
    with pytest.raises(ValueError, match="NaN or infinite"):
        explain(binary, x, fs, baseline=np.full(3600, np.nan))
    with pytest.raises(ValueError, match="2 baselines for 3 recordings"):
        explain(binary, [x, x, x], fs, baseline=[x, x])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        explain(binary, x, fs, batch_size=0)
    with pytest.raises(ValueError, match="tail must be one of"):
        explain(binary, x, fs, tail="wrap")
    with pytest.raises(TypeError, match="model must be a TaskModel"):
        explain(binary.encoder, x, fs)


def test_missing_captum_says_what_to_install(binary, mitdb, monkeypatch) -> None:
    signal, fs = mitdb
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ImportError, match=r'pip install "clef-sdk\[explain\]"'):
        explain(binary, signal[:3600], fs, n_steps=2)


def test_the_model_keeps_its_mode_and_grad_free_parameters(mitdb) -> None:
    signal, fs = mitdb
    model = make("binary").train()
    with torch.inference_mode():  # callers' contexts do not stop the gradients it needs
        explain(model, signal[:3600], fs, n_steps=2, device="cpu")
    assert model.training
    assert all(p.grad is None for p in model.parameters())


# ---- memory ----------------------------------------------------------------------------------------------------

MEMORY_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, torch
    import clef_sdk as clef
    from clef_sdk.tasks import TaskModel
    from clef_sdk.tasks.explain import explain

    signal = np.load(sys.argv[1])["ecg"]
    model = TaskModel(clef.build("small", seed=0), "binary", ["normal", "pvc"])
    largest = []
    model.encoder.register_forward_hook(lambda module, args, out: largest.append(args[0].shape[0]))
    with torch.no_grad():
        model.encoder(torch.zeros(16, 1, 5000))  # the model's own working memory, before the baseline is read
    largest.clear()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    attribution = explain(model, signal, 360, n_steps=2, batch_size=16)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mib": (after - before) / 1024, "largest": max(largest), "n": attribution.values.shape[0],
                      "delta": attribution.delta}))
    """
)


def test_a_30_minute_recording_runs_in_bounded_memory(data_dir) -> None:
    """180 windows x 2 steps: the encoder never sees more than batch_size windows at once (checkpointed chunks).
    Measured peak RSS above the loaded model: 370 MiB at batch_size 16 on Linux (about 180 MiB of it the
    recording's windows and preprocessing graph); without chunking one gradient pass over 180 windows alone
    takes 180 x 7 MiB = 1.3 GiB. Not timed (about 10 s on 2 cores)."""
    path = data_dir / "mitdb-tpcp" / "100.npz"
    result = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n"] == np.load(path)["ecg"].shape[0]
    assert report["largest"] <= 16
    assert report["mib"] < 900, report


# ---- the figure ------------------------------------------------------------------------------------------------


def test_the_figure_draws_the_ecg_over_its_attribution(binary_attribution, mitdb) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    signal, _ = mitdb
    x = signal[:5400]
    figure = plot_attribution(x, binary_attribution)
    try:
        ecg_ax, attribution_ax = figure.axes
        assert attribution_ax.get_xlabel() == "time (s)"
        assert ecg_ax.lines[0].get_xdata()[-1] == pytest.approx(5399 / 360)
        assert "p(pvc)" in ecg_ax.get_title()
        assert len(attribution_ax.collections) == 2  # the positive and the negative fill
    finally:
        plt.close(figure)
    figure, axes = plt.subplots(2, 1)
    try:
        assert binary_attribution.plot(x, ax=axes, seconds=(2.0, 4.0)) is figure
        shown = axes[0].lines[0].get_xdata()
        assert shown.min() >= 2.0 and shown.max() <= 4.0
    finally:
        plt.close(figure)
    with pytest.raises(ValueError, match="the signal has 3600 samples and the attribution 5400"):
        plot_attribution(x[:3600], binary_attribution)
    with pytest.raises(ValueError, match="start < stop"):
        plot_attribution(x, binary_attribution, seconds=(4.0, 2.0))
