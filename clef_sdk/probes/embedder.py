"""Raw ECG recordings -> CLEF embeddings as a scikit-learn transformer (`ClefEmbedder`), and the one check
of whether an X holds embeddings already."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..backends import BACKENDS, Backend
from ..constants import WINDOW_SECONDS
from ..embedding import embed
from ..inputs import as_recordings, check_batch_size, check_choice, check_fs, recording_collection
from ..loading import ModelSpec, get_encoder
from ..models import ARCHITECTURES, ClefEncoder
from ..precision import Precision, check_precision
from ..threads import check_num_threads
from ..windows import plan_windows

__all__ = ["EMBED_DIMS", "ClefEmbedder", "checked_embeddings", "looks_like_embeddings"]

#: Widths of CLEF embeddings (small, medium, large); a 2-D float X of one of these widths is taken as embeddings.
EMBED_DIMS: tuple[int, ...] = tuple(sorted({arch.embed_dim for arch in ARCHITECTURES.values()}))


class ClefEmbedder(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: raw single-lead ECG recordings -> CLEF embeddings ``(n_records, embed_dim)``.

    Stateless: `fit` only validates (the parameters, that the weights load, that the recordings are at
    least 10 s long) and `transform` works without it. The encoder is never stored on the estimator: it
    is fetched from `clef_sdk.get_encoder`'s cache at each call, so a pickled embedder holds only
    ``model`` as given (a name or a path) and reloads the weights lazily where it is unpickled.
    (A loaded [`ClefEncoder`][clef_sdk.ClefEncoder] passed as ``model`` is pickled with its weights; pass a name or a
    path to avoid that.)

    Args:
        model: a model name (``"small"``, ``"medium"``, ``"large"`` or an alias), a weights path
            (``.safetensors`` or ``.ckpt``), or a loaded ClefEncoder.
        fs: sampling rate of the recordings in Hz (one rate for all; required).
        pooling: ``"mean"`` or ``"max"`` over each recording's 10 s windows.
        batch_size: windows per forward pass; ``None`` picks it for the model and device.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        precision: ``"fp32"`` (default) or ``"bf16"`` autocast, as in [`clef_sdk.embed`][clef_sdk.embed].
        quality: ``None`` (default) or ``"drop"``: pool only the windows [`clef_sdk.signal_quality`][clef_sdk.signal_quality] rates
            usable (a recording with none gives a NaN row and a warning).
        backend: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``, as in [`clef_sdk.embed`][clef_sdk.embed].
        num_threads: CPU threads of the network; ``None`` chooses from the free cores, as in [`clef_sdk.embed`][clef_sdk.embed].
        progress: the progress bar of each transform (``None``: for long jobs, as [`clef_sdk.set_progress`][clef_sdk.set_progress] says;
            by default only where stderr is a terminal).

    ``X`` is a 2-D array ``(n_records, n_samples)`` of equal-length recordings or a list of 1-D recordings
    (any lengths of at least 10 s). NaN gaps are interpolated as in pretraining.
    """

    def __init__(
        self,
        model: ModelSpec = "medium",
        fs: float | None = None,
        pooling: Literal["mean", "max"] = "mean",
        batch_size: int | None = None,
        device: str | None = None,
        precision: Precision = "fp32",
        quality: Literal["drop"] | None = None,
        backend: Backend = "auto",
        num_threads: int | None = None,
        progress: bool | None = None,
    ):
        self.model = model
        self.fs = fs
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.quality = quality
        self.backend = backend
        self.num_threads = num_threads
        self.progress = progress

    # -- validation -------------------------------------------------------------------------------------

    def _check_params(self) -> float:
        # A subset of clef.embed's options: per-window output (pooling=None) and quality="return" have no fixed
        # width, so an estimator cannot offer them; clef.embed does.
        check_choice(self.quality, (None, "drop"), "ClefEmbedder quality")
        check_choice(self.pooling, ("mean", "max"), "ClefEmbedder pooling")
        check_choice(self.backend, BACKENDS, "ClefEmbedder backend")
        try:
            check_batch_size(self.batch_size)
            check_num_threads(self.num_threads)
        except ValueError as exc:
            raise ValueError(f"ClefEmbedder {exc}") from None
        if self.fs is None:
            raise TypeError(
                "ClefEmbedder needs fs, the sampling rate of the recordings in Hz: ClefEmbedder(model=..., fs=500)"
            )
        if isinstance(self.fs, (list, tuple, np.ndarray)):
            raise TypeError(
                "ClefEmbedder takes one sampling rate for all recordings (fs=360); resample recordings with "
                "other rates first, or embed them with clef.embed(signals, fs=[...]) and fit on the embeddings"
            )
        return check_fs(self.fs)

    def _recordings(self, X: object, fs: float) -> list[np.ndarray]:
        X = recording_collection(X, "ClefEmbedder", f" of {WINDOW_SECONDS:g} s or more")
        recordings, _ = as_recordings(X)
        for index, recording in enumerate(recordings):
            try:
                plan_windows(len(recording), fs)
            except ValueError as exc:
                raise ValueError(f"recording {index}: {exc}") from None
        return recordings

    # -- scikit-learn API -------------------------------------------------------------------------------

    def fit(self, X: object, y: object = None) -> ClefEmbedder:
        """Validate parameters, weights and recordings; nothing is learned. Returns self."""
        fs = self._check_params()
        self._recordings(X, fs)
        encoder = get_encoder(self.model, self.device)
        check_precision(self.precision, encoder.device)
        self.embed_dim_ = encoder.embed_dim
        self.model_name_ = encoder.name
        return self

    def transform(self, X: object) -> np.ndarray:
        """Embed each recording: float32 ``(n_records, embed_dim)``."""
        fs = self._check_params()
        recordings = self._recordings(X, fs)
        embeddings = embed(
            recordings,
            fs,
            model=get_encoder(self.model, self.device),
            pooling=self.pooling,
            batch_size=self.batch_size,
            progress=self.progress,
            precision=self.precision,
            quality=self.quality,
            backend=self.backend,
            num_threads=self.num_threads,
        )
        assert isinstance(embeddings, np.ndarray)  # pooled: one row per recording
        return embeddings

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """``clef_0`` ... ``clef_{embed_dim-1}``."""
        dim = getattr(self, "embed_dim_", None) or get_encoder(self.model, self.device).embed_dim
        return np.asarray([f"clef_{i}" for i in range(dim)], dtype=object)

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.non_deterministic = False
        tags.input_tags.allow_nan = True  # gaps are interpolated, as in pretraining
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if isinstance(self.model, ClefEncoder):
            warnings.warn(
                "pickling a ClefEmbedder whose model is a loaded ClefEncoder stores the weights in the pickle; "
                "pass model as a name or a weights path to pickle without them",
                UserWarning,
                stacklevel=2,
            )
        return state


def looks_like_embeddings(X: object, fs: float | None, widths: tuple[int, ...] = EMBED_DIMS) -> bool:
    """Whether ``X`` is a 2-D numeric array of embeddings of one of ``widths`` rather than raw ECG: with ``fs``
    (Hz), only if its rows would be too short (< 10 s) to be recordings at that rate."""
    array = X.detach().cpu().numpy() if hasattr(X, "detach") and hasattr(X, "cpu") else X
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "fiu":
        return False
    if array.shape[1] not in widths:
        return False
    return fs is None or array.shape[1] / check_fs(fs) < WINDOW_SECONDS


def checked_embeddings(X: object) -> np.ndarray:
    """``X`` as a float array of CLEF embeddings ``(n_records, 256 | 1024 | 2048)``; raises saying what ``X`` looks
    like instead (raw ECG without ``fs``, another width, NaN)."""
    try:
        array = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X)
    except ValueError:
        array = np.asarray([], dtype=object)
    if looks_like_embeddings(array, None):
        embeddings = array.astype(np.float32 if array.dtype == np.float32 else np.float64, copy=False)
        if not np.isfinite(embeddings).all():
            raise ValueError("X (embeddings) contains NaN or infinite values; re-embed those recordings or drop them")
        return embeddings
    if array.ndim == 2 and array.dtype.kind in "fiu":
        raise ValueError(
            f"X has {array.shape[1]} columns, which is not a CLEF embedding width {EMBED_DIMS} (small, medium, "
            "large). If X holds raw ECG recordings, pass fs= (their sampling rate in Hz); if it holds "
            "embeddings, check that they come from clef.embed (one row per recording)"
        )
    raise ValueError(
        f"fs (the sampling rate in Hz) is required when X holds raw ECG (got X of shape {getattr(array, 'shape', None)}); "
        f"pass fs=..., or pass CLEF embeddings as a 2-D float array of width {' / '.join(map(str, EMBED_DIMS))}"
    )
