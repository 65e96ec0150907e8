"""The pretraining preprocessing as a differentiable ``torch.nn.Module``: ``clef.Preprocessor(fs)``.

Same steps and options as :func:`clef_sdk.preprocess`, as tensor operations on any device and dtype: polyphase
resampling to 500 Hz (the FIR and alignment of ``scipy.signal.resample_poly(..., padtype="mean")``, applied as
a strided ``conv1d``), windowing by gather, the exact band-pass of :mod:`clef_sdk.filters` (an FFT convolution
and two small matrix products) and the z-score. Everything is linear until the z-score and differentiable end to
end; the operators are cached per (length, device, dtype). NaN handling stays in the numpy path: NaNs here
propagate to the windows they touch (fill gaps first, or use :func:`clef_sdk.preprocess`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .constants import WINDOW_SAMPLES, ZSCORE_EPS
from .filters import PAD, bandpass_tables
from .inputs import TAIL_MODES, TailMode, check_choice, check_fs, stride_samples
from .resampling import Recording, resampling_filter, resampling_ratio, resampling_skip
from .windows import plan_windows

__all__ = ["Preprocessor", "bandpass_torch", "recording_windows_torch", "upfirdn_torch", "zscore_torch"]


def resampling_kernel(
    up: int, down: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """resample_poly's FIR behind its leading zeros, reversed for ``conv1d``."""
    h, _, pre_pad = resampling_filter(up, down)
    return torch.as_tensor(np.concatenate([np.zeros(pre_pad), h])[::-1].copy(), dtype=dtype, device=device)


def upfirdn_torch(x: torch.Tensor, up: int, down: int, first: int, n_out: int) -> torch.Tensor:
    """Outputs ``first .. first + n_out - 1`` of ``scipy.signal.upfirdn(h_padded, x, up, down)`` along the last axis
    of ``x`` ``(batch, n)``, with ``h_padded`` resample_poly's FIR behind its leading zeros; zeros past the end."""
    return upfirdn_with_kernel(x, resampling_kernel(up, down, x.device, x.dtype), up, down, first, n_out)


def upfirdn_with_kernel(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, first: int, n_out: int
) -> torch.Tensor:
    """:func:`upfirdn_torch` with the reversed, zero-led FIR given (a buffer of an exported module)."""
    taps = kernel.shape[0]
    n_in = x.shape[-1]
    # zeros between the samples by stacking and reshaping (no in-place writes: exportable to ONNX)
    upsampled = torch.cat([x[..., None], torch.zeros_like(x)[..., None].expand(-1, -1, up - 1)], dim=-1).reshape(
        x.shape[0], n_in * up
    )
    # output k of the full convolution is sample k*down of upsampled (zero-padded by taps-1 on the left)
    needed = (first + n_out - 1) * down + 1
    padded = F.pad(upsampled, (taps - 1, max(0, needed - n_in * up)))
    full = F.conv1d(padded[:, None, first * down : needed + taps - 1], kernel.view(1, 1, -1), stride=down)[:, 0]
    return full[:, :n_out]


def _resample(x: torch.Tensor, up: int, down: int) -> torch.Tensor:
    """``resample_poly(x, up, down, padtype="mean")`` along the last axis of ``x`` ``(batch, n)``; ``(batch, ceil(n*up/down))``."""
    n_out = -(-x.shape[-1] * up // down)
    background = x.mean(dim=-1, keepdim=True)
    return upfirdn_torch(x - background, up, down, resampling_skip(up, down), n_out) + background


def _tables(n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _tables_cached(n, str(device), dtype)


@lru_cache(maxsize=32)
def _tables_cached(n: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tables = bandpass_tables(n)
    spectrum_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    with torch.inference_mode(False):  # cached: must serve autograd later even if first made under inference_mode
        return (
            torch.tensor(tables.kernel_spectrum, device=device, dtype=spectrum_dtype),
            torch.tensor(tables.left, device=device, dtype=spectrum_dtype),
            torch.tensor(tables.right, device=device, dtype=spectrum_dtype),
        )


def bandpass_torch(windows: torch.Tensor) -> torch.Tensor:
    """:func:`clef_sdk.filters.bandpass` in torch: ``(..., n)`` windows, ``34 <= n <= 5000``, differentiable.

    Half-precision inputs are filtered in float32 (the FFT needs it) and returned in their own dtype.
    """
    work = windows if windows.dtype in (torch.float32, torch.float64) else windows.float()
    return bandpass_with_tables(work, *_tables(windows.shape[-1], work.device, work.dtype)).to(windows.dtype)


def bandpass_with_tables(
    work: torch.Tensor, spectrum: torch.Tensor, left: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """:func:`bandpass_torch` with the operator's tables given (buffers of an exported module), float32/64 ``work``."""
    n = work.shape[-1]
    head = 2 * work[..., :1] - torch.flip(work[..., 1 : PAD + 1], dims=[-1])
    tail = 2 * work[..., -1:] - torch.flip(work[..., -PAD - 1 : -1], dims=[-1])
    extended = torch.cat([head, work, tail], dim=-1)
    extended = extended - extended[..., :1]
    n_fft = 2 * (spectrum.shape[-1] - 1)  # FFT_SIZE, or the longer FFT the tables were built for
    out = torch.fft.irfft(torch.fft.rfft(extended, n=n_fft) * spectrum, n=n_fft)[..., PAD : PAD + n]
    return out - (extended @ right) @ left.T


def zscore_torch(windows: torch.Tensor) -> torch.Tensor:
    """:func:`clef_sdk.preprocessing.zscore` in torch: per window (last axis), population std, ``+1e-8``."""
    mean = windows.mean(dim=-1, keepdim=True)
    std = windows.std(dim=-1, unbiased=False, keepdim=True)
    return (windows - mean) / (std + ZSCORE_EPS)


class Preprocessor(nn.Module):
    """``clef.preprocess`` for tensors: raw ECG at ``fs`` Hz -> z-scored 10 s windows at 500 Hz, differentiable.

    ``forward(x)``: ``x`` ``(batch, n_samples)`` gives ``(batch, n_windows, 5000)``; ``(n_samples,)`` gives
    ``(n_windows, 5000)``. Floating-point tensors on any device; the output has the input's dtype and device
    (half precision is computed in float32).
    ``stride_seconds`` and ``tail`` as in :func:`clef_sdk.preprocess`. Feed the windows to an encoder as
    ``encoder(windows.reshape(-1, 1, 5000))``.
    """

    def __init__(self, fs: float, *, stride_seconds: float | None = None, tail: TailMode = "drop"):
        super().__init__()
        self.tail = check_choice(tail, TAIL_MODES, "tail")
        self.fs = check_fs(fs)
        self.stride_seconds = stride_seconds
        ratio = resampling_ratio(self.fs)
        self.up, self.down = ratio.numerator, ratio.denominator
        stride_samples(stride_seconds)  # validates the stride now, not at the first forward

    def extra_repr(self) -> str:
        return f"fs={self.fs:g}, stride_seconds={self.stride_seconds}, tail={self.tail!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            raise TypeError(
                f"Preprocessor expects a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}"
            )
        if x.ndim not in (1, 2):
            raise ValueError(f"expected (n_samples,) or (batch, n_samples), got shape {tuple(x.shape)}")
        single = x.ndim == 1
        batch = x[None] if single else x
        if batch.dtype in (torch.float16, torch.bfloat16):  # resampling and FFTs in float32, the result cast back
            return self.forward(x.float()).to(x.dtype)
        plan = plan_windows(batch.shape[-1], self.fs, stride_seconds=self.stride_seconds, tail=self.tail)
        resampled = batch if self.up == self.down == 1 else _resample(batch, self.up, self.down)
        starts = torch.as_tensor(plan.starts, device=x.device)
        full = plan.valid_samples == WINDOW_SAMPLES
        outputs = []
        if full.any():
            index = starts[torch.as_tensor(full, device=x.device)][:, None] + torch.arange(
                WINDOW_SAMPLES, device=x.device
            )
            outputs.append(zscore_torch(bandpass_torch(resampled[:, index])))
        for k in np.flatnonzero(~full):  # a padded tail: its real prefix on its own, then zeros
            start, valid = int(plan.starts[k]), int(plan.valid_samples[k])
            prefix = zscore_torch(bandpass_torch(resampled[:, start : start + valid]))
            outputs.append(F.pad(prefix, (0, WINDOW_SAMPLES - valid))[:, None])
        windows = torch.cat(outputs, dim=1)
        return windows[0] if single else windows


def recording_windows_torch(
    recording: Recording, starts: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32
) -> torch.Tensor | None:
    """Full 10 s windows starting at 500 Hz samples ``starts`` of ``recording``, preprocessed on ``device``.

    The raw input stretch they need is read on the CPU (NaN gaps bridged, the recording's mean removed, as in
    :meth:`Recording.resampled`), copied once (from pinned memory on CUDA) and resampled, band-passed and
    z-scored as tensor operations: ``(len(starts), 5000)`` in ``dtype`` (float32 or float64), or ``None`` when the
    stretch holds NaNs, whose per-window filling belongs to the numpy path. Nothing here waits for the device.
    """
    span_start, span_stop = int(starts.min()), int(starts.max()) + WINDOW_SAMPLES
    if recording.identity:
        block, offset, background = recording.raw(span_start, span_stop).copy(), 0, 0.0  # writable, for torch
        if np.isnan(block).any():
            return None
    else:
        first, last, offset = recording.input_span(span_start, span_stop)
        block, missing = recording.bridged(first, last + 1)
        if missing.any():
            return None
        background = recording.background
        block = block - background
    source = torch.from_numpy(block)
    if device.type == "cuda":
        source = source.pin_memory()
    source = source.to(device=device, dtype=dtype, non_blocking=True)
    if recording.identity:
        span = source
    else:
        span = upfirdn_torch(source[None], recording.up, recording.down, offset, span_stop - span_start)[0] + background
    index = torch.as_tensor(starts - span_start, device=device)[:, None] + torch.arange(WINDOW_SAMPLES, device=device)
    return zscore_torch(bandpass_torch(span[index]))
