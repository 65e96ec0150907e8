"""The weights manifest: which CLEF models exist, their aliases, sizes and where their weights come from.

The manifest ships inside the package (``clef_sdk/weights_manifest.json``); the environment variable
``CLEF_SDK_MANIFEST`` points the SDK at another file of the same schema (mirrors, tests).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ManifestError
from .models import ARCHITECTURES

__all__ = ["MANIFEST_ENV", "ModelEntry", "list_models", "load_manifest", "manifest_path", "model_entry"]

MANIFEST_ENV = "CLEF_SDK_MANIFEST"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest."""

    name: str
    aliases: tuple[str, ...]
    embed_dim: int
    num_parameters: int
    sources: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return self.name


def manifest_path() -> Path:
    """The manifest in use: ``$CLEF_SDK_MANIFEST`` if set, else the one shipped with the package."""
    override = os.environ.get(MANIFEST_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ManifestError(f"{MANIFEST_ENV}={override} does not name a file; unset it or fix the path")
        return path
    return Path(str(resources.files("clef_sdk") / "weights_manifest.json"))


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ManifestError(f"{where}: {message}")


def _parse_entry(name: str, raw: object, where: str) -> ModelEntry:
    _require(isinstance(raw, dict), where, f"models.{name} must be an object")
    assert isinstance(raw, dict)
    _require(name in ARCHITECTURES, where, f"unknown model size {name!r}; expected one of {sorted(ARCHITECTURES)}")
    aliases = raw.get("aliases", [])
    _require(
        isinstance(aliases, list) and all(isinstance(a, str) and a for a in aliases),
        where,
        f"models.{name}.aliases must be a list of non-empty strings",
    )
    embed_dim = raw.get("embed_dim")
    _require(
        embed_dim == ARCHITECTURES[name].embed_dim,
        where,
        f"models.{name}.embed_dim is {embed_dim!r}, CLEF-{name} has {ARCHITECTURES[name].embed_dim}",
    )
    num_parameters = raw.get("num_parameters")
    _require(isinstance(num_parameters, int), where, f"models.{name}.num_parameters must be an integer")
    sources = raw.get("sources", [])
    _require(isinstance(sources, list), where, f"models.{name}.sources must be a list")
    for i, source in enumerate(sources):
        _require(isinstance(source, dict), where, f"models.{name}.sources[{i}] must be an object")
    known = {"aliases", "embed_dim", "num_parameters", "sources"}
    return ModelEntry(
        name=name,
        aliases=tuple(aliases),
        embed_dim=int(embed_dim),
        num_parameters=int(num_parameters),
        sources=tuple(sources),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def load_manifest(path: str | os.PathLike[str] | None = None) -> dict[str, ModelEntry]:
    """Read and validate a manifest; returns ``{canonical name: ModelEntry}`` in file order."""
    path = Path(path) if path is not None else manifest_path()
    where = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where} is not valid JSON: {exc}") from None
    _require(isinstance(raw, dict), where, "the top level must be an object")
    _require(
        raw.get("schema_version") == SCHEMA_VERSION,
        where,
        f"schema_version is {raw.get('schema_version')!r}; this clef-sdk reads version {SCHEMA_VERSION}",
    )
    models = raw.get("models")
    _require(isinstance(models, dict) and bool(models), where, "'models' must be a non-empty object")
    entries = {name: _parse_entry(name, value, where) for name, value in models.items()}
    seen: dict[str, str] = {}
    for entry in entries.values():
        for alias in (entry.name, *entry.aliases):
            _require(
                alias.lower() not in seen or seen[alias.lower()] == entry.name,
                where,
                f"name {alias!r} is used by both {seen.get(alias.lower())!r} and {entry.name!r}",
            )
            seen[alias.lower()] = entry.name
    return entries


def list_models() -> list[str]:
    """Canonical names of the models in the manifest, e.g. ``["small", "medium", "large"]``."""
    return list(load_manifest())


def model_entry(name: str) -> ModelEntry:
    """The manifest entry for a name or alias (case-insensitive)."""
    entries = load_manifest()
    wanted = name.lower()
    for entry in entries.values():
        if wanted in (alias.lower() for alias in (entry.name, *entry.aliases)):
            return entry
    raise ManifestError(
        f"unknown model {name!r}; known models: {', '.join(entries)} (see clef.list_models()). "
        "To use a weights file, pass its path instead"
    )
