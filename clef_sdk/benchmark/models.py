"""The models a benchmark compares: encoders with an identity that says exactly which weights were measured.

A model is a name (``"small"``), a weights path, an ``hf-hub:`` id, a [`ClefEncoder`][clef_sdk.models.ClefEncoder], or
``"random-init:SIZE"`` (``clef.build(SIZE, seed=seed)``: the baseline every size gets). Its identity is the
SHA-256 of its weights' values (``weights_sha256``: the same weights give the same digest whatever file they came
from; embeddings are cached by it), plus the file's SHA-256 or the Hub commit where there is one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import sha256_file
from ..loading import load
from ..models import ClefEncoder, build, weights_digest

__all__ = ["RANDOM_INIT", "BenchmarkModel", "resolve_model", "weights_digest"]

#: prefix of the random-init baseline's model spec: ``"random-init:small"``
RANDOM_INIT = "random-init:"


@dataclass
class BenchmarkModel:
    """One column of a benchmark: ``label`` (how tables name it), the encoder, and what identifies it."""

    label: str
    encoder: ClefEncoder
    spec: str
    size: str
    random_init: bool = False
    identity: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A short, file-name-safe key: the first 16 hex digits of the weights' digest."""
        return str(self.identity["weights_sha256"])[:16]


def resolve_model(spec: str | os.PathLike[str] | ClefEncoder, *, seed: int = 0) -> BenchmarkModel:
    """Load (or build) the encoder of ``spec`` and record its identity."""
    identity: dict[str, object]
    random_init = isinstance(spec, str) and spec.startswith(RANDOM_INIT)
    if isinstance(spec, ClefEncoder):
        encoder, text = spec, spec.name
        identity = {"kind": "encoder object", "name": spec.name}
    elif random_init:
        text = os.fspath(spec)
        size = text[len(RANDOM_INIT) :]
        encoder = build(size, seed=seed).eval()
        identity = {"kind": "random init", "build": f"clef.build({size!r}, seed={seed})"}
    else:
        text = os.fspath(spec)
        encoder = load(text, device="cpu")
        source: Any = encoder.source  # a HubModelSource for hf-hub: ids
        if source is not None:
            identity = {"kind": "hf-hub", "repo_id": source.repo_id, "commit": source.commit}
            identity["file_sha256"] = source.sha256
        elif Path(text).expanduser().is_file():
            identity = {"kind": "file", "file": Path(text).name, "file_sha256": sha256_file(Path(text).expanduser())}
        else:
            identity = {"kind": "released", "name": encoder.name}
    size = encoder.architecture.name
    identity.update(weights_sha256=weights_digest(encoder), size=size)
    label = f"random-init {size}" if random_init else encoder.name
    return BenchmarkModel(label, encoder, text, size, random_init, identity)
