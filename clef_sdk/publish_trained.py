"""Share a CLEF model you trained: ``clef publish --weights TRAINED.safetensors --repo-id ORG/NAME --license ID``.

From the file ``clef train export`` wrote (or any clef-sdk safetensors file), a Hub folder is made:

- ``model.safetensors``: the file itself, byte for byte (its sha256 is what the Hub will report);
- ``config.json``: size, embedding dimension, preprocessing contract, sha256 and the training facts;
- ``README.md``: a model card with Hub metadata (``library_name: clef-sdk``, the license you chose, tags), the
  training facts from the file's ``training_*`` metadata (method, size, steps, data, seed, hyper-parameters), and
  how to load it: ``clef.load("hf-hub:ORG/NAME@COMMIT")``.

Unless ``dry_run`` the folder is uploaded (:func:`clef_sdk.publish.upload_folder`). Anyone then embeds with
``clef.embed(x, fs, model="hf-hub:ORG/NAME@COMMIT")``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._io import sha256_file
from ._version import __version__
from .convert import read_weights
from .errors import CheckpointError
from .preprocessing import PREPROCESSING
from .publish import LIBRARY_NAME, PAPER_URL, WEIGHTS_FILENAME, PublishResult, upload_folder

__all__ = ["build_trained_folder", "publish_trained", "trained_model_card"]

_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


def _training_facts(metadata: dict[str, str]) -> dict[str, Any]:
    facts: dict[str, Any] = {key[len("training_") :]: value for key, value in metadata.items() if key.startswith("training_")}
    if "hparams" in facts:
        try:
            facts["hparams"] = json.loads(facts["hparams"])
        except json.JSONDecodeError:
            pass
    return facts


def trained_model_card(repo_id: str, license: str, metadata: dict[str, str], sha256: str, size: int, embed_dim: int) -> str:
    """The README.md of a trained model's Hub repository."""
    facts = _training_facts(metadata)
    method = facts.get("method", "unknown")
    tags = ["ecg", "electrocardiogram", "single-lead-ecg", "clef", "feature-extraction", "safetensors", f"clef-{method}"]
    front = "---\n" + f"library_name: {LIBRARY_NAME}\nlicense: {license}\npipeline_tag: feature-extraction\n"
    front += "tags:\n" + "".join(f"- {tag}\n" for tag in tags) + "---\n\n"
    rows = [("size", metadata.get("size", "?")), ("embedding dimension", str(embed_dim)), ("method", method),
            ("steps", facts.get("steps", "?")), ("epochs", facts.get("epochs", "?")),
            ("data", facts.get("data") or "not described"), ("seed", facts.get("seed") or "not recorded"),
            ("trained from", metadata.get("source_file", "?")), ("weights sha256", sha256),
            ("weights size", f"{size:,} bytes")]  # fmt: skip
    table = "| | |\n|---|---|\n" + "".join(f"| {key} | {value} |\n" for key, value in rows)
    hparams = facts.get("hparams")
    hparams_block = f"\n```json\n{json.dumps(hparams, indent=2, sort_keys=True)}\n```\n" if isinstance(hparams, dict) else ""
    name = repo_id.split("/")[-1]
    return front + f"""# {name}

A CLEF single-lead ECG encoder pretrained with [clef-sdk](https://pypi.org/project/clef-sdk/)
(`clef train`, method `{method}`), following CLEF ({PAPER_URL}). It maps 10 s windows of one ECG lead to
{embed_dim}-dimensional embeddings.

## Use it

```python
import clef_sdk as clef

encoder = clef.load("hf-hub:{repo_id}@COMMIT")                  # pin the commit for reproducible results
embedding = clef.embed(signal, fs, model="hf-hub:{repo_id}@COMMIT")
```

```bash
clef embed recording.hea --model hf-hub:{repo_id}@COMMIT -o embedding.npy
```

Replace COMMIT with a commit of this repository (without `@COMMIT` the latest commit of `main` is used; `clef info
hf-hub:{repo_id}` shows which). clef-sdk checks the file against the sha256 the Hub reports and refuses a file
whose preprocessing contract it does not implement.

## Training

{table}{hparams_block}
## Preprocessing

Inputs are preprocessed exactly as in CLEF pretraining (clef-sdk does it for you): resampled to 500 Hz, cut into
10 s windows, band-passed (Butterworth order 5, 0.67-40 Hz, zero-phase) and z-scored per window.

```json
{json.dumps(PREPROCESSING, indent=2, sort_keys=True)}
```

## Limitations

This is a research model, not a medical device. Its embeddings reflect the data it was trained on ("data" above);
check them on your own population before relying on them.

Published with clef-sdk {__version__}.
"""


def build_trained_folder(
    weights: str | os.PathLike[str], folder: str | os.PathLike[str], *, repo_id: str, license: str
) -> dict[str, Any]:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` for a trained model into ``folder``; returns
    the config written."""
    if not _LICENSE.match(license or ""):
        raise ValueError(
            f"license must be a Hub license identifier you chose for these weights (e.g. cc-by-4.0, mit, apache-2.0, "
            f"other), got {license!r}: the training data's terms decide what you may choose"
        )
    source = Path(weights)
    loaded = read_weights(source)  # validates the file (format, tensors' digest, preprocessing contract)
    if not any(key.startswith("training_") for key in loaded.metadata):
        raise CheckpointError(
            f"{source} has no training metadata: export the trained checkpoint with `clef train export`; "
            "the authors' released checkpoints are published with `clef publish NAME --ckpt ...`"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / WEIGHTS_FILENAME)
    sha256, size = sha256_file(folder / WEIGHTS_FILENAME), (folder / WEIGHTS_FILENAME).stat().st_size
    config = {
        "library_name": LIBRARY_NAME,
        "model_type": "clef",
        "size": loaded.size,
        "embed_dim": loaded.embed_dim,
        "preprocessing": PREPROCESSING,
        "weights": {"filename": WEIGHTS_FILENAME, "sha256": sha256, "size": size},
        "training": _training_facts(loaded.metadata),
        "license": license,
        "repo_id": repo_id,
        "published_with": f"{LIBRARY_NAME} {__version__}",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = trained_model_card(repo_id, license, loaded.metadata, sha256, size, loaded.embed_dim)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return config


def publish_trained(
    weights: str | os.PathLike[str],
    repo_id: str,
    *,
    license: str,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
) -> PublishResult:
    """Write the Hub folder of a trained model and (unless ``dry_run``) upload it; see the module docstring.

    The result's ``manifest_source["revision"]`` is the commit created; load it with
    ``clef.load(f"hf-hub:{repo_id}@{result.revision}")``.
    """
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="clef-trained-hub-"))
    config = build_trained_folder(weights, folder, repo_id=repo_id, license=license)
    source: dict[str, Any] = {"type": "hub", "repo_id": repo_id, "filename": WEIGHTS_FILENAME, "revision": None,
                              "sha256": config["weights"]["sha256"], "size": config["weights"]["size"]}  # fmt: skip
    if dry_run:
        return PublishResult(folder, repo_id, None, source, notes=["dry run: nothing uploaded"])
    method = config["training"].get("method", "?")
    info = upload_folder(folder, repo_id, f"CLEF-{config['size']} ({method}) trained with clef-sdk {__version__}",
                         private=private, token=token, api=api)  # fmt: skip
    revision = getattr(info, "oid", None)
    source["revision"] = revision
    return PublishResult(folder, repo_id, revision, source, commit_url=getattr(info, "commit_url", None))
