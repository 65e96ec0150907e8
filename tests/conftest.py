"""Shared fixtures. Real data comes from ``../shared`` (override with ``CLEF_SDK_SHARED``); tests that need it
skip with a reason where it is absent, so a bare clone still passes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conformance_helpers import rule_state_dict
from hub_server import FakeHub

import clef_sdk as clef

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "CLEF_SDK_SHARED"
SHARED_ABSENT = f"set {SHARED_ENV} to the shared fixtures folder (conformance/, data/) to run this test"

if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    # Under -n auto the workers already fill the cores: each gets one thread (and so do the processes it starts),
    # as two-thread OpenMP pools on shared cores spin against each other (the performance guide's measurements).
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# backend="auto" would take OpenVINO (installed by [dev]) for small and medium: the suite's numeric checks compare
# against the torch network, so "auto" means torch here; the backend tests pass their backend or unset this.
os.environ.setdefault("CLEF_SDK_BACKEND", "torch")


#: the fixtures that read ../shared; a test using any of them (directly or through another fixture) is marked
#: ``shared``, so a bare clone's check (``-m shared`` without the folder) can confirm that each of them skips
SHARED_FIXTURES = frozenset({"conformance_dir", "data_dir", "score2_dir"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)


def _skip_reason(report: pytest.TestReport) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if reason.endswith(SHARED_ABSENT):  # one line for all of them, not one per test (a bare clone: 500+)
        return f"the shared fixtures folder is absent: {SHARED_ABSENT} (docs/development.md says where they come from)"
    return reason


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Skips grouped by reason, one line each (the -r flags in pyproject.toml leave them out)."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(report)
        counts[reason] = counts.get(reason, 0) + 1
    for reason, count in sorted(counts.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count} skipped: {reason}")


def shared_dir() -> Path:
    return Path(os.environ.get(SHARED_ENV) or REPO_ROOT.parent / "shared")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: {SHARED_ABSENT}")
    return path


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return _require(shared_dir() / "conformance")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(shared_dir() / "data")


@pytest.fixture(scope="session")
def score2_dir() -> Path:
    """SCORE2 facts and published values (``published_cases.json``)."""
    return _require(shared_dir() / "score2")


@pytest.fixture(scope="session")
def small_ckpt(conformance_dir: Path) -> Path:
    """Lightning checkpoint of CLEF-small with the released files' structure."""
    return conformance_dir / "clef_small_lightning.ckpt"


@pytest.fixture(scope="session")
def small_safetensors(small_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conformance checkpoint converted once per session with our converter."""
    from clef_sdk import convert_checkpoint

    path = tmp_path_factory.mktemp("weights") / "clef-small.safetensors"
    convert_checkpoint(small_ckpt, path)
    return path


@pytest.fixture(scope="session")
def mitdb_record(data_dir: Path) -> np.ndarray:
    """MIT-BIH record 100, MLII, 360 Hz, 30 min, mV (float32)."""
    return np.load(data_dir / "mitdb-tpcp" / "100.npz")["ecg"]


@pytest.fixture(scope="session")
def conformance_windows(conformance_dir: Path) -> np.ndarray:
    """``windows.npy``: (8, 5000) float32, LUDB lead I preprocessed by the reference pipeline."""
    return np.load(conformance_dir / "windows.npy")


@pytest.fixture(scope="session")
def small_encoder(small_safetensors: Path):
    """CLEF-small with the conformance checkpoint's weights, on the CPU, eval mode. Shared: do not mutate
    (``copy.deepcopy`` it first)."""
    from clef_sdk import load

    return load(small_safetensors, device="cpu")


@pytest.fixture(scope="session")
def medium_rule_state_dict(conformance_dir: Path) -> dict[str, torch.Tensor]:
    """Rule weights of CLEF-medium (about 120 MB), built once per session."""
    return rule_state_dict(conformance_dir, "medium")


# --- a local server speaking the Hub's and Zenodo's HTTP protocols (tests/hub_server.py) -----------------


@pytest.fixture(autouse=True)
def _no_hub_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub fetches an agent registry from its import-time endpoint (the real Hub) on first use;
    give it an empty one so that no test ever reaches outside 127.0.0.1."""
    try:
        from huggingface_hub.utils import _detect_agent
    except ImportError:
        return
    if hasattr(_detect_agent, "_registry"):
        monkeypatch.setattr(_detect_agent, "_registry", getattr(_detect_agent, "_EMPTY_REGISTRY", None))


@pytest.fixture
def hub() -> FakeHub:
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> SimpleNamespace:
    """Caches under tmp_path, HF_ENDPOINT at the local server, no offline mode, no proxies, no tokens."""
    hf_home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in (
        "HF_HUB_OFFLINE",
        "CLEF_SDK_HOME",
        "CLEF_SDK_ALLOW_UNVERIFIED",
        "HF_TOKEN",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    clef.clear_cache()
    yield SimpleNamespace(root=tmp_path, hf_home=hf_home)
    clef.clear_cache()


@pytest.fixture
def installed_small(small_safetensors: Path, hub, env, monkeypatch: pytest.MonkeyPatch):
    """CLEF-small published on the local Hub server (a manifest pinned to it) and downloaded once for real,
    so that names resolve from the cache; returns the server, whose request log shows any later traffic."""
    from clef_sdk.weights.fetch import fetch_weights
    from clef_sdk.weights.registry import model_entry

    data = small_safetensors.read_bytes()
    commit = hub.add_hub_file("clef-sdk/clef-small", "model.safetensors", data)
    source = {
        "type": "hub",
        "repo_id": "clef-sdk/clef-small",
        "filename": "model.safetensors",
        "revision": commit,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    model = {
        "aliases": ["clef-small", "clef_small", "s"],
        "embed_dim": 256,
        "num_parameters": 447792,
        "sources": [source],
    }
    manifest = env.root / "manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "models": {"small": model}}))
    monkeypatch.setenv("CLEF_SDK_MANIFEST", str(manifest))
    fetch_weights(model_entry("small"))
    hub.requests.clear()
    return hub
