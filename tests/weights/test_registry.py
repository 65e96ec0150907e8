"""The weights manifest: the shipped file's facts, and schema validation with clear errors."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import pytest

from clef_sdk import ManifestError
from clef_sdk.constants import PREPROCESSING
from clef_sdk.models import ARCHITECTURES
from clef_sdk.weights.registry import (
    MANIFEST_ENV,
    HubSource,
    ZenodoSource,
    list_models,
    load_manifest,
    manifest_path,
    model_entry,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "clef_sdk" / "weights" / "manifest.json"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32


@pytest.fixture(autouse=True)
def _shipped_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MANIFEST_ENV, raising=False)


def test_shipped_manifest_is_one_real_file_in_the_package():
    path = manifest_path()
    assert path.parent.name == "weights" and path.parent.parent.name == "clef_sdk"
    assert path.samefile(SHIPPED) and not SHIPPED.is_symlink()
    assert '"clef_sdk.weights" = ["manifest.json"]' in (REPO_ROOT / "pyproject.toml").read_text()
    assert not (REPO_ROOT / "weights_manifest.json").exists()  # one copy, one place that reads it


def test_shipped_models_sizes_and_names():
    entries = load_manifest()
    assert list(entries) == list_models() == ["small", "medium", "large"]
    for name, entry in entries.items():
        arch = ARCHITECTURES[name]
        assert entry.embed_dim == arch.embed_dim
        assert entry.num_parameters == arch.num_parameters()  # BatchNorm included, as published
    assert [entries[n].num_parameters for n in entries] == [447_792, 30_654_000, 296_623_360]
    assert model_entry("BASE").name == "medium" and model_entry("clef_large").name == "large"
    assert model_entry("s") is not None and model_entry("S").name == "small"


def test_shipped_contract_license_and_citation():
    for entry in load_manifest().values():
        assert entry.preprocessing == json.loads(json.dumps(PREPROCESSING)), (
            "manifest preprocessing drifted from the code"
        )
        assert entry.license == "bsd-3-clause-clear"
        assert "NOT YET VERIFIED" in entry.extra["license_provenance"]
        assert entry.citation is not None and entry.citation["arxiv"] == "2512.02180"
        assert "2512.02180" in entry.citation["bibtex"] and entry.citation["weights_doi"] == "10.5281/zenodo.17572734"


def test_shipped_sources_zenodo_release_and_unpublished_hub():
    files = {"small": "clef_small.ckpt", "medium": "clef_medium.ckpt", "large": "clef_largel.ckpt"}
    for name, entry in load_manifest().items():
        hub, zenodo = entry.sources
        assert isinstance(hub, HubSource) and isinstance(zenodo, ZenodoSource)
        # Not yet published: skipped, never used unpinned, and the manifest says so.
        assert not hub.pinned and hub.skip_reason() is not None
        assert hub.raw["status"] == "not yet published"
        assert zenodo.record == "17572734" and zenodo.filename == files[name]
        assert zenodo.url == f"https://zenodo.org/records/17572734/files/{files[name]}?download=1"
        assert re.fullmatch(r"md5:[0-9a-f]{32}", zenodo.checksum or "")
        assert zenodo.skip_reason() is None
        # Provenance of every fact is recorded, with what is not yet verified.
        provenance = zenodo.raw["provenance"]
        assert set(provenance) == {"file", "checksum", "size"}
        assert "NOT YET VERIFIED" in provenance["checksum"] and zenodo.size is None
    raw = json.loads(SHIPPED.read_text())
    assert raw["provenance"]["not_yet_verified"] and raw["provenance"]["verified"]


def test_unknown_name_lists_known_models():
    with pytest.raises(ManifestError, match="unknown model 'xl'; known models: small, medium, large"):
        model_entry("xl")


def test_env_var_points_at_another_manifest(tmp_path, monkeypatch):
    raw = json.loads(SHIPPED.read_text())
    raw["models"] = {"small": raw["models"]["small"]}
    raw["models"]["small"]["aliases"] = ["tiny"]
    path = tmp_path / "mirror.json"
    path.write_text(json.dumps(raw))
    monkeypatch.setenv(MANIFEST_ENV, str(path))
    assert list_models() == ["small"] and model_entry("tiny").name == "small"
    monkeypatch.setenv(MANIFEST_ENV, str(tmp_path / "absent.json"))
    with pytest.raises(ManifestError, match=f"{MANIFEST_ENV}=.*absent.json does not name a file"):
        list_models()


def _minimal() -> dict:
    return {
        "schema_version": 1,
        "models": {
            "small": {
                "aliases": ["s"],
                "embed_dim": 256,
                "num_parameters": 447792,
                "sources": [
                    {
                        "type": "hub",
                        "repo_id": "org/clef-small",
                        "filename": "model.safetensors",
                        "revision": COMMIT,
                        "sha256": SHA,
                        "size": 10,
                    },
                    {
                        "type": "zenodo",
                        "record": "17572734",
                        "filename": "clef_small.ckpt",
                        "checksum": "md5:" + "0" * 32,
                        "size": 5,
                    },
                ],
            }
        },
    }


def test_minimal_manifest_parses_typed_sources(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_minimal()))
    entry = load_manifest(path)["small"]
    hub, zenodo = entry.sources
    assert isinstance(hub, HubSource) and hub.pinned and hub.revision == COMMIT and hub.size == 10
    assert isinstance(zenodo, ZenodoSource) and zenodo.checksum_algorithm == "md5" and zenodo.checksum_hex == "0" * 32
    assert zenodo.url == "https://zenodo.org/records/17572734/files/clef_small.ckpt?download=1"  # default URL
    assert entry.license is None and entry.citation is None


def _set(path: tuple, value: object):
    def edit(raw: dict) -> None:
        target = raw
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


_DELETE = object()
HUB = ("models", "small", "sources", 0)
ZEN = ("models", "small", "sources", 1)

BAD_FIELDS = [
    (
        _set(HUB + ("revision",), "main"),
        r"sources\[0\]\.revision must be a 40-character lowercase hex commit.*'main'.*never downloads a branch",
    ),
    (_set(HUB + ("revision",), COMMIT.upper()), r"revision must be a 40-character lowercase hex commit"),
    (_set(HUB + ("sha256",), "abc"), r"sources\[0\]\.sha256 must be 64 lowercase hex digits or null"),
    (_set(HUB + ("repo_id",), "no-namespace"), r"sources\[0\]\.repo_id 'no-namespace' is not of the form"),
    (_set(HUB + ("filename",), "model.bin"), r"sources\[0\]\.filename must be a \.safetensors file"),
    (_set(HUB + ("filename",), "../escape.safetensors"), r"must be a relative file name without '\.\.'"),
    (_set(HUB + ("sha265",), SHA), r"unknown field models\.small\.sources\[0\]\.sha265 \(did you mean 'sha256'\?\)"),
    (_set(HUB + ("type",), "s3"), r"sources\[0\]\.type must be one of 'hub', 'zenodo', got 's3'"),
    (_set(HUB + ("size",), -1), r"sources\[0\]\.size must be a positive integer \(bytes\) or null"),
    (_set(HUB + ("size",), True), r"sources\[0\]\.size must be a positive integer"),
    (_set(ZEN + ("checksum",), "de76ebbf1024e5774309c1d12d6970eb"), r"sources\[1\]\.checksum must be \"md5:<32 hex>\""),
    (_set(ZEN + ("checksum",), "md5:xyz"), r"sources\[1\]\.checksum must be"),
    (_set(ZEN + ("record",), "zenodo-17572734"), r"sources\[1\]\.record must be a Zenodo record number"),
    (_set(ZEN + ("url",), "ftp://example.org/x.ckpt"), r"sources\[1\]\.url must be an http\(s\) URL"),
    (_set(ZEN + ("format",), "zip"), r"sources\[1\]\.format must be \"lightning-ckpt\""),
    (_set(ZEN + ("filename",), _DELETE), r"sources\[1\]\.filename must be a non-empty string"),
    (_set(("models", "small", "embed_dim"), 512), r"models\.small\.embed_dim is 512, CLEF-small has 256"),
    (_set(("models", "small", "num_parameters"), "448K"), r"models\.small\.num_parameters must be a positive integer"),
    (_set(("models", "small", "aliases"), "s"), r"models\.small\.aliases must be a list of non-empty strings"),
    (_set(("models", "small", "licence"), "mit"), r"unknown field models\.small\.licence \(did you mean 'license'\?\)"),
    (_set(("models", "small", "citation"), "arXiv:2512.02180"), r"models\.small\.citation must be an object"),
    (_set(("models", "small", "sources"), {}), r"models\.small\.sources must be a list"),
    (_set(("models", "tiny"), {"embed_dim": 1, "num_parameters": 1}), r"unknown model size 'tiny'"),
    (
        _set(("models", "medium"), {"aliases": ["S"], "embed_dim": 1024, "num_parameters": 1}),
        r"name 'S' is used by both 'small' and 'medium'",
    ),
    (_set(("schema_version",), 2), r"schema_version is 2; this clef-sdk reads version 1"),
    (_set(("models",), {}), r"'models' must be a non-empty object"),
    (_set(("mirrors",), []), r"unknown field \(top level\)\.mirrors"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_FIELDS, ids=[m[:40] for _, m in BAD_FIELDS])
def test_bad_field_is_rejected_with_a_clear_error(tmp_path, edit, message):
    raw = copy.deepcopy(_minimal())
    edit(raw)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match=message) as info:
        load_manifest(path)
    assert str(info.value).startswith(str(path))


def test_unpinned_hub_source_and_unverified_zenodo_source_are_valid_but_flagged(tmp_path):
    raw = _minimal()
    raw["models"]["small"]["sources"][0].update(revision=None, sha256=None, size=None)
    raw["models"]["small"]["sources"][1].update(checksum=None, size=None)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(raw))
    hub, zenodo = load_manifest(path)["small"].sources
    assert "not yet published" in (hub.skip_reason() or "")
    assert "not yet verified" in (zenodo.skip_reason() or "")


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ not json")
    with pytest.raises(ManifestError, match=r"broken\.json is not valid JSON"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"schema_version": 1, "models": {"small": "\xff"}}', r"is not UTF-8 text"),
        (b"[" * 100_000, r"nests too deeply"),
        (b'{"schema_version": 1, "models": ' + b"[" * 50_000, r"nests too deeply"),
        (b"\xef\xbb\xbf{}", r"schema_version is None"),  # a UTF-8 byte order mark is read past
    ],
    ids=["not-utf8", "deep", "deep-inside", "bom"],
)
def test_undecodable_manifests_are_manifest_errors(tmp_path, content, message):
    """UnicodeDecodeError and RecursionError escaped load_manifest as raw exceptions."""
    path = tmp_path / "odd.json"
    path.write_bytes(content)
    with pytest.raises(ManifestError, match=message) as info:
        load_manifest(path)
    assert str(path) in str(info.value)


def test_unreadable_manifest_says_why(tmp_path, monkeypatch, unreadable):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_minimal()))
    monkeypatch.setenv(MANIFEST_ENV, str(path))
    with unreadable(path):
        with pytest.raises(
            ManifestError, match=r"cannot read the manifest .*manifest\.json: Permission denied"
        ) as info:
            load_manifest()
    assert "permissions" in str(info.value)


@pytest.mark.parametrize("name", ["a\x00b.ckpt", "dir/", "a//b.ckpt", "./x.ckpt", "x\n.ckpt", ""])
def test_odd_file_names_are_refused(tmp_path, name):
    raw = _minimal()
    raw["models"]["small"]["sources"][1]["filename"] = name
    path = tmp_path / "m.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match=r"sources\[1\]\.filename"):
        load_manifest(path)


def test_fuzzed_manifests_are_parsed_or_refused_with_a_manifest_error(tmp_path):
    """Seeded random edits of the shipped manifest (a value replaced by another type, a key dropped): each one loads
    or raises ManifestError, and what loads can be used (paths, descriptions)."""
    from clef_sdk.weights.cache import hub_expected_path, zenodo_target

    base = json.loads(SHIPPED.read_text())

    def paths(node, prefix=()):
        yield prefix
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in children:
            yield from paths(value, (*prefix, key))

    every = [p for p in paths(base) if p]
    values = [None, 0, -1, 1.5, True, "", "x", "\x00", "../x", "/abs", [], {}, [1], {"a": 1}, 2**70, "md5:" + "0" * 32]
    rng = random.Random(11)
    path = tmp_path / "m.json"
    for _ in range(400):
        raw = copy.deepcopy(base)
        where = rng.choice(every)
        node = raw
        for key in where[:-1]:
            node = node[key]
        if isinstance(node, dict) and rng.random() < 0.2:
            del node[where[-1]]
        else:
            node[where[-1]] = rng.choice(values)
        path.write_text(json.dumps(raw))
        try:
            entries = load_manifest(path)
        except ManifestError:
            continue
        for entry in entries.values():
            for source in entry.sources:
                source.describe(), source.skip_reason()
                if isinstance(source, ZenodoSource):
                    zenodo_target(entry, source)
                else:
                    hub_expected_path(source)
