"""A self-contained ONNX file of a CLEF encoder, optionally with the preprocessing inside: ``clef.export_onnx``.

Without ``fs`` the graph takes preprocessed windows ``(batch, 1, 5000)`` (from [`clef_sdk.preprocess`][clef_sdk.preprocess]). With
``fs`` it takes raw 10 s windows at that rate, ``(batch, round(10 * fs))`` float32 in any unit, and contains the
rest as ONNX operators: the polyphase resampling of ``resample_poly(padtype="mean")`` applied to the window on its
own, the exact band-pass of [`clef_sdk.filters`][clef_sdk.filters] (a DFT and two small matrix products, in float64) and the
z-score. An app then needs only ONNX Runtime. Gaps (NaN) must be filled before; the file's metadata states the
contract. Needs ``pip install "clef-sdk[onnx]"``.

The pieces (`RawWindowEncoder`, `encoder_metadata`, `write_onnx`) also export task models
([`clef_sdk.tasks.onnx`][clef_sdk.tasks.onnx]), which `export_onnx` hands a [`TaskModel`][clef_sdk.tasks.TaskModel] to.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ._optional import require
from ._version import __version__
from .constants import PREPROCESSING, WINDOW_SAMPLES, WINDOW_SECONDS
from .errors import CheckpointError
from .files import atomic_path, sha256_file
from .filters import bandpass_tables
from .inputs import check_fs
from .loading import ModelSpec, get_encoder
from .models import ClefEncoder
from .resampling import resampling_ratio, resampling_skip
from .tasks.format import is_task_model_file
from .tasks.model import TaskModel
from .torch_preprocessing import bandpass_with_tables, resampling_kernel, upfirdn_with_kernel, zscore_torch
from .weights.format import tensors_digest

__all__ = [
    "DEFAULT_OPSET",
    "RawWindowEncoder",
    "check_opset",
    "encoder_metadata",
    "export_onnx",
    "onnx_destination",
    "rate_text",
    "raw_input_contract",
    "raw_window_samples",
    "read_onnx_metadata",
    "write_onnx",
]

# DFT with onesided output (the band-pass) needs opset 17 or later; 18 is what the exporter writes best.
DEFAULT_OPSET = 18
MIN_OPSET = 17
ONNX_FFT_SIZE = 8192


def _require_onnx() -> None:
    for module in ("onnx", "onnxscript"):
        require(module, "exporting to ONNX")


def raw_window_samples(fs: float) -> int:
    """Samples in one raw 10 s window at ``fs`` Hz, ``round(10 * fs)``; refused when they do not make 5000 at 500 Hz."""
    fs = check_fs(fs)
    n = round(WINDOW_SECONDS * fs)
    ratio = resampling_ratio(fs)
    if n * ratio.numerator // ratio.denominator < WINDOW_SAMPLES:
        raise ValueError(
            f"fs={fs:g} Hz: round(10 * fs) = {n} samples resample to fewer than {WINDOW_SAMPLES} at 500 Hz; "
            "use the exact rate (e.g. 128.5, not 128.49) or export without fs and preprocess with clef.preprocess"
        )
    return n


class RawWindowEncoder(nn.Module):
    """Raw 10 s windows ``(batch, round(10 * fs))`` at ``fs`` Hz -> embeddings ``(batch, embed_dim)``, with the
    preprocessing as tensor operations that export to ONNX (tables and FIR held as buffers, float64)."""

    kernel: torch.Tensor
    spectrum: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor

    def __init__(self, encoder: ClefEncoder, fs: float):
        super().__init__()
        self.encoder = encoder
        self.fs = check_fs(fs)
        self.n_samples = raw_window_samples(self.fs)
        ratio = resampling_ratio(self.fs)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.first = 0
        if (self.up, self.down) != (1, 1):
            self.first = resampling_skip(self.up, self.down)
            self.register_buffer("kernel", resampling_kernel(self.up, self.down, dtype=torch.float32))
        # ONNX Runtime's DFT is fast on powers of two only (measured 0.7 vs 3.5 ms per window at 8192 vs 5120)
        tables = bandpass_tables(WINDOW_SAMPLES, fft_size=ONNX_FFT_SIZE)
        self.register_buffer("spectrum", torch.tensor(tables.kernel_spectrum))
        self.register_buffer("left", torch.tensor(tables.left))
        self.register_buffer("right", torch.tensor(tables.right))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        x = raw.to(torch.float64)
        if (self.up, self.down) != (1, 1):
            # ONNX Runtime has no float64 Conv: the (centred) resampling runs in float32, the band-pass in float64
            background = x.mean(dim=-1, keepdim=True)
            centred = (x - background).to(torch.float32)
            x = upfirdn_with_kernel(centred, self.kernel, self.up, self.down, self.first, WINDOW_SAMPLES).to(
                torch.float64
            )
        windows = zscore_torch(bandpass_with_tables(x, self.spectrum, self.left, self.right))
        return self.encoder(windows.to(torch.float32).unsqueeze(1))


def raw_input_contract(fs: float, shape: list[object]) -> dict[str, object]:
    """The input contract of a raw-window graph at ``fs`` Hz whose input has ``shape`` (written as JSON into the
    file's ``preprocessing`` metadata)."""
    return {
        "input": "raw",
        "shape": shape,
        "dtype": "float32",
        "fs_hz": fs,
        "expects": f"raw 10 s windows of one lead at {fs:g} Hz, any unit, no NaN (fill gaps first); "
        "resampled to 500 Hz per window (resample_poly, padtype='mean'), band-passed, z-scored inside",
        "pipeline": PREPROCESSING,
    }


def encoder_metadata(
    encoder: ClefEncoder, fs: float | None, model: object, opset: int, contract: dict[str, object] | None = None
) -> dict[str, str]:
    """The ONNX metadata entries that describe ``encoder``'s graph (str -> str): clef-sdk version, model name,
    size, embedding dimension, ``fs`` (``""`` for preprocessed windows), input and output names, the input
    contract (JSON; ``contract`` replaces the default one), the tensors' sha256, the opset and, when ``model`` is
    a file, its sha256."""
    if contract is None:
        if fs is None:
            contract = {
                "input": "windows",
                "shape": ["batch", 1, WINDOW_SAMPLES],
                "dtype": "float32",
                "expects": "windows preprocessed by clef_sdk.preprocess (500 Hz, band-passed, z-scored)",
            }
        else:
            contract = raw_input_contract(fs, ["batch", raw_window_samples(fs)])
    metadata: dict[str, str] = {
        "clef_sdk_version": __version__,
        "model_name": encoder.name,
        "model_size": encoder.architecture.name,
        "embed_dim": str(encoder.embed_dim),
        "fs_hz": "" if fs is None else rate_text(fs),
        "input_name": "windows" if fs is None else "raw",
        "output_name": "embedding",
        "preprocessing": json.dumps(contract),
        "weights_tensors_sha256": tensors_digest(encoder.state_dict()),
        "opset": str(opset),
    }
    if isinstance(model, (str, os.PathLike)) and Path(model).is_file():
        metadata["weights_file_sha256"] = sha256_file(model)
    return metadata


def rate_text(fs: float) -> str:
    """``fs`` exactly, as the shortest text that reads back as the same float (``360``, ``1000.125``)."""
    text = repr(float(fs))
    return text[:-2] if text.endswith(".0") else text


def check_opset(opset: object) -> int:
    """``opset`` if it is an integer the exporter can use (at least 17: the band-pass uses ONNX DFT), else
    ``ValueError``."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET} (the band-pass uses ONNX DFT), got {opset!r}")
    return opset


def onnx_destination(path: str | os.PathLike[str]) -> Path:
    """``path`` as the ``.onnx`` file to write (else ``ValueError``), its folder created; needs the onnx extra."""
    _require_onnx()
    destination = Path(path)
    if destination.suffix != ".onnx":
        raise ValueError(f"path must end in .onnx, got {destination.name}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    return destination


def write_onnx(
    module: nn.Module,
    example: torch.Tensor,
    destination: Path,
    *,
    input_name: str,
    output_name: str,
    dynamic_axes: dict[int, str],
    metadata: dict[str, str],
    doc_string: str,
    opset: int,
) -> Path:
    """Export ``module`` (in eval mode, called on one input like ``example``) with torch's dynamo exporter and
    write one self-contained ONNX file (no external data) at ``destination`` atomically, with ``metadata`` as its
    metadata properties. ``dynamic_axes`` names the input's dynamic dimensions (``{0: "batch"}``); every output
    dimension follows from them. Returns ``destination``."""
    import onnx

    dims = {axis: torch.export.Dim(name, min=1) for axis, name in dynamic_axes.items()}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    try:
        exporter_log.setLevel(logging.ERROR)  # its notes on optional torchvision operators are not ours to show
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's own deprecation notes
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=(dims,),
                verbose=False,
                optimize=True,
            )
        if program is None:  # only without dynamo=True, which is always passed
            raise RuntimeError("torch.onnx.export returned no program")
        proto = program.model_proto
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = doc_string
        with atomic_path(destination) as tmp:
            onnx.save_model(proto, str(tmp), save_as_external_data=False)
    finally:
        exporter_log.setLevel(level)
    return destination


def export_onnx(
    model: ModelSpec | TaskModel, path: str | os.PathLike[str], *, fs: float | None = None, opset: int = DEFAULT_OPSET
) -> Path:
    """Write ``model`` (a name, a weights path or a ClefEncoder) as one self-contained ONNX file at ``path``.

    Without ``fs``: input ``"windows"`` ``(batch, 1, 5000)`` float32, preprocessed. With ``fs`` (Hz): input
    ``"raw"`` ``(batch, round(10 * fs))`` float32, raw 10 s windows at that rate, preprocessed inside the graph.
    Output ``"embedding"`` ``(batch, embed_dim)`` float32; the batch size is dynamic. The file's metadata holds the
    model name, size, embedding dimension, ``fs``, the preprocessing contract (JSON) and the weights' sha256.
    Returns the path.

    A [`TaskModel`][clef_sdk.tasks.TaskModel], or the path of a task-model file, is exported with its pooling and
    head, probabilities (or values) out: `clef_sdk.tasks.onnx.export_task_onnx`.
    """
    if isinstance(model, TaskModel) or (isinstance(model, (str, os.PathLike)) and is_task_model_file(model)):
        from .tasks.onnx import export_task_onnx  # it builds on this module

        return export_task_onnx(model, path, fs=fs, opset=opset)
    _require_onnx()
    check_opset(opset)
    encoder = get_encoder(model, "cpu")
    module: nn.Module = encoder if fs is None else RawWindowEncoder(encoder, fs)
    example = torch.zeros(2, 1, WINDOW_SAMPLES) if fs is None else torch.zeros(2, raw_window_samples(fs))
    destination = onnx_destination(path)
    was_training = encoder.training
    encoder.eval()
    try:
        return write_onnx(
            module,
            example,
            destination,
            input_name="windows" if fs is None else "raw",
            output_name="embedding",
            dynamic_axes={0: "batch"},
            metadata=encoder_metadata(encoder, None if fs is None else check_fs(fs), model, opset),
            doc_string=f"CLEF encoder {encoder.name} exported by clef-sdk {__version__}",
            opset=opset,
        )
    finally:
        encoder.train(was_training)


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata `export_onnx` wrote into ``path`` (needs only ``onnx``)."""
    _require_onnx()
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError:
        raise
    except Exception as exc:  # protobuf's DecodeError and others for files that are not ONNX
        raise CheckpointError(f"{path} is not a readable ONNX file ({type(exc).__name__}); export it again") from None
    return {entry.key: entry.value for entry in model.metadata_props}
