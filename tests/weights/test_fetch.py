"""Weights download, verification, cache, offline use, CLI and publishing, against a real local HTTP server.

``hub_server.FakeHub`` speaks the Hub's file-resolve protocol (as huggingface_hub uses it) and serves
Zenodo-style URLs on 127.0.0.1; ``HF_ENDPOINT`` and a test manifest (``CLEF_SDK_MANIFEST``) point at it. Nothing
here replaces our own download functions: every byte travels over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import clef_sdk as clef
from clef_sdk import ChecksumMismatchError, ManifestError, WeightsNotAvailableError
from clef_sdk.cli import main
from clef_sdk.weights.cache import cache_status, cached_weights, clef_home, hub_cache_dir, verify_cache
from clef_sdk.weights.fetch import fetch_weights
from clef_sdk.weights.registry import model_entry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_server import FakeHub

REPO = "clef-sdk/clef-small"
RECORD = "17572734"
CKPT_NAME = "clef_small.ckpt"
CONTENT_PATH = f"/api/records/{RECORD}/files/{CKPT_NAME}/content"


@dataclass(frozen=True)
class Release:
    """The released-checkpoint stand-in and its conversion, with their checksums."""

    ckpt_path: Path
    ckpt: bytes
    md5: str
    safetensors_path: Path
    safetensors: bytes
    sha256: str


def _synthetic_release_ckpt(path: Path) -> None:
    """A Lightning-structured CLEF-small checkpoint (random weights) for clones without ../shared."""
    from clef_sdk.models import ARCHITECTURES, build

    torch.manual_seed(0)
    state = {f"backbone.{k}": v for k, v in build("small").state_dict().items()}
    for key, shape in ARCHITECTURES["small"].batchnorm_shapes().items():
        tensor = torch.zeros(shape, dtype=torch.int64) if key.endswith("num_batches_tracked") else torch.ones(shape)
        state[f"backbone.{key}"] = tensor
    torch.save({"epoch": 0, "global_step": 2, "pytorch-lightning_version": "2.4.0", "state_dict": state}, path)


@pytest.fixture(scope="module")
def release(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Release:
    folder = tmp_path_factory.mktemp("release")
    try:
        ckpt_path = Path(request.getfixturevalue("small_ckpt"))  # the real Lightning file structure
    except pytest.skip.Exception:
        ckpt_path = folder / CKPT_NAME
        _synthetic_release_ckpt(ckpt_path)
    safetensors_path = folder / "model.safetensors"
    sha256 = clef.convert_checkpoint(ckpt_path, safetensors_path)
    ckpt = ckpt_path.read_bytes()
    return Release(
        ckpt_path, ckpt, hashlib.md5(ckpt).hexdigest(), safetensors_path, safetensors_path.read_bytes(), sha256
    )


def hub_source(hub: FakeHub, release: Release, **overrides: object) -> dict:
    commit = hub.add_hub_file(REPO, "model.safetensors", release.safetensors)
    source = {
        "type": "hub",
        "repo_id": REPO,
        "filename": "model.safetensors",
        "revision": commit,
        "sha256": release.sha256,
        "size": len(release.safetensors),
    }
    return {**source, **overrides}


def zenodo_source(hub: FakeHub, release: Release, **overrides: object) -> dict:
    url = hub.add_zenodo_file(RECORD, CKPT_NAME, release.ckpt)
    source = {
        "type": "zenodo",
        "record": RECORD,
        "filename": CKPT_NAME,
        "url": url,
        "checksum": f"md5:{release.md5}",
        "size": len(release.ckpt),
    }
    return {**source, **overrides}


def use_manifest(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, *sources: dict, extra: dict | None = None
) -> Path:
    model = {"aliases": ["clef-small", "s"], "embed_dim": 256, "num_parameters": 447792, "sources": list(sources)}
    path = env.root / "manifest.json"
    path.write_text(json.dumps({"schema_version": 1, "models": {"small": {**model, **(extra or {})}}}))
    monkeypatch.setenv("CLEF_SDK_MANIFEST", str(path))
    return path


def same_weights(encoder: clef.ClefEncoder, release: Release) -> bool:
    reference = clef.load(release.safetensors_path, device="cpu").state_dict()
    return all(torch.equal(value, reference[key]) for key, value in encoder.state_dict().items())


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".part", ".tmp", ".incomplete"))]


# ---------------------------------------------------------------------------------------------------------------
# First download, cache reuse, offline


def test_first_download_from_hub_pinned_and_verified(env, monkeypatch, hub, release):
    source = hub_source(hub, release)
    use_manifest(env, monkeypatch, source, zenodo_source(hub, release))
    encoder = clef.load("small", device="cpu")
    assert encoder.embed_dim == 256 and same_weights(encoder, release)

    path = cached_weights(model_entry("small"))
    assert (
        path
        == hub_cache_dir() / "models--clef-sdk--clef-small" / "snapshots" / source["revision"] / "model.safetensors"
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == release.sha256
    # The Hub protocol as huggingface_hub speaks it: HEAD on the pinned resolve URL, then GET from the CDN.
    heads = [r for r in hub.requests if r.method == "HEAD" and "/resolve/" in r.path]
    assert [r.path for r in heads] == [f"/{REPO}/resolve/{source['revision']}/model.safetensors"]
    assert heads[0].user_agent.startswith(f"clef-sdk/{clef.__version__}")  # library_name / library_version
    assert hub.count("GET", "/lfs/") == 1 and hub.count(contains="/records/") == 0  # Zenodo not needed
    # The verification is recorded: the next load does not re-hash, and clef.embed resolves the same name.
    assert (clef_home() / "verified" / f"{release.sha256}.json").is_file()
    ecg = np.sin(np.linspace(0, 200 * np.pi, 360 * 25)) + 0.01 * np.random.default_rng(0).standard_normal(360 * 25)
    embedding = clef.embed(ecg, 360, model="small", device="cpu")
    np.testing.assert_allclose(embedding, encoder.embed(ecg, 360), rtol=1e-6, atol=1e-7)
    assert hub.count("GET", "/lfs/") == 1


def test_cached_model_loads_with_the_server_stopped(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, hub_source(hub, release), zenodo_source(hub, release))
    first = fetch_weights(model_entry("small"))
    hub.stop()
    clef.clear_cache()
    assert fetch_weights(model_entry("small")) == first
    assert same_weights(clef.load("small", device="cpu"), release)
    assert main(["verify", "small"]) == 0  # re-hashes from disk, no network either


@pytest.mark.parametrize("how", ["local_files_only", "HF_HUB_OFFLINE"])
def test_offline_requests_nothing_and_explains_what_is_missing(env, monkeypatch, hub, release, how):
    source = hub_source(hub, release)
    use_manifest(env, monkeypatch, source, zenodo_source(hub, release))
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = {"local_files_only": True} if how == "local_files_only" else {}
    with pytest.raises(WeightsNotAvailableError) as info:
        clef.load("small", device="cpu", **offline)
    message = str(info.value)
    expected_hub_path = (
        hub_cache_dir() / "models--clef-sdk--clef-small" / "snapshots" / source["revision"] / "model.safetensors"
    )
    for needle in (
        "CLEF-small is not in the local cache",
        str(expected_hub_path),
        "clef-small.safetensors",
        "`clef download small`",
        "HF_HUB_CACHE",
        "CLEF_SDK_HOME",
        str(hub_cache_dir()),
        str(clef_home()),
    ):
        assert needle in message
    assert hub.requests == []  # nothing was asked of the network

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fetch_weights(model_entry("small"))  # online: cache it
    hub.requests.clear()
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clef.clear_cache()
    assert same_weights(clef.load("small", device="cpu", **offline), release)
    assert hub.requests == []


# ---------------------------------------------------------------------------------------------------------------
# Integrity and faults


def test_tampered_hub_bytes_are_deleted_and_named(env, monkeypatch, hub, release):
    source = hub_source(hub, release)
    use_manifest(env, monkeypatch, source, zenodo_source(hub, release))
    hub.tamper.add(hub.hub_key(REPO, "model.safetensors"))
    with pytest.raises(ChecksumMismatchError) as info:
        clef.load("small", device="cpu")
    message = str(info.value)
    actual = hashlib.sha256(hub_server_tampered(release.safetensors)).hexdigest()
    assert f"expected sha256:{release.sha256}" in message and f"got sha256:{actual}" in message
    assert f"Hugging Face Hub {REPO}@{source['revision'][:12]}" in message and "has been deleted" in message
    repo_folder = hub_cache_dir() / "models--clef-sdk--clef-small"
    assert not any(p.is_file() for p in (repo_folder / "blobs").iterdir())
    assert not (repo_folder / "snapshots" / source["revision"] / "model.safetensors").exists()
    assert hub.count(contains="/records/") == 0  # a mismatch is an error, not a reason to try another source
    hub.tamper.clear()
    assert same_weights(clef.load("small", device="cpu"), release)  # the next attempt downloads it anew


def hub_server_tampered(data: bytes) -> bytes:
    from hub_server import _tampered

    return _tampered(data)


def test_zenodo_download_resumes_after_a_dropped_connection(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    half = len(release.ckpt) // 2
    hub.drop_once[hub.zenodo_key(RECORD, CKPT_NAME)] = half
    path = fetch_weights(model_entry("small"), progress=False)
    ranges = [r.range for r in hub.requests if r.path == CONTENT_PATH]
    assert ranges == [None, f"bytes={half}-"]  # resumed where the connection dropped
    assert same_weights(clef.load(path, device="cpu"), release)
    folder = path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["clef-small.safetensors", "clef-small.safetensors.json"]
    record = json.loads((folder / "clef-small.safetensors.json").read_text())
    assert record["checkpoint"]["md5"] == release.md5 and record["checksum_verified"] is True
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert folder == clef_home() / "zenodo" / RECORD / f"md5-{release.md5}"  # keyed by the source checksum


def test_zenodo_download_resumes_a_partial_file_from_an_earlier_run(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    folder = clef_home() / "zenodo" / RECORD / f"md5-{release.md5}"
    folder.mkdir(parents=True)
    (folder / f"{CKPT_NAME}.part").write_bytes(release.ckpt[:1000])
    fetch_weights(model_entry("small"), progress=False)
    assert [r.range for r in hub.requests if r.path == CONTENT_PATH] == ["bytes=1000-"]


def test_hub_download_resumes_after_a_dropped_connection(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, hub_source(hub, release))
    hub.drop_once[hub.hub_key(REPO, "model.safetensors")] = len(release.safetensors) // 3
    assert same_weights(clef.load("small", device="cpu"), release)
    # huggingface_hub retried (it resumes from its last 10 MiB chunk written: here, from the start).
    cdn = [r.range for r in hub.requests if r.path.startswith("/lfs/")]
    assert len(cdn) == 2 and cdn[0] is None
    assert leftovers(env.hf_home) == []


def test_missing_hub_repo_falls_back_to_zenodo(env, monkeypatch, hub, release):
    missing = {
        "type": "hub",
        "repo_id": "nobody/absent",
        "filename": "model.safetensors",
        "revision": "1" * 40,
        "sha256": release.sha256,
        "size": len(release.safetensors),
    }
    use_manifest(env, monkeypatch, missing, zenodo_source(hub, release))
    encoder = clef.load("small", device="cpu")
    assert same_weights(encoder, release)
    assert hub.count("HEAD", "/nobody/absent/resolve/") == 1  # answered 404 RepoNotFound
    assert hub.count("GET", CONTENT_PATH) == 1
    path = cached_weights(model_entry("small"))
    assert path.parent == clef_home() / "zenodo" / RECORD / f"md5-{release.md5}"
    assert not (path.parent / CKPT_NAME).exists()  # the .ckpt is deleted after conversion by default
    assert leftovers(env.hf_home) == []
    # Later loads use the converted file without asking the Hub again.
    hub.requests.clear()
    clef.clear_cache()
    clef.load("small", device="cpu")
    assert hub.requests == []


def test_keep_checkpoint_and_progress_bar(env, monkeypatch, hub, release, capsys):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    path = fetch_weights(model_entry("small"), keep_checkpoint=True, progress=True)
    assert (path.parent / CKPT_NAME).read_bytes() == release.ckpt
    err = capsys.readouterr().err
    assert CKPT_NAME in err and "100%" in err  # the download progress bar


def test_shipped_manifest_resolves_medium_without_network(env, monkeypatch, hub):
    monkeypatch.delenv("CLEF_SDK_MANIFEST", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotAvailableError) as info:
        clef.embed(np.zeros(5000), 500, model="base")
    message = str(info.value)
    assert "CLEF-medium" in message and "`clef download medium`" in message
    assert "md5-781eed16d190ef97733994cd2d01d1ff" in message and "clef_medium.ckpt" in message
    assert "skipped Hugging Face Hub clef-sdk/clef-medium@unpinned" in message and "not yet published" in message
    assert hub.requests == []


def test_wrong_zenodo_checksum_is_refused(env, monkeypatch, hub, release):
    wrong = "0" * 32
    use_manifest(env, monkeypatch, zenodo_source(hub, release, checksum=f"md5:{wrong}"))
    with pytest.raises(ChecksumMismatchError) as info:
        clef.load("small", device="cpu")
    message = str(info.value)
    assert f"expected md5:{wrong}, got md5:{release.md5}" in message
    assert f"Zenodo record {RECORD} file {CKPT_NAME}" in message
    assert hashlib.sha256(release.ckpt).hexdigest() in message
    folder = clef_home() / "zenodo" / RECORD / f"md5-{wrong}"
    assert list(folder.iterdir()) == []  # neither the .ckpt nor a converted file is kept


def test_zenodo_size_mismatch_is_refused_before_download(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, zenodo_source(hub, release, size=len(release.ckpt) + 1))
    with pytest.raises(ChecksumMismatchError, match=f"has {len(release.ckpt)} bytes but the manifest expects"):
        fetch_weights(model_entry("small"), progress=False)


def test_zenodo_source_without_checksum_needs_an_explicit_opt_in(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, zenodo_source(hub, release, checksum=None, size=None))
    with pytest.raises(WeightsNotAvailableError, match=r"not yet verified.*CLEF_SDK_ALLOW_UNVERIFIED=1"):
        clef.load("small", device="cpu")
    assert hub.requests == []
    monkeypatch.setenv("CLEF_SDK_ALLOW_UNVERIFIED", "1")
    with pytest.warns(UserWarning, match=f"WITHOUT a checksum.*md5:{release.md5}"):
        path = fetch_weights(model_entry("small"), progress=False)
    assert "unverified-" in path.parent.name
    assert json.loads(path.with_name(path.name + ".json").read_text())["checksum_verified"] is False


def test_unpinned_hub_source_is_skipped_without_a_request(env, monkeypatch, hub, release):
    unpinned = hub_source(hub, release, revision=None, sha256=None)
    use_manifest(env, monkeypatch, unpinned, zenodo_source(hub, release))
    fetch_weights(model_entry("small"), progress=False)
    assert hub.count(contains="/resolve/") == 0 and hub.count("GET", CONTENT_PATH) == 1


def test_corrupted_cache_is_detected_deleted_and_reported(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, hub_source(hub, release))
    path = fetch_weights(model_entry("small"))
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    clef.clear_cache()
    with pytest.raises(ChecksumMismatchError, match="has been deleted"):
        clef.load("small", device="cpu")
    assert not blob.exists() and not path.exists()


def test_bad_manifest_field_is_reported_on_load(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, hub_source(hub, release, revision="main"))
    with pytest.raises(
        ManifestError, match=r"manifest\.json: models\.small\.sources\[0\]\.revision must be a 40-character"
    ):
        clef.load("small", device="cpu")
    assert hub.requests == []


def test_explicit_paths_need_no_manifest(env, monkeypatch, release):
    broken = env.root / "broken.json"
    broken.write_text("{")
    monkeypatch.setenv("CLEF_SDK_MANIFEST", str(broken))
    from_ckpt = clef.load(release.ckpt_path, device="cpu")
    from_safetensors = clef.load(str(release.safetensors_path), device="cpu")
    assert same_weights(from_ckpt, release) and same_weights(from_safetensors, release)
    with pytest.raises(ManifestError, match="not valid JSON"):
        clef.load("small", device="cpu")


# ---------------------------------------------------------------------------------------------------------------
# Concurrency: four processes, one download, one file

_WORKER = """
import json, sys, time
from pathlib import Path
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
import clef_sdk
from clef_sdk.weights.cache import cached_weights
from clef_sdk.weights.registry import model_entry
ready.write_text("ready")
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
encoder = clef_sdk.load("small", device="cpu")
path = cached_weights(model_entry("small"))
print(json.dumps({"path": str(path), "embed_dim": encoder.embed_dim}))
"""


def test_four_processes_loading_at_once_produce_one_file(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    hub.delay = 0.3  # the first downloader holds the lock while the others arrive
    script = env.root / "worker.py"
    script.write_text(_WORKER)
    go = env.root / "go"
    workers = []
    for index in range(4):
        ready = env.root / f"ready-{index}"
        process = subprocess.Popen(
            [sys.executable, str(script), str(ready), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        workers.append((process, ready))
    deadline = time.monotonic() + 90
    while not all(ready.exists() for _, ready in workers) and time.monotonic() < deadline:
        if any(process.poll() is not None for process, _ in workers):
            break
        time.sleep(0.01)
    go.write_text("go")
    results = []
    for process, _ in workers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["path"] for r in results}) == 1 and all(r["embed_dim"] == 256 for r in results)
    assert hub.count("GET", CONTENT_PATH) == 1  # downloaded once
    converted = list(clef_home().rglob("*.safetensors"))
    assert converted == [Path(results[0]["path"])]
    assert leftovers(env.hf_home) == []


# ---------------------------------------------------------------------------------------------------------------
# Command line


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_download_list_info_verify(env, monkeypatch, hub, release, capsys):
    source = hub_source(hub, release)
    use_manifest(env, monkeypatch, source, zenodo_source(hub, release))
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "small" in out and "not cached (download" in out

    code, out, err = run_cli(capsys, "download", "small", "--no-progress")
    assert code == 0, err
    path = cached_weights(model_entry("small"))
    assert out.strip() == f"CLEF-small: {path} ({len(release.safetensors) / 1e6:.1f} MB)"

    code, out, _ = run_cli(capsys, "list")
    assert f"cached ({len(release.safetensors) / 1e6:.1f} MB)" in out

    code, out, _ = run_cli(capsys, "info", "s")
    assert code == 0
    assert f"1. Hugging Face Hub {REPO}@{source['revision'][:12]}/model.safetensors  [usable]" in out
    assert f"cached, {len(release.safetensors) / 1e6:.1f} MB: {path}" in out
    assert f"2. Zenodo record {RECORD} file {CKPT_NAME}" in out and f'"checksum": "md5:{release.md5}"' in out
    assert "preprocessing:" in out and "caches:" in out

    code, out, _ = run_cli(capsys, "verify")
    assert code == 0 and f"OK     CLEF-small {path}: sha256 {release.sha256} OK" in out

    blob = path.resolve()
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")  # same size, other content
    code, out, err = run_cli(capsys, "verify", "small")
    assert (
        code == 1
        and "FAILED CLEF-small" in out
        and "1 of 1 cached files failed verification" in err
        and "has been deleted" in out
    )
    assert not blob.exists()

    code, out, _ = run_cli(capsys, "list")
    assert "not cached" in out


def test_cli_download_all_and_errors(env, monkeypatch, hub, release, capsys):
    use_manifest(env, monkeypatch, zenodo_source(hub, release, checksum="md5:" + "f" * 32))
    code, _, err = run_cli(capsys, "download", "small", "--no-progress")
    assert code == 1 and err.startswith("clef: error: CLEF-small: checksum mismatch") and "Traceback" not in err
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    code, out, err = run_cli(capsys, "download", "all", "--no-progress", "--keep-checkpoint")
    assert code == 0, err
    assert out.startswith("CLEF-small: ") and (cached_weights(model_entry("small")).parent / CKPT_NAME).is_file()


def test_cli_subprocess_download_then_offline_list(env, monkeypatch, hub, release, capsys):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    result = subprocess.run(
        [sys.executable, "-m", "clef_sdk.cli", "download", "small"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CLEF-small: ") and "clef-small.safetensors" in result.stdout
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "cached (" in out


# ---------------------------------------------------------------------------------------------------------------
# Publishing


def _front_matter(card: str) -> dict[str, object]:
    assert card.startswith("---\n")
    block = card[4 : card.index("\n---\n", 4)]
    parsed: dict[str, object] = {}
    key = None
    for line in block.splitlines():
        if line.startswith("- ") and key is not None:
            parsed.setdefault(key, [])
            parsed[key].append(line[2:])
        else:
            key, _, value = line.partition(":")
            if value.strip():
                parsed[key] = value.strip()
    return parsed


def test_publish_dry_run_writes_the_hub_folder(env, monkeypatch, hub, release, capsys):
    from clef_sdk.weights.publish import build_hub_folder

    use_manifest(
        env,
        monkeypatch,
        zenodo_source(hub, release),
        extra={"license": "bsd-3-clause-clear", "citation": {"arxiv": "2512.02180", "bibtex": "@article{shu2025clef}"}},
    )
    out_dir = env.root / "publish"
    code, out, err = run_cli(
        capsys,
        "publish",
        "small",
        "--ckpt",
        str(release.ckpt_path),
        "--repo-id",
        "me/clef-small",
        "--dry-run",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    weights = out_dir / "model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert same_weights(clef.load(weights, device="cpu"), release)
    again = build_hub_folder("small", release.ckpt_path, env.root / "again", repo_id="me/clef-small")
    assert again.sha256 == sha  # reproducible: the manifest's sha256 can be checked by anyone
    printed = json.loads(out[out.index("{") :])
    assert printed == {
        "type": "hub",
        "repo_id": "me/clef-small",
        "filename": "model.safetensors",
        "revision": None,
        "sha256": sha,
        "size": weights.stat().st_size,
    }
    config = json.loads((out_dir / "config.json").read_text())
    assert config["library_name"] == "clef-sdk" and config["embed_dim"] == 256 and config["size"] == "small"
    assert config["weights"]["sha256"] == sha and config["source_checkpoint"]["md5"] == release.md5
    assert config["source_checkpoint"]["matches_release_checksum"] is True
    card = (out_dir / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "clef-sdk" and meta["license"] == "bsd-3-clause-clear"
    assert meta["pipeline_tag"] == "feature-extraction"
    assert "ecg" in meta["tags"] and "arxiv:2512.02180" in meta["tags"] and meta["datasets"] == ["mimic-iv-ecg"]
    for needle in (
        "arXiv:2512.02180",
        "447,792",
        "256",
        "## Preprocessing",
        "500 Hz",
        "0.67-40.0 Hz",
        "## Intended use",
        "## Limitations",
        "## Not a medical device",
        sha,
        "@article{shu2025clef}",
    ):
        assert needle in card
    assert hub.requests == []  # a dry run uploads nothing


class RecordingApi:
    """Stands in for huggingface_hub.HfApi's upload methods (the Hub's commit API is not emulated)."""

    def __init__(self, commit: str) -> None:
        self.commit = commit
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id: str, **kwargs: object) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs: object) -> SimpleNamespace:
        self.calls.append(("upload_folder", {**kwargs, "files": sorted(os.listdir(kwargs["folder_path"]))}))
        return SimpleNamespace(
            oid=self.commit, commit_url=f"https://hub.example/{kwargs['repo_id']}/commit/{self.commit}"
        )


def test_publish_uploads_and_its_manifest_entry_downloads(env, monkeypatch, hub, release):
    from clef_sdk.weights.publish import publish

    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    api = RecordingApi("c" * 40)
    result = publish("small", release.ckpt_path, "me/clef-small", out_dir=env.root / "pub", api=api)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["exist_ok"] is True and api.calls[0][1]["private"] is False
    assert api.calls[1][1]["repo_id"] == "me/clef-small"
    assert api.calls[1][1]["files"] == ["README.md", "config.json", "model.safetensors"]
    assert result.revision == "c" * 40 and result.manifest_source["revision"] == "c" * 40
    # Serve what was "uploaded" at that commit: the printed entry is a working, pinned hub source.
    for file in ("README.md", "config.json", "model.safetensors"):
        hub.add_hub_file("me/clef-small", file, (result.folder / file).read_bytes(), commit=result.revision)
    use_manifest(env, monkeypatch, result.manifest_source)
    assert same_weights(clef.load("small", device="cpu"), release)
    assert hub.count("HEAD", f"/me/clef-small/resolve/{'c' * 40}/model.safetensors") == 1


def test_publish_refuses_a_checkpoint_that_is_not_the_release(env, monkeypatch, hub, release, capsys):
    use_manifest(env, monkeypatch, zenodo_source(hub, release, checksum="md5:" + "1" * 32))
    code, _, err = run_cli(
        capsys,
        "publish",
        "small",
        "--ckpt",
        str(release.ckpt_path),
        "--repo-id",
        "me/x",
        "--dry-run",
        "--out",
        str(env.root / "p"),
    )
    assert code == 1 and "is not the released clef_small.ckpt" in err and "--force" in err
    code, _, err = run_cli(
        capsys,
        "publish",
        "small",
        "--ckpt",
        str(release.ckpt_path),
        "--repo-id",
        "me/x",
        "--dry-run",
        "--out",
        str(env.root / "p"),
        "--force",
    )
    assert code == 0, err
    config = json.loads((env.root / "p" / "config.json").read_text())
    assert config["source_checkpoint"]["matches_release_checksum"] is False


def test_status_without_network(env, monkeypatch, hub, release):
    use_manifest(env, monkeypatch, hub_source(hub, release, revision=None, sha256=None), zenodo_source(hub, release))
    statuses = cache_status(model_entry("small"))
    assert [s.usable for s in statuses] == [False, True]
    assert "not yet published" in (statuses[0].reason or "") and statuses[0].path is None
    assert not statuses[1].cached and hub.requests == []


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_sources_fail_at_once_with_one_message(env, monkeypatch, hub, release, caplog):
    """No network: a name that does not resolve (RFC 6761 .invalid) and a closed local port, for Zenodo and the
    Hub, fail without retries (they were 5 retries and 7 s of "resuming" lines), in one error naming each."""
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    use_manifest(
        env,
        monkeypatch,
        hub_source(hub, release),
        zenodo_source(hub, release, url=f"http://clef-sdk-test.invalid/records/{RECORD}/files/{CKPT_NAME}"),
        zenodo_source(hub, release, url=f"http://127.0.0.1:{port}/records/{RECORD}/files/{CKPT_NAME}"),
    )
    caplog.set_level(logging.INFO, logger="clef_sdk")
    started = time.perf_counter()
    with pytest.raises(WeightsNotAvailableError) as failure:
        fetch_weights(model_entry("small"), progress=False)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed  # measured 0.05 s
    message = str(failure.value)
    assert "cannot connect to clef-sdk-test.invalid (gaierror" in message
    assert f"cannot connect to 127.0.0.1:{port} (ConnectionRefusedError" in message
    assert "Hugging Face Hub" in message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or "resuming" in r.getMessage()]
    assert hub.requests == []  # the working local server was never asked: its sources pointed elsewhere


# ---------------------------------------------------------------------------------------------------------------
# Files that cannot be read, records that cannot be parsed, settings that are not valid


def test_unreadable_cached_file_is_reported_as_such_and_kept(env, monkeypatch, hub, release, capsys, unreadable):
    """A permission-denied cached file is not corrupt: no 'delete it' advice, nothing deleted, the cause named."""
    use_manifest(env, monkeypatch, hub_source(hub, release))
    path = fetch_weights(model_entry("small"))
    blob = path.resolve()
    clef.clear_cache()
    with unreadable(blob):
        with pytest.raises(clef.CheckpointError) as info:
            clef.load("small", device="cpu")
        _assert_unreadable(str(info.value), path)
        with pytest.raises(clef.CheckpointError) as info:
            verify_cache(model_entry("small"))  # re-hashes: cannot, and says why
        _assert_unreadable(str(info.value), path)
        code, out, err = run_cli(capsys, "verify", "small")
        assert code == 1 and "Permission denied" in err and "were deleted" not in err
    assert blob.read_bytes() == release.safetensors  # kept as it was
    assert main(["verify", "small"]) == 0


def _assert_unreadable(message: str, path: Path) -> None:
    assert "cannot read the " in message and ("Permission denied" in message), message
    assert str(path) in message or str(path.resolve()) in message, message
    assert "do not delete it" in message and "has been deleted" not in message and "corrupt" not in message, message


def test_unreadable_conversion_record_is_reported_and_kept(env, monkeypatch, hub, release, unreadable):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    target = fetch_weights(model_entry("small"), progress=False)
    record = target.with_name(target.name + ".json")
    clef.clear_cache()
    with unreadable(record):
        with pytest.raises(clef.CheckpointError) as info:
            fetch_weights(model_entry("small"), progress=False)
        assert "cannot read the cache record" in str(info.value) and str(record) in str(info.value)
        assert "do not delete it" in str(info.value)
    assert target.is_file() and record.is_file()
    assert hub.count("GET", CONTENT_PATH) == 1  # not downloaded again over a file it could not read


@pytest.mark.parametrize(
    "content", [b"[" * 100_000, b"\xff\xfe not utf-8", b"{", b"[]"], ids=["deep", "utf8", "json", "list"]
)
def test_corrupt_cache_records_are_named_never_raw_errors(env, monkeypatch, hub, release, content, caplog):
    """Records of verifications and conversions that are not JSON objects (RecursionError escaped json.loads):
    a Hub verification is redone; a conversion without a readable record is made again, and `clef verify` names
    the record and what is wrong with it."""
    use_manifest(env, monkeypatch, hub_source(hub, release))
    fetch_weights(model_entry("small"))
    record = clef_home() / "verified" / f"{release.sha256}.json"
    record.write_bytes(content)
    clef.clear_cache()
    assert same_weights(clef.load("small", device="cpu"), release)  # re-hashed, record written again
    assert json.loads(record.read_text())["sha256"] == release.sha256

    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    target = fetch_weights(model_entry("small"), progress=False)
    sidecar = target.with_name(target.name + ".json")
    sidecar.write_bytes(content)
    caplog.set_level(logging.WARNING, logger="clef_sdk")
    clef.clear_cache()
    assert same_weights(clef.load("small", device="cpu"), release)  # converted again, with a warning naming it
    assert any(str(sidecar) in r.getMessage() and "converted again" in r.getMessage() for r in caplog.records)
    assert json.loads(sidecar.read_text())["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    sidecar.write_bytes(content)
    [report] = verify_cache(model_entry("small"))
    assert not report.ok and str(sidecar) in report.message and "not a valid JSON object" in report.message
    assert "has been deleted" in report.message and not target.exists()  # as `clef verify` then says


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "abc", "1e9", "-inf"])
def test_download_timeout_out_of_range_is_an_error_naming_it(env, monkeypatch, hub, release, value):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    monkeypatch.setenv("CLEF_SDK_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(ValueError, match=rf"CLEF_SDK_DOWNLOAD_TIMEOUT={value!r} must be a number from"):
        fetch_weights(model_entry("small"), progress=False)
    assert hub.requests == []


def test_download_timeout_in_range_is_used(env, monkeypatch, hub, release):
    from clef_sdk.weights import network

    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    monkeypatch.setenv("CLEF_SDK_DOWNLOAD_TIMEOUT", " 2.5 ")
    assert network.download_timeout() == 2.5
    fetch_weights(model_entry("small"), progress=False)
    monkeypatch.setenv("CLEF_SDK_DOWNLOAD_TIMEOUT", "")
    assert network.download_timeout() == 30.0


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "FALSE", " Off ", ""])
def test_flags_set_to_a_false_word_are_off(env, monkeypatch, hub, release, value):
    use_manifest(env, monkeypatch, hub_source(hub, release))
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setenv("CLEF_SDK_ALLOW_UNVERIFIED", value)
    from clef_sdk.weights.cache import is_offline, unverified_allowed

    assert not is_offline() and not unverified_allowed(None)
    fetch_weights(model_entry("small"))  # online: downloads
    assert hub.count("GET", "/lfs/") == 1


@pytest.mark.parametrize("name", ["HF_HUB_OFFLINE", "CLEF_SDK_ALLOW_UNVERIFIED", "HF_HUB_DISABLE_PROGRESS_BARS"])
@pytest.mark.parametrize("value", ["maybe", "2", "ture", "-1"])
def test_flags_set_to_anything_else_are_an_error_naming_them(env, monkeypatch, hub, release, name, value):
    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"{name}={value!r} is not a flag: use 1/true/yes/on or 0/false/no/off"):
        fetch_weights(model_entry("small"), allow_unverified=None, progress=None)
    assert not leftovers(env.root)  # checked before anything was downloaded


def test_publish_without_a_release_checksum_needs_force(env, monkeypatch, hub, release):
    """The check that the checkpoint is the release was skipped when the manifest had no checksum for it."""
    from clef_sdk.weights.publish import build_hub_folder

    use_manifest(env, monkeypatch, zenodo_source(hub, release, checksum=None))
    with pytest.raises(ManifestError, match=r"no checksum for the released clef_small\.ckpt.*--force"):
        build_hub_folder("small", release.ckpt_path, env.root / "out", repo_id="me/clef-small")
    assert not (env.root / "out").exists()
    built = build_hub_folder("small", release.ckpt_path, env.root / "out", repo_id="me/clef-small", force=True)
    assert built.config["source_checkpoint"]["matches_release_checksum"] is None
    assert built.config["source_checkpoint"]["record"] is None


def test_a_full_disk_during_a_download_names_the_file(env, monkeypatch, hub, release):
    import builtins
    import errno

    from clef_sdk.weights import network

    class FullDisk:
        def __init__(self, path, mode):
            self.handle = builtins.open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")  # as a write() reports it: no file name

    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    monkeypatch.setattr(network, "open", FullDisk, raising=False)
    with pytest.raises(OSError, match=r"No space left on device \(writing .*clef_small\.ckpt\.part\)") as info:
        fetch_weights(model_entry("small"), progress=False)
    assert info.value.errno == errno.ENOSPC and hub.count("GET", CONTENT_PATH) == 1  # not retried


def test_a_checkpoint_fetched_by_hand_is_cached_as_a_download_would_be(env, monkeypatch, hub, release, capsys):
    """`clef download small --from PATH` (no network) leaves the cache as the local Zenodo server's download does:
    the same converted file and record, found by name offline from then on; a wrong file is refused and kept."""
    from clef_sdk.cli import main
    from clef_sdk.weights import install_checkpoint

    use_manifest(env, monkeypatch, zenodo_source(hub, release))
    downloaded = fetch_weights(model_entry("small"), progress=False)
    expected = (downloaded.read_bytes(), json.loads(downloaded.with_name(downloaded.name + ".json").read_text()))
    shutil.rmtree(clef_home() / "zenodo")
    requests = len(hub.requests)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_hand = env.root / "Downloads" / CKPT_NAME
    by_hand.parent.mkdir()
    by_hand.write_bytes(release.ckpt)
    assert main(["download", "small", "--from", str(by_hand)]) == 0
    assert "now works offline" in capsys.readouterr().out
    assert len(hub.requests) == requests  # nothing asked of the network
    assert by_hand.read_bytes() == release.ckpt  # the user's file is only read
    record = json.loads(downloaded.with_name(downloaded.name + ".json").read_text())
    assert downloaded.read_bytes() == expected[0]
    assert {k: v for k, v in record.items() if k not in ("created", "mtime_ns")} == {
        k: v for k, v in expected[1].items() if k not in ("created", "mtime_ns")
    }
    assert same_weights(clef.load("small", device="cpu"), release)  # by name, offline

    wrong = env.root / "wrong.ckpt"
    wrong.write_bytes(release.ckpt[:-1] + bytes([release.ckpt[-1] ^ 1]))
    shutil.rmtree(clef_home() / "zenodo")
    with pytest.raises(ChecksumMismatchError, match="is not the released file.*left as it is"):
        install_checkpoint("small", wrong)
    assert wrong.is_file() and cached_weights(model_entry("small")) is None
    assert main(["download", "all", "--from", str(by_hand)]) != 0
    assert "--from takes one file" in capsys.readouterr().err
