"""Which samples of a recording drove a task model's output: integrated gradients on the recording's own time axis.

`explain` attributes one output of a [`TaskModel`][clef_sdk.tasks.model.TaskModel] (a probability, or the value of
a regression) to every raw input sample, at the recording's own rate and length, by integrated gradients
(Sundararajan et al., 2017) through the differentiable preprocessing ([`clef_sdk.Preprocessor`][clef_sdk.Preprocessor]): gradients
flow from the output through the head, the pooling, the encoder, the z-score, the band-pass and the resampling back
to the samples as recorded. `plot_attribution` draws a recording with its attribution under it.

Choices, and why:

- **Captum** (``captum.attr.IntegratedGradients``, the PyTorch project's interpretability library) computes the
  path integral: its quadrature (Gauss-Legendre by default), its batching of the interpolation steps and its
  accumulation are well kept and widely used, so they are not re-coded here. It is an optional dependency, the
  ``explain`` extra (``pip install "clef-sdk[explain]"``), imported on first use. captum 0.9 or later: 0.8 pins
  ``numpy<2``.
- **Baseline: a flat line.** Through the preprocessing every constant signal is the same input to the encoder:
  the band-pass maps a constant to exactly 0, and the z-score keeps a zero window at 0. So zeros of the raw
  signal, its mean, or any other level are one baseline, "no ECG", whose windows are all zero; its level is set
  at the recording's mean, which makes attributions independent of a DC offset (ADC counts with an offset of
  1,024 give the same attributions as the same ECG in mV around 0; a baseline at 0 would multiply every gradient
  by the offset).
- **The path: straight in what the encoder sees.** The z-score divides each window by its own standard deviation,
  so the straight raw path ``b + a * (x - b)`` from a flat ``b`` gives the encoder the *same* z-scored windows for
  every ``a`` but the smallest (the z-score's epsilon, 1e-8, against the window's spread: on MIT-BIH in mV the
  output is within 0.1% of its end value from ``a = 1e-4`` on): the whole change of output happens below that,
  where no quadrature looks, and the attributions sum to nothing like the change of output (measured: 1e-5 for
  a change of 0.08).
  Integrated gradients from a flat baseline are therefore taken with each window's z-score scale held at the
  recording's own (the centring stays live): then the windows along the path are ``a * z(x)``, the straight line
  from the baseline's zero windows to the recording's windows, and both ends are exactly the model's outputs on
  the baseline and on the recording. The gradients still reach the raw samples through the resampling, the
  band-pass and the centring. A non-flat ``baseline`` array (e.g. noise, or a recording without the beat of
  interest) is taken through the unmodified preprocessing; note that it is z-scored like any ECG, so the encoder
  sees it at unit variance. What the model says on the baseline matters to the reading: a head fitted on ECG
  embeddings may say anything on a flat line (the PVC detectors of benchmarks/bench_explain.py give it
  p(pvc) = 1.000, so from there the attributions explain a *fall* to the recording's 0.87); a normal stretch of
  the same patient as ``baseline`` gives a contrast instead (there, p 0.37 -> 0.87, and the signed attribution
  near the PVCs is 3.7 and 5.3 times that near the other beats).
- **Completeness** is checked, not assumed: ``Attribution.delta`` is the sum of the attributions minus the change
  of output (model on the recording minus model on the baseline, both computed plainly, without Captum), the
  quadrature's error. It shrinks as ``n_steps`` grows (see the measured values in tests/tasks/test_explain.py):
  from the flat baseline about 1e-4 of the change of output at 16 steps; the curved path from a non-flat baseline
  converges more slowly (1.5-2% at 32 steps in the benchmark, against 0.06% from the flat one).
- **Memory** does not grow with ``n_steps``, and the encoder's share does not grow with the recording: Captum
  evaluates the steps a few at a time (as many as fit ``batch_size`` windows), and the encoder runs on at most
  ``batch_size`` windows at a time, each chunk checkpointed (``torch.utils.checkpoint``: its activations are
  recomputed in the backward pass instead of kept; about 7 MiB a window for CLEF-small). What grows with the
  length is the recording itself, its windows and the preprocessing's graph, about 7 MiB per minute at 360 Hz.
  Measured peak above the loaded model, CLEF-small on a CPU: 500 MiB for 30 min at 360 Hz (180 windows) with
  ``batch_size=32``, the same for 2 and 4 steps, 370 MiB with ``batch_size=16``, 330 MiB for 5 min. For a day-long
  Holter, explain the stretch of interest.
- **NaN gaps are refused**: the differentiable preprocessing does not fill gaps (``clef.embed`` interpolates them
  in its numpy path), and an attribution to an interpolated sample would be one to a value nobody measured. Fill
  the gaps yourself first, or explain the stretches between them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from .._optional import require
from ..constants import WINDOW_SAMPLES, ZSCORE_EPS
from ..embedding import auto_batch_size
from ..inputs import (
    TAIL_MODES,
    SignalInput,
    TailMode,
    as_recordings,
    check_batch_size,
    check_choice,
    per_record_fs,
    stride_samples,
)
from ..precision import resolve_device
from ..resampling import resampling_skip
from ..torch_preprocessing import Preprocessor, bandpass_torch, upfirdn_torch
from ..windows import plan_windows
from .spec import Label

if TYPE_CHECKING:
    from .model import TaskModel

__all__ = ["DEFAULT_N_STEPS", "METHODS", "Attribution", "Baseline", "ExplainMethod", "explain", "plot_attribution"]

ExplainMethod = Literal["integrated_gradients"]
METHODS: tuple[ExplainMethod, ...] = ("integrated_gradients",)
#: A flat line at the recording's mean (``"flat"``), at a given level (a number), or a raw signal of the recording's
#: length (one per recording for several).
Baseline = Literal["flat"] | float | np.ndarray | Sequence[Any]
#: Interpolation steps of the path integral (Gauss-Legendre nodes); see tests/tasks/test_explain.py for the
#: completeness error measured against it.
DEFAULT_N_STEPS = 32
MAX_N_STEPS = 4096
_QUADRATURE = "gausslegendre"  # Captum's default: exact for polynomials of degree 2 * n_steps - 1


@dataclass(frozen=True, eq=False)
class Attribution:
    """Integrated-gradients attribution of one output of a task model to the samples of one recording.

    Attributes:
        values: ``(n_samples,)`` float64, one per input sample, on the recording's own time axis (its ``fs`` and
            length), in the output's units (probability, or the regression target's units): positive where the
            sample pushed the output up from the baseline's. Read-only.
        fs: the recording's sampling rate in Hz (``values[i]`` is at ``i / fs`` seconds).
        target: the label whose probability is explained; ``None`` for regression (the value is).
        output: the model's probability of ``target`` (or its value) on the recording.
        baseline_output: the same on the baseline (for the flat baseline: on all-zero windows, what every flat
            line gives).
        delta: completeness error, ``values.sum() - (output - baseline_output)``: the quadrature's error.
        method: ``"integrated_gradients"``.
        n_steps: interpolation steps used.
        baseline: ``"flat"`` or ``"signal"`` (a baseline array was given).
    """

    values: np.ndarray = field(repr=False)
    fs: float
    target: Label | None
    output: float
    baseline_output: float
    delta: float
    method: ExplainMethod = "integrated_gradients"
    n_steps: int = DEFAULT_N_STEPS
    baseline: Literal["flat", "signal"] = "flat"

    @property
    def seconds(self) -> np.ndarray:
        """Time of each sample in seconds, ``(n_samples,)``: ``arange(n_samples) / fs``."""
        return np.arange(self.values.shape[0]) / self.fs

    def plot(self, signal: SignalInput, ax: Any = None, *, seconds: tuple[float, float] | None = None) -> Any:
        """`plot_attribution` of ``signal`` (the recording explained, ``(n_samples,)``) with this attribution."""
        return plot_attribution(signal, self, ax=ax, seconds=seconds)


def explain(
    model: TaskModel,
    signal: SignalInput,
    fs: float | list[float] | None = None,
    *,
    target: Label | None = None,
    method: ExplainMethod = "integrated_gradients",
    n_steps: int = DEFAULT_N_STEPS,
    baseline: Baseline = "flat",
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> Attribution | list[Attribution]:
    """Per-sample attributions of a task model's output on raw recordings, by integrated gradients.

    Args:
        model: the [`TaskModel`][clef_sdk.tasks.model.TaskModel] to explain (put in eval mode while explaining).
        signal: one recording ``(n_samples,)``; several of one length ``(n_records, n_samples)``; or a list of
            1-D recordings of any lengths; any unit, the forms ``clef.embed`` accepts. No NaN (see the module
            docstring).
        fs: sampling rate in Hz, one for all recordings or one per recording.
        target: the output explained, a label name from ``model.classes_``: binary, default the positive class
            (``classes_[1]``; the negative one explains ``1 - p``); multiclass, default the predicted class;
            multilabel, required (each label is its own yes/no question: no default says which one is asked);
            regression, ``None`` (or the target's name): the value.
        method: ``"integrated_gradients"``.
        n_steps: interpolation steps (Gauss-Legendre); cost grows linearly, ``delta`` shrinks.
        baseline: ``"flat"`` (default: a flat line at the recording's mean, i.e. all-zero windows after the
            preprocessing), a number (a flat line at that level: same output, attributions shifted by the level
            times the gradient), or a raw signal ``(n_samples,)`` on the recording's time axis (a list of them, one
            per recording, for several), taken through the unmodified preprocessing.
        stride_seconds: distance between window starts, as in ``clef.embed`` (the output is pooled over them).
        tail: the end shorter than a window, as in ``clef.embed``.
        batch_size: encoder windows per pass, gradients included (about 7 MiB each for CLEF-small); ``None``: as
            ``clef.embed`` picks (32 on a CPU).
        device: where to compute; the whole model moves there (as ``predict`` does). ``None``: the model's device.

    Returns:
        An `Attribution` for one 1-D recording (``values`` ``(n_samples,)``); a list of them for several.
    """
    from .model import TaskModel

    if not isinstance(model, TaskModel):
        raise TypeError(f"model must be a TaskModel, got {type(model).__name__}")
    method = check_choice(method, METHODS, "method")
    n_steps = _check_n_steps(n_steps)
    tail = check_choice(tail, TAIL_MODES, "tail")
    stride_samples(stride_seconds)
    batch_size = check_batch_size(batch_size)
    recordings, single = as_recordings(signal)
    rates = per_record_fs(fs, recordings)
    for index, (recording, rate) in enumerate(zip(recordings, rates)):
        _refuse_gaps(recording, "signal" if single else f"recording {index}")
        plan_windows(recording.shape[0], rate, stride_seconds=stride_seconds, tail=tail)  # too short: its message
    baselines = _check_baselines(baseline, recordings, single)
    if target is None and model.task == "multilabel":
        raise ValueError(
            f"a multilabel model gives one probability per label: pass target=<label>, one of {model.classes_.tolist()}"
        )
    target_index = None if target is None else _target_index(model, target)
    captum_attr = require("captum.attr", "explaining a task model")

    if device is not None:
        model.to(resolve_device(device))
    where = model.encoder.device
    batch_size = batch_size or auto_batch_size(model.encoder, "fp32", where)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            results = [
                _explain_one(
                    model,
                    captum_attr,
                    np.asarray(recording[: recording.shape[0]], dtype=np.float64),
                    rate,
                    level,
                    target_index,
                    n_steps,
                    Preprocessor(rate, stride_seconds=stride_seconds, tail=tail),
                    batch_size,
                    where,
                )
                for recording, rate, level in zip(recordings, rates, baselines)
            ]
    finally:
        model.train(was_training)
    return results[0] if single else results


# ---- checks ---------------------------------------------------------------------------------------------------


def _check_n_steps(n_steps: object) -> int:
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, (int, np.integer)):
        raise TypeError(f"n_steps must be an integer number of interpolation steps, got {n_steps!r}")
    if not 1 <= n_steps <= MAX_N_STEPS:
        raise ValueError(f"n_steps must be between 1 and {MAX_N_STEPS}, got {n_steps}")
    return int(n_steps)


def _refuse_gaps(recording: np.ndarray, name: str) -> None:
    missing = np.flatnonzero(np.isnan(np.asarray(recording[: recording.shape[0]], dtype=np.float64)))
    if missing.size:
        raise ValueError(
            f"{name} has {missing.size} NaN sample(s) (the first at index {missing[0]}); explain attributes the "
            "output to measured samples, and the differentiable preprocessing does not fill gaps: fill them first "
            "(e.g. np.interp over the sample index, as clef.embed does) or explain the stretches between them"
        )


def _check_baselines(baseline: object, recordings: list[np.ndarray], single: bool) -> list[float | np.ndarray | None]:
    """Per recording: ``None`` (flat at its mean), a level, or a non-constant raw baseline (float64)."""
    if isinstance(baseline, str):
        check_choice(baseline, ("flat",), "baseline")
        return [None] * len(recordings)
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(baseline, (bool, np.bool_)):
        if not math.isfinite(float(baseline)):
            raise ValueError(f"baseline must be finite, got {baseline!r}")
        return [float(baseline)] * len(recordings)
    if single:
        given: list[object] = [baseline]
    elif isinstance(baseline, (list, tuple)) or (isinstance(baseline, np.ndarray) and baseline.ndim == 2):
        given = list(baseline)
        if len(given) != len(recordings):
            raise ValueError(f"got {len(given)} baselines for {len(recordings)} recordings; pass one per recording")
    else:
        raise TypeError("for several recordings, baseline must be 'flat', a number, or one signal per recording")
    out: list[float | np.ndarray | None] = []
    for index, (value, recording) in enumerate(zip(given, recordings)):
        name = "baseline" if single else f"baseline {index}"
        try:
            array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be 'flat', a number or a signal of real numbers, got {value!r}") from None
        if array.shape != (recording.shape[0],):
            raise ValueError(
                f"{name} has shape {array.shape}; a baseline signal lies on the recording's time axis: "
                f"({recording.shape[0]},)"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"{name} has NaN or infinite values")
        out.append(float(array[0]) if np.ptp(array) == 0 else array)
    return out


def _target_index(model: TaskModel, target: object) -> int | None:
    """Column of the output explained: an index into the probabilities, or ``None`` for a regression's value."""
    classes = list(model.classes_.tolist())
    if isinstance(target, (bool, np.bool_)):
        raise TypeError(f"target must be a label name from {classes}, got the bool {target!r}")
    name = target.item() if isinstance(target, np.generic) else target
    matches = [i for i, label in enumerate(classes) if type(label) is type(name) and label == name]
    if not matches:
        raise ValueError(f"unknown target {target!r}: the model's classes are {classes}")
    if model.task == "regression":
        return None
    return matches[0]


# ---- the computation ------------------------------------------------------------------------------------------


class _FrozenScale:
    """`Preprocessor` with each window's z-score scale held at the recording's own: linear in the input.

    Same steps as ``Preprocessor.forward`` (mean off, polyphase resampling, windows, band-pass, centring), and
    equal to it on the recording itself (tested to 1e-12); on a flat line it gives zero windows, and on
    ``b + a * (x - b)`` it gives ``a * Preprocessor(x)``.
    """

    def __init__(self, preprocessor: Preprocessor, x: torch.Tensor):
        self.preprocessor = preprocessor
        with torch.no_grad():
            self.scales = [part.std(dim=-1, unbiased=False, keepdim=True) + ZSCORE_EPS for part in self._parts(x)]

    def _parts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Band-passed windows before the z-score: the full windows ``(batch, n_full, 5000)``, then each padded
        tail's real prefix ``(batch, 1, valid)``."""
        pre = self.preprocessor
        plan = plan_windows(x.shape[-1], pre.fs, stride_seconds=pre.stride_seconds, tail=pre.tail)
        centred = x - x.mean(dim=-1, keepdim=True)
        if pre.up == pre.down == 1:
            resampled = centred
        else:
            n_out = -(-x.shape[-1] * pre.up // pre.down)
            resampled = upfirdn_torch(centred, pre.up, pre.down, resampling_skip(pre.up, pre.down), n_out)
        full = plan.valid_samples == WINDOW_SAMPLES
        parts = []
        if full.any():
            starts = torch.as_tensor(plan.starts[full], device=x.device)
            parts.append(bandpass_torch(resampled[:, starts[:, None] + torch.arange(WINDOW_SAMPLES, device=x.device)]))
        for k in np.flatnonzero(~full):
            start, valid = int(plan.starts[k]), int(plan.valid_samples[k])
            parts.append(bandpass_torch(resampled[:, start : start + valid])[:, None])
        return parts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        windows = []
        for part, scale in zip(self._parts(x), self.scales):
            normalised = (part - part.mean(dim=-1, keepdim=True)) / scale
            windows.append(torch.nn.functional.pad(normalised, (0, WINDOW_SAMPLES - part.shape[-1])))
        return torch.cat(windows, dim=1)


def _logits(model: TaskModel, windows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits ``(k, n_outputs)`` float64 of windows ``(k, n_windows, 5000)`` (any float dtype): ``model.forward``
    with the encoder run on at most ``batch_size`` windows at a time, each chunk checkpointed when gradients are
    recorded (its activations recomputed in the backward pass instead of kept)."""
    encoder = model.encoder
    k, n_windows = windows.shape[:2]
    flat = windows.to(next(encoder.parameters()).dtype).reshape(k * n_windows, 1, WINDOW_SAMPLES)
    if flat.shape[0] <= batch_size:
        embeddings = encoder(flat)
    elif torch.is_grad_enabled() and flat.requires_grad:
        embeddings = torch.cat([checkpoint(encoder, chunk, use_reentrant=False) for chunk in flat.split(batch_size)])
    else:
        embeddings = torch.cat([encoder(chunk) for chunk in flat.split(batch_size)])
    embeddings = embeddings.view(k, n_windows, -1)
    pooled = embeddings.mean(dim=1) if model.pooling == "mean" else embeddings.amax(dim=1)
    return model.head_logits(pooled).double()


def _scorer(model: TaskModel, index: int | None, batch_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Windows ``(k, n_windows, 5000)`` -> the output explained ``(k,)`` float64: the probability in column
    ``index``, or the regression's value (``index=None``)."""

    def score(windows: torch.Tensor) -> torch.Tensor:
        logits = _logits(model, windows, batch_size)
        if index is None:
            return model.values_from_logits(logits)
        return model.proba_from_logits(logits)[:, index]

    return score


def _explain_one(
    model: TaskModel,
    captum_attr: Any,
    signal: np.ndarray,
    fs: float,
    baseline: float | np.ndarray | None,
    target_index: int | None,
    n_steps: int,
    preprocessor: Preprocessor,
    batch_size: int,
    device: torch.device,
) -> Attribution:
    x = torch.as_tensor(signal, dtype=torch.float64, device=device)[None]
    flat = baseline is None or isinstance(baseline, float)
    if baseline is None:
        b = torch.full_like(x, float(x.mean()))
    elif isinstance(baseline, float):
        b = torch.full_like(x, baseline)
    else:
        b = torch.as_tensor(baseline, dtype=torch.float64, device=device)[None]
    with torch.no_grad():
        windows = preprocessor(x)
        if target_index is None and model.task == "multiclass":  # the predicted class
            target_index = int(torch.argmax(_logits(model, windows, batch_size)[0]))
        elif target_index is None and model.task == "binary":  # the positive class
            target_index = 1
        score = _scorer(model, target_index, batch_size)
        output = float(score(windows)[0])
        # a flat line reaches the encoder as all-zero windows (to 2e-9: float64 rounding over the z-score's 1e-8)
        baseline_windows = windows.new_zeros(1, 1, WINDOW_SAMPLES) if flat else preprocessor(b)
        baseline_output = float(score(baseline_windows)[0])
    # the path's preprocessing: the z-score's scale held from a flat baseline (see the module docstring)
    along_path = _FrozenScale(preprocessor, x) if flat else preprocessor

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return score(along_path(inputs))

    ig = captum_attr.IntegratedGradients(forward)
    steps_per_pass = max(1, batch_size // windows.shape[1])  # Captum's internal batch: steps of the one input
    attributions = ig.attribute(x, baselines=b, n_steps=n_steps, method=_QUADRATURE, internal_batch_size=steps_per_pass)
    values = attributions[0].detach().cpu().numpy().astype(np.float64)
    values.flags.writeable = False
    label = None if target_index is None else model.classes_.tolist()[target_index]
    return Attribution(
        values=values,
        fs=fs,
        target=label,
        output=output,
        baseline_output=baseline_output,
        delta=float(values.sum()) - (output - baseline_output),
        n_steps=n_steps,
        baseline="flat" if flat else "signal",
    )


# ---- the figure -----------------------------------------------------------------------------------------------


def plot_attribution(
    signal: SignalInput, attribution: Attribution, ax: Any = None, seconds: tuple[float, float] | None = None
) -> Any:
    """Draw a recording with its attribution under it, time in seconds on the x axis; returns the figure.

    Args:
        signal: the recording explained, ``(n_samples,)`` at ``attribution.fs`` Hz (the same samples).
        attribution: from `explain`.
        ax: ``None`` (a new figure of two rows) or two matplotlib Axes ``(ecg_ax, attribution_ax)``.
        seconds: ``(start, stop)`` in s to draw only that stretch (a 30 min recording is unreadable whole).

    The attribution is drawn filled, red above zero (pushed the output up), blue below.
    """
    plt = require("matplotlib.pyplot", "plotting an attribution")
    recordings, single = as_recordings(signal)
    if not single:
        raise ValueError("plot_attribution draws one recording (n_samples,); plot several one by one")
    ecg = np.asarray(recordings[0][: recordings[0].shape[0]], dtype=np.float64)
    values = attribution.values
    if ecg.shape != values.shape:
        raise ValueError(
            f"the signal has {ecg.shape[0]} samples and the attribution {values.shape[0]}: pass the recording "
            "that was explained"
        )
    time = attribution.seconds
    keep = np.ones(time.shape, dtype=bool)
    if seconds is not None:
        start, stop = (float(value) for value in seconds)
        if not start < stop:
            raise ValueError(f"seconds must be (start, stop) with start < stop, got {seconds!r}")
        keep = (time >= start) & (time <= stop)
        if not keep.any():
            raise ValueError(f"no sample lies within {seconds!r} s (the recording lasts {time[-1]:.2f} s)")
    if ax is None:
        figure, (ecg_ax, attribution_ax) = plt.subplots(
            2, 1, sharex=True, figsize=(10, 4), gridspec_kw={"height_ratios": [2, 1]}
        )
    else:
        try:
            ecg_ax, attribution_ax = ax
        except (TypeError, ValueError):
            raise TypeError("ax must be None or two matplotlib Axes (ecg_ax, attribution_ax)") from None
        figure = ecg_ax.figure
    t, shown = time[keep], values[keep]
    ecg_ax.plot(t, ecg[keep], color="black", linewidth=0.8)
    ecg_ax.set_ylabel("ECG")
    what = "value" if attribution.target is None else f"p({attribution.target})"
    ecg_ax.set_title(
        f"{what} = {attribution.output:.3g} (baseline {attribution.baseline_output:.3g}), "
        f"integrated gradients, {attribution.n_steps} steps"
    )
    attribution_ax.fill_between(t, 0, shown, where=shown >= 0, color="tab:red", linewidth=0, interpolate=True)
    attribution_ax.fill_between(t, 0, shown, where=shown < 0, color="tab:blue", linewidth=0, interpolate=True)
    attribution_ax.axhline(0, color="grey", linewidth=0.5)
    attribution_ax.set_ylabel("attribution")
    attribution_ax.set_xlabel("time (s)")
    return figure
