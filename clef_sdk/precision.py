"""Devices and the numerical precision of the forward pass: faithful float32, or bf16 autocast where the hardware
has it.

``"fp32"`` (the default) is what the conformance tests hold to the authors' outputs. ``"bf16"`` runs the
convolutions under ``torch.autocast(dtype=torch.bfloat16)``: measured end to end on 24 h of ECG on a Zen 4 CPU
with AVX-512 BF16, small 1.4x and medium 1.7x the float32 speed, at embedding cosine >= 0.99997 to float32.
On a CPU with AMX (Intel Sapphire Rapids and later) oneDNN runs those convolutions on its AMX kernels, which round
more: CLEF-small's embeddings keep cosine 0.9982 to float32 there (0.999994 on the same CPU with AMX turned off,
``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``); ``bf16_min_cosine`` says what to expect on a device.
On a CPU without native bf16 instructions PyTorch emulates them and bf16 is slower than float32, so it is
refused there rather than silently made slow.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from .inputs import check_choice

__all__ = [
    "PRECISIONS",
    "Precision",
    "autocast",
    "bf16_min_cosine",
    "check_precision",
    "cpu_has_amx_bf16",
    "cpu_has_native_bf16",
    "resolve_device",
]

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when available, else the CPU; strings such as ``"cuda:1"`` are checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r} ({exc}); use 'cpu', 'cuda', 'cuda:0' or 'mps'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use device='cpu'")
    return resolved


def _cpuinfo_flags() -> set[str]:
    """The words of ``/proc/cpuinfo`` (its CPU flags among them); empty where there is none."""
    cpuinfo = Path("/proc/cpuinfo")
    return set(cpuinfo.read_text(errors="replace").split()) if cpuinfo.is_file() else set()


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively: AVX-512 BF16 or AMX (x86), the BF16 extension (Arm, Apple M2+)."""
    machine = platform.machine().lower()
    if platform.system() == "Darwin":
        try:
            answer = subprocess.run(
                ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5, check=False
            )
        except OSError:
            return False
        return answer.stdout.strip() == "1"
    words = _cpuinfo_flags()
    if machine in ("aarch64", "arm64"):
        return "bf16" in words
    return any(flag in words for flag in _CPU_BF16_FLAGS)


@lru_cache(maxsize=1)
def cpu_has_amx_bf16() -> bool:
    """Whether this (x86, Linux) CPU has AMX bf16 tiles, which oneDNN's bf16 convolutions use where present."""
    return platform.system() == "Linux" and "amx_bf16" in _cpuinfo_flags()


def bf16_min_cosine(device: torch.device) -> float:
    """The cosine that bf16 embeddings keep at least to float32 ones on ``device``, per window: 0.9999 on GPUs and
    on CPUs with AVX-512 BF16 or Arm BF16 (measured 0.99997 and better), 0.997 on CPUs with AMX (measured 0.9982 for
    CLEF-small on LUDB, oneDNN's AMX convolution kernels; CLEF-medium 0.9999)."""
    if device.type == "cpu" and cpu_has_amx_bf16():
        return 0.997
    return 0.9999


def check_precision(precision: object, device: torch.device) -> Precision:
    """Validate ``precision`` for ``device``; raises with what to do instead when the hardware lacks bf16."""
    checked = check_choice(precision, PRECISIONS, "precision")
    if checked == "bf16":
        if device.type == "cpu" and not cpu_has_native_bf16():
            raise ValueError(
                "precision='bf16' needs a CPU with native bf16 instructions (AVX-512 BF16 or AMX on x86, the BF16 "
                "extension on Arm / Apple M2 and later); this CPU would emulate them, slower than float32. "
                "Use precision='fp32' (the default)."
            )
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"precision='bf16' needs a GPU with bf16 support (Ampere or newer); {torch.cuda.get_device_name(device)} "
                "lacks it. Use precision='fp32' (the default)."
            )
    return checked


def autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """The autocast context for ``precision`` on ``device`` (a no-op for float32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
