"""The CLEF network: a 1-D ResNeXt with squeeze-and-excitation, in three sizes.

Built from the published architecture (Nokia Bell Labs' CLEF, itself adapted from Hong et al.'s Net1D) so
that the released checkpoints load with ``strict=True`` once the ``backbone.`` prefix and the BatchNorm
tensors are removed. The released models were trained with BatchNorm and dropout switched off, so this
module has neither: the forward pass is convolutions, SiLU ("swish") activations, SE gating and residuals.

Input ``(batch, 1, n_samples)`` float, output ``(batch, embed_dim)``: the time-mean of the last stage.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .inputs import SignalInput

__all__ = ["ARCHITECTURES", "KERNEL_SIZE", "Architecture", "ClefEncoder", "build", "weights_digest"]

KERNEL_SIZE = 16
STAGE_STRIDE = 2
SE_REDUCTION = 2


@dataclass(frozen=True)
class Architecture:
    """Hyper-parameters of one CLEF size."""

    name: str
    base_filters: int
    ratio: float
    filter_list: tuple[int, ...]
    blocks_per_stage: tuple[int, ...]
    groups_width: int

    @property
    def embed_dim(self) -> int:
        return self.filter_list[-1]

    def blocks(self) -> Iterator[tuple[int, int, int, int, int, bool]]:
        """Yield ``(stage, block, in_channels, out_channels, middle_channels, downsample)`` in order."""
        in_channels = self.base_filters
        for stage, (out_channels, n_blocks) in enumerate(zip(self.filter_list, self.blocks_per_stage)):
            for block in range(n_blocks):
                block_in = in_channels if block == 0 else out_channels
                yield stage, block, block_in, out_channels, int(out_channels * self.ratio), block == 0
            in_channels = out_channels

    def batchnorm_shapes(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the BatchNorm tensors the released checkpoints carry but never apply."""
        shapes: dict[str, tuple[int, ...]] = {}

        def add(prefix: str, channels: int) -> None:
            for suffix in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.{suffix}"] = (channels,)
            shapes[f"{prefix}.num_batches_tracked"] = ()

        add("first_bn", self.base_filters)
        for stage, block, block_in, _, middle, _ in self.blocks():
            prefix = f"stage_list.{stage}.block_list.{block}"
            add(f"{prefix}.bn1", block_in)
            add(f"{prefix}.bn2", middle)
            add(f"{prefix}.bn3", middle)
        return shapes

    def num_parameters(self, include_batchnorm: bool = True) -> int:
        """Trainable parameter count; with BatchNorm it matches the published figures (e.g. 447,792)."""
        count = sum(p.numel() for p in build(self.name, device="meta").parameters())
        if include_batchnorm:
            count += sum(
                math.prod(shape) for key, shape in self.batchnorm_shapes().items() if key.endswith((".weight", ".bias"))
            )
        return count


ARCHITECTURES: dict[str, Architecture] = {
    "small": Architecture("small", 32, 0.5, (32, 64, 64, 128, 128, 256), (1, 1, 2, 2, 2, 2), 8),
    "medium": Architecture("medium", 64, 1.0, (64, 160, 160, 400, 400, 1024, 1024), (2, 2, 2, 3, 3, 4, 4), 16),
    "large": Architecture(
        "large",
        128,
        1.5,
        (128, 256, 256, 512, 512, 1024, 1024, 2048, 2048),
        (2, 3, 3, 4, 4, 5, 5, 6, 6),
        32,
    ),
}


def _same_padding(length: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow-style 'same' padding: the output has ceil(length / stride) samples; odd pads go right."""
    out_length = (length + stride - 1) // stride
    total = max(0, (out_length - 1) * stride + kernel_size - length)
    return total // 2, total - total // 2


class SameConv1d(nn.Module):
    """``nn.Conv1d`` behind zero 'same' padding. The inner module is named ``conv`` to match checkpoint keys."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = _same_padding(x.shape[-1], self.conv.kernel_size[0], self.conv.stride[0])
        if left == right == 0:  # pointwise convolutions: skip the copy F.pad would make
            return self.conv(x)
        return self.conv(F.pad(x, (left, right)))


class Block(nn.Module):
    """Bottleneck block: 1x1 conv -> grouped k-conv (strided when downsampling) -> 1x1 conv, SE gate, residual.

    The residual is max-pooled (zero 'same' padding, as in the reference) when the block downsamples, and
    zero-padded symmetrically on the channel axis when the block widens.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        middle_channels: int,
        groups: int,
        downsample: bool,
        is_first_block: bool,
    ):
        super().__init__()
        stride = STAGE_STRIDE if downsample else 1
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.downsample = downsample
        self.is_first_block = is_first_block
        self.conv1 = SameConv1d(in_channels, middle_channels, 1)
        self.conv2 = SameConv1d(middle_channels, middle_channels, KERNEL_SIZE, stride=stride, groups=groups)
        self.conv3 = SameConv1d(middle_channels, out_channels, 1)
        self.se_fc1 = nn.Linear(out_channels, out_channels // SE_REDUCTION)
        self.se_fc2 = nn.Linear(out_channels // SE_REDUCTION, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The very first block follows the stem's activation, so it skips its own pre-activation.
        out = x if self.is_first_block else F.silu(x)
        out = self.conv1(out)
        out = self.conv2(F.silu(out))
        out = self.conv3(F.silu(out))

        gate = torch.sigmoid(self.se_fc2(F.silu(self.se_fc1(out.mean(-1)))))
        out = out * gate.unsqueeze(-1)

        identity = x
        if self.downsample:
            left, right = _same_padding(identity.shape[-1], STAGE_STRIDE, 1)
            identity = F.max_pool1d(F.pad(identity, (left, right)), STAGE_STRIDE)
        if self.out_channels != self.in_channels:
            extra = self.out_channels - self.in_channels
            identity = F.pad(identity, (0, 0, extra // 2, extra - extra // 2))
        return out + identity


class Stage(nn.Module):
    def __init__(self, blocks: list[Block]):
        super().__init__()
        self.block_list = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block_list:
            x = block(x)
        return x


class ClefEncoder(nn.Module):
    """A CLEF encoder: a plain ``nn.Module`` whose forward maps ``(batch, 1, n_samples)`` to ``(batch, embed_dim)``.

    ``forward`` takes preprocessed windows (see [`clef_sdk.preprocess`][clef_sdk.preprocess]); `embed` takes raw ECG.
    ``name`` says which weights it holds (e.g. ``"clef-small"`` or a file name).
    """

    def __init__(self, architecture: Architecture, name: str | None = None):
        super().__init__()
        self.architecture = architecture
        self.name = name or f"clef-{architecture.name}"
        self.source: object | None = None  # a HubModelSource for models loaded by repository id
        self.first_conv = SameConv1d(1, architecture.base_filters, KERNEL_SIZE, stride=STAGE_STRIDE)
        stages: list[list[Block]] = [[] for _ in architecture.filter_list]
        for stage, block, block_in, out_channels, middle, downsample in architecture.blocks():
            stages[stage].append(
                Block(
                    block_in,
                    out_channels,
                    middle,
                    groups=out_channels // architecture.groups_width,
                    downsample=downsample,
                    is_first_block=stage == 0 and block == 0,
                )
            )
        self.stage_list = nn.ModuleList(Stage(blocks) for blocks in stages)

    @property
    def embed_dim(self) -> int:
        return self.architecture.embed_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last-stage feature map ``(batch, embed_dim, n_frames)``; ``n_frames = ceil(n_samples / 2**(stages+1))``."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"expected input of shape (batch, 1, n_samples), got {tuple(x.shape)}")
        out = F.silu(self.first_conv(x))
        for stage in self.stage_list:
            out = stage(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean(-1)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names `forward_intermediates` accepts, input to output."""
        return ("first_conv", *(f"stage_{i}" for i in range(len(self.stage_list))), "embedding")

    def forward_intermediates(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Named activations for ``x`` ``(batch, 1, n_samples)``, computed only as deep as the deepest one asked for.

        ``"first_conv"``: the stem convolution's output ``(batch, base_filters, ceil(n/2))``, before its SiLU (what a
        hook on ``first_conv`` sees); ``"stage_i"``: the output of stage i ``(batch, channels_i, frames_i)`` (a hook
        on ``stage_list.i``); ``"embedding"``: ``(batch, embed_dim)``, equal to ``forward(x)``. ``layers=None``
        returns them all. Gradients flow as in ``forward``.
        """
        names = self.layer_names
        wanted = names if layers is None else tuple(layers)
        unknown = [name for name in wanted if name not in names]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; choose from {list(names)}")
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"expected input of shape (batch, 1, n_samples), got {tuple(x.shape)}")
        deepest = max(names.index(name) for name in wanted) if wanted else -1
        outputs: dict[str, torch.Tensor] = {}
        out = self.first_conv(x)
        outputs["first_conv"] = out
        out = F.silu(out)
        for i, stage in enumerate(self.stage_list, start=1):
            if i > deepest:
                break
            out = stage(out)
            outputs[f"stage_{i - 1}"] = out
        if deepest == len(names) - 1:
            outputs["embedding"] = out.mean(-1)
        return {name: outputs[name] for name in wanted}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def embed(self, signal: SignalInput, fs: float | list[float] | None = None, **kwargs: Any) -> Any:
        """Embed raw single-lead ECG: ``clef.embed(signal, fs, model=self, **kwargs)``, same arguments and outputs."""
        from .embedding import embed

        return embed(signal, fs, model=self, **kwargs)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, size={self.architecture.name!r}, embed_dim={self.embed_dim}"


def build(
    size: str = "medium",
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> ClefEncoder:
    """A randomly initialised CLEF network of ``size`` (``"small"``, ``"medium"`` or ``"large"``), in train mode:
    the random-init baseline, and the empty network that weights are loaded into.

    PyTorch's default initialisation, in the module order of the authors' ``Net1D`` (whose BatchNorm and dropout
    layers draw no random numbers), so ``seed`` gives the weights their code gives under ``torch.manual_seed(seed)``.
    ``seed=None`` draws from the global generator; a seed leaves the global generator untouched. On
    ``device="meta"`` no memory is allocated (shapes only).
    """
    try:
        architecture = ARCHITECTURES[size]
    except KeyError:
        raise ValueError(f"unknown CLEF size {size!r}; choose one of {sorted(ARCHITECTURES)}") from None
    with contextlib.ExitStack() as stack:
        if seed is not None:
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(seed)
        with torch.device(device or "cpu"):
            network = ClefEncoder(architecture)
    return (network.to(dtype=dtype) if dtype is not None else network).train()


def weights_digest(encoder: torch.nn.Module) -> str:
    """SHA-256 over the encoder's state dict (names, dtypes, shapes and values, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        values = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{values.dtype}:{tuple(values.shape)};".encode())
        digest.update(values.view(torch.uint8).numpy().tobytes() if values.numel() else b"")
    return digest.hexdigest()
