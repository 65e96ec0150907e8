"""The pretraining preprocessing as a differentiable ``torch.nn.Module``: ``clef.Preprocessor(fs)``.

Same steps and options as [`clef_sdk.preprocess`][clef_sdk.preprocess], as tensor operations on any device and dtype: polyphase
resampling to 500 Hz (the FIR and alignment of ``scipy.signal.resample_poly(..., padtype="mean")``, applied phase
by phase and never zero-stuffed: a strided ``conv1d`` with the filter bank, or small matrix products for ratios
such as 1000/257, in memory O(input + output + FIR) whatever the up factor), windowing by gather, the exact band-pass of [`clef_sdk.filters`][clef_sdk.filters] (an FFT convolution
and two small matrix products) and the z-score. Everything is linear until the z-score and differentiable end to
end; the operators are cached per (length, device, dtype). NaN handling stays in the numpy path: NaNs here
propagate to the windows they touch (fill gaps first, or use [`clef_sdk.preprocess`][clef_sdk.preprocess]).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .constants import WINDOW_SAMPLES, ZSCORE_EPS
from .filters import PAD, bandpass_tables
from .inputs import TAIL_MODES, TailMode, check_choice, check_fs, stride_samples
from .resampling import Recording, resampling_filter, resampling_ratio, resampling_skip
from .windows import plan_windows

__all__ = [
    "Preprocessor",
    "bandpass_torch",
    "bandpass_with_tables",
    "recording_windows_torch",
    "resampling_kernel",
    "upfirdn_torch",
    "upfirdn_with_kernel",
    "zscore_torch",
]


def resampling_kernel(
    up: int, down: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """resample_poly's FIR behind its leading zeros, reversed (the layout `upfirdn_with_kernel` takes)."""
    h, _, pre_pad = resampling_filter(up, down)
    return torch.as_tensor(np.concatenate([np.zeros(pre_pad), h])[::-1].copy(), dtype=dtype, device=device)


# Polyphase upfirdn. Output j of upfirdn(h, x, up, down) is sum_t h[p + t*up] * x[q - t] with p, q the remainder
# and quotient of j*down by up: only every up-th tap meets a sample, so each output is a T-tap FIR
# (T = ceil(len(h) / up)) on the T samples ending at q, and nothing is zero-stuffed. Outputs j and j + up share
# their taps (q moves on by down): the outputs are laid out as (M, R) with R = min(up, n_out) "residues" r, and
# the taps of residue r are applied at input offset q_r + m*down. Two layouts of that same sum:
# - "conv" when the offsets q_r of all residues lie within a few T of each other (integer and small-ratio rates:
#   360, 300, 250, 128 Hz, downsampling): one conv1d with stride down, R output channels and K = span + T taps
#   (the taps of residue r placed at its offset), i.e. the polyphase filter bank as a dense kernel;
# - "grouped" otherwise (large down: 128.5 Hz is 1000/257, 257.3 Hz 5000/2573): residues are grouped by offset,
#   D = T offsets per group, and each group of ~D*up/down residues is one small matrix product with the
#   K = D + T - 1 samples its outputs read (gathered at stride down), so the kernels stay O(len(h)) and the
#   gathered samples O(n_in) instead of the dense kernel's R * (down + T).
# Memory is O(n_in + n_out + len(h)) in both. The layouts are numpy index tables, cached; their tensors are cached
# per device too, except while tracing (export, compile), whose tensors must not outlive the trace. A few entries
# suffice: one rate's windows start at few phases (first mod up), and a table can reach O(len(h)) (tens of MB at
# 97.0001 Hz, whose FIR has 1.4 million taps).
_CONV_SPAN_TAPS = 3  # the dense "conv" kernel when the residues' offsets span at most this many times T


class _Polyphase(NamedTuple):
    """The layout of the polyphase upfirdn for one (up, down, len(h), first mod up, R)."""

    conv: bool
    taps: int  # T: taps per output
    residues: int  # R: outputs per period (the channels of "conv")
    width: int  # K: input samples one row of the kernel spans
    groups: int  # G: groups of residues ("grouped"; 1 for "conv")
    weights: np.ndarray  # index into the reversed kernel plus one zero: (R, K) "conv" or (G, K, rows) "grouped"
    order: np.ndarray  # "grouped": where residue r sits among the G * rows outputs of the groups


@lru_cache(maxsize=8)
def _polyphase(up: int, down: int, n_kernel: int, phase: int, residues: int) -> _Polyphase:
    taps = -(-n_kernel // up)
    r = np.arange(residues, dtype=np.int64)
    q, p = np.divmod((phase + r) * down, up)  # last input sample of residue r's first output, and its tap phase
    offset = q - q[0]  # nondecreasing, within [0, down]
    u = np.arange(taps, dtype=np.int64)
    tap = p[:, None] + (taps - 1 - u) * up  # tap of h_padded meeting sample q - (T - 1) + u; past its end: none
    index = np.where(tap < n_kernel, n_kernel - 1 - tap, n_kernel)  # into the reversed kernel; n_kernel: a zero
    conv = int(offset[-1]) <= _CONV_SPAN_TAPS * taps
    if conv:
        width, groups = int(offset[-1]) + taps, 1
        weights = np.full((residues, width), n_kernel, dtype=np.int64)
        weights[r[:, None], offset[:, None] + u] = index
        order = np.empty(0, dtype=np.int64)
    else:
        group = offset // taps  # D = T offsets per group
        groups, width = int(group[-1]) + 1, 2 * taps - 1
        row = r - np.searchsorted(group, group)  # position of residue r within its group
        rows = int(row.max()) + 1
        weights = np.full((groups, width, rows), n_kernel, dtype=np.int64)
        weights[group[:, None], (offset - group * taps)[:, None] + u, row[:, None]] = index
        order = group * rows + row
    return _Polyphase(conv, taps, residues, width, groups, weights, order)


@lru_cache(maxsize=8)
def _device_tables(
    up: int, down: int, n_kernel: int, phase: int, residues: int, device: str, dtype: torch.dtype | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``_polyphase``'s ``(weights, order)`` on ``device``; with ``dtype``, ``weights`` resolved in resample_poly's
    FIR (the filter bank itself) instead of an index into it."""
    plan = _polyphase(up, down, n_kernel, phase, residues)
    with torch.inference_mode(False):  # cached: must serve autograd later even if first made under inference_mode
        order = torch.as_tensor(plan.order, device=device)
        if dtype is None:
            return torch.as_tensor(plan.weights, device=device), order
        h, _, pre_pad = resampling_filter(up, down)
        reversed_kernel = np.concatenate([h[::-1], np.zeros(pre_pad + 1)])  # the zero-led FIR reversed, one zero
        return torch.as_tensor(reversed_kernel[plan.weights], dtype=dtype, device=device), order


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    if is_compiling is None:
        from torch import _dynamo

        return bool(_dynamo.is_compiling())
    return bool(is_compiling())


def _polyphase_tables(
    x: torch.Tensor, up: int, down: int, n_kernel: int, first: int, n_out: int, dtype: torch.dtype | None
) -> tuple[_Polyphase, torch.Tensor, torch.Tensor]:
    phase, residues = first % up, min(up, n_out)
    traced = type(x) is not torch.Tensor or _compiling()  # fake or proxy tensors: not cached
    make = _device_tables.__wrapped__ if traced else _device_tables
    return (
        _polyphase(up, down, n_kernel, phase, residues),
        *make(up, down, n_kernel, phase, residues, str(x.device), dtype),
    )


def upfirdn_torch(x: torch.Tensor, up: int, down: int, first: int, n_out: int) -> torch.Tensor:
    """Outputs ``first .. first + n_out - 1`` of ``scipy.signal.upfirdn(h_padded, x, up, down)`` along the last axis
    of ``x`` ``(batch, n)``, with ``h_padded`` resample_poly's FIR behind its leading zeros; zeros past the end.

    Polyphase: memory O(n + n_out + len(h_padded)) whatever ``up``; differentiable in ``x``. The filter bank is
    cached per (up, down, first mod up, outputs per period, device, dtype).
    """
    if n_out <= 0:
        return x.new_zeros(x.shape[0], 0)
    h, _, pre_pad = resampling_filter(up, down)
    plan, bank, order = _polyphase_tables(x, up, down, h.size + pre_pad, first, n_out, x.dtype)
    return _polyphase_apply(x, bank, order, plan, up, down, first, n_out)


def upfirdn_with_kernel(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, first: int, n_out: int
) -> torch.Tensor:
    """`upfirdn_torch` with the reversed, zero-led FIR given (a buffer of an exported module); the filter bank
    is gathered from ``kernel`` at each call (differentiable in ``kernel`` too)."""
    if n_out <= 0:
        return x.new_zeros(x.shape[0], 0)
    plan, index, order = _polyphase_tables(x, up, down, kernel.shape[0], first, n_out, None)
    return _polyphase_apply(x, F.pad(kernel, (0, 1))[index], order, plan, up, down, first, n_out)


def _input_stretch(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Samples ``start .. stop - 1`` of ``x`` (last axis), zeros outside it."""
    n = x.shape[-1]
    lo, hi = min(max(start, 0), n), min(max(stop, 0), n)
    left = max(0, min(-start, stop - start))
    return F.pad(x[..., lo:hi], (left, stop - start - left - (hi - lo)))


def _polyphase_apply(
    x: torch.Tensor,
    bank: torch.Tensor,
    order: torch.Tensor,
    plan: _Polyphase,
    up: int,
    down: int,
    first: int,
    n_out: int,
) -> torch.Tensor:
    """Outputs ``first .. first + n_out - 1`` of upfirdn with the filter ``bank`` laid out by ``plan``."""
    batch = x.shape[0]
    blocks = -(-n_out // plan.residues)  # M
    taps, width = plan.taps, plan.width
    q0 = first * down // up - taps + 1  # the first output reads x[q0 .. q0 + T - 1]; the kernel rows start there
    if plan.conv:
        stretch = _input_stretch(x, q0, q0 + (blocks - 1) * down + width)
        out = F.conv1d(stretch[:, None], bank[:, None], stride=down)  # (batch, R, M)
        return out.transpose(1, 2).reshape(batch, blocks * plan.residues)[:, :n_out]
    step = taps  # D: offsets per group
    stretch = _input_stretch(x, q0, q0 + (plan.groups - 1) * step + (blocks - 1) * down + width)
    index = (
        torch.arange(plan.groups, device=x.device)[:, None, None] * step
        + torch.arange(blocks, device=x.device)[:, None] * down
        + torch.arange(width, device=x.device)
    )
    samples = stretch[:, index].transpose(0, 1).reshape(plan.groups, batch * blocks, width)  # (G, batch * M, K)
    out = torch.bmm(samples, bank).view(plan.groups, batch, blocks, -1)  # (G, batch, M, rows)
    out = out.permute(1, 2, 0, 3).reshape(batch, blocks, -1)[..., order]  # (batch, M, R)
    return out.reshape(batch, blocks * plan.residues)[:, :n_out]


def _resample_centred(x: torch.Tensor, up: int, down: int) -> torch.Tensor:
    """``resample_poly(x, up, down, padtype="mean")`` along the last axis of ``x`` ``(batch, n)`` less its mean:
    ``(batch, ceil(n*up/down))``. The mean is what padtype="mean" adds back; the band-pass maps any constant to
    exactly 0, so it is left off: in float32, a large offset added back would cost the signal its low digits."""
    n_out = -(-x.shape[-1] * up // down)
    return upfirdn_torch(_centred(x), up, down, resampling_skip(up, down), n_out)


def _centred(x: torch.Tensor) -> torch.Tensor:
    """``x`` less its mean along the last axis, the subtraction in float64: a float32 mean of ECG with a large
    offset is off by up to half its spacing (5.7e-4 at 1e4), and that DC leaks through the polyphase filter's
    per-phase gain ripple (measured 9.5e-4 after the z-score at 360 Hz; 1.4e-6 with the float64 subtraction)."""
    wide = x.double()
    return (wide - wide.mean(dim=-1, keepdim=True)).to(x.dtype)


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
    """[`clef_sdk.filters.bandpass`][clef_sdk.filters.bandpass] in torch: ``(..., n)`` windows, ``34 <= n <= 5000``, differentiable.

    Half-precision inputs are filtered in float32 (the FFT needs it) and returned in their own dtype.
    """
    work = windows if windows.dtype in (torch.float32, torch.float64) else windows.float()
    return bandpass_with_tables(work, *_tables(windows.shape[-1], work.device, work.dtype)).to(windows.dtype)


def bandpass_with_tables(
    work: torch.Tensor, spectrum: torch.Tensor, left: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """`bandpass_torch` with the operator's tables given (buffers of an exported module), float32/64 ``work``."""
    n = work.shape[-1]
    head = 2 * work[..., :1] - torch.flip(work[..., 1 : PAD + 1], dims=[-1])
    tail = 2 * work[..., -1:] - torch.flip(work[..., -PAD - 1 : -1], dims=[-1])
    extended = torch.cat([head, work, tail], dim=-1)
    extended = extended - extended[..., :1]
    n_fft = 2 * (spectrum.shape[-1] - 1)  # FFT_SIZE, or the longer FFT the tables were built for
    out = torch.fft.irfft(torch.fft.rfft(extended, n=n_fft) * spectrum, n=n_fft)[..., PAD : PAD + n]
    return out - (extended @ right) @ left.T


def zscore_torch(windows: torch.Tensor) -> torch.Tensor:
    """[`clef_sdk.preprocessing.zscore`][clef_sdk.preprocessing.zscore] in torch: per window (last axis), population std, ``+1e-8``."""
    mean = windows.mean(dim=-1, keepdim=True)
    std = windows.std(dim=-1, unbiased=False, keepdim=True)
    return (windows - mean) / (std + ZSCORE_EPS)


class Preprocessor(nn.Module):
    """``clef.preprocess`` for tensors: raw ECG at ``fs`` Hz -> z-scored 10 s windows at 500 Hz, differentiable.

    ``forward(x)``: ``x`` ``(batch, n_samples)`` gives ``(batch, n_windows, 5000)``; ``(n_samples,)`` gives
    ``(n_windows, 5000)``. Floating-point tensors on any device; the output has the input's dtype and device
    (half precision is computed in float32).
    ``stride_seconds`` and ``tail`` as in [`clef_sdk.preprocess`][clef_sdk.preprocess]. Feed the windows to an encoder as
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
        # constants vanish in the band-pass: taking the mean off first keeps float32's digits for the ECG
        resampled = _centred(batch) if self.up == self.down == 1 else _resample_centred(batch, self.up, self.down)
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
    `Recording.resampled`), copied once (from pinned memory on CUDA) and resampled, band-passed and
    z-scored as tensor operations: ``(len(starts), 5000)`` in ``dtype`` (float32 or float64), or ``None`` when the
    stretch holds NaNs, whose per-window filling belongs to the numpy path. Nothing here waits for the device.
    """
    span_start, span_stop = int(starts.min()), int(starts.max()) + WINDOW_SAMPLES
    # Any constant may come off the raw stretch: the band-pass maps it to 0, and in float32 a large offset would
    # cost the signal its low digits. The resampler needs the recording's own mean off (padtype="mean").
    if recording.identity:
        block, offset = recording.raw(span_start, span_stop), 0
        if np.isnan(block).any():
            return None
        block = block - float(np.mean(block))
    else:
        first, last, offset = recording.input_span(span_start, span_stop)
        block, missing = recording.bridged(first, last + 1)
        if missing.any():
            return None
        block = block - recording.background
    source = torch.from_numpy(block)
    if device.type == "cuda":
        source = source.pin_memory()
    source = source.to(device=device, dtype=dtype, non_blocking=True)
    if recording.identity:
        span = source
    else:
        span = upfirdn_torch(source[None], recording.up, recording.down, offset, span_stop - span_start)[0]
    index = torch.as_tensor(starts - span_start, device=device)[:, None] + torch.arange(WINDOW_SAMPLES, device=device)
    return zscore_torch(bandpass_torch(span[index]))
