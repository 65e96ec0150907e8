"""The weights manifest: which CLEF models exist, their aliases, sizes and where their weights come from.

The manifest ships inside the package (``clef_sdk/weights/manifest.json``); the environment variable
``CLEF_SDK_MANIFEST`` points the SDK at another file of the same schema (mirrors, tests). Every field is
validated when the file is read, and an error names the file, the field and what is allowed.

Sources, in order of preference, are of two types:

- ``hub``: a Hugging Face Hub file pinned to a commit (``revision``, 40 hex digits) with the ``sha256`` and
  ``size`` of the safetensors file. A hub source whose revision or sha256 is still ``null`` (not yet
  published) is skipped, never used unpinned.
- ``zenodo``: a released Lightning checkpoint (``record``, ``filename``, optional ``url``) with the
  ``checksum`` Zenodo publishes (``"md5:<hex>"``; ``"sha256:<hex>"`` also accepted) and its ``size``. A
  zenodo source without a checksum is refused unless the user opts in explicitly (see [`clef_sdk.weights.fetch`][clef_sdk.weights.fetch]).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

from ..errors import ManifestError
from ..models import ARCHITECTURES
from ..readable import unreadable

__all__ = [
    "MANIFEST_ENV",
    "HubSource",
    "ModelEntry",
    "Source",
    "ZenodoSource",
    "list_models",
    "load_manifest",
    "manifest_path",
    "model_entry",
]

MANIFEST_ENV = "CLEF_SDK_MANIFEST"
SCHEMA_VERSION = 1
ZENODO_URL_TEMPLATE = "https://zenodo.org/records/{record}/files/{filename}?download=1"

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_CHECKSUM_RE = {"md5": re.compile(r"[0-9a-f]{32}"), "sha256": _SHA256_RE}
_REPO_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_RECORD_RE = re.compile(r"[0-9]+")

_TOP_KEYS = {"schema_version", "models", "notes", "provenance", "$comment"}
_MODEL_KEYS = {
    "aliases",
    "embed_dim",
    "num_parameters",
    "sources",
    "description",
    "preprocessing",
    "license",
    "license_provenance",
    "citation",
    "notes",
    "provenance",
}
_INFO_KEYS = {"notes", "provenance", "status"}
_HUB_KEYS = {"type", "repo_id", "filename", "revision", "sha256", "size"} | _INFO_KEYS
_ZENODO_KEYS = {"type", "record", "filename", "url", "checksum", "size", "format"} | _INFO_KEYS


@dataclass(frozen=True)
class HubSource:
    """A safetensors file on the Hugging Face Hub, pinned to a commit and a sha256."""

    repo_id: str
    filename: str
    revision: str | None
    sha256: str | None
    size: int | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    type = "hub"

    @property
    def pinned(self) -> bool:
        """Whether both the commit and the sha256 are known: only pinned hub sources are ever used."""
        return self.revision is not None and self.sha256 is not None

    def skip_reason(self) -> str | None:
        if self.pinned:
            return None
        missing = [name for name in ("revision", "sha256") if getattr(self, name) is None]
        return f"not yet published: {' and '.join(missing)} unknown, and clef-sdk never downloads unpinned files"

    def describe(self) -> str:
        revision = self.revision[:12] if self.revision else "unpinned"
        return f"Hugging Face Hub {self.repo_id}@{revision}/{self.filename}"


@dataclass(frozen=True)
class ZenodoSource:
    """A released checkpoint on Zenodo (or a mirror of it), with the checksum Zenodo publishes."""

    record: str
    filename: str
    url: str
    checksum: str | None
    size: int | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    type = "zenodo"

    @property
    def checksum_algorithm(self) -> str | None:
        return self.checksum.split(":", 1)[0] if self.checksum else None

    @property
    def checksum_hex(self) -> str | None:
        return self.checksum.split(":", 1)[1] if self.checksum else None

    def skip_reason(self) -> str | None:
        """Why this source cannot be used without the explicit opt-in (``None``: it can)."""
        if self.checksum is None:
            return "its checksum is not yet verified (null in the manifest), so the download could not be checked"
        return None

    def describe(self) -> str:
        return f"Zenodo record {self.record} file {self.filename} ({self.url})"


Source = HubSource | ZenodoSource


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest."""

    name: str
    aliases: tuple[str, ...]
    embed_dim: int
    num_parameters: int
    sources: tuple[Source, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    license: str | None = None
    citation: dict[str, Any] | None = None
    preprocessing: dict[str, Any] | None = None

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
    return Path(str(resources.files("clef_sdk.weights") / "manifest.json"))


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ManifestError(f"{where}: {message}")


def _check_keys(raw: dict[str, Any], allowed: set[str], where: str, what: str) -> None:
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ManifestError(f"{where}: unknown field {what}.{key}{hint}; allowed: {', '.join(sorted(allowed))}")


def _optional_int(raw: dict[str, Any], key: str, where: str, what: str) -> int | None:
    value = raw.get(key)
    _require(
        value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0),
        where,
        f"{what}.{key} must be a positive integer (bytes) or null (not yet verified), got {value!r}",
    )
    return value


def _string(raw: dict[str, Any], key: str, where: str, what: str, pattern: re.Pattern[str] | None = None) -> str:
    value = raw.get(key)
    _require(isinstance(value, str) and bool(value), where, f"{what}.{key} must be a non-empty string, got {value!r}")
    assert isinstance(value, str)
    if pattern is not None:
        _require(bool(pattern.fullmatch(value)), where, f"{what}.{key} {value!r} is not of the form {pattern.pattern}")
    return value


def _filename(raw: dict[str, Any], where: str, what: str) -> str:
    name = _string(raw, "filename", where, what)
    _require(
        not name.startswith("/") and ".." not in name.split("/") and "\\" not in name,
        where,
        f"{what}.filename {name!r} must be a relative file name without '..'",
    )
    parts = name.split("/")
    _require(
        all(part not in ("", ".") for part in parts) and not any(ord(c) < 32 or c == "\x7f" for c in name),
        where,
        f"{what}.filename {name!r} must be a file name: parts separated by single '/', no '.' part, no trailing "
        "'/', no control characters",
    )
    return name


def _parse_hub(raw: dict[str, Any], where: str, what: str) -> HubSource:
    _check_keys(raw, _HUB_KEYS, where, what)
    repo_id = _string(raw, "repo_id", where, what, _REPO_ID_RE)
    filename = _filename(raw, where, what)
    _require(filename.endswith(".safetensors"), where, f"{what}.filename must be a .safetensors file, got {filename!r}")
    revision = raw.get("revision")
    _require(
        revision is None or (isinstance(revision, str) and bool(_COMMIT_RE.fullmatch(revision))),
        where,
        f"{what}.revision must be a 40-character lowercase hex commit, or null while not yet published; got "
        f"{revision!r} (clef-sdk never downloads a branch or tag, whose content can change)",
    )
    sha256 = raw.get("sha256")
    _require(
        sha256 is None or (isinstance(sha256, str) and bool(_SHA256_RE.fullmatch(sha256))),
        where,
        f"{what}.sha256 must be 64 lowercase hex digits or null (not yet published), got {sha256!r}",
    )
    size = _optional_int(raw, "size", where, what)
    return HubSource(repo_id, filename, revision, sha256, size, raw=dict(raw))


def _parse_zenodo(raw: dict[str, Any], where: str, what: str) -> ZenodoSource:
    _check_keys(raw, _ZENODO_KEYS, where, what)
    record = str(raw.get("record")) if isinstance(raw.get("record"), int) else raw.get("record")
    _require(
        isinstance(record, str) and bool(_RECORD_RE.fullmatch(record)),
        where,
        f'{what}.record must be a Zenodo record number such as "17572734", got {raw.get("record")!r}',
    )
    assert isinstance(record, str)
    filename = _filename(raw, where, what)
    url = raw.get("url") or ZENODO_URL_TEMPLATE.format(record=record, filename=filename)
    _require(
        isinstance(url, str) and url.startswith(("https://", "http://")),
        where,
        f"{what}.url must be an http(s) URL, got {url!r}",
    )
    checksum = raw.get("checksum")
    if checksum is not None:
        algorithm, _, digest = checksum.partition(":") if isinstance(checksum, str) else ("", "", "")
        _require(
            algorithm in _CHECKSUM_RE and bool(_CHECKSUM_RE[algorithm].fullmatch(digest)),
            where,
            f'{what}.checksum must be "md5:<32 hex>" (as Zenodo publishes it) or "sha256:<64 hex>", or null '
            f"(not yet verified); got {checksum!r}",
        )
    size = _optional_int(raw, "size", where, what)
    fmt = raw.get("format", "lightning-ckpt")
    _require(fmt == "lightning-ckpt", where, f'{what}.format must be "lightning-ckpt", got {fmt!r}')
    return ZenodoSource(record, filename, url, checksum, size, raw=dict(raw))


def _parse_source(raw: object, where: str, what: str) -> Source:
    _require(isinstance(raw, dict), where, f"{what} must be an object")
    assert isinstance(raw, dict)
    kind = raw.get("type")
    if kind == "hub":
        return _parse_hub(raw, where, what)
    if kind == "zenodo":
        return _parse_zenodo(raw, where, what)
    raise ManifestError(f"{where}: {what}.type must be one of 'hub', 'zenodo', got {kind!r}")


def _parse_entry(name: str, raw: object, where: str) -> ModelEntry:
    _require(isinstance(raw, dict), where, f"models.{name} must be an object")
    assert isinstance(raw, dict)
    _require(name in ARCHITECTURES, where, f"unknown model size {name!r}; expected one of {sorted(ARCHITECTURES)}")
    _check_keys(raw, _MODEL_KEYS, where, f"models.{name}")
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
    _require(
        isinstance(num_parameters, int) and not isinstance(num_parameters, bool) and num_parameters > 0,
        where,
        f"models.{name}.num_parameters must be a positive integer, got {num_parameters!r}",
    )
    sources = raw.get("sources", [])
    _require(isinstance(sources, list), where, f"models.{name}.sources must be a list")
    parsed = tuple(_parse_source(source, where, f"models.{name}.sources[{i}]") for i, source in enumerate(sources))
    license_ = raw.get("license")
    _require(
        license_ is None or (isinstance(license_, str) and bool(license_)),
        where,
        f"models.{name}.license must be a license identifier string or null, got {license_!r}",
    )
    citation = raw.get("citation")
    _require(
        citation is None or isinstance(citation, dict),
        where,
        f'models.{name}.citation must be an object (e.g. {{"arxiv": ..., "bibtex": ...}}) or null',
    )
    preprocessing = raw.get("preprocessing")
    _require(
        preprocessing is None or isinstance(preprocessing, dict),
        where,
        f"models.{name}.preprocessing must be an object or null",
    )
    typed = {"aliases", "embed_dim", "num_parameters", "sources", "license", "citation", "preprocessing"}
    return ModelEntry(
        name=name,
        aliases=tuple(aliases),
        embed_dim=ARCHITECTURES[name].embed_dim,  # equal to the manifest's, as checked above
        num_parameters=int(cast(int, num_parameters)),
        sources=parsed,
        extra={k: v for k, v in raw.items() if k not in typed},
        license=license_,
        citation=citation,
        preprocessing=preprocessing,
    )


def load_manifest(path: str | os.PathLike[str] | None = None) -> dict[str, ModelEntry]:
    """Read and validate a manifest; returns ``{canonical name: ModelEntry}`` in file order."""
    path = Path(path) if path is not None else manifest_path()
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc, "manifest", ManifestError) from None
    try:
        raw = json.loads(data.decode("utf-8-sig"))  # a byte order mark some editors write is read past
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where} is not UTF-8 text ({exc}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestError(f"{where} nests too deeply to be a manifest (not valid JSON for it)") from None
    _require(isinstance(raw, dict), where, "the top level must be an object")
    _require(
        raw.get("schema_version") == SCHEMA_VERSION,
        where,
        f"schema_version is {raw.get('schema_version')!r}; this clef-sdk reads version {SCHEMA_VERSION}",
    )
    _check_keys(raw, _TOP_KEYS, where, "(top level)")
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
    import difflib

    spellings = {alias.lower(): entry.name for entry in entries.values() for alias in (entry.name, *entry.aliases)}
    # 0.75: "smal" (0.89) and "mediun" (0.83) get a guess, "xl" (0.67 to "l") and "clef-huge" (0.63) none
    close = difflib.get_close_matches(wanted, spellings, n=1, cutoff=0.75)
    guess = f"did you mean {spellings[close[0]]!r}? " if close else ""
    raise ManifestError(
        f"unknown model {name!r}; {guess}known models: {', '.join(entries)} (see clef.list_models()). "
        "To use a weights file, pass its path instead"
    )
