"""Publishing a released checkpoint on the Hugging Face Hub: ``clef publish NAME --ckpt PATH --repo-id ID``.

The released Lightning checkpoint is converted with the converter (``weights_only`` load, backbone only,
float32 safetensors), and a Hub folder is written next to it:

- ``model.safetensors``: the weights, in clef-sdk's format;
- ``config.json``: size, architecture, embedding dimension, preprocessing contract, file checksums, provenance;
- ``README.md``: the model card, with Hub YAML metadata (``library_name: clef-sdk``, license, tags, datasets,
  ``pipeline_tag: feature-extraction``), the paper, sizes, preprocessing, intended use and limitations.

Unless ``dry_run``, the folder is uploaded with :class:`huggingface_hub.HfApi` and the manifest entry to paste
(the commit it created, the sha256 and size of ``model.safetensors``) is returned.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._io import md5_and_sha256_file
from ._version import __version__
from .convert import FORMAT_NAME, FORMAT_VERSION, extract_backbone, read_checkpoint, write_weights
from .errors import CheckpointError, ChecksumMismatchError, ClefError
from .hub_models import WEIGHTS_FILENAME  # the file name hf-hub: specs load
from .models import ARCHITECTURES, KERNEL_SIZE
from .preprocessing import PREPROCESSING
from .registry import ModelEntry, ZenodoSource, model_entry

__all__ = ["WEIGHTS_FILENAME", "HubFolder", "PublishResult", "build_hub_folder", "model_card", "publish", "upload_folder"]

LIBRARY_NAME = "clef-sdk"
PAPER_URL = "https://arxiv.org/abs/2512.02180"
CODE_URL = "https://github.com/Nokia-Bell-Labs/ecg-foundation-model"
TAGS = (
    "ecg",
    "electrocardiogram",
    "single-lead-ecg",
    "biosignals",
    "foundation-model",
    "self-supervised-learning",
    "feature-extraction",
    "clef",
    "safetensors",
    "arxiv:2512.02180",
)
DATASETS = ("mimic-iv-ecg",)


@dataclass(frozen=True)
class HubFolder:
    """A folder ready to upload, with the facts the manifest needs."""

    folder: Path
    sha256: str
    size: int
    checkpoint: dict[str, Any]


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did: the folder, the commit (``None`` for a dry run) and the manifest source."""

    folder: Path
    repo_id: str
    revision: str | None
    manifest_source: dict[str, Any]
    commit_url: str | None = None
    notes: list[str] = field(default_factory=list)


def _zenodo_source(entry: ModelEntry) -> ZenodoSource | None:
    return next((s for s in entry.sources if isinstance(s, ZenodoSource)), None)


def _yaml_list(key: str, values: tuple[str, ...] | list[str]) -> str:
    return f"{key}:\n" + "".join(f"- {value}\n" for value in values)


def model_card(entry: ModelEntry, *, repo_id: str, sha256: str, size: int, checkpoint: dict[str, Any]) -> str:
    """The Hub model card (README.md) for ``entry``'s weights."""
    arch = ARCHITECTURES[entry.name]
    title = f"CLEF-{entry.name.capitalize()}"
    license_id = entry.license or "other"
    citation = entry.citation or {}
    bibtex = citation.get("bibtex", "")
    forward_params = arch.num_parameters(include_batchnorm=False)
    band = PREPROCESSING["bandpass"]
    norm = PREPROCESSING["normalization"]
    assert isinstance(band, dict) and isinstance(norm, dict)
    source_line = (
        f"Zenodo record {checkpoint['record']}, `{checkpoint['filename']}` (md5 `{checkpoint['md5']}`, "
        f"sha256 `{checkpoint['sha256']}`, {checkpoint['size']:,} bytes)"
        if checkpoint.get("record")
        else f"`{checkpoint['filename']}` (md5 `{checkpoint['md5']}`, sha256 `{checkpoint['sha256']}`)"
    )
    license_note = entry.extra.get("license_provenance")
    front = (
        "---\n"
        f"library_name: {LIBRARY_NAME}\n"
        f"license: {license_id}\n"
        + _yaml_list("tags", TAGS)
        + _yaml_list("datasets", DATASETS)
        + "pipeline_tag: feature-extraction\n"
        "---\n"
    )
    body = f"""
# {title}: single-lead ECG foundation model (clef-sdk weights)

{title} from *CLEF: Clinically-Guided Contrastive Learning for Electrocardiogram Foundation Models*
(Shu, Charlton, Kawsar, Hernesniemi, Malekzadeh; [arXiv:2512.02180]({PAPER_URL}); Nokia Bell Labs), converted
from the authors' released checkpoint to safetensors for the `clef-sdk` Python package. It turns any single-lead
ECG into {entry.embed_dim}-dimensional embeddings for downstream models (linear probes, retrieval, clustering).

| | |
|---|---|
| model | {title} (`{entry.name}`; aliases: {", ".join(f"`{a}`" for a in entry.aliases) or "none"}) |
| architecture | 1-D ResNeXt with squeeze-and-excitation (Net1D): base width {arch.base_filters}, stages {list(arch.filter_list)}, blocks {list(arch.blocks_per_stage)}, kernel {KERNEL_SIZE} |
| parameters | {entry.num_parameters:,} as released ({forward_params:,} used in the forward pass: the BatchNorm tensors the released models never apply are dropped) |
| embedding | {entry.embed_dim} float32 per 10 s window (time mean of the last stage) |
| file | `{WEIGHTS_FILENAME}`: {size:,} bytes, sha256 `{sha256}`, format `{FORMAT_NAME}` v{FORMAT_VERSION} |
| converted from | {source_line} |
| pretraining data | MIMIC-IV-ECG (PhysioNet, credentialed access; not a Hub dataset): 12-lead ECGs of about 161K patients, one lead sampled per example |
| license | `{license_id}` |

## Usage

```bash
pip install clef-sdk
```

```python
import clef_sdk as clef

embedding = clef.embed(ecg, fs=360, model="{entry.name}")              # ({entry.embed_dim},) float32, mean over 10 s windows
windows = clef.embed(ecg, fs=360, model="{entry.name}", pooling=None)  # (n_windows, {entry.embed_dim})
encoder = clef.load("{entry.name}")                                    # a torch.nn.Module
```

clef-sdk downloads this file at a pinned commit, checks its sha256 before first use and caches it; `clef download
{entry.name}` fetches it ahead of time (e.g. for offline machines).

## Preprocessing (required)

The embeddings are only meaningful on input preprocessed exactly as in pretraining; `clef.embed` does this:

1. resample the whole recording to {PREPROCESSING["target_fs_hz"]} Hz ({PREPROCESSING["resampling"]});
2. cut consecutive windows of {PREPROCESSING["window_samples"]} samples (10 s) from sample 0;
3. per window, fill NaNs ({PREPROCESSING["nan"]});
4. band-pass: Butterworth order {band["order"]}, {band["low_hz"]}-{band["high_hz"]} Hz, transfer-function (b/a) form, applied forwards and backwards ({band["application"]});
5. z-score: `(y - mean) / (std + {norm["eps"]:g})` with the {norm["std"]} standard deviation.

## Intended use

Research on single-lead ECG: feature extraction for classification and regression probes, representation
analysis, and benchmarking, on any lead and device (the models were pretrained on single leads drawn from 12-lead
recordings). Inputs of any length of at least 10 s, any sampling rate from 50 Hz to 10 kHz, any amplitude unit.

## Limitations

- Pretrained on one hospital system's population (MIMIC-IV-ECG, Boston, USA); performance on other populations,
  devices and recording conditions, in particular ambulatory and consumer wearables, must be validated.
- The embeddings are not calibrated risk scores or diagnoses; downstream models need labelled data and
  validation. Pretraining used SCORE2 cardiovascular risk derived from metadata, which carries the biases of
  those scores and of missing metadata.
- Windows shorter than 10 s are dropped by default (`tail="pad"` pads them); very noisy or flat windows give
  uninformative embeddings.

## Not a medical device

This model and clef-sdk are research tools. They are not medical devices, have not been cleared or approved by
any regulator, and must not be used for diagnosis, treatment or any clinical decision.

## License

`{license_id}`.{" " + license_note if license_note else ""}

## Citation

```bibtex
{bibtex}
```

Original code and weights: {CODE_URL} (Zenodo DOI {citation.get("weights_doi", "10.5281/zenodo.17572734")}).
Converted with clef-sdk {__version__}.
"""
    return front + body


def build_hub_folder(
    name: str,
    checkpoint: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    repo_id: str,
    force: bool = False,
) -> HubFolder:
    """Convert ``checkpoint`` and write ``model.safetensors``, ``config.json`` and ``README.md`` into ``folder``.

    The checkpoint must hold CLEF weights of the size ``name`` names, and, when the manifest knows the released
    file's checksum, be that file (``force=True`` publishes another checkpoint anyway).
    """
    entry = model_entry(name)
    checkpoint = Path(checkpoint)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md5, sha256 = md5_and_sha256_file(checkpoint)
    release = _zenodo_source(entry)
    matches_release: bool | None = None
    if release is not None and release.checksum is not None:
        actual = md5 if release.checksum_algorithm == "md5" else sha256
        matches_release = actual == release.checksum_hex
        if not matches_release and not force:
            raise ChecksumMismatchError(
                f"{checkpoint} is not the released {release.filename}: expected {release.checksum}, got "
                f"{release.checksum_algorithm}:{actual} (source: {release.describe()}). Download the release "
                f"(`clef download {entry.name} --keep-checkpoint`), or pass --force to publish another checkpoint"
            )
    weights = extract_backbone(read_checkpoint(checkpoint), source=str(checkpoint))
    if weights.size != entry.name:
        raise CheckpointError(f"{checkpoint} holds CLEF-{weights.size} weights, not CLEF-{entry.name}")
    weights_path = folder / WEIGHTS_FILENAME
    digest = write_weights(
        weights,
        weights_path,
        extra_metadata={"source_file": checkpoint.name, "source_sha256": sha256, "source_md5": md5},
    )
    size = weights_path.stat().st_size
    checkpoint_info: dict[str, Any] = {
        "filename": release.filename if release is not None and matches_release else checkpoint.name,
        "record": release.record if release is not None and matches_release else None,
        "md5": md5,
        "sha256": sha256,
        "size": checkpoint.stat().st_size,
        "matches_release_checksum": matches_release,
    }
    arch = ARCHITECTURES[entry.name]
    config = {
        "library_name": LIBRARY_NAME,
        "model_type": "clef",
        "size": entry.name,
        "aliases": list(entry.aliases),
        "embed_dim": entry.embed_dim,
        "num_parameters": entry.num_parameters,
        "num_parameters_forward": arch.num_parameters(include_batchnorm=False),
        "architecture": {
            "name": "Net1D (ResNeXt-1D with squeeze-and-excitation)",
            "in_channels": 1,
            "base_filters": arch.base_filters,
            "ratio": arch.ratio,
            "filter_list": list(arch.filter_list),
            "blocks_per_stage": list(arch.blocks_per_stage),
            "groups_width": arch.groups_width,
            "kernel_size": KERNEL_SIZE,
            "activation": "silu",
            "batchnorm": False,
            "pooling": "time mean of the last stage",
        },
        "preprocessing": PREPROCESSING,
        "weights": {
            "filename": WEIGHTS_FILENAME,
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sha256": digest,
            "size": size,
        },
        "source_checkpoint": checkpoint_info,
        "license": entry.license,
        "paper": PAPER_URL,
        "citation": entry.citation,
        "repo_id": repo_id,
        "converted_with": f"{LIBRARY_NAME} {__version__}",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = model_card(entry, repo_id=repo_id, sha256=digest, size=size, checkpoint=checkpoint_info)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return HubFolder(folder, digest, size, checkpoint_info)


def publish(
    name: str,
    checkpoint: str | os.PathLike[str],
    repo_id: str,
    *,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    private: bool = False,
    token: str | None = None,
    force: bool = False,
    api: Any = None,
) -> PublishResult:
    """Convert a released checkpoint, write the Hub folder and (unless ``dry_run``) upload it.

    Args:
        name: model name or alias (``small``, ``medium``, ``large``).
        checkpoint: the released ``.ckpt``.
        repo_id: the Hub repository, ``namespace/name`` (created if missing).
        dry_run: write the folder only; the manifest source then has ``revision: null``.
        out_dir: where to write the folder (default: a new temporary folder).
        private: create the repository private.
        token: a Hub token (default: huggingface_hub's, e.g. ``HF_TOKEN`` or ``hf auth login``).
        force: publish a checkpoint whose checksum differs from the released file's.
        api: an object with huggingface_hub's ``HfApi.create_repo``/``upload_folder`` (default: a new ``HfApi``
            for ``HF_ENDPOINT``).
    """
    entry = model_entry(name)
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix=f"clef-{entry.name}-hub-"))
    built = build_hub_folder(entry.name, checkpoint, folder, repo_id=repo_id, force=force)
    source: dict[str, Any] = {
        "type": "hub",
        "repo_id": repo_id,
        "filename": WEIGHTS_FILENAME,
        "revision": None,
        "sha256": built.sha256,
        "size": built.size,
    }
    if dry_run:
        return PublishResult(folder, repo_id, None, source, notes=["dry run: nothing uploaded; revision stays null"])
    info = upload_folder(folder, repo_id, f"CLEF-{entry.name} weights converted with clef-sdk {__version__}",
                         private=private, token=token, api=api)  # fmt: skip
    revision = getattr(info, "oid", None)
    source["revision"] = revision
    return PublishResult(folder, repo_id, revision, source, commit_url=getattr(info, "commit_url", None))


def upload_folder(
    folder: Path, repo_id: str, message: str, *, private: bool = False, token: str | None = None, api: Any = None
) -> Any:
    """Create ``repo_id`` if needed and upload ``folder`` as one commit; returns huggingface_hub's commit info.

    ``api``: an object with ``HfApi.create_repo``/``upload_folder`` (default: a new ``HfApi`` for ``HF_ENDPOINT``).
    """
    from .hub import LIBRARY_NAME as _LIB
    from .hub import is_offline

    if is_offline():
        raise ClefError("HF_HUB_OFFLINE is set: cannot upload; unset it or use --dry-run")
    if api is None:
        from huggingface_hub import HfApi

        endpoint = os.environ.get("HF_ENDPOINT")
        api = HfApi(endpoint=endpoint.rstrip("/") if endpoint else None, token=token, library_name=_LIB,
                    library_version=__version__)  # fmt: skip
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=message)
